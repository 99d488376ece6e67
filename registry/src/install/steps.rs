//! Each saga step and its undo. Every step is idempotent: run twice, it leaves one result.

use std::collections::BTreeMap;

use plinth_module_sdk::Manifest;
use plinth_module_sdk::manifest::Hook;
use serde_json::json;

use plinth_module_sdk::wire::HookCall;

use super::Installer;
use super::saga::SagaContext;
use crate::changes::Change;
use crate::deploy::{DeploySpec, Deployment};
use crate::hooks::{HookOutcome, HookRequest};
use crate::installation::{Installation, Operation, Step};
use crate::instances::Serving;
use crate::store::{Condition, Item, Key, Write, keys, to_data};

/// Why a step failed, in words the operator reads in the installation status.
#[derive(Debug)]
pub(crate) struct StepFailure(pub String);

impl<E: std::fmt::Display> From<E> for StepFailure {
    fn from(e: E) -> Self {
        StepFailure(e.to_string())
    }
}

type StepResult<T = Option<String>> = Result<T, StepFailure>;

/// How long a rotated-out API key keeps working, for a backend being replaced.
const KEY_OVERLAP_SECS: i64 = 600;

/// The saga's first step: the stored manifest is the version the operator asked for.
///
/// Publishing validated the document in full (schema and rules) and published versions are
/// immutable, so the saga does not validate it again (nor link the JSON Schema validator into
/// the installer function); it refuses a stored record that names another module or version,
/// which only a damaged or hand-edited store holds.
fn check_requested(manifest: &Manifest, inst: &Installation) -> StepResult<String> {
    let found = (manifest.name.as_str(), manifest.version.to_string());
    if found.0 != inst.module || found.1 != inst.version {
        return Err(StepFailure(format!(
            "the stored manifest of {} {} describes {} {}; the store's version record is damaged, \
             publish the version again under a new number",
            inst.module, inst.version, found.0, found.1
        )));
    }
    Ok(format!("{} {} as published", found.0, found.1))
}

pub(crate) fn permissions_key(module: &str) -> Key {
    Key::new(keys::module_partition(module), "PERMISSIONS")
}

impl Installer {
    pub(crate) async fn run_step(
        &self,
        step: Step,
        inst: &mut Installation,
        cx: &mut SagaContext,
    ) -> StepResult {
        let manifest = cx.manifest.clone();
        match step {
            Step::Validate => check_requested(&manifest, inst).map(Some),
            Step::CheckDependencies => {
                inst.optional_missing = self.check_dependencies(&manifest).await?;
                Ok((!inst.optional_missing.is_empty()).then(|| {
                    format!(
                        "optional modules not installed: {}",
                        inst.optional_missing.join(", ")
                    )
                }))
            }
            Step::IssueApiKey => self.issue_module_key(inst, cx).await.map(Some),
            Step::Deploy => self.deploy_step(inst, cx).await,
            Step::PreInstall => self.hook(Hook::PreInstall, inst, &manifest).await,
            Step::PostInstall => self.hook(Hook::PostInstall, inst, &manifest).await,
            Step::PreUninstall => self.hook(Hook::PreUninstall, inst, &manifest).await,
            Step::PostUninstall => self.hook(Hook::PostUninstall, inst, &manifest).await,
            Step::CreateTables => {
                let created = self.tables.create_tables(&manifest).await?;
                cx.created_tables.extend(created.iter().cloned());
                inst.tables = declared_tables(&manifest);
                Ok((!created.is_empty()).then(|| format!("created {}", created.join(", "))))
            }
            Step::RegisterPermissions => {
                self.store_permissions(&manifest).await?;
                Ok(Some(format!(
                    "{} permission(s)",
                    manifest.permissions.len()
                )))
            }
            Step::CreateEventRules => {
                let deployment = deployment_of(inst)?;
                inst.rules = self
                    .subscriptions
                    .subscribe(&manifest.name, &manifest.events.subscribes, &deployment)
                    .await?;
                Ok((!inst.rules.is_empty()).then(|| inst.rules.join(", ")))
            }
            Step::RemoveEventRules => {
                self.subscriptions.unsubscribe(&manifest.name).await?;
                Ok(None)
            }
            Step::UnregisterPermissions => {
                self.unregister_permissions(&manifest).await?;
                Ok(None)
            }
            Step::Undeploy => {
                if let Some(deployment) = inst.deployment.clone() {
                    self.undeploy(inst, &manifest, &deployment).await?;
                    self.instances
                        .remove_all(&manifest.name, serving_of(inst))
                        .await?;
                }
                Ok(None)
            }
            Step::ExportData => self.export_step(inst, &manifest).await.map(Some),
            Step::DropTables => {
                self.tables.drop_tables(&manifest).await?;
                let mut dropped = inst.tables.clone();
                dropped.extend(self.subscriptions.drop_queues(&manifest.name).await?);
                Ok(Some(format!("dropped {}", dropped.join(", "))))
            }
            Step::RevokeApiKeys => {
                for record in self.api_keys.list(&manifest.name).await? {
                    // A version alongside revokes its own key only.
                    if !inst.alongside || inst.api_key_id.as_ref() == Some(&record.id) {
                        self.api_keys.delete(&record).await?;
                    }
                }
                Ok(None)
            }
        }
    }

