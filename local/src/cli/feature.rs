//! `plinth feature …`: a module's feature toggles as a tenant (or company) has them — what the
//! installed manifest declares, and which are on in the resolved configuration.

use std::io::{self, Write};

use serde_json::{Value, json};

use super::Exit;
use super::client::{self, Client, Failure, Target, not_found, segment};
use super::table::{cell, fields, table};

/// Arguments of `plinth feature`.
#[derive(Debug, clap::Args)]
pub struct FeatureArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: FeatureCommand,
    #[command(flatten)]
    pub target: Target,
}

/// The `feature` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum FeatureCommand {
    /// Every feature the module declares: on or off for the tenant (or company), its default.
    List {
        tenant: String,
        module: String,
        #[arg(long)]
        company: Option<String>,
    },
    /// One feature (an unknown name is told the closest).
    Show {
        tenant: String,
        module: String,
        feature: String,
        #[arg(long)]
        company: Option<String>,
    },
}

pub(super) fn run(args: FeatureArgs, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<Exit> {
    let FeatureArgs { command, target } = args;
    client::block_on(err, async {
        let client = Client::new(&target)?;
        match command {
            FeatureCommand::List {
                tenant,
                module,
                company,
            } => {
                let features = features(&client, &tenant, &module, company.as_deref()).await?;
                client::print(out, target.output, &features, |list| {
                    let rows: Vec<Vec<String>> = list
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|f| {
                            vec![
                                cell(&f["name"]),
                                on_off(&f["on"]),
                                on_off(&f["default"]),
                                cell(&f["description"]),
                            ]
                        })
                        .collect();
                    table(&["feature", "state", "default", "description"], &rows)
                })?;
            }
            FeatureCommand::Show {
                tenant,
                module,
                feature,
                company,
            } => {
                let features = features(&client, &tenant, &module, company.as_deref()).await?;
                let all = features.as_array().cloned().unwrap_or_default();
                let Some(found) = all.iter().find(|f| f["name"] == feature.as_str()) else {
                    let known = all.iter().filter_map(|f| f["name"].as_str());
                    let what = format!("{module} has no feature {feature}");
                    return Err(not_found(&what, &feature, known));
                };
                client::print(out, target.output, found, |f| {
                    fields(&[
                        ("feature", cell(&f["name"])),
                        ("module", module.clone()),
                        ("state", on_off(&f["on"])),
                        ("default", on_off(&f["default"])),
                        ("description", cell(&f["description"])),
                    ])
                })?;
            }
        }
        Ok(Exit::Success)
    })
}

/// `[{name, on, default, description}]`: the manifest's features, with the resolution's.
async fn features(
    client: &Client,
    tenant: &str,
    module: &str,
    company: Option<&str>,
) -> Result<Value, Failure> {
    let manifest = client
        .get(&format!("/api/v1/modules/{}/manifest", segment(module)))
        .await?
        .body;
    let mut path = format!(
        "/api/v1/tenants/{}/modules/{}/config",
        segment(tenant),
        segment(module)
    );
    if let Some(company) = company {
        path.push_str(&format!("?company={}", segment(company)));
    }
    let resolved = client.get(&path).await?.body;
    let on: Vec<&str> = resolved["features"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let list = manifest["features"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let name = f["name"].as_str().unwrap_or_default();
            json!({"name": name, "on": on.contains(&name), "default": f["default"], "description": f["description"]})
        })
        .collect();
    Ok(Value::Array(list))
}

fn on_off(value: &Value) -> String {
    if value.as_bool() == Some(true) {
        "on".to_owned()
    } else {
        "off".to_owned()
    }
}
