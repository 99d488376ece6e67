//! Rules for `permissions` and `routes`: the module's own namespace, and routes that only name
//! permissions the module declares.

use std::collections::HashSet;

use serde_json::Value;

use super::{Context, FirstSeen, bare_or_field, items, text};
use crate::manifest::problem::{JsonPath, Problems};
use crate::manifest::{Permission, RoutePath};

/// Checks every declared permission; gives back the codes declared (valid or not), so that
/// routes are only told about permissions missing altogether.
pub(super) fn check_permissions(cx: &Context<'_>, problems: &mut Problems) -> HashSet<String> {
    let mut declared = HashSet::new();
    let mut seen = FirstSeen::default();
    let list = cx.root.key("permissions");
    for (index, item) in items(cx.section("permissions")) {
        let Some((code, at)) = bare_or_field(item, &list.index(index), "code") else {
            continue;
        };
        declared.insert(code.to_owned());
        if let Some(first) = seen.repeat_of(code, &at) {
            problems.add(&at, format!("`{code}` is already declared at {first}"));
            continue;
        }
        match Permission::parse(code) {
            Err(error) => problems.add(&at, error.to_string()),
            Ok(permission) => {
                if let Some(name) = &cx.name
                    && permission.module() != name.as_str()
                {
                    problems.add(
                        &at,
                        format!(
                            "`{code}` is outside this module's namespace: its permissions start with `{name}:`"
                        ),
                    );
                }
            }
        }
    }
    declared
}

pub(super) fn check_routes(cx: &Context<'_>, declared: &HashSet<String>, problems: &mut Problems) {
    let list = cx.root.key("routes");
    let mut claimed: Vec<(String, String, JsonPath)> = Vec::new();
    for (index, route) in items(cx.section("routes")) {
        let at = list.index(index);
        let methods = check_methods(route, &at, problems);
        if let Some(path) = text(route, "path")
            && let Some(shape) = check_route_path(path, &at.key("path"), problems)
        {
            check_overlap(&shape, path, &methods, &at, &mut claimed, problems);
        }
        if let Some(code) = text(route, "permission") {
            let at = at.key("permission");
            match Permission::parse(code) {
                Err(error) => problems.add(&at, error.to_string()),
                Ok(_) if !declared.contains(code) => {
                    problems.add(&at, format!("`{code}` is not declared in `permissions`"));
                }
                Ok(_) => {}
            }
        }
    }
}

/// Parses a route path; gives back its shape when it is valid.
fn check_route_path(path: &str, at: &JsonPath, problems: &mut Problems) -> Option<String> {
    if path.starts_with("/api/") {
        problems.add(
            at,
            format!("`{path}` repeats the API prefix: route paths are relative to `api_prefix`, like `/invoices`"),
        );
        return None;
    }
    RoutePath::parse(path)
        .map_err(|error| problems.add(at, error.to_string()))
        .ok()
        .map(|path| path.shape())
}

/// Reports repeated methods and `ANY` beside others; gives back the methods written.
fn check_methods(route: &Value, at: &JsonPath, problems: &mut Problems) -> Vec<String> {
    let mut methods: Vec<String> = Vec::new();
    let list = at.key("methods");
    for (index, method) in items(route.get("methods")) {
        let Some(method) = method.as_str() else {
            continue;
        };
        let at = list.index(index);
        if methods.iter().any(|m| m == method) {
            problems.add(&at, format!("`{method}` is listed twice"));
        } else if (method == "ANY" && !methods.is_empty()) || methods.iter().any(|m| m == "ANY") {
            problems.add(&at, "`ANY` already covers every method; list it alone");
        }
        methods.push(method.to_owned());
    }
    methods
}

/// Reports a route that claims a method on a path shape an earlier route already claimed.
fn check_overlap(
    shape: &str,
    path: &str,
    methods: &[String],
    at: &JsonPath,
    claimed: &mut Vec<(String, String, JsonPath)>,
    problems: &mut Problems,
) {
    let clash = methods.iter().find_map(|method| {
        claimed
            .iter()
            .find(|(s, m, _)| s == shape && (m == method || m == "ANY" || method == "ANY"))
            .map(|(_, _, first)| (method, first))
    });
    if let Some((method, first)) = clash {
        problems.add(
            &at.key("path"),
            format!("`{method} {path}` is already routed by {first}"),
        );
        return;
    }
    for method in methods {
        claimed.push((shape.to_owned(), method.clone(), at.clone()));
    }
}
