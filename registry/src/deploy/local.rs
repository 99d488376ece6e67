//! One machine's deployer: an external URL as given, or the manifest's `dev_command` run as
//! a child process (`sh -c`) on a free port, with its output in `{log_dir}/{module}.log`. The
//! command runs in the installation's `dev_dir` (the module's folder) when it has one, else in
//! the deployer's working folder.
//!
//! Each backend leads a process group of its own, and is stopped as a group: a `dev_command`
//! such as `cargo run` or `npm start` runs the server as a grandchild, which killing the shell
//! alone would leave running.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use plinth_module_sdk::Manifest;
use serde_json::json;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use super::{DeployError, DeploySpec, Deployer, Deployment, TableProvisioner};

/// How long a started backend has by default to answer its health check.
pub const START_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug)]
struct Running {
    version: String,
    deployment: Deployment,
    child: Child,
    /// What started it, to start it again at the same address ([`ProcessDeployer::while_stopped`]).
    spec: DeploySpec,
    command: String,
    port: u16,
}

#[derive(Debug)]
pub struct ProcessDeployer {
    log_dir: PathBuf,
    working_dir: PathBuf,
    running: Mutex<HashMap<String, Running>>,
    client: reqwest::Client,
    start_timeout: Duration,
    /// `PLINTH_TABLES_DIR` of every backend: where the SDK keeps the module's tables.
    tables_dir: Option<PathBuf>,
}

impl ProcessDeployer {
    /// Backends run in `working_dir`; their output goes to `log_dir`.
    pub fn new(working_dir: impl Into<PathBuf>, log_dir: impl Into<PathBuf>) -> Self {
        Self {
            log_dir: log_dir.into(),
            working_dir: working_dir.into(),
            running: Mutex::new(HashMap::new()),
            client: reqwest::Client::new(),
            start_timeout: START_TIMEOUT,
            tables_dir: None,
        }
    }

