//! Staged rollouts, on both stores: the driver is stepped by hand (`Rollouts::tick`), and what
//! the gateway would have seen of the new version is counted into the rollouts' health shards
//! as the gateway counts it (`local/tests/rollout.rs` sends real requests through `plinth up`).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use plinth_registry::gateway::GatewayRequest;
use plinth_registry::identity::{ContextSigner, TokenVerifier};
use plinth_registry::queue::LocalQueue;
use plinth_registry::rollout::{Figures, SETTLE, StoredFigures};
use plinth_registry::store::{Query, keys, query_all};
use plinth_registry::usage::{AccessLogLine, BatchCounts, MINUTE_MS};
use plinth_registry::{App, Identity, Ports, Settings};
use serde_json::{Value, json};

use crate::support::api::{Auth, SECRET, TestPlatform, financial, operator, tenant_admin};
use crate::support::fakes::Backend;

crate::on_both_stores!(
    a_canary_answering_5xx_stops_the_rollout_and_moves_its_tenants_back_on_its_own,
    a_healthy_rollout_moves_wave_by_wave_then_makes_the_version_the_default,
    a_rollout_carries_on_after_a_restart_from_its_stored_state,
    a_paused_rollout_holds_its_tenants_until_resumed_and_an_abort_moves_them_back,
    bad_rollout_requests_are_refused_naming_the_field_and_store_nothing,
    a_tenant_pinned_by_an_admin_stays_on_its_version_and_a_named_one_gets_its_pin_back,
    a_canary_answering_5xx_in_the_access_log_stops_a_rollout_judged_on_stored_figures,
    stored_figures_read_at_every_step_count_once_and_settle_after_their_minute,
    healthy_stored_figures_advance_the_wave_after_the_bake_and_complete,
);

/// Financial 1.2.0 installed, 1.3.0 alongside (each at a backend of its own), `tenants` with
/// the module enabled. Returns the two backends' URLs.
async fn two_versions(p: &TestPlatform, tenants: &[&str]) -> (String, String) {
    let (first, second) = (
        Backend::default().start().await,
        Backend::default().start().await,
    );
    for version in ["1.2.0", "1.3.0"] {
        let mut manifest = financial();
        manifest["version"] = json!(version);
        p.call(Method::POST, "/api/v1/modules", operator(), Some(manifest))
            .await
            .expect(StatusCode::CREATED);
    }
    p.call(
        Method::POST,
        "/api/v1/modules/financial/install",
        operator(),
        Some(json!({"version": "1.2.0", "endpoint": first})),
    )
    .await
    .expect(StatusCode::ACCEPTED);
    assert_eq!(p.settled("financial").await["status"], "installed");
    p.call(
        Method::POST,
        "/api/v1/modules/financial/install",
        operator(),
        Some(json!({"version": "1.3.0", "endpoint": second, "alongside": true})),
    )
    .await
    .expect(StatusCode::ACCEPTED);
    for _ in 0..200 {
        let answer = p
            .call(
                Method::GET,
                "/api/v1/modules/financial/installation?version=1.3.0",
                operator(),
                None,
            )
            .await;
        if answer.body["status"] == "installed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for tenant in tenants {
        p.call(
            Method::POST,
            "/api/v1/tenants",
            operator(),
            Some(json!({"id": tenant, "name": tenant, "subscription_tier": "premium"})),
        )
        .await
        .expect(StatusCode::CREATED);
        p.enable(tenant, "financial").await;
    }
    (first, second)
}

