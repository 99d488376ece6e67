//! The served gateway's relay, over TCP on both sides: what a client sees of a backend's
//! responses however they are framed, keep-alive and pipelining, and what happens when
//! either side goes away. The backends here speak raw HTTP/1.1, to answer in ways a
//! framework would not.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::raw::find;
use crate::served::ServedGateway;
use crate::support::api::{Auth, TestPlatform, operator, tenant_admin};

/// What a raw backend answers to a request line: the bytes, and whether it then closes.
type Script = fn(&str) -> (&'static [u8], bool);

/// A backend speaking raw HTTP/1.1 on a port of its own; it records each request head it
/// gets with the number of the connection that brought it.
struct RawBackend {
    url: String,
    seen: Arc<Mutex<Vec<(usize, String)>>>,
}

impl RawBackend {
    async fn start(script: Script) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        tokio::spawn(async move {
            for connection in 0.. {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(serve_raw(stream, connection, script, Arc::clone(&record)));
            }
        });
        Self { url, seen }
    }

    /// The request heads received, with the connection each came on.
    fn seen(&self) -> Vec<(usize, String)> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve_raw(
    mut stream: TcpStream,
    connection: usize,
    script: Script,
    seen: Arc<Mutex<Vec<(usize, String)>>>,
) {
    let mut buffer = Vec::new();
    loop {
        let Some(end) = crate::raw::read_head(&mut stream, &mut buffer).await else {
            return;
        };
        let head = String::from_utf8_lossy(&buffer[..end + 4]).into_owned();
        let length = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().unwrap())
            })
            .unwrap_or(0);
        while buffer.len() < end + 4 + length {
            let mut chunk = [0; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        buffer.drain(..end + 4 + length);
        let request_line = head.lines().next().unwrap_or_default().to_owned();
        seen.lock().unwrap().push((connection, head));
        let (answer, close) = script(&request_line);
        if stream.write_all(answer).await.is_err() || close {
            return;
        }
    }
}

