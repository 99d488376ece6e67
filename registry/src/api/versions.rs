//! Versions side by side: a tenant's pin, a module's installed versions and its default
//! (`versions`).

use axum::Router;
use axum::extract::{Path, State as Extract};
use axum::routing::{get, put};

use super::modules::module_name;
use super::openapi::ProblemDocument;
use super::tenants::tenant_id;
use super::{Json, State};
use crate::error::Result;
use crate::identity::Caller;
use crate::versions::{ModuleVersions, TenantVersion, VersionChoice};

pub(super) fn routes() -> Router<State> {
    Router::new()
        .route(
            "/api/v1/tenants/{tenant}/modules/{module}/pin",
            get(show_pin).put(set_pin).delete(clear_pin),
        )
        .route(
            "/api/v1/modules/{module}/installed-versions",
            get(installed),
        )
        .route("/api/v1/modules/{module}/default-version", put(set_default))
}

#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/modules/{module}/pin",
    tag = "installer",
    summary = "Which installed version serves the tenant: its pin, else the module's default (the tenant's admins and platform admins)",
    params(("tenant" = String, Path, description = "Tenant id"), ("module" = String, Path, description = "Module name")),
    responses((status = 200, description = "The version serving the tenant", body = TenantVersion), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Neither the tenant's admin nor a platform admin", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "No such tenant, or the module is not installed", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn show_pin(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path((tenant, module)): Path<(String, String)>,
) -> Result<Json<TenantVersion>> {
    let (tenant, module) = (tenant_id(&tenant)?, module_name(&module)?);
    platform
        .versions
        .show(&caller, &tenant, &module)
        .await
        .map(Json)
}

#[utoipa::path(
    put,
    path = "/api/v1/tenants/{tenant}/modules/{module}/pin",
    tag = "installer",
    summary = "Pin the tenant to an installed version (platform admins)",
    description = "The tenant's requests go to that version's instances from the next request on. Refused (422, naming each field) when the version's configuration schema refuses the tenant's stored configuration, or a company's.",
    params(("tenant" = String, Path, description = "Tenant id"), ("module" = String, Path, description = "Module name")),
    request_body(content = VersionChoice),
    responses((status = 200, description = "The version now serving the tenant", body = TenantVersion), (status = 400, description = "Malformed request", body = ProblemDocument, content_type = "application/problem+json"), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not a platform admin", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "No such tenant, or the module is not installed", body = ProblemDocument, content_type = "application/problem+json"), (status = 409, description = "Changed by someone else meanwhile", body = ProblemDocument, content_type = "application/problem+json"), (status = 422, description = "The version is not installed, or its schema refuses the tenant's configuration; `errors` names each field", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn set_pin(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path((tenant, module)): Path<(String, String)>,
    Json(choice): Json<VersionChoice>,
) -> Result<Json<TenantVersion>> {
    let (tenant, module) = (tenant_id(&tenant)?, module_name(&module)?);
    platform
        .versions
        .set_pin(&caller, &tenant, &module, &choice.version)
        .await
        .map(Json)
}

#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/modules/{module}/pin",
    tag = "installer",
    summary = "Unpin the tenant: the module's default version serves it again (platform admins)",
    params(("tenant" = String, Path, description = "Tenant id"), ("module" = String, Path, description = "Module name")),
    responses((status = 200, description = "The version now serving the tenant", body = TenantVersion), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not a platform admin", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "No such tenant, or the module is not installed", body = ProblemDocument, content_type = "application/problem+json"), (status = 409, description = "Changed by someone else meanwhile", body = ProblemDocument, content_type = "application/problem+json"), (status = 422, description = "The default version's schema refuses the tenant's configuration; `errors` names each field", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn clear_pin(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path((tenant, module)): Path<(String, String)>,
) -> Result<Json<TenantVersion>> {
    let (tenant, module) = (tenant_id(&tenant)?, module_name(&module)?);
    platform
        .versions
        .clear_pin(&caller, &tenant, &module)
        .await
        .map(Json)
}

#[utoipa::path(
    get,
    path = "/api/v1/modules/{module}/installed-versions",
    tag = "installer",
    summary = "The module's installed versions, the default among them and the tenants pinned to each (platform admins)",
    params(("module" = String, Path, description = "Module name")),
    responses((status = 200, description = "Installed versions", body = ModuleVersions), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not a platform admin", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "The module is not installed", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn installed(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(module): Path<String>,
) -> Result<Json<ModuleVersions>> {
    let module = module_name(&module)?;
    platform.versions.list(&caller, &module).await.map(Json)
}

#[utoipa::path(
    put,
    path = "/api/v1/modules/{module}/default-version",
    tag = "installer",
    summary = "Make an installed version the default: it serves every tenant without a pin (platform admins)",
    description = "Refused (422, naming the tenant and field) when the version's configuration schema refuses the stored configuration of a tenant without a pin.",
    params(("module" = String, Path, description = "Module name")),
    request_body(content = VersionChoice),
    responses((status = 200, description = "The installed versions, with the new default", body = ModuleVersions), (status = 400, description = "Malformed request", body = ProblemDocument, content_type = "application/problem+json"), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not a platform admin", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "The module is not installed", body = ProblemDocument, content_type = "application/problem+json"), (status = 409, description = "Changed by someone else meanwhile", body = ProblemDocument, content_type = "application/problem+json"), (status = 422, description = "The version is not installed, or its schema refuses a tenant's configuration; `errors` names each field", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn set_default(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(module): Path<String>,
    Json(choice): Json<VersionChoice>,
) -> Result<Json<ModuleVersions>> {
    let module = module_name(&module)?;
    platform
        .versions
        .set_default(&caller, &module, &choice.version)
        .await
        .map(Json)
}
