//! Enabling modules per tenant (TenantModule) and customising them per company
//! (CompanyModule, as the seed models it). A field present in a change replaces its stored
//! value; a field omitted keeps it, so re-enabling keeps the old configuration.

use std::sync::Arc;

use plinth_module_sdk::manifest::Hook;
use plinth_module_sdk::wire::HookCall;
use plinth_module_sdk::{Manifest, ModuleName};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::audit;
use crate::cache::Stale;
use crate::changes::{Change, Changes};
use crate::clock::now;
use crate::config::{
    CompanyModule, TenantModule, config_problems, merged_config, validate_features,
};
use crate::error::{Error, Result};
use crate::events::{Event, platform_event};
use crate::export::tenant_drops::{self, TenantDrop};
use crate::export::{Export, Exports};
use crate::hooks::{HookOutcome, HookRequest, Hooks};
use crate::identity::Caller;
use crate::ids::{CompanyId, TenantId};
use crate::installation::{Installation, Installations};
use crate::instances::Instances;
use crate::store::{
    Condition, Item, Key, Query, Store, Write, from_item, keys, query_all, to_data,
};
use crate::tenancy::Tenancy;

/// `DELETE /api/v1/tenants/{t}/modules/{m}`'s query.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DisableRequest {
    /// Only say what disabling would do: the tables, the tenant's rows in each, the export,
    /// when the rows would be dropped. Nothing is changed.
    #[serde(default)]
    pub dry_run: bool,
    /// Export the tenant's rows first (nothing is disabled when that fails).
    #[serde(default)]
    pub export: bool,
    /// Drop the tenant's rows of the module once the retention has passed.
    #[serde(default)]
    pub drop_data: bool,
    /// Days before they are dropped (1 to 3650; only with `drop_data`).
    #[serde(default)]
    pub retention_days: Option<u32>,
}

impl DisableRequest {
    /// The days before the rows are dropped, when they are to be.
    fn retention(&self, platform: Option<u32>) -> Result<Option<u32>> {
        let max = crate::export::MAX_RETENTION_DAYS;
        match (self.drop_data, self.retention_days) {
            (false, Some(_)) => Err(Error::field(
                "retention_days",
                "only with drop_data=true: without it the tenant's rows are kept",
            )),
            (true, Some(days)) if !(1..=max).contains(&days) => Err(Error::field(
                "retention_days",
                format!("{days} is not between 1 and {max}"),
            )),
            (true, days) => Ok(Some(
                days.or(platform)
                    .unwrap_or(crate::export::DEFAULT_RETENTION_DAYS),
            )),
            (false, None) => Ok(None),
        }
    }
}

/// What disabling a module for a tenant would do (`dry_run=true`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DisableImpact {
    pub tenant: String,
    pub module: String,
    /// Whether the module is enabled for the tenant now.
    pub enabled: bool,
    /// Each declared table's rows of this tenant (its companies' included).
    pub rows: Vec<crate::export::TableRows>,
    /// Whether the tenant's rows would be exported first.
    pub export: bool,
    /// When the tenant's rows would be dropped (`drop_data=true`); none: they are kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_after: Option<String>,
}

/// The answer of a disable: what it did, or with `dry_run` what it would do.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum DisableOutcome {
    Disabled(Box<Disabled>),
    DryRun(DisableImpact),
}

/// What disabling a module for a tenant did: the tenant's row, the export made first, and
/// when the tenant's rows will be dropped.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Disabled {
    #[serde(flatten)]
    pub row: TenantModule,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<Export>,
    /// RFC 3339: when the sweep drops the tenant's rows (`drop_data=true`); enabling the
    /// module again before then keeps them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_after: Option<String>,
}