/// Answers by the request's path under `/api/v1/ledger/`.
fn script(request_line: &str) -> (&'static [u8], bool) {
    let path = request_line.split(' ').nth(1).unwrap_or_default();
    let case = path.trim_start_matches("/api/v1/ledger/");
    match case {
        "length" => (
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-backend: raw\r\n\r\nhello",
            false,
        ),
        "chunked" => (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-sum\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-sum: 12\r\n\r\n",
            false,
        ),
        "until-close" => (b"HTTP/1.1 200 OK\r\n\r\nall of it, then the close", true),
        "head" => (b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n", false),
        "no-content" => (b"HTTP/1.1 204 No Content\r\n\r\n", false),
        "hop-by-hop" => (
            b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nUpgrade: h2c\r\nProxy-Authenticate: Basic\r\ncontent-length: 2\r\n\r\nok",
            false,
        ),
        "backend-closes" => (
            b"HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 2\r\n\r\nok",
            true,
        ),
        "early-hints" => (
            b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            false,
        ),
        "bad-length" => (b"HTTP/1.1 200 OK\r\ncontent-length: 2x\r\n\r\nok", false),
        "bad-chunks" => (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            true,
        ),
        "cut-short" => (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf", true),
        "silent" => (b"", true),
        // Reads the request, then says nothing and keeps the connection open.
        "stall" => (b"", false),
        // Answers, then closes as a backend whose keep-alive timed out does: no
        // `Connection: close` to warn the next request.
        "then-close" => (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", true),
        _ => (b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n", false),
    }
}

/// Module `ledger` (no routes declared: every path open to its tenants' users) on
/// `backend`, enabled for acme; the served gateway; and acme's admin token.
async fn ledger_on(backend: &RawBackend) -> (TestPlatform, ServedGateway, String) {
    let p = TestPlatform::gateway();
    let manifest = json!({
        "name": "ledger", "display_name": "Ledger", "version": "1.0.0",
        "backend": {"type": "microservice", "api_prefix": "/api/v1/ledger", "health_check": "/health"}
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
    let served = ServedGateway::start(&p).await;
    let Auth::Token(token) = tenant_admin("acme") else {
        unreachable!()
    };
    (p, served, token)
}

/// One client connection speaking raw HTTP/1.1 to the gateway.
struct RawClient {
    stream: TcpStream,
    received: Vec<u8>,
    /// How long a read may wait for the gateway.
    patience: Duration,
}

impl RawClient {
    async fn open(served: &ServedGateway) -> Self {
        Self {
            stream: TcpStream::connect(&served.addr).await.unwrap(),
            received: Vec::new(),
            patience: Duration::from_secs(5),
        }
    }

    /// The same client, waiting up to `patience` for each read (paused-time tests).
    fn waiting(self, patience: Duration) -> Self {
        Self { patience, ..self }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads until `received` holds `n` bytes, or the gateway closes.
    async fn read_until_len(&mut self, n: usize) {
        while self.received.len() < n {
            let mut chunk = [0; 4096];
            let read = tokio::time::timeout(self.patience, self.stream.read(&mut chunk))
                .await
                .expect("the gateway answers")
                .unwrap();
            if read == 0 {
                return;
            }
            self.received.extend_from_slice(&chunk[..read]);
        }
    }

    /// The next response whose whole text (head and body) ends with `end`, taken off what
    /// was received.
    async fn response_ending(&mut self, end: &str) -> String {
        loop {
            if let Some(at) = find(&self.received, end.as_bytes()) {
                let response: Vec<u8> = self.received.drain(..at + end.len()).collect();
                return String::from_utf8(response).unwrap();
            }
            let before = self.received.len();
            self.read_until_len(before + 1).await;
            assert!(
                self.received.len() > before,
                "closed before `{end}`: {}",
                String::from_utf8_lossy(&self.received)
            );
        }
    }

    /// Whether the gateway has closed the connection (everything sent was read).
    async fn closed(&mut self) -> bool {
        let before = self.received.len();
        self.read_until_len(usize::MAX).await;
        self.received.len() == before
    }
}

fn get(path: &str, token: &str) -> Vec<u8> {
    format!("GET /api/v1/ledger/{path} HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer {token}\r\n\r\n")
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_reach_the_client_as_framed_on_one_backend_connection() {
    let backend = RawBackend::start(script).await;
    let (_p, served, token) = ledger_on(&backend).await;
    let mut client = RawClient::open(&served).await;

    client.send(&get("length", &token)).await;
    assert_eq!(
        client.response_ending("hello").await,
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-backend: raw\r\n\r\nhello",
        "the head as the backend wrote it"
    );
    client.send(&get("chunked", &token)).await;
    let chunked = client.response_ending("x-sum: 12\r\n\r\n").await;
    assert!(
        chunked.ends_with("\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-sum: 12\r\n\r\n"),
        "chunks, extensions and trailers pass as they came: {chunked}"
    );
    client
        .send(
            format!("HEAD /api/v1/ledger/head HTTP/1.1\r\nauthorization: Bearer {token}\r\n\r\n")
                .as_bytes(),
        )
        .await;
    assert_eq!(
        client.response_ending("\r\n\r\n").await,
        "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n",
        "no body after a HEAD, whatever the length says"
    );
    client.send(&get("no-content", &token)).await;
    assert_eq!(
        client.response_ending("\r\n\r\n").await,
        "HTTP/1.1 204 No Content\r\n\r\n"
    );
    client.send(&get("hop-by-hop", &token)).await;
    let cleaned = client.response_ending("\r\n\r\nok").await;
    assert_eq!(cleaned, "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    client.send(&get("backend-closes", &token)).await;
    assert_eq!(
        client.response_ending("\r\n\r\nok").await,
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        "the backend's close is its own connection's, not the client's"
    );
    client.send(&get("early-hints", &token)).await;
    assert_eq!(
        client.response_ending("\r\n\r\nok").await,
        "HTTP/1.1 103 Early Hints\r\nlink: </style.css>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        "an interim response is passed on before the final one"
    );

    let seen = backend.seen();
    let connections: Vec<usize> = seen.iter().map(|(c, _)| *c).collect();
    assert_eq!(
        connections,
        [0, 0, 0, 0, 0, 0, 1],
        "one backend connection until the backend closed it"
    );
    let (_, head) = &seen[0];
    assert!(
        head.starts_with("GET /api/v1/ledger/length HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains(&format!("host: {}\r\n", &backend.url["http://".len()..])));
    assert!(head.contains("x-plinth-context: ey"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("authorization"),
        "{head}"
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let backend = RawBackend::start(script).await;
    let (_p, served, token) = ledger_on(&backend).await;
    let mut client = RawClient::open(&served).await;
    let mut three = get("length", &token);
    three.extend_from_slice(&get("no-content", &token));
    three.extend_from_slice(&get("length", &token));
    client.send(&three).await;
    let first = client.response_ending("hello").await;
    let second = client.response_ending("\r\n\r\n").await;
    let third = client.response_ending("hello").await;
    assert!(first.starts_with("HTTP/1.1 200 OK"));
    assert_eq!(second, "HTTP/1.1 204 No Content\r\n\r\n");
    assert!(third.starts_with("HTTP/1.1 200 OK"));
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_runs_until_the_close_closes_the_client_connection_too() {
    let backend = RawBackend::start(script).await;
    let (_p, served, token) = ledger_on(&backend).await;
    let mut client = RawClient::open(&served).await;
    client.send(&get("until-close", &token)).await;
    assert_eq!(
        client.response_ending("then the close").await,
        "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it, then the close"
    );
    assert!(
        client.closed().await,
        "the close ends the body for the client too"
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_asking_to_close_gets_its_answer_then_the_close() {
    let backend = RawBackend::start(script).await;
    let (_p, served, token) = ledger_on(&backend).await;
    let mut client = RawClient::open(&served).await;
    let request = format!(
        "GET /api/v1/ledger/length HTTP/1.1\r\nauthorization: Bearer {token}\r\nconnection: close\r\n\r\n"
    );
    client.send(request.as_bytes()).await;
    assert_eq!(
        client.response_ending("hello").await,
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-backend: raw\r\nconnection: close\r\n\r\nhello"
    );
    assert!(client.closed().await);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_backend_response_is_a_502_and_the_client_connection_goes_on() {
    let backend = RawBackend::start(script).await;
    let (_p, served, token) = ledger_on(&backend).await;
    let mut client = RawClient::open(&served).await;
    for (case, why) in [
        ("bad-length", "an invalid Content-Length"),
        ("bad-chunks", "invalid chunked body"),
        ("silent", "the connection closed"),
    ] {
        client.send(&get(case, &token)).await;
        let response = client.response_ending("}").await;
        assert!(
            response.starts_with("HTTP/1.1 502 Bad Gateway\r\n"),
            "{case}: {response}"
        );
        assert!(response.contains("content-type: application/problem+json\r\n"));
        assert!(
            response.contains("ledger did not answer: ") && response.contains(why),
            "{case}: {response}"
        );
    }
    client.send(&get("length", &token)).await;
    assert!(
        client
            .response_ending("hello")
            .await
            .starts_with("HTTP/1.1 200 OK")
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_cut_short_closes_the_client_connection() {
    let backend = RawBackend::start(script).await;
    let (_p, served, token) = ledger_on(&backend).await;
    let mut client = RawClient::open(&served).await;
    client.send(&get("cut-short", &token)).await;
    client.read_until_len(usize::MAX).await;
    assert_eq!(
        String::from_utf8_lossy(&client.received),
        "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf",
        "what came, then the close: the client sees the body is short"
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_closing_its_kept_connection_is_reached_again_on_a_new_one() {
    let backend = RawBackend::start(script).await;
    let (_p, served, token) = ledger_on(&backend).await;
    let mut client = RawClient::open(&served).await;
    for _ in 0..3 {
        client.send(&get("then-close", &token)).await;
        let response = client.response_ending("\r\n\r\nok").await;
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    }
    let connections: Vec<usize> = backend.seen().iter().map(|(c, _)| *c).collect();
    assert_eq!(connections, [0, 1, 2], "a new backend connection each time");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_problems_and_the_connection_goes_on() {
    let backend = RawBackend::start(script).await;
    let (_p, served, token) = ledger_on(&backend).await;
    let mut client = RawClient::open(&served).await;
    // Refused with a body the client already sent: the body is skipped, not read as the
    // next request.
    client
        .send(b"POST /api/v1/ledger/length HTTP/1.1\r\ncontent-length: 21\r\n\r\nGET /not-a-request/ x")
        .await;
    let refused = client.response_ending("}").await;
    assert!(
        refused.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
        "{refused}"
    );
    assert!(refused.contains("content-type: application/problem+json\r\n"));
    assert!(refused.contains("Authorization: Bearer"), "{refused}");
    assert!(!refused.contains("connection: close"));

    client
        .send(b"GET /api/v1/ledger/length HTTP/1.1\r\nauthorization: Bearer forged.token.here\r\n\r\n")
        .await;
    assert!(
        client
            .response_ending("}")
            .await
            .starts_with("HTTP/1.1 401 Unauthorized\r\n")
    );
    client.send(&get("length", &token)).await;
    assert!(
        client
            .response_ending("hello")
            .await
            .starts_with("HTTP/1.1 200 OK")
    );
    assert_eq!(
        backend.seen().len(),
        1,
        "refused requests never reach the backend"
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_route_hands_the_connection_to_the_full_server() {
    let backend = RawBackend::start(script).await;
    let (_p, served, token) = ledger_on(&backend).await;
    let mut client = RawClient::open(&served).await;
    client.send(&get("length", &token)).await;
    assert!(
        client
            .response_ending("hello")
            .await
            .starts_with("HTTP/1.1 200 OK")
    );
    // The platform API: served on the same connection, which the relay hands over to
    // hyper's server for good; module routes go on working on it.
    let platform = format!(
        "GET /api/v1/tenants/acme HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer {token}\r\n\r\n"
    );
    client.send(platform.as_bytes()).await;
    let tenant = client.response_ending("}").await;
    assert!(tenant.starts_with("HTTP/1.1 200 OK\r\n"), "{tenant}");
    assert!(tenant.contains("\"id\":\"acme\""), "{tenant}");
    client.send(&get("length", &token)).await;
    assert!(
        client
            .response_ending("hello")
            .await
            .starts_with("HTTP/1.1 200 OK")
    );
    served.stop().await;
}

/// Time is paused: it jumps ahead whenever every task waits, so the gateway's timeouts are
/// reached at once, in the order they would be.
#[tokio::test(start_paused = true)]
async fn a_backend_that_does_not_answer_is_a_504_and_an_idle_client_is_closed() {
    let backend = RawBackend::start(script).await;
    let (_p, served, token) = ledger_on(&backend).await;
    let mut client = RawClient::open(&served)
        .await
        .waiting(Duration::from_secs(600));
    client.send(&get("stall", &token)).await;
    let started = tokio::time::Instant::now();
    let answer = client.response_ending("}").await;
    assert!(
        answer.starts_with("HTTP/1.1 504 Gateway Timeout\r\n"),
        "{answer}"
    );
    assert!(
        answer.contains("ledger did not answer within 60 s"),
        "{answer}"
    );
    assert_eq!(started.elapsed().as_secs(), 60);

    // Then the connection idles: it is closed after 75 s.
    let idle = tokio::time::Instant::now();
    let mut rest = [0; 64];
    assert_eq!(client.stream.read(&mut rest).await.unwrap(), 0);
    assert_eq!(idle.elapsed().as_secs(), 75);
    served.stop().await;
}

/// The backend's 60 s to answer count from the request's last byte: an upload that takes
/// longer, while it keeps coming, is not a timeout.
#[tokio::test(start_paused = true)]
async fn a_slow_upload_gets_its_answer_however_long_it_takes() {
    let backend = RawBackend::start(script).await;
    let (_p, served, token) = ledger_on(&backend).await;
    let mut client = RawClient::open(&served).await;
    client
        .send(format!("POST /api/v1/ledger/length HTTP/1.1\r\nauthorization: Bearer {token}\r\ncontent-length: 300\r\n\r\n").as_bytes())
        .await;
    let started = tokio::time::Instant::now();
    for _ in 0..3 {
        client.send(&[b'x'; 100]).await;
        tokio::time::sleep(Duration::from_secs(50)).await;
    }
    let answer = client.response_ending("hello").await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert_eq!(started.elapsed().as_secs(), 150);
    served.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_finishes_its_head_is_closed_after_30_s() {
    let backend = RawBackend::start(script).await;
    let (_p, served, _) = ledger_on(&backend).await;
    let mut client = TcpStream::connect(&served.addr).await.unwrap();
    let started = tokio::time::Instant::now();
    client
        .write_all(b"GET /api/v1/ledger/length HTTP/1.1\r\nhost: gat")
        .await
        .unwrap();
    let mut rest = [0; 64];
    assert_eq!(client.read(&mut rest).await.unwrap(), 0);
    assert_eq!(started.elapsed().as_secs(), 30);
    assert!(backend.seen().is_empty());
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upload_still_being_sent_gets_its_answer_before_the_close() {
    let backend = RawBackend::start(script).await;
    let (_p, served, _) = ledger_on(&backend).await;
    let mut client = RawClient::open(&served).await;
    // No credentials, and a 4 MiB body of which 2 MiB are sent before the answer is read:
    // the gateway refuses it, closes its side, and reads what still comes for a while.
    client
        .send(b"POST /api/v1/ledger/length HTTP/1.1\r\ncontent-length: 4194304\r\n\r\n")
        .await;
    client.send(&vec![b'x'; 1024 * 1024]).await;
    // More of the body arrives after the answer went out: a connection closed outright would
    // reset on it, and the answer waiting in the client's socket would be lost.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let more = client.stream.write_all(&vec![b'x'; 1024 * 1024]).await;
    assert!(more.is_ok(), "the gateway still reads: {more:?}");
    let refused = client.response_ending("}").await;
    assert!(
        refused.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
        "{refused}"
    );
    assert!(refused.contains("connection: close\r\n"), "{refused}");
    let mut end = [0; 64];
    let end = client.stream.read(&mut end).await;
    assert!(matches!(end, Ok(0)), "a clean close, not a reset: {end:?}");
    assert!(backend.seen().is_empty());
    served.stop().await;
}
