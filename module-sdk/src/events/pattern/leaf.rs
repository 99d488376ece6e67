//! The candidates a leaf field of a pattern holds, each parsed from its JSON form (reporting
//! EventBridge's reasons) and matched against one leaf value of an event.

use std::net::IpAddr;

use serde_json::{Number, Value};

/// Numbers in `numeric` and `anything-but` must lie within ±5.0e9, as in EventBridge.
const NUMBER_LIMIT: f64 = 5.0e9;

/// One candidate of a leaf field.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Matcher {
    /// An exact value; a string that is an IP address also matches other spellings of it.
    Exact {
        value: Value,
        ip: Option<IpAddr>,
    },
    /// Held lowercased when it ignores case.
    Prefix {
        text: String,
        ignore_case: bool,
    },
    /// Held lowercased when it ignores case.
    Suffix {
        text: String,
        ignore_case: bool,
    },
    /// Held lowercased.
    EqualsIgnoreCase(String),
    Wildcard(Wildcard),
    AnythingBut(AnythingBut),
    Numeric(Range),
    /// Decided by the field as a whole, not value by value.
    Exists(bool),
    Cidr(Cidr),
}

impl Matcher {
    /// An exact-value candidate.
    pub(super) fn exact(value: &Value) -> Self {
        let ip = value.as_str().and_then(|text| text.parse().ok());
        Matcher::Exact {
            value: value.clone(),
            ip,
        }
    }

    /// Whether one leaf value of the event matches.
    pub(super) fn matches(&self, value: &Value) -> bool {
        let text = value.as_str();
        match self {
            Matcher::Exact {
                value: expected,
                ip,
            } => exact_matches(expected, *ip, value),
            Matcher::Prefix {
                text: prefix,
                ignore_case,
            } => text.is_some_and(|t| fold(t, *ignore_case).starts_with(prefix.as_str())),
            Matcher::Suffix {
                text: suffix,
                ignore_case,
            } => text.is_some_and(|t| fold(t, *ignore_case).ends_with(suffix.as_str())),
            Matcher::EqualsIgnoreCase(expected) => {
                text.is_some_and(|t| t.to_lowercase() == *expected)
            }
            Matcher::Wildcard(wildcard) => text.is_some_and(|t| wildcard.matches(t)),
            Matcher::AnythingBut(excluded) => !excluded.excludes(value),
            Matcher::Numeric(range) => comparable(value).is_some_and(|n| range.contains(n)),
            Matcher::Exists(_) => false,
            Matcher::Cidr(cidr) => text
                .and_then(|t| t.parse::<IpAddr>().ok())
                .is_some_and(|ip| cidr.contains(ip)),
        }
    }
}

fn exact_matches(expected: &Value, ip: Option<IpAddr>, value: &Value) -> bool {
    match (expected, value) {
        (Value::String(expected), Value::String(actual)) => {
            expected == actual || ip.is_some_and(|ip| actual.parse::<IpAddr>().ok() == Some(ip))
        }
        (Value::Number(expected), Value::Number(actual)) => same_number(expected, actual),
        (expected, actual) => expected == actual,
    }
}

fn same_number(a: &Number, b: &Number) -> bool {
    a == b || matches!((a.as_f64(), b.as_f64()), (Some(x), Some(y)) if x == y)
}

/// `text`, lowercased when case is ignored.
pub(super) fn fold(text: &str, ignore_case: bool) -> String {
    if ignore_case {
        text.to_lowercase()
    } else {
        text.to_owned()
    }
}

/// A JSON number of the event that numeric matching can compare.
fn comparable(value: &Value) -> Option<f64> {
    value
        .as_f64()
        .filter(|n| (-NUMBER_LIMIT..=NUMBER_LIMIT).contains(n))
}

/// A number of the pattern, refused outside the range EventBridge compares.
fn pattern_number(n: f64) -> Result<f64, String> {
    if (-NUMBER_LIMIT..=NUMBER_LIMIT).contains(&n) {
        Ok(n)
    } else {
        Err("Value must be between -5.0E9 and 5.0E9, inclusive".into())
    }
}

/// What `anything-but` excludes; it matches any present value that is not excluded.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum AnythingBut {
    Strings(Vec<String>),
    Numbers(Vec<f64>),
    Prefix(String),
    Suffix(String),
    /// Held lowercased.
    EqualsIgnoreCase(Vec<String>),
    Wildcards(Vec<Wildcard>),
}

const MIXED_LIST: &str =
    "Inside anything but list, either all values are number or string, mixed type is not supported";

