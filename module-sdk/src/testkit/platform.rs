//! [`FakePlatform`]: the platform API a module calls, answered from memory on a local port,
//! with the same paths, headers and status codes as the real one.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::TestKit;
use crate::events::{Event, module_source};
use crate::platform_client::API_KEY_HEADER;
use crate::runtime::ModuleEnv;
use crate::{ApiError, ModuleName};

/// The API key the fake platform expects from the module.
pub const TEST_API_KEY: &str = "test-api-key";

#[derive(Debug, Default)]
struct Tenant {
    configuration: Map<String, Value>,
    features: Vec<String>,
    /// Company id → (enabled, overrides).
    companies: BTreeMap<String, (bool, Map<String, Value>)>,
}

#[derive(Debug, Default)]
struct Data {
    jwks: Value,
    revision: u64,
    tenants: BTreeMap<String, Tenant>,
    grants: HashSet<(String, String, String)>,
    instances: Vec<Value>,
    events: Vec<Event>,
    config_requests: usize,
    /// The API keys accepted; [`TEST_API_KEY`] until [`FakePlatform::accept_keys`].
    keys: Vec<String>,
    /// How many requests were refused for their key.
    refused: usize,
}

/// A platform in memory for one module, serving on `127.0.0.1` (see the [module docs](super)).
///
/// ```
/// use plinth_module_sdk::testkit::{FakePlatform, TestKit};
/// use serde_json::json;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let kit = TestKit::new("financial");
/// let platform = FakePlatform::start(&kit).await;
/// platform.enable("acme", json!({"currency": "EUR", "invoice_prefix": "ACME"}));
/// platform.configure_company("acme", "acme-de", json!({"invoice_prefix": "ACME-DE"}));
///
/// let config = platform.env().config();
/// let resolved = config.get("acme", Some("acme-de")).await.unwrap().unwrap();
/// assert_eq!(resolved.configuration["invoice_prefix"], "ACME-DE");
/// assert_eq!(resolved.configuration["currency"], "EUR");
/// assert!(config.get("globex", None).await.unwrap().is_none());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct FakePlatform {
    url: String,
    module: ModuleName,
    data: Arc<Mutex<Data>>,
}

