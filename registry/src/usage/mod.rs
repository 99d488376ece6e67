//! Usage metering: what each tenant used of each module, per hour — requests, 4xx and 5xx
//! answers, latency percentiles, request and response bytes, events published and delivered
//! — and what it costs (docs/operations.md).
//!
//! - [`Meter`] (`meter.rs`): counted where it happens, in memory — each gateway thread in a
//!   shard of its own, so counting a request takes no lock another request holds and reaches
//!   no store;
//! - [`Usage::flush`]: what the meter holds, added to the stored hours in one write per
//!   (tenant, module, hour) — every few seconds and when the platform stops, so a crash loses
//!   at most one flush interval's counts;
//! - [`LatencySketch`] (`sketch.rs`): latencies in fixed logarithmic buckets that add up
//!   across threads, flushes and hours, each percentile within 1 %;
//! - [`version_minutes`] (`by_version.rs`): on AWS, each version's requests, 5xx and latency
//!   per minute, counted from the access log with the rest of a batch, for the rollout driver;
//! - [`Usage::report`] (`report.rs`): a period's figures by hour or day, per tenant, with the
//!   bill estimate of the tenant's tier ([`Prices`], `prices.rs`).
//!
//! A flush adds to counters with versioned writes of its own, not through `changes`: it is no
//! change anyone audits, and it makes nothing cached stale.

mod by_version;
mod ingest;
mod meter;
mod prices;
mod report;
mod sketch;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use by_version::{
    MINUTE_MS, MinuteFigures, VersionMinute, version_minute_counts, version_minutes,
};
pub use ingest::{
    AccessLogLine, BatchCounts, Subscriber, access_log_counts, event_counts, subscribers,
};
pub use meter::{Counts, HOUR, Meter, Served, Shard, UsageKey};
pub use prices::{Bill, Prices, TierPrices};
pub use report::{
    CSV_HEADER, Figures, Granularity, Latency, Period, Row, TenantUsage, UsageReport, hour_text,
};
pub use sketch::{LatencySketch, RELATIVE_ERROR};

use crate::error::Result;
use crate::store::{Key, Query, Store, StoreError, from_item, query_all};
use crate::tenancy::Tenant;

/// How often `plinth up` flushes usage to the store unless `PLINTH_USAGE_FLUSH_SECS` says: the
/// most a crash loses.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(10);

/// How many times a flush reads and writes one hour again after losing a race.
const WRITE_ATTEMPTS: usize = 5;

/// The stored hour: `PK=USAGE#{t} SK=HOUR#{yyyy-mm-ddThh}#{m}` (one partition per tenant, its
/// hours in time order).
fn key(usage: &UsageKey) -> Key {
    Key::new(
        partition(&usage.tenant),
        format!("HOUR#{}#{}", hour_sort_key(usage.hour), usage.module),
    )
}

fn partition(tenant: &str) -> String {
    format!("USAGE#{tenant}")
}

/// `2026-12-07T08`: sorts as time does.
fn hour_sort_key(hour: i64) -> String {
    hour_text(hour).get(..13).unwrap_or_default().to_owned()
}

/// One (tenant, module, hour) as stored.
#[derive(Debug, Serialize, Deserialize)]
struct StoredHour {
    tenant: String,
    module: String,
    /// Hours since the Unix epoch.
    hour: i64,
    #[serde(flatten)]
    counts: Counts,
}

/// Usage: the meter, its flushes, and the reports.
#[derive(Debug)]
pub struct Usage {
    store: Arc<dyn Store>,
    meter: Arc<Meter>,
    prices: Prices,
    /// Counts taken from the meter and not yet written (a failed flush keeps them).
    unwritten: tokio::sync::Mutex<BTreeMap<UsageKey, Counts>>,
}

impl Usage {
    pub fn new(store: Arc<dyn Store>, prices: Prices) -> Self {
        Self {
            store,
            meter: Arc::default(),
            prices,
            unwritten: tokio::sync::Mutex::default(),
        }
    }

    /// Where usage is counted until the next flush.
    pub fn meter(&self) -> &Arc<Meter> {
        &self.meter
    }

    pub fn prices(&self) -> &Prices {
        &self.prices
    }

    /// Adds everything counted since the last flush to the stored hours; returns how many
    /// (tenant, module, hour) records it wrote. What cannot be written now (the store is
    /// unavailable) stays for the next flush.
    pub async fn flush(&self) -> Result<usize> {
        let mut unwritten = self.unwritten.lock().await;
        for (key, counts) in self.meter.take() {
            unwritten.entry(key).or_default().merge(&counts);
        }
        let mut written = 0;
        while let Some((key, counts)) = unwritten.pop_first() {
            if let Err(e) = self.add(&key, &counts).await {
                unwritten.insert(key, counts);
                return Err(e.into());
            }
            written += 1;
        }
        Ok(written)
    }

    /// Adds `counts` to the stored hour: read, add, write on the version read (again when
    /// another process wrote meanwhile).
    async fn add(&self, usage: &UsageKey, counts: &Counts) -> std::result::Result<(), StoreError> {
        let key = key(usage);
        let mut last = None;
        for _ in 0..WRITE_ATTEMPTS {
            let stored = self.store.get(&key).await?;
            let (item, condition) = ingest::added(usage, stored.as_ref(), counts)?;
            match self.store.put(item, condition).await {
                Err(e) if e.is_conflict() => last = Some(e),
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| StoreError::Unavailable("usage flush".into())))
    }

    /// Flushes every `every` until the process ends (`plinth up`; the last flush is the
    /// caller's, when it stops).
    pub async fn run_flusher(self: Arc<Self>, every: Duration) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            if let Err(error) = self.flush().await {
                tracing::warn!(error = %error.chain(), "usage not flushed; kept for the next flush");
            }
        }
    }

    /// The stored usage of `tenants` over `period`, only `module`'s when given, each tenant
    /// with its bill at its tier's prices.
    pub async fn report(
        &self,
        tenants: &[Tenant],
        period: &Period,
        module: Option<&str>,
    ) -> Result<UsageReport> {
        let mut answer = Vec::with_capacity(tenants.len());
        for tenant in tenants {
            let hours = self.hours(tenant.id.as_str(), period, module).await?;
            let (rows, total) = report::rows(&hours, period.granularity);
            answer.push(TenantUsage {
                tenant: tenant.id.to_string(),
                tier: tenant.subscription_tier.to_string(),
                rows,
                total: Figures::from(&total),
                bill: self.prices.bill(tenant.subscription_tier, &total),
            });
        }
        Ok(UsageReport {
            from: hour_text(period.from),
            to: hour_text(period.to),
            granularity: period.granularity,
            module: module.map(str::to_owned),
            tenants: answer,
        })
    }

    /// A tenant's stored hours in `period`: one query over its partition.
    async fn hours(
        &self,
        tenant: &str,
        period: &Period,
        module: Option<&str>,
    ) -> Result<Vec<(i64, String, Counts)>> {
        if period.from >= period.to {
            return Ok(Vec::new());
        }
        let query = Query::between(
            partition(tenant),
            format!("HOUR#{}", hour_sort_key(period.from)),
            // `~` sorts after every character of a module name.
            format!("HOUR#{}#~", hour_sort_key(period.to - 1)),
        );
        let mut hours = Vec::new();
        for item in query_all(&*self.store, &query).await? {
            let hour: StoredHour = from_item(&item)?;
            if module.is_none_or(|m| m == hour.module) {
                hours.push((hour.hour, hour.module, hour.counts));
            }
        }
        Ok(hours)
    }
}
