#!/usr/bin/env bash
# Usage metering's cost in instructions per proxied request (issue 23): `plinth up` under
# `valgrind --tool=callgrind` twice in turn — metering on (the default), then
# PLINTH_METERING=off — each with module `bench` (bench-module.sh) in front of one trivial
# backend and the same keep-alive load as gateway-instructions.sh. Instructions hold still on a
# shared machine where wrk's throughput does not (metering.sh has the timings).
#
#   bash local/benches/metering-instructions.sh        # needs valgrind
#   REQUESTS=8000 PLINTH_BIN=/tmp/plinth BACKEND_BIN=/tmp/bench_backend bash local/benches/metering-instructions.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
REQUESTS="${REQUESTS:-4000}"
BACKEND=19301; GATEWAY=19303
target="${CARGO_TARGET_DIR:-$PWD/target}"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
. local/benches/bench-module.sh

if [ -z "${PLINTH_BIN:-}" ] || [ -z "${BACKEND_BIN:-}" ]; then
  cargo build -q --release -p plinth-local --bin plinth --example bench_backend
fi
PLINTH_BIN="${PLINTH_BIN:-$target/release/plinth}"
BACKEND_BIN="${BACKEND_BIN:-$target/release/examples/bench_backend}"
PORT=$BACKEND "$BACKEND_BIN" & pids+=($!)

# `load N`: N requests over four keep-alive connections, each answered 200.
load() {
  python3 - "$1" "$GATEWAY" "$USER" <<'PY'
import http.client, sys, threading
n, port, token = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def client(count):
    connection = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(count):
        connection.request("GET", "/api/v1/bench/items/1", headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        body = response.read()
        assert response.status == 200, (response.status, body)
threads = [threading.Thread(target=client, args=(n // 4,)) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
PY
}

export PLINTH_JWT_SECRET="bench-secret-0123456789abcdef0123456789" PLINTH_RATE_LIMIT_SCALE=1000
# One flush in the counted window at most: the flushes' share is what a 10 s interval costs.
export PLINTH_USAGE_FLUSH_SECS=10
# `count MODE`: a fresh platform with PLINTH_METERING=MODE, warmed up, counters zeroed, loaded.
count() {
  PLINTH_METERING=$1 valgrind --tool=callgrind --callgrind-out-file="$work/$1.out" "$PLINTH_BIN" up \
    --port $GATEWAY --data-dir "$work/$1" > "$work/$1.log" 2>&1 & pids+=($!)
  local pid=$!
  bench_module
  load 400
  callgrind_control -z "$pid" > /dev/null 2>&1
  load "$REQUESTS"
  callgrind_control -d "$pid" > /dev/null 2>&1
  sleep 1
  local total
  total=$(cat "$work/$1".out* | awk '/^(summary|totals):/ {t = $2} END {print t}')
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$((total / REQUESTS))"
}
# Alternating order (on off, then off on, …): a platform started later is no longer favoured.
ROUNDS="${ROUNDS:-2}"
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order="on off"; else order="off on"; fi
  for mode in $order; do echo "$round $mode $(count "$mode")" >> "$work/rows"; done
done
echo "callgrind, $REQUESTS requests over 4 keep-alive connections, $ROUNDS rounds, $(uname -m)"
python3 - "$work/rows" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
print("\n| round | gateway | instructions per request |")
print("| ---: | --- | ---: |")
for n, mode, count in rows:
    print(f"| {n} | metering {mode} | {int(count):,} |")
on = statistics.median(int(c) for _, m, c in rows if m == "on")
off = statistics.median(int(c) for _, m, c in rows if m == "off")
print(f"\nmedian: on {on:,.0f}, off {off:,.0f}; metering costs {(on - off) / off * 100:+.1f} % instructions per request")
PY
