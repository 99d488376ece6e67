//! Usage counted on AWS, where no gateway process sees a request whole (docs/operations.md,
//! "On AWS"):
//!
//! - **requests** from the HTTP API's access log: one JSON line per request, carrying the
//!   authorizer's `tenant`, `module` and `request_bytes` beside API Gateway's status, response
//!   length and latency ([`AccessLogLine`]); CloudWatch Logs hands them to the usage function
//!   in batches;
//! - **events** from the platform's bus: a rule sends every event to the usage function, which
//!   counts it as published by the module that sent it and as delivered to each installed
//!   module whose subscription pattern matches it, as EventBridge's rules deliver it
//!   ([`event_counts`]).
//!
//! Both services deliver at least once, so each batch is counted once: its counts and a marker
//! of the batch are written in one transaction ([`Usage::record_once`]); a batch delivered
//! again finds its marker and is not counted twice.

use std::collections::BTreeMap;
use std::time::Duration;

use plinth_module_sdk::ModuleName;
use plinth_module_sdk::events::Event;
use plinth_module_sdk::events::pattern::Pattern;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::by_version::{self, MinuteFigures, StoredMinute, VersionMinute, version_minute_counts};
use super::meter::{Counts, HOUR, Served, UsageKey};
use super::{StoredHour, Usage, WRITE_ATTEMPTS, key};
use crate::installation::Installations;
use crate::store::{
    Condition, Item, Key, MAX_BATCH_GET, MAX_TRANSACTION_WRITES, StoreError, Write, from_item,
    to_data,
};

/// How long a batch's marker is kept: longer than CloudWatch Logs and EventBridge retry a
/// delivery (EventBridge: 24 hours at most).
const MARKER_LIFETIME_SECS: i64 = 2 * 24 * 3600;

/// Hours written with one marker: a transaction holds the marker and at most this many
/// hours, and their reading one batch get.
const HOURS_PER_TRANSACTION: usize = {
    let writes = MAX_TRANSACTION_WRITES - 1;
    let reads = MAX_BATCH_GET - 1;
    if writes < reads { writes } else { reads }
};

/// One line of the HTTP API's access log, in the format template.yaml gives it
/// (`PlatformApi.AccessLogSettings.Format`): every value a string, `-` when API Gateway has
/// none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogLine {
    pub tenant: String,
    pub module: String,
    /// The version the authorizer sent the request to (`$context.authorizer.version`); none
    /// in lines logged before the authorizer named it.
    pub version: Option<String>,
    pub status: u16,
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// `$context.responseLatency`: from the request's arrival to its response, in ms.
    pub latency_ms: u64,
    /// `$context.requestTimeEpoch`, in ms since the Unix epoch.
    pub at_ms: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLine {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    module: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    request_bytes: String,
    #[serde(default)]
    response_length: String,
    #[serde(default)]
    latency: String,
    #[serde(default)]
    request_time_epoch: String,
}

/// A value of the log: API Gateway writes `-` (or nothing) for what it does not have.
fn present(value: &str) -> Option<&str> {
    let value = value.trim();
    (!value.is_empty() && value != "-").then_some(value)
}

impl AccessLogLine {
    /// The line of a module request the authorizer let through; `None` for any other line (a
    /// platform route, which the registry API answers itself, or a refused request — neither is
    /// a module's usage, as on one machine), and for a line that is not the format's JSON.
    /// `logged_at_ms` (the log event's own time) stands in for a missing request time.
    #[must_use]
    pub fn parse(message: &str, logged_at_ms: i64) -> Option<Self> {
        let raw: RawLine = serde_json::from_str(message).ok()?;
        let tenant = present(&raw.tenant)?;
        let module = present(&raw.module)?;
        let number = |value: &str| present(value).and_then(|v| v.parse::<u64>().ok());
        Some(Self {
            tenant: tenant.to_owned(),
            module: module.to_owned(),
            version: present(&raw.version).map(str::to_owned),
            status: present(&raw.status)?.parse().ok()?,
            request_bytes: number(&raw.request_bytes).unwrap_or(0),
            response_bytes: number(&raw.response_length).unwrap_or(0),
            latency_ms: number(&raw.latency).unwrap_or(0),
            at_ms: present(&raw.request_time_epoch)
                .and_then(|v| v.parse().ok())
                .unwrap_or(logged_at_ms),
        })
    }
}

/// The counts of a batch of access log lines, per (tenant, module, hour of the request).
#[must_use]
pub fn access_log_counts<'a>(
    lines: impl IntoIterator<Item = &'a AccessLogLine>,
) -> BTreeMap<UsageKey, Counts> {
    let mut counts = BTreeMap::<UsageKey, Counts>::new();
    for line in lines {
        let usage = UsageKey {
            tenant: line.tenant.clone(),
            module: line.module.clone(),
            hour: line.at_ms.div_euclid(1000 * HOUR),
        };
        counts.entry(usage).or_default().served(&Served {
            status: line.status,
            request_bytes: line.request_bytes,
            response_bytes: line.response_bytes,
            latency: Duration::from_millis(line.latency_ms),
        });
    }
    counts
}