/// The backend the gateway would send `tenant`'s request to.
async fn routed_to(app: &App, tenant: &str) -> String {
    let Auth::Token(token) = tenant_admin(tenant) else {
        unreachable!()
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    let request = GatewayRequest::new("GET", "/api/v1/financial/invoices", None, &headers);
    let decision = app
        .authorizer
        .authorize(request)
        .await
        .unwrap_or_else(|e| panic!("{tenant}'s request was refused: {e}"));
    decision.upstream.url.clone()
}

async fn start(p: &TestPlatform, body: Value) -> crate::support::api::Response {
    p.call(
        Method::POST,
        "/api/v1/modules/financial/rollouts",
        operator(),
        Some(body),
    )
    .await
}

/// Starts a rollout that must be accepted (201); its id.
async fn started(p: &TestPlatform, body: Value) -> String {
    start(p, body).await.expect(StatusCode::CREATED)["id"]
        .as_str()
        .expect("a rollout's id")
        .to_owned()
}

async fn show(p: &TestPlatform, id: &str) -> Value {
    let answer = p
        .call(
            Method::GET,
            &format!("/api/v1/modules/financial/rollouts/{id}"),
            operator(),
            None,
        )
        .await;
    answer.expect(StatusCode::OK).clone()
}

async fn act(p: &TestPlatform, id: &str, action: &str) -> crate::support::api::Response {
    p.call(
        Method::POST,
        &format!("/api/v1/modules/financial/rollouts/{id}/{action}"),
        operator(),
        None,
    )
    .await
}

/// What the gateway counts of `n` requests to financial `version` answered `status`.
fn served(app: &App, version: &str, status: u16, n: usize) {
    let shard = app.plane.rollouts.health().shard();
    for _ in 0..n {
        shard.served("financial", version, status, Duration::from_millis(3));
    }
}

async fn tick(app: &App) {
    app.plane.rollouts.tick().await.expect("the driver steps");
}

/// Waits out a bake of `seconds`.
async fn bake(seconds: u64) {
    tokio::time::sleep(Duration::from_millis(seconds * 1000 + 100)).await;
}

/// The actions of `scope`'s audit records (a tenant, or `~platform`), newest first.
async fn audited(p: &TestPlatform, scope: &str) -> Vec<(String, Value)> {
    let query = Query::partition(keys::audit_partition(scope)).descending();
    query_all(p.store.as_ref(), &query)
        .await
        .unwrap()
        .into_iter()
        .map(|item| {
            (
                item.data["action"].as_str().unwrap_or_default().to_owned(),
                item.data["detail"].clone(),
            )
        })
        .collect()
}

async fn a_canary_answering_5xx_stops_the_rollout_and_moves_its_tenants_back_on_its_own(
    p: TestPlatform,
) {
    let (first, second) = two_versions(&p, &["acme", "globex"]).await;
    let started = start(
        &p,
        json!({"version": "1.3.0", "waves": "canary:acme,100%", "bake_seconds": 60,
               "thresholds": {"min_requests": 5}}),
    )
    .await;
    let started = started.expect(StatusCode::CREATED).clone();
    let id = started["id"].as_str().unwrap().to_owned();
    assert_eq!(started["state"], "running");
    assert_eq!(started["from_version"], "1.2.0");
    assert!(p.saw("module.rollout.started").await);

    tick(&p.app).await;
    assert_eq!(routed_to(&p.app, "acme").await, second, "the canary moved");
    assert_eq!(routed_to(&p.app, "globex").await, first);
    let baking = show(&p, &id).await;
    assert_eq!(baking["waves"][0]["state"], "baking", "{baking}");
    assert_eq!(baking["waves"][0]["tenants"], json!(["acme"]));

    // The canary answers 5xx: long before its bake is over, the rollout stops on its own.
    served(&p.app, "1.3.0", 503, 4);
    served(&p.app, "1.3.0", 200, 1);
    served(&p.app, "1.2.0", 200, 50);
    tick(&p.app).await;

    let stopped = show(&p, &id).await;
    assert_eq!(stopped["state"], "rolled_back", "{stopped}");
    let reason = stopped["reason"].as_str().unwrap();
    assert!(
        reason
            .contains("error rate 80.0% (4 of 5 requests answered 5xx) is above the 5.0% allowed"),
        "{reason}"
    );
    assert_eq!(stopped["waves"][0]["figures"]["requests"], 5);
    assert_eq!(stopped["waves"][0]["figures"]["errors_5xx"], 4);
    assert_eq!(stopped["waves"][0]["state"], "stopped");
    assert_eq!(stopped["waves"][1]["state"], "pending");
    assert_eq!(stopped["tenants_moved"], 0);
    assert_eq!(stopped["moved"][0]["restored"], true);
    assert_eq!(
        routed_to(&p.app, "acme").await,
        first,
        "acme is back on 1.2.0"
    );
    let pin = p
        .call(
            Method::GET,
            "/api/v1/tenants/acme/modules/financial/pin",
            operator(),
            None,
        )
        .await;
    assert_eq!(
        pin.expect(StatusCode::OK)["pinned"],
        Value::Null,
        "unpinned as it was"
    );

    assert!(p.saw("module.rollout.rolled_back").await);
    let event = p
        .bus
        .recent()
        .into_iter()
        .find(|e| e.detail_type == "module.rollout.rolled_back")
        .unwrap();
    assert_eq!(event.detail["rollout_id"], id.as_str());
    assert_eq!(event.detail["reason"], reason);
    assert_eq!(event.detail["tenants"], json!(["acme"]));
    let platform = audited(&p, "~platform").await;
    let record = platform
        .iter()
        .find(|(action, _)| action == "module.rollout.rolled_back")
        .unwrap_or_else(|| panic!("no platform audit record: {platform:?}"));
    assert_eq!(record.1["reason"], reason);
    // Acme's admins see it in their own audit log.
    let audit = p
        .call(
            Method::GET,
            "/api/v1/tenants/acme/audit",
            tenant_admin("acme"),
            None,
        )
        .await;
    let records = audit.expect(StatusCode::OK)["records"]
        .as_array()
        .unwrap()
        .clone();
    let back = records
        .iter()
        .find(|r| r["action"] == "module.rollout.rolled_back")
        .unwrap_or_else(|| panic!("{records:?}"));
    assert_eq!(back["detail"]["version"], "1.2.0");
    assert_eq!(back["detail"]["reason"], reason);

    // Ended: the driver leaves it be, and the module may have another rollout.
    tick(&p.app).await;
    assert_eq!(show(&p, &id).await["state"], "rolled_back");
    start(&p, json!({"version": "1.3.0", "waves": "100%"}))
        .await
        .expect(StatusCode::CREATED);
}

async fn a_healthy_rollout_moves_wave_by_wave_then_makes_the_version_the_default(p: TestPlatform) {
    let (_, second) = two_versions(&p, &["acme", "globex", "initech"]).await;
    let id = started(
        &p,
        json!({"version": "1.3.0", "waves": "canary:acme,50%,100%", "bake_seconds": 1}),
    )
    .await;

    tick(&p.app).await;
    let one = show(&p, &id).await;
    assert_eq!(
        (one["current_wave"].clone(), one["tenants_moved"].clone()),
        (json!(1), json!(1))
    );
    served(&p.app, "1.3.0", 200, 30);
    tick(&p.app).await;
    bake(1).await;
    tick(&p.app).await;
    let two = show(&p, &id).await;
    assert_eq!(two["current_wave"], 2, "{two}");
    assert_eq!(two["tenants_moved"], 2, "50% of three tenants, rounded up");
    assert_eq!(two["waves"][0]["state"], "done");
    assert_eq!(two["waves"][0]["figures"]["requests"], 30);
    assert_eq!(two["waves"][1]["state"], "baking");
    bake(1).await;
    tick(&p.app).await;
    assert_eq!(show(&p, &id).await["tenants_moved"], 3);
    bake(1).await;
    tick(&p.app).await;

    let done = show(&p, &id).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert!(done["finished_at"].is_string());
    for tenant in ["acme", "globex", "initech"] {
        assert_eq!(routed_to(&p.app, tenant).await, second, "{tenant}");
    }
    let listed = p
        .call(
            Method::GET,
            "/api/v1/modules/financial/installed-versions",
            operator(),
            None,
        )
        .await;
    let listed = listed.expect(StatusCode::OK);
    assert_eq!(listed["default_version"], "1.3.0");
    assert_eq!(
        listed["versions"][1]["pinned_tenants"],
        json!([]),
        "the default serves them; their pins went"
    );
    let events = p.events();
    let advanced = events
        .iter()
        .filter(|e| *e == "module.rollout.wave_advanced")
        .count();
    assert_eq!(advanced, 3, "{events:?}");
    assert!(p.saw("module.rollout.completed").await);
    assert!(p.saw("module.version.default_set").await);
    let listed = p
        .call(
            Method::GET,
            "/api/v1/modules/financial/rollouts",
            operator(),
            None,
        )
        .await;
    assert_eq!(listed.expect(StatusCode::OK)[0]["state"], "completed");
}

/// The same platform's store, under an app built anew: a restart.
fn restarted(p: &TestPlatform) -> App {
    let (queue, _worker) = tokio::sync::mpsc::unbounded_channel();
    let ports = Ports::new(
        Arc::clone(&p.store),
        p.bus.clone(),
        Arc::new(LocalQueue(queue)),
    );
    let identity = Identity {
        tokens: TokenVerifier::hs256(SECRET, None, None).unwrap(),
        context: Arc::new(ContextSigner::generate().unwrap()),
    };
    App::build(ports, identity, Settings::default())
}

async fn a_rollout_carries_on_after_a_restart_from_its_stored_state(p: TestPlatform) {
    let (first, second) = two_versions(&p, &["acme", "globex"]).await;
    let id = started(
        &p,
        json!({"version": "1.3.0", "waves": "canary:acme,100%", "bake_seconds": 1,
               "thresholds": {"min_requests": 3}}),
    )
    .await;
    tick(&p.app).await;
    served(&p.app, "1.3.0", 200, 2);
    tick(&p.app).await;

    // The platform restarts: a new process, its memory empty, the store as it was.
    let again = restarted(&p);
    bake(1).await;
    tick(&again).await;
    let after = show(&p, &id).await;
    assert_eq!(after["current_wave"], 2, "{after}");
    assert_eq!(
        after["waves"][0]["figures"]["requests"], 2,
        "kept across the restart"
    );
    assert_eq!(routed_to(&again, "globex").await, second);
    // The restarted driver judges what its own gateway sees.
    served(&again, "1.3.0", 500, 3);
    tick(&again).await;
    let stopped = show(&p, &id).await;
    assert_eq!(stopped["state"], "rolled_back", "{stopped}");
    assert_eq!(routed_to(&again, "acme").await, first);
    assert_eq!(routed_to(&again, "globex").await, first);
}

async fn a_paused_rollout_holds_its_tenants_until_resumed_and_an_abort_moves_them_back(
    p: TestPlatform,
) {
    let (first, second) = two_versions(&p, &["acme", "globex"]).await;
    let id = started(
        &p,
        json!({"version": "1.3.0", "waves": "canary:acme,100%", "bake_seconds": 2}),
    )
    .await;
    tick(&p.app).await;
    let paused = act(&p, &id, "pause").await;
    assert_eq!(paused.expect(StatusCode::OK)["state"], "paused");
    assert!(p.saw("module.rollout.paused").await);
    act(&p, &id, "pause")
        .await
        .expect_problem(StatusCode::CONFLICT, "is paused: it cannot be paused");

    // Paused: the bake is over, errors come in, and nothing moves either way.
    bake(2).await;
    served(&p.app, "1.3.0", 500, 20);
    tick(&p.app).await;
    let held = show(&p, &id).await;
    assert_eq!(
        (held["state"].clone(), held["current_wave"].clone()),
        (json!("paused"), json!(1))
    );
    assert_eq!(routed_to(&p.app, "acme").await, second);
    assert_eq!(routed_to(&p.app, "globex").await, first);

    let resumed = act(&p, &id, "resume").await;
    assert_eq!(resumed.expect(StatusCode::OK)["state"], "running");
    assert!(p.saw("module.rollout.resumed").await);
    tick(&p.app).await;
    assert_eq!(
        show(&p, &id).await["current_wave"],
        1,
        "the bake started again"
    );

    let aborted = act(&p, &id, "abort").await;
    let aborted = aborted.expect(StatusCode::OK);
    assert_eq!(aborted["state"], "aborted");
    assert!(
        aborted["reason"]
            .as_str()
            .unwrap()
            .starts_with("aborted by")
    );
    assert_eq!(routed_to(&p.app, "acme").await, first, "moved back");
    assert!(p.saw("module.rollout.aborted").await);
    act(&p, &id, "resume")
        .await
        .expect_problem(StatusCode::CONFLICT, "is aborted: it cannot be resumed");
    act(&p, &id, "abort")
        .await
        .expect_problem(StatusCode::CONFLICT, "cannot be aborted");
    // A tenant's admin may neither read nor steer rollouts.
    p.call(
        Method::POST,
        &format!("/api/v1/modules/financial/rollouts/{id}/pause"),
        tenant_admin("acme"),
        None,
    )
    .await
    .expect(StatusCode::FORBIDDEN);
}

async fn bad_rollout_requests_are_refused_naming_the_field_and_store_nothing(p: TestPlatform) {
    two_versions(&p, &["acme"]).await;
    for (body, field, needle) in [
        (
            json!({"version": "1.3.0", "waves": "50%,10%"}),
            "waves",
            "does not rise above 50%",
        ),
        (
            json!({"version": "1.3.0", "waves": "canary:initech"}),
            "waves",
            "tenant initech does not have financial enabled",
        ),
        (
            json!({"version": "9.9.9", "waves": "100%"}),
            "version",
            "financial 9.9.9 is not installed (installed: 1.2.0, 1.3.0)",
        ),
        (
            json!({"version": "latest", "waves": "100%"}),
            "version",
            "`latest` is not a semantic version",
        ),
        (
            json!({"version": "1.2.0", "waves": "100%"}),
            "version",
            "already the default version",
        ),
        (
            json!({"version": "1.3.0", "waves": "100%", "thresholds": {"max_error_rate": 2}}),
            "thresholds.max_error_rate",
            "not a share from 0 to 1",
        ),
        (
            json!({"version": "1.3.0", "waves": "100%", "thresholds": {"max_p95_ms": 0}}),
            "thresholds.max_p95_ms",
            "at least 1",
        ),
        (
            json!({"version": "1.3.0", "waves": "100%", "bake_seconds": 0}),
            "bake_seconds",
            "not from 1 to 86400",
        ),
    ] {
        let refused = start(&p, body.clone()).await;
        let problem = refused.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, needle);
        assert_eq!(problem["errors"][0]["path"], field, "{body}: {problem}");
    }
    let listed = p
        .call(
            Method::GET,
            "/api/v1/modules/financial/rollouts",
            operator(),
            None,
        )
        .await;
    assert_eq!(listed.expect(StatusCode::OK), &json!([]), "nothing stored");
    tick(&p.app).await;
    assert!(!p.events().iter().any(|e| e.starts_with("module.rollout.")));

    p.call(
        Method::POST,
        "/api/v1/modules/financial/rollouts",
        tenant_admin("acme"),
        Some(json!({"version": "1.3.0", "waves": "100%"})),
    )
    .await
    .expect(StatusCode::FORBIDDEN);
    p.call(
        Method::POST,
        "/api/v1/modules/warehouse/rollouts",
        operator(),
        Some(json!({"version": "1.3.0", "waves": "100%"})),
    )
    .await
    .expect_problem(StatusCode::NOT_FOUND, "warehouse is not installed");
    let id = started(&p, json!({"version": "1.3.0", "waves": "100%"})).await;
    start(&p, json!({"version": "1.3.0", "waves": "100%"}))
        .await
        .expect_problem(
            StatusCode::CONFLICT,
            &format!("rollout {id} of financial is still active"),
        );
    p.call(
        Method::GET,
        "/api/v1/modules/financial/rollouts/not-a-rollout",
        operator(),
        None,
    )
    .await
    .expect_problem(
        StatusCode::NOT_FOUND,
        "financial has no rollout not-a-rollout",
    );
}

