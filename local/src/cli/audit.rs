//! `plinth audit list`: who changed what in a tenant, newest first, a page at a time.

use std::io::{self, Write};

use super::Exit;
use super::client::{self, Target, segment};
use super::table::{cell, rows, table};

/// Arguments of `plinth audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AuditCommand,
    #[command(flatten)]
    pub target: Target,
}

/// The `audit` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// A page of the tenant's audit log, newest first: when, who, what, and the detail (a
    /// change's `previous` is what was stored before it).
    List {
        tenant: String,
        /// How many records (1 to 100).
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// The page after this cursor (printed under the previous page).
        #[arg(long)]
        after: Option<String>,
    },
}

pub(super) fn run(args: AuditArgs, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<Exit> {
    let AuditArgs {
        command:
            AuditCommand::List {
                tenant,
                limit,
                after,
            },
        target,
    } = args;
    let mut path = format!("/api/v1/tenants/{}/audit?limit={limit}", segment(&tenant));
    if let Some(after) = &after {
        path.push_str(&format!("&after={}", segment(after)));
    }
    client::show(&target, &path, out, err, |page| {
        let rows = rows(&page["records"], |r| {
            vec![
                cell(&r["at"]),
                cell(&r["actor"]),
                cell(&r["action"]),
                cell(&r["target"]),
                cell(&r["detail"]),
            ]
        });
        let mut text = table(&["at", "actor", "action", "target", "detail"], &rows);
        if let Some(next) = page["next"].as_str() {
            text.push_str(&format!(
                "\nmore: plinth audit list {tenant} --limit {limit} --after {next}"
            ));
        }
        text
    })
}
