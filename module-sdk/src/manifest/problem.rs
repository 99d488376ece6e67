//! Problems found in a manifest, and the readable JSON paths that locate them.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One thing wrong with a manifest: where (`path`) and what (`message`).
///
/// `path` is a readable JSON path from the document root: `$` for the root itself, then keys
/// joined by `.` and array indexes in brackets, as in `backend.api_prefix` or
/// `permissions[2].code`; a key that is not a plain word is quoted (`env["MY VAR"]`).
/// Problems about a missing or unknown field sit on the object that should (not) have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// Where in the document, e.g. `routes[0].permission`.
    pub path: String,
    /// What is wrong, in plain words.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// A location in a JSON document, built segment by segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct JsonPath(Vec<Segment>);

impl JsonPath {
    /// The document root, `$`.
    pub(crate) fn root() -> Self {
        Self::default()
    }

    /// This path, then the object key `key`.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut path = self.clone();
        path.0.push(Segment::Key(key.to_owned()));
        path
    }

    /// This path, then the array index `index`.
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut path = self.clone();
        path.0.push(Segment::Index(index));
        path
    }

    /// This path followed by every segment of `suffix`.
    pub(crate) fn join(&self, suffix: &JsonPath) -> Self {
        let mut path = self.clone();
        path.0.extend(suffix.0.iter().cloned());
        path
    }

    /// Where the addressed value sits in document order: the position of each key in its object
    /// and of each index in its array. A key that is absent sorts after its present siblings.
    fn position(&self, document: &Value) -> Vec<usize> {
        let mut at = Some(document);
        let mut position = Vec::with_capacity(self.0.len());
        for segment in &self.0 {
            let (step, next) = match (segment, at) {
                (Segment::Key(key), Some(Value::Object(map))) => (
                    map.keys().position(|k| k == key).unwrap_or(usize::MAX),
                    map.get(key),
                ),
                (Segment::Index(index), Some(Value::Array(items))) => (*index, items.get(*index)),
                (Segment::Index(index), _) => (*index, None),
                (Segment::Key(_), _) => (usize::MAX, None),
            };
            position.push(step);
            at = next;
        }
        position
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("$");
        }
        for (n, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Index(index) if n == 0 => write!(f, "$[{index}]")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
                Segment::Key(key) if !is_plain(key) => {
                    let quoted = Value::String(key.clone());
                    if n == 0 {
                        f.write_str("$")?;
                    }
                    write!(f, "[{quoted}]")?;
                }
                Segment::Key(key) if n == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
            }
        }
        Ok(())
    }
}

fn is_plain(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Collects problems while the checks run, then hands them out in document order.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    found: Vec<Found>,
}

#[derive(Debug)]
struct Found {
    path: JsonPath,
    /// Where the problem sorts, when that differs from `path` (an unknown field sorts where
    /// the field is, though it is reported on its object).
    anchor: Option<JsonPath>,
    message: String,
}

impl Problems {
    /// Records a problem at `path`.
    pub(crate) fn add(&mut self, path: &JsonPath, message: impl Into<String>) {
        self.found.push(Found {
            path: path.clone(),
            anchor: None,
            message: message.into(),
        });
    }

    /// Records a problem at `path` that sorts as if it were at `anchor`.
    pub(crate) fn add_anchored(
        &mut self,
        path: &JsonPath,
        anchor: JsonPath,
        message: impl Into<String>,
    ) {
        self.found.push(Found {
            path: path.clone(),
            anchor: Some(anchor),
            message: message.into(),
        });
    }

    /// Whether nothing has been found.
    pub(crate) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// How many problems have been found so far.
    pub(crate) fn len(&self) -> usize {
        self.found.len()
    }

    /// The problems in the order their places appear in `document`; among problems at the same
    /// place, in the order they were found. Exact repeats are dropped.
    pub(crate) fn into_sorted(self, document: &Value) -> Vec<Problem> {
        let mut keyed: Vec<(Vec<usize>, Problem)> = self
            .found
            .into_iter()
            .map(|found| {
                let sort_at = found.anchor.as_ref().unwrap_or(&found.path);
                let problem = Problem {
                    path: found.path.to_string(),
                    message: found.message,
                };
                (sort_at.position(document), problem)
            })
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        let mut problems: Vec<Problem> = Vec::with_capacity(keyed.len());
        for (_, problem) in keyed {
            if !problems.contains(&problem) {
                problems.push(problem);
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_read_like_javascript() {
        let root = JsonPath::root();
        assert_eq!(root.to_string(), "$");
        assert_eq!(
            root.key("backend").key("api_prefix").to_string(),
            "backend.api_prefix"
        );
        assert_eq!(
            root.key("permissions").index(2).key("code").to_string(),
            "permissions[2].code"
        );
        assert_eq!(
            root.key("backend").key("env").key("MY VAR").to_string(),
            r#"backend.env["MY VAR"]"#
        );
        assert_eq!(root.key("a.b").to_string(), r#"$["a.b"]"#);
        assert_eq!(root.index(0).to_string(), "$[0]");
    }

    #[test]
    fn problems_come_out_in_document_order() {
        let document =
            json!({"name": "x", "version": "1", "routes": [{"path": "a"}, {"path": "b"}]});
        let root = JsonPath::root();
        let mut problems = Problems::default();
        problems.add(&root.key("routes").index(1).key("path"), "second route");
        problems.add(&root.key("version"), "version");
        problems.add(&root.key("routes").index(0), "first route");
        problems.add(&root, "missing something");
        problems.add_anchored(&root, root.key("routes"), "unknown field near routes");
        problems.add(&root.key("version"), "version");
        let lines: Vec<String> = problems
            .into_sorted(&document)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "$: missing something",
                "version: version",
                "$: unknown field near routes",
                "routes[0]: first route",
                "routes[1].path: second route",
            ]
        );
    }
}
