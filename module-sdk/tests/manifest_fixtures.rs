//! The manifest contract tested on real documents: the seed's example, the example module,
//! and broken manifests whose every problem is checked by path and message.

use std::path::{Path, PathBuf};

use plinth_module_sdk::manifest::{BackendKind, Hook, KeyType, Method};
use plinth_module_sdk::{Manifest, ManifestError, Tier, validate_manifest};
use serde_json::Value;

fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/manifests")
        .join(relative)
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not JSON: {error}", path.display()))
}

fn problems_of(relative: &str) -> Vec<String> {
    match validate_manifest(&read_json(&fixture(relative))) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    }
}

fn valid(path: &Path) -> Manifest {
    validate_manifest(&read_json(path)).unwrap_or_else(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        panic!("{} should be valid:\n{}", path.display(), lines.join("\n"))
    })
}

#[test]
fn the_seed_example_validates_as_it_stands() {
    let manifest = valid(&fixture("seed-financial.json"));
    assert_eq!(manifest.name.as_str(), "financial");
    assert_eq!(manifest.version, semver::Version::new(1, 2, 0));
    assert_eq!(manifest.backend.kind, BackendKind::Microservice);
    assert_eq!(manifest.backend.port, Some(8001));
    assert_eq!(manifest.subscription_tier, Tier::Premium);
    assert_eq!(manifest.permissions.len(), 5);
    assert_eq!(manifest.routes.len(), 3);
    assert_eq!(manifest.schema_prefix(), "financial_");
    let database = manifest.database.as_ref().expect("a database");
    assert!(!database.is_dynamodb());
    assert_eq!(database.tables[0].name, "financial_accounts");
    assert_eq!(manifest.configuration.defaults["currency"], "USD");
    assert_eq!(
        manifest.dependencies.external_services,
        ["redis", "postgresql"]
    );
}

#[test]
fn the_example_module_validates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/financial/manifest.json");
    let manifest = valid(&path);
    assert_eq!(manifest.backend.kind, BackendKind::Lambda);
    let database = manifest.database.as_ref().expect("a database");
    assert!(database.is_dynamodb());
    let transactions = &database.tables[2];
    let sort_key = transactions.sort_key.as_ref().expect("a sort key");
    assert_eq!(
        (sort_key.name.as_str(), sort_key.kind),
        ("posted_at", KeyType::N)
    );
    assert_eq!(
        manifest
            .hooks
            .get(&Hook::PostEnableCompany)
            .map(String::as_str),
        Some("/_plinth/hooks/post_enable_company")
    );
    let features: Vec<&str> = manifest.features.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(features, ["invoicing", "payments", "reporting"]);
    assert_eq!(
        manifest.events.publishes,
        ["financial.invoice.created", "financial.invoice.paid"]
    );
    assert_eq!(manifest.routes[3].methods, [Method::Put, Method::Delete]);
}

#[test]
fn configuration_is_checked_against_the_module_schema() {
    let manifest = valid(&fixture("seed-financial.json"));
    let ok = serde_json::json!({"currency": "EUR", "tax_rate": 21, "invoice_prefix": "F", "payment_terms_days": 14});
    assert!(manifest.configuration.problems_in(&ok).is_empty());
    let bad = serde_json::json!({"currency": "euro", "tax_rate": 120, "payment_term_days": 14});
    let problems: Vec<String> = manifest
        .configuration
        .problems_in(&bad)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        problems,
        [
            "currency: `euro` does not match the pattern `^[A-Z]{3}$`",
            "tax_rate: must be at most 100",
            "$: unknown field `payment_term_days` (did you mean `payment_terms_days`?)",
        ]
    );
}

