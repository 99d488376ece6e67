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
    (
        "ports",
        &[
            "store", "events", "deploy", "hooks", "queue", "reach", "bundles",
        ],
    ),
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
            "export",
            "enablement",
            "versions",
            "rollout",
            "install",
            "module_events",
            "usage",
            "rate_budget",
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

/// The top-level modules, each with its files (`foo.rs` and `foo/` both count as `foo`).
fn modules() -> BTreeMap<String, Vec<PathBuf>> {
    let mut modules: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(src()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            rust_files(&path, modules.entry(name).or_default());
        } else if path.extension().is_some_and(|e| e == "rs") && name != "lib" {
            modules.entry(name).or_default().push(path);
        }
    }
    modules
}

/// How deep a file's module sits below the crate root: `events/eventbridge/publish.rs` is
/// `events::eventbridge::publish` (3), `events/eventbridge/mod.rs` is `events::eventbridge` (2).
fn depth(file: &Path) -> usize {
    let relative = file.strip_prefix(src()).unwrap();
    let parts = relative.components().count();
    if file.file_name().is_some_and(|n| n == "mod.rs") {
        parts - 1
    } else {
        parts
    }
}

/// What `super::…::super::x` reaches from a file `depth` levels down, when it climbs to the
/// crate root: the top-level module `x`.
fn climbed(source: &str, depth: usize) -> BTreeSet<String> {
    let climb = "super::".repeat(depth);
    source
        .match_indices(&climb)
        .filter(|(at, _)| !source[..*at].ends_with("super::"))
        .map(|(at, _)| identifier(source[at + climb.len()..].trim_start()).to_owned())
        .filter(|name| !name.is_empty() && name != "super")
        .collect()
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
        let rest = source[at + "crate::".len()..].trim_start();
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
    let lib = without_comments(&std::fs::read_to_string(src().join("lib.rs")).unwrap());
    let mut names = BTreeMap::new();
    // Statements, not lines: a `pub use` may span several.
    for statement in lib.split(';') {
        let statement = statement.split_whitespace().collect::<Vec<_>>().join(" ");
        let Some(path) = statement
            .strip_prefix("pub use ")
            .or_else(|| statement.strip_prefix("pub(crate) use "))
        else {
            continue;
        };
        assert!(
            !path.contains('*'),
            "lib.rs re-exports with a glob, which this check cannot follow: {statement}"
        );
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
            assert!(
                !source.contains("crate as ") && !source.contains("crate::{self"),
                "{} renames the crate root, which this check cannot follow",
                file.display()
            );
            let mut names = named(&source);
            names.extend(climbed(&source, depth(file)));
            for name in names {
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
fn the_reader_climbs_to_the_root_with_super() {
    let file = src().join("events/eventbridge/publish.rs");
    assert_eq!(depth(&file), 3);
    assert_eq!(depth(&src().join("events/eventbridge/mod.rs")), 2);
    let source =
        "use super::super::{Event, RetryPolicy};\nuse super::super::super::gateway::Authorizer;";
    assert_eq!(
        climbed(source, 3).into_iter().collect::<Vec<_>>(),
        ["gateway"]
    );
    assert_eq!(
        named("let _ = crate::\n    tenancy::f();"),
        BTreeSet::from(["tenancy".to_owned()])
    );
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
