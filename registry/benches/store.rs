//! Throughput of the embedded store's operations (every write durable on return).
//!
//! `cargo bench --bench store` — results and the machine are recorded in BENCHMARKS.md.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use plinth_registry::store::embedded::EmbeddedStore;
use plinth_registry::store::{Condition, Item, Key, Query, Store, Write};
use serde_json::{Map, Value, json};
use tokio::runtime::Runtime;

fn data(i: u64) -> Map<String, Value> {
    json!({"enabled": true, "configuration": {"currency": "EUR", "tax_rate": 0.19, "i": i},
           "enabled_features": ["invoicing"], "disabled_features": []})
    .as_object()
    .cloned()
    .unwrap()
}

fn seeded(rt: &Runtime) -> (EmbeddedStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("bench.redb")).unwrap();
    rt.block_on(async {
        for t in 0..50u64 {
            let writes = (0..20)
                .map(|m| Write::Put {
                    item: Item::new(
                        Key::new(format!("TENANT#{t}"), format!("MODULE#{m:02}")),
                        data(m),
                    ),
                    condition: Condition::Absent,
                })
                .collect();
            store.transact(writes).await.unwrap();
        }
    });
    (store, dir)
}

fn bench_store(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let (store, _dir) = seeded(&rt);
    let mut group = c.benchmark_group("embedded");
    group.throughput(Throughput::Elements(1));

    let mut i = 0u64;
    group.bench_function("get", |b| {
        b.iter(|| {
            i = (i + 7) % 1000;
            let key = Key::new(
                format!("TENANT#{}", i / 20),
                format!("MODULE#{:02}", i % 20),
            );
            rt.block_on(store.get(&key)).unwrap().unwrap()
        });
    });

    let next = AtomicU64::new(0);
    group.bench_function("put_if_absent", |b| {
        b.iter(|| {
            let n = next.fetch_add(1, Ordering::Relaxed);
            let item = Item::new(Key::new("BENCH", format!("{n:012}")), data(n));
            rt.block_on(store.put(item, Condition::Absent)).unwrap();
        });
    });

    // The optimistic write the control plane makes: read, then put under the version read.
    group.bench_function("read_then_versioned_put", |b| {
        let key = Key::new("TENANT#0", "MODULE#00");
        b.iter(|| {
            let current = rt.block_on(store.get(&key)).unwrap().unwrap();
            let (item, condition) = current.next(data(current.version));
            rt.block_on(store.put(item, condition)).unwrap();
        });
    });

    group.bench_function("query_20", |b| {
        b.iter(|| {
            rt.block_on(store.query(&Query::prefix("TENANT#3", "MODULE#")))
                .unwrap()
        });
    });

    group.bench_function("transaction_5", |b| {
        b.iter(|| {
            let writes = (0..5)
                .map(|_| {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    Write::Put {
                        item: Item::new(Key::new("BENCH", format!("{n:012}")), data(n)),
                        condition: Condition::Absent,
                    }
                })
                .collect();
            rt.block_on(store.transact(writes)).unwrap();
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = bench_store
}
criterion_main!(benches);
