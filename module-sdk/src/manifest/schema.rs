//! The structural pass: the manifest's embedded JSON Schema, and turning JSON Schema errors
//! (of the manifest, or of a module's configuration) into plain-language problems.

use std::sync::LazyLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::{Location, LocationSegment};
use jsonschema::{JsonType, ValidationError, Validator};
use serde_json::Value;

use super::problem::{JsonPath, Problems};

static MANIFEST_SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!("manifest.schema.json"))
        .expect("the embedded manifest schema is JSON (checked by a unit test)")
});

static MANIFEST_VALIDATOR: LazyLock<Validator> = LazyLock::new(|| {
    jsonschema::validator_for(&MANIFEST_SCHEMA)
        .expect("the embedded manifest schema is a valid JSON Schema (checked by a unit test)")
});

/// The JSON Schema (draft 2020-12) of a manifest's shape, as embedded in this crate.
///
/// It fixes field names and types only; [`validate_manifest`](super::validate_manifest) adds the
/// rules a schema cannot express (names, versions, namespaces, prefixes).
#[must_use]
pub fn manifest_schema() -> &'static Value {
    &MANIFEST_SCHEMA
}

/// Reports every way `document` breaks the manifest's shape.
pub(crate) fn check_structure(document: &Value, problems: &mut Problems) {
    report_schema_errors(
        &MANIFEST_VALIDATOR,
        &MANIFEST_SCHEMA,
        document,
        &JsonPath::root(),
        problems,
    );
}

/// Reports every error of `validator` (built from `schema`) on `instance`, which sits at `base`
/// in the document the problems are about.
pub(crate) fn report_schema_errors(
    validator: &Validator,
    schema: &Value,
    instance: &Value,
    base: &JsonPath,
    problems: &mut Problems,
) {
    for error in validator.iter_errors(instance) {
        let at = base.join(&to_json_path(error.instance_path()));
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let allowed = allowed_fields(schema, error.schema_path());
                for field in unexpected {
                    let message = unknown_field_message(field, &allowed);
                    problems.add_anchored(&at, at.key(field), message);
                }
            }
            ValidationErrorKind::Required { property } => {
                let field = property
                    .as_str()
                    .map_or_else(|| property.to_string(), str::to_owned);
                problems.add(&at, format!("missing required field `{field}`"));
            }
            _ => problems.add(&at, describe(&error)),
        }
    }
}

/// Turns a JSON Schema instance location into a document path.
pub(crate) fn to_json_path(location: &Location) -> JsonPath {
    location
        .iter()
        .fold(JsonPath::root(), |path, segment| match segment {
            LocationSegment::Property(key) => path.key(&key),
            LocationSegment::Index(index) => path.index(index),
        })
}

/// The property names the object schema holding a failed `additionalProperties` declares.
fn allowed_fields(schema: &Value, keyword_location: &Location) -> Vec<String> {
    let pointer = keyword_location.as_str();
    let object_schema = pointer
        .strip_suffix("/additionalProperties")
        .and_then(|parent| schema.pointer(parent));
    object_schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|properties| properties.keys().cloned().collect())
        .unwrap_or_default()
}

fn unknown_field_message(field: &str, allowed: &[String]) -> String {
    match closest(field, allowed) {
        Some(suggestion) => format!("unknown field `{field}` (did you mean `{suggestion}`?)"),
        None => format!("unknown field `{field}`"),
    }
}

/// The allowed name nearest to `field`, when it is near enough to be a typo.
fn closest<'a>(field: &str, allowed: &'a [String]) -> Option<&'a str> {
    let limit = (field.chars().count() / 3).clamp(1, 3);
    allowed
        .iter()
        .map(|name| (edit_distance(field, name), name))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name.as_str())
}

/// Levenshtein distance, small inputs only (field names).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// A plain message for every kind of schema error but unknown and missing fields.
pub(crate) fn describe(error: &ValidationError<'_>) -> String {
    let instance = error.instance();
    match error.kind() {
        ValidationErrorKind::Type { kind } => {
            let expected: Vec<&str> = match kind {
                TypeKind::Single(one) => vec![a_type(*one)],
                TypeKind::Multiple(set) => set.iter().map(a_type).collect(),
            };
            format!(
                "expected {}, found {}",
                expected.join(" or "),
                a_value(instance)
            )
        }
        ValidationErrorKind::Enum { options } => {
            let options: Vec<String> = options
                .as_array()
                .map(|list| list.iter().map(quoted).collect())
                .unwrap_or_default();
            format!(
                "expected one of {}, found {}",
                options.join(", "),
                quoted(instance)
            )
        }
        ValidationErrorKind::Constant { expected_value } => {
            format!(
                "expected {}, found {}",
                quoted(expected_value),
                quoted(instance)
            )
        }
        ValidationErrorKind::Pattern { pattern } => {
            format!(
                "{} does not match the pattern `{pattern}`",
                quoted(instance)
            )
        }
        ValidationErrorKind::Format { format } => {
            format!("{} is not a valid {format}", quoted(instance))
        }
        ValidationErrorKind::FalseSchema => "is not allowed".to_owned(),
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            describe_alternatives(context, error.instance_path())
        }
        ValidationErrorKind::OneOfMultipleValid { .. } => {
            "matches more than one of the allowed shapes".to_owned()
        }
        kind => describe_bound(kind).unwrap_or_else(|| error.to_string()),
    }
}

