//! The crash drill's trigger: the installer function's DynamoDB endpoint
//! (`AWS_ENDPOINT_URL_DYNAMODB`) is this tap, which passes every call on to moto as sent.
//! Armed with `n`, it lets the installer's `n`-th `TransactWriteItems` from then on — a saga
//! step stored — reach moto, and before the answer goes back it runs its trigger (the cell
//! kills the installer's process there): a crash right after a step is stored, whatever
//! step that is.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::task::JoinHandle;

type Trigger = Box<dyn Fn() + Send + Sync>;

struct Tap {
    moto: String,
    http: reqwest::Client,
    /// Transactions still to pass before the trigger runs; 0 is disarmed.
    remaining: AtomicU32,
    /// How many times the trigger ran.
    fired: AtomicU32,
    trigger: Mutex<Option<Trigger>>,
}

pub struct DynamoTap {
    tap: Arc<Tap>,
    task: JoinHandle<()>,
}

impl Drop for DynamoTap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DynamoTap {
    /// Serves the tap on `listener`, before moto (`AWS_ENDPOINT_URL`), disarmed.
    pub fn start(listener: tokio::net::TcpListener) -> Self {
        let moto = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (moto)");
        let tap = Arc::new(Tap {
            moto: moto.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            remaining: AtomicU32::new(0),
            fired: AtomicU32::new(0),
            trigger: Mutex::new(None),
        });
        let app = Router::new().fallback(pass).with_state(Arc::clone(&tap));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { tap, task }
    }

    /// What runs after the armed transaction is stored.
    pub fn on_trigger(&self, trigger: impl Fn() + Send + Sync + 'static) {
        *self
            .tap
            .trigger
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Box::new(trigger));
    }

    /// Runs the trigger after the `n`-th transaction from now (`n` ≥ 1).
    pub fn arm(&self, n: u32) {
        self.tap.remaining.store(n, Ordering::SeqCst);
    }

    pub fn disarm(&self) {
        self.tap.remaining.store(0, Ordering::SeqCst);
    }

    /// How many times the trigger ran.
    pub fn fired(&self) -> u32 {
        self.tap.fired.load(Ordering::SeqCst)
    }
}

async fn pass(State(tap): State<Arc<Tap>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 64 << 20).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let transaction = parts
        .headers
        .get("x-amz-target")
        .is_some_and(|t| t.as_bytes().ends_with(b".TransactWriteItems"));
    let target = format!(
        "{}{}",
        tap.moto,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut forwarded = tap.http.request(parts.method, target).body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            forwarded = forwarded.header(name, value);
        }
    }
    let answer = match forwarded.send().await {
        Ok(answer) => answer,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    let stored = (200..300).contains(&status);
    if transaction
        && stored
        && tap
            .remaining
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            == Ok(1)
    {
        tap.fired.fetch_add(1, Ordering::SeqCst);
        if let Some(trigger) = tap
            .trigger
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            trigger();
        }
    }
    let mut response = Response::builder().status(status);
    for (name, value) in &headers {
        if name != "content-length" && name != "transfer-encoding" && name != "connection" {
            response = response.header(name.as_str(), value.as_bytes());
        }
    }
    response.body(Body::from(bytes)).unwrap_or_default()
}
