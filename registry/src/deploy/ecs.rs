//! The ECS adapter of the [`Deployer`] port: a module's `microservice` backend runs as the
//! Fargate service `plinth-{module}`, its image pinned by digest.
//!
//! A deploy resolves the manifest's `repository:tag` to its digest in ECR ([`EcrImages`]),
//! registers the task definition `plinth-{module}` (awsvpc, the manifest's `cpu`/`memory`,
//! its `port`, the deploy's environment, a container health check running
//! `health_check_command`, by default the module binary's own `health` subcommand), then
//! creates the service or updates it in place. Every task definition carries the tag
//! `plinth:fingerprint`, a hash of what was registered: deploying the same version with the
//! same settings again registers nothing and updates nothing.
//!
//! A deploy then waits until the service is steady with healthy tasks ([`super::ecs_steady`]),
//! within [`EcsSettings::steady_timeout`]; the deployment's `addresses` are those tasks'
//! private addresses, where the platform reaches them. A deploy that does not get there is
//! undone (a created service deleted, an updated one put back on its previous task
//! definition) and fails naming the service, the counts and why the last task stopped.
//! With `backend.scaling`, the service scales by CPU ([`super::ecs_scaling`]).
//!
//! The service joins the Cloud Map namespace of [`EcsSettings::namespace`] through ECS Service
//! Connect, so other services of the namespace (and API Gateway's VPC link) reach it as
//! `http://{module}.{namespace}:{port}`, the deployment's endpoint.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_ecs::Client;
use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecs::types::{
    ApplicationProtocol, AssignPublicIp, AwsVpcConfiguration, Compatibility, ContainerDefinition,
    DeploymentCircuitBreaker, DeploymentConfiguration, HealthCheck, KeyValuePair, LaunchType,
    LogConfiguration, LogDriver, NetworkConfiguration, NetworkMode, PortMapping, PropagateTags,
    ServiceConnectClientAlias, ServiceConnectConfiguration, ServiceConnectService, Tag,
    TaskDefinitionField, TransportProtocol,
};
use plinth_module_sdk::{Manifest, ModuleName};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::ecr::EcrImages;
use super::ecs_scaling::{AppliedScaling, DEFAULT_MAX_TASKS, ServiceScaling};
use super::ecs_steady::SteadyWait;
use super::{DeployError, DeploySpec, Deployer, Deployment};

/// CPU units when the manifest sets none (a quarter vCPU).
pub const DEFAULT_CPU: u32 = 256;
/// Memory in MiB when the manifest sets none.
pub const DEFAULT_MEMORY: u32 = 512;
/// Port the container listens on when the manifest sets none.
pub const DEFAULT_PORT: u16 = 8080;
/// Health-check path when the manifest declares none (used for the health URL only).
pub const DEFAULT_HEALTH_PATH: &str = "/health";
/// The container health check when the manifest names none: the module binary's own
/// `health` subcommand (the SDK's), for an image whose entrypoint is that binary. No shell,
/// curl or wget needed.
pub const DEFAULT_HEALTH_CHECK_COMMAND: [&str; 3] = ["CMD", "/proc/1/exe", "health"];
/// How long a deploy waits for a steady service when `PLINTH_ECS_STEADY_TIMEOUT_SECONDS` is
/// unset: well inside the installer function's 900 s.
pub const DEFAULT_STEADY_TIMEOUT: Duration = Duration::from_secs(600);
/// How often a deploy looks while it waits, when `PLINTH_ECS_POLL_SECONDS` is unset.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Cloud Map namespace services join when `PLINTH_ECS_NAMESPACE` is unset.
pub const DEFAULT_NAMESPACE: &str = "plinth.internal";
/// Name of the container port in the task definition, used by Service Connect.
const PORT_NAME: &str = "http";
/// Tag on each task definition: the hash of what was registered.
const FINGERPRINT_TAG: &str = "plinth:fingerprint";

