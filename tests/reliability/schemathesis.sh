#!/usr/bin/env bash
# Property-based testing of the platform API from its own /openapi.json (schemathesis):
# `plinth up` in a temporary folder, then every operation with a platform admin's token and
# again with a forged one. Fails on any 5xx, any answer its document does not admit (status,
# content type, schema), and any schema-valid request refused (but see schemathesis.toml).
#
#   tests/reliability/schemathesis.sh            # 50 examples per operation and phase
#   EXAMPLES=200 tests/reliability/schemathesis.sh
#
# Needs python3 (a venv with schemathesis is made under $VENV when missing) and cargo.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
EXAMPLES="${EXAMPLES:-50}"
SEED="${SEED:-22}"
VENV="${VENV:-/var/tmp/plinth-schemathesis-venv}"
PORT="${PORT:-$((20000 + RANDOM % 20000))}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

if [ ! -x "$VENV/bin/schemathesis" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet 'schemathesis>=4.3,<5'
fi

cargo build --quiet -p plinth-local --manifest-path "$ROOT/Cargo.toml"
PLINTH="$CARGO_TARGET_DIR/debug/plinth"

WORK="$(mktemp -d)"
cd "$WORK"
"$PLINTH" up --port "$PORT" --data-dir "$WORK/.plinth" >"$WORK/up.log" 2>&1 &
UP=$!
trap 'kill "$UP" 2>/dev/null; wait "$UP" 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  sleep 0.2
done
URL="http://127.0.0.1:$PORT"
TOKEN="$("$PLINTH" token --roles platform:admin --data-dir "$WORK/.plinth")"

# Refusals a JSON Schema cannot express are allowed per operation in schemathesis.toml.
run() {
  "$VENV/bin/schemathesis" --config-file "$ROOT/tests/reliability/schemathesis.toml" \
    run "$URL/openapi.json" --url "$URL" --checks all \
    --max-examples "$EXAMPLES" --seed "$SEED" "$@"
}

echo "== with a platform admin's token"
run -H "Authorization: Bearer $TOKEN"
echo "== with a forged token"
run -H "Authorization: Bearer ${TOKEN%?????}AAAAA" --max-examples 10
echo "schemathesis: no failures"
