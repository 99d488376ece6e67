//! The port every table backend implements: items by whole key, queries by partition.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{DataError, ItemKey, Range, TableSpec};

/// One item: its attributes, key attributes included.
pub type Item = Map<String, Value>;

/// Where a module's tables live. The handle ([`super::Table`]) has checked every key against
/// its tenant before a backend sees it; a backend keys by [`ItemKey::partition`] and
/// [`ItemKey::sort`] exactly as DynamoDB does (sort keys in [`super::SortKey::ordered_bytes`]
/// order), and may use [`ItemKey::tenant`] to pick credentials.
#[async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// The item at `key`, when there is one.
    async fn get(&self, table: &TableSpec, key: &ItemKey) -> Result<Option<Item>, DataError>;

    /// Writes `item` (holding its key attributes) at `key`, replacing what was there.
    async fn put(&self, table: &TableSpec, key: &ItemKey, item: Item) -> Result<(), DataError>;

    /// Writes `item` at `key` only if no item is there, atomically (DynamoDB's
    /// `attribute_not_exists`); whether it was written.
    async fn insert(&self, table: &TableSpec, key: &ItemKey, item: Item)
    -> Result<bool, DataError>;

    /// Deletes the item at `key`; whether there was one.
    async fn delete(&self, table: &TableSpec, key: &ItemKey) -> Result<bool, DataError>;

    /// The items of `key.partition` in `range`, in sort-key order (`key.sort` is ignored).
    async fn query(
        &self,
        table: &TableSpec,
        key: &ItemKey,
        range: &Range,
    ) -> Result<Vec<Item>, DataError>;
}
