//! The pattern language held to cases from EventBridge's documentation of event patterns
//! (content filtering, arrays, null and empty values, `$or`, array-consistent matching) and to
//! its validation errors. The cases live in `cases/*.json`, one per line, so that they read as
//! tables and other tools (the `plinth events test-pattern` tests) can run them too.

use serde_json::{Value, json};

use super::Pattern;

const MATCHING: &str = include_str!("cases/matching.json");
const INVALID: &str = include_str!("cases/invalid.json");

fn read(text: &str) -> Value {
    serde_json::from_str(text).expect("the case file is JSON")
}

/// Runs every case of the group titled `title`; gives back how many ran.
fn run_group(title: &str) -> usize {
    let file = read(MATCHING);
    let group = file["groups"]
        .as_array()
        .and_then(|groups| groups.iter().find(|g| g["group"] == title))
        .unwrap_or_else(|| panic!("no group `{title}` in cases/matching.json"));
    let cases = group["cases"].as_array().expect("cases");
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let event = match &case["event"] {
            Value::String(sample) => &file["samples"][sample.as_str()],
            event => event,
        };
        let expected = case["matches"].as_bool().expect("`matches` is a boolean");
        match Pattern::parse(&case["pattern"]) {
            Ok(pattern) if pattern.matches(event) == expected => {}
            Ok(_) => failures.push(format!("{name}: expected {expected}")),
            Err(error) => failures.push(format!("{name}: {error}")),
        }
    }
    assert!(failures.is_empty(), "{title}:\n{}", failures.join("\n"));
    cases.len()
}

#[test]
fn exact_values_arrays_null_and_empty_strings() {
    assert_eq!(
        run_group("exact values, arrays, null and empty strings"),
        22
    );
}

#[test]
fn prefix_suffix_equals_ignore_case_and_wildcard() {
    assert_eq!(
        run_group("prefix, suffix, equals-ignore-case and wildcard"),
        23
    );
}

#[test]
fn anything_but() {
    assert_eq!(run_group("anything-but"), 24);
}

#[test]
fn numeric_ranges() {
    assert_eq!(run_group("numeric ranges"), 16);
}

#[test]
fn ip_addresses() {
    assert_eq!(run_group("IP addresses"), 8);
}

#[test]
fn exists() {
    assert_eq!(run_group("exists"), 12);
}

#[test]
fn or_conditions() {
    assert_eq!(run_group("$or"), 10);
}

#[test]
fn arrays_of_objects_match_element_by_element() {
    assert_eq!(run_group("arrays of objects match element by element"), 7);
}

#[test]
fn every_group_is_tested() {
    let groups = read(MATCHING)["groups"].as_array().map_or(0, Vec::len);
    assert_eq!(
        groups, 8,
        "a new group in cases/matching.json needs its test"
    );
}

/// Each invalid pattern with EventBridge's reason and the place it points at.
#[test]
fn invalid_patterns_are_refused_with_eventbridges_reason() {
    let cases = read(INVALID);
    let cases = cases.as_array().expect("a list of cases");
    let mut failures = Vec::new();
    for case in cases {
        let (pattern, reason, at) = (&case["pattern"], &case["reason"], &case["at"]);
        match Pattern::parse(pattern) {
            Ok(_) => failures.push(format!("{pattern}: accepted")),
            Err(error) if reason != error.reason() || at != error.path() => failures.push(format!(
                "{pattern}: got `{}` at `{}`",
                error.reason(),
                error.path()
            )),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(cases.len(), 55);
}

#[test]
fn an_error_reads_like_eventbridges() {
    let error = Pattern::parse(&json!({"detail": {"state": []}})).expect_err("invalid");
    assert_eq!(
        error.to_string(),
        "Event pattern is not valid. Reason: Empty arrays are not allowed (at `detail.state`)"
    );
    let error = Pattern::from_json_str("{\"source\": [").expect_err("not JSON");
    assert!(
        error.reason().starts_with("not JSON: EOF while parsing"),
        "{error}"
    );
}

#[test]
fn the_pattern_keeps_its_json_for_eventbridge() {
    let written = json!({"source": ["plinth.registry"], "detail-type": [{"prefix": "tenant."}]});
    let pattern = Pattern::parse(&written).expect("valid");
    assert_eq!(pattern.as_value(), &written);
}
