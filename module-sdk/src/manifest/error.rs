//! Errors of the manifest's parsers.

use super::Problem;

/// A value that does not parse into one of the contract's newtypes
/// ([`ModuleName`](super::ModuleName), [`Permission`](super::Permission), …).
///
/// Its message names the input and says what is wrong in plain words, e.g.
/// ``` `Financial` is not a valid module name: it must start with a lowercase letter ```.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid {what}: {reason}")]
pub struct ParseError {
    what: &'static str,
    input: String,
    reason: String,
}

impl ParseError {
    /// A parse error for `input`, which is not a valid `what` because of `reason`.
    pub(crate) fn new(what: &'static str, input: &str, reason: impl Into<String>) -> Self {
        Self {
            what,
            input: input.to_owned(),
            reason: reason.into(),
        }
    }

    /// The text that failed to parse.
    #[must_use]
    pub fn input(&self) -> &str {
        &self.input
    }

    /// Why it failed, without the input (e.g. `it is reserved by the platform`).
    #[must_use]
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// Why a manifest document could not be turned into a [`Manifest`](super::Manifest).
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The text is not JSON at all; the error carries the line and column.
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The document is JSON but breaks the contract; every problem is listed.
    #[error("{} problem{} in the manifest, first: {}", .0.len(), if .0.len() == 1 { "" } else { "s" }, first(.0))]
    Invalid(Vec<Problem>),
}

fn first(problems: &[Problem]) -> String {
    problems
        .first()
        .map_or_else(String::new, ToString::to_string)
}
