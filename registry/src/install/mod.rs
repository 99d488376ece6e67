//! Installing modules platform-wide: install, upgrade, roll back and uninstall, each a
//! resumable saga (see [`saga`]) whose progress lives in the module's installation record.
//!
//! The API starts an operation (checks that can fail at once answer 4xx at once), stores it as
//! pending and hands the module to the [`InstallQueue`]; a worker runs the saga. Locally the
//! worker is a task of `plinth up` ([`crate::queue::LocalQueue`]); on AWS it is the installer
//! Lambda ([`crate::queue::BusInstallQueue`]). An operation that makes no progress — its
//! request lost, its worker dead — is re-requested and at last failed by the sweep
//! ([`sweep`]), which both workers run.

mod deps;
pub mod saga;
mod steps;
mod sweep;

use std::sync::Arc;

use plinth_module_sdk::ModuleName;
use semver::Version;
use serde::Deserialize;

use crate::api_keys::ApiKeys;
use crate::catalog::Catalog;
use crate::changes::{Change, Changes};
use crate::clock::now;
use crate::deploy::{Deployer, TableProvisioner};
use crate::error::{Error, Result};
use crate::events::Subscriptions;
use crate::export::Exports;
use crate::hooks::Hooks;
use crate::identity::Caller;
use crate::installation::Installations;
use crate::instances::Instances;
use crate::queue::InstallQueue;
use crate::store::Condition;
use crate::versions::Versions;

pub use crate::installation::{
    Failure, Installation, Operation, Status, Step, StepState, StepStatus,
};
pub use crate::instances::Serving;
pub use deps::UninstallImpact;
pub use sweep::{SweepPolicy, Swept};

/// The ports the installer works with.
#[derive(Debug, Clone)]
pub struct InstallerPorts {
    pub deployer: Arc<dyn Deployer>,
    pub tables: Arc<dyn TableProvisioner>,
    pub subscriptions: Arc<dyn Subscriptions>,
    pub hooks: Arc<dyn Hooks>,
    pub queue: Arc<dyn InstallQueue>,
}

/// Told after each saga step is stored; an error stops the saga there, as if its worker had
/// died (how the tests and the crash drills stop a saga mid-way).
pub trait StepObserver: Send + Sync + std::fmt::Debug {
    /// # Errors
    /// Stops the saga after `step` of `module`.
    fn step_done(&self, module: &ModuleName, step: Step) -> Result<()>;
}

/// What the installer needs to know of the platform it installs into.
#[derive(Debug, Clone, Default)]
pub struct InstallSettings {
    /// The URL modules reach the platform at (`PLINTH_URL` in their environment).
    pub public_url: String,
    /// The EventBridge bus modules publish to, on AWS (`PLINTH_EVENT_BUS`).
    pub event_bus: Option<String>,
    /// When a pending or running operation counts as stuck, and how often it is re-requested.
    pub sweep: SweepPolicy,
    /// A run that resumes one stopped mid-way deploys and subscribes again: set where
    /// backends are the worker's child processes and rules live in its bus (`plinth up`).
    pub redeploy_on_resume: bool,
    /// Days an uninstall keeps the module's data before the sweep drops it, when the request
    /// names none (`PLINTH_DATA_RETENTION_DAYS`); `None`: [`DEFAULT_RETENTION_DAYS`].
    pub data_retention_days: Option<u32>,
}

pub use crate::export::{DEFAULT_RETENTION_DAYS, MAX_RETENTION_DAYS};

/// Installs, upgrades, rolls back and uninstalls modules, each as a resumable saga.
#[derive(Debug)]
pub struct Installer {
    changes: Arc<Changes>,
    deployer: Arc<dyn Deployer>,
    tables: Arc<dyn TableProvisioner>,
    subscriptions: Arc<dyn Subscriptions>,
    hooks: Arc<dyn Hooks>,
    queue: Arc<dyn InstallQueue>,
    catalog: Arc<Catalog>,
    installations: Arc<Installations>,
    api_keys: Arc<ApiKeys>,
    instances: Arc<Instances>,
    versions: Arc<Versions>,
    exports: Arc<Exports>,
    settings: InstallSettings,
    observer: Option<Arc<dyn StepObserver>>,
}

