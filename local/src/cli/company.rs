//! `plinth company …`: list, show and create companies; set a company's module override.

use std::io::{self, Write};

use serde_json::{Value, json};

use super::Exit;
use super::client::{self, Client, Target, json_object, segment};
use super::table::{cell, fields, rows, table};
use super::tenant::configuration;

/// Arguments of `plinth company`.
#[derive(Debug, clap::Args)]
pub struct CompanyArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: CompanyCommand,
    #[command(flatten)]
    pub target: Target,
}

/// The `company` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CompanyCommand {
    /// Create a company in a tenant (`POST /api/v1/tenants/{t}/companies`).
    Create {
        tenant: String,
        /// The company's id, e.g. `acme-de`.
        id: String,
        #[arg(long)]
        name: String,
        /// Country code, e.g. `DE`.
        #[arg(long)]
        country: Option<String>,
    },
    /// Set a company's override of a module: enabled or not, and its configuration.
    Set {
        tenant: String,
        company: String,
        module: String,
        /// Whether the company has the module (default: leave as is; a new override is enabled).
        #[arg(long)]
        enabled: Option<bool>,
        /// The company's configuration: a JSON object, or `@file`. Omitted keeps the stored one.
        #[arg(long)]
        config: Option<String>,
    },
    /// A tenant's companies, as a table.
    List { tenant: String },
    /// One company of a tenant's.
    Show { tenant: String, company: String },
}

pub(super) fn run(args: CompanyArgs, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<Exit> {
    let CompanyArgs { command, target } = args;
    let company_row = |c: &Value| {
        vec![
            cell(&c["id"]),
            cell(&c["name"]),
            cell(&c["country"]),
            cell(&c["created_at"]),
        ]
    };
    match &command {
        CompanyCommand::List { tenant } => {
            let path = format!("/api/v1/tenants/{}/companies", segment(tenant));
            return client::show(&target, &path, out, err, |answer| {
                let rows = rows(answer, company_row);
                table(&["company", "name", "country", "created at"], &rows)
            });
        }
        CompanyCommand::Show { tenant, company } => {
            let path = format!(
                "/api/v1/tenants/{}/companies/{}",
                segment(tenant),
                segment(company)
            );
            return client::show(&target, &path, out, err, |c| {
                fields(&[
                    ("company", cell(&c["id"])),
                    ("tenant", cell(&c["tenant_id"])),
                    ("name", cell(&c["name"])),
                    ("country", cell(&c["country"])),
                    ("created at", cell(&c["created_at"])),
                ])
            });
        }
        _ => {}
    }
    client::block_on(err, async {
        let client = Client::new(&target)?;
        match command {
            CompanyCommand::Create {
                tenant,
                id,
                name,
                country,
            } => {
                let mut body = json!({"id": id, "name": name});
                if let Some(country) = country {
                    body["country"] = json!(country);
                }
                let answer = client
                    .post(
                        &format!("/api/v1/tenants/{}/companies", segment(&tenant)),
                        &body,
                    )
                    .await?;
                client::print(out, target.output, &answer.body, |c| {
                    format!(
                        "created company {} ({}) in tenant {tenant}",
                        c["id"].as_str().unwrap_or("?"),
                        c["name"].as_str().unwrap_or("?")
                    )
                })?;
            }
            CompanyCommand::Set {
                tenant,
                company,
                module,
                enabled,
                config,
            } => {
                let mut body = serde_json::Map::new();
                if let Some(enabled) = enabled {
                    body.insert("is_enabled".into(), json!(enabled));
                }
                if let Some(config) = config {
                    body.insert(
                        "configuration".into(),
                        Value::Object(json_object("--config", &config)?),
                    );
                }
                let path = format!(
                    "/api/v1/tenants/{}/companies/{}/modules/{}",
                    segment(&tenant),
                    segment(&company),
                    segment(&module)
                );
                let answer = client.put(&path, &Value::Object(body)).await?;
                client::print(out, target.output, &answer.body, |row| {
                    let state = if row["is_enabled"].as_bool() == Some(false) {
                        "disabled"
                    } else {
                        "enabled"
                    };
                    format!(
                        "{module} for company {company} of {tenant}: {state}; override: {}",
                        Value::Object(configuration(row))
                    )
                })?;
            }
            CompanyCommand::List { .. } | CompanyCommand::Show { .. } => {}
        }
        Ok(Exit::Success)
    })
}
