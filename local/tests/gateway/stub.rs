//! The transport against a stub decision: no store, no platform, no token. The stub allows
//! `/api/v1/open/…` to a raw backend and refuses every other module path with 403; what the
//! client and the backend see is the transport's alone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderValue;
use plinth_local::gateway::Gateway;
use plinth_registry::gateway::{Decide, Forward, GatewayRequest, Upstream};
use plinth_registry::{Error, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::raw::find;

/// Allows `/api/v1/open/…` to its one backend, with a fixed context; refuses the rest.
struct Stub {
    backend: Arc<Upstream>,
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
        if !request.path.starts_with("/api/v1/open/") {
            return Err(Error::Forbidden(format!(
                "the stub refuses {} {}",
                request.method, request.path
            )));
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

/// The transport serving `stub` (and an empty router for everything else) on a port of its
/// own; stops when the returned sender is dropped or fires.
async fn serve(stub: Arc<Stub>) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let gateway = Gateway::new(stub, axum::Router::new());
    tokio::spawn(gateway.serve(listener, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// A backend speaking raw HTTP/1.1: it records each request head with the number of the
/// connection it came on, and answers `/api/v1/open/chunked` with a chunked body and a
/// trailer, anything else with `hello`.
struct RawBackend {
    url: String,
    seen: Arc<Mutex<Vec<(usize, String)>>>,
}

impl RawBackend {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        tokio::spawn(async move {
            for connection in 0.. {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(answer(stream, connection, Arc::clone(&record)));
            }
        });
        Self { url, seen }
    }

    fn seen(&self) -> Vec<(usize, String)> {
        self.seen.lock().unwrap().clone()
    }
}

/// Answers each request head on `stream` (requests here have no body).
async fn answer(mut stream: TcpStream, connection: usize, seen: Arc<Mutex<Vec<(usize, String)>>>) {
    let mut buffer = Vec::new();
    loop {
        let Some(end) = crate::raw::read_head(&mut stream, &mut buffer).await else {
            return;
        };
        let head = String::from_utf8_lossy(&buffer[..end + 4]).into_owned();
        buffer.drain(..end + 4);
        let chunked = head.starts_with("GET /api/v1/open/chunked ");
        seen.lock().unwrap().push((connection, head));
        let answer: &[u8] = if chunked {
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-sum: 5\r\n\r\n"
        } else {
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"
        };
        if stream.write_all(answer).await.is_err() {
            return;
        }
    }
}

/// Reads from `client` until what it received ends with `end`.
async fn read_until(client: &mut TcpStream, received: &mut Vec<u8>, end: &str) -> String {
    loop {
        if let Some(at) = find(received, end.as_bytes()) {
            let response: Vec<u8> = received.drain(..at + end.len()).collect();
            return String::from_utf8(response).unwrap();
        }
        let mut chunk = [0; 4096];
        let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut chunk))
            .await
            .expect("the gateway answers")
            .unwrap();
        assert!(
            read > 0,
            "closed before `{end}`: {}",
            String::from_utf8_lossy(received)
        );
        received.extend_from_slice(&chunk[..read]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_forwards_what_a_stub_allows_and_answers_its_refusals() {
    let backend = RawBackend::start().await;
    let stub = Arc::new(Stub {
        backend: Arc::new(Upstream::new(backend.url.clone())),
        failed: AtomicUsize::new(0),
    });
    let (addr, stop) = serve(Arc::clone(&stub)).await;
    let mut client = TcpStream::connect(&addr).await.unwrap();
    let mut received = Vec::new();

    client
        .write_all(b"GET /api/v1/open/hello?x=1 HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer anything\r\nx-plinth-context: forged\r\nkeep-alive: timeout=5\r\nproxy-connection: keep-alive\r\nte: trailers\r\nx-custom: kept\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        read_until(&mut client, &mut received, "hello").await,
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
        "the backend's response as it came"
    );
    client
        .write_all(b"GET /api/v1/closed/x HTTP/1.1\r\nhost: gateway\r\n\r\n")
        .await
        .unwrap();
    let refused = read_until(&mut client, &mut received, "}").await;
    assert!(
        refused.starts_with("HTTP/1.1 403 Forbidden\r\n"),
        "{refused}"
    );
    assert!(refused.contains("content-type: application/problem+json\r\n"));
    assert!(
        refused.contains("the stub refuses GET /api/v1/closed/x"),
        "{refused}"
    );
    assert!(!refused.contains("connection: close"), "{refused}");
    client
        .write_all(b"GET /api/v1/open/chunked HTTP/1.1\r\nhost: gateway\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        read_until(&mut client, &mut received, "x-sum: 5\r\n\r\n").await,
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-sum: 5\r\n\r\n",
        "chunks and trailer as they came, on the same client connection"
    );
    // Not a module path: hyper's server and the (empty) platform router answer it.
    client
        .write_all(b"GET /health HTTP/1.1\r\nhost: gateway\r\n\r\n")
        .await
        .unwrap();
    let other = read_until(&mut client, &mut received, "\r\n\r\n").await;
    assert!(other.starts_with("HTTP/1.1 404 Not Found\r\n"), "{other}");

    let seen = backend.seen();
    assert_eq!(
        seen.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        [0, 0],
        "one backend connection; the refused request never reached it"
    );
    let host = &backend.url["http://".len()..];
    assert_eq!(
        seen[0].1,
        format!(
            "GET /api/v1/open/hello?x=1 HTTP/1.1\r\nhost: {host}\r\nx-custom: kept\r\nx-plinth-context: stub-context\r\nx-forwarded-for: 127.0.0.1\r\n\r\n"
        ),
        "credentials, hop-by-hop fields and the forged context dropped; the stub's context and the client's address sent"
    );
    assert_eq!(stub.failed.load(Ordering::SeqCst), 0);
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_s_path_forwards_for_a_stub_too_and_a_dead_backend_is_a_502() {
    let backend = RawBackend::start().await;
    let stub = Arc::new(Stub {
        backend: Arc::new(Upstream::new(backend.url.clone())),
        failed: AtomicUsize::new(0),
    });
    let (addr, stop) = serve(Arc::clone(&stub)).await;
    let mut client = TcpStream::connect(&addr).await.unwrap();
    let mut received = Vec::new();
    // A field named by `Connection`: the relay leaves the request to hyper's path.
    client
        .write_all(b"GET /api/v1/open/hello HTTP/1.1\r\nhost: gateway\r\nconnection: x-hop\r\nx-hop: 1\r\nupgrade: h2c\r\nx-custom: kept\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until(&mut client, &mut received, "hello").await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    let (_, head) = &backend.seen()[0];
    assert!(head.contains("x-custom: kept\r\n"), "{head}");
    assert!(
        head.contains("x-plinth-context: stub-context\r\n"),
        "{head}"
    );
    for dropped in ["x-hop", "upgrade", "connection: x-hop"] {
        assert!(!head.contains(dropped), "{dropped}: {head}");
    }

    let dead = Arc::new(Stub {
        backend: Arc::new(Upstream::new("http://127.0.0.1:9".into())),
        failed: AtomicUsize::new(0),
    });
    let (addr, stop_dead) = serve(Arc::clone(&dead)).await;
    let mut client = TcpStream::connect(&addr).await.unwrap();
    client
        .write_all(b"GET /api/v1/open/x HTTP/1.1\r\nhost: gateway\r\n\r\n")
        .await
        .unwrap();
    let failed = read_until(&mut client, &mut Vec::new(), "}").await;
    assert!(
        failed.starts_with("HTTP/1.1 502 Bad Gateway\r\n"),
        "{failed}"
    );
    assert!(failed.contains("open did not answer"), "{failed}");
    assert_eq!(dead.failed.load(Ordering::SeqCst), 1, "the stub is told");
    let _ = (stop.send(()), stop_dead.send(()));
}
