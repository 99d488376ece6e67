//! [`Rollouts::tick`]: one step of every active rollout — move the current wave's tenants,
//! judge what the gateway and the health checker saw of the version, advance after the bake,
//! complete, or move the tenants back. Everything it needs is in the store and in its
//! [`Figures`](super::Figures) (the gateway's [`VersionHealth`](super::VersionHealth), or the
//! figures stored from the access log), so a restarted platform's driver carries on where the
//! last one stopped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use plinth_module_sdk::ModuleName;
use serde_json::json;

use super::{
    ACTIVE, CHUNK, InstancesSeen, Moved, Read, Rollout, RolloutState, Rollouts, Skipped,
    Thresholds, Wave, Window, active_key, bake_ends_ms, now_ms, put, rollout_key, wanted,
    wave_order,
};
use crate::audit;
use crate::cache::Stale;
use crate::changes::Change;
use crate::clock::now;
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::installation::{Pin, VersionSettings};
use crate::instances::{Health, Serving};
use crate::store::{Condition, Item, Query, Update, Write, from_item, keys, query_all, to_data};

/// How often `plinth up` steps its rollouts unless `PLINTH_ROLLOUT_TICK_SECS` says.
pub const TICK: Duration = Duration::from_secs(2);

impl Rollouts {
    /// Steps every active rollout once; returns how many it looked at. One rollout's failure
    /// (the store, a lost race) is logged and tried again at the next tick.
    pub async fn tick(&self) -> Result<usize> {
        let active = query_all(self.store.as_ref(), &Query::partition(ACTIVE)).await?;
        for item in &active {
            let field = |name: &str| {
                item.data
                    .get(name)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let (module, id) = (field("module"), field("id"));
            if let Err(error) = self.step(&module, &id).await {
                tracing::warn!(%module, rollout = %id, error = %error.chain(), "rollout not stepped; trying again");
            }
        }
        Ok(active.len())
    }

    /// Steps the rollouts every `every` until the process ends (`plinth up`).
    pub async fn run_driver(self: Arc<Self>, every: Duration) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(error) = self.tick().await {
                tracing::warn!(error = %error.chain(), "rollouts not read; trying again");
            }
        }
    }

    async fn step(&self, module: &str, id: &str) -> Result<()> {
        let (rollout, version) = match self.read(module, id).await {
            Err(Error::NotFound(_)) => {
                // A marker without its rollout (written by hand?): nothing to drive.
                self.store
                    .delete(&active_key(module), Condition::Always)
                    .await?;
                return Ok(());
            }
            other => other?,
        };
        match (rollout.state, rollout.wave_started_ms) {
            (RolloutState::Running, None) => self.move_wave(rollout, version).await,
            (RolloutState::Running, Some(started)) => self.watch(rollout, version, started).await,
            (RolloutState::Paused, _) => {
                self.figures.discard(&rollout.module, &rollout.version);
                Ok(())
            }
            (RolloutState::RollingBack | RolloutState::Aborting, _) => {
                self.unwind(rollout, version).await.map(drop)
            }
            (RolloutState::Completing, _) => self.complete(rollout, version).await,
            (RolloutState::RolledBack | RolloutState::Aborted | RolloutState::Completed, _) => {
                self.store
                    .delete(&active_key(module), Condition::Always)
                    .await?;
                Ok(())
            }
        }
    }

    /// Moves the current wave's tenants ([`CHUNK`] per change), then starts its bake.
    async fn move_wave(&self, mut rollout: Rollout, mut version: u64) -> Result<()> {
        let module = ModuleName::parse(&rollout.module)
            .map_err(|e| Error::internal(format!("a stored rollout names no module: {e}")))?;
        let manifest = match self.manifest_of(&module, &rollout.version).await {
            Ok(manifest) => manifest,
            Err(Error::NotFound(why)) => return self.stop(rollout, version, why).await,
            Err(other) => return Err(other),
        };
        let (to_move, pins) = self.wave_tenants(&rollout, &module).await?;
        let actor = rollout.actor();
        for chunk in to_move.chunks(CHUNK) {
            let mut writes = Vec::new();
            for tenant in chunk {
                let id = TenantId::parse_field("tenant", tenant)?;
                if let Err(refused) = self.versions.check_fits(&id, &manifest).await {
                    rollout.skipped.push(Skipped {
                        tenant_id: tenant.clone(),
                        reason: refused.to_string(),
                    });
                    continue;
                }
                let previous_version = self.versions.tenant_version(&id, &module).await?;
                writes.push(pin_write(&rollout, tenant, &rollout.version));
                writes.push(audit::record(
                    tenant,
                    &actor,
                    "module.version.pinned",
                    &format!("module:{module}"),
                    json!({"module": module, "tenant_id": tenant, "version": rollout.version,
                           "previous_version": previous_version, "rollout_id": rollout.id}),
                ));
                rollout.moved.push(Moved {
                    tenant_id: tenant.clone(),
                    wave: rollout.wave + 1,
                    previous_version,
                    previous_pin: pins.get(tenant).map(|p| p.version.clone()),
                    restored: false,
                });
            }
            rollout.updated_at = now();
            writes.push(put(&rollout, version));
            self.changes
                .commit(
                    Change::new(writes)
                        .stale(Stale::Module(rollout.module.clone()))
                        .on_conflict(format!("rollout {} changed meanwhile", rollout.id)),
                )
                .await?;
            version += 1;
        }
        // The wave is moved: its bake begins, on figures from now on.
        rollout.restart_figures(self.figures.as_ref());
        rollout.wave_started_ms = Some(now_ms());
        rollout.updated_at = now();
        let tenants: Vec<&str> = rollout
            .moved
            .iter()
            .filter(|m| m.wave == rollout.wave + 1)
            .map(|m| m.tenant_id.as_str())
            .collect();
        let detail = json!({"wave_label": rollout.waves[rollout.wave].label(), "tenants": tenants});
        let event = rollout.event("module.rollout.wave_advanced", detail);
        let writes = vec![
            put(&rollout, version),
            audit::record(
                audit::PLATFORM_SCOPE,
                &actor,
                "module.rollout.wave_advanced",
                &format!("module:{module}"),
                event.detail.clone().into(),
            ),
        ];
        self.changes
            .commit(
                Change::new(writes)
                    .events([event])
                    .stale(Stale::Module(rollout.module.clone())),
            )
            .await
    }

    /// The tenants the current wave moves (in wave order), and every pin of the module.
    async fn wave_tenants(
        &self,
        rollout: &Rollout,
        module: &ModuleName,
    ) -> Result<(Vec<String>, BTreeMap<String, Pin>)> {
        let pins: BTreeMap<String, Pin> = self
            .versions
            .pins(module)
            .await?
            .into_iter()
            .map(|p| (p.tenant_id.clone(), p))
            .collect();
        let moved: BTreeSet<&str> = rollout.moved.iter().map(|m| m.tenant_id.as_str()).collect();
        let skipped: BTreeSet<&str> = rollout
            .skipped
            .iter()
            .map(|s| s.tenant_id.as_str())
            .collect();
        let fresh = |t: &str| !moved.contains(t) && !skipped.contains(t);
        let enabled = self.enabled_tenants(module).await?;
        let chosen = match &rollout.waves[rollout.wave] {
            Wave::Tenants { tenants, .. } => tenants
                .iter()
                .filter(|t| fresh(t) && enabled.contains(t))
                .cloned()
                .collect(),
            Wave::Percent { percent } => {
                // A tenant an admin pinned stays where its pin says (name it to move it).
                let actor = rollout.actor();
                let eligible: Vec<String> = enabled
                    .into_iter()
                    .filter(|t| pins.get(t).is_none_or(|p| p.pinned_by == actor))
                    .collect();
                let have = eligible.iter().filter(|t| !fresh(t)).count();
                let want = wanted(*percent, eligible.len()).saturating_sub(have);
                let mut rest: Vec<String> = eligible.into_iter().filter(|t| fresh(t)).collect();
                wave_order(module.as_str(), &mut rest);
                rest.truncate(want);
                rest
            }
        };
        Ok((chosen, pins))
    }

    /// Adds what was seen of the version to the wave's window and judges it with the version's
    /// instances: a breach moves the tenants back; a bake that is over moves the next wave or
    /// completes.
    async fn watch(&self, mut rollout: Rollout, version: u64, started: i64) -> Result<()> {
        let mut cursor = rollout.figures_cursor;
        let seen = self
            .figures
            .seen(
                &rollout.module,
                &rollout.version,
                started,
                now_ms(),
                &mut cursor,
            )
            .await?;
        let at = rollout.wave;
        if let Some(window) = rollout.windows.get_mut(at) {
            window.merge(&seen.settled);
        }
        let provisional = (seen.provisional.requests > 0).then_some(seen.provisional);
        let moved_on = cursor != rollout.figures_cursor || provisional != rollout.provisional;
        rollout.figures_cursor = cursor;
        rollout.provisional = provisional;
        let instances = self.instances_seen(&rollout).await?;
        let changed = seen.settled.requests > 0 || moved_on || rollout.instances != Some(instances);
        rollout.instances = Some(instances);
        let window = rollout.figures_of(at);
        let label = format!("{} {}", rollout.module, rollout.version);
        if let Some(reason) = breach(&rollout.thresholds, &window, instances, &label) {
            return self.stop(rollout, version, reason).await;
        }
        // No wave advances on instances still starting with none healthy beside them.
        if instances.healthy > 0 && now_ms() >= bake_ends_ms(started, rollout.bake_seconds) {
            // The wave's record keeps what it was judged on.
            if let (Some(provisional), Some(window)) =
                (rollout.provisional.take(), rollout.windows.get_mut(at))
            {
                window.merge(&provisional);
            }
            if at + 1 < rollout.waves.len() {
                rollout.wave += 1;
                rollout.wave_started_ms = None;
                let (rollout, version) = self.save(rollout, version, None).await?;
                return self.move_wave(rollout, version).await;
            }
            rollout.state = RolloutState::Completing;
            let (rollout, version) = self.save(rollout, version, None).await?;
            return self.complete(rollout, version).await;
        }
        if changed {
            // Figures only: an observation, which makes nothing cached stale.
            let update = Update::default()
                .set("windows", value(&rollout.windows)?)
                .set("provisional", value(&rollout.provisional)?)
                .set("figures_cursor", value(&rollout.figures_cursor)?)
                .set("instances", value(&rollout.instances)?)
                .set("updated_at", json!(now()));
            self.changes
                .observe(
                    &rollout_key(&rollout.module, &rollout.id),
                    update,
                    Condition::Version(version),
                    None,
                )
                .await?;
        }
        Ok(())
    }

    /// The version's instances, as the health checker last stored them.
    async fn instances_seen(&self, rollout: &Rollout) -> Result<InstancesSeen> {
        let module = ModuleName::parse(&rollout.module)
            .map_err(|e| Error::internal(format!("a stored rollout names no module: {e}")))?;
        let alongside = self
            .installations
            .serving(&module, &rollout.version)
            .await?
            .is_some_and(|i| i.alongside);
        let serving = if alongside {
            Serving::Alongside(&rollout.version)
        } else {
            Serving::First(&rollout.version)
        };
        let mut seen = InstancesSeen::default();
        let now = time::OffsetDateTime::now_utc();
        for instance in self.instances.list(&module).await? {
            if serving.owns(&instance) {
                match (instance.health, instance.unhealthy_since.as_deref()) {
                    (Health::Healthy, _) => seen.healthy += 1,
                    (Health::Unhealthy, since) if starting(since, now) => seen.starting += 1,
                    (Health::Unhealthy, _) => seen.unhealthy += 1,
                }
            }
        }
        Ok(seen)
    }

    /// A breach: the rollout stops, with `reason`, and its tenants move back.
    async fn stop(&self, mut rollout: Rollout, version: u64, reason: String) -> Result<()> {
        tracing::warn!(module = %rollout.module, rollout = %rollout.id, %reason, "rolling back");
        rollout.state = RolloutState::RollingBack;
        rollout.reason = Some(reason);
        let (rollout, version) = self.save(rollout, version, None).await?;
        self.unwind(rollout, version).await.map(drop)
    }

    /// Moves every moved tenant back to its previous pin, or unpins it ([`CHUNK`] per
    /// change), then ends the rollout as rolled back or aborted.
    pub(super) async fn unwind(&self, mut rollout: Rollout, mut version: u64) -> Result<Read> {
        let (action, ended) = match rollout.state {
            RolloutState::Aborting => ("module.rollout.aborted", RolloutState::Aborted),
            _ => ("module.rollout.rolled_back", RolloutState::RolledBack),
        };
        let actor = rollout.actor();
        let reason = rollout.reason.clone().unwrap_or_default();
        let pending: Vec<usize> = (0..rollout.moved.len())
            .filter(|i| !rollout.moved[*i].restored)
            .collect();
        for chunk in pending.chunks(CHUNK) {
            let mut writes = Vec::new();
            for &i in chunk {
                let moved = rollout.moved[i].clone();
                writes.push(match &moved.previous_pin {
                    Some(pinned) => pin_write(&rollout, &moved.tenant_id, pinned),
                    None => Write::Delete {
                        key: keys::version_pin(&rollout.module, &moved.tenant_id),
                        condition: Condition::Always,
                    },
                });
                writes.push(audit::record(
                    &moved.tenant_id,
                    &actor,
                    action,
                    &format!("module:{}", rollout.module),
                    json!({"module": rollout.module, "tenant_id": moved.tenant_id,
                           "rollout_id": rollout.id, "from_version": rollout.version,
                           "version": moved.previous_version, "pinned": moved.previous_pin,
                           "reason": reason}),
                ));
                rollout.moved[i].restored = true;
            }
            rollout.updated_at = now();
            writes.push(put(&rollout, version));
            self.changes
                .commit(
                    Change::new(writes)
                        .stale(Stale::Module(rollout.module.clone()))
                        .on_conflict(format!("rollout {} changed meanwhile", rollout.id)),
                )
                .await?;
            version += 1;
        }
        rollout.state = ended;
        let restored: Vec<&str> = rollout.moved.iter().map(|m| m.tenant_id.as_str()).collect();
        let event = rollout.event(action, json!({"reason": reason, "tenants": restored}));
        self.finish(&mut rollout, version, action, event).await?;
        Ok((rollout, version + 1))
    }

    /// Every wave done: a rollout whose last wave is 100% makes the version the module's
    /// default and unpins the tenants it moved that had no pin before; then it is completed.
    async fn complete(&self, mut rollout: Rollout, mut version: u64) -> Result<()> {
        let module = ModuleName::parse(&rollout.module)
            .map_err(|e| Error::internal(format!("a stored rollout names no module: {e}")))?;
        if matches!(rollout.waves.last(), Some(Wave::Percent { percent: 100 })) {
            version = self.make_default(&rollout, &module, version).await?;
            let actor = rollout.actor();
            let pins = self.versions.pins(&module).await?;
            let unpin: Vec<&Pin> = pins
                .iter()
                .filter(|p| p.pinned_by == actor && p.version == rollout.version)
                .filter(|p| {
                    rollout
                        .moved
                        .iter()
                        .any(|m| m.tenant_id == p.tenant_id && m.previous_pin.is_none())
                })
                .collect();
            for chunk in unpin.chunks(CHUNK) {
                let mut writes = Vec::new();
                for pin in chunk {
                    writes.push(Write::Delete {
                        key: keys::version_pin(&rollout.module, &pin.tenant_id),
                        condition: Condition::Always,
                    });
                    writes.push(audit::record(
                        &pin.tenant_id,
                        &actor,
                        "module.version.unpinned",
                        &format!("module:{module}"),
                        json!({"module": module, "tenant_id": pin.tenant_id,
                               "version": rollout.version, "rollout_id": rollout.id}),
                    ));
                }
                self.changes
                    .commit(Change::new(writes).stale(Stale::Module(rollout.module.clone())))
                    .await?;
            }
        }
        rollout.state = RolloutState::Completed;
        let moved: Vec<&str> = rollout.moved.iter().map(|m| m.tenant_id.as_str()).collect();
        let event = rollout.event("module.rollout.completed", json!({"tenants": moved}));
        self.finish(&mut rollout, version, "module.rollout.completed", event)
            .await
    }

    /// Makes the rollout's version the module's default (unless it is); the rollout's item
    /// version after.
    async fn make_default(
        &self,
        rollout: &Rollout,
        module: &ModuleName,
        version: u64,
    ) -> Result<u64> {
        let key = keys::module_versions(module.as_str());
        let stored = self.store.get(&key).await?;
        let settings: Option<VersionSettings> = stored.as_ref().map(from_item).transpose()?;
        let first = self
            .installations
            .item(module)
            .await?
            .and_then(|(i, _)| i.installed_version);
        let default_version =
            (first.as_deref() != Some(rollout.version.as_str())).then(|| rollout.version.clone());
        let current = settings.and_then(|s| s.default_version);
        if current == default_version {
            return Ok(version);
        }
        let settings = VersionSettings {
            module: module.to_string(),
            default_version,
            updated_at: now(),
            updated_by: rollout.actor(),
        };
        let (item, condition) = match &stored {
            Some(stored) => stored.next(to_data(&settings)),
            None => (Item::new(key, to_data(&settings)), Condition::Absent),
        };
        let payload = json!({"module": module, "version": rollout.version,
                             "previous_version": rollout.from_version, "rollout_id": rollout.id});
        let writes = vec![
            Write::Put { item, condition },
            put(rollout, version),
            audit::record(
                audit::PLATFORM_SCOPE,
                &rollout.actor(),
                "module.version.default_set",
                &format!("module:{module}"),
                payload.clone(),
            ),
        ];
        self.changes
            .commit(
                Change::new(writes)
                    .events([crate::events::platform_event(
                        "module.version.default_set",
                        payload,
                    )])
                    .stale(Stale::Module(module.to_string()))
                    .on_conflict(format!(
                        "{module}'s default version was changed at the same time"
                    )),
            )
            .await?;
        Ok(version + 1)
    }

    /// Ends the rollout: its state, the module's marker gone, the audit record, the event.
    async fn finish(
        &self,
        rollout: &mut Rollout,
        version: u64,
        action: &str,
        event: crate::events::Event,
    ) -> Result<()> {
        rollout.finished_at = Some(now());
        rollout.updated_at = now();
        let writes = vec![
            put(rollout, version),
            Write::Delete {
                key: active_key(&rollout.module),
                condition: Condition::Always,
            },
            audit::record(
                audit::PLATFORM_SCOPE,
                &rollout.actor(),
                action,
                &format!("module:{}", rollout.module),
                event.detail.clone().into(),
            ),
        ];
        self.changes
            .commit(
                Change::new(writes)
                    .events([event])
                    .stale(Stale::Module(rollout.module.clone()))
                    .on_conflict(format!("rollout {} changed meanwhile", rollout.id)),
            )
            .await
    }
}

