//! Runs the built `plinth` binary. Besides checking it starts, this test makes
//! `cargo test --workspace` build `target/debug/plinth`, which `plinth-tests` drives.

use std::process::Command;

fn plinth(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args(args)
        .output()
        .expect("the plinth binary runs")
}

#[test]
fn help_lists_the_subcommands() {
    let output = plinth(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("up") && help.contains("manifest"), "{help}");
}

#[test]
fn up_refuses_a_busy_port_with_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let data = tempfile::tempdir().unwrap();
    let output = plinth(&[
        "up",
        "--port",
        &port,
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "error: port {port} is busy: stop what uses it, or pick another with --port"
        )),
        "{stderr}"
    );
}

#[test]
fn up_refuses_a_data_dir_it_cannot_use() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let output = plinth(&[
        "up",
        "--port",
        "0",
        "--data-dir",
        file.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot use the data directory"), "{stderr}");
}

#[test]
fn a_bad_argument_exits_2() {
    let output = plinth(&["manifest", "validate"]);
    assert_eq!(output.status.code(), Some(2));
}
