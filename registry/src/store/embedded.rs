//! The embedded store: one redb file, crash-safe (every commit is durable before it returns),
//! with DynamoDB's semantics.
//!
//! Keys are `pk NUL sk` as bytes, so redb's byte order is DynamoDB's sort-key order within a
//! partition. Each call is one redb transaction: conditions are checked and writes applied
//! under redb's single writer, so racing writers serialise and exactly one wins a condition.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::limits::{
    check_batch, check_item, check_key, check_query, check_transaction, check_update, item_size,
};
use super::{
    CancelReason, Condition, Cursor, Item, Key, MAX_PAGE_BYTES, Page, Query, SortKey, Store,
    StoreError, StoreResult, Update, Write, now_unix,
};

const ITEMS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("items");

/// The store `plinth up` runs on by default.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").finish_non_exhaustive()
    }
}

/// What one item is on disk.
#[derive(Serialize, Deserialize)]
struct Stored {
    v: u64,
    d: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    x: Option<i64>,
}

impl EmbeddedStore {
    /// Opens the store at `path`, creating the file (not its folder) when missing.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        let path = path.as_ref();
        let db = Database::create(path)
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(unavailable)?;
        txn.open_table(ITEMS).map_err(unavailable)?;
        txn.commit().map_err(unavailable)?;
        Ok(Self { db: Arc::new(db) })
    }

    /// Writes many items in one transaction, unconditionally: for seeding and imports, not
    /// for the control plane's own writes (which go through the [`Store`] port).
    pub async fn import(&self, items: Vec<Item>) -> StoreResult<()> {
        for item in &items {
            check_item(item)?;
        }
        self.blocking(move |db| {
            in_write(db, |txn| {
                for item in &items {
                    write_item(txn, item)?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Runs blocking redb work off the async runtime.
    async fn blocking<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> StoreResult<T> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn encode_key(pk: &str, sk: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(pk.len() + sk.len() + 1);
    bytes.extend_from_slice(pk.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(sk.as_bytes());
    bytes
}

fn decode(key_bytes: &[u8], value: &[u8]) -> StoreResult<Item> {
    let split = key_bytes
        .iter()
        .position(|b| *b == 0)
        .unwrap_or(key_bytes.len());
    let pk = String::from_utf8_lossy(&key_bytes[..split]).into_owned();
    let sk = String::from_utf8_lossy(key_bytes.get(split + 1..).unwrap_or_default()).into_owned();
    let key = Key { pk, sk };
    let stored: Stored = serde_json::from_slice(value).map_err(|e| StoreError::Corrupt {
        key: key.clone(),
        reason: e.to_string(),
    })?;
    Ok(Item {
        key,
        version: stored.v,
        data: stored.d,
        expires_at: stored.x,
    })
}

fn encode_item(item: &Item) -> StoreResult<Vec<u8>> {
    let stored = Stored {
        v: item.version,
        d: item.data.clone(),
        x: item.expires_at,
    };
    serde_json::to_vec(&stored).map_err(|e| StoreError::Invalid(e.to_string()))
}

/// The live item under `key` inside a write transaction; expired items count as absent, as
/// if DynamoDB's TTL had already removed them.
fn read_live(txn: &WriteTransaction, key: &Key) -> StoreResult<Option<Item>> {
    let table = txn.open_table(ITEMS).map_err(unavailable)?;
    let bytes = encode_key(&key.pk, &key.sk);
    let Some(value) = table.get(bytes.as_slice()).map_err(unavailable)? else {
        return Ok(None);
    };
    let item = decode(&bytes, value.value())?;
    Ok((!item.is_expired(now_unix())).then_some(item))
}

fn check(txn: &WriteTransaction, key: &Key, condition: Condition) -> StoreResult<Option<Item>> {
    let stored = read_live(txn, key)?;
    if condition.holds(stored.as_ref().map(|i| i.version)) {
        Ok(stored)
    } else {
        Err(StoreError::ConditionFailed { key: key.clone() })
    }
}

fn write_item(txn: &WriteTransaction, item: &Item) -> StoreResult<()> {
    let value = encode_item(item)?;
    let mut table = txn.open_table(ITEMS).map_err(unavailable)?;
    table
        .insert(
            encode_key(&item.key.pk, &item.key.sk).as_slice(),
            value.as_slice(),
        )
        .map_err(unavailable)?;
    Ok(())
}

fn remove_item(txn: &WriteTransaction, key: &Key) -> StoreResult<()> {
    let mut table = txn.open_table(ITEMS).map_err(unavailable)?;
    table
        .remove(encode_key(&key.pk, &key.sk).as_slice())
        .map_err(unavailable)?;
    Ok(())
}

/// Runs `work` in one write transaction, committing only when it succeeds.
fn in_write<T>(
    db: &Database,
    work: impl FnOnce(&WriteTransaction) -> StoreResult<T>,
) -> StoreResult<T> {
    let txn = db.begin_write().map_err(unavailable)?;
    match work(&txn) {
        Ok(value) => {
            txn.commit().map_err(unavailable)?;
            Ok(value)
        }
        Err(e) => {
            txn.abort().map_err(unavailable)?;
            Err(e)
        }
    }
}

/// The smallest byte string greater than every string starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn query_bounds(query: &Query) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let (mut lower, mut upper) = match &query.sort_key {
        SortKey::All => {
            let start = encode_key(&query.pk, "");
            let end = prefix_end(&start).map_or(Bound::Unbounded, Bound::Excluded);
            (Bound::Included(start), end)
        }
        SortKey::Prefix(prefix) => {
            let start = encode_key(&query.pk, prefix);
            let end = prefix_end(&start).map_or(Bound::Unbounded, Bound::Excluded);
            (Bound::Included(start), end)
        }
        SortKey::Between(from, to) => (
            Bound::Included(encode_key(&query.pk, from)),
            Bound::Included(encode_key(&query.pk, to)),
        ),
    };
    if let Some(Cursor(after)) = &query.after {
        let after = Bound::Excluded(encode_key(&query.pk, after));
        if query.descending {
            upper = after;
        } else {
            lower = after;
        }
    }
    (lower, upper)
}

fn run_query(db: &Database, query: &Query) -> StoreResult<Page> {
    let txn = db.begin_read().map_err(unavailable)?;
    let table = txn.open_table(ITEMS).map_err(unavailable)?;
    let (lower, upper) = query_bounds(query);
    let bounds = (
        lower.as_ref().map(Vec::as_slice),
        upper.as_ref().map(Vec::as_slice),
    );
    let range = table.range::<&[u8]>(bounds).map_err(unavailable)?;
    let entries: Box<dyn Iterator<Item = _>> = if query.descending {
        Box::new(range.rev())
    } else {
        Box::new(range)
    };
    let now = now_unix();
    let limit = query.limit.unwrap_or(usize::MAX);
    let (mut items, mut bytes) = (Vec::new(), 0);
    let mut more = false;
    for entry in entries {
        let (key, value) = entry.map_err(unavailable)?;
        if items.len() >= limit || (!items.is_empty() && bytes >= MAX_PAGE_BYTES) {
            more = true;
            break;
        }
        let item = decode(key.value(), value.value())?;
        bytes += item_size(&item);
        if !item.is_expired(now) {
            items.push(item);
        }
    }
    let next = more
        .then(|| items.last().map(|i| Cursor(i.key.sk.clone())))
        .flatten();
    Ok(Page { items, next })
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &Key) -> StoreResult<Option<Item>> {
        check_key(key)?;
        let key = key.clone();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(ITEMS).map_err(unavailable)?;
            let bytes = encode_key(&key.pk, &key.sk);
            let Some(value) = table.get(bytes.as_slice()).map_err(unavailable)? else {
                return Ok(None);
            };
            let item = decode(&bytes, value.value())?;
            Ok((!item.is_expired(now_unix())).then_some(item))
        })
        .await
    }

    async fn put(&self, item: Item, condition: Condition) -> StoreResult<()> {
        check_item(&item)?;
        self.blocking(move |db| {
            in_write(db, |txn| {
                check(txn, &item.key, condition)?;
                write_item(txn, &item)
            })
        })
        .await
    }

    async fn update(&self, key: &Key, update: Update, condition: Condition) -> StoreResult<Item> {
        check_key(key)?;
        check_update(&update)?;
        let key = key.clone();
        self.blocking(move |db| {
            in_write(db, |txn| {
                let Some(mut item) = check(txn, &key, condition)? else {
                    return Err(StoreError::ConditionFailed { key: key.clone() });
                };
                update.apply(&mut item.data);
                item.version += 1;
                check_item(&item)?;
                write_item(txn, &item)?;
                Ok(item)
            })
        })
        .await
    }

    async fn delete(&self, key: &Key, condition: Condition) -> StoreResult<()> {
        check_key(key)?;
        let key = key.clone();
        self.blocking(move |db| {
            in_write(db, |txn| {
                check(txn, &key, condition)?;
                remove_item(txn, &key)
            })
        })
        .await
    }

    async fn query(&self, query: &Query) -> StoreResult<Page> {
        check_query(query)?;
        let query = query.clone();
        self.blocking(move |db| run_query(db, &query)).await
    }

    async fn batch_get(&self, keys: &[Key]) -> StoreResult<Vec<Item>> {
        check_batch(keys)?;
        let keys = keys.to_vec();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(ITEMS).map_err(unavailable)?;
            let now = now_unix();
            let mut items = Vec::with_capacity(keys.len());
            for key in &keys {
                let bytes = encode_key(&key.pk, &key.sk);
                if let Some(value) = table.get(bytes.as_slice()).map_err(unavailable)? {
                    let item = decode(&bytes, value.value())?;
                    if !item.is_expired(now) {
                        items.push(item);
                    }
                }
            }
            Ok(items)
        })
        .await
    }

    async fn transact(&self, writes: Vec<Write>) -> StoreResult<()> {
        check_transaction(&writes)?;
        self.blocking(move |db| {
            in_write(db, |txn| {
                let mut reasons = Vec::with_capacity(writes.len());
                for write in &writes {
                    reasons.push(match check(txn, write.key(), write.condition()) {
                        Ok(_) => CancelReason::None,
                        Err(StoreError::ConditionFailed { .. }) => CancelReason::ConditionFailed,
                        Err(other) => return Err(other),
                    });
                }
                if reasons.iter().any(|r| *r != CancelReason::None) {
                    return Err(StoreError::TransactionCanceled { reasons });
                }
                for write in &writes {
                    match write {
                        Write::Put { item, .. } => write_item(txn, item)?,
                        Write::Delete { key, .. } => remove_item(txn, key)?,
                        Write::Check { .. } => {}
                    }
                }
                Ok(())
            })
        })
        .await
    }
}
