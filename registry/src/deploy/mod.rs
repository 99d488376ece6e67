//! The `Deployer` port: run a module version and give back its endpoint; and the module
//! resources an install creates beside it (its tables).
//!
//! | adapter | where |
//! | --- | --- |
//! | `local::ProcessDeployer` | `plinth up`: a child process from the manifest's `dev_command`, or an external URL |
//! | `ecs::EcsDeployer` | AWS: an ECS service from the ECR image, pinned by digest |
//! | `lambda::LambdaDeployer` | AWS: a Lambda function from the image or package |
//! | `backend::BackendDeployer` | AWS: ECS or Lambda by the manifest, or an external endpoint |
//! | `routed::RoutedDeployer` | any deployer, then the module's gateway routes (`routed::ModuleRoutes`) |
//! | `isolated::IsolatedDeployer` | AWS: the ECS / Lambda deployer as the module's own role (`module_role`), its API key in Secrets Manager (`module_secrets`) |
//!
//! `apigateway::ApiGatewayRoutes` publishes a module's routes on the platform's HTTP API;
//! with `alb::VersionListener`, through the module listener, one rule per installed version.
//! `module_secrets::ModuleKeySecrets` is where a rotated module key is written.

#[cfg(feature = "aws")]
pub mod alb;
#[cfg(feature = "aws")]
pub mod apigateway;
pub mod backend;
#[cfg(feature = "aws")]
pub mod dynamodb_tables;
pub mod ecr;
#[cfg(feature = "aws")]
pub mod ecs;
#[cfg(feature = "aws")]
pub mod ecs_scaling;
#[cfg(feature = "aws")]
pub mod ecs_steady;
#[cfg(feature = "aws")]
pub mod isolated;
#[cfg(feature = "aws")]
pub mod lambda;
pub mod local;
#[cfg(feature = "aws")]
pub mod module_role;
pub mod module_secrets;
pub mod routed;

use std::collections::BTreeMap;

use async_trait::async_trait;
use plinth_module_sdk::Manifest;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What to run.
#[derive(Debug, Clone)]
pub struct DeploySpec {
    pub manifest: Manifest,
    /// The ECR image digest recorded for this version when its image was pushed.
    pub image_digest: Option<String>,
    /// A backend that is already running (any language): nothing is started.
    pub endpoint: Option<String>,
    /// One machine: the folder the manifest's `dev_command` runs in (the deployer's own
    /// when none).
    pub dev_dir: Option<std::path::PathBuf>,
    /// Environment for the module's process: `PLINTH_URL`, `PLINTH_MODULE`,
    /// `PLINTH_API_KEY`, `PORT`, and on AWS `PLINTH_EVENT_BUS`, plus the manifest's `env`.
    /// (On AWS, [`isolated::IsolatedDeployer`] replaces `PLINTH_API_KEY` with
    /// `PLINTH_API_KEY_SECRET`, its secret's ARN.)
    pub env: BTreeMap<String, String>,
    /// The IAM role the backend runs as (ECS task role, Lambda execution role), overriding
    /// the deployer's configured one: the module's own role, set by
    /// [`isolated::IsolatedDeployer`].
    pub role_arn: Option<String>,
    /// A version installed alongside the module's installed one (`versions`): its resources
    /// are named apart (`deployed_name`), and deploying it leaves the other version running.
    pub alongside: bool,
}

impl DeploySpec {
    /// The name of this deployment's resources: `plinth-{module}` (a Lambda function, an ECS
    /// service, a log file), or for a version alongside `plinth-{module}-v{major}-{minor}-{patch}`
    /// (dots and a pre-release's or build's other characters as `-`, as resource names allow).
    pub fn deployed_name(&self) -> String {
        deployed_name(
            &self.manifest.name,
            self.alongside
                .then(|| self.manifest.version.to_string())
                .as_deref(),
        )
    }
}

/// `plinth-{module}`, or `plinth-{module}-v{version}` with every character a resource name may
/// not hold as `-` (see [`DeploySpec::deployed_name`]).
pub fn deployed_name(module: &plinth_module_sdk::ModuleName, alongside: Option<&str>) -> String {
    match alongside {
        None => format!("plinth-{module}"),
        Some(version) => {
            let version: String = version
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            format!("plinth-{module}-v{version}")
        }
    }
}

/// A running backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// Base URL the gateway forwards to (the module's paths start with its `api_prefix`).
    pub endpoint: String,
    /// Where the health checker looks.
    pub health_url: String,
    /// What the adapter needs to stop or replace it (ARNs, a process id, …).
    #[serde(default)]
    pub handle: Value,
    /// Where the platform itself reaches the backend's instances, when that is not the
    /// endpoint: each ECS task's `http://{private ip}:{port}` (the endpoint is the Service
    /// Connect name API Gateway uses). Empty: the endpoint is the one instance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
}

