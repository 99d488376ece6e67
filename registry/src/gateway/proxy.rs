//! The gateway on one machine: the platform API, plus every other `/api/v1/{m}/…` request
//! decided by [`Platform::authorize`] and forwarded to the module's backend with the tenant
//! context. (On AWS, API Gateway forwards and the authorizer Lambda decides.)

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, header};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::GatewayRequest;
use super::context::CONTEXT_HEADER;
use crate::api::{self, API_KEY_HEADER};
use crate::error::Error;
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
        Router::new()
            .fallback(forward)
            .with_state(Arc::new(gateway)),
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

async fn forward(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    match decide_and_forward(&gateway, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn decide_and_forward(gateway: &Gateway, request: Request) -> Result<Response, Error> {
    let (mut parts, body) = request.into_parts();
    if !parts.uri.path().starts_with("/api/v1/") {
        return Err(Error::NotFound(format!(
            "no route for {}",
            parts.uri.path()
        )));
    }
    let decision = gateway
        .platform
        .authorize(GatewayRequest {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            headers: &parts.headers,
        })
        .await?;
    parts.uri = decision.upstream.uri_for(parts.uri.path_and_query())?;
    // Edit the request's own headers in place: drop what must not reach the module, add the
    // context. (A client's `X-Plinth-*` are rare; the common case allocates nothing.)
    let forged: Vec<HeaderName> = parts
        .headers
        .keys()
        .filter(|name| name.as_str().starts_with("x-plinth-"))
        .cloned()
        .collect();
    for name in forged {
        parts.headers.remove(name);
    }
    for name in HOP_BY_HOP.iter().chain([&"authorization", &API_KEY_HEADER]) {
        parts.headers.remove(*name);
    }
    match &decision.upstream.host {
        Some(host) => parts.headers.insert(header::HOST, host.clone()),
        None => parts.headers.remove(header::HOST),
    };
    parts
        .headers
        .insert(CONTEXT_HEADER, decision.pass.context.clone());
    tracing::debug!(module = %decision.module(), tenant = %decision.tenant(), user = %decision.pass.user.id, "forward");
    let upstream = Request::from_parts(parts, body);
    let response = gateway.client.request(upstream).await.map_err(|e| {
        gateway
            .platform
            .caches
            .invalidate_module(decision.module().as_str());
        Error::BadGateway(format!("{} did not answer: {e}", decision.module()))
    })?;
    let (mut parts, body) = response.into_parts();
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    Ok(Response::from_parts(parts, Body::new(body)))
}
