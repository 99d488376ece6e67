//! `plinth version …`: a module's published versions.

use std::io::{self, Write};

use serde_json::Value;

use super::Exit;
use super::client::{self, Client, Target, not_found, segment};
use super::table::{cell, fields, rows, table};

/// Arguments of `plinth version`.
#[derive(Debug, clap::Args)]
pub struct VersionArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: VersionCommand,
    #[command(flatten)]
    pub target: Target,
}

/// The `version` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum VersionCommand {
    /// A module's published versions, newest first.
    List { module: String },
    /// One published version: when, by whom, its digest and manifest.
    Show { module: String, version: String },
}

pub(super) fn run(args: VersionArgs, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<Exit> {
    let VersionArgs { command, target } = args;
    match command {
        VersionCommand::List { module } => {
            let path = format!("/api/v1/modules/{}/versions", segment(&module));
            client::show(&target, &path, out, err, |answer| {
                let rows = rows(answer, |v| {
                    vec![
                        cell(&v["version"]),
                        cell(&v["published_at"]),
                        cell(&v["published_by"]),
                        short(&v["digest"]),
                    ]
                });
                table(&["version", "published at", "by", "digest"], &rows)
            })
        }
        VersionCommand::Show { module, version } => client::block_on(err, async {
            let client = Client::new(&target)?;
            let path = format!("/api/v1/modules/{}/versions", segment(&module));
            let answer = client.get(&path).await?.body;
            let all = answer.as_array().cloned().unwrap_or_default();
            let Some(found) = all.iter().find(|v| v["version"] == version.as_str()) else {
                let known = all.iter().filter_map(|v| v["version"].as_str());
                let what = format!("{module} has no published version {version}");
                return Err(not_found(&what, &version, known));
            };
            client::print(out, target.output, found, version_text)?;
            Ok(Exit::Success)
        }),
    }
}

fn version_text(v: &Value) -> String {
    let manifest = &v["manifest"];
    fields(&[
        ("module", cell(&v["module"])),
        ("version", cell(&v["version"])),
        ("published at", cell(&v["published_at"])),
        ("published by", cell(&v["published_by"])),
        ("digest", cell(&v["digest"])),
        ("image digest", cell(&v["image_digest"])),
        ("display name", cell(&manifest["display_name"])),
        ("backend", cell(&manifest["backend"]["type"])),
        ("tier", cell(&manifest["subscription_tier"])),
        (
            "permissions",
            cell(&codes(&manifest["permissions"], "code")),
        ),
        ("features", cell(&codes(&manifest["features"], "name"))),
    ])
}

/// The `field` of each object in a list.
pub(super) fn codes(list: &Value, field: &str) -> Value {
    Value::Array(
        list.as_array()
            .into_iter()
            .flatten()
            .map(|item| item[field].clone())
            .collect(),
    )
}

/// The first 12 characters of a digest.
fn short(digest: &Value) -> String {
    digest
        .as_str()
        .map_or_else(|| "-".to_owned(), |d| d.chars().take(12).collect())
}
