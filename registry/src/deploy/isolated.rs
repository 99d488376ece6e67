//! A deployer that gives each module on AWS an identity of its own around the ECS / Lambda
//! deployer: its role ([`super::module_role`]), which its tasks or function run as, and its
//! API key in Secrets Manager ([`super::module_secrets`]), which its environment names by ARN
//! instead of holding the key.
//!
//! Composed with the deployer rather than as saga steps of their own (like
//! [`super::routed::RoutedDeployer`]), so that every saga that deploys (install, upgrade,
//! rollback, restore, and the undo of a failed upgrade) has them in place first. The role and
//! the secret belong to the module, not to one version, yet `undeploy` is also what an older
//! version's deployment would be stopped with: so they go only with the undeploy of the
//! version the role serves (its `plinth:version` tag, set once a deploy of that version
//! succeeded): the uninstall, or the undo of a failed install. An upgrade that fails keeps the
//! tag of the version still serving, and the uninstall that follows removes them with it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use plinth_module_sdk::{Manifest, ModuleName};

use super::module_role::ModuleRoles;
use super::module_secrets::{API_KEY_SECRET_VARIABLE, API_KEY_VARIABLE, SecretsManagerKeys};
use super::{DeployError, DeploySpec, Deployer, Deployment};

/// How often, and how far apart, a deploy is tried again while a role just created is not
/// yet assumable (IAM is eventually consistent: Lambda refuses a new role for some seconds).
const NEW_ROLE_ATTEMPTS: u32 = 10;
const NEW_ROLE_PAUSE: Duration = Duration::from_secs(3);

/// Each module's role and key secret around the backend deployer `inner`.
#[derive(Debug)]
pub struct IsolatedDeployer {
    pub inner: Arc<dyn Deployer>,
    pub roles: ModuleRoles,
    pub keys: SecretsManagerKeys,
}

impl IsolatedDeployer {
    /// Deploys `spec`; while `role_is_new`, tries again as long as the backend service says
    /// it cannot assume the role.
    async fn deploy_as(
        &self,
        spec: &DeploySpec,
        role_is_new: bool,
    ) -> Result<Deployment, DeployError> {
        let mut attempt = 1;
        loop {
            match self.inner.deploy(spec).await {
                Err(DeployError(reason))
                    if role_is_new
                        && attempt < NEW_ROLE_ATTEMPTS
                        && reason.contains("cannot be assumed") =>
                {
                    tracing::info!(module = %spec.manifest.name, %reason, "the new module role is not assumable yet");
                    attempt += 1;
                    tokio::time::sleep(NEW_ROLE_PAUSE).await;
                }
                result => return result,
            }
        }
    }

    /// Removes the module's secret, then its role (so that a role still there means that
    /// something is left to remove).
    async fn remove_identity(&self, module: &ModuleName) -> Result<(), DeployError> {
        self.keys.delete(module).await?;
        self.roles.remove(module).await
    }
}

#[async_trait]
impl Deployer for IsolatedDeployer {
    /// Stores the key of the environment's `PLINTH_API_KEY` in the module's secret and puts
    /// `PLINTH_API_KEY_SECRET` in its place, ensures the module's role (its policy naming that
    /// secret), and deploys as that role. A backend already running elsewhere gets neither.
    async fn deploy(&self, spec: &DeploySpec) -> Result<Deployment, DeployError> {
        if spec.endpoint.is_some() {
            return self.inner.deploy(spec).await;
        }
        let module = &spec.manifest.name;
        let mut spec = spec.clone();
        // A version alongside (`versions`) runs with the module's identity as it is: the secret
        // keeps the first installation's key (a valid key of the module), and the role stays
        // marked as serving the first's version, so undeploying the version alongside keeps both.
        let secret_arn = match spec.env.remove(API_KEY_VARIABLE) {
            Some(key) if !spec.alongside => Some(self.keys.store(module, &key).await?),
            _ => self.keys.arn(module).await?,
        };
        if let Some(arn) = &secret_arn {
            spec.env.insert(API_KEY_SECRET_VARIABLE.into(), arn.clone());
        }
        let role = self
            .roles
            .ensure(&spec.manifest, secret_arn.as_deref())
            .await?;
        spec.role_arn = Some(role.arn.clone());
        if spec
            .manifest
            .database
            .iter()
            .any(|d| d.is_dynamodb() && !d.tables.is_empty())
        {
            // The SDK assumes it per tenant, narrowed to the tenant's partitions.
            spec.env.insert(
                plinth_module_sdk::data::ROLE_ARN_VARIABLE.into(),
                role.arn.clone(),
            );
        }
        match self.deploy_as(&spec, role.created).await {
            Ok(deployment) if spec.alongside => Ok(deployment),
            Ok(deployment) => {
                let version = spec.manifest.version.to_string();
                self.roles.mark_serving(module, &version).await.map_err(|e| {
                    DeployError(format!("{module} is deployed but its role is not marked as serving {version}: {e}"))
                })?;
                Ok(deployment)
            }
            Err(failed) => {
                // What this deploy created for a module that had no identity, it removes.
                if role.created
                    && let Err(e) = self.remove_identity(module).await
                {
                    tracing::warn!(module = %module, error = %e, "the new role and secret of a failed deploy were left");
                }
                Err(failed)
            }
        }
    }

    /// Undeploys; then, when the version undeployed is the one the module's role serves (or
    /// the role is gone already), removes the module's secret and role.
    async fn undeploy(
        &self,
        manifest: &Manifest,
        deployment: &Deployment,
    ) -> Result<(), DeployError> {
        self.inner.undeploy(manifest, deployment).await?;
        if deployment.handle.is_null() {
            return Ok(()); // a backend running elsewhere was given no identity
        }
        let module = &manifest.name;
        let undeployed = manifest.version.to_string();
        match self.roles.serving_version(module).await? {
            Some(Some(serving)) if serving != undeployed => {
                tracing::info!(module = %module, %serving, %undeployed, "undeploy of a version the role no longer serves: role and secret kept");
                Ok(())
            }
            _ => self.remove_identity(module).await,
        }
    }

    async fn undeploy_alongside(
        &self,
        manifest: &Manifest,
        deployment: &Deployment,
    ) -> Result<(), DeployError> {
        self.inner.undeploy_alongside(manifest, deployment).await
    }
}
