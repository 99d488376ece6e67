//! Route paths: where a module's routes sit below its `api_prefix`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ParseError;

/// One segment of a [`RoutePath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteSegment {
    /// Text that must match exactly (`invoices`).
    Literal(String),
    /// A `{name}` parameter matching one segment.
    Param(String),
    /// A final `{name+}` parameter (usually `{proxy+}`) matching the rest of the path.
    Greedy(String),
}

/// A route's path relative to the module's `api_prefix`, like `/invoices/{id}` or
/// `/reports/{proxy+}`: starts with `/`, no empty segments or trailing `/`, each segment a literal
/// or a whole `{name}` parameter, and a greedy `{name+}` only at the end. `/` is the prefix itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoutePath {
    raw: String,
    segments: Vec<RouteSegment>,
}

impl RoutePath {
    /// Parses a route path.
    ///
    /// # Errors
    /// A [`ParseError`] naming the offending segment.
    pub fn parse(path: &str) -> Result<Self, ParseError> {
        let fail = |reason: String| ParseError::new("route path", path, reason);
        let Some(rest) = path.strip_prefix('/') else {
            return Err(fail("it must start with `/`".into()));
        };
        let mut segments = Vec::new();
        if !rest.is_empty() {
            if rest.ends_with('/') {
                return Err(fail("it must not end with `/`".into()));
            }
            for text in rest.split('/') {
                segments.push(parse_segment(text).map_err(fail)?);
            }
        }
        check_parameters(&segments).map_err(fail)?;
        Ok(Self {
            raw: path.to_owned(),
            segments,
        })
    }

    /// The path as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The segments after the leading `/` (none for `/`).
    #[must_use]
    pub fn segments(&self) -> &[RouteSegment] {
        &self.segments
    }

    /// The path with parameter names erased (`/invoices/{}`): two routes with the same shape
    /// match the same requests.
    #[must_use]
    pub fn shape(&self) -> String {
        let mut shape = String::new();
        for segment in &self.segments {
            shape.push('/');
            match segment {
                RouteSegment::Literal(text) => shape.push_str(text),
                RouteSegment::Param(_) => shape.push_str("{}"),
                RouteSegment::Greedy(_) => shape.push_str("{+}"),
            }
        }
        if shape.is_empty() {
            shape.push('/');
        }
        shape
    }
}

fn parse_segment(text: &str) -> Result<RouteSegment, String> {
    if text.is_empty() {
        return Err("it has an empty segment (`//`)".into());
    }
    if let Some(inner) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        let (name, greedy) = match inner.strip_suffix('+') {
            Some(name) => (name, true),
            None => (inner, false),
        };
        if !is_identifier(name) {
            return Err(format!(
                "the parameter `{text}` must be a name of letters, digits and `_`, like `{{id}}`"
            ));
        }
        let name = name.to_owned();
        return Ok(if greedy {
            RouteSegment::Greedy(name)
        } else {
            RouteSegment::Param(name)
        });
    }
    if text.contains(['{', '}']) {
        return Err(format!(
            "the segment `{text}` mixes text and a parameter; a parameter must be a whole segment"
        ));
    }
    if !text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
    {
        return Err(format!(
            "the segment `{text}` may only contain letters, digits, `-`, `_`, `.` and `~`"
        ));
    }
    Ok(RouteSegment::Literal(text.to_owned()))
}

fn check_parameters(segments: &[RouteSegment]) -> Result<(), String> {
    let mut seen: Vec<&str> = Vec::new();
    for (index, segment) in segments.iter().enumerate() {
        let name = match segment {
            RouteSegment::Literal(_) => continue,
            RouteSegment::Greedy(name) if index + 1 < segments.len() => {
                return Err(format!("`{{{name}+}}` may only be the last segment"));
            }
            RouteSegment::Param(name) | RouteSegment::Greedy(name) => name.as_str(),
        };
        if seen.contains(&name) {
            return Err(format!("the parameter `{name}` appears twice"));
        }
        seen.push(name);
    }
    Ok(())
}

fn is_identifier(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl fmt::Display for RoutePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl TryFrom<String> for RoutePath {
    type Error = ParseError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<RoutePath> for String {
    fn from(path: RoutePath) -> Self {
        path.raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(path: &str) -> String {
        RoutePath::parse(path)
            .expect_err("the path should be refused")
            .reason()
            .to_owned()
    }

    #[test]
    fn parses_literals_parameters_and_a_final_proxy() {
        let path = RoutePath::parse("/invoices/{id}/lines/{proxy+}").expect("valid");
        assert_eq!(
            path.segments(),
            [
                RouteSegment::Literal("invoices".into()),
                RouteSegment::Param("id".into()),
                RouteSegment::Literal("lines".into()),
                RouteSegment::Greedy("proxy".into()),
            ]
        );
        assert_eq!(path.shape(), "/invoices/{}/lines/{+}");
    }

    #[test]
    fn root_is_the_prefix_itself() {
        let root = RoutePath::parse("/").expect("valid");
        assert!(root.segments().is_empty());
        assert_eq!(root.shape(), "/");
    }

    #[test]
    fn refuses_malformed_paths() {
        assert_eq!(reason("invoices"), "it must start with `/`");
        assert_eq!(reason("/invoices/"), "it must not end with `/`");
        assert_eq!(reason("/invoices//lines"), "it has an empty segment (`//`)");
        assert_eq!(
            reason("/invoices/{id"),
            "the segment `{id` mixes text and a parameter; a parameter must be a whole segment"
        );
        assert_eq!(
            reason("/invoices/{}"),
            "the parameter `{}` must be a name of letters, digits and `_`, like `{id}`"
        );
        assert_eq!(
            reason("/{proxy+}/x"),
            "`{proxy+}` may only be the last segment"
        );
        assert_eq!(
            reason("/{id}/lines/{id}"),
            "the parameter `id` appears twice"
        );
        assert_eq!(
            reason("/invoices?all"),
            "the segment `invoices?all` may only contain letters, digits, `-`, `_`, `.` and `~`"
        );
    }

    #[test]
    fn parameter_names_do_not_change_the_shape() {
        let a = RoutePath::parse("/invoices/{id}").expect("valid");
        let b = RoutePath::parse("/invoices/{invoice_id}").expect("valid");
        assert_eq!(a.shape(), b.shape());
    }
}
