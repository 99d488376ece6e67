//! The data handle on the embedded backend `plinth up` gives modules (`PLINTH_TABLES_DIR`).

#[path = "data/conformance.rs"]
mod conformance;

use plinth_module_sdk::data::{Range, Tables};
use serde_json::{Value, json};

fn tables(dir: &std::path::Path) -> Tables {
    Tables::embedded(&conformance::manifest(""), dir).expect("the tables open")
}

#[tokio::test]
async fn a_handle_cannot_read_or_write_another_tenants_row_embedded() {
    let dir = tempfile::tempdir().unwrap();
    conformance::a_handle_cannot_read_or_write_another_tenants_row(&tables(dir.path()), "").await;
}

#[tokio::test]
async fn company_scoped_keys_keep_companies_apart_embedded() {
    let dir = tempfile::tempdir().unwrap();
    conformance::company_scoped_keys_keep_companies_apart(&tables(dir.path()), "").await;
}

#[tokio::test]
async fn sort_keys_and_refusals_embedded() {
    let dir = tempfile::tempdir().unwrap();
    conformance::sort_keys_and_refusals(&tables(dir.path()), "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_writes_once_embedded() {
    let dir = tempfile::tempdir().unwrap();
    conformance::insert_writes_once(&tables(dir.path()), "").await;
}

#[tokio::test]
async fn embedded_rows_survive_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = conformance::context("acme", Some("acme-de"));
    {
        let rows = tables(dir.path())
            .for_context(&ctx)
            .company_table("ledger_rows")
            .unwrap();
        rows.put("inv-1", &json!({"total": 5})).await.unwrap();
    }
    assert!(
        dir.path().join("ledger.redb").is_file(),
        "one file per module"
    );
    let rows = tables(dir.path())
        .for_context(&ctx)
        .company_table("ledger_rows")
        .unwrap();
    let kept: Vec<Value> = rows.query(Range::All).await.unwrap();
    assert_eq!(kept, [json!({"total": 5, "row_id": "inv-1"})]);
}

#[tokio::test]
async fn plinth_tables_dir_selects_the_embedded_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_owned();
    let manifest = conformance::manifest("");
    let tables = Tables::from_vars(&manifest, |name| {
        (name == "PLINTH_TABLES_DIR").then(|| path.clone())
    })
    .await
    .expect("the embedded backend");
    let rows = tables
        .for_tenant("acme", None)
        .table("ledger_rows")
        .unwrap();
    rows.put("r", &json!({})).await.unwrap();
    assert!(dir.path().join("ledger.redb").is_file());
}