/// An installed module's subscriptions, as its rules on the bus match them.
#[derive(Debug)]
pub struct Subscriber {
    pub module: ModuleName,
    pub patterns: Vec<Pattern>,
}

/// What an event on the bus counts: published by the module that sent it (`plinth.module.{m}`;
/// the platform's own events are no module's), delivered to each subscriber one of whose
/// patterns matches it — both for the tenant it is about, in the hour it happened. An event
/// about no tenant counts nothing.
#[must_use]
pub fn event_counts(event: &Event, subscribers: &[Subscriber]) -> BTreeMap<UsageKey, Counts> {
    let mut counts = BTreeMap::<UsageKey, Counts>::new();
    let Some(tenant) = event.tenant_id() else {
        return counts;
    };
    let hour = OffsetDateTime::parse(&event.time, &Rfc3339)
        .unwrap_or_else(|_| OffsetDateTime::now_utc())
        .unix_timestamp()
        .div_euclid(HOUR);
    let at = |module: &str| UsageKey {
        tenant: tenant.to_owned(),
        module: module.to_owned(),
        hour,
    };
    if let Some(module) = event.source.strip_prefix("plinth.module.") {
        counts.entry(at(module)).or_default().events_published += 1;
    }
    let value = serde_json::to_value(event).unwrap_or_default();
    for subscriber in subscribers {
        if subscriber.patterns.iter().any(|p| p.matches(&value)) {
            let delivered = counts.entry(at(subscriber.module.as_str())).or_default();
            delivered.events_delivered += 1;
        }
    }
    counts
}

/// Every installed module's subscriptions (a query of the index, a read per installed module).
/// A subscription whose pattern does not parse is left out: the bus refused it too.
///
/// # Errors
/// The store's failure, or an installed manifest that cannot be read.
pub async fn subscribers(installations: &Installations) -> crate::error::Result<Vec<Subscriber>> {
    let mut subscribers = Vec::new();
    for module in installations.installed_index().await?.into_keys() {
        let Ok(module) = module.parse::<ModuleName>() else {
            continue;
        };
        let (manifest, _) = installations.installed_module(&module).await?;
        let patterns: Vec<_> = manifest
            .events
            .subscribes
            .iter()
            .filter_map(|s| Pattern::parse(&serde_json::Value::Object(s.pattern.clone())).ok())
            .collect();
        if !patterns.is_empty() {
            subscribers.push(Subscriber { module, patterns });
        }
    }
    Ok(subscribers)
}

fn marker_key(batch: &str) -> Key {
    Key::new(format!("USAGEBATCH#{batch}"), "BATCH")
}

/// What one batch counts: usage per (tenant, module, hour) and, from the access log, each
/// version's figures per minute for the rollout driver.
#[derive(Debug, Clone, Default)]
pub struct BatchCounts {
    pub hours: BTreeMap<UsageKey, Counts>,
    pub minutes: BTreeMap<VersionMinute, MinuteFigures>,
}

impl BatchCounts {
    /// The counts of a batch of access log lines.
    #[must_use]
    pub fn of_access_log(lines: &[AccessLogLine]) -> Self {
        Self {
            hours: access_log_counts(lines),
            minutes: version_minute_counts(lines),
        }
    }

    fn is_empty(&self) -> bool {
        self.hours.is_empty() && self.minutes.is_empty()
    }
}

/// One stored counter a batch adds to.
enum Tallied<'a> {
    Hour(&'a UsageKey, &'a Counts),
    Minute(&'a VersionMinute, &'a MinuteFigures),
}

impl Tallied<'_> {
    fn key(&self) -> Key {
        match self {
            Tallied::Hour(usage, _) => key(usage),
            Tallied::Minute(at, _) => by_version::key(at),
        }
    }

    /// The stored item with these counts added, and the condition that it is still as read.
    fn added(&self, stored: Option<&Item>) -> Result<(Item, Condition), StoreError> {
        match self {
            Tallied::Hour(usage, counts) => added(usage, stored, counts),
            Tallied::Minute(at, figures) => minute_added(at, stored, figures),
        }
    }
}

