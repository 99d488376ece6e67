//! The control plane's floors (docs/architecture.md): every top-level module of `registry`
//! sits on one floor, and no module names one on a floor above it or, on its own floor, one
//! that names it back. Read from the source: every `crate::…` path outside comments.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest first. A new top-level module fails this test until it is given a floor here.
const FLOORS: &[(&str, &[&str])] = &[
    (
        "foundations",
        &["ids", "clock", "hash", "error", "cache", "identity", "aws"],
    ),
    ("ports", &["store", "events", "deploy", "hooks", "queue"]),
    (
        "domain",
        &[
            "changes",
            "audit",
            "catalog",
            "installation",
            "api_keys",
            "tenancy",
            "rbac",
            "instances",
            "config",
            "enablement",
            "install",
            "module_events",
            "plane",
        ],
    ),
    ("edges", &["api", "gateway"]),
    ("composition root", &["app"]),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules, each with its files.
fn modules() -> BTreeMap<String, Vec<PathBuf>> {
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(src()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            let mut files = Vec::new();
            rust_files(&path, &mut files);
            modules.insert(name, files);
        } else if path.extension().is_some_and(|e| e == "rs") && name != "lib" {
            modules.insert(name, vec![path]);
        }
    }
    modules
}

fn without_comments(source: &str) -> String {
    source
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn identifier(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The first segments of every `crate::…` path: `crate::a::b` → `a`, `crate::{a, b::c}` →
/// `a`, `b`.
fn named(source: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in source.match_indices("crate::") {
        let rest = &source[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find(';').unwrap_or(group.len())];
            let mut depth = 0;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        names.insert(identifier(&group[i..]).to_owned());
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            names.insert(identifier(rest).to_owned());
        }
    }
    names
}

/// What `lib.rs` re-exports at the crate root (`crate::Error` is `error`'s).
fn root_names() -> BTreeMap<String, String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let mut names = BTreeMap::new();
    for line in lib.lines() {
        let Some(path) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let module = identifier(path).to_owned();
        let items = path[module.len()..].trim_start_matches("::");
        for item in items.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if !item.is_empty() {
                names.insert(item.to_owned(), module.clone());
            }
        }
    }
    names
}

fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let roots = root_names();
    let mut edges = BTreeMap::new();
    for (module, files) in &modules {
        let mut to = BTreeSet::new();
        for file in files {
            let source = without_comments(&std::fs::read_to_string(file).unwrap());
            for name in named(&source) {
                let target = if modules.contains_key(&name) {
                    Some(name)
                } else {
                    roots.get(&name).cloned()
                };
                if let Some(target) = target.filter(|t| t != module) {
                    to.insert(target);
                }
            }
        }
        edges.insert(module.clone(), to);
    }
    edges
}

fn floor_of(module: &str) -> Option<usize> {
    FLOORS
        .iter()
        .position(|(_, members)| members.contains(&module))
}

#[test]
fn every_module_has_a_floor() {
    let unplaced: Vec<String> = modules()
        .into_keys()
        .filter(|m| floor_of(m).is_none())
        .collect();
    assert!(
        unplaced.is_empty(),
        "give these modules a floor in registry/tests/layers.rs and docs/architecture.md: {unplaced:?}"
    );
}

#[test]
fn no_module_names_one_on_a_higher_floor() {
    let mut upward = Vec::new();
    for (module, targets) in edges() {
        for target in targets {
            if let (Some(from), Some(to)) = (floor_of(&module), floor_of(&target))
                && to > from
            {
                upward.push(format!(
                    "{module} ({}) → {target} ({})",
                    FLOORS[from].0, FLOORS[to].0
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "lower floors name higher ones: {upward:#?}"
    );
}

#[test]
fn the_modules_form_no_cycle() {
    let edges = edges();
    // Depth-first search; a module met again on the current path closes a cycle.
    fn visit(
        module: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| m == module) {
            let mut cycle = path[at..].to_vec();
            cycle.push(module.to_owned());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for next in edges.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for module in edges.keys() {
        if let Some(cycle) = visit(module, &edges, &mut Vec::new(), &mut done) {
            panic!("module cycle: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn the_reader_sees_paths_in_groups_and_ignores_comments() {
    let source = "use crate::{api::x, config::{A, B}, store};\n// crate::gateway\nlet _ = crate::tenancy::f();";
    let names = named(&without_comments(source));
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["api", "config", "store", "tenancy"]
    );
}
