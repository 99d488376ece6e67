//! What the usage API answers: a period's figures per tenant, per module and per hour or day,
//! with each tenant's total and bill estimate; as JSON or CSV.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::meter::{Counts, HOUR};
use super::prices::Bill;
use crate::error::{Error, Result};

/// How finely a report splits its period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Hour,
    Day,
}

impl Granularity {
    fn hours(self) -> i64 {
        match self {
            Granularity::Hour => 1,
            Granularity::Day => 24,
        }
    }

    /// The longest period a report of this granularity covers, in hours.
    pub fn max_hours(self) -> i64 {
        match self {
            Granularity::Hour => 31 * 24,
            Granularity::Day => 366 * 24,
        }
    }
}

/// A report's period, in whole hours since the Unix epoch: `from` included, `to` not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub from: i64,
    pub to: i64,
    pub granularity: Granularity,
}

impl Period {
    /// Reads the API's `from`, `to` and `granularity` (defaults: the current month, by day),
    /// `now` being the time of the request. A date (`2026-12-01`) is that day's start as
    /// `from`, and that day's end as `to` (the day is included); a time (RFC 3339) is rounded
    /// out to whole hours, or to whole days by day.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        granularity: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Self> {
        let granularity = match granularity {
            None | Some("day") => Granularity::Day,
            Some("hour") => Granularity::Hour,
            Some(other) => {
                return Err(Error::field(
                    "granularity",
                    format!("`hour` or `day`, not `{other}`"),
                ));
            }
        };
        let step = granularity.hours();
        let now_hour = now.unix_timestamp().div_euclid(HOUR);
        let from = match from {
            Some(text) => instant("from", text)?.0,
            None => {
                let month = now.replace_day(1).unwrap_or(now);
                month.unix_timestamp().div_euclid(HOUR * 24) * 24
            }
        };
        let to = match to {
            Some(text) => match instant("to", text)? {
                (day_start, true) => day_start + 24,
                (hour, false) => hour,
            },
            None => now_hour + 1,
        };
        // Rounded out to whole periods: `from` down, `to` up.
        let from = from.div_euclid(step) * step;
        let to = (to + step - 1).div_euclid(step) * step;
        if from > to {
            return Err(Error::field("from", "is after `to`"));
        }
        if hour_text(to).is_empty() {
            return Err(Error::field("to", "is past the year 9999"));
        }
        if to - from > granularity.max_hours() {
            let (most, unit) = match granularity {
                Granularity::Hour => (31, "days by hour"),
                Granularity::Day => (366, "days by day"),
            };
            return Err(Error::field(
                "to",
                format!(
                    "the period is {} hours; a report covers at most {most} {unit}",
                    to - from
                ),
            ));
        }
        Ok(Self {
            from,
            to,
            granularity,
        })
    }
}

/// `text` as an hour since the epoch (the hour it falls in), and whether it was a bare date.
fn instant(parameter: &str, text: &str) -> Result<(i64, bool)> {
    let invalid = || {
        Error::field(
            parameter,
            format!(
                "`{text}` is neither a date (2026-12-01) nor an RFC 3339 time (2026-12-01T08:00:00Z)"
            ),
        )
    };
    let date = text.len() == 10;
    let full = if date {
        format!("{text}T00:00:00Z")
    } else {
        text.to_owned()
    };
    let at = OffsetDateTime::parse(&full, &Rfc3339).map_err(|_| invalid())?;
    Ok((at.unix_timestamp().div_euclid(HOUR), date))
}

/// An hour since the epoch as RFC 3339 (`2026-12-07T08:00:00Z`).
pub fn hour_text(hour: i64) -> String {
    OffsetDateTime::from_unix_timestamp(hour * HOUR)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Latency percentiles, in milliseconds (absent with no request).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Latency {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// One period's (or a total's) figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Figures {
    pub requests: u64,
    pub errors_4xx: u64,
    pub errors_5xx: u64,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub events_published: u64,
    pub events_delivered: u64,
    /// Within 1 % of the true percentile (the sketch's relative error).
    pub latency_ms: Latency,
}

impl From<&Counts> for Figures {
    fn from(counts: &Counts) -> Self {
        let ms = |q| {
            counts
                .latency
                .quantile(q)
                .map(|us| (us * 1e3).round() / 1e6)
        };
        Self {
            requests: counts.requests,
            errors_4xx: counts.errors_4xx,
            errors_5xx: counts.errors_5xx,
            request_bytes: counts.request_bytes,
            response_bytes: counts.response_bytes,
            events_published: counts.events_published,
            events_delivered: counts.events_delivered,
            latency_ms: Latency {
                p50: ms(0.5),
                p95: ms(0.95),
                p99: ms(0.99),
            },
        }
    }
}

/// A module's figures for one hour or day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Row {
    /// The hour's or day's start (RFC 3339, UTC).
    pub period: String,
    pub module: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// A tenant's usage over the period: rows by period and module, the total and its bill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenantUsage {
    pub tenant: String,
    pub tier: String,
    pub rows: Vec<Row>,
    pub total: Figures,
    pub bill: Bill,
}

