//! What the gateway's tests share: a platform of their own on a store of their own, a module
//! backend, and the gateway as `plinth up` serves it. (The registry's API tests have the
//! same platform, `registry/tests/support/`, without the gateway.)

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use plinth_registry::store::dynamodb::{DynamoStore, aws_config_from_env};
use plinth_registry::store::embedded::EmbeddedStore;
use tempfile::TempDir;

pub mod api;
pub mod fakes;

/// A fresh embedded store in its own folder (kept alive by the returned `TempDir`).
pub fn embedded() -> (EmbeddedStore, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(dir.path().join("plinth.redb")).expect("open store");
    (store, dir)
}

/// Whether an emulator is configured. Without one the AWS tests skip, except under CI, where
/// that is a failure: run the tests through `./tests/run`, which starts moto.
pub fn emulator_configured(test: &str) -> bool {
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

/// A table name no other test uses, in this run or an earlier one against the same emulator.
pub fn unique_table(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A DynamoDB store on a fresh table of the emulator, or `None` when there is no emulator.
pub async fn dynamo(test: &str) -> Option<DynamoStore> {
    if !emulator_configured(test) {
        return None;
    }
    let store = DynamoStore::new(&aws_config_from_env().await, unique_table("plinth-test"));
    store
        .create_table()
        .await
        .expect("create the table on the emulator");
    Some(store)
}
