//! DynamoDB, on AWS (feature `dynamodb`): the tables the installer created for the module,
//! by their declared names, at the endpoint of the AWS configuration (`AWS_ENDPOINT_URL`).
//!
//! With the module's role ARN (`PLINTH_MODULE_ROLE_ARN`, which the installer sets), each
//! tenant's calls run with credentials of that role assumed with [`session_policy`]: the
//! tenant's partitions only. The credentials are kept per tenant until five minutes before
//! they expire. Without the role, calls use the process's own credentials.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Number, Value};

use super::session_policy::session_policy;
use super::{Backend, DataError, Item, ItemKey, Range, TableSpec};

/// How long assumed credentials last (STS's default and the role's default maximum).
pub const SESSION_SECONDS: i32 = 3600;
/// Credentials closer than this to their expiry are assumed again.
pub const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// The module's tables in DynamoDB.
#[derive(Debug)]
pub struct DynamoTables {
    clients: tokio::sync::OnceCell<Clients>,
    role_arn: Option<String>,
    scoped: Mutex<HashMap<String, (Client, SystemTime)>>,
}

#[derive(Debug)]
struct Clients {
    sdk: SdkConfig,
    own: Client,
    sts: aws_sdk_sts::Client,
}

impl DynamoTables {
    /// The module's tables with the configuration `sdk`; per tenant as `role_arn` when given.
    #[must_use]
    pub fn new(sdk: &SdkConfig, role_arn: Option<String>) -> Self {
        Self::with_sts(sdk, role_arn, aws_sdk_sts::Client::new(sdk))
    }

    /// As [`DynamoTables::new`], assuming the role through `sts` (a client with interceptors,
    /// in tests).
    #[must_use]
    pub fn with_sts(sdk: &SdkConfig, role_arn: Option<String>, sts: aws_sdk_sts::Client) -> Self {
        let clients = Clients {
            sdk: sdk.clone(),
            own: Client::new(sdk),
            sts,
        };
        let tables = Self::lazy(role_arn);
        let _ = tables.clients.set(clients);
        tables
    }

    /// The tables with the AWS configuration of the environment, read at the first call (so
    /// that a process that never reaches its tables, `<binary> health`, never looks for it).
    #[must_use]
    pub fn lazy(role_arn: Option<String>) -> Self {
        Self {
            clients: tokio::sync::OnceCell::new(),
            role_arn,
            scoped: Mutex::new(HashMap::new()),
        }
    }

    async fn clients(&self) -> &Clients {
        self.clients
            .get_or_init(|| async {
                if self.role_arn.is_none() {
                    tracing::warn!(
                        "{} is not set: tenant data is reached with the process's own \
                         credentials, checked by the SDK only",
                        super::ROLE_ARN_VARIABLE
                    );
                }
                let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                Clients {
                    own: Client::new(&sdk),
                    sts: aws_sdk_sts::Client::new(&sdk),
                    sdk,
                }
            })
            .await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Client, SystemTime)>> {
        self.scoped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The client for `tenant`'s calls.
    async fn client(&self, tenant: &str) -> Result<Client, DataError> {
        let clients = self.clients().await;
        let Some(role_arn) = &self.role_arn else {
            return Ok(clients.own.clone());
        };
        let now = SystemTime::now();
        if let Some((client, expires)) = self.lock().get(tenant)
            && expires
                .duration_since(now)
                .is_ok_and(|left| left > RENEW_BEFORE)
        {
            return Ok(client.clone());
        }
        let policy = session_policy(tenant).to_string();
        let session: String = format!("plinth-{tenant}").chars().take(64).collect();
        let assumed = clients
            .sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session)
            .policy(policy)
            .duration_seconds(SESSION_SECONDS)
            .send()
            .await
            .map_err(|e| {
                DataError::Backend(format!(
                    "cannot assume {role_arn} for tenant `{tenant}`: {}",
                    aws_sdk_sts::error::DisplayErrorContext(&e)
                ))
            })?;
        let credentials = assumed.credentials.ok_or_else(|| {
            DataError::Backend(format!("STS gave no credentials for tenant `{tenant}`"))
        })?;
        let expires = SystemTime::try_from(credentials.expiration)
            .unwrap_or_else(|_| now + Duration::from_secs(SESSION_SECONDS.unsigned_abs().into()));
        let config = aws_sdk_dynamodb::config::Builder::from(&clients.sdk)
            .credentials_provider(Credentials::new(
                credentials.access_key_id,
                credentials.secret_access_key,
                Some(credentials.session_token),
                Some(expires),
                "plinth-tenant",
            ))
            .build();
        let client = Client::from_conf(config);
        self.lock()
            .insert(tenant.to_owned(), (client.clone(), expires));
        Ok(client)
    }
}

fn failed(table: &TableSpec, what: &str, e: &impl std::error::Error) -> DataError {
    DataError::Backend(format!(
        "{what} in table `{}` failed: {}",
        table.name,
        aws_sdk_dynamodb::error::DisplayErrorContext(e)
    ))
}

