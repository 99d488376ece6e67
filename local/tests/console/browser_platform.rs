//! A platform admin's pages in headless Chromium (docs/console.md, "Administration"):
//! publish, install, upgrade, roll back and uninstall with the saga's steps; API keys; dead
//! letters. Every test fails on any error the browser's console logged but those it names.

use std::time::Duration;

use fantoccini::{Client, Locator};
use reqwest::Method;
use serde_json::json;

use crate::browser::{
    ONE_AT_A_TIME, WAIT, browser, chromedriver, click, console_errors, demo, screenshot, text_of,
    wait_for_text,
};
use crate::browser_admin::{choose, fits, sign_in_as_operator, type_into, usable, wait_for_all};
use crate::support::SignedIn;

/// A module with no backend of its own to start: installed with an `endpoint`, no hooks.
fn small_manifest(name: &str, subscribes: &serde_json::Value) -> serde_json::Value {
    json!({
        "name": name,
        "display_name": format!("The {name}"),
        "version": "0.1.0",
        "description": "A test module",
        "author": {"name": "Plinth tests", "email": "tests@example.invalid"},
        "backend": {
            "type": "lambda", "runtime": "provided.al2023", "framework": "axum",
            "entry_point": "bootstrap", "image": format!("plinth-{name}:0.1.0"), "memory": 128,
            "health_check": "/health", "api_prefix": format!("/api/v1/{name}")
        },
        "dependencies": {"platform_version": ">=2.0.0"},
        "permissions": [{"code": format!("{name}:things.read"), "description": "See things"}],
        "routes": [],
        "configuration": {"defaults": {}, "schema": {"type": "object"}},
        "events": {"subscribes": subscribes},
        "subscription_tier": "free",
        "category": "testing",
        "tags": ["test"]
    })
}

/// The steps of an install and of an uninstall without dropping data (installation.rs).
const INSTALL_STEPS: [&str; 9] = [
    "validate",
    "check_dependencies",
    "issue_api_key",
    "deploy",
    "pre_install",
    "create_tables",
    "register_permissions",
    "create_event_rules",
    "post_install",
];
const UNINSTALL_STEPS: [&str; 6] = [
    "pre_uninstall",
    "remove_event_rules",
    "unregister_permissions",
    "post_uninstall",
    "undeploy",
    "revoke_api_keys",
];

