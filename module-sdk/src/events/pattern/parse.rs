//! From a pattern's JSON to its parsed form, with EventBridge's validation: the first problem
//! found stops parsing, as EventBridge reports one reason.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::leaf::{AnythingBut, Cidr, Matcher, Range, Wildcard, fold};
use super::{Field, Fields, Leaf, PatternError};

const OR: &str = "$or";

/// Names that may not be fields inside `$or`, as EventBridge reserves them.
const RESERVED_IN_OR: &[&str] = &[
    "exactly",
    "equals-ignore-case",
    "prefix",
    "suffix",
    "anything-but",
    "exists",
    "wildcard",
    "numeric",
    "cidr",
    "=",
    "<",
    "<=",
    ">",
    ">=",
    "regex",
    "not-wildcard",
    "not-equals-ignore-case",
    "date-after",
    "date-on-or-after",
    "date-before",
    "date-on-or-before",
    "in-date-range",
    "ip-address-in-range",
    "ip-address-not-in-range",
];

/// Where the parser is: the place in the pattern (for errors) and the event field it stands
/// for (`$or` and array indexes are not part of the field).
#[derive(Clone, Default)]
struct At {
    place: Vec<Step>,
    field: Vec<String>,
    inside_or: bool,
}

#[derive(Clone)]
enum Step {
    Key(String),
    Index(usize),
}

impl At {
    fn key(&self, key: &str) -> Self {
        let mut at = self.clone();
        at.place.push(Step::Key(key.to_owned()));
        if key != OR {
            at.field.push(key.to_owned());
        }
        at
    }

    fn index(&self, index: usize) -> Self {
        let mut at = self.clone();
        at.place.push(Step::Index(index));
        at
    }

    fn fail<T>(&self, reason: impl Into<String>) -> Result<T, PatternError> {
        Err(PatternError {
            path: self.path(),
            reason: reason.into(),
        })
    }

    /// The place as `detail.state[0].numeric`, quoting keys that are not plain words.
    fn path(&self) -> String {
        let mut path = String::new();
        for step in &self.place {
            match step {
                Step::Index(index) => {
                    let _ = write!(path, "[{index}]");
                }
                Step::Key(key) if is_plain(key) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                }
                Step::Key(key) => {
                    let _ = write!(path, "[{}]", Value::String(key.clone()));
                }
            }
        }
        path
    }
}

fn is_plain(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$'))
}

/// Parses a whole pattern.
pub(super) fn pattern(pattern: &Value) -> Result<Fields, PatternError> {
    let at = At::default();
    match pattern {
        Value::Object(map) => object(map, &at),
        _ => at.fail("Filter is not an object"),
    }
}

fn object(map: &Map<String, Value>, at: &At) -> Result<Fields, PatternError> {
    if map.is_empty() {
        return at.fail("Empty objects are not allowed");
    }
    let mut fields = Fields {
        fields: Vec::new(),
        any_of: Vec::new(),
    };
    for (key, value) in map {
        let here = at.key(key);
        if key == OR {
            fields.any_of.push(alternatives(value, &here)?);
            continue;
        }
        if at.inside_or && RESERVED_IN_OR.contains(&key.as_str()) {
            return here.fail(format!(
                "{key} is Ruler reserved fieldName which cannot be used inside $or."
            ));
        }
        let field = match value {
            Value::Object(inner) => Field::Nested(object(inner, &here)?),
            Value::Array(candidates) => Field::Leaf(leaf(candidates, &here)?),
            _ => return here.fail(format!("\"{key}\" must be an object or an array")),
        };
        fields.fields.push((key.clone(), field));
    }
    Ok(fields)
}

/// The objects of a `$or`: at least two, each matched in the place of the `$or` itself.
fn alternatives(value: &Value, at: &At) -> Result<Vec<Fields>, PatternError> {
    let Value::Array(items) = value else {
        return at.fail("It must be an Array followed with $or.");
    };
    let mut alternatives = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let mut here = at.index(index);
        here.inside_or = true;
        let Value::Object(map) = item else {
            return here.fail("Only JSON object is allowed in array of $or relationship.");
        };
        alternatives.push(object(map, &here)?);
    }
    if alternatives.len() < 2 {
        return at.fail("There must have at least 2 Objects in $or relationship.");
    }
    Ok(alternatives)
}

fn leaf(candidates: &[Value], at: &At) -> Result<Leaf, PatternError> {
    if candidates.is_empty() {
        return at.fail("Empty arrays are not allowed");
    }
    let mut matchers = Vec::with_capacity(candidates.len());
    for (index, candidate) in candidates.iter().enumerate() {
        let here = at.index(index);
        matchers.push(match candidate {
            Value::Object(expression) => match_expression(expression, &here)?,
            Value::Array(_) => {
                return here.fail("Match value must be String, number, true, false, or null");
            }
            value => Matcher::exact(value),
        });
    }
    Ok(Leaf {
        path: at.field.clone(),
        matchers,
    })
}

/// One `{"operator": operand}` candidate.
fn match_expression(expression: &Map<String, Value>, at: &At) -> Result<Matcher, PatternError> {
    let mut entries = expression.iter();
    let (operator, operand) = match (entries.next(), entries.next()) {
        (None, _) => return at.fail("Match expression name not found"),
        (Some(_), Some(_)) => return at.fail("Only one key allowed in match expression"),
        (Some(entry), None) => entry,
    };
    let here = at.key(operator);
    let result = match operator.as_str() {
        "prefix" | "suffix" => affix(operator, operand),
        "equals-ignore-case" => {
            text(operand, operator).map(|text| Matcher::EqualsIgnoreCase(text.to_lowercase()))
        }
        "wildcard" => {
            text(operand, operator).and_then(|text| Wildcard::parse(text).map(Matcher::Wildcard))
        }
        "anything-but" => AnythingBut::parse(operand).map(Matcher::AnythingBut),
        "numeric" => match operand {
            Value::Array(items) => Range::parse(items).map(Matcher::Numeric),
            _ => Err("Value of numeric must be an array.".into()),
        },
        "exists" => operand
            .as_bool()
            .map(Matcher::Exists)
            .ok_or_else(|| "exists match pattern must be either true or false.".into()),
        "cidr" => text(operand, operator).and_then(|text| Cidr::parse(text).map(Matcher::Cidr)),
        other => return at.fail(format!("Unrecognized match type {other}")),
    };
    result.or_else(|reason| here.fail(reason))
}

/// `prefix` or `suffix`: a string, or `{"equals-ignore-case": string}`.
fn affix(operator: &str, operand: &Value) -> Result<Matcher, String> {
    let (text, ignore_case) = match operand {
        Value::String(text) => (text.clone(), false),
        Value::Object(map) if map.len() == 1 => match map.get("equals-ignore-case") {
            Some(inner) => (text(inner, "equals-ignore-case")?.to_owned(), true),
            None => return Err(format!("{operator} match pattern must be a string")),
        },
        _ => return Err(format!("{operator} match pattern must be a string")),
    };
    let text = fold(&text, ignore_case);
    Ok(if operator == "prefix" {
        Matcher::Prefix { text, ignore_case }
    } else {
        Matcher::Suffix { text, ignore_case }
    })
}

fn text<'a>(operand: &'a Value, operator: &str) -> Result<&'a str, String> {
    operand
        .as_str()
        .ok_or_else(|| format!("{operator} match pattern must be a string"))
}
