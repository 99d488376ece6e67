//! Data export and retention (docs/operations.md, "Export and retention") on both table
//! backends: the embedded redb file on one machine (files in a folder) and DynamoDB with S3 on
//! the emulator. Rows are written as a module writes them (the SDK's handle on one machine, the
//! table itself on DynamoDB), exported, read back and compared; the sweep is run at chosen
//! times instead of waiting out a retention.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use plinth_module_sdk::Manifest;
use plinth_registry::bundles::BundleStore;
use plinth_registry::bundles::folder::FolderBundles;
use plinth_registry::bundles::s3::S3Bundles;
use plinth_registry::deploy::dynamodb_tables::DynamoTables;
use plinth_registry::deploy::local::EmbeddedTableFiles;
use plinth_registry::deploy::{TableProvisioner, TenantPartitions};
use plinth_registry::install::SweepPolicy;
use plinth_registry::{Error, Ports, Result};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use time::OffsetDateTime;

use support::api::{TestPlatform, operator, tenant_admin};
use support::fakes::Backend;

/// The router the support's scenarios use.
#[allow(dead_code)]
const ROUTER: support::api::MakeRouter = plinth_registry::App::api;

/// Where the module's tables and the export files are.
enum Where {
    OneMachine {
        tables: PathBuf,
        _dirs: (TempDir, TempDir),
    },
    Aws {
        sdk: Box<aws_config::SdkConfig>,
    },
}

struct Rig {
    p: TestPlatform,
    at: Where,
    tables: Arc<dyn TableProvisioner>,
    bundles: Arc<dyn BundleStore>,
    manifest: Manifest,
}

/// A bundle store whose writes all fail, over another (reads pass through).
#[derive(Debug)]
struct Failing(Arc<dyn BundleStore>);

#[async_trait]
impl BundleStore for Failing {
    async fn put(&self, key: &str, _body: Vec<u8>, _content_type: &str) -> Result<()> {
        Err(Error::BadGateway(format!("the store refused {key}")))
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.0.get(key).await
    }
    async fn presigned_get(&self, key: &str, expires: Duration) -> Result<Option<String>> {
        self.0.presigned_get(key, expires).await
    }
}

/// A module `ledger` with two tables, their names unique to this run (DynamoDB table names are
/// the emulator's, shared by every test).
fn manifest_json(unique: &str) -> Value {
    json!({
        "name": "ledger",
        "display_name": "Ledger",
        "version": "1.0.0",
        "backend": {"type": "microservice", "api_prefix": "/api/v1/ledger", "health_check": "/health"},
        "dependencies": {"platform_version": ">=2.0.0"},
        "permissions": [{"code": "ledger:accounts.read", "description": "read"}],
        "database": {
            "type": "dynamodb",
            "schema_prefix": "ledger_",
            "tables": [
                {"name": format!("ledger_{unique}_accounts"), "partition_key": "tenant_id", "sort_key": "account_id"},
                {"name": format!("ledger_{unique}_entries"), "partition_key": "tenant_id", "sort_key": {"name": "posted_at", "type": "N"}}
            ]
        }
    })
}

fn unique() -> String {
    support::unique_table("t")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_lowercase()
}

fn accounts(rig: &Rig) -> String {
    rig.manifest.database.as_ref().unwrap().tables[0]
        .name
        .clone()
}

fn entries(rig: &Rig) -> String {
    rig.manifest.database.as_ref().unwrap().tables[1]
        .name
        .clone()
}

