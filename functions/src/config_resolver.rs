//! The config resolver: a module's resolved configuration for a tenant (and company), on the
//! hot path. Reached two ways: API Gateway (`GET /api/v1/tenants/{tenant}/modules/{module}/config
//! ?company=…`, the caller from its token or API key), answered by the registry API's own config
//! route code (`api::config_answer`) — the same `ETag`, the same `304` to a matching
//! `If-None-Match`, the same problem documents; and direct invoke by a module's own function
//! (`{"tenant_id", "module", "company_id"?, "api_key"}`). A direct invoke is authenticated as the
//! HTTP path is: by the module's API key, which names the module it acts as. Being allowed to
//! invoke the function (IAM) is not enough, since every module's role may invoke it.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use plinth_module_sdk::ModuleName;
use plinth_module_sdk::wire::ResolvedConfig;
use plinth_registry::identity::Caller;
use plinth_registry::ids::{CompanyId, TenantId};
use plinth_registry::{App, Error, Result};
use serde::Deserialize;
use serde_json::Value;

/// A direct invocation: what to resolve, and the module's API key (`X-Module-API-Key` on the
/// HTTP path).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectRequest {
    pub tenant_id: String,
    pub module: String,
    #[serde(default)]
    pub company_id: Option<String>,
    pub api_key: String,
}

impl std::fmt::Debug for DirectRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectRequest")
            .field("tenant_id", &self.tenant_id)
            .field("module", &self.module)
            .field("company_id", &self.company_id)
            .finish_non_exhaustive()
    }
}

/// Either kind of invocation: API Gateway's payload 2.0 carries `requestContext`.
pub async fn handle(app: &App, payload: Value) -> Result<Value> {
    if payload.get("requestContext").is_some() {
        let request: ApiGatewayV2httpRequest = serde_json::from_value(payload)
            .map_err(|e| Error::BadRequest(format!("not an API Gateway request: {e}")))?;
        let response = over_http(app, &request).await;
        return serde_json::to_value(response)
            .map_err(|e| Error::internal_because("the response", e));
    }
    let request: DirectRequest = serde_json::from_value(payload).map_err(|e| {
        Error::BadRequest(format!(
            "expected {{\"tenant_id\", \"module\", \"company_id\"?, \"api_key\"}}: {e}"
        ))
    })?;
    let resolved = direct(app, &request).await?;
    serde_json::to_value(resolved).map_err(|e| Error::internal_because("the resolution", e))
}

/// A direct invocation: the caller is the module its API key names, which may read only its
/// own configuration, for tenants that enabled it.
pub async fn direct(app: &App, request: &DirectRequest) -> Result<ResolvedConfig> {
    let (tenant, module, company) = parse_ids(
        &request.tenant_id,
        &request.module,
        request.company_id.as_deref(),
    )?;
    let caller = app.plane.api_keys.authenticate(&request.api_key).await?;
    app.plane
        .config
        .resolve_config(&Caller::Module(caller), &tenant, &module, company.as_ref())
        .await
}

/// An API Gateway request (payload 2.0) on the config route: the route's own answer.
pub async fn over_http(app: &App, request: &ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
    let param = |name: &str| {
        request
            .path_parameters
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    };
    let company = request.query_string_parameters.first("company");
    let response = plinth_registry::api::config_answer(
        &app.plane,
        &request.headers,
        param("tenant"),
        param("module"),
        company,
    )
    .await;
    to_gateway(response).await
}

fn parse_ids(
    tenant: &str,
    module: &str,
    company: Option<&str>,
) -> Result<(TenantId, ModuleName, Option<CompanyId>)> {
    let tenant = TenantId::parse_field("tenant_id", tenant)?;
    let module = ModuleName::parse(module).map_err(|e| Error::field("module", e.to_string()))?;
    let company = company
        .map(|c| CompanyId::parse_field("company_id", c))
        .transpose()?;
    Ok((tenant, module, company))
}