/// Where and how module services run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsSettings {
    /// Cluster name or ARN (`PLINTH_ECS_CLUSTER`).
    pub cluster: String,
    /// Private subnets of the tasks (`PLINTH_ECS_SUBNETS`, comma-separated).
    pub subnets: Vec<String>,
    /// Security groups of the tasks (`PLINTH_ECS_SECURITY_GROUPS`, comma-separated).
    pub security_groups: Vec<String>,
    /// Role ECS uses to pull the image and write logs (`PLINTH_ECS_EXECUTION_ROLE`).
    pub execution_role_arn: String,
    /// Role the module's code runs as when the deploy names none (`PLINTH_ECS_TASK_ROLE`,
    /// optional: on AWS each module gets its own, see `isolated`; without any, the task has no
    /// role and reaches no AWS API).
    pub task_role_arn: Option<String>,
    /// Cloud Map namespace for Service Connect (`PLINTH_ECS_NAMESPACE`, default
    /// [`DEFAULT_NAMESPACE`]); it must exist in the account.
    pub namespace: String,
    /// CloudWatch log group for the containers' output (`PLINTH_ECS_LOG_GROUP`); none means
    /// no log configuration.
    pub log_group: Option<String>,
    /// Tasks per service without `backend.scaling` (1).
    pub desired_count: i32,
    /// How long a deploy waits for the service to be steady with healthy tasks
    /// (`PLINTH_ECS_STEADY_TIMEOUT_SECONDS`, default [`DEFAULT_STEADY_TIMEOUT`]).
    pub steady_timeout: Duration,
    /// How often it looks meanwhile (`PLINTH_ECS_POLL_SECONDS`, default
    /// [`DEFAULT_POLL_INTERVAL`]).
    pub poll_interval: Duration,
    /// Most tasks a module may scale to, whatever its manifest asks (`PLINTH_ECS_MAX_TASKS`,
    /// default [`DEFAULT_MAX_TASKS`]).
    pub max_tasks: u32,
}

impl EcsSettings {
    /// Reads the configuration from `PLINTH_ECS_*` variables.
    ///
    /// # Errors
    /// A [`DeployError`] naming the first required variable that is unset or empty.
    pub fn from_env() -> Result<Self, DeployError> {
        let optional = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let required = |name: &str, what: &str| {
            optional(name).ok_or_else(|| DeployError(format!("{name} is not set: {what}")))
        };
        let list = |name: &str, what: &str| -> Result<Vec<String>, DeployError> {
            let value = required(name, what)?;
            Ok(value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect())
        };
        Ok(Self {
            cluster: required("PLINTH_ECS_CLUSTER", "the ECS cluster modules run in")?,
            subnets: list("PLINTH_ECS_SUBNETS", "the subnets of module tasks")?,
            security_groups: list(
                "PLINTH_ECS_SECURITY_GROUPS",
                "the security groups of module tasks",
            )?,
            execution_role_arn: required(
                "PLINTH_ECS_EXECUTION_ROLE",
                "the task execution role ARN",
            )?,
            task_role_arn: optional("PLINTH_ECS_TASK_ROLE"),
            namespace: optional("PLINTH_ECS_NAMESPACE").unwrap_or_else(|| DEFAULT_NAMESPACE.into()),
            log_group: optional("PLINTH_ECS_LOG_GROUP"),
            desired_count: 1,
            steady_timeout: seconds("PLINTH_ECS_STEADY_TIMEOUT_SECONDS")?
                .unwrap_or(DEFAULT_STEADY_TIMEOUT),
            poll_interval: seconds("PLINTH_ECS_POLL_SECONDS")?.unwrap_or(DEFAULT_POLL_INTERVAL),
            max_tasks: env_number("PLINTH_ECS_MAX_TASKS")?.unwrap_or(DEFAULT_MAX_TASKS),
        })
    }
}

/// A positive whole number from the variable `name`, if set.
pub(super) fn env_number(name: &str) -> Result<Option<u32>, DeployError> {
    let Some(value) = std::env::var(name).ok().filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    match value.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(DeployError(format!(
            "{name} must be a positive whole number, found `{value}`"
        ))),
    }
}

fn seconds(name: &str) -> Result<Option<Duration>, DeployError> {
    Ok(env_number(name)?.map(|s| Duration::from_secs(u64::from(s))))
}

/// What a deployment's `handle` holds for ECS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcsHandle {
    /// The cluster the service runs in.
    pub cluster: String,
    /// The service's ARN.
    pub service_arn: String,
    /// The task definition revision this deployment runs.
    pub task_definition_arn: String,
    /// The image, `registry/repository@sha256:…`.
    pub image: String,
    /// The Cloud Map service Service Connect registered the tasks in: what an API Gateway
    /// VPC link integration targets. Unknown until ECS reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_arn: Option<String>,
    /// The autoscaling bounds applied (`backend.scaling`, capped by the platform).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<AppliedScaling>,
}

