//! Identifiers that can only hold valid values: they go into store keys and URLs.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::Error;

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        identifier!($(#[$doc])* $name, $what, check);
    };
    ($(#[$doc:meta])* $name:ident, $what:literal, $check:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(text: &str) -> Result<Self, String> {
                $check(text, $what).map(|()| Self(text.to_owned()))
            }

            /// Parses a field of a request, naming it in the error.
            pub fn parse_field(field: &str, text: &str) -> Result<Self, Error> {
                Self::parse(text).map_err(|message| Error::field(field, message))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

identifier!(
    /// A tenant: a customer of the platform.
    TenantId,
    "a tenant id"
);
identifier!(
    /// A company within a tenant.
    CompanyId,
    "a company id"
);
identifier!(
    /// A user, as the token's `sub` names them (an email or an identity provider's id).
    UserId,
    "a user id",
    check_subject
);
identifier!(
    /// A tenant's role: a named set of module permissions.
    RoleName,
    "a role name"
);

/// 1 to 64 characters: letters, digits, `-`, `_` and `.`, not only dots.
fn check(text: &str, what: &str) -> Result<(), String> {
    if text.is_empty() || text.len() > 64 {
        return Err(format!("{what} must be 1 to 64 characters long"));
    }
    only_dots(text, what)?;
    match text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        Some(bad) => Err(format!(
            "{what} may hold only letters, digits, `-`, `_` and `.`, not `{bad}`"
        )),
        None => Ok(()),
    }
}

/// 1 to 128 visible characters other than `#` (the store's key separator), not only dots.
fn check_subject(text: &str, what: &str) -> Result<(), String> {
    if text.is_empty() || text.len() > 128 {
        return Err(format!("{what} must be 1 to 128 characters long"));
    }
    only_dots(text, what)?;
    match text
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || *c == '#')
    {
        Some(bad) => Err(format!("{what} must not contain {bad:?}")),
        None => Ok(()),
    }
}

/// `.`, `..`, `...`: an id goes into URLs, where dot segments mean "here" and "up".
fn only_dots(text: &str, what: &str) -> Result<(), String> {
    if text.chars().all(|c| c == '.') {
        return Err(format!(
            "{what} must not be only dots (`{text}`): a URL reads dot segments as path steps"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_refuse_what_would_break_a_key_or_a_url() {
        assert!(TenantId::parse("acme").is_ok());
        assert!(TenantId::parse("acme-de_2.x").is_ok());
        assert_eq!(
            TenantId::parse("a#b").unwrap_err(),
            "a tenant id may hold only letters, digits, `-`, `_` and `.`, not `#`"
        );
        assert!(CompanyId::parse("").is_err());
        assert!(UserId::parse("auth0|alice@example.com").is_ok());
        assert!(UserId::parse("a b").is_err());
        assert!(RoleName::parse("a/b").is_err());
    }

    #[test]
    fn ids_of_only_dots_are_refused_as_every_id_type() {
        for dots in [".", "..", "..."] {
            for refused in [
                TenantId::parse(dots).err(),
                CompanyId::parse(dots).err(),
                UserId::parse(dots).err(),
                RoleName::parse(dots).err(),
            ] {
                assert!(refused.is_some_and(|m| m.contains("only dots")), "{dots}");
            }
        }
        assert!(TenantId::parse("a.b").is_ok() && UserId::parse(".alice").is_ok());
    }
}
