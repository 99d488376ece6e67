//! `plinth tenant …`: list, show and create tenants; enable or disable modules for them.

use std::io::{self, Write};

use serde_json::{Map, Value, json};

use super::Exit;
use super::client::{self, Client, Failure, Target, json_object, segment};
use super::table::{cell, fields, rows, table};

/// Arguments of `plinth tenant`.
#[derive(Debug, clap::Args)]
pub struct TenantArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: TenantCommand,
    #[command(flatten)]
    pub target: Target,
}

/// The `tenant` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TenantCommand {
    /// Create a tenant (`POST /api/v1/tenants`).
    Create {
        /// The tenant's id, e.g. `acme`.
        id: String,
        #[arg(long)]
        name: String,
        /// Subscription tier: free, basic, premium or enterprise.
        #[arg(long)]
        tier: Option<String>,
    },
    /// Enable a module for a tenant, optionally with its tenant configuration.
    Enable {
        tenant: String,
        module: String,
        /// The tenant's configuration: a JSON object, or `@file`. Omitted keeps the stored one.
        #[arg(long)]
        config: Option<String>,
    },
    /// Disable a module for a tenant (its configuration is kept for a later enable).
    Disable {
        tenant: String,
        module: String,
        /// Export the tenant's rows first (nothing is disabled when that fails); prints where.
        #[arg(long)]
        export: bool,
        /// Only say what would happen: the tenant's rows per table, the export, when they go.
        #[arg(long)]
        dry_run: bool,
        /// Drop the tenant's rows of the module after the retention (enabling it again
        /// before then keeps them).
        #[arg(long)]
        drop_data: bool,
        /// Days before they are dropped (with --drop-data; default the platform's, 30).
        #[arg(long, value_name = "DAYS", requires = "drop_data", value_parser = clap::value_parser!(u32).range(1..=3650))]
        retention_days: Option<u32>,
    },
    /// Export a tenant's rows of a module: one JSON Lines file per table and a manifest of
    /// counts and SHA-256s; prints where (on AWS, pre-signed links).
    Export { tenant: String, module: String },
    /// The tenants you may see (every one for a platform admin), as a table.
    List,
    /// One tenant: its name, tier, and when it was created.
    Show { tenant: String },
}

/// A tier as the user typed it, checked before anything is sent.
fn checked_tier(tier: &str) -> Result<plinth_module_sdk::Tier, Failure> {
    plinth_module_sdk::Tier::parse(tier).map_err(|_| {
        Failure::Usage(format!(
            "--tier `{tier}` is not a tier: use free, basic, premium or enterprise"
        ))
    })
}

