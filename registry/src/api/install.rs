//! `/api/v1/modules/{m}/install…`: the installer, instances and API keys.

use axum::Router;
use axum::extract::{Path, State as Extract};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::Value;

use super::modules::module_name;
use super::openapi::ProblemDocument;
use super::{Json, Query, State};
use crate::api_keys::{ApiKeyRecord, IssuedKey};
use crate::error::Result;
use crate::identity::Caller;
use crate::install::{
    InstallRequest, Installation, UninstallImpact, UninstallOutcome, UninstallRequest,
    UpgradeRequest,
};
use crate::instances::{Instance, Registration};

pub(super) fn routes() -> Router<State> {
    Router::new()
        .route("/api/v1/modules/{module}/install", post(install))
        .route("/api/v1/modules/{module}/upgrade", post(upgrade))
        .route("/api/v1/modules/{module}/rollback", post(rollback))
        .route(
            "/api/v1/modules/{module}/installation",
            get(status).delete(uninstall),
        )
        .route("/api/v1/modules/{module}/installation/retry", post(retry))
        .route("/api/v1/modules/{module}/manifest", get(manifest))
        .route(
            "/api/v1/modules/{module}/instances",
            get(instances).post(register),
        )
        .route(
            "/api/v1/modules/{module}/api-keys",
            get(api_keys).post(issue_key),
        )
        .route("/api/v1/modules/{module}/api-keys/{id}", delete(revoke_key))
}

/// 202 with the status resource's address (a version alongside's with its `version`).
fn accepted(module: &str, installation: Installation) -> Response {
    let location = if installation.alongside {
        format!(
            "/api/v1/modules/{module}/installation?version={}",
            installation.version
        )
    } else {
        format!("/api/v1/modules/{module}/installation")
    };
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(installation),
    )
        .into_response()
}

