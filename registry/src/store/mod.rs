//! The `Store` port: every piece of the control plane is kept through it.
//!
//! The model is DynamoDB's: items addressed by a partition key and a sort key, strongly
//! consistent reads, conditional writes, queries over one partition in sort-key order, and
//! all-or-nothing transactions. Two adapters implement it with the same semantics, proven by
//! one conformance suite (`registry/tests/store_conformance.rs`):
//!
//! - [`dynamodb::DynamoStore`] on AWS (or an emulator at `AWS_ENDPOINT_URL`);
//! - [`embedded::EmbeddedStore`] on one machine, a crash-safe redb file.
//!
//! Writes race through optimistic versions: read an item, change it, write it back with
//! [`Condition::Version`] of what was read. The access patterns and keys are in [`keys`].

#[cfg(feature = "aws")]
pub mod dynamodb;
pub mod embedded;
pub mod keys;
mod limits;

use std::fmt;

use async_trait::async_trait;
use serde_json::{Map, Value};

pub use limits::{MAX_BATCH_GET, MAX_ITEM_BYTES, MAX_PAGE_BYTES, MAX_TRANSACTION_WRITES};

/// Where an item lives: its partition key and its sort key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} / {}", self.pk, self.sk)
    }
}

/// One stored item: a JSON object under a key, with the version that optimistic writes check.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub key: Key,
    /// Starts at 1 and rises by one with every write that goes through [`Item::next`] or
    /// [`Store::update`].
    pub version: u64,
    /// Always a JSON object.
    pub data: Map<String, Value>,
    /// Unix seconds after which the item is gone (DynamoDB TTL; reads never return it).
    pub expires_at: Option<i64>,
}

impl Item {
    /// A first version of an item, to be written with [`Condition::Absent`].
    pub fn new(key: Key, data: Map<String, Value>) -> Self {
        Self {
            key,
            version: 1,
            data,
            expires_at: None,
        }
    }

    /// The next version of this item carrying `data`, and the condition that writes it only
    /// if nobody else wrote in between.
    pub fn next(&self, data: Map<String, Value>) -> (Item, Condition) {
        let item = Item {
            key: self.key.clone(),
            version: self.version + 1,
            data,
            expires_at: self.expires_at,
        };
        (item, Condition::Version(self.version))
    }

    pub fn expiring_at(mut self, unix_seconds: i64) -> Self {
        self.expires_at = Some(unix_seconds);
        self
    }

    pub(crate) fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// What must be true of the stored item for a write to happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Write whatever is there.
    Always,
    /// Only if no item has this key.
    Absent,
    /// Only if an item has this key.
    Exists,
    /// Only if the stored item has exactly this version.
    Version(u64),
}

impl Condition {
    /// Whether the condition holds given the stored version (`None` when absent).
    pub(crate) fn holds(self, stored: Option<u64>) -> bool {
        match self {
            Condition::Always => true,
            Condition::Absent => stored.is_none(),
            Condition::Exists => stored.is_some(),
            Condition::Version(v) => stored == Some(v),
        }
    }
}

/// A partial change to an item's data: top-level fields set or removed, version + 1.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Update {
    pub set: Map<String, Value>,
    pub remove: Vec<String>,
}

impl Update {
    pub fn set(mut self, field: impl Into<String>, value: Value) -> Self {
        self.set.insert(field.into(), value);
        self
    }

    pub fn remove(mut self, field: impl Into<String>) -> Self {
        self.remove.push(field.into());
        self
    }

    pub(crate) fn apply(&self, data: &mut Map<String, Value>) {
        for field in &self.remove {
            data.remove(field);
        }
        for (field, value) in &self.set {
            data.insert(field.clone(), value.clone());
        }
    }
}

/// One write of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Put {
        item: Item,
        condition: Condition,
    },
    Delete {
        key: Key,
        condition: Condition,
    },
    /// Writes nothing; the transaction happens only if the condition holds.
    Check {
        key: Key,
        condition: Condition,
    },
}

impl Write {
    pub fn key(&self) -> &Key {
        match self {
            Write::Put { item, .. } => &item.key,
            Write::Delete { key, .. } | Write::Check { key, .. } => key,
        }
    }

    pub fn condition(&self) -> Condition {
        match self {
            Write::Put { condition, .. }
            | Write::Delete { condition, .. }
            | Write::Check { condition, .. } => *condition,
        }
    }
}

/// Which sort keys of a partition a query reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKey {
    All,
    Prefix(String),
    /// Both ends included.
    Between(String, String),
}

/// A query over one partition, in sort-key order (byte order of the UTF-8 keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub pk: String,
    pub sort_key: SortKey,
    pub descending: bool,
    /// At most this many items in the page; a page also stops at about 1 MB of items.
    pub limit: Option<usize>,
    /// Continue after the page that returned this cursor.
    pub after: Option<Cursor>,
}

impl Query {
    pub fn partition(pk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sort_key: SortKey::All,
            descending: false,
            limit: None,
            after: None,
        }
    }

    pub fn prefix(pk: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            sort_key: SortKey::Prefix(prefix.into()),
            ..Self::partition(pk)
        }
    }

    pub fn between(pk: impl Into<String>, from: impl Into<String>, to: impl Into<String>) -> Self {
        Self {
            sort_key: SortKey::Between(from.into(), to.into()),
            ..Self::partition(pk)
        }
    }

    pub fn descending(mut self) -> Self {
        self.descending = true;
        self
    }

    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        self.after = cursor;
        self
    }
}