async fn to_gateway(response: axum::response::Response) -> ApiGatewayV2httpResponse {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let mut gateway = ApiGatewayV2httpResponse::default();
    gateway.status_code = i64::from(parts.status.as_u16());
    gateway.headers = parts.headers;
    gateway.body = Some(Body::Text(String::from_utf8_lossy(&bytes).into_owned()));
    gateway
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{Kit, fixture, operator, token};

    fn gateway_request(bearer: &str) -> Value {
        let mut payload = fixture("apigw-v2-config-request.json");
        payload["headers"]["authorization"] = format!("Bearer {bearer}").into();
        payload
    }

    #[tokio::test]
    async fn over_api_gateway_a_member_gets_the_resolved_config() {
        let mut kit = Kit::new();
        kit.installed_and_enabled().await;
        let alice = token("alice", Some("acme"), Some("acme-de"), &[]);
        let answer = handle(&kit.app, gateway_request(&alice)).await.unwrap();
        assert_eq!(answer["statusCode"], 200, "{answer}");
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["configuration"]["currency"], "EUR", "{body}");
    }

    #[tokio::test]
    async fn over_api_gateway_a_matching_if_none_match_gets_304() {
        let mut kit = Kit::new();
        kit.installed_and_enabled().await;
        let alice = token("alice", Some("acme"), Some("acme-de"), &[]);
        let answer = handle(&kit.app, gateway_request(&alice)).await.unwrap();
        assert_eq!(answer["statusCode"], 200, "{answer}");
        let etag = answer["headers"]["etag"]
            .as_str()
            .expect("an ETag")
            .to_owned();
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert_eq!(etag, format!("\"{}\"", body["version"].as_str().unwrap()));

        let mut again = gateway_request(&alice);
        again["headers"]["if-none-match"] = etag.clone().into();
        let answer = handle(&kit.app, again).await.unwrap();
        assert_eq!(answer["statusCode"], 304, "{answer}");
        assert_eq!(answer["headers"]["etag"], etag.as_str());
        assert!(
            answer["body"].as_str().unwrap_or_default().is_empty(),
            "{answer}"
        );

        let mut stale = gateway_request(&alice);
        stale["headers"]["if-none-match"] = "\"not-the-version\"".into();
        let answer = handle(&kit.app, stale).await.unwrap();
        assert_eq!(answer["statusCode"], 200, "{answer}");
    }

    #[tokio::test]
    async fn over_api_gateway_errors_are_problem_documents() {
        let mut kit = Kit::new();
        kit.installed_and_enabled().await;
        let stranger = token("eve", Some("globex"), None, &[]);
        let answer = handle(&kit.app, gateway_request(&stranger)).await.unwrap();
        assert_eq!(answer["statusCode"], 403, "{answer}");
        assert_eq!(
            answer["headers"]["content-type"],
            "application/problem+json"
        );
        let mut unsigned = fixture("apigw-v2-config-request.json");
        unsigned["headers"]
            .as_object_mut()
            .unwrap()
            .remove("authorization");
        let answer = handle(&kit.app, unsigned).await.unwrap();
        assert_eq!(answer["statusCode"], 401, "{answer}");
    }

    /// A key issued for `module` (its install issued one too; this is another).
    async fn key_of(kit: &Kit, module: &str) -> String {
        let path = format!("/api/v1/modules/{module}/api-keys");
        let (status, body) = kit
            .call(
                axum::http::Method::POST,
                &path,
                &operator(),
                serde_json::json!({}),
            )
            .await;
        assert_eq!(status, axum::http::StatusCode::CREATED, "{body}");
        body["key"].as_str().unwrap().to_owned()
    }

    fn direct_payload(key: &str) -> Value {
        let mut payload = fixture("config-direct-invoke.json");
        payload["api_key"] = key.into();
        payload
    }

    #[tokio::test]
    async fn a_direct_invoke_with_the_modules_key_acts_as_the_module() {
        let mut kit = Kit::new();
        kit.installed_and_enabled().await;
        let key = key_of(&kit, "financial").await;
        let answer = handle(&kit.app, direct_payload(&key)).await.unwrap();
        assert_eq!(answer["configuration"]["currency"], "EUR", "{answer}");
        let mut unknown = direct_payload(&key);
        unknown["tenant_id"] = "globex".into();
        unknown.as_object_mut().unwrap().remove("company_id");
        assert!(matches!(
            handle(&kit.app, unknown).await,
            Err(Error::NotFound(_))
        ));
        let malformed = serde_json::json!({"tenant": "acme"});
        let error = handle(&kit.app, malformed).await.unwrap_err();
        assert!(error.to_string().contains("tenant_id"), "{error}");
    }

    /// Issue 22: the direct-invoke path trusted the module named in its payload, so anything
    /// allowed to invoke the function read any module's configuration.
    #[tokio::test]
    async fn a_direct_invoke_without_the_modules_key_reads_nothing() {
        let mut kit = Kit::new();
        kit.installed_and_enabled().await;
        let mut unsigned = fixture("config-direct-invoke.json");
        unsigned.as_object_mut().unwrap().remove("api_key");
        let error = handle(&kit.app, unsigned).await.unwrap_err();
        assert!(matches!(error, Error::BadRequest(_)), "{error}");
        assert!(error.to_string().contains("api_key"), "{error}");

        let forged = direct_payload("plk_not-a-key");
        let error = handle(&kit.app, forged).await.unwrap_err();
        assert!(matches!(error, Error::Unauthorized(_)), "{error}");
    }

    #[tokio::test]
    async fn a_direct_invoke_with_another_modules_key_cannot_read_this_modules_config() {
        let mut kit = Kit::new();
        kit.installed_and_enabled().await;
        let other = serde_json::json!({"name": "ledger", "display_name": "Ledger", "version": "1.0.0",
            "backend": {"type": "microservice", "api_prefix": "/api/v1/ledger", "health_check": "/health"}});
        let (status, body) = kit
            .call(
                axum::http::Method::POST,
                "/api/v1/modules",
                &operator(),
                other,
            )
            .await;
        assert_eq!(status, axum::http::StatusCode::CREATED, "{body}");
        let ledger = key_of(&kit, "ledger").await;
        let error = handle(&kit.app, direct_payload(&ledger)).await.unwrap_err();
        assert!(
            matches!(&error, Error::Forbidden(m) if m.contains("financial")),
            "{error}"
        );
    }
}