async fn rig_one_machine(failing: bool) -> Rig {
    let (tables_dir, data_dir) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let tables: Arc<dyn TableProvisioner> = Arc::new(EmbeddedTableFiles::new(tables_dir.path()));
    let folder: Arc<dyn BundleStore> = Arc::new(FolderBundles::new(data_dir.path()));
    let bundles: Arc<dyn BundleStore> = if failing {
        Arc::new(Failing(folder))
    } else {
        folder
    };
    let (t, b) = (tables.clone(), bundles.clone());
    let p =
        TestPlatform::embedded_adapted(move |ports: Ports| ports.with_tables(t).with_bundles(b));
    let manifest = manifest_json(&unique());
    Rig {
        p,
        at: Where::OneMachine {
            tables: tables_dir.path().to_owned(),
            _dirs: (tables_dir, data_dir),
        },
        tables,
        bundles,
        manifest: Manifest::from_json_str(&manifest.to_string()).unwrap(),
    }
}

async fn rig_aws(test: &str, failing: bool) -> Option<Rig> {
    if !support::emulator_configured(test) {
        return None;
    }
    let sdk = plinth_registry::aws::config_from_env().await;
    let bucket = support::unique_table("plinth-exports").to_lowercase();
    let s3 = S3Bundles::new(&sdk, &bucket);
    s3.create_bucket()
        .await
        .expect("the bucket on the emulator");
    let s3: Arc<dyn BundleStore> = Arc::new(s3);
    let bundles: Arc<dyn BundleStore> = if failing { Arc::new(Failing(s3)) } else { s3 };
    let tables: Arc<dyn TableProvisioner> = Arc::new(DynamoTables::new(&sdk));
    let (t, b) = (tables.clone(), bundles.clone());
    let p = TestPlatform::dynamo_adapted(test, move |ports: Ports| {
        ports.with_tables(t).with_bundles(b)
    })
    .await?;
    let manifest = manifest_json(&unique());
    Some(Rig {
        p,
        at: Where::Aws { sdk: Box::new(sdk) },
        tables,
        bundles,
        manifest: Manifest::from_json_str(&manifest.to_string()).unwrap(),
    })
}

/// Publishes and installs `ledger` (its tables created on DynamoDB), with tenants `acme`
/// (company `acme-de`) and `globex`, each enabling it.
async fn installed(rig: &Rig) {
    let p = &rig.p;
    let manifest: Value = serde_json::to_value(&rig.manifest).unwrap();
    p.call(Method::POST, "/api/v1/modules", operator(), Some(manifest))
        .await
        .expect(StatusCode::CREATED);
    install(rig).await;
    for tenant in ["acme", "globex"] {
        let body = json!({"id": tenant, "name": tenant});
        p.call(Method::POST, "/api/v1/tenants", operator(), Some(body))
            .await
            .expect(StatusCode::CREATED);
        p.enable(tenant, "ledger").await;
    }
    let body = json!({"id": "acme-de", "name": "acme-de"});
    p.call(
        Method::POST,
        "/api/v1/tenants/acme/companies",
        tenant_admin("acme"),
        Some(body),
    )
    .await
    .expect(StatusCode::CREATED);
}

async fn install(rig: &Rig) {
    let endpoint = Backend::default().start().await;
    rig.p
        .call(
            Method::POST,
            "/api/v1/modules/ledger/install",
            operator(),
            Some(json!({"version": "1.0.0", "endpoint": endpoint})),
        )
        .await
        .expect(StatusCode::ACCEPTED);
    let done = rig.p.settled("ledger").await;
    assert_eq!(done["status"], "installed", "{done}");
}

