//! The local bus as a module sees it: a tiny backend on 127.0.0.1 receives the events its
//! subscriptions match, failures are retried and dead-lettered, dead letters replay, and a
//! tenant's events reach only the modules it has enabled.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use plinth_module_sdk::ModuleName;
use plinth_module_sdk::manifest::Subscription;
use plinth_registry::deploy::Deployment;
use plinth_registry::events::dead_letters::StoredDeadLetters;
use plinth_registry::events::local::{LocalBus, LocalBusOptions};
use plinth_registry::events::{
    EnabledTenants, Event, EventBus, RetryPolicy, Subscriptions, platform_event,
};
use plinth_registry::store::embedded::EmbeddedStore;
use serde_json::{Value, json};

/// A module backend that records what it is sent. Paths containing `slow` answer after a
/// second, `missing` answer 404, and everything answers 503 while `failing` is set.
#[derive(Clone, Default)]
struct Backend {
    received: Arc<Mutex<Vec<Received>>>,
    attempts: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
}

#[derive(Debug, Clone)]
struct Received {
    path: String,
    rule: String,
    event: Value,
}

impl Backend {
    async fn start() -> (Self, Deployment) {
        let backend = Self::default();
        let app = Router::new()
            .route("/{*path}", post(receive))
            .with_state(backend.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let endpoint = format!("http://{}", listener.local_addr().expect("an address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (backend, deployment(&endpoint))
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().expect("received").clone()
    }

    fn detail_types(&self) -> Vec<String> {
        let received = self.received();
        received
            .iter()
            .map(|r| r.event["detail-type"].as_str().unwrap_or("?").to_owned())
            .collect()
    }
}

async fn receive(
    State(backend): State<Backend>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    backend.attempts.fetch_add(1, Ordering::SeqCst);
    let path = uri.path().to_owned();
    if path.contains("slow") {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    if path.contains("missing") {
        return StatusCode::NOT_FOUND;
    }
    if backend.failing.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let rule = headers
        .get("x-plinth-rule")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let event = serde_json::from_str(&body).unwrap_or(Value::Null);
    backend
        .received
        .lock()
        .expect("received")
        .push(Received { path, rule, event });
    StatusCode::OK
}

fn deployment(endpoint: &str) -> Deployment {
    Deployment {
        endpoint: endpoint.to_owned(),
        health_url: format!("{endpoint}/health"),
        handle: Value::Null,
        addresses: Vec::new(),
    }
}

fn module(name: &str) -> ModuleName {
    ModuleName::parse(name).expect("a module name")
}

fn subscription(name: &str, pattern: Value) -> Subscription {
    let Value::Object(pattern) = pattern else {
        panic!("a pattern is an object");
    };
    Subscription {
        name: name.to_owned(),
        pattern,
        path: format!("/_plinth/events/{name}"),
    }
}

fn fast_bus() -> LocalBus {
    LocalBus::new(options())
}

fn options() -> LocalBusOptions {
    LocalBusOptions {
        retry: RetryPolicy {
            attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(40),
        },
        request_timeout: Duration::from_secs(5),
        ..LocalBusOptions::default()
    }
}

fn company_created() -> Subscription {
    subscription(
        "company-created",
        json!({"source": ["plinth.registry"], "detail-type": ["company.created"]}),
    )
}

fn invoice_paid(amount: f64) -> Event {
    let payload = json!({"invoice_id": "INV-1", "amount": amount});
    Event::new(
        "plinth.module.billing",
        "billing.invoice.paid",
        payload.as_object().cloned().unwrap_or_default(),
    )
}

async fn subscribe(bus: &LocalBus, name: &str, subs: &[Subscription], at: &Deployment) {
    Subscriptions::subscribe(bus, &module(name), subs, at)
        .await
        .expect("subscribed");
}

#[tokio::test]
async fn matching_events_are_posted_to_the_subscription_path_and_others_are_not() {
    let (backend, at) = Backend::start().await;
    let bus = fast_bus();
    let large = subscription(
        "large-payment",
        json!({"detail-type": ["billing.invoice.paid"], "detail": {"amount": [{"numeric": [">=", 1000]}]}}),
    );
    let names =
        Subscriptions::subscribe(&bus, &module("financial"), &[company_created(), large], &at)
            .await
            .expect("subscribed");
    assert_eq!(
        names,
        [
            "plinth-financial-company-created",
            "plinth-financial-large-payment"
        ]
    );
    let created = platform_event(
        "company.created",
        json!({"tenant_id": "acme", "company_id": "acme-de"}),
    );
    let events = vec![
        created.clone(),
        platform_event("tenant.created", json!({"tenant_id": "acme"})),
        invoice_paid(500.0),
        invoice_paid(1500.0),
    ];
    bus.publish(events).await.expect("published");
    bus.idle().await;
    let received = backend.received();
    let mut seen: Vec<(&str, &str)> = received
        .iter()
        .map(|r| (r.path.as_str(), r.rule.as_str()))
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        [
            (
                "/_plinth/events/company-created",
                "plinth-financial-company-created"
            ),
            (
                "/_plinth/events/large-payment",
                "plinth-financial-large-payment"
            ),
        ]
    );
    let delivered = received
        .iter()
        .find(|r| r.path.ends_with("company-created"));
    let delivered = delivered.map(|r| r.event.clone()).unwrap_or_default();
    assert_eq!(delivered, created.to_value());
    assert_eq!(bus.recent().len(), 4);
}

#[tokio::test]
async fn publishing_does_not_wait_for_a_slow_backend() {
    let (backend, at) = Backend::start().await;
    let bus = fast_bus();
    let slow = subscription("slow", json!({"detail-type": ["company.created"]}));
    subscribe(&bus, "financial", &[slow], &at).await;
    let started = Instant::now();
    let event = platform_event("company.created", json!({"tenant_id": "acme"}));
    bus.publish(vec![event]).await.expect("published");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert!(backend.received().is_empty());
    bus.idle().await;
    assert_eq!(backend.detail_types(), ["company.created"]);
}

#[tokio::test]
async fn a_failing_backend_is_retried_then_the_event_is_dead_lettered_and_replayed() {
    let (backend, at) = Backend::start().await;
    backend.failing.store(true, Ordering::SeqCst);
    let bus = fast_bus();
    subscribe(&bus, "financial", &[company_created()], &at).await;
    let event = platform_event("company.created", json!({"tenant_id": "acme"}));
    bus.publish(vec![event.clone()]).await.expect("published");
    bus.idle().await;
    assert_eq!(backend.attempts.load(Ordering::SeqCst), 3);
    let letters = bus.dead_letters().await.expect("dead letters");
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.event, event);
    assert_eq!(letter.rule, "plinth-financial-company-created");
    assert_eq!(letter.module.as_str(), "financial");
    assert_eq!(
        letter.target,
        format!("{}/_plinth/events/company-created", at.endpoint)
    );
    assert_eq!(
        letter.reason,
        format!("{} answered 503 Service Unavailable", letter.target)
    );
    assert_eq!(letter.attempts, 3);

    let replay = bus.replay_dead_letters().await.expect("replayed");
    assert_eq!((replay.delivered, replay.failed.len()), (0, 1));
    assert_eq!(replay.failed[0].attempts, 6);
    assert_eq!(bus.dead_letters().await.expect("kept").len(), 1);

    backend.failing.store(false, Ordering::SeqCst);
    let replay = bus.replay_dead_letters().await.expect("replayed");
    assert_eq!((replay.delivered, replay.failed.len()), (1, 0));
    assert!(bus.dead_letters().await.expect("dead letters").is_empty());
    let received = backend.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].event["id"], json!(event.id));
}

