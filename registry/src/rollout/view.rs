//! What the API shows of a rollout: its progress, wave by wave, from the stored record.

use serde::{Deserialize, Serialize};

use super::{
    InstancesSeen, Moved, Rollout, RolloutState, Skipped, Thresholds, Window, bake_ends_ms,
};

/// What `GET /api/v1/modules/{m}/rollouts/{id}` shows of one wave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WaveProgress {
    /// 1 for the first.
    pub number: usize,
    /// As written: `canary:acme`, `10%`.
    pub label: String,
    /// `pending`, `moving`, `baking`, `done`, or `stopped` (the rollout ended in it).
    pub state: String,
    /// The tenants it moved.
    pub tenants: Vec<String>,
    /// What the gateway saw of the version while it was watched.
    pub figures: VersionFigures,
}

/// A version's figures over a wave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VersionFigures {
    pub requests: u64,
    pub errors_5xx: u64,
    /// `errors_5xx / requests` (0 without requests).
    pub error_rate: f64,
    /// The 95th-percentile latency through the gateway (none without requests).
    pub p95_ms: Option<f64>,
}

impl From<&Window> for VersionFigures {
    fn from(window: &Window) -> Self {
        Self {
            requests: window.requests,
            errors_5xx: window.errors_5xx,
            error_rate: window.error_rate(),
            p95_ms: window.p95_ms(),
        }
    }
}

/// A rollout and its progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RolloutView {
    pub id: String,
    pub module: String,
    /// The version tenants move to.
    pub version: String,
    /// The module's default version when the rollout started.
    pub from_version: String,
    pub state: RolloutState,
    /// The wave being moved or watched (1 for the first).
    pub current_wave: usize,
    pub waves: Vec<WaveProgress>,
    pub thresholds: Thresholds,
    pub bake_seconds: u64,
    /// When the current wave's bake ends (running only).
    pub bake_ends_at: Option<String>,
    /// Tenants on the new version by this rollout now.
    pub tenants_moved: usize,
    pub moved: Vec<Moved>,
    pub skipped: Vec<Skipped>,
    /// The version's instances as last judged.
    pub instances: Option<InstancesSeen>,
    /// Why it stopped: the breach, or who aborted it.
    pub reason: Option<String>,
    pub started_by: String,
    pub started_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

impl Rollout {
    /// Its progress, as the API shows it.
    pub(super) fn view(&self) -> RolloutView {
        let waves = self
            .waves
            .iter()
            .enumerate()
            .map(|(at, wave)| {
                let state = match at.cmp(&self.wave) {
                    std::cmp::Ordering::Less => "done",
                    std::cmp::Ordering::Greater => "pending",
                    std::cmp::Ordering::Equal => match (self.state, self.wave_started_ms) {
                        (RolloutState::Completing | RolloutState::Completed, _) => "done",
                        (RolloutState::Running | RolloutState::Paused, None) => "moving",
                        (RolloutState::Running | RolloutState::Paused, Some(_)) => "baking",
                        _ => "stopped",
                    },
                };
                WaveProgress {
                    number: at + 1,
                    label: wave.label(),
                    state: state.to_owned(),
                    tenants: self
                        .moved
                        .iter()
                        .filter(|m| m.wave == at + 1)
                        .map(|m| m.tenant_id.clone())
                        .collect(),
                    figures: VersionFigures::from(&self.figures_of(at)),
                }
            })
            .collect();
        let bake_ends_at = match (self.state, self.wave_started_ms) {
            (RolloutState::Running, Some(started)) => {
                let ends = i128::from(bake_ends_ms(started, self.bake_seconds)) * 1_000_000;
                time::OffsetDateTime::from_unix_timestamp_nanos(ends)
                    .ok()
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
            }
            _ => None,
        };
        RolloutView {
            id: self.id.clone(),
            module: self.module.clone(),
            version: self.version.clone(),
            from_version: self.from_version.clone(),
            state: self.state,
            current_wave: self.wave + 1,
            waves,
            thresholds: self.thresholds,
            bake_seconds: self.bake_seconds,
            bake_ends_at,
            tenants_moved: self.moved.iter().filter(|m| !m.restored).count(),
            moved: self.moved.clone(),
            skipped: self.skipped.clone(),
            instances: self.instances,
            reason: self.reason.clone(),
            started_by: self.started_by.clone(),
            started_at: self.started_at.clone(),
            updated_at: self.updated_at.clone(),
            finished_at: self.finished_at.clone(),
        }
    }
}
