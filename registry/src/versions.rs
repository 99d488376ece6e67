//! Several versions of a module side by side, and which one serves each tenant.
//!
//! A module's first installation (`installation`) may have other versions installed
//! alongside it (`POST /api/v1/modules/{m}/install` with `"alongside": true`), each its own
//! deployment and instances. Each tenant is served by exactly one installed version: its
//! **pin** (`PK=MODULE#m SK=PIN#t`), else the module's **default version**
//! (`PK=MODULE#m SK=VERSIONS`; none stored: the first installation's version). A staged
//! rollout moves tenants by setting their pins.
//!
//! Pins and defaults are changes like any other (audit record, event, staleness), and a pin
//! or default that would put a tenant on a version whose configuration schema refuses the
//! tenant's stored configuration is refused, naming the field.

use std::collections::BTreeMap;
use std::sync::Arc;

use plinth_module_sdk::{Manifest, ModuleName, Problem};
use semver::Version;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::audit;
use crate::cache::{ChangeAwareCache, Stale, Staleness, TtlCache};
use crate::changes::{Change, Changes};
use crate::clock::now;
use crate::config::{CompanyModule, TenantModule, config_problems, merged_config};
use crate::error::{Error, Result};
use crate::events::platform_event;
use crate::identity::Caller;
use crate::ids::TenantId;
use crate::installation::{Installation, Installations, Pin, VersionSettings};
use crate::store::{
    Condition, Item, Key, Query, Store, Write, from_item, keys, query_all, to_data,
};
use crate::tenancy::Tenancy;

/// `GET /api/v1/tenants/{t}/modules/{m}/pin`: which version serves the tenant, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenantVersion {
    pub module: String,
    pub tenant_id: String,
    /// The version serving the tenant.
    pub version: String,
    /// The tenant's pin, if it has one.
    pub pinned: Option<String>,
    /// The module's default version (what serves the tenant without a pin).
    pub default_version: String,
}

/// `PUT /api/v1/tenants/{t}/modules/{m}/pin` and `PUT /api/v1/modules/{m}/default-version`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionChoice {
    /// An installed version of the module.
    pub version: String,
}

/// One installed version of a module, with the tenants pinned to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstalledVersion {
    pub version: String,
    /// Installed alongside the module's first installation (which upgrades and rolls back).
    pub alongside: bool,
    /// The module's default: it serves every tenant without a pin.
    pub default: bool,
    /// Tenants pinned to this version.
    pub pinned_tenants: Vec<String>,
    /// Its deployment's endpoint.
    pub endpoint: Option<String>,
}

/// `GET /api/v1/modules/{m}/installed-versions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModuleVersions {
    pub module: String,
    pub default_version: String,
    pub versions: Vec<InstalledVersion>,
}

fn forget_chosen(chosen: &TtlCache<(String, String), String>, stale: &Stale) {
    match stale {
        Stale::Module(module) => chosen.retain(|(_, m)| m != module),
        Stale::Modules | Stale::Everything => chosen.clear(),
        _ => {}
    }
}

/// Pins, default versions and the choice of version per tenant (cached, dropped on any
/// change of the module).
#[derive(Debug)]
pub struct Versions {
    store: Arc<dyn Store>,
    changes: Arc<Changes>,
    installations: Arc<Installations>,
    tenancy: Arc<Tenancy>,
    /// (tenant, module) → the version serving the tenant.
    chosen: ChangeAwareCache<(String, String), String>,
}

impl Versions {
    pub fn new(
        store: Arc<dyn Store>,
        changes: Arc<Changes>,
        installations: Arc<Installations>,
        tenancy: Arc<Tenancy>,
        staleness: &Arc<Staleness>,
    ) -> Self {
        Self {
            store,
            changes,
            installations,
            tenancy,
            chosen: ChangeAwareCache::new(Arc::clone(staleness)),
        }
    }

