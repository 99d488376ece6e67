//! `GET /openapi.json`: the platform API's OpenAPI document, generated from the handlers'
//! `#[utoipa::path]` annotations (so a route without one is caught by the test below).

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use plinth_module_sdk::Problem;
pub(super) use plinth_module_sdk::wire::ProblemDocument;
use plinth_module_sdk::wire::{ConfigTier, ResolvedConfig};

use super::contract::CREDENTIALS;
use super::{events, install, modules, rbac, rollouts, tenants, usage, versions};
use crate::api_keys::{ApiKeyRecord, IssuedKey};
use crate::audit::{AuditPage, AuditRecord};
use crate::bundles::{Bundle, BundleFile};
use crate::catalog::{Frontend, ModuleVersion};
use crate::config::{CompanyModule, TenantModule};
use crate::enablement::ModuleChange;
use crate::install::{InstallRequest, UninstallImpact, UpgradeRequest};
use crate::instances::{Health, Instance, Registration};
use crate::rbac::RoleChange;
use crate::rollout::{
    InstancesSeen, Moved, RolloutRequest, RolloutState, RolloutView, Skipped, ThresholdOverrides,
    Thresholds, VersionFigures, WaveProgress,
};
use crate::usage::{
    Bill, Figures, Granularity, Latency, Row, TenantUsage, TierPrices, UsageReport,
};
use crate::versions::{InstalledVersion, ModuleVersions, TenantVersion, VersionChoice};

/// The bearer-token and module-API-key security schemes.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(format!("A user's token. {CREDENTIALS}")))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "module_api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Module-API-Key",
                &format!("A module's API key. {CREDENTIALS}"),
            ))),
        );
        super::contract::complete(openapi);
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Plinth platform API", description = "The control plane of Plinth: catalog, installer, tenancy, configuration, RBAC, API keys and audit. Errors are RFC 9457 problem documents (`ProblemDocument`; a 422 is a `ValidationProblem`, whose `errors` names each invalid field). Bodies are UTF-8 JSON objects of at most 2 MiB. When a request carries `X-Module-API-Key`, that key is the credential and the bearer token is not read."),
    paths(
        super::health, super::jwks, openapi_json,
        modules::list, modules::publish, modules::detail, modules::versions, modules::frontend,
        install::install, install::upgrade, install::rollback, install::status, install::uninstall,
        install::retry,
        install::manifest, install::instances, install::register, install::api_keys, install::issue_key,
        install::revoke_key,
        tenants::tenants, tenants::create_tenant, tenants::tenant, tenants::tenant_modules, tenants::companies, tenants::create_company, tenants::company,
        tenants::enable, tenants::disable, tenants::export, tenants::customize, tenants::config, tenants::audit,
        rbac::verify, rbac::roles, rbac::role, rbac::users, rbac::put_role, rbac::assignment, rbac::assign,
        events::publish, events::dead_letters, events::replay,
        usage::one_tenant, usage::every_tenant,
        versions::show_pin, versions::set_pin, versions::clear_pin, versions::installed,
        versions::set_default,
        rollouts::start_rollout, rollouts::list_rollouts, rollouts::show_rollout,
        rollouts::pause_rollout, rollouts::resume_rollout, rollouts::abort_rollout,
    ),
    components(schemas(
        ProblemDocument, Problem, ModuleVersion, Frontend, Bundle, BundleFile, InstallRequest, UpgradeRequest, UninstallImpact,
        crate::enablement::Disabled, crate::enablement::DisableImpact, crate::enablement::DisableOutcome, crate::export::Export, crate::export::ExportedTable, crate::export::TableRows,
        Instance, Health, Registration, IssuedKey, ApiKeyRecord, TenantModule, CompanyModule, ModuleChange,
        ResolvedConfig, ConfigTier, RoleChange, AuditPage, AuditRecord,
        UsageReport, TenantUsage, Row, Figures, Latency, Bill, TierPrices, Granularity,
        TenantVersion, VersionChoice, ModuleVersions, InstalledVersion,
        RolloutRequest, ThresholdOverrides, Thresholds, RolloutView, RolloutState, WaveProgress,
        VersionFigures, Moved, Skipped, InstancesSeen,
    )),
    modifiers(&Security),
    tags(
        (name = "platform", description = "Liveness, keys and this document"),
        (name = "catalog", description = "Published module versions and the marketplace"),
        (name = "installer", description = "Install, upgrade, roll back and uninstall modules; instances and API keys"),
        (name = "tenancy", description = "Tenants, companies, enablement, configuration and audit"),
        (name = "rbac", description = "Roles, assignments and permission checks"),
        (name = "events", description = "Modules' own events onto the platform's bus"),
        (name = "usage", description = "What each tenant used of each module, and its bill estimate"),
    )
)]
pub(super) struct ApiDoc;

/// The document, as served: generated from the handlers, then its parameters and bodies
/// said as precisely as the handlers read them.
pub fn document() -> serde_json::Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    super::schemas::refine(&mut document);
    document
}

/// [`document`] as generated when it was last changed, served as it is: the functions that
/// serve the API then link none of the code that builds it (`utoipa`'s schemas, [`refine`]:
/// about 0.1 MB of the registry API's zip). `openapi_tests.rs` fails when it is not what
/// [`document`] generates, and writes it again under `PLINTH_WRITE_OPENAPI=1`:
/// `PLINTH_WRITE_OPENAPI=1 cargo test -p plinth-registry --lib openapi`.
///
/// [`refine`]: super::schemas::refine
pub(super) const SERVED: &str = include_str!("openapi.json");

/// The API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "platform",
    responses((status = 200, description = "This document", body = serde_json::Value)))]
pub(super) async fn openapi_json() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        SERVED,
    )
}

#[cfg(test)]
#[path = "openapi_tests.rs"]
mod tests;
