//! `plinth module dev [DIR]`: a module team's loop on one machine. In the module's folder it
//! builds the backend, publishes the manifest as the next dev version (`0.1.0-dev.N`: versions
//! are immutable), installs or upgrades it with its `dev_command` run in that folder (so the
//! platform hands the backend its API key), enables it for a tenant and prints a curl that
//! calls it through the gateway; then it does so again on every change until Ctrl-C.
//!
//! With no `--token`, it signs its own tokens with the running platform's secret, found as
//! `plinth token` finds it (`.plinth` in the module's folder or the nearest parent).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use plinth_registry::identity::{Claims, mint_token};
use serde_json::{Value, json};

use super::Exit;
use super::client::{self, Client, Failure, Output, Target, segment};
use super::module::{start_and_follow, text_of};
use crate::platform::find_jwt_secret;

/// How long the folder must stay quiet after a change before the next round (an editor
/// saving several files, `git checkout`).
const SETTLE: Duration = Duration::from_millis(300);

/// How long the printed token is valid.
const TOKEN_HOURS: u64 = 12;

/// Arguments of `plinth module dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// The module's folder, with its manifest.json.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The tenant to enable the module for (the demo's by default).
    #[arg(long, default_value = "acme")]
    pub tenant: String,
    /// Do it once and exit instead of watching for changes.
    #[arg(long)]
    pub once: bool,
    /// `plinth up`'s data directory, whose secret signs the tokens `dev` uses (without
    /// --token) and prints. Default: `.plinth` in the module's folder or the nearest parent.
    #[arg(long, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,
}