/// Runs `microservice` modules as ECS services on Fargate.
#[derive(Debug, Clone)]
pub struct EcsDeployer {
    ecs: Client,
    images: EcrImages,
    scaling: ServiceScaling,
    settings: EcsSettings,
    region: String,
}

/// A service as ECS describes it (`ACTIVE` or `DRAINING`; `INACTIVE` ones count as gone).
#[derive(Debug)]
struct LiveService {
    arn: String,
    draining: bool,
    task_definition: String,
    desired_count: i32,
    discovery_arn: Option<String>,
}

/// What a deploy changed on the service, so that it can be taken back.
#[derive(Debug)]
enum Change {
    Nothing,
    Created,
    Updated {
        task_definition: String,
        desired_count: i32,
    },
}

/// Everything the task definition is made of; its hash is the fingerprint.
#[derive(Debug, Serialize)]
struct TaskSpec {
    family: String,
    container: String,
    image: String,
    cpu: u32,
    memory: u32,
    port: u16,
    env: BTreeMap<String, String>,
    health_check_command: Vec<String>,
    execution_role_arn: String,
    task_role_arn: Option<String>,
    log_group: Option<String>,
}

impl TaskSpec {
    fn fingerprint(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        hex(&Sha256::digest(bytes))
    }
}

impl EcsDeployer {
    /// A deployer on the SDK configuration given.
    #[must_use]
    pub fn new(sdk: &SdkConfig, settings: EcsSettings) -> Self {
        Self {
            ecs: Client::new(sdk),
            images: EcrImages::new(sdk),
            scaling: ServiceScaling::new(sdk),
            settings,
            region: sdk
                .region()
                .map_or_else(|| "us-east-1".into(), ToString::to_string),
        }
    }

    /// A deployer configured from the environment (`AWS_*` and `PLINTH_ECS_*`).
    ///
    /// # Errors
    /// When a required `PLINTH_ECS_*` variable is missing.
    pub async fn from_env() -> Result<Self, DeployError> {
        let config = EcsSettings::from_env()?;
        let sdk = crate::aws::config_from_env().await;
        Ok(Self::new(&sdk, config))
    }

    /// The service name (and task definition family) of a module: `plinth-{module}`.
    #[must_use]
    pub fn service_name(module: &ModuleName) -> String {
        format!("plinth-{module}")
    }

    /// The module's address inside the namespace: `http://{module}.{namespace}:{port}`.
    #[must_use]
    pub fn endpoint(&self, manifest: &Manifest) -> String {
        self.endpoint_of(manifest, manifest.name.as_str())
    }

    /// The address of the deployment named `key` (the module, or for a version alongside
    /// `{module}-v{version}`): `http://{key}.{namespace}:{port}`.
    fn endpoint_of(&self, manifest: &Manifest, key: &str) -> String {
        let port = manifest.backend.port.unwrap_or(DEFAULT_PORT);
        format!("http://{key}.{}:{port}", self.settings.namespace)
    }

    fn task_spec(
        &self,
        manifest: &Manifest,
        family: String,
        image: String,
        env: &BTreeMap<String, String>,
    ) -> TaskSpec {
        let backend = &manifest.backend;
        let port = backend.port.unwrap_or(DEFAULT_PORT);
        let mut env = env.clone();
        env.entry("PORT".into()).or_insert_with(|| port.to_string());
        TaskSpec {
            family,
            container: manifest.name.to_string(),
            image,
            cpu: backend.cpu.unwrap_or(DEFAULT_CPU),
            memory: backend.memory.unwrap_or(DEFAULT_MEMORY),
            port,
            env,
            health_check_command: backend
                .health_check_command
                .clone()
                .unwrap_or_else(|| DEFAULT_HEALTH_CHECK_COMMAND.map(String::from).to_vec()),
            execution_role_arn: self.settings.execution_role_arn.clone(),
            task_role_arn: self.settings.task_role_arn.clone(),
            log_group: self.settings.log_group.clone(),
        }
    }

