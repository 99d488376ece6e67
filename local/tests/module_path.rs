//! A module team's first hour (issue 24, findings 1–3): from nothing to a route answering
//! through the gateway in three commands once `plinth up --demo` runs — `plinth module new`,
//! `plinth module dev`, the curl it prints — and the pieces of it: the dev_command runs in the
//! module's folder, and a backend installed with `--endpoint` is given its API key.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use plinth_local::platform::{self, Options};
use serde_json::{Value, json};

/// How long the three commands may take (issue 24: under five minutes on this machine): a
/// cold build of the module on dependencies built already (the target folder is shared), its
/// publish and install.
const GOAL: Duration = Duration::from_secs(300);

/// How long the test waits for a round, past the goal, so that a slow run reports its figure.
const PATIENCE: Duration = Duration::from_secs(600);

/// A module backend answering 200 on every path, `/health` too, on `PORT`: the gateway
/// benchmark's (`local/examples/bench_backend.rs`), which `cargo test` builds beside this test.
fn backend_example() -> PathBuf {
    let exe = std::env::current_exe().expect("this test binary");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/{profile}/deps");
    let backend = profile.join("examples").join("bench_backend");
    assert!(
        backend.is_file(),
        "{} is not built: `cargo test --workspace` (or `cargo build -p plinth-local --example \
         bench_backend`) builds it",
        backend.display()
    );
    backend
}

/// This build's `plinth`, or `PLINTH_DRILL_BIN` (a copy of it, when a target folder shared
/// with other builds may be rebuilt while the test runs; as the drills take it).
fn plinth() -> Command {
    let bin = std::env::var_os("PLINTH_DRILL_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_plinth")),
        PathBuf::from,
    );
    let mut command = Command::new(bin);
    command
        .env_remove("PLINTH_URL")
        .env_remove("PLINTH_TOKEN")
        .env_remove("PLINTH_JWT_SECRET");
    command
}

fn output_text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The target folder this test was built into (`…/debug/deps/this-test`): the module builds
/// into it, reusing the dependencies built already, as a team's CI would with a cache.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    exe.ancestors()
        .nth(3)
        .expect("the target folder")
        .to_path_buf()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Sends SIGINT (Ctrl-C) to `child` and waits up to `grace` for it to exit by itself.
fn interrupt(child: &mut Child, grace: Duration) -> Option<std::process::ExitStatus> {
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).ok()?)?;
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A process killed when dropped (a failing assertion must not leave it running).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if interrupt(&mut self.0, Duration::from_secs(10)).is_none() {
            let _ = self.0.kill();
        }
    }
}

/// The lines a child writes to stdout, read on a thread of their own.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout piped");
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// Reads lines until one satisfies `wanted`, within `patience`; everything read so far goes
/// into `seen`.
fn wait_for_line(
    lines: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    patience: Duration,
    wanted: impl Fn(&str) -> bool,
) -> Option<String> {
    let deadline = Instant::now() + patience;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) => {
                seen.push(line.clone());
                if wanted(&line) {
                    return Some(line);
                }
            }
            Err(_) => return None,
        }
    }
    None
}

