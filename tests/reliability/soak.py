#!/usr/bin/env python3
"""The soak's load and its verdict (tests/reliability/soak.sh starts `plinth up --demo` and runs
this): mixed traffic at a fixed rate for a duration, then every acknowledged write read back.

Traffic, picked by weight at each tick of the fixed rate:
- through the gateway, to the demo modules: invoices listed, created, read and paid (a paid
  invoice is a `financial.invoice.paid` event, which the notifications module records), stock
  and notifications listed, and requests with a forged token (401);
- configuration writes (acme's financial `payment_terms_days`, one writer, in order);
- role changes (a role's grants replaced, a user's roles assigned);
- companies created (each a `company.created` event);
beside it, one loop installing and uninstalling a module of its own (`soak`, served by a stub
backend here), as fast as the installer goes.

Fails on: any 5xx the platform caused (a gateway 5xx naming the backend is counted apart, as
the backend's), any status the API does not answer for that request, a lost write (an
acknowledged invoice, payment event, configuration, role, assignment or company not read back
at the end), an install or uninstall that fails, or the plinth process's memory growing (RSS
sampled every 2 s; after the first quarter of the run, the warm-up, the peak of the last
quarter may pass the peak of the second quarter by at most 10 % or 16 MiB, whichever is more).
"""
import argparse
import http.client
import json
import random
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TENANT = "acme"
FINANCIAL_PERMISSIONS = ["financial:accounts.read", "financial:invoices.read",
                         "financial:invoices.write", "financial:reports.read"]
SOAK_MANIFEST = {
    "name": "soak", "display_name": "Soak", "version": "1.0.0",
    "backend": {"type": "microservice", "runtime": "python", "framework": "http.server",
                "entry_point": "soak", "image": "soak:1.0.0", "health_check": "/health",
                "api_prefix": "/api/v1/soak"},
    "dependencies": {"platform_version": ">=2.0.0"},
    "permissions": [{"code": "soak:items.read", "description": "View items"}],
    "routes": [{"path": "/items", "methods": ["GET"], "permission": "soak:items.read"}],
    "subscription_tier": "free",
}


