//! Staged rollouts: moving a module's tenants to another installed version wave by wave,
//! watching the version between waves, and moving them back on a breach (operations.md,
//! "Rollouts").
//!
//! Mechanically a rollout moves tenants' pins (`versions`). Its state is the item
//! `PK=MODULE#m SK=ROLLOUT#{id}` (so it survives a restart), and a module's running or paused
//! rollout is marked by `PK=ROLLOUTS SK=MODULE#m`, written with the rollout's start on the
//! condition that it is absent: one active rollout per module, and the driver finds them all
//! in one query.
//!
//! - `plan.rs`: the waves, thresholds and bake time a request asks for;
//! - `health.rs`: [`VersionHealth`], what the gateway saw of each (module, version), counted
//!   in memory;
//! - `figures.rs`: [`Figures`], where the driver reads a version's figures — the gateway's
//!   [`VersionHealth`] on one machine, [`StoredFigures`] (what the usage function counted from
//!   the access log) on AWS;
//! - `view.rs`: [`RolloutView`], what the API shows of one;
//! - `driver.rs`: [`Rollouts::tick`], which moves each wave's tenants, judges the version's
//!   figures and instances, advances, completes, or moves the tenants back; `plinth up` runs it
//!   every few seconds, the rollout-driver function every minute on AWS.
//!
//! Every move is a change through `changes` (pins, the rollout's state, audit records and an
//! event, all or nothing), at most [`CHUNK`] tenants per change.

mod driver;
mod figures;
mod health;
mod plan;
mod view;

use std::sync::Arc;

use plinth_module_sdk::ModuleName;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub use driver::TICK;
pub use figures::{Figures, SETTLE, Seen, StoredFigures};
pub use health::{HealthShard, VersionHealth, Window};
pub use plan::{
    DEFAULT_BAKE_SECONDS, ThresholdOverrides, Thresholds, Wave, parse_waves, wanted, wave_order,
};
pub use view::{RolloutView, VersionFigures, WaveProgress};

use crate::audit;
use crate::cache::Stale;
use crate::changes::{Change, Changes};
use crate::clock::now;
use crate::error::{Error, Result};
use crate::events::platform_event;
use crate::identity::Caller;
use crate::ids::TenantId;
use crate::installation::Installations;
use crate::instances::Instances;
use crate::store::{
    Condition, Item, Key, Query, Store, Write, from_item, keys, query_all, to_data,
};
use crate::versions::Versions;

/// The most tenants one change moves (a pin and an audit record each, within a
/// transaction's 100 writes).
pub const CHUNK: usize = 40;

/// Where a module's active rollout is marked.
const ACTIVE: &str = "ROLLOUTS";

fn rollout_key(module: &str, id: &str) -> Key {
    Key::new(keys::module_partition(module), format!("ROLLOUT#{id}"))
}

fn active_key(module: &str) -> Key {
    Key::new(ACTIVE, format!("MODULE#{module}"))
}

/// `POST /api/v1/modules/{m}/rollouts`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutRequest {
    /// An installed version of the module, other than its default.
    pub version: String,
    /// `canary:acme,10%,50%,100%`: named tenants first, then rising shares of the module's
    /// enabled tenants.
    pub waves: String,
    /// Overrides of the default thresholds.
    #[serde(default)]
    pub thresholds: Option<ThresholdOverrides>,
    /// How long each wave is watched before the next (default 60).
    #[serde(default)]
    pub bake_seconds: Option<u64>,
}

/// Where a rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    /// Moving a wave's tenants, or watching them.
    Running,
    /// Held: tenants stay where they are, nothing is judged.
    Paused,
    /// A breach: moving the tenants back (then `rolled_back`).
    RollingBack,
    /// Aborted: moving the tenants back (then `aborted`).
    Aborting,
    /// Every wave done: making the version the default (then `completed`).
    Completing,
    RolledBack,
    Aborted,
    Completed,
}

impl RolloutState {
    /// Whether the rollout still holds its module (one active rollout per module).
    pub fn is_active(self) -> bool {
        !matches!(
            self,
            RolloutState::RolledBack | RolloutState::Aborted | RolloutState::Completed
        )
    }

