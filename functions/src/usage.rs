//! The usage function: what tenants used of modules on AWS, counted from what AWS reports
//! (docs/operations.md, "On AWS") into the table the usage routes read.
//!
//! - a **CloudWatch Logs subscription** on the HTTP API's access log hands it the log lines in
//!   batches: each module request the authorizer let through counts for its tenant and module,
//!   and — its status and latency — for the version the authorizer chose, in the minute it
//!   arrived, which the rollout driver judges (`rollouts.rs`);
//! - a **rule on the platform's bus** hands it every event: published by the module that sent
//!   it, delivered to each installed module whose subscription matches it.
//!
//! Each batch (a log delivery, an event) is counted once however often it is delivered
//! (`Usage::record_once`).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aws_lambda_events::cloudwatch_logs::LogsEvent;
use plinth_registry::events::{Event, PLATFORM_SOURCE};
use plinth_registry::usage::{AccessLogLine, BatchCounts, Subscriber, event_counts, subscribers};
use plinth_registry::{App, Error, Result};
use serde::Serialize;
use serde_json::Value;

/// How long a warm instance keeps the installed modules' subscriptions before reading them
/// again. The platform's events of an install's end reach the usage function too, and drop
/// them at once ([`CHANGES_SUBSCRIBERS`]); this bounds what a lost one could leave.
const SUBSCRIBERS_FOR: Duration = Duration::from_secs(60);

/// The platform's events after which the installed modules' subscriptions may differ.
const CHANGES_SUBSCRIBERS: [&str; 5] = [
    "module.installed",
    "module.upgraded",
    "module.rolled_back",
    "module.restored",
    "module.uninstalled",
];

/// What one invocation counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "counted")]
pub enum Counted {
    /// Module requests of an access log batch (`requests` of `lines`), or none: the batch was
    /// counted before.
    Requests {
        lines: usize,
        requests: usize,
        again: bool,
    },
    /// An event: (tenant, module) pairs it counted for; `again` when counted before.
    Event { pairs: usize, again: bool },
    /// Nothing to count: CloudWatch Logs' control message, or an event about no tenant.
    Nothing,
}

/// The installed modules' subscriptions, kept by a warm instance for [`SUBSCRIBERS_FOR`].
#[derive(Debug, Default)]
pub struct Subscribers(Mutex<Option<(Instant, Arc<Vec<Subscriber>>)>>);

impl Subscribers {
    fn forget(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    async fn current(&self, app: &App) -> Result<Arc<Vec<Subscriber>>> {
        if let Some((at, kept)) = &*self.0.lock().unwrap_or_else(PoisonError::into_inner)
            && at.elapsed() < SUBSCRIBERS_FOR
        {
            return Ok(Arc::clone(kept));
        }
        let read = Arc::new(subscribers(&app.plane.installations).await?);
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), Arc::clone(&read)));
        Ok(read)
    }
}

/// Counts one delivery: a CloudWatch Logs batch (`{"awslogs": …}`) or an EventBridge event.
///
/// # Errors
/// A payload that is neither (a 400-like error, so the delivery is not retried for nothing
/// — Lambda reports it), or the store's failure (retried by the service that delivered it).
pub async fn handle(app: &App, subscribers: &Subscribers, payload: Value) -> Result<Counted> {
    if payload.get("awslogs").is_some() {
        // Read from text: the crate's decoder of `awslogs.data` borrows its string.
        let logs: LogsEvent = serde_json::from_str(&payload.to_string()).map_err(|e| {
            Error::BadRequest(format!("awslogs: not a CloudWatch Logs delivery: {e}"))
        })?;
        return access_log(app, logs).await;
    }
    if payload.get("detail-type").is_some() {
        let event: Event = serde_json::from_value(payload)
            .map_err(|e| Error::BadRequest(format!("not an EventBridge event: {e}")))?;
        if event.source == PLATFORM_SOURCE
            && CHANGES_SUBSCRIBERS.contains(&event.detail_type.as_str())
        {
            subscribers.forget();
        }
        let counts = event_counts(&event, &subscribers.current(app).await?);
        if counts.is_empty() {
            return Ok(Counted::Nothing);
        }
        let pairs = counts.len();
        let counted = app
            .plane
            .usage
            .record_once(&format!("event#{}", event.id), counts)
            .await?;
        return Ok(Counted::Event {
            pairs,
            again: !counted,
        });
    }
    Err(Error::BadRequest(
        "neither a CloudWatch Logs delivery (`awslogs`) nor an EventBridge event (`detail-type`)"
            .into(),
    ))
}

