//! Installing, upgrading, rolling back and uninstalling modules: the sagas, their checks,
//! hooks, failures and crash recovery.

use axum::http::{Method, StatusCode};
use plinth_registry::store::{Condition, keys};
use serde_json::{Value, json};

use crate::support::api::{TestPlatform, operator, tenant_admin};
use crate::support::fakes::Backend;

crate::on_both_stores!(
    install_upgrade_rollback_and_uninstall_with_a_dependency,
    an_install_that_crashes_between_steps_resumes_without_doing_anything_twice,
    a_failing_post_install_hook_undoes_the_install,
    a_pre_install_hook_can_refuse_with_a_reason,
    an_install_of_a_damaged_version_record_stops_at_validate,
    bad_install_requests_get_problem_documents,
    an_instance_unhealthy_for_long_beside_a_healthy_one_is_forgotten,
);

/// A small valid manifest; `requires` are `(module, version requirement)`.
fn manifest(name: &str, version: &str, requires: &[(&str, &str)]) -> Value {
    json!({
        "name": name,
        "display_name": name,
        "version": version,
        "backend": {"type": "microservice", "api_prefix": format!("/api/v1/{name}"), "health_check": "/health"},
        "dependencies": {
            "platform_version": ">=2.0.0",
            "required_modules": requires.iter().map(|(n, v)| json!({"name": n, "version": v})).collect::<Vec<_>>()
        },
        "permissions": [{"code": format!("{name}:items.read"), "description": "read"}],
        "hooks": {"pre_install": "/_plinth/hooks/pre_install", "post_install": "/_plinth/hooks/post_install"},
        "events": {"subscribes": [{"name": "paid", "pattern": {"detail-type": ["financial.invoice.paid"]}, "path": "/_plinth/events/paid"}]}
    })
}

async fn publish(p: &TestPlatform, manifest: Value) {
    p.call(Method::POST, "/api/v1/modules", operator(), Some(manifest))
        .await
        .expect(StatusCode::CREATED);
}

async fn install(p: &TestPlatform, module: &str, version: &str, endpoint: &str) -> Value {
    let body = json!({"version": version, "endpoint": endpoint});
    let started = p
        .call(
            Method::POST,
            &format!("/api/v1/modules/{module}/install"),
            operator(),
            Some(body),
        )
        .await;
    started.expect(StatusCode::ACCEPTED);
    p.settled(module).await
}