    /// The version serving `tenant`, from the cache when warm (one batch get cold, two when
    /// the tenant's version is installed alongside). `NotFound` when the module is not
    /// installed.
    pub async fn tenant_version(&self, tenant: &TenantId, module: &ModuleName) -> Result<String> {
        let key = (tenant.to_string(), module.to_string());
        if let Some(version) = self.chosen.get(&key) {
            return Ok(version);
        }
        let (t, m) = (tenant.as_str(), module.as_str());
        let wanted = [
            keys::installation(m),
            keys::module_versions(m),
            keys::version_pin(m, t),
        ];
        let found = self.store.batch_get(&wanted).await?;
        let get = |key: &Key| found.iter().find(|i| &i.key == key);
        let first: Option<Installation> = get(&wanted[0]).map(from_item).transpose()?;
        let settings: Option<VersionSettings> = get(&wanted[1]).map(from_item).transpose()?;
        let pin: Option<Pin> = get(&wanted[2]).map(from_item).transpose()?;
        let version = self
            .installations
            .serving_tenant(module, first, settings.as_ref(), pin.as_ref())
            .await?
            .and_then(|i| i.installed_version)
            .ok_or_else(|| Error::NotFound(format!("{module} is not installed")))?;
        self.chosen.insert(key, version.clone(), forget_chosen);
        Ok(version)
    }

    /// The manifest and installation serving `tenant`.
    pub async fn tenant_installation(
        &self,
        tenant: &TenantId,
        module: &ModuleName,
    ) -> Result<(String, Installation)> {
        let version = self.tenant_version(tenant, module).await?;
        let installation = self
            .installations
            .serving(module, &version)
            .await?
            .ok_or_else(|| Error::NotFound(format!("{module} {version} is not installed")))?;
        Ok((version, installation))
    }

    async fn settings(&self, module: &ModuleName) -> Result<Option<(VersionSettings, u64)>> {
        match self
            .store
            .get(&keys::module_versions(module.as_str()))
            .await?
        {
            Some(item) => Ok(Some((from_item(&item)?, item.version))),
            None => Ok(None),
        }
    }

    /// Every pin of `module` (one query).
    pub async fn pins(&self, module: &ModuleName) -> Result<Vec<Pin>> {
        let query = Query::prefix(keys::module_partition(module.as_str()), "PIN#");
        let items = query_all(self.store.as_ref(), &query).await?;
        items.iter().map(from_item).collect()
    }

    async fn pin(&self, tenant: &TenantId, module: &ModuleName) -> Result<Option<Pin>> {
        let key = keys::version_pin(module.as_str(), tenant.as_str());
        self.store
            .get(&key)
            .await?
            .as_ref()
            .map(from_item)
            .transpose()
    }

    /// The installed versions of `module` (404 when none), and the default among them.
    async fn installed(&self, module: &ModuleName) -> Result<(Vec<Installation>, String)> {
        let installed = self.installations.installed_versions(module).await?;
        let first = installed
            .iter()
            .find(|i| !i.alongside)
            .and_then(|i| i.installed_version.clone())
            .ok_or_else(|| Error::NotFound(format!("{module} is not installed")))?;
        let default = self
            .settings(module)
            .await?
            .and_then(|(s, _)| s.default_version)
            .filter(|v| installed.iter().any(|i| i.version == *v))
            .unwrap_or(first);
        Ok((installed, default))
    }