fn key_map(table: &TableSpec, key: &ItemKey) -> HashMap<String, AttributeValue> {
    let mut map = HashMap::from([(
        table.partition_key.clone(),
        AttributeValue::S(key.partition.clone()),
    )]);
    if let (Some((name, _)), Some(sort)) = (&table.sort_key, key.sort.to_value()) {
        map.insert(name.clone(), to_attribute(&sort));
    }
    map
}

#[async_trait]
impl Backend for DynamoTables {
    async fn get(&self, table: &TableSpec, key: &ItemKey) -> Result<Option<Item>, DataError> {
        let client = self.client(&key.tenant).await?;
        let found = client
            .get_item()
            .table_name(&table.name)
            .set_key(Some(key_map(table, key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failed(table, "a read", &e))?;
        Ok(found.item.map(from_item))
    }

    async fn put(&self, table: &TableSpec, key: &ItemKey, item: Item) -> Result<(), DataError> {
        let client = self.client(&key.tenant).await?;
        let item = item
            .iter()
            .map(|(k, v)| (k.clone(), to_attribute(v)))
            .collect();
        client
            .put_item()
            .table_name(&table.name)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| failed(table, "a write", &e))?;
        Ok(())
    }

    async fn insert(
        &self,
        table: &TableSpec,
        key: &ItemKey,
        item: Item,
    ) -> Result<bool, DataError> {
        let client = self.client(&key.tenant).await?;
        let item = item
            .iter()
            .map(|(k, v)| (k.clone(), to_attribute(v)))
            .collect();
        let written = client
            .put_item()
            .table_name(&table.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", &table.partition_key)
            .send()
            .await;
        match written {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(failed(table, "a write", &e)),
        }
    }

    async fn delete(&self, table: &TableSpec, key: &ItemKey) -> Result<bool, DataError> {
        let client = self.client(&key.tenant).await?;
        let deleted = client
            .delete_item()
            .table_name(&table.name)
            .set_key(Some(key_map(table, key)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| failed(table, "a delete", &e))?;
        Ok(deleted.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn query(
        &self,
        table: &TableSpec,
        key: &ItemKey,
        range: &Range,
    ) -> Result<Vec<Item>, DataError> {
        let client = self.client(&key.tenant).await?;
        let mut condition = "#pk = :pk".to_owned();
        let mut names = HashMap::from([("#pk".to_owned(), table.partition_key.clone())]);
        let mut values =
            HashMap::from([(":pk".to_owned(), AttributeValue::S(key.partition.clone()))]);
        if let (Range::BeginsWith(prefix), Some((sort, _))) = (range, &table.sort_key) {
            condition.push_str(" AND begins_with(#sk, :prefix)");
            names.insert("#sk".into(), sort.clone());
            values.insert(":prefix".into(), AttributeValue::S(prefix.clone()));
        }
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = client
                .query()
                .table_name(&table.name)
                .key_condition_expression(&condition)
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .set_exclusive_start_key(start)
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| failed(table, "a query", &e))?;
            items.extend(page.items.unwrap_or_default().into_iter().map(from_item));
            start = page.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                return Ok(items);
            }
        }
    }
}

/// A JSON value as DynamoDB holds it (objects as maps, arrays as lists).
#[must_use]
pub fn to_attribute(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(values) => AttributeValue::L(values.iter().map(to_attribute).collect()),
        Value::Object(map) => AttributeValue::M(
            map.iter()
                .map(|(k, v)| (k.clone(), to_attribute(v)))
                .collect(),
        ),
    }
}

/// A DynamoDB attribute as JSON (sets as arrays, binary as base64 text).
#[must_use]
pub fn from_attribute(value: AttributeValue) -> Value {
    use base64::Engine as _;
    let number = |n: &str| {
        serde_json::from_str::<Number>(n)
            .map_or_else(|_| Value::String(n.to_owned()), Value::Number)
    };
    let bytes = |b: &[u8]| Value::String(base64::engine::general_purpose::STANDARD.encode(b));
    match value {
        AttributeValue::S(s) => Value::String(s),
        AttributeValue::N(n) => number(&n),
        AttributeValue::Bool(b) => Value::Bool(b),
        AttributeValue::L(values) => Value::Array(values.into_iter().map(from_attribute).collect()),
        AttributeValue::M(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, from_attribute(v)))
                .collect(),
        ),
        AttributeValue::Ss(set) => Value::Array(set.into_iter().map(Value::String).collect()),
        AttributeValue::Ns(set) => Value::Array(set.iter().map(|n| number(n)).collect()),
        AttributeValue::B(b) => bytes(b.as_ref()),
        AttributeValue::Bs(set) => Value::Array(set.iter().map(|b| bytes(b.as_ref())).collect()),
        _ => Value::Null,
    }
}

fn from_item(item: HashMap<String, AttributeValue>) -> Item {
    item.into_iter()
        .map(|(k, v)| (k, from_attribute(v)))
        .collect()
}
