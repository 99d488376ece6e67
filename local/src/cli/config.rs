//! `plinth config get`: a module's resolved configuration for a tenant (and company).

use std::io::{self, Write};

use serde_json::Value;

use super::Exit;
use super::client::{self, Client, Target, segment};

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
}

pub(super) fn run(args: ConfigArgs, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<Exit> {
    let ConfigArgs {
        command:
            ConfigCommand::Get {
                tenant,
                module,
                company,
            },
        target,
    } = args;
    client::block_on(err, async {
        let client = Client::new(&target)?;
        let mut path = format!(
            "/api/v1/tenants/{}/modules/{}/config",
            segment(&tenant),
            segment(&module)
        );
        if let Some(company) = &company {
            path.push_str(&format!("?company={}", segment(company)));
        }
        let answer = client.get(&path).await?;
        client::print(out, target.output, &answer.body, resolved_text)?;
        Ok(Exit::Success)
    })
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
