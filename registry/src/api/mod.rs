//! The platform's HTTP API: one axum `Router`, served locally by the `plinth` gateway and on
//! AWS by the registry-api Lambda (`lambda_http`). Authorization is part of each handler:
//! who may call is decided from the verified [`Caller`](crate::identity::Caller).

mod auth;
mod body;
mod install;
mod modules;
mod tenants;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::platform::Platform;

pub use body::Json;

/// Shared state of every handler.
pub type State = Arc<Platform>;

pub fn router(platform: Arc<Platform>) -> Router {
    Router::new()
        .route("/health", get(health))
        .merge(modules::routes())
        .merge(install::routes())
        .merge(tenants::routes())
        .fallback(not_found)
        .with_state(platform)
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "healthy", "service": "plinth"}))
}

async fn not_found(uri: axum::http::Uri) -> crate::Error {
    crate::Error::NotFound(format!("no route for {}", uri.path()))
}
