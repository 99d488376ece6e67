//! A module's API key kept where only the module reads it: on AWS the Secrets Manager secret
//! `plinth/module/{module}/api-key` ([`SecretsManagerKeys`]), whose ARN the module's
//! environment carries as `PLINTH_API_KEY_SECRET` instead of the key itself; on one machine
//! the key stays in the environment (`PLINTH_API_KEY`, [`KeysInEnvironment`]).
//!
//! The installer stores the key it issues ([`SecretsManagerKeys::store`], through
//! [`super::isolated::IsolatedDeployer`]); a rotation through the API writes the new key into the
//! secret ([`ModuleKeySecrets::rotate`]) while the old key keeps working for the overlap, and
//! a module re-reads its secret when a call is refused with 401. Uninstalling deletes the
//! secret without a recovery window ([`SecretsManagerKeys::delete`]): the key in it is
//! revoked by the same uninstall, so a window would keep nothing worth recovering and would
//! only refuse a reinstall of the module under the same name for 7 to 30 days.

use async_trait::async_trait;
#[cfg(feature = "aws")]
use aws_config::SdkConfig;
#[cfg(feature = "aws")]
use aws_sdk_secretsmanager::Client;
#[cfg(feature = "aws")]
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
#[cfg(feature = "aws")]
use aws_sdk_secretsmanager::types::Tag;
use plinth_module_sdk::ModuleName;

use super::DeployError;
#[cfg(feature = "aws")]
use super::ecs::aws_error;

/// The module's environment variable that holds its key, where keys stay in the environment.
pub const API_KEY_VARIABLE: &str = "PLINTH_API_KEY";
/// The module's environment variable that holds the ARN of its key's secret, on AWS.
pub const API_KEY_SECRET_VARIABLE: &str = "PLINTH_API_KEY_SECRET";

/// Where a module's backend reads its API key, as the API's key rotation sees it.
#[async_trait]
pub trait ModuleKeySecrets: Send + Sync + std::fmt::Debug {
    /// Makes `key` the module's current key where its backend reads it, if the module has
    /// such a place; `Ok(false)` when it has none (its key lives in its environment, or it
    /// runs elsewhere), so nothing was written.
    async fn rotate(&self, module: &ModuleName, key: &str) -> Result<bool, DeployError>;
}

/// One machine: a module's key is in its environment, read once at start; a rotated key
/// reaches it when the module is started again.
#[derive(Debug, Default)]
pub struct KeysInEnvironment;

#[async_trait]
impl ModuleKeySecrets for KeysInEnvironment {
    async fn rotate(&self, _module: &ModuleName, _key: &str) -> Result<bool, DeployError> {
        Ok(false)
    }
}

/// Modules' API keys in AWS Secrets Manager.
#[cfg(feature = "aws")]
#[derive(Debug, Clone)]
pub struct SecretsManagerKeys {
    client: Client,
}

#[cfg(feature = "aws")]
impl SecretsManagerKeys {
    #[must_use]
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            client: Client::new(sdk),
        }
    }

    /// The name of a module's secret: `plinth/module/{module}/api-key`.
    #[must_use]
    pub fn secret_name(module: &ModuleName) -> String {
        format!("plinth/module/{module}/api-key")
    }

    /// Makes `key` the current value of the module's secret, creating the secret (tagged
    /// `plinth:module`) when there is none, and gives back its ARN. A secret scheduled for
    /// deletion (deleted by hand with a recovery window) is restored first.
    ///
    /// # Errors
    /// A [`DeployError`] naming the secret when Secrets Manager refuses.
    pub async fn store(&self, module: &ModuleName, key: &str) -> Result<String, DeployError> {
        let name = Self::secret_name(module);
        let created = self
            .client
            .create_secret()
            .name(&name)
            .description(format!("API key of Plinth module {module}"))
            .secret_string(key)
            .tags(
                Tag::builder()
                    .key("plinth:module")
                    .value(module.as_str())
                    .build(),
            )
            .send()
            .await;
        match created {
            Ok(created) => {
                return created.arn().map(String::from).ok_or_else(|| {
                    DeployError(format!("Secrets Manager created `{name}` without an ARN"))
                });
            }
            Err(e) if e.code() == Some("ResourceExistsException") => {}
            Err(e) if scheduled_for_deletion(e.code(), e.message()) => {
                self.client
                    .restore_secret()
                    .secret_id(&name)
                    .send()
                    .await
                    .map_err(|e| aws_error(format!("restoring secret `{name}`"), &e))?;
            }
            Err(e) => return Err(aws_error(format!("creating secret `{name}`"), &e)),
        }
        self.put(&name, key)
            .await?
            .ok_or_else(|| DeployError(format!("secret `{name}` disappeared while being written")))
    }

    /// Writes `key` as the secret's current value; `None` when there is no such secret.
    async fn put(&self, name: &str, key: &str) -> Result<Option<String>, DeployError> {
        match self
            .client
            .put_secret_value()
            .secret_id(name)
            .secret_string(key)
            .send()
            .await
        {
            Ok(put) => Ok(Some(put.arn().unwrap_or(name).to_owned())),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(aws_error(format!("writing secret `{name}`"), &e)),
        }
    }

    /// The ARN of the module's secret, if it has one.
    ///
    /// # Errors
    /// A [`DeployError`] when Secrets Manager cannot be asked.
    pub async fn arn(&self, module: &ModuleName) -> Result<Option<String>, DeployError> {
        let name = Self::secret_name(module);
        match self.client.describe_secret().secret_id(&name).send().await {
            Ok(found) => Ok(found.arn().map(String::from)),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(aws_error(format!("describing secret `{name}`"), &e)),
        }
    }

    /// Deletes the module's secret at once (no recovery window: see the module's doc). A
    /// secret that is gone is fine.
    ///
    /// # Errors
    /// A [`DeployError`] naming the secret when Secrets Manager refuses.
    pub async fn delete(&self, module: &ModuleName) -> Result<(), DeployError> {
        let name = Self::secret_name(module);
        match self
            .client
            .delete_secret()
            .secret_id(&name)
            .force_delete_without_recovery(true)
            .send()
            .await
        {
            Err(e) if e.code() != Some("ResourceNotFoundException") => {
                Err(aws_error(format!("deleting secret `{name}`"), &e))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(feature = "aws")]
#[async_trait]
impl ModuleKeySecrets for SecretsManagerKeys {
    /// Writes the key only into a secret that exists: a module that runs elsewhere (an
    /// external endpoint) has none, and rotating its key creates none.
    async fn rotate(&self, module: &ModuleName, key: &str) -> Result<bool, DeployError> {
        Ok(self.put(&Self::secret_name(module), key).await?.is_some())
    }
}

#[cfg(feature = "aws")]
/// Whether Secrets Manager refused because a secret of that name waits for its deletion.
fn scheduled_for_deletion(code: Option<&str>, message: Option<&str>) -> bool {
    code == Some("InvalidRequestException")
        && message.is_some_and(|m| m.contains("scheduled for deletion"))
}
