//! Shim `AccessLog`: **API Gateway's access log and its CloudWatch Logs subscription.** moto
//! serves no HTTP API request, so it writes no access log, and it cannot invoke a
//! subscription's function. The `ApiGateway` shim records each module request here as a line
//! in the format template.yaml gives the HTTP API (`AccessLogSettings.Format`, read from the
//! template), with the values API Gateway would put in it; [`AccessLog::delivery`] hands the
//! lines over as CloudWatch Logs delivers them to a subscribed function (gzip, base64,
//! `DATA_MESSAGE`). The subscription's filter pattern is not applied: the usage function
//! reads the lines it does not count too, and skips them.

use std::io::Write;
use std::sync::{Mutex, PoisonError};

use base64::Engine;
use serde_json::{Value, json};

/// The access log's lines since the last delivery.
pub struct AccessLog {
    format: String,
    lines: Mutex<Vec<(i64, String)>>,
    sequence: Mutex<u64>,
}

/// What API Gateway knows of one request when it logs it.
pub struct Logged<'a> {
    pub status: u16,
    pub response_bytes: usize,
    pub latency_ms: u128,
    pub route_key: &'a str,
    /// The authorizer's context (`$context.authorizer.*`), `Null` when it refused.
    pub authorizer: &'a Value,
}

impl AccessLog {
    pub fn from_template() -> Self {
        let template = include_str!("../../../template.yaml");
        let format = template
            .lines()
            .find_map(|line| line.trim().strip_prefix("Format: '"))
            .and_then(|format| format.strip_suffix('\''))
            .expect("template.yaml gives the HTTP API an access log format")
            .to_owned();
        Self {
            format,
            lines: Mutex::default(),
            sequence: Mutex::default(),
        }
    }

    /// Logs one request, as API Gateway fills the format: each `$context.…` variable its
    /// value, `-` when it has none.
    pub fn record(&self, request: &Logged<'_>) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let started = now.saturating_sub(request.latency_ms);
        let context = |key: &str| request.authorizer[key].as_str().unwrap_or("-").to_owned();
        let values = [
            ("$context.requestTimeEpoch", started.to_string()),
            ("$context.status", request.status.to_string()),
            ("$context.responseLatency", request.latency_ms.to_string()),
            (
                "$context.responseLength",
                request.response_bytes.to_string(),
            ),
            ("$context.routeKey", request.route_key.to_owned()),
            ("$context.authorizer.tenant", context("tenant")),
            ("$context.authorizer.module", context("module")),
            ("$context.authorizer.version", context("version")),
            (
                "$context.authorizer.request_bytes",
                context("request_bytes"),
            ),
        ];
        let mut line = self.format.clone();
        for (variable, value) in values {
            line = line.replace(variable, if value.is_empty() { "-" } else { &value });
        }
        while let Some(at) = line.find("$context.") {
            let end = line[at..].find('"').map_or(line.len(), |n| at + n);
            line.replace_range(at..end, "-");
        }
        let at = i64::try_from(now).unwrap_or(i64::MAX);
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((at, line));
    }

    /// The lines logged since the last delivery, as CloudWatch Logs hands them to the
    /// subscribed function; `None` when there are none.
    pub fn delivery(&self) -> Option<(Value, Vec<String>)> {
        let lines = std::mem::take(&mut *self.lines.lock().unwrap_or_else(PoisonError::into_inner));
        if lines.is_empty() {
            return None;
        }
        let mut sequence = self.sequence.lock().unwrap_or_else(PoisonError::into_inner);
        let events: Vec<Value> = lines
            .iter()
            .map(|(at, message)| {
                *sequence += 1;
                json!({"id": format!("{at}{:020}", *sequence), "timestamp": at, "message": message})
            })
            .collect();
        let data = json!({
            "messageType": "DATA_MESSAGE",
            "owner": "123456789012",
            "logGroup": "/plinth/cell/http-api-access",
            "logStream": "cell",
            "subscriptionFilters": ["cell-usage"],
            "logEvents": events,
        });
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(data.to_string().as_bytes())
            .expect("gzip in memory");
        let zipped = gzip.finish().expect("gzip in memory");
        let payload =
            json!({"awslogs": {"data": base64::engine::general_purpose::STANDARD.encode(zipped)}});
        Some((payload, lines.into_iter().map(|(_, line)| line).collect()))
    }
}