/// Messages for the keywords that bound a number, a length or a count.
fn describe_bound(kind: &ValidationErrorKind) -> Option<String> {
    Some(match kind {
        ValidationErrorKind::Minimum { limit } => format!("must be at least {limit}"),
        ValidationErrorKind::Maximum { limit } => format!("must be at most {limit}"),
        ValidationErrorKind::ExclusiveMinimum { limit } => format!("must be greater than {limit}"),
        ValidationErrorKind::ExclusiveMaximum { limit } => format!("must be less than {limit}"),
        ValidationErrorKind::MultipleOf { multiple_of } => {
            format!("must be a multiple of {multiple_of}")
        }
        ValidationErrorKind::MinLength { limit: 1 }
        | ValidationErrorKind::MinItems { limit: 1 }
        | ValidationErrorKind::MinProperties { limit: 1 } => "must not be empty".to_owned(),
        ValidationErrorKind::MinLength { limit } => {
            format!("must be at least {limit} characters long")
        }
        ValidationErrorKind::MaxLength { limit } => {
            format!("must be at most {limit} characters long")
        }
        ValidationErrorKind::MinItems { limit } => format!("must have at least {limit} items"),
        ValidationErrorKind::MaxItems { limit } => format!("must have at most {limit} items"),
        ValidationErrorKind::MinProperties { limit } => {
            format!("must have at least {limit} fields")
        }
        ValidationErrorKind::MaxProperties { limit } => {
            format!("must have at most {limit} fields")
        }
        ValidationErrorKind::UniqueItems => "must not contain the same item twice".to_owned(),
        _ => return None,
    })
}

/// For a value that matches none of several shapes: when exactly one shape has the value's
/// type, that shape's first complaint about the value itself is the helpful one.
fn describe_alternatives(alternatives: &[Vec<ValidationError<'static>>], at: &Location) -> String {
    let mut same_type = alternatives.iter().filter(|errors| {
        !errors.iter().any(|e| {
            e.instance_path() == at && matches!(e.kind(), ValidationErrorKind::Type { .. })
        })
    });
    match (same_type.next(), same_type.next()) {
        (Some(errors), None) => match errors.first() {
            Some(first) if first.instance_path() == at => describe(first),
            _ => "does not match any of the allowed shapes".to_owned(),
        },
        _ => "does not match any of the allowed shapes".to_owned(),
    }
}

fn a_type(kind: JsonType) -> &'static str {
    match kind {
        JsonType::Array => "an array",
        JsonType::Boolean => "a boolean",
        JsonType::Integer => "an integer",
        JsonType::Null => "null",
        JsonType::Number => "a number",
        JsonType::Object => "an object",
        JsonType::String => "a string",
    }
}

fn a_value(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A value in backticks: strings bare, anything else as JSON.
pub(crate) fn quoted(value: &Value) -> String {
    match value {
        Value::String(text) => format!("`{text}`"),
        other => format!("`{other}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn structure(document: &Value) -> Vec<String> {
        let mut problems = Problems::default();
        check_structure(document, &mut problems);
        problems
            .into_sorted(document)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn minimal() -> Value {
        json!({
            "name": "financial", "display_name": "Financial", "version": "1.0.0",
            "backend": {"type": "lambda", "api_prefix": "/api/v1/financial", "image": "financial:1.0.0"}
        })
    }

    #[test]
    fn the_embedded_schema_is_a_valid_schema() {
        assert!(jsonschema::meta::validate(manifest_schema()).is_ok());
        assert!(structure(&minimal()).is_empty());
    }

    #[test]
    fn unknown_fields_are_named_with_a_suggestion() {
        let mut document = minimal();
        document["permisions"] = json!([]);
        document["backend"]["imagee"] = json!("x:1");
        document["backend"]["zzz"] = json!(1);
        assert_eq!(
            structure(&document),
            [
                "backend: unknown field `imagee` (did you mean `image`?)",
                "backend: unknown field `zzz`",
                "$: unknown field `permisions` (did you mean `permissions`?)",
            ]
        );
    }

    #[test]
    fn nested_unknown_fields_behind_refs_get_suggestions() {
        let mut document = minimal();
        document["database"] = json!({"type": "dynamodb", "tables": [{"name": "financial_a", "partition_key": "pk", "sortkey": "sk"}]});
        assert_eq!(
            structure(&document),
            ["database.tables[0]: unknown field `sortkey` (did you mean `sort_key`?)"]
        );
    }

    #[test]
    fn types_required_fields_and_enums_read_plainly() {
        let document = json!({
            "name": 7, "display_name": "", "backend": {"type": "lamda", "api_prefix": "/api/v1/x", "port": "8001"},
            "permissions": [3], "subscription_tier": "gold"
        });
        assert_eq!(
            structure(&document),
            [
                "$: missing required field `version`",
                "name: expected a string, found a number",
                "display_name: must not be empty",
                "backend.type: expected one of `microservice`, `lambda`, found `lamda`",
                "backend.port: expected an integer, found a string",
                "permissions[0]: expected a string or an object, found a number",
                "subscription_tier: expected one of `free`, `basic`, `premium`, `enterprise`, found `gold`",
            ]
        );
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("permisions", "permissions"), 1);
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(
            closest("routs", &["routes".into(), "tags".into()]),
            Some("routes")
        );
        assert_eq!(closest("zzz", &["routes".into()]), None);
    }
}
