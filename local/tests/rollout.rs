//! Staged rollouts under a real `plinth up --demo`: the example financial module at 1.2.0
//! serving acme and globex, 1.3.0 installed alongside, tenants moved through the API and the
//! CLI, requests going through the gateway — whose figures per version the rollout driver
//! judges — and the platform stopped and started again mid-rollout.
//!
//! A failing 1.3.0 is the example's manifest with `FINANCIAL_TEST_FAIL_STATUS` in its
//! `backend.env`: every API route of that backend answers that status, its health check
//! still passes.

#[path = "support/up.rs"]
mod up;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use up::{Store, Up, call, mint, settled, workspace_root};

/// Demo up, tenant globex with the module too, and financial 1.3.0 (its manifest changed by
/// `change`) installed alongside 1.2.0. Returns (url, operator's token, acme's, globex's).
async fn platform_with_two_versions(
    up: &Up,
    url: &str,
    data: &Path,
    change: impl FnOnce(&mut Value),
) -> (String, String, String) {
    let secret = plinth_local::platform::jwt_secret(data).expect("a secret");
    let acme = plinth_local::platform::demo_token(&secret).expect("the demo's token");
    let operator = mint(&secret, "ops", None, &["platform:admin"]);
    let globex = mint(&secret, "globex-admin", Some("globex"), &["tenant:admin"]);
    wait_for_demo(up, url, &acme).await;
    let (status, tenant) = call(
        url,
        &operator,
        "POST",
        "/api/v1/tenants",
        Some(&json!({"id": "globex", "name": "Globex", "subscription_tier": "premium"})),
    )
    .await;
    assert_eq!(status, 201, "{tenant}");
    let (status, company) = call(
        url,
        &globex,
        "POST",
        "/api/v1/tenants/globex/companies",
        Some(&json!({"id": "globex-hq", "name": "Globex HQ", "country": "US"})),
    )
    .await;
    assert_eq!(status, 201, "{company}");
    let (status, enabled) = call(
        url,
        &globex,
        "PUT",
        "/api/v1/tenants/globex/modules/financial",
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, 200, "{enabled}");
    let path = workspace_root().join("examples/financial/manifest.json");
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("the manifest")).expect("JSON");
    manifest["version"] = json!("1.3.0");
    manifest["configuration"]["defaults"]["invoice_prefix"] = json!("V13");
    change(&mut manifest);
    let (status, published) =
        call(url, &operator, "POST", "/api/v1/modules", Some(&manifest)).await;
    assert_eq!(status, 201, "{published}");
    let (status, started) = call(
        url,
        &operator,
        "POST",
        "/api/v1/modules/financial/install",
        Some(&json!({"version": "1.3.0", "alongside": true})),
    )
    .await;
    assert_eq!(status, 202, "{started}");
    let alongside = settled(
        up,
        url,
        &operator,
        "/api/v1/modules/financial/installation?version=1.3.0",
    )
    .await;
    assert_eq!(
        alongside["status"],
        "installed",
        "{alongside}\n{}",
        up.log_text()
    );
    (operator, acme, globex)
}