class Stub(BaseHTTPRequestHandler):
    """The `soak` module's backend: 200 `{}` to everything."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server's name)
        body = b"{}"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_PUT = do_DELETE = do_GET

    def log_message(self, *_):
        pass


class Api:
    """One keep-alive connection per thread."""

    def __init__(self, url):
        self.host, self.port = url.removeprefix("http://").split(":")
        self.local = threading.local()

    def call(self, method, path, body=None, token=None):
        headers = {"content-type": "application/json"} if body is not None else {}
        if token:
            headers["authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection(self.host, int(self.port), timeout=30)
            try:
                start = time.monotonic()
                conn.request(method, path, body=data, headers=headers)
                response = conn.getresponse()
                raw = response.read()
                elapsed = time.monotonic() - start
                if response.getheader("connection", "").lower() == "close":
                    conn.close()
                    self.local.conn = None
                try:
                    parsed = json.loads(raw) if raw else None
                except ValueError:
                    parsed = raw.decode(errors="replace")
                return response.status, parsed, elapsed
            except (http.client.HTTPException, OSError):
                conn.close()
                self.local.conn = None
                # A kept connection the server closed meanwhile: once more on a new one.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


class Soak:
    def __init__(self, args):
        self.args = args
        self.api = Api(args.url)
        self.lock = threading.Lock()
        self.counts = {}
        self.latencies = []
        self.failures = []
        self.backend_5xx = 0
        self.invoices = {}  # number -> total, acknowledged
        self.unpaid = []
        self.paid = set()
        self.companies = set()
        self.config_lock = threading.Lock()
        self.config_n = 0
        self.config_acked = None
        self.roles = {}  # role -> permissions, last acknowledged
        self.role_locks = {f"soak-r{k}": threading.Lock() for k in range(4)}
        self.users = {}  # user -> roles, last acknowledged
        self.user_locks = {f"soak-u{k}": threading.Lock() for k in range(8)}
        self.seq = 0
        self.cycles = 0
        self.rss = []
        self.behind = 0

    # -- bookkeeping

    def next(self):
        with self.lock:
            self.seq += 1
            return self.seq

    def fail(self, message):
        with self.lock:
            self.failures.append(message)

    def request(self, kind, method, path, body=None, token=None, expect=(200,), gateway=False):
        try:
            status, answer, elapsed = self.api.call(method, path, body, token or self.args.token)
        except (http.client.HTTPException, OSError) as e:
            self.fail(f"{kind}: {method} {path}: no answer ({e})")
            return None, None
        with self.lock:
            self.counts.setdefault(kind, {}).setdefault(status, 0)
            self.counts[kind][status] += 1
            self.latencies.append(elapsed)
        if status >= 500 and gateway and "did not answer" in json.dumps(answer):
            with self.lock:
                self.backend_5xx += 1
            return status, answer
        if status not in expect:
            self.fail(f"{kind}: {method} {path} answered {status}, not {expect}: {str(answer)[:300]}")
        return status, answer

    # -- the traffic

    def list_invoices(self):
        self.request("gateway", "GET", "/api/v1/financial/invoices", gateway=True)

    def list_stock(self):
        self.request("gateway", "GET", "/api/v1/warehouse/items", gateway=True)

    def list_sent(self):
        self.request("gateway", "GET", "/api/v1/notifications/sent", gateway=True)

    def forged(self):
        self.request("gateway", "GET", "/api/v1/financial/invoices", token=self.args.token[:-5] + "AAAAA",
                     expect=(401,), gateway=True)

    def create_invoice(self):
        n = self.next()
        status, invoice = self.request("gateway", "POST", "/api/v1/financial/invoices",
                                       {"customer": f"soak-{n}", "amount": 10 + n % 90},
                                       expect=(201,), gateway=True)
        if status == 201:
            with self.lock:
                self.invoices[invoice["number"]] = invoice["total"]
                self.unpaid.append(invoice["number"])

    def read_invoice(self):
        with self.lock:
            number = random.choice(list(self.invoices)) if self.invoices else None
        if number:
            self.request("gateway", "GET", f"/api/v1/financial/invoices/{number}", gateway=True)

    def pay_invoice(self):
        with self.lock:
            number = self.unpaid.pop(0) if self.unpaid else None
        if number:
            status, _ = self.request("gateway", "POST", f"/api/v1/financial/invoices/{number}/payments",
                                     {"amount": self.invoices[number]}, gateway=True)
            if status == 200:
                with self.lock:
                    self.paid.add(number)

    def write_config(self):
        with self.config_lock:
            self.config_n += 1
            days = 1 + self.config_n % 365
            config = {"currency": "EUR", "tax_rate": 0.2, "invoice_prefix": "ACME",
                      "payment_terms_days": days}
            status, _ = self.request("config", "PUT", f"/api/v1/tenants/{TENANT}/modules/financial",
                                     {"configuration": config})
            if status == 200:
                self.config_acked = days

    def change_role(self):
        role = random.choice(list(self.role_locks))
        permissions = random.sample(FINANCIAL_PERMISSIONS, random.randint(1, len(FINANCIAL_PERMISSIONS)))
        with self.role_locks[role]:
            status, _ = self.request("roles", "PUT", f"/api/v1/tenants/{TENANT}/roles/{role}",
                                     {"permissions": permissions}, expect=(200, 201))
            if status in (200, 201):
                self.roles[role] = set(permissions)

    def assign_roles(self):
        with self.lock:
            known = list(self.roles)
        if not known:
            return self.change_role()
        user = random.choice(list(self.user_locks))
        roles = random.sample(known, random.randint(1, len(known)))
        with self.user_locks[user]:
            status, _ = self.request("roles", "PUT", f"/api/v1/tenants/{TENANT}/users/{user}/roles",
                                     {"roles": roles, "companies": {}})
            if status == 200:
                self.users[user] = set(roles)

    def create_company(self):
        company = f"soak-c{self.next()}"
        status, _ = self.request("companies", "POST", f"/api/v1/tenants/{TENANT}/companies",
                                 {"id": company, "name": f"Soak {company}"}, expect=(201,))
        if status == 201:
            with self.lock:
                self.companies.add(company)

    MIX = [  # (weight, job)
        (20, list_invoices), (10, list_stock), (8, list_sent), (5, forged), (15, create_invoice),
        (15, read_invoice), (10, pay_invoice), (6, write_config), (3, change_role),
        (3, assign_roles), (5, create_company),
    ]

    # -- installs and uninstalls, beside the traffic

    def wait_status(self, wanted, deadline):
        while time.monotonic() < deadline:
            status, installation = self.request("installs", "GET", "/api/v1/modules/soak/installation",
                                                token=self.args.admin_token)
            state = installation.get("status") if isinstance(installation, dict) else None
            if status == 200 and state == wanted:
                return True
            if state == "failed":
                self.fail(f"installs: the soak module's operation failed: {str(installation)[:400]}")
                return False
            time.sleep(0.25)
        self.fail(f"installs: the soak module not {wanted} in time")
        return False

    def install_loop(self, stop, endpoint):
        admin = self.args.admin_token
        self.request("installs", "POST", "/api/v1/modules", SOAK_MANIFEST, token=admin, expect=(200, 201))
        while not stop.is_set():
            status, _ = self.request("installs", "POST", "/api/v1/modules/soak/install",
                                     {"version": "1.0.0", "endpoint": endpoint}, token=admin, expect=(202,))
            if status != 202 or not self.wait_status("installed", time.monotonic() + 60):
                return
            status, _ = self.request("installs", "DELETE", "/api/v1/modules/soak/installation",
                                     token=admin, expect=(202,))
            if status != 202 or not self.wait_status("uninstalled", time.monotonic() + 60):
                return
            with self.lock:
                self.cycles += 1

    # -- memory

    def sample_rss(self, stop):
        start = time.monotonic()
        while not stop.is_set():
            try:
                with open(f"/proc/{self.args.pid}/status") as status:
                    kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
                self.rss.append((time.monotonic() - start, kb / 1024))
            except (OSError, StopIteration):
                self.fail("memory: the plinth process is gone")
                return
            stop.wait(2)

    # -- the run

    def run(self):
        stub = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
        threading.Thread(target=stub.serve_forever, daemon=True).start()
        endpoint = f"http://127.0.0.1:{stub.server_address[1]}"
        stop = threading.Event()
        side = [threading.Thread(target=self.install_loop, args=(stop, endpoint)),
                threading.Thread(target=self.sample_rss, args=(stop,))]
        for thread in side:
            thread.start()
        weights = [w for w, _ in self.MIX]
        jobs = [job for _, job in self.MIX]
        interval = 1 / self.args.rate
        started = time.monotonic()
        ticks = 0
        pending = []
        with ThreadPoolExecutor(max_workers=self.args.workers) as pool:
            while (now := time.monotonic()) - started < self.args.duration:
                due = started + ticks * interval
                if due > now:
                    time.sleep(due - now)
                elif now - due > 1:
                    self.behind += 1
                pending = [f for f in pending if not f.done()]
                if len(pending) >= self.args.workers * 4:
                    self.behind += 1  # the platform is not keeping up: the tick is dropped
                else:
                    pending.append(pool.submit(random.choices(jobs, weights)[0], self))
                ticks += 1
        elapsed = time.monotonic() - started
        stop.set()
        for thread in side:
            thread.join()
        return ticks, elapsed

    # -- the verdict

    def read_back(self):
        admin = self.args.admin_token
        for number in sorted(self.invoices):
            status, _ = self.request("read-back", "GET", f"/api/v1/financial/invoices/{number}", gateway=True)
            if status != 200:
                self.fail(f"lost write: invoice {number}")
        for company in sorted(self.companies):
            status, _ = self.request("read-back", "GET", f"/api/v1/tenants/{TENANT}/companies/{company}")
            if status != 200:
                self.fail(f"lost write: company {company}")
        if self.config_acked is not None:
            _, config = self.request("read-back", "GET",
                                     f"/api/v1/tenants/{TENANT}/modules/financial/config?company=acme-us")
            days = (config or {}).get("configuration", {}).get("payment_terms_days")
            if days != self.config_acked:
                self.fail(f"lost write: payment_terms_days is {days}, the last acknowledged {self.config_acked}")
        for user, roles in sorted(self.users.items()):
            _, assignment = self.request("read-back", "GET", f"/api/v1/tenants/{TENANT}/users/{user}/roles")
            if set((assignment or {}).get("roles", [])) != roles:
                self.fail(f"lost write: {user}'s roles are {assignment}, acknowledged {sorted(roles)}")
            granted = set().union(*(self.roles[r] for r in roles))
            for permission in FINANCIAL_PERMISSIONS:
                _, verdict = self.request("read-back", "POST", "/api/v1/rbac/verify",
                                          {"tenant_id": TENANT, "user_id": user, "permission": permission})
                if (verdict or {}).get("has_permission") != (permission in granted):
                    self.fail(f"lost write: {user} {'lacks' if permission in granted else 'has'} {permission}")
        # Events are delivered after the answer: a paid invoice's notification may take a moment.
        deadline = time.monotonic() + 30
        while True:
            _, sent = self.request("read-back", "GET", "/api/v1/notifications/sent", gateway=True)
            subjects = " ".join(n.get("subject", "") for n in sent or [] if isinstance(n, dict))
            missing = [n for n in self.paid if f"Invoice {n} " not in subjects]
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(1)
        if missing:
            self.fail(f"lost event: {len(missing)} paid invoices never notified, e.g. {missing[:3]}")

    def memory(self):
        post = [(t, mb) for t, mb in self.rss if t >= self.args.duration / 4]
        if len(post) < 6:
            return None
        quarter = len(post) // 3
        early = max(mb for _, mb in post[:quarter])
        late = max(mb for _, mb in post[-quarter:])
        bound = early + max(16, early * 0.10)
        if late > bound:
            self.fail(f"memory: RSS peaked at {late:.1f} MiB in the last quarter, past {bound:.1f} MiB "
                      f"(the second quarter's {early:.1f} MiB + max(16 MiB, 10 %))")
        return early, late, bound


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True, help="acme's admin, in company acme-de")
    parser.add_argument("--admin-token", required=True, help="a platform admin's")
    parser.add_argument("--pid", required=True, type=int, help="the plinth process")
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--rate", type=float, default=50, help="requests per second, besides installs")
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    soak = Soak(args)
    ticks, elapsed = soak.run()
    soak.read_back()
    memory = soak.memory()

    total = sum(sum(by.values()) for by in soak.counts.values())
    print(f"soak: {elapsed:.0f} s at {args.rate:g} requests/s asked: {ticks} ticks, {soak.behind} late or dropped")
    print(f"soak: {total} requests in all ({total / elapsed:.1f}/s), {soak.cycles} install+uninstall cycles")
    for kind, by in sorted(soak.counts.items()):
        print(f"  {kind:10} " + ", ".join(f"{status}: {n}" for status, n in sorted(by.items())))
    if soak.latencies:
        ordered = sorted(soak.latencies)
        p99 = ordered[int(len(ordered) * 0.99) - 1]
        print(f"soak: latency median {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    print(f"soak: {len(soak.invoices)} invoices ({len(soak.paid)} paid, each an event), "
          f"{len(soak.companies)} companies, config version {soak.config_acked}, "
          f"{len(soak.roles)} roles, {len(soak.users)} users assigned: all read back"
          if not soak.failures else "soak: read-back done")
    print(f"soak: 5xx caused by a backend: {soak.backend_5xx}")
    if soak.rss:
        print(f"soak: plinth RSS first {soak.rss[0][1]:.1f} MiB, max {max(mb for _, mb in soak.rss):.1f} MiB, "
              f"last {soak.rss[-1][1]:.1f} MiB ({len(soak.rss)} samples)")
    if memory:
        print("soak: RSS peak second quarter {:.1f} MiB, last quarter {:.1f} MiB (bound {:.1f} MiB)".format(*memory))
    if soak.behind > ticks * 0.01:
        soak.fail(f"load: {soak.behind} of {ticks} ticks late or dropped: the rate was not held")
    if soak.failures:
        print(f"soak: {len(soak.failures)} failures:", file=sys.stderr)
        for failure in soak.failures[:30]:
            print(f"  {failure}", file=sys.stderr)
        sys.exit(1)
    print("soak: passed")


if __name__ == "__main__":
    main()
