//! `plinth module …`: publish versions and run the installer (install, upgrade, rollback,
//! uninstall) against a Plinth, following long operations until they finish. `module new`
//! (a new module repository) lives in `module_new.rs`, `module dev` (the loop of a module
//! team on one machine) in `dev.rs`.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Exit;
use super::client::{self, Client, Failure, Output, Target, segment};
use super::dev::{self, DevArgs};
use super::module_new::{self, NewArgs};
use super::module_read;
use super::rollout::{self, RolloutCommand};
use super::versions;

/// How long `install` and the like follow an operation before giving up.
const FOLLOW_FOR: Duration = Duration::from_secs(600);
const POLL_EVERY: Duration = Duration::from_millis(250);

/// Arguments of `plinth module`.
#[derive(Debug, clap::Args)]
pub struct ModuleArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ModuleCommand,
    #[command(flatten)]
    pub target: Target,
}

/// The `module` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ModuleCommand {
    /// Write a new module repository in ./NAME, ready to build and test.
    ///
    /// Exit status: 0 written, 2 invalid name, existing folder or unusable --sdk-path.
    New(NewArgs),
    /// Run the module in this folder on a local Plinth and keep it current: build, publish a
    /// dev version, install or upgrade it (its dev_command run here), enable it for a tenant,
    /// print a curl that calls it; again on every change. Ctrl-C stops watching.
    ///
    /// Exit status: 0 stopped, 1 refused or failed (with --once), 2 no manifest, no token or
    /// Plinth unreachable.
    Dev(DevArgs),
    /// Publish a module version: its manifest.json (`POST /api/v1/modules`).
    Publish {
        /// The manifest file.
        manifest: PathBuf,
    },
    /// Install a published version platform-wide, showing progress until installed or failed.
    ///
    /// With --endpoint, the module's API key is printed once: the backend needs it.
    Install {
        name: String,
        #[arg(long)]
        version: String,
        /// A backend that already runs at this URL, instead of deploying one.
        #[arg(long, conflicts_with = "dir")]
        endpoint: Option<String>,
        /// One machine: the module's folder, where its dev_command runs. Default: this folder
        /// when its manifest.json is the module's, else the folder `plinth up` runs in.
        #[arg(long, value_name = "PATH")]
        dir: Option<PathBuf>,
        /// Install this version next to the installed one, which keeps serving: tenants move
        /// to it by `plinth module pin` or `plinth module versions --default`.
        #[arg(long)]
        alongside: bool,
    },
    /// Upgrade an installed module to another published version.
    Upgrade {
        name: String,
        #[arg(long)]
        version: String,
        /// As for `install`: a new folder for its dev_command (default: this folder when its
        /// manifest.json is the module's, else the one it was installed with).
        #[arg(long, value_name = "PATH")]
        dir: Option<PathBuf>,
    },
    /// Issue the module a new API key and print it once; its other keys stop working after
    /// --old-keys-for seconds. For a backend you run yourself (installed with --endpoint); one
    /// the platform runs gets a fresh key with each upgrade.
    RotateKey {
        name: String,
        /// How long the module's current keys keep working (seconds).
        #[arg(long, default_value_t = 0, value_name = "SECS")]
        old_keys_for: u64,
    },
    /// Go back to the version before the last upgrade.
    Rollback { name: String },
    /// Uninstall a module (refused while an installed module requires it).
    Uninstall {
        name: String,
        /// Drop the module's tables too.
        #[arg(long)]
        drop_data: bool,
        /// Only say what would happen.
        #[arg(long)]
        dry_run: bool,
        /// Only this installed version (one installed alongside; refused while it is the
        /// default or tenants are pinned to it).
        #[arg(long)]
        version: Option<String>,
        /// Export each tenant's rows first (JSON Lines and a manifest per tenant); when the
        /// export fails, nothing is dropped.
        #[arg(long)]
        export: bool,
        /// Days the kept tables stay before they are dropped (default: the platform's, 30);
        /// a reinstall before then keeps them.
        #[arg(long, value_name = "DAYS", conflicts_with = "drop_data", value_parser = clap::value_parser!(u32).range(1..=3650))]
        retention_days: Option<u32>,
    },
    /// Pin a tenant to an installed version: its requests go to that version's backend.
    Pin {
        name: String,
        version: String,
        #[arg(long)]
        tenant: String,
    },
    /// Unpin a tenant: the module's default version serves it again.
    Unpin {
        name: String,
        #[arg(long)]
        tenant: String,
    },
    /// The installed versions of a module, the default among them and the tenants pinned to
    /// each; with --default, make that version the default first.
    Versions {
        name: String,
        /// The version to serve every tenant without a pin.
        #[arg(long, value_name = "VERSION")]
        default: Option<String>,
    },
    /// Staged rollouts (`rollout.rs`): rollout, rollouts, rollout-pause, rollout-resume,
    /// rollout-abort.
    #[command(flatten)]
    Rollout(RolloutCommand),
    /// Show a module's installation and the steps of its last operation; for one not
    /// finished, the step it is at, its last progress, the sweep's re-requests and last error.
    Status { name: String },
    /// Request a failed or stuck operation again (`POST …/installation/retry`) and follow it.
    ///
    /// Exit status: 0 finished, 1 refused (nothing to retry: 409) or failed again, 2 Plinth
    /// unreachable.
    Retry { name: String },

    // ---- Reads (`module_read.rs`): list and show, as every noun has. ----
    /// The published modules (the marketplace), as a table.
    List {
        #[arg(long)]
        category: Option<String>,
        #[arg(long)]
        tag: Option<String>,
        /// Only modules a tenant of this tier may enable.
        #[arg(long)]
        tier: Option<String>,
    },
    /// One module: its catalog entry and what is installed of it.
    Show { name: String },
}