impl Usage {
    /// Adds `counts` to the stored hours unless batch `batch` was counted before; returns
    /// whether it counted them now. The counts and the batch's marker are written together, so
    /// a batch delivered again — or retried after a failure at any point — is counted exactly
    /// once (a batch of more than a transaction's hours is written in parts, each marked).
    ///
    /// # Errors
    /// The store's failure; nothing of the part being written is then counted, and a retry of
    /// the batch counts what was not.
    pub async fn record_once(
        &self,
        batch: &str,
        counts: BTreeMap<UsageKey, Counts>,
    ) -> crate::error::Result<bool> {
        let counts = BatchCounts {
            hours: counts,
            minutes: BTreeMap::new(),
        };
        self.record_batch_once(batch, &counts).await
    }

    /// [`Usage::record_once`] of a batch's hours and its versions' minutes, all under the
    /// batch's marker.
    ///
    /// # Errors
    /// As [`Usage::record_once`].
    pub async fn record_batch_once(
        &self,
        batch: &str,
        counts: &BatchCounts,
    ) -> crate::error::Result<bool> {
        if counts.is_empty() {
            return Ok(false);
        }
        let tallied: Vec<Tallied<'_>> = counts
            .hours
            .iter()
            .map(|(usage, counts)| Tallied::Hour(usage, counts))
            .chain(
                counts
                    .minutes
                    .iter()
                    .map(|(at, figures)| Tallied::Minute(at, figures)),
            )
            .collect();
        let mut counted = false;
        for (part, items) in tallied.chunks(HOURS_PER_TRANSACTION).enumerate() {
            let marker = if part == 0 {
                batch.to_owned()
            } else {
                format!("{batch}#{part}")
            };
            counted |= self.record_part(&marker, items).await?;
        }
        Ok(counted)
    }