impl Deployment {
    /// The instances to register for this deployment: one per address, each with the
    /// deployment's health path; or, without addresses, the deployment itself.
    #[must_use]
    pub fn instances(&self) -> Vec<Deployment> {
        if self.addresses.is_empty() {
            return vec![self.clone()];
        }
        let path = self
            .health_url
            .strip_prefix(&self.endpoint)
            .unwrap_or("/health");
        self.addresses
            .iter()
            .map(|address| Deployment {
                endpoint: address.clone(),
                health_url: format!("{address}{path}"),
                handle: Value::Null,
                addresses: Vec::new(),
            })
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DeployError(pub String);

#[async_trait]
pub trait Deployer: Send + Sync + std::fmt::Debug {
    /// Starts (or finds already started) the backend of `spec`. Idempotent: deploying the same
    /// module version again gives back the same deployment.
    async fn deploy(&self, spec: &DeploySpec) -> Result<Deployment, DeployError>;

    /// Stops a deployment. Stopping one that is gone is fine.
    async fn undeploy(
        &self,
        manifest: &Manifest,
        deployment: &Deployment,
    ) -> Result<(), DeployError>;

    /// Stops the deployment of a version installed alongside (`DeploySpec::alongside`): only
    /// its own backend, never what the module shares with its first installation (its
    /// gateway routes, its role and secret).
    async fn undeploy_alongside(
        &self,
        manifest: &Manifest,
        deployment: &Deployment,
    ) -> Result<(), DeployError> {
        self.undeploy(manifest, deployment).await
    }
}

/// Creates the DynamoDB tables a module declares (`database.type = dynamodb`), prefixed.
#[async_trait]
pub trait TableProvisioner: Send + Sync + std::fmt::Debug {
    /// Creates each missing table; existing ones are left alone. Returns the names created.
    async fn create_tables(&self, manifest: &Manifest) -> Result<Vec<String>, DeployError>;

    /// Drops the module's tables (only when an uninstall asks to drop data).
    async fn drop_tables(&self, manifest: &Manifest) -> Result<(), DeployError>;

    /// A tenant's rows of the declared table `table` (its own partition and its companies'),
    /// each as stored, in key order: partition, then sort key. What an export writes.
    async fn tenant_rows(
        &self,
        manifest: &Manifest,
        table: &str,
        tenant: &TenantPartitions,
    ) -> Result<Vec<Value>, DeployError> {
        let _ = (table, tenant);
        Err(not_readable(manifest))
    }

    /// How many rows `table` holds: a tenant's, or every tenant's (`None`).
    async fn count_rows(
        &self,
        manifest: &Manifest,
        table: &str,
        tenant: Option<&TenantPartitions>,
    ) -> Result<u64, DeployError> {
        let _ = (table, tenant);
        Err(not_readable(manifest))
    }

    /// Deletes a tenant's rows of `table` (its partitions only); returns how many went.
    async fn delete_tenant_rows(
        &self,
        manifest: &Manifest,
        table: &str,
        tenant: &TenantPartitions,
    ) -> Result<u64, DeployError> {
        let _ = (table, tenant);
        Err(not_readable(manifest))
    }
}

fn not_readable(manifest: &Manifest) -> DeployError {
    DeployError(format!(
        "this platform function does not read module tables, so {}'s rows cannot be read here",
        manifest.name
    ))
}

/// The partitions of one tenant's rows in a module's tables (`module-sdk`'s key scheme,
/// docs/data.md): `{tenant}` and `{tenant}#{company}` for each of its companies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantPartitions {
    pub tenant: String,
    /// The tenant's companies (a backend that can read by prefix needs none of them).
    pub companies: Vec<String>,
}

impl TenantPartitions {
    /// `{tenant}`, then `{tenant}#{company}` for each company in name order.
    #[must_use]
    pub fn partitions(&self) -> Vec<String> {
        let mut companies = self.companies.clone();
        companies.sort();
        std::iter::once(self.tenant.clone())
            .chain(
                companies
                    .iter()
                    .map(|c| plinth_module_sdk::data::partition_of(&self.tenant, Some(c))),
            )
            .collect()
    }
}

/// One machine keeps modules' data in the modules' own processes: tables are recorded, not
/// created.
#[derive(Debug, Default)]
pub struct NoTables;

#[async_trait]
impl TableProvisioner for NoTables {
    async fn create_tables(&self, _manifest: &Manifest) -> Result<Vec<String>, DeployError> {
        Ok(Vec::new())
    }

    async fn drop_tables(&self, _manifest: &Manifest) -> Result<(), DeployError> {
        Ok(())
    }

    async fn tenant_rows(
        &self,
        _manifest: &Manifest,
        _table: &str,
        _tenant: &TenantPartitions,
    ) -> Result<Vec<Value>, DeployError> {
        Ok(Vec::new())
    }

    async fn count_rows(
        &self,
        _manifest: &Manifest,
        _table: &str,
        _tenant: Option<&TenantPartitions>,
    ) -> Result<u64, DeployError> {
        Ok(0)
    }

    async fn delete_tenant_rows(
        &self,
        _manifest: &Manifest,
        _table: &str,
        _tenant: &TenantPartitions,
    ) -> Result<u64, DeployError> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(addresses: &[&str]) -> Deployment {
        Deployment {
            endpoint: "http://billing.plinth.internal:9000".into(),
            health_url: "http://billing.plinth.internal:9000/ready".into(),
            handle: serde_json::json!({"service_arn": "arn"}),
            addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    #[test]
    fn each_address_is_an_instance_with_the_deployments_health_path() {
        let instances = deployment(&["http://10.0.1.17:9000", "http://10.0.2.41:9000"]).instances();

        let pairs: Vec<_> = instances
            .iter()
            .map(|i| (i.endpoint.as_str(), i.health_url.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("http://10.0.1.17:9000", "http://10.0.1.17:9000/ready"),
                ("http://10.0.2.41:9000", "http://10.0.2.41:9000/ready"),
            ]
        );
    }

    #[test]
    fn without_addresses_the_endpoint_is_the_instance_and_none_are_written() {
        let deployment = deployment(&[]);

        assert_eq!(deployment.instances(), std::slice::from_ref(&deployment));
        let written = serde_json::to_value(&deployment).unwrap();
        assert!(written.get("addresses").is_none(), "{written}");
        let read: Deployment = serde_json::from_value(written).unwrap();
        assert_eq!(read, deployment);
    }
}
