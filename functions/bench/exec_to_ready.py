#!/usr/bin/env python3
"""Exec-to-ready of each Lambda binary: the time from starting the `bootstrap` to its first
`GET /2018-06-01/runtime/invocation/next` on a local stub of the Lambda runtime API (init done,
ready for the first event). Prints the median and the worst of RUNS starts per binary.

usage: exec_to_ready.py DIR_OF_LAMBDA_OUTPUT [RUNS [NAME…]]   (DIR/<name>/bootstrap, as cargo lambda builds)
NAMEs default to the eight platform functions; name others (minimal-axum, sdk-floor: functions/bench/)
to time them in the same run.
"""
import base64, http.server, os, statistics, subprocess, sys, threading, time

NAMES = [
    "registry-api", "authorizer", "config-resolver", "installer", "health-checker", "ecr-events",
    "usage", "rollout-driver",
]
first_next = threading.Event()
ready_at = [0.0]


class Runtime(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if "/runtime/invocation/next" in self.path and not first_next.is_set():
            ready_at[0] = time.perf_counter()
            first_next.set()
        time.sleep(5)  # hold the long poll; the process is killed meanwhile

    def log_message(self, *args):
        pass


def context_key():
    der = subprocess.run(
        "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256"
        " | openssl pkcs8 -topk8 -nocrypt -outform DER",
        shell=True, check=True, capture_output=True).stdout
    return base64.b64encode(der).decode()


def environment(port):
    env = dict(os.environ)
    env.update({
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}", "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "bench", "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "PLINTH_TABLE": "plinth-dev", "PLINTH_EVENT_BUS": "plinth-dev",
        "PLINTH_JWT_SECRET": "bench-secret-of-at-least-thirty-two-bytes",
        "PLINTH_CONTEXT_KEY": context_key(), "PLINTH_URL": "https://example.invalid",
        "PLINTH_LAMBDA_ROLE": "arn:aws:iam::123456789012:role/plinth-module-lambda",
    })
    return env


def once(binary, env):
    first_next.clear()
    start = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ok = first_next.wait(10)
    proc.kill()
    proc.wait()
    if not ok:
        sys.exit(f"{binary} never asked for an invocation")
    return (ready_at[0] - start) * 1000


def main():
    out, runs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Runtime)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = environment(server.server_address[1])
    print("| function | exec to ready, median | worst | runs |")
    print("| --- | --- | --- | --- |")
    for name in sys.argv[3:] or NAMES:
        times = [once(os.path.join(out, name, "bootstrap"), env) for _ in range(runs)]
        print(f"| {name} | {statistics.median(times):.1f} ms | {max(times):.1f} ms | {runs} |")


if __name__ == "__main__":
    main()
