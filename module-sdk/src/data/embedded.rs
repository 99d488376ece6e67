//! The embedded backend `plinth up` gives modules: one redb file per module,
//! `{PLINTH_TABLES_DIR}/{module}.redb`, one redb table per declared table. Keys are
//! `partition NUL sort` as bytes (sort keys as [`SortKey::ordered_bytes`]), so redb's byte
//! order is DynamoDB's order within a partition; every write is durable when it returns.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{Backend, DataError, Item, ItemKey, Range, SortKey, TableSpec, embedded_file};
use crate::ModuleName;

/// A module's tables in one redb database (a file, or memory for tests).
#[derive(Clone)]
pub struct EmbeddedTables {
    db: Arc<Database>,
}

impl std::fmt::Debug for EmbeddedTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedTables").finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> DataError {
    DataError::Backend(format!("the embedded tables failed: {e}"))
}

impl EmbeddedTables {
    /// Opens (or creates) `{dir}/{module}.redb`, creating `dir` when missing.
    ///
    /// # Errors
    /// `Backend`, naming the file, when it cannot be opened (another process holds it, say).
    pub fn open_for(module: &ModuleName, dir: &Path) -> Result<Self, DataError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| DataError::Backend(format!("cannot create {}: {e}", dir.display())))?;
        let path = embedded_file(dir, module);
        let db = Database::create(&path)
            .map_err(|e| DataError::Backend(format!("cannot open {}: {e}", path.display())))?;
        Ok(Self { db: Arc::new(db) })
    }

    /// Tables in memory, gone with the value.
    ///
    /// # Errors
    /// `Backend` when redb cannot make the database.
    pub fn in_memory() -> Result<Self, DataError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(unavailable)?;
        Ok(Self { db: Arc::new(db) })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, DataError> + Send + 'static,
    ) -> Result<T, DataError> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(unavailable)?
    }
}

fn key_bytes(partition: &str, sort: &SortKey) -> Vec<u8> {
    let mut bytes = partition.as_bytes().to_vec();
    bytes.push(0);
    bytes.extend(sort.ordered_bytes());
    bytes
}

fn decode(bytes: &[u8]) -> Result<Item, DataError> {
    serde_json::from_slice(bytes).map_err(unavailable)
}

#[async_trait]
impl Backend for EmbeddedTables {
    async fn get(&self, table: &TableSpec, key: &ItemKey) -> Result<Option<Item>, DataError> {
        let (name, key) = (table.name.clone(), key_bytes(&key.partition, &key.sort));
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = match txn.open_table(TableDefinition::<&[u8], &[u8]>::new(&name)) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(unavailable(e)),
            };
            match table.get(key.as_slice()).map_err(unavailable)? {
                Some(value) => decode(value.value()).map(Some),
                None => Ok(None),
            }
        })
        .await
    }

    async fn put(&self, table: &TableSpec, key: &ItemKey, item: Item) -> Result<(), DataError> {
        let (name, key) = (table.name.clone(), key_bytes(&key.partition, &key.sort));
        let value = serde_json::to_vec(&item).map_err(unavailable)?;
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            {
                let mut table = txn
                    .open_table(TableDefinition::<&[u8], &[u8]>::new(&name))
                    .map_err(unavailable)?;
                table
                    .insert(key.as_slice(), value.as_slice())
                    .map_err(unavailable)?;
            }
            txn.commit().map_err(unavailable)
        })
        .await
    }

    async fn insert(
        &self,
        table: &TableSpec,
        key: &ItemKey,
        item: Item,
    ) -> Result<bool, DataError> {
        let (name, key) = (table.name.clone(), key_bytes(&key.partition, &key.sort));
        let value = serde_json::to_vec(&item).map_err(unavailable)?;
        // redb has one writer at a time: the look and the write are one transaction.
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            let written = {
                let mut table = txn
                    .open_table(TableDefinition::<&[u8], &[u8]>::new(&name))
                    .map_err(unavailable)?;
                if table.get(key.as_slice()).map_err(unavailable)?.is_some() {
                    false
                } else {
                    table
                        .insert(key.as_slice(), value.as_slice())
                        .map_err(unavailable)?;
                    true
                }
            };
            txn.commit().map_err(unavailable)?;
            Ok(written)
        })
        .await
    }

    async fn delete(&self, table: &TableSpec, key: &ItemKey) -> Result<bool, DataError> {
        let (name, key) = (table.name.clone(), key_bytes(&key.partition, &key.sort));
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            let existed = {
                let mut table = txn
                    .open_table(TableDefinition::<&[u8], &[u8]>::new(&name))
                    .map_err(unavailable)?;
                table.remove(key.as_slice()).map_err(unavailable)?.is_some()
            };
            txn.commit().map_err(unavailable)?;
            Ok(existed)
        })
        .await
    }

    async fn query(
        &self,
        table: &TableSpec,
        key: &ItemKey,
        range: &Range,
    ) -> Result<Vec<Item>, DataError> {
        let name = table.name.clone();
        let start = match range {
            Range::All => key_bytes(&key.partition, &SortKey::None),
            Range::BeginsWith(prefix) => key_bytes(&key.partition, &SortKey::S(prefix.clone())),
        };
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = match txn.open_table(TableDefinition::<&[u8], &[u8]>::new(&name)) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(unavailable(e)),
            };
            let mut items = Vec::new();
            for entry in table.range(start.as_slice()..).map_err(unavailable)? {
                let (k, v) = entry.map_err(unavailable)?;
                if !k.value().starts_with(&start) {
                    break;
                }
                items.push(decode(v.value())?);
            }
            Ok(items)
        })
        .await
    }
}
