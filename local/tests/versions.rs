//! Two versions of the example financial module side by side under a real `plinth up --demo`,
//! each tenant served by its own: installed alongside, pinned, unpinned and uninstalled
//! through the API, with requests going through the gateway.
//!
//! What shows which version served a request: the version's resolved configuration (1.3.0 is
//! published here with another default invoice prefix), and, on one machine, its own tables
//! file (cli.md, "Versions side by side on one machine").

#[path = "support/up.rs"]
mod up;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use up::{Store, Up, call, mint, settled, workspace_root};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_versions_serve_two_tenants_at_once_through_the_gateway() {
    two_versions_serve_two_tenants(Store::Embedded).await;
}

/// The same under `plinth up --aws`: the control plane in DynamoDB and the bus on EventBridge
/// (the emulator), the two versions' backends local processes sharing the module's DynamoDB
/// tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_aws_two_versions_serve_two_tenants_at_once_through_the_gateway() {
    if up::emulator_is_running() {
        two_versions_serve_two_tenants(Store::Aws).await;
    }
}

async fn two_versions_serve_two_tenants(store: Store) {
    let root = tempfile::tempdir().expect("a temporary folder");
    let data = root.path().join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let secret = plinth_local::platform::jwt_secret(&data).expect("a secret");
    let acme = plinth_local::platform::demo_token(&secret).expect("the demo's token");
    let operator = mint(&secret, "ops", None, &["platform:admin"]);
    let globex = mint(&secret, "globex-admin", Some("globex"), &["tenant:admin"]);

    let up = Up::start_on(store, &data, port).await;
    // Ready when the demo says so (its companies' configuration is stored last) and the
    // gateway serves.
    let deadline = Instant::now() + Duration::from_secs(600);
    while !up.log_text().contains("Demo ready")
        || call(&url, &acme, "GET", "/api/v1/financial/invoices", None)
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
    let (status, created) = call(
        &url,
        &acme,
        "POST",
        "/api/v1/financial/invoices",
        Some(&json!({"customer": "Initech", "amount": 100})),
    )
    .await;
    assert_eq!(
        (status, &created["number"]),
        (201, &json!("ACME-DE-1")),
        "{created}"
    );
    let (status, tenant) = call(
        &url,
        &operator,
        "POST",
        "/api/v1/tenants",
        Some(&json!({"id": "globex", "name": "Globex", "subscription_tier": "premium"})),
    )
    .await;
    assert_eq!(status, 201, "{tenant}");
    let (status, company) = call(
        &url,
        &globex,
        "POST",
        "/api/v1/tenants/globex/companies",
        Some(&json!({"id": "globex-hq", "name": "Globex HQ", "country": "US"})),
    )
    .await;
    assert_eq!(status, 201, "{company}");
    let (status, enabled) = call(
        &url,
        &globex,
        "PUT",
        "/api/v1/tenants/globex/modules/financial",
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, 200, "{enabled}");

    // 1.3.0: the example's manifest with another default invoice prefix, installed beside 1.2.0.
    let path = workspace_root().join("examples/financial/manifest.json");
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("the manifest")).expect("JSON");
    manifest["version"] = json!("1.3.0");
    manifest["configuration"]["defaults"]["invoice_prefix"] = json!("V13");
    let (status, published) =
        call(&url, &operator, "POST", "/api/v1/modules", Some(&manifest)).await;
    assert_eq!(status, 201, "{published}");
    let (status, started) = call(
        &url,
        &operator,
        "POST",
        "/api/v1/modules/financial/install",
        Some(&json!({"version": "1.3.0", "alongside": true})),
    )
    .await;
    assert_eq!(status, 202, "{started}");
    let alongside = settled(
        &up,
        &url,
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
    let first = settled(
        &up,
        &url,
        &operator,
        "/api/v1/modules/financial/installation",
    )
    .await;
    assert_eq!(
        (&first["status"], &first["installed_version"]),
        (&json!("installed"), &json!("1.2.0"))
    );
    assert_ne!(
        first["deployment"]["endpoint"], alongside["deployment"]["endpoint"],
        "two backends"
    );

    let (status, pinned) = call(
        &url,
        &operator,
        "PUT",
        "/api/v1/tenants/globex/modules/financial/pin",
        Some(&json!({"version": "1.3.0"})),
    )
    .await;
    assert_eq!(
        (status, &pinned["version"]),
        (200, &json!("1.3.0")),
        "{pinned}"
    );

    // Both tenants at once: acme on 1.2.0, globex on 1.3.0 (its default prefix).
    let invoice = json!({"customer": "Hooli", "amount": 250});
    let (on_first, on_second) = tokio::join!(
        call(
            &url,
            &acme,
            "POST",
            "/api/v1/financial/invoices",
            Some(&invoice)
        ),
        call(
            &url,
            &globex,
            "POST",
            "/api/v1/financial/invoices",
            Some(&invoice)
        ),
    );
    assert_eq!(
        (on_first.0, &on_first.1["number"]),
        (201, &json!("ACME-DE-2")),
        "{}",
        on_first.1
    );
    assert_eq!(
        (on_second.0, &on_second.1["number"]),
        (201, &json!("V13-1")),
        "{}",
        on_second.1
    );
    let (status, _) = call(
        &url,
        &acme,
        "GET",
        "/api/v1/financial/invoices/ACME-DE-1",
        None,
    )
    .await;
    assert_eq!(status, 200, "acme's invoice is on 1.2.0");

    // Acme pinned to 1.3.0: its requests go to that backend, whose tables are its own on the
    // embedded store (one file per backend) and the module's on DynamoDB; unpinned, acme is
    // back on 1.2.0 with its invoices.
    let (status, _) = call(
        &url,
        &operator,
        "PUT",
        "/api/v1/tenants/acme/modules/financial/pin",
        Some(&json!({"version": "1.3.0"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &url,
        &acme,
        "GET",
        "/api/v1/financial/invoices/ACME-DE-1",
        None,
    )
    .await;
    match store {
        Store::Embedded => assert_eq!(status, 404, "1.3.0's backend does not have 1.2.0's tables"),
        Store::Aws => assert_eq!(
            status, 200,
            "both versions read the module's DynamoDB tables"
        ),
    }
    let (status, _) = call(
        &url,
        &operator,
        "DELETE",
        "/api/v1/tenants/acme/modules/financial/pin",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, kept) = call(
        &url,
        &acme,
        "GET",
        "/api/v1/financial/invoices/ACME-DE-1",
        None,
    )
    .await;
    assert_eq!((status, &kept), (200, &created), "back on 1.2.0");

    // 1.3.0 goes; the tenant pinned to it is refused that until unpinned, then 1.2.0 serves all.
    let (status, refused) = call(
        &url,
        &operator,
        "DELETE",
        "/api/v1/modules/financial/installation?version=1.3.0",
        None,
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    let (status, _) = call(
        &url,
        &operator,
        "DELETE",
        "/api/v1/tenants/globex/modules/financial/pin",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, asked) = call(
        &url,
        &operator,
        "DELETE",
        "/api/v1/modules/financial/installation?version=1.3.0",
        None,
    )
    .await;
    assert_eq!(status, 202, "{asked}");
    let gone = settled(
        &up,
        &url,
        &operator,
        "/api/v1/modules/financial/installation?version=1.3.0",
    )
    .await;
    assert_eq!(gone["status"], "uninstalled", "{gone}");
    let (on_first, on_second) = tokio::join!(
        call(
            &url,
            &acme,
            "GET",
            "/api/v1/financial/invoices/ACME-DE-1",
            None
        ),
        call(
            &url,
            &globex,
            "POST",
            "/api/v1/financial/invoices",
            Some(&invoice)
        ),
    );
    assert_eq!(on_first.0, 200, "{}", on_first.1);
    // Globex's invoice counter is in the backend's tables: 1.2.0's own file on one machine, the
    // module's DynamoDB table (where 1.3.0 counted V13-1) with `--aws`.
    let number = match store {
        Store::Embedded => "INV-1",
        Store::Aws => "INV-2",
    };
    assert_eq!(
        (on_second.0, &on_second.1["number"]),
        (201, &json!(number)),
        "{}",
        on_second.1
    );
}
