//! Usage flushed on both stores (the embedded one, and DynamoDB on the emulator): two
//! processes' gateways flushing into the same hours add up, none lost to the other's write,
//! and the report reads them back; on AWS, access log and event batches that CloudWatch Logs
//! and EventBridge deliver more than once are counted once.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use plinth_module_sdk::manifest::Tier;
use plinth_registry::ids::TenantId;
use plinth_registry::store::Store;
use plinth_registry::tenancy::Tenant;
use plinth_registry::usage::{
    AccessLogLine, BatchCounts, MINUTE_MS, Period, Prices, RELATIVE_ERROR, Served, Usage,
    access_log_counts, version_minutes,
};

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

fn acme() -> Tenant {
    Tenant {
        id: TenantId::parse("acme").unwrap(),
        name: "Acme".into(),
        subscription_tier: Tier::Basic,
        created_at: String::new(),
    }
}

/// A request of `module` in hour `hour` (hours since the epoch), as the access log has it.
fn logged(module: &str, hour: i64, status: u16) -> AccessLogLine {
    AccessLogLine {
        tenant: "acme".into(),
        module: module.into(),
        version: None,
        status,
        request_bytes: 10,
        response_bytes: 100,
        latency_ms: 7,
        at_ms: hour * 3_600_000 + 1_000,
    }
}

async fn a_batch_delivered_again_is_counted_once(store: Arc<dyn Store>) {
    let usage = Usage::new(Arc::clone(&store), Prices::default());
    let now = time::OffsetDateTime::now_utc();
    let hour = now.unix_timestamp() / 3600;
    let lines = [
        logged("financial", hour, 200),
        logged("financial", hour, 500),
    ];
    // 120 modules: more hours than one transaction holds, so the batch is written in parts.
    let many: Vec<_> = (0..120)
        .map(|m| logged(&format!("module-{m}"), hour, 200))
        .collect();

    assert!(
        usage
            .record_once("logs-1", access_log_counts(&lines))
            .await
            .unwrap()
    );
    assert!(
        !usage
            .record_once("logs-1", access_log_counts(&lines))
            .await
            .unwrap(),
        "delivered again: already counted"
    );
    assert!(
        usage
            .record_once("logs-2", access_log_counts(&many))
            .await
            .unwrap()
    );
    assert!(
        !usage
            .record_once("logs-2", access_log_counts(&many))
            .await
            .unwrap()
    );
    // Three processes handed the same new batch at once: one counts it, and what it counted
    // stays counted (raced a few times, each race a new batch).
    let others = [
        Usage::new(Arc::clone(&store), Prices::default()),
        Usage::new(Arc::clone(&store), Prices::default()),
    ];
    const RACES: u64 = 8;
    for race in 0..RACES {
        let batch = format!("logs-race-{race}");
        let (first, second, third) = tokio::join!(
            usage.record_once(&batch, access_log_counts(&lines)),
            others[0].record_once(&batch, access_log_counts(&lines)),
            others[1].record_once(&batch, access_log_counts(&lines)),
        );
        let counted = [first, second, third]
            .into_iter()
            .filter(|r| matches!(r, Ok(true)))
            .count();
        assert_eq!(counted, 1, "race {race}");
    }

    let period = Period::parse(None, None, Some("hour"), now).unwrap();
    let report = usage.report(&[acme()], &period, None).await.unwrap();
    let total = &report.tenants[0].total;
    assert_eq!(
        (total.requests, total.errors_5xx),
        (2 + 120 + 2 * RACES, 1 + RACES)
    );
    assert_eq!(total.request_bytes, (2 + 120 + 2 * RACES) * 10);
    let financial = usage
        .report(&[acme()], &period, Some("financial"))
        .await
        .unwrap();
    assert_eq!(financial.tenants[0].total.requests, 2 + 2 * RACES);
    let p50 = financial.tenants[0].total.latency_ms.p50.unwrap();
    assert!((p50 - 7.0).abs() <= 7.0 * RELATIVE_ERROR, "{p50}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_a_batch_delivered_again_is_counted_once() {
    let (store, _dir) = support::embedded();
    a_batch_delivered_again_is_counted_once(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_a_batch_delivered_again_is_counted_once() {
    let Some(store) = support::dynamo("usage_batches").await else {
        return;
    };
    a_batch_delivered_again_is_counted_once(Arc::new(store)).await;
}

/// The rollout driver's figures on AWS: each access log line of a version adds its status and
/// latency to the version's minute, in the transaction of the batch's marker — a batch
/// delivered again adds nothing, and a line without a version counts for none.
async fn an_access_log_batch_adds_each_version_s_minutes_once_however_often_delivered(
    store: Arc<dyn Store>,
) {
    let usage = Usage::new(Arc::clone(&store), Prices::default());
    // The minute before this one and this one, both in the report's period.
    let minute = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 / MINUTE_MS - 1;
    let of = |version: Option<&str>, status: u16, at_ms: i64| AccessLogLine {
        version: version.map(str::to_owned),
        at_ms,
        ..logged("financial", 0, status)
    };
    let lines = [
        of(Some("1.3.0"), 503, minute * MINUTE_MS),
        of(Some("1.3.0"), 200, minute * MINUTE_MS + 1),
        of(Some("1.3.0"), 200, (minute + 1) * MINUTE_MS),
        of(Some("1.2.0"), 200, minute * MINUTE_MS),
        of(None, 500, minute * MINUTE_MS),
    ];
    let counts = BatchCounts::of_access_log(&lines);
    assert!(usage.record_batch_once("logs-v", &counts).await.unwrap());
    assert!(
        !usage.record_batch_once("logs-v", &counts).await.unwrap(),
        "delivered again: already counted"
    );
    let read = version_minutes(store.as_ref(), "financial", "1.3.0", minute)
        .await
        .unwrap();
    let figures: Vec<(i64, u64, u64, u64)> = read
        .iter()
        .map(|(m, f)| (*m, f.requests, f.errors_5xx, f.latency.count()))
        .collect();
    assert_eq!(figures, [(minute, 2, 1, 2), (minute + 1, 1, 0, 1)]);
    let later = version_minutes(store.as_ref(), "financial", "1.3.0", minute + 1)
        .await
        .unwrap();
    assert_eq!(later.len(), 1, "read from the minute asked");
    let other = version_minutes(store.as_ref(), "financial", "1.2.0", minute)
        .await
        .unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].1.requests, 1);
    // The hours counted every line, the version-less one too.
    let period = Period::parse(None, None, Some("hour"), time::OffsetDateTime::now_utc()).unwrap();
    let report = usage.report(&[acme()], &period, None).await.unwrap();
    let total = &report.tenants[0].total;
    assert_eq!((total.requests, total.errors_5xx), (5, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_an_access_log_batch_adds_each_version_s_minutes_once_however_often_delivered() {
    let (store, _dir) = support::embedded();
    an_access_log_batch_adds_each_version_s_minutes_once_however_often_delivered(Arc::new(store))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_an_access_log_batch_adds_each_version_s_minutes_once_however_often_delivered() {
    let Some(store) = support::dynamo("usage_version_minutes").await else {
        return;
    };
    an_access_log_batch_adds_each_version_s_minutes_once_however_often_delivered(Arc::new(store))
        .await;
}
