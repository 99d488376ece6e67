//! Usage flushed on both stores (the embedded one, and DynamoDB on the emulator): two
//! processes' gateways flushing into the same hours add up, none lost to the other's write,
//! and the report reads them back.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use plinth_module_sdk::manifest::Tier;
use plinth_registry::ids::TenantId;
use plinth_registry::store::Store;
use plinth_registry::tenancy::Tenant;
use plinth_registry::usage::{Period, Prices, RELATIVE_ERROR, Served, Usage};

fn served(status: u16) -> Served {
    Served {
        status,
        request_bytes: 100,
        response_bytes: 1_000,
        latency: Duration::from_millis(5),
    }
}

async fn two_processes_flushing_the_same_hours_add_up(store: Arc<dyn Store>) {
    let one = Usage::new(Arc::clone(&store), Prices::default());
    let two = Usage::new(Arc::clone(&store), Prices::default());
    let (a, b) = (one.meter().shard(), two.meter().shard());
    for _ in 0..30 {
        a.served("acme", "financial", &served(200));
        b.served("acme", "financial", &served(503));
    }
    one.meter().shared().published("acme", "financial");
    two.meter().shared().delivered("acme", "financial");
    let (first, second) = tokio::join!(one.flush(), two.flush());
    // One record each (two, should the hour turn meanwhile).
    assert!(first.unwrap() >= 1 && second.unwrap() >= 1);
    a.served("acme", "financial", &served(404));
    assert!(one.flush().await.unwrap() >= 1);
    assert_eq!(
        one.flush().await.unwrap(),
        0,
        "nothing new, nothing written"
    );

    let tenant = Tenant {
        id: TenantId::parse("acme").unwrap(),
        name: "Acme".into(),
        subscription_tier: Tier::Basic,
        created_at: String::new(),
    };
    let now = time::OffsetDateTime::now_utc();
    let period = Period::parse(None, None, Some("hour"), now).unwrap();
    let report = two.report(&[tenant], &period, None).await.unwrap();
    let total = &report.tenants[0].total;
    assert_eq!(
        (total.requests, total.errors_4xx, total.errors_5xx),
        (61, 1, 30)
    );
    assert_eq!((total.request_bytes, total.response_bytes), (6_100, 61_000));
    assert_eq!((total.events_published, total.events_delivered), (1, 1));
    let p50 = total.latency_ms.p50.unwrap();
    assert!((p50 - 5.0).abs() <= 5.0 * RELATIVE_ERROR, "{p50}");
    assert!(
        report.tenants[0]
            .rows
            .iter()
            .all(|r| r.module == "financial")
    );
    let bill = &report.tenants[0].bill;
    assert!((bill.requests - 61.0 * 2.0 / 1e6).abs() < 1e-6, "{bill:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_two_processes_flushing_the_same_hours_add_up() {
    let (store, _dir) = support::embedded();
    two_processes_flushing_the_same_hours_add_up(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_two_processes_flushing_the_same_hours_add_up() {
    let Some(store) = support::dynamo("usage_flushes").await else {
        return;
    };
    two_processes_flushing_the_same_hours_add_up(Arc::new(store)).await;
}
