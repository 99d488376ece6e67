//! DynamoDB's limits, enforced by both adapters before anything is written, so that code
//! which works on one machine also works on AWS.

use std::collections::HashSet;

use super::{Item, Key, Query, SortKey, StoreError, StoreResult, Update, Write};

/// DynamoDB's item size limit.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// DynamoDB stops a query page after about this much data.
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;
/// DynamoDB's `TransactWriteItems` limit.
pub const MAX_TRANSACTION_WRITES: usize = 100;
/// DynamoDB's `BatchGetItem` limit.
pub const MAX_BATCH_GET: usize = 100;

const MAX_PK_BYTES: usize = 2048;
const MAX_SK_BYTES: usize = 1024;

pub(crate) fn check_key(key: &Key) -> StoreResult<()> {
    for (name, value, max) in [("pk", &key.pk, MAX_PK_BYTES), ("sk", &key.sk, MAX_SK_BYTES)] {
        if value.is_empty() {
            return Err(StoreError::Invalid(format!("{name} must not be empty")));
        }
        if value.len() > max {
            return Err(StoreError::Invalid(format!(
                "{name} is {} bytes, more than {max}",
                value.len()
            )));
        }
        // The embedded store separates pk and sk with NUL.
        if value.contains('\0') {
            return Err(StoreError::Invalid(format!("{name} must not contain NUL")));
        }
    }
    Ok(())
}

/// The size an item counts for against [`MAX_ITEM_BYTES`] and [`MAX_PAGE_BYTES`]: its keys
/// and its data as JSON (close to, and never far below, DynamoDB's own measure).
pub(crate) fn item_size(item: &Item) -> usize {
    let data = serde_json::to_vec(&item.data).map_or(0, |v| v.len());
    item.key.pk.len() + item.key.sk.len() + data + 16
}

pub(crate) fn check_item(item: &Item) -> StoreResult<()> {
    check_key(&item.key)?;
    let size = item_size(item);
    if size > MAX_ITEM_BYTES {
        return Err(StoreError::TooLarge {
            key: item.key.clone(),
            size,
            largest: largest_field(&item.data),
        });
    }
    Ok(())
}

/// The path of the record's largest field, descending while an object is the largest part
/// (`configuration.currency`): what a caller is told to shrink, in the record's own words.
fn largest_field(data: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    let len = |v: &serde_json::Value| serde_json::to_vec(v).map_or(0, |b| b.len());
    let mut path = Vec::new();
    let mut fields = data;
    while let Some((name, value)) = fields.iter().max_by_key(|(_, v)| len(v)) {
        path.push(name.clone());
        match value {
            serde_json::Value::Object(inner) if !inner.is_empty() => fields = inner,
            _ => break,
        }
    }
    (!path.is_empty()).then(|| path.join("."))
}

pub(crate) fn check_update(update: &Update) -> StoreResult<()> {
    if let Some(field) = update.remove.iter().find(|f| update.set.contains_key(*f)) {
        return Err(StoreError::Invalid(format!(
            "field `{field}` is both set and removed"
        )));
    }
    if let Some(field) = update
        .set
        .keys()
        .chain(&update.remove)
        .find(|f| f.is_empty())
    {
        return Err(StoreError::Invalid(format!("empty field name `{field}`")));
    }
    Ok(())
}

pub(crate) fn check_transaction(writes: &[Write]) -> StoreResult<()> {
    if writes.is_empty() {
        return Err(StoreError::Invalid(
            "a transaction needs at least one write".into(),
        ));
    }
    if writes.len() > MAX_TRANSACTION_WRITES {
        return Err(StoreError::Invalid(format!(
            "a transaction takes at most {MAX_TRANSACTION_WRITES} writes, not {}",
            writes.len()
        )));
    }
    let mut seen = HashSet::new();
    for write in writes {
        match write {
            Write::Put { item, .. } => check_item(item)?,
            Write::Delete { key, .. } | Write::Check { key, .. } => check_key(key)?,
        }
        if !seen.insert(write.key()) {
            return Err(StoreError::Invalid(format!(
                "a transaction may touch {} only once",
                write.key()
            )));
        }
    }
    Ok(())
}

pub(crate) fn check_batch(keys: &[Key]) -> StoreResult<()> {
    if keys.len() > MAX_BATCH_GET {
        return Err(StoreError::Invalid(format!(
            "a batch get takes at most {MAX_BATCH_GET} keys, not {}",
            keys.len()
        )));
    }
    let mut seen = HashSet::new();
    for key in keys {
        check_key(key)?;
        if !seen.insert(key) {
            return Err(StoreError::Invalid(format!(
                "a batch get may name {key} only once"
            )));
        }
    }
    Ok(())
}

pub(crate) fn check_query(query: &Query) -> StoreResult<()> {
    if query.pk.is_empty() || query.pk.contains('\0') {
        return Err(StoreError::Invalid(
            "query pk must not be empty or contain NUL".into(),
        ));
    }
    if let SortKey::Between(from, to) = &query.sort_key {
        if from.is_empty() || to.is_empty() {
            return Err(StoreError::Invalid(
                "between needs two non-empty sort keys".into(),
            ));
        }
        if from > to {
            return Err(StoreError::Invalid(format!(
                "between `{from}` and `{to}`: the first must not sort after the second"
            )));
        }
    }
    if query.limit == Some(0) {
        return Err(StoreError::Invalid("query limit must be at least 1".into()));
    }
    Ok(())
}
