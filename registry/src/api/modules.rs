//! `/api/v1/modules…`: the catalog.

use axum::Router;
use axum::extract::{Path, State as Extract};
use axum::http::StatusCode;
use axum::routing::get;
use plinth_module_sdk::ModuleName;
use serde_json::Value;

use super::openapi::ProblemDocument;
use super::{Json, Query, State};
use crate::bundles::Upload;
use crate::catalog::{CatalogEntry, Frontend, ListFilter, ModuleVersion, Published};
use crate::error::{Error, Result};
use crate::identity::Caller;

pub(super) fn routes() -> Router<State> {
    Router::new()
        .route("/api/v1/modules", get(list).post(publish))
        .route("/api/v1/modules/{module}", get(detail))
        .route("/api/v1/modules/{module}/versions", get(versions))
        .route("/api/v1/modules/{module}/frontend", get(frontend))
}

pub(super) fn module_name(name: &str) -> Result<ModuleName> {
    ModuleName::parse(name)
        .map_err(|_| Error::NotFound(format!("no module named {name} is published")))
}

#[utoipa::path(
    post,
    path = "/api/v1/modules",
    tag = "catalog",
    summary = "Publish a module version (body: its manifest.json, or {manifest, bundle} with its UI bundle's files)",
    request_body(content = serde_json::Value, description = "The manifest; or `{\"manifest\": …, \"bundle\": {\"files\": [{\"path\", \"content_base64\"}]}}` to publish the files of its `frontend.bundle` folder with it (at most 64 files, 512 KiB each, 1 MiB together)"),
    responses((status = 201, description = "Published", body = ModuleVersion), (status = 200, description = "The same manifest was published before; nothing changed", body = ModuleVersion), (status = 400, description = "Malformed request", body = ProblemDocument, content_type = "application/problem+json"), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 409, description = "Conflicts with the current state (a duplicate, a dependent, a hook's refusal)", body = ProblemDocument, content_type = "application/problem+json"), (status = 422, description = "Invalid input; `errors` names each field", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn publish(
    Extract(platform): Extract<State>,
    caller: Caller,
    Json(body): Json<Value>,
) -> Result<(StatusCode, Json<ModuleVersion>)> {
    let (document, upload) = with_bundle(body)?;
    super::limits::manifest_within(&document)?;
    let (outcome, version) = platform
        .catalog
        .publish_with_bundle(&caller, &document, upload.as_ref())
        .await?;
    let status = match outcome {
        Published::Created => StatusCode::CREATED,
        Published::AlreadyPublished => StatusCode::OK,
    };
    Ok((status, Json(version)))
}

/// A publish body: a manifest (no manifest has a `manifest` field), or `{manifest, bundle}`.
fn with_bundle(body: Value) -> Result<(Value, Option<Upload>)> {
    let Value::Object(mut fields) = body else {
        return Ok((body, None));
    };
    if !fields.get("manifest").is_some_and(Value::is_object) {
        return Ok((Value::Object(fields), None));
    }
    if let Some(other) = fields
        .keys()
        .find(|name| !matches!(name.as_str(), "manifest" | "bundle"))
    {
        return Err(Error::field(
            other,
            "is not a field of a publish with a bundle (manifest, bundle)",
        ));
    }
    let manifest = fields.remove("manifest").unwrap_or_default();
    let upload = match fields.remove("bundle") {
        None | Some(Value::Null) => None,
        Some(bundle) => Some(serde_json::from_value(bundle).map_err(|e| {
            Error::field(
                "bundle",
                format!("is not {{files: [{{path, content_base64}}]}}: {e}"),
            )
        })?),
    };
    Ok((manifest, upload))
}

#[utoipa::path(
    get,
    path = "/api/v1/modules/{module}/frontend",
    tag = "catalog",
    summary = "The installed version's frontend: how it loads, where its files are, and each file's SHA-384 integrity",
    params(("module" = String, Path, description = "Module name")),
    responses((status = 200, description = "The frontend", body = Frontend), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not installed, or no frontend", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn frontend(
    Extract(platform): Extract<State>,
    _caller: Caller,
    Path(module): Path<String>,
) -> Result<Json<Frontend>> {
    let name = module_name(&module)?;
    let installation = platform.installations.get(&name).await?;
    let version = match (installation.is_installed(), &installation.installed_version) {
        (true, Some(version)) => version.clone(),
        _ => return Err(Error::NotFound(format!("{module} is not installed"))),
    };
    let published = platform.catalog.version(&name, &version).await?;
    Frontend::of(&published, platform.settings.bundles_origin.as_deref()).map(Json)
}

#[utoipa::path(
    get,
    path = "/api/v1/modules",
    tag = "catalog",
    summary = "The marketplace",
    params(("category" = Option<String>, Query, description = "Only this category"), ("tag" = Option<String>, Query, description = "Only modules with this tag"), ("tier" = Option<String>, Query, description = "Only modules a tenant of this tier may enable")),
    responses((status = 200, description = "Catalog entries", body = Vec<serde_json::Value>), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn list(
    Extract(platform): Extract<State>,
    _caller: Caller,
    Query(filter): Query<ListFilter>,
) -> Result<Json<Vec<CatalogEntry>>> {
    platform.catalog.list(&filter).await.map(Json)
}

#[utoipa::path(
    get,
    path = "/api/v1/modules/{module}",
    tag = "catalog",
    summary = "A module's catalog entry",
    params(("module" = String, Path, description = "Module name")),
    responses((status = 200, description = "The catalog entry", body = serde_json::Value), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn detail(
    Extract(platform): Extract<State>,
    _caller: Caller,
    Path(module): Path<String>,
) -> Result<Json<CatalogEntry>> {
    platform
        .catalog
        .entry(&module_name(&module)?)
        .await
        .map(Json)
}

#[utoipa::path(
    get,
    path = "/api/v1/modules/{module}/versions",
    tag = "catalog",
    summary = "A module's published versions",
    params(("module" = String, Path, description = "Module name")),
    responses((status = 200, description = "Versions, newest first", body = Vec<ModuleVersion>), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn versions(
    Extract(platform): Extract<State>,
    _caller: Caller,
    Path(module): Path<String>,
) -> Result<Json<Vec<ModuleVersion>>> {
    platform
        .catalog
        .versions(&module_name(&module)?)
        .await
        .map(Json)
}
