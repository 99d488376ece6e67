//! The `EventBus` port: the platform publishes every transition; modules publish their own.
//!
//! On AWS the adapter is EventBridge; on one machine, [`local::LocalBus`]. The envelope is
//! `plinth_module_sdk::events::Event`; the platform's own detail-types are listed in
//! `docs/events.md`.

pub mod local;

use async_trait::async_trait;
use plinth_module_sdk::ModuleName;
use plinth_module_sdk::manifest::Subscription;
pub use plinth_module_sdk::events::{Event, PLATFORM_SOURCE};

use crate::deploy::Deployment;

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

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SubscriptionError(pub String);

/// Turns a module's manifest subscriptions into delivery rules on the bus.
#[async_trait]
pub trait Subscriptions: Send + Sync + std::fmt::Debug {
    /// Creates one rule per subscription (or replaces it: idempotent) that delivers matching
    /// events to the module's backend at the subscription's path. Returns the rule names.
    async fn subscribe(
        &self,
        module: &ModuleName,
        subscriptions: &[Subscription],
        deployment: &Deployment,
    ) -> Result<Vec<String>, SubscriptionError>;

    /// Removes every rule of the module; removing none is fine.
    async fn unsubscribe(&self, module: &ModuleName) -> Result<(), SubscriptionError>;
}

/// Whether a tenant has a module enabled: deliveries of tenant events are filtered by it.
#[async_trait]
pub trait EnabledTenants: Send + Sync {
    async fn is_enabled(&self, tenant: &str, module: &ModuleName) -> bool;
}

/// A platform event about a module, optionally for a tenant.
pub fn platform_event(detail_type: &str, payload: serde_json::Value) -> Event {
    let payload = match payload {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    Event::new(PLATFORM_SOURCE, detail_type, payload)
}
