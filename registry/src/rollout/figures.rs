//! [`Figures`]: where the driver reads what was seen of a version — the port between
//! [`Rollouts::tick`](super::Rollouts::tick) and what counted the version's requests.
//!
//! - [`VersionHealth`]: one machine, what the gateway counted in memory; read once, it is
//!   gone, so every figure is settled the moment it is read;
//! - [`StoredFigures`]: AWS, the (module, version, minute) figures the usage function counts
//!   from the access log into the store. CloudWatch Logs delivers a minute's lines over
//!   seconds to a minute, so a minute is read again at every step until it is
//!   [`SETTLE`] old; only then is it added to the wave's stored window, and the rollout's
//!   cursor moves past it — read twice, never counted twice.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::health::{VersionHealth, Window};
use crate::error::Result;
use crate::store::Store;
use crate::usage::{MINUTE_MS, MinuteFigures, version_minutes};

/// How old a stored minute is before no more of its lines are awaited: the access log's
/// delivery (seconds to a minute) with a wide margin.
pub const SETTLE: Duration = Duration::from_secs(5 * 60);

/// What a step of the driver read of a version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    /// Figures that will not change: added to the wave's window for good.
    pub settled: Window,
    /// Figures that may still grow (a minute whose lines may still be delivered): judged with
    /// the window, read again at the next step.
    pub provisional: Window,
}

/// Where the driver reads what was seen of a version.
#[async_trait]
pub trait Figures: std::fmt::Debug + Send + Sync {
    /// What was seen of `version` of `module` since `cursor` — none: since `since_ms`, when the
    /// wave's bake began (Unix ms) — at `now_ms`; moves `cursor` past what it settled. The
    /// cursor is the source's own mark, kept with the rollout between steps.
    async fn seen(
        &self,
        module: &str,
        version: &str,
        since_ms: i64,
        now_ms: i64,
        cursor: &mut Option<i64>,
    ) -> Result<Seen>;

    /// Forgets what was counted in memory and not read yet (a wave's bake begins; a paused
    /// rollout judges nothing). Stored figures are left where they are: the cursor skips them.
    fn discard(&self, _module: &str, _version: &str) {}
}

#[async_trait]
impl Figures for VersionHealth {
    async fn seen(
        &self,
        module: &str,
        version: &str,
        _since_ms: i64,
        _now_ms: i64,
        _cursor: &mut Option<i64>,
    ) -> Result<Seen> {
        Ok(Seen {
            settled: self.take(module, version),
            provisional: Window::default(),
        })
    }

    fn discard(&self, module: &str, version: &str) {
        self.take(module, version);
    }
}

/// The figures the usage function stored per (module, version, minute) from the HTTP API's
/// access log (AWS). The cursor is the first minute not settled yet.
#[derive(Debug)]
pub struct StoredFigures {
    store: Arc<dyn Store>,
}

impl StoredFigures {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl Figures for StoredFigures {
    async fn seen(
        &self,
        module: &str,
        version: &str,
        since_ms: i64,
        now_ms: i64,
        cursor: &mut Option<i64>,
    ) -> Result<Seen> {
        let from = cursor.unwrap_or_else(|| since_ms.div_euclid(MINUTE_MS));
        let settle_ms = i64::try_from(SETTLE.as_millis()).unwrap_or(i64::MAX);
        // Minutes before this one have had their lines delivered.
        let settled_before = now_ms.saturating_sub(settle_ms).div_euclid(MINUTE_MS);
        let mut seen = Seen::default();
        for (minute, figures) in version_minutes(self.store.as_ref(), module, version, from).await?
        {
            let window = window(figures);
            if minute < settled_before {
                seen.settled.merge(&window);
            } else {
                seen.provisional.merge(&window);
            }
        }
        *cursor = Some(from.max(settled_before));
        Ok(seen)
    }
}

fn window(figures: MinuteFigures) -> Window {
    Window {
        requests: figures.requests,
        errors_5xx: figures.errors_5xx,
        latency: figures.latency,
    }
}
