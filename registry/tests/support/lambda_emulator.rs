//! Lambda functions run as Lambda runs them, for tests: cargo-lambda's runtime emulator
//! (`cargo lambda watch --only-lambda-apis`) serves the Runtime API and the Invoke API, and
//! each function is its own process polling it, started with the `AWS_LAMBDA_*` variables
//! the emulator prints.
//!
//! The emulator invokes only functions named as binaries of the Cargo package it runs in, so
//! it runs in a throwaway folder whose `Cargo.toml` names the functions; and it is invoked by
//! function name, not ARN. `./tests/run` installs cargo-lambda and sets `PLINTH_CARGO_LAMBDA`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

/// One function: its name and the binary that serves it.
pub struct Function<'a> {
    pub name: &'a str,
    pub binary: &'a Path,
    pub env: &'a [(&'a str, &'a str)],
}

pub struct LambdaEmulator {
    /// Base URL of the Invoke API (`AWS_ENDPOINT_URL_LAMBDA`).
    pub endpoint: String,
    watch: Child,
    functions: Vec<(String, Child)>,
    dir: TempDir,
}

/// The cargo-lambda executable, or `None` (and a skip message) when there is none; under CI
/// a missing emulator is a failure.
pub fn cargo_lambda(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PLINTH_CARGO_LAMBDA")
        .map(PathBuf::from)
        .filter(|path| path.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: CI is set but PLINTH_CARGO_LAMBDA is not; run the tests with ./tests/run"
        );
        eprintln!(
            "{test}: skipped, no Lambda emulator (PLINTH_CARGO_LAMBDA unset); ./tests/run installs one"
        );
    }
    found
}

/// The workspace's target folder.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    )
}

/// The debug binary `name` of workspace package `package`, built when missing.
pub fn workspace_binary(package: &str, name: &str) -> PathBuf {
    let binary = target_dir().join("debug").join(name);
    if !binary.is_file() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", package, "--bin", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build -p {package} failed");
    }
    binary
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl LambdaEmulator {
    /// Starts the emulator and each function; `None` when cargo-lambda is not installed.
    pub async fn start(test: &str, functions: &[Function<'_>]) -> Option<Self> {
        Self::start_declaring(test, functions, &[]).await
    }

    /// As [`Self::start`], and the emulator also takes invocations of the functions named in
    /// `later`, whose processes are started afterwards ([`Self::run`]).
    pub async fn start_declaring(
        test: &str,
        functions: &[Function<'_>],
        later: &[&str],
    ) -> Option<Self> {
        let cargo_lambda = cargo_lambda(test)?;
        let dir = tempfile::tempdir().expect("temp dir");
        let bins: String = functions
            .iter()
            .map(|f| f.name)
            .chain(later.iter().copied())
            .map(|name| format!("[[bin]]\nname = \"{name}\"\npath = \"main.rs\"\n"))
            .collect();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            format!("[package]\nname = \"plinth-functions-under-test\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n{bins}"),
        )
        .expect("write the emulator's Cargo.toml");
        let port = free_port();
        let watch = Command::new(&cargo_lambda)
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
            ])
            .arg(port.to_string())
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start cargo lambda watch");
        let endpoint = format!("http://127.0.0.1:{port}");
        let mut emulator = Self {
            endpoint,
            watch,
            functions: Vec::new(),
            dir,
        };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for function in functions {
            emulator.run(function);
        }
        Some(emulator)
    }

    /// Starts (or restarts) the process of `function`.
    pub fn run(&mut self, function: &Function<'_>) {
        self.stop(function.name);
        let runtime_api = format!("{}/.rt/{}", self.endpoint, function.name);
        let log = std::fs::File::create(self.log_path(function.name)).expect("the function's log");
        let log_too = log.try_clone().expect("the function's log");
        let child = Command::new(function.binary)
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", function.name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .envs(function.env.iter().copied())
            .stdout(log)
            .stderr(log_too)
            .spawn()
            .expect("start the function's process");
        self.functions.push((function.name.to_owned(), child));
    }

    /// What function `name` wrote (stdout and stderr) since it was last started: a failing
    /// test shows it.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_path(name)).unwrap_or_default()
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    /// Stops the process of function `name`: its invocations then go unanswered.
    pub fn stop(&mut self, name: &str) {
        self.functions.retain_mut(|(function, child)| {
            if function == name {
                let _ = child.kill();
                let _ = child.wait();
                false
            } else {
                true
            }
        });
    }
}

impl Drop for LambdaEmulator {
    fn drop(&mut self) {
        for (_, child) in &mut self.functions {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.watch.kill();
        let _ = self.watch.wait();
    }
}