/// Publishes the manifest at `path` from the publish form and waits for it to say `said`.
async fn publish(browser: &Client, path: &std::path::Path, said: &str) {
    browser
        .find(Locator::Css("#publish-file"))
        .await
        .unwrap()
        .send_keys(path.to_str().unwrap())
        .await
        .unwrap();
    click(
        browser,
        "form[aria-labelledby=publish-title] button[type=submit]",
    )
    .await;
    wait_for_text(
        browser,
        "form[aria-labelledby=publish-title] [role=status]",
        said,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_admin_installs_a_module_and_watches_each_saga_step_then_uninstalls_it() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(driver) = chromedriver().await else {
        return;
    };
    let platform = demo().await;
    let manifest = platform.data.path().join("greeter-manifest.json");
    std::fs::write(&manifest, small_manifest("greeter", &json!([])).to_string()).unwrap();
    let browser = browser(&driver).await;
    sign_in_as_operator(&browser, &platform.url).await;
    click(&browser, "a[data-admin=lifecycle]").await;

    // Publishing nothing, then the manifest.
    click(
        &browser,
        "form[aria-labelledby=publish-title] button[type=submit]",
    )
    .await;
    wait_for_text(
        &browser,
        "form[aria-labelledby=publish-title] [role=status]",
        "Choose a manifest.json",
    )
    .await;
    publish(&browser, &manifest, "Published greeter 0.1.0.").await;
    wait_for_text(&browser, "#life-current", "Not installed.").await;

    // A backend that is already running (nothing listens there: the saga does not call it
    // when the manifest declares no hook).
    type_into(&browser, "#life-endpoint", "http://127.0.0.1:9").await;
    click(&browser, "button[data-op=install]").await;
    wait_for_text(&browser, "#steps-title", "install greeter 0.1.0: installed").await;
    let done = vec!["done"; INSTALL_STEPS.len()];
    wait_for_all(
        &browser,
        "#saga-steps [data-step]",
        "data-step",
        &INSTALL_STEPS,
    )
    .await;
    wait_for_all(
        &browser,
        "#saga-steps [data-step]",
        "data-step-status",
        &done,
    )
    .await;
    // Each step was said as it finished, in order.
    wait_for_all(
        &browser,
        "#saga-feed [data-feed]",
        "data-feed",
        &INSTALL_STEPS,
    )
    .await;
    let current = text_of(&browser, "#life-current").await;
    assert!(current.starts_with("Serving 0.1.0"), "{current}");
    screenshot(&browser, "install-steps").await;
    usable(&browser).await;
    fits(&browser, 375).await;
    browser.set_window_size(1440, 900).await.unwrap();

    // A second version: upgraded to, then rolled back from.
    let mut next = small_manifest("greeter", &json!([]));
    next["version"] = json!("0.2.0");
    let second = platform.data.path().join("greeter-0.2.0.json");
    std::fs::write(&second, next.to_string()).unwrap();
    publish(&browser, &second, "Published greeter 0.2.0.").await;
    choose(&browser, "#life-version", "0.2.0").await;
    click(&browser, "button[data-op=upgrade]").await;
    wait_for_text(&browser, "#steps-title", "upgrade greeter 0.2.0: installed").await;
    wait_for_text(&browser, "#life-current", "Serving 0.2.0").await;
    click(&browser, "button[data-op=rollback]").await;
    wait_for_text(
        &browser,
        "#steps-title",
        "rollback greeter 0.1.0: installed",
    )
    .await;
    wait_for_text(&browser, "#life-current", "Serving 0.1.0").await;

    click(&browser, "button[data-op=uninstall]").await;
    wait_for_text(
        &browser,
        "#steps-title",
        "uninstall greeter 0.1.0: uninstalled",
    )
    .await;
    let done = vec!["done"; UNINSTALL_STEPS.len()];
    wait_for_all(
        &browser,
        "#saga-steps [data-step]",
        "data-step",
        &UNINSTALL_STEPS,
    )
    .await;
    wait_for_all(
        &browser,
        "#saga-steps [data-step]",
        "data-step-status",
        &done,
    )
    .await;
    wait_for_all(
        &browser,
        "#saga-feed [data-feed]",
        "data-feed",
        &UNINSTALL_STEPS,
    )
    .await;
    let current = text_of(&browser, "#life-current").await;
    assert!(current.starts_with("Not serving"), "{current}");

    // Rolling back with no earlier version to go back to is refused, and said.
    click(&browser, "button[data-op=rollback]").await;
    let refused = text_of(
        &browser,
        "form[aria-labelledby=operate-title] [role=status] [role=alert]",
    )
    .await;
    assert!(
        refused.starts_with("409") || refused.starts_with("404"),
        "{refused}"
    );

    let errors = console_errors(
        &browser,
        &[
            "/greeter/installation - Failed to load resource: the server responded with a status of 404",
            "/greeter/rollback - Failed to load resource",
        ],
    )
    .await;
    assert!(errors.is_empty(), "the browser's console: {errors:#?}");
    browser.close().await.unwrap();
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_admin_issues_rotates_and_revokes_an_api_key_seeing_the_secret_once() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(driver) = chromedriver().await else {
        return;
    };
    let platform = demo().await;
    let browser = browser(&driver).await;
    sign_in_as_operator(&browser, &platform.url).await;
    click(&browser, "a[data-admin=api-keys]").await;
    choose(&browser, "#keys-module", "warehouse").await;
    // The key its install issued.
    text_of(&browser, "[data-table=keys] tbody tr").await;

    click(&browser, "button[data-key-op=issue]").await;
    let secret = browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#new-secret-value"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(secret.len() >= 32, "a key: {secret:?}");
    let issued = wait_for_issued(&browser).await;
    let row = text_of(&browser, &format!("tr[data-key=\"{issued}\"]")).await;
    assert!(row.contains("until revoked"), "{row}");
    assert!(
        !row.contains(&secret),
        "the list shows a prefix, never the key"
    );
    screenshot(&browser, "api-keys").await;
    usable(&browser).await;

    // Shown once: the page opened again has no trace of it.
    click(&browser, "a[data-admin=dead-letters]").await;
    click(&browser, "a[data-admin=api-keys]").await;
    choose(&browser, "#keys-module", "warehouse").await;
    text_of(&browser, &format!("tr[data-key=\"{issued}\"]")).await;
    let page = browser.source().await.unwrap();
    assert!(!page.contains(&secret), "the secret is gone from the page");
    assert!(
        browser
            .find(Locator::Css("#new-secret-value"))
            .await
            .is_err()
    );

    // A rotation's grace longer than a year is refused beside its field.
    type_into(&browser, "#keys-grace", "99999999").await;
    click(&browser, "button[data-key-op=rotate]").await;
    let refused = text_of(&browser, "[data-problem-for=keys-grace]").await;
    assert!(refused.contains("more than a year"), "{refused}");
    type_into(&browser, "#keys-grace", "600").await;
    click(&browser, "button[data-key-op=rotate]").await;
    let rotated = wait_for_text(&browser, "form [role=status]", "stop working in 600 s").await;
    let rotated_id = browser
        .find(Locator::Css("form [role=status]"))
        .await
        .unwrap()
        .attr("data-issued")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        rotated.contains(&rotated_id) && rotated_id != issued,
        "{rotated}"
    );
    let old = text_of(&browser, &format!("tr[data-key=\"{issued}\"]")).await;
    assert!(
        !old.contains("until revoked"),
        "the older key now expires: {old}"
    );
    let new = text_of(&browser, &format!("tr[data-key=\"{rotated_id}\"]")).await;
    assert!(new.contains("until revoked"), "{new}");

    // Revoke asks twice.
    let revoke = format!("button[data-revoke=\"{rotated_id}\"]");
    click(&browser, &revoke).await;
    wait_for_text(&browser, &revoke, "Confirm revoke").await;
    click(&browser, &revoke).await;
    wait_for_text(&browser, "form [role=status]", "revoked").await;
    let deadline = std::time::Instant::now() + WAIT;
    while browser
        .find(Locator::Css(&format!("tr[data-key=\"{rotated_id}\"]")))
        .await
        .is_ok()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the revoked key is still listed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fits(&browser, 1440).await;
    fits(&browser, 375).await;

    let errors = console_errors(
        &browser,
        &["/warehouse/api-keys - Failed to load resource: the server responded with a status of 422"],
    )
    .await;
    assert!(errors.is_empty(), "the browser's console: {errors:#?}");
    browser.close().await.unwrap();
    platform.stop().await;
}

