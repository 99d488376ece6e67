//! The document's parameters and bodies said as precisely as the handlers read them, so that
//! what the document admits the API takes (the property-based run sent schema-valid requests
//! that were refused: an empty body, an id of any characters, a limit past `usize`). Applied
//! to the JSON of the document, by parameter name and by operation.

use serde_json::{Map, Value, json};

use plinth_module_sdk::manifest::{MAX_MODULE_NAME_LEN, manifest_schema};

/// Letters, digits, `-`, `_` and `.`, not only dots (`ids::TenantId` and its kin).
const ID: &str = "^[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*$";
/// A token's `sub`: visible ASCII but `#`, not only dots (`ids::UserId` takes more; the
/// document promises less).
const USER: &str = "^[!-\"$-~]*[!-\"$--/-~][!-\"$-~]*$";
/// A module name (`plinth_module_sdk::ModuleName`).
const MODULE: &str = "^[a-z]([a-z0-9-]*[a-z0-9])?$";
/// A permission code, `module:resource.action`.
const PERMISSION: &str = "^[a-z][a-z0-9-]*:[a-z][a-z0-9_-]*\\.[a-z][a-z0-9_-]*$";
/// A semantic version (each number at most 19 digits: the versions the platform reads are
/// `u64`s, and a number past `u64::MAX` is not one).
const VERSION: &str = "^(0|[1-9][0-9]{0,18})\\.(0|[1-9][0-9]{0,18})\\.(0|[1-9][0-9]{0,18})\
    (-[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?(\\+[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?$";
/// A role's grant: a permission, `module:resource.*` or `module:*`.
const GRANT: &str = "^[a-z][a-z0-9-]*:(\\*|[a-z][a-z0-9_-]*\\.(\\*|[a-z][a-z0-9_-]*))$";
/// An http(s) URL with a host.
const URL: &str = "^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?$";
const TIERS: [&str; 4] = ["free", "basic", "premium", "enterprise"];

fn id() -> Value {
    json!({"type": "string", "pattern": ID, "minLength": 1, "maxLength": 64})
}

fn module() -> Value {
    json!({"type": "string", "pattern": MODULE, "maxLength": MAX_MODULE_NAME_LEN})
}

/// A name or other free text: 1 to 200 characters, not blank.
fn text() -> Value {
    json!({"type": "string", "pattern": "\\S", "minLength": 1, "maxLength": 200})
}

/// The schema of a path or query parameter, by its name.
fn parameter(name: &str) -> Option<Value> {
    Some(match name {
        "tenant" | "company" | "role" => id(),
        "user" => json!({"type": "string", "pattern": USER, "minLength": 1, "maxLength": 128}),
        "module" => module(),
        "limit" => json!({"type": "integer", "minimum": 1, "maximum": 100}),
        "tier" => json!({"type": "string", "enum": TIERS}),
        "dry_run" | "drop_data" => json!({"type": "boolean"}),
        // An installed version (`DELETE …/installation?version=`, `GET …/installation?version=`).
        "version" => json!({"type": "string", "pattern": VERSION}),
        "granularity" => json!({"type": "string", "enum": ["hour", "day"]}),
        "format" => json!({"type": "string", "enum": ["json", "csv"]}),
        // A date, or an RFC 3339 time (usage reports' `from` and `to`).
        "from" | "to" => json!({
            "type": "string",
            "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?$"
        }),
        _ => return None,
    })
}