async fn a_tenant_pinned_by_an_admin_stays_on_its_version_and_a_named_one_gets_its_pin_back(
    p: TestPlatform,
) {
    let (first, second) = two_versions(&p, &["acme", "globex", "initech"]).await;
    for tenant in ["acme", "globex"] {
        p.call(
            Method::PUT,
            &format!("/api/v1/tenants/{tenant}/modules/financial/pin"),
            operator(),
            Some(json!({"version": "1.2.0"})),
        )
        .await
        .expect(StatusCode::OK);
    }
    let id = started(
        &p,
        json!({"version": "1.3.0", "waves": "canary:acme,100%", "bake_seconds": 1,
               "thresholds": {"min_requests": 1}}),
    )
    .await;
    tick(&p.app).await;
    bake(1).await;
    tick(&p.app).await;
    let moved = show(&p, &id).await;
    assert_eq!(moved["current_wave"], 2);
    let tenants: Vec<&str> = moved["moved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["tenant_id"].as_str().unwrap())
        .collect();
    assert_eq!(tenants, ["acme", "initech"], "globex's own pin holds it");
    assert_eq!(moved["moved"][0]["previous_pin"], "1.2.0");
    assert_eq!(routed_to(&p.app, "globex").await, first);
    assert_eq!(routed_to(&p.app, "initech").await, second);

    served(&p.app, "1.3.0", 502, 1);
    tick(&p.app).await;
    assert_eq!(show(&p, &id).await["state"], "rolled_back");
    let pin = p
        .call(
            Method::GET,
            "/api/v1/tenants/acme/modules/financial/pin",
            operator(),
            None,
        )
        .await;
    assert_eq!(
        pin.expect(StatusCode::OK)["pinned"],
        "1.2.0",
        "its pin is back"
    );
    assert_eq!(routed_to(&p.app, "initech").await, first);
}

// ---------------------------------------------------------------- on AWS: stored figures

/// Now, in Unix milliseconds.
fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap()
}