    fn container(&self, spec: &TaskSpec) -> Result<ContainerDefinition, DeployError> {
        let port = PortMapping::builder()
            .name(PORT_NAME)
            .container_port(i32::from(spec.port))
            .protocol(TransportProtocol::Tcp)
            .app_protocol(ApplicationProtocol::Http)
            .build();
        let env = spec
            .env
            .iter()
            .map(|(name, value)| KeyValuePair::builder().name(name).value(value).build());
        // The task's one container reserves the task's memory (ECS's scheduler, and the
        // emulator's, place tasks by it).
        let memory = i32::try_from(spec.memory)
            .map_err(|_| DeployError(format!("memory of `{}` is too large", spec.family)))?;
        let check = HealthCheck::builder()
            .set_command(Some(spec.health_check_command.clone()))
            .interval(30)
            .timeout(5)
            .retries(3)
            .start_period(60)
            .build()
            .map_err(|e| DeployError(format!("health check of `{}`: {e}", spec.family)))?;
        let mut container = ContainerDefinition::builder()
            .name(&spec.container)
            .image(&spec.image)
            .essential(true)
            .memory_reservation(memory)
            .port_mappings(port)
            .set_environment(Some(env.collect()))
            .health_check(check);
        if let Some(group) = &spec.log_group {
            let logs = LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .options("awslogs-group", group)
                .options("awslogs-region", &self.region)
                .options("awslogs-stream-prefix", &spec.container)
                .build()
                .map_err(|e| DeployError(format!("log configuration of `{}`: {e}", spec.family)))?;
            container = container.log_configuration(logs);
        }
        Ok(container.build())
    }

    async fn register(&self, spec: &TaskSpec, manifest: &Manifest) -> Result<String, DeployError> {
        let registered = self
            .ecs
            .register_task_definition()
            .family(&spec.family)
            .requires_compatibilities(Compatibility::Fargate)
            .network_mode(NetworkMode::Awsvpc)
            .cpu(spec.cpu.to_string())
            .memory(spec.memory.to_string())
            .execution_role_arn(&spec.execution_role_arn)
            .set_task_role_arn(spec.task_role_arn.clone())
            .container_definitions(self.container(spec)?)
            .set_tags(Some(tags(manifest, Some(&spec.fingerprint()))))
            .send()
            .await
            .map_err(|e| aws_error(format!("registering task definition `{}`", spec.family), &e))?;
        registered
            .task_definition()
            .and_then(|definition| definition.task_definition_arn())
            .map(String::from)
            .ok_or_else(|| DeployError(format!("ECS registered `{}` without an ARN", spec.family)))
    }

    /// The fingerprint tag of a task definition revision, if it has one.
    async fn fingerprint_of(&self, task_definition: &str) -> Result<Option<String>, DeployError> {
        let described = self
            .ecs
            .describe_task_definition()
            .task_definition(task_definition)
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .map_err(|e| aws_error(format_args!("describing `{task_definition}`"), &e))?;
        Ok(described
            .tags()
            .iter()
            .find(|tag| tag.key() == Some(FINGERPRINT_TAG))
            .and_then(|tag| tag.value())
            .map(String::from))
    }