impl AnythingBut {
    /// Parses the value of `anything-but`.
    pub(super) fn parse(value: &Value) -> Result<Self, String> {
        match value {
            Value::String(text) => Ok(AnythingBut::Strings(vec![text.clone()])),
            Value::Number(n) => Ok(AnythingBut::Numbers(vec![number_of(n)?])),
            Value::Array(items) => Self::parse_list(items),
            Value::Object(map) => {
                let mut entries = map.iter();
                let (Some((operator, operand)), None) = (entries.next(), entries.next()) else {
                    return Err(if map.is_empty() {
                        "Anything-But expression name not found".into()
                    } else {
                        "Only one key allowed in match expression".into()
                    });
                };
                Self::parse_nested(operator, operand)
            }
            _ => {
                Err("Value of anything-but must be an array or single string/number value.".into())
            }
        }
    }

    fn parse_list(items: &[Value]) -> Result<Self, String> {
        let (mut strings, mut numbers) = (Vec::new(), Vec::new());
        for item in items {
            match item {
                Value::String(text) => strings.push(text.clone()),
                Value::Number(n) => numbers.push(number_of(n)?),
                _ => {
                    return Err(
                        "Inside anything but list, start|null|boolean is not supported.".into(),
                    );
                }
            }
        }
        match (strings.is_empty(), numbers.is_empty()) {
            (false, true) => Ok(AnythingBut::Strings(strings)),
            (true, false) => Ok(AnythingBut::Numbers(numbers)),
            _ => Err(MIXED_LIST.into()),
        }
    }

    fn parse_nested(operator: &str, operand: &Value) -> Result<Self, String> {
        match operator {
            "prefix" | "suffix" => {
                let Some(text) = operand.as_str() else {
                    return Err("prefix/suffix match pattern must be a string".into());
                };
                if text.is_empty() {
                    return Err("Null prefix/suffix not allowed".into());
                }
                Ok(if operator == "prefix" {
                    AnythingBut::Prefix(text.to_owned())
                } else {
                    AnythingBut::Suffix(text.to_owned())
                })
            }
            "equals-ignore-case" => {
                let texts = strings(operand).ok_or(
                    "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.",
                )?;
                Ok(AnythingBut::EqualsIgnoreCase(
                    texts.iter().map(|t| t.to_lowercase()).collect(),
                ))
            }
            "wildcard" => {
                let texts = strings(operand)
                    .ok_or("Inside anything-but/wildcard list, number|start|null|boolean is not supported.")?;
                let wildcards = texts.iter().map(|t| Wildcard::parse(t));
                Ok(AnythingBut::Wildcards(wildcards.collect::<Result<_, _>>()?))
            }
            other => Err(format!("Unsupported anything-but pattern: {other}")),
        }
    }

    /// Whether `value` is one of the excluded values.
    fn excludes(&self, value: &Value) -> bool {
        let text = value.as_str();
        match self {
            AnythingBut::Strings(list) => text.is_some_and(|t| list.iter().any(|s| s == t)),
            AnythingBut::Numbers(list) => value.as_f64().is_some_and(|n| list.contains(&n)),
            AnythingBut::Prefix(prefix) => text.is_some_and(|t| t.starts_with(prefix.as_str())),
            AnythingBut::Suffix(suffix) => text.is_some_and(|t| t.ends_with(suffix.as_str())),
            AnythingBut::EqualsIgnoreCase(list) => {
                text.is_some_and(|t| list.contains(&t.to_lowercase()))
            }
            AnythingBut::Wildcards(list) => text.is_some_and(|t| list.iter().any(|w| w.matches(t))),
        }
    }
}

fn number_of(n: &Number) -> Result<f64, String> {
    pattern_number(n.as_f64().unwrap_or(f64::INFINITY))
}

