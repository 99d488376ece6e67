//! The DynamoDB adapter of the [`Store`] port (`aws-sdk-dynamodb`, honouring
//! `AWS_ENDPOINT_URL`).
//!
//! Items are `{PK, SK, v, data, expires_at?}`. Reads are strongly consistent. Conditions treat
//! an item past its TTL as absent, as the embedded store does, though DynamoDB may keep it
//! for a while. Throttling is retried by the SDK's standard retry mode; unprocessed batch keys
//! are retried here with backoff. Every HTTP attempt is counted (see [`DynamoStore::round_trips`]).

mod attr;
mod expr;
pub mod table;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, ReturnValue, TransactWriteItem,
};
use aws_smithy_runtime_api::box_error::BoxError;

use super::limits::{
    check_batch, check_item, check_key, check_query, check_transaction, check_update,
};
use super::{
    CancelReason, Condition, Cursor, Item, Key, Page, Query, Store, StoreError, StoreResult,
    Update, Write, now_unix,
};
use expr::Expression;
use table::{DATA, PK, SK, TTL, VERSION};

/// The store on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    round_trips: Arc<AtomicU64>,
}

/// Counts HTTP attempts, retries included.
#[derive(Debug)]
struct RoundTrips(Arc<AtomicU64>);

impl Intercept for RoundTrips {
    fn name(&self) -> &'static str {
        "PlinthRoundTrips"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl DynamoStore {
    /// The table named by `PLINTH_TABLE` (default `plinth`), configured from the environment.
    pub async fn from_env() -> Self {
        let table = std::env::var("PLINTH_TABLE").unwrap_or_else(|_| "plinth".into());
        Self::new(&crate::aws::config_from_env().await, table)
    }

    pub fn new(config: &SdkConfig, table: impl Into<String>) -> Self {
        let round_trips = Arc::new(AtomicU64::new(0));
        let conf = aws_sdk_dynamodb::config::Builder::from(config)
            .interceptor(RoundTrips(Arc::clone(&round_trips)))
            .build();
        Self {
            client: Client::from_conf(conf),
            table: table.into(),
            round_trips,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// HTTP requests sent to DynamoDB so far, retries included.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Creates this store's table if it does not exist yet.
    pub async fn create_table(&self) -> StoreResult<()> {
        table::create_table(&self.client, &self.table).await
    }
}

fn key_attrs(key: &Key) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_string(), AttributeValue::S(key.pk.clone())),
        (SK.to_string(), AttributeValue::S(key.sk.clone())),
    ])
}

fn item_attrs(item: &Item) -> HashMap<String, AttributeValue> {
    let mut attrs = key_attrs(&item.key);
    attrs.insert(VERSION.into(), AttributeValue::N(item.version.to_string()));
    attrs.insert(
        DATA.into(),
        AttributeValue::M(attr::to_attr_map(&item.data)),
    );
    if let Some(at) = item.expires_at {
        attrs.insert(TTL.into(), AttributeValue::N(at.to_string()));
    }
    attrs
}

fn parse_item(attrs: &HashMap<String, AttributeValue>) -> StoreResult<Item> {
    let text = |name: &str| attrs.get(name).and_then(|a| a.as_s().ok()).cloned();
    let number = |name: &str| attrs.get(name).and_then(|a| a.as_n().ok());
    let key = Key::new(text(PK).unwrap_or_default(), text(SK).unwrap_or_default());
    let corrupt = |reason: &str| StoreError::Corrupt {
        key: key.clone(),
        reason: reason.into(),
    };
    let version = number(VERSION)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| corrupt("no numeric `v`"))?;
    let data = match attrs.get(DATA) {
        Some(AttributeValue::M(map)) => attr::from_attr_map(map),
        _ => None,
    }
    .ok_or_else(|| corrupt("`data` is not a JSON-compatible map"))?;
    let expires_at = number(TTL).and_then(|n| n.parse().ok());
    Ok(Item {
        key,
        version,
        data,
        expires_at,
    })
}

/// The live item among raw attributes: expired ones are dropped like DynamoDB's TTL will.
fn live(attrs: &HashMap<String, AttributeValue>, now: i64) -> StoreResult<Option<Item>> {
    let item = parse_item(attrs)?;
    Ok((!item.is_expired(now)).then_some(item))
}

fn code_of<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    e.as_service_error().and_then(ProvideErrorMetadata::code)
}

/// Errors that are neither a failed condition nor a cancelled transaction.
#[allow(clippy::needless_pass_by_value)] // by value so that it reads `.map_err(sdk_error)`
pub(crate) fn sdk_error<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let message = e
        .as_service_error()
        .and_then(ProvideErrorMetadata::message)
        .unwrap_or_default()
        .to_string();
    match code_of(&e) {
        Some("ValidationException") => StoreError::Invalid(message),
        Some(code) => StoreError::Unavailable(format!("{code}: {message}")),
        None => StoreError::Unavailable(
            aws_smithy_types::error::display::DisplayErrorContext(&e).to_string(),
        ),
    }
}

/// Maps a failed conditional write: a failed condition, or a race with a transaction, is a
/// [`StoreError::ConditionFailed`] that the caller resolves by reading again.
fn write_error<E, R>(key: &Key, e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match code_of(&e) {
        Some("ConditionalCheckFailedException" | "TransactionConflictException") => {
            StoreError::ConditionFailed { key: key.clone() }
        }
        _ => sdk_error(e),
    }
}

