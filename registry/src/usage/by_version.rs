//! Each version's figures per minute, counted from the access log on AWS for the rollout
//! driver (docs/operations.md, "Rollouts"): requests, 5xx answers and latency of every module
//! request the authorizer sent to a version, in the minute the request arrived.
//!
//! Stored as `PK=USAGEVERSION#{module}#{version} SK=MINUTE#{yyyy-mm-ddThh:mm}`, one partition
//! per version, its minutes in time order (a rollout's wave is one query), each kept two days
//! (longer than the longest bake). Written by the usage function with the rest of an access log
//! batch, in the same transaction as the batch's marker, so a batch delivered again adds
//! nothing ([`Usage::record_once`](super::Usage::record_once)).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::ingest::AccessLogLine;
use super::sketch::LatencySketch;
use crate::store::{Key, Query, Store, StoreError, from_item, query_all};

/// Milliseconds in a minute: a version's figures are kept per minute.
pub const MINUTE_MS: i64 = 60_000;

/// Where a version's figures go: one minute (Unix milliseconds / [`MINUTE_MS`]) of one version
/// of a module.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VersionMinute {
    pub module: String,
    pub version: String,
    pub minute: i64,
}

/// What a version answered in one minute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MinuteFigures {
    pub requests: u64,
    /// Answered 5xx (the module's, and API Gateway's own when the integration failed).
    pub errors_5xx: u64,
    /// API Gateway's `responseLatency` of each request.
    #[serde(default)]
    pub latency: LatencySketch,
}

impl MinuteFigures {
    /// Adds `other`'s figures to these.
    pub fn merge(&mut self, other: &MinuteFigures) {
        self.requests += other.requests;
        self.errors_5xx += other.errors_5xx;
        self.latency.merge(&other.latency);
    }

    fn served(&mut self, line: &AccessLogLine) {
        self.requests += 1;
        if (500..=599).contains(&line.status) {
            self.errors_5xx += 1;
        }
        self.latency.record(line.latency_ms.saturating_mul(1000));
    }
}

/// One (module, version, minute) as stored.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct StoredMinute {
    pub(super) module: String,
    pub(super) version: String,
    pub(super) minute: i64,
    #[serde(flatten)]
    pub(super) figures: MinuteFigures,
}

fn partition(module: &str, version: &str) -> String {
    format!("USAGEVERSION#{module}#{version}")
}

/// `MINUTE#2026-12-07T11:20`: sorts as time does.
fn sort_key(minute: i64) -> String {
    let text = OffsetDateTime::from_unix_timestamp(minute * (MINUTE_MS / 1000))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
    format!("MINUTE#{}", text.get(..16).unwrap_or_default())
}

pub(super) fn key(at: &VersionMinute) -> Key {
    Key::new(partition(&at.module, &at.version), sort_key(at.minute))
}

/// The figures of a batch of access log lines per (module, version, minute of the request);
/// a line without the version the authorizer chose counts for none.
#[must_use]
pub fn version_minute_counts<'a>(
    lines: impl IntoIterator<Item = &'a AccessLogLine>,
) -> BTreeMap<VersionMinute, MinuteFigures> {
    let mut counts = BTreeMap::<VersionMinute, MinuteFigures>::new();
    for line in lines {
        let Some(version) = &line.version else {
            continue;
        };
        let at = VersionMinute {
            module: line.module.clone(),
            version: version.clone(),
            minute: line.at_ms.div_euclid(MINUTE_MS),
        };
        counts.entry(at).or_default().served(line);
    }
    counts
}

/// The stored figures of `version` of `module` from minute `from` on, oldest first: one query
/// of the version's partition.
///
/// # Errors
/// The store's failure, or a stored minute that cannot be read.
pub async fn version_minutes(
    store: &dyn Store,
    module: &str,
    version: &str,
    from: i64,
) -> Result<Vec<(i64, MinuteFigures)>, StoreError> {
    // `~` sorts after every character of a minute's text.
    let query = Query::between(partition(module, version), sort_key(from), "MINUTE#~");
    let mut minutes = Vec::new();
    for item in query_all(store, &query).await? {
        let stored: StoredMinute = from_item(&item).map_err(|e| StoreError::Corrupt {
            key: item.key.clone(),
            reason: e.to_string(),
        })?;
        minutes.push((stored.minute, stored.figures));
    }
    Ok(minutes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(version: Option<&str>, status: u16, at_ms: i64) -> AccessLogLine {
        AccessLogLine {
            tenant: "acme".into(),
            module: "financial".into(),
            version: version.map(str::to_owned),
            status,
            request_bytes: 0,
            response_bytes: 0,
            latency_ms: 40,
            at_ms,
        }
    }

    #[test]
    fn lines_add_up_per_version_and_minute_of_the_request_and_those_without_a_version_count_for_none()
     {
        let at = 1_796_642_400_000;
        let lines = [
            line(Some("1.3.0"), 503, at),
            line(Some("1.3.0"), 200, at + 59_999),
            line(Some("1.3.0"), 200, at + 60_000),
            line(Some("1.2.0"), 500, at),
            line(None, 500, at),
        ];
        let counts = version_minute_counts(&lines);
        let of = |version: &str, minute: i64| {
            counts
                .get(&VersionMinute {
                    module: "financial".into(),
                    version: version.into(),
                    minute,
                })
                .map(|f| (f.requests, f.errors_5xx, f.latency.count()))
        };
        let minute = at / MINUTE_MS;
        assert_eq!(of("1.3.0", minute), Some((2, 1, 2)));
        assert_eq!(of("1.3.0", minute + 1), Some((1, 0, 1)));
        assert_eq!(of("1.2.0", minute), Some((1, 1, 1)));
        assert_eq!(counts.len(), 3);
    }

    #[test]
    fn minutes_sort_as_time_does() {
        let minute = 1_796_642_400_000 / MINUTE_MS;
        assert_eq!(sort_key(minute), "MINUTE#2026-12-07T11:20");
        assert!(sort_key(minute + 1) > sort_key(minute));
        assert!(sort_key(minute + 60 * 24) > sort_key(minute + 59));
    }
}
