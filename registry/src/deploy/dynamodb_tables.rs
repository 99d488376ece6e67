//! The DynamoDB adapter of the [`TableProvisioner`] port: the tables a module declares under
//! `database.tables` (when `database.type` is `dynamodb`), created on demand
//! (`PAY_PER_REQUEST`) with their declared keys.
//!
//! Table names are used as declared: the manifest's rules already make each one start with
//! the module's schema prefix, so modules cannot collide. A table given by bare name (which
//! validation refuses for `dynamodb`, but an older manifest may hold) gets the string keys
//! [`DEFAULT_PARTITION_KEY`] and [`DEFAULT_SORT_KEY`]. An existing table is left alone when its
//! keys are the declared ones, and refused when they differ: DynamoDB cannot change a table's
//! keys, and the module would fail on every write.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, DeleteRequest, KeySchemaElement,
    KeyType as DynamoKeyType, ScalarAttributeType, Select, TableDescription, TableStatus, Tag,
    WriteRequest,
};
use plinth_module_sdk::Manifest;
use plinth_module_sdk::manifest::{KeyAttribute, KeyType, Table};

use super::ecs::aws_error;
use super::{DeployError, TableProvisioner, TenantPartitions};

/// Partition key of a table declared by bare name (a string).
pub const DEFAULT_PARTITION_KEY: &str = "pk";
/// Sort key of a table declared by bare name (a string).
pub const DEFAULT_SORT_KEY: &str = "sk";
/// How long a table may take to become active or to disappear.
const WAIT_TIMEOUT: Duration = Duration::from_secs(300);

/// Creates and drops modules' DynamoDB tables.
#[derive(Debug, Clone)]
pub struct DynamoTables {
    client: Client,
}

/// A table's key schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableKeys {
    /// Partition (hash) key.
    pub partition: KeyAttribute,
    /// Sort (range) key, if any.
    pub sort: Option<KeyAttribute>,
}

impl TableKeys {
    /// The keys a manifest declares for `table`; the defaults for a bare name.
    #[must_use]
    pub fn declared(table: &Table) -> Self {
        let string = |name: &str| KeyAttribute {
            name: name.to_owned(),
            kind: KeyType::S,
        };
        match &table.partition_key {
            Some(partition) => Self {
                partition: partition.clone(),
                sort: table.sort_key.clone(),
            },
            None => Self {
                partition: string(DEFAULT_PARTITION_KEY),
                sort: Some(string(DEFAULT_SORT_KEY)),
            },
        }
    }

    /// The keys of a table as DynamoDB describes it.
    fn described(table: &TableDescription) -> Option<Self> {
        let attribute = |name: &str| {
            let kind = table
                .attribute_definitions()
                .iter()
                .find(|a| a.attribute_name() == name)
                .map(|a| match a.attribute_type() {
                    ScalarAttributeType::N => KeyType::N,
                    ScalarAttributeType::B => KeyType::B,
                    _ => KeyType::S,
                })?;
            Some(KeyAttribute {
                name: name.to_owned(),
                kind,
            })
        };
        let key = |kind: DynamoKeyType| {
            table
                .key_schema()
                .iter()
                .find(|k| *k.key_type() == kind)
                .and_then(|k| attribute(k.attribute_name()))
        };
        Some(Self {
            partition: key(DynamoKeyType::Hash)?,
            sort: key(DynamoKeyType::Range),
        })
    }
}

impl fmt::Display for TableKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "partition key `{}` ({:?})",
            self.partition.name, self.partition.kind
        )?;
        match &self.sort {
            Some(sort) => write!(f, ", sort key `{}` ({:?})", sort.name, sort.kind),
            None => f.write_str(", no sort key"),
        }
    }
}