fn value(of: &impl serde::Serialize) -> Result<serde_json::Value> {
    serde_json::to_value(of).map_err(|e| Error::internal(format!("a rollout's figures: {e}")))
}

/// A pin of `tenant` to `version`, made by the rollout.
fn pin_write(rollout: &Rollout, tenant: &str, version: &str) -> Write {
    let pin = Pin {
        module: rollout.module.clone(),
        tenant_id: tenant.to_owned(),
        version: version.to_owned(),
        pinned_at: now(),
        pinned_by: rollout.actor(),
    };
    Write::Put {
        item: Item::new(keys::version_pin(&rollout.module, tenant), to_data(&pin)),
        condition: Condition::Always,
    }
}

/// How long an instance may be unhealthy before it counts against a rollout: a backend
/// restarting (its deploy, or `plinth up` started again mid-rollout) answers its health check
/// again well within it; one still failing after it is a breach.
pub(super) const STARTING_GRACE: Duration = Duration::from_secs(20);

/// Whether an instance unhealthy since `since` (never checked healthy: `None`) is still within
/// [`STARTING_GRACE`] at `now`.
fn starting(since: Option<&str>, now: time::OffsetDateTime) -> bool {
    let Some(since) = since else {
        return true;
    };
    time::OffsetDateTime::parse(since, &time::format_description::well_known::Rfc3339)
        .is_ok_and(|since| now - since < STARTING_GRACE)
}

