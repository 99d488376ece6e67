//! Audit: who changed what, when. One record per change, written in the same transaction as
//! the change, kept for [`RETENTION_DAYS`] by the store's TTL.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::Result;
use crate::ids::TenantId;
use crate::store::{Condition, Cursor, Item, Key, Query, Store, Write, keys};

pub const RETENTION_DAYS: i64 = 400;

/// Where platform-wide changes (installs, publishes) are recorded; no tenant id has a `~`.
pub const PLATFORM_SCOPE: &str = "~platform";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRecord {
    pub id: String,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    #[serde(default)]
    pub detail: Value,
}

/// The audit write of a change in `scope` (a tenant id, or [`PLATFORM_SCOPE`]).
pub fn record(scope: &str, actor: &str, action: &str, target: &str, detail: Value) -> Write {
    let now = OffsetDateTime::now_utc();
    let at = now.format(&Rfc3339).unwrap_or_default();
    let id = uuid::Uuid::now_v7().to_string();
    let mut data = json!({"id": id, "at": at, "actor": actor, "action": action, "target": target});
    data["detail"] = detail;
    let key = Key::new(keys::audit_partition(scope), format!("{at}#{id}"));
    let item = Item::new(key, data.as_object().cloned().unwrap_or_default())
        .expiring_at(now.unix_timestamp() + RETENTION_DAYS * 86_400);
    Write::Put {
        item,
        condition: Condition::Absent,
    }
}

/// A page of a tenant's audit, newest first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
    /// Pass as `?after=` for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Reads the audit trail (records are written by each change, in its transaction).
#[derive(Debug)]
pub struct Audit {
    store: Arc<dyn Store>,
}

impl Audit {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// A page of a tenant's audit, newest first, after the cursor `after`.
    pub async fn page(
        &self,
        tenant: &TenantId,
        limit: usize,
        after: Option<String>,
    ) -> Result<AuditPage> {
        list(self.store.as_ref(), tenant, limit, after).await
    }
}

async fn list(
    store: &dyn Store,
    tenant: &TenantId,
    limit: usize,
    after: Option<String>,
) -> Result<AuditPage> {
    let query = Query::partition(keys::audit_partition(tenant.as_str()))
        .descending()
        .limit(limit.clamp(1, 100))
        .after(after.map(Cursor));
    let page = store.query(&query).await?;
    let records = page
        .items
        .into_iter()
        .filter_map(|item| serde_json::from_value(Value::Object(item.data)).ok())
        .collect();
    Ok(AuditPage {
        records,
        next: page.next.map(|Cursor(sk)| sk),
    })
}