pub(super) fn run(args: ModuleArgs, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<Exit> {
    let ModuleArgs { command, target } = args;
    // ---- Reads (`module_read.rs`). ----
    match &command {
        ModuleCommand::List {
            category,
            tag,
            tier,
        } => {
            let filter = [
                ("category", category.clone()),
                ("tag", tag.clone()),
                ("tier", tier.clone()),
            ];
            return module_read::list(&target, &filter, out, err);
        }
        ModuleCommand::Show { name } => return module_read::show(&target, name, out, err),
        _ => {}
    }
    if let ModuleCommand::New(new) = command {
        let args = module_new::ModuleArgs {
            command: module_new::ModuleCommand::New(new),
        };
        return module_new::run(args, out, err);
    }
    if let ModuleCommand::Dev(args) = command {
        return dev::run(&args, &target, out, err);
    }
    client::block_on(err, async {
        let client = Client::new(&target)?;
        let output = target.output;
        match command {
            // Handled above.
            ModuleCommand::New(_) | ModuleCommand::Dev(_) => Ok(Exit::Failure),
            ModuleCommand::Publish { manifest } => publish(&client, output, &manifest, out).await,
            ModuleCommand::Install {
                name,
                version,
                endpoint,
                dir,
                alongside: true,
            } => {
                let dev_dir = match endpoint {
                    Some(_) => None,
                    None => module_folder(&name, dir.as_deref())?,
                };
                let body = without_nulls(json!({"version": version, "endpoint": endpoint,
                    "dev_dir": dev_dir, "alongside": true}));
                let path = format!("/api/v1/modules/{}/install", segment(&name));
                client.post(&path, &body).await?;
                let status = format!(
                    "/api/v1/modules/{}/installation?version={}",
                    segment(&name),
                    segment(&version)
                );
                let installation = wait_at(&client, output, &name, &status, out).await?;
                finish(output, &installation, out)
            }
            ModuleCommand::Install {
                name,
                version,
                endpoint,
                dir,
                alongside: false,
            } => {
                if let Some(endpoint) = endpoint {
                    return install_at_endpoint(&client, output, &name, &version, &endpoint, out)
                        .await;
                }
                let dev_dir = module_folder(&name, dir.as_deref())?;
                let body = without_nulls(json!({"version": version, "dev_dir": dev_dir}));
                start_and_follow(&client, output, &name, "install", &body, out).await
            }
            ModuleCommand::Upgrade { name, version, dir } => {
                let dev_dir = module_folder(&name, dir.as_deref())?;
                let body = without_nulls(json!({"version": version, "dev_dir": dev_dir}));
                start_and_follow(&client, output, &name, "upgrade", &body, out).await
            }
            ModuleCommand::RotateKey { name, old_keys_for } => {
                let key = issue_key(&client, &name, old_keys_for).await?;
                client::print(out, output, &key, |key| {
                    format!(
                        "new API key of {name} (shown this once; its other keys stop working \
                         in {old_keys_for} s):\n  {}",
                        text_of(&key["key"])
                    )
                })?;
                Ok(Exit::Success)
            }
            ModuleCommand::Rollback { name } => {
                start_and_follow(&client, output, &name, "rollback", &json!({}), out).await
            }
            ModuleCommand::Uninstall {
                name,
                drop_data,
                dry_run,
                version,
                export,
                retention_days,
            } => {
                let data = DataChoice {
                    drop_data,
                    dry_run,
                    export,
                    retention_days,
                };
                uninstall(&client, output, &name, data, version.as_deref(), out).await
            }
            ModuleCommand::Pin {
                name,
                version,
                tenant,
            } => versions::pin(&client, output, &name, &tenant, Some(&version), out).await,
            ModuleCommand::Unpin { name, tenant } => {
                versions::pin(&client, output, &name, &tenant, None, out).await
            }
            ModuleCommand::Versions { name, default } => {
                versions::versions(&client, output, &name, default.as_deref(), out).await
            }
            ModuleCommand::Rollout(command) => rollout::run(&client, output, command, out).await,
            ModuleCommand::Status { name } => status(&client, output, &name, out).await,
            ModuleCommand::Retry { name } => {
                let retry = "installation/retry";
                start_and_follow(&client, output, &name, retry, &json!({}), out).await
            }
            // Answered above, before the client.
            ModuleCommand::List { .. } | ModuleCommand::Show { .. } => Ok(Exit::Failure),
        }
    })
}

/// The folder a module's dev_command runs in: `--dir`, else this folder when its
/// manifest.json is the module's (where a module team runs the command), else none (the
/// platform's own folder).
fn module_folder(name: &str, dir: Option<&Path>) -> Result<Option<String>, Failure> {
    let absolute = |dir: &Path| {
        std::fs::canonicalize(dir)
            .map(|path| path.display().to_string())
            .map_err(|e| Failure::Usage(format!("--dir {}: {e}", dir.display())))
    };
    if let Some(dir) = dir {
        return absolute(dir).map(Some);
    }
    let here = Path::new(".");
    let named = std::fs::read_to_string(here.join("manifest.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .is_some_and(|manifest| manifest["name"] == name);
    if named {
        absolute(here).map(Some)
    } else {
        Ok(None)
    }
}

/// Installs a backend that already runs, then gives it a key: the one the install issued went
/// to no one (a backend the platform starts gets it in its environment), so it is replaced at
/// once by one printed here, this once.
async fn install_at_endpoint(
    client: &Client,
    output: Output,
    name: &str,
    version: &str,
    endpoint: &str,
    out: &mut dyn Write,
) -> Result<Exit, Failure> {
    let body = json!({"version": version, "endpoint": endpoint});
    let path = format!("/api/v1/modules/{}/install", segment(name));
    client.post(&path, &body).await?;
    let mut installation = wait(client, output, name, out).await?;
    if text_of(&installation["status"]) != "installed" {
        return finish(output, &installation, out);
    }
    let key = issue_key(client, name, 0).await?;
    installation["api_key"] = key.clone();
    client::print(out, output, &installation, |installation| {
        let key = text_of(&key["key"]);
        format!(
            "{}\nAPI key of {name}, shown this once (the backend needs it as PLINTH_API_KEY \
             to read its configuration and publish events):\n  {key}\n\
             Restart the backend at {endpoint} with it, e.g.\n  \
             PLINTH_API_KEY={key} PORT=<its port> cargo run --bin {name}\n\
             Another key later: plinth module rotate-key {name}",
            summary(installation)
        )
    })?;
    Ok(Exit::Success)
}

/// Issues the module a key (`POST …/api-keys`); its other keys stop working after
/// `old_keys_for` seconds.
async fn issue_key(client: &Client, name: &str, old_keys_for: u64) -> Result<Value, Failure> {
    let path = format!("/api/v1/modules/{}/api-keys", segment(name));
    let answer = client
        .post(&path, &json!({"rotate_after_secs": old_keys_for}))
        .await?;
    Ok(answer.body)
}

fn without_nulls(mut body: Value) -> Value {
    if let Some(map) = body.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    body
}

async fn publish(
    client: &Client,
    output: Output,
    manifest: &Path,
    out: &mut dyn Write,
) -> Result<Exit, Failure> {
    let shown = manifest.display();
    let text = std::fs::read_to_string(manifest)
        .map_err(|e| Failure::Usage(format!("cannot read {shown}: {e}")))?;
    let document: Value = serde_json::from_str(&text)
        .map_err(|e| Failure::Usage(format!("{shown} is not valid JSON: {e}")))?;
    // The files of the manifest's `frontend.bundle` folder go with it (docs/console.md).
    let folder = manifest.parent().unwrap_or_else(|| Path::new("."));
    let bundle = crate::console::read_bundle(folder, &document)
        .map_err(|e| Failure::Usage(format!("{shown}: {e:#}")))?;
    let body = match &bundle {
        Some(bundle) => serde_json::json!({"manifest": document, "bundle": bundle}),
        None => document,
    };
    let answer = client.post("/api/v1/modules", &body).await?;
    let created = answer.status == 201;
    client::print(out, output, &answer.body, |version| {
        let (module, number) = (text_of(&version["module"]), text_of(&version["version"]));
        if created {
            match version["bundle"]["files"].as_array() {
                Some(files) => format!(
                    "published {module} {number} with its frontend ({} files, bundle {})",
                    files.len(),
                    text_of(&version["bundle"]["digest"])
                ),
                None => format!("published {module} {number}"),
            }
        } else {
            format!(
                "{module} {number} was published before with the same manifest; nothing changed"
            )
        }
    })?;
    Ok(Exit::Success)
}

/// Starts an installer operation (`POST /api/v1/modules/{m}/{operation}`) and follows it.
pub(super) async fn start_and_follow(
    client: &Client,
    output: Output,
    name: &str,
    operation: &str,
    body: &Value,
    out: &mut dyn Write,
) -> Result<Exit, Failure> {
    let path = format!("/api/v1/modules/{}/{operation}", segment(name));
    client.post(&path, body).await?;
    follow(client, output, name, out).await
}

/// What an uninstall does with the module's data.
#[derive(Debug, Clone, Copy)]
struct DataChoice {
    drop_data: bool,
    dry_run: bool,
    export: bool,
    retention_days: Option<u32>,
}

/// Uninstalls the module, or (`version`) one installed version of it.
async fn uninstall(
    client: &Client,
    output: Output,
    name: &str,
    data: DataChoice,
    version: Option<&str>,
    out: &mut dyn Write,
) -> Result<Exit, Failure> {
    let DataChoice {
        drop_data,
        dry_run,
        export,
        retention_days,
    } = data;
    let mut query = format!("drop_data={drop_data}&dry_run={dry_run}");
    if let Some(v) = version {
        query.push_str(&format!("&version={}", segment(v)));
    }
    if export {
        query.push_str("&export=true");
    }
    if let Some(days) = retention_days {
        query.push_str(&format!("&retention_days={days}"));
    }
    let path = format!("/api/v1/modules/{}/installation?{query}", segment(name));
    let answer = client.delete(&path).await?;
    if dry_run {
        client::print(out, output, &answer.body, impact_text)?;
        return Ok(Exit::Success);
    }
    // The installation of a version alongside has its own status.
    let status = match &answer.body["alongside"] {
        Value::Bool(true) => format!(
            "/api/v1/modules/{}/installation?version={}",
            segment(name),
            segment(&text_of(&answer.body["version"]))
        ),
        _ => format!("/api/v1/modules/{}/installation", segment(name)),
    };
    let installation = wait_at(client, output, name, &status, out).await?;
    finish(output, &installation, out)
}

fn impact_text(impact: &Value) -> String {
    let list = |key: &str| {
        let items: Vec<&str> = impact[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if items.is_empty() {
            "none".to_owned()
        } else {
            items.join(", ")
        }
    };
    let tables = if impact["drop_data"].as_bool() == Some(true) {
        "dropped"
    } else {
        "kept (pass --drop-data to drop)"
    };
    let mut text = format!(
        "uninstalling {} {} would:\n  stop the backend: {}\n  remove event rules: {}\n  tables {}: {}\n  dependents (uninstall is refused while any is installed): {}",
        text_of(&impact["module"]),
        text_of(&impact["version"]),
        impact["endpoint"].as_str().unwrap_or("none"),
        list("event_rules"),
        tables,
        list("tables"),
        list("dependents"),
    );
    for table in impact["rows"].as_array().into_iter().flatten() {
        let rows = table["rows"].as_u64().map_or_else(
            || format!("rows unknown ({})", text_of(&table["unreadable"])),
            |n| format!("{n} rows"),
        );
        text.push_str(&format!("\n    {}: {rows}", text_of(&table["name"])));
    }
    text.push_str(if impact["export"].as_bool() == Some(true) {
        "\n  export each tenant's rows first: yes"
    } else {
        "\n  export each tenant's rows first: no (pass --export)"
    });
    if let Some(at) = impact["drop_after"].as_str() {
        text.push_str(&format!("\n  data dropped at: {at}"));
    }
    text
}

/// The lines of an export: where it is, each table's rows and checksum, its links.
pub(super) fn export_text(export: &Value) -> String {
    let mut text = format!(
        "export {} of tenant {}'s {} rows at {}",
        text_of(&export["id"]),
        text_of(&export["tenant"]),
        text_of(&export["module"]),
        text_of(&export["location"]),
    );
    for table in export["tables"].as_array().into_iter().flatten() {
        text.push_str(&format!(
            "\n  {}: {} rows, sha256 {}",
            text_of(&table["name"]),
            table["rows"].as_u64().unwrap_or(0),
            text_of(&table["sha256"]),
        ));
        if let Some(link) = table["link"].as_str() {
            text.push_str(&format!("\n    {link}"));
        }
    }
    if let Some(link) = export["manifest_link"].as_str() {
        text.push_str(&format!("\n  manifest.json: {link}"));
    }
    text
}

async fn status(
    client: &Client,
    output: Output,
    name: &str,
    out: &mut dyn Write,
) -> Result<Exit, Failure> {
    let answer = client
        .get(&format!("/api/v1/modules/{}/installation", segment(name)))
        .await?;
    client::print(out, output, &answer.body, |installation| {
        let mut text = summary(installation);
        text.push_str(&progress(installation, OffsetDateTime::now_utc()));
        for step in installation["steps"].as_array().into_iter().flatten() {
            text.push_str(&format!("\n  {}", step_line(step)));
        }
        text
    })?;
    Ok(Exit::Success)
}

/// Polls the installation until its operation is done, printing each step as it finishes,
/// then its outcome.
async fn follow(
    client: &Client,
    output: Output,
    name: &str,
    out: &mut dyn Write,
) -> Result<Exit, Failure> {
    let installation = wait(client, output, name, out).await?;
    finish(output, &installation, out)
}

/// Polls the installation until its operation is done, printing each step as it finishes;
/// gives back the installation as it ended.
async fn wait(
    client: &Client,
    output: Output,
    name: &str,
    out: &mut dyn Write,
) -> Result<Value, Failure> {
    let path = format!("/api/v1/modules/{}/installation", segment(name));
    wait_at(client, output, name, &path, out).await
}

/// [`wait`], on the installation at `path` (one of a version alongside).
async fn wait_at(
    client: &Client,
    output: Output,
    name: &str,
    path: &str,
    out: &mut dyn Write,
) -> Result<Value, Failure> {
    let started = Instant::now();
    let mut shown = BTreeSet::new();
    loop {
        let installation = client.get(path).await?.body;
        if output == Output::Human {
            show_progress(&installation, &mut shown, out)?;
        }
        let state = text_of(&installation["status"]);
        if !matches!(state.as_str(), "pending" | "running") {
            return Ok(installation);
        }
        if started.elapsed() > FOLLOW_FOR {
            return Err(Failure::Failed(format!(
                "{name} is still {state} after {} minutes; see `plinth module status {name}`",
                FOLLOW_FOR.as_secs() / 60
            )));
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

fn show_progress(
    installation: &Value,
    shown: &mut BTreeSet<String>,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    for step in installation["steps"].as_array().into_iter().flatten() {
        let line = step_line(step);
        // A failure is told once, at the end, and what was undone after it (`finish`).
        let status = text_of(&step["status"]);
        if status == "done" && shown.insert(line.clone()) {
            writeln!(out, "  {line}")
                .map_err(|e| Failure::Usage(format!("cannot write output: {e}")))?;
        }
    }
    out.flush()
        .map_err(|e| Failure::Usage(format!("cannot write output: {e}")))
}

fn finish(output: Output, installation: &Value, out: &mut dyn Write) -> Result<Exit, Failure> {
    let state = text_of(&installation["status"]);
    if state == "failed" {
        let failure = &installation["failure"];
        if output == Output::Json {
            client::print(out, output, installation, |_| String::new())?;
        }
        let mut message = format!(
            "{} of {} {} failed at step {}: {}",
            text_of(&installation["operation"]),
            text_of(&installation["module"]),
            text_of(&installation["version"]),
            text_of(&failure["step"]),
            text_of(&failure["reason"]),
        );
        // Then what was undone, in the order it was undone (the last step done first).
        let steps = installation["steps"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for step in steps.iter().rev().filter(|s| s["status"] == "undone") {
            message.push_str(&format!("\n  {}", step_line(step)));
        }
        return Err(Failure::Failed(message));
    }
    client::print(out, output, installation, summary)?;
    Ok(Exit::Success)
}

/// `financial: installed 1.2.0 (install of 1.2.0: installed)`.
fn summary(installation: &Value) -> String {
    let module = text_of(&installation["module"]);
    let serving = installation["installed_version"]
        .as_str()
        .map_or_else(|| "not installed".to_owned(), |v| format!("serving {v}"));
    let mut text = format!(
        "{module}: {} ({serving}; last operation: {} of {})",
        text_of(&installation["status"]),
        text_of(&installation["operation"]),
        text_of(&installation["version"]),
    );
    if let Some(endpoint) = installation["endpoint"]
        .as_str()
        .or_else(|| installation["deployment"]["endpoint"].as_str())
    {
        text.push_str(&format!("\n  endpoint: {endpoint}"));
    }
    for export in installation["exports"].as_array().into_iter().flatten() {
        text.push('\n');
        text.push_str(&export_text(export));
    }
    if let Some(at) = installation["drop_after"].as_str() {
        text.push_str(&format!(
            "\n  data kept until {at}, then dropped (a reinstall before then keeps it)"
        ));
    }
    text
}

/// Where an unfinished or failed operation stands: its step, its last progress and how long
/// ago, the sweep's re-requests, the last error.
fn progress(installation: &Value, now: OffsetDateTime) -> String {
    let state = text_of(&installation["status"]);
    let mut lines = Vec::new();
    let mut idle = time::Duration::ZERO;
    match state.as_str() {
        "pending" | "running" => {
            let at = installation["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|step| step["status"] != "done")
                .map_or_else(|| "finishing".to_owned(), |step| text_of(&step["step"]));
            lines.push(format!("at step: {at}"));
            if let Some(since) = installation["updated_at"].as_str() {
                let age = OffsetDateTime::parse(since, &Rfc3339)
                    .map(|t| {
                        idle = now - t;
                        format!(" ({} ago)", age_words(idle))
                    })
                    .unwrap_or_default();
                lines.push(format!("last progress: {since}{age}"));
            }
        }
        "failed" => {
            let failure = &installation["failure"];
            lines.push(format!(
                "failed at step {}: {}",
                text_of(&failure["step"]),
                text_of(&failure["reason"])
            ));
        }
        _ => {}
    }
    if let Some(attempts) = installation["attempts"].as_u64().filter(|n| *n > 0) {
        lines.push(format!("re-requested by the sweep: {attempts} time(s)"));
    }
    if let Some(error) = installation["last_error"].as_str() {
        lines.push(format!("last error: {error}"));
    }
    // A healthy operation moves on within minutes; one that does not is worth a nudge.
    let stuck = matches!(state.as_str(), "pending" | "running")
        && (installation["last_error"].is_string() || idle > time::Duration::minutes(5));
    if stuck || state == "failed" {
        let name = text_of(&installation["module"]);
        lines.push(format!(
            "run `plinth module retry {name}` to request it again now"
        ));
    }
    lines.iter().map(|line| format!("\n  {line}")).collect()
}

/// `17m 3s`, `45s`, `2h 1m`.
fn age_words(age: time::Duration) -> String {
    let secs = age.whole_seconds().max(0);
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

/// `done     deploy` / `failed   pre_install: refused`.
fn step_line(step: &Value) -> String {
    let mut line = format!("{:<8} {}", text_of(&step["status"]), text_of(&step["step"]));
    if let Some(detail) = step["detail"].as_str() {
        line.push_str(&format!(": {detail}"));
    }
    line
}

pub(super) fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "?".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_impact_lists_each_tables_rows_the_export_and_when_the_data_goes() {
        let impact = json!({"module": "financial", "version": "1.2.0", "endpoint": null,
            "event_rules": [], "tables": ["financial_accounts", "financial_invoices"],
            "dependents": [], "drop_data": false, "export": true,
            "drop_after": "2026-12-14T10:00:00Z",
            "rows": [{"name": "financial_accounts", "rows": 12},
                     {"name": "financial_invoices", "unreadable": "the backend is down"}]});
        let text = impact_text(&impact);
        assert!(text.contains("    financial_accounts: 12 rows"), "{text}");
        assert!(
            text.contains("financial_invoices: rows unknown (the backend is down)"),
            "{text}"
        );
        assert!(
            text.contains("export each tenant's rows first: yes"),
            "{text}"
        );
        assert!(
            text.contains("data dropped at: 2026-12-14T10:00:00Z"),
            "{text}"
        );
    }

    #[test]
    fn an_export_prints_its_location_each_tables_rows_and_checksum_and_its_links() {
        let export = json!({"id": "20261207T101500Z-3f9a0c1d", "module": "financial",
            "tenant": "acme", "location": "exports/financial/acme/20261207T101500Z-3f9a0c1d/",
            "tables": [{"name": "financial_accounts", "rows": 12, "sha256": "5b6a",
                        "link": "https://bucket.s3/…?X-Amz-Signature=1"}],
            "manifest_link": "https://bucket.s3/manifest?X-Amz-Signature=2"});
        let text = export_text(&export);
        assert!(
            text.starts_with("export 20261207T101500Z-3f9a0c1d of tenant acme's financial rows at exports/financial/acme/"),
            "{text}"
        );
        assert!(
            text.contains("financial_accounts: 12 rows, sha256 5b6a"),
            "{text}"
        );
        assert!(
            text.contains("X-Amz-Signature=1") && text.contains("manifest.json: https://"),
            "{text}"
        );
    }

    #[test]
    fn uninstall_retention_days_is_refused_out_of_range_and_with_drop_data() {
        use clap::Parser;
        let parse = |args: &[&str]| {
            crate::cli::Cli::try_parse_from(
                ["plinth", "module", "uninstall", "financial"]
                    .iter()
                    .chain(args),
            )
        };
        assert!(parse(&["--export", "--retention-days", "7"]).is_ok());
        for bad in [
            &["--retention-days", "0"][..],
            &["--retention-days", "3651"],
            &["--drop-data", "--retention-days", "7"],
        ] {
            let error = parse(bad).expect_err("refused").to_string();
            assert!(error.contains("--retention-days"), "{error}");
        }
    }

    #[test]
    fn progress_shows_each_finished_step_once() {
        let installation = json!({"steps": [
            {"step": "validate", "status": "done"},
            {"step": "deploy", "status": "pending"}
        ]});
        let (mut shown, mut out) = (BTreeSet::new(), Vec::new());
        show_progress(&installation, &mut shown, &mut out).unwrap();
        show_progress(&installation, &mut shown, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "  done     validate\n");
    }

    #[test]
    fn a_stuck_installation_shows_its_step_attempts_age_and_last_error() {
        let installation = json!({"module": "hr", "operation": "install", "version": "1.0.0",
        "status": "running", "attempts": 2, "updated_at": "2026-12-01T10:00:00Z",
        "last_error": "no progress since 2026-12-01T09:43:00Z (17m 0s); re-requested, attempt 2 of 3",
        "steps": [
            {"step": "validate", "status": "done"},
            {"step": "deploy", "status": "done"},
            {"step": "pre_install", "status": "pending"}
        ]});
        let now = OffsetDateTime::parse("2026-12-01T10:17:03Z", &Rfc3339).unwrap();
        assert_eq!(
            progress(&installation, now),
            "\n  at step: pre_install\
             \n  last progress: 2026-12-01T10:00:00Z (17m 3s ago)\
             \n  re-requested by the sweep: 2 time(s)\
             \n  last error: no progress since 2026-12-01T09:43:00Z (17m 0s); re-requested, attempt 2 of 3\
             \n  run `plinth module retry hr` to request it again now"
        );
        let installed = json!({"module": "hr", "status": "installed", "steps": []});
        assert_eq!(progress(&installed, now), "");
        let moving = json!({"module": "hr", "status": "running", "updated_at": "2026-12-01T10:17:00Z",
            "steps": [{"step": "deploy", "status": "pending"}]});
        assert_eq!(
            progress(&moving, now),
            "\n  at step: deploy\n  last progress: 2026-12-01T10:17:00Z (3s ago)"
        );
    }

    /// Finding 11 of "The first hour": an install failure printed the undo lines before the
    /// failure, and the error twice (its step line, then the error). Now: the failure once,
    /// then what was undone, newest first.
    #[test]
    fn a_failed_install_says_the_failure_once_then_what_was_undone() {
        let installation = json!({"module": "hr", "operation": "install", "version": "1.0.0",
        "status": "failed", "failure": {"step": "health_check", "reason": "no answer"},
        "steps": [
            {"step": "validate", "status": "undone"},
            {"step": "deploy", "status": "undone", "detail": "stopped"},
            {"step": "health_check", "status": "failed", "detail": "no answer"},
            {"step": "register_routes", "status": "pending"}
        ]});
        let (mut shown, mut out) = (BTreeSet::new(), Vec::new());
        show_progress(&installation, &mut shown, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "",
            "failed and undone steps wait"
        );
        let Failure::Failed(message) =
            finish(Output::Human, &installation, &mut Vec::new()).unwrap_err()
        else {
            panic!("a failure");
        };
        assert_eq!(
            message,
            "install of hr 1.0.0 failed at step health_check: no answer\
             \n  undone   deploy: stopped\
             \n  undone   validate"
        );
        assert_eq!(message.matches("no answer").count(), 1);
    }

    #[test]
    fn a_failed_operation_names_its_step_and_reason() {
        let installation = json!({"module": "hr", "operation": "install", "version": "1.0.0", "status": "failed",
            "failure": {"step": "pre_install", "reason": "no licence"}});
        let failure = finish(Output::Human, &installation, &mut Vec::new()).unwrap_err();
        assert_eq!(
            failure,
            Failure::Failed("install of hr 1.0.0 failed at step pre_install: no licence".into())
        );
    }
}
