//! What only the embedded store can show here: real concurrency on one machine, and
//! durability across a killed process.

use std::process::{Command, Stdio};
use std::sync::Arc;

use plinth_registry::store::embedded::EmbeddedStore;
use plinth_registry::store::{Condition, Item, Key, Query, Store, query_all};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_writers_end_at_exactly_fifty() {
    let (store, _dir) = crate::support::embedded();
    let key = Key::new("COUNTER", "c");
    let start = json!({"n": 0}).as_object().cloned().unwrap();
    store
        .put(Item::new(key.clone(), start), Condition::Absent)
        .await
        .unwrap();
    let store = Arc::new(store);
    let writers: Vec<_> = (0..50)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { crate::cases::increment(store.as_ref()).await })
        })
        .collect();
    let mut retries = 0;
    for writer in writers {
        retries += writer.await.unwrap();
    }
    let last = store.get(&key).await.unwrap().unwrap();
    assert_eq!(last.data["n"], json!(50), "after {retries} retries");
    assert_eq!(last.version, 51);
}

const CHILD_ENV: &str = "PLINTH_CRASH_CHILD_DB";

/// Run in a child process by `committed_data_survives_a_killed_process`: writes items one
/// by one, printing each key once its write has returned, until it is killed.
#[tokio::test]
async fn crash_child_writer() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return; // only meaningful as the child of the crash test
    };
    let store = EmbeddedStore::open(path).unwrap();
    for i in 0.. {
        let data = json!({"i": i, "pad": "x".repeat(512)})
            .as_object()
            .cloned()
            .unwrap();
        let item = Item::new(Key::new("CRASH", format!("{i:08}")), data);
        store.put(item, Condition::Absent).await.unwrap();
        println!("committed {i:08}");
    }
}

#[tokio::test]
async fn committed_data_survives_a_killed_process() {
    use std::io::{BufRead, BufReader};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.redb");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "embedded_only::crash_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut committed = Vec::new();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines {
        if let Some(key) = line.unwrap().strip_prefix("committed ") {
            committed.push(key.to_string());
        }
        if committed.len() == 200 {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL, mid-write
    child.wait().unwrap();
    assert_eq!(committed.len(), 200, "the child wrote before it was killed");

    let store = EmbeddedStore::open(&path).expect("the store reopens after a crash");
    let items = query_all(&store, &Query::partition("CRASH")).await.unwrap();
    let stored: Vec<&str> = items.iter().map(|i| i.key.sk.as_str()).collect();
    assert!(
        stored.len() >= committed.len(),
        "{} of {} committed items",
        stored.len(),
        committed.len()
    );
    for key in &committed {
        assert!(
            stored.contains(&key.as_str()),
            "committed item {key} is missing"
        );
    }
}
