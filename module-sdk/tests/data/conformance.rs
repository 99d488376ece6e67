//! What every table backend must do, run on each (embedded here, DynamoDB on the emulator):
//! a tenant's handle reads and writes its own partitions and nothing of another tenant's.

use plinth_module_sdk::data::{DataError, Range, Tables};
use plinth_module_sdk::{Manifest, TenantContext};
use serde_json::{Value, json};

/// A module `ledger` with a string-sorted table and a number-sorted one, named `{tag}`.
pub fn manifest(tag: &str) -> Manifest {
    Manifest::from_json_str(
        &json!({
            "name": "ledger", "display_name": "Ledger", "version": "1.0.0",
            "backend": {"type": "microservice", "api_prefix": "/api/v1/ledger"},
            "database": {"type": "dynamodb", "tables": [
                {"name": format!("ledger_rows{tag}"), "partition_key": "tenant_id", "sort_key": "row_id"},
                {"name": format!("ledger_events{tag}"), "partition_key": "tenant_id",
                 "sort_key": {"name": "at", "type": "N"}}
            ]}
        })
        .to_string(),
    )
    .expect("a valid manifest")
}

pub fn context(tenant: &str, company: Option<&str>) -> TenantContext {
    TenantContext {
        tenant_id: tenant.into(),
        company_id: company.map(Into::into),
        user_id: "ann".into(),
        permissions: vec![],
        config_version: String::new(),
        calling_module: None,
    }
}

/// acme's handle writes a row; globex's handle with the same key sees nothing, cannot
/// overwrite or delete it, and cannot write an item naming acme's partition.
pub async fn a_handle_cannot_read_or_write_another_tenants_row(tables: &Tables, tag: &str) {
    let rows = format!("ledger_rows{tag}");
    let acme = tables
        .for_context(&context("acme", None))
        .table(&rows)
        .unwrap();
    let globex = tables
        .for_context(&context("globex", None))
        .table(&rows)
        .unwrap();
    acme.put("r1", &json!({"amount": 100})).await.unwrap();

    let seen: Option<Value> = globex.get("r1").await.unwrap();
    assert_eq!(seen, None, "globex reads nothing at acme's key");
    assert!(globex.query::<Value>(Range::All).await.unwrap().is_empty());
    assert!(
        !globex.delete("r1").await.unwrap(),
        "nothing of globex's to delete"
    );

    let error = globex
        .put("r1", &json!({"tenant_id": "acme", "amount": 1}))
        .await
        .unwrap_err();
    assert!(matches!(error, DataError::ForeignKey { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        "refused: `tenant_id` = `acme` is not a partition of tenant `globex` (this handle reads \
         and writes `globex` only)"
    );
    let error = globex
        .put("r1", &json!({"tenant_id": "acme#acme-de", "amount": 1}))
        .await
        .unwrap_err();
    assert!(matches!(error, DataError::ForeignKey { .. }), "{error}");

    globex.put("r1", &json!({"amount": 7})).await.unwrap();
    let mine: Value = acme.get("r1").await.unwrap().unwrap();
    assert_eq!(
        mine,
        json!({"amount": 100, "row_id": "r1"}),
        "acme's row is untouched"
    );
    let theirs: Vec<Value> = globex.query(Range::All).await.unwrap();
    assert_eq!(theirs, [json!({"amount": 7, "row_id": "r1"})]);
}

/// A company's rows are its own: the tenant's other company and the tenant-wide partition do
/// not see them; a company table without a company in the context is a clear refusal.
pub async fn company_scoped_keys_keep_companies_apart(tables: &Tables, tag: &str) {
    let rows = format!("ledger_rows{tag}");
    let de = tables
        .for_context(&context("acme", Some("acme-de")))
        .company_table(&rows)
        .unwrap();
    let us = tables
        .for_context(&context("acme", Some("acme-us")))
        .company_table(&rows)
        .unwrap();
    let tenant_wide = tables
        .for_context(&context("acme", Some("acme-de")))
        .table(&rows)
        .unwrap();
    assert_eq!(de.partition(), "acme#acme-de");
    de.put("inv-1", &json!({"total": 5})).await.unwrap();
    de.put("inv-2", &json!({"total": 6})).await.unwrap();
    de.put("other", &json!({"total": 7})).await.unwrap();

    assert_eq!(us.get::<Value>("inv-1").await.unwrap(), None);
    assert!(us.query::<Value>(Range::All).await.unwrap().is_empty());
    assert_eq!(tenant_wide.get::<Value>("inv-1").await.unwrap(), None);
    let error = us
        .put("inv-1", &json!({"tenant_id": "acme#acme-de"}))
        .await
        .unwrap_err();
    assert!(matches!(error, DataError::ForeignKey { .. }), "{error}");

    let invoices: Vec<Value> = de.query(Range::BeginsWith("inv-".into())).await.unwrap();
    assert_eq!(
        invoices,
        [
            json!({"total": 5, "row_id": "inv-1"}),
            json!({"total": 6, "row_id": "inv-2"})
        ]
    );

    let no_company = tables
        .for_context(&context("acme", None))
        .company_table(&rows)
        .unwrap_err();
    assert_eq!(
        no_company.to_string(),
        format!("table `{rows}` is kept per company, and the context has no company_id")
    );
}

/// Number sort keys come back in numeric order; undeclared tables and wrong key types are
/// refused before any backend call.
pub async fn sort_keys_and_refusals(tables: &Tables, tag: &str) {
    let events = format!("ledger_events{tag}");
    let acme = tables
        .for_context(&context("acme", None))
        .table(&events)
        .unwrap();
    for at in [30_i64, 4, 200] {
        acme.put(at, &json!({"n": at})).await.unwrap();
    }
    let order: Vec<Value> = acme.query(Range::All).await.unwrap();
    let order: Vec<&Value> = order.iter().map(|e| &e["at"]).collect();
    assert_eq!(order, [&json!(4), &json!(30), &json!(200)]);
    let wrong = acme.get::<Value>("four").await.unwrap_err();
    assert_eq!(
        wrong.to_string(),
        format!("table `{events}`: its sort key `at` is a number, not S(\"four\")")
    );
    let undeclared = tables
        .for_context(&context("acme", None))
        .table("warehouse_items")
        .unwrap_err();
    assert_eq!(
        undeclared.to_string(),
        "table `warehouse_items` is not declared in this module's manifest (database.tables)"
    );
}

/// Two writers racing to create one key: exactly one `insert` writes, and what it wrote stays;
/// the same key in another tenant is another item.
pub async fn insert_writes_once(tables: &Tables, tag: &str) {
    let rows = format!("ledger_rows{tag}");
    let acme = tables
        .for_context(&context("acme", None))
        .table(&rows)
        .unwrap();
    let racing = futures_like_join(
        acme.insert("new", &json!({"by": 1})),
        acme.insert("new", &json!({"by": 2})),
    )
    .await;
    assert_eq!(
        [racing.0.unwrap(), racing.1.unwrap()]
            .iter()
            .filter(|w| **w)
            .count(),
        1,
        "exactly one writer"
    );
    let kept: Value = acme.get("new").await.unwrap().unwrap();
    assert!(kept["by"] == 1 || kept["by"] == 2, "{kept}");
    assert!(!acme.insert("new", &json!({"by": 3})).await.unwrap());
    let globex = tables
        .for_context(&context("globex", None))
        .table(&rows)
        .unwrap();
    assert!(globex.insert("new", &json!({"by": 4})).await.unwrap());
}

async fn futures_like_join<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    tokio::join!(a, b)
}
