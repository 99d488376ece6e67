//! Helpers for Plinth's end-to-end tests (in `tests/tests/`), which drive Plinth as a user
//! would: through the `plinth` binary and, later, the HTTP API.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root, where `examples/` and the crates live.
#[must_use]
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The built `plinth` binary.
///
/// `CARGO_BIN_EXE_plinth` exists only inside `plinth-local`, so this looks next to the running
/// test executable (`target/debug/deps/…` → `target/debug/plinth`), whatever the target folder.
/// `cargo test --workspace` builds it first (an integration test of `plinth-local` needs it).
///
/// # Panics
/// When the binary is not there, with the command that builds it.
#[must_use]
pub fn plinth_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe.parent().expect("the test executable's folder");
    let profile = deps.parent().unwrap_or(deps);
    let bin = profile.join(format!("plinth{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo test --workspace` or `cargo build --bin plinth` first",
        bin.display()
    );
    bin
}

/// What a finished `plinth` run gave back.
#[derive(Debug)]
pub struct Run {
    /// Exit status code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

/// Runs `plinth` with `args` in `dir` and waits for it.
///
/// # Panics
/// When the binary cannot be started.
#[must_use]
pub fn run_plinth(dir: &Path, args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(plinth_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the plinth binary starts");
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Runs `plinth` with `args` in `dir`, with `env` added to its environment (and no
/// `PLINTH_URL` or `PLINTH_TOKEN` of the caller's), and waits for it.
///
/// # Panics
/// When the binary cannot be started.
#[must_use]
pub fn run_plinth_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(plinth_bin())
        .args(args)
        .env_remove("PLINTH_URL")
        .env_remove("PLINTH_TOKEN")
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .expect("the plinth binary starts");
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}