/// The services the installer calls.
#[derive(Debug, Clone)]
pub struct InstallerServices {
    pub changes: Arc<Changes>,
    pub catalog: Arc<Catalog>,
    pub installations: Arc<Installations>,
    pub api_keys: Arc<ApiKeys>,
    pub instances: Arc<Instances>,
    pub versions: Arc<Versions>,
    pub exports: Arc<Exports>,
}

impl Installer {
    pub fn new(
        ports: InstallerPorts,
        services: InstallerServices,
        settings: InstallSettings,
        observer: Option<Arc<dyn StepObserver>>,
    ) -> Self {
        Self {
            changes: services.changes,
            deployer: ports.deployer,
            tables: ports.tables,
            subscriptions: ports.subscriptions,
            hooks: ports.hooks,
            queue: ports.queue,
            catalog: services.catalog,
            installations: services.installations,
            api_keys: services.api_keys,
            instances: services.instances,
            versions: services.versions,
            exports: services.exports,
            settings,
            observer,
        }
    }
}

/// `POST /api/v1/modules/{m}/install`
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallRequest {
    pub version: String,
    #[serde(default)]
    pub endpoint: Option<String>,
    /// One machine: the folder the manifest's `dev_command` runs in (absolute), where the
    /// module's sources are; kept for later upgrades and restarts. Default: the folder `plinth
    /// up` runs in. Deployers on AWS run no `dev_command` and ignore it.
    #[serde(default)]
    #[schema(pattern = "^/")]
    pub dev_dir: Option<String>,
    /// Install this version next to the installed one, which keeps serving untouched: its own
    /// deployment and instances; it serves the tenants pinned to it, or all once made the
    /// default (`versions`). Default: false, a first install.
    #[serde(default)]
    pub alongside: bool,
}

/// `POST /api/v1/modules/{m}/upgrade`
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpgradeRequest {
    pub version: String,
    /// As in [`InstallRequest`]: a new folder for `dev_command`; none keeps the installed one.
    #[serde(default)]
    #[schema(pattern = "^/")]
    pub dev_dir: Option<String>,
}

/// A `dev_dir` is an absolute path: a relative one would mean the platform's folder, not the
/// caller's.
fn check_dev_dir(dev_dir: Option<&str>) -> Result<()> {
    match dev_dir {
        Some(dir) if !std::path::Path::new(dir).is_absolute() => Err(Error::field(
            "dev_dir",
            format!("`{dir}` is not an absolute path"),
        )),
        _ => Ok(()),
    }
}

fn parse_version(text: &str) -> Result<String> {
    Version::parse(text).map(|v| v.to_string()).map_err(|e| {
        Error::field(
            "version",
            format!("`{text}` is not a semantic version: {e}"),
        )
    })
}

impl Installer {
    pub async fn start_install(
        &self,
        caller: &Caller,
        module: &ModuleName,
        request: InstallRequest,
    ) -> Result<Installation> {
        caller.require_platform_admin()?;
        let version = parse_version(&request.version)?;
        let published = self.catalog.version(module, &version).await?;
        if let Some(endpoint) = &request.endpoint {
            check_endpoint(endpoint)?;
        }
        check_dev_dir(request.dev_dir.as_deref())?;
        if request.alongside {
            return self
                .start_alongside(caller, module, version, published.manifest()?, request)
                .await;
        }
        let current = self.installations.item(module).await?;
        if let Some((existing, _)) = &current {
            refuse_if_busy(existing)?;
            if existing.is_installed() {
                return Err(Error::Conflict(format!(
                    "{module} is already installed at {}; upgrade it instead",
                    existing.installed_version.as_deref().unwrap_or_default()
                )));
            }
        }
        self.check_dependencies(&published.manifest()?).await?;
        let installation = Installation {
            module: module.to_string(),
            operation: Operation::Install,
            status: Status::Pending,
            version,
            installed_version: None,
            previous_version: None,
            endpoint: request.endpoint,
            dev_dir: request.dev_dir,
            drop_data: false,
            steps: plan_states(Operation::Install, false, false, false),
            deployment: None,
            api_key_id: None,
            tables: Vec::new(),
            rules: Vec::new(),
            optional_missing: Vec::new(),
            failure: None,
            manifest: None,
            attempts: 0,
            last_error: None,
            updated_at: now(),
            alongside: false,
            // A reinstall before a kept uninstall's retention ends keeps the data: the new
            // record has no `drop_after`.
            export: false,
            retention_days: None,
            drop_after: None,
            exports: Vec::new(),
        };
        self.begin(caller, installation, current.map(|(_, v)| v))
            .await
    }