/// `PUT /api/v1/tenants/{t}/modules/{m}` (and `PUT …/companies/{c}/modules/{m}` with
/// `is_enabled`): every field optional.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModuleChange {
    #[serde(default, alias = "is_enabled")]
    pub enabled: Option<bool>,
    /// Replaces the stored configuration.
    #[serde(default)]
    pub configuration: Option<Map<String, Value>>,
    /// Merged into the stored configuration (RFC 7396: a key set to `null` is removed, the
    /// others are set, keys not named are kept); not together with `configuration`.
    #[serde(default)]
    pub configuration_patch: Option<Map<String, Value>>,
    #[serde(default)]
    pub enabled_features: Option<Vec<String>>,
    #[serde(default)]
    pub disabled_features: Option<Vec<String>>,
}

fn apply(
    change: &ModuleChange,
    enabled: &mut bool,
    config: &mut Map<String, Value>,
    on: &mut Vec<String>,
    off: &mut Vec<String>,
) {
    if let Some(value) = change.enabled {
        *enabled = value;
    }
    if let Some(value) = &change.configuration {
        config.clone_from(value);
    }
    if let Some(patch) = &change.configuration_patch {
        let mut merged = Value::Object(std::mem::take(config));
        json_patch::merge(&mut merged, &Value::Object(patch.clone()));
        if let Value::Object(merged) = merged {
            *config = merged;
        }
    }
    if let Some(value) = &change.enabled_features {
        on.clone_from(value);
    }
    if let Some(value) = &change.disabled_features {
        off.clone_from(value);
    }
}

/// Enables and disables modules for tenants and companies, calling their hooks.
#[derive(Debug)]
pub struct Enablement {
    store: Arc<dyn Store>,
    changes: Arc<Changes>,
    hooks: Arc<dyn Hooks>,
    instances: Arc<Instances>,
    installations: Arc<Installations>,
    tenancy: Arc<Tenancy>,
    exports: Arc<Exports>,
}

impl Enablement {
    pub fn new(
        store: Arc<dyn Store>,
        changes: Arc<Changes>,
        hooks: Arc<dyn Hooks>,
        instances: Arc<Instances>,
        installations: Arc<Installations>,
        tenancy: Arc<Tenancy>,
        exports: Arc<Exports>,
    ) -> Self {
        Self {
            store,
            changes,
            hooks,
            instances,
            installations,
            tenancy,
            exports,
        }
    }

    pub async fn tenant_module(
        &self,
        tenant: &TenantId,
        module: &ModuleName,
    ) -> Result<Option<(TenantModule, u64)>> {
        let item = self
            .store
            .get(&keys::tenant_module(tenant.as_str(), module.as_str()))
            .await?;
        item.map(|i| Ok((from_item(&i)?, i.version))).transpose()
    }

    /// Every module the tenant has a row for (enabled or not), with its configuration.
    pub async fn tenant_modules(&self, tenant: &TenantId) -> Result<Vec<TenantModule>> {
        let query = Query::prefix(keys::tenant_partition(tenant.as_str()), "MODULE#");
        let items = query_all(self.store.as_ref(), &query).await?;
        items.iter().map(from_item).collect()
    }

    /// A company's row for `module`, when it has one.
    pub async fn company_module(
        &self,
        tenant: &TenantId,
        company: &CompanyId,
        module: &ModuleName,
    ) -> Result<Option<CompanyModule>> {
        let key = keys::company_module(tenant.as_str(), company.as_str(), module.as_str());
        let item = self.store.get(&key).await?;
        item.as_ref().map(from_item).transpose()
    }