pub(super) fn run(args: TenantArgs, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<Exit> {
    let TenantArgs { command, target } = args;
    match &command {
        TenantCommand::List => {
            return client::show(&target, "/api/v1/tenants", out, err, |answer| {
                let rows = rows(answer, |t| {
                    vec![
                        cell(&t["id"]),
                        cell(&t["name"]),
                        cell(&t["subscription_tier"]),
                        cell(&t["created_at"]),
                    ]
                });
                table(&["tenant", "name", "tier", "created at"], &rows)
            });
        }
        TenantCommand::Show { tenant } => {
            let path = format!("/api/v1/tenants/{}", segment(tenant));
            return client::show(&target, &path, out, err, |t| {
                fields(&[
                    ("tenant", cell(&t["id"])),
                    ("name", cell(&t["name"])),
                    ("tier", cell(&t["subscription_tier"])),
                    ("created at", cell(&t["created_at"])),
                ])
            });
        }
        _ => {}
    }
    if let TenantCommand::Create {
        tier: Some(tier), ..
    } = &command
        && let Err(failure) = checked_tier(tier)
    {
        return failure.report(err);
    }
    client::block_on(err, async {
        let client = Client::new(&target)?;
        let answer = match &command {
            TenantCommand::Create { id, name, tier } => {
                let mut body = json!({"id": id, "name": name});
                if let Some(tier) = tier {
                    // Checked before anything runs (`run`).
                    body["subscription_tier"] = json!(tier);
                }
                client.post("/api/v1/tenants", &body).await?
            }
            TenantCommand::Enable {
                tenant,
                module,
                config,
            } => {
                let body = change(true, config.as_deref())?;
                client
                    .put(&module_path(tenant, module), &Value::Object(body))
                    .await?
            }
            TenantCommand::Disable {
                tenant,
                module,
                export,
                dry_run,
                drop_data,
                retention_days,
            } => {
                let mut query = format!("?export={export}&drop_data={drop_data}&dry_run={dry_run}");
                if let Some(days) = retention_days {
                    query.push_str(&format!("&retention_days={days}"));
                }
                client
                    .delete(&format!("{}{query}", module_path(tenant, module)))
                    .await?
            }
            TenantCommand::Export { tenant, module } => {
                let path = format!("{}/export", module_path(tenant, module));
                client.post(&path, &json!({})).await?
            }
            TenantCommand::List | TenantCommand::Show { .. } => return Ok(Exit::Failure),
        };
        client::print(out, target.output, &answer.body, |body| match &command {
            TenantCommand::Create { .. } => format!(
                "created tenant {} ({}, tier {})",
                body["id"].as_str().unwrap_or("?"),
                body["name"].as_str().unwrap_or("?"),
                body["subscription_tier"].as_str().unwrap_or("?")
            ),
            TenantCommand::Enable { tenant, module, .. } => {
                format!(
                    "enabled {module} for tenant {tenant}; configuration: {}",
                    Value::Object(configuration(body))
                )
            }
            TenantCommand::Disable { tenant, module, .. } if body["rows"].is_array() => {
                disable_impact_text(tenant, module, body)
            }
            TenantCommand::Disable { tenant, module, .. } => {
                let mut text = format!("disabled {module} for tenant {tenant}");
                if body["export"].is_object() {
                    text.push('\n');
                    text.push_str(&super::module::export_text(&body["export"]));
                }
                if let Some(at) = body["drop_after"].as_str() {
                    text.push_str(&format!(
                        "\nthe tenant's rows are dropped at {at} (enabling {module} again before then keeps them)"
                    ));
                }
                text
            }
            TenantCommand::Export { .. } => super::module::export_text(body),
            TenantCommand::List | TenantCommand::Show { .. } => String::new(),
        })?;
        Ok(Exit::Success)
    })
}

/// A disable's dry run: the tenant's rows per table, the export, when they would go.
fn disable_impact_text(tenant: &str, module: &str, impact: &Value) -> String {
    let mut text = format!("disabling {module} for tenant {tenant} would:");
    for table in impact["rows"].as_array().into_iter().flatten() {
        let rows = table["rows"].as_u64().map_or_else(
            || format!("rows unknown ({})", cell(&table["unreadable"])),
            |n| format!("{n} rows"),
        );
        text.push_str(&format!(
            "\n  {}: {rows} of the tenant",
            cell(&table["name"])
        ));
    }
    let export = if impact["export"].as_bool() == Some(true) {
        "yes"
    } else {
        "no (pass --export)"
    };
    text.push_str(&format!("\n  export the tenant's rows first: {export}"));
    match impact["drop_after"].as_str() {
        Some(at) => text.push_str(&format!("\n  the tenant's rows dropped at: {at}")),
        None => text.push_str("\n  the tenant's rows kept (pass --drop-data to drop them)"),
    }
    text
}

fn module_path(tenant: &str, module: &str) -> String {
    format!(
        "/api/v1/tenants/{}/modules/{}",
        segment(tenant),
        segment(module)
    )
}

/// The body of an enable: `{enabled, configuration?}`.
pub(super) fn change(enabled: bool, config: Option<&str>) -> Result<Map<String, Value>, Failure> {
    let mut body = Map::new();
    body.insert("enabled".into(), json!(enabled));
    if let Some(config) = config {
        body.insert(
            "configuration".into(),
            Value::Object(json_object("--config", config)?),
        );
    }
    Ok(body)
}

pub(super) fn configuration(row: &Value) -> Map<String, Value> {
    row["configuration"]
        .as_object()
        .cloned()
        .unwrap_or_default()
}
