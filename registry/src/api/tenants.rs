//! `/api/v1/tenants…`: tenants, companies, enablement, configuration and audit.

use axum::Router;
use axum::extract::{Path, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;

use super::auth::caller_from;
use super::modules::module_name;
use super::openapi::ProblemDocument;
use super::{Json, Query, State};
use crate::audit::AuditPage;
use crate::config::{CompanyModule, TenantModule};
use crate::enablement::{DisableOutcome, DisableRequest, ModuleChange};
use crate::error::{Error, Result};
use crate::export::Export;
use crate::identity::Caller;
use crate::ids::{CompanyId, TenantId};
use crate::plane::ControlPlane;
use crate::tenancy::{Company, NewCompany, NewTenant, Tenant};
use plinth_module_sdk::wire::ResolvedConfig;

pub(super) fn routes() -> Router<State> {
    Router::new()
        .route("/api/v1/tenants", get(tenants).post(create_tenant))
        .route("/api/v1/tenants/{tenant}", get(tenant))
        .route(
            "/api/v1/tenants/{tenant}/companies",
            get(companies).post(create_company),
        )
        .route("/api/v1/tenants/{tenant}/companies/{company}", get(company))
        .route("/api/v1/tenants/{tenant}/modules", get(tenant_modules))
        .route(
            "/api/v1/tenants/{tenant}/modules/{module}",
            put(enable).delete(disable),
        )
        .route(
            "/api/v1/tenants/{tenant}/modules/{module}/export",
            post(export),
        )
        .route(
            "/api/v1/tenants/{tenant}/companies/{company}/modules/{module}",
            put(customize),
        )
        .route(
            "/api/v1/tenants/{tenant}/modules/{module}/config",
            get(config),
        )
        .route("/api/v1/tenants/{tenant}/audit", get(audit))
}

pub(super) fn tenant_id(text: &str) -> Result<TenantId> {
    TenantId::parse(text).map_err(|_| Error::NotFound(format!("no tenant {text}")))
}

fn configuration_within(change: &ModuleChange) -> Result<()> {
    let limit = super::limits::MAX_CONFIGURATION_BYTES;
    super::limits::within("configuration", &change.configuration, limit)
}

fn company_id(text: &str) -> Result<CompanyId> {
    CompanyId::parse(text).map_err(|_| Error::NotFound(format!("no company {text}")))
}

#[utoipa::path(
    post,
    path = "/api/v1/tenants",
    tag = "tenancy",
    summary = "Create a tenant",
    request_body(content = serde_json::Value, description = "`{\"id\", \"name\", \"subscription_tier\"?: free|basic|premium|enterprise}`"),
    responses((status = 201, description = "Created", body = serde_json::Value), (status = 400, description = "Malformed request", body = ProblemDocument, content_type = "application/problem+json"), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 409, description = "Conflicts with the current state (a duplicate, a dependent, a hook's refusal)", body = ProblemDocument, content_type = "application/problem+json"), (status = 422, description = "Invalid input; `errors` names each field", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn create_tenant(
    Extract(platform): Extract<State>,
    caller: Caller,
    Json(new): Json<NewTenant>,
) -> Result<(StatusCode, Json<Tenant>)> {
    let tenant = platform.tenancy.create_tenant(&caller, new).await?;
    Ok((StatusCode::CREATED, Json(tenant)))
}

#[utoipa::path(
    get,
    path = "/api/v1/tenants",
    tag = "tenancy",
    summary = "Tenants: every one for a platform admin, one's own for a tenant's user",
    responses((status = 200, description = "Tenants", body = Vec<serde_json::Value>), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
async fn tenants(Extract(platform): Extract<State>, caller: Caller) -> Result<Json<Vec<Tenant>>> {
    platform.tenancy.tenants(&caller).await.map(Json)
}

#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}",
    tag = "tenancy",
    summary = "A tenant",
    params(("tenant" = String, Path, description = "Tenant id")),
    responses((status = 200, description = "The tenant", body = serde_json::Value), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn tenant(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> Result<Json<Tenant>> {
    let tenant = tenant_id(&tenant)?;
    caller.require_tenant_member(&tenant)?;
    platform.tenancy.tenant_as(&caller, &tenant).await.map(Json)
}

#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/modules",
    tag = "tenancy",
    summary = "The tenant's modules: each one it has enabled or disabled, with its configuration",
    params(("tenant" = String, Path, description = "Tenant id")),
    responses((status = 200, description = "The tenant's module rows", body = Vec<serde_json::Value>), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn tenant_modules(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> Result<Json<Vec<TenantModule>>> {
    let tenant = tenant_id(&tenant)?;
    caller.require_tenant_member(&tenant)?;
    platform.tenancy.tenant_as(&caller, &tenant).await?;
    platform.enablement.tenant_modules(&tenant).await.map(Json)
}

#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/companies",
    tag = "tenancy",
    summary = "Create a company",
    params(("tenant" = String, Path, description = "Tenant id")),
    request_body(content = serde_json::Value, description = "`{\"id\", \"name\", \"country\"?}`"),
    responses((status = 201, description = "Created", body = serde_json::Value), (status = 400, description = "Malformed request", body = ProblemDocument, content_type = "application/problem+json"), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json"), (status = 409, description = "Conflicts with the current state (a duplicate, a dependent, a hook's refusal)", body = ProblemDocument, content_type = "application/problem+json"), (status = 422, description = "Invalid input; `errors` names each field", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn create_company(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(tenant): Path<String>,
    Json(new): Json<NewCompany>,
) -> Result<(StatusCode, Json<Company>)> {
    let company = platform
        .tenancy
        .create_company(&caller, &tenant_id(&tenant)?, new)
        .await?;
    Ok((StatusCode::CREATED, Json(company)))
}

#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/companies",
    tag = "tenancy",
    summary = "A tenant's companies",
    params(("tenant" = String, Path, description = "Tenant id")),
    responses((status = 200, description = "Companies", body = Vec<serde_json::Value>), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn companies(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> Result<Json<Vec<Company>>> {
    let tenant = tenant_id(&tenant)?;
    caller.require_tenant_member(&tenant)?;
    platform.tenancy.companies(&tenant).await.map(Json)
}

/// For the tenant's users, and for modules the tenant has enabled (the seed's `get_company`).
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/companies/{company}",
    tag = "tenancy",
    summary = "A company (for the tenant's users and its enabled modules)",
    params(("tenant" = String, Path, description = "Tenant id"), ("company" = String, Path, description = "Company id")),
    responses((status = 200, description = "The company", body = serde_json::Value), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn company(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path((tenant, company)): Path<(String, String)>,
) -> Result<Json<Company>> {
    let (tenant, company) = (tenant_id(&tenant)?, company_id(&company)?);
    match &caller {
        Caller::Module(module) => {
            let enabled = platform
                .enablement
                .tenant_module(&tenant, module)
                .await?
                .is_some_and(|(row, _)| row.enabled);
            if !enabled {
                return Err(Error::NotFound(format!("no tenant {tenant}")));
            }
        }
        Caller::User(_) => {
            caller.require_tenant_member(&tenant)?;
        }
    }
    platform.tenancy.company(&tenant, &company).await.map(Json)
}

#[utoipa::path(
    put,
    path = "/api/v1/tenants/{tenant}/modules/{module}",
    tag = "tenancy",
    summary = "Enable (or change) a module for a tenant: a field present replaces, omitted keeps",
    params(("tenant" = String, Path, description = "Tenant id"), ("module" = String, Path, description = "Module name")),
    request_body(content = ModuleChange),
    responses((status = 200, description = "The tenant's module row", body = TenantModule), (status = 400, description = "Malformed request", body = ProblemDocument, content_type = "application/problem+json"), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json"), (status = 409, description = "Conflicts with the current state (a duplicate, a dependent, a hook's refusal)", body = ProblemDocument, content_type = "application/problem+json"), (status = 422, description = "Invalid input; `errors` names each field", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn enable(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path((tenant, module)): Path<(String, String)>,
    Json(change): Json<ModuleChange>,
) -> Result<Json<TenantModule>> {
    configuration_within(&change)?;
    let (tenant, module) = (tenant_id(&tenant)?, module_name(&module)?);
    platform
        .enablement
        .set_tenant_module(&caller, &tenant, &module, change)
        .await
        .map(Json)
}

#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/modules/{module}",
    tag = "tenancy",
    summary = "Disable a module for a tenant (its configuration is kept); optionally export the tenant's rows first, and drop them after a retention",
    params(("tenant" = String, Path, description = "Tenant id"), ("module" = String, Path, description = "Module name"), ("dry_run" = Option<bool>, Query, description = "Only say what would happen: the tables, the tenant's rows in each, the export, when the rows would be dropped"), ("export" = Option<bool>, Query, description = "Export the tenant's rows of the module's tables first (JSON Lines and a manifest); when that fails nothing is disabled"), ("drop_data" = Option<bool>, Query, description = "Drop the tenant's rows once the retention has passed (enabling the module again before then keeps them)"), ("retention_days" = Option<u32>, Query, minimum = 1, maximum = 3650, description = "Days before the rows are dropped (only with drop_data; default the platform's, 30)")),
    responses((status = 200, description = "The tenant's module row, the export made and when the rows will be dropped; with dry_run, the impact", body = DisableOutcome), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json"), (status = 409, description = "Conflicts with the current state (a hook's refusal; on one machine, tables held by a backend that cannot be stopped)", body = ProblemDocument, content_type = "application/problem+json"), (status = 422, description = "Invalid input; `errors` names each field", body = ProblemDocument, content_type = "application/problem+json"), (status = 502, description = "The module's tables or the export store could not be read or written; nothing was disabled", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn disable(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path((tenant, module)): Path<(String, String)>,
    Query(request): Query<DisableRequest>,
) -> Result<Json<DisableOutcome>> {
    let (tenant, module) = (tenant_id(&tenant)?, module_name(&module)?);
    platform
        .enablement
        .disable_tenant_module(&caller, &tenant, &module, request)
        .await
        .map(Json)
}

#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/modules/{module}/export",
    tag = "tenancy",
    summary = "Export the tenant's rows of the module's declared tables: one JSON Lines file per table and a manifest of counts and SHA-256s (tenant admins and platform admins)",
    params(("tenant" = String, Path, description = "Tenant id"), ("module" = String, Path, description = "Module name")),
    responses((status = 201, description = "The export: its location and, on AWS, pre-signed links", body = Export), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json"), (status = 409, description = "Conflicts with the current state (the module is not installed; on one machine, tables held by a backend that cannot be stopped)", body = ProblemDocument, content_type = "application/problem+json"), (status = 502, description = "The module's tables or the export store could not be read or written", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn export(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path((tenant, module)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Export>)> {
    let (tenant, module) = (tenant_id(&tenant)?, module_name(&module)?);
    platform
        .enablement
        .export_tenant_module(&caller, &tenant, &module)
        .await
        .map(|export| (StatusCode::CREATED, Json(export)))
}

#[utoipa::path(
    put,
    path = "/api/v1/tenants/{tenant}/companies/{company}/modules/{module}",
    tag = "tenancy",
    summary = "A company's override: `is_enabled`, configuration, features",
    params(("tenant" = String, Path, description = "Tenant id"), ("company" = String, Path, description = "Company id"), ("module" = String, Path, description = "Module name")),
    request_body(content = ModuleChange),
    responses((status = 200, description = "The company's module row", body = CompanyModule), (status = 400, description = "Malformed request", body = ProblemDocument, content_type = "application/problem+json"), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json"), (status = 409, description = "Conflicts with the current state (a duplicate, a dependent, a hook's refusal)", body = ProblemDocument, content_type = "application/problem+json"), (status = 422, description = "Invalid input; `errors` names each field", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn customize(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path((tenant, company, module)): Path<(String, String, String)>,
    Json(change): Json<ModuleChange>,
) -> Result<Json<CompanyModule>> {
    configuration_within(&change)?;
    let (tenant, company, module) = (
        tenant_id(&tenant)?,
        company_id(&company)?,
        module_name(&module)?,
    );
    platform
        .enablement
        .set_company_module(&caller, &tenant, &company, &module, change)
        .await
        .map(Json)
}

#[derive(Debug, Deserialize)]
struct ConfigParams {
    company: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/modules/{module}/config",
    tag = "tenancy",
    summary = "The resolved configuration (defaults, tenant, company) and which tier set each key",
    params(("tenant" = String, Path, description = "Tenant id"), ("module" = String, Path, description = "Module name"), ("company" = Option<String>, Query, description = "Resolve for this company")),
    responses((status = 200, description = "Resolved; `ETag` is its version", body = ResolvedConfig), (status = 304, description = "Unchanged since `If-None-Match`"), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn config(
    Extract(platform): Extract<State>,
    Path((tenant, module)): Path<(String, String)>,
    Query(params): Query<ConfigParams>,
    headers: HeaderMap,
) -> Response {
    config_answer(
        &platform,
        &headers,
        &tenant,
        &module,
        params.company.as_deref(),
    )
    .await
}

/// The config route's answer: the resolution with its version as `ETag`, or `304` to a
/// matching `If-None-Match`, or the problem. The config-resolver function answers API
/// Gateway's requests with this too.
pub async fn config_answer(
    platform: &ControlPlane,
    headers: &HeaderMap,
    tenant: &str,
    module: &str,
    company: Option<&str>,
) -> Response {
    let answer = async {
        let caller = caller_from(headers, platform).await?;
        let (tenant, module) = (tenant_id(tenant)?, module_name(module)?);
        let company = company
            .map(|c| CompanyId::parse_field("company", c))
            .transpose()?;
        let resolved = platform
            .config
            .resolve_config(&caller, &tenant, &module, company.as_ref())
            .await?;
        let etag = format!("\"{}\"", resolved.version);
        let etag_value =
            HeaderValue::from_str(&etag).map_err(|e| Error::internal_because("the ETag", e))?;
        if headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == etag.as_bytes())
        {
            return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response());
        }
        Ok::<_, Error>(([(header::ETAG, etag_value)], Json(resolved)).into_response())
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

/// The most records an audit page holds (the document's `limit` maximum).
const MAX_AUDIT_PAGE: usize = 100;

#[derive(Debug, Deserialize)]
struct AuditParams {
    limit: Option<usize>,
    after: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/audit",
    tag = "tenancy",
    summary = "Who changed what, when (newest first)",
    params(("tenant" = String, Path, description = "Tenant id"), ("limit" = Option<usize>, Query, description = "Page size: 1 to 100 (default 50)"), ("after" = Option<String>, Query, description = "`next` of the previous page")),
    responses((status = 200, description = "A page of records", body = AuditPage), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn audit(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(tenant): Path<String>,
    Query(params): Query<AuditParams>,
) -> Result<Json<AuditPage>> {
    let tenant = tenant_id(&tenant)?;
    caller.require_tenant_admin(&tenant)?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=MAX_AUDIT_PAGE).contains(&limit) {
        return Err(Error::field(
            "limit",
            format!("a page holds 1 to {MAX_AUDIT_PAGE} records, not {limit}"),
        ));
    }
    platform
        .audit
        .page(&tenant, limit, params.after)
        .await
        .map(Json)
}
