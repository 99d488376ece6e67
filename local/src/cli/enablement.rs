//! `plinth enablement …`: which modules a tenant has enabled or disabled, with its
//! configuration and feature choices (`GET /api/v1/tenants/{t}/modules`).

use std::io::{self, Write};

use serde_json::Value;

use super::Exit;
use super::client::{self, Client, Target, not_found, segment};
use super::table::{cell, fields, rows, table};

/// Arguments of `plinth enablement`.
#[derive(Debug, clap::Args)]
pub struct EnablementArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: EnablementCommand,
    #[command(flatten)]
    pub target: Target,
}

/// The `enablement` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum EnablementCommand {
    /// Every module a tenant has enabled or disabled, as a table.
    List { tenant: String },
    /// One module's row for a tenant: enabled or not, its configuration and features.
    Show { tenant: String, module: String },
}

pub(super) fn run(
    args: EnablementArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<Exit> {
    let EnablementArgs { command, target } = args;
    match command {
        EnablementCommand::List { tenant } => {
            client::show(&target, &path(&tenant), out, err, |answer| {
                let rows = rows(answer, |row| {
                    vec![
                        cell(&row["module"]),
                        state(row),
                        cell(&row["configuration"]),
                        cell(&row["enabled_features"]),
                        cell(&row["disabled_features"]),
                        cell(&row["updated_by"]),
                    ]
                });
                table(
                    &[
                        "module",
                        "state",
                        "configuration",
                        "features on",
                        "features off",
                        "by",
                    ],
                    &rows,
                )
            })
        }
        EnablementCommand::Show { tenant, module } => client::block_on(err, async {
            let client = Client::new(&target)?;
            let answer = client.get(&path(&tenant)).await?.body;
            let all = answer.as_array().cloned().unwrap_or_default();
            let Some(row) = all.iter().find(|r| r["module"] == module.as_str()) else {
                let known = all.iter().filter_map(|r| r["module"].as_str());
                let what = format!("tenant {tenant} has never enabled {module}");
                return Err(not_found(&what, &module, known));
            };
            client::print(out, target.output, row, |row| {
                fields(&[
                    ("tenant", cell(&row["tenant_id"])),
                    ("module", cell(&row["module"])),
                    ("state", state(row)),
                    ("configuration", cell(&row["configuration"])),
                    ("features on", cell(&row["enabled_features"])),
                    ("features off", cell(&row["disabled_features"])),
                    ("updated at", cell(&row["updated_at"])),
                    ("updated by", cell(&row["updated_by"])),
                ])
            })?;
            Ok(Exit::Success)
        }),
    }
}

fn path(tenant: &str) -> String {
    format!("/api/v1/tenants/{}/modules", segment(tenant))
}

fn state(row: &Value) -> String {
    if row["enabled"].as_bool() == Some(true) {
        "enabled".to_owned()
    } else {
        "disabled".to_owned()
    }
}
