//! `plinth module new`, as a module team uses it: the generated repository builds and its
//! tests pass as generated, against this checkout's module SDK, found without flags.

use std::path::{Path, PathBuf};
use std::process::Command;

use plinth_tests::{run_plinth, workspace_root};

/// The target folder this test was built into (`…/target/debug/deps/this-test`), so the
/// generated module reuses the dependencies built already instead of building them again.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe.parent().expect("deps");
    deps.parent()
        .and_then(Path::parent)
        .expect("the target folder")
        .to_path_buf()
}

#[test]
fn a_generated_module_builds_and_its_tests_pass() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let run = run_plinth(dir.path(), &["module", "new", "hello-desk"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let sdk = std::fs::canonicalize(workspace_root().join("module-sdk")).expect("the SDK");
    let first: Vec<&str> = run.stdout.lines().take(3).collect();
    assert_eq!(
        first,
        [
            "Created module `hello-desk` in ./hello-desk".to_owned(),
            format!("  on the module SDK in {}", sdk.display()),
            "Next, with `plinth up` running: cd ./hello-desk && plinth module dev".to_owned(),
        ]
    );
    let module = dir.path().join("hello-desk");
    let validate = run_plinth(&module, &["manifest", "validate", "manifest.json"]);
    assert_eq!(
        validate.stdout,
        "hello-desk 0.1.0: valid (microservice backend, 2 permissions, 2 routes)\n"
    );

    // The checkout's lock, copied in, pins the dependency versions built already: the build
    // needs nothing from the network.
    let output = Command::new(env!("CARGO"))
        .args(["test", "--offline", "--quiet"])
        .current_dir(&module)
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("test result: ok. 4 passed; 0 failed"),
        "the generated tests ran: {stdout}"
    );
}
