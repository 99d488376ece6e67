//! The deployer of the platform on AWS: picks the adapter by the manifest's backend type, and
//! the refusal that every function but the installer gets.

use std::sync::Arc;

use async_trait::async_trait;
use plinth_module_sdk::Manifest;
use plinth_module_sdk::manifest::BackendKind;

use super::{DeployError, DeploySpec, Deployer, Deployment, TableProvisioner};

/// Runs a backend where its manifest says: `microservice` on ECS, `lambda` on Lambda, and an
/// already running `endpoint` as it is. A deployer whose configuration is missing fails only
/// the modules that need it, with the variable to set.
#[derive(Debug)]
pub struct BackendDeployer {
    pub ecs: Result<Arc<dyn Deployer>, DeployError>,
    pub lambda: Result<Arc<dyn Deployer>, DeployError>,
}

impl BackendDeployer {
    fn for_manifest(&self, manifest: &Manifest) -> Result<&Arc<dyn Deployer>, DeployError> {
        let chosen = match manifest.backend.kind {
            BackendKind::Microservice => &self.ecs,
            BackendKind::Lambda => &self.lambda,
        };
        chosen.as_ref().map_err(|e| {
            DeployError(format!(
                "cannot run {} ({}): {e}",
                manifest.name, manifest.backend.kind
            ))
        })
    }
}

/// The deployment of a backend that was already running: its handle is null, since nothing
/// was started here.
fn external(spec: &DeploySpec, endpoint: &str) -> Deployment {
    let endpoint = endpoint.trim_end_matches('/').to_owned();
    let health = spec
        .manifest
        .backend
        .health_check
        .as_deref()
        .unwrap_or("/health");
    Deployment {
        health_url: format!("{endpoint}{health}"),
        endpoint,
        handle: serde_json::Value::Null,
        addresses: Vec::new(),
    }
}

#[async_trait]
impl Deployer for BackendDeployer {
    async fn deploy(&self, spec: &DeploySpec) -> Result<Deployment, DeployError> {
        if let Some(endpoint) = &spec.endpoint {
            return Ok(external(spec, endpoint));
        }
        self.for_manifest(&spec.manifest)?.deploy(spec).await
    }

    async fn undeploy(
        &self,
        manifest: &Manifest,
        deployment: &Deployment,
    ) -> Result<(), DeployError> {
        // An external endpoint was never started here: nothing to stop.
        if deployment.handle.is_null() {
            return Ok(());
        }
        self.for_manifest(manifest)?
            .undeploy(manifest, deployment)
            .await
    }
}

/// The deployer, table provisioner and event subscriptions of every function but the
/// installer: only the installer's role may create module resources, so the others refuse
/// plainly.
#[derive(Debug, Default)]
pub struct InstallerOnly;

/// Why [`InstallerOnly`] refuses.
pub const INSTALLER_ONLY: &str = "module resources are created by the installer function only";

fn refused() -> DeployError {
    DeployError(INSTALLER_ONLY.into())
}

#[async_trait]
impl Deployer for InstallerOnly {
    async fn deploy(&self, _spec: &DeploySpec) -> Result<Deployment, DeployError> {
        Err(refused())
    }

    async fn undeploy(
        &self,
        _manifest: &Manifest,
        _deployment: &Deployment,
    ) -> Result<(), DeployError> {
        Err(refused())
    }
}

#[async_trait]
impl TableProvisioner for InstallerOnly {
    async fn create_tables(&self, _manifest: &Manifest) -> Result<Vec<String>, DeployError> {
        Err(refused())
    }

    async fn drop_tables(&self, _manifest: &Manifest) -> Result<(), DeployError> {
        Err(refused())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn spec(kind: &str, endpoint: Option<&str>) -> DeploySpec {
        let manifest = Manifest::from_json_str(
            &serde_json::json!({
                "name": "billing",
                "display_name": "Billing",
                "version": "1.0.0",
                "backend": {"type": kind, "api_prefix": "/api/v1/billing", "image": "billing:1.0.0", "health_check": "/ready"}
            })
            .to_string(),
        )
        .unwrap();
        DeploySpec {
            manifest,
            image_digest: None,
            endpoint: endpoint.map(String::from),
            dev_dir: None,
            env: BTreeMap::new(),
            role_arn: None,
            alongside: false,
        }
    }

    fn unconfigured(variable: &str) -> Result<Arc<dyn Deployer>, DeployError> {
        Err(DeployError(format!("{variable} is not set")))
    }

    #[tokio::test]
    async fn an_external_endpoint_is_used_as_it_is_and_never_stopped() {
        let deployer = BackendDeployer {
            ecs: unconfigured("PLINTH_ECS_CLUSTER"),
            lambda: unconfigured("PLINTH_LAMBDA_ROLE"),
        };
        let spec = spec("microservice", Some("https://billing.example.com/"));
        let deployment = deployer.deploy(&spec).await.unwrap();
        assert_eq!(deployment.endpoint, "https://billing.example.com");
        assert_eq!(deployment.health_url, "https://billing.example.com/ready");
        assert!(deployment.handle.is_null());
        deployer
            .undeploy(&spec.manifest, &deployment)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_missing_configuration_fails_only_the_modules_that_need_it() {
        let deployer = BackendDeployer {
            ecs: unconfigured("PLINTH_ECS_CLUSTER"),
            lambda: Ok(Arc::new(InstallerOnly)),
        };
        let error = deployer
            .deploy(&spec("microservice", None))
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot run billing (microservice): PLINTH_ECS_CLUSTER is not set"
        );
        let error = deployer.deploy(&spec("lambda", None)).await.unwrap_err();
        assert!(
            error.to_string().contains("installer function only"),
            "{error}"
        );
    }
}