fn steps(installation: &Value) -> Vec<(String, String)> {
    installation["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn install_upgrade_rollback_and_uninstall_with_a_dependency(p: TestPlatform) {
    let backend = Backend::default();
    let url = backend.start().await;
    publish(&p, manifest("financial", "1.0.0", &[])).await;
    publish(&p, manifest("financial", "1.1.0", &[])).await;
    publish(&p, manifest("reporting", "1.0.0", &[("financial", "^1.0")])).await;

    let early = p
        .call(
            Method::POST,
            "/api/v1/modules/reporting/install",
            operator(),
            Some(json!({"version": "1.0.0", "endpoint": url})),
        )
        .await;
    early.expect_problem(
        StatusCode::CONFLICT,
        "reporting requires these modules installed first: financial ^1.0",
    );

    let financial = install(&p, "financial", "1.0.0", &url).await;
    assert_eq!(financial["status"], "installed", "{financial}");
    assert!(
        steps(&financial).iter().all(|(_, status)| status == "done"),
        "{financial}"
    );
    assert_eq!(backend.hooks_called(), ["pre_install", "post_install"]);
    let served = p
        .call(
            Method::GET,
            "/api/v1/modules/financial/manifest",
            tenant_admin("acme"),
            None,
        )
        .await;
    assert_eq!(served.expect(StatusCode::OK)["version"], "1.0.0");
    let reporting = install(&p, "reporting", "1.0.0", &url).await;
    assert_eq!(reporting["status"], "installed", "{reporting}");

    let refused = p
        .call(
            Method::DELETE,
            "/api/v1/modules/financial/installation",
            operator(),
            None,
        )
        .await;
    refused.expect_problem(
        StatusCode::CONFLICT,
        "financial cannot be uninstalled: reporting require(s) it",
    );
    let impact = p
        .call(
            Method::DELETE,
            "/api/v1/modules/financial/installation?dry_run=true",
            operator(),
            None,
        )
        .await;
    assert_eq!(
        impact.expect(StatusCode::OK)["dependents"],
        json!(["reporting"])
    );

    let upgrade = p
        .call(
            Method::POST,
            "/api/v1/modules/financial/upgrade",
            operator(),
            Some(json!({"version": "1.1.0"})),
        )
        .await;
    upgrade.expect(StatusCode::ACCEPTED);
    let upgraded = p.settled("financial").await;
    assert_eq!(
        (
            upgraded["installed_version"].as_str(),
            upgraded["previous_version"].as_str()
        ),
        (Some("1.1.0"), Some("1.0.0"))
    );
    p.call(
        Method::POST,
        "/api/v1/modules/financial/rollback",
        operator(),
        None,
    )
    .await
    .expect(StatusCode::ACCEPTED);
    let rolled_back = p.settled("financial").await;
    assert_eq!(rolled_back["installed_version"], "1.0.0", "{rolled_back}");
    let again = p
        .call(
            Method::POST,
            "/api/v1/modules/financial/rollback",
            operator(),
            None,
        )
        .await;
    again.expect_problem(StatusCode::CONFLICT, "no previous version");

    for module in ["reporting", "financial"] {
        let path = format!("/api/v1/modules/{module}/installation");
        p.call(Method::DELETE, &path, operator(), None)
            .await
            .expect(StatusCode::ACCEPTED);
        assert_eq!(p.settled(module).await["status"], "uninstalled");
    }
    let gone = p
        .call(
            Method::GET,
            "/api/v1/modules/financial/manifest",
            operator(),
            None,
        )
        .await;
    gone.expect_problem(StatusCode::NOT_FOUND, "financial is not installed");
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
        "uninstall revokes the module's keys"
    );
    assert!(p.saw("module.uninstalled").await);
    let events = p.events();
    for expected in [
        "module.installed",
        "module.upgraded",
        "module.rolled_back",
        "module.uninstalled",
    ] {
        assert!(
            events.iter().any(|e| e == expected),
            "{expected} missing from {events:?}"
        );
    }
}