/// `GET …/usage`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UsageReport {
    /// The period's start, included (RFC 3339).
    pub from: String,
    /// The period's end, excluded (RFC 3339).
    pub to: String,
    pub granularity: Granularity,
    /// Only this module's figures, when asked.
    pub module: Option<String>,
    pub tenants: Vec<TenantUsage>,
}

/// A tenant's stored hours summed into rows of the period's granularity, and their total.
pub(super) fn rows(
    hours: &[(i64, String, Counts)],
    granularity: Granularity,
) -> (Vec<Row>, Counts) {
    let step = granularity.hours();
    let mut grouped: BTreeMap<(i64, &str), Counts> = BTreeMap::new();
    let mut total = Counts::default();
    for (hour, module, counts) in hours {
        let period = hour.div_euclid(step) * step;
        grouped.entry((period, module)).or_default().merge(counts);
        total.merge(counts);
    }
    let rows = grouped
        .into_iter()
        .map(|((period, module), counts)| Row {
            period: hour_text(period),
            module: module.to_owned(),
            figures: Figures::from(&counts),
        })
        .collect();
    (rows, total)
}

/// The CSV columns, in order.
pub const CSV_HEADER: &str = "tenant,tier,period,module,requests,errors_4xx,errors_5xx,\
    request_bytes,response_bytes,events_published,events_delivered,latency_p50_ms,\
    latency_p95_ms,latency_p99_ms";

impl UsageReport {
    /// One line per tenant, period and module, under [`CSV_HEADER`] (RFC 4180; ids and module
    /// names hold no comma or quote).
    pub fn csv(&self) -> String {
        let mut out = String::from(CSV_HEADER);
        out.push_str("\r\n");
        let ms = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        for tenant in &self.tenants {
            for row in &tenant.rows {
                let f = &row.figures;
                let _ = write!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{},{},{},{},{}\r\n",
                    tenant.tenant,
                    tenant.tier,
                    row.period,
                    row.module,
                    f.requests,
                    f.errors_4xx,
                    f.errors_5xx,
                    f.request_bytes,
                    f.response_bytes,
                    f.events_published,
                    f.events_delivered,
                    ms(f.latency_ms.p50),
                    ms(f.latency_ms.p95),
                    ms(f.latency_ms.p99),
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap()
    }

    fn field_of(error: &Error) -> String {
        match error {
            Error::Invalid { problems, .. } => problems[0].path.clone(),
            other => panic!("not a field error: {other:?}"),
        }
    }

    #[test]
    fn dates_cover_whole_days_and_times_round_out_to_hours() {
        let now = at("2026-12-07T08:30:00Z");
        let day = Period::parse(Some("2026-12-01"), Some("2026-12-07"), None, now).unwrap();
        assert_eq!(hour_text(day.from), "2026-12-01T00:00:00Z");
        assert_eq!(hour_text(day.to), "2026-12-08T00:00:00Z");
        let hours = Period::parse(
            Some("2026-12-07T06:10:00Z"),
            Some("2026-12-07T08:05:00+00:00"),
            Some("hour"),
            now,
        )
        .unwrap();
        assert_eq!(hour_text(hours.from), "2026-12-07T06:00:00Z");
        assert_eq!(hour_text(hours.to), "2026-12-07T08:00:00Z");
        let default = Period::parse(None, None, None, now).unwrap();
        assert_eq!(hour_text(default.from), "2026-12-01T00:00:00Z");
        assert_eq!(hour_text(default.to), "2026-12-08T00:00:00Z");
    }

    #[test]
    fn bad_dates_reversed_and_too_long_periods_name_their_parameter() {
        let now = at("2026-12-07T08:30:00Z");
        let bad = Period::parse(Some("yesterday"), None, None, now).unwrap_err();
        assert_eq!(field_of(&bad), "from");
        let bad = Period::parse(None, Some("2026-13-01"), None, now).unwrap_err();
        assert_eq!(field_of(&bad), "to");
        let reversed =
            Period::parse(Some("2026-12-05"), Some("2026-12-01"), None, now).unwrap_err();
        assert_eq!(field_of(&reversed), "from");
        let long =
            Period::parse(Some("2026-10-01"), Some("2026-12-01"), Some("hour"), now).unwrap_err();
        assert_eq!(field_of(&long), "to");
        assert!(long.to_string().contains("at most 31 days"), "{long}");
        let bad = Period::parse(None, None, Some("week"), now).unwrap_err();
        assert_eq!(field_of(&bad), "granularity");
        let far = Period::parse(Some("9999-12-31"), Some("9999-12-31"), None, now).unwrap_err();
        assert_eq!(field_of(&far), "to");
    }
}
