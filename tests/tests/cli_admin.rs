//! The admin CLI end to end: a real platform in this process on a random port, driven through
//! the built `plinth` binary as an operator and a tenant admin would.

use std::net::SocketAddr;
use std::path::PathBuf;

use plinth_local::platform::{self, Options};
use plinth_tests::{Run, run_plinth_with_env};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

/// A platform served on a runtime of its own, and the module backend it installs.
struct Fixture {
    // Serves the platform and the module backend for as long as the fixture lives.
    _runtime: Runtime,
    url: String,
    backend: String,
    data_dir: PathBuf,
    dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
}

impl Fixture {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        // `plinth up`'s default data directory's name, so that `plinth token` finds it.
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
        let url = format!("http://{}", running.addr);
        let (stop, stopped) = oneshot::channel::<()>();
        runtime.spawn(running.serve(async {
            let _ = stopped.await;
        }));
        let backend = format!("http://{}", runtime.block_on(module_backend()));
        Fixture {
            _runtime: runtime,
            url,
            backend,
            data_dir,
            dir,
            stop: Some(stop),
        }
    }

    /// Runs `plinth` against this platform (`--url`), with `token` if given.
    fn plinth(&self, args: &[&str], token: Option<&str>) -> Run {
        let mut all = args.to_vec();
        all.extend(["--url", &self.url]);
        if let Some(token) = token {
            all.extend(["--token", token]);
        }
        run_plinth_with_env(self.dir.path(), &all, &[])
    }

    fn write(&self, name: &str, content: &Value) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content.to_string()).expect("writes");
        path.display().to_string()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A module backend that already runs (installed with `--endpoint`): it serves `/health`.
