//! The control plane's state: its ports and what it was configured with. Domain operations
//! are methods on [`Platform`], grouped by concept in their own modules (`catalog`,
//! `tenancy`, `config`, …).

use std::sync::Arc;

use plinth_module_sdk::ModuleName;

use crate::cache::TtlCache;
use crate::error::Result;
use crate::events::{Event, EventBus};
use crate::identity::TokenVerifier;
use crate::store::{Store, Write};

#[derive(Debug, Clone)]
pub struct Platform {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn EventBus>,
    pub tokens: TokenVerifier,
    pub caches: Arc<Caches>,
}

/// What the hot path remembers between requests (each bounded by a TTL).
#[derive(Debug, Default)]
pub struct Caches {
    /// API key hash → module.
    pub api_keys: TtlCache<String, ModuleName>,
}

impl Platform {
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn EventBus>, tokens: TokenVerifier) -> Self {
        Self {
            store,
            bus,
            tokens,
            caches: Arc::default(),
        }
    }

    /// Writes a change all or nothing, then publishes its events. A change that was written
    /// stays written when the bus fails: the failure is logged, the caller still succeeds.
    pub async fn commit(&self, writes: Vec<Write>, events: Vec<Event>) -> Result<()> {
        self.store.transact(writes).await?;
        self.publish_events(events).await;
        Ok(())
    }

    pub async fn publish_events(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        if let Err(e) = self.bus.publish(events).await {
            tracing::error!(error = %e, "events not published");
        }
    }
}
