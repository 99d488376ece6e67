#!/usr/bin/env python3
"""Writes fuzz/seeds/<target>/: the starting corpus of each fuzz target, taken from the repo's
own fixtures and examples (manifests, EventBridge pattern cases, the paths of issue 22) and a
few hand-written HTTP messages. Run again when the fixtures change; the files are committed."""
import hashlib, json, pathlib, shutil

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
SEEDS = FUZZ / "seeds"


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    folder = SEEDS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


def main():
    shutil.rmtree(SEEDS, ignore_errors=True)

    manifests = [*ROOT.glob("examples/*/manifest.json"), ROOT / "local/templates/module/manifest.json",
                 *ROOT.glob("module-sdk/tests/fixtures/manifests/**/*.json")]
    for path in manifests:
        write("manifest", path.read_bytes())

    cases = json.loads((ROOT / "module-sdk/src/events/pattern/cases/matching.json").read_text())
    for group in cases["groups"]:
        for case in group["cases"]:
            event = case["event"]
            event = cases["samples"][event] if isinstance(event, str) else event
            write("event_pattern", json.dumps(case["pattern"]).encode() + b"\xff" + json.dumps(event).encode())
    for case in json.loads((ROOT / "module-sdk/src/events/pattern/cases/invalid.json").read_text()):
        write("event_pattern", json.dumps(case["pattern"]))

    paths = ["/", "/invoices/42", "/invoices/", "/reports/2026.12", "/files/a%20b", "/v1.0/x..y",
             "/a-b_c~d/!$&'()*+,=:@", "/x%3a%20y", "/entries/%65xport", "/%7E%41%2D%5f%30",
             "/%2e%2e.x", "/reports/%2E%2e/invoices", "/reports/x%2Finvoices", "/entries/export;x",
             "/public/..;/entries/export", "/entries/export.", "/entries/export%20",
             "/entries/%EF%BD%85xport", "/entries/%c0%ae%c0%ae", "/entries/%252e%252e",
             "/entries/..%00", "/entries/%zz", "//a", "/api/v1/ledger/entries/%65xport"]
    for path in paths:
        write("path_canonicalize", path)

    requests = [
        "GET /api/v1/financial/invoices/42?expand=lines HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer t\r\n\r\n",
        "POST /api/v1/financial/invoices HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nConnection: keep-alive\r\n\r\n{\"total\": 1}",
        "GET /api/v1/ledger/entries/%65xport HTTP/1.1\r\nHost: a\r\nX-Module-API-Key: k\r\nConnection: close\r\n\r\n",
        "PUT /api/v1/warehouse/items/1 HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\nContent_Length: 5\r\n"
        "X_Module_API_Key: k\r\nX-Plinth-Context: forged\r\nx_plinth_tenant: globex\r\nX-Forwarded-For: 1.2.3.4\r\n"
        "X-HTTP-Method-Override: DELETE\r\nContent-Length: 002\r\n\r\n{}",
        "POST /api/v1/financial/invoices HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "GET /api/v1/tenants HTTP/1.1\r\nHost: a\r\n\r\n",
    ]
    for request in requests:
        write("relay_request_head", request)

    responses = [
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ndate: x\r\n\r\n{}",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n",
        "HTTP/1.0 200 Fine\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Type: text/plain\r\n"
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        "HTTP/1.1 204 No Content\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nConnection: close, x-trace\r\nx-trace: 1\r\ncontent-length: 1\r\n\r\nx",
    ]
    for flags in (b"\x00", b"\x01", b"\x02"):
        for response in responses:
            write("relay_response_head", flags + response.encode())

    bodies = [b"4\r\nWiki\r\n6;name=value\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nx-checksum: 1\r\n\r\n",
              b"0\r\n\r\nHTTP/1.1 200 OK\r\n", b"10\r\n0123456789", b"zz\r\n", b"fffffffffffffff\r\n"]
    for stride in (b"\x01", b"\x05", b"\x20"):
        for body in bodies:
            write("relay_chunked", stride + body)


if __name__ == "__main__":
    main()