/// Rows as the module writes them: `(partition, table, sort key, fields)`.
type Row = (&'static str, String, Value, Value);

/// acme: 3 accounts and 2 entries of its own, 1 account of its company; globex: 2 accounts.
fn rows(rig: &Rig) -> Vec<Row> {
    let (a, e) = (accounts(rig), entries(rig));
    vec![
        (
            "acme",
            a.clone(),
            json!("a-1"),
            json!({"name": "Cash", "balance": 120}),
        ),
        (
            "acme",
            a.clone(),
            json!("a-2"),
            json!({"name": "Bank", "balance": 5000.5}),
        ),
        (
            "acme",
            a.clone(),
            json!("a-3"),
            json!({"name": "Ünïcode ✓", "tags": ["x", "y"]}),
        ),
        ("acme", e.clone(), json!(20), json!({"amount": 7})),
        (
            "acme",
            e,
            json!(10),
            json!({"amount": 3, "memo": {"by": "ann"}}),
        ),
        (
            "acme#acme-de",
            a.clone(),
            json!("de-1"),
            json!({"name": "Kasse"}),
        ),
        (
            "globex",
            a.clone(),
            json!("g-1"),
            json!({"name": "Globex cash"}),
        ),
        ("globex", a, json!("g-2"), json!({"name": "Globex bank"})),
    ]
}

/// Writes `rows`: through the SDK's handle into the module's file on one machine (closed
/// again, as a stopped backend leaves it), into the tables themselves on DynamoDB.
async fn write(rig: &Rig, rows: &[Row]) {
    match &rig.at {
        Where::OneMachine { tables, .. } => {
            let data = plinth_module_sdk::data::Tables::embedded(&rig.manifest, tables).unwrap();
            for (partition, table, sort, fields) in rows {
                let (tenant, company) = match partition.split_once('#') {
                    Some((t, c)) => (t, Some(c)),
                    None => (*partition, None),
                };
                let handle = data.for_tenant(tenant, company);
                let table = match company {
                    Some(_) => handle.company_table(table).unwrap(),
                    None => handle.table(table).unwrap(),
                };
                match sort {
                    Value::String(key) => table.put(key.as_str(), fields).await.unwrap(),
                    Value::Number(n) => table.put(n.as_i64().unwrap(), fields).await.unwrap(),
                    other => panic!("{other}"),
                }
            }
        }
        Where::Aws { sdk } => {
            use aws_sdk_dynamodb::types::AttributeValue as A;
            let client = aws_sdk_dynamodb::Client::new(sdk);
            for (partition, table, sort, fields) in rows {
                let mut item = to_item(fields);
                item.insert("tenant_id".into(), A::S((*partition).to_owned()));
                match sort {
                    Value::String(key) => item.insert("account_id".into(), A::S(key.clone())),
                    Value::Number(n) => item.insert("posted_at".into(), A::N(n.to_string())),
                    other => panic!("{other}"),
                };
                client
                    .put_item()
                    .table_name(table)
                    .set_item(Some(item))
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

fn to_item(
    fields: &Value,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    fields
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), to_attribute(v)))
        .collect()
}

fn to_attribute(value: &Value) -> aws_sdk_dynamodb::types::AttributeValue {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    match value {
        Value::String(s) => A::S(s.clone()),
        Value::Number(n) => A::N(n.to_string()),
        Value::Bool(b) => A::Bool(*b),
        Value::Array(items) => A::L(items.iter().map(to_attribute).collect()),
        Value::Object(_) => A::M(to_item(value)),
        Value::Null => A::Null(true),
    }
}

/// The row as the table holds it: its fields with the partition and sort key attributes.
fn stored(row: &Row) -> Value {
    let (partition, _, sort, fields) = row;
    let mut stored = fields.as_object().unwrap().clone();
    stored.insert("tenant_id".into(), json!(partition));
    let key = if sort.is_string() {
        "account_id"
    } else {
        "posted_at"
    };
    stored.insert(key.into(), sort.clone());
    Value::Object(stored)
}

fn of_tenant<'r>(rows: &'r [Row], tenant: &str, table: &str) -> Vec<&'r Row> {
    rows.iter()
        .filter(|(p, t, _, _)| t == table && (*p == tenant || p.starts_with(&format!("{tenant}#"))))
        .collect()
}

async fn count(rig: &Rig, table: &str, tenant: Option<&str>) -> u64 {
    let partitions = tenant.map(|t| TenantPartitions {
        tenant: t.to_owned(),
        companies: if t == "acme" {
            vec!["acme-de".into()]
        } else {
            Vec::new()
        },
    });
    rig.tables
        .count_rows(&rig.manifest, table, partitions.as_ref())
        .await
        .unwrap()
}

