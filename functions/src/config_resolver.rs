//! The config resolver: a module's resolved configuration for a tenant (and company), on the
//! hot path. Reached two ways: API Gateway (`GET /api/v1/tenants/{tenant}/modules/{module}/config
//! ?company=…`, the caller from its token or API key), answered by the registry API's own config
//! route code (`api::config_answer`) — the same `ETag`, the same `304` to a matching
//! `If-None-Match`, the same problem documents; and direct invoke by a module's own function
//! (`{"tenant_id", "module", "company_id"?}`, trusted through IAM: it acts as the module).

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use plinth_module_sdk::ModuleName;
use plinth_module_sdk::wire::ResolvedConfig;
use plinth_registry::identity::Caller;
use plinth_registry::ids::{CompanyId, TenantId};
use plinth_registry::{App, Error, Result};
use serde::Deserialize;
use serde_json::Value;

/// A direct invocation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectRequest {
    pub tenant_id: String,
    pub module: String,
    #[serde(default)]
    pub company_id: Option<String>,
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
            "expected {{\"tenant_id\", \"module\", \"company_id\"?}}: {e}"
        ))
    })?;
    let resolved = direct(app, &request).await?;
    serde_json::to_value(resolved).map_err(|e| Error::internal_because("the resolution", e))
}

/// A direct invocation: the invoker is the module itself.
pub async fn direct(app: &App, request: &DirectRequest) -> Result<ResolvedConfig> {
    let (tenant, module, company) = parse_ids(
        &request.tenant_id,
        &request.module,
        request.company_id.as_deref(),
    )?;
    app.plane
        .config
        .resolve_config(
            &Caller::Module(module.clone()),
            &tenant,
            &module,
            company.as_ref(),
        )
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
    use crate::testkit::{Kit, fixture, token};

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

    #[tokio::test]
    async fn a_direct_invoke_acts_as_the_module() {
        let mut kit = Kit::new();
        kit.installed_and_enabled().await;
        let answer = handle(&kit.app, fixture("config-direct-invoke.json"))
            .await
            .unwrap();
        assert_eq!(answer["configuration"]["currency"], "EUR", "{answer}");
        let unknown = serde_json::json!({"tenant_id": "globex", "module": "financial"});
        assert!(matches!(
            handle(&kit.app, unknown).await,
            Err(Error::NotFound(_))
        ));
        let malformed = serde_json::json!({"tenant": "acme"});
        let error = handle(&kit.app, malformed).await.unwrap_err();
        assert!(error.to_string().contains("tenant_id"), "{error}");
    }
}
