//! `/api/v1/modules…`: the catalog.

use axum::Router;
use axum::extract::{Path, Query, State as Extract};
use axum::http::StatusCode;
use axum::routing::get;
use plinth_module_sdk::ModuleName;
use serde_json::Value;

use super::{Json, State};
use crate::catalog::{CatalogEntry, ListFilter, ModuleVersion, Published};
use crate::error::{Error, Result};
use crate::identity::Caller;

pub(super) fn routes() -> Router<State> {
    Router::new()
        .route("/api/v1/modules", get(list).post(publish))
        .route("/api/v1/modules/{module}", get(detail))
        .route("/api/v1/modules/{module}/versions", get(versions))
}

pub(super) fn module_name(name: &str) -> Result<ModuleName> {
    ModuleName::parse(name).map_err(|_| Error::NotFound(format!("no module named {name} is published")))
}

async fn publish(
    Extract(platform): Extract<State>,
    caller: Caller,
    Json(document): Json<Value>,
) -> Result<(StatusCode, Json<ModuleVersion>)> {
    let (outcome, version) = platform.publish(&caller, &document).await?;
    let status = match outcome {
        Published::Created => StatusCode::CREATED,
        Published::AlreadyPublished => StatusCode::OK,
    };
    Ok((status, Json(version)))
}

async fn list(
    Extract(platform): Extract<State>,
    _caller: Caller,
    Query(filter): Query<ListFilter>,
) -> Result<Json<Vec<CatalogEntry>>> {
    platform.list_modules(&filter).await.map(Json)
}

async fn detail(
    Extract(platform): Extract<State>,
    _caller: Caller,
    Path(module): Path<String>,
) -> Result<Json<CatalogEntry>> {
    platform.catalog_entry(&module_name(&module)?).await.map(Json)
}

async fn versions(
    Extract(platform): Extract<State>,
    _caller: Caller,
    Path(module): Path<String>,
) -> Result<Json<Vec<ModuleVersion>>> {
    platform.versions(&module_name(&module)?).await.map(Json)
}
