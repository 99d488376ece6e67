//! `plinth up --demo`: the example modules published and installed (run as child processes),
//! tenant `acme` with a US and a German company (the seed's override), the modules enabled,
//! and a development token. Running it again changes nothing that is already there.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use plinth_module_sdk::{ModuleName, Tier};
use plinth_registry::App;
use plinth_registry::Error;
use plinth_registry::enablement::ModuleChange;
use plinth_registry::identity::{Caller, Claims, PlatformRole, User, mint_token};
use plinth_registry::ids::{CompanyId, TenantId, UserId};
use plinth_registry::install::{InstallRequest, Status};
use plinth_registry::plane::ControlPlane;
use plinth_registry::tenancy::{NewCompany, NewTenant};
use serde_json::{Map, Value, json};

/// What the demo set up, for the banner.
#[derive(Debug, Clone)]
pub struct DemoReport {
    pub modules: Vec<String>,
    pub token: String,
}

fn operator() -> Caller {
    platform_caller("plinth-demo")
}

/// The platform acting on itself, as a platform admin named `id` (a valid user id).
pub(super) fn platform_caller(id: &str) -> Caller {
    Caller::User(User {
        id: UserId::parse(id).unwrap_or_else(|_| unreachable!("a valid literal")),
        tenant: None,
        company: None,
        companies: BTreeSet::new(),
        roles: BTreeSet::from([PlatformRole::PlatformAdmin]),
    })
}

/// Treats "already there" as done, so the demo can run on every start.
fn tolerate_existing<T>(result: Result<T, Error>) -> Result<()> {
    match result {
        Ok(_) | Err(Error::Conflict(_)) => Ok(()),
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The example manifests and their folders, in an order where required modules come first.
fn example_manifests(examples: &Path) -> Result<Vec<(Value, std::path::PathBuf)>> {
    let mut manifests = Vec::new();
    let entries = std::fs::read_dir(examples)
        .with_context(|| format!("cannot read {}", examples.display()))?;
    for entry in entries.flatten() {
        let path = entry.path().join("manifest.json");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let manifest: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            manifests.push((manifest, entry.path()));
        }
    }
    let requires = |m: &Value| {
        m["dependencies"]["required_modules"]
            .as_array()
            .map_or(0, Vec::len)
    };
    manifests.sort_by_key(|(m, _)| {
        (
            requires(m),
            m["name"].as_str().unwrap_or_default().to_owned(),
        )
    });
    Ok(manifests)
}

pub(super) async fn run(app: &App, examples: &Path, secret: &str) -> Result<DemoReport> {
    let platform = &app.plane;
    let operator = operator();
    let mut modules = Vec::new();
    for (manifest, folder) in example_manifests(examples)? {
        // Each module's frontend is published with it, as `plinth module publish` does.
        let bundle = crate::console::read_bundle(&folder, &manifest)
            .with_context(|| format!("reading {}'s frontend", folder.display()))?;
        let name = ModuleName::parse(manifest["name"].as_str().unwrap_or_default())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let published = platform
            .catalog
            .publish_with_bundle(&operator, &manifest, bundle.as_ref())
            .await;
        match published {
            Ok(_) => {}
            // A data folder from before this version's files changed (or were published with
            // it): versions are immutable, so the one published stays.
            Err(Error::Conflict(why)) => eprintln!(
                "demo: {why}; keeping what was published (remove the data folder to publish the                  examples as they are now)"
            ),
            Err(e) => anyhow::bail!("publishing {name}: {e}"),
        }
        let version = manifest["version"].as_str().unwrap_or_default().to_owned();
        eprintln!("demo: installing {name} {version} (its first start may compile it)…");
        tolerate_existing(
            platform
                .installer
                .start_install(
                    &operator,
                    &name,
                    InstallRequest {
                        version,
                        endpoint: None,
                        dev_dir: None,
                        alongside: false,
                    },
                )
                .await,
        )?;
        wait_installed(platform, &name).await?;
        modules.push(name);
    }
    let acme = TenantId::parse("acme").map_err(|e| anyhow::anyhow!(e))?;
    let new_tenant = NewTenant {
        id: acme.clone(),
        name: "ACME Corporation".into(),
        subscription_tier: Tier::Enterprise,
    };
    tolerate_existing(platform.tenancy.create_tenant(&operator, new_tenant).await)?;
    for (id, name, country) in [
        ("acme-us", "ACME Inc.", "US"),
        ("acme-de", "ACME GmbH", "DE"),
    ] {
        let company = NewCompany {
            id: CompanyId::parse(id).map_err(|e| anyhow::anyhow!(e))?,
            name: name.into(),
            country: Some(country.into()),
        };
        tolerate_existing(
            platform
                .tenancy
                .create_company(&operator, &acme, company)
                .await,
        )?;
    }
    // What a tenant admin has set since an earlier start is theirs: only what is missing is
    // seeded (README: state survives restarts).
    for module in &modules {
        let seeded = platform
            .enablement
            .tenant_module(&acme, module)
            .await
            .map_err(|e| anyhow::anyhow!("reading acme's {module}: {e}"))?;
        if seeded.is_some() {
            continue;
        }
        let configuration = (module.as_str() == "financial").then(|| {
            object(json!({"currency": "EUR", "tax_rate": 0.20, "invoice_prefix": "ACME"}))
        });
        let change = ModuleChange {
            enabled: Some(true),
            configuration,
            ..ModuleChange::default()
        };
        platform
            .enablement
            .set_tenant_module(&operator, &acme, module, change)
            .await
            .map_err(|e| anyhow::anyhow!("enabling {module}: {e}"))?;
    }
    if let Some(financial) = modules.iter().find(|m| m.as_str() == "financial") {
        let german = CompanyId::parse("acme-de").map_err(|e| anyhow::anyhow!(e))?;
        let seeded = platform
            .enablement
            .company_module(&acme, &german, financial)
            .await
            .map_err(|e| anyhow::anyhow!("reading acme-de's financial: {e}"))?;
        let change = ModuleChange {
            enabled: Some(true),
            configuration: Some(object(
                json!({"tax_rate": 0.19, "invoice_prefix": "ACME-DE"}),
            )),
            ..ModuleChange::default()
        };
        if seeded.is_none() {
            platform
                .enablement
                .set_company_module(&operator, &acme, &german, financial, change)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    let token = demo_token(secret)?;
    Ok(DemoReport {
        modules: modules.iter().map(ToString::to_string).collect(),
        token,
    })
}

async fn wait_installed(platform: &ControlPlane, module: &ModuleName) -> Result<()> {
    for _ in 0..1200 {
        let installation = platform
            .installations
            .get(module)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        match installation.status {
            Status::Installed => return Ok(()),
            Status::Failed => {
                let failure = installation
                    .failure
                    .map(|f| format!("{:?}: {}", f.step, f.reason))
                    .unwrap_or_default();
                bail!("installing {module} failed at {failure}");
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    bail!("installing {module} did not finish in 10 minutes")
}

/// A 12-hour token of acme's admin, working in the German company.
pub fn demo_token(secret: &str) -> Result<String> {
    let claims = Claims {
        iss: std::env::var("PLINTH_JWT_ISSUER").ok(),
        aud: std::env::var("PLINTH_JWT_AUDIENCE").ok(),
        ..Claims::user(
            "alice",
            Some("acme"),
            Some("acme-de"),
            &["tenant:admin"],
            std::time::Duration::from_secs(12 * 3600),
        )
    };
    mint_token(secret.as_bytes(), &claims).map_err(|e| anyhow::anyhow!("{e}"))
}
