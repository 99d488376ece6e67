//! `plinth token`: a development JWT, signed with `PLINTH_JWT_SECRET` or the secret `plinth up`
//! keeps in its data directory — so the token works against that platform.

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use plinth_registry::identity::{Claims, mint_token};
use serde_json::json;

use super::Exit;
use super::client::Output;
use crate::platform::jwt_secret;

/// Arguments of `plinth token`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// The tenant the token acts in.
    #[arg(long)]
    pub tenant: Option<String>,
    /// The company the token acts in.
    #[arg(long)]
    pub company: Option<String>,
    /// Platform roles, comma-separated: platform:admin, tenant:admin, company:admin.
    #[arg(long, value_delimiter = ',', required = true)]
    pub roles: Vec<String>,
    /// The user (`sub`).
    #[arg(long, default_value = "dev")]
    pub sub: String,
    /// Hours until it expires.
    #[arg(long, default_value_t = 12)]
    pub hours: u64,
    /// `plinth up`'s data directory, whose secret signs the token unless PLINTH_JWT_SECRET is set.
    #[arg(long, default_value = ".plinth")]
    pub data_dir: PathBuf,
    /// `human` prints the bare token; `json` prints `{"token", "claims"}`.
    #[arg(long, value_enum, default_value_t = Output::Human)]
    pub output: Output,
}

const ROLES: [&str; 3] = ["platform:admin", "tenant:admin", "company:admin"];

pub(super) fn run(args: &TokenArgs, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<Exit> {
    if let Some(role) = args.roles.iter().find(|r| !ROLES.contains(&r.as_str())) {
        writeln!(
            err,
            "error: --roles: `{role}` is not a platform role ({})",
            ROLES.join(", ")
        )?;
        return Ok(Exit::Failure);
    }
    if args.tenant.is_none() && args.roles.iter().any(|r| r != "platform:admin") {
        writeln!(
            err,
            "error: --tenant is needed for tenant:admin and company:admin"
        )?;
        return Ok(Exit::Failure);
    }
    let minted = jwt_secret(&args.data_dir)
        .map_err(|e| e.to_string())
        .and_then(|secret| {
            let claims = claims(args);
            mint_token(secret.as_bytes(), &claims)
                .map(|token| (token, claims))
                .map_err(|e| e.to_string())
        });
    match minted {
        Ok((token, claims)) => {
            match args.output {
                Output::Human => writeln!(out, "{token}")?,
                Output::Json => writeln!(out, "{:#}", json!({"token": token, "claims": claims}))?,
            }
            Ok(Exit::Success)
        }
        Err(e) => {
            writeln!(err, "error: cannot sign a token: {e}")?;
            Ok(Exit::Failure)
        }
    }
}

fn claims(args: &TokenArgs) -> Claims {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    Claims {
        sub: args.sub.clone(),
        tenant_id: args.tenant.clone(),
        company_id: args.company.clone(),
        roles: args.roles.clone(),
        exp: now + args.hours * 3600,
        nbf: None,
        iss: env("PLINTH_JWT_ISSUER"),
        aud: env("PLINTH_JWT_AUDIENCE"),
    }
}
