//! The platform's DynamoDB table, declared once here; `template.yaml` declares the same table
//! and a test holds the two together.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification,
};

use crate::store::{StoreError, StoreResult};

/// Partition key attribute.
pub const PK: &str = "PK";
/// Sort key attribute.
pub const SK: &str = "SK";
/// The optimistic version.
pub const VERSION: &str = "v";
/// The item's JSON object, as a DynamoDB map.
pub const DATA: &str = "data";
/// Unix seconds; DynamoDB's TTL removes the item after it.
pub const TTL: &str = "expires_at";

/// Creates the table (on-demand, TTL on [`TTL`]) and waits until it is active. No stream:
/// nothing reads one (every write would be kept a day for nobody — and forever on moto,
/// which copies a table's whole stream on each transaction). An existing table is left as it is.
pub async fn create_table(client: &Client, name: &str) -> StoreResult<()> {
    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(PK))
        .attribute_definitions(attribute(SK))
        .key_schema(key(PK, KeyType::Hash))
        .key_schema(key(SK, KeyType::Range))
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            return Ok(());
        }
        Err(e) => return Err(super::sdk_error(e)),
    }
    wait_until_active(client, name).await?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL)
                .build()
                .map_err(invalid)?,
        )
        .send()
        .await
        .map_err(super::sdk_error)?;
    Ok(())
}

async fn wait_until_active(client: &Client, name: &str) -> StoreResult<()> {
    for _ in 0..120 {
        let described = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(super::sdk_error)?;
        let status = described.table().and_then(|t| t.table_status());
        if status == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(StoreError::Unavailable(format!(
        "table {name} did not become active in 30 s"
    )))
}

fn attribute(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("name and type are set")
}

fn key(name: &str, key_type: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .expect("name and type are set")
}

fn invalid(e: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(e.to_string())
}