    fn name(self) -> &'static str {
        match self {
            RolloutState::Running => "running",
            RolloutState::Paused => "paused",
            RolloutState::RollingBack => "rolling back",
            RolloutState::Aborting => "aborting",
            RolloutState::Completing => "completing",
            RolloutState::RolledBack => "rolled back",
            RolloutState::Aborted => "aborted",
            RolloutState::Completed => "completed",
        }
    }
}

/// A tenant the rollout moved, and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Moved {
    pub tenant_id: String,
    /// The wave that moved it (1 for the first).
    pub wave: usize,
    /// The version that served it before.
    pub previous_version: String,
    /// Its pin before (none: it followed the default, and is unpinned on the way back).
    pub previous_pin: Option<String>,
    /// Moved back (a rollback or an abort).
    #[serde(default)]
    pub restored: bool,
}

/// A tenant a wave left where it was, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Skipped {
    pub tenant_id: String,
    pub reason: String,
}

/// The module's instances of the version, as the health checker last found them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstancesSeen {
    pub healthy: usize,
    /// Unhealthy for longer than [`driver::STARTING_GRACE`]: a breach.
    pub unhealthy: usize,
    /// Not healthy yet, or not for long: a backend (re)starting — after its deploy, or after
    /// `plinth up` started again. Judged once the grace is over; no wave advances meanwhile
    /// unless another instance is healthy.
    #[serde(default)]
    pub starting: usize,
}

/// A rollout as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Rollout {
    id: String,
    module: String,
    version: String,
    /// The module's default version when the rollout started.
    from_version: String,
    waves: Vec<Wave>,
    thresholds: Thresholds,
    bake_seconds: u64,
    state: RolloutState,
    /// The wave being moved or watched (0 for the first).
    wave: usize,
    /// Unix milliseconds when the wave's tenants were all moved and its bake began.
    wave_started_ms: Option<i64>,
    /// What the gateway saw of the version during each wave (settled: it will not change).
    windows: Vec<Window>,
    /// The current wave's figures that may still grow (stored figures of the last minutes),
    /// as last read: shown and judged with its window, not added to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provisional: Option<Window>,
    /// Where the driver's [`Figures`] left off in the current wave (theirs to read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    figures_cursor: Option<i64>,
    instances: Option<InstancesSeen>,
    moved: Vec<Moved>,
    #[serde(default)]
    skipped: Vec<Skipped>,
    reason: Option<String>,
    started_by: String,
    started_at: String,
    updated_at: String,
    finished_at: Option<String>,
}

impl Rollout {
    /// What was seen of the version during wave `at`: its window, with what may still grow
    /// when it is the current one.
    fn figures_of(&self, at: usize) -> Window {
        let mut window = self.windows.get(at).cloned().unwrap_or_default();
        if at == self.wave
            && let Some(provisional) = &self.provisional
        {
            window.merge(provisional);
        }
        window
    }

    /// The current wave's figures start again: from its bake's (new) start.
    fn restart_figures(&mut self, figures: &dyn Figures) {
        figures.discard(&self.module, &self.version);
        self.provisional = None;
        self.figures_cursor = None;
    }

    /// Who the driver's changes are made by.
    fn actor(&self) -> String {
        format!("rollout:{}", self.id)
    }

    fn event(&self, detail_type: &str, extra: serde_json::Value) -> crate::events::Event {
        let mut payload = json!({
            "module": self.module, "rollout_id": self.id, "version": self.version,
            "wave": self.wave + 1, "state": self.state,
        });
        if let (Some(payload), serde_json::Value::Object(extra)) = (payload.as_object_mut(), extra)
        {
            payload.extend(extra);
        }
        platform_event(detail_type, payload)
    }
}

/// A stored rollout and the item version it was read at.
type Read = (Rollout, u64);

/// Staged rollouts: started, listed, paused, resumed and aborted here; driven by
/// [`Rollouts::tick`].
#[derive(Debug)]
pub struct Rollouts {
    store: Arc<dyn Store>,
    changes: Arc<Changes>,
    installations: Arc<Installations>,
    instances: Arc<Instances>,
    versions: Arc<Versions>,
    /// Where the gateway of this process counts (one machine).
    health: Arc<VersionHealth>,
    /// Where the driver reads the figures it judges.
    figures: Arc<dyn Figures>,
}

