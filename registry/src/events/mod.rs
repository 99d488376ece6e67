//! The `EventBus` port: the platform publishes every transition; modules publish their own.
//! The `Subscriptions` port turns a module's manifest subscriptions into rules on the bus.
//!
//! | adapter | where |
//! | --- | --- |
//! | [`eventbridge::EventBridgeBus`] | AWS: PutEvents in batches; one EventBridge rule per subscription, targeting the module's Lambda or its SQS queue |
//! | [`local::LocalBus`] | one machine: in-process rules with EventBridge's pattern language, HTTP delivery with retries, [`dead_letters`] |
//!
//! The envelope is `plinth_module_sdk::events::Event`; the platform's own detail-types are
//! listed in `docs/events.md`.

pub mod dead_letters;
mod delivery;
#[cfg(feature = "aws")]
pub mod eventbridge;
pub mod local;

use std::time::Duration;

use async_trait::async_trait;
use plinth_module_sdk::ModuleName;
pub use plinth_module_sdk::events::{Event, PLATFORM_SOURCE};
use plinth_module_sdk::manifest::Subscription;
use sha2::{Digest, Sha256};

use crate::deploy::Deployment;
use crate::deploy::backend::{INSTALLER_ONLY, InstallerOnly};

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

    /// Deletes what holds the module's undelivered events (on AWS its queue and dead-letter
    /// queue), with its data: an uninstall that keeps the data keeps them, since they may
    /// hold events the module has not read. Gives back the names deleted; none is fine.
    async fn drop_queues(&self, _module: &ModuleName) -> Result<Vec<String>, SubscriptionError> {
        Ok(Vec::new())
    }
}

// The functions other than the installer may not create rules either.
#[async_trait]
impl Subscriptions for InstallerOnly {
    async fn subscribe(
        &self,
        _module: &ModuleName,
        _subscriptions: &[Subscription],
        _deployment: &Deployment,
    ) -> Result<Vec<String>, SubscriptionError> {
        Err(SubscriptionError(INSTALLER_ONLY.into()))
    }

    async fn unsubscribe(&self, _module: &ModuleName) -> Result<(), SubscriptionError> {
        Err(SubscriptionError(INSTALLER_ONLY.into()))
    }

    async fn drop_queues(&self, _module: &ModuleName) -> Result<Vec<String>, SubscriptionError> {
        Err(SubscriptionError(INSTALLER_ONLY.into()))
    }
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

/// How often and how patiently something is retried: `attempts` in all (the first one
/// included), waiting `initial_backoff` before the first retry and twice as long before each
/// next one, never more than `max_backoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Four attempts over about a second and a half.
    fn default() -> Self {
        Self {
            attempts: 4,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first retry).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// EventBridge's limit on a rule name.
const MAX_RULE_NAME: usize = 64;

/// The name of the rule of a module's subscription: `plinth-{module}-{subscription}`.
///
/// Rule names allow letters, digits, `.`, `-` and `_` up to 64 characters: a subscription name
/// with other characters, or too long, is cleaned and cut, and ends with a short hash of the
/// name as written so that two subscriptions never share a rule.
pub fn rule_name(module: &ModuleName, subscription: &str) -> String {
    let cleaned: String = subscription
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = format!("plinth-{module}-{cleaned}");
    if cleaned == subscription && name.len() <= MAX_RULE_NAME {
        return name;
    }
    let hash = Sha256::digest(subscription.as_bytes());
    let hash: String = hash.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let kept = MAX_RULE_NAME - hash.len() - 1;
    format!("{}-{hash}", &name[..name.len().min(kept)])
}

/// Where a subscription's events go on the module's backend: its endpoint and the path.
pub fn subscription_target(deployment: &Deployment, subscription: &Subscription) -> String {
    let base = deployment.endpoint.trim_end_matches('/');
    let path = subscription.path.trim_start_matches('/');
    format!("{base}/{path}")
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn only_the_installer_subscribes_modules_to_events() {
        let deployment = Deployment {
            endpoint: String::new(),
            health_url: String::new(),
            handle: serde_json::Value::Null,
            addresses: Vec::new(),
        };
        let error = InstallerOnly
            .subscribe(&ModuleName::parse("billing").unwrap(), &[], &deployment)
            .await
            .unwrap_err();
        assert!(error.0.contains("installer function only"), "{}", error.0);
        let error = InstallerOnly
            .unsubscribe(&ModuleName::parse("billing").unwrap())
            .await
            .unwrap_err();
        assert!(error.0.contains("installer function only"), "{}", error.0);
    }

    use super::*;

    fn module(name: &str) -> ModuleName {
        ModuleName::parse(name).expect("a module name")
    }

    #[test]
    fn a_rule_is_named_after_module_and_subscription() {
        assert_eq!(
            rule_name(&module("financial"), "company-created"),
            "plinth-financial-company-created"
        );
    }

    #[test]
    fn rule_names_stay_valid_and_distinct() {
        let long = module("a-module-with-a-rather-long-name-for-aws");
        let first = rule_name(&long, "invoice-paid-and-settled");
        let second = rule_name(&long, "invoice-paid-and-settled-late");
        assert!(first.len() <= 64 && second.len() <= 64, "{first} {second}");
        assert_ne!(first, second);
        assert!(first.starts_with("plinth-a-module-with-a-rather-long-name-for-aws-invoice"));
        let spaced = rule_name(&module("hr"), "new hire");
        let dashed = rule_name(&module("hr"), "new-hire");
        assert!(spaced.starts_with("plinth-hr-new-hire-"), "{spaced}");
        assert_ne!(spaced, dashed);
        assert!(
            spaced
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        );
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let policy = RetryPolicy {
            attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(700),
        };
        let waits: Vec<u128> = (1..=5).map(|r| policy.backoff(r).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 700, 700]);
    }

    #[test]
    fn the_target_joins_endpoint_and_path() {
        let deployment = Deployment {
            endpoint: "http://127.0.0.1:9001/".into(),
            health_url: String::new(),
            handle: serde_json::Value::Null,
            addresses: Vec::new(),
        };
        let subscription = Subscription {
            name: "x".into(),
            pattern: serde_json::Map::new(),
            path: "/_plinth/events/x".into(),
        };
        assert_eq!(
            subscription_target(&deployment, &subscription),
            "http://127.0.0.1:9001/_plinth/events/x"
        );
    }
}
