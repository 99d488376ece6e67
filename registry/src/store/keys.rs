//! The key design: one table, every access pattern of the control plane, one line each.
//!
//! | access pattern | key | operation (round trips) |
//! | --- | --- | --- |
//! | module catalog entry (marketplace listing) | `PK=CATALOG SK=MODULE#{m}` | query `CATALOG` (1 per page) |
//! | a module's versions | `PK=MODULE#{m} SK=VERSION#{v}` | query prefix `VERSION#` (1) |
//! | a module's installation (saga state, installed version) | `PK=MODULE#{m} SK=INSTALLATION` | get (1) |
//! | a version installed alongside the module's first (`versions`) | `PK=MODULE#{m} SK=INSTALLATION#{v}` | get (1); query prefix `INSTALLATION#` (1) |
//! | a module's default version (`versions`) | `PK=MODULE#{m} SK=VERSIONS` | get (1) |
//! | a tenant's pin to a version of a module (`versions`) | `PK=MODULE#{m} SK=PIN#{t}` | get (1); every pin of a module: query prefix `PIN#` (1) |
//! | a module's rollouts, oldest first (`rollout`) | `PK=MODULE#{m} SK=ROLLOUT#{id}` (ids sort by time) | get (1); query prefix `ROLLOUT#` (1) |
//! | every module's running or paused rollout (`rollout`) | `PK=ROLLOUTS SK=MODULE#{m}` | query `ROLLOUTS` (1 per page); written on the condition it is absent |
//! | a module's running instances | `PK=MODULE#{m} SK=INSTANCE#{url}` | query prefix `INSTANCE#` (1) |
//! | a module's API keys, for listing | `PK=MODULE#{m} SK=APIKEY#{id}` | query prefix `APIKEY#` (1) |
//! | an API key by its hash (authorizer) | `PK=APIKEY#{sha256} SK=APIKEY` | get (1) |
//! | a tenant | `PK=TENANT#{t} SK=TENANT` | get (1) |
//! | every tenant, for listing | `PK=TENANTS SK=TENANT#{t}` | query `TENANTS` (1 per page) |
//! | a tenant's companies | `PK=TENANT#{t} SK=COMPANY#{c}` | query prefix `COMPANY#` (1) |
//! | tenant enablement (TenantModule) | `PK=TENANT#{t} SK=MODULE#{m}` | get (1) |
//! | company override (CompanyModule) | `PK=TENANT#{t} SK=COMPANYMODULE#{c}#{m}` | get (1) |
//! | resolved config inputs: defaults, tenant, company | the three keys above | batch get (1) |
//! | a tenant's roles | `PK=TENANT#{t} SK=ROLE#{r}` | query prefix `ROLE#` (1) |
//! | a user's role assignments | `PK=TENANT#{t} SK=USER#{u}` | get (1) |
//! | audit, newest first, expiring by TTL | `PK=AUDIT#{t} SK={rfc3339 time}#{id}` | query descending (1 per page) |
//! | a tenant's usage per module and hour (`usage`) | `PK=USAGE#{t} SK=HOUR#{yyyy-mm-ddThh}#{m}` | query between two hours (1 per page); a flush: get + versioned put per hour used |
//!
//! Company overrides are not under `COMPANY#{c}#…` so that listing companies (prefix
//! `COMPANY#`) reads companies only. Ids never contain `#` (their types refuse it).
//!
//! Every hot read is one get, one batch get or one query page: the resolver reads the
//! module version, the TenantModule and the CompanyModule rows in a single batch get.

use super::Key;

pub const CATALOG: &str = "CATALOG";

pub fn catalog_entry(module: &str) -> Key {
    Key::new(CATALOG, format!("MODULE#{module}"))
}

pub fn module_partition(module: &str) -> String {
    format!("MODULE#{module}")
}

pub fn module_version(module: &str, version: &str) -> Key {
    Key::new(module_partition(module), format!("VERSION#{version}"))
}

pub fn installation(module: &str) -> Key {
    Key::new(module_partition(module), "INSTALLATION")
}

/// A version installed alongside the module's first installation (`installation`).
pub fn installation_alongside(module: &str, version: &str) -> Key {
    Key::new(module_partition(module), format!("INSTALLATION#{version}"))
}

/// The module's version settings: its default version.
pub fn module_versions(module: &str) -> Key {
    Key::new(module_partition(module), "VERSIONS")
}

/// A tenant's pin to one installed version of a module.
pub fn version_pin(module: &str, tenant: &str) -> Key {
    Key::new(module_partition(module), format!("PIN#{tenant}"))
}

pub fn instance(module: &str, url: &str) -> Key {
    Key::new(module_partition(module), format!("INSTANCE#{url}"))
}

pub fn api_key_by_hash(hash: &str) -> Key {
    Key::new(format!("APIKEY#{hash}"), "APIKEY")
}

pub fn tenant_partition(tenant: &str) -> String {
    format!("TENANT#{tenant}")
}

pub fn tenant(tenant: &str) -> Key {
    Key::new(tenant_partition(tenant), "TENANT")
}

pub const TENANTS: &str = "TENANTS";

/// A tenant's row in the list of every tenant (written with the tenant).
pub fn tenant_listing(tenant: &str) -> Key {
    Key::new(TENANTS, format!("TENANT#{tenant}"))
}

pub fn company(tenant: &str, company: &str) -> Key {
    Key::new(tenant_partition(tenant), format!("COMPANY#{company}"))
}

pub fn tenant_module(tenant: &str, module: &str) -> Key {
    Key::new(tenant_partition(tenant), format!("MODULE#{module}"))
}

pub fn company_module(tenant: &str, company: &str, module: &str) -> Key {
    Key::new(
        tenant_partition(tenant),
        format!("COMPANYMODULE#{company}#{module}"),
    )
}

pub fn role(tenant: &str, role: &str) -> Key {
    Key::new(tenant_partition(tenant), format!("ROLE#{role}"))
}

pub fn user_roles(tenant: &str, user: &str) -> Key {
    Key::new(tenant_partition(tenant), format!("USER#{user}"))
}

pub fn audit_partition(tenant: &str) -> String {
    format!("AUDIT#{tenant}")
}