#[test]
fn a_valid_manifest_round_trips_through_its_typed_form() {
    for path in [
        fixture("seed-financial.json"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/financial/manifest.json"),
    ] {
        let manifest = valid(&path);
        let written = serde_json::to_value(&manifest).expect("serializes");
        assert_eq!(
            validate_manifest(&written),
            Ok(manifest),
            "{}",
            path.display()
        );
    }
}

#[test]
fn from_json_str_separates_bad_json_from_bad_manifests() {
    match Manifest::from_json_str("{\n  \"name\": \"financial\"\n  \"version\": \"1.0.0\"\n}") {
        Err(ManifestError::Json(error)) => assert_eq!((error.line(), error.column()), (3, 3)),
        other => panic!("expected a JSON error, got {other:?}"),
    }
    match Manifest::from_json_str("{}") {
        Err(ManifestError::Invalid(problems)) => assert_eq!(problems.len(), 4),
        other => panic!("expected problems, got {other:?}"),
    }
}

/// Each broken fixture, with every problem it must report, in order.
const BROKEN: &[(&str, &[&str])] = &[
    (
        "unknown-field-typo",
        &["$: unknown field `subscription_teir` (did you mean `subscription_tier`?)"],
    ),
    (
        "bad-route",
        &[
            "routes[2].path: `/invoices/{id}/` is not a valid route path: it must not end with `/`",
            "routes[2].methods[1]: `GET` is listed twice",
        ],
    ),
    (
        "bad-semver",
        &[
            "version: `1.2` is not a semantic version like `1.2.0`: unexpected end of input while parsing minor version number",
        ],
    ),
    (
        "defaults-failing-schema",
        &[
            "configuration.defaults.currency: `usd` does not match the pattern `^[A-Z]{3}$`",
            "configuration.defaults.tax_rate: expected a number, found a string",
            "configuration.defaults: unknown field `late_fee`",
        ],
    ),
    (
        "foreign-event",
        &[
            "events.publishes[1]: `invoice.paid` is outside this module's namespace: its events start with `financial.`",
        ],
    ),
    (
        "foreign-permission",
        &[
            "permissions[4].code: `billing:reports.read` is outside this module's namespace: its permissions start with `financial:`",
        ],
    ),
    (
        "invalid-config-schema",
        &[
            "configuration.schema.properties.tax_rate.type: is not valid JSON Schema: expected one of `array`, `boolean`, `integer`, `null`, `number`, `object`, `string`, found `decimal`",
        ],
    ),
    (
        "invalid-subscription-pattern",
        &[
            "events.subscribes[1].pattern: Event pattern is not valid. Reason: Bottom must be less than top (at `detail.amount[0].numeric`)",
            "events.subscribes[2].pattern: Event pattern is not valid. Reason: There must have at least 2 Objects in $or relationship. (at `$or`)",
        ],
    ),
    (
        "lambda-without-image",
        &[
            "backend: a lambda backend needs `image` (its container image) or `entry_point` (its handler)",
            "backend.port: only a microservice backend sets `port`; a lambda is invoked, not listened to",
        ],
    ),
    (
        "multiple-problems",
        &[
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
        ],
    ),
    ("not-an-object", &["$: expected an object, found an array"]),
    (
        "platform-version-too-new",
        &[
            "dependencies.platform_version: `>=3.0.0` is not met by the platform contract version 2.0.0",
        ],
    ),
    (
        "requires-itself",
        &["dependencies.required_modules[0].name: a module cannot depend on itself"],
    ),
    (
        "reserved-name",
        &["name: `tenants` is not a valid module name: it is reserved by the platform"],
    ),
    (
        "table-without-prefix",
        &["database.tables[1]: `transactions` must start with the schema prefix `financial_`"],
    ),
    (
        "undeclared-route-permission",
        &["routes[3].permission: `financial:reports.export` is not declared in `permissions`"],
    ),
    (
        "wrong-api-prefix",
        &[
            "backend.api_prefix: must be `/api/v1/financial` (`/api/v1/` and the module's name), found `/api/financial`",
        ],
    ),
];

#[test]
fn broken_fixtures_report_exactly_their_problems() {
    let mut failures = Vec::new();
    for (name, expected) in BROKEN {
        let actual = problems_of(&format!("broken/{name}.json"));
        if actual != *expected {
            failures.push(format!(
                "{name}:\n  expected {expected:#?}\n  actual {actual:#?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_broken_fixture_is_in_the_table() {
    let dir = fixture("broken");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("the broken fixtures folder")
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            name.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    names.sort();
    let mut listed: Vec<String> = BROKEN.iter().map(|(name, _)| (*name).to_owned()).collect();
    listed.sort();
    assert_eq!(names, listed);
}