impl DynamoTables {
    /// Tables on the SDK configuration given.
    #[must_use]
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            client: Client::new(sdk),
        }
    }

    /// Tables configured from the environment (`AWS_*`, `AWS_ENDPOINT_URL` included).
    pub async fn from_env() -> Self {
        Self::new(&crate::aws::config_from_env().await)
    }

    async fn describe(&self, name: &str) -> Result<Option<TableDescription>, DeployError> {
        match self.client.describe_table().table_name(name).send().await {
            Ok(described) => Ok(described.table().cloned()),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(aws_error(format!("describing table `{name}`"), &e)),
        }
    }

    /// Creates a table; false when another caller created it first.
    async fn create(
        &self,
        manifest: &Manifest,
        name: &str,
        keys: &TableKeys,
    ) -> Result<bool, DeployError> {
        let mut create = self
            .client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .tags(tag("plinth:module", manifest.name.as_str())?);
        for (key, kind) in std::iter::once((&keys.partition, DynamoKeyType::Hash))
            .chain(keys.sort.iter().map(|sort| (sort, DynamoKeyType::Range)))
        {
            let definition = AttributeDefinition::builder()
                .attribute_name(&key.name)
                .attribute_type(scalar(key.kind))
                .build()
                .map_err(|e| DeployError(format!("table `{name}`: {e}")))?;
            let element = KeySchemaElement::builder()
                .attribute_name(&key.name)
                .key_type(kind)
                .build()
                .map_err(|e| DeployError(format!("table `{name}`: {e}")))?;
            create = create.attribute_definitions(definition).key_schema(element);
        }
        match create.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ResourceInUseException") => Ok(false),
            Err(e) => Err(aws_error(format!("creating table `{name}`"), &e)),
        }
    }

    /// Waits until the table is `ACTIVE` (`present`) or gone (`!present`).
    async fn wait_for(&self, name: &str, present: bool) -> Result<(), DeployError> {
        let started = Instant::now();
        loop {
            let status = self
                .describe(name)
                .await?
                .and_then(|t| t.table_status().cloned());
            let done = match status {
                None => !present,
                Some(TableStatus::Active) => present,
                Some(_) => false,
            };
            if done {
                return Ok(());
            }
            if started.elapsed() > WAIT_TIMEOUT {
                let wanted = if present { "active" } else { "deleted" };
                return Err(DeployError(format!(
                    "table `{name}` was not {wanted} after {WAIT_TIMEOUT:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// A tenant's rows are read by partition (Query), never by Scan: the key design puts each
/// of its partitions (`{tenant}`, `{tenant}#{company}`) under one partition key value.
impl DynamoTables {
    fn declared_table<'m>(manifest: &'m Manifest, table: &str) -> Result<&'m Table, DeployError> {
        dynamodb_tables(manifest)
            .iter()
            .find(|t| t.name == table)
            .ok_or_else(|| {
                DeployError(format!(
                    "`{table}` is not a DynamoDB table {} declares",
                    manifest.name
                ))
            })
    }

    /// Every item of one partition, in sort-key order (strongly consistent, every page).
    async fn partition_items(
        &self,
        table: &str,
        keys: &TableKeys,
        partition: &str,
        keys_only: bool,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, DeployError> {
        let mut items = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(table)
                .consistent_read(true)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", &keys.partition.name)
                .expression_attribute_values(":pk", AttributeValue::S(partition.to_owned()))
                .set_exclusive_start_key(start.take());
            if keys_only {
                let mut projection = "#pk".to_owned();
                if let Some(sort) = &keys.sort {
                    query = query.expression_attribute_names("#sk", &sort.name);
                    projection.push_str(", #sk");
                }
                query = query.projection_expression(projection);
            }
            let page = query
                .send()
                .await
                .map_err(|e| aws_error(format!("querying table `{table}`"), &e))?;
            items.extend(page.items().iter().cloned());
            match page.last_evaluated_key() {
                Some(next) if !next.is_empty() => start = Some(next.clone()),
                _ => return Ok(items),
            }
        }
    }

    /// Every item's count of `table` (a Scan that returns counts only: an uninstall's
    /// impact counts all tenants' rows).
    async fn count_all(&self, table: &str) -> Result<u64, DeployError> {
        let mut count = 0_u64;
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(table)
                .select(Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await;
            let page = match page {
                Ok(page) => page,
                Err(e) if e.code() == Some("ResourceNotFoundException") => return Ok(0),
                Err(e) => return Err(aws_error(format!("counting table `{table}`"), &e)),
            };
            count += u64::try_from(page.count()).unwrap_or(0);
            match page.last_evaluated_key() {
                Some(next) if !next.is_empty() => start = Some(next.clone()),
                _ => return Ok(count),
            }
        }
    }

    /// Deletes `keys` 25 at a time, sending back what DynamoDB left unprocessed.
    async fn delete_keys(
        &self,
        table: &str,
        keys: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<(), DeployError> {
        for chunk in keys.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|key| {
                    DeleteRequest::builder()
                        .set_key(Some(key.clone()))
                        .build()
                        .map(|delete| WriteRequest::builder().delete_request(delete).build())
                        .map_err(|e| DeployError(format!("table `{table}`: {e}")))
                })
                .collect::<Result<_, _>>()?;
            let mut rounds = 0;
            while !requests.is_empty() {
                rounds += 1;
                if rounds > 10 {
                    return Err(DeployError(format!(
                        "table `{table}`: DynamoDB left deletes unprocessed ten times"
                    )));
                }
                let answer = self
                    .client
                    .batch_write_item()
                    .request_items(table, requests)
                    .send()
                    .await
                    .map_err(|e| aws_error(format!("deleting rows of table `{table}`"), &e))?;
                requests = answer
                    .unprocessed_items()
                    .and_then(|left| left.get(table))
                    .cloned()
                    .unwrap_or_default();
                if !requests.is_empty() {
                    tokio::time::sleep(Duration::from_millis(100 * rounds)).await;
                }
            }
        }
        Ok(())
    }
}

/// An item as JSON: what the SDK's handle stored (numbers as numbers, maps with their keys
/// in order).
fn item_json(item: &HashMap<String, AttributeValue>) -> serde_json::Value {
    let mut entries: Vec<_> = item.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    serde_json::Value::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.clone(), attribute_json(v)))
            .collect(),
    )
}

