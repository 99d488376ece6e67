//! Installing modules platform-wide: install, upgrade, roll back and uninstall, each a
//! resumable saga (see [`saga`]) whose progress lives in the module's installation record.
//!
//! The API starts an operation (checks that can fail at once answer 4xx at once), stores it as
//! pending and hands the module to the [`InstallQueue`]; a worker runs the saga. Locally the
//! worker is a task of `plinth up` ([`LocalQueue`]); on AWS it is the installer Lambda
//! ([`BusInstallQueue`]).

mod bus_queue;
mod deps;
pub mod saga;
mod steps;

use plinth_module_sdk::ModuleName;
use semver::Version;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::{from_item, to_data};
use crate::deploy::Deployment;
use crate::error::{Error, Result};
use crate::identity::Caller;
use crate::platform::Platform;
use crate::store::{Condition, Item, Key, Query, Write, keys, query_all};

pub use bus_queue::{BusInstallQueue, INSTALL_REQUESTED};
pub use deps::UninstallImpact;

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
    pub updated_at: String,
}

impl Installation {
    pub fn is_installed(&self) -> bool {
        self.installed_version.is_some() && self.status != Status::Uninstalled
    }

    fn busy(&self) -> bool {
        matches!(self.status, Status::Pending | Status::Running)
    }
}

/// `POST /api/v1/modules/{m}/install`
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallRequest {
    pub version: String,
    #[serde(default)]
    pub endpoint: Option<String>,
}

/// `POST /api/v1/modules/{m}/upgrade`
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpgradeRequest {
    pub version: String,
}

/// One line of the installations index (`PK=INSTALLATIONS SK=MODULE#m`): what the
/// dependency checks and the resume-on-start read in one query.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IndexEntry {
    pub module: String,
    pub status: Status,
    #[serde(default)]
    pub installed_version: Option<String>,
    /// Modules the serving version requires.
    #[serde(default)]
    pub requires: Vec<String>,
}

pub(crate) const INDEX: &str = "INSTALLATIONS";

pub(crate) fn index_key(module: &str) -> Key {
    Key::new(INDEX, format!("MODULE#{module}"))
}

/// Something that runs pending installations.
#[async_trait::async_trait]
pub trait InstallQueue: Send + Sync + std::fmt::Debug {
    async fn enqueue(&self, module: &ModuleName) -> Result<()>;
}

/// Runs sagas in this process: `plinth up` and tests start the worker
/// ([`Platform::run_install_worker`]) with the receiver.
#[derive(Debug, Clone)]
pub struct LocalQueue(pub tokio::sync::mpsc::UnboundedSender<ModuleName>);

#[async_trait::async_trait]
impl InstallQueue for LocalQueue {
    async fn enqueue(&self, module: &ModuleName) -> Result<()> {
        self.0
            .send(module.clone())
            .map_err(|_| Error::Unavailable("the install worker has stopped".into()))
    }
}

pub(crate) use crate::clock::now;

fn parse_version(text: &str) -> Result<String> {
    Version::parse(text).map(|v| v.to_string()).map_err(|e| {
        Error::field(
            "version",
            format!("`{text}` is not a semantic version: {e}"),
        )
    })
}

impl Platform {
    /// The installation record and its store version (for conditional writes).
    pub async fn installation_item(
        &self,
        module: &ModuleName,
    ) -> Result<Option<(Installation, u64)>> {
        match self.store.get(&keys::installation(module.as_str())).await? {
            Some(item) => Ok(Some((from_item(&item)?, item.version))),
            None => Ok(None),
        }
    }

    pub async fn installation(&self, module: &ModuleName) -> Result<Installation> {
        self.installation_item(module)
            .await?
            .map(|(installation, _)| installation)
            .ok_or_else(|| Error::NotFound(format!("{module} has never been installed")))
    }

    /// The manifest of the installed version, as the shell's module loader reads it.
    pub async fn installed_manifest(&self, module: &ModuleName) -> Result<Value> {
        let installation = self.installation(module).await?;
        match (installation.is_installed(), installation.manifest) {
            (true, Some(manifest)) => Ok(manifest),
            _ => Err(Error::NotFound(format!("{module} is not installed"))),
        }
    }

