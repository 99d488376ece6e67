//! Module permissions (`financial:invoices.read`) and the grants that roles hold.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ParseError;

const GRAMMAR: &str = "expected `{module}:{resource}.{action}`, like `financial:invoices.read`";

/// A permission a module declares and checks: `{module}:{resource}.{action}`, each part made of
/// lowercase letters, digits, `_` and `-`, starting with a letter (`-` and no `_` in the module
/// part, as in module names). Wildcards belong to [`PermissionGrant`], never here.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Permission {
    code: String,
    colon: usize,
    dot: usize,
}

impl Permission {
    /// Parses a permission code.
    ///
    /// # Errors
    /// A [`ParseError`] that names the part that is wrong.
    pub fn parse(code: &str) -> Result<Self, ParseError> {
        let fail = |reason: &str| ParseError::new("permission", code, reason);
        if code.contains('*') {
            return Err(fail(
                "wildcards like `financial:*` are only allowed in role grants",
            ));
        }
        let (module, rest) = code.split_once(':').ok_or_else(|| fail(GRAMMAR))?;
        let (resource, action) = rest.split_once('.').ok_or_else(|| fail(GRAMMAR))?;
        if action.contains(['.', ':']) || resource.contains(':') {
            return Err(fail(GRAMMAR));
        }
        check_module_part(module).map_err(|reason| fail(&reason))?;
        check_part("resource", resource).map_err(|reason| fail(&reason))?;
        check_part("action", action).map_err(|reason| fail(&reason))?;
        Ok(Self {
            code: code.to_owned(),
            colon: module.len(),
            dot: module.len() + 1 + resource.len(),
        })
    }

    /// The module whose namespace this permission is in (`financial`).
    #[must_use]
    pub fn module(&self) -> &str {
        &self.code[..self.colon]
    }

    /// The resource part (`invoices`).
    #[must_use]
    pub fn resource(&self) -> &str {
        &self.code[self.colon + 1..self.dot]
    }

    /// The action part (`read`).
    #[must_use]
    pub fn action(&self) -> &str {
        &self.code[self.dot + 1..]
    }

    /// The whole code.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.code
    }
}

/// What a role holds: one [`Permission`], every permission of a module (`financial:*`), or every
/// action on one resource of a module (`financial:invoices.*`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum PermissionGrant {
    /// Exactly this permission.
    Exact(Permission),
    /// Every permission of the module (`financial:*`).
    Module(String),
    /// Every action on one resource (`financial:invoices.*`): module, then resource.
    Resource(String, String),
}

impl PermissionGrant {
    /// Parses a grant: a permission, or one with a wildcard in place of the last part(s).
    ///
    /// # Errors
    /// A [`ParseError`] that names the part that is wrong.
    pub fn parse(grant: &str) -> Result<Self, ParseError> {
        let fail = |reason: &str| ParseError::new("permission grant", grant, reason);
        if let Some(module) = grant.strip_suffix(":*") {
            check_module_part(module).map_err(|reason| fail(&reason))?;
            return Ok(Self::Module(module.to_owned()));
        }
        if let Some(prefix) = grant.strip_suffix(".*") {
            let (module, resource) = prefix.split_once(':').ok_or_else(|| {
                fail("expected `{module}:{resource}.*`, like `financial:invoices.*`")
            })?;
            check_module_part(module).map_err(|reason| fail(&reason))?;
            check_part("resource", resource).map_err(|reason| fail(&reason))?;
            return Ok(Self::Resource(module.to_owned(), resource.to_owned()));
        }
        if grant.contains('*') {
            return Err(fail(
                "a wildcard may only stand for a whole part at the end, as in `financial:*` or `financial:invoices.*`",
            ));
        }
        Permission::parse(grant)
            .map(Self::Exact)
            .map_err(|error| fail(error.reason()))
    }

    /// Whether holding this grant allows `permission`.
    #[must_use]
    pub fn grants(&self, permission: &Permission) -> bool {
        match self {
            Self::Exact(exact) => exact == permission,
            Self::Module(module) => permission.module() == module,
            Self::Resource(module, resource) => {
                permission.module() == module && permission.resource() == resource
            }
        }
    }

    /// The module this grant is about.
    #[must_use]
    pub fn module(&self) -> &str {
        match self {
            Self::Exact(permission) => permission.module(),
            Self::Module(module) | Self::Resource(module, _) => module,
        }
    }
}

