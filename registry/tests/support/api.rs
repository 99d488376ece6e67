//! Drives the platform's router in-process, as a client would over HTTP — or, where a test
//! crate plugs in a [`Served`] transport (the gateway's tests in `local/`), over TCP. One copy:
//! `local/tests/gateway/` includes this folder.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use plinth_registry::deploy::local::ProcessDeployer;
use plinth_registry::deploy::{Deployer, NoTables};
use plinth_registry::events::local::LocalBus;
use plinth_registry::hooks::ModuleHooks;
use plinth_registry::identity::{Claims, ContextSigner, TokenVerifier, mint_token};
use plinth_registry::queue::LocalQueue;
use plinth_registry::reach::Reaches;
use plinth_registry::store::Store;
use plinth_registry::{App, Identity, Ports, Settings};
use serde_json::Value;
use tempfile::TempDir;
use tower::ServiceExt;

pub const SECRET: &[u8] = b"plinth-tests-secret-0123456789abcdef";

/// What a test's router is built from: the platform API alone (`App::api`), or with the
/// gateway's proxy as its fallback.
pub type MakeRouter = fn(&App) -> Router;

/// A transport that sends each request over TCP to a served platform.
pub trait Served: Send + Sync {
    fn send(
        &self,
        request: Request<Body>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = axum::response::Response> + Send + '_>>;
}

/// A platform of its own for one test: its own store, its own bus.
pub struct TestPlatform {
    pub app: App,
    pub store: Arc<dyn Store>,
    pub bus: Arc<LocalBus>,
    /// Stops the next saga after a step, as if its worker had died.
    pub crash: Arc<super::fakes::CrashAfter>,
    /// The install queue, which can be told not to deliver.
    pub queue: Arc<super::fakes::FlakyQueue>,
    /// The router requests go to in-process.
    pub router: Router,
    /// When set, requests go over TCP instead, each on a connection of its own.
    pub served: Option<Box<dyn Served>>,
    _dir: Option<TempDir>,
}

pub struct Response {
    pub status: StatusCode,
    pub content_type: String,
    pub retry_after: Option<String>,
    pub body: Value,
}

impl TestPlatform {
    fn on(store: Arc<dyn Store>, dir: Option<TempDir>, make_router: MakeRouter) -> Self {
        Self::on_ports(store, dir, make_router, |ports| ports)
    }

    /// On the embedded store, with `adapt` putting other adapters in (a deployer, the reach).
    pub fn embedded_adapted(adapt: impl FnOnce(Ports) -> Ports) -> Self {
        let (store, dir) = super::embedded();
        Self::on_ports(Arc::new(store), Some(dir), App::api, adapt)
    }

    fn on_ports(
        store: Arc<dyn Store>,
        dir: Option<TempDir>,
        make_router: MakeRouter,
        adapt: impl FnOnce(Ports) -> Ports,
    ) -> Self {
        let bus = Arc::new(LocalBus::default());
        let tokens = TokenVerifier::hs256(SECRET, None, None).unwrap();
        let work = std::env::temp_dir();
        let deployer: Arc<dyn Deployer> = Arc::new(super::fakes::CountingDeployer::new(
            ProcessDeployer::new(&work, work.join("plinth-test-logs")),
        ));
        let (queue, worker) = tokio::sync::mpsc::unbounded_channel();
        let crash = Arc::new(super::fakes::CrashAfter::default());
        let queue = Arc::new(super::fakes::FlakyQueue::new(LocalQueue(queue)));
        let ports = Ports::new(Arc::clone(&store), bus.clone(), queue.clone())
            .with_subscriptions(Arc::new(super::fakes::RecordingSubscriptions::default()))
            .with_deployer(deployer)
            .with_tables(Arc::new(NoTables))
            .with_hooks(Arc::new(
                ModuleHooks::new(Arc::new(Reaches::http()))
                    .with_timeout(std::time::Duration::from_secs(2)),
            ))
            .with_step_observer(crash.clone());
        let ports = adapt(ports);
        let settings = Settings {
            public_url: "http://127.0.0.1:1".into(),
            ..Settings::default()
        };
        let identity = Identity {
            tokens,
            context: Arc::new(ContextSigner::generate().unwrap()),
        };
        let app = App::build(ports, identity, settings);
        tokio::spawn(Arc::clone(&app.plane.installer).run_worker(worker));
        let router = make_router(&app);
        Self {
            app,
            store,
            bus,
            crash,
            queue,
            router,
            served: None,
            _dir: dir,
        }
    }

    /// A second worker, as if the platform's process had restarted: it resumes unfinished
    /// installations.
    pub fn restart_worker(&self) {
        let (_queue, worker) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(Arc::clone(&self.app.plane.installer).run_worker(worker));
    }

