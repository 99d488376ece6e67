//! The behaviour every `Store` adapter must have. Each case is run against each adapter by
//! `main.rs`; a case names what a caller would notice.

use plinth_registry::store::{
    CancelReason, Condition, Cursor, Item, Key, MAX_BATCH_GET, MAX_PAGE_BYTES,
    MAX_TRANSACTION_WRITES, Query, Store, StoreError, Update, Write, query_all,
};
use serde_json::{Map, Value, json};

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn item(pk: &str, sk: &str, data: Value) -> Item {
    Item::new(Key::new(pk, sk), obj(data))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn assert_condition_failed<T: std::fmt::Debug>(result: Result<T, StoreError>, key: &Key) {
    match result {
        Err(StoreError::ConditionFailed { key: failed }) => assert_eq!(&failed, key),
        other => panic!("expected ConditionFailed on {key}, got {other:?}"),
    }
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StoreError>, needle: &str) {
    match result {
        Err(StoreError::Invalid(message)) => assert!(
            message.contains(needle),
            "message `{message}` should mention `{needle}`"
        ),
        other => panic!("expected Invalid({needle}), got {other:?}"),
    }
}

pub async fn get_of_a_missing_key_is_none(store: &dyn Store) {
    assert_eq!(store.get(&Key::new("P#1", "missing")).await.unwrap(), None);
}

pub async fn put_then_get_returns_the_same_item(store: &dyn Store) {
    let written = item(
        "TENANT#acme",
        "MODULE#financial",
        json!({"enabled": true, "configuration": {"currency": "EUR", "tax_rate": 0.2},
               "features": ["invoicing"], "note": null, "count": 3}),
    );
    store.put(written.clone(), Condition::Absent).await.unwrap();
    let read = store
        .get(&written.key)
        .await
        .unwrap()
        .expect("item is there");
    assert_eq!(read, written);
    assert_eq!(read.version, 1);
}

pub async fn put_absent_refuses_an_existing_item_and_keeps_it(store: &dyn Store) {
    let first = item("P", "S", json!({"v": "first"}));
    store.put(first.clone(), Condition::Absent).await.unwrap();
    let second = item("P", "S", json!({"v": "second"}));
    assert_condition_failed(store.put(second, Condition::Absent).await, &first.key);
    assert_eq!(
        store.get(&first.key).await.unwrap().unwrap().data,
        first.data
    );
}

pub async fn put_with_the_read_version_wins_and_a_stale_one_loses(store: &dyn Store) {
    let first = item("P", "S", json!({"n": 1}));
    store.put(first.clone(), Condition::Absent).await.unwrap();
    let (second, condition) = first.next(obj(json!({"n": 2})));
    assert_eq!(condition, Condition::Version(1));
    store.put(second.clone(), condition).await.unwrap();
    let (stale, stale_condition) = first.next(obj(json!({"n": 99})));
    assert_condition_failed(store.put(stale, stale_condition).await, &first.key);
    let stored = store.get(&first.key).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.data), (2, obj(json!({"n": 2}))));
}

pub async fn put_exists_refuses_a_missing_item(store: &dyn Store) {
    let ghost = item("P", "ghost", json!({}));
    assert_condition_failed(
        store.put(ghost.clone(), Condition::Exists).await,
        &ghost.key,
    );
    assert_condition_failed(
        store.put(ghost.clone(), Condition::Version(1)).await,
        &ghost.key,
    );
    assert_eq!(store.get(&ghost.key).await.unwrap(), None);
}

pub async fn put_always_overwrites(store: &dyn Store) {
    store
        .put(item("P", "S", json!({"a": 1})), Condition::Always)
        .await
        .unwrap();
    store
        .put(item("P", "S", json!({"b": 2})), Condition::Always)
        .await
        .unwrap();
    let stored = store.get(&Key::new("P", "S")).await.unwrap().unwrap();
    assert_eq!(stored.data, obj(json!({"b": 2})));
}

pub async fn update_sets_and_removes_fields_and_raises_the_version(store: &dyn Store) {
    let original = item("P", "S", json!({"keep": 1, "change": "old", "drop": true}));
    store
        .put(original.clone(), Condition::Absent)
        .await
        .unwrap();
    let update = Update::default()
        .set("change", json!({"nested": ["new"]}))
        .set("added", json!(0.5))
        .remove("drop");
    let updated = store
        .update(&original.key, update, Condition::Version(1))
        .await
        .unwrap();
    let expected = obj(json!({"keep": 1, "change": {"nested": ["new"]}, "added": 0.5}));
    assert_eq!((updated.version, &updated.data), (2, &expected));
    assert_eq!(store.get(&original.key).await.unwrap().unwrap(), updated);
}

