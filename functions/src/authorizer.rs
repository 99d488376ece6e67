//! The API Gateway HTTP API Lambda authorizer (payload format 2.0, simple responses): the
//! gateway's decision for a module route, with the tenant context the route maps onto the
//! `X-Plinth-Context` header (`$context.authorizer.context`).

use aws_lambda_events::apigw::{
    ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request,
};
use plinth_registry::Platform;
use plinth_registry::gateway::GatewayRequest;
use serde::{Deserialize, Serialize};

/// What an allowed request carries on to its integration (`$context.authorizer.*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizerContext {
    /// The signed tenant context, for the `X-Plinth-Context` header.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub context: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub module: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tenant: String,
    /// The healthy instance the platform would pick.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub upstream: String,
    /// Why a request was refused (API Gateway answers 403 either way; this is for logs).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

pub type AuthorizerResponse = ApiGatewayV2CustomAuthorizerSimpleResponse<AuthorizerContext>;

/// Decides one request: identity, route, enablement, permission, rate limit, healthy instance.
pub async fn authorize(
    platform: &Platform,
    request: ApiGatewayV2CustomAuthorizerV2Request,
) -> AuthorizerResponse {
    let method = request.request_context.http.method.to_string();
    let path = request.raw_path.clone().unwrap_or_else(|| {
        request
            .request_context
            .http
            .path
            .clone()
            .unwrap_or_default()
    });
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.headers = request.headers;
    let decision = match plinth_registry::api::caller_of(&parts, platform).await {
        Ok(caller) => {
            platform
                .authorize(GatewayRequest {
                    method: &method,
                    path: &path,
                    caller: &caller,
                })
                .await
        }
        Err(e) => Err(e),
    };
    let mut response = AuthorizerResponse::default();
    match decision {
        Ok(decision) => {
            response.is_authorized = true;
            response.context = AuthorizerContext {
                context: decision.context,
                module: decision.module.to_string(),
                tenant: decision.tenant.to_string(),
                upstream: decision.upstream,
                reason: String::new(),
            };
        }
        Err(e) => {
            tracing::info!(%method, %path, status = e.status().as_u16(), reason = %e, "request refused");
            response.context.reason = e.to_string();
        }
    }
    response
}