impl Rollouts {
    pub fn new(
        store: Arc<dyn Store>,
        changes: Arc<Changes>,
        installations: Arc<Installations>,
        instances: Arc<Instances>,
        versions: Arc<Versions>,
    ) -> Self {
        let health = Arc::new(VersionHealth::default());
        Self {
            store,
            changes,
            installations,
            instances,
            versions,
            figures: Arc::clone(&health) as Arc<dyn Figures>,
            health,
        }
    }

    /// The same rollouts, judged on the figures stored per (module, version, minute) by the
    /// usage function from the access log ([`StoredFigures`]) instead of what this process's
    /// gateway counted: the driver on AWS, where no gateway process sees the requests.
    #[must_use]
    pub fn judged_on_stored_figures(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            changes: Arc::clone(&self.changes),
            installations: Arc::clone(&self.installations),
            instances: Arc::clone(&self.instances),
            versions: Arc::clone(&self.versions),
            health: Arc::clone(&self.health),
            figures: Arc::new(StoredFigures::new(Arc::clone(&self.store))),
        }
    }

    /// Where the gateway counts each version's requests for the driver.
    pub fn health(&self) -> &Arc<VersionHealth> {
        &self.health
    }

    /// Starts a rollout of `module` to an installed `version` (platform admins): 422 naming
    /// the field for bad waves, thresholds or version, 409 while another is active. Its first
    /// wave moves at the driver's next tick.
    pub async fn start(
        &self,
        caller: &Caller,
        module: &ModuleName,
        request: RolloutRequest,
    ) -> Result<RolloutView> {
        caller.require_platform_admin()?;
        let listed = self.versions.list(caller, module).await?;
        let waves = parse_waves(&request.waves)?;
        let thresholds = request.thresholds.unwrap_or_default().applied()?;
        let bake_seconds = plan::bake_seconds(request.bake_seconds)?;
        let version = semver::Version::parse(&request.version)
            .map_err(|e| {
                Error::field(
                    "version",
                    format!("`{}` is not a semantic version: {e}", request.version),
                )
            })?
            .to_string();
        if !listed.versions.iter().any(|v| v.version == version) {
            let names: Vec<&str> = listed.versions.iter().map(|v| v.version.as_str()).collect();
            return Err(Error::field(
                "version",
                format!(
                    "{module} {version} is not installed (installed: {}); install it alongside first",
                    names.join(", ")
                ),
            ));
        }
        if listed.default_version == version {
            return Err(Error::field(
                "version",
                format!(
                    "{module} {version} is already the default version: every tenant without a pin is on it"
                ),
            ));
        }
        let manifest = self.manifest_of(module, &version).await?;
        let enabled = self.enabled_tenants(module).await?;
        for wave in &waves {
            let Wave::Tenants { tenants, .. } = wave else {
                continue;
            };
            for tenant in tenants {
                if !enabled.contains(tenant) {
                    return Err(Error::field(
                        "waves",
                        format!("tenant {tenant} does not have {module} enabled"),
                    ));
                }
                let id = TenantId::parse_field("waves", tenant)?;
                self.versions.check_fits(&id, &manifest).await?;
            }
        }
        if let Some(active) = self.store.get(&active_key(module.as_str())).await? {
            let id = active
                .data
                .get("id")
                .and_then(|v| v.as_str())
                .unwrap_or("?");
            return Err(Error::Conflict(format!(
                "rollout {id} of {module} is still active; let it finish, or abort it first"
            )));
        }
        let rollout = Rollout {
            id: uuid::Uuid::now_v7().to_string(),
            module: module.to_string(),
            version,
            from_version: listed.default_version,
            windows: vec![Window::default(); waves.len()],
            provisional: None,
            figures_cursor: None,
            waves,
            thresholds,
            bake_seconds,
            state: RolloutState::Running,
            wave: 0,
            wave_started_ms: None,
            instances: None,
            moved: Vec::new(),
            skipped: Vec::new(),
            reason: None,
            started_by: caller.actor(),
            started_at: now(),
            updated_at: now(),
            finished_at: None,
        };
        let labels: Vec<String> = rollout.waves.iter().map(Wave::label).collect();
        let payload = json!({"waves": labels, "from_version": rollout.from_version,
                             "thresholds": rollout.thresholds, "bake_seconds": bake_seconds});
        let writes = vec![
            Write::Put {
                item: Item::new(
                    active_key(module.as_str()),
                    to_data(&json!({"module": module, "id": rollout.id})),
                ),
                condition: Condition::Absent,
            },
            Write::Put {
                item: Item::new(rollout_key(module.as_str(), &rollout.id), to_data(&rollout)),
                condition: Condition::Absent,
            },
            audit::record(
                audit::PLATFORM_SCOPE,
                &caller.actor(),
                "module.rollout.started",
                &format!("module:{module}"),
                rollout.event("", payload.clone()).detail.into(),
            ),
        ];
        self.changes
            .commit(
                Change::new(writes)
                    .events([rollout.event("module.rollout.started", payload)])
                    .stale(Stale::Module(module.to_string()))
                    .on_conflict(format!(
                        "another rollout of {module} started at the same time"
                    )),
            )
            .await?;
        Ok(rollout.view())
    }

    /// The rollouts of `module`, oldest first (platform admins).
    pub async fn list(&self, caller: &Caller, module: &ModuleName) -> Result<Vec<RolloutView>> {
        caller.require_platform_admin()?;
        let query = Query::prefix(keys::module_partition(module.as_str()), "ROLLOUT#");
        let items = query_all(self.store.as_ref(), &query).await?;
        items
            .iter()
            .map(|item| from_item::<Rollout>(item).map(|r| r.view()))
            .collect()
    }

    /// One rollout (platform admins); 404 when `module` has none by that id.
    pub async fn show(
        &self,
        caller: &Caller,
        module: &ModuleName,
        id: &str,
    ) -> Result<RolloutView> {
        caller.require_platform_admin()?;
        Ok(self.read(module.as_str(), id).await?.0.view())
    }

    /// Holds a running rollout: its tenants stay where they are, and nothing is judged until
    /// it is resumed. 409 unless it is running.
    pub async fn pause(
        &self,
        caller: &Caller,
        module: &ModuleName,
        id: &str,
    ) -> Result<RolloutView> {
        let (mut rollout, version) = self
            .in_state(caller, module, id, &[RolloutState::Running], "paused")
            .await?;
        rollout.state = RolloutState::Paused;
        let event = rollout.event("module.rollout.paused", json!({}));
        self.commit_state(caller, &rollout, version, event).await?;
        Ok(rollout.view())
    }

    /// Resumes a paused rollout; the current wave's bake starts again. 409 unless paused.
    pub async fn resume(
        &self,
        caller: &Caller,
        module: &ModuleName,
        id: &str,
    ) -> Result<RolloutView> {
        let (mut rollout, version) = self
            .in_state(caller, module, id, &[RolloutState::Paused], "resumed")
            .await?;
        rollout.state = RolloutState::Running;
        if rollout.wave_started_ms.is_some() {
            rollout.wave_started_ms = Some(now_ms());
        }
        // What was counted while paused is not the resumed wave's.
        rollout.restart_figures(self.figures.as_ref());
        let event = rollout.event("module.rollout.resumed", json!({}));
        self.commit_state(caller, &rollout, version, event).await?;
        Ok(rollout.view())
    }

    /// Stops a running or paused rollout and moves its tenants back. 409 once it has ended.
    pub async fn abort(
        &self,
        caller: &Caller,
        module: &ModuleName,
        id: &str,
    ) -> Result<RolloutView> {
        let allowed = [RolloutState::Running, RolloutState::Paused];
        let (mut rollout, version) = self
            .in_state(caller, module, id, &allowed, "aborted")
            .await?;
        rollout.state = RolloutState::Aborting;
        rollout.reason = Some(format!("aborted by {}", caller.actor()));
        let (rollout, version) = self.save(rollout, version, None).await?;
        let (rollout, _) = self.unwind(rollout, version).await?;
        Ok(rollout.view())
    }

    /// The rollout a platform admin changes by hand, if it is in one of `allowed`; 409 naming
    /// its state (it cannot be `verb`) otherwise.
    async fn in_state(
        &self,
        caller: &Caller,
        module: &ModuleName,
        id: &str,
        allowed: &[RolloutState],
        verb: &str,
    ) -> Result<Read> {
        caller.require_platform_admin()?;
        let (rollout, version) = self.read(module.as_str(), id).await?;
        if !allowed.contains(&rollout.state) {
            return Err(not_now(&rollout, verb));
        }
        Ok((rollout, version))
    }

    async fn read(&self, module: &str, id: &str) -> Result<Read> {
        let item = self
            .store
            .get(&rollout_key(module, id))
            .await?
            .ok_or_else(|| Error::NotFound(format!("{module} has no rollout {id}")))?;
        Ok((from_item(&item)?, item.version))
    }

    /// Writes a state change a person made: the rollout, its audit record, its event.
    async fn commit_state(
        &self,
        caller: &Caller,
        rollout: &Rollout,
        version: u64,
        event: crate::events::Event,
    ) -> Result<()> {
        let writes = vec![
            put(rollout, version),
            audit::record(
                audit::PLATFORM_SCOPE,
                &caller.actor(),
                &event.detail_type,
                &format!("module:{}", rollout.module),
                event.detail.clone().into(),
            ),
        ];
        self.changes
            .commit(
                Change::new(writes)
                    .events([event])
                    .stale(Stale::Module(rollout.module.clone()))
                    .on_conflict(format!(
                        "rollout {} changed meanwhile; look again",
                        rollout.id
                    )),
            )
            .await
    }

    /// Writes the rollout alone (with an event, when given): its state as the driver moves it.
    async fn save(
        &self,
        mut rollout: Rollout,
        version: u64,
        event: Option<crate::events::Event>,
    ) -> Result<Read> {
        rollout.updated_at = now();
        let mut change = Change::new(vec![put(&rollout, version)])
            .stale(Stale::Module(rollout.module.clone()))
            .on_conflict(format!(
                "rollout {} changed meanwhile; look again",
                rollout.id
            ));
        if let Some(event) = event {
            change = change.events([event]);
        }
        self.changes.commit(change).await?;
        Ok((rollout, version + 1))
    }

    /// The manifest of an installed `version`.
    async fn manifest_of(
        &self,
        module: &ModuleName,
        version: &str,
    ) -> Result<plinth_module_sdk::Manifest> {
        self.installations
            .serving(module, version)
            .await?
            .and_then(|i| i.serving_manifest())
            .unwrap_or_else(|| {
                Err(Error::NotFound(format!(
                    "{module} {version} is not installed"
                )))
            })
    }

    /// The tenants that have `module` enabled, in no particular order.
    async fn enabled_tenants(&self, module: &ModuleName) -> Result<Vec<String>> {
        let listed = query_all(self.store.as_ref(), &Query::partition(keys::TENANTS)).await?;
        let tenants: Vec<crate::tenancy::Tenant> =
            listed.iter().map(from_item).collect::<Result<_>>()?;
        let mut enabled = Vec::new();
        for chunk in tenants.chunks(100) {
            let wanted: Vec<Key> = chunk
                .iter()
                .map(|t| keys::tenant_module(t.id.as_str(), module.as_str()))
                .collect();
            for item in self.store.batch_get(&wanted).await? {
                let row: crate::config::TenantModule = from_item(&item)?;
                if row.enabled {
                    enabled.push(row.tenant_id);
                }
            }
        }
        Ok(enabled)
    }
}

/// Now, in Unix milliseconds: a bake of a second must last a second, not what is left of
/// the current one.
fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

/// When a bake that began at `started` (ms) ends (ms).
fn bake_ends_ms(started: i64, bake_seconds: u64) -> i64 {
    started.saturating_add_unsigned(bake_seconds.saturating_mul(1000))
}

/// The rollout's item on the version it was read at.
fn put(rollout: &Rollout, version: u64) -> Write {
    let key = rollout_key(&rollout.module, &rollout.id);
    let item = Item {
        key,
        version,
        data: Default::default(),
        expires_at: None,
    };
    let (item, condition) = item.next(to_data(rollout));
    Write::Put { item, condition }
}

fn not_now(rollout: &Rollout, what: &str) -> Error {
    Error::Conflict(format!(
        "rollout {} of {} is {}: it cannot be {what}",
        rollout.id,
        rollout.module,
        rollout.state.name()
    ))
}
