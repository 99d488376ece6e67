//! The saga runner: runs an installation's pending steps in order, storing progress after
//! each, so a retry or a restarted worker resumes where it stopped; when a step fails, the
//! steps done before it are undone in reverse and the installation says which step failed
//! and why.

use plinth_module_sdk::{Manifest, ModuleName};
use serde_json::json;

use super::Installer;
use super::steps::StepFailure;
use crate::audit;
use crate::cache::Stale;
use crate::changes::Change;
use crate::clock::now;
use crate::error::{Error, Result};
use crate::events::{Event, platform_event};
use crate::installation::{
    Failure, Installation, Operation, Status, Step, StepStatus, record_writes,
};
use crate::store::{Condition, Write};

/// What the steps of one run share.
#[derive(Debug)]
pub(crate) struct SagaContext {
    /// The version the operation moves to.
    pub manifest: Manifest,
    /// The version serving before (upgrade and rollback), to restore on failure.
    pub previous: Option<Manifest>,
    /// The module's API key in clear, when this run issued it.
    pub api_key: Option<String>,
    /// Tables this run created (dropped again on failure).
    pub created_tables: Vec<String>,
}

/// The stored installation being run, with the store version its next write expects.
struct Run<'a> {
    installer: &'a Installer,
    installation: Installation,
    stored: u64,
}

impl Run<'_> {
    async fn save(&mut self, extra: Vec<Write>) -> Result<()> {
        self.save_with(extra, Vec::new(), None).await
    }

    /// Stores the installation's progress with `extra` writes in the same transaction, then
    /// marks `stale` and publishes `events`.
    async fn save_with(
        &mut self,
        extra: Vec<Write>,
        events: Vec<Event>,
        stale: Option<Stale>,
    ) -> Result<()> {
        self.installation.updated_at = now();
        let mut writes = record_writes(
            &self.installation,
            self.stored + 1,
            Condition::Version(self.stored),
        );
        writes.extend(extra);
        let mut change = Change::new(writes).events(events).on_conflict(format!(
            "the installation of {} was changed by another worker",
            self.installation.module
        ));
        if let Some(stale) = stale {
            change = change.stale(stale);
        }
        self.installer.changes.commit(change).await?;
        self.stored += 1;
        Ok(())
    }

    fn mark(&mut self, index: usize, status: StepStatus, detail: Option<String>) {
        let state = &mut self.installation.steps[index];
        state.status = status;
        state.detail = detail;
        state.at = Some(now());
    }
}

/// A run found running was stopped mid-way with its worker; where the backend was that
/// worker's child process and the event rules lived in its bus (`plinth up`), both ended with
/// it: deploy and subscribe again (each step is idempotent) rather than go on with a backend
/// that no longer runs.
fn redo_worker_bound_steps(installation: &mut Installation) {
    if installation.operation == Operation::Uninstall {
        return;
    }
    for state in &mut installation.steps {
        if matches!(state.step, Step::Deploy | Step::CreateEventRules)
            && state.status == StepStatus::Done
        {
            state.status = StepStatus::Pending;
            state.detail = Some("again: the worker that did it stopped".into());
        }
    }
}

