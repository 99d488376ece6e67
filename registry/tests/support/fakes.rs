//! Test doubles for ports whose real adapters are tested on their own, and a module backend.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use plinth_module_sdk::manifest::Subscription;
use plinth_module_sdk::{Manifest, ModuleName};
use plinth_registry::deploy::{DeployError, DeploySpec, Deployer, Deployment};
use plinth_registry::events::{SubscriptionError, Subscriptions};
use serde_json::{Value, json};

/// Counts deploys and undeploys around a real deployer.
#[derive(Debug)]
pub struct CountingDeployer<D> {
    inner: D,
    pub deploys: AtomicUsize,
}

impl<D> CountingDeployer<D> {
    pub fn new(inner: D) -> Self {
        Self {
            inner,
            deploys: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl<D: Deployer> Deployer for CountingDeployer<D> {
    async fn deploy(&self, spec: &DeploySpec) -> Result<Deployment, DeployError> {
        self.deploys.fetch_add(1, Ordering::SeqCst);
        self.inner.deploy(spec).await
    }

    async fn undeploy(
        &self,
        manifest: &Manifest,
        deployment: &Deployment,
    ) -> Result<(), DeployError> {
        self.inner.undeploy(manifest, deployment).await
    }
}

/// Records the rules it was asked for.
#[derive(Debug, Default)]
pub struct RecordingSubscriptions {
    pub rules: Mutex<HashMap<String, Vec<String>>>,
}

#[async_trait]
impl Subscriptions for RecordingSubscriptions {
    async fn subscribe(
        &self,
        module: &ModuleName,
        subscriptions: &[Subscription],
        _: &Deployment,
    ) -> Result<Vec<String>, SubscriptionError> {
        let names: Vec<String> = subscriptions
            .iter()
            .map(|s| format!("plinth-{module}-{}", s.name))
            .collect();
        self.rules
            .lock()
            .unwrap()
            .insert(module.to_string(), names.clone());
        Ok(names)
    }

    async fn unsubscribe(&self, module: &ModuleName) -> Result<(), SubscriptionError> {
        self.rules.lock().unwrap().remove(module.as_str());
        Ok(())
    }
}

/// How the fake backend answers a hook: status and JSON body.
pub type HookAnswers = Arc<Mutex<HashMap<String, (u16, Value)>>>;

/// A module backend on 127.0.0.1: `/health`, and hooks answering as told (200 `{}` by
/// default); every hook call is recorded.
#[derive(Clone, Default)]
pub struct Backend {
    pub answers: HookAnswers,
    pub calls: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Backend {
    /// Starts it; returns its base URL.
    pub async fn start(&self) -> String {
        let app = Router::new()
            .route("/health", get(|| async { "ok" }))
            .route("/_plinth/hooks/{hook}", post(hook))
            .route("/api/v1/{*rest}", axum::routing::any(echo))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    pub fn answer(&self, hook: &str, status: u16, body: Value) {
        self.answers
            .lock()
            .unwrap()
            .insert(hook.into(), (status, body));
    }

    pub fn hooks_called(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|(h, _)| h.clone())
            .collect()
    }
}

async fn hook(
    State(backend): State<Backend>,
    Path(name): Path<String>,
    body: String,
) -> (StatusCode, axum::Json<Value>) {
    let payload: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    backend.calls.lock().unwrap().push((name.clone(), payload));
    let (status, body) = backend
        .answers
        .lock()
        .unwrap()
        .get(&name)
        .cloned()
        .unwrap_or((200, json!({})));
    (StatusCode::from_u16(status).unwrap(), axum::Json(body))
}

/// What a module backend saw of a request: method, path and the headers that matter.
async fn echo(
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::Json<Value> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let plinth: Vec<String> = headers
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("x-plinth-"))
        .collect();
    axum::Json(json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "context": header("x-plinth-context"),
        "authorization": header("authorization"),
        "api_key": header("x-module-api-key"),
        "plinth_headers": plinth,
        "custom": header("x-custom"),
    }))
}

/// Stops the next saga right after a step, as if its worker had died there.
#[derive(Debug, Default)]
pub struct CrashAfter(std::sync::Mutex<Option<plinth_registry::install::Step>>);

impl CrashAfter {
    /// The next saga stops right after `step` (once).
    pub fn after(&self, step: plinth_registry::install::Step) {
        *self.0.lock().unwrap() = Some(step);
    }
}

impl plinth_registry::install::StepObserver for CrashAfter {
    fn step_done(
        &self,
        _module: &plinth_module_sdk::ModuleName,
        step: plinth_registry::install::Step,
    ) -> plinth_registry::Result<()> {
        let mut crash = self.0.lock().unwrap();
        if *crash == Some(step) {
            *crash = None;
            return Err(plinth_registry::Error::unavailable(format!(
                "simulated crash after {step:?}"
            )));
        }
        Ok(())
    }
}

/// The install queue of a test platform: the local worker's, unless told to fail, as a bus
/// that does not take the request would.
#[derive(Debug)]
pub struct FlakyQueue {
    inner: plinth_registry::queue::LocalQueue,
    failures: AtomicUsize,
}

impl FlakyQueue {
    pub fn new(inner: plinth_registry::queue::LocalQueue) -> Self {
        Self {
            inner,
            failures: AtomicUsize::new(0),
        }
    }

    /// The next `n` requests are not delivered.
    pub fn fail_next(&self, n: usize) {
        self.failures.store(n, Ordering::SeqCst);
    }
}

#[async_trait]
impl plinth_registry::queue::InstallQueue for FlakyQueue {
    async fn enqueue(&self, module: &ModuleName) -> plinth_registry::Result<()> {
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(plinth_registry::Error::unavailable(
                "the bus refused the event (simulated)",
            ));
        }
        self.inner.enqueue(module).await
    }
}