    pub(crate) async fn undo_step(
        &self,
        step: Step,
        inst: &mut Installation,
        cx: &mut SagaContext,
    ) -> StepResult<()> {
        let manifest = cx.manifest.clone();
        let previous = cx.previous.clone();
        match (step, previous) {
            (Step::IssueApiKey, None) => {
                if let Some(id) = inst.api_key_id.take()
                    && let Some(record) = self
                        .api_keys
                        .list(&manifest.name)
                        .await?
                        .into_iter()
                        .find(|r| r.id == id)
                {
                    self.api_keys.delete(&record).await?;
                }
            }
            (Step::Deploy, None) => {
                if let Some(deployment) = inst.deployment.take() {
                    self.undeploy(inst, &manifest, &deployment).await?;
                    self.instances
                        .remove_all(&manifest.name, serving_of(inst))
                        .await?;
                }
            }
            // An upgrade that fails puts the previous version back.
            (Step::Deploy, Some(previous)) => {
                let spec = self.deploy_spec(&previous, inst, cx).await?;
                let deployment = self.deployer.deploy(&spec).await?;
                let version = previous.version.to_string();
                self.instances
                    .serve(&previous.name, &deployment, Serving::First(&version))
                    .await?;
                inst.deployment = Some(deployment);
            }
            (Step::CreateTables, _) if !cx.created_tables.is_empty() => {
                self.tables.drop_tables(&manifest).await?;
            }
            (Step::RegisterPermissions, None) => {
                self.unregister_permissions(&manifest).await?;
            }
            (Step::RegisterPermissions, Some(previous)) => {
                self.store_permissions(&previous).await?;
            }
            // A first install undone leaves no queue either: it held nothing for anyone.
            (Step::CreateEventRules, None) => {
                self.subscriptions.unsubscribe(&manifest.name).await?;
                self.subscriptions.drop_queues(&manifest.name).await?;
            }
            (Step::CreateEventRules, Some(previous)) => {
                let deployment = deployment_of(inst)?;
                inst.rules = self
                    .subscriptions
                    .subscribe(&previous.name, &previous.events.subscribes, &deployment)
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Exports every tenant's rows that has any; an export that fails stops the uninstall
    /// here, before anything is dropped (a retry goes on from this step).
    async fn export_step(
        &self,
        inst: &mut Installation,
        manifest: &Manifest,
    ) -> StepResult<String> {
        let mut exports = Vec::new();
        for tenant in self.exports.tenants().await? {
            if let Some(mut export) = self.exports.export_if_any(manifest, &tenant).await? {
                // Kept on the record without the files' links, which are long and expire.
                for table in &mut export.tables {
                    table.link = None;
                }
                exports.push(export);
            }
        }
        let detail = if exports.is_empty() {
            "no tenant has rows".to_owned()
        } else {
            exports
                .iter()
                .map(|e| {
                    let rows: u64 = e.tables.iter().map(|t| t.rows).sum();
                    format!("{} ({rows} rows) at {}", e.tenant, e.location)
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        inst.exports = exports;
        Ok(format!("exported {detail}"))
    }

    /// Stops `deployment` of `inst`: a version alongside stops only its own backend.
    async fn undeploy(
        &self,
        inst: &Installation,
        manifest: &Manifest,
        deployment: &Deployment,
    ) -> StepResult<()> {
        if inst.alongside {
            self.deployer
                .undeploy_alongside(manifest, deployment)
                .await?;
        } else {
            self.deployer.undeploy(manifest, deployment).await?;
        }
        Ok(())
    }

    async fn store_permissions(&self, manifest: &Manifest) -> StepResult<()> {
        let data = json!({"module": manifest.name, "permissions": manifest.permissions});
        let item = Item::new(permissions_key(manifest.name.as_str()), to_data(&data));
        let write = Write::Put {
            item,
            condition: Condition::Always,
        };
        self.changes.commit(Change::new(vec![write])).await?;
        Ok(())
    }

    async fn unregister_permissions(&self, manifest: &Manifest) -> StepResult<()> {
        let write = Write::Delete {
            key: permissions_key(manifest.name.as_str()),
            condition: Condition::Always,
        };
        self.changes.commit(Change::new(vec![write])).await?;
        Ok(())
    }

    /// Issues the module's key; the one it replaces keeps working for a short overlap (the
    /// backend being replaced still uses it), then expires.
    async fn issue_module_key(
        &self,
        inst: &mut Installation,
        cx: &mut SagaContext,
    ) -> StepResult<String> {
        if inst.alongside {
            return self.issue_alongside_key(inst, cx).await;
        }
        let mut replacing = None;
        if inst.operation == Operation::Install {
            // A key of the module created since this install began and not the one it
            // recorded is from a run that stopped between storing a key and recording it: it
            // would stay valid, unseen. (Keys an operator issued before are left alone.)
            let began = inst
                .steps
                .first()
                .and_then(|s| s.at.as_deref())
                .and_then(parse_time);
            let module = cx.manifest.name.clone();
            for record in self.api_keys.list(&module).await? {
                let stray = inst.api_key_id.as_ref() != Some(&record.id)
                    && began.is_some_and(|began| {
                        parse_time(&record.created_at).is_some_and(|at| at >= began)
                    });
                if stray {
                    self.api_keys.delete(&record).await?;
                }
            }
        }
        if let Some(old) = inst.api_key_id.as_ref() {
            let module = cx.manifest.name.clone();
            let overlap = if inst.operation == Operation::Install {
                0
            } else {
                KEY_OVERLAP_SECS
            };
            replacing = self
                .api_keys
                .list(&module)
                .await?
                .into_iter()
                .find(|r| &r.id == old)
                .map(|record| {
                    let at = time::OffsetDateTime::now_utc().unix_timestamp() + overlap;
                    (record, at)
                });
        }
        let issued = self
            .api_keys
            .issue_for_install(&cx.manifest.name, replacing)
            .await?;
        inst.api_key_id = Some(issued.id.clone());
        cx.api_key = Some(issued.key);
        Ok(format!("key {}", issued.id))
    }

    /// A version alongside gets a key of its own beside the module's others (which keep
    /// working); one it issued in a run that stopped is deleted.
    async fn issue_alongside_key(
        &self,
        inst: &mut Installation,
        cx: &mut SagaContext,
    ) -> StepResult<String> {
        let module = cx.manifest.name.clone();
        if let Some(old) = inst.api_key_id.take()
            && let Some(record) = self
                .api_keys
                .list(&module)
                .await?
                .into_iter()
                .find(|r| r.id == old)
        {
            self.api_keys.delete(&record).await?;
        }
        let issued = self.api_keys.issue_for_install(&module, None).await?;
        inst.api_key_id = Some(issued.id.clone());
        cx.api_key = Some(issued.key);
        Ok(format!("key {}", issued.id))
    }

    async fn deploy_step(&self, inst: &mut Installation, cx: &mut SagaContext) -> StepResult {
        let manifest = cx.manifest.clone();
        let spec = self.deploy_spec(&manifest, inst, cx).await?;
        let deployment = self.deployer.deploy(&spec).await?;
        self.instances
            .serve(&manifest.name, &deployment, serving_of(inst))
            .await?;
        let detail = format!("serving at {}", deployment.endpoint);
        inst.deployment = Some(deployment);
        Ok(Some(detail))
    }

    /// The deployment spec of `manifest`, with the module's environment. A run resumed after
    /// a crash no longer has the key in clear: it issues a fresh one.
    async fn deploy_spec(
        &self,
        manifest: &Manifest,
        inst: &mut Installation,
        cx: &mut SagaContext,
    ) -> StepResult<DeploySpec> {
        if cx.api_key.is_none() {
            self.issue_module_key(inst, cx).await?;
        }
        let mut env: BTreeMap<String, String> = manifest.backend.env.clone();
        env.insert("PLINTH_URL".into(), self.settings.public_url.clone());
        env.insert("PLINTH_MODULE".into(), manifest.name.to_string());
        env.insert(
            "PLINTH_API_KEY".into(),
            cx.api_key.clone().unwrap_or_default(),
        );
        if let Some(bus) = &self.settings.event_bus {
            env.insert("PLINTH_EVENT_BUS".into(), bus.clone());
        }
        let image_digest = self
            .catalog
            .version(&manifest.name, &manifest.version.to_string())
            .await?
            .image_digest;
        Ok(DeploySpec {
            manifest: manifest.clone(),
            image_digest,
            endpoint: inst.endpoint.clone(),
            dev_dir: inst.dev_dir.as_ref().map(std::path::PathBuf::from),
            env,
            role_arn: None,
            alongside: inst.alongside,
        })
    }

    async fn hook(&self, hook: Hook, inst: &Installation, manifest: &Manifest) -> StepResult {
        let Some(path) = manifest.hooks.get(&hook) else {
            return Ok(Some("not declared".into()));
        };
        let deployment = deployment_of(inst)?;
        let mut call = HookCall::new(hook, manifest.name.as_str(), manifest.version.to_string());
        call.operation = Some(inst.operation.name().to_owned());
        let base = self.instances.reach_url(&manifest.name, &deployment).await;
        let request = HookRequest {
            url: format!("{base}{path}"),
            call,
        };
        match self.hooks.call(&request).await? {
            HookOutcome::Proceed => Ok(Some("ok".into())),
            HookOutcome::Refused(reason) => Err(StepFailure(format!(
                "refused by {}: {reason}",
                manifest.name
            ))),
        }
    }
}

/// Which installation's instances a step of `inst` registers or removes.
fn serving_of(inst: &Installation) -> Serving<'_> {
    if inst.alongside {
        Serving::Alongside(&inst.version)
    } else {
        Serving::First(&inst.version)
    }
}

fn parse_time(text: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

fn deployment_of(inst: &Installation) -> StepResult<Deployment> {
    inst.deployment
        .clone()
        .ok_or_else(|| StepFailure("the module is not deployed".into()))
}

fn declared_tables(manifest: &Manifest) -> Vec<String> {
    manifest
        .database
        .as_ref()
        .map(|db| db.tables.iter().map(|t| t.name.clone()).collect())
        .unwrap_or_default()
}