    pub async fn set_tenant_module(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        module: &ModuleName,
        change: ModuleChange,
    ) -> Result<TenantModule> {
        let user = caller.require_tenant_admin(tenant)?.clone();
        one_configuration(&change)?;
        let tenant_record = self.tenancy.tenant_as(caller, tenant).await?;
        let (manifest, installation) = self
            .installations
            .installed_module_for(module, tenant.as_str())
            .await?;
        let current = self.tenant_module(tenant, module).await?;
        if current.is_none() && change.configuration_patch.is_some() {
            // A merge into nothing would enable the module as a side effect of setting a key.
            return Err(Error::NotFound(format!(
                "tenant {tenant} has never enabled {module}: enable it first, then set its keys"
            )));
        }
        let was_enabled = current.as_ref().is_some_and(|(c, _)| c.enabled);
        let previous = current.as_ref().map(|(c, _)| {
            previous_of(
                c.enabled,
                &c.configuration,
                &c.enabled_features,
                &c.disabled_features,
            )
        });
        let mut next = current
            .as_ref()
            .map(|(c, _)| c.clone())
            .unwrap_or_else(|| TenantModule {
                tenant_id: tenant.to_string(),
                module: module.to_string(),
                enabled: true,
                configuration: Map::new(),
                enabled_features: Vec::new(),
                disabled_features: Vec::new(),
                updated_at: String::new(),
                updated_by: String::new(),
            });
        apply(
            &change,
            &mut next.enabled,
            &mut next.configuration,
            &mut next.enabled_features,
            &mut next.disabled_features,
        );
        next.updated_at = now();
        next.updated_by = user.id.to_string();
        validate_features(&manifest, &next.enabled_features, &next.disabled_features)?;
        let merged = merged_config(&manifest, &[&next.configuration]);
        let problems = config_problems(&manifest, &merged);
        if !problems.is_empty() {
            return Err(Error::invalid(
                format!("the configuration breaks {module}'s schema"),
                problems,
            ));
        }
        let hook_scope = Scope {
            tenant: tenant.to_string(),
            company: None,
        };
        match (was_enabled, next.enabled) {
            (false, true) => {
                if tenant_record.subscription_tier < manifest.subscription_tier {
                    return Err(Error::Forbidden(format!(
                        "{module} needs the {} tier or higher; tenant {tenant} is on {}",
                        manifest.subscription_tier, tenant_record.subscription_tier
                    )));
                }
                self.require_modules_enabled(tenant, &manifest).await?;
                self.pre_hook(Hook::PreEnableTenant, &manifest, &installation, &hook_scope)
                    .await?;
            }
            (true, false) => {
                self.pre_hook(
                    Hook::PreDisableTenant,
                    &manifest,
                    &installation,
                    &hook_scope,
                )
                .await?;
            }
            _ => {}
        }
        let key = keys::tenant_module(tenant.as_str(), module.as_str());
        let (item, condition) = versioned(key, current.map(|(_, v)| v), to_data(&next));
        let mut events = Vec::new();
        let action = match (was_enabled, next.enabled) {
            (false, true) => Some("tenant.module.enabled"),
            (true, false) => Some("tenant.module.disabled"),
            _ => None,
        };
        if let Some(action) = action {
            events.push(
                platform_event(action, json!({"module": module})).for_tenant(tenant.as_str(), None),
            );
        }
        events.push(
            platform_event("config.changed", json!({"module": module}))
                .for_tenant(tenant.as_str(), None),
        );
        let mut writes = vec![
            Write::Put { item, condition },
            audit::record(
                tenant.as_str(),
                &caller.actor(),
                action.unwrap_or("tenant.module.configured"),
                &format!("module:{module}"),
                change_summary(&change, previous),
            ),
        ];
        if !was_enabled && next.enabled {
            // Enabled again before its retention ended: the tenant's rows stay.
            writes.push(tenant_drops::cancel(module.as_str(), tenant.as_str()));
        }
        self.commit_change(writes, events, module).await?;
        match (was_enabled, next.enabled) {
            (false, true) => {
                self.post_hook(
                    Hook::PostEnableTenant,
                    &manifest,
                    &installation,
                    &hook_scope,
                )
                .await;
            }
            (true, false) => {
                self.post_hook(
                    Hook::PostDisableTenant,
                    &manifest,
                    &installation,
                    &hook_scope,
                )
                .await;
            }
            _ => {}
        }
        Ok(next)
    }

