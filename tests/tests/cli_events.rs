//! `plinth events test-pattern`, run as a user runs it: the documented pattern cases through the
//! binary, invalid patterns, `@file` arguments, and input that is not JSON.

use plinth_tests::{run_plinth, workspace_root};
use serde_json::Value;

const CASES: &str = "module-sdk/src/events/pattern/cases";

fn cases(file: &str) -> Value {
    let path = workspace_root().join(CASES).join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_json::from_str(&text).expect("the case file is JSON")
}

fn test_pattern(pattern: &str, event: &str) -> plinth_tests::Run {
    run_plinth(
        &workspace_root(),
        &["events", "test-pattern", pattern, event],
    )
}

#[test]
fn every_documented_case_prints_its_answer() {
    let file = cases("matching.json");
    let groups = file["groups"].as_array().expect("groups");
    let mut ran = 0;
    let mut failures = Vec::new();
    for case in groups
        .iter()
        .flat_map(|g| g["cases"].as_array().into_iter().flatten())
    {
        let event = match &case["event"] {
            Value::String(sample) => &file["samples"][sample.as_str()],
            event => event,
        };
        let run = test_pattern(&case["pattern"].to_string(), &event.to_string());
        let expected = format!("{}\n", case["matches"]);
        if (run.code, run.stdout.as_str()) != (Some(0), expected.as_str()) {
            failures.push(format!("{}: {run:?}", case["name"]));
        }
        ran += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(ran >= 100, "only {ran} cases ran");
}

#[test]
fn an_invalid_pattern_exits_2_with_the_reason() {
    let invalid = cases("invalid.json");
    let invalid = invalid.as_array().expect("a list");
    for case in invalid {
        let run = test_pattern(&case["pattern"].to_string(), r#"{"source": "x"}"#);
        let reason = case["reason"].as_str().expect("a reason");
        assert_eq!(run.code, Some(2), "{run:?}");
        assert_eq!(run.stdout, "");
        assert!(
            run.stderr.starts_with(&format!(
                "error: Event pattern is not valid. Reason: {reason}"
            )),
            "{run:?}"
        );
    }
    let run = test_pattern(
        r#"{"detail": {"amount": [{"numeric": [">", 10, "<", 5]}]}}"#,
        "{}",
    );
    assert_eq!(
        run.stderr,
        "error: Event pattern is not valid. Reason: Bottom must be less than top (at `detail.amount[0].numeric`)\n"
    );
}

#[test]
fn pattern_and_event_can_be_files() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(
        dir.path().join("pattern.json"),
        r#"{"source": ["plinth.registry"], "detail-type": [{"prefix": "tenant.module."}]}"#,
    )
    .expect("written");
    std::fs::write(
        dir.path().join("event.json"),
        r#"{"source": "plinth.registry", "detail-type": "tenant.module.enabled", "detail": {}}"#,
    )
    .expect("written");
    let args = ["events", "test-pattern", "@pattern.json", "@event.json"];
    let run = run_plinth(dir.path(), &args);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(0), "true\n"),
        "{run:?}"
    );
    let run = run_plinth(
        dir.path(),
        &[
            "events",
            "test-pattern",
            "@pattern.json",
            r#"{"source": "plinth.module.hr"}"#,
        ],
    );
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(0), "false\n"),
        "{run:?}"
    );
}

#[test]
fn unreadable_or_non_json_input_exits_2() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let run = run_plinth(
        dir.path(),
        &["events", "test-pattern", "@missing.json", "{}"],
    );
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr
            .starts_with("error: cannot read the pattern from missing.json: "),
        "{run:?}"
    );
    let run = test_pattern(r#"{"source": ["x"]}"#, "{not json");
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr
            .starts_with("error: the event is not JSON: key must be a string"),
        "{run:?}"
    );
}