/// What the usage function stores of an access log batch `batch` (CloudWatch Logs' delivery)
/// of `n` requests of acme to financial `version` answered `status`, arrived now; whether it
/// counted them (a batch delivered again is not).
async fn logged(app: &App, batch: &str, version: &str, status: u16, n: usize) -> bool {
    let line = AccessLogLine {
        tenant: "acme".into(),
        module: "financial".into(),
        version: Some(version.into()),
        status,
        request_bytes: 0,
        response_bytes: 20,
        latency_ms: 3,
        at_ms: now_ms(),
    };
    let lines = vec![line; n];
    app.plane
        .usage
        .record_batch_once(batch, &BatchCounts::of_access_log(&lines))
        .await
        .expect("the batch is stored")
}

/// One step of the driver as the rollout-driver function runs it on AWS.
async fn tick_on_stored_figures(app: &App) {
    app.plane
        .rollouts
        .judged_on_stored_figures()
        .tick()
        .await
        .expect("the driver steps");
}

async fn a_canary_answering_5xx_in_the_access_log_stops_a_rollout_judged_on_stored_figures(
    p: TestPlatform,
) {
    let (first, second) = two_versions(&p, &["acme", "globex"]).await;
    let id = started(
        &p,
        json!({"version": "1.3.0", "waves": "canary:acme,100%", "bake_seconds": 600,
               "thresholds": {"min_requests": 5}}),
    )
    .await;
    tick_on_stored_figures(&p.app).await;
    assert_eq!(routed_to(&p.app, "acme").await, second, "the canary moved");

    // No gateway of this process counts anything: the access log carries the canary's 5xx.
    assert!(logged(&p.app, "logs#1", "1.3.0", 503, 4).await);
    assert!(logged(&p.app, "logs#2", "1.3.0", 200, 1).await);
    assert!(logged(&p.app, "logs#3", "1.2.0", 200, 50).await);
    assert!(
        !logged(&p.app, "logs#1", "1.3.0", 503, 4).await,
        "CloudWatch Logs delivered it again: not counted again"
    );
    tick_on_stored_figures(&p.app).await;

    let stopped = show(&p, &id).await;
    assert_eq!(stopped["state"], "rolled_back", "{stopped}");
    let reason = stopped["reason"].as_str().unwrap();
    assert!(
        reason
            .contains("error rate 80.0% (4 of 5 requests answered 5xx) is above the 5.0% allowed"),
        "{reason}"
    );
    assert_eq!(stopped["waves"][0]["figures"]["requests"], 5);
    assert_eq!(stopped["moved"][0]["restored"], true);
    assert_eq!(routed_to(&p.app, "acme").await, first, "acme is back");
    let event = p
        .bus
        .recent()
        .into_iter()
        .find(|e| e.detail_type == "module.rollout.rolled_back")
        .expect("the event on the bus");
    assert_eq!(event.detail["reason"], reason);
    assert_eq!(event.detail["tenants"], json!(["acme"]));
    let platform = audited(&p, "~platform").await;
    assert!(
        platform
            .iter()
            .any(|(action, detail)| action == "module.rollout.rolled_back"
                && detail["reason"] == reason),
        "{platform:?}"
    );
}