    async fn live_service(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Option<LiveService>, DeployError> {
        let described = self
            .ecs
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    format_args!("describing service `{service}` in cluster `{cluster}`"),
                    &e,
                )
            })?;
        let live = described
            .services()
            .iter()
            .find(|s| s.status() != Some("INACTIVE"));
        Ok(live.map(|s| LiveService {
            arn: s.service_arn().unwrap_or(service).to_owned(),
            draining: s.status() == Some("DRAINING"),
            task_definition: s.task_definition().unwrap_or_default().to_owned(),
            desired_count: s.desired_count(),
            discovery_arn: discovery_arn(s),
        }))
    }

    fn network(&self) -> Result<NetworkConfiguration, DeployError> {
        let vpc = AwsVpcConfiguration::builder()
            .set_subnets(Some(self.settings.subnets.clone()))
            .set_security_groups(Some(self.settings.security_groups.clone()))
            .assign_public_ip(AssignPublicIp::Disabled)
            .build()
            .map_err(|e| DeployError(format!("network configuration: {e}")))?;
        Ok(NetworkConfiguration::builder()
            .awsvpc_configuration(vpc)
            .build())
    }

    fn service_connect(
        &self,
        manifest: &Manifest,
        key: &str,
    ) -> Result<ServiceConnectConfiguration, DeployError> {
        let port = manifest.backend.port.unwrap_or(DEFAULT_PORT);
        let alias = ServiceConnectClientAlias::builder()
            .port(i32::from(port))
            .dns_name(format!("{key}.{}", self.settings.namespace))
            .build()
            .map_err(|e| DeployError(format!("service connect alias: {e}")))?;
        let service = ServiceConnectService::builder()
            .port_name(PORT_NAME)
            .discovery_name(key)
            .client_aliases(alias)
            .build()
            .map_err(|e| DeployError(format!("service connect service: {e}")))?;
        Ok(ServiceConnectConfiguration::builder()
            .enabled(true)
            .namespace(&self.settings.namespace)
            .services(service)
            .build())
    }

    async fn create_service(
        &self,
        manifest: &Manifest,
        key: &str,
        task_definition: &str,
        desired_count: i32,
    ) -> Result<(String, Option<String>), DeployError> {
        let name = format!("plinth-{key}");
        let breaker = DeploymentCircuitBreaker::builder()
            .enable(true)
            .rollback(true)
            .build();
        let created = self
            .ecs
            .create_service()
            .cluster(&self.settings.cluster)
            .service_name(&name)
            .task_definition(task_definition)
            .desired_count(desired_count)
            .launch_type(LaunchType::Fargate)
            .network_configuration(self.network()?)
            .service_connect_configuration(self.service_connect(manifest, key)?)
            .deployment_configuration(
                DeploymentConfiguration::builder()
                    .deployment_circuit_breaker(breaker)
                    .build(),
            )
            .propagate_tags(PropagateTags::Service)
            .set_tags(Some(tags(manifest, None)))
            .send()
            .await
            .map_err(|e| aws_error(format_args!("creating service `{name}`"), &e))?;
        let service = created
            .service()
            .ok_or_else(|| DeployError(format!("ECS created `{name}` without a service")))?;
        let arn = service
            .service_arn()
            .map(String::from)
            .ok_or_else(|| DeployError(format!("ECS created `{name}` without an ARN")))?;
        Ok((arn, discovery_arn(service)))
    }

    async fn update_service(
        &self,
        manifest: &Manifest,
        key: &str,
        task_definition: &str,
        desired_count: i32,
    ) -> Result<(), DeployError> {
        let name = format!("plinth-{key}");
        self.ecs
            .update_service()
            .cluster(&self.settings.cluster)
            .service(&name)
            .task_definition(task_definition)
            .desired_count(desired_count)
            .network_configuration(self.network()?)
            .service_connect_configuration(self.service_connect(manifest, key)?)
            .send()
            .await
            .map_err(|e| aws_error(format_args!("updating service `{name}`"), &e))?;
        Ok(())
    }

    /// The manifest's autoscaling bounds, capped by [`EcsSettings::max_tasks`] (with a
    /// warning when the cap lowers them).
    fn scaling_of(&self, manifest: &Manifest) -> Option<AppliedScaling> {
        let applied =
            AppliedScaling::new(manifest.backend.scaling.as_ref()?, self.settings.max_tasks);
        if let Some(asked) = applied.capped_from {
            tracing::warn!(module = %manifest.name, asked, cap = self.settings.max_tasks, "backend.scaling.max_tasks is above the platform's cap (PLINTH_ECS_MAX_TASKS): capped");
        }
        Some(applied)
    }

    /// Waits for the service to be steady with healthy tasks, then sets its autoscaling (or
    /// removes autoscaling a previous version had). Gives back the tasks' addresses.
    async fn settle(
        &self,
        service: &str,
        task_definition: &str,
        port: u16,
        scaling: Option<&AppliedScaling>,
    ) -> Result<Vec<String>, DeployError> {
        let cluster = &self.settings.cluster;
        let waiter = SteadyWait {
            ecs: &self.ecs,
            cluster,
            timeout: self.settings.steady_timeout,
            poll: self.settings.poll_interval,
        };
        let ips = waiter.until_steady(service, task_definition).await?;
        match scaling {
            Some(scaling) => self.scaling.apply(cluster, service, scaling).await?,
            None => self.scaling.remove(cluster, service).await?,
        }
        Ok(ips.iter().map(|ip| format!("http://{ip}:{port}")).collect())
    }

    /// Takes back what a deploy that did not settle changed, and says so after `error`: a
    /// service it created is removed, one it updated goes back to its previous task
    /// definition and count; a revision it registered is deregistered.
    async fn undo(
        &self,
        change: Change,
        service: &str,
        new_revision: Option<&str>,
        error: DeployError,
    ) -> DeployError {
        let cluster = &self.settings.cluster;
        let undone = match change {
            Change::Nothing => return error,
            Change::Created => {
                if let Err(e) = self.scaling.remove(cluster, service).await {
                    tracing::warn!(service, error = %e, "undo: autoscaling left registered");
                }
                self.delete_service(cluster, service)
                    .await
                    .map(|()| "the service was removed".to_owned())
            }
            Change::Updated {
                task_definition,
                desired_count,
            } => self
                .ecs
                .update_service()
                .cluster(cluster)
                .service(service)
                .task_definition(&task_definition)
                .desired_count(desired_count)
                .send()
                .await
                .map(|_| format!("the service was put back on `{task_definition}`"))
                .map_err(|e| aws_error(format!("putting service `{service}` back"), &e)),
        };
        let undone = match undone {
            Ok(what) => what,
            Err(e) => return DeployError(format!("{error}; undoing the deploy failed too: {e}")),
        };
        if let Some(revision) = new_revision {
            let deregistered = self
                .ecs
                .deregister_task_definition()
                .task_definition(revision)
                .send()
                .await;
            if let Err(e) = deregistered {
                tracing::warn!(task_definition = %revision, error = %aws_error("deregistering", &e), "undo: task definition left registered");
            }
        }
        DeployError(format!("{error}; {undone}"))
    }

    /// Scales a service to 0 and deletes it; one that is gone (or going) is fine.
    async fn delete_service(&self, cluster: &str, service: &str) -> Result<(), DeployError> {
        let gone = |code: Option<&str>| {
            matches!(
                code,
                Some("ServiceNotFoundException" | "ServiceNotActiveException")
            )
        };
        let scaled = self
            .ecs
            .update_service()
            .cluster(cluster)
            .service(service)
            .desired_count(0)
            .send()
            .await;
        if let Err(e) = scaled {
            if gone(e.code()) {
                return Ok(());
            }
            return Err(aws_error(format!("scaling service `{service}` to 0"), &e));
        }
        match self
            .ecs
            .delete_service()
            .cluster(cluster)
            .service(service)
            .send()
            .await
        {
            Err(e) if !gone(e.code()) => {
                Err(aws_error(format!("deleting service `{service}`"), &e))
            }
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl Deployer for EcsDeployer {
    async fn deploy(&self, spec: &DeploySpec) -> Result<Deployment, DeployError> {
        let manifest = &spec.manifest;
        let image = manifest.backend.image.as_deref().ok_or_else(|| {
            DeployError(format!(
                "module `{}` has no `backend.image` to run on ECS",
                manifest.name
            ))
        })?;
        let pinned = self.images.pin(image, spec.image_digest.as_deref()).await?;
        // A version alongside is a service (and task family, and Service Connect name) of its
        // own: `plinth-{module}-v{version}`.
        let name = spec.deployed_name();
        let key = name.strip_prefix("plinth-").unwrap_or(&name).to_owned();
        let mut task = self.task_spec(manifest, name.clone(), pinned.uri.clone(), &spec.env);
        if let Some(role) = &spec.role_arn {
            task.task_role_arn = Some(role.clone());
        }
        let live = self.live_service(&self.settings.cluster, &name).await?;
        if live.as_ref().is_some_and(|s| s.draining) {
            return Err(DeployError(format!(
                "service `{name}` is still being deleted from cluster `{}`; retry once it is gone",
                self.settings.cluster
            )));
        }
        let current = match &live {
            Some(service) => self.fingerprint_of(&service.task_definition).await?,
            None => None,
        };
        let task_definition = match (&live, current) {
            (Some(service), Some(found)) if found == task.fingerprint() => {
                service.task_definition.clone()
            }
            _ => self.register(&task, manifest).await?,
        };
        let scaling = self.scaling_of(manifest);
        let desired = |current: i32| {
            scaling
                .as_ref()
                .map_or(self.settings.desired_count, |s| s.clamp(current))
        };
        let fresh_revision = live
            .as_ref()
            .is_none_or(|s| s.task_definition != task_definition);
        let (service_arn, discovery_arn, change) = match live {
            None => {
                let (arn, discovery) = self
                    .create_service(manifest, &key, &task_definition, desired(0))
                    .await?;
                (arn, discovery, Change::Created)
            }
            Some(service) => {
                let desired = desired(service.desired_count);
                let unchanged =
                    service.task_definition == task_definition && service.desired_count == desired;
                let change = if unchanged {
                    Change::Nothing
                } else {
                    self.update_service(manifest, &key, &task_definition, desired)
                        .await?;
                    Change::Updated {
                        task_definition: service.task_definition,
                        desired_count: service.desired_count,
                    }
                };
                (service.arn, service.discovery_arn, change)
            }
        };
        let port = manifest.backend.port.unwrap_or(DEFAULT_PORT);
        let settled = self
            .settle(&name, &task_definition, port, scaling.as_ref())
            .await;
        let addresses = match settled {
            Ok(addresses) => addresses,
            Err(error) => {
                let new_revision = fresh_revision.then_some(task_definition.as_str());
                return Err(self.undo(change, &name, new_revision, error).await);
            }
        };
        let endpoint = self.endpoint_of(manifest, &key);
        let health = manifest
            .backend
            .health_check
            .as_deref()
            .unwrap_or(DEFAULT_HEALTH_PATH);
        let handle = EcsHandle {
            cluster: self.settings.cluster.clone(),
            service_arn,
            task_definition_arn: task_definition,
            image: pinned.uri,
            discovery_arn,
            scaling,
        };
        Ok(Deployment {
            health_url: format!("{endpoint}{health}"),
            endpoint,
            handle: json!(handle),
            addresses,
        })
    }

    /// Scales the service to 0 and deletes it. A service that has since been updated to
    /// another task definition (a later deploy of the module) is left running: stopping it
    /// would stop the newer version. Its task definition revision is deregistered.
    async fn undeploy(
        &self,
        manifest: &Manifest,
        deployment: &Deployment,
    ) -> Result<(), DeployError> {
        let handle: Option<EcsHandle> = serde_json::from_value(deployment.handle.clone()).ok();
        let cluster = handle
            .as_ref()
            .map_or(self.settings.cluster.as_str(), |h| h.cluster.as_str());
        // The deployment's own service (a version alongside has one of its own): its ARN ends
        // in its name.
        let name = handle
            .as_ref()
            .and_then(|h| h.service_arn.rsplit('/').next())
            .filter(|name| name.starts_with("plinth-"))
            .map_or_else(|| Self::service_name(&manifest.name), str::to_owned);
        let Some(live) = self.live_service(cluster, &name).await? else {
            return Ok(());
        };
        if let Some(handle) = &handle
            && handle.task_definition_arn != live.task_definition
        {
            tracing::info!(service = %name, running = %live.task_definition, "undeploy: the service runs a later deployment; left running");
            return Ok(());
        }
        self.scaling.remove(cluster, &name).await?;
        self.delete_service(cluster, &live.arn).await?;
        if let Some(handle) = handle {
            let deregistered = self
                .ecs
                .deregister_task_definition()
                .task_definition(&handle.task_definition_arn)
                .send()
                .await;
            if let Err(e) = deregistered {
                tracing::warn!(task_definition = %handle.task_definition_arn, error = %aws_error("deregistering", &e), "undeploy: task definition left registered");
            }
        }
        Ok(())
    }
}

/// The Cloud Map service of the service's Service Connect, as any of its deployments reports
/// it (the discovery name is the module's, so every deployment has the same one).
fn discovery_arn(service: &aws_sdk_ecs::types::Service) -> Option<String> {
    service
        .deployments()
        .iter()
        .flat_map(|deployment| deployment.service_connect_resources())
        .find_map(|resource| resource.discovery_arn())
        .map(String::from)
}

fn tags(manifest: &Manifest, fingerprint: Option<&str>) -> Vec<Tag> {
    let tag = |key: &str, value: &str| Tag::builder().key(key).value(value).build();
    let mut tags = vec![
        tag("plinth:module", manifest.name.as_str()),
        tag("plinth:version", &manifest.version.to_string()),
    ];
    tags.extend(fingerprint.map(|f| tag(FINGERPRINT_TAG, f)));
    tags
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An AWS SDK failure as a [`DeployError`] (see [`crate::aws::describe`]). Shared by the AWS
/// adapters of this folder.
pub(crate) fn aws_error<E, R>(doing: impl Display, error: &SdkError<E, R>) -> DeployError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    DeployError(crate::aws::describe(doing, error))
}
