//! What the registry's tests share: stores to run against, and the emulator rule.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use plinth_registry::aws;
use plinth_registry::store::dynamodb::DynamoStore;
use plinth_registry::store::embedded::EmbeddedStore;
use tempfile::TempDir;

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
    let store = DynamoStore::new(&aws::config_from_env().await, unique_table("plinth-test"));
    store
        .create_table()
        .await
        .expect("create the table on the emulator");
    Some(store)
}
pub mod api;
pub mod fakes;

/// Runs each scenario on the embedded store and on DynamoDB (moto), through the test crate's
/// `ROUTER`.
#[macro_export]
macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::support::api::TestPlatform::embedded_with($crate::ROUTER)).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(platform) =
                        $crate::support::api::TestPlatform::dynamo_with(stringify!($case), $crate::ROUTER)
                            .await
                    else {
                        return;
                    };
                    super::$case(platform).await;
                }
            )*
        }
    };
}
pub mod lambda_emulator;