/// Where a query page ended: the sort key of its last item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub String);

/// One page of a query; `next` is set when more items may follow.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<Cursor>,
}

/// Why one write of a cancelled transaction failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// This write was fine; another one failed.
    None,
    ConditionFailed,
    /// Another transaction touched the item at the same time; retry.
    Conflict,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the condition on {key} does not hold")]
    ConditionFailed { key: Key },
    #[error("the transaction was cancelled ({reasons:?}); nothing was written")]
    TransactionCanceled { reasons: Vec<CancelReason> },
    #[error("invalid store request: {0}")]
    Invalid(String),
    /// An item past [`MAX_ITEM_BYTES`]: the caller's data, so a 413 rather than a bug.
    #[error("item {key} is {size} bytes, more than {MAX_ITEM_BYTES}")]
    TooLarge {
        key: Key,
        size: usize,
        /// The path of its largest field, e.g. `configuration.currency`.
        largest: Option<String>,
    },
    #[error("stored item {key} is not readable: {reason}")]
    Corrupt { key: Key, reason: String },
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// True when a write lost a race and may be retried after reading again.
    pub fn is_conflict(&self) -> bool {
        match self {
            StoreError::ConditionFailed { .. } => true,
            StoreError::TransactionCanceled { reasons } => reasons
                .iter()
                .any(|r| matches!(r, CancelReason::ConditionFailed | CancelReason::Conflict)),
            _ => false,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The control plane's storage.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// The item under `key`, strongly consistent.
    async fn get(&self, key: &Key) -> StoreResult<Option<Item>>;

    /// Writes `item` exactly as given (its version included) if `condition` holds.
    async fn put(&self, item: Item, condition: Condition) -> StoreResult<()>;

    /// Applies `update` to an existing item and raises its version by one; returns the new item.
    async fn update(&self, key: &Key, update: Update, condition: Condition) -> StoreResult<Item>;

    /// Deletes the item if `condition` holds (deleting nothing is fine under `Always`).
    async fn delete(&self, key: &Key, condition: Condition) -> StoreResult<()>;

    /// One page of a partition in sort-key order.
    async fn query(&self, query: &Query) -> StoreResult<Page>;

    /// The items that exist among `keys`, in the order of `keys`; at most
    /// [`MAX_BATCH_GET`] keys per call.
    async fn batch_get(&self, keys: &[Key]) -> StoreResult<Vec<Item>>;

    /// All writes or none; at most [`MAX_TRANSACTION_WRITES`], each key at most once.
    async fn transact(&self, writes: Vec<Write>) -> StoreResult<()>;
}

/// Every item of a query, following cursors page by page.
pub async fn query_all(store: &dyn Store, query: &Query) -> StoreResult<Vec<Item>> {
    let mut query = query.clone();
    let mut items = Vec::new();
    loop {
        let page = store.query(&query).await?;
        items.extend(page.items);
        match page.next {
            Some(cursor) => query.after = Some(cursor),
            None => return Ok(items),
        }
    }
}

pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl From<StoreError> for crate::Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ConditionFailed { .. } | StoreError::TransactionCanceled { .. } => {
                crate::Error::Conflict(crate::error::CHANGED_MEANWHILE.into())
            }
            StoreError::Unavailable(ref message) => crate::Error::Unavailable {
                detail: message.clone(),
                cause: Some(Box::new(e)),
            },
            // The detail never shows a store key: callers see the record's field, the log the key.
            StoreError::TooLarge {
                size, ref largest, ..
            } => {
                let field = largest
                    .as_ref()
                    .map(|f| format!("; its largest field is `{f}`"))
                    .unwrap_or_default();
                tracing::info!(error = %e, "refused a record past the store's item limit");
                crate::Error::TooLarge(format!(
                    "the record would be {size} bytes, more than the {MAX_ITEM_BYTES} bytes the \
                     store holds{field}"
                ))
            }
            other => crate::Error::internal_because("the store refused a request", other),
        }
    }
}

/// A stored item as the record it holds.
pub fn from_item<T: serde::de::DeserializeOwned>(item: &Item) -> crate::Result<T> {
    serde_json::from_value(Value::Object(item.data.clone())).map_err(|e| {
        // The key goes to the log with the cause, never into the caller's detail.
        let cause = format!("stored item {}: {e}", item.key);
        crate::Error::internal_because("a stored record is unreadable", cause)
    })
}

/// A record as an item's data.
pub fn to_data<T: serde::Serialize>(value: &T) -> serde_json::Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_store_s_unavailability_is_answered_in_its_words() {
        let store = StoreError::Unavailable("DynamoDB throttled: retry later".into());
        let error = crate::Error::from(store);
        assert!(std::error::Error::source(&error).is_some());
        let response = axum::response::IntoResponse::into_response(error);
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["status"], 503);
        assert_eq!(body["detail"], "DynamoDB throttled: retry later");
    }
}
