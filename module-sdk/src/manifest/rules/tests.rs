//! One test per semantic rule, on a small manifest changed in one place.

use serde_json::{Value, json};

use crate::validate_manifest;

fn minimal() -> Value {
    json!({
        "name": "time-tracking",
        "display_name": "Time tracking",
        "version": "0.3.1",
        "backend": {"type": "microservice", "api_prefix": "/api/v1/time-tracking", "image": "time-tracking:0.3.1"}
    })
}

fn problems(document: &Value) -> Vec<String> {
    match validate_manifest(document) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    }
}

fn with(changes: Value) -> Vec<String> {
    let mut document = minimal();
    if let (Some(target), Value::Object(changes)) = (document.as_object_mut(), changes) {
        target.extend(changes);
    }
    problems(&document)
}

#[test]
fn a_minimal_manifest_is_valid_and_takes_defaults() {
    let manifest = validate_manifest(&minimal()).expect("valid");
    assert_eq!(manifest.subscription_tier, crate::Tier::Free);
    assert_eq!(manifest.schema_prefix(), "time_tracking_");
    assert!(manifest.dependencies.platform_version.is_none());
}

#[test]
fn bare_strings_are_accepted_where_the_contract_allows_them() {
    let manifest = validate_manifest(&{
        let mut document = minimal();
        document["permissions"] = json!(["time-tracking:entries.read"]);
        document["dependencies"] =
            json!({"required_modules": ["hr", {"name": "financial", "version": "^1.2"}]});
        document["database"] = json!({"type": "postgresql", "tables": ["time_tracking_entries"]});
        document
    })
    .expect("valid");
    assert_eq!(manifest.permissions[0].description, None);
    assert_eq!(
        manifest.dependencies.required_modules[0].version,
        semver::VersionReq::STAR
    );
    assert_eq!(
        manifest.dependencies.required_modules[1]
            .version
            .to_string(),
        "^1.2"
    );
}

#[test]
fn backend_rules() {
    assert_eq!(
        with(
            json!({"backend": {"type": "lambda", "api_prefix": "/api/v1/time-tracking", "image": "tt", "cpu": 256, "memory": 64, "health_check": "health"}})
        ),
        [
            "backend.image: `tt` is not an image reference: expected `repository:tag`, like `financial:1.2.0`",
            "backend.cpu: only a microservice backend sets `cpu`; a lambda's CPU follows its `memory`",
            "backend.memory: a lambda's memory must be between 128 and 10240 MB, found 64",
            "backend.health_check: `health` must be a path on the backend, starting with `/`",
        ]
    );
    assert_eq!(
        with(
            json!({"backend": {"type": "microservice", "api_prefix": "/api/v1/time-tracking", "env": {"PLINTH_URL": "x", "PORT": "1", "MY VAR": "y", "OK_1": "z"}}})
        ),
        [
            "backend.env.PLINTH_URL: `PLINTH_URL` is set by the platform",
            "backend.env.PORT: `PORT` is set by the platform",
            r#"backend.env["MY VAR"]: `MY VAR` is not a valid environment variable name (letters, digits and `_`)"#,
        ]
    );
}

#[test]
fn scaling_belongs_to_microservices_and_concurrency_to_lambdas() {
    assert_eq!(
        with(
            json!({"backend": {"type": "lambda", "api_prefix": "/api/v1/time-tracking", "entry_point": "bootstrap", "scaling": {"max_tasks": 2}, "health_check_command": ["CMD", "x"], "reserved_concurrency": 5}})
        ),
        [
            "backend.scaling: only a microservice backend sets `scaling`; Lambda scales and checks a lambda",
            "backend.health_check_command: only a microservice backend sets `health_check_command`; Lambda scales and checks a lambda",
        ]
    );
    assert_eq!(
        with(
            json!({"backend": {"type": "microservice", "api_prefix": "/api/v1/time-tracking", "scaling": {"min_tasks": 4, "max_tasks": 2}, "reserved_concurrency": 5}})
        ),
        [
            "backend.scaling.min_tasks: must not exceed `max_tasks` (2), found 4",
            "backend.reserved_concurrency: only a lambda backend sets `reserved_concurrency`; a microservice sets `scaling`",
        ]
    );
}