    /// Tells every backend it starts to keep its declared tables under `dir`
    /// (`PLINTH_TABLES_DIR`: the SDK's embedded file `{dir}/{module}.redb`), so that they
    /// outlive the process and a restart of the platform.
    pub fn with_tables_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.tables_dir = Some(dir.into());
        self
    }

    /// Gives started backends longer to become healthy (a first `cargo run` compiles).
    pub fn with_start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Stops every backend this deployer started.
    pub async fn stop_all(&self) {
        let mut running = self.running.lock().await;
        for (_, mut process) in running.drain() {
            stop(&mut process.child).await;
        }
    }

    /// Runs `work` while the backend of `module`'s first installation is stopped — the only
    /// process that holds its tables file — then starts it again at the same address (its
    /// instances and the gateway's routes stay right). `None` when no backend of `module` was
    /// started here (an external endpoint): nothing was run. A backend that does not start
    /// again is logged; the saga's restore or `plinth module retry` brings it back.
    ///
    /// # Errors
    /// When `work` panics.
    pub async fn while_stopped<T: Send + 'static>(
        &self,
        module: &str,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<Option<T>, DeployError> {
        let mut running = self.running.lock().await;
        let Some(mut process) = running.remove(module) else {
            return Ok(None);
        };
        tracing::info!(
            module,
            "stopping the backend for a moment: its tables are read"
        );
        stop(&mut process.child).await;
        let done = tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| DeployError(format!("reading the tables of {module}: {e}")));
        match self
            .start_on(&process.spec, &process.command, process.port)
            .await
        {
            Ok(started) => {
                running.insert(module.to_owned(), started);
            }
            Err(e) => {
                tracing::error!(module, error = %e, "the backend did not start again after its tables were read");
            }
        }
        done.map(Some)
    }

    /// Whether this deployer runs the first installation's backend of `module`.
    pub async fn runs(&self, module: &str) -> bool {
        self.running.lock().await.contains_key(module)
    }

    async fn start(&self, spec: &DeploySpec, command: &str) -> Result<Running, DeployError> {
        self.start_on(spec, command, free_port()?).await
    }

    async fn start_on(
        &self,
        spec: &DeploySpec,
        command: &str,
        port: u16,
    ) -> Result<Running, DeployError> {
        let manifest = &spec.manifest;
        let endpoint = format!("http://127.0.0.1:{port}");
        let health_url = format!("{endpoint}{}", health_path(manifest));
        std::fs::create_dir_all(&self.log_dir)
            .map_err(|e| DeployError(format!("cannot create {}: {e}", self.log_dir.display())))?;
        let log_path = self.log_dir.join(format!("{}.log", running_name(spec)));
        let log = std::fs::File::create(&log_path)
            .map_err(|e| DeployError(format!("cannot write {}: {e}", log_path.display())))?;
        let err_log = log
            .try_clone()
            .map_err(|e| DeployError(format!("cannot write {}: {e}", log_path.display())))?;
        let folder = spec.dev_dir.as_ref().unwrap_or(&self.working_dir);
        if !folder.is_dir() {
            return Err(DeployError(format!(
                "cannot run `{command}` in {}: no such folder",
                folder.display()
            )));
        }
        let mut command_line = Command::new("sh");
        if let Some(dir) = &self.tables_dir {
            // The embedded file is one process's at a time: a version alongside keeps its
            // tables in a folder of its own (cli.md, "Versions side by side on one machine").
            let dir = if spec.alongside {
                dir.join(running_name(spec))
            } else {
                dir.clone()
            };
            command_line.env(plinth_module_sdk::data::TABLES_DIR_VARIABLE, dir);
        }
        let mut child = command_line
            .arg("-c")
            .arg(command)
            .current_dir(folder)
            .envs(&spec.env)
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                DeployError(format!(
                    "cannot run `{command}` in {}: {e}",
                    folder.display()
                ))
            })?;
        if let Err(e) = self.wait_healthy(&mut child, &health_url).await {
            stop(&mut child).await;
            let tail = log_tail(&log_path);
            return Err(DeployError(format!(
                "{e}; last output ({}):\n{tail}",
                log_path.display()
            )));
        }
        let deployment = Deployment {
            endpoint,
            health_url,
            handle: json!({"pid": child.id(), "log": log_path}),
            addresses: Vec::new(),
        };
        Ok(Running {
            version: manifest.version.to_string(),
            deployment,
            child,
            spec: spec.clone(),
            command: command.to_owned(),
            port,
        })
    }

    async fn wait_healthy(&self, child: &mut Child, url: &str) -> Result<(), DeployError> {
        let deadline = tokio::time::Instant::now() + self.start_timeout;
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(DeployError(format!(
                    "the backend exited ({status}) before it was healthy"
                )));
            }
            let answer = self
                .client
                .get(url)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(DeployError(format!(
            "the backend did not answer {url} within {} s",
            self.start_timeout.as_secs()
        )))
    }
}

/// Kills the backend's process group (it leads one: its pid is the group's id), then the
/// child itself, which also reaps it.
async fn stop(child: &mut Child) {
    if let Some(group) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
    let _ = child.kill().await;
}

/// The process's name among the running ones (and its log file's): the module, or
/// `{module}@{version}` for a version alongside.
fn running_name(spec: &DeploySpec) -> String {
    if spec.alongside {
        format!("{}@{}", spec.manifest.name, spec.manifest.version)
    } else {
        spec.manifest.name.to_string()
    }
}

fn health_path(manifest: &Manifest) -> String {
    manifest
        .backend
        .health_check
        .clone()
        .unwrap_or_else(|| "/health".into())
}

fn free_port() -> Result<u16, DeployError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| DeployError(format!("no free port: {e}")))
}

fn log_tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

