//! The event envelope shared by the platform and modules: EventBridge's shape, so the same
//! event travels on EventBridge in AWS and on the local bus on one machine.
//!
//! `detail` holds the payload's fields plus `event_id` and `occurred_at` (and `tenant_id` /
//! `company_id` when the event concerns one): EventBridge assigns its own envelope id, so
//! consumers deduplicate on `detail.event_id`.
//!
//! [`pattern`] is EventBridge's event pattern language: manifests' subscriptions are checked
//! with it, and the local bus matches with it.

pub mod pattern;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::ModuleName;

/// The source of the platform's own events.
pub const PLATFORM_SOURCE: &str = "plinth.registry";

/// The source of a module's own events: `plinth.module.{name}`.
#[must_use]
pub fn module_source(module: &ModuleName) -> String {
    format!("plinth.module.{module}")
}

/// One event, as EventBridge carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Envelope schema version, always `"0"`.
    #[serde(default = "version_zero")]
    pub version: String,
    /// Unique id of the event (a UUID v7, so ids sort by time).
    pub id: String,
    /// Who emitted it: [`PLATFORM_SOURCE`] or [`module_source`].
    pub source: String,
    /// What happened, e.g. `tenant.module.enabled` or `financial.invoice.paid`.
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    /// When, RFC 3339 in UTC.
    pub time: String,
    /// ARNs or names of the resources concerned.
    #[serde(default)]
    pub resources: Vec<String>,
    /// The payload, with `event_id`, `occurred_at`, and the tenant and company when relevant.
    pub detail: Map<String, Value>,
}

fn version_zero() -> String {
    "0".to_owned()
}

impl Event {
    /// A new event now, with a fresh id; `payload` becomes the detail.
    #[must_use]
    pub fn new(
        source: impl Into<String>,
        detail_type: impl Into<String>,
        payload: Map<String, Value>,
    ) -> Self {
        let id = uuid::Uuid::now_v7().to_string();
        let time = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| OffsetDateTime::now_utc())
            .format(&Rfc3339)
            .unwrap_or_default();
        let mut detail = payload;
        detail.insert("event_id".into(), Value::String(id.clone()));
        detail.insert("occurred_at".into(), Value::String(time.clone()));
        Self {
            version: version_zero(),
            id,
            source: source.into(),
            detail_type: detail_type.into(),
            time,
            resources: Vec::new(),
            detail,
        }
    }

    /// This event about `tenant` (and `company`), which subscribers filter on.
    #[must_use]
    pub fn for_tenant(mut self, tenant: &str, company: Option<&str>) -> Self {
        self.detail
            .insert("tenant_id".into(), Value::String(tenant.to_owned()));
        if let Some(company) = company {
            self.detail
                .insert("company_id".into(), Value::String(company.to_owned()));
        }
        self
    }

    /// The tenant the event concerns, if any.
    #[must_use]
    pub fn tenant_id(&self) -> Option<&str> {
        self.detail.get("tenant_id").and_then(Value::as_str)
    }

    /// The company the event concerns, if any.
    #[must_use]
    pub fn company_id(&self) -> Option<&str> {
        self.detail.get("company_id").and_then(Value::as_str)
    }

    /// The envelope as JSON, the form event patterns are matched against.
    #[must_use]
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_event_serialises_as_eventbridge_does() {
        let payload = json!({"invoice_id": "INV-1", "amount": 1000.0})
            .as_object()
            .cloned()
            .unwrap();
        let event = Event::new("plinth.module.financial", "financial.invoice.paid", payload)
            .for_tenant("acme", Some("acme-de"));
        let value = event.to_value();
        assert_eq!(value["detail-type"], "financial.invoice.paid");
        assert_eq!(value["version"], "0");
        assert_eq!(value["detail"]["tenant_id"], "acme");
        assert_eq!(value["detail"]["company_id"], "acme-de");
        assert_eq!(value["detail"]["event_id"], value["id"]);
        assert_eq!(event.tenant_id(), Some("acme"));
        let back: Event = serde_json::from_value(value).unwrap();
        assert_eq!(back, event);
    }
}
