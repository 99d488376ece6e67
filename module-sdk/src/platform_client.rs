//! [`PlatformClient`]: the platform API a module calls, with its own API key
//! (`X-Module-API-Key`), never a user's token.

use std::time::Duration;

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::ModuleName;
use crate::api_key::ApiKey;
use crate::events::Event;

/// The header carrying a module's API key.
pub const API_KEY_HEADER: &str = "x-module-api-key";

/// The header naming the tenant a module calls another module's route for.
pub const TENANT_HEADER: &str = "x-plinth-tenant";

const TIMEOUT: Duration = Duration::from_secs(10);

/// A platform call that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    /// The platform answered with an error; `detail` is its problem document's.
    #[error("the platform answered {status}: {detail}")]
    Status {
        /// The HTTP status.
        status: StatusCode,
        /// What the platform said.
        detail: String,
    },
    /// The platform could not be reached.
    #[error("cannot reach the platform: {0}")]
    Unreachable(String),
    /// The platform's answer was not what the contract says.
    #[error("unexpected answer from the platform: {0}")]
    Malformed(String),
    /// The module's API key cannot be had (its secret cannot be read); the text says why.
    #[error("{0}")]
    ApiKey(String),
}

impl PlatformError {
    /// The status the platform answered, if it answered.
    #[must_use]
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<PlatformError> for crate::ApiError {
    fn from(error: PlatformError) -> Self {
        crate::ApiError::bad_gateway(error.to_string())
    }
}

/// A company of a tenant, as `GET /api/v1/tenants/{t}/companies/{c}` gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Company {
    /// The company's id.
    pub id: String,
    /// Its tenant.
    pub tenant_id: String,
    /// Its display name.
    pub name: String,
    /// Country code, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Every other field the platform sends.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The answer to a configuration fetch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ConfigFetch {
    /// `200`: the document and its `ETag`.
    Fresh(Value, Option<String>),
    /// `304`: what the caller holds is current.
    NotModified,
    /// `404`: the tenant (or company) does not have the module.
    NotEnabled,
}

/// Calls the platform's API for one module. Cheap to clone.
///
/// ```no_run
/// use plinth_module_sdk::{ModuleName, PlatformClient};
///
/// # async fn demo() -> Result<(), plinth_module_sdk::PlatformError> {
/// let module = ModuleName::parse("financial").expect("a module name");
/// let platform = PlatformClient::new("http://127.0.0.1:8080", &module, "pk_…");
/// let allowed = platform
///     .verify_permission("acme", "ann", "financial:invoices.read", Some("acme-de"))
///     .await?;
/// let company = platform.company("acme", "acme-de").await?;
/// println!("{allowed} {}", company.name);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PlatformClient {
    base: String,
    module: ModuleName,
    api_key: ApiKey,
    http: reqwest::Client,
}

impl PlatformClient {
    /// A client of the platform at `base_url`, for `module`, with its API key.
    #[must_use]
    pub fn new(base_url: &str, module: &ModuleName, api_key: &str) -> Self {
        Self::with_key(base_url, module, ApiKey::given(api_key))
    }

    /// A client with a shared [`ApiKey`], which may be read from a secret and renewed when
    /// the platform refuses it.
    #[must_use]
    pub fn with_key(base_url: &str, module: &ModuleName, api_key: ApiKey) -> Self {
        Self {
            base: base_url.trim_end_matches('/').to_owned(),
            module: module.clone(),
            api_key,
            http: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .build()
                .unwrap_or_default(),
        }
    }

    /// The module this client acts for.
    #[must_use]
    pub fn module(&self) -> &ModuleName {
        &self.module
    }

    /// The platform's base URL.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Whether `user` holds `permission` in `tenant` (and `company`): `POST /api/v1/rbac/verify`.
    ///
    /// # Errors
    /// A [`PlatformError`] when the platform refuses or cannot be reached.
    pub async fn verify_permission(
        &self,
        tenant: &str,
        user: &str,
        permission: &str,
        company: Option<&str>,
    ) -> Result<bool, PlatformError> {
        let mut body = json!({"tenant_id": tenant, "user_id": user, "permission": permission});
        if let Some(company) = company {
            body["company_id"] = json!(company);
        }
        let request = self.http.post(self.url("/api/v1/rbac/verify")).json(&body);
        let answer: Value = self.send(request).await?;
        answer["has_permission"]
            .as_bool()
            .ok_or_else(|| PlatformError::Malformed(format!("no `has_permission` in {answer}")))
    }