/// The id of the key the API-keys page just issued (its status says it).
async fn wait_for_issued(browser: &Client) -> String {
    wait_for_text(browser, "form [role=status]", "Issued key").await;
    browser
        .find(Locator::Css("form [role=status]"))
        .await
        .unwrap()
        .attr("data-issued")
        .await
        .unwrap()
        .expect("the issued key's id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_admin_replays_a_dead_letter() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(driver) = chromedriver().await else {
        return;
    };
    let platform = demo().await;
    // A module whose backend is down when acme enables it: the platform's event about that
    // fails every retry and is dead-lettered.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let operator = SignedIn::as_user(&platform.url, "operator").await;
    let subscribes = json!([{
        "name": "enabled",
        "pattern": {"source": ["plinth.registry"], "detail-type": ["tenant.module.enabled"]},
        "path": "/_plinth/events/enabled"
    }]);
    let (status, body) = operator
        .call(
            Method::POST,
            "/v1/modules",
            Some(small_manifest("listener", &subscribes)),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let install = json!({"version": "0.1.0", "endpoint": format!("http://127.0.0.1:{port}")});
    let (status, body) = operator
        .call(Method::POST, "/v1/modules/listener/install", Some(install))
        .await;
    assert_eq!(status, 202, "{body}");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, installation) = operator
            .call(Method::GET, "/v1/modules/listener/installation", None)
            .await;
        if installation["status"] == "installed" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{installation}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let alice = SignedIn::as_user(&platform.url, "alice").await;
    let (status, body) = alice
        .call(
            Method::PUT,
            "/v1/tenants/acme/modules/listener",
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, letters) = operator.call(Method::GET, "/v1/dead-letters", None).await;
        if letters.as_array().is_some_and(|l| !l.is_empty()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no dead letter: {letters}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let browser = browser(&driver).await;
    sign_in_as_operator(&browser, &platform.url).await;
    click(&browser, "a[data-admin=dead-letters]").await;
    let row = text_of(&browser, "[data-table=dead-letters] tbody tr").await;
    assert!(
        row.contains("listener") && row.contains("tenant.module.enabled"),
        "{row}"
    );
    screenshot(&browser, "dead-letters").await;
    usable(&browser).await;
    fits(&browser, 375).await;
    browser.set_window_size(1440, 900).await.unwrap();

    // The backend is up now: the replay delivers it, and the list is empty.
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = received.clone();
    let backend = axum::Router::new().fallback(move || {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            "ok"
        }
    });
    let socket = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let server = tokio::spawn(async move { axum::serve(socket, backend).await });
    click(&browser, "#replay").await;
    wait_for_text(
        &browser,
        "#main [role=status]",
        "Replayed: 1 delivered, 0 failed again.",
    )
    .await;
    wait_for_text(&browser, "#main", "No dead letters").await;
    assert!(
        received.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the backend got it"
    );
    server.abort();

    let errors = console_errors(&browser, &[]).await;
    assert!(errors.is_empty(), "the browser's console: {errors:#?}");
    browser.close().await.unwrap();
    platform.stop().await;
}