    /// The installed version `text` names, or 422 naming it and what is installed.
    fn installed_version<'a>(
        module: &ModuleName,
        installed: &'a [Installation],
        text: &str,
    ) -> Result<&'a Installation> {
        let version = Version::parse(text).map_err(|e| {
            Error::field(
                "version",
                format!("`{text}` is not a semantic version: {e}"),
            )
        })?;
        installed
            .iter()
            .find(|i| i.installed_version.as_deref() == Some(version.to_string().as_str()))
            .ok_or_else(|| {
                let names: Vec<&str> = installed.iter().map(|i| i.version.as_str()).collect();
                Error::field(
                    "version",
                    format!(
                        "{module} {version} is not installed (installed: {})",
                        names.join(", ")
                    ),
                )
            })
    }

    /// Which version serves `tenant`: for its admins and platform admins.
    pub async fn show(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        module: &ModuleName,
    ) -> Result<TenantVersion> {
        if !caller.is_platform_admin() {
            caller.require_tenant_admin(tenant)?;
        }
        self.tenancy.tenant_as(caller, tenant).await?;
        let (_, default) = self.installed(module).await?;
        let pinned = self.pin(tenant, module).await?.map(|p| p.version);
        Ok(TenantVersion {
            module: module.to_string(),
            tenant_id: tenant.to_string(),
            version: self.tenant_version(tenant, module).await?,
            pinned,
            default_version: default,
        })
    }

    /// Pins `tenant` to an installed `version` (platform admins): refused when that version's
    /// configuration schema refuses the tenant's stored configuration.
    pub async fn set_pin(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        module: &ModuleName,
        version: &str,
    ) -> Result<TenantVersion> {
        caller.require_platform_admin()?;
        self.tenancy.tenant_as(caller, tenant).await?;
        let (installed, _) = self.installed(module).await?;
        let target = Self::installed_version(module, &installed, version)?;
        let manifest = manifest_of(target)?;
        self.check_fits(tenant, &manifest).await?;
        let previous = self.tenant_version(tenant, module).await?;
        let pin = Pin {
            module: module.to_string(),
            tenant_id: tenant.to_string(),
            version: target.version.clone(),
            pinned_at: now(),
            pinned_by: caller.actor(),
        };
        let payload = json!({
            "module": module, "tenant_id": tenant, "version": pin.version, "previous_version": previous,
        });
        let writes = vec![
            Write::Put {
                item: Item::new(
                    keys::version_pin(module.as_str(), tenant.as_str()),
                    to_data(&pin),
                ),
                condition: Condition::Always,
            },
            audit::record(
                tenant.as_str(),
                &caller.actor(),
                "module.version.pinned",
                &format!("module:{module}"),
                payload.clone(),
            ),
        ];
        self.changes
            .commit(
                Change::new(writes)
                    .events([platform_event("module.version.pinned", payload)])
                    .stale(Stale::Module(module.to_string())),
            )
            .await?;
        self.show(caller, tenant, module).await
    }

    /// Removes `tenant`'s pin (platform admins): the default serves it again, which must
    /// accept its configuration too.
    pub async fn clear_pin(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        module: &ModuleName,
    ) -> Result<TenantVersion> {
        caller.require_platform_admin()?;
        self.tenancy.tenant_as(caller, tenant).await?;
        let (installed, default) = self.installed(module).await?;
        let Some(pin) = self.pin(tenant, module).await? else {
            return self.show(caller, tenant, module).await;
        };
        let target = Self::installed_version(module, &installed, &default)?;
        self.check_fits(tenant, &manifest_of(target)?).await?;
        let payload = json!({
            "module": module, "tenant_id": tenant, "version": default, "previous_version": pin.version,
        });
        let writes = vec![
            Write::Delete {
                key: keys::version_pin(module.as_str(), tenant.as_str()),
                condition: Condition::Always,
            },
            audit::record(
                tenant.as_str(),
                &caller.actor(),
                "module.version.unpinned",
                &format!("module:{module}"),
                payload.clone(),
            ),
        ];
        self.changes
            .commit(
                Change::new(writes)
                    .events([platform_event("module.version.unpinned", payload)])
                    .stale(Stale::Module(module.to_string())),
            )
            .await?;
        self.show(caller, tenant, module).await
    }

    /// Makes an installed `version` the module's default (platform admins): refused when its
    /// schema refuses the configuration of a tenant without a pin that has the module.
    pub async fn set_default(
        &self,
        caller: &Caller,
        module: &ModuleName,
        version: &str,
    ) -> Result<ModuleVersions> {
        caller.require_platform_admin()?;
        let (installed, previous) = self.installed(module).await?;
        let target = Self::installed_version(module, &installed, version)?;
        let manifest = manifest_of(target)?;
        let pinned: Vec<String> = self
            .pins(module)
            .await?
            .into_iter()
            .map(|p| p.tenant_id)
            .collect();
        for tenant in self.tenancy.tenants(caller).await? {
            if pinned.iter().any(|p| p == tenant.id.as_str()) {
                continue;
            }
            self.check_fits(&tenant.id, &manifest).await?;
        }
        let stored = self.settings(module).await?;
        // The first installation's version is stored as none: it follows its upgrades.
        let default_version = target.alongside.then(|| target.version.clone());
        let settings = VersionSettings {
            module: module.to_string(),
            default_version,
            updated_at: now(),
            updated_by: caller.actor(),
        };
        let condition = stored
            .as_ref()
            .map_or(Condition::Absent, |(_, v)| Condition::Version(*v));
        let payload = json!({
            "module": module, "version": target.version, "previous_version": previous,
        });
        let writes = vec![
            Write::Put {
                item: Item {
                    key: keys::module_versions(module.as_str()),
                    version: stored.map_or(1, |(_, v)| v + 1),
                    data: to_data(&settings),
                    expires_at: None,
                },
                condition,
            },
            audit::record(
                audit::PLATFORM_SCOPE,
                &caller.actor(),
                "module.version.default_set",
                &format!("module:{module}"),
                payload.clone(),
            ),
        ];
        self.changes
            .commit(
                Change::new(writes)
                    .events([platform_event("module.version.default_set", payload)])
                    .stale(Stale::Module(module.to_string()))
                    .on_conflict(format!(
                        "{module}'s default version was changed at the same time"
                    )),
            )
            .await?;
        self.list(caller, module).await
    }

    /// The installed versions of `module`, each with the tenants pinned to it (platform
    /// admins).
    pub async fn list(&self, caller: &Caller, module: &ModuleName) -> Result<ModuleVersions> {
        caller.require_platform_admin()?;
        let (installed, default) = self.installed(module).await?;
        let mut pinned: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for pin in self.pins(module).await? {
            pinned.entry(pin.version).or_default().push(pin.tenant_id);
        }
        let versions = installed
            .iter()
            .map(|i| InstalledVersion {
                version: i.version.clone(),
                alongside: i.alongside,
                default: i.version == default,
                pinned_tenants: pinned.remove(&i.version).unwrap_or_default(),
                endpoint: i.deployment.as_ref().map(|d| d.endpoint.clone()),
            })
            .collect();
        Ok(ModuleVersions {
            module: module.to_string(),
            default_version: default,
            versions,
        })
    }

    /// What would keep `version` from going away: the tenants pinned to it, or its being the
    /// default. The installer refuses to uninstall (or upgrade away) such a version.
    pub async fn still_serving(
        &self,
        module: &ModuleName,
        version: &str,
    ) -> Result<Option<String>> {
        let pinned: Vec<String> = self
            .pins(module)
            .await?
            .into_iter()
            .filter(|p| p.version == version)
            .map(|p| p.tenant_id)
            .collect();
        if !pinned.is_empty() {
            return Ok(Some(format!(
                "tenant(s) {} are pinned to {module} {version}; unpin them or pin them to another version first",
                pinned.join(", ")
            )));
        }
        let default = self
            .settings(module)
            .await?
            .and_then(|(s, _)| s.default_version);
        if default.as_deref() == Some(version) {
            return Ok(Some(format!(
                "{module} {version} is the default version; make another version the default first"
            )));
        }
        Ok(None)
    }

    /// Refuses (422, naming each field) when `manifest`'s schema refuses `tenant`'s stored
    /// configuration of the module, or that of one of its companies.
    pub(crate) async fn check_fits(&self, tenant: &TenantId, manifest: &Manifest) -> Result<()> {
        let (t, m) = (tenant.as_str(), manifest.name.as_str());
        let tenant_row: Option<TenantModule> = self
            .store
            .get(&keys::tenant_module(t, m))
            .await?
            .as_ref()
            .map(from_item)
            .transpose()?;
        let Some(tenant_row) = tenant_row else {
            return Ok(());
        };
        let mut problems = config_problems(
            manifest,
            &merged_config(manifest, &[&tenant_row.configuration]),
        );
        let companies = query_all(
            self.store.as_ref(),
            &Query::prefix(keys::tenant_partition(t), "COMPANYMODULE#"),
        )
        .await?;
        for item in &companies {
            let row: CompanyModule = from_item(item)?;
            if row.module != m {
                continue;
            }
            let patches: [&Map<String, Value>; 2] = [&tenant_row.configuration, &row.configuration];
            for problem in config_problems(manifest, &merged_config(manifest, &patches)) {
                problems.push(Problem {
                    path: format!("companies.{}.{}", row.company_id, problem.path),
                    message: problem.message,
                });
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(Error::invalid(
            format!(
                "{} {}'s configuration schema refuses tenant {tenant}'s configuration: {}",
                m,
                manifest.version,
                problems
                    .iter()
                    .map(|p| format!("{}: {}", p.path, p.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            problems,
        ))
    }
}

fn manifest_of(installation: &Installation) -> Result<Manifest> {
    installation
        .serving_manifest()
        .unwrap_or_else(|| Err(Error::internal("an installed version has no manifest")))
}