    /// Polls the installation of `module` until no operation is pending or running.
    pub async fn settled(&self, module: &str) -> Value {
        for _ in 0..200 {
            let status = self
                .call(
                    Method::GET,
                    &format!("/api/v1/modules/{module}/installation"),
                    operator(),
                    None,
                )
                .await;
            let state = status.body["status"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if status.status == StatusCode::OK && state != "pending" && state != "running" {
                return status.body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the installation of {module} did not settle");
    }

    pub fn embedded() -> Self {
        Self::embedded_with(App::api)
    }

    pub fn embedded_with(make_router: MakeRouter) -> Self {
        let (store, dir) = super::embedded();
        Self::on(Arc::new(store), Some(dir), make_router)
    }

    pub async fn dynamo(test: &str) -> Option<Self> {
        Self::dynamo_with(test, App::api).await
    }

    pub async fn dynamo_with(test: &str, make_router: MakeRouter) -> Option<Self> {
        let store = Arc::new(super::dynamo(test).await?);
        Some(Self::on(store, None, make_router))
    }

    /// On DynamoDB, with `adapt` putting other adapters in (a bundle store).
    pub async fn dynamo_adapted(test: &str, adapt: impl FnOnce(Ports) -> Ports) -> Option<Self> {
        let store = Arc::new(super::dynamo(test).await?);
        Some(Self::on_ports(store, None, App::api, adapt))
    }

    /// On DynamoDB, with the store itself to count its round trips.
    pub async fn dynamo_counted(
        test: &str,
    ) -> Option<(Self, Arc<plinth_registry::store::dynamodb::DynamoStore>)> {
        Self::dynamo_counted_with(test, App::api).await
    }

    pub async fn dynamo_counted_with(
        test: &str,
        make_router: MakeRouter,
    ) -> Option<(Self, Arc<plinth_registry::store::dynamodb::DynamoStore>)> {
        let store = Arc::new(super::dynamo(test).await?);
        Some((Self::on(store.clone(), None, make_router), store))
    }

    /// Enables `module` for `tenant` with no configuration, as the tenant's admin (200 expected).
    pub async fn enable(&self, tenant: &str, module: &str) {
        self.call(
            Method::PUT,
            &format!("/api/v1/tenants/{tenant}/modules/{module}"),
            tenant_admin(tenant),
            Some(serde_json::json!({})),
        )
        .await
        .expect(StatusCode::OK);
    }

    /// Detail-types published so far, oldest first.
    /// Whether an event of `detail_type` has been published, waiting up to 5 s for it: a saga
    /// publishes its outcome just after storing it, so a settled installation's event may
    /// still be on its way.
    pub async fn saw(&self, detail_type: &str) -> bool {
        for _ in 0..250 {
            if self.events().iter().any(|e| e == detail_type) {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        false
    }

    pub fn events(&self) -> Vec<String> {
        self.bus
            .recent()
            .into_iter()
            .map(|e| e.detail_type)
            .collect()
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Auth,
        body: Option<Value>,
    ) -> Response {
        let mut request = Request::builder().method(method).uri(path);
        match auth {
            Auth::None => {}
            Auth::Token(token) => {
                request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
            }
            Auth::ApiKey(key) => request = request.header("x-module-api-key", key),
        }
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        self.raw(request.body(body).unwrap()).await
    }

    /// Sends a request as built.
    pub async fn raw(&self, request: Request<Body>) -> Response {
        let response = match &self.served {
            Some(served) => served.send(request).await,
            None => self.router.clone().oneshot(request).await.unwrap(),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_string());
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Response {
            status,
            content_type,
            retry_after,
            body,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Auth {
    None,
    Token(String),
    ApiKey(String),
}

/// A token for `sub` in `tenant` (and `company`) with platform `roles`.
pub fn token(sub: &str, tenant: Option<&str>, company: Option<&str>, roles: &[&str]) -> Auth {
    let claims = Claims::user(
        sub,
        tenant,
        company,
        roles,
        std::time::Duration::from_secs(600),
    );
    Auth::Token(mint_token(SECRET, &claims).unwrap())
}

pub fn operator() -> Auth {
    token("operator", None, None, &["platform:admin"])
}

pub fn tenant_admin(tenant: &str) -> Auth {
    token(
        &format!("{tenant}-admin"),
        Some(tenant),
        None,
        &["tenant:admin"],
    )
}

/// A manifest fixture of the repository, as JSON.
pub fn fixture(path: &str) -> Value {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&full).unwrap()).unwrap()
}

/// The example financial module's manifest.
pub fn financial() -> Value {
    fixture("examples/financial/manifest.json")
}

impl Response {
    #[track_caller]
    pub fn expect(&self, status: StatusCode) -> &Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        &self.body
    }

    /// A problem document with this status whose detail contains `needle`.
    #[track_caller]
    pub fn expect_problem(&self, status: StatusCode, needle: &str) -> &Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.content_type, "application/problem+json");
        let detail = self.body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(needle),
            "detail `{detail}` should contain `{needle}`"
        );
        &self.body
    }
}
