//! Rules for how a module connects to the rest: `dependencies`, `hooks` and `events`.

use semver::VersionReq;
use serde_json::Value;

use super::{Context, FirstSeen, bare_or_field, check_backend_path, items, text};
use crate::PLATFORM_VERSION;
use crate::events::pattern::Pattern;
use crate::manifest::ModuleName;
use crate::manifest::problem::{JsonPath, Problems};

pub(super) fn check_dependencies(cx: &Context<'_>, problems: &mut Problems) {
    let Some(dependencies) = cx.section("dependencies").filter(|d| d.is_object()) else {
        return;
    };
    let at = cx.root.key("dependencies");
    if let Some(requirement) = text(dependencies, "platform_version") {
        let at = at.key("platform_version");
        match VersionReq::parse(requirement) {
            Err(error) => problems.add(&at, requirement_problem(requirement, &error, ">=2.0.0")),
            Ok(req) if !req.matches(&PLATFORM_VERSION) => problems.add(
                &at,
                format!(
                    "`{requirement}` is not met by the platform contract version {PLATFORM_VERSION}"
                ),
            ),
            Ok(_) => {}
        }
    }
    let required = check_required(cx, dependencies, &at, problems);
    let list = at.key("optional_modules");
    let mut optional = Vec::new();
    for (index, module) in items(dependencies.get("optional_modules")) {
        let Some(module) = module.as_str() else {
            continue;
        };
        let at = list.index(index);
        if check_module_name(cx, module, &at, problems) && required.iter().any(|r| r == module) {
            problems.add(&at, format!("`{module}` is also in `required_modules`"));
        }
        optional.push(module.to_owned());
    }
    check_calls(
        cx,
        dependencies,
        &at,
        &[required, optional].concat(),
        problems,
    );
}

/// Checks `calls`: each called module is a dependency, named once, and each permission is a
/// grant in its namespace.
fn check_calls(
    cx: &Context<'_>,
    dependencies: &Value,
    at: &JsonPath,
    depended_on: &[String],
    problems: &mut Problems,
) {
    let mut seen = FirstSeen::default();
    let list = at.key("calls");
    for (index, call) in items(dependencies.get("calls")) {
        let call_at = list.index(index);
        let Some(module) = text(call, "module") else {
            continue;
        };
        let at = call_at.key("module");
        if let Some(first) = seen.repeat_of(module, &at) {
            problems.add(
                &at,
                format!("calls to `{module}` are already declared at {first}"),
            );
            continue;
        }
        if !check_module_name(cx, module, &at, problems) {
            continue;
        }
        if !depended_on.iter().any(|d| d == module) {
            problems.add(
                &at,
                format!(
                    "`{module}` must be in `required_modules` or `optional_modules` to be called"
                ),
            );
        }
        let permissions = call_at.key("permissions");
        for (index, grant) in items(call.get("permissions")) {
            let Some(grant) = grant.as_str() else {
                continue;
            };
            let at = permissions.index(index);
            match crate::manifest::PermissionGrant::parse(grant) {
                Err(error) => problems.add(&at, error.to_string()),
                Ok(parsed) if parsed.module() != module => problems.add(
                    &at,
                    format!("`{grant}` is not a permission of `{module}`, the module called"),
                ),
                Ok(_) => {}
            }
        }
    }
}

/// Checks `required_modules`; gives back the names required.
fn check_required(
    cx: &Context<'_>,
    dependencies: &Value,
    at: &JsonPath,
    problems: &mut Problems,
) -> Vec<String> {
    let mut seen = FirstSeen::default();
    let list = at.key("required_modules");
    for (index, item) in items(dependencies.get("required_modules")) {
        let item_at = list.index(index);
        if let Some(requirement) = text(item, "version")
            && let Err(error) = VersionReq::parse(requirement)
        {
            let message = requirement_problem(requirement, &error, "^1.2");
            problems.add(&item_at.key("version"), message);
        }
        let Some((module, at)) = bare_or_field(item, &item_at, "name") else {
            continue;
        };
        if let Some(first) = seen.repeat_of(module, &at) {
            problems.add(&at, format!("`{module}` is already required at {first}"));
            continue;
        }
        check_module_name(cx, module, &at, problems);
    }
    seen.0.into_iter().map(|(name, _)| name).collect()
}

/// Whether `module` names another valid module; reports it otherwise.
fn check_module_name(
    cx: &Context<'_>,
    module: &str,
    at: &JsonPath,
    problems: &mut Problems,
) -> bool {
    if let Err(error) = ModuleName::parse(module) {
        problems.add(at, error.to_string());
        return false;
    }
    if cx.name.as_ref().is_some_and(|name| name.as_str() == module) {
        problems.add(at, "a module cannot depend on itself");
        return false;
    }
    true
}

fn requirement_problem(requirement: &str, error: &semver::Error, example: &str) -> String {
    format!("`{requirement}` is not a version requirement like `{example}`: {error}")
}

pub(super) fn check_hooks(cx: &Context<'_>, problems: &mut Problems) {
    let Some(hooks) = cx.section("hooks").and_then(Value::as_object) else {
        return;
    };
    for (hook, path) in hooks {
        if let Some(path) = path.as_str() {
            check_backend_path(path, &cx.root.key("hooks").key(hook), problems);
        }
    }
}

pub(super) fn check_events(cx: &Context<'_>, problems: &mut Problems) {
    let Some(events) = cx.section("events").filter(|e| e.is_object()) else {
        return;
    };
    let at = cx.root.key("events");
    let mut seen = FirstSeen::default();
    for (index, detail_type) in items(events.get("publishes")) {
        let Some(detail_type) = detail_type.as_str() else {
            continue;
        };
        let at = at.key("publishes").index(index);
        if let Some(first) = seen.repeat_of(detail_type, &at) {
            problems.add(&at, format!("`{detail_type}` is already listed at {first}"));
        } else if let Some(name) = &cx.name
            && detail_type
                .strip_prefix(&format!("{name}."))
                .is_none_or(str::is_empty)
        {
            problems.add(
                &at,
                format!("`{detail_type}` is outside this module's namespace: its events start with `{name}.`"),
            );
        }
    }
    let mut names = FirstSeen::default();
    for (index, subscription) in items(events.get("subscribes")) {
        let at = at.key("subscribes").index(index);
        if let Some(name) = text(subscription, "name")
            && let Some(first) = names.repeat_of(name, &at.key("name"))
        {
            problems.add(
                &at.key("name"),
                format!("`{name}` is already subscribed at {first}"),
            );
        }
        if let Some(path) = text(subscription, "path") {
            check_backend_path(path, &at.key("path"), problems);
        }
        if let Some(pattern) = subscription.get("pattern").filter(|p| p.is_object())
            && let Err(error) = Pattern::parse(pattern)
        {
            problems.add(&at.key("pattern"), error.to_string());
        }
    }
}