async fn an_install_that_crashes_between_steps_resumes_without_doing_anything_twice(
    p: TestPlatform,
) {
    let backend = Backend::default();
    let url = backend.start().await;
    publish(&p, manifest("financial", "1.0.0", &[])).await;
    p.crash.after(plinth_registry::install::Step::Deploy);
    let body = json!({"version": "1.0.0", "endpoint": url});
    p.call(
        Method::POST,
        "/api/v1/modules/financial/install",
        operator(),
        Some(body),
    )
    .await
    .expect(StatusCode::ACCEPTED);
    // The worker stops right after the deploy step, leaving the installation running
    // (waited for up to 30 s: a loaded machine may take more than a moment to get there).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let stuck = p
            .call(
                Method::GET,
                "/api/v1/modules/financial/installation",
                operator(),
                None,
            )
            .await
            .body;
        let deployed = steps(&stuck)
            .iter()
            .any(|(s, status)| s == "deploy" && status == "done");
        if deployed {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let stuck = p
        .call(
            Method::GET,
            "/api/v1/modules/financial/installation",
            operator(),
            None,
        )
        .await
        .body;
    assert_eq!(stuck["status"], "running", "{stuck}");
    assert_eq!(
        backend.hooks_called(),
        Vec::<String>::new(),
        "nothing after the deploy ran"
    );

    p.restart_worker();
    let done = p.settled("financial").await;
    assert_eq!(done["status"], "installed", "{done}");
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
    let instances = p
        .call(
            Method::GET,
            "/api/v1/modules/financial/instances",
            operator(),
            None,
        )
        .await;
    assert_eq!(
        instances.expect(StatusCode::OK).as_array().unwrap().len(),
        1,
        "one instance"
    );
    assert_eq!(
        backend.hooks_called(),
        ["pre_install", "post_install"],
        "each hook once"
    );
    assert!(p.saw("module.installed").await);
    assert_eq!(
        p.events()
            .iter()
            .filter(|e| *e == "module.installed")
            .count(),
        1
    );
}

async fn a_failing_post_install_hook_undoes_the_install(p: TestPlatform) {
    let backend = Backend::default();
    backend.answer(
        "post_install",
        500,
        json!({"detail": "database unreachable"}),
    );
    let url = backend.start().await;
    publish(&p, manifest("financial", "1.0.0", &[])).await;
    let failed = install(&p, "financial", "1.0.0", &url).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["failure"]["step"], "post_install");
    let reason = failed["failure"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("500") && reason.contains("database unreachable"),
        "{reason}"
    );
    let states = steps(&failed);
    assert!(
        states.contains(&("deploy".into(), "undone".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&("issue_api_key".into(), "undone".into())),
        "{states:?}"
    );
    let keys = p
        .call(
            Method::GET,
            "/api/v1/modules/financial/api-keys",
            operator(),
            None,
        )
        .await;
    assert_eq!(keys.expect(StatusCode::OK), &json!([]));
    let instances = p
        .call(
            Method::GET,
            "/api/v1/modules/financial/instances",
            operator(),
            None,
        )
        .await;
    assert_eq!(instances.expect(StatusCode::OK), &json!([]));
    let manifest = p
        .call(
            Method::GET,
            "/api/v1/modules/financial/manifest",
            operator(),
            None,
        )
        .await;
    manifest.expect(StatusCode::NOT_FOUND);
    assert!(p.saw("module.install.failed").await);

    // Fixed, the install can be tried again.
    backend.answer("post_install", 200, json!({}));
    let retried = install(&p, "financial", "1.0.0", &url).await;
    assert_eq!(retried["status"], "installed", "{retried}");
}

async fn an_install_of_a_damaged_version_record_stops_at_validate(p: TestPlatform) {
    let backend = Backend::default();
    let url = backend.start().await;
    publish(&p, manifest("financial", "1.0.0", &[])).await;
    publish(&p, manifest("financial", "1.1.0", &[])).await;
    // A store edited by hand: the 1.0.0 record holds 1.1.0's manifest.
    let key = keys::module_version("financial", "1.0.0");
    let store = &p.store;
    let mut record = store.get(&key).await.unwrap().expect("published");
    record.data["manifest"]["version"] = json!("1.1.0");
    store.put(record, Condition::Always).await.unwrap();

    let failed = install(&p, "financial", "1.0.0", &url).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["failure"]["step"], "validate");
    assert_eq!(
        failed["failure"]["reason"],
        "the stored manifest of financial 1.0.0 describes financial 1.1.0; the store's version \
         record is damaged, publish the version again under a new number"
    );
    let states = steps(&failed);
    assert_eq!(states[0], ("validate".into(), "failed".into()));
    assert!(
        states[1..].iter().all(|(_, status)| status == "pending"),
        "nothing after validate ran: {states:?}"
    );
    assert!(backend.hooks_called().is_empty(), "no hook was called");
    assert!(p.saw("module.install.failed").await);

    // The undamaged version installs, and says what it checked.
    let installed = install(&p, "financial", "1.1.0", &url).await;
    assert_eq!(installed["status"], "installed", "{installed}");
    assert_eq!(
        installed["steps"][0]["detail"],
        "financial 1.1.0 as published"
    );
}

async fn a_pre_install_hook_can_refuse_with_a_reason(p: TestPlatform) {
    let backend = Backend::default();
    backend.answer("pre_install", 409, json!({"reason": "needs schema v3"}));
    let url = backend.start().await;
    publish(&p, manifest("financial", "1.0.0", &[])).await;
    let refused = install(&p, "financial", "1.0.0", &url).await;
    assert_eq!(refused["status"], "failed");
    assert_eq!(refused["failure"]["step"], "pre_install");
    assert_eq!(
        refused["failure"]["reason"],
        "refused by financial: needs schema v3"
    );
    assert_eq!(
        backend.hooks_called(),
        ["pre_install"],
        "post_install never ran"
    );
}

