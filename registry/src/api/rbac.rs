//! `/api/v1/rbac/verify`, roles and role assignments.

use axum::Router;
use axum::extract::{Path, State as Extract};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use super::{Json, State};
use crate::error::{Error, Result};
use crate::identity::Caller;
use crate::ids::{RoleName, TenantId, UserId};
use crate::rbac::{Assignment, Role, RoleChange, VerifyRequest};

pub(super) fn routes() -> Router<State> {
    Router::new()
        .route("/api/v1/rbac/verify", post(verify))
        .route("/api/v1/tenants/{tenant}/roles", get(roles))
        .route("/api/v1/tenants/{tenant}/roles/{role}", put(put_role))
        .route("/api/v1/tenants/{tenant}/users/{user}/roles", put(assign))
}

fn tenant_id(text: &str) -> Result<TenantId> {
    TenantId::parse(text).map_err(|_| Error::NotFound(format!("no tenant {text}")))
}

async fn verify(Extract(platform): Extract<State>, caller: Caller, Json(request): Json<VerifyRequest>) -> Result<Json<Value>> {
    let allowed = platform.verify_permission(&caller, &request).await?;
    Ok(Json(json!({"has_permission": allowed})))
}

async fn roles(Extract(platform): Extract<State>, caller: Caller, Path(tenant): Path<String>) -> Result<Json<Vec<Role>>> {
    let tenant = tenant_id(&tenant)?;
    caller.require_tenant_admin(&tenant)?;
    platform.roles(&tenant).await.map(Json)
}

async fn put_role(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path((tenant, role)): Path<(String, String)>,
    Json(change): Json<RoleChange>,
) -> Result<Json<Role>> {
    let tenant = tenant_id(&tenant)?;
    let role = RoleName::parse_field("role", &role)?;
    platform.put_role(&caller, &tenant, &role, change).await.map(Json)
}

async fn assign(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path((tenant, user)): Path<(String, String)>,
    Json(assignment): Json<Assignment>,
) -> Result<Json<Assignment>> {
    let tenant = tenant_id(&tenant)?;
    let user = UserId::parse_field("user", &user)?;
    platform.assign_roles(&caller, &tenant, &user, assignment).await.map(Json)
}
