//! Shim `Containers`: **moto runs no container**. Its ECS services start no task either;
//! `EcsScheduler` (registry/tests/support/ecs_cluster.rs) stands in for ECS's scheduler and
//! runs the tasks each service wants. This stands in for the container runtime, and only that:
//! each running task's container becomes a process — the module binary its image stands for
//! (by repository), with the task definition's environment, listening at the task's private
//! address (added to the loopback interface, as the task's network interface), with the task
//! metadata endpoint v4 that ECS gives every container (`ECS_CONTAINER_METADATA_URI_V4`)
//! naming that address. A task that stops, stops its process. The container's own health
//! check is not run (moto reports a task's health as it likes).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_config::SdkConfig;
use axum::Json;
use axum::extract::{Path, State};
use axum::routing::get;
use plinth_registry::deploy::ecs::EcsSettings;
use serde_json::{Value, json};

use crate::ecs_cluster::{EcsScheduler, TaskFate, running_tasks};

/// The tasks' containers, as processes; stopped (and their addresses removed) when dropped.
pub struct Containers {
    _scheduler: EcsScheduler,
    runner: tokio::task::JoinHandle<()>,
    shared: Arc<Shared>,
}

struct Shared {
    /// Task ARN → its running container.
    running: Mutex<BTreeMap<String, Container>>,
    /// Task id → its private address, for the metadata endpoint.
    addresses: Mutex<BTreeMap<String, String>>,
    /// The containers' output, by repository, in the order they started.
    logs: tempfile::TempDir,
    started: Mutex<Vec<(String, PathBuf)>>,
}

struct Container {
    process: std::process::Child,
    address: String,
    repository: String,
    /// `http://{address}:{port}`: where the service's VPC link reaches it.
    endpoint: String,
}

/// What to run for the images of one repository.
pub struct Image {
    pub repository: String,
    pub binary: PathBuf,
}