pub async fn update_with_a_stale_version_changes_nothing(store: &dyn Store) {
    let original = item("P", "S", json!({"n": 1}));
    store
        .put(original.clone(), Condition::Absent)
        .await
        .unwrap();
    let update = Update::default().set("n", json!(2));
    assert_condition_failed(
        store
            .update(&original.key, update, Condition::Version(7))
            .await,
        &original.key,
    );
    assert_eq!(store.get(&original.key).await.unwrap().unwrap(), original);
}

pub async fn update_of_a_missing_item_fails_and_creates_nothing(store: &dyn Store) {
    let key = Key::new("P", "nobody");
    let update = Update::default().set("n", json!(1));
    assert_condition_failed(store.update(&key, update, Condition::Always).await, &key);
    assert_eq!(store.get(&key).await.unwrap(), None);
}

pub async fn update_that_sets_and_removes_one_field_is_refused(store: &dyn Store) {
    let original = item("P", "S", json!({"n": 1}));
    store
        .put(original.clone(), Condition::Absent)
        .await
        .unwrap();
    let update = Update::default().set("n", json!(2)).remove("n");
    assert_invalid(
        store.update(&original.key, update, Condition::Always).await,
        "`n`",
    );
}

pub async fn delete_honours_its_condition(store: &dyn Store) {
    let original = item("P", "S", json!({}));
    store
        .put(original.clone(), Condition::Absent)
        .await
        .unwrap();
    assert_condition_failed(
        store.delete(&original.key, Condition::Version(2)).await,
        &original.key,
    );
    assert!(store.get(&original.key).await.unwrap().is_some());
    store
        .delete(&original.key, Condition::Version(1))
        .await
        .unwrap();
    assert_eq!(store.get(&original.key).await.unwrap(), None);
    assert_condition_failed(
        store.delete(&original.key, Condition::Exists).await,
        &original.key,
    );
    store
        .delete(&original.key, Condition::Always)
        .await
        .unwrap();
}

async fn seed(store: &dyn Store, pk: &str, sks: &[&str]) {
    for sk in sks {
        store
            .put(item(pk, sk, json!({"sk": sk})), Condition::Absent)
            .await
            .unwrap();
    }
}

fn sort_keys(items: &[Item]) -> Vec<&str> {
    items.iter().map(|i| i.key.sk.as_str()).collect()
}

pub async fn query_by_prefix_reads_one_partition_in_byte_order(store: &dyn Store) {
    seed(
        store,
        "TENANT#a",
        &["MODULE#b", "COMPANY#x", "MODULE#a", "MODULE#B", "MODULES"],
    )
    .await;
    seed(store, "TENANT#b", &["MODULE#c"]).await;
    let items = query_all(store, &Query::prefix("TENANT#a", "MODULE#"))
        .await
        .unwrap();
    assert_eq!(sort_keys(&items), ["MODULE#B", "MODULE#a", "MODULE#b"]);
    let all = query_all(store, &Query::partition("TENANT#a"))
        .await
        .unwrap();
    assert_eq!(
        sort_keys(&all),
        ["COMPANY#x", "MODULE#B", "MODULE#a", "MODULE#b", "MODULES"]
    );
    let none = store.query(&Query::prefix("TENANT#zzz", "")).await.unwrap();
    assert!(none.items.is_empty() && none.next.is_none());
}

pub async fn bad_queries_are_refused(store: &dyn Store) {
    assert_invalid(store.query(&Query::partition("")).await, "pk");
    assert_invalid(
        store.query(&Query::between("P", "b", "a")).await,
        "must not sort after",
    );
    assert_invalid(
        store.query(&Query::between("P", "", "a")).await,
        "non-empty",
    );
    assert_invalid(
        store.query(&Query::partition("P").limit(0)).await,
        "at least 1",
    );
}

pub async fn query_between_includes_both_ends(store: &dyn Store) {
    seed(
        store,
        "AUDIT#t",
        &["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"],
    )
    .await;
    let items = query_all(
        store,
        &Query::between("AUDIT#t", "2026-02-01", "2026-03-01"),
    )
    .await
    .unwrap();
    assert_eq!(sort_keys(&items), ["2026-02-01", "2026-03-01"]);
}

