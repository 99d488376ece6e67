//! Delivery of an event to an HTTP target, as EventBridge delivers to an API destination: the
//! event's JSON posted as the body, retried with exponential backoff on network errors,
//! timeouts, `429` and `5xx`; any other answer is final.

use std::error::Error as _;
use std::time::Duration;

use reqwest::StatusCode;

use super::{Event, RetryPolicy};

/// The header naming the rule that delivered the event, so a backend can tell them apart.
pub(crate) const RULE_HEADER: &str = "x-plinth-rule";

#[derive(Debug, Clone)]
pub(crate) struct HttpDelivery {
    client: reqwest::Client,
    retry: RetryPolicy,
}

/// A delivery that gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub reason: String,
    pub attempts: u32,
}

impl HttpDelivery {
    pub(crate) fn new(retry: RetryPolicy, timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap_or_default();
        Self { client, retry }
    }

    /// Posts `event` to `target` until it is accepted or the policy gives up; gives back the
    /// number of attempts made.
    pub(crate) async fn deliver(
        &self,
        target: &str,
        rule: &str,
        event: &Event,
    ) -> Result<u32, Failure> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (reason, retryable) = match self.post(target, rule, event).await {
                Ok(()) => return Ok(attempts),
                Err(failed) => failed,
            };
            if !retryable || attempts >= self.retry.attempts.max(1) {
                return Err(Failure { reason, attempts });
            }
            tracing::debug!(target, rule, attempts, %reason, "event delivery failed; retrying");
            tokio::time::sleep(self.retry.backoff(attempts)).await;
        }
    }

    /// One attempt; on failure, why and whether another attempt may succeed.
    async fn post(&self, target: &str, rule: &str, event: &Event) -> Result<(), (String, bool)> {
        let sent = self
            .client
            .post(target)
            .header(RULE_HEADER, rule)
            .json(event)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) if error.is_builder() => {
                return Err((format!("{target} is not a valid URL: {error}"), false));
            }
            Err(error) => return Err((format!("cannot reach {target}: {}", chain(&error)), true)),
        };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retryable = status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT;
        Err((format!("{target} answered {status}"), retryable))
    }
}

/// What went wrong, with the causes that say why (refused, timed out, …); the URL is already
/// in the reason.
fn chain(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
