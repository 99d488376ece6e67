//! [`VersionHealth`]: what the gateway saw of each (module, version), in memory, for the
//! rollout driver to read.
//!
//! Like the usage [`Meter`](crate::usage::Meter), each gateway thread counts into a shard of
//! its own (`VersionHealth::shard`), whose lock nothing else takes but the driver's read every
//! few seconds: counting a request reaches no store and waits for no other request. The
//! driver [`take`](VersionHealth::take)s a version's figures (they are emptied), adding them to
//! the window of the wave it watches.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use foldhash::HashMap;
use serde::{Deserialize, Serialize};

use crate::usage::LatencySketch;

/// Requests, 5xx answers and latencies of one version over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub requests: u64,
    /// Answered 5xx, the gateway's own 502 and 504 included.
    pub errors_5xx: u64,
    /// Each request's time through the gateway.
    #[serde(default)]
    pub latency: LatencySketch,
}

impl Window {
    /// Adds `other`'s figures to these.
    pub fn merge(&mut self, other: &Window) {
        self.requests += other.requests;
        self.errors_5xx += other.errors_5xx;
        self.latency.merge(&other.latency);
    }

    /// The share of requests answered 5xx (0 without requests).
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors_5xx as f64 / self.requests as f64
        }
    }

    /// The 95th percentile of latency, in milliseconds (none without requests).
    pub fn p95_ms(&self) -> Option<f64> {
        self.latency.quantile(0.95).map(|micros| micros / 1000.0)
    }

    fn served(&mut self, status: u16, latency: Duration) {
        self.requests += 1;
        if (500..=599).contains(&status) {
            self.errors_5xx += 1;
        }
        self.latency
            .record(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }
}

/// module → version → window; looked up by `&str`, so counting allocates only for a
/// version's first request since the driver last read it.
type ByModule = HashMap<String, HashMap<String, Window>>;

/// One gateway thread's figures since the driver last read them.
#[derive(Debug, Default)]
pub struct HealthShard {
    modules: Mutex<ByModule>,
}

impl HealthShard {
    /// Counts a request to `version` of `module` that ended with `status` after `latency`.
    pub fn served(&self, module: &str, version: &str, status: u16, latency: Duration) {
        let mut modules = self.modules.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(window) = modules.get_mut(module).and_then(|v| v.get_mut(version)) {
            window.served(status, latency);
            return;
        }
        let versions = modules.entry(module.to_owned()).or_default();
        versions
            .entry(version.to_owned())
            .or_default()
            .served(status, latency);
    }

    fn take_into(&self, module: &str, version: &str, into: &mut Window) {
        let mut modules = self.modules.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(window) = modules.get_mut(module).and_then(|v| v.remove(version)) {
            into.merge(&window);
        }
    }
}

/// Every shard handed out.
#[derive(Debug, Default)]
pub struct VersionHealth {
    shards: Mutex<Vec<Arc<HealthShard>>>,
}

impl VersionHealth {
    /// A shard of its own, for one gateway thread.
    pub fn shard(&self) -> Arc<HealthShard> {
        let shard = Arc::new(HealthShard::default());
        self.shards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&shard));
        shard
    }

    /// What every shard counted of `version` of `module` since the last take (emptied).
    pub fn take(&self, module: &str, version: &str) -> Window {
        let shards = self
            .shards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut window = Window::default();
        for shard in shards {
            shard.take_into(module, version, &mut window);
        }
        window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_version_s_figures_add_up_over_the_shards_and_a_take_empties_them() {
        let health = VersionHealth::default();
        let (one, two) = (health.shard(), health.shard());
        let fast = Duration::from_millis(2);
        one.served("financial", "1.3.0", 200, fast);
        two.served("financial", "1.3.0", 503, Duration::from_millis(400));
        two.served("financial", "1.3.0", 404, fast);
        one.served("financial", "1.2.0", 500, fast);
        let taken = health.take("financial", "1.3.0");
        assert_eq!((taken.requests, taken.errors_5xx), (3, 1));
        assert!((taken.error_rate() - 1.0 / 3.0).abs() < 1e-9);
        assert!(taken.p95_ms().is_some_and(|p| p > 390.0), "{taken:?}");
        assert_eq!(health.take("financial", "1.3.0"), Window::default());
        assert_eq!(health.take("financial", "1.2.0").errors_5xx, 1);
    }
}
