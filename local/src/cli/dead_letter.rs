//! `plinth dead-letter …`: events `plinth up`'s bus could not deliver, and sending them again.

use std::io::{self, Write};

use serde_json::Value;

use super::Exit;
use super::client::{self, Client, Target};
use super::table::{cell, rows, table};

/// Arguments of `plinth dead-letter`.
#[derive(Debug, clap::Args)]
pub struct DeadLetterArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: DeadLetterCommand,
    #[command(flatten)]
    pub target: Target,
}

/// The `dead-letter` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DeadLetterCommand {
    /// Undelivered events, oldest first: the module, the rule, why the last attempt failed.
    List,
    /// Deliver each again; delivered ones are forgotten, the others kept with their new reason.
    Replay,
}

pub(super) fn run(
    args: DeadLetterArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<Exit> {
    let DeadLetterArgs { command, target } = args;
    match command {
        DeadLetterCommand::List => {
            client::show(&target, "/api/v1/dead-letters", out, err, letters_table)
        }
        DeadLetterCommand::Replay => client::block_on(err, async {
            let client = Client::new(&target)?;
            let answer = client
                .post("/api/v1/dead-letters/replay", &serde_json::json!({}))
                .await?;
            client::print(out, target.output, &answer.body, |replay| {
                let failed = replay["failed"].as_array().map_or(0, Vec::len);
                let mut text = format!(
                    "delivered {}; {failed} failed again",
                    cell(&replay["delivered"])
                );
                if failed > 0 {
                    text.push('\n');
                    text.push_str(&letters_table(&replay["failed"]));
                }
                text
            })?;
            Ok(Exit::Success)
        }),
    }
}

fn letters_table(letters: &Value) -> String {
    let rows = rows(letters, |l| {
        vec![
            cell(&l["id"]),
            cell(&l["module"]),
            cell(&l["event"]["detail-type"]),
            cell(&l["attempts"]),
            cell(&l["failed_at"]),
            cell(&l["reason"]),
        ]
    });
    table(
        &["id", "module", "event", "attempts", "failed at", "reason"],
        &rows,
    )
}