pub async fn query_pages_with_limit_and_cursor_descending(store: &dyn Store) {
    let sks: Vec<String> = (0..10).map(|i| format!("E#{i:02}")).collect();
    let refs: Vec<&str> = sks.iter().map(String::as_str).collect();
    seed(store, "AUDIT#t", &refs).await;
    let mut query = Query::prefix("AUDIT#t", "E#").descending().limit(3);
    let mut pages = Vec::new();
    loop {
        let page = store.query(&query).await.unwrap();
        assert!(page.items.len() <= 3, "a page holds at most the limit");
        pages.push(
            sort_keys(&page.items)
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        );
        match page.next {
            Some(cursor) => query.after = Some(cursor),
            None => break,
        }
    }
    let flat: Vec<String> = pages.concat();
    let expected: Vec<String> = sks.iter().rev().cloned().collect();
    assert_eq!(flat, expected);
    assert_eq!(pages[0], ["E#09", "E#08", "E#07"]);
    let resumed = store
        .query(&Query::prefix("AUDIT#t", "E#").after(Some(Cursor("E#04".into()))))
        .await
        .unwrap();
    assert_eq!(sort_keys(&resumed.items)[0], "E#05");
}

pub async fn query_pages_stop_near_one_megabyte(store: &dyn Store) {
    let blob = "x".repeat(100 * 1024);
    for i in 0..15 {
        let written = item("BIG", &format!("I#{i:02}"), json!({"blob": blob}));
        store.put(written, Condition::Absent).await.unwrap();
    }
    let mut query = Query::partition("BIG");
    let mut pages = Vec::new();
    loop {
        let page = store.query(&query).await.unwrap();
        pages.push(page.items.len());
        match page.next {
            Some(cursor) => query.after = Some(cursor),
            None => break,
        }
    }
    let max_per_page = MAX_PAGE_BYTES / (100 * 1024) + 1;
    assert!(
        pages.len() >= 2,
        "1.5 MB takes more than one page: {pages:?}"
    );
    assert!(pages.iter().all(|n| *n <= max_per_page), "pages {pages:?}");
    assert_eq!(pages.iter().sum::<usize>(), 15);
}

pub async fn batch_get_returns_existing_items_in_key_order(store: &dyn Store) {
    seed(store, "P", &["a", "b", "c"]).await;
    let keys = [
        Key::new("P", "c"),
        Key::new("P", "missing"),
        Key::new("P", "a"),
    ];
    let items = store.batch_get(&keys).await.unwrap();
    assert_eq!(sort_keys(&items), ["c", "a"]);
    assert!(store.batch_get(&[]).await.unwrap().is_empty());
}

pub async fn batch_get_reads_a_hundred_keys_and_refuses_more(store: &dyn Store) {
    let writes: Vec<Write> = (0..MAX_BATCH_GET)
        .map(|i| Write::Put {
            item: item("MANY", &format!("{i:03}"), json!({"i": i})),
            condition: Condition::Absent,
        })
        .collect();
    store.transact(writes).await.unwrap();
    let keys: Vec<Key> = (0..MAX_BATCH_GET)
        .map(|i| Key::new("MANY", format!("{i:03}")))
        .collect();
    assert_eq!(store.batch_get(&keys).await.unwrap().len(), MAX_BATCH_GET);
    let mut too_many = keys.clone();
    too_many.push(Key::new("MANY", "extra"));
    assert_invalid(store.batch_get(&too_many).await, "at most 100");
    assert_invalid(
        store.batch_get(&[keys[0].clone(), keys[0].clone()]).await,
        "only once",
    );
}

pub async fn transaction_applies_every_write(store: &dyn Store) {
    seed(store, "T", &["old", "checked"]).await;
    store
        .transact(vec![
            Write::Put {
                item: item("T", "new", json!({"n": 1})),
                condition: Condition::Absent,
            },
            Write::Delete {
                key: Key::new("T", "old"),
                condition: Condition::Version(1),
            },
            Write::Check {
                key: Key::new("T", "checked"),
                condition: Condition::Exists,
            },
        ])
        .await
        .unwrap();
    let items = query_all(store, &Query::partition("T")).await.unwrap();
    assert_eq!(sort_keys(&items), ["checked", "new"]);
}

pub async fn failed_transaction_writes_nothing_and_says_which_failed(store: &dyn Store) {
    seed(store, "T", &["taken", "victim"]).await;
    let result = store
        .transact(vec![
            Write::Put {
                item: item("T", "fresh", json!({})),
                condition: Condition::Absent,
            },
            Write::Put {
                item: item("T", "taken", json!({"x": 1})),
                condition: Condition::Absent,
            },
            Write::Delete {
                key: Key::new("T", "victim"),
                condition: Condition::Always,
            },
            Write::Check {
                key: Key::new("T", "absent"),
                condition: Condition::Exists,
            },
        ])
        .await;
    match result {
        Err(StoreError::TransactionCanceled { reasons }) => assert_eq!(
            reasons,
            [
                CancelReason::None,
                CancelReason::ConditionFailed,
                CancelReason::None,
                CancelReason::ConditionFailed
            ]
        ),
        other => panic!("expected a cancelled transaction, got {other:?}"),
    }
    let items = query_all(store, &Query::partition("T")).await.unwrap();
    assert_eq!(sort_keys(&items), ["taken", "victim"]);
    assert_eq!(items[0].data, obj(json!({"sk": "taken"})));
}