/// Ready when the demo says so (its companies' configuration is stored last) and the gateway
/// serves.
async fn wait_for_demo(up: &Up, url: &str, acme: &str) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !up.log_text().contains("Demo ready")
        || call(url, acme, "GET", "/api/v1/financial/invoices", None)
            .await
            .0
            != 200
    {
        assert!(
            Instant::now() < deadline,
            "the demo is not up:\n{}",
            up.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Polls rollout `id` of financial until `done` says so of it.
async fn rollout_until(
    up: &Up,
    url: &str,
    operator: &str,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (_, rollout) = call(
            url,
            operator,
            "GET",
            &format!("/api/v1/modules/financial/rollouts/{id}"),
            None,
        )
        .await;
        if done(&rollout) {
            return rollout;
        }
        assert!(
            Instant::now() < deadline,
            "the rollout is not {what}: {rollout}\n{}",
            up.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_answering_5xx_through_the_gateway_is_rolled_back_on_its_own_and_the_cli_says_so()
{
    canary_answering_5xx_is_rolled_back(Store::Embedded).await;
}

/// The same under `plinth up --aws`: rollouts, pins and figures over DynamoDB and EventBridge
/// (the emulator), the backends local processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_aws_a_canary_answering_5xx_through_the_gateway_is_rolled_back_on_its_own() {
    if up::emulator_is_running() {
        canary_answering_5xx_is_rolled_back(Store::Aws).await;
    }
}

async fn canary_answering_5xx_is_rolled_back(store: Store) {
    let root = tempfile::tempdir().expect("a temporary folder");
    let data = root.path().join("data");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let up = Up::start_on(store, &data, port).await;
    let (operator, acme, globex) = platform_with_two_versions(&up, &url, &data, |manifest| {
        manifest["backend"]["env"]["FINANCIAL_TEST_FAIL_STATUS"] = json!("503");
    })
    .await;

    // The CLI starts the rollout and follows it; meanwhile acme and globex keep working.
    let cli = tokio::process::Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args([
            "module",
            "rollout",
            "financial",
            "1.3.0",
            "--waves",
            "canary:acme,100%",
            "--bake",
            "5m",
            "--min-requests",
            "5",
            "--url",
            &url,
            "--token",
            &operator,
        ])
        .stdin(Stdio::null())
        .output();
    let cli = tokio::spawn(cli);
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut answered_5xx = 0;
    loop {
        let (status, _) = call(&url, &acme, "GET", "/api/v1/financial/invoices", None).await;
        if status == 503 {
            answered_5xx += 1;
        }
        let (_, listed) = call(
            &url,
            &operator,
            "GET",
            "/api/v1/modules/financial/rollouts",
            None,
        )
        .await;
        if listed[0]["state"] == "rolled_back" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not rolled back: {listed}\n{}",
            up.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        answered_5xx >= 5,
        "acme saw the canary's 503s: {answered_5xx}"
    );
    let finished = cli.await.expect("the CLI ran").expect("the CLI ran");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&finished.stdout),
        String::from_utf8_lossy(&finished.stderr),
    );
    assert_eq!(finished.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("wave 1 (canary:acme) baking: acme"),
        "{stdout}"
    );
    assert!(
        stderr.contains("rolled_back")
            && stderr.contains("answered 5xx) is above the 5.0% allowed"),
        "{stderr}"
    );

    // Acme is back on 1.2.0 with its invoices; globex never left it.
    let (status, invoices) = call(&url, &acme, "GET", "/api/v1/financial/invoices", None).await;
    assert_eq!(status, 200, "{invoices}");
    let (status, invoice) = call(
        &url,
        &globex,
        "POST",
        "/api/v1/financial/invoices",
        Some(&json!({"customer": "Hooli", "amount": 250})),
    )
    .await;
    assert_eq!(
        (status, &invoice["number"]),
        (201, &json!("INV-1")),
        "{invoice}"
    );
    let (_, pin) = call(
        &url,
        &operator,
        "GET",
        "/api/v1/tenants/acme/modules/financial/pin",
        None,
    )
    .await;
    assert_eq!(
        (&pin["version"], &pin["pinned"]),
        (&json!("1.2.0"), &Value::Null),
        "{pin}"
    );
    let (status, audit) = call(&url, &operator, "GET", "/api/v1/tenants/acme/audit", None).await;
    assert_eq!(status, 200, "{audit}");
    let back = audit["records"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["action"] == "module.rollout.rolled_back")
        .unwrap_or_else(|| panic!("no audit record: {audit}"));
    assert!(
        back["detail"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("5xx")),
        "{back}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_carries_on_after_plinth_up_is_stopped_and_started_again() {
    let root = tempfile::tempdir().expect("a temporary folder");
    let data = root.path().join("data");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let up = Up::start(&data, port);
    let (operator, acme, globex) = platform_with_two_versions(&up, &url, &data, |_| {}).await;
    let (status, started) = call(
        &url,
        &operator,
        "POST",
        "/api/v1/modules/financial/rollouts",
        Some(&json!({"version": "1.3.0", "waves": "canary:acme,100%", "bake_seconds": 4})),
    )
    .await;
    assert_eq!(status, 201, "{started}");
    let id = started["id"].as_str().expect("an id").to_owned();
    rollout_until(&up, &url, &operator, &id, "baking its canary", |r| {
        r["waves"][0]["state"] == "baking"
    })
    .await;

    // Stopped mid-bake, started again on the same data: the rollout carries on.
    drop(up);
    let up = Up::start(&data, port);
    wait_for_demo(&up, &url, &acme).await;
    let done = rollout_until(&up, &url, &operator, &id, "completed", |r| {
        r["state"] == "completed" || r["state"] == "rolled_back"
    })
    .await;
    assert_eq!(done["state"], "completed", "{done}\n{}", up.log_text());
    assert_eq!(done["waves"][1]["tenants"], json!(["globex"]));
    let (status, invoice) = call(
        &url,
        &globex,
        "POST",
        "/api/v1/financial/invoices",
        Some(&json!({"customer": "Hooli", "amount": 250})),
    )
    .await;
    assert_eq!(
        (status, &invoice["number"]),
        (201, &json!("V13-1")),
        "{invoice}"
    );
    let (_, versions) = call(
        &url,
        &operator,
        "GET",
        "/api/v1/modules/financial/installed-versions",
        None,
    )
    .await;
    assert_eq!(versions["default_version"], "1.3.0", "{versions}");
}
