//! Rules for `backend`: the API prefix, the image, and what each kind of backend needs.

use serde_json::Value;

use super::{Context, check_backend_path, text};
use crate::manifest::problem::{JsonPath, Problems};

/// Lambda's memory range, in MB.
const LAMBDA_MEMORY: std::ops::RangeInclusive<u64> = 128..=10_240;

/// Environment variables the platform sets for every module process.
const PLATFORM_ENV: [&str; 1] = ["PORT"];

pub(super) fn check(cx: &Context<'_>, problems: &mut Problems) {
    let Some(backend) = cx.section("backend").filter(|b| b.is_object()) else {
        return;
    };
    let at = cx.root.key("backend");
    if let (Some(prefix), Some(name)) = (text(backend, "api_prefix"), &cx.name) {
        let expected = format!("/api/v1/{name}");
        if prefix != expected {
            problems.add(
                &at.key("api_prefix"),
                format!(
                    "must be `{expected}` (`/api/v1/` and the module's name), found `{prefix}`"
                ),
            );
        }
    }
    if let Some(path) = text(backend, "health_check") {
        check_backend_path(path, &at.key("health_check"), problems);
    }
    if let Some(image) = text(backend, "image")
        && let Err(reason) = check_image(image)
    {
        problems.add(
            &at.key("image"),
            format!("`{image}` is not an image reference: {reason}"),
        );
    }
    if text(backend, "type") == Some("lambda") {
        check_lambda(backend, &at, problems);
    } else {
        check_microservice(backend, &at, problems);
    }
    check_env(backend, &at, problems);
}

fn check_lambda(backend: &Value, at: &JsonPath, problems: &mut Problems) {
    if backend.get("image").is_none() && backend.get("entry_point").is_none() {
        problems.add(
            at,
            "a lambda backend needs `image` (its container image) or `entry_point` (its handler)",
        );
    }
    if backend.get("cpu").is_some() {
        problems.add(
            &at.key("cpu"),
            "only a microservice backend sets `cpu`; a lambda's CPU follows its `memory`",
        );
    }
    if backend.get("port").is_some() {
        problems.add(
            &at.key("port"),
            "only a microservice backend sets `port`; a lambda is invoked, not listened to",
        );
    }
    for field in ["scaling", "health_check_command"] {
        if backend.get(field).is_some() {
            problems.add(
                &at.key(field),
                format!(
                    "only a microservice backend sets `{field}`; Lambda scales and checks a lambda"
                ),
            );
        }
    }
    if let Some(memory) = backend.get("memory").and_then(Value::as_u64)
        && !LAMBDA_MEMORY.contains(&memory)
    {
        problems.add(
            &at.key("memory"),
            format!(
                "a lambda's memory must be between {} and {} MB, found {memory}",
                LAMBDA_MEMORY.start(),
                LAMBDA_MEMORY.end()
            ),
        );
    }
}

fn check_microservice(backend: &Value, at: &JsonPath, problems: &mut Problems) {
    if backend.get("reserved_concurrency").is_some() {
        problems.add(
            &at.key("reserved_concurrency"),
            "only a lambda backend sets `reserved_concurrency`; a microservice sets `scaling`",
        );
    }
    let scaling = backend.get("scaling");
    if let (Some(min), Some(max)) = (
        scaling
            .and_then(|s| s.get("min_tasks"))
            .and_then(Value::as_u64),
        scaling
            .and_then(|s| s.get("max_tasks"))
            .and_then(Value::as_u64),
    ) && min > max
    {
        problems.add(
            &at.key("scaling").key("min_tasks"),
            format!("must not exceed `max_tasks` ({max}), found {min}"),
        );
    }
}

fn check_env(backend: &Value, at: &JsonPath, problems: &mut Problems) {
    let Some(env) = backend.get("env").and_then(Value::as_object) else {
        return;
    };
    for name in env.keys() {
        let at = at.key("env").key(name);
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            problems.add(
                &at,
                format!(
                    "`{name}` is not a valid environment variable name (letters, digits and `_`)"
                ),
            );
        } else if name.starts_with("PLINTH_") || PLATFORM_ENV.contains(&name.as_str()) {
            problems.add(&at, format!("`{name}` is set by the platform"));
        }
    }
}

/// Checks `repository:tag` or `repository@sha256:<64 hex>`, where the repository may carry a
/// registry host (`123.dkr.ecr.eu-west-1.amazonaws.com/financial`).
fn check_image(image: &str) -> Result<(), &'static str> {
    let (repository, tag_ok) = if let Some((repository, digest)) = image.split_once('@') {
        let hex = digest.strip_prefix("sha256:").unwrap_or_default();
        let ok = hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit());
        (repository, ok)
    } else {
        let name_start = image.rfind('/').map_or(0, |slash| slash + 1);
        match image[name_start..].rfind(':') {
            Some(colon) => {
                let (repository, tag) = image.split_at(name_start + colon);
                let tag = &tag[1..];
                let ok = !tag.is_empty()
                    && tag.len() <= 128
                    && tag
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
                (repository, ok)
            }
            None => return Err("expected `repository:tag`, like `financial:1.2.0`"),
        }
    };
    let repository_ok = !repository.is_empty()
        && repository
            .split('/')
            .all(|part| !part.is_empty() && !part.contains(char::is_whitespace));
    if repository_ok && tag_ok {
        Ok(())
    } else {
        Err("expected `repository:tag`, like `financial:1.2.0`")
    }
}

#[cfg(test)]
mod tests {
    use super::check_image;

    #[test]
    fn image_references_need_a_tag_or_a_digest() {
        for ok in [
            "financial:1.2.0",
            "plinth/financial:latest",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/financial:1.2.0",
            "localhost:5000/financial:dev",
            &format!("financial@sha256:{}", "a".repeat(64)),
        ] {
            assert_eq!(check_image(ok), Ok(()), "{ok}");
        }
        for bad in [
            "financial",
            "localhost:5000/financial",
            "financial:",
            ":1.0",
            "financial@sha256:xyz",
            "a b:1",
        ] {
            assert!(check_image(bad).is_err(), "{bad}");
        }
    }
}