    /// Installs `version` beside the module's installed version, which is left as it is.
    async fn start_alongside(
        &self,
        caller: &Caller,
        module: &ModuleName,
        version: String,
        manifest: plinth_module_sdk::Manifest,
        request: InstallRequest,
    ) -> Result<Installation> {
        let first = match self.installations.item(module).await? {
            Some((first, _)) if first.is_installed() => first,
            _ => {
                return Err(Error::Conflict(format!(
                    "{module} is not installed; install a first version without `alongside`"
                )));
            }
        };
        refuse_if_busy(&first)?;
        if first.installed_version.as_deref() == Some(version.as_str()) {
            return Err(Error::Conflict(format!(
                "{module} {version} is already installed"
            )));
        }
        let existing = self.installations.alongside_item(module, &version).await?;
        if let Some((other, _)) = &existing {
            refuse_if_busy(other)?;
            if other.is_installed() {
                return Err(Error::Conflict(format!(
                    "{module} {version} is already installed alongside {}",
                    first.installed_version.as_deref().unwrap_or_default()
                )));
            }
        }
        self.check_dependencies(&manifest).await?;
        let installation = Installation {
            module: module.to_string(),
            operation: Operation::Install,
            status: Status::Pending,
            version,
            installed_version: None,
            previous_version: None,
            endpoint: request.endpoint,
            dev_dir: request.dev_dir.or(first.dev_dir),
            drop_data: false,
            steps: plan_states(Operation::Install, false, true, false),
            deployment: None,
            api_key_id: None,
            tables: Vec::new(),
            rules: Vec::new(),
            optional_missing: Vec::new(),
            failure: None,
            manifest: None,
            attempts: 0,
            last_error: None,
            updated_at: now(),
            alongside: true,
            export: false,
            retention_days: None,
            drop_after: None,
            exports: Vec::new(),
        };
        self.begin(caller, installation, existing.map(|(_, v)| v))
            .await
    }

    pub async fn start_upgrade(
        &self,
        caller: &Caller,
        module: &ModuleName,
        request: UpgradeRequest,
    ) -> Result<Installation> {
        caller.require_platform_admin()?;
        let version = parse_version(&request.version)?;
        check_dev_dir(request.dev_dir.as_deref())?;
        let published = self.catalog.version(module, &version).await?;
        let (mut current, stored) = self.installed(module).await?;
        if request.dev_dir.is_some() {
            current.dev_dir = request.dev_dir;
        }
        if current.installed_version.as_deref() == Some(version.as_str()) {
            return Err(Error::Conflict(format!(
                "{module} {version} is already installed"
            )));
        }
        self.refuse_if_alongside(module, &version).await?;
        self.refuse_if_pinned(module, &current).await?;
        self.check_dependencies(&published.manifest()?).await?;
        self.begin_change(caller, current, stored, Operation::Upgrade, version)
            .await
    }

    pub async fn start_rollback(
        &self,
        caller: &Caller,
        module: &ModuleName,
    ) -> Result<Installation> {
        caller.require_platform_admin()?;
        let (current, stored) = self.installed(module).await?;
        let previous = current.previous_version.clone().ok_or_else(|| {
            Error::Conflict(format!("{module} has no previous version to roll back to"))
        })?;
        let published = self.catalog.version(module, &previous).await?;
        self.refuse_if_alongside(module, &previous).await?;
        self.refuse_if_pinned(module, &current).await?;
        self.check_dependencies(&published.manifest()?).await?;
        self.begin_change(caller, current, stored, Operation::Rollback, previous)
            .await
    }