/// The body of an operation, by its `operationId`.
fn body(operation: &str) -> Option<Value> {
    let object = |properties: Value, required: &[&str]| {
        json!({"type": "object", "additionalProperties": false,
               "properties": properties, "required": required})
    };
    Some(match operation {
        "create_tenant" => object(
            json!({"id": id(), "name": text(), "subscription_tier": {"type": "string", "enum": TIERS}}),
            &["id", "name"],
        ),
        "create_company" => object(
            json!({"id": id(), "name": text(), "country": {"type": ["string", "null"]}}),
            &["id", "name"],
        ),
        "verify" => object(
            json!({"tenant_id": id(), "user_id": parameter("user")?,
                   "permission": {"type": "string", "pattern": PERMISSION},
                   "company_id": {"anyOf": [id(), {"type": "null"}]}}),
            &["tenant_id", "user_id", "permission"],
        ),
        "issue_key" => object(
            json!({"rotate_after_secs": {"type": ["integer", "null"], "minimum": 0,
                   "maximum": super::install::MAX_ROTATE_AFTER_SECS}}),
            &[],
        ),
        "assign" => object(
            json!({"roles": {"type": "array", "items": id()},
                   "companies": {"type": "object", "propertyNames": id(),
                                 "additionalProperties": {"type": "array", "items": id()}}}),
            &[],
        ),
        "publish" => json!({"$ref": "#/components/schemas/Manifest"}),
        // The event envelope as `Event` reads it (other fields are ignored); the source and
        // detail type the module may use are its manifest's (422 naming the field).
        "publish_event" => json!({"type": "object",
            "properties": {"version": {"type": "string"}, "id": {"type": "string"},
                           "source": {"type": "string"}, "detail-type": {"type": "string"},
                           "time": {"type": "string"},
                           "resources": {"type": "array", "items": {"type": "string"}},
                           "detail": {"type": "object"}},
            "required": ["id", "source", "detail-type", "time", "detail"]}),
        _ => return None,
    })
}

/// Sharpens the document's parameters, bodies and request schemas in place.
pub(super) fn refine(document: &mut Value) {
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            item.values_mut().for_each(refine_operation);
        }
    }
    let schemas = &mut document["components"]["schemas"];
    for request in ["InstallRequest", "UpgradeRequest", "VersionChoice"] {
        if schemas[request].is_object() {
            schemas[request]["properties"]["version"] =
                json!({"type": "string", "pattern": VERSION});
            schemas[request]["additionalProperties"] = json!(false);
        }
    }
    if schemas["Registration"].is_object() {
        let url = json!({"type": "string", "format": "uri", "pattern": URL});
        schemas["Registration"]["properties"]["instance_url"] = url.clone();
        schemas["Registration"]["properties"]["health_check_url"] =
            json!({"anyOf": [url, {"type": "null"}]});
    }
    if schemas["RoleChange"].is_object() {
        schemas["RoleChange"]["properties"]["permissions"] =
            json!({"type": "array", "items": {"type": "string", "pattern": GRANT}});
    }
    manifest(schemas);
}

fn refine_operation(operation: &mut Value) {
    if let Some(parameters) = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
    {
        for parameter_doc in parameters {
            let name = parameter_doc["name"].as_str().unwrap_or_default();
            if let Some(schema) = parameter(name) {
                parameter_doc["schema"] = schema;
            }
        }
    }
    let id = operation["operationId"].as_str().unwrap_or_default();
    if let (Some(schema), Some(content)) = (
        body(id),
        operation
            .pointer_mut("/requestBody/content/application~1json")
            .and_then(Value::as_object_mut),
    ) {
        content.insert("schema".into(), schema);
    }
}

/// The manifest's own JSON Schema, its `$defs` lifted into components (`Manifest_backend`…).
fn manifest(schemas: &mut Value) {
    let mut root = manifest_schema().clone();
    let Some(object) = root.as_object_mut() else {
        return;
    };
    object.remove("$schema");
    let defs = object
        .remove("$defs")
        .and_then(|d| d.as_object().cloned())
        .unwrap_or_default();
    let mut lifted = Map::new();
    for (name, mut schema) in defs {
        rewrite_refs(&mut schema);
        lifted.insert(format!("Manifest_{name}"), schema);
    }
    rewrite_refs(&mut root);
    root["properties"]["name"] = module();
    root["properties"]["version"] = json!({"type": "string", "pattern": VERSION});
    if let Some(schemas) = schemas.as_object_mut() {
        schemas.insert("Manifest".into(), root);
        schemas.extend(lifted);
    }
}

fn rewrite_refs(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match (key.as_str(), value.as_str()) {
                    ("$ref", Some(target)) if target.starts_with("#/$defs/") => {
                        let name = &target["#/$defs/".len()..];
                        *value = Value::String(format!("#/components/schemas/Manifest_{name}"));
                    }
                    _ => rewrite_refs(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}
