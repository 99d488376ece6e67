//! The ECS adapter of the [`Deployer`] port: a module's `microservice` backend runs as the
//! Fargate service `plinth-{module}`, its image pinned by digest.
//!
//! A deploy resolves the manifest's `repository:tag` to its digest in ECR ([`EcrImages`]),
//! registers the task definition `plinth-{module}` (awsvpc, the manifest's `cpu`/`memory`,
//! its `port`, the deploy's environment, a container health check on `health_check`), then
//! creates the service or updates it in place. Every task definition carries the tag
//! `plinth:fingerprint`, a hash of what was registered: deploying the same version with the
//! same settings again registers nothing and updates nothing.
//!
//! The service joins the Cloud Map namespace of [`EcsSettings::namespace`] through ECS Service
//! Connect, so other services of the namespace (and API Gateway's VPC link) reach it as
//! `http://{module}.{namespace}:{port}`, the deployment's endpoint.

use std::collections::BTreeMap;
use std::fmt::Display;

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
use super::{DeployError, DeploySpec, Deployer, Deployment};

/// CPU units when the manifest sets none (a quarter vCPU).
pub const DEFAULT_CPU: u32 = 256;
/// Memory in MiB when the manifest sets none.
pub const DEFAULT_MEMORY: u32 = 512;
/// Port the container listens on when the manifest sets none.
pub const DEFAULT_PORT: u16 = 8080;
/// Health-check path when the manifest declares none (used for the health URL only).
pub const DEFAULT_HEALTH_PATH: &str = "/health";
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
    /// Role the module's code runs as (`PLINTH_ECS_TASK_ROLE`).
    pub task_role_arn: String,
    /// Cloud Map namespace for Service Connect (`PLINTH_ECS_NAMESPACE`, default
    /// [`DEFAULT_NAMESPACE`]); it must exist in the account.
    pub namespace: String,
    /// CloudWatch log group for the containers' output (`PLINTH_ECS_LOG_GROUP`); none means
    /// no log configuration.
    pub log_group: Option<String>,
    /// Tasks per service (1).
    pub desired_count: i32,
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
            task_role_arn: required("PLINTH_ECS_TASK_ROLE", "the task role ARN")?,
            namespace: optional("PLINTH_ECS_NAMESPACE").unwrap_or_else(|| DEFAULT_NAMESPACE.into()),
            log_group: optional("PLINTH_ECS_LOG_GROUP"),
            desired_count: 1,
        })
    }
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
}

/// Runs `microservice` modules as ECS services on Fargate.
#[derive(Debug, Clone)]
pub struct EcsDeployer {
    ecs: Client,
    images: EcrImages,
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
    health_check: Option<String>,
    execution_role_arn: String,
    task_role_arn: String,
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
        let port = manifest.backend.port.unwrap_or(DEFAULT_PORT);
        format!(
            "http://{}.{}:{port}",
            manifest.name, self.settings.namespace
        )
    }

    fn task_spec(
        &self,
        manifest: &Manifest,
        image: String,
        env: &BTreeMap<String, String>,
    ) -> TaskSpec {
        let backend = &manifest.backend;
        let port = backend.port.unwrap_or(DEFAULT_PORT);
        let mut env = env.clone();
        env.entry("PORT".into()).or_insert_with(|| port.to_string());
        TaskSpec {
            family: Self::service_name(&manifest.name),
            container: manifest.name.to_string(),
            image,
            cpu: backend.cpu.unwrap_or(DEFAULT_CPU),
            memory: backend.memory.unwrap_or(DEFAULT_MEMORY),
            port,
            env,
            health_check: backend.health_check.clone(),
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
        let mut container = ContainerDefinition::builder()
            .name(&spec.container)
            .image(&spec.image)
            .essential(true)
            .port_mappings(port)
            .set_environment(Some(env.collect()));
        if let Some(path) = &spec.health_check {
            let url = format!("http://localhost:{}{path}", spec.port);
            let check = HealthCheck::builder()
                .command("CMD-SHELL")
                .command(format!(
                    "curl -fsS -o /dev/null {url} || wget -q -O /dev/null {url} || exit 1"
                ))
                .interval(30)
                .timeout(5)
                .retries(3)
                .start_period(60)
                .build()
                .map_err(|e| DeployError(format!("health check of `{}`: {e}", spec.family)))?;
            container = container.health_check(check);
        }
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
            .task_role_arn(&spec.task_role_arn)
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
    ) -> Result<ServiceConnectConfiguration, DeployError> {
        let port = manifest.backend.port.unwrap_or(DEFAULT_PORT);
        let alias = ServiceConnectClientAlias::builder()
            .port(i32::from(port))
            .dns_name(format!("{}.{}", manifest.name, self.settings.namespace))
            .build()
            .map_err(|e| DeployError(format!("service connect alias: {e}")))?;
        let service = ServiceConnectService::builder()
            .port_name(PORT_NAME)
            .discovery_name(manifest.name.as_str())
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
        task_definition: &str,
    ) -> Result<(String, Option<String>), DeployError> {
        let name = Self::service_name(&manifest.name);
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
            .desired_count(self.settings.desired_count)
            .launch_type(LaunchType::Fargate)
            .network_configuration(self.network()?)
            .service_connect_configuration(self.service_connect(manifest)?)
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
        task_definition: &str,
    ) -> Result<(), DeployError> {
        let name = Self::service_name(&manifest.name);
        self.ecs
            .update_service()
            .cluster(&self.settings.cluster)
            .service(&name)
            .task_definition(task_definition)
            .desired_count(self.settings.desired_count)
            .network_configuration(self.network()?)
            .service_connect_configuration(self.service_connect(manifest)?)
            .send()
            .await
            .map_err(|e| aws_error(format_args!("updating service `{name}`"), &e))?;
        Ok(())
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
        let mut task = self.task_spec(manifest, pinned.uri.clone(), &spec.env);
        if let Some(role) = &spec.role_arn {
            task.task_role_arn.clone_from(role);
        }
        let name = Self::service_name(&manifest.name);
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
        let (service_arn, discovery_arn) = match live {
            None => self.create_service(manifest, &task_definition).await?,
            Some(service) => {
                let unchanged = service.task_definition == task_definition
                    && service.desired_count == self.settings.desired_count;
                if !unchanged {
                    self.update_service(manifest, &task_definition).await?;
                }
                (service.arn, service.discovery_arn)
            }
        };
        let endpoint = self.endpoint(manifest);
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
        };
        Ok(Deployment {
            health_url: format!("{endpoint}{health}"),
            endpoint,
            handle: json!(handle),
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
        let name = Self::service_name(&manifest.name);
        let Some(live) = self.live_service(cluster, &name).await? else {
            return Ok(());
        };
        if let Some(handle) = &handle
            && handle.task_definition_arn != live.task_definition
        {
            tracing::info!(service = %name, running = %live.task_definition, "undeploy: the service runs a later deployment; left running");
            return Ok(());
        }
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