fn attribute_json(value: &AttributeValue) -> serde_json::Value {
    use serde_json::Value;
    match value {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => serde_json::from_str::<serde_json::Number>(n)
            .map_or_else(|_| Value::String(n.clone()), Value::Number),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::L(list) => Value::Array(list.iter().map(attribute_json).collect()),
        AttributeValue::M(map) => item_json(map),
        AttributeValue::Ss(set) => Value::from(set.clone()),
        AttributeValue::Ns(set) => Value::Array(
            set.iter()
                .map(|n| attribute_json(&AttributeValue::N(n.clone())))
                .collect(),
        ),
        AttributeValue::B(bytes) => Value::String(base64_of(bytes.as_ref())),
        AttributeValue::Bs(set) => Value::Array(
            set.iter()
                .map(|b| Value::String(base64_of(b.as_ref())))
                .collect(),
        ),
        _ => Value::Null,
    }
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The tables the installer creates for a module: none unless `database.type` is `dynamodb`.
fn dynamodb_tables(manifest: &Manifest) -> &[Table] {
    manifest
        .database
        .as_ref()
        .filter(|database| database.is_dynamodb())
        .map_or(&[], |database| database.tables.as_slice())
}

#[async_trait]
impl TableProvisioner for DynamoTables {
    async fn create_tables(&self, manifest: &Manifest) -> Result<Vec<String>, DeployError> {
        let mut created = Vec::new();
        for table in dynamodb_tables(manifest) {
            let name = &table.name;
            let declared = TableKeys::declared(table);
            if let Some(existing) = self.describe(name).await? {
                let keys = TableKeys::described(&existing);
                if keys.as_ref() != Some(&declared) {
                    let found =
                        keys.map_or_else(|| "unreadable keys".to_owned(), |k| k.to_string());
                    return Err(DeployError(format!(
                        "table `{name}` already exists with {found}, but module `{}` declares {declared}; DynamoDB cannot change a table's keys",
                        manifest.name
                    )));
                }
            } else if self.create(manifest, name, &declared).await? {
                created.push(name.clone());
            }
            self.wait_for(name, true).await?;
        }
        Ok(created)
    }

    async fn drop_tables(&self, manifest: &Manifest) -> Result<(), DeployError> {
        for table in dynamodb_tables(manifest) {
            let name = &table.name;
            match self.client.delete_table().table_name(name).send().await {
                Ok(_) => {}
                Err(e) if e.code() == Some("ResourceNotFoundException") => continue,
                // Already being deleted.
                Err(e) if e.code() == Some("ResourceInUseException") => {}
                Err(e) => return Err(aws_error(format!("deleting table `{name}`"), &e)),
            }
            self.wait_for(name, false).await?;
        }
        Ok(())
    }

    async fn tenant_rows(
        &self,
        manifest: &Manifest,
        table: &str,
        tenant: &TenantPartitions,
    ) -> Result<Vec<serde_json::Value>, DeployError> {
        let keys = TableKeys::declared(Self::declared_table(manifest, table)?);
        let mut rows = Vec::new();
        for partition in tenant.partitions() {
            let items = self
                .partition_items(table, &keys, &partition, false)
                .await?;
            rows.extend(items.iter().map(item_json));
        }
        Ok(rows)
    }

    async fn count_rows(
        &self,
        manifest: &Manifest,
        table: &str,
        tenant: Option<&TenantPartitions>,
    ) -> Result<u64, DeployError> {
        let keys = TableKeys::declared(Self::declared_table(manifest, table)?);
        let Some(tenant) = tenant else {
            return self.count_all(table).await;
        };
        let mut count = 0;
        for partition in tenant.partitions() {
            let items = self.partition_items(table, &keys, &partition, true).await?;
            count += items.len() as u64;
        }
        Ok(count)
    }

    async fn delete_tenant_rows(
        &self,
        manifest: &Manifest,
        table: &str,
        tenant: &TenantPartitions,
    ) -> Result<u64, DeployError> {
        let keys = TableKeys::declared(Self::declared_table(manifest, table)?);
        let mut deleted = 0;
        for partition in tenant.partitions() {
            let items = self.partition_items(table, &keys, &partition, true).await?;
            deleted += items.len() as u64;
            self.delete_keys(table, items).await?;
        }
        Ok(deleted)
    }
}

fn scalar(kind: KeyType) -> ScalarAttributeType {
    match kind {
        KeyType::S => ScalarAttributeType::S,
        KeyType::N => ScalarAttributeType::N,
        KeyType::B => ScalarAttributeType::B,
    }
}

fn tag(key: &str, value: &str) -> Result<Tag, DeployError> {
    Tag::builder()
        .key(key)
        .value(value)
        .build()
        .map_err(|e| DeployError(format!("table tag `{key}`: {e}")))
}
