//! The semantic pass: rules a JSON Schema cannot express.
//!
//! Every rule reads the raw document leniently: a value of the wrong shape is skipped here
//! because the structural pass already reports it, so both kinds of problem come out together.

mod access;
mod backend;
mod data;
pub(crate) mod frontend;
mod wiring;

use semver::Version;
use serde_json::Value;

use super::ModuleName;
use super::problem::{JsonPath, Problems};

/// What the rules share: the document, and the module's name when it is valid (rules that
/// compare against the name stay quiet when it is not, since `name` is reported already).
pub(super) struct Context<'a> {
    doc: &'a Value,
    root: JsonPath,
    name: Option<ModuleName>,
}

impl<'a> Context<'a> {
    /// The top-level field `key`, if present.
    fn section(&self, key: &str) -> Option<&'a Value> {
        self.doc.get(key)
    }
}

/// Runs every semantic rule over `document`.
pub(crate) fn check_rules(document: &Value, problems: &mut Problems) {
    let root = JsonPath::root();
    let name = check_name(document, &root, problems);
    let cx = Context {
        doc: document,
        root,
        name,
    };
    check_version(&cx, problems);
    backend::check(&cx, problems);
    frontend::check(&cx, problems);
    let declared = access::check_permissions(&cx, problems);
    access::check_routes(&cx, &declared, problems);
    data::check_database(&cx, problems);
    data::check_configuration(&cx, problems);
    data::check_features(&cx, problems);
    wiring::check_dependencies(&cx, problems);
    wiring::check_hooks(&cx, problems);
    wiring::check_events(&cx, problems);
}

fn check_name(document: &Value, root: &JsonPath, problems: &mut Problems) -> Option<ModuleName> {
    let name = document.get("name")?.as_str()?;
    ModuleName::parse(name)
        .map_err(|error| problems.add(&root.key("name"), error.to_string()))
        .ok()
}

fn check_version(cx: &Context<'_>, problems: &mut Problems) {
    let Some(version) = cx.section("version").and_then(Value::as_str) else {
        return;
    };
    if let Err(error) = Version::parse(version) {
        problems.add(
            &cx.root.key("version"),
            format!("`{version}` is not a semantic version like `1.2.0`: {error}"),
        );
    }
}

/// The string at `key` of `value`, if `value` is an object with a string there.
fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// The items of an array with their indexes; nothing when `value` is absent or not an array.
fn items(value: Option<&Value>) -> impl Iterator<Item = (usize, &Value)> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

/// The text of an item written either as a bare string or as an object with the text at `key`,
/// with the path of that text.
fn bare_or_field<'a>(item: &'a Value, at: &JsonPath, key: &str) -> Option<(&'a str, JsonPath)> {
    match item {
        Value::String(text) => Some((text, at.clone())),
        Value::Object(_) => text(item, key).map(|text| (text, at.key(key))),
        _ => None,
    }
}

/// Remembers the first place each name was seen, to report repeats.
#[derive(Default)]
struct FirstSeen(Vec<(String, JsonPath)>);

impl FirstSeen {
    /// Where `name` was seen before, recording `at` as its first place otherwise.
    fn repeat_of(&mut self, name: &str, at: &JsonPath) -> Option<JsonPath> {
        if let Some((_, first)) = self.0.iter().find(|(seen, _)| seen == name) {
            return Some(first.clone());
        }
        self.0.push((name.to_owned(), at.clone()));
        None
    }
}

/// Whether `path` is a path on the backend (starts with `/`); reports it at `at` otherwise.
fn check_backend_path(path: &str, at: &JsonPath, problems: &mut Problems) {
    if !path.starts_with('/') {
        problems.add(
            at,
            format!("`{path}` must be a path on the backend, starting with `/`"),
        );
    }
}

#[cfg(test)]
mod tests;
