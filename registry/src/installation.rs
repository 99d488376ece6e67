//! A module's installation record — what serves now and the progress of the last operation —
//! and the installations index, with the reads every service shares (the installer writes
//! them; enablement, configuration, instances and the gateway read them).
//!
//! Keys: `PK=MODULE#m SK=INSTALLATION` for the record, `PK=INSTALLATIONS SK=MODULE#m` for
//! its index line (see `store::keys`). A version installed alongside the first (`versions`)
//! has a record of its own, `PK=MODULE#m SK=INSTALLATION#v`, and no index line: the index
//! says what the module is, the first installation what it upgrades and rolls back.

use std::collections::BTreeMap;
use std::sync::Arc;

use plinth_module_sdk::{Manifest, ModuleName};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::deploy::Deployment;
use crate::error::{Error, Result, did_you_mean};
use crate::store::{
    Condition, Item, Key, Query, Store, Write, from_item, keys, query_all, to_data,
};

/// What an installation is doing or did last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Install,
    Upgrade,
    Rollback,
    Uninstall,
    /// Starts the installed version again where its backend did not survive a restart
    /// (`plinth up`'s child processes, in-process event rules).
    Restore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Accepted; a worker will run it.
    Pending,
    Running,
    Installed,
    /// The last operation failed; what it did was undone.
    Failed,
    Uninstalled,
}

/// The steps of the sagas, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Validate,
    CheckDependencies,
    IssueApiKey,
    Deploy,
    PreInstall,
    CreateTables,
    RegisterPermissions,
    CreateEventRules,
    PostInstall,
    PreUninstall,
    RemoveEventRules,
    UnregisterPermissions,
    PostUninstall,
    Undeploy,
    /// Exports each tenant's rows (an uninstall asked with `export`), before any drop.
    ExportData,
    DropTables,
    RevokeApiKeys,
}

impl Step {
    pub fn plan(operation: Operation, drop_data: bool) -> Vec<Step> {
        use Step::*;
        match operation {
            // The API key comes before the deploy: the backend starts with it in its env.
            Operation::Install => vec![
                Validate,
                CheckDependencies,
                IssueApiKey,
                Deploy,
                PreInstall,
                CreateTables,
                RegisterPermissions,
                CreateEventRules,
                PostInstall,
            ],
            Operation::Upgrade | Operation::Rollback => vec![
                Validate,
                CheckDependencies,
                Deploy,
                CreateTables,
                RegisterPermissions,
                CreateEventRules,
                PostInstall,
            ],
            Operation::Restore => vec![Deploy, CreateEventRules],
            Operation::Uninstall => {
                let mut plan = vec![
                    PreUninstall,
                    RemoveEventRules,
                    UnregisterPermissions,
                    PostUninstall,
                    Undeploy,
                ];
                if drop_data {
                    plan.push(DropTables);
                }
                plan.push(RevokeApiKeys);
                plan
            }
        }
    }
}