/// Whether the module's tables still exist: its file on one machine, each table on DynamoDB.
async fn tables_exist(rig: &Rig) -> bool {
    match &rig.at {
        Where::OneMachine { tables, .. } => {
            plinth_module_sdk::data::embedded_file(tables, &rig.manifest.name).exists()
        }
        Where::Aws { sdk } => {
            let client = aws_sdk_dynamodb::Client::new(sdk);
            client
                .describe_table()
                .table_name(accounts(rig))
                .send()
                .await
                .is_ok()
        }
    }
}

/// Reads an export back from the store, checks each file against the manifest (rows and
/// SHA-256) and against the rows the tenant has; returns the manifest.
async fn check_export(rig: &Rig, export: &Value, rows: &[Row], tenant: &str) -> Value {
    let location = export["location"].as_str().unwrap();
    assert!(
        location.starts_with(&format!("exports/ledger/{tenant}/")),
        "{location}"
    );
    let manifest_file = rig
        .bundles
        .get(&format!("{location}manifest.json"))
        .await
        .unwrap()
        .expect("manifest.json is written");
    let manifest: Value = serde_json::from_slice(&manifest_file).unwrap();
    assert_eq!(manifest["module"], "ledger");
    assert_eq!(manifest["version"], "1.0.0");
    assert_eq!(manifest["tenant"], tenant);
    assert!(manifest["created_at"].is_string());
    let listed = manifest["tables"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{manifest}");
    for entry in listed {
        let name = entry["name"].as_str().unwrap();
        let file = rig
            .bundles
            .get(&format!("{location}{name}.jsonl"))
            .await
            .unwrap()
            .expect("each table's file is written");
        assert_eq!(
            entry["sha256"].as_str().unwrap(),
            hex(&Sha256::digest(&file)),
            "{name}: the manifest's checksum is the file's"
        );
        let lines: Vec<Value> = std::str::from_utf8(&file)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let expected = of_tenant(rows, tenant, name);
        assert_eq!(entry["rows"], json!(lines.len()), "{name}: rows = lines");
        assert_eq!(
            lines.len(),
            expected.len(),
            "{name}: every row of {tenant}, no other"
        );
        let found: BTreeSet<String> = lines.iter().map(canon).collect();
        let wanted: BTreeSet<String> = expected.iter().map(|r| canon(&stored(r))).collect();
        assert_eq!(found, wanted, "{name}: the rows as stored");
        assert_eq!(
            lines.len() as u64,
            count(rig, name, Some(tenant)).await,
            "{name}: the table's count of {tenant}'s rows"
        );
        // In key order: the tenant's own partition, then its companies', each by sort key.
        let keys: Vec<(String, Value)> = lines
            .iter()
            .map(|l| {
                let sort = l.get("account_id").or(l.get("posted_at")).unwrap().clone();
                (l["tenant_id"].as_str().unwrap().to_owned(), sort)
            })
            .collect();
        let ordered = keys.windows(2).all(|pair| {
            let ((pa, sa), (pb, sb)) = (&pair[0], &pair[1]);
            pa < pb
                || (pa == pb
                    && match (sa.as_i64(), sb.as_i64()) {
                        (Some(a), Some(b)) => a < b,
                        _ => sa.as_str() < sb.as_str(),
                    })
        });
        assert!(ordered, "{name}: stable key order: {keys:?}");
    }
    manifest
}

/// A value's text with every object's keys in order (to compare rows as sets).
fn canon(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), canon(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => {
            format!(
                "[{}]",
                items.iter().map(canon).collect::<Vec<_>>().join(",")
            )
        }
        Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), |f| f.to_string()),
        other => other.to_string(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn sweep_at(rig: &Rig, at: OffsetDateTime) {
    rig.p
        .app
        .plane
        .installer
        .sweep(at, SweepPolicy::default().stale_after)
        .await
        .unwrap();
}

fn parse(at: &str) -> OffsetDateTime {
    OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).unwrap()
}

fn days(n: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::days(n)
}

