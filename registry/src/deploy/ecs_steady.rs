//! When an ECS deploy may let the install go on: the service is steady and each of its tasks
//! runs the deployed task definition, healthy, at a private address.
//!
//! [`assess`] is the rule, a pure function of what `DescribeServices` and `DescribeTasks` say
//! (the views below read both the SDK's types and the APIs' JSON, so the rule is tested on
//! recorded answers). The deployer polls it until [`Progress::Steady`] or a deadline.
//!
//! Steady is what AWS's own `services-stable` waiter checks — one deployment left (the old
//! one drained) and `runningCount == desiredCount` — plus, since Plinth reaches each task
//! directly: at least `desiredCount` tasks `RUNNING` the deployed task definition, each
//! `HEALTHY` when the container has a health check, each with a private IPv4 address. A
//! deployment whose rollout `FAILED` (the circuit breaker), or a service that no longer runs
//! the deployed task definition (rolled back, or replaced by a later deploy), fails at once.
//! A rollout still `IN_PROGRESS` is not waited out: the checks above already say the new
//! tasks serve. The deployer takes the service as steady when two looks a poll apart find
//! it so with the same tasks.

use std::time::{Duration, Instant};

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::DesiredStatus;
use serde::Deserialize;

use super::DeployError;
use super::ecs::aws_error;

/// A service as `DescribeServices` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceState {
    pub service_name: String,
    /// `ACTIVE`, `DRAINING` or `INACTIVE`.
    pub status: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub pending_count: i32,
    /// The task definition of the service's primary deployment.
    pub task_definition: String,
    pub deployments: Vec<DeploymentState>,
}

/// One of a service's deployments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeploymentState {
    /// `PRIMARY`, `ACTIVE` (being replaced) or `INACTIVE`.
    pub status: String,
    pub task_definition: String,
    pub desired_count: i32,
    pub running_count: i32,
    /// `IN_PROGRESS`, `COMPLETED` or `FAILED`; only reported with a circuit breaker.
    pub rollout_state: Option<String>,
    pub rollout_state_reason: Option<String>,
}

/// A task as `DescribeTasks` reports it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskState {
    pub task_arn: String,
    pub task_definition_arn: String,
    /// `service:{name}` for a service's tasks.
    pub group: Option<String>,
    pub last_status: String,
    pub desired_status: String,
    /// `HEALTHY`, `UNHEALTHY` or `UNKNOWN`: the essential containers' health together.
    pub health_status: Option<String>,
    pub stopped_reason: Option<String>,
    /// Seconds since the epoch.
    pub stopped_at: Option<f64>,
    pub attachments: Vec<Attachment>,
    pub containers: Vec<ContainerState>,
}

/// A task's attachment: for `awsvpc`, its elastic network interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Attachment {
    #[serde(rename = "type")]
    pub kind: String,
    pub details: Vec<Detail>,
}

/// A name and value of an attachment's details.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Detail {
    pub name: String,
    pub value: String,
}

/// A container of a task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerState {
    pub health_status: Option<String>,
    pub network_interfaces: Vec<NetworkInterface>,
}

/// A container's network interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NetworkInterface {
    pub private_ipv4_address: Option<String>,
}

impl TaskState {
    /// The task's private IPv4 address: its network interface attachment's, else a
    /// container's.
    #[must_use]
    pub fn private_ip(&self) -> Option<&str> {
        let attached = self
            .attachments
            .iter()
            .filter(|a| a.kind == "ElasticNetworkInterface")
            .flat_map(|a| &a.details)
            .find(|d| d.name == "privateIPv4Address" && !d.value.is_empty())
            .map(|d| d.value.as_str());
        attached.or_else(|| {
            self.containers
                .iter()
                .flat_map(|c| &c.network_interfaces)
                .find_map(|n| n.private_ipv4_address.as_deref())
                .filter(|ip| !ip.is_empty())
        })
    }

    /// `HEALTHY`, `UNHEALTHY` or `UNKNOWN`. ECS reports it on the task; when it does not
    /// (an emulator), every container must say `HEALTHY`.
    #[must_use]
    pub fn health(&self) -> &str {
        if let Some(health) = self.health_status.as_deref() {
            return health;
        }
        let containers = &self.containers;
        let healthy = !containers.is_empty()
            && containers
                .iter()
                .all(|c| c.health_status.as_deref() == Some("HEALTHY"));
        if healthy { "HEALTHY" } else { "UNKNOWN" }
    }

    fn is_running(&self) -> bool {
        self.last_status == "RUNNING" && self.desired_status == "RUNNING"
    }
}

