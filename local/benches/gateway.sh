#!/usr/bin/env bash
# The gateway benchmark: one trivial backend called (a) directly, (b) through nginx
# proxy_pass, (c) through the Plinth gateway (JWT + enablement + permission + routing), with
# the same wrk settings. Prints a Markdown table for BENCHMARKS.md.
#
#   bash local/benches/gateway.sh            # needs wrk and nginx (apt-get install wrk nginx-light)
#   DURATION=20s CONNECTIONS=64 ROUNDS=4 bash local/benches/gateway.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${DURATION:-10s}"; CONNECTIONS="${CONNECTIONS:-64}"; THREADS="${THREADS:-2}"; ROUNDS="${ROUNDS:-4}"
BACKEND=19001; NGINX=19002; GATEWAY=19003
target="${CARGO_TARGET_DIR:-$PWD/target}"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
. local/benches/bench-module.sh

cargo build -q --release -p plinth-local --bin plinth --example bench_backend
PORT=$BACKEND "$target/release/examples/bench_backend" & pids+=($!)

nginx_conf "$work/nginx.conf" "worker_processes auto;"
nginx -c "$work/nginx.conf"

export PLINTH_JWT_SECRET="bench-secret-0123456789abcdef0123456789" PLINTH_RATE_LIMIT_SCALE=1000
"$target/release/plinth" up --port $GATEWAY --data-dir "$work/plinth" > "$work/plinth.log" 2>&1 & pids+=($!)
bench_module

cpu_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }
run() { # name url proxy-pids [header]
  local before after; before=$(cpu_ticks $3)
  local out; out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency ${4:+-H "$4"} "$2")
  after=$(cpu_ticks $3)
  local rps p50 p99 errors cpu total
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out"); p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx/ {print $5}' <<<"$out"); errors=${errors:-0}
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  # CPU time (user + system) the proxy spent per request; the backend's for (a).
  cpu=$(python3 -c "print(f'{($after - $before) * 1e6 / $(getconf CLK_TCK) / $total:.1f} µs')")
  echo "$1|$rps|$p50|$p99|$errors|$cpu"
}
backend_pid=${pids[0]}; plinth_pid=${pids[1]}
nginx_pids=$(pgrep -P "$(cat "$work/nginx.pid")" | tr '\n' ' ')
a() { run "(a) direct" "http://127.0.0.1:$BACKEND/api/v1/bench/items/1" "$backend_pid"; }
b() { run "(b) nginx proxy_pass" "http://127.0.0.1:$NGINX/api/v1/bench/items/1" "$nginx_pids"; }
c() { run "(c) Plinth gateway" "http://127.0.0.1:$GATEWAY/api/v1/bench/items/1" "$plinth_pid" "Authorization: Bearer $USER"; }
# Rounds alternate the order (a b c, then c b a), so that a machine getting faster or slower
# during the run favours no path; the summary takes each column's median over the rounds.
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order="a b c"; else order="c b a"; fi
  for path in $order; do echo "$round|$($path)" >> "$work/rows"; done
done
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, $ROUNDS rounds, $(nproc) cores, $(uname -m)"
python3 - "$work/rows" <<'PY'
import statistics, sys
def ms(text):  # wrk prints 812.00us, 1.21ms, 2.03s
    for unit, scale in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
rows = [line.rstrip("\n").split("|") for line in open(sys.argv[1])]
paths = list(dict.fromkeys(row[1] for row in rows))
by = {(int(r[0]), r[1]): r for r in rows}
rounds = sorted({int(r[0]) for r in rows})
print("\n| round | path | requests/s | p50 | p99 | non-2xx | CPU per request |")
print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
for n, path in sorted(by, key=lambda k: (k[0], paths.index(k[1]))):
    r = by[n, path]
    print(f"| {n} | {path} | {float(r[2]):,.0f} | {ms(r[3]):.2f} ms | {ms(r[4]):.2f} ms | {r[5]} | {r[6]} |")
med = lambda path, f: statistics.median(f(by[n, path]) for n in rounds)
print("\nMedian over the rounds (CPU per request: the backend's for a, the proxy's for b and c):\n")
print("| path | requests/s | p50 | p99 | non-2xx | CPU per request |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for path in paths:
    print(f"| {path} | {med(path, lambda r: float(r[2])):,.0f} | {med(path, lambda r: ms(r[3])):.2f} ms"
          f" | {med(path, lambda r: ms(r[4])):.2f} ms | {sum(int(by[n, path][5]) for n in rounds)}"
          f" | {med(path, lambda r: float(r[6].split()[0])):.1f} µs |")
a, b, c = paths
ratio = lambda x, y: [float(by[n, x][2]) / float(by[n, y][2]) for n in rounds]
print(f"\nc/a throughput: {statistics.median(ratio(c, a)):.2f}x   c/b throughput: "
      f"{statistics.median(ratio(c, b)):.2f}x (per round: {', '.join(f'{x:.2f}' for x in ratio(c, b))})")
PY
