//! `/api/v1/modules/{m}/install…`: the installer, instances and API keys.

use axum::Router;
use axum::extract::{Path, Query, State as Extract};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::Value;

use super::modules::module_name;
use super::{Json, State};
use crate::api_keys::{ApiKeyRecord, IssuedKey};
use crate::error::Result;
use crate::identity::Caller;
use crate::install::{InstallRequest, Installation, UninstallOutcome, UpgradeRequest};
use crate::instances::{Instance, Registration};

pub(super) fn routes() -> Router<State> {
    Router::new()
        .route("/api/v1/modules/{module}/install", post(install))
        .route("/api/v1/modules/{module}/upgrade", post(upgrade))
        .route("/api/v1/modules/{module}/rollback", post(rollback))
        .route("/api/v1/modules/{module}/installation", get(status).delete(uninstall))
        .route("/api/v1/modules/{module}/manifest", get(manifest))
        .route("/api/v1/modules/{module}/instances", get(instances).post(register))
        .route("/api/v1/modules/{module}/api-keys", get(api_keys).post(issue_key))
        .route("/api/v1/modules/{module}/api-keys/{id}", delete(revoke_key))
}

/// 202 with the status resource's address.
fn accepted(module: &str, installation: Installation) -> Response {
    let location = format!("/api/v1/modules/{module}/installation");
    (StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(installation)).into_response()
}

async fn install(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(module): Path<String>,
    Json(request): Json<InstallRequest>,
) -> Result<Response> {
    let name = module_name(&module)?;
    let started = platform.start_install(&caller, &name, request).await?;
    Ok(accepted(&module, started))
}

async fn upgrade(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(module): Path<String>,
    Json(request): Json<UpgradeRequest>,
) -> Result<Response> {
    let name = module_name(&module)?;
    let started = platform.start_upgrade(&caller, &name, request).await?;
    Ok(accepted(&module, started))
}

async fn rollback(Extract(platform): Extract<State>, caller: Caller, Path(module): Path<String>) -> Result<Response> {
    let name = module_name(&module)?;
    let started = platform.start_rollback(&caller, &name).await?;
    Ok(accepted(&module, started))
}

#[derive(Debug, Default, Deserialize)]
struct UninstallParams {
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    drop_data: bool,
}

async fn uninstall(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(module): Path<String>,
    Query(params): Query<UninstallParams>,
) -> Result<Response> {
    let name = module_name(&module)?;
    match platform.start_uninstall(&caller, &name, params.drop_data, params.dry_run).await? {
        UninstallOutcome::DryRun(impact) => Ok(Json(impact).into_response()),
        UninstallOutcome::Started(started) => Ok(accepted(&module, *started)),
    }
}

async fn status(Extract(platform): Extract<State>, _caller: Caller, Path(module): Path<String>) -> Result<Json<Installation>> {
    platform.installation(&module_name(&module)?).await.map(Json)
}

async fn manifest(Extract(platform): Extract<State>, _caller: Caller, Path(module): Path<String>) -> Result<Json<Value>> {
    platform.installed_manifest(&module_name(&module)?).await.map(Json)
}

async fn instances(Extract(platform): Extract<State>, caller: Caller, Path(module): Path<String>) -> Result<Json<Vec<Instance>>> {
    caller.require_platform_admin()?;
    platform.instances(&module_name(&module)?).await.map(Json)
}

async fn register(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(module): Path<String>,
    Json(registration): Json<Registration>,
) -> Result<(StatusCode, Json<Instance>)> {
    let instance = platform.self_register(&caller, &module_name(&module)?, registration).await?;
    Ok((StatusCode::CREATED, Json(instance)))
}

async fn api_keys(Extract(platform): Extract<State>, caller: Caller, Path(module): Path<String>) -> Result<Json<Vec<ApiKeyRecord>>> {
    caller.require_platform_admin()?;
    let mut keys = platform.api_keys(&module_name(&module)?).await?;
    for key in &mut keys {
        key.hash.clear(); // never shown
    }
    Ok(Json(keys))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueKey {
    /// Rotate: the module's existing keys stop working this many seconds from now.
    #[serde(default)]
    rotate_after_secs: Option<i64>,
}

async fn issue_key(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(module): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<IssuedKey>)> {
    let request: IssueKey = if body.iter().all(u8::is_ascii_whitespace) {
        IssueKey::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| crate::Error::BadRequest(format!("the body is not valid: {e}")))?
    };
    let issued = platform.issue_api_key(&caller, &module_name(&module)?, request.rotate_after_secs).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

async fn revoke_key(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path((module, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    platform.revoke_api_key(&caller, &module_name(&module)?, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
