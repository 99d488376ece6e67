//! DynamoDB expressions for the port's conditions, updates and key conditions.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::attr::to_attr;
use super::table::{DATA, PK, SK, TTL, VERSION};
use crate::store::{Condition, SortKey, Update};

/// An expression with its placeholders, ready for the SDK's `set_*` builders.
#[derive(Debug, Default)]
pub(super) struct Expression {
    pub text: Option<String>,
    pub update: Option<String>,
    pub names: Option<HashMap<String, String>>,
    pub values: Option<HashMap<String, AttributeValue>>,
}

const LIVE: &str = "(attribute_not_exists(#ttl) OR #ttl > :now)";

impl Expression {
    fn name(&mut self, placeholder: &str, name: &str) {
        self.names
            .get_or_insert_with(HashMap::new)
            .insert(placeholder.into(), name.into());
    }

    fn value(&mut self, placeholder: &str, value: AttributeValue) {
        self.values
            .get_or_insert_with(HashMap::new)
            .insert(placeholder.into(), value);
    }

    fn with_ttl(mut self, now: i64) -> Self {
        self.name("#ttl", TTL);
        self.value(":now", AttributeValue::N(now.to_string()));
        self
    }

    /// The condition expression of a write; an item past its TTL counts as absent.
    pub fn condition(condition: Condition, now: i64) -> Self {
        let mut expr = Expression::default();
        let text = match condition {
            Condition::Always => return expr,
            Condition::Absent => "attribute_not_exists(#pk) OR #ttl <= :now".to_string(),
            Condition::Exists => format!("attribute_exists(#pk) AND {LIVE}"),
            Condition::Version(version) => {
                expr.name("#v", VERSION);
                expr.value(":expected", AttributeValue::N(version.to_string()));
                format!("#v = :expected AND {LIVE}")
            }
        };
        if text.contains("#pk") {
            expr.name("#pk", PK);
        }
        expr.text = Some(text);
        expr.with_ttl(now)
    }

    /// A condition that always holds, for a transaction's check of [`Condition::Always`].
    pub fn always() -> Self {
        let mut expr = Expression::default();
        expr.name("#pk", PK);
        expr.text = Some("attribute_exists(#pk) OR attribute_not_exists(#pk)".into());
        expr
    }

    /// Sets and removes top-level fields of `data`, raises the version, and requires a live
    /// item on which `condition` holds.
    pub fn update(update: &Update, condition: Condition, now: i64) -> Self {
        let mut expr = Expression::condition(condition, now);
        let exists = format!("attribute_exists(#pk) AND {LIVE}");
        expr.text = Some(match expr.text.take() {
            Some(text) => format!("({text}) AND {exists}"),
            None => exists,
        });
        let mut expr = expr.with_ttl(now);
        expr.name("#pk", PK);
        expr.name("#v", VERSION);
        expr.name("#d", DATA);
        expr.value(":one", AttributeValue::N("1".into()));
        let mut sets = vec!["#v = #v + :one".to_string()];
        for (i, (field, value)) in update.set.iter().enumerate() {
            expr.name(&format!("#s{i}"), field);
            expr.value(&format!(":s{i}"), to_attr(value));
            sets.push(format!("#d.#s{i} = :s{i}"));
        }
        let mut text = format!("SET {}", sets.join(", "));
        if !update.remove.is_empty() {
            let removes: Vec<String> = (0..update.remove.len())
                .map(|i| format!("#d.#r{i}"))
                .collect();
            for (i, field) in update.remove.iter().enumerate() {
                expr.name(&format!("#r{i}"), field);
            }
            text.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        expr.update = Some(text);
        expr
    }

    /// The key condition of a query over one partition.
    pub fn key_condition(pk: &str, sort_key: &SortKey) -> Self {
        let mut expr = Expression::default();
        expr.name("#pk", PK);
        expr.value(":pk", AttributeValue::S(pk.into()));
        let mut text = "#pk = :pk".to_string();
        match sort_key {
            // DynamoDB refuses an empty begins_with; every sort key has the empty prefix.
            SortKey::All => {}
            SortKey::Prefix(prefix) if prefix.is_empty() => {}
            SortKey::Prefix(prefix) => {
                expr.name("#sk", SK);
                expr.value(":prefix", AttributeValue::S(prefix.clone()));
                text.push_str(" AND begins_with(#sk, :prefix)");
            }
            SortKey::Between(from, to) => {
                expr.name("#sk", SK);
                expr.value(":from", AttributeValue::S(from.clone()));
                expr.value(":to", AttributeValue::S(to.clone()));
                text.push_str(" AND #sk BETWEEN :from AND :to");
            }
        }
        expr.text = Some(text);
        expr
    }
}
