//! `plinth key …`: a module's API keys (never the key itself: its prefix, to tell them apart).

use std::io::{self, Write};

use serde_json::Value;

use super::Exit;
use super::client::{self, Client, Target, not_found, segment};
use super::table::{cell, fields, rows, table};

/// Arguments of `plinth key`.
#[derive(Debug, clap::Args)]
pub struct KeyArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: KeyCommand,
    #[command(flatten)]
    pub target: Target,
}

/// The `key` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
    /// A module's API keys, as a table.
    List { module: String },
    /// One API key of a module's, by id.
    Show { module: String, id: String },
}

pub(super) fn run(args: KeyArgs, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<Exit> {
    let KeyArgs { command, target } = args;
    match command {
        KeyCommand::List { module } => client::show(&target, &path(&module), out, err, |answer| {
            let rows = rows(answer, |k| {
                vec![
                    cell(&k["id"]),
                    cell(&k["prefix"]),
                    cell(&k["created_at"]),
                    expires(&k["expires_at"]),
                ]
            });
            table(&["id", "prefix", "created at", "expires"], &rows)
        }),
        KeyCommand::Show { module, id } => client::block_on(err, async {
            let client = Client::new(&target)?;
            let answer = client.get(&path(&module)).await?.body;
            let all = answer.as_array().cloned().unwrap_or_default();
            let Some(key) = all.iter().find(|k| k["id"] == id.as_str()) else {
                let known = all.iter().filter_map(|k| k["id"].as_str());
                return Err(not_found(
                    &format!("{module} has no API key {id}"),
                    &id,
                    known,
                ));
            };
            client::print(out, target.output, key, |k| {
                fields(&[
                    ("id", cell(&k["id"])),
                    ("module", cell(&k["module"])),
                    ("prefix", cell(&k["prefix"])),
                    ("created at", cell(&k["created_at"])),
                    ("expires", expires(&k["expires_at"])),
                ])
            })?;
            Ok(Exit::Success)
        }),
    }
}

fn path(module: &str) -> String {
    format!("/api/v1/modules/{}/api-keys", segment(module))
}

/// A rotated-out key's expiry (Unix seconds) in RFC 3339; `never` for a current key.
fn expires(at: &Value) -> String {
    at.as_i64()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "never".to_owned())
}