#[async_trait]
impl Deployer for ProcessDeployer {
    async fn deploy(&self, spec: &DeploySpec) -> Result<Deployment, DeployError> {
        let manifest = &spec.manifest;
        if let Some(endpoint) = &spec.endpoint {
            let endpoint = endpoint.trim_end_matches('/').to_owned();
            return Ok(Deployment {
                health_url: format!("{endpoint}{}", health_path(manifest)),
                endpoint,
                handle: json!({"external": true}),
                addresses: Vec::new(),
            });
        }
        let command = manifest.backend.dev_command.as_deref().ok_or_else(|| {
            DeployError(format!(
                "{} has no backend.dev_command to start it with; install it with an \
                 \"endpoint\" of a backend that is already running",
                manifest.name
            ))
        })?;
        let mut running = self.running.lock().await;
        let name = running_name(spec);
        if let Some(current) = running.get_mut(&name) {
            let alive = matches!(current.child.try_wait(), Ok(None));
            if alive && current.version == manifest.version.to_string() {
                return Ok(current.deployment.clone());
            }
        }
        // A module with tables holds its file open (one process at a time may): the previous
        // version stops before the next starts, a moment without a backend rather than a new
        // one that cannot open its tables.
        let holds_tables = self.tables_dir.is_some()
            && !spec.alongside
            && manifest
                .database
                .as_ref()
                .is_some_and(|database| !database.tables.is_empty());
        if holds_tables && let Some(mut previous) = running.remove(&name) {
            stop(&mut previous.child).await;
        }
        let started = self.start(spec, command).await?;
        let deployment = started.deployment.clone();
        if let Some(mut previous) = running.insert(name, started) {
            stop(&mut previous.child).await;
        }
        Ok(deployment)
    }

    async fn undeploy(
        &self,
        manifest: &Manifest,
        deployment: &Deployment,
    ) -> Result<(), DeployError> {
        let mut running = self.running.lock().await;
        // The first installation's process or a version's alongside: the one at this endpoint.
        let name = running
            .iter()
            .find(|(name, r)| {
                r.deployment.endpoint == deployment.endpoint
                    && (name.as_str() == manifest.name.as_str()
                        || name.starts_with(&format!("{}@", manifest.name)))
            })
            .map(|(name, _)| name.clone());
        if let Some(name) = name
            && let Some(mut process) = running.remove(&name)
        {
            stop(&mut process.child).await;
        }
        Ok(())
    }
}

/// One machine's module tables: the SDK's embedded file per module under the folder
/// backends get as `PLINTH_TABLES_DIR` (see [`ProcessDeployer::with_tables_dir`]). The module
/// creates its file when it starts; an uninstall that drops the module's data deletes it
/// (after the undeploy has stopped the process holding it).
///
/// A running backend holds its file (redb: one process at a time). An export, a count or a
/// tenant's deletion reads it by stopping that backend for the moment it takes
/// ([`ProcessDeployer::while_stopped`]) when the platform started it
/// ([`EmbeddedTableFiles::with_backends`]); otherwise it is refused, saying so.
#[derive(Debug, Clone)]
pub struct EmbeddedTableFiles {
    dir: PathBuf,
    backends: Option<Arc<ProcessDeployer>>,
}

impl EmbeddedTableFiles {
    /// Module files in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            backends: None,
        }
    }

    /// Reads a file a backend of `deployer` holds by stopping that backend meanwhile.
    #[must_use]
    pub fn with_backends(mut self, deployer: Arc<ProcessDeployer>) -> Self {
        self.backends = Some(deployer);
        self
    }
}

/// Opens a module's file; `Ok(None)` when there is none.
fn open_file(file: &Path) -> Result<Option<redb::Database>, redb::DatabaseError> {
    if !file.exists() {
        return Ok(None);
    }
    redb::Database::open(file).map(Some)
}

