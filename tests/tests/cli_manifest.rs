//! `plinth manifest validate`, run as a user runs it: exit status and output text.

use plinth_tests::{run_plinth, workspace_root};

const SEED: &str = "module-sdk/tests/fixtures/manifests/seed-financial.json";
const EXAMPLE: &str = "examples/financial/manifest.json";

#[test]
fn the_seed_manifest_is_valid() {
    let run = run_plinth(&workspace_root(), &["manifest", "validate", SEED]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.stdout,
        "financial 1.2.0: valid (microservice backend, 5 permissions, 3 routes)\n"
    );
    assert_eq!(run.stderr, "");
}

#[test]
fn the_example_module_is_valid() {
    let run = run_plinth(&workspace_root(), &["manifest", "validate", EXAMPLE]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.stdout,
        "financial 1.2.0: valid (lambda backend, 6 permissions, 9 routes)\n"
    );
}

#[test]
fn a_broken_manifest_lists_every_problem_and_exits_1() {
    let file = "module-sdk/tests/fixtures/manifests/broken/multiple-problems.json";
    let run = run_plinth(&workspace_root(), &["manifest", "validate", file]);
    assert_eq!(run.code, Some(1), "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "$: missing required field `version`",
            "backend.port: expected an integer, found a string",
            "database.tables[3]: `ledger` must start with the schema prefix `financial_`",
            "dependencies.platform_version: `>=3.0.0` is not met by the platform contract version 2.0.0",
            "$: unknown field `permisions` (did you mean `permissions`?)",
            "routes[0].permission: `financial:accounts.read` is not declared in `permissions`",
            "routes[1].permission: `financial:invoices.write` is not declared in `permissions`",
            "routes[2].permission: `financial:invoices.read` is not declared in `permissions`",
            "subscription_tier: expected one of `free`, `basic`, `premium`, `enterprise`, found `gold`",
            "hooks.post_install: `hooks/post_install` must be a path on the backend, starting with `/`",
        ]
    );
    assert_eq!(
        run.stderr,
        format!("error: {file} is not a valid manifest (10 problems)\n")
    );
}

#[test]
fn a_file_that_is_not_json_exits_2_with_line_and_column() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(
        dir.path().join("manifest.json"),
        "{\n  \"name\": \"financial\",\n  \"version\": \"1.2.0\"\n  \"backend\": {}\n}\n",
    )
    .expect("written");
    let run = run_plinth(dir.path(), &["manifest", "validate", "manifest.json"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "error: manifest.json is not valid JSON: expected `,` or `}` at line 4 column 3\n"
    );
}

#[test]
fn a_missing_file_exits_2() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let run = run_plinth(dir.path(), &["manifest", "validate", "nowhere.json"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.starts_with("error: cannot read nowhere.json: "),
        "{run:?}"
    );
}
