//! Keys: a table's key attributes, the partition a handle is bound to, and sort keys.

use serde_json::{Number, Value};

use super::DataError;
use crate::manifest::{KeyType, Table};

/// The separator between the tenant and the rest of a partition key (`{tenant}#{company}`).
pub const SEPARATOR: char = '#';

/// The type of a sort key attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A string.
    S,
    /// A number.
    N,
}

/// A declared table as the handle uses it: its name and key attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// The table's name (as the installer creates it: the declared name).
    pub name: String,
    /// The partition key attribute (a string, holding the tenant's partition).
    pub partition_key: String,
    /// The sort key attribute and its type, when the table has one.
    pub sort_key: Option<(String, KeyKind)>,
}

impl TableSpec {
    /// The spec of a manifest's table; a problem in words when the handle cannot serve it.
    ///
    /// # Errors
    /// When the partition key is not a string or the sort key is binary.
    pub fn from_manifest(table: &Table) -> Result<Self, String> {
        let name = &table.name;
        let (partition_key, sort_key) = match &table.partition_key {
            // A bare name gets string keys `pk` and `sk` from the installer.
            None => ("pk".to_owned(), Some(("sk".to_owned(), KeyKind::S))),
            Some(pk) => {
                if pk.kind != KeyType::S {
                    return Err(format!(
                        "table `{name}`: its partition key `{}` must be a string (type S) to hold \
                         the tenant",
                        pk.name
                    ));
                }
                let sort = match &table.sort_key {
                    None => None,
                    Some(sk) => Some((
                        sk.name.clone(),
                        match sk.kind {
                            KeyType::S => KeyKind::S,
                            KeyType::N => KeyKind::N,
                            KeyType::B => {
                                return Err(format!(
                                    "table `{name}`: the data handle takes string or number sort \
                                     keys, not binary (`{}`)",
                                    sk.name
                                ));
                            }
                        },
                    )),
                };
                (pk.name.clone(), sort)
            }
        };
        Ok(Self {
            name: name.clone(),
            partition_key,
            sort_key,
        })
    }
}

/// A sort key value: a string, a number, or none (a table without a sort key).
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    /// The table has no sort key: one item per partition.
    None,
    /// A string sort key.
    S(String),
    /// A number sort key.
    N(Number),
}

impl From<&str> for SortKey {
    fn from(value: &str) -> Self {
        Self::S(value.to_owned())
    }
}

impl From<String> for SortKey {
    fn from(value: String) -> Self {
        Self::S(value)
    }
}

impl From<&String> for SortKey {
    fn from(value: &String) -> Self {
        Self::S(value.clone())
    }
}

impl From<i64> for SortKey {
    fn from(value: i64) -> Self {
        Self::N(value.into())
    }
}

impl From<u64> for SortKey {
    fn from(value: u64) -> Self {
        Self::N(value.into())
    }
}

impl From<()> for SortKey {
    fn from((): ()) -> Self {
        Self::None
    }
}

impl SortKey {
    /// The value as the item holds it; `None` for [`SortKey::None`].
    #[must_use]
    pub fn to_value(&self) -> Option<Value> {
        match self {
            Self::None => None,
            Self::S(s) => Some(Value::String(s.clone())),
            Self::N(n) => Some(Value::Number(n.clone())),
        }
    }

    /// Checks the key against the table's sort key.
    pub(crate) fn check(&self, spec: &TableSpec) -> Result<(), DataError> {
        let fits = matches!(
            (self, &spec.sort_key),
            (Self::None, None)
                | (Self::S(_), Some((_, KeyKind::S)))
                | (Self::N(_), Some((_, KeyKind::N)))
        );
        if fits {
            return Ok(());
        }
        Err(DataError::BadKey(match &spec.sort_key {
            None => format!("table `{}` has no sort key: use `()`", spec.name),
            Some((name, kind)) => format!(
                "table `{}`: its sort key `{name}` is a {}, not {self:?}",
                spec.name,
                if *kind == KeyKind::S {
                    "string"
                } else {
                    "number"
                }
            ),
        }))
    }

    /// Bytes whose order is DynamoDB's order of the keys: strings by UTF-8 bytes; numbers by
    /// value (a 64-bit float, then the exact integer, so integers beyond 2^53 stay apart).
    #[must_use]
    pub fn ordered_bytes(&self) -> Vec<u8> {
        match self {
            Self::None => Vec::new(),
            Self::S(s) => s.as_bytes().to_vec(),
            Self::N(n) => {
                // -0 is 0, as DynamoDB has it.
                let float = n.as_f64().unwrap_or(0.0) + 0.0;
                let bits = float.to_bits();
                let ordered = if float.is_sign_negative() {
                    !bits
                } else {
                    bits ^ (1 << 63)
                };
                // A whole float (`1.0`) is the integer it equals (`1`), as DynamoDB has it.
                let whole = (float.fract() == 0.0 && float.abs() < 9.0e15).then_some(float as i128);
                let exact: i128 = n
                    .as_i64()
                    .map(i128::from)
                    .or_else(|| n.as_u64().map(i128::from))
                    .or(whole)
                    .unwrap_or(0);
                let mut bytes = ordered.to_be_bytes().to_vec();
                bytes.extend_from_slice(&((exact as u128) ^ (1 << 127)).to_be_bytes());
                bytes
            }
        }
    }
}

