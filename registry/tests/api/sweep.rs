//! Finding 9 (issue 18): nothing stays stuck. An operation whose request was never delivered,
//! or whose worker died, is found by the sweep and finished; one past its attempts is failed
//! and undone, and the module can be operated on again; `…/installation/retry` re-requests.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use plinth_registry::install::{Step, SweepPolicy, Swept};
use plinth_registry::store::{Query, keys};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::support::api::{TestPlatform, operator, tenant_admin};
use crate::support::fakes::Backend;

crate::on_both_stores!(
    an_install_whose_request_was_never_delivered_is_swept_and_finished,
    an_install_whose_installer_died_is_resumed_by_the_sweep,
    an_install_past_its_attempts_is_failed_undone_and_no_longer_refused,
    retry_answers_404_403_409_and_re_requests_failed_and_stuck_operations,
    a_version_alongside_whose_request_was_never_delivered_is_swept_and_finished,
    a_version_alongside_past_its_attempts_is_failed_and_undone_leaving_the_first_serving,
);

fn manifest() -> Value {
    json!({
        "name": "financial", "display_name": "Financial", "version": "1.0.0",
        "backend": {"type": "microservice", "api_prefix": "/api/v1/financial", "health_check": "/health"},
        "permissions": [{"code": "financial:items.read", "description": "read"}],
        "hooks": {"pre_install": "/_plinth/hooks/pre_install", "post_install": "/_plinth/hooks/post_install"}
    })
}

async fn published_with_backend(p: &TestPlatform) -> (Backend, String) {
    p.call(
        Method::POST,
        "/api/v1/modules",
        operator(),
        Some(manifest()),
    )
    .await
    .expect(StatusCode::CREATED);
    let backend = Backend::default();
    let url = backend.start().await;
    (backend, url)
}

async fn request_install(p: &TestPlatform, url: &str) -> crate::support::api::Response {
    p.call(
        Method::POST,
        "/api/v1/modules/financial/install",
        operator(),
        Some(json!({"version": "1.0.0", "endpoint": url})),
    )
    .await
}

async fn installation(p: &TestPlatform) -> Value {
    p.call(
        Method::GET,
        "/api/v1/modules/financial/installation",
        operator(),
        None,
    )
    .await
    .expect(StatusCode::OK)
    .clone()
}

/// financial 1.0.0 installed at one backend, 1.3.0 published; returns the second backend
/// (for 1.3.0) and its URL.
async fn installed_with_a_second_version(p: &TestPlatform) -> (Backend, String) {
    let (_first, url) = published_with_backend(p).await;
    let mut next = manifest();
    next["version"] = json!("1.3.0");
    p.call(Method::POST, "/api/v1/modules", operator(), Some(next))
        .await
        .expect(StatusCode::CREATED);
    request_install(p, &url).await.expect(StatusCode::ACCEPTED);
    assert_eq!(p.settled("financial").await["status"], "installed");
    let backend = Backend::default();
    let url = backend.start().await;
    (backend, url)
}

async fn request_alongside(p: &TestPlatform, url: &str) -> crate::support::api::Response {
    p.call(
        Method::POST,
        "/api/v1/modules/financial/install",
        operator(),
        Some(json!({"version": "1.3.0", "endpoint": url, "alongside": true})),
    )
    .await
}

async fn alongside_installation(p: &TestPlatform) -> Value {
    p.call(
        Method::GET,
        "/api/v1/modules/financial/installation?version=1.3.0",
        operator(),
        None,
    )
    .await
    .expect(StatusCode::OK)
    .clone()
}