#[tokio::test]
async fn a_404_is_not_retried_and_an_unreachable_target_says_so() {
    let (backend, at) = Backend::start().await;
    let bus = fast_bus();
    let missing = subscription("missing", json!({"detail-type": ["company.created"]}));
    subscribe(&bus, "financial", &[missing], &at).await;
    let closed = deployment("http://127.0.0.1:9");
    subscribe(&bus, "hr", &[company_created()], &closed).await;
    let event = platform_event("company.created", json!({"tenant_id": "acme"}));
    bus.publish(vec![event]).await.expect("published");
    bus.idle().await;
    assert_eq!(backend.attempts.load(Ordering::SeqCst), 1);
    let mut letters = bus.dead_letters().await.expect("dead letters");
    letters.sort_by(|a, b| a.rule.cmp(&b.rule));
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[0].attempts, 1);
    assert!(
        letters[0].reason.ends_with("answered 404 Not Found"),
        "{}",
        letters[0].reason
    );
    assert_eq!(letters[1].attempts, 3);
    assert!(
        letters[1]
            .reason
            .starts_with("cannot reach http://127.0.0.1:9/_plinth/events/company-created: "),
        "{}",
        letters[1].reason
    );
}

#[tokio::test]
async fn after_unsubscribing_nothing_is_delivered() {
    let (backend, at) = Backend::start().await;
    let bus = fast_bus();
    subscribe(&bus, "financial", &[company_created()], &at).await;
    let event = || platform_event("company.created", json!({"tenant_id": "acme"}));
    bus.publish(vec![event()]).await.expect("published");
    bus.idle().await;
    assert_eq!(backend.received().len(), 1);
    Subscriptions::unsubscribe(&bus, &module("financial"))
        .await
        .expect("unsubscribed");
    assert!(bus.rules().is_empty());
    bus.publish(vec![event()]).await.expect("published");
    bus.idle().await;
    assert_eq!(backend.received().len(), 1);
}