impl Step {
    /// The plan of a version installed alongside the first: its own API key and deployment
    /// only (tables, permissions and event rules are the module's, kept by the first).
    pub fn plan_alongside(operation: Operation) -> Vec<Step> {
        use Step::*;
        match operation {
            Operation::Install | Operation::Upgrade | Operation::Rollback => {
                vec![Validate, CheckDependencies, IssueApiKey, Deploy]
            }
            Operation::Restore => vec![Deploy],
            Operation::Uninstall => vec![Undeploy, RevokeApiKeys],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Pending,
    Done,
    Failed,
    /// Done, then undone because a later step failed.
    Undone,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepState {
    pub step: Step,
    pub status: StepStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub step: Step,
    pub reason: String,
}

/// A module's installation: what serves now, and the progress of the last operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Installation {
    pub module: String,
    pub operation: Operation,
    pub status: Status,
    /// The version the current (or last) operation moves to.
    pub version: String,
    /// The version serving now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_version: Option<String>,
    /// The version before the last upgrade, for a rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    /// A backend that was already running when installed (`endpoint` of the request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// One machine: where the manifest's `dev_command` runs (`dev_dir` of the request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev_dir: Option<String>,
    #[serde(default)]
    pub drop_data: bool,
    pub steps: Vec<StepState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<Deployment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// Optional modules of the manifest that are not installed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub optional_missing: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// The serving version's manifest (the config resolver reads it with the tenant rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Value>,
    /// How often the sweep re-requested the current operation after it made no progress
    /// (`install::SweepPolicy`); it is failed once this reaches the policy's bound.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// Why the current operation last stopped or was re-requested, for `plinth module status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The last progress: every saga step, re-request and retry stores it.
    pub updated_at: String,
    /// A version installed alongside the module's first installation (`versions`): its own
    /// deployment, instances and API key; the module's tables, permissions and event rules
    /// stay the first installation's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub alongside: bool,
    /// An uninstall that exports each tenant's rows first (step `export_data`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub export: bool,
    /// Days an uninstall that keeps the data keeps it (`retention_days`, else the platform's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// When the sweep drops the tables an uninstall kept (RFC 3339); a reinstall before then
    /// keeps them (docs/operations.md, "Export and retention").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_after: Option<String>,
    /// The exports the last uninstall made, one per tenant with rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<crate::export::Export>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Installation {
    pub fn is_installed(&self) -> bool {
        self.installed_version.is_some() && self.status != Status::Uninstalled
    }

    pub fn busy(&self) -> bool {
        matches!(self.status, Status::Pending | Status::Running)
    }

    /// Where this record is stored: the module's installation, or a version's alongside it.
    pub fn key(&self) -> Key {
        if self.alongside {
            keys::installation_alongside(&self.module, &self.version)
        } else {
            keys::installation(&self.module)
        }
    }

    /// The serving version's manifest, read.
    pub fn serving_manifest(&self) -> Option<Result<Manifest>> {
        let manifest = self.manifest.as_ref().filter(|_| self.is_installed())?;
        Some(serde_json::from_value(manifest.clone()).map_err(|e| {
            Error::internal_because(
                format!("{}'s installed manifest is unreadable", self.module),
                e,
            )
        }))
    }
}

/// A module's version settings (`PK=MODULE#m SK=VERSIONS`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionSettings {
    pub module: String,
    /// The version serving tenants without a pin; none: the first installation's.
    #[serde(default)]
    pub default_version: Option<String>,
    pub updated_at: String,
    pub updated_by: String,
}

/// A tenant's pin to a version of a module (`PK=MODULE#m SK=PIN#t`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Pin {
    pub module: String,
    pub tenant_id: String,
    pub version: String,
    pub pinned_at: String,
    pub pinned_by: String,
}

/// One line of the installations index (`PK=INSTALLATIONS SK=MODULE#m`): what the
/// dependency checks and the resume-on-start read in one query.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexEntry {
    pub module: String,
    pub status: Status,
    #[serde(default)]
    pub installed_version: Option<String>,
    /// Modules the serving version requires.
    #[serde(default)]
    pub requires: Vec<String>,
}

pub const INDEX: &str = "INSTALLATIONS";

pub fn index_key(module: &str) -> Key {
    Key::new(INDEX, format!("MODULE#{module}"))
}

impl Operation {
    /// The operation's name in audit actions and events (`module.{name}.requested`).
    pub fn name(self) -> &'static str {
        match self {
            Operation::Install => "install",
            Operation::Upgrade => "upgrade",
            Operation::Rollback => "rollback",
            Operation::Uninstall => "uninstall",
            Operation::Restore => "restore",
        }
    }
}