async fn alongside_settled(p: &TestPlatform) -> Value {
    for _ in 0..200 {
        let now = alongside_installation(p).await;
        if now["status"] != "pending" && now["status"] != "running" {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("financial 1.3.0 alongside did not settle");
}

/// `minutes` from now, as the sweep is told the time.
fn later(minutes: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::minutes(minutes)
}

async fn sweep(p: &TestPlatform, at: OffsetDateTime) -> Swept {
    let policy = SweepPolicy::default();
    assert_eq!(policy.max_attempts, 3, "the tests count on three attempts");
    p.app
        .plane
        .installer
        .sweep(at, policy.stale_after)
        .await
        .unwrap()
}

fn swept(rerequested: &[&str], failed: &[&str]) -> Swept {
    Swept {
        rerequested: rerequested.iter().map(ToString::to_string).collect(),
        failed: failed.iter().map(ToString::to_string).collect(),
    }
}

fn step_status(installation: &Value, step: &str) -> String {
    installation["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == step)
        .map(|s| s["status"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Installs with the worker stopping right after the deploy, as if it had died there.
async fn install_that_dies_after_deploy(p: &TestPlatform, url: &str) -> Value {
    p.crash.after(Step::Deploy);
    request_install(p, url).await.expect(StatusCode::ACCEPTED);
    for _ in 0..200 {
        let now = installation(p).await;
        if step_status(&now, "deploy") == "done" && now["last_error"].is_string() {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the install never stopped after its deploy");
}

/// The platform's audit actions, newest first.
async fn platform_audit(p: &TestPlatform) -> Vec<String> {
    let query = Query::partition(keys::audit_partition("~platform")).descending();
    let page = p.store.query(&query).await.unwrap();
    page.items
        .iter()
        .filter_map(|item| item.data.get("action").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

async fn an_install_whose_request_was_never_delivered_is_swept_and_finished(p: TestPlatform) {
    let (backend, url) = published_with_backend(&p).await;
    p.queue.fail_next(1);
    request_install(&p, &url).await.expect_problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "the install of financial is stored but could not be queued; the sweep requests it again",
    );
    let stuck = installation(&p).await;
    assert_eq!(stuck["status"], "pending", "{stuck}");
    let noted = stuck["last_error"].as_str().unwrap_or_default();
    assert!(noted.contains("the request was not delivered"), "{stuck}");
    // Until the deadline passes, the sweep leaves it alone; every later operation is refused.
    assert_eq!(sweep(&p, OffsetDateTime::now_utc()).await, Swept::default());
    request_install(&p, &url).await.expect_problem(
        StatusCode::CONFLICT,
        "an install of financial is in progress",
    );

    assert_eq!(sweep(&p, later(17)).await, swept(&["financial"], &[]));
    let done = p.settled("financial").await;
    assert_eq!(done["status"], "installed", "{done}");
    assert_eq!(done["attempts"], 1, "{done}");
    assert!(done.get("last_error").is_none(), "{done}");
    assert_eq!(backend.hooks_called(), ["pre_install", "post_install"]);
    assert!(
        platform_audit(&p)
            .await
            .contains(&"module.installation.rerequested".into())
    );
}

async fn an_install_whose_installer_died_is_resumed_by_the_sweep(p: TestPlatform) {
    let (backend, url) = published_with_backend(&p).await;
    let stuck = install_that_dies_after_deploy(&p, &url).await;
    assert_eq!(stuck["status"], "running", "{stuck}");
    assert!(
        stuck["last_error"]
            .as_str()
            .unwrap()
            .contains("simulated crash after Deploy"),
        "{stuck}"
    );
    assert!(
        backend.hooks_called().is_empty(),
        "nothing after the deploy ran"
    );

    assert_eq!(sweep(&p, later(17)).await, swept(&["financial"], &[]));
    let done = p.settled("financial").await;
    assert_eq!(done["status"], "installed", "{done}");
    assert_eq!(done["attempts"], 1, "{done}");
    assert_eq!(
        backend.hooks_called(),
        ["pre_install", "post_install"],
        "each hook once"
    );
    let keys = p
        .call(
            Method::GET,
            "/api/v1/modules/financial/api-keys",
            operator(),
            None,
        )
        .await;
    assert_eq!(
        keys.expect(StatusCode::OK).as_array().unwrap().len(),
        1,
        "one API key"
    );
    // Finished, it is no longer the sweep's business.
    assert_eq!(sweep(&p, later(60)).await, Swept::default());
}

async fn an_install_past_its_attempts_is_failed_undone_and_no_longer_refused(p: TestPlatform) {
    let (backend, url) = published_with_backend(&p).await;
    install_that_dies_after_deploy(&p, &url).await;
    // The bus takes no request: each re-request is counted, none is delivered.
    p.queue.fail_next(usize::MAX);
    for attempt in 1..=3 {
        sweep(&p, later(17 * attempt)).await;
        let stuck = installation(&p).await;
        assert_eq!(stuck["status"], "running", "{stuck}");
        assert_eq!(stuck["attempts"], attempt, "{stuck}");
        let words = format!("re-requested, attempt {attempt} of 3");
        assert!(
            stuck["last_error"].as_str().unwrap().contains(&words),
            "{stuck}"
        );
    }
    assert_eq!(sweep(&p, later(17 * 4)).await, swept(&[], &["financial"]));

    let failed = installation(&p).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["failure"]["step"], "pre_install", "{failed}");
    let reason = failed["failure"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("no progress for 17m") && reason.contains("after 3 re-request(s)"),
        "{reason}"
    );
    assert_eq!(step_status(&failed, "pre_install"), "failed");
    assert_eq!(step_status(&failed, "deploy"), "undone");
    assert_eq!(step_status(&failed, "issue_api_key"), "undone");
    let keys = p
        .call(
            Method::GET,
            "/api/v1/modules/financial/api-keys",
            operator(),
            None,
        )
        .await;
    assert_eq!(
        keys.expect(StatusCode::OK),
        &json!([]),
        "the key was revoked"
    );
    let instances = p
        .call(
            Method::GET,
            "/api/v1/modules/financial/instances",
            operator(),
            None,
        )
        .await;
    assert_eq!(
        instances.expect(StatusCode::OK),
        &json!([]),
        "the deploy was undone"
    );
    assert!(p.saw("module.install.failed").await);
    assert!(
        platform_audit(&p)
            .await
            .contains(&"module.install.failed".into())
    );
    assert!(backend.hooks_called().is_empty(), "no hook ran");

    // The module is no longer refused with 409.
    p.queue.fail_next(0);
    request_install(&p, &url).await.expect(StatusCode::ACCEPTED);
    let installed = p.settled("financial").await;
    assert_eq!(installed["status"], "installed", "{installed}");
    assert!(
        installed.get("attempts").is_none(),
        "a new operation starts over: {installed}"
    );
}

async fn retry_answers_404_403_409_and_re_requests_failed_and_stuck_operations(p: TestPlatform) {
    let retry = |module: &str| format!("/api/v1/modules/{module}/installation/retry");
    p.call(Method::POST, &retry("nobody"), operator(), None)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "nobody has never been installed");

    let (backend, url) = published_with_backend(&p).await;
    backend.answer(
        "post_install",
        500,
        json!({"detail": "database unreachable"}),
    );
    request_install(&p, &url).await.expect(StatusCode::ACCEPTED);
    assert_eq!(p.settled("financial").await["status"], "failed");

    p.call(
        Method::POST,
        &retry("financial"),
        tenant_admin("acme"),
        None,
    )
    .await
    .expect(StatusCode::FORBIDDEN);
    backend.answer("post_install", 200, json!({}));
    let again = p
        .call(Method::POST, &retry("financial"), operator(), None)
        .await;
    assert_eq!(again.expect(StatusCode::ACCEPTED)["status"], "pending");
    let installed = p.settled("financial").await;
    assert_eq!(installed["status"], "installed", "{installed}");

    p.call(Method::POST, &retry("financial"), operator(), None)
        .await
        .expect_problem(
            StatusCode::CONFLICT,
            "nothing to retry: the install of financial 1.0.0 finished (installed)",
        );

    // A stuck operation (its request lost) is requested again at once.
    p.queue.fail_next(1);
    p.call(
        Method::DELETE,
        "/api/v1/modules/financial/installation",
        operator(),
        None,
    )
    .await
    .expect(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(installation(&p).await["status"], "pending");
    p.call(Method::POST, &retry("financial"), operator(), None)
        .await
        .expect(StatusCode::ACCEPTED);
    assert_eq!(p.settled("financial").await["status"], "uninstalled");
    assert!(
        platform_audit(&p)
            .await
            .contains(&"module.installation.retried".into())
    );
}

async fn a_version_alongside_whose_request_was_never_delivered_is_swept_and_finished(
    p: TestPlatform,
) {
    let (_backend, url) = installed_with_a_second_version(&p).await;
    p.queue.fail_next(1);
    request_alongside(&p, &url).await.expect_problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "could not be queued; the sweep requests it again",
    );
    let stuck = alongside_installation(&p).await;
    assert_eq!(stuck["status"], "pending", "{stuck}");
    let noted = stuck["last_error"].as_str().unwrap_or_default();
    assert!(noted.contains("the request was not delivered"), "{stuck}");
    assert_eq!(sweep(&p, OffsetDateTime::now_utc()).await, Swept::default());

    assert_eq!(
        sweep(&p, later(17)).await,
        swept(&["financial 1.3.0"], &[]),
        "a version alongside is swept like a first installation"
    );
    let done = alongside_settled(&p).await;
    assert_eq!(done["status"], "installed", "{done}");
    assert_eq!(done["attempts"], 1, "{done}");
    assert_eq!(done["deployment"]["endpoint"], url.as_str(), "{done}");
    let first = installation(&p).await;
    assert_eq!(first["installed_version"], "1.0.0", "{first}");
    assert_eq!(sweep(&p, later(60)).await, Swept::default());
}

async fn a_version_alongside_past_its_attempts_is_failed_and_undone_leaving_the_first_serving(
    p: TestPlatform,
) {
    let (_backend, url) = installed_with_a_second_version(&p).await;
    p.crash.after(Step::IssueApiKey);
    request_alongside(&p, &url)
        .await
        .expect(StatusCode::ACCEPTED);
    let mut stopped = Value::Null;
    for _ in 0..200 {
        stopped = alongside_installation(&p).await;
        if step_status(&stopped, "issue_api_key") == "done" && stopped["last_error"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let noted = stopped["last_error"].as_str().unwrap_or_default();
    assert!(
        noted.contains("simulated crash after IssueApiKey"),
        "{stopped}"
    );
    // The bus takes no request: each re-request is counted, none is delivered.
    p.queue.fail_next(usize::MAX);
    for attempt in 1..=3 {
        sweep(&p, later(17 * attempt)).await;
        let stuck = alongside_installation(&p).await;
        assert_eq!(stuck["attempts"], attempt, "{stuck}");
    }
    assert_eq!(
        sweep(&p, later(17 * 4)).await,
        swept(&[], &["financial 1.3.0"])
    );
    let failed = alongside_installation(&p).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let reason = failed["failure"]["reason"].as_str().unwrap();
    assert!(reason.contains("after 3 re-request(s)"), "{reason}");
    assert_eq!(step_status(&failed, "issue_api_key"), "undone", "{failed}");
    assert_eq!(step_status(&failed, "deploy"), "failed", "{failed}");
    let first = installation(&p).await;
    assert_eq!(first["status"], "installed", "{first}");
    assert_eq!(first["installed_version"], "1.0.0", "{first}");
}
