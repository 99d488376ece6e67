//! The gateway on one machine: the platform API, plus every other `/api/v1/{m}/…` request
//! decided by [`Platform::authorize`] and forwarded to the module's backend with the tenant
//! context. (On AWS, API Gateway forwards and the authorizer Lambda decides.)

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::GatewayRequest;
use super::context::CONTEXT_HEADER;
use crate::api::{self, API_KEY_HEADER};
use crate::error::Error;
use crate::identity::Caller;
use crate::platform::Platform;

#[derive(Debug, Clone)]
struct Gateway {
    platform: Arc<Platform>,
    client: Client<HttpConnector, Body>,
}

/// The platform API and the module proxy in one router.
pub fn router(platform: Arc<Platform>) -> Router {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build(connector);
    let gateway = Gateway {
        platform: Arc::clone(&platform),
        client,
    };
    api::router_with_fallback(
        platform,
        Router::new().fallback(forward).with_state(gateway),
    )
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers that never reach a module: hop-by-hop ones, the caller's credentials, and any
/// `X-Plinth-*` a client sent (only the gateway's own context is trusted).
fn dropped(name: &HeaderName) -> bool {
    let name = name.as_str();
    HOP_BY_HOP.contains(&name)
        || name == header::HOST.as_str()
        || name == header::AUTHORIZATION.as_str()
        || name == API_KEY_HEADER
        || name.starts_with("x-plinth-")
}

async fn forward(State(gateway): State<Gateway>, request: Request) -> Response {
    match decide_and_forward(&gateway, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn decide_and_forward(gateway: &Gateway, request: Request) -> Result<Response, Error> {
    let path = request.uri().path().to_owned();
    if !path.starts_with("/api/v1/") {
        return Err(Error::NotFound(format!("no route for {path}")));
    }
    let (parts, body) = request.into_parts();
    let caller = api::caller_of(&parts, &gateway.platform).await?;
    let decision = gateway
        .platform
        .authorize(GatewayRequest {
            method: parts.method.as_str(),
            path: &path,
            caller: &caller,
        })
        .await?;
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or(path.as_str(), |pq| pq.as_str());
    let uri: Uri = format!("{}{path_and_query}", decision.upstream)
        .parse()
        .map_err(|e| Error::Internal(format!("bad upstream URL: {e}")))?;
    let mut upstream = Request::builder().method(parts.method).uri(uri);
    if let Some(headers) = upstream.headers_mut() {
        for (name, value) in &parts.headers {
            if !dropped(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        let context =
            HeaderValue::from_str(&decision.context).map_err(|e| Error::Internal(e.to_string()))?;
        headers.insert(CONTEXT_HEADER, context);
        if let Caller::User(user) = &caller {
            tracing::debug!(module = %decision.module, tenant = %decision.tenant, user = %user.id, "forward");
        }
    }
    let upstream = upstream
        .body(body)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let response = gateway.client.request(upstream).await.map_err(|e| {
        gateway
            .platform
            .caches
            .invalidate_module(decision.module.as_str());
        Error::BadGateway(format!("{} did not answer: {e}", decision.module))
    })?;
    let (mut parts, body) = response.into_parts();
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    Ok(Response::from_parts(parts, Body::new(body)))
}
