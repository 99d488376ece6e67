//! What the drills share: `plinth up` run as a real process (killed, stopped and started again
//! on one data directory), a module backend that is a real child process of it
//! (`local/examples/drill_backend.rs`), and the control server that backend reports every call
//! to and that can hold a call until the test has done its worst.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use rustix::process::{Pid, Signal, kill_process};
use serde_json::{Value, json};

/// Where the backend finds the control server.
pub const CONTROL_ENV: &str = "PLINTH_DRILL_CONTROL";

/// The `plinth` binary the drills run: this build's, or `PLINTH_DRILL_BIN` (a copy of it, when
/// a target folder shared with other builds may be rebuilt while the drill runs).
fn plinth_bin() -> PathBuf {
    std::env::var_os("PLINTH_DRILL_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_plinth")),
        PathBuf::from,
    )
}

/// How long anything the drill waits for may take.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// `plinth up` as a process, on a data directory that outlives it.
pub struct Platform {
    pub url: String,
    port: u16,
    pub data: PathBuf,
    work: PathBuf,
    aws: Option<(String, String)>,
    control: String,
    child: Option<Child>,
    /// How many times it was started.
    pub starts: usize,
}

impl Platform {
    /// A platform in `dir` (data in `dir/.plinth`, backends run in `dir`), on the AWS
    /// services at `AWS_ENDPOINT_URL` with `(table, bus)` when `aws` is given.
    pub fn new(dir: &Path, aws: Option<(String, String)>, control: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        Self {
            url: format!("http://127.0.0.1:{port}"),
            port,
            data: dir.join(".plinth"),
            work: dir.to_path_buf(),
            aws,
            control: control.to_owned(),
            child: None,
            starts: 0,
        }
    }

    fn log(&self) -> PathBuf {
        self.work.join("plinth-up.log")
    }

    /// Starts `plinth up` and waits until it answers.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .expect("the platform's log");
        let mut command = Command::new(plinth_bin());
        command
            .args(["up", "--port", &self.port.to_string(), "--data-dir"])
            .arg(&self.data)
            .current_dir(&self.work)
            .env(CONTROL_ENV, &self.control)
            .env("PLINTH_LOG", "warn,plinth=info,plinth_local=info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log"))
            .stderr(log);
        if let Some((table, bus)) = &self.aws {
            command
                .arg("--aws")
                .env("PLINTH_TABLE", table)
                .env("PLINTH_EVENT_BUS", bus);
        }
        self.child = Some(command.spawn().expect("plinth up starts"));
        self.starts += 1;
        let client = reqwest::Client::new();
        let deadline = Instant::now() + PATIENCE;
        loop {
            let answer = client
                .get(format!("{}/openapi.json", self.url))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if answer.is_ok_and(|a| a.status().is_success()) {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("plinth up exited ({status}):\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "plinth up did not answer:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// The process id of the running `plinth up`.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL: the platform gets no chance to stop anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), Signal::KILL);
            let _ = child.wait();
        }
    }

    /// SIGTERM, then SIGKILL if it has not stopped within `grace`; true if it stopped itself.
    pub async fn terminate(&mut self, grace: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        signal(child.id(), Signal::TERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        signal(child.id(), Signal::KILL);
        let _ = child.wait();
        false
    }

    /// A platform admin's token, from `plinth token` (which finds the data directory's secret).
    pub fn admin_token(&self) -> String {
        let output = Command::new(plinth_bin())
            .args(["token", "--roles", "platform:admin", "--data-dir"])
            .arg(&self.data)
            .env_remove("PLINTH_TOKEN")
            .output()
            .expect("plinth token runs");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), Signal::TERM);
            std::thread::sleep(Duration::from_millis(500));
            signal(child.id(), Signal::KILL);
            let _ = child.wait();
        }
    }
}

fn signal(pid: u32, signal: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = kill_process(pid, signal);
    }
}

/// Whether process `pid` runs (a zombie, dead but not yet reaped by its parent, does not).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// Kills whatever the drill's backends left (after a failed assertion), so no test run
/// leaves processes behind.
pub fn kill_all(pids: &HashSet<u32>) {
    for pid in pids {
        if alive(*pid) {
            signal(*pid, Signal::KILL);
        }
    }
}