/// Where a deploy stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Steady: the private IPv4 addresses of the tasks, sorted.
    Steady(Vec<String>),
    /// Not yet, and why (the counts).
    Waiting(String),
    /// It will not get there: why.
    Failed(String),
}

/// Where the deploy of `task_definition` onto `service` stands, given the service's tasks
/// that ECS wants running (`tasks`); `health_checked` when the container has a health check.
#[must_use]
pub fn assess(
    service: &ServiceState,
    task_definition: &str,
    tasks: &[TaskState],
    health_checked: bool,
) -> Progress {
    let name = &service.service_name;
    if service.status != "ACTIVE" {
        return Progress::Failed(format!("service `{name}` is {}", service.status));
    }
    let ours = service
        .deployments
        .iter()
        .find(|d| d.task_definition == task_definition);
    if let Some(failed) = ours.filter(|d| d.rollout_state.as_deref() == Some("FAILED")) {
        let reason = failed
            .rollout_state_reason
            .as_deref()
            .unwrap_or("no reason given");
        return Progress::Failed(format!(
            "the deployment of service `{name}` failed: {reason}"
        ));
    }
    if service.task_definition != task_definition {
        return Progress::Failed(format!(
            "service `{name}` runs `{}` instead of `{task_definition}` (rolled back, or replaced by a later deploy)",
            service.task_definition
        ));
    }
    let running: Vec<&TaskState> = tasks
        .iter()
        .filter(|t| t.task_definition_arn == task_definition && t.is_running())
        .collect();
    let healthy: Vec<&TaskState> = running
        .iter()
        .copied()
        .filter(|t| !health_checked || t.health() == "HEALTHY")
        .collect();
    let desired = service.desired_count;
    let counts = format!(
        "{} of {desired} task(s) running the new task definition, {} healthy; the service counts {} running, {} pending, {} deployment(s)",
        running.len(),
        healthy.len(),
        service.running_count,
        service.pending_count,
        service.deployments.len()
    );
    let enough = |n: usize| i32::try_from(n).is_ok_and(|n| n >= desired);
    let steady = service.deployments.len() <= 1
        && service.running_count == desired
        && enough(running.len())
        && enough(healthy.len());
    if !steady {
        return Progress::Waiting(counts);
    }
    let mut addresses: Vec<String> = healthy
        .iter()
        .filter_map(|t| t.private_ip().map(String::from))
        .collect();
    addresses.sort();
    addresses.dedup();
    if !enough(addresses.len()) {
        return Progress::Waiting(format!(
            "{counts}; not every task has a private address yet"
        ));
    }
    Progress::Steady(addresses)
}

/// Why the most recently stopped of `stopped` tasks stopped (ECS's `stoppedReason`), with
/// its containers' exit if ECS gave one.
#[must_use]
pub fn last_stopped_reason(stopped: &[TaskState]) -> Option<String> {
    stopped
        .iter()
        .filter(|t| t.stopped_reason.as_deref().is_some_and(|r| !r.is_empty()))
        .max_by(|a, b| {
            let at = |t: &TaskState| t.stopped_at.unwrap_or(0.0);
            at(a).total_cmp(&at(b))
        })
        .and_then(|t| t.stopped_reason.clone())
}

/// Polls ECS until [`assess`] says steady or failed, or the deadline passes.
#[derive(Debug)]
pub(super) struct SteadyWait<'a> {
    pub ecs: &'a Client,
    pub cluster: &'a str,
    pub timeout: Duration,
    pub poll: Duration,
}

