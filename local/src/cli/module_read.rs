//! `plinth module list` and `plinth module show`: the catalog, and one module with what is
//! installed of it.

use std::io::{self, Write};

use serde_json::{Value, json};

use super::Exit;
use super::client::{self, Client, Failure, Target, segment};
use super::table::{cell, fields, rows, table};

/// `GET /api/v1/modules` as a table.
pub(super) fn list(
    target: &Target,
    filter: &[(&str, Option<String>)],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<Exit> {
    let query: Vec<String> = filter
        .iter()
        .filter_map(|(key, value)| value.as_ref().map(|v| format!("{key}={}", segment(v))))
        .collect();
    let mut path = "/api/v1/modules".to_owned();
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    client::show(target, &path, out, err, |answer| {
        let rows = rows(answer, |m| {
            vec![
                cell(&m["name"]),
                cell(&m["latest_version"]),
                cell(&m["subscription_tier"]),
                cell(&m["category"]),
                cell(&m["display_name"]),
            ]
        });
        table(
            &["module", "latest", "tier", "category", "display name"],
            &rows,
        )
    })
}

/// The catalog entry and, when the caller may read it, the installation.
pub(super) fn show(
    target: &Target,
    name: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<Exit> {
    client::block_on(err, async {
        let client = Client::new(target)?;
        let mut entry = client
            .get(&format!("/api/v1/modules/{}", segment(name)))
            .await?
            .body;
        let installation = match client
            .get(&format!("/api/v1/modules/{}/installation", segment(name)))
            .await
        {
            Ok(answer) => answer.body,
            // Never installed (404), or not the caller's to read (403): the entry alone.
            Err(Failure::Refused { .. }) => Value::Null,
            Err(other) => return Err(other),
        };
        entry["installation"] = installation;
        client::print(out, target.output, &entry, module_text)?;
        Ok(Exit::Success)
    })
}

fn module_text(entry: &Value) -> String {
    let installation = &entry["installation"];
    let installed = match installation["installed_version"].as_str() {
        Some(version) => format!("{version} ({})", cell(&installation["status"])),
        None if installation.is_null() => "not installed (or not yours to see)".to_owned(),
        None => format!("not installed ({})", cell(&installation["status"])),
    };
    fields(&[
        ("module", cell(&entry["name"])),
        ("display name", cell(&entry["display_name"])),
        ("description", cell(&entry["description"])),
        ("category", cell(&entry["category"])),
        ("tags", cell(&entry["tags"])),
        ("tier", cell(&entry["subscription_tier"])),
        ("latest", cell(&entry["latest_version"])),
        ("versions", cell(&entry["versions"])),
        ("installed", installed),
        (
            "endpoint",
            cell(&json!(
                installation["endpoint"]
                    .as_str()
                    .or_else(|| installation["deployment"]["endpoint"].as_str())
            )),
        ),
    ])
}