async fn stored_figures_read_at_every_step_count_once_and_settle_after_their_minute(
    p: TestPlatform,
) {
    two_versions(&p, &["acme", "globex"]).await;
    let id = started(
        &p,
        json!({"version": "1.3.0", "waves": "canary:acme,100%", "bake_seconds": 3600,
               "thresholds": {"min_requests": 1000}}),
    )
    .await;
    tick_on_stored_figures(&p.app).await;
    assert!(logged(&p.app, "logs#a", "1.3.0", 200, 3).await);
    for _ in 0..3 {
        tick_on_stored_figures(&p.app).await;
    }
    let baking = show(&p, &id).await;
    assert_eq!(
        baking["waves"][0]["figures"]["requests"], 3,
        "read at three steps, counted once: {baking}"
    );
    assert!(logged(&p.app, "logs#b", "1.3.0", 500, 2).await);
    tick_on_stored_figures(&p.app).await;
    let baking = show(&p, &id).await;
    assert_eq!(baking["waves"][0]["figures"]["requests"], 5);
    assert_eq!(baking["waves"][0]["figures"]["errors_5xx"], 2);

    // The source itself, at a later time: a minute is settled once its lines are all in, and
    // the cursor then passes it — read again, it adds nothing.
    let figures = StoredFigures::new(Arc::clone(&p.store));
    let since = now_ms() - MINUTE_MS;
    let mut cursor = None;
    let now = figures
        .seen("financial", "1.3.0", since, now_ms(), &mut cursor)
        .await
        .unwrap();
    assert_eq!(
        (now.settled.requests, now.provisional.requests),
        (0, 5),
        "still being delivered"
    );
    let later = now_ms() + i64::try_from(SETTLE.as_millis()).unwrap() + 2 * MINUTE_MS;
    let settled = figures
        .seen("financial", "1.3.0", since, later, &mut cursor)
        .await
        .unwrap();
    assert_eq!(
        (settled.settled.requests, settled.settled.errors_5xx),
        (5, 2)
    );
    assert_eq!(settled.provisional.requests, 0);
    let again = figures
        .seen("financial", "1.3.0", since, later, &mut cursor)
        .await
        .unwrap();
    assert_eq!(
        (again.settled.requests, again.provisional.requests),
        (0, 0),
        "settled once"
    );
}

async fn healthy_stored_figures_advance_the_wave_after_the_bake_and_complete(p: TestPlatform) {
    let (_, second) = two_versions(&p, &["acme", "globex"]).await;
    let id = started(
        &p,
        json!({"version": "1.3.0", "waves": "canary:acme,100%", "bake_seconds": 1,
               "thresholds": {"min_requests": 5}}),
    )
    .await;
    tick_on_stored_figures(&p.app).await;
    assert!(logged(&p.app, "logs#ok", "1.3.0", 200, 30).await);
    tick_on_stored_figures(&p.app).await;
    assert_eq!(show(&p, &id).await["current_wave"], 1, "still baking");
    bake(1).await;
    tick_on_stored_figures(&p.app).await;
    let two = show(&p, &id).await;
    assert_eq!(two["current_wave"], 2, "{two}");
    assert_eq!(two["waves"][0]["state"], "done");
    assert_eq!(
        two["waves"][0]["figures"]["requests"], 30,
        "the wave keeps what it was judged on"
    );
    assert_eq!(routed_to(&p.app, "globex").await, second);
    bake(1).await;
    tick_on_stored_figures(&p.app).await;
    let done = show(&p, &id).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert!(p.saw("module.rollout.completed").await);
}