/// One call a module backend received.
#[derive(Debug, Clone)]
pub struct Call {
    pub module: String,
    /// Without its leading `/`: `health`, `_plinth/hooks/pre_install`, `_plinth/events/pinged`.
    pub path: String,
    /// The backend process that received it.
    pub pid: u32,
    /// The module key the backend was started with.
    pub key: String,
    pub body: Value,
}

#[derive(Debug, Default)]
struct Calls {
    calls: Vec<Call>,
    /// `module/path` held until released.
    gates: HashSet<String>,
}

/// The test's end of every backend: records calls, holds the gated ones.
#[derive(Debug, Clone, Default)]
pub struct Control {
    inner: Arc<Mutex<Calls>>,
}

impl Control {
    /// Serves on a free port; returns its URL.
    pub async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let app = axum::Router::new()
            .route("/calls/{module}/{*path}", axum::routing::any(answer))
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    /// Holds `module`'s calls to `path` (and the platform waiting on them) until released.
    pub fn gate(&self, module: &str, path: &str) {
        let mut inner = self.inner.lock().unwrap();
        inner.gates.insert(format!("{module}/{path}"));
    }

    pub fn release(&self, module: &str) {
        let prefix = format!("{module}/");
        self.inner
            .lock()
            .unwrap()
            .gates
            .retain(|g| !g.starts_with(&prefix));
    }

