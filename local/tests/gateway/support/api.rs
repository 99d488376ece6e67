//! Drives the platform's router with the gateway in-process, or the gateway as `plinth up`
//! serves it over TCP, as a client would.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use plinth_registry::deploy::local::ProcessDeployer;
use plinth_registry::deploy::{Deployer, NoTables};
use plinth_registry::events::local::LocalBus;
use plinth_registry::hooks::http::HttpHooks;
use plinth_registry::identity::{Claims, TokenVerifier, mint_token};
use plinth_registry::install::LocalQueue;
use plinth_registry::store::Store;
use plinth_registry::{Platform, Ports, Settings};
use serde_json::Value;
use tempfile::TempDir;
use tower::ServiceExt;

pub const SECRET: &[u8] = b"plinth-tests-secret-0123456789abcdef";

/// A platform of its own for one test: its own store, its own bus.
pub struct TestPlatform {
    pub platform: Arc<Platform>,
    pub bus: Arc<LocalBus>,
    /// The platform API with the module proxy as its fallback, in-process.
    pub router: Router,
    /// When set, requests go over TCP to the gateway as `plinth up` serves it, each on a
    /// connection of its own; else through the router in-process.
    pub served: Option<ServedGateway>,
    _dir: Option<TempDir>,
}

pub struct Response {
    pub status: StatusCode,
    pub content_type: String,
    pub retry_after: Option<String>,
    pub body: Value,
}

impl TestPlatform {
    fn on(store: Arc<dyn Store>, dir: Option<TempDir>) -> Self {
        let bus = Arc::new(LocalBus::default());
        let tokens = TokenVerifier::hs256(SECRET, None, None).unwrap();
        let work = std::env::temp_dir();
        let deployer: Arc<dyn Deployer> = Arc::new(super::fakes::CountingDeployer::new(
            ProcessDeployer::new(&work, work.join("plinth-test-logs")),
        ));
        let (queue, worker) = tokio::sync::mpsc::unbounded_channel();
        let ports = Ports {
            store,
            bus: bus.clone(),
            subscriptions: Arc::new(super::fakes::RecordingSubscriptions::default()),
            deployer,
            tables: Arc::new(NoTables),
            hooks: Arc::new(HttpHooks::with_timeout(std::time::Duration::from_secs(2))),
            install_queue: Arc::new(LocalQueue(queue)),
        };
        let settings = Settings {
            public_url: "http://127.0.0.1:1".into(),
            event_bus: None,
        };
        let context = plinth_registry::gateway::context::ContextSigner::generate().unwrap();
        let platform = Arc::new(Platform::new(ports, tokens, settings, context));
        tokio::spawn(Arc::clone(&platform).run_install_worker(worker));
        let router = plinth_local::gateway::router(Arc::clone(&platform));
        Self {
            platform,
            bus,
            router,
            served: None,
            _dir: dir,
        }
    }

    /// On the embedded store, every request sent to the served gateway over TCP.
    pub async fn served() -> Self {
        let mut platform = Self::embedded();
        platform.served = Some(ServedGateway::start(&platform).await);
        platform
    }

    /// A second worker, as if the platform's process had restarted: it resumes unfinished
    /// installations.
    pub fn restart_worker(&self) {
        let (_queue, worker) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(Arc::clone(&self.platform).run_install_worker(worker));
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
        let (store, dir) = super::embedded();
        Self::on(Arc::new(store), Some(dir))
    }

    pub async fn dynamo(test: &str) -> Option<Self> {
        Self::dynamo_counted(test)
            .await
            .map(|(platform, _)| platform)
    }

    /// On DynamoDB, with the store itself to count its round trips.
    pub async fn dynamo_counted(
        test: &str,
    ) -> Option<(Self, Arc<plinth_registry::store::dynamodb::DynamoStore>)> {
        let store = Arc::new(super::dynamo(test).await?);
        Some((Self::on(store.clone(), None), store))
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
            Some(served) => served.send(request).await.map(Body::new),
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
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let claims = Claims {
        sub: sub.into(),
        tenant_id: tenant.map(Into::into),
        company_id: company.map(Into::into),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        exp,
        nbf: None,
        iss: None,
        aud: None,
    };
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

/// The gateway as `plinth up` serves it, on a port of its own.
pub struct ServedGateway {
    pub addr: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl ServedGateway {
    pub async fn start(p: &TestPlatform) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let gateway = plinth_local::gateway::Gateway::of(Arc::clone(&p.platform));
        let task = tokio::spawn(gateway.serve(listener, async move {
            let _ = stopped.await;
        }));
        Self { addr, stop, task }
    }

    /// Sends `request` on a new connection of its own.
    pub async fn send(
        &self,
        mut request: Request<Body>,
    ) -> axum::http::Response<hyper::body::Incoming> {
        let stream = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        if !request.headers().contains_key(header::HOST) {
            let host = self.addr.parse().unwrap();
            request.headers_mut().insert(header::HOST, host);
        }
        sender.send_request(request).await.unwrap()
    }

    /// Stops it, asserting that it stops within 5 s once its connections close.
    pub async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), self.task)
            .await
            .expect("the gateway stops once its connections close")
            .unwrap()
            .unwrap();
    }
}