#[utoipa::path(
    post,
    path = "/api/v1/modules/{module}/install",
    tag = "installer",
    summary = "Start installing a module version",
    params(("module" = String, Path, description = "Module name")),
    request_body(content = InstallRequest),
    responses((status = 202, description = "Started; poll `Location` (the installation)", body = serde_json::Value), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json"), (status = 409, description = "Conflicts with the current state (a duplicate, a dependent, a hook's refusal)", body = ProblemDocument, content_type = "application/problem+json"), (status = 422, description = "Invalid input; `errors` names each field", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn install(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(module): Path<String>,
    Json(request): Json<InstallRequest>,
) -> Result<Response> {
    let name = module_name(&module)?;
    let started = platform
        .installer
        .start_install(&caller, &name, request)
        .await?;
    Ok(accepted(&module, started))
}

#[utoipa::path(
    post,
    path = "/api/v1/modules/{module}/upgrade",
    tag = "installer",
    summary = "Start upgrading an installed module",
    params(("module" = String, Path, description = "Module name")),
    request_body(content = UpgradeRequest),
    responses((status = 202, description = "Started; poll the installation", body = serde_json::Value), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json"), (status = 409, description = "Conflicts with the current state (a duplicate, a dependent, a hook's refusal)", body = ProblemDocument, content_type = "application/problem+json"), (status = 422, description = "Invalid input; `errors` names each field", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn upgrade(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(module): Path<String>,
    Json(request): Json<UpgradeRequest>,
) -> Result<Response> {
    let name = module_name(&module)?;
    let started = platform
        .installer
        .start_upgrade(&caller, &name, request)
        .await?;
    Ok(accepted(&module, started))
}

#[utoipa::path(
    post,
    path = "/api/v1/modules/{module}/rollback",
    tag = "installer",
    summary = "Start rolling back to the previous version",
    params(("module" = String, Path, description = "Module name")),
    responses((status = 202, description = "Started; poll the installation", body = serde_json::Value), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json"), (status = 409, description = "Conflicts with the current state (a duplicate, a dependent, a hook's refusal)", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn rollback(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(module): Path<String>,
) -> Result<Response> {
    let name = module_name(&module)?;
    let started = platform.installer.start_rollback(&caller, &name).await?;
    Ok(accepted(&module, started))
}

#[utoipa::path(
    delete,
    path = "/api/v1/modules/{module}/installation",
    tag = "installer",
    summary = "Start uninstalling a module (refused while a dependent is installed)",
    params(("module" = String, Path, description = "Module name"), ("dry_run" = Option<bool>, Query, description = "Only say what would happen"), ("drop_data" = Option<bool>, Query, description = "Drop the module's tables too"), ("version" = Option<String>, Query, description = "Only this installed version (one installed alongside; the first when it is the last); refused while it is the default or tenants are pinned to it"), ("export" = Option<bool>, Query, description = "Export each tenant's rows (JSON Lines and a manifest per tenant) before anything is dropped; the installation lists the exports"), ("retention_days" = Option<u32>, Query, minimum = 1, maximum = 3650, description = "Days the kept tables stay before the sweep drops them (not with drop_data; default the platform's, 30); a reinstall before then keeps them")),
    responses((status = 202, description = "Started; poll the installation", body = serde_json::Value), (status = 200, description = "Dry run: what uninstalling would do: the tables, their rows, the export, when the data is dropped", body = UninstallImpact), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json"), (status = 409, description = "Conflicts with the current state (a duplicate, a dependent, a hook's refusal)", body = ProblemDocument, content_type = "application/problem+json"), (status = 422, description = "Invalid input; the detail names the field", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn uninstall(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(module): Path<String>,
    Query(params): Query<UninstallRequest>,
) -> Result<Response> {
    let name = module_name(&module)?;
    match platform
        .installer
        .start_uninstall(&caller, &name, params)
        .await?
    {
        UninstallOutcome::DryRun(impact) => Ok(Json(*impact).into_response()),
        UninstallOutcome::Started(started) => Ok(accepted(&module, *started)),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/modules/{module}/installation",
    tag = "installer",
    summary = "The installation and the steps of its last operation (platform admins and the module's own key)",
    params(("module" = String, Path, description = "Module name"), ("version" = Option<String>, Query, description = "The installation of a version installed alongside the first")),
    responses((status = 200, description = "The installation (`status`: pending, running, installed, failed, uninstalled)", body = serde_json::Value), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Neither a platform admin nor the module's own key", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn status(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(module): Path<String>,
    Query(params): Query<StatusParams>,
) -> Result<Json<Installation>> {
    let module = module_name(&module)?;
    // It names the backend's address and the API key's id: for operators and the module.
    if !matches!(&caller, Caller::Module(own) if *own == module) {
        caller.require_platform_admin()?;
    }
    match params.version {
        None => platform.installations.get(&module).await.map(Json),
        Some(version) => platform
            .installations
            .alongside_item(&module, &version)
            .await?
            .map(|(installation, _)| Json(installation))
            .ok_or_else(|| {
                crate::Error::NotFound(format!("{module} {version} was never installed alongside"))
            }),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusParams {
    #[serde(default)]
    version: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/modules/{module}/installation/retry",
    tag = "installer",
    summary = "Request a failed or stuck operation again",
    description = "A failed operation runs again from its first step (an uninstall from the step that failed); a pending or running one that makes no progress is requested again as it stands. Its sweep attempts start over.",
    params(("module" = String, Path, description = "Module name")),
    responses((status = 202, description = "Requested again; poll `Location` (the installation)", body = serde_json::Value), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not a platform admin", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "The module was never installed", body = ProblemDocument, content_type = "application/problem+json"), (status = 409, description = "Nothing to retry: the last operation finished", body = ProblemDocument, content_type = "application/problem+json"), (status = 503, description = "Stored but not queued; the sweep requests it again", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn retry(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(module): Path<String>,
) -> Result<Response> {
    let name = module_name(&module)?;
    let again = platform.installer.retry(&caller, &name).await?;
    Ok(accepted(&module, again))
}

#[utoipa::path(
    get,
    path = "/api/v1/modules/{module}/manifest",
    tag = "catalog",
    summary = "The installed version's manifest",
    params(("module" = String, Path, description = "Module name")),
    responses((status = 200, description = "The manifest", body = serde_json::Value), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn manifest(
    Extract(platform): Extract<State>,
    _caller: Caller,
    Path(module): Path<String>,
) -> Result<Json<Value>> {
    platform
        .installations
        .installed_manifest(&module_name(&module)?)
        .await
        .map(Json)
}

#[utoipa::path(
    get,
    path = "/api/v1/modules/{module}/instances",
    tag = "installer",
    summary = "A module's registered instances and their health",
    params(("module" = String, Path, description = "Module name")),
    responses((status = 200, description = "Instances", body = Vec<Instance>), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn instances(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(module): Path<String>,
) -> Result<Json<Vec<Instance>>> {
    caller.require_platform_admin()?;
    platform
        .instances
        .list(&module_name(&module)?)
        .await
        .map(Json)
}

#[utoipa::path(
    post,
    path = "/api/v1/modules/{module}/instances",
    tag = "installer",
    summary = "Heartbeat: a module instance registers itself (module API key)",
    params(("module" = String, Path, description = "Module name")),
    request_body(content = Registration),
    responses((status = 201, description = "Registered", body = Instance), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json"), (status = 422, description = "Invalid input; `errors` names each field", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn register(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(module): Path<String>,
    Json(registration): Json<Registration>,
) -> Result<(StatusCode, Json<Instance>)> {
    let instance = platform
        .instances
        .self_register(&caller, &module_name(&module)?, registration)
        .await?;
    Ok((StatusCode::CREATED, Json(instance)))
}

#[utoipa::path(
    get,
    path = "/api/v1/modules/{module}/api-keys",
    tag = "installer",
    summary = "A module's API keys (hashes never shown)",
    params(("module" = String, Path, description = "Module name")),
    responses((status = 200, description = "Keys", body = Vec<ApiKeyRecord>), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn api_keys(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(module): Path<String>,
) -> Result<Json<Vec<ApiKeyRecord>>> {
    caller.require_platform_admin()?;
    let mut keys = platform.api_keys.list(&module_name(&module)?).await?;
    for key in &mut keys {
        key.hash.clear(); // never shown
    }
    Ok(Json(keys))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueKey {
    /// Rotate: the module's existing keys stop working this many seconds from now (a whole
    /// number, `30` or `30.0`, as JSON Schema's `integer` admits both).
    #[serde(default)]
    rotate_after_secs: Option<serde_json::Number>,
}

/// The longest the other keys of a module may keep working after a rotation: a year.
pub const MAX_ROTATE_AFTER_SECS: i64 = 365 * 24 * 3600;

impl IssueKey {
    fn rotate_after_secs(&self) -> Result<Option<i64>> {
        let Some(number) = &self.rotate_after_secs else {
            return Ok(None);
        };
        // Every JSON number reads as an f64; whole ones up to a year are exact in it.
        let value = number
            .as_f64()
            .filter(|f| f.is_finite() && f.fract() == 0.0);
        let Some(value) = value else {
            return Err(crate::Error::field(
                "rotate_after_secs",
                format!("`{number}` is not a whole number of seconds"),
            ));
        };
        if value > MAX_ROTATE_AFTER_SECS as f64 {
            return Err(crate::Error::field(
                "rotate_after_secs",
                format!("`{number}` is more than a year ({MAX_ROTATE_AFTER_SECS} seconds)"),
            ));
        }
        Ok(Some(value as i64))
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/modules/{module}/api-keys",
    tag = "installer",
    summary = "Issue a module API key (shown once)",
    params(("module" = String, Path, description = "Module name")),
    request_body(content = serde_json::Value, description = "Optional `{\"rotate_after_secs\": n}`: the module's other keys stop working n seconds from now"),
    responses((status = 201, description = "The key, shown this once", body = IssuedKey), (status = 400, description = "Malformed request", body = ProblemDocument, content_type = "application/problem+json"), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn issue_key(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(module): Path<String>,
    request: axum::extract::Request,
) -> Result<(StatusCode, Json<IssuedKey>)> {
    let request = optional_body::<IssueKey>(request).await?;
    let issued = platform
        .api_keys
        .issue(
            &caller,
            &module_name(&module)?,
            request.rotate_after_secs()?,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// A body that may be left out (empty): when sent, it is read as any [`Json`] body is.
async fn optional_body<T: Default + serde::de::DeserializeOwned>(
    request: axum::extract::Request,
) -> Result<T> {
    let (parts, body) = request.into_parts();
    let bytes =
        super::body::body_bytes(axum::extract::Request::from_parts(parts.clone(), body), &())
            .await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let request = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
    <Json<T> as axum::extract::FromRequest<()>>::from_request(request, &())
        .await
        .map(|Json(value)| value)
}

#[utoipa::path(
    delete,
    path = "/api/v1/modules/{module}/api-keys/{id}",
    tag = "installer",
    summary = "Revoke a module API key",
    params(("module" = String, Path, description = "Module name"), ("id" = String, Path, description = "Key id")),
    responses((status = 204, description = "Revoked"), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn revoke_key(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path((module, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    platform
        .api_keys
        .revoke(&caller, &module_name(&module)?, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
