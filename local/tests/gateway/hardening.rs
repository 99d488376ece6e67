//! Issue 22's transport findings, each against a recording backend and on both forwarding
//! paths (the relay, and hyper's server, which takes a request the relay does not: here one
//! whose `Connection` names a field, or a chunked upload): the path is decided and forwarded
//! in one canonical form, a client's broken or stalled body is the client's fault, and the
//! fields only the gateway may send never come from a client.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderValue, Method, StatusCode};
use plinth_local::gateway::Gateway;
use plinth_registry::gateway::{Decide, Forward, GatewayRequest, Upstream};
use plinth_registry::{Error, Result};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::raw::find;
use crate::served::ServedGateway;
use crate::support::api::{Auth, TestPlatform, operator, token};

/// What the recording backend got: each request's head and body, and whether the body was
/// whole by its framing (a request cut off by a closed connection is not).
#[derive(Debug, Clone)]
struct Seen {
    head: String,
    body: Vec<u8>,
    whole: bool,
}

impl Seen {
    fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or_default()
    }

    /// The value of the field `name` (lower case), if sent.
    fn field(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (field, value) = line.split_once(':')?;
            field
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    fn field_names(&self) -> Vec<String> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .map(|(name, _)| name.to_owned())
            .collect()
    }
}

/// A raw HTTP/1.1 backend recording every request it gets, answering `ok` to each whole one.
struct Recorder {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(record_requests(stream, Arc::clone(&record)));
            }
        });
        Self { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn record_requests(mut stream: TcpStream, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut buffer = Vec::new();
    loop {
        let Some(end) = crate::raw::read_head(&mut stream, &mut buffer).await else {
            return;
        };
        let head = String::from_utf8_lossy(&buffer[..end + 4]).into_owned();
        buffer.drain(..end + 4);
        let mut request = Seen {
            head,
            body: Vec::new(),
            whole: false,
        };
        let length = request.field("content-length").map(|l| l.parse().unwrap());
        let chunked = request
            .field("transfer-encoding")
            .is_some_and(|coding| coding.eq_ignore_ascii_case("chunked"));
        loop {
            let body_end = if chunked {
                find(&buffer, b"0\r\n\r\n").map(|at| at + 5)
            } else {
                Some(length.unwrap_or(0)).filter(|&n| buffer.len() >= n)
            };
            if let Some(end) = body_end {
                request.body = buffer.drain(..end).collect();
                request.whole = true;
                break;
            }
            let mut chunk = [0; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    request.body = std::mem::take(&mut buffer);
                    seen.lock().unwrap().push(request);
                    return;
                }
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        seen.lock().unwrap().push(request);
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        if stream.write_all(answer).await.is_err() {
            return;
        }
    }
}

/// Allows every `/api/v1/open/…` path it is asked about, recording each.
struct Stub {
    backend: Arc<Upstream>,
    asked: Mutex<Vec<String>>,
    failed: AtomicUsize,
}

struct Allow {
    upstream: Arc<Upstream>,
    context: HeaderValue,
}

impl Forward for Allow {
    fn upstream(&self) -> &Arc<Upstream> {
        &self.upstream
    }

    fn upstreams(&self) -> &[Arc<Upstream>] {
        std::slice::from_ref(&self.upstream)
    }

    fn context(&self) -> &HeaderValue {
        &self.context
    }

    fn module(&self) -> &str {
        "open"
    }
}

impl Decide for Stub {
    type Allowed = Allow;

    async fn decide(&self, request: GatewayRequest<'_>) -> Result<Allow> {
        self.asked.lock().unwrap().push(request.path.to_owned());
        if !request.path.starts_with("/api/v1/open/") {
            return Err(Error::Forbidden("the stub refuses it".into()));
        }
        Ok(Allow {
            upstream: Arc::clone(&self.backend),
            context: HeaderValue::from_static("stub-context"),
        })
    }

    fn backend_failed(&self, _: &Allow) {
        self.failed.fetch_add(1, Ordering::SeqCst);
    }
}

/// The transport over a stub and a recorder, a client pausing mid-body for `body_timeout`.
struct Rig {
    addr: String,
    stub: Arc<Stub>,
    backend: Recorder,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Rig {
    async fn start(body_timeout: Duration) -> Self {
        let backend = Recorder::start().await;
        let stub = Arc::new(Stub {
            backend: Arc::new(Upstream::new(backend.url.clone())),
            asked: Mutex::default(),
            failed: AtomicUsize::new(0),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let gateway =
            Gateway::with_body_timeout(Arc::clone(&stub), axum::Router::new(), body_timeout);
        tokio::spawn(gateway.serve(listener, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stub,
            backend,
            _stop: stop,
        }
    }

    fn asked(&self) -> Vec<String> {
        self.stub.asked.lock().unwrap().clone()
    }
}

/// The two forwarding paths, told apart by a field the relay leaves to hyper's server.
#[derive(Debug, Clone, Copy)]
enum Via {
    Relay,
    Hyper,
}

impl Via {
    const BOTH: [Via; 2] = [Via::Relay, Via::Hyper];

    /// The fields that send a request down this path.
    fn fields(self) -> &'static str {
        match self {
            Via::Relay => "",
            Via::Hyper => "connection: x-hop\r\nx-hop: 1\r\n",
        }
    }
}

/// Sends `bytes` on a new connection to `addr` and reads the one response (its body is a
/// problem document or `ok`), or what arrived before the close.
async fn exchange(addr: &str, bytes: &[u8]) -> String {
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(bytes).await.unwrap();
    read_response(&mut client).await
}

async fn read_response(client: &mut TcpStream) -> String {
    let mut received = Vec::new();
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some(end) = find(&received, b"\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|l| l.trim().parse::<usize>().ok());
            if length.is_some_and(|n| received.len() >= end + 4 + n) {
                return text;
            }
        }
        let mut chunk = [0; 4096];
        let read = tokio::time::timeout(Duration::from_secs(10), client.read(&mut chunk))
            .await
            .expect("the gateway answers");
        match read {
            Ok(0) | Err(_) => return text,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
        }
    }
}

fn get(path: &str, via: Via, extra: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nhost: gateway\r\n{}{extra}\r\n",
        via.fields()
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_percent_encoded_literal_segment_is_decided_and_forwarded_in_its_decoded_form() {
    let rig = Rig::start(Duration::from_secs(60)).await;
    for via in Via::BOTH {
        for (sent, canonical) in [
            (
                "/api/v1/open/entries/%65xport",
                "/api/v1/open/entries/export",
            ),
            (
                "/api/v1/%6Fpen/entries/%45%58port",
                "/api/v1/open/entries/EXport",
            ),
            ("/api/v1/open/a%3a%7e?q=%65", "/api/v1/open/a%3A~?q=%65"),
        ] {
            let answer = exchange(&rig.addr, &get(sent, via, "")).await;
            assert!(
                answer.starts_with("HTTP/1.1 200 OK"),
                "{via:?} {sent}: {answer}"
            );
            let path = canonical.split('?').next().unwrap();
            assert_eq!(
                rig.asked().last().map(String::as_str),
                Some(path),
                "{via:?}: decided on the decoded form"
            );
            let seen = rig.backend.seen();
            assert_eq!(
                seen.last().unwrap().request_line(),
                format!("GET {canonical} HTTP/1.1"),
                "{via:?}: forwarded as decided, the query as sent"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_path_is_a_400_naming_it_on_both_paths_and_never_reaches_the_backend() {
    let rig = Rig::start(Duration::from_secs(60)).await;
    let cases: [(&[u8], &str); 14] = [
        (b"/api/v1/open/entries/export;x", "a `;` (path parameters)"),
        (b"/api/v1/open/public/..;/entries/export", "a `;`"),
        (b"/api/v1/open/public/%2e%2e;/entries/export", "a `;`"),
        (
            b"/api/v1/open/public/%2e%2e/entries/export",
            "a `.` or `..` segment",
        ),
        (b"/api/v1/open/public/%2E/entries", "a `.` or `..` segment"),
        (b"/api/v1/open/entries/export.", "a segment ending in `.`"),
        (
            b"/api/v1/open/entries/export%20",
            "a segment starting or ending with a space",
        ),
        (
            b"/api/v1/open/entries/%EF%BD%85xport",
            "an encoded byte past ASCII",
        ),
        (b"/api/v1/open/public/%252e%252e/entries", "double encoding"),
        (
            b"/api/v1/open/public/%c0%ae%c0%ae/entries",
            "an encoded byte past ASCII",
        ),
        (
            b"/api/v1/open/public/..%00/entries",
            "an encoded control character",
        ),
        (b"/api/v1/open/entries%2Fexport", "an encoded `/`"),
        (b"/api/v1/open/entries//export", "an empty segment"),
        (
            b"/api/v1/open/entries/\xc3\xa9xport",
            "a raw byte 0xC3 past ASCII",
        ),
    ];
    for via in Via::BOTH {
        for (path, why) in cases {
            let mut request = b"GET ".to_vec();
            request.extend_from_slice(path);
            request.extend_from_slice(b" HTTP/1.1\r\nhost: gateway\r\n");
            request.extend_from_slice(via.fields().as_bytes());
            request.extend_from_slice(b"\r\n");
            let answer = exchange(&rig.addr, &request).await;
            let shown = String::from_utf8_lossy(path);
            assert!(
                answer.starts_with("HTTP/1.1 400 Bad Request"),
                "{via:?} {shown}: {answer}"
            );
            assert!(answer.contains("application/problem+json"), "{answer}");
            assert!(answer.contains(why), "{via:?} {shown}: {answer}");
            let named = shown.replace('\u{e9}', "%C3%A9");
            assert!(answer.contains(&named), "{via:?} names the path: {answer}");
        }
    }
    assert!(rig.asked().is_empty(), "refused before any decision");
    assert!(rig.backend.seen().is_empty(), "the backend got none");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn underscore_spellings_of_framing_and_credential_fields_never_reach_the_backend() {
    let rig = Rig::start(Duration::from_secs(60)).await;
    let sneaked = "Transfer_Encoding: chunked\r\nContent_Length: 40\r\nX_Module_API_Key: plk_stolen\r\nX_Plinth_Context: forged\r\nProxy_Authorization: Basic x\r\nKeep_Alive: timeout=5\r\nX_Forwarded_For: 6.6.6.6\r\nX_HTTP_Method_Override: DELETE\r\nx-custom_field: kept\r\n";
    for via in Via::BOTH {
        let answer = exchange(&rig.addr, &get("/api/v1/open/x", via, sneaked)).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{via:?}: {answer}");
        let seen = rig.backend.seen().pop().unwrap();
        let names: Vec<String> = seen
            .field_names()
            .iter()
            .map(|n| n.to_ascii_lowercase())
            .collect();
        assert!(
            names.contains(&"x-custom_field".into()),
            "{via:?}: {names:?}"
        );
        for gone in [
            "transfer_encoding",
            "content_length",
            "x_module_api_key",
            "x_plinth_context",
            "proxy_authorization",
            "keep_alive",
            "x_forwarded_for",
            "x_http_method_override",
        ] {
            assert!(
                !names.contains(&gone.to_owned()),
                "{via:?} forwarded {gone}"
            );
        }
        assert!(seen.whole && seen.body.is_empty(), "{via:?}: {seen:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_overrides_named_fields_and_a_claimed_address_are_replaced_by_what_the_gateway_saw()
{
    let rig = Rig::start(Duration::from_secs(60)).await;
    let claimed = "X-HTTP-Method-Override: DELETE\r\nX-HTTP-Method: DELETE\r\nX-Method-Override: PUT\r\nX-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-Host: evil\r\nTrue-Client-IP: 6.6.6.6\r\nx-kept: 1\r\n";
    for via in Via::BOTH {
        let answer = exchange(&rig.addr, &get("/api/v1/open/x", via, claimed)).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{via:?}: {answer}");
        let seen = rig.backend.seen().pop().unwrap();
        assert_eq!(seen.request_line(), "GET /api/v1/open/x HTTP/1.1");
        assert_eq!(seen.field("x-forwarded-for").as_deref(), Some("127.0.0.1"));
        assert_eq!(seen.field("x-kept").as_deref(), Some("1"));
        for gone in [
            "x-http-method-override",
            "x-http-method",
            "x-method-override",
            "forwarded",
            "x-real-ip",
            "x-forwarded-host",
            "true-client-ip",
        ] {
            assert_eq!(seen.field(gone), None, "{via:?} forwarded {gone}");
        }
    }
    // Fields `Connection` names, however it names them, are dropped on hyper's path (the
    // relay hands such a request over).
    let named = "Connection: X-Hop-One, keep-alive\r\nconnection: x-hop-two\r\nX-Hop-One: 1\r\nx-hop-two: 2\r\nx-kept: 1\r\n";
    let answer = exchange(&rig.addr, &get("/api/v1/open/y", Via::Relay, named)).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    let seen = rig.backend.seen().pop().unwrap();
    assert_eq!(seen.field("x-kept").as_deref(), Some("1"));
    for gone in ["x-hop-one", "x-hop-two", "connection"] {
        assert_eq!(seen.field(gone), None, "forwarded {gone}: {}", seen.head);
    }
}

/// Counts the ERROR events logged on this thread.
struct Errors(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Errors {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() == tracing::Level::ERROR {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// On one thread, so that what the gateway logs is counted.
#[tokio::test]
async fn a_broken_chunked_body_is_the_client_s_400_and_no_backend_failure() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let errors = Arc::new(AtomicUsize::new(0));
    let _logged = tracing::subscriber::set_default(
        tracing_subscriber::registry().with(Errors(Arc::clone(&errors))),
    );
    let rig = Rig::start(Duration::from_secs(60)).await;
    let broken = b"POST /api/v1/open/x HTTP/1.1\r\nhost: gateway\r\ntransfer-encoding: chunked\r\n\r\n4\r\nWiki\r\nzz\r\n";
    let answer = exchange(&rig.addr, broken).await;
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request"),
        "the client's fault: {answer}"
    );
    assert!(answer.contains("the request body is broken"), "{answer}");
    assert_eq!(
        rig.stub.failed.load(Ordering::SeqCst),
        0,
        "the backend is not taken for failed"
    );
    assert_eq!(
        errors.load(Ordering::SeqCst),
        0,
        "nothing logged as an error"
    );
    // Give the backend a moment to see whatever reached it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for seen in rig.backend.seen() {
        assert!(
            !seen.whole,
            "the backend got a truncated request as whole: {seen:?}"
        );
    }
    // A whole chunked body goes through.
    let whole = b"POST /api/v1/open/x HTTP/1.1\r\nhost: gateway\r\ntransfer-encoding: chunked\r\n\r\n4\r\nWiki\r\n0\r\n\r\n";
    let answer = exchange(&rig.addr, whole).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    let seen = rig.backend.seen().pop().unwrap();
    assert!(
        seen.whole && find(&seen.body, b"Wiki").is_some(),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_is_given_up_after_the_body_timeout_on_both_paths() {
    let rig = Rig::start(Duration::from_secs(1)).await;
    // Hyper's path: a chunked upload that stops after its first chunk.
    let mut client = TcpStream::connect(&rig.addr).await.unwrap();
    client
        .write_all(b"POST /api/v1/open/x HTTP/1.1\r\nhost: gateway\r\ntransfer-encoding: chunked\r\n\r\n4\r\nWiki\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let answer = read_response(&mut client).await;
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout"),
        "{answer}"
    );
    assert!(answer.contains("nothing of it arrived for 1 s"), "{answer}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(rig.stub.failed.load(Ordering::SeqCst), 0);

    // The relay: a body with a length, of which half comes.
    let mut client = TcpStream::connect(&rig.addr).await.unwrap();
    client
        .write_all(
            b"POST /api/v1/open/y HTTP/1.1\r\nhost: gateway\r\ncontent-length: 10\r\n\r\nhalf.",
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the client connection closes");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = rig.backend.seen();
    assert_eq!(
        seen.len(),
        2,
        "each backend connection was closed under its request: {seen:?}"
    );
    assert!(
        seen.iter().all(|s| !s.whole),
        "no backend took a cut-off body for whole: {seen:?}"
    );
}

/// The ledger of the issue: `/entries/{id}` to readers, `/entries/export` to exporters, on a
/// recording backend; acme enabled, and a reader's and an exporter's tokens.
async fn ledger(p: &TestPlatform, backend: &Recorder) -> (String, String) {
    let manifest = json!({
        "name": "ledger", "display_name": "Ledger", "version": "1.0.0",
        "backend": {"type": "microservice", "api_prefix": "/api/v1/ledger", "health_check": "/health"},
        "permissions": ["ledger:entries.read", "ledger:admin.export"],
        "routes": [
            {"path": "/entries/{id}", "methods": ["GET"], "permission": "ledger:entries.read"},
            {"path": "/entries/export", "methods": ["GET"], "permission": "ledger:admin.export"},
            {"path": "/public/{proxy+}", "methods": ["GET"]}
        ]
    });
    p.call(Method::POST, "/api/v1/modules", operator(), Some(manifest))
        .await
        .expect(StatusCode::CREATED);
    let install = json!({"version": "1.0.0", "endpoint": backend.url});
    p.call(
        Method::POST,
        "/api/v1/modules/ledger/install",
        operator(),
        Some(install),
    )
    .await
    .expect(StatusCode::ACCEPTED);
    assert_eq!(p.settled("ledger").await["status"], "installed");
    let tenant = json!({"id": "acme", "name": "ACME", "subscription_tier": "enterprise"});
    p.call(Method::POST, "/api/v1/tenants", operator(), Some(tenant))
        .await
        .expect(StatusCode::CREATED);
    p.enable("acme", "ledger").await;
    let bearer = |auth: Auth| match auth {
        Auth::Token(token) => token,
        _ => unreachable!(),
    };
    let reader = bearer(token("rita", Some("acme"), None, &[]));
    let exporter = bearer(token("ed", Some("acme"), None, &[]));
    for (user, permission) in [
        ("rita", "ledger:entries.read"),
        ("ed", "ledger:admin.export"),
    ] {
        let role = format!("/api/v1/tenants/acme/roles/{user}-role");
        p.call(
            Method::PUT,
            &role,
            crate::support::api::tenant_admin("acme"),
            Some(json!({"permissions": [permission]})),
        )
        .await
        .expect(StatusCode::OK);
        let assignment = format!("/api/v1/tenants/acme/users/{user}/roles");
        p.call(
            Method::PUT,
            &assignment,
            crate::support::api::tenant_admin("acme"),
            Some(json!({"roles": [format!("{user}-role")]})),
        )
        .await
        .expect(StatusCode::OK);
    }
    (reader, exporter)
}

fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_default()
}

/// The case against the platform's own decision, on both paths: a reader's
/// `%65xport` is decided as `export` (and refused), an exporter's is forwarded as `export`;
/// a spelling a loose backend reads as `export` but the gateway would take for `{id}` is a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_percent_encoded_literal_segment_is_decided_on_its_decoded_form() {
    let p = TestPlatform::gateway();
    let backend = Recorder::start().await;
    let (reader, exporter) = ledger(&p, &backend).await;
    let served = ServedGateway::start(&p).await;
    let auth = |token: &str| format!("authorization: Bearer {token}\r\n");
    for via in Via::BOTH {
        let refused = exchange(
            &served.addr,
            &get("/api/v1/ledger/entries/%65xport", via, &auth(&reader)),
        )
        .await;
        assert_eq!(status_of(&refused), 403, "{via:?}: {refused}");
        assert!(refused.contains("ledger:admin.export"), "{refused}");
        let allowed = exchange(
            &served.addr,
            &get("/api/v1/ledger/entries/%65xport", via, &auth(&exporter)),
        )
        .await;
        assert_eq!(status_of(&allowed), 200, "{via:?}: {allowed}");
        assert_eq!(
            backend.seen().pop().unwrap().request_line(),
            "GET /api/v1/ledger/entries/export HTTP/1.1",
            "{via:?}"
        );
        let read = exchange(
            &served.addr,
            &get("/api/v1/ledger/entries/42", via, &auth(&reader)),
        )
        .await;
        assert_eq!(status_of(&read), 200, "{via:?}: {read}");

        for (path, why) in [
            ("/api/v1/ledger/entries/EXPORT", "could read as `export`"),
            ("/api/v1/ledger/entries/Export", "could read as `export`"),
            (
                "/api/v1/ledger/entries/export.json",
                "could read as `export`",
            ),
            ("/api/v1/ledger/entries/%45xport", "could read as `export`"),
            ("/api/v1/ledger/entries/export;x", "a `;`"),
            ("/api/v1/ledger/public/..;/entries/export", "a `;`"),
            ("/api/v1/ledger/public/%2e%2e;/entries/export", "a `;`"),
            ("/api/v1/ledger/entries/export.", "ending in `.`"),
            ("/api/v1/ledger/entries/export%20", "a space"),
            ("/api/v1/ledger/entries/%EF%BD%85xport", "past ASCII"),
            (
                "/api/v1/ledger/public/%252e%252e/entries/export",
                "double encoding",
            ),
            (
                "/api/v1/ledger/public/%c0%ae%c0%ae/entries/export",
                "past ASCII",
            ),
            (
                "/api/v1/ledger/public/..%00/entries/export",
                "control character",
            ),
            ("/api/v1/ledger/entries/42?_method=DELETE", "`_method`"),
        ] {
            let before = backend.seen().len();
            let answer = exchange(&served.addr, &get(path, via, &auth(&reader))).await;
            assert_eq!(status_of(&answer), 400, "{via:?} {path}: {answer}");
            assert!(answer.contains(why), "{via:?} {path}: {answer}");
            assert_eq!(
                backend.seen().len(),
                before,
                "{via:?} {path} reached the backend"
            );
        }
    }
    served.stop().await;
}

/// Finding 2: a client's broken body no longer counts as the backend failing, which made
/// every pass of every tenant be rebuilt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_chunked_body_leaves_every_tenant_s_passes_alone() {
    let p = TestPlatform::gateway();
    let backend = Recorder::start().await;
    let (reader, _) = ledger(&p, &backend).await;
    let served = ServedGateway::start(&p).await;
    let warm = exchange(
        &served.addr,
        &get(
            "/api/v1/ledger/entries/1",
            Via::Relay,
            &format!("authorization: Bearer {reader}\r\n"),
        ),
    )
    .await;
    assert_eq!(status_of(&warm), 200, "{warm}");
    let generation = p.app.authorizer.generation();
    for _ in 0..5 {
        let broken = format!(
            "POST /api/v1/ledger/public/x HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer {reader}\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"
        );
        let answer = exchange(&served.addr, broken.as_bytes()).await;
        // No route takes POST here: refused before the body matters ...
        assert_eq!(status_of(&answer), 404, "{answer}");
        let broken = format!(
            "GET /api/v1/ledger/public/x HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer {reader}\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"
        );
        // ... and here allowed, its body broken: the client's 400.
        let answer = exchange(&served.addr, broken.as_bytes()).await;
        assert_eq!(status_of(&answer), 400, "{answer}");
        assert!(answer.contains("the request body is broken"), "{answer}");
    }
    assert_eq!(
        p.app.authorizer.generation(),
        generation,
        "nothing was marked stale: no pass is rebuilt"
    );
    served.stop().await;
}
