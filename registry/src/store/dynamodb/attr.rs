//! JSON values to DynamoDB attribute values and back, so items stay readable in the console.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Number, Value};

pub(super) fn to_attr(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(values) => AttributeValue::L(values.iter().map(to_attr).collect()),
        Value::Object(map) => AttributeValue::M(to_attr_map(map)),
    }
}

pub(super) fn to_attr_map(map: &Map<String, Value>) -> HashMap<String, AttributeValue> {
    map.iter().map(|(k, v)| (k.clone(), to_attr(v))).collect()
}

/// The JSON form of an attribute; `None` for sets and binaries, which Plinth never writes.
pub(super) fn from_attr(attr: &AttributeValue) -> Option<Value> {
    Some(match attr {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::N(n) => Value::Number(parse_number(n)?),
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::L(values) => {
            Value::Array(values.iter().map(from_attr).collect::<Option<_>>()?)
        }
        AttributeValue::M(map) => Value::Object(from_attr_map(map)?),
        _ => return None,
    })
}

/// Map entries come back from DynamoDB in no particular order: sort them for stable output.
pub(super) fn from_attr_map(map: &HashMap<String, AttributeValue>) -> Option<Map<String, Value>> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
        .into_iter()
        .map(|(k, v)| Some((k.clone(), from_attr(v)?)))
        .collect()
}

fn parse_number(n: &str) -> Option<Number> {
    if let Ok(i) = n.parse::<i64>() {
        return Some(i.into());
    }
    if let Ok(u) = n.parse::<u64>() {
        return Some(u.into());
    }
    n.parse::<f64>().ok().and_then(Number::from_f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_survives_the_round_trip() {
        let value = json!({
            "a": null, "b": true, "c": -12, "d": 0.19, "e": "text", "f": [1, "x", {"g": []}],
            "h": {"i": {"j": 18446744073709551615u64}}
        });
        let back = from_attr(&to_attr(&value)).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn sets_are_not_json() {
        assert_eq!(from_attr(&AttributeValue::Ss(vec!["a".into()])), None);
    }
}
