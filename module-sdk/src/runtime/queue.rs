//! The module's events on ECS: its rules deliver to its SQS queue (`PLINTH_EVENT_QUEUE_URL`),
//! which this consumer reads while the module serves.
//!
//! Long polling (20 s), up to 10 messages at a time, each kept invisible to other consumers for
//! the visibility timeout while its handlers run. A message whose event was delivered (or
//! dropped on purpose: no such tenant, a redelivery) is deleted; one whose handler failed, or
//! whose body is not an event, is left alone: SQS offers it again once the visibility timeout
//! has passed and, after the queue's `maxReceiveCount` (5) receives, moves it to the dead-letter
//! queue `plinth-{module}-events-dlq`.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::Message;
use tokio::sync::watch;

use crate::manifest::Manifest;
use crate::subscriber::{Subscriptions, dispatch_message};

/// How long a receive waits for messages (SQS's longest).
const WAIT: Duration = Duration::from_secs(20);
/// The most messages one receive may return.
const BATCH: i32 = 10;
/// The pause after a failed receive, doubled up to a minute.
const BACKOFF: Duration = Duration::from_secs(1);

/// Reads one queue until told to stop.
#[derive(Debug)]
pub(super) struct QueueConsumer {
    sqs: Client,
    url: String,
    visibility_timeout: Duration,
    manifest: Arc<Manifest>,
    subscriptions: Option<Subscriptions>,
    /// The queue's name, when its URL is to be found ([`QueueConsumer::named`]).
    name: Option<String>,
}

impl QueueConsumer {
    /// A consumer of `url` with credentials and region from the environment (and
    /// `AWS_ENDPOINT_URL` when set).
    pub(super) async fn from_env(
        url: &str,
        visibility_timeout: Duration,
        manifest: Arc<Manifest>,
        subscriptions: Option<Subscriptions>,
    ) -> Self {
        let config = aws_config::load_from_env().await;
        Self {
            sqs: Client::new(&config),
            url: url.to_owned(),
            visibility_timeout,
            manifest,
            subscriptions,
            name: None,
        }
    }

    /// A consumer of the queue named `name` (`plinth-{module}-events`, which the platform
    /// creates when it subscribes the module — just after the module starts), found when it
    /// exists.
    pub(super) async fn named(
        name: &str,
        visibility_timeout: Duration,
        manifest: Arc<Manifest>,
        subscriptions: Option<Subscriptions>,
    ) -> Self {
        let mut consumer = Self::from_env("", visibility_timeout, manifest, subscriptions).await;
        consumer.name = Some(name.to_owned());
        consumer
    }

    /// Waits until the named queue exists; false when told to stop first.
    async fn find(&mut self, stop: &mut watch::Receiver<bool>) -> bool {
        let Some(name) = self.name.clone() else {
            return true;
        };
        let mut backoff = BACKOFF;
        loop {
            match self.sqs.get_queue_url().queue_name(&name).send().await {
                Ok(found) => {
                    self.url = found.queue_url.unwrap_or_default();
                    return true;
                }
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|e| e.is_queue_does_not_exist()) =>
                {
                    tracing::debug!(queue = %name, "the event queue is not there yet");
                }
                Err(error) => {
                    tracing::warn!(queue = %name, error = %DisplayErrorContext(error), "cannot look up the event queue (sqs:GetQueueUrl); trying again");
                }
            }
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => return false,
                () = tokio::time::sleep(backoff) => {},
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    /// Receives and delivers until `stop` turns true (or its sender is dropped). A batch being
    /// delivered is finished first; a receive still waiting is abandoned (it took nothing).
    pub(super) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        if !self.find(&mut stop).await {
            return;
        }
        tracing::info!(queue = %self.url, "consuming the module's event queue");
        let mut backoff = BACKOFF;
        loop {
            let received = tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => break,
                received = self.receive() => received,
            };
            match received {
                Ok(messages) => {
                    backoff = BACKOFF;
                    for message in messages {
                        self.handle(message).await;
                    }
                }
                Err(error) => {
                    tracing::error!(queue = %self.url, %error, "cannot receive events; trying again");
                    tokio::select! {
                        _ = stop.wait_for(|stopped| *stopped) => break,
                        () = tokio::time::sleep(backoff) => {},
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
            }
        }
        tracing::info!(queue = %self.url, "stopped consuming the event queue");
    }

    async fn receive(&self) -> Result<Vec<Message>, String> {
        let visibility = i32::try_from(self.visibility_timeout.as_secs()).unwrap_or(i32::MAX);
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(BATCH)
            .wait_time_seconds(WAIT.as_secs().try_into().unwrap_or(20))
            .visibility_timeout(visibility.max(1))
            .send()
            .await
            .map_err(|e| DisplayErrorContext(e).to_string())?;
        Ok(received.messages.unwrap_or_default())
    }

    /// Delivers one message; deletes it when delivered.
    async fn handle(&self, message: Message) {
        let id = message.message_id().unwrap_or_default();
        let body = message.body().unwrap_or_default();
        let subscriptions = self.subscriptions.as_ref();
        match dispatch_message(subscriptions, &self.manifest, body).await {
            Ok(outcomes) => {
                tracing::debug!(id, ?outcomes, "event delivered");
                let Some(receipt) = message.receipt_handle() else {
                    return;
                };
                let deleted = self
                    .sqs
                    .delete_message()
                    .queue_url(&self.url)
                    .receipt_handle(receipt)
                    .send()
                    .await;
                if let Err(error) = deleted {
                    // It comes back after the visibility timeout; redeliveries are dropped by
                    // event id.
                    let error = DisplayErrorContext(error);
                    tracing::warn!(id, %error, "cannot delete a delivered message");
                }
            }
            Err(error) => {
                tracing::warn!(id, %error, "event not delivered; it stays on the queue");
            }
        }
    }
}