impl Installer {
    /// Runs (or resumes) the pending operation of `module`; does nothing when none is pending.
    /// Why a run stopped short is noted on the installation (unless another worker moved it
    /// on), for `plinth module status`.
    /// Then runs the pending operations of the versions installed alongside (`versions`).
    pub async fn run_installation(&self, module: &ModuleName) -> Result<()> {
        let outcome = self.run_saga(module, None).await;
        if let Err(e) = &outcome
            && !matches!(e, Error::Conflict(_))
        {
            self.note_error(module, None, &e.chain()).await;
        }
        outcome?;
        for (other, _) in self.installations.alongside(module).await? {
            if other.busy()
                && let Err(e) = self.run_saga(module, Some(&other.version)).await
            {
                tracing::warn!(module = %module, version = %other.version, error = %e.chain(), "an operation on a version alongside stopped");
                if !matches!(e, Error::Conflict(_)) {
                    self.note_error(module, Some(&other.version), &e.chain())
                        .await;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    async fn run_saga(&self, module: &ModuleName, alongside: Option<&str>) -> Result<()> {
        let found = match alongside {
            None => self.installations.item(module).await?,
            Some(version) => self.installations.alongside_item(module, version).await?,
        };
        let Some((installation, stored)) = found else {
            return Ok(());
        };
        if !matches!(installation.status, Status::Pending | Status::Running) {
            return Ok(());
        }
        let mut context = self.saga_context(&installation).await?;
        let resumed = installation.status == Status::Running;
        let mut run = Run {
            installer: self,
            installation,
            stored,
        };
        run.installation.status = Status::Running;
        if resumed && self.settings.redeploy_on_resume {
            redo_worker_bound_steps(&mut run.installation);
        }
        run.save(Vec::new()).await?;
        for index in 0..run.installation.steps.len() {
            if run.installation.steps[index].status == StepStatus::Done {
                continue;
            }
            let step = run.installation.steps[index].step;
            tracing::info!(module = %module, step = ?step, "install step");
            match self
                .run_step(step, &mut run.installation, &mut context)
                .await
            {
                Ok(detail) => {
                    run.mark(index, StepStatus::Done, detail);
                    run.save(Vec::new()).await?;
                    if let Some(observer) = &self.observer {
                        observer.step_done(module, step)?;
                    }
                }
                Err(StepFailure(reason)) => {
                    run.mark(index, StepStatus::Failed, Some(reason.clone()));
                    self.undo_done_steps(&mut run, index, &mut context).await;
                    return self.finish_failed(run, step, reason).await;
                }
            }
        }
        self.finish_succeeded(run, &context).await
    }

    async fn saga_context(&self, installation: &Installation) -> Result<SagaContext> {
        let module = ModuleName::parse(&installation.module)
            .map_err(|e| Error::internal_because("a stored installation names no module", e))?;
        let manifest = self
            .catalog
            .version(&module, &installation.version)
            .await?
            .manifest()?;
        let previous = match (&installation.manifest, installation.operation) {
            (Some(serving), Operation::Upgrade | Operation::Rollback | Operation::Restore) => {
                Some(serde_json::from_value(serving.clone()).map_err(|e| {
                    Error::internal_because("the serving manifest is unreadable", e)
                })?)
            }
            _ => None,
        };
        Ok(SagaContext {
            manifest,
            previous,
            api_key: None,
            created_tables: Vec::new(),
        })
    }

    /// Undoes the steps before `failed`, newest first. An undo that fails is recorded on the
    /// step and the others still run: undo does as much as it can.
    async fn undo_done_steps(&self, run: &mut Run<'_>, failed: usize, context: &mut SagaContext) {
        if run.installation.operation == Operation::Uninstall {
            return; // an uninstall stops where it failed; retrying it continues from there
        }
        for index in (0..failed).rev() {
            if run.installation.steps[index].status != StepStatus::Done {
                continue;
            }
            let step = run.installation.steps[index].step;
            match self.undo_step(step, &mut run.installation, context).await {
                Ok(()) => run.mark(index, StepStatus::Undone, None),
                Err(StepFailure(reason)) => {
                    run.mark(
                        index,
                        StepStatus::Done,
                        Some(format!("undo failed: {reason}")),
                    );
                }
            }
        }
    }

    /// Fails an operation that made no progress, the way a failed step fails a saga: the
    /// step it stopped at is marked failed with `reason`, the steps done before it are undone.
    pub(crate) async fn fail_stuck(
        &self,
        installation: Installation,
        stored: u64,
        reason: String,
    ) -> Result<()> {
        let steps = &installation.steps;
        let index = steps
            .iter()
            .position(|s| s.status != StepStatus::Done)
            .unwrap_or(steps.len());
        let step = steps
            .get(index)
            .or(steps.last())
            .map_or(Step::Validate, |s| s.step);
        let context = self.saga_context(&installation).await;
        let mut run = Run {
            installer: self,
            installation,
            stored,
        };
        if index < run.installation.steps.len() {
            run.mark(index, StepStatus::Failed, Some(reason.clone()));
        }
        let reason = match context {
            Ok(mut context) => {
                self.undo_done_steps(&mut run, index, &mut context).await;
                reason
            }
            Err(e) => format!("{reason}; nothing was undone: {e}"),
        };
        self.finish_failed(run, step, reason).await
    }

    async fn finish_failed(&self, mut run: Run<'_>, step: Step, reason: String) -> Result<()> {
        let installation = &mut run.installation;
        installation.status = Status::Failed;
        installation.failure = Some(Failure {
            step,
            reason: reason.clone(),
        });
        let payload = json!({
            "module": installation.module, "version": installation.version,
            "operation": installation.operation.name(), "step": step, "reason": reason,
        });
        let audit = audit::record(
            audit::PLATFORM_SCOPE,
            "platform:installer",
            "module.install.failed",
            &format!("module:{}", installation.module),
            payload.clone(),
        );
        let event = platform_event("module.install.failed", payload);
        run.save_with(vec![audit], vec![event], None).await
    }

    async fn finish_succeeded(&self, mut run: Run<'_>, context: &SagaContext) -> Result<()> {
        let installation = &mut run.installation;
        let from = installation.installed_version.clone();
        let detail_type = match installation.operation {
            Operation::Uninstall => {
                installation.status = Status::Uninstalled;
                installation.installed_version = None;
                installation.previous_version = None;
                installation.deployment = None;
                installation.manifest = None;
                installation.api_key_id = None;
                installation.rules.clear();
                if installation.drop_data {
                    installation.tables.clear();
                } else if !installation.alongside && !installation.tables.is_empty() {
                    let days = installation
                        .retention_days
                        .unwrap_or_else(|| self.retention_days());
                    installation.drop_after = Some(crate::export::days_from_now(days));
                }
                if installation.alongside {
                    "module.version.uninstalled"
                } else {
                    "module.uninstalled"
                }
            }
            operation => {
                installation.status = Status::Installed;
                installation.previous_version = match operation {
                    Operation::Upgrade => from.clone(),
                    Operation::Restore => installation.previous_version.clone(),
                    _ => None,
                };
                installation.installed_version = Some(installation.version.clone());
                installation.manifest = serde_json::to_value(&context.manifest).ok();
                match operation {
                    Operation::Install if installation.alongside => "module.version.installed",
                    Operation::Restore if installation.alongside => "module.version.restored",
                    Operation::Upgrade => "module.upgraded",
                    Operation::Rollback => "module.rolled_back",
                    Operation::Restore => "module.restored",
                    _ => "module.installed",
                }
            }
        };
        installation.failure = None;
        installation.last_error = None;
        let payload = json!({
            "module": installation.module, "version": installation.version,
            "previous_version": from, "optional_modules_missing": installation.optional_missing,
            "alongside": installation.alongside,
        });
        let audit = audit::record(
            audit::PLATFORM_SCOPE,
            "platform:installer",
            detail_type,
            &format!("module:{}", installation.module),
            payload.clone(),
        );
        let stale = Stale::Module(run.installation.module.clone());
        let event = platform_event(detail_type, payload);
        run.save_with(vec![audit], vec![event], Some(stale)).await
    }
}
