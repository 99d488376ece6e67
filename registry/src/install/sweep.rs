//! Nothing stays stuck: an operation left pending or running — its request never delivered,
//! its worker dead or out of time — is found by [`Installer::sweep`] and re-requested through
//! the [`crate::queue::InstallQueue`] a bounded number of times, then failed and undone the way
//! a failed saga is. The local worker ([`Installer::run_worker`]) sweeps every minute; on AWS
//! the installer function sweeps on its schedule. An operator re-requests a failed or stuck
//! operation at once with [`Installer::retry`] (`plinth module retry`).

use std::sync::Arc;
use std::time::Duration;

use plinth_module_sdk::ModuleName;
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Installer, plan_states};
use crate::audit;
use crate::changes::Change;
use crate::clock::now;
use crate::error::{Error, Result};
use crate::identity::Caller;
use crate::installation::{Installation, Operation, Status, StepStatus, record_writes};
use crate::store::Condition;

/// How patient the sweep is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepPolicy {
    /// An operation whose last progress is older than this is stuck. Longer than the
    /// installer function's timeout (900 s): no invocation that made that progress still runs.
    pub stale_after: Duration,
    /// Re-requests of one operation before the sweep fails it.
    pub max_attempts: u32,
    /// How often the local worker sweeps.
    pub every: Duration,
}

impl Default for SweepPolicy {
    fn default() -> Self {
        Self {
            stale_after: Duration::from_secs(960),
            max_attempts: 3,
            every: Duration::from_secs(60),
        }
    }
}

/// What one sweep did, by module.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Swept {
    /// Stuck operations requested again.
    pub rerequested: Vec<String>,
    /// Stuck operations past their attempts: failed and undone.
    pub failed: Vec<String>,
}

enum Outcome {
    Rerequested,
    Failed,
}

/// What a sweep writes in a record's `updated_at`.
fn stamp(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| now())
}

/// `17m 3s`, `45s`.
fn idle_words(idle: time::Duration) -> String {
    let secs = idle.whole_seconds().max(0);
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Pending => "pending",
        Status::Running => "running",
        Status::Installed => "installed",
        Status::Failed => "failed",
        Status::Uninstalled => "uninstalled",
    }
}