    async fn require_modules_enabled(&self, tenant: &TenantId, manifest: &Manifest) -> Result<()> {
        let required = &manifest.dependencies.required_modules;
        if required.is_empty() {
            return Ok(());
        }
        let keys: Vec<Key> = required
            .iter()
            .map(|r| keys::tenant_module(tenant.as_str(), r.name.as_str()))
            .collect();
        let rows = self.store.batch_get(&keys).await?;
        let enabled: Vec<String> = rows
            .iter()
            .filter_map(|i| from_item::<TenantModule>(i).ok())
            .filter(|row| row.enabled)
            .map(|row| row.module)
            .collect();
        let missing: Vec<String> = required
            .iter()
            .map(|r| r.name.to_string())
            .filter(|n| !enabled.contains(n))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::Conflict(format!(
                "{} requires these modules enabled for tenant {tenant} first: {}",
                manifest.name,
                missing.join(", ")
            )))
        }
    }

    /// Disables `module` for `tenant`; with `export`, first exports the tenant's rows (an
    /// export that fails stops here: nothing is disabled nor dropped); with `drop_data`,
    /// schedules the tenant's rows to be dropped once the retention has passed.
    ///
    /// # Errors
    /// As [`Enablement::set_tenant_module`]; 422 naming `retention_days`; the export's.
    pub async fn disable_tenant_module(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        module: &ModuleName,
        request: DisableRequest,
    ) -> Result<DisableOutcome> {
        let retention_days = request.retention(self.exports.retention_days())?;
        let user = caller.require_tenant_admin(tenant)?.clone();
        self.tenancy.tenant_as(caller, tenant).await?;
        let (manifest, _) = self.installations.installed_module(module).await?;
        if request.dry_run {
            let enabled = self
                .tenant_module(tenant, module)
                .await?
                .is_some_and(|(row, _)| row.enabled);
            return Ok(DisableOutcome::DryRun(DisableImpact {
                tenant: tenant.to_string(),
                module: module.to_string(),
                enabled,
                rows: self.exports.count(&manifest, Some(tenant)).await,
                export: request.export,
                drop_after: retention_days.map(crate::export::days_from_now),
            }));
        }
        let export = if request.export {
            Some(self.exported(caller, tenant, &manifest).await?)
        } else {
            None
        };
        let change = ModuleChange {
            enabled: Some(false),
            ..ModuleChange::default()
        };
        let row = self
            .set_tenant_module(caller, tenant, module, change)
            .await?;
        let drop_after = match retention_days {
            Some(days) => {
                let drop = TenantDrop {
                    module: module.to_string(),
                    tenant: tenant.to_string(),
                    drop_after: crate::export::days_from_now(days),
                    requested_by: user.id.to_string(),
                    requested_at: now(),
                };
                let writes = vec![
                    tenant_drops::schedule(&drop),
                    audit::record(
                        tenant.as_str(),
                        &caller.actor(),
                        "tenant.module.data_drop_scheduled",
                        &format!("module:{module}"),
                        json!({"drop_after": drop.drop_after, "export": export.as_ref().map(|e| &e.location)}),
                    ),
                ];
                self.changes.commit(Change::new(writes)).await?;
                Some(drop.drop_after)
            }
            None => None,
        };
        Ok(DisableOutcome::Disabled(Box::new(Disabled {
            row,
            export,
            drop_after,
        })))
    }

    /// Exports `tenant`'s rows of `module` (its tenant admins and platform admins), audited.
    ///
    /// # Errors
    /// 403, 404 for an unknown tenant, 409 when the module is not installed; the export's.
    pub async fn export_tenant_module(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        module: &ModuleName,
    ) -> Result<Export> {
        caller.require_tenant_admin(tenant)?;
        self.tenancy.tenant_as(caller, tenant).await?;
        let (manifest, _) = self.installations.installed_module(module).await?;
        self.exported(caller, tenant, &manifest).await
    }

    async fn exported(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        manifest: &Manifest,
    ) -> Result<Export> {
        let export = self.exports.export(manifest, tenant).await?;
        let rows: u64 = export.tables.iter().map(|t| t.rows).sum();
        let write = audit::record(
            tenant.as_str(),
            &caller.actor(),
            "tenant.module.exported",
            &format!("module:{}", manifest.name),
            json!({"id": export.id, "location": export.location, "rows": rows}),
        );
        self.changes.commit(Change::new(vec![write])).await?;
        Ok(export)
    }

    pub async fn set_company_module(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        company: &CompanyId,
        module: &ModuleName,
        change: ModuleChange,
    ) -> Result<CompanyModule> {
        let user = caller.require_company_admin(tenant, company)?.clone();
        one_configuration(&change)?;
        self.tenancy.company(tenant, company).await?;
        let (manifest, installation) = self
            .installations
            .installed_module_for(module, tenant.as_str())
            .await?;
        let tenant_row = match self.tenant_module(tenant, module).await? {
            Some((row, _)) if row.enabled => row,
            _ => {
                return Err(Error::Conflict(format!(
                    "tenant {tenant} has not enabled {module}"
                )));
            }
        };
        let key = keys::company_module(tenant.as_str(), company.as_str(), module.as_str());
        let current = self.store.get(&key).await?;
        let current_row: Option<CompanyModule> = current.as_ref().map(from_item).transpose()?;
        let was_enabled = current_row.as_ref().map(|r| r.is_enabled);
        let previous = current_row.as_ref().map(|r| {
            previous_of(
                r.is_enabled,
                &r.configuration,
                &r.enabled_features,
                &r.disabled_features,
            )
        });
        let mut next = current_row.unwrap_or_else(|| CompanyModule {
            tenant_id: tenant.to_string(),
            company_id: company.to_string(),
            module: module.to_string(),
            is_enabled: true,
            configuration: Map::new(),
            enabled_features: Vec::new(),
            disabled_features: Vec::new(),
            customized_at: String::new(),
            customized_by_user_id: String::new(),
        });
        apply(
            &change,
            &mut next.is_enabled,
            &mut next.configuration,
            &mut next.enabled_features,
            &mut next.disabled_features,
        );
        next.customized_at = now();
        next.customized_by_user_id = user.id.to_string();
        validate_features(&manifest, &next.enabled_features, &next.disabled_features)?;
        let merged = merged_config(&manifest, &[&tenant_row.configuration, &next.configuration]);
        let problems = config_problems(&manifest, &merged);
        if !problems.is_empty() {
            return Err(Error::invalid(
                format!("the configuration breaks {module}'s schema"),
                problems,
            ));
        }
        // Company hooks fire when a row is created enabled or flips to enabled, and on a flip
        // to disabled (a missing row counts as enabled, as the tenant has the module).
        let enabling = next.is_enabled && was_enabled != Some(true);
        let disabling = !next.is_enabled && was_enabled != Some(false);
        let scope = Scope {
            tenant: tenant.to_string(),
            company: Some(company.to_string()),
        };
        if enabling {
            self.pre_hook(Hook::PreEnableCompany, &manifest, &installation, &scope)
                .await?;
        } else if disabling {
            self.pre_hook(Hook::PreDisableCompany, &manifest, &installation, &scope)
                .await?;
        }
        let (item, condition) = versioned(key, current.map(|i| i.version), to_data(&next));
        let (t, c) = (tenant.as_str(), company.as_str());
        let events = vec![
            platform_event(
                "company.module.customized",
                json!({"module": module, "is_enabled": next.is_enabled}),
            )
            .for_tenant(t, Some(c)),
            platform_event("config.changed", json!({"module": module})).for_tenant(t, Some(c)),
        ];
        let writes = vec![
            Write::Put { item, condition },
            audit::record(
                t,
                &caller.actor(),
                "company.module.customized",
                &format!("company:{c}/module:{module}"),
                change_summary(&change, previous),
            ),
        ];
        self.commit_change(writes, events, module).await?;
        if enabling {
            self.post_hook(Hook::PostEnableCompany, &manifest, &installation, &scope)
                .await;
        } else if disabling {
            self.post_hook(Hook::PostDisableCompany, &manifest, &installation, &scope)
                .await;
        }
        Ok(next)
    }

    async fn commit_change(
        &self,
        writes: Vec<Write>,
        events: Vec<Event>,
        module: &ModuleName,
    ) -> Result<()> {
        let change = Change::new(writes)
            .events(events)
            .stale(Stale::Module(module.to_string()))
            .on_conflict("the module's settings changed while this request was handled; retry it");
        self.changes.commit(change).await
    }

    async fn pre_hook(
        &self,
        hook: Hook,
        manifest: &Manifest,
        installation: &Installation,
        scope: &Scope,
    ) -> Result<()> {
        match self.call_hook(hook, manifest, installation, scope).await {
            Ok(HookOutcome::Proceed) => Ok(()),
            Ok(HookOutcome::Refused(reason)) => Err(Error::Conflict(format!(
                "refused by {}: {reason}",
                manifest.name
            ))),
            Err(reason) => Err(Error::unavailable(reason)),
        }
    }

    /// After the change is stored, a post hook's failure is logged, not undone.
    async fn post_hook(
        &self,
        hook: Hook,
        manifest: &Manifest,
        installation: &Installation,
        scope: &Scope,
    ) {
        if let Err(reason) = self.call_hook(hook, manifest, installation, scope).await {
            tracing::warn!(module = %manifest.name, ?hook, %reason, "post hook failed");
        }
    }

    async fn call_hook(
        &self,
        hook: Hook,
        manifest: &Manifest,
        installation: &Installation,
        scope: &Scope,
    ) -> std::result::Result<HookOutcome, String> {
        let (Some(path), Some(deployment)) = (manifest.hooks.get(&hook), &installation.deployment)
        else {
            return Ok(HookOutcome::Proceed);
        };
        let call = HookCall::new(hook, manifest.name.as_str(), manifest.version.to_string())
            .for_tenant(&scope.tenant, scope.company.clone());
        let base = self.instances.reach_url(&manifest.name, deployment).await;
        let request = HookRequest {
            url: format!("{base}{path}"),
            call,
        };
        self.hooks.call(&request).await.map_err(|e| e.to_string())
    }
}

