//! The `EventBus` port: the platform publishes every transition; modules publish their own.
//!
//! On AWS the adapter is EventBridge; on one machine, [`local::LocalBus`]. The envelope is
//! `plinth_module_sdk::events::Event`; the platform's own detail-types are listed in
//! `docs/events.md`.

pub mod local;

use async_trait::async_trait;
pub use plinth_module_sdk::events::{Event, PLATFORM_SOURCE};

/// Events that could not be delivered to the bus.
#[derive(Debug, thiserror::Error)]
#[error("{} event(s) not published: {reason}", failed.len())]
pub struct PublishError {
    pub failed: Vec<Event>,
    pub reason: String,
}

#[async_trait]
pub trait EventBus: Send + Sync + std::fmt::Debug {
    /// Publishes the events; on error, says which were not published.
    async fn publish(&self, events: Vec<Event>) -> Result<(), PublishError>;
}

/// A platform event about a module, optionally for a tenant.
pub fn platform_event(detail_type: &str, payload: serde_json::Value) -> Event {
    let payload = match payload {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    Event::new(PLATFORM_SOURCE, detail_type, payload)
}