impl SteadyWait<'_> {
    /// The private addresses of the service's tasks once it is steady running
    /// `task_definition` (a container health check is always there). Otherwise an error
    /// naming the service, the counts and why its last task stopped.
    pub async fn until_steady(
        &self,
        service: &str,
        task_definition: &str,
    ) -> Result<Vec<String>, DeployError> {
        let started = Instant::now();
        let mut seen = None;
        loop {
            let state = self.service(service).await?;
            let tasks = self.tasks(service, DesiredStatus::Running).await?;
            let why = match assess(&state, task_definition, &tasks, true) {
                // The same tasks steady on two looks a poll apart: not a task that crashed
                // right after it came up.
                Progress::Steady(addresses) if seen.as_ref() == Some(&addresses) => {
                    return Ok(addresses);
                }
                Progress::Steady(addresses) => {
                    seen = Some(addresses);
                    tokio::time::sleep(self.poll).await;
                    continue;
                }
                Progress::Failed(why) => why,
                Progress::Waiting(counts) if started.elapsed() >= self.timeout => format!(
                    "service `{service}` in cluster `{}` was not steady with healthy tasks after {}s: {counts}",
                    self.cluster,
                    self.timeout.as_secs()
                ),
                Progress::Waiting(_) => {
                    seen = None;
                    tokio::time::sleep(self.poll).await;
                    continue;
                }
            };
            let stopped = self.tasks(service, DesiredStatus::Stopped).await;
            let reason = match stopped.as_deref().map(last_stopped_reason) {
                Ok(Some(reason)) => format!("its last task stopped: {reason}"),
                Ok(None) => "no task of it has stopped".to_owned(),
                Err(e) => format!("its stopped tasks could not be read: {e}"),
            };
            return Err(DeployError(format!("{why}; {reason}")));
        }
    }

    async fn service(&self, service: &str) -> Result<ServiceState, DeployError> {
        let described = self
            .ecs
            .describe_services()
            .cluster(self.cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| aws_error(format_args!("describing service `{service}`"), &e))?;
        let found = described.services().first().map(ServiceState::from);
        Ok(found.unwrap_or_else(|| ServiceState {
            service_name: service.to_owned(),
            status: "gone".to_owned(),
            ..ServiceState::default()
        }))
    }

    /// The service's tasks ECS wants in `status`. (Tasks of other groups are left out: an
    /// emulator may not filter by service.)
    async fn tasks(
        &self,
        service: &str,
        status: DesiredStatus,
    ) -> Result<Vec<TaskState>, DeployError> {
        let listing = |e| aws_error(format_args!("listing the tasks of service `{service}`"), &e);
        let mut arns = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .ecs
                .list_tasks()
                .cluster(self.cluster)
                .service_name(service)
                .desired_status(status.clone())
                .set_next_token(token)
                .send()
                .await
                .map_err(listing)?;
            arns.extend(page.task_arns().iter().cloned());
            token = page.next_token().map(String::from);
            if token.is_none() {
                break;
            }
        }
        let group = format!("service:{service}");
        let mut tasks = Vec::new();
        // DescribeTasks takes at most 100 tasks.
        for chunk in arns.chunks(100) {
            let described = self
                .ecs
                .describe_tasks()
                .cluster(self.cluster)
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        format_args!("describing the tasks of service `{service}`"),
                        &e,
                    )
                })?;
            let of_service = described
                .tasks()
                .iter()
                .map(TaskState::from)
                .filter(|t| t.group.as_deref().is_none_or(|g| g == group));
            tasks.extend(of_service);
        }
        Ok(tasks)
    }
}

/// The views of the SDK's types.
impl From<&aws_sdk_ecs::types::Service> for ServiceState {
    fn from(s: &aws_sdk_ecs::types::Service) -> Self {
        let text = |v: Option<&str>| v.unwrap_or_default().to_owned();
        Self {
            service_name: text(s.service_name()),
            status: text(s.status()),
            desired_count: s.desired_count(),
            running_count: s.running_count(),
            pending_count: s.pending_count(),
            task_definition: text(s.task_definition()),
            deployments: s
                .deployments()
                .iter()
                .map(|d| DeploymentState {
                    status: text(d.status()),
                    task_definition: text(d.task_definition()),
                    desired_count: d.desired_count(),
                    running_count: d.running_count(),
                    rollout_state: d.rollout_state().map(|r| r.as_str().to_owned()),
                    rollout_state_reason: d.rollout_state_reason().map(String::from),
                })
                .collect(),
        }
    }
}

impl From<&aws_sdk_ecs::types::Task> for TaskState {
    fn from(t: &aws_sdk_ecs::types::Task) -> Self {
        let text = |v: Option<&str>| v.unwrap_or_default().to_owned();
        Self {
            task_arn: text(t.task_arn()),
            task_definition_arn: text(t.task_definition_arn()),
            group: t.group().map(String::from),
            last_status: text(t.last_status()),
            desired_status: text(t.desired_status()),
            health_status: t.health_status().map(|h| h.as_str().to_owned()),
            stopped_reason: t.stopped_reason().map(String::from),
            stopped_at: t.stopped_at().map(aws_smithy_types::DateTime::as_secs_f64),
            attachments: t
                .attachments()
                .iter()
                .map(|a| Attachment {
                    kind: text(a.r#type()),
                    details: a
                        .details()
                        .iter()
                        .map(|d| Detail {
                            name: text(d.name()),
                            value: text(d.value()),
                        })
                        .collect(),
                })
                .collect(),
            containers: t
                .containers()
                .iter()
                .map(|c| ContainerState {
                    health_status: c.health_status().map(|h| h.as_str().to_owned()),
                    network_interfaces: c
                        .network_interfaces()
                        .iter()
                        .map(|n| NetworkInterface {
                            private_ipv4_address: n.private_ipv4_address().map(String::from),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}