    /// A tenant's company: `GET /api/v1/tenants/{t}/companies/{c}`.
    ///
    /// # Errors
    /// A [`PlatformError`]; `404` when there is no such company.
    pub async fn company(&self, tenant: &str, company: &str) -> Result<Company, PlatformError> {
        let path = format!("/api/v1/tenants/{tenant}/companies/{company}");
        let answer = self.send(self.http.get(self.url(&path))).await?;
        serde_json::from_value(answer).map_err(|e| PlatformError::Malformed(e.to_string()))
    }

    /// Registers a running instance of the module: `POST /api/v1/modules/{m}/instances`.
    ///
    /// # Errors
    /// A [`PlatformError`] when the platform refuses or cannot be reached.
    pub async fn register_instance(
        &self,
        instance_url: &str,
        health_check_url: &str,
    ) -> Result<(), PlatformError> {
        let path = format!("/api/v1/modules/{}/instances", self.module);
        let body = json!({"instance_url": instance_url, "health_check_url": health_check_url});
        let request = self.http.post(self.url(&path)).json(&body);
        self.send(request).await.map(drop)
    }

    /// Publishes one of the module's own events on the platform's bus: `POST /api/v1/events`.
    ///
    /// # Errors
    /// A [`PlatformError`]; the platform refuses events whose `source` is not the module's.
    pub async fn publish_event(&self, event: &Event) -> Result<(), PlatformError> {
        let request = self.http.post(self.url("/api/v1/events")).json(event);
        self.send(request).await.map(drop)
    }

