#!/usr/bin/env bash
# What usage metering costs the gateway (issue 23): two `plinth up` side by side, one metering
# (the default) and one with PLINTH_METERING=off, each with module `bench` (local/benches/
# bench-module.sh) in front of one trivial backend, loaded in turn by the same wrk command,
# rounds alternating which goes first. Prints each round, the medians, the off/on throughput
# ratio and the metered figures checked against what wrk sent.
#
#   bash local/benches/metering.sh                    # needs wrk
#   DURATION=5s ROUNDS=2 bash local/benches/metering.sh
#   PLINTH_BIN=/tmp/plinth BACKEND_BIN=/tmp/bench_backend bash local/benches/metering.sh
#     # binaries built beforehand (no compiler running during the runs)
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${DURATION:-10s}"; CONNECTIONS="${CONNECTIONS:-64}"; THREADS="${THREADS:-2}"; ROUNDS="${ROUNDS:-4}"
BACKEND=19201; ON=19203; OFF=19204
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

export PLINTH_JWT_SECRET="bench-secret-0123456789abcdef0123456789" PLINTH_RATE_LIMIT_SCALE=1000
export PLINTH_USAGE_FLUSH_SECS=1
PLINTH_METERING=on "$PLINTH_BIN" up --port $ON --data-dir "$work/on" > "$work/on.log" 2>&1 & pids+=($!)
on_pid=$!
PLINTH_METERING=off "$PLINTH_BIN" up --port $OFF --data-dir "$work/off" > "$work/off.log" 2>&1 & pids+=($!)
off_pid=$!
GATEWAY=$ON; bench_module
GATEWAY=$OFF; bench_module

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() { # name port pid
  local before after out rps p50 p99 total cpu
  before=$(cpu_ticks "$3")
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $USER" \
    "http://127.0.0.1:$2/api/v1/bench/items/1")
  after=$(cpu_ticks "$3")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out"); p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  cpu=$(python3 -c "print(f'{($after - $before) * 1e6 / $(getconf CLK_TCK) / $total:.1f}')")
  echo "$1|$rps|$p50|$p99|$total|$cpu"
}
on() { run "metering on" $ON $on_pid; }
off() { run "metering off" $OFF $off_pid; }
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order="on off"; else order="off on"; fi
  for path in $order; do echo "$round|$($path)" >> "$work/rows"; done
done
# The figures of the metered gateway, once flushed: every request wrk completed (plus
# bench_module's one), none of the other's.
sleep 2
metered=$(curl -sf -H "Authorization: Bearer $USER" \
  "http://127.0.0.1:$ON/api/v1/tenants/bench/usage?granularity=day" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["tenants"][0]["total"]["requests"])')
unmetered=$(curl -sf -H "Authorization: Bearer $USER" \
  "http://127.0.0.1:$OFF/api/v1/tenants/bench/usage?granularity=day" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["tenants"][0]["total"]["requests"])')
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, $ROUNDS rounds, $(nproc) cores, $(uname -m)"
python3 - "$work/rows" "$metered" "$unmetered" <<'PY'
import statistics, sys
def ms(text):  # wrk prints 812.00us, 1.21ms, 2.03s
    for unit, scale in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
rows = [line.rstrip("\n").split("|") for line in open(sys.argv[1])]
by = {(int(r[0]), r[1]): r for r in rows}
rounds = sorted({int(r[0]) for r in rows})
print("\n| round | gateway | requests/s | p50 | p99 | requests | CPU per request |")
print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
for (n, path) in sorted(by):
    r = by[n, path]
    print(f"| {n} | {path} | {float(r[2]):,.0f} | {ms(r[3]):.2f} ms | {ms(r[4]):.2f} ms | {int(r[5]):,} | {r[6]} µs |")
med = lambda path, i, f=float: statistics.median(f(by[n, path][i]) for n in rounds)
print("\n| gateway | requests/s (median) | p50 | p99 | CPU per request |")
print("| --- | ---: | ---: | ---: | ---: |")
for path in ("metering on", "metering off"):
    print(f"| {path} | {med(path, 2):,.0f} | {med(path, 3, ms):.2f} ms | {med(path, 4, ms):.2f} ms | {med(path, 6):.1f} µs |")
ratios = [float(by[n, "metering on"][2]) / float(by[n, "metering off"][2]) for n in rounds]
cost = 1 - statistics.median(ratios)
print(f"\non/off throughput per round: {', '.join(f'{x:.3f}' for x in ratios)}; "
      f"median {statistics.median(ratios):.3f} (metering costs {cost * 100:.1f} %)")
sent = sum(int(by[n, "metering on"][5]) for n in rounds)
print(f"metered: {int(sys.argv[2]):,} requests; wrk completed {sent:,}, plus bench_module's 1 and "
      f"those in flight when each wrk run ended (at most {len(rounds)} × connections); "
      f"the unmetered gateway counted {sys.argv[3]}")
PY
