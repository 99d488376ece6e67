//! `plinth config get` and `plinth config set`: a module's resolved configuration for a tenant
//! (and company), and one key of it set without replacing the others.

use std::io::{self, Write};

use serde_json::{Map, Value, json};

use super::Exit;
use super::client::{self, Client, Failure, Target, segment};

/// Arguments of `plinth config`.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ConfigCommand,
    #[command(flatten)]
    pub target: Target,
}

/// The `config` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// The configuration a module sees: defaults, then the tenant's, then the company's,
    /// with the tier that set each key.
    Get {
        tenant: String,
        module: String,
        #[arg(long)]
        company: Option<String>,
    },
    /// Set keys of the tenant's (or, with --company, the company's) configuration, keeping the
    /// others: `currency=EUR tax_rate=0.19`. A value is read as JSON when it is JSON (`0.19`,
    /// `true`, `[1]`, `"007"`), else as text; `KEY=null` removes the key.
    Set {
        tenant: String,
        module: String,
        /// `KEY=VALUE`, one or more.
        #[arg(required = true, value_name = "KEY=VALUE")]
        pairs: Vec<String>,
        #[arg(long)]
        company: Option<String>,
    },
}

pub(super) fn run(args: ConfigArgs, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<Exit> {
    let ConfigArgs { command, target } = args;
    match command {
        ConfigCommand::Get {
            tenant,
            module,
            company,
        } => {
            let mut path = format!(
                "/api/v1/tenants/{}/modules/{}/config",
                segment(&tenant),
                segment(&module)
            );
            if let Some(company) = &company {
                path.push_str(&format!("?company={}", segment(company)));
            }
            client::show(&target, &path, out, err, resolved_text)
        }
        ConfigCommand::Set {
            tenant,
            module,
            pairs,
            company,
        } => {
            let patch = match patch(&pairs) {
                Ok(patch) => patch,
                Err(failure) => return failure.report(err),
            };
            let path = match &company {
                Some(company) => format!(
                    "/api/v1/tenants/{}/companies/{}/modules/{}",
                    segment(&tenant),
                    segment(company),
                    segment(&module)
                ),
                None => format!(
                    "/api/v1/tenants/{}/modules/{}",
                    segment(&tenant),
                    segment(&module)
                ),
            };
            let scope = match &company {
                Some(company) => format!("company {company} of {tenant}"),
                None => format!("tenant {tenant}"),
            };
            client::block_on(err, async {
                let client = Client::new(&target)?;
                let body = json!({"configuration_patch": patch});
                let answer = client.put(&path, &body).await?;
                client::print(out, target.output, &answer.body, |row| {
                    let set: Vec<String> = patch
                        .iter()
                        .map(|(key, value)| match value {
                            Value::Null => format!("removed {key}"),
                            value => format!("set {key} = {value}"),
                        })
                        .collect();
                    format!(
                        "{} for {module} of {scope}; its configuration now: {}",
                        set.join(", "),
                        row["configuration"]
                    )
                })?;
                Ok(Exit::Success)
            })
        }
    }
}

/// `KEY=VALUE` pairs as a merge patch: a value that is JSON is read as JSON, else as text.
fn patch(pairs: &[String]) -> Result<Map<String, Value>, Failure> {
    let mut patch = Map::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=').filter(|(k, _)| !k.trim().is_empty()) else {
            return Err(Failure::Usage(format!(
                "`{pair}` is not KEY=VALUE (e.g. currency=EUR)"
            )));
        };
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
        patch.insert(key.trim().to_owned(), value);
    }
    Ok(patch)
}

/// `key = value   (tier)` lines, then the features.
fn resolved_text(resolved: &Value) -> String {
    let scope = match resolved["company_id"].as_str() {
        Some(company) => format!(
            "tenant {}, company {company}",
            resolved["tenant_id"].as_str().unwrap_or("?")
        ),
        None => format!("tenant {}", resolved["tenant_id"].as_str().unwrap_or("?")),
    };
    let mut text = format!(
        "{} for {scope}:",
        resolved["module"].as_str().unwrap_or("?")
    );
    let config = resolved["configuration"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let width = config.keys().map(String::len).max().unwrap_or(0);
    for (key, value) in &config {
        let tier = resolved["sources"][key].as_str().unwrap_or("module");
        text.push_str(&format!("\n  {key:<width$} = {value}   ({tier})"));
    }
    let features: Vec<&str> = resolved["features"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let features = if features.is_empty() {
        "none".to_owned()
    } else {
        features.join(", ")
    };
    text.push_str(&format!("\nfeatures: {features}"));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_reads_json_values_and_keeps_the_rest_as_text() {
        let pairs = [
            "currency=EUR",
            "tax_rate=0.19",
            "code=\"007\"",
            "gone=null",
            "note=a=b",
        ]
        .map(String::from);
        let patch = patch(&pairs).unwrap();
        assert_eq!(
            Value::Object(patch),
            serde_json::json!({"currency": "EUR", "tax_rate": 0.19, "code": "007", "gone": null, "note": "a=b"})
        );
        assert!(matches!(patch_of("nothing"), Err(Failure::Usage(m)) if m.contains("KEY=VALUE")));
        assert!(matches!(patch_of("=1"), Err(Failure::Usage(_))));
    }

    fn patch_of(pair: &str) -> Result<Map<String, Value>, Failure> {
        patch(&[pair.to_owned()])
    }

    #[test]
    fn each_key_says_which_tier_set_it() {
        let resolved = serde_json::json!({"module": "financial", "tenant_id": "acme", "company_id": "acme-de",
            "configuration": {"currency": "EUR", "tax_rate": 0.19},
            "sources": {"currency": "company", "tax_rate": "tenant"}, "features": ["invoicing"]});
        let text = resolved_text(&resolved);
        assert!(
            text.starts_with("financial for tenant acme, company acme-de:"),
            "{text}"
        );
        assert!(text.contains("currency = \"EUR\"   (company)"), "{text}");
        assert!(text.contains("tax_rate = 0.19   (tenant)"), "{text}");
        assert!(text.ends_with("features: invoicing"), "{text}");
    }
}
