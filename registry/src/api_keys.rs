//! Module API keys (`X-Module-API-Key`): issued at install, shown once, stored only as a
//! SHA-256 hash, scoped to one module, rotatable with an overlap, revocable.
//!
//! On AWS a module reads its key from its Secrets Manager secret (`ModuleKeySecrets`): a
//! rotation writes the new key there, and the module, refused with 401 once its old key
//! expires, reads the secret again.

use plinth_module_sdk::ModuleName;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;

use std::sync::Arc;

use crate::audit;
use crate::cache::{ChangeAwareCache, Stale, Staleness, TtlCache};
use crate::catalog::Catalog;
use crate::changes::{Change, Changes};
use crate::deploy::module_secrets::ModuleKeySecrets;
use crate::error::{Error, Result, did_you_mean};
use crate::identity::Caller;
use crate::store::{
    Condition, Item, Key, Query, Store, Write, from_item, keys, query_all, to_data,
};

/// A key as issued: `key` is shown this once and never stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IssuedKey {
    pub id: String,
    pub module: String,
    pub key: String,
    pub created_at: String,
}

/// What the store keeps of a key.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKeyRecord {
    pub id: String,
    pub module: String,
    pub hash: String,
    /// The first characters of the key, to tell keys apart.
    pub prefix: String,
    pub created_at: String,
    /// Set when the key was rotated out: it stops working then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

fn hash(key: &str) -> String {
    crate::hash::sha256_hex(key.as_bytes())
}

fn listing_key(module: &str, id: &str) -> Key {
    Key::new(keys::module_partition(module), format!("APIKEY#{id}"))
}

/// A new key for `module` and the writes that store it.
fn new_key(module: &str) -> (IssuedKey, Vec<Write>) {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let key = format!("plk_{}", crate::hash::hex(&secret));
    let id = uuid::Uuid::now_v7().simple().to_string()[..16].to_string();
    let created_at = crate::clock::now();
    let record = ApiKeyRecord {
        id: id.clone(),
        module: module.to_owned(),
        hash: hash(&key),
        prefix: key[..12].to_owned(),
        created_at: created_at.clone(),
        expires_at: None,
    };
    let writes = vec![
        Write::Put {
            item: Item::new(keys::api_key_by_hash(&record.hash), to_data(&record)),
            condition: Condition::Absent,
        },
        Write::Put {
            item: Item::new(listing_key(module, &id), to_data(&record)),
            condition: Condition::Absent,
        },
    ];
    let issued = IssuedKey {
        id,
        module: module.to_owned(),
        key,
        created_at,
    };
    (issued, writes)
}

/// Issues, checks, rotates and revokes module API keys; owns the cache of checked keys.
#[derive(Debug)]
pub struct ApiKeys {
    store: Arc<dyn Store>,
    changes: Arc<Changes>,
    catalog: Arc<Catalog>,
    /// Where modules read their current key (a rotation writes the new one there).
    key_secrets: Arc<dyn ModuleKeySecrets>,
    /// API key hash → module, and when the key stops working.
    checked: ChangeAwareCache<String, (ModuleName, Option<i64>)>,
}

impl ApiKeys {
    pub fn new(
        store: Arc<dyn Store>,
        changes: Arc<Changes>,
        catalog: Arc<Catalog>,
        key_secrets: Arc<dyn ModuleKeySecrets>,
        staleness: &Arc<Staleness>,
    ) -> Self {
        Self {
            store,
            changes,
            catalog,
            key_secrets,
            checked: ChangeAwareCache::new(Arc::clone(staleness)),
        }
    }

    /// The module an API key belongs to; cached, so a warm check makes no store round trip.
    pub async fn authenticate(&self, key: &str) -> Result<ModuleName> {
        self.authenticate_until(key).await.map(|(module, _)| module)
    }

