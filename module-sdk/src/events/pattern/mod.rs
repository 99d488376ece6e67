//! EventBridge's event pattern language, so that a manifest's subscription patterns are checked
//! when a module is published, and the local bus matches exactly what EventBridge would.
//!
//! A pattern is a JSON object with the shape of the events it matches. Each leaf field holds an
//! array of candidates, any of which may match: exact values (strings; numbers, compared
//! numerically; `true`, `false`, `null`) and match expressions — `prefix`, `suffix` (either may
//! wrap `equals-ignore-case`), `equals-ignore-case`, `wildcard`, `anything-but` (a value, a list,
//! or `prefix` / `suffix` / `equals-ignore-case` / `wildcard`), `numeric` ranges, `exists` and
//! `cidr` (IPv4 and IPv6). `$or` takes two or more alternative objects. All fields must match.
//!
//! What an event offers a field:
//! - an array in the event matches when any of its elements does; fields matched inside objects
//!   of an array must all come from the same element (EventBridge's array-consistent matching);
//! - only leaves (strings, numbers, booleans, `null`) are values: an object where the pattern
//!   expects values offers none, so `{"exists": false}` matches it, as EventBridge documents;
//! - a missing field, or an empty array, offers no value: only `{"exists": false}` matches it.
//!   `exists: false` holds when the field has no value anywhere in the event.
//!
//! ```
//! use plinth_module_sdk::events::pattern::Pattern;
//! use serde_json::json;
//!
//! let pattern = Pattern::parse(&json!({
//!     "detail-type": ["financial.invoice.paid"],
//!     "detail": {"amount": [{"numeric": [">=", 1000]}]}
//! }))
//! .expect("a valid pattern");
//! assert!(pattern.matches(&json!({
//!     "detail-type": "financial.invoice.paid",
//!     "detail": {"amount": 1500}
//! })));
//! ```

mod leaf;
mod parse;

use std::fmt;

use serde_json::Value;

use leaf::Matcher;

/// A parsed, valid EventBridge event pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    root: Fields,
    source: Value,
}

impl Pattern {
    /// Parses a pattern, refusing what EventBridge refuses.
    ///
    /// # Errors
    /// A [`PatternError`] with EventBridge's reason and where in the pattern it is.
    pub fn parse(pattern: &Value) -> Result<Self, PatternError> {
        let root = parse::pattern(pattern)?;
        Ok(Self {
            root,
            source: pattern.clone(),
        })
    }

    /// Parses a pattern written as JSON text.
    ///
    /// # Errors
    /// A [`PatternError`] when the text is not JSON or the pattern is not valid.
    pub fn from_json_str(text: &str) -> Result<Self, PatternError> {
        let value: Value = serde_json::from_str(text).map_err(|error| PatternError {
            path: String::new(),
            reason: format!("not JSON: {error}"),
        })?;
        Self::parse(&value)
    }

    /// Whether `event` (an event as JSON, usually the whole envelope) matches.
    #[must_use]
    pub fn matches(&self, event: &Value) -> bool {
        self.root.matches(Some(event), event)
    }

    /// The pattern as it was written, as EventBridge's `PutRule` takes it.
    #[must_use]
    pub fn as_value(&self) -> &Value {
        &self.source
    }
}

/// Why a pattern is not valid: EventBridge's reason and where in the pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    path: String,
    reason: String,
}

impl PatternError {
    /// Where in the pattern, as a path like `detail.state[0]`; empty for the pattern itself.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong, in EventBridge's words (e.g. `Empty arrays are not allowed`).
    #[must_use]
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Event pattern is not valid. Reason: {}", self.reason)?;
        if !self.path.is_empty() {
            write!(f, " (at `{}`)", self.path)?;
        }
        Ok(())
    }
}

impl std::error::Error for PatternError {}

/// An object of the pattern: every field must match, and one alternative of each `$or`.
#[derive(Debug, Clone, PartialEq)]
struct Fields {
    fields: Vec<(String, Field)>,
    any_of: Vec<Vec<Fields>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Field {
    Nested(Fields),
    Leaf(Leaf),
}

/// The candidates for one leaf field, any of which may match.
#[derive(Debug, Clone, PartialEq)]
struct Leaf {
    /// The field's path from the event's root, for `exists: false`.
    path: Vec<String>,
    matchers: Vec<Matcher>,
}

impl Fields {
    /// Whether the fields match in `here` (an object of the event, or `None` when the event
    /// has no object at this place); `root` is the whole event.
    fn matches(&self, here: Option<&Value>, root: &Value) -> bool {
        let field = |key: &str| here.and_then(|value| value.get(key));
        self.fields
            .iter()
            .all(|(key, pattern)| pattern.matches(field(key), root))
            && self
                .any_of
                .iter()
                .all(|alternatives| alternatives.iter().any(|a| a.matches(here, root)))
    }
}

impl Field {
    fn matches(&self, value: Option<&Value>, root: &Value) -> bool {
        match self {
            Field::Leaf(leaf) => leaf.matches(value, root),
            Field::Nested(fields) => {
                let mut objects = Vec::new();
                collect_objects(value, &mut objects);
                if objects.is_empty() {
                    fields.matches(None, root)
                } else {
                    objects.into_iter().any(|o| fields.matches(Some(o), root))
                }
            }
        }
    }
}

impl Leaf {
    fn matches(&self, value: Option<&Value>, root: &Value) -> bool {
        let mut values = Vec::new();
        collect_leaves(value, &mut values);
        self.matchers.iter().any(|matcher| match matcher {
            Matcher::Exists(false) => !has_value_at(root, &self.path),
            Matcher::Exists(true) => !values.is_empty(),
            matcher => values.iter().any(|value| matcher.matches(value)),
        })
    }
}

/// The objects `value` offers: itself, or the objects in its (nested) arrays.
fn collect_objects<'a>(value: Option<&'a Value>, into: &mut Vec<&'a Value>) {
    match value {
        Some(object @ Value::Object(_)) => into.push(object),
        Some(Value::Array(items)) => items.iter().for_each(|i| collect_objects(Some(i), into)),
        _ => {}
    }
}

/// The leaf values `value` offers: itself when a leaf, or the leaves in its (nested) arrays.
fn collect_leaves<'a>(value: Option<&'a Value>, into: &mut Vec<&'a Value>) {
    match value {
        None | Some(Value::Object(_)) => {}
        Some(Value::Array(items)) => items.iter().for_each(|i| collect_leaves(Some(i), into)),
        Some(leaf) => into.push(leaf),
    }
}

/// Whether the event has a leaf value at `path` anywhere, through every array on the way.
fn has_value_at(value: &Value, path: &[String]) -> bool {
    match (value, path.split_first()) {
        (Value::Array(items), _) => items.iter().any(|item| has_value_at(item, path)),
        (Value::Object(_), None) => false,
        (_, None) => true,
        (Value::Object(map), Some((key, rest))) => {
            map.get(key).is_some_and(|value| has_value_at(value, rest))
        }
        (_, Some(_)) => false,
    }
}

#[cfg(test)]
mod tests;
