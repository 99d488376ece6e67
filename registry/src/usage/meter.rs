//! [`Meter`]: usage counted where it happens, in memory, until the next flush.
//!
//! Each gateway thread counts into a [`Shard`] of its own (`Meter::shard`): a request takes
//! that shard's lock, which nothing else holds but a flush every few seconds, so counting
//! never waits for another request and never reaches the store. Events (published through the
//! API, delivered by the bus) count into the meter's shared shard. [`Meter::take`] empties
//! every shard for a flush.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use foldhash::HashMap;
use serde::{Deserialize, Serialize};

use super::sketch::LatencySketch;

/// Seconds in an hour: usage is kept per hour (a day is the sum of its hours).
pub const HOUR: i64 = 3600;

/// What one (tenant, module, hour) counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub requests: u64,
    /// Answered 4xx (by the module, or by the gateway once it had let the request through).
    pub errors_4xx: u64,
    /// Answered 5xx, the gateway's own 502 and 504 included.
    pub errors_5xx: u64,
    /// Request bodies' bytes, as the client sent them.
    pub request_bytes: u64,
    /// Response bodies' bytes, as the backend sent them.
    pub response_bytes: u64,
    pub events_published: u64,
    pub events_delivered: u64,
    /// Each request's time in the gateway, from its head read to its response passed on.
    pub latency: LatencySketch,
}

impl Counts {
    /// Adds `other`'s figures to these.
    pub fn merge(&mut self, other: &Counts) {
        self.requests += other.requests;
        self.errors_4xx += other.errors_4xx;
        self.errors_5xx += other.errors_5xx;
        self.request_bytes += other.request_bytes;
        self.response_bytes += other.response_bytes;
        self.events_published += other.events_published;
        self.events_delivered += other.events_delivered;
        self.latency.merge(&other.latency);
    }

    pub(crate) fn served(&mut self, served: &Served) {
        self.requests += 1;
        match served.status {
            400..=499 => self.errors_4xx += 1,
            500..=599 => self.errors_5xx += 1,
            _ => {}
        }
        self.request_bytes += served.request_bytes;
        self.response_bytes += served.response_bytes;
        self.latency
            .record(u64::try_from(served.latency.as_micros()).unwrap_or(u64::MAX));
    }
}

/// One module request the gateway let through, as it ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Served {
    /// The status the client got (the backend's, or the gateway's 502/504).
    pub status: u16,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub latency: Duration,
}

/// Where a count goes: a tenant's use of a module in one hour (Unix seconds / [`HOUR`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UsageKey {
    pub tenant: String,
    pub module: String,
    pub hour: i64,
}

/// tenant → module → counts, for one hour; looked up by `&str` (foldhash: the names are the
/// platform's, not an attacker's choice of keys), so counting allocates only for a tenant's or
/// module's first request of the hour.
type ByTenant = HashMap<String, HashMap<String, Counts>>;

/// One thread's counts since the last flush.
#[derive(Debug, Default)]
pub struct Shard {
    hours: Mutex<Vec<(i64, ByTenant)>>,
}

impl Shard {
    /// Counts a request `tenant` made to `module`.
    pub fn served(&self, tenant: &str, module: &str, served: &Served) {
        self.with(tenant, module, |counts| counts.served(served));
    }

    /// Counts an event `module` published about `tenant`.
    pub fn published(&self, tenant: &str, module: &str) {
        self.with(tenant, module, |counts| counts.events_published += 1);
    }

    /// Counts an event about `tenant` delivered to `module`.
    pub fn delivered(&self, tenant: &str, module: &str) {
        self.with(tenant, module, |counts| counts.events_delivered += 1);
    }

    fn with(&self, tenant: &str, module: &str, count: impl FnOnce(&mut Counts)) {
        let hour = current_hour();
        let mut hours = self.hours.lock().unwrap_or_else(PoisonError::into_inner);
        let at = match hours.iter().position(|(h, _)| *h == hour) {
            Some(at) => at,
            None => {
                hours.push((hour, ByTenant::default()));
                hours.len() - 1
            }
        };
        let tenants = &mut hours[at].1;
        // The usual case, a tenant and module already counted this hour: two lookups.
        if let Some(counts) = tenants.get_mut(tenant).and_then(|m| m.get_mut(module)) {
            count(counts);
            return;
        }
        let modules = tenants.entry(tenant.to_owned()).or_default();
        count(modules.entry(module.to_owned()).or_default());
    }

    fn drain_into(&self, into: &mut BTreeMap<UsageKey, Counts>) {
        let hours = std::mem::take(&mut *self.hours.lock().unwrap_or_else(PoisonError::into_inner));
        for (hour, tenants) in hours {
            for (tenant, modules) in tenants {
                for (module, counts) in modules {
                    let key = UsageKey {
                        tenant: tenant.clone(),
                        module,
                        hour,
                    };
                    into.entry(key).or_default().merge(&counts);
                }
            }
        }
    }
}

fn current_hour() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64 / HOUR)
}

/// Every shard handed out, and the shared one.
#[derive(Debug, Default)]
pub struct Meter {
    shards: Mutex<Vec<Arc<Shard>>>,
    shared: Arc<Shard>,
}

impl Meter {
    /// A shard of its own, for one thread (a gateway thread takes one as it starts).
    pub fn shard(&self) -> Arc<Shard> {
        let shard = Arc::new(Shard::default());
        self.shards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&shard));
        shard
    }

    /// The shard everything but the gateway threads counts into (events).
    pub fn shared(&self) -> &Shard {
        &self.shared
    }

    /// Everything counted since the last call, summed over the shards.
    pub fn take(&self) -> BTreeMap<UsageKey, Counts> {
        let mut taken = BTreeMap::new();
        self.shared.drain_into(&mut taken);
        let shards = self
            .shards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for shard in shards {
            shard.drain_into(&mut taken);
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_every_shard_add_up_per_tenant_and_module() {
        let meter = Meter::default();
        let (one, two) = (meter.shard(), meter.shard());
        let ok = Served {
            status: 200,
            request_bytes: 10,
            response_bytes: 100,
            latency: Duration::from_millis(2),
        };
        one.served("acme", "financial", &ok);
        two.served("acme", "financial", &Served { status: 503, ..ok });
        two.served("acme", "financial", &Served { status: 404, ..ok });
        one.served("globex", "financial", &ok);
        meter.shared().published("acme", "financial");
        meter.shared().delivered("acme", "warehouse");
        let taken = meter.take();
        let acme: Vec<_> = taken
            .iter()
            .filter(|(k, _)| k.tenant == "acme" && k.module == "financial")
            .collect();
        assert_eq!(acme.len(), 1);
        let counts = acme[0].1;
        assert_eq!(
            (counts.requests, counts.errors_4xx, counts.errors_5xx),
            (3, 1, 1)
        );
        assert_eq!((counts.request_bytes, counts.response_bytes), (30, 300));
        assert_eq!(counts.events_published, 1);
        assert_eq!(counts.latency.count(), 3);
        assert_eq!(taken.len(), 3);
        assert!(meter.take().is_empty(), "a flush empties the shards");
    }
}
