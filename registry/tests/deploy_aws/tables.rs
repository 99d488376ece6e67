//! `DynamoTables` on the emulator: a module's declared tables created with their keys,
//! once, and dropped on request.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType as DynamoKeyType,
    ScalarAttributeType, TableDescription,
};
use plinth_module_sdk::Manifest;
use plinth_module_sdk::manifest::Table;
use plinth_registry::deploy::TableProvisioner;
use plinth_registry::deploy::dynamodb_tables::DynamoTables;
use serde_json::json;

use crate::moto::{manifest, sdk, unique_module};

fn module(name: &str) -> Manifest {
    let prefix = name.replace('-', "_");
    let database = json!({
        "type": "dynamodb",
        "tables": [
            {"name": format!("{prefix}_invoices"), "partition_key": "tenant_id", "sort_key": "invoice_id"},
            {"name": format!("{prefix}_ledger"), "partition_key": "tenant_id",
             "sort_key": {"name": "posted_at", "type": "N"}},
            {"name": format!("{prefix}_settings"), "partition_key": "tenant_id"}
        ]
    });
    let backend = json!({"type": "lambda", "entry_point": "bootstrap"});
    manifest(name, "1.0.0", backend, Some(database))
}

fn table_names(manifest: &Manifest) -> Vec<String> {
    manifest
        .database
        .as_ref()
        .unwrap()
        .tables
        .iter()
        .map(|t| t.name.clone())
        .collect()
}

async fn describe(sdk: &SdkConfig, name: &str) -> Option<TableDescription> {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let described = client.describe_table().table_name(name).send().await.ok()?;
    described.table().cloned()
}

/// `(attribute, key type, attribute type)` of each key, hash first.
fn keys(table: &TableDescription) -> Vec<(String, &'static str, String)> {
    table
        .key_schema()
        .iter()
        .map(|key| {
            let name = key.attribute_name();
            let kind = table
                .attribute_definitions()
                .iter()
                .find(|a| a.attribute_name() == name);
            let hash = if *key.key_type() == DynamoKeyType::Hash {
                "HASH"
            } else {
                "RANGE"
            };
            (
                name.to_owned(),
                hash,
                kind.unwrap().attribute_type().as_str().to_owned(),
            )
        })
        .collect()
}

fn key(name: &str, hash: &'static str, kind: &str) -> (String, &'static str, String) {
    (name.to_owned(), hash, kind.to_owned())
}

#[tokio::test]
async fn declared_tables_are_created_once_with_their_keys_and_dropped() {
    let Some(sdk) = sdk("declared_tables_are_created_once_with_their_keys_and_dropped").await
    else {
        return;
    };
    let manifest = module(&unique_module("tbl"));
    let names = table_names(&manifest);
    let tables = DynamoTables::new(&sdk);

    let created = tables
        .create_tables(&manifest)
        .await
        .expect("create tables");

    assert_eq!(created, names);
    let invoices = describe(&sdk, &names[0]).await.expect("invoices table");
    assert_eq!(
        keys(&invoices),
        [
            key("tenant_id", "HASH", "S"),
            key("invoice_id", "RANGE", "S")
        ]
    );
    let billing = invoices
        .billing_mode_summary()
        .and_then(|b| b.billing_mode());
    assert_eq!(billing, Some(&BillingMode::PayPerRequest));
    assert_eq!(invoices.table_status().map(|s| s.as_str()), Some("ACTIVE"));
    let ledger = describe(&sdk, &names[1]).await.expect("ledger table");
    assert_eq!(
        keys(&ledger),
        [
            key("tenant_id", "HASH", "S"),
            key("posted_at", "RANGE", "N")
        ]
    );
    let settings = describe(&sdk, &names[2]).await.expect("settings table");
    assert_eq!(keys(&settings), [key("tenant_id", "HASH", "S")]);

    let again = tables.create_tables(&manifest).await.expect("create again");
    assert!(again.is_empty(), "nothing is created twice: {again:?}");

    tables.drop_tables(&manifest).await.expect("drop tables");
    for name in &names {
        assert!(describe(&sdk, name).await.is_none(), "{name} is gone");
    }
    tables.drop_tables(&manifest).await.expect("drop again");
}

#[tokio::test]
async fn a_table_named_without_keys_gets_pk_and_sk() {
    let Some(sdk) = sdk("a_table_named_without_keys_gets_pk_and_sk").await else {
        return;
    };
    let mut manifest = module(&unique_module("tbl"));
    let database = manifest.database.as_mut().unwrap();
    let name = format!("{}_notes", manifest.name.snake_case());
    // Validation asks dynamodb tables for keys; an older stored manifest may lack them.
    database.tables = vec![Table {
        name: name.clone(),
        partition_key: None,
        sort_key: None,
    }];

    let created = DynamoTables::new(&sdk)
        .create_tables(&manifest)
        .await
        .expect("create");

    assert_eq!(created, [name.as_str()]);
    let table = describe(&sdk, &name).await.expect("the table");
    assert_eq!(
        keys(&table),
        [key("pk", "HASH", "S"), key("sk", "RANGE", "S")]
    );
}

#[tokio::test]
async fn an_existing_table_with_other_keys_is_refused() {
    let Some(sdk) = sdk("an_existing_table_with_other_keys_is_refused").await else {
        return;
    };
    let manifest = module(&unique_module("tbl"));
    let name = table_names(&manifest)[0].clone();
    aws_sdk_dynamodb::Client::new(&sdk)
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(DynamoKeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create a table in the way");

    let error = DynamoTables::new(&sdk)
        .create_tables(&manifest)
        .await
        .unwrap_err();

    assert_eq!(
        error.to_string(),
        format!(
            "table `{name}` already exists with partition key `id` (S), no sort key, but module `{}` declares \
             partition key `tenant_id` (S), sort key `invoice_id` (S); DynamoDB cannot change a table's keys",
            manifest.name
        )
    );
}

#[tokio::test]
async fn a_database_other_than_dynamodb_creates_nothing() {
    let Some(sdk) = sdk("a_database_other_than_dynamodb_creates_nothing").await else {
        return;
    };
    let name = unique_module("tbl");
    let prefix = name.replace('-', "_");
    let database = json!({"type": "postgresql", "tables": [format!("{prefix}_accounts")]});
    let backend = json!({"type": "lambda", "entry_point": "bootstrap"});
    let manifest = manifest(&name, "1.0.0", backend, Some(database));

    let created = DynamoTables::new(&sdk)
        .create_tables(&manifest)
        .await
        .expect("create");

    assert!(created.is_empty());
    assert!(
        describe(&sdk, &format!("{prefix}_accounts"))
            .await
            .is_none()
    );
}
