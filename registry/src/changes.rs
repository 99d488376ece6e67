//! The one write path: every change to the control plane's state is a [`Change`] — its
//! writes (all or nothing, the audit record among them), what it makes stale, the events it
//! emits — committed by [`Changes::commit`]. The optimistic-concurrency policy lives here
//! once: a write whose condition fails (someone else changed the item since it was read) is a
//! 409 saying what the change was, and nothing is written.

use std::sync::Arc;

use crate::cache::{Stale, Staleness};
use crate::error::{CHANGED_MEANWHILE, Error, Result};
use crate::events::{Event, EventBus, PLATFORM_SOURCE};
use crate::store::{Condition, Key, Store, StoreError, Update, Write};

/// One change: written all or nothing, then the caches it names are dropped and its events
/// published.
#[derive(Debug, Default)]
#[must_use]
pub struct Change {
    writes: Vec<Write>,
    events: Vec<Event>,
    stale: Vec<Stale>,
    conflict: Option<String>,
}

impl Change {
    pub fn new(writes: Vec<Write>) -> Self {
        Self {
            writes,
            ..Self::default()
        }
    }

    /// Adds a write.
    pub fn write(mut self, write: Write) -> Self {
        self.writes.push(write);
        self
    }

    /// Events to publish once the change is written.
    pub fn events(mut self, events: impl IntoIterator<Item = Event>) -> Self {
        self.events.extend(events);
        self
    }

    /// What the change makes stale in every cache.
    pub fn stale(mut self, stale: Stale) -> Self {
        self.stale.push(stale);
        self
    }

    /// What to tell the caller when a write's condition fails (409).
    pub fn on_conflict(mut self, message: impl Into<String>) -> Self {
        self.conflict = Some(message.into());
        self
    }

    fn conflict(&self) -> Error {
        Error::Conflict(
            self.conflict
                .clone()
                .unwrap_or_else(|| CHANGED_MEANWHILE.to_owned()),
        )
    }
}

/// Commits changes: the store's transaction, the caches' staleness, the bus.
#[derive(Debug)]
pub struct Changes {
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    staleness: Arc<Staleness>,
}

impl Changes {
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn EventBus>, staleness: Arc<Staleness>) -> Self {
        Self {
            store,
            bus,
            staleness,
        }
    }

    /// Writes a change all or nothing, then marks what it made stale and publishes its
    /// events. A change that was written stays written when the bus fails: the failure is
    /// logged, the caller still succeeds.
    pub async fn commit(&self, change: Change) -> Result<()> {
        let conflict = change.conflict();
        let Change {
            writes,
            events,
            stale,
            ..
        } = change;
        if !writes.is_empty() {
            self.store
                .transact(writes)
                .await
                .map_err(|e| conflict_or(e, conflict))?;
        }
        self.written(&stale);
        self.publish(events).await;
        Ok(())
    }

    /// Records observed state in place — fields of one item, such as an instance's health as
    /// the checker found it: not a change anyone made, so no audit record and no event — then
    /// marks `stale` (`None` for an observation no cache reflects).
    pub async fn observe(
        &self,
        key: &Key,
        update: Update,
        condition: Condition,
        stale: Option<Stale>,
    ) -> Result<()> {
        self.store
            .update(key, update, condition)
            .await
            .map_err(|e| conflict_or(e, Error::Conflict(CHANGED_MEANWHILE.into())))?;
        if let Some(stale) = stale {
            self.staleness.mark(&stale);
        }
        Ok(())
    }

    /// Publishes events that come with no write (their failure is logged).
    pub async fn publish(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        if let Err(e) = self.bus.publish(events).await {
            tracing::error!(error = %e, "events not published");
        }
    }

    /// Drops what a platform event makes stale: how caches follow changes made by other
    /// processes (each entry also expires on its own within 30 s).
    pub fn on_event(&self, event: &Event) {
        if event.source != PLATFORM_SOURCE {
            return;
        }
        self.written(&stale_of(event));
    }

    /// Drops everything cached (change events may have been missed).
    pub fn forget_everything(&self) {
        self.staleness.mark(&Stale::Everything);
    }

    fn written(&self, stale: &[Stale]) {
        if stale.is_empty() {
            self.staleness.changed();
        }
        for stale in stale {
            self.staleness.mark(stale);
        }
    }
}

fn conflict_or(error: StoreError, conflict: Error) -> Error {
    if error.is_conflict() {
        conflict
    } else {
        error.into()
    }
}

/// What a platform event says has changed.
fn stale_of(event: &Event) -> Vec<Stale> {
    let mut stale = Vec::new();
    match event
        .detail
        .get("module")
        .and_then(serde_json::Value::as_str)
    {
        Some(module) => stale.push(Stale::Module(module.to_owned())),
        None if event.detail_type.starts_with("module.") => stale.push(Stale::Modules),
        None => {}
    }
    if let Some(tenant) = event.tenant_id() {
        if event.detail_type.starts_with("role.") || event.detail_type.starts_with("user.") {
            stale.push(Stale::TenantRoles(tenant.to_owned()));
        }
        if event.detail_type.starts_with("tenant.") {
            stale.push(Stale::Tenant(tenant.to_owned()));
        }
    }
    stale
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::platform_event;
    use serde_json::json;

    #[test]
    fn platform_events_name_what_they_made_stale() {
        let enabled = platform_event("tenant.module.enabled", json!({"module": "financial"}))
            .for_tenant("acme", None);
        assert_eq!(
            stale_of(&enabled),
            [
                Stale::Module("financial".into()),
                Stale::Tenant("acme".into())
            ]
        );
        let role =
            platform_event("role.changed", json!({"role": "clerk"})).for_tenant("acme", None);
        assert_eq!(stale_of(&role), [Stale::TenantRoles("acme".into())]);
        let published = platform_event("module.version.published", json!({}));
        assert_eq!(stale_of(&published), [Stale::Modules]);
    }
}
