//! Module names: the identity of a module everywhere in the platform.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ParseError;

/// First path segments and names the platform keeps for itself; no module may take them.
pub const RESERVED_MODULE_NAMES: [&str; 11] = [
    "modules",
    "tenants",
    "rbac",
    "events",
    "health",
    "platform",
    "plinth",
    "tenant",
    "company",
    "dead-letters",
    "usage",
];

/// The longest module name; names end up in AWS resource names, which have tight limits.
pub const MAX_MODULE_NAME_LEN: usize = 40;

/// A module's name, e.g. `financial`: lowercase, starting with a letter, made of `a-z`, `0-9`
/// and `-` (not at the end), at most [`MAX_MODULE_NAME_LEN`] characters, and not one of
/// [`RESERVED_MODULE_NAMES`]. It is the module's URL segment (`/api/v1/{name}`) and the namespace
/// of its permissions and events.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ModuleName(String);

impl ModuleName {
    /// Parses a module name.
    ///
    /// # Errors
    /// A [`ParseError`] that says which rule the name breaks.
    pub fn parse(name: &str) -> Result<Self, ParseError> {
        let fail = |reason: &str| Err(ParseError::new("module name", name, reason));
        let Some(first) = name.chars().next() else {
            return fail("it is empty");
        };
        if !first.is_ascii_lowercase() {
            return fail("it must start with a lowercase letter");
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return fail(&format!(
                "it may only contain lowercase letters, digits and `-`, not `{bad}`"
            ));
        }
        if name.ends_with('-') {
            return fail("it must not end with `-`");
        }
        if name.len() > MAX_MODULE_NAME_LEN {
            return fail(&format!(
                "it is longer than {MAX_MODULE_NAME_LEN} characters"
            ));
        }
        if RESERVED_MODULE_NAMES.contains(&name) {
            return fail("it is reserved by the platform");
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name with `-` turned into `_`, as used in table and schema prefixes.
    #[must_use]
    pub fn snake_case(&self) -> String {
        self.0.replace('-', "_")
    }
}

impl fmt::Display for ModuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ModuleName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ModuleName {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for ModuleName {
    type Error = ParseError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ModuleName> for String {
    fn from(name: ModuleName) -> Self {
        name.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(name: &str) -> String {
        ModuleName::parse(name)
            .expect_err("the name should be refused")
            .reason()
            .to_owned()
    }

    #[test]
    fn accepts_lowercase_names_with_digits_and_hyphens() {
        for name in ["financial", "hr2", "time-tracking", "a", &"a".repeat(40)] {
            assert_eq!(
                ModuleName::parse(name).map(String::from),
                Ok(name.to_owned())
            );
        }
    }

    #[test]
    fn refuses_names_breaking_each_rule() {
        assert_eq!(reason(""), "it is empty");
        assert_eq!(reason("Financial"), "it must start with a lowercase letter");
        assert_eq!(reason("2fa"), "it must start with a lowercase letter");
        assert_eq!(reason("-x"), "it must start with a lowercase letter");
        assert_eq!(
            reason("time_tracking"),
            "it may only contain lowercase letters, digits and `-`, not `_`"
        );
        assert_eq!(
            reason("finAncial"),
            "it may only contain lowercase letters, digits and `-`, not `A`"
        );
        assert_eq!(reason("billing-"), "it must not end with `-`");
        assert_eq!(reason(&"a".repeat(41)), "it is longer than 40 characters");
    }

    #[test]
    fn refuses_every_reserved_name() {
        for name in RESERVED_MODULE_NAMES {
            assert_eq!(reason(name), "it is reserved by the platform");
        }
    }

    #[test]
    fn error_message_names_the_input() {
        let error = ModuleName::parse("tenants").expect_err("reserved");
        assert_eq!(
            error.to_string(),
            "`tenants` is not a valid module name: it is reserved by the platform"
        );
    }

    #[test]
    fn snake_case_replaces_hyphens() {
        let name = ModuleName::parse("time-tracking").expect("valid");
        assert_eq!(name.snake_case(), "time_tracking");
    }

    #[test]
    fn deserializes_only_valid_names() {
        let ok: Result<ModuleName, _> = serde_json::from_str("\"financial\"");
        assert!(ok.is_ok());
        let bad: Result<ModuleName, _> = serde_json::from_str("\"rbac\"");
        assert!(bad.is_err());
    }
}