impl Installer {
    /// Re-requests every pending or running operation whose last progress is older than
    /// `stale_after` at `now`, at most [`SweepPolicy::max_attempts`] times each; one past
    /// them is failed with a reason and undone (the saga's failure path: audited,
    /// `module.install.failed` on the bus). That is each module's operation and each
    /// version's installed alongside (named `financial 1.3.0` in [`Swept`]). A module the
    /// sweep cannot handle this time is logged and left to the next sweep.
    ///
    /// # Errors
    /// The store cannot list the installations.
    pub async fn sweep(&self, now: OffsetDateTime, stale_after: Duration) -> Result<Swept> {
        let mut swept = Swept::default();
        let mut unfinished: Vec<(ModuleName, Option<String>)> = self
            .installations
            .unfinished()
            .await?
            .into_iter()
            .map(|module| (module, None))
            .collect();
        let alongside = self.installations.unfinished_alongside().await?;
        unfinished.extend(alongside.into_iter().map(|(m, v)| (m, Some(v))));
        for (module, version) in unfinished {
            let name = match &version {
                Some(version) => format!("{module} {version}"),
                None => module.to_string(),
            };
            match self
                .sweep_one(&module, version.as_deref(), now, stale_after)
                .await
            {
                Ok(Some(Outcome::Rerequested)) => swept.rerequested.push(name),
                Ok(Some(Outcome::Failed)) => swept.failed.push(name),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(installation = %name, error = %e.chain(), "cannot sweep the installation");
                }
            }
        }
        if swept != Swept::default() {
            tracing::info!(rerequested = ?swept.rerequested, failed = ?swept.failed, "swept stuck installations");
        }
        match self.drop_retained(now).await {
            Ok(dropped) if !dropped.is_empty() => {
                tracing::info!(modules = ?dropped, "dropped the data kept after uninstalls, its retention over");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e.chain(), "cannot look for kept data past its retention");
            }
        }
        match self.drop_due_tenant_rows(now).await {
            Ok(dropped) if !dropped.is_empty() => {
                tracing::info!(tenants = ?dropped, "dropped disabled tenants' rows, their retention over");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e.chain(), "cannot look for tenants' rows past their retention");
            }
        }
        Ok(swept)
    }

    /// Deletes the rows of each tenant whose drop (`DELETE …/tenants/{t}/modules/{m}` with
    /// `drop_data=true`) is due at `now`, then its record; returns `{module}/{tenant}` of each.
    /// A tenant that enabled the module again has no record left; one whose module is no
    /// longer installed loses its record only (the uninstall's retention drops the tables).
    ///
    /// # Errors
    /// The store cannot be read.
    pub async fn drop_due_tenant_rows(&self, now: OffsetDateTime) -> Result<Vec<String>> {
        let mut dropped = Vec::new();
        for (drop, stored) in self.exports.due_drops(now).await? {
            let done = format!("{}/{}", drop.module, drop.tenant);
            match self.drop_tenant_rows(&drop, stored).await {
                Ok(()) => dropped.push(done),
                Err(e) => {
                    tracing::warn!(drop = %done, error = %e.chain(), "cannot drop a tenant's rows");
                }
            }
        }
        Ok(dropped)
    }

    async fn drop_tenant_rows(
        &self,
        drop: &crate::export::tenant_drops::TenantDrop,
        stored: u64,
    ) -> Result<()> {
        let module = ModuleName::parse(&drop.module)
            .map_err(|e| Error::internal_because("a tenant drop names no module", e))?;
        let tenant = crate::ids::TenantId::parse(&drop.tenant)
            .map_err(|e| Error::internal_because("a tenant drop names no tenant", e))?;
        // Enabled again since the list was read: the record is gone, the rows stay.
        if self
            .exports
            .pending_drop(&drop.module, &drop.tenant)
            .await?
            .as_ref()
            != Some(drop)
        {
            return Ok(());
        }
        let deleted = match self.installations.installed_module(&module).await {
            Ok((manifest, _)) => Some(self.exports.delete_tenant_rows(&manifest, &tenant).await?),
            Err(Error::NotFound(_) | Error::Conflict(_)) => None,
            Err(e) => return Err(e),
        };
        let writes = vec![
            crate::store::Write::Delete {
                key: crate::export::tenant_drops::drop_key(&drop.module, &drop.tenant),
                condition: Condition::Version(stored),
            },
            audit::record(
                tenant.as_str(),
                "platform:sweeper",
                "tenant.module.data_dropped",
                &format!("module:{module}"),
                json!({"rows": deleted, "drop_after": drop.drop_after}),
            ),
        ];
        self.changes
            .commit(Change::new(writes).on_conflict(format!(
                "the drop of tenant {tenant}'s rows of {module} changed meanwhile"
            )))
            .await
    }

    /// Drops the tables (and event queues) an uninstall kept, once their `drop_after` has
    /// passed at `now`; returns the modules whose data went. A module reinstalled meanwhile
    /// has no `drop_after` (its new record has none): its data stays. A drop that fails is
    /// logged and tried again by the next sweep.
    ///
    /// # Errors
    /// The store cannot list the installations.
    pub async fn drop_retained(&self, now: OffsetDateTime) -> Result<Vec<String>> {
        let mut dropped = Vec::new();
        for module in self.installations.uninstalled().await? {
            match self.drop_one_retained(&module, now).await {
                Ok(true) => dropped.push(module.to_string()),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(module = %module, error = %e.chain(), "cannot drop the kept data");
                }
            }
        }
        Ok(dropped)
    }

    async fn drop_one_retained(&self, module: &ModuleName, now: OffsetDateTime) -> Result<bool> {
        let Some((mut installation, stored)) = self.installations.item(module).await? else {
            return Ok(false);
        };
        let due = installation
            .drop_after
            .as_deref()
            .and_then(|at| OffsetDateTime::parse(at, &Rfc3339).ok())
            .is_some_and(|at| at <= now);
        if installation.status != Status::Uninstalled || !due {
            return Ok(false);
        }
        let manifest = self
            .catalog
            .version(module, &installation.version)
            .await?
            .manifest()?;
        // Claims the record first (a conditional write of it as it is): a reinstall stored
        // before this makes it fail, and nothing drops; one that read the record before it is
        // refused at its own conditional write. (One that starts during the drop itself still
        // can: the window is the drop's few seconds, at the end of the retention.)
        let claim = record_writes(&installation, stored + 1, Condition::Version(stored));
        self.changes
            .commit(Change::new(claim).on_conflict(format!(
                "the installation of {module} changed meanwhile; its data stays"
            )))
            .await?;
        let stored = stored + 1;
        self.tables
            .drop_tables(&manifest)
            .await
            .map_err(|e| Error::BadGateway(format!("dropping the tables of {module}: {e}")))?;
        let queues = self
            .subscriptions
            .drop_queues(module)
            .await
            .map_err(|e| Error::BadGateway(format!("dropping the queues of {module}: {e}")))?;
        let detail = json!({
            "module": module, "version": installation.version, "tables": installation.tables,
            "queues": queues, "drop_after": installation.drop_after,
        });
        installation.tables.clear();
        installation.drop_after = None;
        installation.updated_at = stamp(now);
        let mut writes = record_writes(&installation, stored + 1, Condition::Version(stored));
        writes.push(audit::record(
            audit::PLATFORM_SCOPE,
            "platform:sweeper",
            "module.data.dropped",
            &format!("module:{module}"),
            detail.clone(),
        ));
        let event = crate::events::platform_event("module.data.dropped", detail);
        self.changes
            .commit(
                Change::new(writes)
                    .events(vec![event])
                    .on_conflict(format!("the installation of {module} changed meanwhile")),
            )
            .await?;
        Ok(true)
    }

    /// Sweeps the operation of `module`'s first installation, or with `alongside` that of the
    /// version installed alongside it. Queuing the module runs both
    /// ([`Installer::run_installation`]).
    async fn sweep_one(
        &self,
        module: &ModuleName,
        alongside: Option<&str>,
        now: OffsetDateTime,
        stale_after: Duration,
    ) -> Result<Option<Outcome>> {
        let found = match alongside {
            Some(version) => self.installations.alongside_item(module, version).await?,
            None => self.installations.item(module).await?,
        };
        let Some((mut installation, stored)) = found else {
            return Ok(None);
        };
        if !installation.busy() {
            return Ok(None);
        }
        // An unreadable time stamp is no proof of life.
        let since = OffsetDateTime::parse(&installation.updated_at, &Rfc3339)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let idle = now - since;
        if idle <= stale_after {
            return Ok(None);
        }
        let policy = self.settings.sweep;
        if installation.attempts >= policy.max_attempts {
            let reason = format!(
                "no progress for {} after {} re-request(s); last error: {}",
                idle_words(idle),
                installation.attempts,
                installation
                    .last_error
                    .as_deref()
                    .unwrap_or("none recorded")
            );
            self.fail_stuck(installation, stored, reason).await?;
            return Ok(Some(Outcome::Failed));
        }
        installation.attempts += 1;
        installation.last_error = Some(format!(
            "no progress since {} ({}); re-requested, attempt {} of {}",
            installation.updated_at,
            idle_words(idle),
            installation.attempts,
            policy.max_attempts
        ));
        installation.updated_at = stamp(now);
        let detail = json!({
            "operation": installation.operation.name(), "version": installation.version,
            "attempt": installation.attempts, "max_attempts": policy.max_attempts,
        });
        self.store_and_queue(
            module,
            &installation,
            stored,
            "platform:sweeper",
            "module.installation.rerequested",
            detail,
        )
        .await?;
        Ok(Some(Outcome::Rerequested))
    }

    /// Re-requests the failed or stuck operation of `module` now, with its attempts reset: a
    /// failed one runs again from its first step (an uninstall from the step that failed), a
    /// pending or running one is requested again as it stands. If its worker was in fact
    /// alive, the two meet at the installation's conditional writes and one of them stops.
    ///
    /// # Errors
    /// 403 for anyone but a platform admin, 404 for a module never installed, 409 when its
    /// last operation finished.
    pub async fn retry(&self, caller: &Caller, module: &ModuleName) -> Result<Installation> {
        caller.require_platform_admin()?;
        let (mut installation, stored) = self
            .installations
            .item(module)
            .await?
            .ok_or_else(|| Error::NotFound(format!("{module} has never been installed")))?;
        match installation.status {
            Status::Installed | Status::Uninstalled => {
                return Err(Error::Conflict(format!(
                    "nothing to retry: the {} of {module} {} finished ({})",
                    installation.operation.name(),
                    installation.version,
                    status_name(installation.status)
                )));
            }
            Status::Failed if installation.operation == Operation::Uninstall => {
                // An uninstall goes on from where it failed.
                for state in &mut installation.steps {
                    if state.status == StepStatus::Failed {
                        state.status = StepStatus::Pending;
                    }
                }
            }
            Status::Failed => {
                installation.steps = plan_states(
                    installation.operation,
                    installation.drop_data,
                    installation.alongside,
                    installation.export,
                );
            }
            Status::Pending | Status::Running => {}
        }
        if installation.status == Status::Failed {
            installation.status = Status::Pending;
            installation.failure = None;
        }
        installation.attempts = 0;
        installation.last_error = None;
        installation.updated_at = now();
        let detail = json!({
            "operation": installation.operation.name(), "version": installation.version,
        });
        self.store_and_queue(
            module,
            &installation,
            stored,
            &caller.actor(),
            "module.installation.retried",
            detail,
        )
        .await?;
        Ok(installation)
    }

    /// Stores the re-requested operation (conditionally: a worker or another sweep that
    /// moved it first wins) with its audit record, then queues it.
    async fn store_and_queue(
        &self,
        module: &ModuleName,
        installation: &Installation,
        stored: u64,
        actor: &str,
        action: &str,
        detail: serde_json::Value,
    ) -> Result<()> {
        let mut writes = record_writes(installation, stored + 1, Condition::Version(stored));
        writes.push(audit::record(
            audit::PLATFORM_SCOPE,
            actor,
            action,
            &format!("module:{module}"),
            detail,
        ));
        self.changes
            .commit(Change::new(writes).on_conflict(format!(
                "the installation of {module} changed meanwhile; look at it again"
            )))
            .await?;
        self.queue
            .enqueue(module)
            .await
            .map_err(|e| not_queued(module, installation, e))
    }

    /// Notes why an operation stopped on its record, for `plinth module status`: not
    /// progress (`updated_at` stays), and best effort — a record that moved on is left alone.
    /// With `alongside`, on the record of that version installed alongside the first.
    pub(crate) async fn note_error(
        &self,
        module: &ModuleName,
        alongside: Option<&str>,
        error: &str,
    ) {
        let found = match alongside {
            Some(version) => self.installations.alongside_item(module, version).await,
            None => self.installations.item(module).await,
        };
        let Ok(Some((mut installation, stored))) = found else {
            return;
        };
        if !installation.busy() || installation.last_error.as_deref() == Some(error) {
            return;
        }
        installation.last_error = Some(error.to_owned());
        let writes = record_writes(&installation, stored + 1, Condition::Version(stored));
        if let Err(e) = self.changes.commit(Change::new(writes)).await {
            tracing::debug!(module = %module, error = %e.chain(), "the installation's last error was not noted");
        }
    }

    /// Runs queued installations until the queue closes: first resumes those a previous
    /// process left unfinished, then sweeps every [`SweepPolicy::every`] between them.
    pub async fn run_worker(
        self: Arc<Self>,
        mut queue: tokio::sync::mpsc::UnboundedReceiver<ModuleName>,
    ) {
        match self.installations.unfinished().await {
            Ok(unfinished) => {
                for module in unfinished {
                    self.run_logged(&module).await;
                }
            }
            Err(e) => tracing::error!(error = %e.chain(), "cannot list unfinished installations"),
        }
        let every = self.settings.sweep.every.max(Duration::from_secs(1));
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await; // the first tick is at once: the resume above was it
        loop {
            tokio::select! {
                next = queue.recv() => match next {
                    Some(module) => self.run_logged(&module).await,
                    None => break,
                },
                _ = ticks.tick() => {
                    let policy = self.settings.sweep;
                    if let Err(e) = self.sweep(OffsetDateTime::now_utc(), policy.stale_after).await {
                        tracing::error!(error = %e.chain(), "cannot sweep the installations");
                    }
                }
            }
        }
    }

    async fn run_logged(&self, module: &ModuleName) {
        if let Err(e) = self.run_installation(module).await {
            tracing::error!(module = %module, error = %e.chain(), "installation stopped");
        }
    }
}

/// An operation stored but not queued: the sweep or `plinth module retry` requests it again.
pub(super) fn not_queued(module: &ModuleName, installation: &Installation, cause: Error) -> Error {
    Error::unavailable_because(
        format!(
            "the {} of {module} is stored but could not be queued; the sweep requests it again \
             within minutes, or run `plinth module retry {module}`",
            installation.operation.name()
        ),
        cause,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_times_read_as_hours_minutes_and_seconds() {
        assert_eq!(idle_words(time::Duration::seconds(45)), "45s");
        assert_eq!(idle_words(time::Duration::seconds(17 * 60 + 3)), "17m 3s");
        assert_eq!(idle_words(time::Duration::seconds(7260)), "2h 1m");
    }
}
