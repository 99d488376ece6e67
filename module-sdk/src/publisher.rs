//! Publishing a module's own events: [`Publisher`] builds the envelope (source
//! `plinth.module.{name}`, the tenant and company of the request) and hands it to an
//! [`EventPublisher`]: EventBridge on AWS ([`EventBridgePublisher`], when `PLINTH_EVENT_BUS` is
//! set), the platform's local bus through its API otherwise ([`PlatformPublisher`]), or memory
//! in tests ([`MemoryPublisher`]).

use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use crate::events::{Event, module_source};
use crate::platform_client::PlatformClient;
use crate::{ApiError, ModuleName, TenantContext};

/// An event could not be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot publish {detail_type}: {reason}")]
pub struct PublishError {
    /// The event's detail-type.
    pub detail_type: String,
    /// Why.
    pub reason: String,
}

impl From<PublishError> for ApiError {
    fn from(error: PublishError) -> Self {
        ApiError::bad_gateway(error.to_string())
    }
}

/// Where events go. Implementations deliver one envelope as it is.
#[async_trait]
pub trait EventPublisher: Send + Sync + fmt::Debug {
    /// Publishes `event`.
    ///
    /// # Errors
    /// A [`PublishError`] saying why the event was not accepted.
    async fn publish(&self, event: &Event) -> Result<(), PublishError>;
}

fn failed(event: &Event, reason: impl fmt::Display) -> PublishError {
    PublishError {
        detail_type: event.detail_type.clone(),
        reason: reason.to_string(),
    }
}

/// Publishes through the platform (`POST /api/v1/events`), which puts the event on its bus:
/// the local bus under `plinth up`.
#[derive(Debug, Clone)]
pub struct PlatformPublisher {
    platform: PlatformClient,
}

impl PlatformPublisher {
    /// A publisher that posts to `platform`.
    #[must_use]
    pub fn new(platform: PlatformClient) -> Self {
        Self { platform }
    }
}

#[async_trait]
impl EventPublisher for PlatformPublisher {
    async fn publish(&self, event: &Event) -> Result<(), PublishError> {
        self.platform
            .publish_event(event)
            .await
            .map_err(|e| failed(event, e))
    }
}

/// Keeps published events in memory, for tests.
///
/// ```
/// use plinth_module_sdk::publisher::{EventPublisher, MemoryPublisher};
/// use plinth_module_sdk::events::Event;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let memory = MemoryPublisher::default();
/// let event = Event::new("plinth.module.financial", "financial.invoice.paid", Default::default());
/// memory.publish(&event).await.unwrap();
/// assert_eq!(memory.events()[0].detail_type, "financial.invoice.paid");
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryPublisher {
    events: Arc<Mutex<Vec<Event>>>,
}

impl MemoryPublisher {
    /// Everything published so far, oldest first.
    #[must_use]
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl EventPublisher for MemoryPublisher {
    async fn publish(&self, event: &Event) -> Result<(), PublishError> {
        let mut events = self.events.lock().map_err(|e| failed(event, e))?;
        events.push(event.clone());
        Ok(())
    }
}

/// Publishes to an Amazon EventBridge bus (`PutEvents`), as modules do on AWS.
#[cfg(feature = "eventbridge")]
#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

#[cfg(feature = "eventbridge")]
impl EventBridgePublisher {
    /// A publisher to `bus` with the given client.
    #[must_use]
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }

    /// A publisher to `bus` with credentials and region from the environment (and
    /// `AWS_ENDPOINT_URL` when set).
    pub async fn from_env(bus: impl Into<String>) -> Self {
        let config = aws_config::load_from_env().await;
        Self::new(aws_sdk_eventbridge::Client::new(&config), bus)
    }
}

#[cfg(feature = "eventbridge")]
#[async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, event: &Event) -> Result<(), PublishError> {
        use aws_sdk_eventbridge::types::PutEventsRequestEntry;
        let detail = serde_json::to_string(&event.detail).map_err(|e| failed(event, e))?;
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(&event.source)
            .detail_type(&event.detail_type)
            .detail(detail)
            .set_resources(Some(event.resources.clone()))
            .build();
        let output = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| failed(event, aws_sdk_eventbridge::error::DisplayErrorContext(e)))?;
        match output.entries().first().and_then(|e| e.error_message()) {
            Some(message) => Err(failed(event, message)),
            None if output.failed_entry_count() > 0 => Err(failed(event, "the entry failed")),
            None => Ok(()),
        }
    }
}

/// Publishes this module's events for a request's tenant and company.
///
/// ```
/// use std::sync::Arc;
/// use plinth_module_sdk::publisher::{MemoryPublisher, Publisher};
/// use plinth_module_sdk::{ModuleName, testkit::TestKit};
/// use serde_json::json;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let memory = MemoryPublisher::default();
/// let module = ModuleName::parse("financial").unwrap();
/// let publisher = Publisher::new(&module, Arc::new(memory.clone()));
/// let ctx = TestKit::new("financial").context("acme").company("acme-de").build();
/// publisher
///     .publish(&ctx, "financial.invoice.paid", &json!({"invoice_id": "INV-1"}))
///     .await
///     .unwrap();
/// let event = &memory.events()[0];
/// assert_eq!(event.source, "plinth.module.financial");
/// assert_eq!(event.tenant_id(), Some("acme"));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Publisher {
    module: ModuleName,
    inner: Arc<dyn EventPublisher>,
}

impl Publisher {
    /// A publisher of `module`'s events through `inner`.
    #[must_use]
    pub fn new(module: &ModuleName, inner: Arc<dyn EventPublisher>) -> Self {
        Self {
            module: module.clone(),
            inner,
        }
    }

    /// Publishes `detail_type` with `payload` (an object) for the context's tenant and
    /// company, and gives back the event as sent.
    ///
    /// # Errors
    /// A [`PublishError`] when `detail_type` is not in the module's namespace
    /// (`{module}.…`), the payload is not an object, or the bus refuses the event.
    pub async fn publish(
        &self,
        ctx: &TenantContext,
        detail_type: &str,
        payload: &impl Serialize,
    ) -> Result<Event, PublishError> {
        let refuse = |reason: String| PublishError {
            detail_type: detail_type.to_owned(),
            reason,
        };
        if !detail_type.starts_with(&format!("{}.", self.module)) {
            return Err(refuse(format!(
                "a module publishes only its own events, named `{}.…`",
                self.module
            )));
        }
        let payload = match serde_json::to_value(payload) {
            Ok(Value::Object(payload)) => payload,
            Ok(_) => return Err(refuse("the payload must be a JSON object".into())),
            Err(e) => return Err(refuse(e.to_string())),
        };
        let event = Event::new(module_source(&self.module), detail_type, payload)
            .for_tenant(&ctx.tenant_id, ctx.company_id.as_deref());
        self.inner.publish(&event).await?;
        Ok(event)
    }
}