    /// Uninstalls (or, with `dry_run`, only says what that would do). Refused while an
    /// installed module requires this one.
    /// With `version`, only that installed version goes (one alongside the first, or the
    /// first when it is the only one left); refused while it is the default or tenants are
    /// pinned to it.
    pub async fn start_uninstall(
        &self,
        caller: &Caller,
        module: &ModuleName,
        request: UninstallRequest,
    ) -> Result<UninstallOutcome> {
        caller.require_platform_admin()?;
        let retention_days = self.retention_of(&request)?;
        let UninstallRequest {
            drop_data,
            dry_run,
            version,
            export,
            ..
        } = request;
        if let Some(version) = version {
            let version = parse_version(&version)?;
            if export {
                return Err(Error::field(
                    "export",
                    format!(
                        "{module}'s tables are shared by its installed versions; export them \
                         when uninstalling the last one"
                    ),
                ));
            }
            if let Some(outcome) = self
                .start_uninstall_alongside(caller, module, &version, drop_data, dry_run)
                .await?
            {
                return Ok(outcome);
            }
        }
        let (current, stored) = self.installed(module).await?;
        let others: Vec<String> = self
            .installations
            .alongside(module)
            .await?
            .into_iter()
            .filter(|(i, _)| i.is_installed() || i.busy())
            .map(|(i, _)| i.version)
            .collect();
        if !others.is_empty() && !dry_run {
            return Err(Error::Conflict(format!(
                "{module} {} is the first installation and {} installed alongside it; \
                 uninstall those versions first (`version`)",
                current.installed_version.as_deref().unwrap_or_default(),
                others.join(", ")
            )));
        }
        let plan = DataPlan {
            drop_data,
            export,
            retention_days,
        };
        let impact = self.uninstall_impact(&current, plan).await?;
        if dry_run {
            return Ok(UninstallOutcome::DryRun(Box::new(impact)));
        }
        if !impact.dependents.is_empty() {
            return Err(Error::Conflict(format!(
                "{module} cannot be uninstalled: {} require(s) it",
                impact.dependents.join(", ")
            )));
        }
        let version = current.installed_version.clone().unwrap_or_default();
        let mut next = current.clone();
        next.drop_data = drop_data;
        next.export = export;
        next.retention_days = (!drop_data).then_some(retention_days);
        next.drop_after = None;
        next.exports.clear();
        let started = self
            .begin_change(caller, next, stored, Operation::Uninstall, version)
            .await?;
        Ok(UninstallOutcome::Started(Box::new(started)))
    }

    /// Uninstalls `version` when it is installed alongside the first; `None` when `version`
    /// is the first installation's (the whole module's uninstall follows).
    async fn start_uninstall_alongside(
        &self,
        caller: &Caller,
        module: &ModuleName,
        version: &str,
        drop_data: bool,
        dry_run: bool,
    ) -> Result<Option<UninstallOutcome>> {
        let Some((current, stored)) = self.installations.alongside_item(module, version).await?
        else {
            let first = self.installations.item(module).await?;
            if first.is_some_and(|(f, _)| f.installed_version.as_deref() == Some(version)) {
                return Ok(None);
            }
            return Err(Error::field(
                "version",
                format!("{module} {version} is not installed"),
            ));
        };
        refuse_if_busy(&current)?;
        if !current.is_installed() {
            return Err(Error::field(
                "version",
                format!("{module} {version} is not installed"),
            ));
        }
        if drop_data {
            return Err(Error::field(
                "drop_data",
                format!(
                    "{module}'s tables are shared by its installed versions; drop them when \
                     uninstalling the last one"
                ),
            ));
        }
        let serving = self.versions.still_serving(module, version).await?;
        if dry_run {
            return Ok(Some(UninstallOutcome::DryRun(Box::new(UninstallImpact {
                module: module.to_string(),
                version: version.to_owned(),
                dependents: Vec::new(),
                endpoint: current.deployment.as_ref().map(|d| d.endpoint.clone()),
                event_rules: Vec::new(),
                tables: Vec::new(),
                drop_data: false,
                refused: serving,
                rows: Vec::new(),
                export: false,
                drop_after: None,
            }))));
        }
        if let Some(reason) = serving {
            return Err(Error::Conflict(format!(
                "{module} {version} cannot be uninstalled: {reason}"
            )));
        }
        let started = self
            .begin_change(
                caller,
                current,
                stored,
                Operation::Uninstall,
                version.to_owned(),
            )
            .await?;
        Ok(Some(UninstallOutcome::Started(Box::new(started))))
    }

