//! A tenant's configuration of a module — its TenantModule and its companies' CompanyModule
//! rows, as the seed models them — and the resolver: module defaults → tenant → company,
//! merged as JSON Merge Patch (RFC 7396: `null` removes a key, objects merge deeply, arrays
//! replace), with the effective features and which tier set each key.
//!
//! An uncached resolution is one store round trip (one batch get of the installation, the
//! TenantModule, the company and its CompanyModule); a warm one makes none: resolutions are
//! cached for at most 30 s and dropped when the module's settings change.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use plinth_module_sdk::wire::{ConfigTier, ResolvedConfig};
use plinth_module_sdk::{Manifest, ModuleName, Problem};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::cache::{ChangeAwareCache, Stale, Staleness, TtlCache};
use crate::error::{Error, Result, did_you_mean};
use crate::identity::Caller;
use crate::ids::{CompanyId, TenantId};
use crate::installation::{Installation, Installations, Pin, VersionSettings};
use crate::store::{Item, Key, Query, Store, from_item, keys, query_all};

/// A tenant's enablement of a module, with its configuration and feature toggles
/// (`PK=TENANT#t SK=MODULE#m`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenantModule {
    pub tenant_id: String,
    pub module: String,
    pub enabled: bool,
    #[serde(default)]
    pub configuration: Map<String, Value>,
    #[serde(default)]
    pub enabled_features: Vec<String>,
    #[serde(default)]
    pub disabled_features: Vec<String>,
    pub updated_at: String,
    pub updated_by: String,
}

/// A company's customisation of a module its tenant has (`PK=TENANT#t SK=COMPANY#c#MODULE#m`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CompanyModule {
    pub tenant_id: String,
    pub company_id: String,
    pub module: String,
    pub is_enabled: bool,
    #[serde(default)]
    pub configuration: Map<String, Value>,
    #[serde(default)]
    pub enabled_features: Vec<String>,
    #[serde(default)]
    pub disabled_features: Vec<String>,
    pub customized_at: String,
    pub customized_by_user_id: String,
}

fn forget_resolutions(resolved: &Resolutions, stale: &Stale) {
    match stale {
        Stale::Module(module) => resolved.retain(|(_, m, _)| m != module),
        Stale::Modules | Stale::Everything => resolved.clear(),
        _ => {}
    }
}

/// Defaults with each patch merged in, in order (RFC 7396).
pub fn merged_config(manifest: &Manifest, patches: &[&Map<String, Value>]) -> Value {
    let mut config = Value::Object(manifest.configuration.defaults.clone());
    for patch in patches {
        json_patch::merge(&mut config, &Value::Object((*patch).clone()));
    }
    config
}

/// The schema's problems with a merged configuration, at paths under `configuration`.
pub fn config_problems(manifest: &Manifest, merged: &Value) -> Vec<Problem> {
    manifest
        .configuration
        .problems_in(merged)
        .into_iter()
        .map(|p| Problem {
            path: match p.path.as_str() {
                "$" => "configuration".to_owned(),
                path if path.starts_with('[') => format!("configuration{path}"),
                path => format!("configuration.{path}"),
            },
            message: p.message,
        })
        .collect()
}

/// Refuses feature toggles the manifest does not declare, naming the field and the feature.
pub fn validate_features(
    manifest: &Manifest,
    enabled: &[String],
    disabled: &[String],
) -> Result<()> {
    let known: Vec<&str> = manifest.features.iter().map(|f| f.name.as_str()).collect();
    let mut problems = Vec::new();
    for (field, list) in [
        ("enabled_features", enabled),
        ("disabled_features", disabled),
    ] {
        for (index, name) in list.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                problems.push(Problem {
                    path: format!("{field}[{index}]"),
                    message: format!(
                        "{} has no feature `{name}` (it has: {}){}",
                        manifest.name,
                        known.join(", "),
                        did_you_mean(name, known.iter().copied())
                    ),
                });
            }
        }
    }
    if let Some(both) = enabled.iter().find(|f| disabled.contains(f)) {
        problems.push(Problem {
            path: "disabled_features".into(),
            message: format!("`{both}` is both enabled and disabled"),
        });
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid(
            format!("{} feature toggle problem(s)", problems.len()),
            problems,
        ))
    }
}

fn effective_features(manifest: &Manifest, toggles: &[(&[String], &[String])]) -> Vec<String> {
    let mut on: Vec<String> = manifest
        .features
        .iter()
        .filter(|f| f.default)
        .map(|f| f.name.clone())
        .collect();
    for (enabled, disabled) in toggles {
        on.extend(enabled.iter().cloned());
        on.retain(|f| !disabled.contains(f));
    }
    on.sort();
    on.dedup();
    on
}