/// Runs a printed curl command as a shell would, adding only `-w` to learn the status.
fn run_curl(command: &str) -> (u16, Value) {
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!("{command} -w '\\n%{{http_code}}'"))
        .output()
        .expect("sh runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let (body, status) = text.rsplit_once('\n').expect("a body and a status");
    let status = status.trim().parse().expect("an HTTP status");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// The bearer token in a printed curl command.
fn token_of(curl: &str) -> String {
    let (_, rest) = curl.split_once("Bearer ").expect("a bearer token");
    rest.split('"').next().expect("the token").to_owned()
}

async fn create_item(url: &str, token: &str, name: &str) -> (u16, Value) {
    let answer = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .json(&json!({"name": name}))
        .send()
        .await
        .expect("the gateway answers");
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// Deliver 1: `plinth module new`, `plinth module dev`, the printed curl — against `plinth
/// up --demo` as a module team runs it — answer 200 through the gateway; the backend reads its
/// configuration with the API key the platform gave it; an edit is live after the next round;
/// Ctrl-C stops `dev` cleanly. The durations go to BENCHMARKS.md ("First hour: module path").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_module_answers_through_the_gateway_in_three_commands() {
    let work = tempfile::tempdir().expect("a temporary folder");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(work.path().join("plinth-up.log")).expect("a log");
    // `plinth up --demo` in the checkout (where examples/ is), its data in the work folder:
    // the module's folder, under it, finds the platform's secret as `plinth token` does.
    let mut up = plinth();
    up.args(["up", "--demo", "--port", &port.to_string(), "--data-dir"])
        .arg(work.path().join(".plinth"))
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", target_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    let mut up = Running(up.spawn().expect("plinth up starts"));
    let up_lines = lines_of(&mut up.0);
    let mut seen = Vec::new();
    let ready = wait_for_line(&up_lines, &mut seen, PATIENCE, |l| {
        l.starts_with("Demo ready")
    });
    let up_log = || std::fs::read_to_string(work.path().join("plinth-up.log")).unwrap_or_default();
    assert!(
        ready.is_some(),
        "the demo did not start: {seen:?}\n{}",
        up_log()
    );

    let started = Instant::now();
    // 1. plinth module new
    let new = plinth()
        .args(["module", "new", "hello-desk"])
        .current_dir(work.path())
        .output()
        .expect("plinth runs");
    assert!(new.status.success(), "{}", output_text(&new));
    let module = work.path().join("hello-desk");
    let stdout = String::from_utf8_lossy(&new.stdout);
    assert!(
        stdout.contains("cd ./hello-desk && plinth module dev"),
        "{stdout}"
    );

    // 2. plinth module dev (the target folder shared with this build: deps are warm)
    let mut dev = plinth();
    dev.args(["module", "dev"])
        .current_dir(&module)
        .env("PLINTH_URL", &url)
        .env("CARGO_TARGET_DIR", target_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut dev = Running(dev.spawn().expect("plinth module dev starts"));
    let lines = lines_of(&mut dev.0);
    let mut seen = Vec::new();
    let curl = wait_for_line(&lines, &mut seen, PATIENCE, |l| {
        l.trim_start().starts_with("curl ")
    });
    let Some(curl) = curl else {
        panic!("no curl printed: {seen:?}\n{}", up_log());
    };
    let curl = curl.trim().to_owned();
    assert!(
        seen.iter().any(|l| l == "published hello-desk 0.1.0-dev.1"),
        "{seen:?}"
    );

    // 3. the printed curl
    let (status, body) = run_curl(&curl);
    let first_call = started.elapsed();
    assert_eq!((status, &body), (200, &json!([])), "{seen:?}");

    // The backend reads its configuration with the key the platform gave it (finding 3).
    let items = format!("{url}/api/v1/hello-desk/items");
    let token = token_of(&curl);
    let (status, item) = create_item(&items, &token, "Ann").await;
    assert_eq!(status, 201, "{item}\n{}", up_log());
    assert_eq!(item["greeting"], "Hello, Ann!");

    // Its frontend was published with the version and is served as listed, each file
    // matching the SHA-384 the console loads it with.
    frontend_served_as_published(&url, &token).await;

    // An edit is live after the next round, as a new dev version.
    let manifest_path = module.join("manifest.json");
    let manifest = std::fs::read_to_string(&manifest_path).expect("the manifest");
    let edited = manifest.replace("\"greeting\": \"Hello\"", "\"greeting\": \"Howdy\"");
    assert_ne!(manifest, edited, "the scaffold's default greeting changed");
    let changed = Instant::now();
    std::fs::write(&manifest_path, edited).expect("the manifest edited");
    let again = wait_for_line(&lines, &mut seen, PATIENCE, |l| l.starts_with("ready:"));
    assert!(again.is_some(), "no second round: {seen:?}\n{}", up_log());
    let second_round = changed.elapsed();
    assert!(
        seen.iter().any(|l| l == "published hello-desk 0.1.0-dev.2"),
        "{seen:?}"
    );
    let (status, item) = create_item(&items, &token, "Bob").await;
    assert_eq!((status, &item["greeting"]), (201, &json!("Howdy, Bob!")));

    // Ctrl-C stops watching and exits 0; the module stays installed.
    let stopped = interrupt(&mut dev.0, Duration::from_secs(10));
    assert!(stopped.is_some_and(|s| s.success()), "{stopped:?}");
    let rest: Vec<String> = lines.try_iter().collect();
    assert!(
        rest.iter().any(|l| l.starts_with("stopped watching")),
        "{rest:?}"
    );
    let (status, _) = run_curl(&curl);
    assert_eq!(status, 200);
    eprintln!(
        "module path: first curl answered {:.1} s after `plinth module new` (both commands and \
         the module's first build); an edited manifest live after {:.1} s",
        first_call.as_secs_f64(),
        second_round.as_secs_f64()
    );
    assert!(
        first_call < GOAL,
        "the three commands took {first_call:?}, past the goal of {GOAL:?}"
    );
}

/// The scaffold's page: listed by `GET /api/v1/hello-desk/frontend`, each file served from
/// the listed base with the listed integrity, for a year.
async fn frontend_served_as_published(url: &str, token: &str) {
    use base64::Engine;
    let client = reqwest::Client::new();
    let frontend: Value = client
        .get(format!("{url}/api/v1/modules/hello-desk/frontend"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(frontend["type"], "spa-module", "{frontend}");
    assert_eq!(frontend["entry_point"], "module.js", "{frontend}");
    let base = frontend["base"].as_str().expect("published with its files");
    assert!(
        base.starts_with("/console/bundles/hello-desk/0.1.0-dev.1/"),
        "{base}"
    );
    let files = frontend["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{frontend}");
    let served = client
        .get(format!("{url}{base}module.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(
        served.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let body = served.bytes().await.unwrap();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA384, &body);
    let integrity = format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    );
    assert_eq!(files[0]["integrity"], integrity);
    assert!(
        String::from_utf8_lossy(&body).contains("context.api.get('/items')"),
        "the scaffold's page calls its route"
    );
}

/// A platform in this process whose `dev_command`s run, by default, in a folder that is not
/// the module's.
struct Platform {
    url: String,
    data_dir: PathBuf,
    elsewhere: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Platform {
    async fn start() -> Self {
        let elsewhere = tempfile::tempdir().expect("a temporary folder");
        let data_dir = elsewhere.path().join(".plinth");
        let options = Options {
            port: 0,
            data_dir: data_dir.clone(),
            demo: false,
            aws: None,
            working_dir: elsewhere.path().to_path_buf(),
        };
        let running = platform::start(&options)
            .await
            .expect("the platform starts");
        let url = format!("http://{}", running.addr);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(running.serve(async {
            let _ = stopped.await;
        }));
        Self {
            url,
            data_dir,
            elsewhere,
            stop: Some(stop),
        }
    }

    fn admin_token(&self) -> String {
        let output = plinth()
            .args(["token", "--roles", "platform:admin", "--data-dir"])
            .arg(&self.data_dir)
            .output()
            .expect("plinth runs");
        assert!(output.status.success(), "{}", output_text(&output));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Runs `plinth ARGS --url … --token …` in `dir`, off the test's runtime.
    async fn plinth(&self, dir: &Path, args: &[&str]) -> Output {
        let mut command = plinth();
        command
            .args(args)
            .args(["--url", &self.url, "--token", &self.admin_token()])
            .current_dir(dir);
        tokio::task::spawn_blocking(move || command.output().expect("plinth runs"))
            .await
            .expect("plinth ran")
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn manifest(name: &str, dev_command: Option<&str>) -> Value {
    let mut backend = json!({"type": "microservice", "api_prefix": format!("/api/v1/{name}"),
        "health_check": "/health"});
    if let Some(command) = dev_command {
        backend["dev_command"] = json!(command);
    }
    json!({"name": name, "display_name": name, "version": "1.0.0", "backend": backend,
        "dependencies": {"platform_version": ">=2.0.0"}})
}

/// Finding 2: `plinth module install NAME --version V`, run in the module's folder as its
/// README says, ran the dev_command in `plinth up`'s folder (`no bin target named …`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_installed_from_its_folder_runs_its_dev_command_there() {
    let platform = Platform::start().await;
    let module = tempfile::tempdir().expect("the module's folder");
    // Starts only where the module's own files are, as `cargo run --bin NAME` does.
    let command = format!(
        "test -f ./only-in-the-module-folder && exec '{}'",
        backend_example().display()
    );
    let name = "here-desk";
    std::fs::write(
        module.path().join("manifest.json"),
        manifest(name, Some(&command)).to_string(),
    )
    .expect("the manifest");
    std::fs::write(module.path().join("only-in-the-module-folder"), "").expect("a file");

    let published = platform
        .plinth(module.path(), &["module", "publish", "manifest.json"])
        .await;
    assert!(published.status.success(), "{}", output_text(&published));
    let installed = platform
        .plinth(
            module.path(),
            &["module", "install", name, "--version", "1.0.0"],
        )
        .await;
    assert!(installed.status.success(), "{}", output_text(&installed));
    let text = String::from_utf8_lossy(&installed.stdout);
    assert!(
        text.contains("here-desk: installed (serving 1.0.0"),
        "{text}"
    );

    // A folder that is not there is named, not sent.
    let gone = platform.elsewhere.path().join("gone");
    let gone = gone.to_str().expect("a UTF-8 path");
    let upgrade = [
        "module",
        "upgrade",
        name,
        "--version",
        "1.0.0",
        "--dir",
        gone,
    ];
    let refused = platform.plinth(platform.elsewhere.path(), &upgrade).await;
    assert_eq!(refused.status.code(), Some(2), "{}", output_text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.starts_with(&format!("error: --dir {gone}: ")),
        "{stderr}"
    );
    // Over the API, a relative folder would mean the platform's: refused, naming the field.
    let answer = reqwest::Client::new()
        .post(format!("{}/api/v1/modules/{name}/upgrade", platform.url))
        .bearer_auth(platform.admin_token())
        .json(&json!({"version": "1.0.0", "dev_dir": "here-desk"}))
        .send()
        .await
        .expect("the platform answers");
    assert_eq!(answer.status(), 422);
    let problem: Value = answer.json().await.expect("a problem document");
    assert_eq!(problem["errors"][0]["path"], "dev_dir", "{problem}");
    assert_eq!(
        problem["errors"][0]["message"], "`here-desk` is not an absolute path",
        "{problem}"
    );
}

/// Finding 3: a backend installed with `--endpoint` got every request refused ("the module API
/// key is not valid"): the key issued at install was never shown to anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_install_prints_the_api_key_the_backend_needs() {
    let platform = Platform::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let backend = format!("http://{}", listener.local_addr().expect("an address"));
    let app = axum::Router::new().route(
        "/health",
        axum::routing::get(|| async { axum::Json(json!({"status": "healthy"})) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let folder = platform.elsewhere.path();
    let name = "own-desk";
    std::fs::write(folder.join("own.json"), manifest(name, None).to_string()).expect("written");
    let published = platform
        .plinth(folder, &["module", "publish", "own.json"])
        .await;
    assert!(published.status.success(), "{}", output_text(&published));
    let install = [
        "module",
        "install",
        name,
        "--version",
        "1.0.0",
        "--endpoint",
        &backend,
    ];
    let installed = platform.plinth(folder, &install).await;
    assert!(installed.status.success(), "{}", output_text(&installed));
    let text = String::from_utf8_lossy(&installed.stdout).into_owned();
    let key = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("plk_"))
        .unwrap_or_else(|| panic!("no key printed: {text}"));
    assert!(
        text.contains(&format!("PLINTH_API_KEY={key}"))
            && text.contains(&format!("plinth module rotate-key {name}")),
        "{text}"
    );
    // The printed key is the module's: the platform takes it.
    let manifest_url = format!("{}/api/v1/modules/{name}/manifest", platform.url);
    let answer = reqwest::Client::new()
        .get(&manifest_url)
        .header("X-Module-API-Key", key)
        .send()
        .await
        .expect("the platform answers");
    assert_eq!(answer.status(), 200);

    // `--output json` carries it too, for scripts; a rotation replaces it.
    let rotated = platform
        .plinth(folder, &["module", "rotate-key", name, "--output", "json"])
        .await;
    assert!(rotated.status.success(), "{}", output_text(&rotated));
    let rotated: Value = serde_json::from_slice(&rotated.stdout).expect("JSON");
    let new_key = rotated["key"].as_str().expect("a key");
    let check = |key: String| {
        let url = manifest_url.clone();
        async move {
            reqwest::Client::new()
                .get(url)
                .header("X-Module-API-Key", key)
                .send()
                .await
                .expect("the platform answers")
                .status()
                .as_u16()
        }
    };
    assert_eq!(check(new_key.to_owned()).await, 200);
    assert_eq!(check(key.to_owned()).await, 401, "the old key stopped");
}

/// `plinth module publish` carries the files of the manifest's `frontend.bundle` folder: the
/// version lists each with its SHA-384 and the console serves them as listed. A link in the
/// folder (which could point anywhere) stops the publish before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plinth_module_publish_carries_the_frontend_folder_and_the_console_serves_it_as_listed() {
    use base64::Engine;
    let platform = Platform::start().await;
    let module = tempfile::tempdir().expect("the module's folder");
    let name = "page-desk";
    let mut document = manifest(name, None);
    document["frontend"] = json!({"type": "spa-module", "bundle": "ui"});
    std::fs::write(module.path().join("manifest.json"), document.to_string()).unwrap();
    std::fs::create_dir_all(module.path().join("ui")).unwrap();
    let page = b"export default { init() {}, loadPage(p, c) { c.textContent = 'hi'; } };";
    std::fs::write(module.path().join("ui/module.js"), page).unwrap();
    std::fs::write(module.path().join("ui/.DS_Store"), "left out").unwrap();

    let published = platform
        .plinth(module.path(), &["module", "publish", "manifest.json"])
        .await;
    assert!(published.status.success(), "{}", output_text(&published));
    let stdout = String::from_utf8_lossy(&published.stdout);
    assert!(
        stdout.starts_with("published page-desk 1.0.0 with its frontend (1 files, bundle "),
        "{stdout}"
    );
    let versions: Value = reqwest::Client::new()
        .get(format!("{}/api/v1/modules/{name}/versions", platform.url))
        .bearer_auth(platform.admin_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bundle = &versions[0]["bundle"];
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA384, page);
    let integrity = format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    );
    assert_eq!(
        bundle["files"],
        json!([{"path": "module.js", "integrity": integrity, "size": page.len()}])
    );
    let served = reqwest::get(format!(
        "{}/console/bundles/{name}/1.0.0/{}/module.js",
        platform.url,
        bundle["digest"].as_str().unwrap()
    ))
    .await
    .unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.bytes().await.unwrap().as_ref(), page);

    // A link in the folder: refused naming the field, nothing published.
    document["name"] = json!("link-desk");
    std::fs::write(module.path().join("manifest.json"), document.to_string()).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", module.path().join("ui/host")).unwrap();
    let refused = platform
        .plinth(module.path(), &["module", "publish", "manifest.json"])
        .await;
    assert_eq!(refused.status.code(), Some(2), "{}", output_text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("frontend.bundle: ") && stderr.contains("is a link"),
        "{stderr}"
    );
    let none = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/modules/link-desk/versions",
            platform.url
        ))
        .bearer_auth(platform.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 404);
}
