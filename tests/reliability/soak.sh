#!/usr/bin/env bash
# Soak: `plinth up --demo` in a temporary data folder, then mixed traffic at a fixed rate for
# a duration (tests/reliability/soak.py: gateway requests to the demo modules, configuration
# writes, role changes, companies, events, installs and uninstalls), then every acknowledged
# write read back and the plinth process's memory judged. RELIABILITY.md ("Soak") says what
# fails it and the figures of the last run.
#
#   tests/reliability/soak.sh          # 10 minutes (600 s) at 50 requests/s
#   tests/reliability/soak.sh 60       # CI's short budget
#   RATE=100 tests/reliability/soak.sh 600
#
# Needs python3 (standard library only) and cargo; the demo modules are built on first use.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DURATION="${1:-600}"
RATE="${RATE:-50}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

cd "$ROOT"
# The workspace with every target, as `cargo test --workspace` builds it: the same features
# everywhere, so after the tests nothing is built again (a narrower build would resolve
# features differently and rebuild, in time and disk, much of the dependency graph).
cargo build --quiet --workspace --all-targets
PLINTH="$CARGO_TARGET_DIR/debug/plinth"

WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# From the repository's root: the demo publishes examples/*/manifest.json and runs their
# dev_command there.
"$PLINTH" up --demo --port "$PORT" --data-dir "$WORK/.plinth" >"$WORK/up.out" 2>"$WORK/up.log" &
UP=$!
cleanup() {
  kill -TERM "$UP" 2>/dev/null && wait "$UP" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

for _ in $(seq 1 600); do
  grep -q '^Demo ready' "$WORK/up.out" 2>/dev/null && break
  if ! kill -0 "$UP" 2>/dev/null || grep -q '^demo:' "$WORK/up.out"; then
    echo "soak: plinth up --demo did not start:" >&2
    cat "$WORK/up.out" >&2
    tail -n 30 "$WORK/up.log" >&2
    exit 1
  fi
  sleep 0.5
done
grep -q '^Demo ready' "$WORK/up.out" || { echo "soak: the demo was not ready in 5 minutes" >&2; exit 1; }
TOKEN="$(sed -n 's/^ *export TOKEN=//p' "$WORK/up.out")"
ADMIN="$("$PLINTH" token --roles platform:admin --data-dir "$WORK/.plinth")"

status=0
python3 "$ROOT/tests/reliability/soak.py" --url "http://127.0.0.1:$PORT" --token "$TOKEN" \
  --admin-token "$ADMIN" --pid "$UP" --duration "$DURATION" --rate "$RATE" || status=$?
if [ "$status" -ne 0 ]; then
  echo "soak: plinth's log (last lines):" >&2
  grep -E 'ERROR|WARN' "$WORK/up.log" | tail -n 20 >&2 || true
fi
exit "$status"