/// Which items of a partition a query reads, in sort-key order.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Range {
    /// Every item of the partition.
    #[default]
    All,
    /// Items whose (string) sort key starts with this.
    BeginsWith(String),
}

/// The whole key of one item, as a backend receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemKey {
    /// The tenant the handle is bound to (a backend picks its credentials by it).
    pub tenant: String,
    /// The partition key value: `{tenant}` or `{tenant}#{company}`.
    pub partition: String,
    /// The sort key.
    pub sort: SortKey,
}

/// Checks a tenant or company id for a partition key: 1 to 128 characters, no `#` (the
/// separator), no control characters or whitespace.
/// A tenant or company id as the platform makes them: 1 to 64 letters, digits, `-`, `_` and
/// `.`. Nothing else may reach a key or the session policy, whose `dynamodb:LeadingKeys`
/// patterns would read `*` and `?` as wildcards (and STS's session names refuse most
/// punctuation).
pub(crate) fn check_id(what: &str, id: &str) -> Result<(), DataError> {
    if id.is_empty() || id.len() > 64 {
        return Err(DataError::BadKey(format!(
            "{what} `{id}` must be 1 to 64 characters long"
        )));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(DataError::BadKey(format!(
            "{what} `{}` must not contain {bad:?}: ids are letters, digits, `-`, `_` and `.`",
            id.escape_debug()
        )));
    }
    Ok(())
}

/// The partition key value of a tenant's rows, or of one company's: `{tenant}` or
/// `{tenant}#{company}`.
#[must_use]
pub fn partition_of(tenant: &str, company: Option<&str>) -> String {
    match company {
        None => tenant.to_owned(),
        Some(company) => format!("{tenant}{SEPARATOR}{company}"),
    }
}

/// The patterns of every partition of `tenant`, as `dynamodb:LeadingKeys` matches them
/// (`StringLike`): `{tenant}` and `{tenant}#*`.
#[must_use]
pub fn tenant_prefixes(tenant: &str) -> [String; 2] {
    [tenant.to_owned(), format!("{tenant}{SEPARATOR}*")]
}

/// Whether `partition` is one of `tenant`'s.
#[must_use]
pub fn belongs_to(tenant: &str, partition: &str) -> bool {
    partition == tenant
        || partition
            .strip_prefix(tenant)
            .is_some_and(|rest| rest.starts_with(SEPARATOR))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenants_partitions_are_its_own_and_no_prefix_of_anothers() {
        assert!(belongs_to("acme", "acme"));
        assert!(belongs_to("acme", "acme#acme-de"));
        assert!(!belongs_to("acme", "acme-2"));
        assert!(!belongs_to("acme", "acmex#acme-de"));
        assert!(!belongs_to("acme", "globex#acme"));
    }

    /// Review finding: `1` and `1.0`, `0` and `-0` were different keys on the embedded backend
    /// and the same key on DynamoDB.
    #[test]
    fn a_whole_float_and_negative_zero_are_the_keys_dynamodb_makes_of_them() {
        let float = |f: f64| SortKey::N(Number::from_f64(f).unwrap());
        assert_eq!(
            float(1.0).ordered_bytes(),
            SortKey::from(1_i64).ordered_bytes()
        );
        assert_eq!(
            float(-7.0).ordered_bytes(),
            SortKey::from(-7_i64).ordered_bytes()
        );
        assert_eq!(
            float(-0.0).ordered_bytes(),
            SortKey::from(0_i64).ordered_bytes()
        );
        assert_ne!(
            float(1.5).ordered_bytes(),
            SortKey::from(1_i64).ordered_bytes()
        );
    }

    #[test]
    fn number_keys_sort_by_value() {
        let mut keys: Vec<SortKey> = [10_i64, -3, 2, 9_007_199_254_740_993, 9_007_199_254_740_992]
            .into_iter()
            .map(SortKey::from)
            .chain([SortKey::N(Number::from_f64(2.5).unwrap())])
            .collect();
        keys.sort_by_key(SortKey::ordered_bytes);
        let values: Vec<String> = keys
            .iter()
            .map(|k| k.to_value().unwrap().to_string())
            .collect();
        assert_eq!(
            values,
            [
                "-3",
                "2",
                "2.5",
                "10",
                "9007199254740992",
                "9007199254740993"
            ]
        );
    }

    /// Review finding: `*` and `?` passed, and `dynamodb:LeadingKeys` is matched with
    /// `StringLike`, so a tenant `*` would have been given every partition.
    #[test]
    fn an_id_with_a_wildcard_or_punctuation_is_refused_before_it_reaches_a_session_policy() {
        for id in ["*", "a*", "acme?", "ac:me", "ac/me", "äcme"] {
            assert!(check_id("tenant", id).is_err(), "{id}");
        }
        for id in ["acme", "acme-2", "acme_de", "acme.de"] {
            assert!(check_id("tenant", id).is_ok(), "{id}");
        }
    }

    #[test]
    fn an_id_with_the_separator_is_refused() {
        let error = check_id("tenant", "acme#x").unwrap_err();
        assert!(
            error.to_string().contains("must not contain '#'"),
            "{error}"
        );
    }
}