impl EmbeddedTableFiles {
    /// Runs `work` on the module's file, opened by this process; `Ok(None)` when the module
    /// has no file yet (it never wrote a row). A file its running backend holds is refused
    /// with a message saying so: redb lets one process at a time open it (docs/operations.md,
    /// "Export and retention").
    async fn with_file<T: Send + 'static>(
        &self,
        manifest: &Manifest,
        work: impl FnOnce(&redb::Database) -> Result<T, redb::Error> + Send + 'static,
    ) -> Result<Option<T>, DeployError> {
        let file = plinth_module_sdk::data::embedded_file(&self.dir, &manifest.name);
        let module = manifest.name.to_string();
        let reading =
            |e: &dyn std::fmt::Display| DeployError(format!("reading {}: {e}", file.display()));
        let path = file.clone();
        let opened = tokio::task::spawn_blocking(move || open_file(&path))
            .await
            .map_err(|e| reading(&e))?;
        let db = match opened {
            Ok(None) => return Ok(None),
            Ok(Some(db)) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                let held = DeployError(format!(
                    "the tables of {module} ({}) are held open by its running backend, which \
                     this platform did not start; stop it, or export during the uninstall \
                     (after its undeploy step)",
                    file.display()
                ));
                let path = file.clone();
                let read = move || match open_released(&path) {
                    Ok(Some(db)) => work(&db).map(Some),
                    Ok(None) => Ok(None),
                    Err(e) => Err(redb::Error::from(e)),
                };
                let done = match &self.backends {
                    Some(backends) if backends.runs(&module).await => {
                        backends.while_stopped(&module, read).await?
                    }
                    // A backend just stopped (an uninstall's undeploy) lets go within moments.
                    _ => Some(
                        tokio::task::spawn_blocking(read)
                            .await
                            .map_err(|e| reading(&e))?,
                    ),
                };
                return match done {
                    Some(Err(redb::Error::DatabaseAlreadyOpen)) | None => Err(held),
                    Some(result) => result.map_err(|e| reading(&e)),
                };
            }
            Err(e) => return Err(reading(&e)),
        };
        tokio::task::spawn_blocking(move || work(&db).map(Some))
            .await
            .map_err(|e| reading(&e))?
            .map_err(|e| reading(&e))
    }
}

/// How long a stopped backend's processes may take to let go of its file: the group is
/// killed at once, but a grandchild (`cargo run`'s server) holds the lock until it is gone.
const RELEASE_WITHIN: Duration = Duration::from_secs(10);

