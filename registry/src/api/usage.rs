//! `GET /api/v1/tenants/{tenant}/usage` (a tenant's admin) and `GET /api/v1/usage` (a platform
//! admin, every tenant): usage by hour or day with each tenant's bill estimate, as JSON or CSV
//! (`Accept: text/csv` or `?format=csv`).

use axum::Router;
use axum::extract::{Path, State as Extract};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use plinth_module_sdk::ModuleName;
use serde::Deserialize;

use super::openapi::ProblemDocument;
use super::tenants::tenant_id;
use super::{Json, Query, State};
use crate::error::{Error, Result};
use crate::identity::Caller;
use crate::tenancy::Tenant;
use crate::usage::{Period, UsageReport};

pub(super) fn routes() -> Router<State> {
    Router::new()
        .route("/api/v1/usage", get(every_tenant))
        .route("/api/v1/tenants/{tenant}/usage", get(one_tenant))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UsageParams {
    from: Option<String>,
    to: Option<String>,
    module: Option<String>,
    granularity: Option<String>,
    format: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/usage",
    tag = "usage",
    operation_id = "tenant_usage",
    summary = "A tenant's usage of its modules by hour or day, with its bill estimate (the tenant's admin)",
    params(
        ("tenant" = String, Path, description = "Tenant id"),
        ("from" = Option<String>, Query, description = "Start, included: a date (`2026-12-01`, from its start) or an RFC 3339 time (rounded down to the hour); default the first of this month"),
        ("to" = Option<String>, Query, description = "End: a date (included, to its end) or an RFC 3339 time (excluded, rounded up to the hour); default now. At most 31 days by hour, 366 by day"),
        ("module" = Option<String>, Query, description = "Only this module's figures"),
        ("granularity" = Option<String>, Query, description = "`hour` or `day` (default)"),
        ("format" = Option<String>, Query, description = "`json` (default) or `csv` (as `Accept: text/csv`)"),
    ),
    responses(
        (status = 200, description = "Figures per period and module, the total and the bill estimate; CSV: a header line and one line per tenant, period and module", content((UsageReport = "application/json"), (String = "text/csv"))),
        (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "Not the tenant's admin", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn one_tenant(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(tenant): Path<String>,
    Query(params): Query<UsageParams>,
    headers: HeaderMap,
) -> Result<Response> {
    let tenant = tenant_id(&tenant)?;
    caller.require_tenant_admin(&tenant)?;
    let tenant = platform.tenancy.tenant(&tenant).await?;
    answer(&platform, &[tenant], &params, &headers).await
}

#[utoipa::path(
    get,
    path = "/api/v1/usage",
    tag = "usage",
    operation_id = "usage",
    summary = "Every tenant's usage by hour or day, with bill estimates (platform admin)",
    params(
        ("from" = Option<String>, Query, description = "As for a tenant's usage"),
        ("to" = Option<String>, Query, description = "As for a tenant's usage"),
        ("module" = Option<String>, Query, description = "Only this module's figures"),
        ("granularity" = Option<String>, Query, description = "`hour` or `day` (default)"),
        ("format" = Option<String>, Query, description = "`json` (default) or `csv` (as `Accept: text/csv`)"),
    ),
    responses(
        (status = 200, description = "Every tenant's figures, totals and bill estimates; CSV: a header line and one line per tenant, period and module", content((UsageReport = "application/json"), (String = "text/csv"))),
        (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "Not a platform admin", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn every_tenant(
    Extract(platform): Extract<State>,
    caller: Caller,
    Query(params): Query<UsageParams>,
    headers: HeaderMap,
) -> Result<Response> {
    caller.require_platform_admin()?;
    let tenants = platform.tenancy.tenants(&caller).await?;
    answer(&platform, &tenants, &params, &headers).await
}

/// Whether the answer is CSV: `format` says so, else `Accept` asks for `text/csv`.
fn wants_csv(params: &UsageParams, headers: &HeaderMap) -> Result<bool> {
    match params.format.as_deref() {
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        Some(other) => Err(Error::field(
            "format",
            format!("`json` or `csv`, not `{other}`"),
        )),
        None => Ok(headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|m| m.trim().starts_with("text/csv")))),
    }
}

async fn answer(
    platform: &crate::plane::ControlPlane,
    tenants: &[Tenant],
    params: &UsageParams,
    headers: &HeaderMap,
) -> Result<Response> {
    let csv = wants_csv(params, headers)?;
    let module = match params.module.as_deref() {
        Some(text) => Some(
            ModuleName::parse(text)
                .map_err(|_| Error::field("module", format!("`{text}` is not a module name")))?,
        ),
        None => None,
    };
    let period = Period::parse(
        params.from.as_deref(),
        params.to.as_deref(),
        params.granularity.as_deref(),
        time::OffsetDateTime::now_utc(),
    )?;
    let module = module.as_ref().map(ModuleName::as_str);
    let report: UsageReport = platform.usage.report(tenants, &period, module).await?;
    if csv {
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"usage.csv\"",
                ),
            ],
            report.csv(),
        )
            .into_response());
    }
    Ok(Json(report).into_response())
}