fn sources(
    manifest: &Manifest,
    tenant: &Map<String, Value>,
    company: Option<&Map<String, Value>>,
    resolved: &Map<String, Value>,
) -> BTreeMap<String, ConfigTier> {
    resolved
        .keys()
        .map(|key| {
            let tier = if company.is_some_and(|c| c.contains_key(key)) {
                ConfigTier::Company
            } else if tenant.contains_key(key) {
                ConfigTier::Tenant
            } else {
                debug_assert!(manifest.configuration.defaults.contains_key(key));
                ConfigTier::Module
            };
            (key.clone(), tier)
        })
        .collect()
}

fn version_of(items: &[Option<&Item>], chosen: &[String]) -> String {
    let mut hash = Sha256::new();
    for item in items {
        let part = item.map_or_else(|| "-".to_owned(), |i| format!("{}:{}", i.key, i.version));
        hash.update(part.as_bytes());
        hash.update(b"|");
    }
    for part in chosen {
        hash.update(part.as_bytes());
        hash.update(b"|");
    }
    hash.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// (tenant, module, company) → resolved configuration (and so: enabled).
type Resolutions = TtlCache<(String, String, Option<String>), ResolvedConfig>;

/// Resolves configuration; owns the cache of resolutions the gateway and the config route
/// read.
#[derive(Debug)]
pub struct ConfigResolver {
    store: Arc<dyn Store>,
    installations: Arc<Installations>,
    resolved: ChangeAwareCache<(String, String, Option<String>), ResolvedConfig>,
}

impl ConfigResolver {
    pub fn new(
        store: Arc<dyn Store>,
        installations: Arc<Installations>,
        staleness: &Arc<Staleness>,
    ) -> Self {
        Self {
            store,
            installations,
            resolved: ChangeAwareCache::new(Arc::clone(staleness)),
        }
    }

    /// Drops every cached resolution (benchmarks measure the cold path with it).
    pub fn forget(&self) {
        self.resolved.clear();
    }

    /// The module's configuration for `tenant` (and `company`), for the module itself (its
    /// API key), the tenant's users, or a platform admin.
    pub async fn resolve_config(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        module: &ModuleName,
        company: Option<&CompanyId>,
    ) -> Result<ResolvedConfig> {
        match caller {
            Caller::Module(own) if own == module => {}
            Caller::Module(_) => {
                return Err(Error::Forbidden(format!(
                    "only {module}'s own API key may read its configuration"
                )));
            }
            Caller::User(_) => {
                caller.require_tenant_member(tenant)?;
            }
        }
        match self.resolve_cached(tenant, module, company).await {
            // The tenant's own users are told the closest name; a module's key is not told
            // what else a tenant has.
            Err(Error::NotFound(detail)) if caller.user().is_some() => {
                let hint = self
                    .closest_for_user(tenant, module, company, &detail)
                    .await;
                Err(Error::NotFound(format!("{detail}{hint}")))
            }
            other => other,
        }
    }

    /// The company or module nearest the one a refused resolution named.
    async fn closest_for_user(
        &self,
        tenant: &TenantId,
        module: &ModuleName,
        company: Option<&CompanyId>,
        detail: &str,
    ) -> String {
        let t = tenant.as_str();
        let (prefix, wanted) = match company {
            Some(c) if detail.contains("has no company") => ("COMPANY#", c.as_str()),
            _ if detail.contains("has not enabled") || detail.contains("is not installed") => {
                ("MODULE#", module.as_str())
            }
            _ => return String::new(),
        };
        let query = Query::prefix(keys::tenant_partition(t), prefix);
        let Ok(items) = query_all(self.store.as_ref(), &query).await else {
            return String::new();
        };
        let names: Vec<String> = items
            .iter()
            .filter(|i| prefix == "COMPANY#" || i.data.get("enabled") == Some(&Value::Bool(true)))
            .filter_map(|i| i.key.sk.strip_prefix(prefix).map(str::to_owned))
            .collect();
        did_you_mean(wanted, names.iter().map(String::as_str))
    }

    /// The resolution, from the cache when warm. `NotFound` when the module is not installed,
    /// not enabled for the tenant, or disabled for the company.
    pub async fn resolve_cached(
        &self,
        tenant: &TenantId,
        module: &ModuleName,
        company: Option<&CompanyId>,
    ) -> Result<ResolvedConfig> {
        let cache_key = (
            tenant.to_string(),
            module.to_string(),
            company.map(ToString::to_string),
        );
        if let Some(resolved) = self.resolved.get(&cache_key) {
            return Ok(resolved);
        }
        let resolved = self.resolve_uncached(tenant, module, company).await?;
        self.resolved
            .insert(cache_key, resolved.clone(), forget_resolutions);
        Ok(resolved)
    }

    async fn resolve_uncached(
        &self,
        tenant: &TenantId,
        module: &ModuleName,
        company: Option<&CompanyId>,
    ) -> Result<ResolvedConfig> {
        let (t, m) = (tenant.as_str(), module.as_str());
        // The tenant's pin and the module's default version come in the same batch: the
        // defaults and schema are those of the version serving the tenant (`versions`).
        let mut wanted: Vec<Key> = vec![
            keys::installation(m),
            keys::tenant_module(t, m),
            keys::module_versions(m),
            keys::version_pin(m, t),
        ];
        if let Some(c) = company {
            wanted.push(keys::company(t, c.as_str()));
            wanted.push(keys::company_module(t, c.as_str(), m));
        }
        let found = self.store.batch_get(&wanted).await?;
        let get = |key: &Key| found.iter().find(|i| &i.key == key);
        let installation_item = get(&wanted[0]);
        let first: Option<Installation> = installation_item.map(from_item).transpose()?;
        let settings: Option<VersionSettings> = get(&wanted[2]).map(from_item).transpose()?;
        let pin_item = get(&wanted[3]);
        let pin: Option<Pin> = pin_item.map(from_item).transpose()?;
        let serving = self
            .installations
            .serving_tenant(module, first, settings.as_ref(), pin.as_ref())
            .await?;
        let manifest: Manifest = match serving.as_ref().and_then(Installation::serving_manifest) {
            Some(manifest) => manifest?,
            None => return Err(Error::NotFound(format!("{module} is not installed"))),
        };
        // Which version serves the tenant changes its configuration's version too (a pin or a
        // default set; a hash without either is the one it always was).
        let chosen: Vec<String> = [get(&wanted[2]), pin_item]
            .into_iter()
            .flatten()
            .map(|i| format!("{}:{}", i.key, i.version))
            .chain(serving.and_then(|i| i.alongside.then_some(i.version)))
            .collect();
        let tenant_item = get(&wanted[1]);
        let tenant_row: TenantModule =
            match tenant_item.map(from_item::<TenantModule>).transpose()? {
                Some(row) if row.enabled => row,
                _ => {
                    return Err(Error::NotFound(format!(
                        "tenant {tenant} has not enabled {module}"
                    )));
                }
            };
        let (company_item, company_row) = match company {
            Some(c) => {
                if get(&wanted[4]).is_none() {
                    return Err(Error::NotFound(format!(
                        "tenant {tenant} has no company {c}"
                    )));
                }
                let item = get(&wanted[5]);
                let row: Option<CompanyModule> = item.map(from_item).transpose()?;
                if row.as_ref().is_some_and(|r| !r.is_enabled) {
                    return Err(Error::NotFound(format!(
                        "{module} is disabled for company {c}"
                    )));
                }
                (item, row)
            }
            None => (None, None),
        };
        let company_config = company_row.as_ref().map(|r| &r.configuration);
        let mut patches = vec![&tenant_row.configuration];
        patches.extend(company_config);
        let Value::Object(configuration) = merged_config(&manifest, &patches) else {
            return Err(Error::internal(
                "a merged configuration is always an object",
            ));
        };
        let mut toggles: Vec<(&[String], &[String])> =
            vec![(&tenant_row.enabled_features, &tenant_row.disabled_features)];
        if let Some(row) = &company_row {
            toggles.push((&row.enabled_features, &row.disabled_features));
        }
        Ok(ResolvedConfig {
            module: m.to_owned(),
            tenant_id: t.to_owned(),
            company_id: company.map(ToString::to_string),
            sources: sources(
                &manifest,
                &tenant_row.configuration,
                company_config,
                &configuration,
            ),
            features: effective_features(&manifest, &toggles),
            configuration,
            version: version_of(&[installation_item, tenant_item, company_item], &chosen),
        })
    }
}

/// Answers the local bus's question "does this tenant have this module?" from the cached
/// resolutions.
#[derive(Debug, Clone)]
pub struct EnabledForTenants(pub Weak<ConfigResolver>);

#[async_trait::async_trait]
impl crate::events::EnabledTenants for EnabledForTenants {
    async fn is_enabled(&self, tenant: &str, module: &ModuleName) -> bool {
        let (Some(resolver), Ok(tenant)) = (self.0.upgrade(), TenantId::parse(tenant)) else {
            return false;
        };
        resolver.resolve_cached(&tenant, module, None).await.is_ok()
    }
}