impl Containers {
    /// Starts ECS's scheduler for `settings`' cluster and the runner of its tasks; `env` is
    /// what every container gets besides its task definition's (the emulator's endpoint and
    /// credentials, which a task's role would give it on AWS).
    pub async fn start(
        sdk: &SdkConfig,
        settings: &EcsSettings,
        images: Vec<Image>,
        env: Vec<(String, String)>,
    ) -> Self {
        let scheduler =
            EcsScheduler::start(sdk, settings, Arc::new(|_: &str| TaskFate::Runs)).await;
        let shared = Arc::new(Shared {
            running: Mutex::new(BTreeMap::new()),
            addresses: Mutex::new(BTreeMap::new()),
            logs: tempfile::tempdir().expect("a folder for the containers' output"),
            started: Mutex::new(Vec::new()),
        });
        let metadata = metadata_endpoint(Arc::clone(&shared)).await;
        let ecs = aws_sdk_ecs::Client::new(sdk);
        let (cluster, runner_shared) = (settings.cluster.clone(), Arc::clone(&shared));
        let runner = tokio::spawn(async move {
            let images: BTreeMap<String, PathBuf> = images
                .into_iter()
                .map(|i| (i.repository, i.binary))
                .collect();
            loop {
                run_tasks(&ecs, &cluster, &images, &env, &metadata, &runner_shared).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self {
            _scheduler: scheduler,
            runner,
            shared,
        }
    }

    /// The output of every container of `repository` started so far.
    pub fn log(&self, repository: &str) -> String {
        let started = self
            .shared
            .started
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        started
            .iter()
            .filter(|(r, _)| r == repository)
            .map(|(_, path)| std::fs::read_to_string(path).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Where a running container of `repository` listens, `http://{address}:{port}`, as API
    /// Gateway's VPC link reaches a task of the service.
    pub fn endpoint_of(&self, repository: &str) -> Option<String> {
        let running = self
            .shared
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        running
            .values()
            .find(|c| c.repository == repository)
            .map(|c| c.endpoint.clone())
    }

    /// How many containers run now.
    pub fn running(&self) -> usize {
        self.shared
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        self.runner.abort();
        let mut running = self
            .shared
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (_, container) in std::mem::take(&mut *running) {
            stop(container);
        }
    }
}

/// One round: stops the containers of tasks no longer running, then starts those of new
/// ones (in that order: a new task listens on the same port as the one it replaces).
async fn run_tasks(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    images: &BTreeMap<String, PathBuf>,
    env: &[(String, String)],
    metadata: &str,
    shared: &Shared,
) {
    let tasks = running_tasks(ecs, cluster).await;
    let live: BTreeSet<&str> = tasks.iter().filter_map(|t| t.task_arn()).collect();
    let gone: Vec<Container> = {
        let mut running = shared
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let arns: Vec<String> = running
            .keys()
            .filter(|arn| !live.contains(arn.as_str()))
            .cloned()
            .collect();
        arns.iter().filter_map(|arn| running.remove(arn)).collect()
    };
    for container in gone {
        stop(container);
    }
    for task in &tasks {
        let (Some(arn), Some(definition)) = (task.task_arn(), task.task_definition_arn()) else {
            continue;
        };
        let known = shared
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(arn);
        if known || task.last_status() != Some("RUNNING") {
            continue;
        }
        let Some(address) = private_address(task) else {
            continue;
        };
        let Ok(described) = ecs
            .describe_task_definition()
            .task_definition(definition)
            .send()
            .await
        else {
            continue;
        };
        let Some(container) = described
            .task_definition()
            .and_then(|d| d.container_definitions().first())
        else {
            continue;
        };
        let image = container.image().unwrap_or_default();
        let port = container
            .port_mappings()
            .first()
            .and_then(|m| m.container_port())
            .unwrap_or(8080);
        let endpoint = format!("http://{address}:{port}");
        let repository = repository_of(image);
        let Some(binary) = images.get(repository) else {
            panic!("the cell runs no binary for the image {image}");
        };
        let task_id = arn.rsplit('/').next().unwrap_or(arn).to_owned();
        shared
            .addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(task_id.clone(), address.clone());
        add_address(&address);
        let log = shared
            .logs
            .path()
            .join(format!("{repository}-{task_id}.log"));
        let output = std::fs::File::create(&log).expect("a container log");
        let mut command = std::process::Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(
                container
                    .environment()
                    .iter()
                    .filter_map(|kv| Some((kv.name()?, kv.value()?))),
            )
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env(
                "ECS_CONTAINER_METADATA_URI_V4",
                format!("{metadata}/{task_id}"),
            )
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("the log again"))
            .stderr(output);
        let process = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        shared
            .started
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((repository.to_owned(), log));
        shared
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                arn.to_owned(),
                Container {
                    process,
                    address,
                    repository: repository.to_owned(),
                    endpoint,
                },
            );
    }
}

/// Stops a container as ECS does (SIGTERM, then SIGKILL after a grace) and removes its
/// address.
fn stop(mut container: Container) {
    if let Ok(pid) = i32::try_from(container.process.id()) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if matches!(container.process.try_wait(), Ok(Some(_))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = container.process.kill();
    let _ = container.process.wait();
    let _ = std::process::Command::new("ip")
        .args([
            "addr",
            "del",
            &format!("{}/32", container.address),
            "dev",
            "lo",
        ])
        .stderr(Stdio::null())
        .status();
}

/// Puts the task's address on the loopback interface, as its network interface.
fn add_address(address: &str) {
    let added = std::process::Command::new("ip")
        .args(["addr", "add", &format!("{address}/32"), "dev", "lo"])
        .output()
        .expect("run `ip addr add` (the cell runs ECS tasks at their private addresses)");
    let stderr = String::from_utf8_lossy(&added.stderr);
    assert!(
        added.status.success() || stderr.contains("File exists"),
        "cannot give the task its address {address} on lo: {stderr} (the cell needs \
         CAP_NET_ADMIN to run ECS tasks)"
    );
}

fn private_address(task: &aws_sdk_ecs::types::Task) -> Option<String> {
    task.attachments()
        .iter()
        .flat_map(|a| a.details())
        .find(|d| d.name() == Some("privateIPv4Address"))
        .and_then(|d| d.value())
        .map(str::to_owned)
}

/// `123456789012.dkr.ecr.us-east-1.amazonaws.com/plinth-warehouse@sha256:…` → `plinth-warehouse`.
fn repository_of(image: &str) -> &str {
    let name = image.split('@').next().unwrap_or(image);
    let name = name.rsplit('/').next().unwrap_or(name);
    name.split(':').next().unwrap_or(name)
}

/// The task metadata endpoint v4, `{url}/{task id}/task`, naming the task's address.
async fn metadata_endpoint(shared: Arc<Shared>) -> String {
    async fn task(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Json<Value> {
        let address = shared
            .addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
            .unwrap_or_default();
        Json(
            json!({"Containers": [{"Networks": [{"NetworkMode": "awsvpc", "IPv4Addresses": [address]}]}]}),
        )
    }
    let app = axum::Router::new()
        .route("/{id}/task", get(task))
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port for the task metadata endpoint");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}