#[test]
fn permission_rules() {
    assert_eq!(
        with(json!({"permissions": [
            "time-tracking:entries.read",
            {"code": "time-tracking:entries.read"},
            "entries.read",
            {"code": "hr:people.read", "description": "foreign"}
        ]})),
        [
            "permissions[1].code: `time-tracking:entries.read` is already declared at permissions[0]",
            "permissions[2]: `entries.read` is not a valid permission: expected `{module}:{resource}.{action}`, like `financial:invoices.read`",
            "permissions[3].code: `hr:people.read` is outside this module's namespace: its permissions start with `time-tracking:`",
        ]
    );
}

#[test]
fn route_rules() {
    assert_eq!(
        with(json!({
            "permissions": ["time-tracking:entries.read"],
            "routes": [
                {"path": "/entries/{id}", "methods": ["GET"], "permission": "time-tracking:entries.read"},
                {"path": "/entries/{entry}", "methods": ["POST", "GET"]},
                {"path": "/api/v1/time-tracking/entries", "methods": ["ANY", "GET"]},
                {"path": "/x", "methods": ["get"], "permission": "time-tracking:*"}
            ]
        })),
        [
            "routes[1].path: `GET /entries/{entry}` is already routed by routes[0]",
            "routes[2].path: `/api/v1/time-tracking/entries` repeats the API prefix: route paths are relative to `api_prefix`, like `/invoices`",
            "routes[2].methods[1]: `ANY` already covers every method; list it alone",
            "routes[3].methods[0]: expected one of `GET`, `POST`, `PUT`, `PATCH`, `DELETE`, `HEAD`, `OPTIONS`, `ANY`, found `get`",
            "routes[3].permission: `time-tracking:*` is not a valid permission: wildcards like `financial:*` are only allowed in role grants",
        ]
    );
}

#[test]
fn database_rules() {
    assert_eq!(
        with(
            json!({"database": {"type": "dynamodb", "schema_prefix": "tt_", "tables": [
                "tt_entries",
                {"name": "tt_entries", "partition_key": "pk", "sort_key": {"name": "pk", "type": "S"}}
            ]}})
        ),
        [
            "database.schema_prefix: `tt_` must start with `time_tracking`, so that tables of different modules cannot collide",
            r#"database.tables[0]: a dynamodb table needs its keys: write {"name": "tt_entries", "partition_key": "pk", "sort_key": "sk"}"#,
            "database.tables[1].name: `tt_entries` is already declared at database.tables[0]",
            "database.tables[1].sort_key: the sort key must differ from the partition key `pk`",
        ]
    );
}

#[test]
fn configuration_rules() {
    assert_eq!(
        with(
            json!({"configuration": {"defaults": {"rounding": 5}, "schema": {"type": "object", "properties": {"rounding": {"type": "integer", "maximum": 60, "multipleOf": 15}}}}})
        ),
        ["configuration.defaults.rounding: must be a multiple of 15"]
    );
    assert_eq!(
        with(json!({"configuration": {"schema": {"$ref": "https://example.invalid/schema.json"}}})),
        [
            "configuration.schema: refers to `https://example.invalid/schema.json`, which Plinth does not fetch: a configuration schema must be self-contained (shared parts go under `$defs`)"
        ]
    );
    assert_eq!(
        with(json!({"configuration": {"schema": {"properties": {"x": {"$ref": "#/$defs/x"}}}}})),
        ["configuration.schema: refers to `#/$defs/x`, which is not in the schema"]
    );
    assert!(with(json!({"configuration": {"defaults": {"a": 1}, "schema": true}})).is_empty());
}

#[test]
fn feature_rules() {
    assert_eq!(
        with(json!({"features": [
            {"name": "approvals", "default": true},
            {"name": "approvals", "default": false},
            {"name": "Overtime", "default": false}
        ]})),
        [
            "features[1].name: feature `approvals` is already declared at features[0].name",
            "features[2].name: `Overtime` is not a valid feature name: use lowercase letters, digits, `_` and `-`, starting with a letter",
        ]
    );
}