pub(super) fn run(
    args: &DevArgs,
    target: &Target,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<Exit> {
    let dir = match module_dir(&args.dir) {
        Ok(dir) => dir,
        Err(failure) => return failure.report(err),
    };
    let tokens = Tokens::find(args.data_dir.as_deref(), &dir);
    let mut target = target.clone();
    if target.token.is_none() {
        match tokens.mint(None, &["platform:admin"]) {
            Some(token) => target.token = Some(token),
            None => {
                return Failure::Usage(format!(
                    "no token to publish and install with: {}; or set PLINTH_TOKEN to a \
                     platform admin's token",
                    tokens.why_none()
                ))
                .report(err);
            }
        }
    }
    let session = Session {
        dir,
        tenant: args.tenant.clone(),
        url: target.url.trim_end_matches('/').to_owned(),
        tokens,
    };
    client::block_on(err, async {
        let client = Client::new(&target)?;
        if args.once {
            return session.round(&client, out, true).await;
        }
        session.watch(&client, out).await
    })
}

/// The module's folder, absolute, with a manifest.json in it.
fn module_dir(dir: &Path) -> Result<PathBuf, Failure> {
    let absolute = std::fs::canonicalize(dir)
        .map_err(|e| Failure::Usage(format!("{}: {e}", dir.display())))?;
    if !absolute.join("manifest.json").is_file() {
        return Err(Failure::Usage(format!(
            "no manifest.json in {}: run `plinth module dev` in a module's folder (one \
             `plinth module new NAME` wrote), or name it: `plinth module dev PATH`",
            absolute.display()
        )));
    }
    Ok(absolute)
}

/// The platform's JWT secret, if it was found.
#[derive(Debug)]
struct Tokens {
    secret: Result<String, String>,
}

impl Tokens {
    fn find(data_dir: Option<&Path>, dir: &Path) -> Self {
        let env = std::env::var("PLINTH_JWT_SECRET").ok();
        Self {
            secret: find_jwt_secret(env.as_deref(), data_dir, dir).map(|(secret, _)| secret),
        }
    }

    fn why_none(&self) -> &str {
        self.secret.as_ref().err().map_or("", String::as_str)
    }

    /// A token of user `dev` in `tenant` with `roles`, if the secret was found.
    fn mint(&self, tenant: Option<&str>, roles: &[&str]) -> Option<String> {
        let secret = self.secret.as_ref().ok()?;
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let claims = Claims {
            iss: env("PLINTH_JWT_ISSUER"),
            aud: env("PLINTH_JWT_AUDIENCE"),
            ..Claims::user(
                "dev",
                tenant,
                None,
                roles,
                Duration::from_secs(TOKEN_HOURS * 3600),
            )
        };
        mint_token(secret.as_bytes(), &claims).ok()
    }
}

/// One `plinth module dev`: the module's folder and where it goes.
#[derive(Debug)]
struct Session {
    dir: PathBuf,
    tenant: String,
    url: String,
    tokens: Tokens,
}

impl Session {
    /// Runs a round now and after every change, until Ctrl-C.
    async fn watch(&self, client: &Client, out: &mut dyn Write) -> Result<Exit, Failure> {
        let (changes, mut changed) = tokio::sync::mpsc::unbounded_channel();
        // Watches for as long as this runs.
        let _watcher = watcher(&self.dir, changes)?;
        let mut first = true;
        loop {
            tokio::select! {
                outcome = self.round(client, out, first) => {
                    match outcome {
                        Ok(_) => first = false,
                        // No platform, no tenant: no change to the module mends that.
                        Err(failure @ (Failure::Usage(_) | Failure::Unreachable(_))) => {
                            return Err(failure);
                        }
                        // A build, a manifest or an install that failed: the next change may
                        // mend it; say why and keep watching.
                        Err(failure) => {
                            failure.report(&mut io::stderr()).map_err(|e| write_failure(&e))?;
                        }
                    }
                }
                _ = tokio::signal::ctrl_c() => return stopped(out),
            }
            line(
                out,
                &format!("watching {} for changes (Ctrl-C stops)", self.dir.display()),
            )?;
            tokio::select! {
                Some(()) = changed.recv() => {
                    // Let a burst of saves settle, then take them as one change.
                    tokio::time::sleep(SETTLE).await;
                    while changed.try_recv().is_ok() {}
                    line(out, "changed: building again")?;
                }
                _ = tokio::signal::ctrl_c() => return stopped(out),
            }
        }
    }

    /// Build, publish, install or upgrade, enable; `first` prints the curl in full.
    async fn round(
        &self,
        client: &Client,
        out: &mut dyn Write,
        first: bool,
    ) -> Result<Exit, Failure> {
        let manifest = read_manifest(&self.dir)?;
        let name = text_of(&manifest["name"]);
        build(&self.dir).await?;
        let version = next_version(client, &name, &text_of(&manifest["version"])).await?;
        let mut published = manifest.clone();
        published["version"] = json!(version);
        // Its frontend too: each round is a new version, so an edited page is a new bundle.
        let bundle = crate::console::read_bundle(&self.dir, &manifest)
            .map_err(|e| Failure::Usage(format!("{e:#}")))?;
        if let Some(bundle) = bundle {
            published = json!({"manifest": published, "bundle": bundle});
        }
        client.post("/api/v1/modules", &published).await?;
        line(out, &format!("published {name} {version}"))?;
        let path = format!("/api/v1/modules/{}/installation", segment(&name));
        let installed = match client.get(&path).await {
            Ok(answer) => answer.body["installed_version"].is_string(),
            Err(Failure::Refused { status: 404, .. }) => false,
            Err(failure) => return Err(failure),
        };
        let operation = if installed { "upgrade" } else { "install" };
        let body = json!({"version": version, "dev_dir": self.dir.display().to_string()});
        start_and_follow(client, Output::Human, &name, operation, &body, out).await?;
        let tenant = &self.tenant;
        let enable = format!(
            "/api/v1/tenants/{}/modules/{}",
            segment(tenant),
            segment(&name)
        );
        client
            .put(&enable, &json!({"enabled": true}))
            .await
            .map_err(|failure| match failure {
                Failure::Refused { status: 404, .. } => Failure::Usage(format!(
                    "tenant {tenant} does not exist: start the platform with `plinth up \
                     --demo`, create it (`plinth tenant create {tenant} --name …`) or pass \
                     --tenant"
                )),
                other => other,
            })?;
        line(
            out,
            &format!("{name} {version} is enabled for tenant {tenant}"),
        )?;
        if first {
            line(out, &self.call_text(&manifest))?;
        } else {
            line(out, "ready: the curl above calls the new version")?;
        }
        Ok(Exit::Success)
    }

    /// What to run to call the module through the gateway.
    fn call_text(&self, manifest: &Value) -> String {
        let url = format!("{}{}", self.url, route_path(manifest));
        let tenant = &self.tenant;
        match self.tokens.mint(Some(tenant), &["tenant:admin"]) {
            Some(token) => format!(
                "Call it through the gateway, as tenant {tenant}'s admin (token valid \
                 {TOKEN_HOURS} h):\n  curl -s -H \"Authorization: Bearer {token}\" {url}"
            ),
            None => format!(
                "Call it through the gateway with a token of tenant {tenant} (`export \
                 TOKEN=$(plinth token --tenant {tenant} --roles tenant:admin)` where `plinth \
                 up` runs):\n  curl -s -H \"Authorization: Bearer $TOKEN\" {url}"
            ),
        }
    }
}

fn stopped(out: &mut dyn Write) -> Result<Exit, Failure> {
    line(
        out,
        "stopped watching; the module stays installed and enabled (`plinth module uninstall \
         NAME` removes it)",
    )?;
    Ok(Exit::Success)
}

fn line(out: &mut dyn Write, text: &str) -> Result<(), Failure> {
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| write_failure(&e))
}

fn write_failure(e: &io::Error) -> Failure {
    Failure::Usage(format!("cannot write output: {e}"))
}

fn read_manifest(dir: &Path) -> Result<Value, Failure> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| Failure::Failed(format!("{} is not valid JSON: {e}", path.display())))
}

