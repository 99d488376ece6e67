//! `plinth up --demo` as a process and calls to it, shared by the tests that run the real
//! binary: across versions, rollouts and restarts (`versions.rs`, `rollout.rs`, `demo_restart.rs`).
// Each test binary that includes this uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("local/ is in the workspace")
        .to_path_buf()
}

/// Where `plinth up` keeps the control plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// The embedded store in the data folder.
    Embedded,
    /// `--aws`: DynamoDB and EventBridge on the emulator (`AWS_ENDPOINT_URL`), with a table and
    /// bus of the test's own; the modules' tables are DynamoDB's too.
    Aws,
}

/// Whether the AWS emulator is there for `--aws` tests; without it they are skipped, except in
/// CI, where that is a failure (`./tests/run` starts one).
pub fn emulator_is_running() -> bool {
    if std::env::var_os("AWS_ENDPOINT_URL").is_some() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but AWS_ENDPOINT_URL is not; run the tests with ./tests/run"
    );
    eprintln!("skipped: no emulator (AWS_ENDPOINT_URL unset); ./tests/run starts one");
    false
}

/// The example financial module's tables on the emulator start empty: a previous run's
/// invoices would number this run's (the tables are named by the manifest, not per platform).
pub async fn drop_the_example_s_tables() {
    let sdk = plinth_registry::aws::config_from_env().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let path = workspace_root().join("examples/financial/manifest.json");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("the manifest")).expect("JSON");
    for table in manifest["database"]["tables"].as_array().expect("tables") {
        let name = table["name"].as_str().expect("a table's name");
        // Absent is what is wanted.
        let _ = dynamodb.delete_table().table_name(name).send().await;
    }
}

/// `plinth up --demo` as a process, run from the workspace (where `examples/` is).
pub struct Up {
    child: Child,
    log: PathBuf,
    /// Where this start's lines begin in the log.
    log_from: usize,
}

impl Up {
    pub fn start(data: &Path, port: u16) -> Self {
        Self::start_with(data, port, &[], &[])
    }

    /// On `store`; with `--aws`, a fresh table and bus, and the example's tables emptied.
    pub async fn start_on(store: Store, data: &Path, port: u16) -> Self {
        match store {
            Store::Embedded => Self::start(data, port),
            Store::Aws => {
                drop_the_example_s_tables().await;
                let unique = format!(
                    "plinth-up-{}-{}",
                    std::process::id(),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .expect("after 1970")
                        .subsec_nanos()
                );
                Self::start_with(
                    data,
                    port,
                    &["--aws"],
                    &[("PLINTH_TABLE", &unique), ("PLINTH_EVENT_BUS", &unique)],
                )
            }
        }
    }

    /// With more arguments (e.g. `--aws`) and environment variables.
    pub fn start_with(data: &Path, port: u16, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let log = data.with_extension("log");
        // Appended to: a restarted platform's log follows the first one's.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("the log");
        let log_from = usize::try_from(file.metadata().expect("the log's length").len())
            .expect("a log that fits in memory");
        let child = Command::new(env!("CARGO_BIN_EXE_plinth"))
            .args(["up", "--demo", "--port", &port.to_string(), "--data-dir"])
            .arg(data)
            .current_dir(workspace_root())
            // Rollouts stepped every second, so that the tests' bakes are short.
            .env("PLINTH_ROLLOUT_TICK_SECS", "1")
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("the log"))
            .stderr(file)
            .spawn()
            .expect("plinth up starts");
        Self {
            child,
            log,
            log_from,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether this start has printed the demo's banner: its modules, tenant, companies and
    /// their configuration are all in place (a module's routes answer before that).
    pub fn demo_ready(&self) -> bool {
        let text = self.log_text();
        text.get(self.log_from..)
            .is_some_and(|this_start| this_start.contains("Demo ready:"))
    }

    /// How it ended, if it has (it is not waited for).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM, as Ctrl-C or a supervisor stops it; waits until it has stopped its backends,
    /// and asserts that it ended well.
    pub fn stop(mut self) {
        terminate(&self.child);
        let status = self.child.wait().expect("plinth up stops");
        assert!(status.success(), "{status}: {}", self.log_text());
    }
}

fn terminate(child: &Child) {
    if let Some(pid) = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        // Stopped already (`stop`): its pid may be another process's now.
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        terminate(&self.child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A call with `token`; the status (0: no answer) and the body.
pub async fn call(
    url: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("a client");
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
    let mut request = client
        .request(method, format!("{url}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    match request.send().await {
        Ok(answer) => {
            let status = answer.status().as_u16();
            (status, answer.json().await.unwrap_or(Value::Null))
        }
        Err(error) => (0, Value::String(error.to_string())),
    }
}

pub fn mint(secret: &str, sub: &str, tenant: Option<&str>, roles: &[&str]) -> String {
    // Globex's admin works in its company `globex-hq` (invoices belong to a company).
    let company = tenant.map(|_| "globex-hq");
    plinth_registry::identity::mint_token(
        secret.as_bytes(),
        &plinth_registry::identity::Claims::user(
            sub,
            tenant,
            company,
            roles,
            Duration::from_secs(900),
        ),
    )
    .expect("a token")
}

/// Polls `path` until its `status` is neither pending nor running.
pub async fn settled(up: &Up, url: &str, token: &str, path: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (_, installation) = call(url, token, "GET", path, None).await;
        let status = installation["status"].as_str().unwrap_or_default();
        if !status.is_empty() && status != "pending" && status != "running" {
            return installation;
        }
        assert!(
            Instant::now() < deadline,
            "{path} did not settle: {installation}\n{}",
            up.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