    pub fn calls(&self, module: &str, path: &str) -> Vec<Call> {
        self.inner
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| c.module == module && c.path == path)
            .cloned()
            .collect()
    }

    /// Every backend process that ever answered, for any module.
    pub fn pids(&self) -> HashSet<u32> {
        let inner = self.inner.lock().unwrap();
        inner.calls.iter().map(|c| c.pid).collect()
    }

    /// The backend processes of `module` that answered.
    pub fn pids_of(&self, module: &str) -> HashSet<u32> {
        let inner = self.inner.lock().unwrap();
        inner
            .calls
            .iter()
            .filter(|c| c.module == module)
            .map(|c| c.pid)
            .collect()
    }

    /// Waits until `module`'s backend was called at `path`.
    pub async fn called(&self, module: &str, path: &str) -> Call {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(call) = self.calls(module, path).pop() {
                return call;
            }
            assert!(Instant::now() < deadline, "{module} never got /{path}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The key the newest backend process of `module` runs with.
    pub fn key_of(&self, module: &str) -> String {
        let inner = self.inner.lock().unwrap();
        inner
            .calls
            .iter()
            .rev()
            .find(|c| c.module == module && alive(c.pid))
            .map(|c| c.key.clone())
            .unwrap_or_default()
    }
}

async fn answer(
    State(control): State<Control>,
    UrlPath((module, path)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, axum::Json<Value>) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let path = path.trim_start_matches('/').to_owned();
    let gate = format!("{module}/{path}");
    control.inner.lock().unwrap().calls.push(Call {
        module,
        path: path.clone(),
        pid: header("x-drill-pid").parse().unwrap_or_default(),
        key: header("x-drill-key"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let deadline = Instant::now() + PATIENCE;
    while control.inner.lock().unwrap().gates.contains(&gate) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if path.starts_with("_plinth/hooks/") {
        (StatusCode::OK, axum::Json(json!({"allow": true})))
    } else {
        (StatusCode::OK, axum::Json(json!({"status": "healthy"})))
    }
}

/// The `dev_command` that starts the drills' module backend (`local/examples/drill_backend.rs`,
/// which `cargo test` builds beside this test binary; `PLINTH_DRILL_BACKEND` names another
/// copy). Not `exec`: the shell stays the backend's parent, as with `cargo run` or `npm start`.
pub fn backend_command() -> String {
    let backend = std::env::var_os("PLINTH_DRILL_BACKEND").map_or_else(
        || {
            let exe = std::env::current_exe().expect("the test binary");
            let profile = exe
                .parent()
                .and_then(Path::parent)
                .expect("target/{profile}/deps");
            profile.join("examples").join("drill_backend")
        },
        PathBuf::from,
    );
    assert!(
        backend.is_file(),
        "the drills' module backend {} is not built: `cargo test --workspace` (or `cargo build \
         -p plinth-local --example drill_backend`) builds it",
        backend.display()
    );
    format!("'{}'; exit $?", backend.display())
}

/// A module backed by [`backend_command`], with both install hooks, one subscription to its
/// own event, one table and a configuration with defaults.
pub fn manifest(module: &str) -> Value {
    let snake = module.replace('-', "_");
    json!({
        "name": module, "display_name": "Drill", "version": "1.0.0",
        "backend": {"type": "microservice", "api_prefix": format!("/api/v1/{module}"),
                    "health_check": "/health", "dev_command": backend_command()},
        "hooks": {"pre_install": "/_plinth/hooks/pre_install",
                  "post_install": "/_plinth/hooks/post_install"},
        "database": {"type": "dynamodb",
                     "tables": [{"name": format!("{snake}_items"), "partition_key": "tenant_id"}]},
        "events": {"publishes": [format!("{module}.pinged")],
                   "subscribes": [{"name": "pinged",
                                   "pattern": {"detail-type": [format!("{module}.pinged")]},
                                   "path": "/_plinth/events/pinged"}]},
        "configuration": {"defaults": {}, "schema": {"type": "object"}}
    })
}

/// The platform's HTTP API, as an admin.
#[derive(Debug, Clone)]
pub struct Api {
    pub url: String,
    pub token: String,
    client: reqwest::Client,
}

impl Api {
    pub fn new(url: &str, token: &str) -> Self {
        Self {
            url: url.to_owned(),
            token: token.to_owned(),
            // A new connection per call: the drills kill and restart the platform on the
            // same port, and what they check is the platform's state, not connection reuse
            // (a pooled connection the killed process held must never be what fails a call).
            // The timeout is for a platform that stopped answering; a slow answer on a loaded
            // machine is not what the drills check.
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(60))
                .build()
                .expect("a client"),
        }
    }

    /// The status (0 when there was no answer) and the JSON body.
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        match request.send().await {
            Ok(answer) => {
                let status = answer.status().as_u16();
                (status, answer.json().await.unwrap_or(Value::Null))
            }
            // No answer: the error says whether it was refused, reset or timed out.
            Err(error) => (0, Value::String(format!("no answer: {error:?}"))),
        }
    }

    pub async fn expect(&self, method: &str, path: &str, body: Option<&Value>, want: u16) -> Value {
        let (status, answer) = self.call(method, path, body).await;
        assert_eq!(status, want, "{method} {path}: {answer}");
        answer
    }

    /// Publishes `{module}.pinged` as `module` (with its key) for `tenant`: the status and
    /// the body.
    pub async fn publish(&self, key: &str, module: &str, tenant: &str, n: usize) -> (u16, String) {
        let event = json!({
            "id": format!("{module}-{n}-{}", std::process::id()),
            "source": format!("plinth.module.{module}"),
            "detail-type": format!("{module}.pinged"),
            "time": "2026-12-07T00:00:00Z",
            "detail": {"tenant_id": tenant, "n": n}
        });
        match self
            .client
            .post(format!("{}/api/v1/events", self.url))
            .header("X-Module-API-Key", key)
            .json(&event)
            .send()
            .await
        {
            Ok(answer) => (
                answer.status().as_u16(),
                answer.text().await.unwrap_or_default(),
            ),
            Err(e) => (0, e.to_string()),
        }
    }

    pub async fn installation(&self, module: &str) -> Value {
        self.call(
            "GET",
            &format!("/api/v1/modules/{module}/installation"),
            None,
        )
        .await
        .1
    }

    /// Waits until `module`'s operation is over; its installation.
    pub async fn settled(&self, module: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let now = self.installation(module).await;
            if !matches!(now["status"].as_str(), Some("pending" | "running") | None) {
                return now;
            }
            assert!(Instant::now() < deadline, "{module} never settled: {now}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// How many of an installation's steps are done.
pub fn steps_done(installation: &Value) -> usize {
    installation["steps"]
        .as_array()
        .map(|steps| steps.iter().filter(|s| s["status"] == "done").count())
        .unwrap_or_default()
}

/// `step:status` of each step, in order.
pub fn step_states(installation: &Value) -> Vec<String> {
    installation["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|s| {
                    format!(
                        "{}:{}",
                        s["step"].as_str().unwrap_or("?"),
                        s["status"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A name no earlier run on the same emulator used.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{}", (nanos / 1000) % 1_000_000)
}

/// Whether the emulator is there; without it the `--aws` drill skips (and CI fails).
pub fn emulator() -> bool {
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
