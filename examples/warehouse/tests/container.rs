//! The warehouse image's container health check, as ECS runs it: `["CMD", "/proc/1/exe",
//! "health"]`, the module's own binary asking the serving instance — no shell, `curl` or
//! `wget` in `debian:bookworm-slim` needed (finding 6).

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

const BINARY: &str = env!("CARGO_BIN_EXE_warehouse");

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a local port");
    listener.local_addr().expect("its address").port()
}

/// The binary with only what ECS would give it here: a port, a platform it cannot reach.
fn warehouse(port: u16) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env_clear()
        .env("PORT", port.to_string())
        .env("PLINTH_URL", "http://127.0.0.1:9")
        .env("RUST_LOG", "warn");
    command
}

fn health(port: u16) -> Output {
    warehouse(port)
        .arg("health")
        .output()
        .expect("`warehouse health` runs")
}

/// Kills the served instance when the test ends, whatever happens.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn listening(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn container_health_check_needs_no_curl_in_the_image() {
    let port = free_port();
    let served = warehouse(port).spawn().expect("the warehouse starts");
    let served = Served(served);
    assert!(listening(port), "the warehouse listens on {port}");
    let healthy = health(port);
    assert_eq!(healthy.status.code(), Some(0), "{}", stderr(&healthy));
    drop(served);

    let unhealthy = health(port);
    assert_eq!(unhealthy.status.code(), Some(1));
    let reason = stderr(&unhealthy);
    let expected = format!("unhealthy: cannot reach http://127.0.0.1:{port}/health: ");
    assert!(reason.starts_with(&expected), "{reason}");
}

#[tokio::test]
async fn the_health_check_fails_when_the_instance_answers_an_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a local port");
    let port = listener.local_addr().expect("its address").port();
    let failing = Router::new().route("/health", get(|| async { StatusCode::SERVICE_UNAVAILABLE }));
    tokio::spawn(async move { axum::serve(listener, failing).await });
    let output = tokio::task::spawn_blocking(move || health(port))
        .await
        .expect("the check ran");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!("unhealthy: http://127.0.0.1:{port}/health answered 503 Service Unavailable\n")
    );
}

/// The images the example and `plinth module new` ship start the module binary in exec form
/// (so it is PID 1, `/proc/1/exe`) and rely on no `curl` or `wget`.
#[test]
fn the_shipped_dockerfiles_run_the_module_binary_as_pid_1_without_curl() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dockerfiles = [
        ("examples/warehouse/Dockerfile", "warehouse"),
        ("local/templates/module/Dockerfile", "{{name}}"),
    ];
    for (path, binary) in dockerfiles {
        let text = std::fs::read_to_string(root.join(path)).expect("the Dockerfile");
        let instructions: Vec<&str> = text
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
            .collect();
        for tool in ["curl", "wget"] {
            assert!(
                !instructions.iter().any(|line| line.contains(tool)),
                "{path} relies on {tool}"
            );
        }
        let entrypoint = format!("ENTRYPOINT [\"/usr/local/bin/{binary}\"]");
        assert!(
            instructions.contains(&entrypoint.as_str()),
            "{path}: {entrypoint}"
        );
        assert!(
            !instructions.iter().any(|line| line.starts_with("CMD")),
            "{path}: a CMD would become the binary's arguments"
        );
    }
}

/// Finding 11 of "The first hour": a module's log written to a file (as `plinth up` keeps
/// them in `logs/`) has no colour escape codes.
#[test]
fn a_log_written_to_a_file_has_no_colour_codes() {
    let port = free_port();
    let path = std::env::temp_dir().join(format!("warehouse-{}-{port}.log", std::process::id()));
    let log = std::fs::File::create(&path).expect("a log file");
    let served = warehouse(port)
        .env("RUST_LOG", "info")
        .stderr(log)
        .spawn()
        .expect("the warehouse starts");
    let served = Served(served);
    assert!(listening(port), "the warehouse listens on {port}");
    std::thread::sleep(Duration::from_millis(300));
    drop(served);
    let written = std::fs::read_to_string(&path).expect("the log");
    let _ = std::fs::remove_file(&path);
    assert!(!written.trim().is_empty(), "the module logged something");
    assert!(!written.contains('\u{1b}'), "no escape codes: {written:?}");
}