async fn access_log(app: &App, logs: LogsEvent) -> Result<Counted> {
    let data = logs.aws_logs.data;
    // Sent once when the subscription is created, to check the destination.
    let Some(first) = data
        .log_events
        .first()
        .filter(|_| data.message_type == "DATA_MESSAGE")
    else {
        return Ok(Counted::Nothing);
    };
    // A log event's id is unique; a delivery made again carries the same events.
    let batch = format!("logs#{}#{}", first.id, data.log_events.len());
    let lines: Vec<_> = data
        .log_events
        .iter()
        .filter_map(|event| AccessLogLine::parse(&event.message, event.timestamp))
        .collect();
    let requests = lines.len();
    let again = if lines.is_empty() {
        false
    } else {
        !app.plane
            .usage
            .record_batch_once(&batch, &BatchCounts::of_access_log(&lines))
            .await?
    };
    Ok(Counted::Requests {
        lines: data.log_events.len(),
        requests,
        again,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{Kit, fixture};
    use plinth_registry::ids::TenantId;
    use plinth_registry::usage::Period;

    async fn acme_total(kit: &Kit, at: &str) -> plinth_registry::usage::Figures {
        let tenant = kit
            .app
            .plane
            .tenancy
            .tenant(&TenantId::parse("acme").unwrap())
            .await
            .unwrap();
        let period = Period::parse(
            Some(at),
            Some(at),
            Some("hour"),
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        let report = kit
            .app
            .plane
            .usage
            .report(&[tenant], &period, None)
            .await
            .unwrap();
        report.tenants[0].total.clone()
    }

    /// `cloudwatch-logs-access.json`: CloudWatch Logs' delivery (gzip, base64) of four lines of
    /// the HTTP API's access log in template.yaml's format, on 2026-12-07 — two financial
    /// requests of acme (a 201 and a 503), one platform route and one refused request.
    #[tokio::test]
    async fn an_access_log_delivery_counts_each_module_request_once_however_often_delivered() {
        let mut kit = Kit::new();
        kit.installed_and_enabled().await;
        let subscribers = Subscribers::default();
        let delivery = fixture("cloudwatch-logs-access.json");
        let counted = handle(&kit.app, &subscribers, delivery.clone())
            .await
            .unwrap();
        assert_eq!(
            counted,
            Counted::Requests {
                lines: 4,
                requests: 2,
                again: false
            }
        );
        let again = handle(&kit.app, &subscribers, delivery).await.unwrap();
        assert_eq!(
            again,
            Counted::Requests {
                lines: 4,
                requests: 2,
                again: true
            }
        );
        let total = acme_total(&kit, "2026-12-07").await;
        assert_eq!(
            (
                total.requests,
                total.errors_5xx,
                total.request_bytes,
                total.response_bytes
            ),
            (2, 1, 67, 345 + 120)
        );
    }

    #[tokio::test]
    async fn a_module_s_event_counts_as_its_publication_once() {
        let mut kit = Kit::new();
        kit.installed_and_enabled().await;
        let subscribers = Subscribers::default();
        let event = fixture("eventbridge-module-event.json");
        assert_eq!(
            handle(&kit.app, &subscribers, event.clone()).await.unwrap(),
            Counted::Event {
                pairs: 1,
                again: false
            }
        );
        assert_eq!(
            handle(&kit.app, &subscribers, event).await.unwrap(),
            Counted::Event {
                pairs: 1,
                again: true
            }
        );
        let total = acme_total(&kit, "2026-12-07").await;
        assert_eq!((total.events_published, total.events_delivered), (1, 0));
    }

    /// The access log's format as template.yaml gives it, filled as API Gateway fills it, reads
    /// back as the request it logs: the template and the parser name the same fields.
    #[test]
    fn a_line_in_the_template_s_access_log_format_reads_back_as_its_request() {
        let template = include_str!("../../template.yaml");
        let format = template
            .lines()
            .find_map(|line| line.trim().strip_prefix("Format: '"))
            .and_then(|format| format.strip_suffix('\''))
            .expect("the HTTP API's access log format");
        let mut line = format.to_owned();
        for (variable, value) in [
            ("$context.authorizer.tenant", "acme"),
            ("$context.authorizer.module", "financial"),
            ("$context.authorizer.version", "1.3.0"),
            ("$context.authorizer.request_bytes", "67"),
            ("$context.status", "201"),
            ("$context.responseLength", "345"),
            ("$context.responseLatency", "12"),
            ("$context.requestTimeEpoch", "1796642400000"),
        ] {
            assert!(line.contains(variable), "the format logs {variable}");
            line = line.replace(variable, value);
        }
        // What the usage function does not read, API Gateway fills too.
        while let Some(at) = line.find("$context.") {
            let end = line[at..].find('"').map_or(line.len(), |n| at + n);
            line.replace_range(at..end, "-");
        }
        assert_eq!(
            AccessLogLine::parse(&line, 0),
            Some(AccessLogLine {
                tenant: "acme".into(),
                module: "financial".into(),
                version: Some("1.3.0".into()),
                status: 201,
                request_bytes: 67,
                response_bytes: 345,
                latency_ms: 12,
                at_ms: 1_796_642_400_000,
            })
        );
    }

    #[tokio::test]
    async fn the_subscription_s_control_message_and_an_unknown_payload_count_nothing() {
        let kit = Kit::new();
        let subscribers = Subscribers::default();
        let control = fixture("cloudwatch-logs-control.json");
        assert_eq!(
            handle(&kit.app, &subscribers, control).await.unwrap(),
            Counted::Nothing
        );
        let error = handle(&kit.app, &subscribers, serde_json::json!({"hello": 1}))
            .await
            .unwrap_err();
        assert_eq!(error.status(), http::StatusCode::BAD_REQUEST);
        assert!(error.to_string().contains("awslogs"), "{error}");
    }
}
