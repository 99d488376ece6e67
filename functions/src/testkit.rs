//! A platform of its own per test, on the embedded store in a temp dir, with the functions'
//! own install queue and deployer, and the fixtures the handlers are tested on.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use plinth_registry::deploy::backend::BackendDeployer;
use plinth_registry::deploy::{DeployError, NoTables};
use plinth_registry::events::local::LocalBus;
use plinth_registry::hooks::ModuleHooks;
use plinth_registry::identity::ContextSigner;
use plinth_registry::identity::{Claims, TokenVerifier, mint_token};
use plinth_registry::queue::BusInstallQueue;
use plinth_registry::reach::Reaches;
use plinth_registry::store::embedded::EmbeddedStore;
use plinth_registry::{App, Identity, Ports, Settings};
use serde_json::{Value, json};
use tempfile::TempDir;
use tower::ServiceExt;

pub const SECRET: &[u8] = b"plinth-functions-tests-secret-0123456789";

/// Where payload fixtures live: the functions' own events here, the AWS events the registry
/// parses (ECR image actions) with the registry. Each exists once.
const FIXTURES: [&str; 2] = ["fixtures", "../registry/tests/fixtures"];

/// A fixture by file name.
pub fn fixture(name: &str) -> Value {
    let path = FIXTURES
        .iter()
        .map(|dir| format!("{}/{dir}/{name}", env!("CARGO_MANIFEST_DIR")))
        .find(|path| std::path::Path::new(path).exists())
        .unwrap_or_else(|| panic!("no fixture {name} in {FIXTURES:?}"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A token for `sub` in `tenant` (and `company`) with platform `roles`.
pub fn token(sub: &str, tenant: Option<&str>, company: Option<&str>, roles: &[&str]) -> String {
    let claims = Claims::user(
        sub,
        tenant,
        company,
        roles,
        std::time::Duration::from_secs(600),
    );
    mint_token(SECRET, &claims).unwrap()
}

pub fn operator() -> String {
    token("ops", None, None, &["platform:admin"])
}

pub struct Kit {
    pub app: App,
    pub bus: Arc<LocalBus>,
    pub router: Router,
    backend: Option<tokio::task::JoinHandle<()>>,
    store: EmbeddedStore,
    settings: Settings,
    _dir: TempDir,
}

impl Kit {
    pub fn new() -> Self {
        Self::with_settings(Settings {
            public_url: "http://127.0.0.1:1".into(),
            ..Settings::default()
        })
    }

    /// A platform with these settings.
    pub fn with_settings(settings: Settings) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path().join("plinth.redb")).unwrap();
        let (app, bus) = Self::app_over(store.clone(), settings.clone());
        let router = app.api();
        Self {
            app,
            bus,
            router,
            backend: None,
            store,
            settings,
            _dir: dir,
        }
    }

    /// Another process of the same platform (on AWS: another warm instance of a function),
    /// over the same store.
    pub fn another_instance(&self) -> App {
        Self::app_over(self.store.clone(), self.settings.clone()).0
    }

    fn app_over(store: EmbeddedStore, settings: Settings) -> (App, Arc<LocalBus>) {
        let bus = Arc::new(LocalBus::default());
        let unconfigured = || Err(DeployError("not configured in tests".into()));
        let ports = Ports::new(
            Arc::new(store),
            bus.clone(),
            Arc::new(BusInstallQueue(bus.clone())),
        )
        .with_subscriptions(bus.clone())
        .with_deployer(Arc::new(BackendDeployer {
            ecs: unconfigured(),
            lambda: unconfigured(),
        }))
        .with_tables(Arc::new(NoTables))
        .with_hooks(Arc::new(
            ModuleHooks::new(Arc::new(Reaches::http()))
                .with_timeout(std::time::Duration::from_secs(2)),
        ));
        let identity = Identity {
            tokens: TokenVerifier::hs256(SECRET, None, None).unwrap(),
            context: Arc::new(ContextSigner::generate().unwrap()),
        };
        (App::build(ports, identity, settings), bus)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {bearer}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A module backend answering 200 everywhere, on a random port.
    async fn start_backend(&mut self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(|| async { axum::Json(json!({"status": "healthy"})) });
        self.backend = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
        url
    }

    /// Stops the backend: its health checks fail from now on.
    pub fn stop_backend(&mut self) {
        if let Some(backend) = self.backend.take() {
            backend.abort();
        }
    }

    /// financial 1.0.0 published and its install requested (not yet run).
    pub async fn install_requested(&mut self) {
        let url = self.start_backend().await;
        let (status, body) = self
            .call(Method::POST, "/api/v1/modules", &operator(), financial())
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let install = json!({"version": "1.0.0", "endpoint": url});
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/modules/financial/install",
                &operator(),
                install,
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }

    /// financial installed (by the installer's handler) and enabled for acme and acme-de.
    pub async fn installed_and_enabled(&mut self) {
        self.install_requested().await;
        let event = serde_json::from_value(fixture("eventbridge-install-requested.json")).unwrap();
        crate::installer::handle(&self.app, event).await.unwrap();
        let tenant = json!({"id": "acme", "name": "ACME", "subscription_tier": "free"});
        let (status, body) = self
            .call(Method::POST, "/api/v1/tenants", &operator(), tenant)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let admin = token("boss", Some("acme"), None, &["tenant:admin"]);
        let company = json!({"id": "acme-de", "name": "ACME GmbH"});
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/tenants/acme/companies",
                &admin,
                company,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = self
            .call(
                Method::PUT,
                "/api/v1/tenants/acme/modules/financial",
                &admin,
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

impl Kit {
    /// `name` published with `calls` as its `dependencies.calls` (financial required),
    /// installed by the installer's handler, enabled for acme; gives back a key of its.
    pub async fn caller_installed(&mut self, name: &str, calls: Value) -> String {
        let url = self.start_backend().await;
        let manifest = json!({
            "name": name, "display_name": name, "version": "1.0.0",
            "backend": {"type": "microservice", "api_prefix": format!("/api/v1/{name}"),
                        "health_check": "/health"},
            "dependencies": {"required_modules": ["financial"], "calls": calls}
        });
        let (status, body) = self
            .call(Method::POST, "/api/v1/modules", &operator(), manifest)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let install = json!({"version": "1.0.0", "endpoint": url});
        let path = format!("/api/v1/modules/{name}/install");
        let (status, body) = self.call(Method::POST, &path, &operator(), install).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let mut event = fixture("eventbridge-install-requested.json");
        event["detail"]["module"] = json!(name);
        let event = serde_json::from_value(event).unwrap();
        crate::installer::handle(&self.app, event).await.unwrap();
        let admin = token("boss", Some("acme"), None, &["tenant:admin"]);
        let path = format!("/api/v1/tenants/acme/modules/{name}");
        let (status, body) = self.call(Method::PUT, &path, &admin, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let path = format!("/api/v1/modules/{name}/api-keys");
        let (status, body) = self.call(Method::POST, &path, &operator(), json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["key"].as_str().unwrap().to_owned()
    }
}

impl Kit {
    /// financial `version` (otherwise the example manifest) published and installed alongside
    /// the first installation by the installer's handler, on a backend of its own.
    pub async fn version_alongside_installed(&mut self, version: &str) {
        let url = self.start_backend().await;
        let mut manifest = financial();
        manifest["version"] = json!(version);
        let (status, body) = self
            .call(Method::POST, "/api/v1/modules", &operator(), manifest)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let install = json!({"version": version, "endpoint": url, "alongside": true});
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/modules/financial/install",
                &operator(),
                install,
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let event = serde_json::from_value(fixture("eventbridge-install-requested.json")).unwrap();
        crate::installer::handle(&self.app, event).await.unwrap();
    }
}

impl Drop for Kit {
    fn drop(&mut self) {
        self.stop_backend();
    }
}

/// The example manifest: one open route, one that needs a permission, an ECR image.
pub fn financial() -> Value {
    json!({
        "name": "financial", "display_name": "Financial", "version": "1.0.0",
        "backend": {"type": "microservice", "api_prefix": "/api/v1/financial", "health_check": "/health",
                    "image": "plinth-financial:1.2.0"},
        "subscription_tier": "free",
        "permissions": ["financial:invoices.read"],
        "configuration": {"defaults": {"currency": "EUR"}},
        "routes": [
            {"path": "/invoices", "methods": ["GET"], "permission": "financial:invoices.read"},
            {"path": "/status", "methods": ["GET"]}
        ]
    })
}

#[cfg(test)]
mod registry_api {
    use super::*;

    /// The registry API as the `registry-api` binary serves it: API Gateway's payload through
    /// `lambda_http` into the registry's router.
    #[tokio::test]
    async fn an_api_gateway_request_reaches_the_router() {
        let kit = Kit::new();
        let payload = fixture("apigw-v2-health-request.json").to_string();
        let request = lambda_http::request::from_str(&payload).unwrap();
        let response = kit.router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["status"], "healthy");
    }
}
