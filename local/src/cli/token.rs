//! `plinth token`: a development JWT, signed with the secret of the running platform —
//! `PLINTH_JWT_SECRET`, or the one `plinth up` keeps in its data directory — so the token works
//! against that platform. It never makes a secret of its own.

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use plinth_registry::identity::{Claims, PlatformRole, mint_token};
use plinth_registry::ids::RoleName;
use serde_json::json;

use super::Exit;
use super::client::Output;
use crate::platform::{SecretSource, find_jwt_secret};

/// Arguments of `plinth token`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// The tenant the token acts in.
    #[arg(long)]
    pub tenant: Option<String>,
    /// The company the token acts in.
    #[arg(long)]
    pub company: Option<String>,
    /// More companies the user may act in, comma-separated (`company_ids`): a request picks
    /// one with the `X-Plinth-Company` header.
    #[arg(long, value_delimiter = ',')]
    pub companies: Vec<String>,
    /// Roles, comma-separated: the platform roles platform:admin, tenant:admin, company:admin,
    /// or the tenant's own role names (e.g. financial-clerk). None: a plain user.
    #[arg(long, value_delimiter = ',')]
    pub roles: Vec<String>,
    /// The user (`sub`).
    #[arg(long, default_value = "dev")]
    pub sub: String,
    /// Hours until it expires.
    #[arg(long, default_value_t = 12)]
    pub hours: u64,
    /// `plinth up`'s data directory, whose secret signs the token unless PLINTH_JWT_SECRET is
    /// set. Default: `.plinth` in this folder or the nearest parent that has one.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// `human` prints the bare token; `json` prints `{"token", "claims"}`.
    #[arg(long, value_enum, default_value_t = Output::Human)]
    pub output: Output,
}

pub(super) fn run(args: &TokenArgs, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<Exit> {
    let roles = match parse_roles(&args.roles) {
        Ok(roles) => roles,
        Err(message) => {
            writeln!(err, "error: --roles: {message}")?;
            return Ok(Exit::Failure);
        }
    };
    let Some(tenant) = args.tenant.as_deref() else {
        if roles
            .iter()
            .any(|r| *r != Role::Platform(PlatformRole::PlatformAdmin))
        {
            writeln!(
                err,
                "error: --tenant is needed for every role but platform:admin"
            )?;
            return Ok(Exit::Failure);
        }
        return mint(args, out, err);
    };
    let tenant_roles: Vec<&str> = roles
        .iter()
        .filter_map(|r| match r {
            Role::Tenant(name) => Some(name.as_str()),
            Role::Platform(_) => None,
        })
        .collect();
    if !tenant_roles.is_empty() {
        // The platform reads only platform roles from a token; a tenant role's permissions
        // come from the user's stored assignment, which a token cannot make.
        let sub = &args.sub;
        writeln!(
            err,
            "note: the token names {roles}, but what {sub} may do in {tenant} comes from their \
             role assignment (PUT /api/v1/tenants/{tenant}/users/{sub}/roles with \
             {{\"roles\": [\"{quoted}\"]}}), not from the token",
            roles = tenant_roles.join(", "),
            quoted = tenant_roles.join("\", \""),
        )?;
    }
    mint(args, out, err)
}

fn mint(args: &TokenArgs, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<Exit> {
    let cwd = std::env::current_dir()?;
    let env = std::env::var("PLINTH_JWT_SECRET").ok();
    let (secret, source) = match find_jwt_secret(env.as_deref(), args.data_dir.as_deref(), &cwd) {
        Ok(found) => found,
        Err(message) => {
            writeln!(err, "error: {message}")?;
            return Ok(Exit::Failure);
        }
    };
    if let SecretSource::Found(data_dir) = &source
        && data_dir.parent() != Some(cwd.as_path())
    {
        writeln!(
            err,
            "note: signed with the secret of the platform whose data directory is {} \
             (the nearest .plinth above this folder)",
            data_dir.display()
        )?;
    }
    let claims = claims(args);
    match mint_token(secret.as_bytes(), &claims) {
        Ok(token) => {
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

/// A role a token may carry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    Platform(PlatformRole),
    /// A role the tenant defines (`PUT /api/v1/tenants/{t}/roles/{r}`).
    Tenant(RoleName),
}

/// Each role is a platform role or a valid tenant role name; empty entries (`--roles ''`) are
/// no role.
fn parse_roles(roles: &[String]) -> Result<Vec<Role>, String> {
    roles
        .iter()
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
        .map(|role| {
            PlatformRole::parse(role)
                .map(Role::Platform)
                .or_else(|| RoleName::parse(role).ok().map(Role::Tenant))
                .ok_or_else(|| {
                    let why = RoleName::parse(role).err().unwrap_or_default();
                    format!(
                        "`{role}` is neither a platform role (platform:admin, tenant:admin, \
                         company:admin) nor a tenant's role name ({why})"
                    )
                })
        })
        .collect()
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
        company_ids: args
            .companies
            .iter()
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect(),
        roles: args
            .roles
            .iter()
            .map(|r| r.trim())
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect(),
        exp: now + args.hours * 3600,
        nbf: None,
        iss: env("PLINTH_JWT_ISSUER"),
        aud: env("PLINTH_JWT_AUDIENCE"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(list: &[&str]) -> Result<Vec<Role>, String> {
        parse_roles(&list.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn token_mints_a_plain_user_without_roles() {
        assert_eq!(roles(&[]), Ok(vec![]));
        assert_eq!(roles(&[""]), Ok(vec![]), "`--roles ''` is no role");
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(["plinth", "token", "--tenant", "acme"])
            .expect("--roles is optional");
        let crate::cli::Command::Token(args) = cli.command else {
            panic!("expected `token`");
        };
        assert!(claims(&args).roles.is_empty());
    }

    #[test]
    fn token_takes_the_tenants_own_roles_and_refuses_malformed_ones() {
        assert_eq!(
            roles(&["financial-clerk", "tenant:admin"]),
            Ok(vec![
                Role::Tenant(RoleName::parse("financial-clerk").unwrap()),
                Role::Platform(PlatformRole::TenantAdmin),
            ])
        );
        let error = roles(&["platform:admn"]).unwrap_err();
        assert!(
            error.contains("`platform:admn` is neither a platform role")
                && error.contains("not `:`"),
            "{error}"
        );
    }
}
