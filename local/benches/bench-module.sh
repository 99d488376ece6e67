# Shared by the gateway benchmarks (sourced, with $work, $BACKEND, $NGINX and $GATEWAY set).
#
# `bench_module` starts nothing; with `plinth up`
# listening on $GATEWAY and the backend on $BACKEND, it publishes and installs module `bench`
# (one catch-all route needing `bench:items.read`), creates tenant `bench` on the enterprise
# tier and enables the module, and sets $OP (platform admin) and $USER (bench's tenant admin).

# Tokens from Python's standard library: any HS256 JWT library works with the same secret.
token() {
  python3 - "$@" <<'PY'
import base64, hashlib, hmac, json, os, sys, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
claims = json.loads(sys.argv[1]); claims["exp"] = int(time.time()) + 3600
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()); body = b64(json.dumps(claims).encode())
sig = hmac.new(os.environ["PLINTH_JWT_SECRET"].encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
print(f"{head}.{body}.{b64(sig)}")
PY
}

api() { curl -sf -X "$1" -H "Authorization: Bearer $2" -H 'Content-Type: application/json' "http://127.0.0.1:$GATEWAY$3" ${4:+-d "$4"} > /dev/null; }

bench_module() {
  OP=$(token '{"sub": "bench-operator", "roles": ["platform:admin"]}')
  USER=$(token '{"sub": "bench-user", "tenant_id": "bench", "roles": ["tenant:admin"]}')
  # Up to a minute: under valgrind the platform starts slowly.
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$GATEWAY/health" > /dev/null && break; sleep 0.2; done
  api POST "$OP" /api/v1/modules '{"name": "bench", "display_name": "Bench", "version": "1.0.0",
    "backend": {"type": "microservice", "api_prefix": "/api/v1/bench", "health_check": "/health"},
    "permissions": ["bench:items.read"],
    "routes": [{"path": "/{proxy+}", "methods": ["ANY"], "permission": "bench:items.read"}]}'
  api POST "$OP" /api/v1/modules/bench/install "{\"version\": \"1.0.0\", \"endpoint\": \"http://127.0.0.1:$BACKEND\"}"
  for _ in $(seq 1 300); do curl -s -H "Authorization: Bearer $OP" "http://127.0.0.1:$GATEWAY/api/v1/modules/bench/installation" | grep -q '"status":"installed"' && break; sleep 0.2; done
  api POST "$OP" /api/v1/tenants '{"id": "bench", "name": "Bench", "subscription_tier": "enterprise"}'
  api PUT "$USER" /api/v1/tenants/bench/modules/bench '{}'
  curl -sf -H "Authorization: Bearer $USER" "http://127.0.0.1:$GATEWAY/api/v1/bench/items/1" | grep -q ok
}

# `nginx_conf FILE PROCESSES`: nginx proxy_pass from 127.0.0.1:$NGINX to the backend on
# $BACKEND with upstream keep-alive; PROCESSES is the process directives that come first.
nginx_conf() {
  cat > "$1" <<NGINX
$2
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  upstream backend { server 127.0.0.1:$BACKEND; keepalive 128; }
  server {
    listen 127.0.0.1:$NGINX;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGINX
}
