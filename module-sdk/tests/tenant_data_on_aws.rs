//! The data handle on DynamoDB (moto), with the module's role assumed per tenant: the same
//! conformance as the embedded backend, and the session policy each tenant's credentials are
//! asked for, read from the AssumeRole requests the SDK sent. moto does not evaluate session
//! policies, so what it proves is the document sent and the SDK's own refusals; IAM enforces
//! the document on AWS. Skips without the emulator (fails under CI).

#[path = "data/conformance.rs"]
mod conformance;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_sts::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_sts::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sts::error::BoxError;
use plinth_module_sdk::data::Tables;
use plinth_module_sdk::data::dynamodb::DynamoTables;
use plinth_module_sdk::data::session_policy::session_policy;
use serde_json::Value;

const ROLE: &str = "arn:aws:iam::123456789012:role/plinth-module-ledger";

fn emulator_configured(test: &str) -> bool {
    if std::env::var_os("AWS_ENDPOINT_URL").is_some() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: CI is set but AWS_ENDPOINT_URL is not; run the tests with ./tests/run"
    );
    eprintln!("{test}: skipped, no emulator (AWS_ENDPOINT_URL unset); ./tests/run starts one");
    false
}

fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("_{}_{nanos}", std::process::id())
}

/// Every AssumeRole request body the STS client sent, as its form fields.
#[derive(Debug, Clone, Default)]
struct SentToSts(Arc<Mutex<Vec<Fields>>>);

/// A request's form fields.
type Fields = HashMap<String, String>;

impl Intercept for SentToSts {
    fn name(&self) -> &'static str {
        "SentToSts"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let body = context.request().body().bytes().unwrap_or_default();
        let fields = String::from_utf8_lossy(body)
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (decode(k), decode(v)))
            .collect();
        self.0.lock().unwrap().push(fields);
        Ok(())
    }
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

impl SentToSts {
    fn assumed(&self) -> Vec<Fields> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|f| f.get("Action").map(String::as_str) == Some("AssumeRole"))
            .cloned()
            .collect()
    }
}

/// The module's tables on moto, as the installer creates them (declared keys, on demand).
async fn create_tables(sdk: &aws_config::SdkConfig, tag: &str) {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    for (name, sort, kind) in [
        (
            format!("ledger_rows{tag}"),
            "row_id",
            ScalarAttributeType::S,
        ),
        (format!("ledger_events{tag}"), "at", ScalarAttributeType::N),
    ] {
        let attribute = |name: &str, kind: ScalarAttributeType| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(kind)
                .build()
                .unwrap()
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .unwrap()
        };
        dynamodb
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("tenant_id", ScalarAttributeType::S))
            .attribute_definitions(attribute(sort, kind))
            .key_schema(key("tenant_id", KeyType::Hash))
            .key_schema(key(sort, KeyType::Range))
            .send()
            .await
            .expect("moto creates the table");
    }
}

async fn tables_on_moto(tag: &str) -> (Tables, SentToSts) {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    create_tables(&sdk, tag).await;
    let sent = SentToSts::default();
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(&sdk)
            .interceptor(sent.clone())
            .build(),
    );
    let manifest = conformance::manifest(tag);
    let backend = DynamoTables::with_sts(&sdk, Some(ROLE.into()), sts);
    let tables = Tables::new(&manifest, Arc::new(backend)).expect("the tables");
    (tables, sent)
}

#[tokio::test]
async fn a_handle_cannot_read_or_write_another_tenants_row_on_dynamodb() {
    if !emulator_configured("a_handle_cannot_read_or_write_another_tenants_row_on_dynamodb") {
        return;
    }
    let tag = unique();
    let (tables, _) = tables_on_moto(&tag).await;
    conformance::a_handle_cannot_read_or_write_another_tenants_row(&tables, &tag).await;
}

#[tokio::test]
async fn company_scoped_keys_keep_companies_apart_on_dynamodb() {
    if !emulator_configured("company_scoped_keys_keep_companies_apart_on_dynamodb") {
        return;
    }
    let tag = unique();
    let (tables, _) = tables_on_moto(&tag).await;
    conformance::company_scoped_keys_keep_companies_apart(&tables, &tag).await;
    conformance::sort_keys_and_refusals(&tables, &tag).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_writes_once_on_dynamodb() {
    if !emulator_configured("insert_writes_once_on_dynamodb") {
        return;
    }
    let tag = unique();
    let (tables, _) = tables_on_moto(&tag).await;
    conformance::insert_writes_once(&tables, &tag).await;
}

/// Each tenant's calls run as the module's role assumed once for that tenant (then cached),
/// with a session policy allowing only partitions `{tenant}` and `{tenant}#*`.
#[tokio::test]
async fn each_tenant_gets_the_modules_role_narrowed_to_its_partitions() {
    if !emulator_configured("each_tenant_gets_the_modules_role_narrowed_to_its_partitions") {
        return;
    }
    let tag = unique();
    let (tables, sent) = tables_on_moto(&tag).await;
    conformance::a_handle_cannot_read_or_write_another_tenants_row(&tables, &tag).await;

    let assumed = sent.assumed();
    let sessions: Vec<&str> = assumed
        .iter()
        .map(|a| a["RoleSessionName"].as_str())
        .collect();
    assert_eq!(
        sessions,
        ["plinth-acme", "plinth-globex"],
        "once per tenant, then cached"
    );
    for (request, tenant) in assumed.iter().zip(["acme", "globex"]) {
        assert_eq!(request["RoleArn"], ROLE);
        assert_eq!(request["DurationSeconds"], "3600");
        let policy: Value = serde_json::from_str(&request["Policy"]).expect("a JSON policy");
        assert_eq!(policy, session_policy(tenant));
        assert_eq!(
            policy["Statement"][0]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"],
            serde_json::json!([tenant, format!("{tenant}#*")])
        );
    }
}