/// The writes that store an installation and its index line.
pub fn record_writes(
    installation: &Installation,
    version: u64,
    condition: Condition,
) -> Vec<Write> {
    let requires = match (&installation.manifest, installation.is_installed()) {
        (Some(manifest), true) => manifest["dependencies"]["required_modules"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|r| r.as_str().or_else(|| r["name"].as_str()))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let record = Write::Put {
        item: item_of(installation, version),
        condition,
    };
    if installation.alongside {
        return vec![record];
    }
    vec![record, index_write(installation, requires)]
}

fn item_of(installation: &Installation, version: u64) -> Item {
    Item {
        key: installation.key(),
        version,
        data: to_data(installation),
        expires_at: None,
    }
}

fn index_write(installation: &Installation, requires: Vec<String>) -> Write {
    let entry = IndexEntry {
        module: installation.module.clone(),
        status: installation.status,
        installed_version: installation
            .is_installed()
            .then(|| installation.installed_version.clone())
            .flatten(),
        requires,
    };
    Write::Put {
        item: Item::new(index_key(&installation.module), to_data(&entry)),
        condition: Condition::Always,
    }
}

/// Reads installation records.
#[derive(Debug)]
pub struct Installations {
    store: Arc<dyn Store>,
}

impl Installations {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// The installation record and its store version (for conditional writes).
    pub async fn item(&self, module: &ModuleName) -> Result<Option<(Installation, u64)>> {
        match self.store.get(&keys::installation(module.as_str())).await? {
            Some(item) => Ok(Some((from_item(&item)?, item.version))),
            None => Ok(None),
        }
    }

    /// The record of `version` installed alongside the module's first, with its store version.
    pub async fn alongside_item(
        &self,
        module: &ModuleName,
        version: &str,
    ) -> Result<Option<(Installation, u64)>> {
        let key = keys::installation_alongside(module.as_str(), version);
        match self.store.get(&key).await? {
            Some(item) => Ok(Some((from_item(&item)?, item.version))),
            None => Ok(None),
        }
    }

    /// Every version installed (or being installed, or once installed) alongside the
    /// module's first installation, with store versions (one query).
    pub async fn alongside(&self, module: &ModuleName) -> Result<Vec<(Installation, u64)>> {
        let query = Query::prefix(keys::module_partition(module.as_str()), "INSTALLATION#");
        let items = query_all(self.store.as_ref(), &query).await?;
        items
            .iter()
            .map(|item| Ok((from_item(item)?, item.version)))
            .collect()
    }

    /// The installation serving `version` of `module`: the first, or one alongside it.
    /// `None` when that version is not installed.
    pub async fn serving(
        &self,
        module: &ModuleName,
        version: &str,
    ) -> Result<Option<Installation>> {
        if let Some((first, _)) = self.item(module).await?
            && first.is_installed()
            && first.installed_version.as_deref() == Some(version)
        {
            return Ok(Some(first));
        }
        Ok(self
            .alongside_item(module, version)
            .await?
            .map(|(installation, _)| installation)
            .filter(Installation::is_installed))
    }

    /// The installation serving a tenant: its pin's version, else the module's default, else
    /// the first installation's; a pin or default naming a version not installed (only a race
    /// leaves one) counts as none. Given the first installation; one read when alongside.
    pub async fn serving_tenant(
        &self,
        module: &ModuleName,
        first: Option<Installation>,
        settings: Option<&VersionSettings>,
        pin: Option<&Pin>,
    ) -> Result<Option<Installation>> {
        let first = first.filter(Installation::is_installed);
        let first_version = first.as_ref().and_then(|i| i.installed_version.clone());
        let wanted = [
            pin.map(|p| &p.version),
            settings.and_then(|s| s.default_version.as_ref()),
        ];
        for version in wanted.into_iter().flatten() {
            if Some(version) == first_version.as_ref() {
                return Ok(first);
            }
            if let Some((installation, _)) = self.alongside_item(module, version).await?
                && installation.is_installed()
            {
                return Ok(Some(installation));
            }
        }
        Ok(first)
    }

    /// Every installed version of `module`: the first installation's, then those alongside
    /// it, each with its installation.
    pub async fn installed_versions(&self, module: &ModuleName) -> Result<Vec<Installation>> {
        let mut versions = Vec::new();
        if let Some((first, _)) = self.item(module).await?
            && first.is_installed()
        {
            versions.push(first);
        }
        for (installation, _) in self.alongside(module).await? {
            if installation.is_installed() {
                versions.push(installation);
            }
        }
        Ok(versions)
    }

    pub async fn get(&self, module: &ModuleName) -> Result<Installation> {
        match self.item(module).await? {
            Some((installation, _)) => Ok(installation),
            None => Err(Error::NotFound(format!(
                "{module} has never been installed{}",
                self.closest_installed(module).await
            ))),
        }
    }

    /// `; did you mean `x`?` for the installed module nearest `module`, or nothing.
    async fn closest_installed(&self, module: &ModuleName) -> String {
        let installed = self.installed_index().await.unwrap_or_default();
        did_you_mean(module.as_str(), installed.keys().map(String::as_str))
    }

    /// The manifest of the installed version, as the shell's module loader reads it.
    pub async fn installed_manifest(&self, module: &ModuleName) -> Result<Value> {
        let installation = self.get(module).await?;
        match (installation.is_installed(), installation.manifest) {
            (true, Some(manifest)) => Ok(manifest),
            _ => Err(Error::NotFound(format!("{module} is not installed"))),
        }
    }

    /// The installed version's manifest and its installation; 409 when it is not installed.
    pub async fn installed_module(&self, module: &ModuleName) -> Result<(Manifest, Installation)> {
        let not_installed =
            || Error::Conflict(format!("{module} is not installed on this platform"));
        let Some((installation, _)) = self.item(module).await? else {
            let hint = self.closest_installed(module).await;
            return Err(Error::Conflict(format!(
                "{module} is not installed on this platform{hint}"
            )));
        };
        let manifest = match (&installation.manifest, installation.is_installed()) {
            (Some(manifest), true) => serde_json::from_value(manifest.clone()).map_err(|e| {
                Error::internal_because(format!("{module}'s installed manifest is unreadable"), e)
            })?,
            _ => return Err(not_installed()),
        };
        Ok((manifest, installation))
    }

    /// The manifest and installation of the version serving `tenant` (its pin, else the
    /// module's default, else the first installation): what a tenant's configuration,
    /// features and hooks answer to. 409 when the module is not installed.
    pub async fn installed_module_for(
        &self,
        module: &ModuleName,
        tenant: &str,
    ) -> Result<(Manifest, Installation)> {
        let (manifest, first) = self.installed_module(module).await?;
        let m = module.as_str();
        let wanted = [keys::module_versions(m), keys::version_pin(m, tenant)];
        let found = self.store.batch_get(&wanted).await?;
        let get = |key: &Key| found.iter().find(|item| &item.key == key);
        let settings: Option<VersionSettings> = get(&wanted[0]).map(from_item).transpose()?;
        let pin: Option<Pin> = get(&wanted[1]).map(from_item).transpose()?;
        if settings.is_none() && pin.is_none() {
            return Ok((manifest, first));
        }
        let not_installed =
            || Error::Conflict(format!("{module} is not installed on this platform"));
        let serving = self
            .serving_tenant(module, Some(first), settings.as_ref(), pin.as_ref())
            .await?
            .ok_or_else(not_installed)?;
        let manifest = serving.serving_manifest().ok_or_else(not_installed)??;
        Ok((manifest, serving))
    }

    /// Every installed module's index line, by name (one query).
    pub async fn installed_index(&self) -> Result<BTreeMap<String, IndexEntry>> {
        let items = query_all(self.store.as_ref(), &Query::partition(INDEX)).await?;
        let mut index = BTreeMap::new();
        for item in &items {
            let entry: IndexEntry = from_item(item)?;
            if entry.installed_version.is_some() {
                index.insert(entry.module.clone(), entry);
            }
        }
        Ok(index)
    }

    /// The versions installed alongside whose operation is pending or running, as (module,
    /// version). A version alongside keeps no index line of its own: one query per module
    /// the index lists as installed (only an installed module has versions alongside).
    pub async fn unfinished_alongside(&self) -> Result<Vec<(ModuleName, String)>> {
        let mut unfinished = Vec::new();
        for name in self.installed_index().await?.into_keys() {
            let Ok(module) = ModuleName::parse(&name) else {
                continue;
            };
            for (installation, _) in self.alongside(&module).await? {
                if installation.busy() {
                    unfinished.push((module.clone(), installation.version));
                }
            }
        }
        Ok(unfinished)
    }

    /// Modules whose last operation uninstalled them (the sweep looks for kept data past
    /// its retention among them).
    pub async fn uninstalled(&self) -> Result<Vec<ModuleName>> {
        let items = query_all(self.store.as_ref(), &Query::partition(INDEX)).await?;
        let mut modules = Vec::new();
        for item in &items {
            let entry: IndexEntry = from_item(item)?;
            if entry.status == Status::Uninstalled
                && let Ok(name) = ModuleName::parse(&entry.module)
            {
                modules.push(name);
            }
        }
        Ok(modules)
    }

    /// Modules whose last operation is still pending or running (a worker died mid-saga).
    pub async fn unfinished(&self) -> Result<Vec<ModuleName>> {
        let items = query_all(self.store.as_ref(), &Query::partition(INDEX)).await?;
        let mut modules = Vec::new();
        for item in &items {
            let entry: IndexEntry = from_item(item)?;
            if matches!(entry.status, Status::Pending | Status::Running)
                && let Ok(name) = ModuleName::parse(&entry.module)
            {
                modules.push(name);
            }
        }
        Ok(modules)
    }
}
