//! Rules for the module's data: `database` tables, `configuration` and `features`.

use jsonschema::error::ValidationErrorKind;
use jsonschema::{ReferencingError, ValidationError};
use serde_json::Value;

use super::{Context, FirstSeen, bare_or_field, items, text};
use crate::manifest::problem::{JsonPath, Problems};
use crate::manifest::schema::{describe, report_schema_errors, to_json_path};

pub(super) fn check_database(cx: &Context<'_>, problems: &mut Problems) {
    let Some(database) = cx.section("database").filter(|d| d.is_object()) else {
        return;
    };
    let at = cx.root.key("database");
    let prefix = match (text(database, "schema_prefix"), &cx.name) {
        (Some(prefix), Some(name)) => {
            let own = name.snake_case();
            if !prefix.starts_with(&own) {
                problems.add(
                    &at.key("schema_prefix"),
                    format!("`{prefix}` must start with `{own}`, so that tables of different modules cannot collide"),
                );
            }
            Some(prefix.to_owned())
        }
        (None, Some(name)) => Some(format!("{}_", name.snake_case())),
        (_, None) => None,
    };
    let dynamodb = text(database, "type") == Some("dynamodb");
    let mut seen = FirstSeen::default();
    let list = at.key("tables");
    for (index, table) in items(database.get("tables")) {
        let table_at = list.index(index);
        let Some((name, at)) = bare_or_field(table, &table_at, "name") else {
            continue;
        };
        if let Some(first) = seen.repeat_of(name, &at) {
            problems.add(&at, format!("`{name}` is already declared at {first}"));
        }
        if let Some(prefix) = &prefix
            && !name.starts_with(prefix.as_str())
        {
            problems.add(
                &at,
                format!("`{name}` must start with the schema prefix `{prefix}`"),
            );
        }
        if dynamodb {
            check_dynamodb_keys(table, name, &table_at, problems);
        }
    }
}

fn check_dynamodb_keys(table: &Value, name: &str, at: &JsonPath, problems: &mut Problems) {
    if table.is_string() {
        problems.add(
            at,
            format!("a dynamodb table needs its keys: write {{\"name\": \"{name}\", \"partition_key\": \"pk\", \"sort_key\": \"sk\"}}"),
        );
        return;
    }
    let key_name = |key: &str| match table.get(key) {
        Some(Value::String(name)) => Some(name.as_str()),
        Some(attribute) => text(attribute, "name"),
        None => None,
    };
    if let (Some(partition), Some(sort)) = (key_name("partition_key"), key_name("sort_key"))
        && partition == sort
    {
        problems.add(
            &at.key("sort_key"),
            format!("the sort key must differ from the partition key `{partition}`"),
        );
    }
}

/// Checks that `configuration.schema` is a JSON Schema and that the defaults meet it, reporting
/// each failure where it is (`configuration.defaults.tax_rate`).
pub(super) fn check_configuration(cx: &Context<'_>, problems: &mut Problems) {
    let Some(configuration) = cx.section("configuration") else {
        return;
    };
    let at = cx.root.key("configuration");
    let Some(schema) = configuration
        .get("schema")
        .filter(|s| s.is_object() || s.is_boolean())
    else {
        return;
    };
    let schema_at = at.key("schema");
    let meta = match jsonschema::meta::validator_for(schema) {
        Ok(meta) => meta,
        Err(error) => {
            problems.add(&schema_at, unusable(&error));
            return;
        }
    };
    let before = problems.len();
    for error in meta.iter_errors(schema) {
        let path = schema_at.join(&to_json_path(error.instance_path()));
        problems.add(
            &path,
            format!("is not valid JSON Schema: {}", describe(&error)),
        );
    }
    if problems.len() > before {
        return;
    }
    let validator = match jsonschema::validator_for(schema) {
        Ok(validator) => validator,
        Err(error) => {
            problems.add(&schema_at, unusable(&error));
            return;
        }
    };
    if let Some(defaults) = configuration.get("defaults").filter(|d| d.is_object()) {
        report_schema_errors(&validator, schema, defaults, &at.key("defaults"), problems);
    }
}

/// Why a schema cannot be built; Plinth fetches nothing, so references must stay inside it.
fn unusable(error: &ValidationError<'_>) -> String {
    match error.kind() {
        ValidationErrorKind::Referencing(ReferencingError::Unretrievable { uri, .. }) => format!(
            "refers to `{uri}`, which Plinth does not fetch: a configuration schema must be self-contained (shared parts go under `$defs`)"
        ),
        ValidationErrorKind::Referencing(ReferencingError::PointerToNowhere { pointer }) => {
            format!("refers to `#{pointer}`, which is not in the schema")
        }
        _ => format!("is not a usable JSON Schema: {error}"),
    }
}

pub(super) fn check_features(cx: &Context<'_>, problems: &mut Problems) {
    let mut seen = FirstSeen::default();
    let list = cx.root.key("features");
    for (index, feature) in items(cx.section("features")) {
        let Some(name) = text(feature, "name") else {
            continue;
        };
        let at = list.index(index).key("name");
        if let Some(first) = seen.repeat_of(name, &at) {
            problems.add(
                &at,
                format!("feature `{name}` is already declared at {first}"),
            );
            continue;
        }
        let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !valid {
            problems.add(
                &at,
                format!("`{name}` is not a valid feature name: use lowercase letters, digits, `_` and `-`, starting with a letter"),
            );
        }
    }
}
