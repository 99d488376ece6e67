//! The platform's HTTP API: one axum `Router`, served locally by the `plinth` gateway and on
//! AWS by the registry-api Lambda (`lambda_http`). Authorization is part of each handler:
//! who may call is decided from the verified [`Caller`](crate::identity::Caller).

mod auth;
mod body;
mod contract;
mod events;
mod install;
mod limits;
mod modules;
mod openapi;
mod rbac;
mod rollouts;
mod schemas;
mod tenants;
mod usage;
mod versions;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::plane::ControlPlane;

pub use auth::caller_of;
pub use body::{Json, MAX_BODY_BYTES, Query};
pub use limits::{MAX_CONFIGURATION_BYTES, MAX_MANIFEST_BYTES};
pub use openapi::document as openapi_document;
pub use tenants::config_answer;

/// Shared state of every handler.
pub type State = Arc<ControlPlane>;

/// The platform API (the registry-api Lambda serves exactly this).
pub fn router(platform: Arc<ControlPlane>) -> Router {
    router_with_fallback(platform, Router::new().fallback(not_found))
}

/// The platform API, with `fallback` answering every other path (the gateway's proxy).
pub fn router_with_fallback(platform: Arc<ControlPlane>, fallback: Router) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/openapi.json", get(openapi::openapi_json))
        .merge(modules::routes())
        .merge(install::routes())
        .merge(tenants::routes())
        .merge(rbac::routes())
        .merge(events::routes())
        .merge(usage::routes())
        .merge(versions::routes())
        .merge(rollouts::routes())
        .with_state(platform)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback_service(fallback)
}

/// The keys module backends verify `X-Plinth-Context` with.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "platform",
    responses((status = 200, description = "JSON Web Key Set of the tenant-context signing keys", body = serde_json::Value)))]
async fn jwks(
    axum::extract::State(platform): axum::extract::State<State>,
) -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(platform.identity.context.jwks()),
    )
}

/// Liveness.
#[utoipa::path(get, path = "/health", tag = "platform",
    responses((status = 200, description = "`{\"status\": \"healthy\", \"service\": \"plinth\"}`", body = serde_json::Value)))]
async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "healthy", "service": "plinth"}))
}

/// A platform path asked with a method it does not take: a problem document, not an empty 405.
async fn method_not_allowed(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> axum::response::Response {
    let status = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    plinth_module_sdk::wire::ProblemDocument::new(
        status,
        format!("{} does not take {method}", uri.path()),
        Vec::new(),
    )
    .into_response_with(status)
}

async fn not_found(uri: axum::http::Uri) -> crate::Error {
    crate::Error::NotFound(format!("no route for {}", uri.path()))
}
