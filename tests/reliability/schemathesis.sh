#!/usr/bin/env bash
# Property-based testing of the platform API from its own /openapi.json (schemathesis):
# `plinth up --demo` in a temporary folder (tenant acme with two companies, the example
# modules published, installed and enabled, so that generated requests reach more than a 404),
# then every operation with, in turn:
#   a platform admin's token, acme's tenant admin (in company acme-de), a plain user of a
#   tenant that does not exist, a forged token, and the financial module's API key;
# the path parameters drawn from the known ids most of the time (schemathesis.toml).
# Fails on any 5xx, any answer its document does not admit (status, content type, headers,
# schema), a request sent without credentials that is not refused, a schema-valid request
# refused (but see schemathesis.toml) or an invalid one accepted — unless the baseline below
# lists that failure — and fewer than MIN_CASES generated test cases in all.
#
#   tests/reliability/schemathesis.sh             # 20 examples per operation and phase (CI)
#   EXAMPLES=200 tests/reliability/schemathesis.sh
#
# Needs python3 (schemathesis is installed into a venv under $CARGO_TARGET_DIR when missing)
# and cargo; the demo modules are built on first use.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
EXAMPLES="${EXAMPLES:-20}"
MIN_CASES="${MIN_CASES:-1000}"
SEED="${SEED:-22}"
SCHEMATHESIS_VERSION="4.32.5"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="${VENV:-$CARGO_TARGET_DIR/schemathesis-venv}"
# Contract failures known and accepted for now, each with its reason (RELIABILITY.md): a new
# one fails the run. BASELINE_UPDATE=1 adds this run's failures to it.
BASELINE="$ROOT/tests/reliability/schemathesis-baseline.json"

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "schemathesis: installing $SCHEMATHESIS_VERSION into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

cd "$ROOT"
# The workspace with every target, as `cargo test --workspace` builds it: the same features
# everywhere, so after the tests nothing is built again (a narrower build would resolve
# features differently and rebuild, in time and disk, much of the dependency graph).
cargo build --quiet --workspace --all-targets
PLINTH="$CARGO_TARGET_DIR/debug/plinth"

WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# From the repository's root: the demo publishes examples/*/manifest.json.
"$PLINTH" up --demo --port "$PORT" --data-dir "$WORK/.plinth" >"$WORK/up.out" 2>"$WORK/up.log" &
UP=$!
trap 'kill "$UP" 2>/dev/null; wait "$UP" 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 600); do
  grep -q '^Demo ready' "$WORK/up.out" 2>/dev/null && break
  if ! kill -0 "$UP" 2>/dev/null || grep -q '^demo:' "$WORK/up.out"; then
    echo "schemathesis: plinth up --demo did not start:" >&2
    cat "$WORK/up.out" >&2
    tail -n 30 "$WORK/up.log" >&2
    exit 1
  fi
  sleep 0.5
done
URL="http://127.0.0.1:$PORT"
token() { "$PLINTH" token --data-dir "$WORK/.plinth" "$@"; }
ADMIN="$(token --roles platform:admin)"
TENANT_ADMIN="$(token --tenant acme --company acme-de --roles tenant:admin --sub st-admin)"
STRANGER="$(token --tenant globex --sub st-stranger)"
MODULE_KEY="$(curl -fsS -X POST -H "Authorization: Bearer $ADMIN" "$URL/api/v1/modules/financial/api-keys" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])')"

# schemathesis keeps its cache in the folder it runs in.
cd "$WORK"
cases=0
failed=()
run() {
  local name="$1" examples="$2"
  shift 2
  echo "== $name ($examples examples per operation and phase)"
  local log="$WORK/$name.log"
  local status=0
  "$VENV/bin/schemathesis" --config-file "$ROOT/tests/reliability/schemathesis.toml" \
    run "$URL/openapi.json" --url "$URL" --checks all --max-examples "$examples" \
    --seed "$SEED" --no-color --baseline "$BASELINE" ${BASELINE_UPDATE:+--baseline-update} \
    "$@" >"$log" 2>&1 || status=$?
  sed -n '/^=* SUMMARY/,$p' "$log"
  if [ "$status" -ne 0 ]; then
    sed -n '/^=* FAILURES/,/^=* WARNINGS/p' "$log" | cut -c1-600 | head -n 300 >&2
    failed+=("$name")
  fi
  local generated
  generated="$(sed -n 's/^ *\([0-9]*\) generated.*/\1/p' "$log" | tail -n 1)"
  cases=$((cases + ${generated:-0}))
}

run "platform admin" "$EXAMPLES" -H "Authorization: Bearer $ADMIN"
run "tenant admin" "$((EXAMPLES / 2))" -H "Authorization: Bearer $TENANT_ADMIN"
run "module key" "$((EXAMPLES / 4))" -H "X-Module-API-Key: $MODULE_KEY"
run "another tenant's user" "$((EXAMPLES / 4))" -H "Authorization: Bearer $STRANGER"
run "forged token" "$((EXAMPLES / 4))" -H "Authorization: Bearer ${ADMIN%?????}AAAAA"

echo "schemathesis: $cases test cases generated in all"
if [ ${#failed[@]} -gt 0 ]; then
  echo "schemathesis: failures with: ${failed[*]}" >&2
  exit 1
fi
if [ "$cases" -lt "$MIN_CASES" ]; then
  echo "schemathesis: fewer than $MIN_CASES test cases" >&2
  exit 1
fi
echo "schemathesis: no failures"