// ---------------------------------------------------------------------------------------

async fn an_uninstall_exports_rows_whose_counts_and_checksums_match_then_the_sweep_drops_the_tables_only_after_retention(
    rig: Rig,
) {
    installed(&rig).await;
    let rows = rows(&rig);
    write(&rig, &rows).await;

    // The impact report: the tables, every tenant's rows, the export, when they go.
    let dry = rig
        .p
        .call(
            Method::DELETE,
            "/api/v1/modules/ledger/installation?dry_run=true&export=true&retention_days=7",
            operator(),
            None,
        )
        .await;
    let impact = dry.expect(StatusCode::OK);
    assert_eq!(impact["export"], true, "{impact}");
    let counted: Vec<(String, Value)> = impact["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_owned(), r["rows"].clone()))
        .collect();
    assert_eq!(
        counted,
        [(accounts(&rig), json!(6)), (entries(&rig), json!(2))],
        "{impact}"
    );
    let drop_after = parse(impact["drop_after"].as_str().expect("when the data goes"));
    assert!(
        (drop_after - days(7)).abs() < time::Duration::minutes(5),
        "{drop_after}"
    );

    rig.p
        .call(
            Method::DELETE,
            "/api/v1/modules/ledger/installation?export=true&retention_days=7",
            operator(),
            None,
        )
        .await
        .expect(StatusCode::ACCEPTED);
    let done = rig.p.settled("ledger").await;
    assert_eq!(done["status"], "uninstalled", "{done}");
    let steps: Vec<&str> = done["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    let at = |step: &str| steps.iter().position(|s| *s == step);
    assert!(at("export_data") > at("undeploy"), "{steps:?}");
    assert_eq!(at("drop_tables"), None, "kept: {steps:?}");

    // One export per tenant with rows, each matching the tables.
    let exports = done["exports"].as_array().expect("the exports are listed");
    let tenants: Vec<&str> = exports
        .iter()
        .map(|e| e["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(tenants, ["acme", "globex"], "{done}");
    for export in exports {
        let tenant = export["tenant"].as_str().unwrap();
        let manifest = check_export(&rig, export, &rows, tenant).await;
        let summary = |tables: &Value| -> Vec<(Value, Value, Value)> {
            tables
                .as_array()
                .unwrap()
                .iter()
                .map(|t| (t["name"].clone(), t["rows"].clone(), t["sha256"].clone()))
                .collect()
        };
        assert_eq!(
            summary(&export["tables"]),
            summary(&manifest["tables"]),
            "the record says what the file says"
        );
    }

    // Dropped only once the retention has passed.
    let drop_after = parse(done["drop_after"].as_str().unwrap());
    assert!(
        (drop_after - days(7)).abs() < time::Duration::minutes(5),
        "{drop_after}"
    );
    sweep_at(&rig, days(6)).await;
    assert!(tables_exist(&rig).await, "kept for 7 days");
    assert_eq!(count(&rig, &accounts(&rig), None).await, 6);
    sweep_at(&rig, days(8)).await;
    assert!(!tables_exist(&rig).await, "dropped after 7 days");
    let after = rig
        .p
        .call(
            Method::GET,
            "/api/v1/modules/ledger/installation",
            operator(),
            None,
        )
        .await;
    let after = after.expect(StatusCode::OK);
    assert!(
        after.get("drop_after").is_none() && after.get("tables").is_none(),
        "{after}"
    );
    assert!(rig.p.saw("module.data.dropped").await);
}

async fn a_reinstall_before_the_retention_ends_keeps_the_data(rig: Rig) {
    installed(&rig).await;
    let rows = rows(&rig);
    write(&rig, &rows).await;
    rig.p
        .call(
            Method::DELETE,
            "/api/v1/modules/ledger/installation",
            operator(),
            None,
        )
        .await
        .expect(StatusCode::ACCEPTED);
    let done = rig.p.settled("ledger").await;
    assert!(
        done["drop_after"].is_string(),
        "the default retention: {done}"
    );
    install(&rig).await;
    sweep_at(&rig, days(31)).await;
    assert!(tables_exist(&rig).await);
    assert_eq!(
        count(&rig, &accounts(&rig), None).await,
        6,
        "every row kept"
    );
}

async fn a_failed_export_drops_nothing_and_says_why(rig: Rig) {
    installed(&rig).await;
    let rows = rows(&rig);
    write(&rig, &rows).await;

    // Disabling with an export that fails: 502 naming it, the module still enabled.
    let refused = rig
        .p
        .call(
            Method::DELETE,
            "/api/v1/tenants/acme/modules/ledger?export=true&drop_data=true",
            tenant_admin("acme"),
            None,
        )
        .await;
    refused.expect_problem(
        StatusCode::BAD_GATEWAY,
        "the export of ledger failed, and nothing was dropped",
    );
    let row = rig
        .p
        .call(
            Method::GET,
            "/api/v1/tenants/acme/modules",
            tenant_admin("acme"),
            None,
        )
        .await;
    assert_eq!(row.expect(StatusCode::OK)[0]["enabled"], true);

    // An uninstall that drops the data: it stops at the export; every table and row stays.
    rig.p
        .call(
            Method::DELETE,
            "/api/v1/modules/ledger/installation?export=true&drop_data=true",
            operator(),
            None,
        )
        .await
        .expect(StatusCode::ACCEPTED);
    let failed = rig.p.settled("ledger").await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["failure"]["step"], "export_data", "{failed}");
    let reason = failed["failure"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("the export of ledger failed, and nothing was dropped"),
        "{reason}"
    );
    assert!(tables_exist(&rig).await);
    assert_eq!(count(&rig, &accounts(&rig), None).await, 6);
    assert_eq!(count(&rig, &entries(&rig), None).await, 2);
    sweep_at(&rig, days(400)).await;
    assert!(
        tables_exist(&rig).await,
        "no retention was set by a failed uninstall"
    );
}

async fn disabling_for_a_tenant_reports_exports_its_rows_and_drops_only_them_after_retention(
    rig: Rig,
) {
    installed(&rig).await;
    let rows = rows(&rig);
    write(&rig, &rows).await;

    // The tenant's impact report: its rows per table, the export, when they would go.
    let dry = rig
        .p
        .call(
            Method::DELETE,
            "/api/v1/tenants/acme/modules/ledger?dry_run=true&export=true&drop_data=true&retention_days=3",
            tenant_admin("acme"),
            None,
        )
        .await;
    let impact = dry.expect(StatusCode::OK).clone();
    let counted: Vec<(Value, Value)> = impact["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].clone(), r["rows"].clone()))
        .collect();
    assert_eq!(
        counted,
        [
            (json!(accounts(&rig)), json!(4)),
            (json!(entries(&rig)), json!(2))
        ],
        "acme's own and its company's rows: {impact}"
    );
    assert_eq!(
        (&impact["export"], &impact["enabled"]),
        (&json!(true), &json!(true))
    );
    let drop_after = parse(impact["drop_after"].as_str().unwrap());
    assert!(
        (drop_after - days(3)).abs() < time::Duration::minutes(5),
        "{drop_after}"
    );
    let row = rig
        .p
        .call(
            Method::GET,
            "/api/v1/tenants/acme/modules",
            tenant_admin("acme"),
            None,
        )
        .await;
    assert_eq!(
        row.expect(StatusCode::OK)[0]["enabled"],
        true,
        "a dry run changes nothing"
    );

    let disabled = rig
        .p
        .call(
            Method::DELETE,
            "/api/v1/tenants/acme/modules/ledger?export=true&drop_data=true&retention_days=3",
            tenant_admin("acme"),
            None,
        )
        .await;
    let disabled = disabled.expect(StatusCode::OK).clone();
    assert_eq!(disabled["enabled"], false, "{disabled}");
    check_export(&rig, &disabled["export"], &rows, "acme").await;
    if matches!(rig.at, Where::Aws { .. }) {
        let link = disabled["export"]["manifest_link"]
            .as_str()
            .expect("a pre-signed link on AWS");
        assert!(link.contains("X-Amz-Signature"), "{link}");
    }
    assert!(disabled["drop_after"].is_string(), "{disabled}");

    // globex disables with deletion too, then enables again: its rows stay.
    rig.p
        .call(
            Method::DELETE,
            "/api/v1/tenants/globex/modules/ledger?drop_data=true&retention_days=3",
            tenant_admin("globex"),
            None,
        )
        .await
        .expect(StatusCode::OK);
    rig.p
        .call(
            Method::PUT,
            "/api/v1/tenants/globex/modules/ledger",
            tenant_admin("globex"),
            Some(json!({"enabled": true})),
        )
        .await
        .expect(StatusCode::OK);

    sweep_at(&rig, days(2)).await;
    assert_eq!(
        count(&rig, &accounts(&rig), Some("acme")).await,
        4,
        "kept for 3 days"
    );
    sweep_at(&rig, days(4)).await;
    assert_eq!(
        count(&rig, &accounts(&rig), Some("acme")).await,
        0,
        "acme's rows dropped"
    );
    assert_eq!(count(&rig, &entries(&rig), Some("acme")).await, 0);
    assert_eq!(
        count(&rig, &accounts(&rig), Some("globex")).await,
        2,
        "globex enabled it again"
    );
}

async fn the_export_route_serves_the_tenants_admin_and_the_platform_admin_only(rig: Rig) {
    installed(&rig).await;
    let rows = rows(&rig);
    write(&rig, &rows).await;
    let path = "/api/v1/tenants/globex/modules/ledger/export";
    for who in [tenant_admin("globex"), operator()] {
        let made = rig.p.call(Method::POST, path, who, None).await;
        let export = made.expect(StatusCode::CREATED).clone();
        check_export(&rig, &export, &rows, "globex").await;
    }
    rig.p
        .call(Method::POST, path, tenant_admin("acme"), None)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "not for tenant globex");
    rig.p
        .call(
            Method::POST,
            "/api/v1/tenants/globex/modules/nothere/export",
            operator(),
            None,
        )
        .await
        .expect_problem(StatusCode::CONFLICT, "nothere is not installed");
}

async fn bad_retention_and_export_requests_name_the_field_and_change_nothing(rig: Rig) {
    installed(&rig).await;
    let rows = rows(&rig);
    write(&rig, &rows).await;
    let uninstall = "/api/v1/modules/ledger/installation";
    for (query, field) in [
        ("retention_days=0", "retention_days"),
        ("retention_days=3651", "retention_days"),
        ("drop_data=true&retention_days=5", "retention_days"),
        ("export=true&version=1.0.0", "export"),
    ] {
        rig.p
            .call(
                Method::DELETE,
                &format!("{uninstall}?{query}"),
                operator(),
                None,
            )
            .await
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, field);
    }
    let disable = "/api/v1/tenants/acme/modules/ledger";
    for (query, field) in [
        ("retention_days=5", "retention_days"),
        ("drop_data=true&retention_days=0", "retention_days"),
    ] {
        rig.p
            .call(
                Method::DELETE,
                &format!("{disable}?{query}"),
                tenant_admin("acme"),
                None,
            )
            .await
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, field);
    }
    let bad = rig
        .p
        .call(
            Method::DELETE,
            &format!("{disable}?retention_days=soon&drop_data=true"),
            tenant_admin("acme"),
            None,
        )
        .await;
    assert!(bad.status.is_client_error(), "{}", bad.status);
    assert!(
        bad.body.to_string().contains("retention_days"),
        "{}",
        bad.body
    );

    // Nothing written: installed, enabled, no export, every row.
    let installation = rig.p.call(Method::GET, uninstall, operator(), None).await;
    assert_eq!(installation.expect(StatusCode::OK)["status"], "installed");
    let row = rig
        .p
        .call(
            Method::GET,
            "/api/v1/tenants/acme/modules",
            tenant_admin("acme"),
            None,
        )
        .await;
    assert_eq!(row.expect(StatusCode::OK)[0]["enabled"], true);
    sweep_at(&rig, days(4000)).await;
    assert_eq!(count(&rig, &accounts(&rig), None).await, 6);
}

/// One machine: a backend the platform started holds its tables file (here through `flock`, as
/// redb's own lock refuses a second opener); an export reads it while that backend is stopped
/// for the moment, which then serves again at the same address. Without the deployer, the
/// read is refused, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_backends_tables_are_read_while_it_is_stopped_then_it_serves_again_at_the_same_address()
 {
    use plinth_registry::deploy::local::ProcessDeployer;
    use plinth_registry::deploy::{DeploySpec, Deployer};
    let rig = rig_one_machine(false).await;
    let Where::OneMachine { tables, .. } = &rig.at else {
        unreachable!()
    };
    write(&rig, &rows(&rig)).await;
    let file = plinth_module_sdk::data::embedded_file(tables, &rig.manifest.name);
    let site = TempDir::new().unwrap();
    std::fs::write(site.path().join("health"), "ok").unwrap();
    let mut manifest = serde_json::to_value(&rig.manifest).unwrap();
    manifest["backend"]["dev_command"] = json!(format!(
        "exec flock {} python3 -m http.server \"$PORT\" --bind 127.0.0.1",
        file.display()
    ));
    let manifest = Manifest::from_json_str(&manifest.to_string()).unwrap();
    let deployer = Arc::new(
        ProcessDeployer::new(site.path(), site.path().join("logs")).with_tables_dir(tables),
    );
    let spec = DeploySpec {
        manifest: manifest.clone(),
        image_digest: None,
        endpoint: None,
        dev_dir: None,
        env: std::collections::BTreeMap::new(),
        role_arn: None,
        alongside: false,
    };
    let deployment = deployer.deploy(&spec).await.expect("the backend starts");
    let acme = TenantPartitions {
        tenant: "acme".into(),
        companies: vec!["acme-de".into()],
    };

    let refused = EmbeddedTableFiles::new(tables)
        .tenant_rows(&manifest, &accounts(&rig), &acme)
        .await
        .expect_err("the file is held");
    assert!(
        refused.0.contains("held open by its running backend"),
        "{refused}"
    );

    let files = EmbeddedTableFiles::new(tables).with_backends(deployer.clone());
    let read = files
        .tenant_rows(&manifest, &accounts(&rig), &acme)
        .await
        .expect("read while the backend is stopped");
    assert_eq!(read.len(), 4, "{read:?}");
    let health = reqwest::get(&deployment.health_url)
        .await
        .expect("it serves again");
    assert!(health.status().is_success());
    let again = deployer.deploy(&spec).await.unwrap();
    assert_eq!(again.endpoint, deployment.endpoint, "at the same address");
    deployer.stop_all().await;
}

macro_rules! on_both_table_backends {
    ($($case:ident => $failing:expr),* $(,)?) => {
        mod one_machine {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::rig_one_machine($failing).await).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(rig) = super::rig_aws(stringify!($case), $failing).await else {
                        return;
                    };
                    super::$case(rig).await;
                }
            )*
        }
    };
}

on_both_table_backends!(
    an_uninstall_exports_rows_whose_counts_and_checksums_match_then_the_sweep_drops_the_tables_only_after_retention => false,
    a_reinstall_before_the_retention_ends_keeps_the_data => false,
    a_failed_export_drops_nothing_and_says_why => true,
    disabling_for_a_tenant_reports_exports_its_rows_and_drops_only_them_after_retention => false,
    the_export_route_serves_the_tenants_admin_and_the_platform_admin_only => false,
    bad_retention_and_export_requests_name_the_field_and_change_nothing => false,
);