    /// The module a key belongs to, and the Unix time it stops working, if it does (a key
    /// rotated out with an overlap).
    pub async fn authenticate_until(&self, key: &str) -> Result<(ModuleName, Option<i64>)> {
        let hash = hash(key);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let refused = || Error::Unauthorized("the module API key is not valid".into());
        if let Some((module, expires_at)) = self.checked.get(&hash) {
            // A rotated-out key stops at its expiry even while cached.
            return match expires_at {
                Some(at) if at <= now => Err(refused()),
                _ => Ok((module, expires_at)),
            };
        }
        let item = self
            .store
            .get(&keys::api_key_by_hash(&hash))
            .await?
            .ok_or_else(refused)?;
        let record: ApiKeyRecord = from_item(&item)?;
        let module = ModuleName::parse(&record.module).map_err(|_| refused())?;
        self.checked
            .insert(hash, (module.clone(), record.expires_at), forget_key);
        Ok((module, record.expires_at))
    }

    /// Issues another key for `module`. With `rotate_after_secs`, the module's existing keys
    /// stop working that many seconds from now (the overlap for rolling the new one out), and
    /// the new key becomes the one in the module's secret, where it has one. A key issued
    /// without rotating is an extra key and leaves the secret alone.
    pub async fn issue(
        &self,
        caller: &Caller,
        module: &ModuleName,
        rotate_after_secs: Option<i64>,
    ) -> Result<IssuedKey> {
        caller.require_platform_admin()?;
        self.catalog.entry(module).await?;
        let (issued, mut writes) = new_key(module.as_str());
        let mut rotated = Vec::new();
        let mut rotated_records = Vec::new();
        if let Some(after) = rotate_after_secs {
            if after < 0 {
                return Err(Error::field("rotate_after_secs", "must not be negative"));
            }
            let expires = time::OffsetDateTime::now_utc().unix_timestamp() + after;
            for record in self.list(module).await? {
                if record.expires_at.is_none() {
                    writes.extend(expiring_writes(&record, expires));
                    rotated.push(record.hash.clone());
                    rotated_records.push(record);
                }
            }
        }
        writes.push(audit::record(
            audit::PLATFORM_SCOPE,
            &caller.actor(),
            "module.api_key.issued",
            &format!("module:{module}"),
            json!({"id": issued.id, "rotated_keys": rotated.len()}),
        ));
        let change = rotated
            .into_iter()
            .fold(Change::new(writes), |change, hash| {
                change.stale(Stale::ApiKey(hash))
            });
        self.changes.commit(change).await?;
        if rotate_after_secs.is_some() {
            self.write_secret_or_undo(module, &issued, rotated_records)
                .await?;
        }
        Ok(issued)
    }

    /// Writes a rotated-in key into the module's secret. Written after the keys are stored, so
    /// that the secret never holds a key the platform refuses; when the write fails, the
    /// rotation is undone (the new key deleted, the old ones no longer expiring) and the
    /// error says so.
    async fn write_secret_or_undo(
        &self,
        module: &ModuleName,
        issued: &IssuedKey,
        rotated: Vec<ApiKeyRecord>,
    ) -> Result<()> {
        let Err(e) = self.key_secrets.rotate(module, &issued.key).await else {
            return Ok(());
        };
        let mut undo = Change::new(vec![
            Write::Delete {
                key: keys::api_key_by_hash(&hash(&issued.key)),
                condition: Condition::Always,
            },
            Write::Delete {
                key: listing_key(module.as_str(), &issued.id),
                condition: Condition::Always,
            },
        ]);
        for record in rotated {
            undo = undo.stale(Stale::ApiKey(record.hash.clone()));
            for write in unexpiring_writes(&record) {
                undo = undo.write(write);
            }
        }
        let detail = format!(
            "the key of {module} was not rotated: its new key could not be written to the module's secret"
        );
        match self.changes.commit(undo).await {
            Ok(()) => Err(Error::unavailable_because(detail, e)),
            Err(undo) => Err(Error::unavailable_because(
                format!(
                    "{detail}, and undoing the rotation failed too ({undo}): the module's old keys \
                     expire as asked while its secret holds the old key; rotate again"
                ),
                e,
            )),
        }
    }