async fn bad_install_requests_get_problem_documents(p: TestPlatform) {
    let backend = Backend::default();
    let url = backend.start().await;
    publish(&p, manifest("financial", "1.0.0", &[])).await;
    let path = "/api/v1/modules/financial/install";
    let unknown = p
        .call(
            Method::POST,
            path,
            operator(),
            Some(json!({"version": "9.9.9"})),
        )
        .await;
    unknown.expect_problem(
        StatusCode::NOT_FOUND,
        "financial has no published version 9.9.9",
    );
    let bad = p
        .call(
            Method::POST,
            path,
            operator(),
            Some(json!({"version": "one"})),
        )
        .await;
    bad.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "version");
    let endpoint = p
        .call(
            Method::POST,
            path,
            operator(),
            Some(json!({"version": "1.0.0", "endpoint": "ftp://x"})),
        )
        .await;
    endpoint.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "endpoint");
    let typo = p
        .call(
            Method::POST,
            path,
            operator(),
            Some(json!({"versoin": "1.0.0"})),
        )
        .await;
    typo.expect(StatusCode::UNPROCESSABLE_ENTITY);
    let not_admin = p
        .call(
            Method::POST,
            path,
            tenant_admin("acme"),
            Some(json!({"version": "1.0.0"})),
        )
        .await;
    not_admin.expect_problem(StatusCode::FORBIDDEN, "platform:admin");
    let unpublished = p
        .call(
            Method::POST,
            "/api/v1/modules/warehouse/install",
            operator(),
            Some(json!({"version": "1.0.0"})),
        )
        .await;
    unpublished.expect(StatusCode::NOT_FOUND);
    install(&p, "financial", "1.0.0", &url).await;
    let twice = p
        .call(
            Method::POST,
            path,
            operator(),
            Some(json!({"version": "1.0.0"})),
        )
        .await;
    twice.expect_problem(
        StatusCode::CONFLICT,
        "financial is already installed at 1.0.0",
    );
    let status = p
        .call(
            Method::GET,
            "/api/v1/modules/nothing/installation",
            operator(),
            None,
        )
        .await;
    status.expect_problem(StatusCode::NOT_FOUND, "nothing has never been installed");
}

/// A replaced ECS task never answers again: the health checker forgets it once it has been
/// unhealthy for long while another instance answers, instead of probing it every round.
async fn an_instance_unhealthy_for_long_beside_a_healthy_one_is_forgotten(p: TestPlatform) {
    let backend = Backend::default();
    let url = backend.start().await;
    publish(&p, manifest("financial", "1.0.0", &[])).await;
    let installed = install(&p, "financial", "1.0.0", &url).await;
    assert_eq!(installed["status"], "installed", "{installed}");

    let long_ago = (time::OffsetDateTime::now_utc() - time::Duration::minutes(20))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let replaced = |url: &str, since: &str| {
        plinth_registry::store::Item::new(
            keys::instance("financial", url),
            json!({"module": "financial", "url": url, "health_url": format!("{url}/health"),
                   "health": "unhealthy", "registered_by": "self", "last_checked": since,
                   "unhealthy_since": since})
            .as_object()
            .unwrap()
            .clone(),
        )
    };
    let just_now = plinth_registry::clock::now();
    for (dead, since) in [
        ("http://127.0.0.1:9", &long_ago),
        ("http://127.0.0.1:7", &just_now),
    ] {
        p.store
            .put(replaced(dead, since), Condition::Always)
            .await
            .unwrap();
    }

    p.app.plane.instances.check_health().await.unwrap();
    let listed = p
        .call(
            Method::GET,
            "/api/v1/modules/financial/instances",
            operator(),
            None,
        )
        .await;
    let urls: Vec<&str> = listed
        .expect(StatusCode::OK)
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["url"].as_str().unwrap())
        .collect();
    assert!(urls.contains(&url.as_str()), "{urls:?}");
    assert!(
        urls.contains(&"http://127.0.0.1:7"),
        "recently unhealthy instances are kept: {urls:?}"
    );
    assert!(
        !urls.contains(&"http://127.0.0.1:9"),
        "the long-dead one is forgotten: {urls:?}"
    );
}
