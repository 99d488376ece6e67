//! The platform's table: created on the emulator from Rust, and declared the same way in
//! `template.yaml`.

mod support;

use aws_sdk_dynamodb::types::{AttributeValue, KeyType, TimeToLiveStatus};
use plinth_registry::aws;
use plinth_registry::store::dynamodb::DynamoStore;
use plinth_registry::store::dynamodb::table::{PK, SK, TTL};
use serde_norway::Value;

fn template_table() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let text = std::fs::read_to_string(path).expect("template.yaml is readable");
    let template: Value = serde_norway::from_str(&text).expect("template.yaml is YAML");
    template["Resources"]["PlatformTable"].clone()
}

#[test]
fn template_declares_the_table_that_rust_creates() {
    let table = template_table();
    assert_eq!(table["Type"].as_str(), Some("AWS::DynamoDB::Table"));
    let props = &table["Properties"];
    assert_eq!(props["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    let keys: Vec<(&str, &str)> = props["KeySchema"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["AttributeName"].as_str().unwrap(),
                k["KeyType"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(keys, [(PK, "HASH"), (SK, "RANGE")]);
    let attributes: Vec<(&str, &str)> = props["AttributeDefinitions"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["AttributeName"].as_str().unwrap(),
                a["AttributeType"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(attributes, [(PK, "S"), (SK, "S")]);
    let ttl = &props["TimeToLiveSpecification"];
    assert_eq!(
        (ttl["AttributeName"].as_str(), ttl["Enabled"].as_bool()),
        (Some(TTL), Some(true))
    );
    // Nothing consumes a stream of the table: none is declared.
    assert!(props["StreamSpecification"].is_null(), "{props:?}");
}

#[tokio::test]
async fn creates_the_platform_table_on_the_emulator_and_reads_it_back() {
    if !support::emulator_configured("creates_the_platform_table") {
        return;
    }
    let name = support::unique_table("plinth-table");
    let store = DynamoStore::new(&aws::config_from_env().await, &name);
    store.create_table().await.unwrap();
    store
        .create_table()
        .await
        .expect("creating an existing table is a no-op");

    let client = store.client();
    let described = client
        .describe_table()
        .table_name(&name)
        .send()
        .await
        .unwrap();
    let table = described.table().unwrap();
    let keys: Vec<(&str, &KeyType)> = table
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type()))
        .collect();
    assert_eq!(keys, [(PK, &KeyType::Hash), (SK, &KeyType::Range)]);
    assert!(
        table
            .stream_specification()
            .is_none_or(|stream| !stream.stream_enabled()),
        "no stream: nothing reads one"
    );
    let ttl = client
        .describe_time_to_live()
        .table_name(&name)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some(TTL));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));

    client
        .put_item()
        .table_name(&name)
        .item(PK, AttributeValue::S("TENANT#acme".into()))
        .item(SK, AttributeValue::S("TENANT".into()))
        .send()
        .await
        .unwrap();
    let read = client
        .get_item()
        .table_name(&name)
        .key(PK, AttributeValue::S("TENANT#acme".into()))
        .key(SK, AttributeValue::S("TENANT".into()))
        .send()
        .await
        .unwrap();
    assert!(read.item().is_some(), "the item written is read back");
}

/// Issue 13's finding: the dev stage's throttle (100/s) was below a single premium tenant's
/// quota. The stack's throttle — its default, its floor and every samconfig environment's
/// override — is at least the highest tier's rate and burst.
#[test]
fn the_stage_throttle_never_caps_a_tenant_below_its_tier() {
    use plinth_module_sdk::Tier;
    let (rate, burst) = Tier::ALL
        .iter()
        .map(|tier| plinth_registry::gateway::rate::quota_of(*tier))
        .max()
        .unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let template: Value = serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for (parameter, floor) in [
        ("ThrottlingRateLimit", rate),
        ("ThrottlingBurstLimit", burst),
    ] {
        let declared = &template["Parameters"][parameter];
        for field in ["Default", "MinValue"] {
            let value = declared[field].as_u64().unwrap_or_default();
            assert!(
                value >= u64::from(floor),
                "{parameter}.{field} is {value}, below the highest tier's {floor}"
            );
        }
        let samconfig = concat!(env!("CARGO_MANIFEST_DIR"), "/../samconfig.toml");
        for line in std::fs::read_to_string(samconfig).unwrap().lines() {
            for pair in line.split(['"', ' ']) {
                if let Some(value) = pair.strip_prefix(&format!("{parameter}=")) {
                    let value: u64 = value.parse().unwrap();
                    assert!(
                        value >= u64::from(floor),
                        "samconfig.toml sets {parameter}={value}, below the highest tier's {floor}"
                    );
                }
            }
        }
    }
}
