//! Dead letters: events the local bus could not deliver after its retries, kept with the rule,
//! the target and the reason, until they are replayed.
//!
//! Two stores: [`InMemoryDeadLetters`] (the default; gone when the process ends) and
//! [`StoredDeadLetters`], over the platform's [`Store`] so that `plinth up` keeps them across
//! restarts — under `PK=DEADLETTERS SK={id}`, expiring after [`KEPT_FOR_DAYS`] days like an
//! SQS dead-letter queue's longest retention. On AWS, EventBridge keeps its own dead letters
//! (a rule target's dead-letter queue); these stores are for one-machine mode.

use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use plinth_module_sdk::ModuleName;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::Event;
use crate::store::{Condition, Item, Key, Query, Store, StoreError, StoreResult, query_all};

/// How long a stored dead letter is kept.
pub const KEPT_FOR_DAYS: i64 = 14;

const PARTITION: &str = "DEADLETTERS";

/// An event that could not be delivered to a rule's target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Unique, and sorting by time (a UUID v7).
    pub id: String,
    pub event: Event,
    /// The module whose rule it was.
    pub module: ModuleName,
    /// The rule's name, `plinth-{module}-{subscription}`.
    pub rule: String,
    /// The URL the event was posted to.
    pub target: String,
    /// Why the last attempt failed, e.g. `http://…/_plinth/events/x answered 503 Service Unavailable`.
    pub reason: String,
    /// How many attempts were made, replays included.
    pub attempts: u32,
    /// When the last attempt failed, RFC 3339.
    pub failed_at: String,
}

impl DeadLetter {
    /// A dead letter failing now.
    pub fn new(event: Event, module: ModuleName, rule: String, target: String) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            event,
            module,
            rule,
            target,
            reason: String::new(),
            attempts: 0,
            failed_at: now(),
        }
    }

    /// This dead letter after `attempts` more attempts, the last failing for `reason`.
    pub fn failed(mut self, reason: String, attempts: u32) -> Self {
        self.reason = reason;
        self.attempts += attempts;
        self.failed_at = now();
        self
    }
}

use crate::clock::now;

/// What a replay of dead letters did.
#[derive(Debug, Default, Serialize)]
pub struct Replay {
    /// How many were delivered (and forgotten).
    pub delivered: usize,
    /// The ones that failed again, as now kept.
    pub failed: Vec<DeadLetter>,
}

/// The platform's undelivered events, to read and send again: the port the API reads them
/// through (one-machine mode: the local bus; on AWS they are in SQS dead-letter queues).
#[async_trait]
pub trait DeadLetterQueue: Send + Sync + fmt::Debug {
    /// Every dead letter, oldest first.
    async fn list(&self) -> StoreResult<Vec<DeadLetter>>;
    /// Delivers every dead letter again; delivered ones are forgotten.
    async fn replay(&self) -> StoreResult<Replay>;
}

/// Where dead letters are kept.
#[async_trait]
pub trait DeadLetterStore: Send + Sync + fmt::Debug {
    /// Keeps `letter`, replacing the one with the same id.
    async fn put(&self, letter: &DeadLetter) -> StoreResult<()>;
    /// Every dead letter, oldest first.
    async fn list(&self) -> StoreResult<Vec<DeadLetter>>;
    /// Forgets a dead letter; forgetting one that is gone is fine.
    async fn remove(&self, id: &str) -> StoreResult<()>;
}

/// Dead letters in this process's memory.
#[derive(Debug, Default)]
pub struct InMemoryDeadLetters {
    letters: Mutex<Vec<DeadLetter>>,
}

#[async_trait]
impl DeadLetterStore for InMemoryDeadLetters {
    async fn put(&self, letter: &DeadLetter) -> StoreResult<()> {
        let mut letters = self.letters.lock().map_err(poisoned)?;
        match letters.iter_mut().find(|l| l.id == letter.id) {
            Some(kept) => *kept = letter.clone(),
            None => letters.push(letter.clone()),
        }
        Ok(())
    }

    async fn list(&self) -> StoreResult<Vec<DeadLetter>> {
        Ok(self.letters.lock().map_err(poisoned)?.clone())
    }

    async fn remove(&self, id: &str) -> StoreResult<()> {
        self.letters
            .lock()
            .map_err(poisoned)?
            .retain(|l| l.id != id);
        Ok(())
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("the dead-letter list was poisoned by a panic".into())
}

/// Dead letters in the platform's store.
#[derive(Debug, Clone)]
pub struct StoredDeadLetters {
    store: Arc<dyn Store>,
}

impl StoredDeadLetters {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl DeadLetterStore for StoredDeadLetters {
    async fn put(&self, letter: &DeadLetter) -> StoreResult<()> {
        let Value::Object(data) = serde_json::to_value(letter)
            .map_err(|e| StoreError::Invalid(format!("a dead letter is not JSON: {e}")))?
        else {
            return Err(StoreError::Invalid("a dead letter is not an object".into()));
        };
        let expires_at = OffsetDateTime::now_utc().unix_timestamp() + KEPT_FOR_DAYS * 86_400;
        let item = Item::new(Key::new(PARTITION, &letter.id), data).expiring_at(expires_at);
        self.store.put(item, Condition::Always).await
    }

    async fn list(&self) -> StoreResult<Vec<DeadLetter>> {
        let items = query_all(self.store.as_ref(), &Query::partition(PARTITION)).await?;
        items
            .into_iter()
            .map(|item| {
                serde_json::from_value(Value::Object(item.data)).map_err(|e| StoreError::Corrupt {
                    key: item.key,
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    async fn remove(&self, id: &str) -> StoreResult<()> {
        self.store
            .delete(&Key::new(PARTITION, id), Condition::Always)
            .await
    }
}
