//! The handle: a tenant's (or company's) partition of one declared table.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::key::{belongs_to, check_id};
use super::{DataError, Item, ItemKey, Range, SortKey, TableSpec, Tables, partition_of};

/// The module's tables bound to one tenant (and, when the context names one, one company).
#[derive(Debug, Clone)]
pub struct TenantData {
    tables: Tables,
    tenant: String,
    company: Option<String>,
}

impl TenantData {
    pub(super) fn new(tables: Tables, tenant: &str, company: Option<&str>) -> Self {
        Self {
            tables,
            tenant: tenant.to_owned(),
            company: company.map(str::to_owned),
        }
    }

    /// The tenant.
    #[must_use]
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The company, when bound to one.
    #[must_use]
    pub fn company(&self) -> Option<&str> {
        self.company.as_deref()
    }

    /// The tenant's rows of table `name` (partition key value `{tenant}`).
    ///
    /// # Errors
    /// [`DataError::UndeclaredTable`] when the manifest does not declare it; `BadKey` when the
    /// tenant id cannot key a partition.
    pub fn table(&self, name: &str) -> Result<Table, DataError> {
        check_id("tenant", &self.tenant)?;
        Ok(Table {
            tables: self.tables.clone(),
            spec: self.tables.spec(name)?,
            tenant: self.tenant.clone(),
            partition: partition_of(&self.tenant, None),
        })
    }

    /// The company's rows of table `name` (partition key value `{tenant}#{company}`).
    ///
    /// # Errors
    /// [`DataError::NoCompany`] when bound to no company; else as [`TenantData::table`].
    pub fn company_table(&self, name: &str) -> Result<Table, DataError> {
        let company = self
            .company
            .as_deref()
            .ok_or_else(|| DataError::NoCompany(name.to_owned()))?;
        check_id("company", company)?;
        let mut table = self.table(name)?;
        table.partition = partition_of(&self.tenant, Some(company));
        Ok(table)
    }
}

/// One partition of one table: reads and writes of the bound tenant's keys only. Items are
/// JSON objects (any `Serialize` type that serialises to one); the handle writes the key
/// attributes into them, and takes the partition key attribute out of what it reads.
#[derive(Debug, Clone)]
pub struct Table {
    tables: Tables,
    spec: Arc<TableSpec>,
    tenant: String,
    partition: String,
}

impl Table {
    /// The partition key value every call uses.
    #[must_use]
    pub fn partition(&self) -> &str {
        &self.partition
    }

