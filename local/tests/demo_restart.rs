//! `plinth up --demo` stopped (SIGTERM) and started again on the same data folder keeps what
//! modules wrote: the examples keep their data in their declared tables (the SDK's embedded
//! file `{data_dir}/tables/{module}.redb`, `PLINTH_TABLES_DIR`), not in their processes'
//! memory.

#[path = "support/up.rs"]
mod up;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use up::{Up, call, workspace_root};

/// Waits until this start of the demo has printed its banner (so the companies' configuration
/// is in place: an invoice issued before it is numbered by the tenant's) and its financial and
/// warehouse modules answer acme's lists.
async fn ready(up: &mut Up, url: &str, token: &str) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (invoices, _) = call(url, token, "GET", "/api/v1/financial/invoices", None).await;
        let (items, _) = call(url, token, "GET", "/api/v1/warehouse/items", None).await;
        if (invoices, items) == (200, 200) && up.demo_ready() {
            return;
        }
        if let Some(status) = up.exited() {
            panic!("plinth up exited ({status}):\n{}", up.log_text());
        }
        assert!(
            Instant::now() < deadline,
            "the demo is not up:\n{}",
            up.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A data folder of its own, a free port, and the secret `plinth up` will find in the folder
/// with the demo's token signed by it.
struct Demo {
    _root: tempfile::TempDir,
    data: PathBuf,
    port: u16,
    url: String,
    secret: String,
    token: String,
}

impl Demo {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("a temporary folder");
        let data = root.path().join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let secret = plinth_local::platform::jwt_secret(&data).expect("a secret");
        let token = plinth_local::platform::demo_token(&secret).expect("the demo's token");
        Self {
            _root: root,
            data,
            port,
            url: format!("http://127.0.0.1:{port}"),
            secret,
            token,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoices_survive_a_restart_of_plinth_up_demo() {
    let demo = Demo::new();
    let (data, port) = (demo.data.clone(), demo.port);
    let (url, token) = (demo.url.clone(), demo.token.clone());

    let mut up = Up::start(&data, port);
    ready(&mut up, &url, &token).await;
    let invoice = json!({"customer": "Globex", "amount": 1000});
    let (status, created) = call(
        &url,
        &token,
        "POST",
        "/api/v1/financial/invoices",
        Some(&invoice),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["number"], "ACME-DE-1");
    let item = json!({"sku": "bolt-m8", "name": "Bolt M8", "quantity": 40});
    let (status, stocked) =
        call(&url, &token, "POST", "/api/v1/warehouse/items", Some(&item)).await;
    assert_eq!(status, 201, "{stocked}");
    up.stop();
    assert!(
        data.join("tables/financial.redb").is_file(),
        "the module's tables are a file of the data folder"
    );

    let mut up = Up::start(&data, port);
    ready(&mut up, &url, &token).await;
    let (status, kept) = call(
        &url,
        &token,
        "GET",
        "/api/v1/financial/invoices/ACME-DE-1",
        None,
    )
    .await;
    assert_eq!(status, 200, "the invoice is still there: {kept}");
    assert_eq!(kept, created, "as it was created");
    let (status, next) = call(
        &url,
        &token,
        "POST",
        "/api/v1/financial/invoices",
        Some(&invoice),
    )
    .await;
    assert_eq!(
        (status, &next["number"]),
        (201, &json!("ACME-DE-2")),
        "numbering goes on: {next}"
    );
    let (_, all) = call(&url, &token, "GET", "/api/v1/financial/invoices", None).await;
    assert_eq!(all.as_array().map(Vec::len), Some(2), "{all}");
    let (status, kept) = call(&url, &token, "GET", "/api/v1/warehouse/items/bolt-m8", None).await;
    assert_eq!(
        (status, &kept),
        (200, &stocked),
        "the warehouse keeps its stock too"
    );
    up.stop();
}

/// Review finding: a module with tables could not be upgraded on one machine — the next
/// version's process started while the previous one still held the tables' file, could not
/// open it, and the upgrade failed. The previous version now stops first; the data stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_with_tables_upgrades_on_one_machine_and_keeps_its_data() {
    let demo = Demo::new();
    let (data, port) = (demo.data.clone(), demo.port);
    let (url, token, secret) = (demo.url.clone(), demo.token.clone(), demo.secret.clone());
    let operator = plinth_registry::identity::mint_token(
        secret.as_bytes(),
        &plinth_registry::identity::Claims::user(
            "ops",
            None,
            None,
            &["platform:admin"],
            Duration::from_secs(600),
        ),
    )
    .expect("an operator's token");

    let mut up = Up::start(&data, port);
    ready(&mut up, &url, &token).await;
    let invoice = json!({"customer": "Globex", "amount": 1000});
    let (status, created) = call(
        &url,
        &token,
        "POST",
        "/api/v1/financial/invoices",
        Some(&invoice),
    )
    .await;
    assert_eq!(status, 201, "{created}");

    let path = workspace_root().join("examples/financial/manifest.json");
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("the manifest")).expect("JSON");
    manifest["version"] = json!("1.2.1");
    let (status, published) =
        call(&url, &operator, "POST", "/api/v1/modules", Some(&manifest)).await;
    assert_eq!(status, 201, "{published}");
    let (status, asked) = call(
        &url,
        &operator,
        "POST",
        "/api/v1/modules/financial/upgrade",
        Some(&json!({"version": "1.2.1"})),
    )
    .await;
    assert_eq!(status, 202, "{asked}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, installation) = call(
            &url,
            &operator,
            "GET",
            "/api/v1/modules/financial/installation",
            None,
        )
        .await;
        if installation["status"] == "installed" && installation["version"] == "1.2.1" {
            break;
        }
        assert!(
            installation["status"] != "failed" && Instant::now() < deadline,
            "the upgrade did not finish: {installation}\n{}",
            up.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ready(&mut up, &url, &token).await;
    let (status, kept) = call(
        &url,
        &token,
        "GET",
        "/api/v1/financial/invoices/ACME-DE-1",
        None,
    )
    .await;
    assert_eq!(
        (status, &kept),
        (200, &created),
        "the invoice, after the upgrade"
    );
    up.stop();
}