    async fn record_part(&self, batch: &str, items: &[Tallied<'_>]) -> Result<bool, StoreError> {
        let marker = marker_key(batch);
        let mut keys = vec![marker.clone()];
        keys.extend(items.iter().map(Tallied::key));
        let mut last = None;
        for _ in 0..WRITE_ATTEMPTS {
            let stored = self.store.batch_get(&keys).await?;
            if stored.iter().any(|item| item.key == marker) {
                return Ok(false);
            }
            let expires = OffsetDateTime::now_utc().unix_timestamp() + MARKER_LIFETIME_SECS;
            let mut writes = vec![Write::Put {
                item: Item::new(marker.clone(), serde_json::Map::new()).expiring_at(expires),
                condition: Condition::Absent,
            }];
            for tallied in items {
                let key = tallied.key();
                let (item, condition) =
                    tallied.added(stored.iter().find(|item| item.key == key))?;
                writes.push(Write::Put { item, condition });
            }
            match self.store.transact(writes).await {
                Ok(()) => return Ok(true),
                Err(e) if e.is_conflict() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| StoreError::Unavailable("usage batch".into())))
    }
}

/// The stored hour with `counts` added — a new item if none is stored — and the condition that
/// it is still what was read.
pub(super) fn added(
    usage: &UsageKey,
    stored: Option<&Item>,
    counts: &Counts,
) -> Result<(Item, Condition), StoreError> {
    match stored {
        None => {
            let hour = StoredHour {
                tenant: usage.tenant.clone(),
                module: usage.module.clone(),
                hour: usage.hour,
                counts: counts.clone(),
            };
            Ok((Item::new(key(usage), to_data(&hour)), Condition::Absent))
        }
        Some(item) => {
            let mut hour: StoredHour = from_item(item).map_err(|e| StoreError::Corrupt {
                key: item.key.clone(),
                reason: e.to_string(),
            })?;
            hour.counts.merge(counts);
            Ok(item.next(to_data(&hour)))
        }
    }
}

/// The stored minute of a version with `figures` added; a new one is kept
/// [`MARKER_LIFETIME_SECS`] (longer than a rollout's longest bake).
fn minute_added(
    at: &VersionMinute,
    stored: Option<&Item>,
    figures: &MinuteFigures,
) -> Result<(Item, Condition), StoreError> {
    match stored {
        None => {
            let minute = StoredMinute {
                module: at.module.clone(),
                version: at.version.clone(),
                minute: at.minute,
                figures: figures.clone(),
            };
            let expires = OffsetDateTime::now_utc().unix_timestamp() + MARKER_LIFETIME_SECS;
            let item = Item::new(by_version::key(at), to_data(&minute)).expiring_at(expires);
            Ok((item, Condition::Absent))
        }
        Some(item) => {
            let mut minute: StoredMinute = from_item(item).map_err(|e| StoreError::Corrupt {
                key: item.key.clone(),
                reason: e.to_string(),
            })?;
            minute.figures.merge(figures);
            Ok(item.next(to_data(&minute)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LINE: &str = r#"{"requestId":"r1","ip":"192.0.2.1","requestTime":"07/Dec/2026:11:20:00 +0000","requestTimeEpoch":"1796642400000","routeKey":"ANY /api/v1/financial/{proxy+}","status":"201","latency":"12","integrationLatency":"9","responseLength":"345","tenant":"acme","module":"financial","requestBytes":"67","authorizerError":"-","integrationError":"-"}"#;

    #[test]
    fn a_module_request_s_line_is_read_with_its_tenant_module_bytes_and_latency() {
        let line = AccessLogLine::parse(LINE, 0).unwrap();
        assert_eq!(
            line,
            AccessLogLine {
                tenant: "acme".into(),
                module: "financial".into(),
                version: None,
                status: 201,
                request_bytes: 67,
                response_bytes: 345,
                latency_ms: 12,
                at_ms: 1_796_642_400_000,
            }
        );
    }

    #[test]
    fn platform_routes_refusals_and_other_lines_count_nothing() {
        let platform = LINE.replace(r#""tenant":"acme""#, r#""tenant":"-""#);
        assert_eq!(AccessLogLine::parse(&platform, 0), None);
        let refused = LINE.replace(r#""module":"financial""#, r#""module":"""#);
        assert_eq!(AccessLogLine::parse(&refused, 0), None);
        assert_eq!(AccessLogLine::parse("START RequestId: x", 0), None);
        assert_eq!(AccessLogLine::parse(&LINE.replace("201", "-"), 0), None);
    }

    #[test]
    fn a_line_without_its_request_time_takes_the_log_event_s() {
        let line = LINE.replace(r#""requestTimeEpoch":"1796642400000","#, "");
        assert_eq!(AccessLogLine::parse(&line, 42_000).unwrap().at_ms, 42_000);
    }

    #[test]
    fn lines_add_up_per_tenant_module_and_hour_of_the_request() {
        let first = AccessLogLine::parse(LINE, 0).unwrap();
        let failed = AccessLogLine::parse(&LINE.replace(r#""201""#, r#""503""#), 0).unwrap();
        let next_hour = AccessLogLine {
            at_ms: first.at_ms + 3_600_000,
            ..first.clone()
        };
        let counts = access_log_counts([&first, &failed, &next_hour]);
        assert_eq!(counts.len(), 2);
        let (usage, hour) = counts.first_key_value().unwrap();
        assert_eq!(usage.hour, 1_796_642_400 / 3600);
        assert_eq!(
            (
                hour.requests,
                hour.errors_5xx,
                hour.request_bytes,
                hour.response_bytes
            ),
            (2, 1, 134, 690)
        );
        assert_eq!(hour.latency.count(), 2);
    }

    fn event(source: &str, detail: &serde_json::Value) -> Event {
        serde_json::from_value(json!({
            "version": "0", "id": "e1", "source": source, "detail-type": "financial.invoice.paid",
            "time": "2026-12-07T11:20:00Z", "resources": [], "detail": detail.clone(),
        }))
        .unwrap()
    }

    fn subscriber(module: &str, pattern: &serde_json::Value) -> Subscriber {
        Subscriber {
            module: module.parse().unwrap(),
            patterns: vec![Pattern::parse(pattern).unwrap()],
        }
    }

    #[test]
    fn an_event_counts_as_published_by_its_module_and_delivered_to_each_matching_subscriber() {
        let subscribers = [
            subscriber(
                "notifications",
                &json!({"detail-type": ["financial.invoice.paid"]}),
            ),
            subscriber(
                "warehouse",
                &json!({"detail-type": ["warehouse.stock.low"]}),
            ),
        ];
        let paid = event(
            "plinth.module.financial",
            &json!({"tenant_id": "acme", "invoice": "ACME-1"}),
        );
        let counts = event_counts(&paid, &subscribers);
        let of = |module: &str| {
            counts
                .iter()
                .find(|(k, _)| k.module == module && k.tenant == "acme")
                .map(|(_, c)| (c.events_published, c.events_delivered))
        };
        assert_eq!(of("financial"), Some((1, 0)));
        assert_eq!(of("notifications"), Some((0, 1)));
        assert_eq!(of("warehouse"), None);
        assert_eq!(
            counts.keys().next().unwrap().hour,
            1_796_642_400 / 3600,
            "the event's own hour"
        );
    }

    #[test]
    fn an_event_about_no_tenant_or_from_the_platform_is_no_module_s_publication() {
        let subscribers = [subscriber("audit", &json!({"source": ["plinth.registry"]}))];
        assert!(
            event_counts(&event("plinth.module.financial", &json!({})), &subscribers).is_empty()
        );
        let platform = event_counts(
            &event("plinth.registry", &json!({"tenant_id": "acme"})),
            &subscribers,
        );
        assert_eq!(platform.len(), 1);
        let (usage, counts) = platform.first_key_value().unwrap();
        assert_eq!(
            (
                usage.module.as_str(),
                counts.events_published,
                counts.events_delivered
            ),
            ("audit", 0, 1)
        );
    }
}