    /// The table's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    fn key(&self, sort: SortKey) -> Result<ItemKey, DataError> {
        sort.check(&self.spec)?;
        let key = ItemKey {
            tenant: self.tenant.clone(),
            partition: self.partition.clone(),
            sort,
        };
        // The last look before a backend: never a partition of another tenant.
        if !belongs_to(&self.tenant, &key.partition) {
            return Err(self.foreign(&key.partition));
        }
        Ok(key)
    }

    fn foreign(&self, found: &str) -> DataError {
        DataError::ForeignKey {
            attribute: self.spec.partition_key.clone(),
            found: found.to_owned(),
            tenant: self.tenant.clone(),
            expected: self.partition.clone(),
        }
    }

    fn backend(&self) -> &dyn super::Backend {
        self.tables.backend.as_ref()
    }

    /// The item with sort key `key`, as `T`.
    ///
    /// # Errors
    /// `BadKey` for a key of the wrong type, `BadItem` when the item does not fit `T`,
    /// `Backend` when the backend fails.
    pub async fn get<T: DeserializeOwned>(
        &self,
        key: impl Into<SortKey>,
    ) -> Result<Option<T>, DataError> {
        let key = self.key(key.into())?;
        match self.backend().get(&self.spec, &key).await? {
            None => Ok(None),
            Some(item) => self.read(item).map(Some),
        }
    }

    /// Writes `item` at sort key `key`, replacing what was there. The item's partition key
    /// attribute, when it has one, must be this handle's partition; its sort key attribute,
    /// when it has one, must be `key`.
    ///
    /// # Errors
    /// [`DataError::ForeignKey`] for an item naming another partition; `BadItem` for one that
    /// is not a JSON object or names another sort key; `Backend` when the backend fails.
    pub async fn put<T: Serialize + ?Sized>(
        &self,
        key: impl Into<SortKey>,
        item: &T,
    ) -> Result<(), DataError> {
        let key = self.key(key.into())?;
        let item = self.write(&key, item)?;
        self.backend().put(&self.spec, &key, item).await
    }

    /// Writes `item` at sort key `key` only if no item is there, in one atomic step (two
    /// instances racing for one key: exactly one writes); whether it was written. Items as
    /// for [`Table::put`].
    ///
    /// # Errors
    /// As [`Table::put`].
    pub async fn insert<T: Serialize + ?Sized>(
        &self,
        key: impl Into<SortKey>,
        item: &T,
    ) -> Result<bool, DataError> {
        let key = self.key(key.into())?;
        let item = self.write(&key, item)?;
        self.backend().insert(&self.spec, &key, item).await
    }

    /// Deletes the item at sort key `key`; whether there was one.
    ///
    /// # Errors
    /// `BadKey` for a key of the wrong type; `Backend` when the backend fails.
    pub async fn delete(&self, key: impl Into<SortKey>) -> Result<bool, DataError> {
        let key = self.key(key.into())?;
        self.backend().delete(&self.spec, &key).await
    }

    /// The partition's items in `range`, in sort-key order, as `T`.
    ///
    /// # Errors
    /// `BadItem` when an item does not fit `T`; `Backend` when the backend fails.
    pub async fn query<T: DeserializeOwned>(&self, range: Range) -> Result<Vec<T>, DataError> {
        if matches!(range, Range::BeginsWith(_))
            && !matches!(self.spec.sort_key, Some((_, super::KeyKind::S)))
        {
            return Err(DataError::BadKey(format!(
                "table `{}`: `begins_with` needs a string sort key",
                self.spec.name
            )));
        }
        let key = ItemKey {
            tenant: self.tenant.clone(),
            partition: self.partition.clone(),
            sort: SortKey::None,
        };
        if !belongs_to(&self.tenant, &key.partition) {
            return Err(self.foreign(&key.partition));
        }
        let items = self.backend().query(&self.spec, &key, &range).await?;
        items.into_iter().map(|item| self.read(item)).collect()
    }

    /// Checks what a backend gave back, drops the partition key attribute, and converts.
    fn read<T: DeserializeOwned>(&self, mut item: Item) -> Result<T, DataError> {
        match item.remove(&self.spec.partition_key) {
            Some(Value::String(found)) if found == self.partition => {}
            found => {
                let found = found.map(|v| v.to_string()).unwrap_or_default();
                return Err(self.foreign(&found));
            }
        }
        serde_json::from_value(Value::Object(item)).map_err(|e| {
            DataError::BadItem(format!(
                "an item of table `{}` does not fit the type asked for: {e}",
                self.spec.name
            ))
        })
    }

    /// The item to store: `item` as a JSON object with the key attributes set.
    fn write<T: Serialize + ?Sized>(&self, key: &ItemKey, item: &T) -> Result<Item, DataError> {
        let name = &self.spec.name;
        let value = serde_json::to_value(item)
            .map_err(|e| DataError::BadItem(format!("an item of table `{name}`: {e}")))?;
        let Value::Object(mut item) = value else {
            return Err(DataError::BadItem(format!(
                "an item of table `{name}` must be a JSON object, not {value}"
            )));
        };
        let partition_key = &self.spec.partition_key;
        match item.get(partition_key) {
            None => {}
            Some(Value::String(found)) if *found == key.partition => {}
            Some(found) => {
                let found = found
                    .as_str()
                    .map_or_else(|| found.to_string(), str::to_owned);
                return Err(self.foreign(&found));
            }
        }
        item.insert(partition_key.clone(), Value::String(key.partition.clone()));
        if let (Some((sort_name, _)), Some(sort)) = (&self.spec.sort_key, key.sort.to_value()) {
            match item.get(sort_name) {
                Some(found) if *found != sort => {
                    return Err(DataError::BadItem(format!(
                        "an item of table `{name}` holds `{sort_name}` = {found}, but is written \
                         at {sort}"
                    )));
                }
                _ => {}
            }
            item.insert(sort_name.clone(), sort);
        }
        Ok(item)
    }
}
