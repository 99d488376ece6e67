//! "The first hour", findings 8, 9 and 11 end to end: the CLI reads what it can change (list
//! and show for every noun, `--json` for scripts), sets one configuration key without replacing
//! the others, names the closest match for a name that is not found, and tells an install's
//! failure once, before what was undone. A real platform in this process, driven through the
//! built `plinth` binary.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use plinth_local::platform::{self, Options};
use plinth_tests::{Run, run_plinth_with_env};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

struct Fixture {
    _runtime: Runtime,
    url: String,
    addr: SocketAddr,
    backend: String,
    data_dir: PathBuf,
    dir: tempfile::TempDir,
    token: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Fixture {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join(".plinth");
        let runtime = Runtime::new().expect("runtime");
        let options = Options {
            port: 0,
            data_dir: data_dir.clone(),
            demo: false,
            aws: None,
            working_dir: dir.path().to_path_buf(),
        };
        let running = runtime
            .block_on(platform::start(&options))
            .expect("the platform starts");
        let addr = running.addr;
        let (stop, stopped) = oneshot::channel::<()>();
        runtime.spawn(running.serve(async {
            let _ = stopped.await;
        }));
        let backend = format!("http://{}", runtime.block_on(module_backend()));
        let mut fixture = Fixture {
            _runtime: runtime,
            url: format!("http://{addr}"),
            addr,
            backend,
            data_dir,
            dir,
            token: String::new(),
            stop: Some(stop),
        };
        let data_dir = fixture.data_dir.display().to_string();
        let args = [
            "token",
            "--roles",
            "platform:admin",
            "--data-dir",
            &data_dir,
        ];
        let run = run_plinth_with_env(fixture.dir.path(), &args, &[]);
        fixture.token = ok(&run).trim().to_owned();
        fixture
    }

    /// `plinth ARGS --url … --token …` as the platform admin.
    fn plinth(&self, args: &[&str]) -> Run {
        let mut all = args.to_vec();
        all.extend(["--url", &self.url, "--token", &self.token]);
        run_plinth_with_env(self.dir.path(), &all, &[])
    }