/// Why the version's figures stop the rollout, if they do.
fn breach(
    thresholds: &Thresholds,
    window: &Window,
    instances: InstancesSeen,
    label: &str,
) -> Option<String> {
    if instances.unhealthy > 0 {
        return Some(format!(
            "{} instance(s) of {label} failed their health checks",
            instances.unhealthy
        ));
    }
    if instances.healthy == 0 && instances.starting == 0 {
        return Some(format!("{label} has no healthy instance"));
    }
    if window.requests < thresholds.min_requests {
        return None;
    }
    let rate = window.error_rate();
    if rate > thresholds.max_error_rate {
        return Some(format!(
            "error rate {:.1}% ({} of {} requests answered 5xx) is above the {:.1}% allowed",
            rate * 100.0,
            window.errors_5xx,
            window.requests,
            thresholds.max_error_rate * 100.0
        ));
    }
    match window.p95_ms() {
        Some(p95) if p95 > thresholds.max_p95_ms as f64 => Some(format!(
            "p95 latency {p95:.0} ms over {} requests is above the {} ms allowed",
            window.requests, thresholds.max_p95_ms
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_breach_names_what_was_seen_and_what_was_allowed() {
        let thresholds = Thresholds::default();
        let healthy = InstancesSeen {
            healthy: 1,
            ..InstancesSeen::default()
        };
        let mut window = Window {
            requests: 20,
            errors_5xx: 2,
            ..Window::default()
        };
        assert_eq!(
            breach(&thresholds, &window, healthy, "financial 1.3.0").as_deref(),
            Some("error rate 10.0% (2 of 20 requests answered 5xx) is above the 5.0% allowed")
        );
        window.errors_5xx = 1;
        assert_eq!(breach(&thresholds, &window, healthy, "f 1"), None);
        let few = Window {
            requests: 3,
            errors_5xx: 3,
            ..Window::default()
        };
        assert_eq!(
            breach(&thresholds, &few, healthy, "f 1"),
            None,
            "too few to judge"
        );
        let sick = InstancesSeen {
            healthy: 1,
            unhealthy: 1,
            ..InstancesSeen::default()
        };
        assert!(
            breach(&thresholds, &few, sick, "financial 1.3.0")
                .is_some_and(|r| r.contains("failed their health checks"))
        );
    }

    /// CI found it: `plinth up` stopped mid-rollout and started again, the version's backend
    /// restarting was stored unhealthy for a moment, and the driver's first step rolled the
    /// rollout back ("1 instance(s) of financial 1.3.0 failed their health checks").
    #[test]
    fn an_instance_restarting_within_its_grace_is_not_a_breach_but_one_still_failing_after_it_is() {
        let now = time::OffsetDateTime::now_utc();
        let ago = |secs: i64| {
            (now - time::Duration::seconds(secs))
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        assert!(starting(None, now), "never checked healthy yet");
        assert!(starting(Some(&ago(3)), now));
        assert!(!starting(Some(&ago(25)), now));
        let thresholds = Thresholds::default();
        let window = Window::default();
        let restarting = InstancesSeen {
            starting: 1,
            ..InstancesSeen::default()
        };
        assert_eq!(breach(&thresholds, &window, restarting, "f 1"), None);
        let gone = InstancesSeen::default();
        assert_eq!(
            breach(&thresholds, &window, gone, "f 1").as_deref(),
            Some("f 1 has no healthy instance")
        );
    }
}
