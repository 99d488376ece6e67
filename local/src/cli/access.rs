//! `plinth role …` and `plinth assignment …`: a tenant's roles, and who holds them.

use std::io::{self, Write};

use serde_json::Value;

use super::Exit;
use super::client::{self, Client, Output, Target, segment};
use super::table::{cell, fields, rows, table};
use plinth_registry::error::did_you_mean;

/// Arguments of `plinth role`.
#[derive(Debug, clap::Args)]
pub struct RoleArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: RoleCommand,
    #[command(flatten)]
    pub target: Target,
}

/// The `role` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RoleCommand {
    /// A tenant's roles and the permissions each grants, as a table.
    List { tenant: String },
    /// One role (an unknown name is told the closest).
    Show { tenant: String, role: String },
}

/// Arguments of `plinth assignment`.
#[derive(Debug, clap::Args)]
pub struct AssignmentArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AssignmentCommand,
    #[command(flatten)]
    pub target: Target,
}

/// The `assignment` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AssignmentCommand {
    /// Every user holding roles in a tenant, with them, as a table.
    List { tenant: String },
    /// The roles one user holds, tenant-wide and per company.
    Show { tenant: String, user: String },
}

pub(super) fn run_role(
    args: RoleArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<Exit> {
    let RoleArgs { command, target } = args;
    match command {
        RoleCommand::List { tenant } => {
            let path = format!("/api/v1/tenants/{}/roles", segment(&tenant));
            client::show(&target, &path, out, err, |answer| {
                let rows = rows(answer, |r| {
                    vec![
                        cell(&r["name"]),
                        cell(&r["permissions"]),
                        cell(&r["description"]),
                    ]
                });
                table(&["role", "permissions", "description"], &rows)
            })
        }
        RoleCommand::Show { tenant, role } => {
            let path = format!(
                "/api/v1/tenants/{}/roles/{}",
                segment(&tenant),
                segment(&role)
            );
            client::show(&target, &path, out, err, |r| {
                fields(&[
                    ("role", cell(&r["name"])),
                    ("permissions", cell(&r["permissions"])),
                    ("description", cell(&r["description"])),
                    ("updated at", cell(&r["updated_at"])),
                ])
            })
        }
    }
}

pub(super) fn run_assignment(
    args: AssignmentArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<Exit> {
    let AssignmentArgs { command, target } = args;
    match command {
        AssignmentCommand::List { tenant } => {
            let path = format!("/api/v1/tenants/{}/users", segment(&tenant));
            client::show(&target, &path, out, err, |answer| {
                let rows = rows(answer, |a| {
                    vec![
                        cell(&a["user"]),
                        cell(&a["roles"]),
                        per_company(&a["companies"]),
                    ]
                });
                table(&["user", "roles", "per company"], &rows)
            })
        }
        AssignmentCommand::Show { tenant, user } => client::block_on(err, async {
            let client = Client::new(&target)?;
            let path = format!(
                "/api/v1/tenants/{}/users/{}/roles",
                segment(&tenant),
                segment(&user)
            );
            let answer = client.get(&path).await?.body;
            let holds_none = cell(&answer["roles"]) == "-" && cell(&answer["companies"]) == "-";
            let mut note = String::new();
            if holds_none && target.output == Output::Human {
                // A user holding nothing may be a misspelt one: name the closest who does.
                let users = format!("/api/v1/tenants/{}/users", segment(&tenant));
                if let Ok(all) = client.get(&users).await {
                    let all = all.body.as_array().cloned().unwrap_or_default();
                    let known = all.iter().filter_map(|a| a["user"].as_str());
                    let hint = did_you_mean(&user, known);
                    note = format!("\nnote: {user} holds no roles in tenant {tenant}{hint}");
                }
            }
            client::print(out, target.output, &answer, |a| {
                fields(&[
                    ("user", user.clone()),
                    ("tenant", tenant.clone()),
                    ("roles", cell(&a["roles"])),
                    ("per company", per_company(&a["companies"])),
                ]) + &note
            })?;
            Ok(Exit::Success)
        }),
    }
}

/// `acme-de: accountant, clerk; acme-us: clerk`.
fn per_company(companies: &Value) -> String {
    let Some(map) = companies.as_object().filter(|m| !m.is_empty()) else {
        return "-".to_owned();
    };
    map.iter()
        .map(|(company, roles)| format!("{company}: {}", cell(roles)))
        .collect::<Vec<_>>()
        .join("; ")
}
