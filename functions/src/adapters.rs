//! The ports a function needs that the registry has no Lambda-shaped adapter for: the install
//! queue as an EventBridge event, one deployer that picks ECS or Lambda by the manifest, and
//! a refusal for functions that must never deploy.

use std::sync::Arc;

use async_trait::async_trait;
use plinth_module_sdk::manifest::BackendKind;
use plinth_module_sdk::{Manifest, ModuleName};
use plinth_registry::deploy::{DeployError, DeploySpec, Deployer, Deployment, TableProvisioner};
use plinth_registry::events::{EventBus, platform_event};
use plinth_registry::install::InstallQueue;
use plinth_registry::{Error, Result};

/// `detail-type` of the event that asks the installer function to run a module's saga.
pub const INSTALL_REQUESTED: &str = "module.install.requested";

/// Hands pending installations to the installer function: publishes
/// `module.install.requested` `{"module": m}`; an EventBridge rule invokes the installer.
#[derive(Debug, Clone)]
pub struct BusInstallQueue(pub Arc<dyn EventBus>);

#[async_trait]
impl InstallQueue for BusInstallQueue {
    async fn enqueue(&self, module: &ModuleName) -> Result<()> {
        let event = platform_event(INSTALL_REQUESTED, serde_json::json!({ "module": module }));
        self.0.publish(vec![event]).await.map_err(|e| {
            Error::Unavailable(format!(
                "cannot queue the installation of {module}: {}",
                e.reason
            ))
        })
    }
}

/// Runs a backend where its manifest says: `microservice` on ECS, `lambda` on Lambda, and an
/// already running `endpoint` as it is. A deployer whose configuration is missing fails only
/// the modules that need it, with the variable to set.
#[derive(Debug)]
pub struct BackendDeployer {
    pub ecs: std::result::Result<Arc<dyn Deployer>, DeployError>,
    pub lambda: std::result::Result<Arc<dyn Deployer>, DeployError>,
}

impl BackendDeployer {
    fn for_manifest(
        &self,
        manifest: &Manifest,
    ) -> std::result::Result<&Arc<dyn Deployer>, DeployError> {
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
    }
}

#[async_trait]
impl Deployer for BackendDeployer {
    async fn deploy(&self, spec: &DeploySpec) -> std::result::Result<Deployment, DeployError> {
        if let Some(endpoint) = &spec.endpoint {
            return Ok(external(spec, endpoint));
        }
        self.for_manifest(&spec.manifest)?.deploy(spec).await
    }

    async fn undeploy(
        &self,
        manifest: &Manifest,
        deployment: &Deployment,
    ) -> std::result::Result<(), DeployError> {
        // An external endpoint was never started here: nothing to stop.
        if deployment.handle.is_null() {
            return Ok(());
        }
        self.for_manifest(manifest)?
            .undeploy(manifest, deployment)
            .await
    }
}

/// The deployer and table provisioner of every function but the installer: only the
/// installer's role may create module resources, so the others refuse plainly.
#[derive(Debug, Default)]
pub struct InstallerOnly;

fn refused() -> DeployError {
    DeployError("module resources are created by the installer function only".into())
}

#[async_trait]
impl Deployer for InstallerOnly {
    async fn deploy(&self, _spec: &DeploySpec) -> std::result::Result<Deployment, DeployError> {
        Err(refused())
    }

    async fn undeploy(
        &self,
        _manifest: &Manifest,
        _deployment: &Deployment,
    ) -> std::result::Result<(), DeployError> {
        Err(refused())
    }
}

#[async_trait]
impl TableProvisioner for InstallerOnly {
    async fn create_tables(
        &self,
        _manifest: &Manifest,
    ) -> std::result::Result<Vec<String>, DeployError> {
        Err(refused())
    }

    async fn drop_tables(&self, _manifest: &Manifest) -> std::result::Result<(), DeployError> {
        Err(refused())
    }
}