/// Whom a tenant or company hook is called for.
#[derive(Debug)]
struct Scope {
    tenant: String,
    company: Option<String>,
}

fn versioned(key: Key, stored: Option<u64>, data: Map<String, Value>) -> (Item, Condition) {
    match stored {
        Some(version) => (
            Item {
                key,
                version: version + 1,
                data,
                expires_at: None,
            },
            Condition::Version(version),
        ),
        None => (Item::new(key, data), Condition::Absent),
    }
}

/// What a change asked for, and what the row held before it (`previous`, null for a new row).
fn change_summary(change: &ModuleChange, previous: Option<Value>) -> Value {
    let mut summary = json!({
        "enabled": change.enabled,
        "configuration": change.configuration,
        "enabled_features": change.enabled_features,
        "disabled_features": change.disabled_features,
    });
    if let Some(patch) = &change.configuration_patch {
        summary["configuration_patch"] = json!(patch);
    }
    summary["previous"] = previous.unwrap_or(Value::Null);
    summary
}

/// The fields of a stored row a change may alter, as they were.
fn previous_of(
    enabled: bool,
    configuration: &Map<String, Value>,
    on: &[String],
    off: &[String],
) -> Value {
    json!({
        "enabled": enabled,
        "configuration": configuration,
        "enabled_features": on,
        "disabled_features": off,
    })
}

/// `configuration` and `configuration_patch` together are refused: which one wins is a guess.
fn one_configuration(change: &ModuleChange) -> Result<()> {
    if change.configuration.is_some() && change.configuration_patch.is_some() {
        return Err(Error::field(
            "configuration_patch",
            "give `configuration` (replaces) or `configuration_patch` (merges), not both",
        ));
    }
    Ok(())
}