/// `cargo build` in a Rust module's folder, its output shown as it goes: a module that does
/// not build is not published.
async fn build(dir: &Path) -> Result<(), Failure> {
    if !dir.join("Cargo.toml").is_file() {
        return Ok(()); // not Rust: its dev_command builds what it needs
    }
    let status = tokio::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
        .arg("build")
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .status()
        .await
        .map_err(|e| Failure::Usage(format!("cannot run cargo in {}: {e}", dir.display())))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::Failed(
            "the build failed (above); nothing was published".into(),
        ))
    }
}

/// `{version}-dev.N`, N one past the highest published so far (a version is published once).
async fn next_version(client: &Client, name: &str, version: &str) -> Result<String, Failure> {
    let base = version.split('+').next().unwrap_or(version);
    let prefix = if base.contains('-') {
        format!("{base}.dev.")
    } else {
        format!("{base}-dev.")
    };
    let path = format!("/api/v1/modules/{}/versions", segment(name));
    let published = match client.get(&path).await {
        Ok(answer) => answer.body,
        Err(Failure::Refused { status: 404, .. }) => Value::Null,
        Err(failure) => return Err(failure),
    };
    let highest = published
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| {
            v["version"]
                .as_str()?
                .strip_prefix(&prefix)?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap_or(0);
    Ok(format!("{prefix}{}", highest + 1))
}

/// The path of the manifest's first GET route without parameters (what a curl can call as
/// it is), under the module's prefix.
fn route_path(manifest: &Value) -> String {
    let prefix = text_of(&manifest["backend"]["api_prefix"]);
    let route = manifest["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|route| {
            route["methods"]
                .as_array()
                .is_some_and(|methods| methods.iter().any(|m| m == "GET"))
        })
        .filter_map(|route| route["path"].as_str())
        .find(|path| !path.contains('{'))
        .unwrap_or("");
    format!("{prefix}{route}")
}

/// Watches `dir` for changes to the module's sources, ignoring what builds and runs write
/// (`target/`, `.git/`, `.plinth/`, `Cargo.lock`).
fn watcher(
    dir: &Path,
    changes: tokio::sync::mpsc::UnboundedSender<()>,
) -> Result<notify::RecommendedWatcher, Failure> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let root = dir.to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, EventKind::Access(_) | EventKind::Other) {
            return;
        }
        if event
            .paths
            .iter()
            .any(|path| is_source(&root, target.as_deref(), path))
        {
            let _ = changes.send(());
        }
    })
    .map_err(|e| Failure::Usage(format!("cannot watch {}: {e}", dir.display())))?;
    watcher
        .watch(dir, RecursiveMode::Recursive)
        .map_err(|e| Failure::Usage(format!("cannot watch {}: {e}", dir.display())))?;
    Ok(watcher)
}

/// Whether a change to `path` is a change to the module (not to what building writes).
fn is_source(root: &Path, target: Option<&Path>, path: &Path) -> bool {
    if target.is_some_and(|target| path.starts_with(target)) {
        return false;
    }
    let Ok(inside) = path.strip_prefix(root) else {
        return false;
    };
    let mut parts = inside.components().map(|c| c.as_os_str().to_string_lossy());
    let Some(first) = parts.next() else {
        return false;
    };
    let ignored = ["target", ".git", ".plinth", "Cargo.lock"];
    !ignored.contains(&first.as_ref())
        && !inside.components().any(|c| c.as_os_str() == "target")
        && !inside
            .file_name()
            .is_some_and(|f| f.to_string_lossy().ends_with('~'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn building_writes_nothing_that_counts_as_a_change() {
        let root = Path::new("/m");
        let target = Some(Path::new("/shared/target"));
        for path in ["/m/backend/src/lib.rs", "/m/manifest.json", "/m/Cargo.toml"] {
            assert!(is_source(root, target, Path::new(path)), "{path}");
        }
        for path in [
            "/m/target/debug/m",
            "/m/backend/target/x",
            "/m/.git/index",
            "/m/Cargo.lock",
            "/m/.plinth/logs/m.log",
            "/m/backend/src/lib.rs~",
            "/shared/target/debug/m",
            "/elsewhere/x",
        ] {
            assert!(!is_source(root, target, Path::new(path)), "{path}");
        }
    }

    #[test]
    fn the_curl_calls_the_first_get_route_without_parameters() {
        let manifest = json!({"backend": {"api_prefix": "/api/v1/hr"}, "routes": [
            {"path": "/people", "methods": ["POST"]},
            {"path": "/people/{id}", "methods": ["GET"]},
            {"path": "/people", "methods": ["GET", "POST"]}
        ]});
        assert_eq!(route_path(&manifest), "/api/v1/hr/people");
        let bare = json!({"backend": {"api_prefix": "/api/v1/hr"}});
        assert_eq!(route_path(&bare), "/api/v1/hr");
    }
}