    /// Refuses to upgrade or roll back the first installation to a version installed
    /// alongside it (two deployments of one version).
    async fn refuse_if_alongside(&self, module: &ModuleName, version: &str) -> Result<()> {
        match self.installations.alongside_item(module, version).await? {
            Some((other, _)) if other.is_installed() || other.busy() => {
                Err(Error::Conflict(format!(
                    "{module} {version} is installed alongside; make it the default version \
                     (or pin tenants to it) rather than upgrade to it"
                )))
            }
            _ => Ok(()),
        }
    }

    /// Refuses to move the first installation away from a version tenants are pinned to or
    /// that is the default by name.
    async fn refuse_if_pinned(&self, module: &ModuleName, current: &Installation) -> Result<()> {
        let version = current.installed_version.as_deref().unwrap_or_default();
        match self.versions.still_serving(module, version).await? {
            Some(reason) => Err(Error::Conflict(format!(
                "{module} cannot move away from {version}: {reason}"
            ))),
            None => Ok(()),
        }
    }

    async fn installed(&self, module: &ModuleName) -> Result<(Installation, u64)> {
        let (current, stored) = self
            .installations
            .item(module)
            .await?
            .ok_or_else(|| Error::Conflict(format!("{module} is not installed")))?;
        refuse_if_busy(&current)?;
        if !current.is_installed() {
            return Err(Error::Conflict(format!("{module} is not installed")));
        }
        Ok((current, stored))
    }

    async fn begin_change(
        &self,
        caller: &Caller,
        mut installation: Installation,
        stored: u64,
        operation: Operation,
        version: String,
    ) -> Result<Installation> {
        installation.operation = operation;
        installation.status = Status::Pending;
        installation.version = version;
        installation.steps = plan_states(
            operation,
            installation.drop_data,
            installation.alongside,
            installation.export,
        );
        installation.failure = None;
        installation.attempts = 0;
        installation.last_error = None;
        installation.updated_at = now();
        self.begin(caller, installation, Some(stored)).await
    }

    /// Stores the pending operation (conditionally: two starts race, one wins) and queues it.
    async fn begin(
        &self,
        caller: &Caller,
        installation: Installation,
        stored: Option<u64>,
    ) -> Result<Installation> {
        let module = ModuleName::parse(&installation.module)
            .map_err(|e| Error::internal_because("an installation names no module", e))?;
        let condition = stored.map_or(Condition::Absent, Condition::Version);
        let mut writes =
            crate::installation::record_writes(&installation, stored.unwrap_or(0) + 1, condition);
        writes.push(crate::audit::record(
            crate::audit::PLATFORM_SCOPE,
            &caller.actor(),
            &format!("module.{}.requested", installation.operation.name()),
            &format!("module:{module}"),
            serde_json::json!({"version": installation.version, "alongside": installation.alongside}),
        ));
        self.changes
            .commit(Change::new(writes).on_conflict(format!(
                "another operation on {module} started at the same time"
            )))
            .await?;
        if let Err(e) = self.queue.enqueue(&module).await {
            let alongside = installation
                .alongside
                .then_some(installation.version.as_str());
            self.note_error(
                &module,
                alongside,
                &format!("the request was not delivered: {}", e.chain()),
            )
            .await;
            return Err(sweep::not_queued(&module, &installation, e));
        }
        Ok(installation)
    }