/// A string, or a non-empty list of strings.
fn strings(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(text) => Some(vec![text.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

/// A `numeric` range: each end open, closed or absent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Range {
    lower: Option<Bound>,
    upper: Option<Bound>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Bound {
    value: f64,
    inclusive: bool,
}

const TOO_MANY_ELEMENTS: &str = "Too many elements in numeric expression";

impl Range {
    /// Parses the array of `numeric`: `["=", n]`, `["<" | "<=", n]`, or `[">" | ">=", n]`
    /// optionally followed by `"<" | "<=", m` with `n < m`.
    pub(super) fn parse(items: &[Value]) -> Result<Self, String> {
        let operator = match items.first() {
            Some(Value::String(operator)) => operator.as_str(),
            Some(other) => return Err(format!("Invalid member in numeric match: {other}")),
            None => return Err("Invalid member in numeric match: ]".into()),
        };
        if !["=", "<", "<=", ">", ">="].contains(&operator) {
            return Err(format!("Unrecognized numeric range operator: {operator}"));
        }
        let value = operand(items.get(1), operator)?;
        let bound = |inclusive| Some(Bound { value, inclusive });
        match operator {
            "=" | "<" | "<=" if items.len() > 2 => Err(TOO_MANY_ELEMENTS.into()),
            "=" => Ok(Range {
                lower: bound(true),
                upper: bound(true),
            }),
            "<" | "<=" => Ok(Range {
                lower: None,
                upper: bound(operator == "<="),
            }),
            _ => Self::parse_upper(
                items,
                Bound {
                    value,
                    inclusive: operator == ">=",
                },
            ),
        }
    }

    fn parse_upper(items: &[Value], lower: Bound) -> Result<Self, String> {
        let Some(operator) = items.get(2) else {
            return Ok(Range {
                lower: Some(lower),
                upper: None,
            });
        };
        let Some(operator) = operator.as_str() else {
            return Err(format!("Bad value in numeric range: {operator}"));
        };
        if operator != "<" && operator != "<=" {
            return Err(format!("Bad numeric range operator: {operator}"));
        }
        let value = operand(items.get(3), operator)?;
        if items.len() > 4 {
            return Err("Too many terms in numeric range expression".into());
        }
        if lower.value >= value {
            return Err("Bottom must be less than top".into());
        }
        Ok(Range {
            lower: Some(lower),
            upper: Some(Bound {
                value,
                inclusive: operator == "<=",
            }),
        })
    }

    fn contains(&self, n: f64) -> bool {
        let above = self
            .lower
            .is_none_or(|b| n > b.value || (b.inclusive && n == b.value));
        let below = self
            .upper
            .is_none_or(|b| n < b.value || (b.inclusive && n == b.value));
        above && below
    }
}

fn operand(value: Option<&Value>, operator: &str) -> Result<f64, String> {
    let n = value
        .filter(|v| v.is_number())
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("Value of {operator} must be numeric"))?;
    pattern_number(n)
}

/// A `wildcard` string: `*` matches any run of characters (none included); `\*` is a
/// literal asterisk and `\\` a literal backslash.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Wildcard(Vec<Token>);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    Char(char),
    Star,
}

impl Wildcard {
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        let mut tokens = Vec::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            let next = chars.peek().map(|(_, next)| *next);
            match (c, next) {
                ('*', Some('*')) => {
                    return Err(format!("Consecutive wildcard characters at pos {at}"));
                }
                ('*', _) => tokens.push(Token::Star),
                ('\\', Some(escaped @ ('*' | '\\'))) => {
                    tokens.push(Token::Char(escaped));
                    chars.next();
                }
                ('\\', _) => return Err(format!("Invalid escape character at pos {at}")),
                (c, _) => tokens.push(Token::Char(c)),
            }
        }
        Ok(Self(tokens))
    }

    /// Matches with backtracking to the last star only: linear for one star, at worst
    /// quadratic, never exponential.
    pub(super) fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let (mut t, mut p) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match self.0.get(p) {
                Some(Token::Star) => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(Token::Char(c)) if *c == text[t] => {
                    t += 1;
                    p += 1;
                }
                _ => match star {
                    Some((star_p, star_t)) => {
                        p = star_p + 1;
                        t = star_t + 1;
                        star = Some((star_p, star_t + 1));
                    }
                    None => return false,
                },
            }
        }
        self.0[p..].iter().all(|token| *token == Token::Star)
    }
}

/// A `cidr` block, IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Cidr {
    V4 { network: u32, mask: u32 },
    V6 { network: u128, mask: u128 },
}

impl Cidr {
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let [address, bits] = parts.as_slice() else {
            return Err("Malformed CIDR, one '/' required".into());
        };
        let bits: i64 = bits
            .parse()
            .map_err(|_| "Malformed CIDR, mask bits must be an integer".to_owned())?;
        if bits < 0 {
            return Err("Malformed CIDR, mask bits must not be negative".into());
        }
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("Invalid IP address: {address}"))?;
        match address {
            IpAddr::V4(_) if bits > 31 => Err("IPv4 mask bits must be < 32".into()),
            IpAddr::V6(_) if bits > 127 => Err("IPv6 mask bits must be < 128".into()),
            IpAddr::V4(v4) => {
                let mask = u32::MAX.checked_shl(32 - bits as u32).unwrap_or(0);
                Ok(Cidr::V4 {
                    network: u32::from(v4) & mask,
                    mask,
                })
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX.checked_shl(128 - bits as u32).unwrap_or(0);
                Ok(Cidr::V6 {
                    network: u128::from(v6) & mask,
                    mask,
                })
            }
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Cidr::V4 { network, mask }, IpAddr::V4(v4)) => u32::from(v4) & mask == *network,
            (Cidr::V6 { network, mask }, IpAddr::V6(v6)) => u128::from(v6) & mask == *network,
            _ => false,
        }
    }
}