    pub async fn start_install(
        &self,
        caller: &Caller,
        module: &ModuleName,
        request: InstallRequest,
    ) -> Result<Installation> {
        caller.require_platform_admin()?;
        let version = parse_version(&request.version)?;
        let published = self.version(module, &version).await?;
        if let Some(endpoint) = &request.endpoint {
            check_endpoint(endpoint)?;
        }
        let current = self.installation_item(module).await?;
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
            drop_data: false,
            steps: plan_states(Operation::Install, false),
            deployment: None,
            api_key_id: None,
            tables: Vec::new(),
            rules: Vec::new(),
            optional_missing: Vec::new(),
            failure: None,
            manifest: None,
            updated_at: now(),
        };
        self.begin(caller, installation, current.map(|(_, v)| v))
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
        let published = self.version(module, &version).await?;
        let (current, stored) = self.installed(module).await?;
        if current.installed_version.as_deref() == Some(version.as_str()) {
            return Err(Error::Conflict(format!(
                "{module} {version} is already installed"
            )));
        }
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
        let published = self.version(module, &previous).await?;
        self.check_dependencies(&published.manifest()?).await?;
        self.begin_change(caller, current, stored, Operation::Rollback, previous)
            .await
    }

    /// Uninstalls (or, with `dry_run`, only says what that would do). Refused while an
    /// installed module requires this one.
    pub async fn start_uninstall(
        &self,
        caller: &Caller,
        module: &ModuleName,
        drop_data: bool,
        dry_run: bool,
    ) -> Result<UninstallOutcome> {
        caller.require_platform_admin()?;
        let (current, stored) = self.installed(module).await?;
        let impact = self.uninstall_impact(&current, drop_data).await?;
        if dry_run {
            return Ok(UninstallOutcome::DryRun(impact));
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
        let started = self
            .begin_change(caller, next, stored, Operation::Uninstall, version)
            .await?;
        Ok(UninstallOutcome::Started(Box::new(started)))
    }

    async fn installed(&self, module: &ModuleName) -> Result<(Installation, u64)> {
        let (current, stored) = self
            .installation_item(module)
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
        installation.steps = plan_states(operation, installation.drop_data);
        installation.failure = None;
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
        let module =
            ModuleName::parse(&installation.module).map_err(|e| Error::Internal(e.to_string()))?;
        let condition = stored.map_or(Condition::Absent, Condition::Version);
        let mut writes = saga::record_writes(&installation, stored.unwrap_or(0) + 1, condition);
        writes.push(crate::audit::record(
            crate::audit::PLATFORM_SCOPE,
            &caller.actor(),
            &format!("module.{}.requested", op_name(installation.operation)),
            &format!("module:{module}"),
            serde_json::json!({"version": installation.version}),
        ));
        self.store.transact(writes).await.map_err(|e| {
            if e.is_conflict() {
                Error::Conflict(format!(
                    "another operation on {module} started at the same time"
                ))
            } else {
                e.into()
            }
        })?;
        self.install_queue.enqueue(&module).await?;
        Ok(installation)
    }

    /// Queues a restore of every installed module: `plinth up` calls it when it starts, since
    /// the backends it ran and its in-process rules ended with the previous process.
    pub async fn restore_installed(&self) -> Result<Vec<ModuleName>> {
        let mut restored = Vec::new();
        for module in self.installed_index().await?.into_keys() {
            let Ok(module) = ModuleName::parse(&module) else {
                continue;
            };
            let Some((current, stored)) = self.installation_item(&module).await? else {
                continue;
            };
            if current.busy() || !current.is_installed() {
                continue;
            }
            let version = current.installed_version.clone().unwrap_or_default();
            let caller = Caller::Module(module.clone());
            self.begin_change(&caller, current, stored, Operation::Restore, version)
                .await?;
            restored.push(module);
        }
        Ok(restored)
    }

    /// Every installation that a worker should (still) run: pending, or running when a worker
    /// died. Called when a worker starts.
    pub async fn unfinished_installations(&self) -> Result<Vec<ModuleName>> {
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

    /// Runs queued installations until the queue closes; first resumes unfinished ones.
    pub async fn run_install_worker(
        self: std::sync::Arc<Self>,
        mut queue: tokio::sync::mpsc::UnboundedReceiver<ModuleName>,
    ) {
        match self.unfinished_installations().await {
            Ok(unfinished) => {
                for module in unfinished {
                    self.run_logged(&module).await;
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot list unfinished installations"),
        }
        while let Some(module) = queue.recv().await {
            self.run_logged(&module).await;
        }
    }

    async fn run_logged(&self, module: &ModuleName) {
        if let Err(e) = self.run_installation(module).await {
            tracing::error!(module = %module, error = %e, "installation stopped");
        }
    }
}

/// What an uninstall request did.
#[derive(Debug, Clone)]
pub enum UninstallOutcome {
    DryRun(UninstallImpact),
    Started(Box<Installation>),
}

pub(crate) fn op_name(operation: Operation) -> &'static str {
    match operation {
        Operation::Install => "install",
        Operation::Upgrade => "upgrade",
        Operation::Rollback => "rollback",
        Operation::Uninstall => "uninstall",
        Operation::Restore => "restore",
    }
}

fn plan_states(operation: Operation, drop_data: bool) -> Vec<StepState> {
    Step::plan(operation, drop_data)
        .into_iter()
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
            op_name(installation.operation),
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

pub(crate) fn item_of(installation: &Installation, version: u64) -> Item {
    Item {
        key: keys::installation(&installation.module),
        version,
        data: to_data(installation),
        expires_at: None,
    }
}

pub(crate) fn index_write(installation: &Installation, requires: Vec<String>) -> Write {
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