pub async fn transaction_limits_are_enforced(store: &dyn Store) {
    let twice = vec![
        Write::Put {
            item: item("T", "k", json!({})),
            condition: Condition::Always,
        },
        Write::Delete {
            key: Key::new("T", "k"),
            condition: Condition::Always,
        },
    ];
    assert_invalid(store.transact(twice).await, "only once");
    let many: Vec<Write> = (0..=MAX_TRANSACTION_WRITES)
        .map(|i| Write::Check {
            key: Key::new("T", format!("{i}")),
            condition: Condition::Always,
        })
        .collect();
    assert_invalid(store.transact(many).await, "at most 100");
    assert_invalid(store.transact(Vec::new()).await, "at least one");
    assert!(
        query_all(store, &Query::partition("T"))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn oversized_items_and_bad_keys_are_refused(store: &dyn Store) {
    let huge = item("P", "huge", json!({"blob": "x".repeat(401 * 1024)}));
    match store.put(huge, Condition::Always).await {
        Err(e @ StoreError::TooLarge { .. }) => assert!(e.to_string().contains("more than")),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_invalid(
        store.put(item("", "s", json!({})), Condition::Always).await,
        "pk",
    );
    assert_invalid(store.get(&Key::new("P", "")).await, "sk");
    assert_eq!(store.get(&Key::new("P", "huge")).await.unwrap(), None);
}

pub async fn expired_items_are_gone(store: &dyn Store) {
    let past = item("AUDIT#t", "old", json!({"n": 1})).expiring_at(now() - 60);
    let future = item("AUDIT#t", "new", json!({"n": 2})).expiring_at(now() + 3600);
    store.put(past.clone(), Condition::Absent).await.unwrap();
    store.put(future.clone(), Condition::Absent).await.unwrap();
    assert_eq!(store.get(&past.key).await.unwrap(), None);
    assert_eq!(store.get(&future.key).await.unwrap(), Some(future.clone()));
    let listed = query_all(store, &Query::partition("AUDIT#t"))
        .await
        .unwrap();
    assert_eq!(sort_keys(&listed), ["new"]);
    let fetched = store
        .batch_get(&[past.key.clone(), future.key.clone()])
        .await
        .unwrap();
    assert_eq!(sort_keys(&fetched), ["new"]);
    // An expired item no longer blocks a first write under its key.
    store
        .put(item("AUDIT#t", "old", json!({"n": 3})), Condition::Absent)
        .await
        .unwrap();
    assert_condition_failed(store.put(past.clone(), Condition::Absent).await, &past.key);
}

/// Two clients read the same version, then both write: exactly one wins, the other sees a
/// failed condition, re-reads, and its retry lands on top. No update is lost.
pub async fn racing_writers_lose_no_update(a: &dyn Store, b: &dyn Store) {
    let key = Key::new("COUNTER", "c");
    a.put(
        Item::new(key.clone(), obj(json!({"n": 0}))),
        Condition::Absent,
    )
    .await
    .unwrap();
    let read_a = a.get(&key).await.unwrap().unwrap();
    let read_b = b.get(&key).await.unwrap().unwrap();
    let (write_a, cond_a) = read_a.next(obj(json!({"n": 1})));
    let (write_b, cond_b) = read_b.next(obj(json!({"n": 1})));
    a.put(write_a, cond_a).await.unwrap();
    assert_condition_failed(b.put(write_b, cond_b).await, &key);
    let reread = b.get(&key).await.unwrap().unwrap();
    let n = reread.data["n"].as_i64().unwrap();
    let (retry, cond) = reread.next(obj(json!({"n": n + 1})));
    b.put(retry, cond).await.unwrap();
    let last = a.get(&key).await.unwrap().unwrap();
    assert_eq!((last.version, &last.data["n"]), (3, &json!(2)));
}

/// Increments `COUNTER/c` by one with optimistic retries; returns how many retries it took.
pub async fn increment(store: &dyn Store) -> u32 {
    let key = Key::new("COUNTER", "c");
    let mut retries = 0;
    loop {
        let current = store.get(&key).await.unwrap().unwrap();
        let n = current.data["n"].as_i64().unwrap();
        let (next, condition) = current.next(obj(json!({"n": n + 1})));
        match store.put(next, condition).await {
            Ok(()) => return retries,
            Err(e) if e.is_conflict() => retries += 1,
            Err(e) => panic!("increment failed: {e}"),
        }
    }
}
