//! `/api/v1/rbac/verify`, roles and role assignments.

use axum::Router;
use axum::extract::{Path, State as Extract};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::openapi::ProblemDocument;
use super::tenants::tenant_id;
use super::{Json, State};
use crate::error::{Error, Result};
use crate::identity::Caller;
use crate::ids::{RoleName, UserId};
use crate::plane::ControlPlane;
use crate::rbac::{Assignment, Role, RoleChange, UserAssignment, VerifyRequest};
use plinth_module_sdk::{ModuleName, Permission};

pub(super) fn routes() -> Router<State> {
    Router::new()
        .route("/api/v1/rbac/verify", post(verify))
        .route("/api/v1/tenants/{tenant}/roles", get(roles))
        .route(
            "/api/v1/tenants/{tenant}/roles/{role}",
            get(role).put(put_role),
        )
        .route("/api/v1/tenants/{tenant}/users", get(users))
        .route(
            "/api/v1/tenants/{tenant}/users/{user}/roles",
            get(assignment).put(assign),
        )
}

#[utoipa::path(
    post,
    path = "/api/v1/rbac/verify",
    tag = "rbac",
    summary = "Does a user have a permission?",
    request_body(content = serde_json::Value, description = "`{\"tenant_id\", \"user_id\", \"permission\", \"company_id\"?}`"),
    responses((status = 200, description = "`{\"has_permission\": bool}`", body = serde_json::Value), (status = 400, description = "Malformed request", body = ProblemDocument, content_type = "application/problem+json"), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 422, description = "Invalid input; `errors` names each field", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn verify(
    Extract(platform): Extract<State>,
    caller: Caller,
    Json(request): Json<VerifyRequest>,
) -> Result<Json<Value>> {
    if let Caller::Module(module) = &caller {
        module_may_ask(&platform, module, &request).await?;
    }
    let allowed = platform.rbac.verify(&caller, &request).await?;
    Ok(Json(json!({"has_permission": allowed})))
}

/// A module's key asks only about tenants that enabled the module (and, for a company, only
/// one that did not disable it), and only about its own permissions or those of modules its
/// manifest declares it uses (`dependencies`).
async fn module_may_ask(
    platform: &ControlPlane,
    module: &ModuleName,
    request: &VerifyRequest,
) -> Result<()> {
    let tenant = &request.tenant_id;
    let company = request.company_id.as_ref();
    match platform
        .config
        .resolve_cached(tenant, module, company)
        .await
    {
        Ok(_) => {}
        Err(Error::NotFound(why)) if company.is_some() => {
            return Err(Error::Forbidden(format!(
                "{why}: {module}'s key may ask only about tenants that enabled it and companies that did not disable it"
            )));
        }
        Err(Error::NotFound(_)) => {
            return Err(Error::Forbidden(format!(
                "tenant {tenant} has not enabled {module}: its key may ask only about tenants that did"
            )));
        }
        Err(other) => return Err(other),
    }
    let permission = Permission::parse(&request.permission)
        .map_err(|e| Error::field("permission", e.to_string()))?;
    let namespace = permission.module();
    if namespace == module.as_str() {
        return Ok(());
    }
    let (manifest, _) = platform.installations.installed_module(module).await?;
    let dependencies = &manifest.dependencies;
    let declared = dependencies
        .required_modules
        .iter()
        .map(|r| &r.name)
        .chain(&dependencies.optional_modules)
        .any(|m| m.as_str() == namespace);
    if declared {
        return Ok(());
    }
    Err(Error::Forbidden(format!(
        "{module} may ask only about its own permissions and those of the modules its manifest's \
         `dependencies` name, not {namespace}'s"
    )))
}

#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/roles",
    tag = "rbac",
    summary = "A tenant's roles",
    params(("tenant" = String, Path, description = "Tenant id")),
    responses((status = 200, description = "Roles", body = Vec<serde_json::Value>), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn roles(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> Result<Json<Vec<Role>>> {
    let tenant = tenant_id(&tenant)?;
    caller.require_tenant_admin(&tenant)?;
    platform.rbac.roles(&tenant).await.map(Json)
}

#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/roles/{role}",
    tag = "rbac",
    summary = "One role of a tenant's (404 names the closest role)",
    params(("tenant" = String, Path, description = "Tenant id"), ("role" = String, Path, description = "Role name")),
    responses((status = 200, description = "The role", body = serde_json::Value), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
async fn role(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path((tenant, role)): Path<(String, String)>,
) -> Result<Json<Role>> {
    let tenant = tenant_id(&tenant)?;
    platform.rbac.role(&caller, &tenant, &role).await.map(Json)
}

#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/users",
    tag = "rbac",
    summary = "Who holds roles in a tenant: each user with their roles, tenant-wide and per company",
    params(("tenant" = String, Path, description = "Tenant id")),
    responses((status = 200, description = "`[{\"user\", \"roles\", \"companies\"}]`", body = Vec<serde_json::Value>), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
async fn users(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> Result<Json<Vec<UserAssignment>>> {
    let tenant = tenant_id(&tenant)?;
    platform.rbac.assignments(&caller, &tenant).await.map(Json)
}

#[utoipa::path(
    put,
    path = "/api/v1/tenants/{tenant}/roles/{role}",
    tag = "rbac",
    summary = "Create or replace a role (a set of module permissions)",
    params(("tenant" = String, Path, description = "Tenant id"), ("role" = String, Path, description = "Role name")),
    request_body(content = RoleChange),
    responses((status = 200, description = "The role", body = serde_json::Value), (status = 400, description = "Malformed request", body = ProblemDocument, content_type = "application/problem+json"), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json"), (status = 422, description = "Invalid input; `errors` names each field", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn put_role(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path((tenant, role)): Path<(String, String)>,
    Json(change): Json<RoleChange>,
) -> Result<Json<Role>> {
    let tenant = tenant_id(&tenant)?;
    let role = RoleName::parse_field("role", &role)?;
    platform
        .rbac
        .put_role(&caller, &tenant, &role, change)
        .await
        .map(Json)
}

#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/users/{user}/roles",
    tag = "rbac",
    summary = "The roles a user holds, tenant-wide and per company (for the tenant's admins and the user)",
    params(("tenant" = String, Path, description = "Tenant id"), ("user" = String, Path, description = "User id (`sub`)")),
    responses((status = 200, description = "The assignment (empty when the user holds none)", body = serde_json::Value), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn assignment(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path((tenant, user)): Path<(String, String)>,
) -> Result<Json<Assignment>> {
    let tenant = tenant_id(&tenant)?;
    let user = UserId::parse_field("user", &user)?;
    platform
        .rbac
        .assignment(&caller, &tenant, &user)
        .await
        .map(Json)
}

#[utoipa::path(
    put,
    path = "/api/v1/tenants/{tenant}/users/{user}/roles",
    tag = "rbac",
    summary = "Assign roles to a user, tenant-wide and per company",
    params(("tenant" = String, Path, description = "Tenant id"), ("user" = String, Path, description = "User id (`sub`)")),
    request_body(content = serde_json::Value, description = "`{\"roles\": [..], \"companies\": {company: [..]}}`"),
    responses((status = 200, description = "The assignment", body = serde_json::Value), (status = 400, description = "Malformed request", body = ProblemDocument, content_type = "application/problem+json"), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json"), (status = 422, description = "Invalid input; `errors` names each field", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn assign(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path((tenant, user)): Path<(String, String)>,
    Json(assignment): Json<Assignment>,
) -> Result<Json<Assignment>> {
    let tenant = tenant_id(&tenant)?;
    let user = UserId::parse_field("user", &user)?;
    platform
        .rbac
        .assign_roles(&caller, &tenant, &user, assignment)
        .await
        .map(Json)
}