impl FakePlatform {
    /// Starts serving on a free local port, with `kit`'s key in its JWKS.
    ///
    /// # Panics
    /// When the kit's module name is not a valid module name, or no port can be had.
    pub async fn start(kit: &TestKit) -> Self {
        let module = ModuleName::parse(kit.module()).expect("a valid module name");
        let data = Arc::new(Mutex::new(Data {
            jwks: kit.jwks(),
            revision: 1,
            keys: vec![TEST_API_KEY.to_owned()],
            ..Data::default()
        }));
        let platform = Self {
            url: String::new(),
            module,
            data,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a local port");
        let address = listener.local_addr().expect("the bound address");
        let app = routes().with_state(platform.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{address}"),
            ..platform
        }
    }

    /// The base URL, for `PLINTH_URL`.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The environment a module process would get from this platform (port 0).
    #[must_use]
    pub fn env(&self) -> ModuleEnv {
        ModuleEnv {
            module: self.module.clone(),
            platform_url: self.url.clone(),
            api_key: crate::api_key::ApiKey::given(TEST_API_KEY),
            port: 0,
            event_bus: None,
            event_queue_url: None,
            instance_url: None,
            task_metadata_url: None,
        }
    }

    /// Enables the module for `tenant` with this resolved configuration (an object).
    pub fn enable(&self, tenant: &str, configuration: Value) {
        let mut data = self.lock();
        data.revision += 1;
        let entry = data.tenants.entry(tenant.to_owned()).or_default();
        entry.configuration = object(configuration);
    }

    /// Sets the features that are on for `tenant`.
    pub fn set_features(&self, tenant: &str, features: &[&str]) {
        let mut data = self.lock();
        data.revision += 1;
        let entry = data.tenants.entry(tenant.to_owned()).or_default();
        entry.features = features.iter().map(|f| (*f).to_owned()).collect();
    }

    /// Gives `company` of `tenant` its own values (merged over the tenant's) and enables it.
    pub fn configure_company(&self, tenant: &str, company: &str, overrides: Value) {
        let mut data = self.lock();
        data.revision += 1;
        let entry = data.tenants.entry(tenant.to_owned()).or_default();
        let overrides = object(overrides);
        entry
            .companies
            .insert(company.to_owned(), (true, overrides));
    }

    /// Disables the module for one company of `tenant`.
    pub fn disable_company(&self, tenant: &str, company: &str) {
        let mut data = self.lock();
        data.revision += 1;
        let entry = data.tenants.entry(tenant.to_owned()).or_default();
        entry.companies.entry(company.to_owned()).or_default().0 = false;
    }

    /// Serves the public keys of `kits` in the JWKS from now on (key rotation).
    pub fn use_keys(&self, kits: &[&TestKit]) {
        let keys: Vec<Value> = kits
            .iter()
            .flat_map(|kit| kit.jwks()["keys"].as_array().cloned().unwrap_or_default())
            .collect();
        self.lock().jwks = json!({ "keys": keys });
    }

    /// Lets `user` of `tenant` hold `permission` (for `rbac/verify`).
    pub fn grant(&self, tenant: &str, user: &str, permission: &str) {
        let grant = (tenant.to_owned(), user.to_owned(), permission.to_owned());
        self.lock().grants.insert(grant);
    }

    /// The current configuration version, to put in a context with
    /// [`super::ContextBuilder::config_version`].
    #[must_use]
    pub fn config_version(&self) -> String {
        self.lock().revision.to_string()
    }

    /// The events the module published, oldest first.
    #[must_use]
    pub fn published(&self) -> Vec<Event> {
        self.lock().events.clone()
    }

    /// The instance registrations received.
    #[must_use]
    pub fn instances(&self) -> Vec<Value> {
        self.lock().instances.clone()
    }

    /// Accepts these API keys from now on, and only them: a rotation (old and new during its
    /// overlap, then the new one alone).
    pub fn accept_keys(&self, keys: &[&str]) {
        self.lock().keys = keys.iter().map(|k| (*k).to_owned()).collect();
    }

    /// How many requests were refused (`401`) for their API key.
    #[must_use]
    pub fn refused_keys(&self) -> usize {
        self.lock().refused
    }

    /// How many configuration requests were answered (304s included).
    #[must_use]
    pub fn config_requests(&self) -> usize {
        self.lock().config_requests
    }

    fn lock(&self) -> MutexGuard<'_, Data> {
        self.data
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn check_key(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let mut data = self.lock();
        let refusal = match headers.get(API_KEY_HEADER) {
            Some(key) if data.keys.iter().any(|k| key == k.as_str()) => return Ok(()),
            Some(_) => ApiError::unauthorized("the module API key is not valid"),
            None => ApiError::unauthorized(format!("no {API_KEY_HEADER} header")),
        };
        data.refused += 1;
        Err(refusal)
    }

    fn resolve(&self, tenant: &str, company: Option<&str>) -> Option<Value> {
        let data = self.lock();
        let setup = data.tenants.get(tenant)?;
        let mut configuration = setup.configuration.clone();
        let mut sources: Map<String, Value> = configuration
            .keys()
            .map(|k| (k.clone(), json!(crate::config_client::ConfigTier::Tenant)))
            .collect();
        if let Some(company) = company {
            match setup.companies.get(company) {
                Some((false, _)) => return None,
                Some((true, overrides)) => {
                    for (key, value) in overrides {
                        configuration.insert(key.clone(), value.clone());
                        sources.insert(
                            key.clone(),
                            json!(crate::config_client::ConfigTier::Company),
                        );
                    }
                }
                None => {}
            }
        }
        Some(json!({
            "module": self.module, "tenant_id": tenant, "company_id": company,
            "configuration": configuration, "sources": sources,
            "features": setup.features, "version": data.revision.to_string(),
        }))
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn routes() -> Router<FakePlatform> {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route(
            "/api/v1/tenants/{tenant}/modules/{module}/config",
            get(config),
        )
        .route("/api/v1/rbac/verify", post(verify))
        .route("/api/v1/modules/{module}/instances", post(register))
        .route("/api/v1/tenants/{tenant}/companies/{company}", get(company))
        .route("/api/v1/events", post(publish))
}

async fn jwks(State(platform): State<FakePlatform>) -> Json<Value> {
    Json(platform.lock().jwks.clone())
}

async fn config(
    State(platform): State<FakePlatform>,
    Path((tenant, module)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    platform.check_key(&headers)?;
    platform.lock().config_requests += 1;
    if module != platform.module.as_str() {
        return Err(ApiError::forbidden(
            "a module reads only its own configuration",
        ));
    }
    let company = query.get("company").map(String::as_str);
    let resolved = platform.resolve(&tenant, company).ok_or_else(|| {
        ApiError::not_found(format!("tenant `{tenant}` does not have module `{module}`"))
    })?;
    let etag = format!("\"{}\"", resolved["version"].as_str().unwrap_or_default());
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    Ok(([(header::ETAG, etag)], Json(resolved)).into_response())
}

async fn verify(
    State(platform): State<FakePlatform>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    platform.check_key(&headers)?;
    let field = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
    let grant = (field("tenant_id"), field("user_id"), field("permission"));
    let has_permission = platform.lock().grants.contains(&grant);
    Ok(Json(json!({"has_permission": has_permission})))
}

async fn register(
    State(platform): State<FakePlatform>,
    Path(module): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    platform.check_key(&headers)?;
    if module != platform.module.as_str() {
        return Err(ApiError::forbidden(format!(
            "only {module}'s own API key may register its instances"
        )));
    }
    platform.lock().instances.push(body.clone());
    Ok((StatusCode::CREATED, Json(body)))
}

async fn company(
    State(platform): State<FakePlatform>,
    Path((tenant, company)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    platform.check_key(&headers)?;
    let known = platform
        .lock()
        .tenants
        .get(&tenant)
        .is_some_and(|t| t.companies.contains_key(&company));
    if !known {
        return Err(ApiError::not_found(format!(
            "company `{company}` of `{tenant}`"
        )));
    }
    Ok(Json(json!({
        "id": company, "tenant_id": tenant, "name": company,
        "created_at": "2024-01-01T00:00:00Z",
    })))
}

async fn publish(
    State(platform): State<FakePlatform>,
    headers: HeaderMap,
    Json(event): Json<Event>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    platform.check_key(&headers)?;
    let own = module_source(&platform.module);
    if event.source != own {
        return Err(ApiError::forbidden(format!(
            "a module publishes only its own events: source must be `{own}`"
        )));
    }
    let id = event.id.clone();
    platform.lock().events.push(event);
    Ok((StatusCode::ACCEPTED, Json(json!({"id": id}))))
}