    /// Queues a restore of every installed module: `plinth up` calls it when it starts, since
    /// the backends it ran and its in-process rules ended with the previous process.
    pub async fn restore_installed(&self) -> Result<Vec<ModuleName>> {
        let mut restored = Vec::new();
        for module in self.installations.installed_index().await?.into_keys() {
            let Ok(module) = ModuleName::parse(&module) else {
                continue;
            };
            let Some((current, stored)) = self.installations.item(&module).await? else {
                continue;
            };
            if current.busy() || !current.is_installed() {
                continue;
            }
            let version = current.installed_version.clone().unwrap_or_default();
            let caller = Caller::Module(module.clone());
            self.begin_change(&caller, current, stored, Operation::Restore, version)
                .await?;
            // Versions alongside ran as this worker's children too: their restores run after
            // the first's, in the same queued run.
            for (other, stored) in self.installations.alongside(&module).await? {
                if other.is_installed() && !other.busy() {
                    let version = other.version.clone();
                    self.begin_change(&caller, other, stored, Operation::Restore, version)
                        .await?;
                }
            }
            restored.push(module);
        }
        Ok(restored)
    }
}

/// `DELETE /api/v1/modules/{m}/installation`'s query.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UninstallRequest {
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub drop_data: bool,
    /// One installed version only (one alongside the first; the first when it is the last).
    #[serde(default)]
    pub version: Option<String>,
    /// Export each tenant's rows before anything is dropped.
    #[serde(default)]
    pub export: bool,
    /// Days the kept data stays before the sweep drops it (1 to 3650); not with `drop_data`.
    #[serde(default)]
    pub retention_days: Option<u32>,
}

/// What an uninstall does with the module's data.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DataPlan {
    pub drop_data: bool,
    pub export: bool,
    pub retention_days: u32,
}

impl Installer {
    /// The retention an uninstall keeps data for: the request's, else the platform's.
    fn retention_of(&self, request: &UninstallRequest) -> Result<u32> {
        match request.retention_days {
            Some(_) if request.drop_data => Err(Error::field(
                "retention_days",
                "drop_data drops the tables now; retention_days is for data an uninstall keeps",
            )),
            Some(days) if !(1..=MAX_RETENTION_DAYS).contains(&days) => Err(Error::field(
                "retention_days",
                format!("{days} is not between 1 and {MAX_RETENTION_DAYS}"),
            )),
            Some(days) => Ok(days),
            None => Ok(self.retention_days()),
        }
    }

    /// The platform's retention of an uninstall's kept data, in days.
    #[must_use]
    pub fn retention_days(&self) -> u32 {
        self.settings
            .data_retention_days
            .unwrap_or(DEFAULT_RETENTION_DAYS)
    }
}

/// What an uninstall request did.
#[derive(Debug, Clone)]
pub enum UninstallOutcome {
    DryRun(Box<UninstallImpact>),
    Started(Box<Installation>),
}

fn plan_states(
    operation: Operation,
    drop_data: bool,
    alongside: bool,
    export: bool,
) -> Vec<StepState> {
    let mut plan = if alongside {
        Step::plan_alongside(operation)
    } else {
        Step::plan(operation, drop_data)
    };
    // The export runs once the backend is stopped (on one machine it held the tables' file)
    // and before anything is dropped.
    if export
        && operation == Operation::Uninstall
        && let Some(at) = plan.iter().position(|s| *s == Step::Undeploy)
    {
        plan.insert(at + 1, Step::ExportData);
    }
    plan.into_iter()
        .map(|step| StepState {
            step,
            status: StepStatus::Pending,
            detail: None,
            at: None,
        })
        .collect()
}

fn refuse_if_busy(installation: &Installation) -> Result<()> {
    if installation.busy() {
        return Err(Error::Conflict(format!(
            "an {} of {} is in progress",
            installation.operation.name(),
            installation.module
        )));
    }
    Ok(())
}

fn check_endpoint(endpoint: &str) -> Result<()> {
    let ok = reqwest::Url::parse(endpoint)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some());
    if ok {
        Ok(())
    } else {
        Err(Error::field(
            "endpoint",
            format!("`{endpoint}` is not an http(s) URL"),
        ))
    }
}