async fn module_backend() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("address");
    let app = axum::Router::new().route(
        "/health",
        axum::routing::get(|| async { axum::Json(json!({"status": "healthy"})) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn manifest() -> Value {
    json!({
        "name": "greeter", "display_name": "Greeter", "version": "1.0.0",
        "backend": {"type": "microservice", "api_prefix": "/api/v1/greeter", "health_check": "/health"},
        "dependencies": {"platform_version": ">=2.0.0"},
        "configuration": {
            "defaults": {"currency": "USD", "tax_rate": 0, "invoice_prefix": "INV"},
            "schema": {"type": "object", "properties": {
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "tax_rate": {"type": "number", "minimum": 0, "maximum": 1},
                "invoice_prefix": {"type": "string"}
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

fn operator_token(fixture: &Fixture) -> String {
    let data_dir = fixture.data_dir.display().to_string();
    let run = run_plinth_with_env(
        fixture.dir.path(),
        &[
            "token",
            "--roles",
            "platform:admin",
            "--data-dir",
            &data_dir,
        ],
        &[],
    );
    ok(&run).trim().to_owned()
}

fn publish_and_install(fixture: &Fixture, token: &str) {
    let manifest = fixture.write("manifest.json", &manifest());
    let published = fixture.plinth(&["module", "publish", &manifest], Some(token));
    assert!(
        ok(&published).contains("published greeter 1.0.0"),
        "{}",
        published.stdout
    );
    let install = [
        "module",
        "install",
        "greeter",
        "--version",
        "1.0.0",
        "--endpoint",
        &fixture.backend,
    ];
    let installed = fixture.plinth(&install, Some(token));
    let text = ok(&installed);
    assert!(
        text.contains("done     deploy"),
        "no progress shown: {text}"
    );
    assert!(text.contains("greeter: installed (serving 1.0.0"), "{text}");
    let status = fixture.plinth(
        &["module", "status", "greeter", "--output", "json"],
        Some(token),
    );
    let status: Value = serde_json::from_str(ok(&status)).expect("JSON status");
    assert_eq!(status["status"], "installed");
    // Finding 9: `retry` has nothing to do once the last operation finished.
    let retry = fixture.plinth(&["module", "retry", "greeter"], Some(token));
    assert_eq!(retry.code, Some(1), "stderr: {}", retry.stderr);
    assert!(
        retry.stderr.contains(
            "nothing to retry: the install of greeter 1.0.0 finished (installed) (HTTP 409)"
        ),
        "{}",
        retry.stderr
    );
}

fn set_up_tenant(fixture: &Fixture, token: &str) {
    let created = fixture.plinth(
        &[
            "tenant", "create", "acme", "--name", "Acme", "--tier", "premium",
        ],
        Some(token),
    );
    assert!(
        ok(&created).contains("created tenant acme (Acme, tier premium)"),
        "{}",
        created.stdout
    );
    // PLINTH_URL and PLINTH_TOKEN stand in for the flags.
    let env = [
        ("PLINTH_URL", fixture.url.as_str()),
        ("PLINTH_TOKEN", token),
    ];
    let args = [
        "tenant",
        "enable",
        "acme",
        "greeter",
        "--config",
        r#"{"currency": "EUR"}"#,
    ];
    let enabled = run_plinth_with_env(fixture.dir.path(), &args, &env);
    assert!(
        ok(&enabled).contains("enabled greeter for tenant acme"),
        "{}",
        enabled.stdout
    );
    let company = fixture.plinth(
        &[
            "company",
            "create",
            "acme",
            "acme-de",
            "--name",
            "Acme GmbH",
        ],
        Some(token),
    );
    ok(&company);
    let config = format!(
        "@{}",
        fixture.write(
            "de.json",
            &json!({"tax_rate": 0.19, "invoice_prefix": "ACME-DE"})
        )
    );
    let set = fixture.plinth(
        &[
            "company",
            "set",
            "acme",
            "acme-de",
            "greeter",
            "--enabled",
            "true",
            "--config",
            &config,
        ],
        Some(token),
    );
    assert!(
        ok(&set).contains("greeter for company acme-de of acme: enabled"),
        "{}",
        set.stdout
    );
}

fn merged_config_shows_each_tier(fixture: &Fixture, token: &str) {
    let args = [
        "config",
        "get",
        "acme",
        "greeter",
        "--company",
        "acme-de",
        "--output",
        "json",
    ];
    let resolved: Value =
        serde_json::from_str(ok(&fixture.plinth(&args, Some(token)))).expect("JSON config");
    assert_eq!(
        resolved["configuration"],
        json!({"currency": "EUR", "tax_rate": 0.19, "invoice_prefix": "ACME-DE"})
    );
    assert_eq!(
        resolved["sources"],
        json!({"currency": "tenant", "tax_rate": "company", "invoice_prefix": "company"})
    );
    let human = fixture.plinth(
        &["config", "get", "acme", "greeter", "--company", "acme-de"],
        Some(token),
    );
    let text = ok(&human);
    assert!(
        text.contains("currency       = \"EUR\"   (tenant)"),
        "{text}"
    );
    assert!(text.contains("tax_rate       = 0.19   (company)"), "{text}");
}

#[test]
fn an_operator_installs_a_module_and_a_tenant_admin_configures_it() {
    let fixture = Fixture::start();
    let token = operator_token(&fixture);
    publish_and_install(&fixture, &token);
    set_up_tenant(&fixture, &token);
    merged_config_shows_each_tier(&fixture, &token);
}

#[test]
fn token_run_in_a_module_folder_signs_with_the_platforms_secret_and_makes_none() {
    let fixture = Fixture::start();
    let module = fixture.dir.path().join("invoicing-plus");
    std::fs::create_dir_all(&module).expect("a module folder");
    let run = run_plinth_with_env(&module, &["token", "--roles", "platform:admin"], &[]);
    let token = ok(&run).trim().to_owned();
    assert!(
        run.stderr
            .contains("note: signed with the secret of the platform")
            && run.stderr.contains(".plinth"),
        "{}",
        run.stderr
    );
    assert!(
        !module.join(".plinth").exists(),
        "no secret is made in the module's folder"
    );
    let status = fixture.plinth(&["module", "status", "greeter"], Some(&token));
    assert!(!status.stderr.contains("HTTP 401"), "{}", status.stderr);

    let elsewhere = tempfile::tempdir().expect("temp dir");
    let run = run_plinth_with_env(
        elsewhere.path(),
        &["token", "--roles", "platform:admin"],
        &[],
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("no platform secret"), "{}", run.stderr);
    assert!(!elsewhere.path().join(".plinth").exists());
}

#[test]
fn refusals_print_the_problem_and_exit_1() {
    let fixture = Fixture::start();
    let token = operator_token(&fixture);
    let mut bad = manifest();
    bad["name"] = json!("Not A Name");
    bad["backend"]["port"] = json!(70000);
    let file = fixture.write("bad.json", &bad);
    let run = fixture.plinth(&["module", "publish", &file], Some(&token));
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("(HTTP 422)"), "{}", run.stderr);
    assert!(
        run.stderr.lines().any(|l| l.starts_with("  name: ")),
        "no `name: …` line: {}",
        run.stderr
    );
    let anonymous = fixture.plinth(&["module", "status", "greeter"], None);
    assert_eq!(anonymous.code, Some(1));
    assert!(
        anonymous.stderr.contains("(HTTP 401)") && anonymous.stderr.contains("--token"),
        "{}",
        anonymous.stderr
    );
}

#[test]
fn an_unreachable_plinth_or_bad_arguments_exit_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = run_plinth_with_env(
        dir.path(),
        &["module", "status", "greeter", "--url", "http://127.0.0.1:1"],
        &[],
    );
    assert_eq!(run.code, Some(2), "stderr: {}", run.stderr);
    assert!(
        run.stderr
            .contains("cannot reach Plinth at http://127.0.0.1:1"),
        "{}",
        run.stderr
    );
    let config = [
        "tenant",
        "enable",
        "acme",
        "greeter",
        "--config",
        "[1]",
        "--url",
        "http://127.0.0.1:1",
    ];
    let run = run_plinth_with_env(dir.path(), &config, &[]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("--config must be a JSON object"),
        "{}",
        run.stderr
    );
    let missing = run_plinth_with_env(dir.path(), &["module", "publish", "nowhere.json"], &[]);
    assert_eq!(missing.code, Some(2));
    assert!(
        missing.stderr.contains("cannot read nowhere.json"),
        "{}",
        missing.stderr
    );
}

/// Finding 11 of "The first hour": `--tier gold` gets one line naming the tiers, before
/// anything is sent (no serde message, no "line 1 column 51", no platform needed).
#[test]
fn a_tier_that_does_not_exist_is_refused_in_one_line_naming_the_tiers() {
    let dir = tempfile::tempdir().unwrap();
    let run = plinth_tests::run_plinth(
        dir.path(),
        &[
            "tenant", "create", "acme", "--name", "Acme", "--tier", "gold",
        ],
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_eq!(
        run.stderr.trim(),
        "error: --tier `gold` is not a tier: use free, basic, premium or enterprise"
    );
}