    pub async fn list(&self, module: &ModuleName) -> Result<Vec<ApiKeyRecord>> {
        let query = Query::prefix(keys::module_partition(module.as_str()), "APIKEY#");
        let items = query_all(self.store.as_ref(), &query).await?;
        items.iter().map(from_item).collect()
    }

    pub async fn revoke(&self, caller: &Caller, module: &ModuleName, id: &str) -> Result<()> {
        caller.require_platform_admin()?;
        let Some(listing) = self.store.get(&listing_key(module.as_str(), id)).await? else {
            let keys = self.list(module).await.unwrap_or_default();
            let hint = did_you_mean(id, keys.iter().map(|k| k.id.as_str()));
            return Err(Error::NotFound(format!(
                "{module} has no API key {id}{hint}"
            )));
        };
        let record: ApiKeyRecord = from_item(&listing)?;
        let writes = vec![
            Write::Delete {
                key: keys::api_key_by_hash(&record.hash),
                condition: Condition::Always,
            },
            Write::Delete {
                key: listing.key.clone(),
                condition: Condition::Version(listing.version),
            },
            audit::record(
                audit::PLATFORM_SCOPE,
                &caller.actor(),
                "module.api_key.revoked",
                &format!("module:{module}"),
                json!({"id": id}),
            ),
        ];
        self.changes
            .commit(Change::new(writes).stale(Stale::ApiKey(record.hash)))
            .await?;
        Ok(())
    }

    /// The installer's key for `module`: a new one, and the one it replaces set to expire at
    /// the given time (an upgrade's overlap, while the new deployment rolls out).
    pub async fn issue_for_install(
        &self,
        module: &ModuleName,
        replacing: Option<(ApiKeyRecord, i64)>,
    ) -> Result<IssuedKey> {
        let (issued, mut writes) = new_key(module.as_str());
        let mut change = Change::default();
        if let Some((record, at)) = replacing {
            writes.extend(expiring_writes(&record, at));
            change = change.stale(Stale::ApiKey(record.hash));
        }
        for write in writes {
            change = change.write(write);
        }
        self.changes.commit(change).await?;
        Ok(issued)
    }

    /// Deletes a key at once (an uninstall, or an install undone).
    pub async fn delete(&self, record: &ApiKeyRecord) -> Result<()> {
        let writes = vec![
            Write::Delete {
                key: keys::api_key_by_hash(&record.hash),
                condition: Condition::Always,
            },
            Write::Delete {
                key: listing_key(&record.module, &record.id),
                condition: Condition::Always,
            },
        ];
        let stale = Stale::ApiKey(record.hash.clone());
        self.changes.commit(Change::new(writes).stale(stale)).await
    }
}

fn forget_key(checked: &TtlCache<String, (ModuleName, Option<i64>)>, stale: &Stale) {
    match stale {
        Stale::ApiKey(hash) => checked.remove(hash),
        Stale::Everything => checked.clear(),
        _ => {}
    }
}

/// Both items of a key, rewritten without an expiry (a rotation undone). Unconditional: a
/// key rotated out with no overlap has expired already, and an expired item reads as absent.
fn unexpiring_writes(record: &ApiKeyRecord) -> Vec<Write> {
    let mut record = record.clone();
    record.expires_at = None;
    let data = to_data(&record);
    [
        keys::api_key_by_hash(&record.hash),
        listing_key(&record.module, &record.id),
    ]
    .into_iter()
    .map(|key| Write::Put {
        item: Item::new(key, data.clone()),
        condition: Condition::Always,
    })
    .collect()
}

/// Both items of a key, rewritten to expire at `at` (the store's TTL then removes them).
fn expiring_writes(record: &ApiKeyRecord, at: i64) -> Vec<Write> {
    let mut record = record.clone();
    record.expires_at = Some(at);
    let data = to_data(&record);
    [
        keys::api_key_by_hash(&record.hash),
        listing_key(&record.module, &record.id),
    ]
    .into_iter()
    .map(|key| Write::Put {
        item: Item::new(key, data.clone()).expiring_at(at),
        condition: Condition::Exists,
    })
    .collect()
}
