//! The EventBridge adapter of the [`EventBus`] and [`Subscriptions`] ports
//! (`aws-sdk-eventbridge`, `aws-sdk-sqs`; honours `AWS_ENDPOINT_URL`).
//!
//! Publishing batches `PutEvents` and retries only the failed entries ([`publish`]). Each
//! subscription of a module becomes the rule `plinth-{module}-{subscription}` on the bus with
//! the manifest's pattern, targeting the module's Lambda function (`function_arn` in the
//! deployment's handle; each rule is allowed to invoke it) or else its SQS queue
//! `plinth-{module}-events`, created with a policy that lets the module's rules send to it
//! ([`rules`]).

mod publish;
mod rules;

use std::sync::OnceLock;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use plinth_module_sdk::ModuleName;
use plinth_module_sdk::manifest::Subscription;

use super::{Event, EventBus, PublishError, RetryPolicy, SubscriptionError, Subscriptions};
use crate::deploy::Deployment;
use publish::{EntryError, PutEvents};

pub use rules::{MAX_RECEIVE_COUNT, dead_letter_queue_name, queue_name};

/// The platform's bus on EventBridge.
///
/// The SQS and Lambda clients of [`Subscriptions`] are made on first use, so a function that
/// only publishes neither builds nor links them.
#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    events: Client,
    config: SdkConfig,
    sqs: OnceLock<aws_sdk_sqs::Client>,
    lambda: OnceLock<aws_sdk_lambda::Client>,
    bus_name: String,
    retry: RetryPolicy,
}

impl EventBridgeBus {
    /// The bus named by `PLINTH_EVENT_BUS` (EventBridge's `default` bus when unset),
    /// configured from the environment.
    pub async fn from_env() -> Self {
        let bus = std::env::var("PLINTH_EVENT_BUS").unwrap_or_else(|_| "default".into());
        Self::new(&crate::aws::config_from_env().await, bus)
    }

    pub fn new(config: &SdkConfig, bus_name: impl Into<String>) -> Self {
        Self {
            events: Client::new(config),
            config: config.clone(),
            sqs: OnceLock::new(),
            lambda: OnceLock::new(),
            bus_name: bus_name.into(),
            retry: RetryPolicy::default(),
        }
    }

    /// This bus, retrying failed `PutEvents` entries with `retry`.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn bus_name(&self) -> &str {
        &self.bus_name
    }

    pub fn client(&self) -> &Client {
        &self.events
    }

    /// Creates the bus when it does not exist yet (`plinth up --aws` on a fresh emulator; on
    /// AWS the stack creates it).
    ///
    /// # Errors
    /// EventBridge's reason, when the bus can neither be found nor created.
    pub async fn create_if_missing(&self) -> Result<(), String> {
        if self
            .events
            .describe_event_bus()
            .name(&self.bus_name)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        self.events
            .create_event_bus()
            .name(&self.bus_name)
            .send()
            .await
            .map(drop)
            .map_err(|e| {
                format!(
                    "cannot create the event bus {}: {}",
                    self.bus_name,
                    aws_sdk_eventbridge::error::DisplayErrorContext(e)
                )
            })
    }

    fn sqs(&self) -> &aws_sdk_sqs::Client {
        self.sqs
            .get_or_init(|| aws_sdk_sqs::Client::new(&self.config))
    }

    fn lambda(&self) -> &aws_sdk_lambda::Client {
        self.lambda
            .get_or_init(|| aws_sdk_lambda::Client::new(&self.config))
    }
}

#[async_trait]
impl EventBus for EventBridgeBus {
    async fn publish(&self, events: Vec<Event>) -> Result<(), PublishError> {
        publish::publish(self, self.retry, events).await
    }
}

#[async_trait]
impl PutEvents for EventBridgeBus {
    async fn put_events(&self, batch: &[Event]) -> Result<Vec<Option<EntryError>>, String> {
        let mut request = self.events.put_events();
        for event in batch {
            request = request.entries(self.entry(event)?);
        }
        let output = request
            .send()
            .await
            .map_err(|e| format!("PutEvents failed: {}", DisplayErrorContext(e)))?;
        Ok(output
            .entries()
            .iter()
            .map(|entry| {
                let code = entry.error_code().unwrap_or_default();
                let message = entry.error_message().unwrap_or_default();
                (entry.event_id().is_none() || !code.is_empty()).then(|| EntryError {
                    code: code.to_owned(),
                    message: message.to_owned(),
                })
            })
            .collect())
    }
}

impl EventBridgeBus {
    fn entry(&self, event: &Event) -> Result<PutEventsRequestEntry, String> {
        let detail = serde_json::to_string(&event.detail)
            .map_err(|e| format!("the detail of event {} is not JSON: {e}", event.id))?;
        let time = DateTime::from_str(&event.time, Format::DateTime).ok();
        Ok(PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(&event.source)
            .detail_type(&event.detail_type)
            .detail(detail)
            .set_resources(Some(event.resources.clone()).filter(|r| !r.is_empty()))
            .set_time(time)
            .build())
    }
}

#[async_trait]
impl Subscriptions for EventBridgeBus {
    async fn subscribe(
        &self,
        module: &ModuleName,
        subscriptions: &[Subscription],
        deployment: &Deployment,
    ) -> Result<Vec<String>, SubscriptionError> {
        rules::subscribe(self, module, subscriptions, deployment).await
    }

    async fn unsubscribe(&self, module: &ModuleName) -> Result<(), SubscriptionError> {
        rules::unsubscribe(self, module).await
    }

    async fn drop_queues(&self, module: &ModuleName) -> Result<Vec<String>, SubscriptionError> {
        rules::drop_queues(self, module).await
    }
}