    fn write(&self, name: &str, content: &Value) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content.to_string()).expect("writes");
        path.display().to_string()
    }

    /// A `PUT` the CLI has no command for (a role, an assignment), over plain HTTP/1.1.
    fn put(&self, path: &str, body: &Value) -> String {
        let body = body.to_string();
        let mut stream = std::net::TcpStream::connect(self.addr).expect("connects");
        write!(
            stream,
            "PUT {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            self.token,
            body.len()
        )
        .expect("sends");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("reads");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        answer
    }

    /// greeter 1.0.0 published and installed, tenant acme with greeter (currency EUR), company
    /// acme-de, a role `accountant` held by bob.
    fn set_up(&self) {
        let manifest = self.write("manifest.json", &manifest());
        ok(&self.plinth(&["module", "publish", &manifest]));
        let install = [
            "module",
            "install",
            "greeter",
            "--version",
            "1.0.0",
            "--endpoint",
            &self.backend,
        ];
        ok(&self.plinth(&install));
        ok(&self.plinth(&[
            "tenant", "create", "acme", "--name", "Acme", "--tier", "premium",
        ]));
        let enable = [
            "tenant",
            "enable",
            "acme",
            "greeter",
            "--config",
            r#"{"currency": "EUR"}"#,
        ];
        ok(&self.plinth(&enable));
        ok(&self.plinth(&[
            "company",
            "create",
            "acme",
            "acme-de",
            "--name",
            "Acme GmbH",
        ]));
        self.put(
            "/api/v1/tenants/acme/roles/accountant",
            &json!({"permissions": ["greeter:greetings.read"], "description": "reads greetings"}),
        );
        self.put(
            "/api/v1/tenants/acme/users/bob/roles",
            &json!({"roles": ["accountant"]}),
        );
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A backend that serves `/health`, and refuses its `pre_install` hook when the manifest
/// declares one.
async fn module_backend() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("address");
    let app = axum::Router::new()
        .route(
            "/health",
            axum::routing::get(|| async { axum::Json(json!({"status": "healthy"})) }),
        )
        .route(
            "/hooks/pre_install",
            axum::routing::post(|| async {
                (
                    axum::http::StatusCode::CONFLICT,
                    axum::Json(json!({"allow": false, "reason": "no licence for this platform"})),
                )
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn manifest() -> Value {
    json!({
        "name": "greeter", "display_name": "Greeter", "version": "1.0.0",
        "backend": {"type": "microservice", "api_prefix": "/api/v1/greeter", "health_check": "/health"},
        "dependencies": {"platform_version": ">=2.0.0"},
        "permissions": [{"code": "greeter:greetings.read", "description": "Read greetings"}],
        "features": [
            {"name": "invoicing", "default": true, "description": "Invoices"},
            {"name": "reporting", "default": false}
        ],
        "configuration": {
            "defaults": {"currency": "USD", "tax_rate": 0},
            "schema": {"type": "object", "properties": {
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "tax_rate": {"type": "number", "minimum": 0, "maximum": 1}
            }}
        }
    })
}

fn ok(run: &Run) -> &str {
    assert_eq!(
        run.code,
        Some(0),
        "plinth failed:\nstdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    &run.stdout
}

/// Exit status 1, and `stderr` holding `wanted`.
fn refused(run: &Run, wanted: &str) {
    assert_eq!(
        run.code,
        Some(1),
        "stdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stderr.contains(wanted),
        "wanted {wanted:?} in: {}",
        run.stderr
    );
}

fn has_line(text: &str, words: &[&str]) -> bool {
    text.lines().any(|line| {
        words
            .iter()
            .all(|w| line.split_whitespace().any(|x| x == *w))
    })
}

/// Finding 8: the CLI could change but not read. Every noun now has `list` (a table) and
/// `show` (one record), and `--json` prints the API's answer.
#[test]
fn the_cli_lists_and_shows_everything_it_can_change() {
    let fixture = Fixture::start();
    fixture.set_up();
    let text = |args: &[&str]| ok(&fixture.plinth(args)).to_owned();

    let modules = text(&["module", "list"]);
    assert!(modules.starts_with("MODULE"), "{modules}");
    assert!(
        has_line(&modules, &["greeter", "1.0.0", "free"]),
        "{modules}"
    );
    let module = text(&["module", "show", "greeter"]);
    assert!(
        module.contains("installed:") && module.contains("1.0.0 (installed)"),
        "{module}"
    );
    assert!(has_line(&text(&["version", "list", "greeter"]), &["1.0.0"]));
    let version = text(&["version", "show", "greeter", "1.0.0"]);
    assert!(version.contains("greeter:greetings.read"), "{version}");

    assert!(has_line(
        &text(&["tenant", "list"]),
        &["acme", "Acme", "premium"]
    ));
    assert!(text(&["tenant", "show", "acme"]).contains("tier:"));
    assert!(has_line(
        &text(&["company", "list", "acme"]),
        &["acme-de", "Acme", "GmbH"]
    ));
    assert!(text(&["company", "show", "acme", "acme-de"]).contains("Acme GmbH"));

    let enablements = text(&["enablement", "list", "acme"]);
    assert!(
        has_line(&enablements, &["greeter", "enabled"]),
        "{enablements}"
    );
    let enablement = text(&["enablement", "show", "acme", "greeter"]);
    assert!(enablement.contains(r#"{"currency":"EUR"}"#), "{enablement}");

    let features = text(&["feature", "list", "acme", "greeter"]);
    assert!(
        has_line(&features, &["invoicing", "on", "on"]),
        "{features}"
    );
    assert!(
        has_line(&features, &["reporting", "off", "off"]),
        "{features}"
    );
    assert!(text(&["feature", "show", "acme", "greeter", "reporting"]).contains("state:"));

    let roles = text(&["role", "list", "acme"]);
    assert!(
        has_line(&roles, &["accountant", "greeter:greetings.read"]),
        "{roles}"
    );
    assert!(text(&["role", "show", "acme", "accountant"]).contains("reads greetings"));
    assert!(has_line(
        &text(&["assignment", "list", "acme"]),
        &["bob", "accountant"]
    ));
    assert!(text(&["assignment", "show", "acme", "bob"]).contains("accountant"));

    let audit = text(&["audit", "list", "acme"]);
    assert!(
        has_line(&audit, &["role.changed", "role:accountant"]),
        "{audit}"
    );
    let keys = text(&["key", "list", "greeter"]);
    assert!(
        keys.starts_with("ID") && keys.lines().count() == 2,
        "{keys}"
    );
    let id = keys
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert!(text(&["key", "show", "greeter", &id]).contains("prefix:"));

    assert_eq!(text(&["dead-letter", "list"]).trim(), "(none)");
    assert!(text(&["dead-letter", "replay"]).contains("delivered 0; 0 failed again"));

    // `--json` is the API's answer, for scripts.
    let tenants: Value = serde_json::from_str(&text(&["tenant", "list", "--json"])).expect("JSON");
    assert_eq!(tenants[0]["id"], "acme");
    let users: Value =
        serde_json::from_str(&text(&["assignment", "list", "acme", "--json"])).expect("JSON");
    assert_eq!(
        users,
        json!([{"user": "bob", "roles": ["accountant"], "companies": {}}])
    );
}

/// Finding 8: `--config` replaces the whole tenant configuration; `config set KEY=VALUE` sets
/// one key and keeps the others, for the tenant and for a company.
#[test]
fn config_set_changes_one_key_and_keeps_the_others() {
    let fixture = Fixture::start();
    fixture.set_up();
    let set = fixture.plinth(&["config", "set", "acme", "greeter", "tax_rate=0.19"]);
    assert!(
        ok(&set).contains("set tax_rate = 0.19 for greeter of tenant acme"),
        "{}",
        set.stdout
    );
    let company = [
        "config",
        "set",
        "acme",
        "greeter",
        "currency=CHF",
        "--company",
        "acme-de",
    ];
    ok(&fixture.plinth(&company));
    let get = |company: Option<&str>| {
        let mut args = vec!["config", "get", "acme", "greeter", "--json"];
        if let Some(company) = company {
            args.extend(["--company", company]);
        }
        let resolved: Value = serde_json::from_str(ok(&fixture.plinth(&args))).expect("JSON");
        resolved["configuration"].clone()
    };
    assert_eq!(get(None), json!({"currency": "EUR", "tax_rate": 0.19}));
    assert_eq!(
        get(Some("acme-de")),
        json!({"currency": "CHF", "tax_rate": 0.19})
    );
    // A value the schema refuses is refused naming the key, and nothing changes.
    let bad = fixture.plinth(&["config", "set", "acme", "greeter", "tax_rate=7"]);
    refused(&bad, "configuration.tax_rate");
    assert_eq!(get(None), json!({"currency": "EUR", "tax_rate": 0.19}));
    // Setting keys of a module the tenant never enabled does not enable it.
    ok(&fixture.plinth(&["tenant", "create", "globex", "--name", "Globex"]));
    let never = fixture.plinth(&["config", "set", "globex", "greeter", "currency=EUR"]);
    refused(&never, "tenant globex has never enabled greeter");
    let malformed = fixture.plinth(&["config", "set", "acme", "greeter", "currency"]);
    assert_eq!(malformed.code, Some(2), "{}", malformed.stderr);
    assert!(
        malformed.stderr.contains("`currency` is not KEY=VALUE"),
        "{}",
        malformed.stderr
    );
}

/// Finding 11: the audit log recorded new values but not old ones. A configuration,
/// enablement, role or assignment change now records `previous`, what was stored before.
#[test]
fn the_audit_log_records_what_each_change_replaced() {
    let fixture = Fixture::start();
    fixture.set_up();
    ok(&fixture.plinth(&["config", "set", "acme", "greeter", "currency=GBP"]));
    fixture.put(
        "/api/v1/tenants/acme/roles/accountant",
        &json!({"permissions": ["greeter:*"]}),
    );
    fixture.put(
        "/api/v1/tenants/acme/users/bob/roles",
        &json!({"roles": []}),
    );
    let page: Value =
        serde_json::from_str(ok(&fixture.plinth(&["audit", "list", "acme", "--json"])))
            .expect("JSON");
    let records = page["records"].as_array().expect("records");
    let detail = |action: &str| {
        records
            .iter()
            .find(|r| r["action"] == action)
            .map(|r| r["detail"].clone())
            .unwrap_or_else(|| panic!("no {action} in {records:#?}"))
    };
    let configured = detail("tenant.module.configured");
    assert_eq!(
        configured["configuration_patch"],
        json!({"currency": "GBP"})
    );
    assert_eq!(
        configured["previous"]["configuration"],
        json!({"currency": "EUR"})
    );
    assert_eq!(configured["previous"]["enabled"], true);
    let role = detail("role.changed");
    assert_eq!(role["permissions"], json!(["greeter:*"]));
    assert_eq!(
        role["previous"]["permissions"],
        json!(["greeter:greetings.read"])
    );
    let assignment = detail("user.roles.changed");
    assert_eq!(assignment["roles"], json!([]));
    assert_eq!(assignment["previous"]["roles"], json!(["accountant"]));
    // The first enablement had nothing before it.
    let enabled = detail("tenant.module.enabled");
    assert_eq!(enabled["previous"], Value::Null);
}

/// Finding 9 (the rest) and Deliver 5: every "not found" for a name offers the closest match,
/// in the API's problem document and so in the CLI.
#[test]
fn a_name_that_is_not_found_is_answered_with_the_closest_one() {
    let fixture = Fixture::start();
    fixture.set_up();
    let cases: [(&[&str], &str); 12] = [
        (
            &["module", "show", "greter"],
            "no module named greter is published; did you mean `greeter`?",
        ),
        (&["version", "list", "greter"], "did you mean `greeter`?"),
        (
            &["version", "show", "greeter", "1.0.1"],
            "greeter has no published version 1.0.1; did you mean `1.0.0`?",
        ),
        (
            &["module", "status", "greter"],
            "greter has never been installed; did you mean `greeter`?",
        ),
        (
            &["tenant", "show", "acne"],
            "no tenant acne; did you mean `acme`?",
        ),
        (
            &["company", "show", "acme", "acme-dd"],
            "tenant acme has no company acme-dd; did you mean `acme-de`?",
        ),
        (
            &["config", "get", "acme", "greter"],
            "greter is not installed; did you mean `greeter`?",
        ),
        (
            &["config", "get", "acme", "greeter", "--company", "acme-dd"],
            "did you mean `acme-de`?",
        ),
        (
            &["enablement", "show", "acme", "greter"],
            "did you mean `greeter`?",
        ),
        (
            &["role", "show", "acme", "acountant"],
            "tenant acme has no role acountant; did you mean `accountant`?",
        ),
        (
            &["feature", "show", "acme", "greeter", "reportng"],
            "greeter has no feature reportng; did you mean `reporting`?",
        ),
        (
            &["key", "show", "greeter", "nope"],
            "greeter has no API key nope",
        ),
    ];
    for (args, wanted) in cases {
        refused(&fixture.plinth(args), wanted);
    }
    // Assigning a misspelt role, and enabling a misspelt feature, are 422s with the hint.
    let enable = ["tenant", "enable", "acme", "greter"];
    refused(&fixture.plinth(&enable), "did you mean `greeter`?");
    let bob = fixture.plinth(&["assignment", "show", "acme", "bobb"]);
    assert!(
        ok(&bob).contains("note: bobb holds no roles in tenant acme; did you mean `bob`?"),
        "{}",
        bob.stdout
    );
}

/// Finding 11: an install failure printed the undo lines before the failure, and the error
/// twice. Now the failure comes once, then what was undone.
#[test]
fn a_failed_install_tells_the_failure_once_then_what_was_undone() {
    let fixture = Fixture::start();
    let mut manifest = manifest();
    manifest["hooks"] = json!({"pre_install": "/hooks/pre_install"});
    let file = fixture.write("manifest.json", &manifest);
    ok(&fixture.plinth(&["module", "publish", &file]));
    let install = [
        "module",
        "install",
        "greeter",
        "--version",
        "1.0.0",
        "--endpoint",
        &fixture.backend,
    ];
    let run = fixture.plinth(&install);
    assert_eq!(
        run.code,
        Some(1),
        "stdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("no licence for this platform").count(),
        1,
        "the reason once: {}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("undone") && !run.stdout.contains("failed"),
        "{}",
        run.stdout
    );
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(
        lines[0].starts_with("error: install of greeter 1.0.0 failed at step pre_install:"),
        "{}",
        run.stderr
    );
    assert!(
        lines.len() > 1 && lines[1..].iter().all(|l| l.starts_with("  undone ")),
        "{}",
        run.stderr
    );
}