#[tokio::test]
async fn subscribing_again_replaces_the_modules_rules() {
    let (backend, at) = Backend::start().await;
    let bus = fast_bus();
    subscribe(&bus, "financial", &[company_created()], &at).await;
    let tenants = subscription("tenant-created", json!({"detail-type": ["tenant.created"]}));
    subscribe(&bus, "financial", &[tenants], &at).await;
    let rules: Vec<String> = bus.rules().into_iter().map(|r| r.name).collect();
    assert_eq!(rules, ["plinth-financial-tenant-created"]);
    bus.publish(vec![
        platform_event("company.created", json!({"tenant_id": "acme"})),
        platform_event("tenant.created", json!({"tenant_id": "acme"})),
    ])
    .await
    .expect("published");
    bus.idle().await;
    assert_eq!(backend.detail_types(), ["tenant.created"]);
}

#[tokio::test]
async fn an_invalid_pattern_is_refused_and_creates_no_rule() {
    let (_, at) = Backend::start().await;
    let bus = fast_bus();
    let broken = subscription("broken", json!({"detail-type": []}));
    let error = Subscriptions::subscribe(
        &bus,
        &module("financial"),
        &[company_created(), broken],
        &at,
    )
    .await
    .expect_err("refused");
    assert_eq!(
        error.to_string(),
        "subscription `broken` of financial: Event pattern is not valid. Reason: Empty arrays are not allowed (at `detail-type`)"
    );
    assert!(bus.rules().is_empty());
}

/// Tenants and the modules they have enabled.
#[derive(Debug)]
struct Enabled(Vec<(&'static str, &'static str)>);

#[async_trait]
impl EnabledTenants for Enabled {
    async fn is_enabled(&self, tenant: &str, module: &ModuleName) -> bool {
        self.0.contains(&(tenant, module.as_str()))
    }
}

#[tokio::test]
async fn a_tenants_events_reach_only_modules_it_has_enabled() {
    let (financial, at_financial) = Backend::start().await;
    let (hr, at_hr) = Backend::start().await;
    let bus = fast_bus().with_enabled_tenants(Arc::new(Enabled(vec![
        ("acme", "financial"),
        ("acme", "hr"),
        ("globex", "hr"),
    ])));
    subscribe(&bus, "financial", &[company_created()], &at_financial).await;
    subscribe(&bus, "hr", &[company_created()], &at_hr).await;
    let created =
        |tenant: &str| platform_event("company.created", json!({})).for_tenant(tenant, Some("c1"));
    let untenanted = platform_event("company.created", json!({}));
    bus.publish(vec![created("acme"), created("globex"), untenanted])
        .await
        .expect("published");
    bus.idle().await;
    let tenants = |backend: &Backend| -> Vec<Value> {
        let mut tenants: Vec<Value> = backend
            .received()
            .iter()
            .map(|r| r.event["detail"]["tenant_id"].clone())
            .collect();
        tenants.sort_by_key(Value::to_string);
        tenants
    };
    assert_eq!(tenants(&financial), [json!("acme"), Value::Null]);
    assert_eq!(tenants(&hr), [json!("acme"), json!("globex"), Value::Null]);
}

#[tokio::test]
async fn dead_letters_in_the_store_outlive_the_bus() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = Arc::new(EmbeddedStore::open(dir.path().join("plinth.redb")).expect("a store"));
    let stored = || LocalBusOptions {
        dead_letters: Arc::new(StoredDeadLetters::new(store.clone())),
        ..options()
    };
    let (backend, at) = Backend::start().await;
    backend.failing.store(true, Ordering::SeqCst);
    let bus = LocalBus::new(stored());
    subscribe(&bus, "financial", &[company_created()], &at).await;
    let event = platform_event("company.created", json!({"tenant_id": "acme"}));
    bus.publish(vec![event.clone()]).await.expect("published");
    bus.idle().await;
    drop(bus);

    let restarted = LocalBus::new(stored());
    let letters = restarted.dead_letters().await.expect("dead letters");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].event, event);
    backend.failing.store(false, Ordering::SeqCst);
    let replay = restarted.replay_dead_letters().await.expect("replayed");
    assert_eq!(replay.delivered, 1);
    assert_eq!(backend.detail_types(), ["company.created"]);
    assert!(restarted.dead_letters().await.expect("none").is_empty());
}

/// `plinth up` answers requests on one runtime per gateway thread and stops those runtimes
/// before it drains the bus: a delivery must not belong to the runtime that published it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_published_on_a_runtime_that_then_ends_is_still_delivered() {
    let (backend, at) = Backend::start().await;
    let bus = Arc::new(fast_bus());
    let slow = subscription("slow", json!({"detail-type": ["company.created"]}));
    subscribe(&bus, "financial", &[slow], &at).await;
    let publisher = Arc::clone(&bus);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let event = platform_event("company.created", json!({"tenant_id": "acme"}));
            publisher.publish(vec![event]).await.expect("published");
        });
        // The runtime ends here, with the delivery (a second long) not yet done.
    })
    .join()
    .expect("the publishing thread");
    tokio::time::timeout(Duration::from_secs(10), bus.idle())
        .await
        .expect("the bus drains");
    assert_eq!(backend.detail_types(), ["company.created"]);
}
