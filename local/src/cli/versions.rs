//! `plinth module pin | unpin | versions | default-version`: which installed version of a
//! module serves each tenant (`registry::versions`; operations.md, "Versions and pins").

use std::io::Write;

use serde_json::{Value, json};

use super::Exit;
use super::client::{self, Client, Failure, Output, segment};
use super::module::text_of;

/// Pins `tenant` to `version` of `name`, or (`version` none) unpins it.
pub(super) async fn pin(
    client: &Client,
    output: Output,
    name: &str,
    tenant: &str,
    version: Option<&str>,
    out: &mut dyn Write,
) -> Result<Exit, Failure> {
    let path = format!(
        "/api/v1/tenants/{}/modules/{}/pin",
        segment(tenant),
        segment(name)
    );
    let answer = match version {
        Some(version) => client.put(&path, &json!({"version": version})).await?,
        None => client.delete(&path).await?,
    };
    client::print(out, output, &answer.body, tenant_version_text)?;
    Ok(Exit::Success)
}

/// `tenant acme is served by financial 1.2.0 (pinned; default 1.3.0)`.
fn tenant_version_text(shown: &Value) -> String {
    let why = match shown["pinned"].as_str() {
        Some(_) => format!("pinned; default {}", text_of(&shown["default_version"])),
        None => "the default".to_owned(),
    };
    format!(
        "tenant {} is served by {} {} ({why})",
        text_of(&shown["tenant_id"]),
        text_of(&shown["module"]),
        text_of(&shown["version"]),
    )
}

/// The installed versions of `name`, the default and who is pinned to each; with
/// `default`, makes that version the default first.
pub(super) async fn versions(
    client: &Client,
    output: Output,
    name: &str,
    default: Option<&str>,
    out: &mut dyn Write,
) -> Result<Exit, Failure> {
    let answer = match default {
        Some(version) => {
            let path = format!("/api/v1/modules/{}/default-version", segment(name));
            client.put(&path, &json!({"version": version})).await?
        }
        None => {
            let path = format!("/api/v1/modules/{}/installed-versions", segment(name));
            client.get(&path).await?
        }
    };
    client::print(out, output, &answer.body, versions_text)?;
    Ok(Exit::Success)
}

fn versions_text(listed: &Value) -> String {
    let mut text = format!(
        "{}: default {}\nVERSION  DEFAULT  ALONGSIDE  PINNED TENANTS",
        text_of(&listed["module"]),
        text_of(&listed["default_version"])
    );
    for version in listed["versions"].as_array().into_iter().flatten() {
        let pinned: Vec<&str> = version["pinned_tenants"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let yes = |key: &str| if version[key] == true { "yes" } else { "" };
        text.push_str(&format!(
            "\n{:<8} {:<8} {:<10} {}",
            text_of(&version["version"]),
            yes("default"),
            yes("alongside"),
            if pinned.is_empty() {
                "-".to_owned()
            } else {
                pinned.join(", ")
            }
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_versions_table_names_the_default_and_the_pinned_tenants() {
        let listed = json!({"module": "financial", "default_version": "1.3.0", "versions": [
            {"version": "1.2.0", "alongside": false, "default": false, "pinned_tenants": ["acme"]},
            {"version": "1.3.0", "alongside": true, "default": true, "pinned_tenants": []},
        ]});
        assert_eq!(
            versions_text(&listed),
            "financial: default 1.3.0\nVERSION  DEFAULT  ALONGSIDE  PINNED TENANTS\n\
             1.2.0                        acme\n\
             1.3.0    yes      yes        -"
        );
        let shown = json!({"module": "financial", "tenant_id": "acme", "version": "1.2.0",
                           "pinned": "1.2.0", "default_version": "1.3.0"});
        assert_eq!(
            tenant_version_text(&shown),
            "tenant acme is served by financial 1.2.0 (pinned; default 1.3.0)"
        );
    }
}
