//! A tenant's rows of a module, dropped after a retention: disabling a module for a tenant
//! with `drop_data=true` stores a `TenantDrop` (`PK=DATA_DROPS SK={module}#{tenant}`); the
//! installer's sweep deletes the tenant's rows once `drop_after` has passed and removes the
//! record; enabling the module again for the tenant before then removes it in the same
//! change (the rows stay).
//!
//! The key design makes this a prefix delete: every row of a tenant is in partition
//! `{tenant}` or `{tenant}#{company}` (docs/data.md), a key range of the embedded file and a
//! Query per partition on DynamoDB.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Exports;
use crate::error::Result;
use crate::store::{Condition, Item, Key, Query, Write, from_item, query_all, to_data};

/// The partition of every pending tenant drop (one query finds them all).
pub const DATA_DROPS: &str = "DATA_DROPS";

/// A tenant's rows of a module waiting for their retention to end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantDrop {
    pub module: String,
    pub tenant: String,
    /// RFC 3339: the sweep deletes the rows from then on.
    pub drop_after: String,
    pub requested_by: String,
    pub requested_at: String,
}

/// The key of `tenant`'s pending drop of `module`'s rows.
#[must_use]
pub fn drop_key(module: &str, tenant: &str) -> Key {
    Key::new(DATA_DROPS, format!("{module}#{tenant}"))
}

/// The write that stores a pending drop (replacing one before it: the later request's
/// retention holds).
#[must_use]
pub fn schedule(drop: &TenantDrop) -> Write {
    Write::Put {
        item: Item::new(drop_key(&drop.module, &drop.tenant), to_data(drop)),
        condition: Condition::Always,
    }
}

/// The write that cancels a pending drop (none there is fine).
#[must_use]
pub fn cancel(module: &str, tenant: &str) -> Write {
    Write::Delete {
        key: drop_key(module, tenant),
        condition: Condition::Always,
    }
}

impl Exports {
    /// The pending drops whose `drop_after` has passed at `now`, with their stored versions.
    ///
    /// # Errors
    /// The store cannot be read.
    pub async fn due_drops(&self, now: OffsetDateTime) -> Result<Vec<(TenantDrop, u64)>> {
        let items = query_all(self.store.as_ref(), &Query::partition(DATA_DROPS)).await?;
        let mut due = Vec::new();
        for item in &items {
            let drop: TenantDrop = from_item(item)?;
            let at = OffsetDateTime::parse(&drop.drop_after, &Rfc3339).ok();
            if at.is_some_and(|at| at <= now) {
                due.push((drop, item.version));
            }
        }
        Ok(due)
    }

    /// The pending drop of `tenant`'s rows of `module`, if any.
    ///
    /// # Errors
    /// The store cannot be read.
    pub async fn pending_drop(&self, module: &str, tenant: &str) -> Result<Option<TenantDrop>> {
        let item = self.store.get(&drop_key(module, tenant)).await?;
        item.as_ref().map(from_item).transpose()
    }
}