fn check_module_part(module: &str) -> Result<(), String> {
    let valid = module.starts_with(|c: char| c.is_ascii_lowercase())
        && module
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "the module `{module}` must be a module name (lowercase letters, digits and `-`)"
        ))
    }
}

fn check_part(what: &str, part: &str) -> Result<(), String> {
    let valid = part.starts_with(|c: char| c.is_ascii_lowercase())
        && part
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "the {what} `{part}` must start with a lowercase letter and contain only lowercase letters, digits, `_` and `-`"
        ))
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code)
    }
}

impl fmt::Display for PermissionGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(permission) => permission.fmt(f),
            Self::Module(module) => write!(f, "{module}:*"),
            Self::Resource(module, resource) => write!(f, "{module}:{resource}.*"),
        }
    }
}

impl TryFrom<String> for Permission {
    type Error = ParseError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Permission> for String {
    fn from(permission: Permission) -> Self {
        permission.code
    }
}

impl TryFrom<String> for PermissionGrant {
    type Error = ParseError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PermissionGrant> for String {
    fn from(grant: PermissionGrant) -> Self {
        grant.to_string()
    }
}

impl std::str::FromStr for Permission {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl std::str::FromStr for PermissionGrant {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permission(code: &str) -> Permission {
        Permission::parse(code).expect("a valid permission")
    }

    fn reason(code: &str) -> String {
        Permission::parse(code)
            .expect_err("the permission should be refused")
            .reason()
            .to_owned()
    }

    #[test]
    fn splits_module_resource_and_action() {
        let p = permission("time-tracking:time_entries.approve");
        assert_eq!(p.module(), "time-tracking");
        assert_eq!(p.resource(), "time_entries");
        assert_eq!(p.action(), "approve");
        assert_eq!(p.to_string(), "time-tracking:time_entries.approve");
    }

    #[test]
    fn refuses_codes_outside_the_grammar() {
        for code in [
            "financial",
            "financial.invoices.read",
            "financial:invoices",
            "a:b.c.d",
            "a:b:c.d",
        ] {
            assert_eq!(reason(code), GRAMMAR, "{code}");
        }
        assert_eq!(
            reason("Financial:invoices.read"),
            "the module `Financial` must be a module name (lowercase letters, digits and `-`)"
        );
        assert_eq!(
            reason("financial:Invoices.read"),
            "the resource `Invoices` must start with a lowercase letter and contain only lowercase letters, digits, `_` and `-`"
        );
        assert_eq!(
            reason("financial:invoices."),
            "the action `` must start with a lowercase letter and contain only lowercase letters, digits, `_` and `-`"
        );
        assert_eq!(
            reason("financial:*"),
            "wildcards like `financial:*` are only allowed in role grants"
        );
    }

    #[test]
    fn grants_match_exact_module_and_resource_wildcards() {
        let read = permission("financial:invoices.read");
        let other = permission("financial:accounts.read");
        let foreign = permission("hr:invoices.read");
        let exact = PermissionGrant::parse("financial:invoices.read").expect("grant");
        let module = PermissionGrant::parse("financial:*").expect("grant");
        let resource = PermissionGrant::parse("financial:invoices.*").expect("grant");
        assert!(exact.grants(&read) && !exact.grants(&other));
        assert!(module.grants(&read) && module.grants(&other) && !module.grants(&foreign));
        assert!(resource.grants(&read) && !resource.grants(&other) && !resource.grants(&foreign));
        assert_eq!(module.module(), "financial");
    }

    #[test]
    fn grants_round_trip_through_text() {
        for text in [
            "financial:*",
            "financial:invoices.*",
            "financial:invoices.read",
        ] {
            let grant = PermissionGrant::parse(text).expect("grant");
            assert_eq!(grant.to_string(), text);
            let json = serde_json::to_string(&grant).expect("serialize");
            let back: PermissionGrant = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, grant);
        }
    }

    #[test]
    fn refuses_misplaced_wildcards() {
        for text in [
            "*",
            "*:*",
            "financial:*.read",
            "financial:inv*.read",
            "fin*:*",
        ] {
            assert!(PermissionGrant::parse(text).is_err(), "{text}");
        }
        let error = PermissionGrant::parse("financial:*.read").expect_err("refused");
        assert_eq!(
            error.to_string(),
            "`financial:*.read` is not a valid permission grant: a wildcard may only stand for a whole part at the end, as in `financial:*` or `financial:invoices.*`"
        );
    }
}