fn cancel_reason(code: Option<&str>) -> CancelReason {
    match code {
        None | Some("None") => CancelReason::None,
        Some("ConditionalCheckFailed") => CancelReason::ConditionFailed,
        Some(_) => CancelReason::Conflict,
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, key: &Key) -> StoreResult<Option<Item>> {
        check_key(key)?;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        match out.item() {
            Some(attrs) => live(attrs, now_unix()),
            None => Ok(None),
        }
    }

    async fn put(&self, item: Item, condition: Condition) -> StoreResult<()> {
        check_item(&item)?;
        let expr = Expression::condition(condition, now_unix());
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item_attrs(&item)))
            .set_condition_expression(expr.text)
            .set_expression_attribute_names(expr.names)
            .set_expression_attribute_values(expr.values)
            .send()
            .await
            .map_err(|e| write_error(&item.key, e))?;
        Ok(())
    }

    async fn update(&self, key: &Key, update: Update, condition: Condition) -> StoreResult<Item> {
        check_key(key)?;
        check_update(&update)?;
        let expr = Expression::update(&update, condition, now_unix());
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .set_update_expression(expr.update)
            .set_condition_expression(expr.text)
            .set_expression_attribute_names(expr.names)
            .set_expression_attribute_values(expr.values)
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| write_error(key, e))?;
        let attrs = out.attributes().ok_or_else(|| StoreError::Corrupt {
            key: key.clone(),
            reason: "update returned no item".into(),
        })?;
        parse_item(attrs)
    }

    async fn delete(&self, key: &Key, condition: Condition) -> StoreResult<()> {
        check_key(key)?;
        let expr = Expression::condition(condition, now_unix());
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .set_condition_expression(expr.text)
            .set_expression_attribute_names(expr.names)
            .set_expression_attribute_values(expr.values)
            .send()
            .await
            .map_err(|e| write_error(key, e))?;
        Ok(())
    }

    async fn query(&self, query: &Query) -> StoreResult<Page> {
        check_query(query)?;
        let expr = Expression::key_condition(&query.pk, &query.sort_key);
        let start = query
            .after
            .as_ref()
            .map(|Cursor(sk)| key_attrs(&Key::new(&query.pk, sk)));
        let limit = query.limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .set_key_condition_expression(expr.text)
            .set_expression_attribute_names(expr.names)
            .set_expression_attribute_values(expr.values)
            .scan_index_forward(!query.descending)
            .consistent_read(true)
            .set_limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(sdk_error)?;
        let now = now_unix();
        let mut items = Vec::new();
        for attrs in out.items() {
            items.extend(live(attrs, now)?);
        }
        let next = out
            .last_evaluated_key()
            .and_then(|k| k.get(SK))
            .and_then(|sk| sk.as_s().ok())
            .map(|sk| Cursor(sk.clone()));
        Ok(Page { items, next })
    }

    async fn batch_get(&self, keys: &[Key]) -> StoreResult<Vec<Item>> {
        check_batch(keys)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pending = KeysAndAttributes::builder()
            .set_keys(Some(keys.iter().map(key_attrs).collect()))
            .consistent_read(true)
            .build()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut found: HashMap<Key, Item> = HashMap::new();
        let now = now_unix();
        for attempt in 0..8u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(25 << attempt.min(6))).await;
            }
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, pending.clone())
                .send()
                .await
                .map_err(sdk_error)?;
            let responses = out.responses().and_then(|r| r.get(&self.table));
            for attrs in responses.into_iter().flatten() {
                if let Some(item) = live(attrs, now)? {
                    found.insert(item.key.clone(), item);
                }
            }
            match out.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                Some(rest) if !rest.keys().is_empty() => pending = rest.clone(),
                _ => return Ok(keys.iter().filter_map(|k| found.remove(k)).collect()),
            }
        }
        Err(StoreError::Unavailable(
            "batch get: keys still unprocessed after 8 attempts".into(),
        ))
    }

    async fn transact(&self, writes: Vec<Write>) -> StoreResult<()> {
        check_transaction(&writes)?;
        let now = now_unix();
        let items = writes
            .iter()
            .map(|w| transact_item(&self.table, w, now))
            .collect::<StoreResult<Vec<_>>>()?;
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                    let reasons = cancelled
                        .cancellation_reasons()
                        .iter()
                        .map(|r| cancel_reason(r.code()))
                        .collect();
                    Err(StoreError::TransactionCanceled { reasons })
                }
                _ => Err(sdk_error(e)),
            },
        }
    }
}

fn transact_item(table: &str, write: &Write, now: i64) -> StoreResult<TransactWriteItem> {
    let invalid = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Invalid(e.to_string());
    let expr = match write {
        // DynamoDB's ConditionCheck needs an expression even when anything goes.
        Write::Check {
            condition: Condition::Always,
            ..
        } => Expression::always(),
        _ => Expression::condition(write.condition(), now),
    };
    let item = TransactWriteItem::builder();
    let item = match write {
        Write::Put { item: put, .. } => item.put(
            Put::builder()
                .table_name(table)
                .set_item(Some(item_attrs(put)))
                .set_condition_expression(expr.text)
                .set_expression_attribute_names(expr.names)
                .set_expression_attribute_values(expr.values)
                .build()
                .map_err(invalid)?,
        ),
        Write::Delete { key, .. } => item.delete(
            Delete::builder()
                .table_name(table)
                .set_key(Some(key_attrs(key)))
                .set_condition_expression(expr.text)
                .set_expression_attribute_names(expr.names)
                .set_expression_attribute_values(expr.values)
                .build()
                .map_err(invalid)?,
        ),
        Write::Check { key, .. } => item.condition_check(
            ConditionCheck::builder()
                .table_name(table)
                .set_key(Some(key_attrs(key)))
                .set_condition_expression(expr.text)
                .set_expression_attribute_names(expr.names)
                .set_expression_attribute_values(expr.values)
                .build()
                .map_err(invalid)?,
        ),
    };
    Ok(item.build())
}