/// [`open_file`], waiting for a stopped backend's lock to go.
fn open_released(file: &Path) -> Result<Option<redb::Database>, redb::DatabaseError> {
    let deadline = std::time::Instant::now() + RELEASE_WITHIN;
    loop {
        match open_file(file) {
            Err(redb::DatabaseError::DatabaseAlreadyOpen)
                if std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// The key ranges of a tenant's rows in the SDK's embedded layout (`partition NUL sort`):
/// `{tenant}\0…` and `{tenant}#…`, in that (byte) order.
fn tenant_ranges(tenant: &str) -> [(Vec<u8>, Vec<u8>); 2] {
    let with = |tail: &[u8]| {
        let mut bytes = tenant.as_bytes().to_vec();
        bytes.extend_from_slice(tail);
        bytes
    };
    [(with(&[0]), with(&[1])), (with(b"#"), with(&[b'#' + 1]))]
}

fn rows_of(table: &str) -> redb::TableDefinition<'_, &'static [u8], &'static [u8]> {
    redb::TableDefinition::new(table)
}

type Rows = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

fn open_rows(txn: &redb::ReadTransaction, table: &str) -> Result<Option<Rows>, redb::Error> {
    match txn.open_table(rows_of(table)) {
        Ok(rows) => Ok(Some(rows)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[async_trait]
impl TableProvisioner for EmbeddedTableFiles {
    async fn create_tables(&self, _manifest: &Manifest) -> Result<Vec<String>, DeployError> {
        Ok(Vec::new())
    }

    async fn tenant_rows(
        &self,
        manifest: &Manifest,
        table: &str,
        tenant: &super::TenantPartitions,
    ) -> Result<Vec<serde_json::Value>, DeployError> {
        let (name, ranges) = (table.to_owned(), tenant_ranges(&tenant.tenant));
        let rows = self
            .with_file(manifest, move |db| {
                use redb::ReadableDatabase;
                let txn = db.begin_read()?;
                let Some(rows) = open_rows(&txn, &name)? else {
                    return Ok(Vec::new());
                };
                let mut values = Vec::new();
                for (from, to) in &ranges {
                    for entry in rows.range(from.as_slice()..to.as_slice())? {
                        let (_, value) = entry?;
                        values.push(value.value().to_vec());
                    }
                }
                Ok(values)
            })
            .await?
            .unwrap_or_default();
        rows.iter()
            .map(|bytes| {
                serde_json::from_slice(bytes).map_err(|e| {
                    DeployError(format!(
                        "a row of `{table}` of {} is not JSON: {e}",
                        manifest.name
                    ))
                })
            })
            .collect()
    }

    async fn count_rows(
        &self,
        manifest: &Manifest,
        table: &str,
        tenant: Option<&super::TenantPartitions>,
    ) -> Result<u64, DeployError> {
        let name = table.to_owned();
        let ranges = tenant.map(|t| tenant_ranges(&t.tenant));
        let counted = self
            .with_file(manifest, move |db| {
                use redb::{ReadableDatabase, ReadableTableMetadata};
                let txn = db.begin_read()?;
                let Some(rows) = open_rows(&txn, &name)? else {
                    return Ok(0);
                };
                let Some(ranges) = ranges else {
                    return Ok(rows.len()?);
                };
                let mut count = 0;
                for (from, to) in &ranges {
                    count += rows.range(from.as_slice()..to.as_slice())?.count() as u64;
                }
                Ok(count)
            })
            .await?;
        Ok(counted.unwrap_or(0))
    }

    async fn delete_tenant_rows(
        &self,
        manifest: &Manifest,
        table: &str,
        tenant: &super::TenantPartitions,
    ) -> Result<u64, DeployError> {
        let (name, ranges) = (table.to_owned(), tenant_ranges(&tenant.tenant));
        let deleted = self
            .with_file(manifest, move |db| {
                let txn = db.begin_write()?;
                let mut deleted = 0;
                {
                    let mut rows = txn.open_table(rows_of(&name))?;
                    for (from, to) in &ranges {
                        let gone =
                            rows.extract_from_if(from.as_slice()..to.as_slice(), |_, _| true)?;
                        for entry in gone {
                            entry?;
                            deleted += 1;
                        }
                    }
                }
                txn.commit()?;
                Ok(deleted)
            })
            .await?;
        Ok(deleted.unwrap_or(0))
    }

    async fn drop_tables(&self, manifest: &Manifest) -> Result<(), DeployError> {
        let file = plinth_module_sdk::data::embedded_file(&self.dir, &manifest.name);
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DeployError(format!(
                "cannot delete {}, the tables of {}: {e}",
                file.display(),
                manifest.name
            ))),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(name: &str) -> Manifest {
        Manifest::from_json_str(&format!(
            r#"{{"name": "{name}", "display_name": "X", "version": "1.0.0",
                "backend": {{"type": "microservice", "api_prefix": "/api/v1/{name}"}}}}"#
        ))
        .unwrap()
    }

    #[tokio::test]
    async fn dropping_a_modules_data_on_one_machine_deletes_its_tables_file_only() {
        let dir = tempfile::tempdir().unwrap();
        for module in ["financial", "warehouse"] {
            std::fs::write(dir.path().join(format!("{module}.redb")), b"rows").unwrap();
        }
        let files = EmbeddedTableFiles::new(dir.path());
        files.drop_tables(&manifest("financial")).await.unwrap();
        assert!(!dir.path().join("financial.redb").exists());
        assert!(
            dir.path().join("warehouse.redb").exists(),
            "another module's stays"
        );
        files
            .drop_tables(&manifest("financial"))
            .await
            .expect("a file already gone is fine");
    }
}