#[test]
fn dependency_rules() {
    assert_eq!(
        with(json!({"dependencies": {
            "platform_version": "two",
            "required_modules": ["hr", {"name": "hr", "version": "^1"}, {"name": "Payroll", "version": "one"}],
            "optional_modules": ["hr", "time-tracking", "rbac"]
        }})),
        [
            "dependencies.platform_version: `two` is not a version requirement like `>=2.0.0`: unexpected character 't' while parsing major version number",
            "dependencies.required_modules[1].name: `hr` is already required at dependencies.required_modules[0]",
            "dependencies.required_modules[2].name: `Payroll` is not a valid module name: it must start with a lowercase letter",
            "dependencies.required_modules[2].version: `one` is not a version requirement like `^1.2`: unexpected character 'o' while parsing major version number",
            "dependencies.optional_modules[0]: `hr` is also in `required_modules`",
            "dependencies.optional_modules[1]: a module cannot depend on itself",
            "dependencies.optional_modules[2]: `rbac` is not a valid module name: it is reserved by the platform",
        ]
    );
}

#[test]
fn call_rules() {
    assert_eq!(
        with(json!({"dependencies": {
            "required_modules": ["inventory"],
            "optional_modules": ["hr"],
            "calls": [
                {"module": "inventory", "permissions": ["inventory:stock.read", "hr:people.read", "inventory:*"]},
                {"module": "inventory", "permissions": []},
                {"module": "payroll", "permissions": ["payroll:runs.read"]},
                {"module": "hr", "permissions": ["hr:people"]}
            ]
        }})),
        [
            "dependencies.calls[0].permissions[1]: `hr:people.read` is not a permission of `inventory`, the module called",
            "dependencies.calls[1].module: calls to `inventory` are already declared at dependencies.calls[0].module",
            "dependencies.calls[2].module: `payroll` must be in `required_modules` or `optional_modules` to be called",
            "dependencies.calls[3].permissions[0]: `hr:people` is not a valid permission grant: expected `{module}:{resource}.{action}`, like `financial:invoices.read`",
        ]
    );
}

#[test]
fn hook_rules() {
    assert_eq!(
        with(
            json!({"hooks": {"pre_install": "/_plinth/hooks/pre_install", "post_enable_company": "hooks/x", "on_boot": "/x"}})
        ),
        [
            "hooks.post_enable_company: `hooks/x` must be a path on the backend, starting with `/`",
            "hooks: unknown field `on_boot`",
        ]
    );
}

#[test]
fn event_rules() {
    assert_eq!(
        with(json!({"events": {
            "publishes": ["time-tracking.entry.approved", "time-tracking.entry.approved", "time-tracking."],
            "subscribes": [
                {"name": "company-created", "pattern": {"source": "plinth.registry", "detail": {"state": []}}, "path": "/_plinth/events/company-created"},
                {"name": "company-created", "pattern": {}, "path": "events"},
                {"name": "other", "pattern": ["company.created"], "path": "/x"}
            ]
        }})),
        [
            "events.publishes[1]: `time-tracking.entry.approved` is already listed at events.publishes[0]",
            "events.publishes[2]: `time-tracking.` is outside this module's namespace: its events start with `time-tracking.`",
            r#"events.subscribes[0].pattern: Event pattern is not valid. Reason: "source" must be an object or an array (at `source`)"#,
            "events.subscribes[1].name: `company-created` is already subscribed at events.subscribes[0].name",
            "events.subscribes[1].pattern: Event pattern is not valid. Reason: Empty objects are not allowed",
            "events.subscribes[1].path: `events` must be a path on the backend, starting with `/`",
            "events.subscribes[2].pattern: expected an object, found an array",
        ]
    );
}

#[test]
fn a_frontend_must_be_one_the_console_loads_with_an_entry_inside_its_bundle() {
    assert_eq!(
        with(json!({"frontend": {"type": "react"}})),
        [
            "frontend.type: `react` is not a frontend the console loads: `spa-module` or `es-module` (an ES module run in the console's page), `micro-frontend` or `iframe` (a page in a sandboxed frame)"
        ]
    );
    for entry in [
        "../module.js",
        "/module.js",
        "ui\\module.js",
        ".hidden.js",
        "a//b.js",
        "",
    ] {
        let found = with(json!({"frontend": {"type": "spa-module", "entry_point": entry}}));
        assert_eq!(found.len(), 1, "{entry:?}: {found:?}");
        assert!(found[0].starts_with("frontend.entry_point: "), "{found:?}");
    }
    for kind in crate::manifest::FRONTEND_KINDS {
        assert_eq!(
            with(json!({"frontend": {"type": kind, "entry_point": "app/main.js"}})),
            Vec::<String>::new()
        );
    }
}