    /// Calls another module's route through the gateway, for `tenant`, with this module's
    /// key: `method {platform}/api/v1/{module}{path}`, a JSON `body` if any. The gateway
    /// allows it when this module's manifest declares calling `module` with the permission
    /// the route needs (`dependencies.calls`) and the tenant enabled both; the callee's
    /// context names this module (`calling_module`).
    ///
    /// ```no_run
    /// # async fn demo(platform: plinth_module_sdk::PlatformClient) -> Result<(), plinth_module_sdk::PlatformError> {
    /// let stock = platform.call_module("acme", http::Method::GET, "inventory", "/stock/42", None).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A [`PlatformError`] with the gateway's or the callee's refusal.
    pub async fn call_module(
        &self,
        tenant: &str,
        method: http::Method,
        module: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, PlatformError> {
        let request = self.module_request(method, module, path, body);
        self.send(request.header(TENANT_HEADER, tenant)).await
    }

    /// Like [`PlatformClient::call_module`], on behalf of the user of the request being
    /// handled: `context` is the context token that request carried
    /// ([`crate::auth::ContextToken`]). The callee sees that user, tenant and company, with
    /// the user's permissions there that this module declares calling with.
    ///
    /// # Errors
    /// A [`PlatformError`] with the gateway's or the callee's refusal.
    pub async fn call_module_for(
        &self,
        context: &crate::auth::ContextToken,
        method: http::Method,
        module: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, PlatformError> {
        let request = self.module_request(method, module, path, body);
        self.send(request.header(crate::context::CONTEXT_HEADER, context.as_str()))
            .await
    }

    fn module_request(
        &self,
        method: http::Method,
        module: &str,
        path: &str,
        body: Option<&Value>,
    ) -> reqwest::RequestBuilder {
        let path = format!("/api/v1/{module}/{}", path.trim_start_matches('/'));
        let request = self.http.request(method, self.url(&path));
        match body {
            Some(body) => request.json(body),
            None => request,
        }
    }

    /// The resolved configuration of `tenant` (and `company`), revalidated with `etag`.
    pub(crate) async fn fetch_config(
        &self,
        tenant: &str,
        company: Option<&str>,
        etag: Option<&str>,
    ) -> Result<ConfigFetch, PlatformError> {
        let path = format!("/api/v1/tenants/{tenant}/modules/{}/config", self.module);
        let mut url = reqwest::Url::parse(&self.url(&path))
            .map_err(|e| PlatformError::Unreachable(format!("{}: {e}", self.base)))?;
        if let Some(company) = company {
            url.query_pairs_mut().append_pair("company", company);
        }
        let mut request = self.http.get(url);
        if let Some(etag) = etag {
            request = request.header(http::header::IF_NONE_MATCH, etag);
        }
        let response = self.authorized(request).await?;
        match response.status() {
            StatusCode::NOT_MODIFIED => Ok(ConfigFetch::NotModified),
            StatusCode::NOT_FOUND => Ok(ConfigFetch::NotEnabled),
            _ => {
                let etag = response
                    .headers()
                    .get(http::header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = checked(response).await?;
                Ok(ConfigFetch::Fresh(body, etag))
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `request` with the module's key; when the platform refuses the key (`401`) and
    /// a newer one can be read from its secret, sends it once more with that one.
    async fn authorized(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, PlatformError> {
        let key = self.api_key.current().await?;
        let again = request.try_clone();
        let response = request
            .header(API_KEY_HEADER, &key)
            .send()
            .await
            .map_err(|e| unreachable(&e))?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let (Some(again), Some(renewed)) = (again, self.api_key.renew(&key).await?) else {
            return Ok(response);
        };
        again
            .header(API_KEY_HEADER, renewed)
            .send()
            .await
            .map_err(|e| unreachable(&e))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, PlatformError> {
        checked(self.authorized(request).await?).await
    }
}

fn unreachable(error: &reqwest::Error) -> PlatformError {
    PlatformError::Unreachable(error.to_string())
}

/// The body of a successful answer (`null` when empty), or the problem's detail.
async fn checked(response: reqwest::Response) -> Result<Value, PlatformError> {
    let status = response.status();
    let text = response.text().await.map_err(|e| unreachable(&e))?;
    let body: Value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).map_err(|e| {
            PlatformError::Malformed(format!("{status} with a body that is not JSON: {e}"))
        })?
    };
    if status.is_success() {
        return Ok(body);
    }
    let detail = ["detail", "title", "message"]
        .iter()
        .find_map(|field| body.get(field).and_then(Value::as_str))
        .map_or_else(|| text.chars().take(300).collect(), str::to_owned);
    Err(PlatformError::Status { status, detail })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// What the gateway got: method, path and the credentials of each call.
    async fn gateway() -> (String, Arc<Mutex<Vec<Value>>>) {
        let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
        let record = Arc::clone(&seen);
        let app = axum::Router::new().fallback(
            move |method: http::Method, uri: http::Uri, headers: http::HeaderMap, body: String| {
                let record = Arc::clone(&record);
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned)
                    };
                    record.lock().unwrap().push(json!({
                        "method": method.as_str(), "path": uri.path(), "body": body,
                        "key": header(API_KEY_HEADER), "tenant": header(TENANT_HEADER),
                        "context": header(crate::context::CONTEXT_HEADER),
                    }));
                    axum::Json(json!({"in_stock": 3}))
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, seen)
    }

    #[tokio::test]
    async fn a_module_call_goes_through_the_gateway_with_the_key_and_the_tenant_or_the_context() {
        let (url, seen) = gateway().await;
        let module = ModuleName::parse("reports").unwrap();
        let platform = PlatformClient::new(&url, &module, "plk_reports");
        let stock = platform
            .call_module("acme", http::Method::GET, "inventory", "/stock/42", None)
            .await
            .unwrap();
        assert_eq!(stock, json!({"in_stock": 3}));
        let token = crate::auth::ContextToken::for_tests("ctx.of.alice");
        let body = json!({"n": 1});
        platform
            .call_module_for(
                &token,
                http::Method::POST,
                "inventory",
                "reservations",
                Some(&body),
            )
            .await
            .unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            [
                json!({"method": "GET", "path": "/api/v1/inventory/stock/42", "body": "",
                       "key": "plk_reports", "tenant": "acme", "context": null}),
                json!({"method": "POST", "path": "/api/v1/inventory/reservations", "body": "{\"n\":1}",
                       "key": "plk_reports", "tenant": null, "context": "ctx.of.alice"}),
            ]
        );
    }
}
