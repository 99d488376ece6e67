#!/usr/bin/env bash
# Instructions per proxied request, counted by callgrind: (b) nginx proxy_pass and (c) the
# Plinth gateway (JWT + enablement + permission + routing), each under
# `valgrind --tool=callgrind` in turn, the same keep-alive load from Python's http.client.
# Counts are user-space instructions of the proxy alone (no kernel, no backend, no load tool)
# and repeat to within ~2% whatever else the machine is doing, unlike gateway.sh's timings.
#
#   bash local/benches/gateway-instructions.sh        # needs valgrind and nginx
#   REQUESTS=8000 bash local/benches/gateway-instructions.sh
#   PROFILE=profiling OUT=/tmp/cg bash local/benches/gateway-instructions.sh
#     # symbols kept (Cargo.toml's [profile.profiling]); OUT keeps the callgrind files for
#     # callgrind_annotate
set -euo pipefail
cd "$(dirname "$0")/../.."
REQUESTS="${REQUESTS:-4000}"; PROFILE="${PROFILE:-release}"; OUT="${OUT:-}"
BACKEND=19101; NGINX=19102; GATEWAY=19103
target="${CARGO_TARGET_DIR:-$PWD/target}"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$OUT" ]; then mkdir -p "$OUT" && cp "$work"/*.out* "$OUT"/ 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
. local/benches/bench-module.sh

cargo build -q --profile "$PROFILE" -p plinth-local --bin plinth --example bench_backend
PORT=$BACKEND "$target/$PROFILE/examples/bench_backend" & pids+=($!)

# `load N PORT [TOKEN]`: N requests over four keep-alive connections, each answered 200.
load() {
  python3 - "$@" <<'PY'
import http.client, sys, threading
n, port = int(sys.argv[1]), int(sys.argv[2])
headers = {"Authorization": f"Bearer {sys.argv[3]}"} if len(sys.argv) > 3 else {}
def client(count):
    connection = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(count):
        connection.request("GET", "/api/v1/bench/items/1", headers=headers)
        response = connection.getresponse()
        body = response.read()
        assert response.status == 200, (response.status, body)
threads = [threading.Thread(target=client, args=(n // 4,)) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
PY
}
# `count NAME PID PORT [TOKEN]`: warm up, zero the counters, run the load, dump, print.
count() {
  load 400 "$3" ${4:+"$4"}
  callgrind_control -z "$2" > /dev/null 2>&1
  load "$REQUESTS" "$3" ${4:+"$4"}
  callgrind_control -d "$2" > /dev/null 2>&1
  sleep 1
  local total
  total=$(cat "$work/$1".out* | awk '/^(summary|totals):/ {t = $2} END {print t}')
  echo "$1 $((total / REQUESTS))"
}

nginx_conf "$work/nginx.conf" "daemon off; master_process off; worker_processes 1;"
valgrind --tool=callgrind --callgrind-out-file="$work/nginx.out" nginx -c "$work/nginx.conf" > /dev/null 2>&1 & pids+=($!)
nginx_pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$NGINX/" > /dev/null && break; sleep 0.2; done
b=$(count nginx "$nginx_pid" $NGINX)
kill "$nginx_pid"

export PLINTH_JWT_SECRET="bench-secret-0123456789abcdef0123456789" PLINTH_RATE_LIMIT_SCALE=1000
valgrind --tool=callgrind --callgrind-out-file="$work/plinth.out" "$target/$PROFILE/plinth" up \
  --port $GATEWAY --data-dir "$work/plinth" > "$work/plinth.log" 2>&1 & pids+=($!)
plinth_pid=$!
bench_module
c=$(count plinth "$plinth_pid" $GATEWAY "$USER")

echo "callgrind, $REQUESTS requests over 4 keep-alive connections, $(uname -m)"
echo
echo "| proxy | instructions per request |"
echo "| --- | ---: |"
echo "| (b) nginx proxy_pass | ${b#* } |"
echo "| (c) Plinth gateway | ${c#* } |"
python3 -c "print(f'\nc/b instructions: {${c#* } / ${b#* }:.2f}x')"
