//! The example modules under the platform on one machine, as `plinth up --demo` runs them:
//! each backend started from its manifest's `dev_command`, reached only through the gateway
//! with a user's token. An invoice of acme's German company takes that company's
//! configuration, and paying it reaches the notifications module over the local bus.

use std::time::Duration;

use plinth_local::platform::{self, Options};
use plinth_tests::workspace_root;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `plinth up --demo` on a fresh data folder, served until `stop` is sent.
struct Demo {
    _data: tempfile::TempDir,
    addr: String,
    demo: platform::Demo,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Demo {
    async fn start() -> Self {
        let data = tempfile::tempdir().expect("a temporary folder");
        let options = Options {
            port: 0,
            data_dir: data.path().to_path_buf(),
            demo: true,
            aws: None,
            working_dir: workspace_root(),
        };
        let running = platform::start(&options)
            .await
            .expect("the platform starts");
        let addr = running.addr.to_string();
        let demo = running.demo();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(running.serve(async {
            let _ = stopped.await;
        }));
        Self {
            _data: data,
            addr,
            demo,
            stop,
            server,
        }
    }
}

/// One HTTP/1.0 exchange (no keep-alive, no chunking): the status and the JSON body.
async fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(addr).await.expect("the gateway accepts");
    stream.write_all(request.as_bytes()).await.expect("sent");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("an answer");
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acme_de_invoice_uses_its_company_config_and_its_payment_is_notified() {
    let Demo {
        _data,
        addr,
        demo,
        stop,
        server,
    } = Demo::start().await;
    let report = demo
        .run(&workspace_root().join("examples"))
        .await
        .expect("the demo is set up");
    let token = report.token;

    let invoice = json!({"customer": "Globex", "amount": 1000});
    let (status, created) = http(
        &addr,
        "POST",
        "/api/v1/financial/invoices",
        &token,
        Some(&invoice),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["number"], "ACME-DE-1");
    assert_eq!(created["currency"], "EUR");
    assert_eq!(
        created["tax_rate"],
        json!(0.19),
        "the German company's rate"
    );

    let payment = json!({"amount": created["total"]});
    let (status, paid) = http(
        &addr,
        "POST",
        "/api/v1/financial/invoices/ACME-DE-1/payments",
        &token,
        Some(&payment),
    )
    .await;
    assert_eq!((status, &paid["status"]), (200, &json!("paid")), "{paid}");

    let mut sent = Value::Null;
    for _ in 0..100 {
        sent = http(&addr, "GET", "/api/v1/notifications/sent", &token, None)
            .await
            .1;
        if sent.as_array().is_some_and(|s| !s.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sent[0]["to"], "Globex", "{sent}");
    assert_eq!(sent[0]["company_id"], "acme-de");
    assert!(
        sent[0]["subject"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Invoice ACME-DE-1 is paid")
    );

    let _ = stop.send(());
    server
        .await
        .expect("the server task")
        .expect("served and stopped its backends");
}

/// Finding 6 of "The first hour": starting `plinth up --demo` again seeds only what is missing;
/// a tenant admin's configuration, and the German company's override, stay as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_the_demo_keeps_a_tenant_admins_configuration() {
    let Demo {
        _data,
        addr,
        demo,
        stop,
        server,
    } = Demo::start().await;
    let examples = workspace_root().join("examples");
    let token = demo.run(&examples).await.expect("the demo is set up").token;

    let mine = json!({"enabled": true, "configuration":
        {"currency": "USD", "tax_rate": 0.07, "invoice_prefix": "ACME"}});
    let (status, changed) = http(
        &addr,
        "PUT",
        "/api/v1/tenants/acme/modules/financial",
        &token,
        Some(&mine),
    )
    .await;
    assert_eq!(status, 200, "{changed}");

    // The demo seeding again, as a restart of `plinth up --demo` does.
    demo.run(&examples).await.expect("the demo runs again");

    let config = |company: &'static str| {
        let (addr, token) = (addr.clone(), token.clone());
        async move {
            http(
                &addr,
                "GET",
                &format!("/api/v1/tenants/acme/modules/financial/config?company={company}"),
                &token,
                None,
            )
            .await
        }
    };
    let (status, us) = config("acme-us").await;
    assert_eq!(status, 200, "{us}");
    let us = &us["configuration"];
    assert_eq!(
        (&us["currency"], &us["tax_rate"]),
        (&json!("USD"), &json!(0.07)),
        "{us}"
    );
    let (_, de) = config("acme-de").await;
    let de = &de["configuration"];
    assert_eq!(
        de["invoice_prefix"], "ACME-DE",
        "the company's override is kept: {de}"
    );

    let _ = stop.send(());
    server
        .await
        .expect("the server task")
        .expect("served and stopped its backends");
}
