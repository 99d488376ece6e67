//! The Lambda adapter of the [`Deployer`] port: a module's `lambda` backend runs as the
//! function `plinth-{module}`.
//!
//! The code comes from the manifest's `image`, pinned by digest in ECR (package type
//! `Image`), or, when the manifest has no image, from a zip package in S3 at
//! `s3://{PLINTH_LAMBDA_PACKAGE_BUCKET}/modules/{module}/{version}/lambda.zip`
//! ([`LambdaDeployer::package_key`]) with the manifest's `entry_point` as handler and its
//! `runtime`. A function carries the tag `plinth:fingerprint`, a hash of its code and
//! configuration: deploying the same version with the same settings again changes nothing.
//!
//! The endpoint is `lambda:{function_arn}`: the gateway invokes the function with the request
//! (API Gateway's Lambda integration on AWS).
//!
//! `backend.reserved_concurrency` becomes the function's reserved concurrency, capped by
//! [`LambdaSettings::max_concurrency`]; without it, the function has none reserved.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::types::{
    Architecture, Environment, FunctionCode, LastUpdateStatus, PackageType, Runtime, State,
};
use plinth_module_sdk::{Manifest, ModuleName};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::ecr::EcrImages;
use super::ecs::{DEFAULT_HEALTH_PATH, aws_error, env_number};
use super::{DeployError, DeploySpec, Deployer, Deployment};

/// Memory in MB when the manifest sets none.
pub const DEFAULT_MEMORY: u32 = 512;
/// Seconds a request may run (API Gateway gives up after 30).
pub const DEFAULT_TIMEOUT_SECONDS: i32 = 30;
/// Tag on each function: the hash of its code and configuration.
const FINGERPRINT_TAG: &str = "plinth:fingerprint";
/// How long a function may take to become ready after a change.
const READY_TIMEOUT: Duration = Duration::from_secs(300);
/// Most concurrency a module may reserve when `PLINTH_LAMBDA_MAX_CONCURRENCY` is unset.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 100;

/// How module functions are created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaSettings {
    /// Execution role of module functions (`PLINTH_LAMBDA_ROLE`).
    /// Optional: on AWS each module gets its own (see `isolated`); a deploy with neither fails.
    pub role_arn: Option<String>,
    /// Bucket of zip packages for modules without an image (`PLINTH_LAMBDA_PACKAGE_BUCKET`).
    pub package_bucket: Option<String>,
    /// `x86_64` or `arm64` (`PLINTH_LAMBDA_ARCHITECTURE`, default `x86_64`, Lambda's own
    /// default); it must match the image or package.
    pub architecture: String,
    /// Seconds a request may run ([`DEFAULT_TIMEOUT_SECONDS`]).
    pub timeout_seconds: i32,
    /// Most concurrency a module may reserve, whatever its manifest asks
    /// (`PLINTH_LAMBDA_MAX_CONCURRENCY`, default [`DEFAULT_MAX_CONCURRENCY`]).
    pub max_concurrency: u32,
}

impl LambdaSettings {
    /// Reads the configuration from `PLINTH_LAMBDA_*` variables.
    ///
    /// # Errors
    /// A [`DeployError`] when `PLINTH_LAMBDA_MAX_CONCURRENCY` is not a positive number.
    pub fn from_env() -> Result<Self, DeployError> {
        let optional = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Ok(Self {
            role_arn: optional("PLINTH_LAMBDA_ROLE"),
            package_bucket: optional("PLINTH_LAMBDA_PACKAGE_BUCKET"),
            architecture: optional("PLINTH_LAMBDA_ARCHITECTURE").unwrap_or_else(|| "x86_64".into()),
            timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
            max_concurrency: env_number("PLINTH_LAMBDA_MAX_CONCURRENCY")?
                .unwrap_or(DEFAULT_MAX_CONCURRENCY),
        })
    }
}

/// What a deployment's `handle` holds for Lambda.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LambdaHandle {
    /// The function's name, `plinth-{module}`.
    pub function_name: String,
    /// The function's ARN.
    pub function_arn: String,
    /// The `plinth:fingerprint` of the code and configuration this deployment runs.
    pub fingerprint: String,
    /// The concurrency reserved for it (`backend.reserved_concurrency`, capped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_concurrency: Option<ReservedConcurrency>,
}

/// The concurrency reserved for a module's function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservedConcurrency {
    pub reserved: u32,
    /// The manifest's `reserved_concurrency` when the platform's cap lowered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capped_from: Option<u32>,
}

/// Runs `lambda` modules as Lambda functions.
#[derive(Debug, Clone)]
pub struct LambdaDeployer {
    lambda: Client,
    images: EcrImages,
    settings: LambdaSettings,
}

/// Where a function's code comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
enum Code {
    Image {
        uri: String,
    },
    Zip {
        bucket: String,
        key: String,
        handler: String,
        runtime: String,
    },
}

/// Everything the function is made of; its hash is the fingerprint.
#[derive(Debug, Serialize)]
struct FunctionSpec {
    name: String,
    code: Code,
    role_arn: String,
    memory: u32,
    timeout_seconds: i32,
    architecture: String,
    env: BTreeMap<String, String>,
}

impl FunctionSpec {
    fn fingerprint(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn package_type(&self) -> PackageType {
        match self.code {
            Code::Image { .. } => PackageType::Image,
            Code::Zip { .. } => PackageType::Zip,
        }
    }

    fn function_code(&self) -> FunctionCode {
        match &self.code {
            Code::Image { uri } => FunctionCode::builder().image_uri(uri).build(),
            Code::Zip { bucket, key, .. } => FunctionCode::builder()
                .s3_bucket(bucket)
                .s3_key(key)
                .build(),
        }
    }

    fn environment(&self) -> Environment {
        let variables: HashMap<String, String> = self.env.clone().into_iter().collect();
        Environment::builder()
            .set_variables(Some(variables))
            .build()
    }

    fn tags(&self, manifest: &Manifest) -> HashMap<String, String> {
        HashMap::from([
            ("plinth:module".to_owned(), manifest.name.to_string()),
            ("plinth:version".to_owned(), manifest.version.to_string()),
            (FINGERPRINT_TAG.to_owned(), self.fingerprint()),
        ])
    }
}

/// A function as Lambda describes it.
#[derive(Debug)]
struct LiveFunction {
    arn: String,
    package_type: Option<PackageType>,
    fingerprint: Option<String>,
}

impl LambdaDeployer {
    /// A deployer on the SDK configuration given.
    #[must_use]
    pub fn new(sdk: &SdkConfig, settings: LambdaSettings) -> Self {
        Self {
            lambda: Client::new(sdk),
            images: EcrImages::new(sdk),
            settings,
        }
    }

    /// A deployer configured from the environment (`AWS_*` and `PLINTH_LAMBDA_*`).
    ///
    /// # Errors
    /// When a `PLINTH_LAMBDA_*` variable is malformed.
    pub async fn from_env() -> Result<Self, DeployError> {
        let config = LambdaSettings::from_env()?;
        let sdk = crate::aws::config_from_env().await;
        Ok(Self::new(&sdk, config))
    }

    /// The function name of a module: `plinth-{module}` (a version installed alongside:
    /// `plinth-{module}-v{version}`, [`DeploySpec::deployed_name`]).
    #[must_use]
    pub fn function_name(module: &ModuleName) -> String {
        super::deployed_name(module, None)
    }

    /// Where a module version's zip package is expected in the package bucket:
    /// `modules/{module}/{version}/lambda.zip`.
    #[must_use]
    pub fn package_key(manifest: &Manifest) -> String {
        format!("modules/{}/{}/lambda.zip", manifest.name, manifest.version)
    }

    async fn code(&self, spec: &DeploySpec) -> Result<Code, DeployError> {
        let manifest = &spec.manifest;
        let backend = &manifest.backend;
        if let Some(image) = &backend.image {
            let pinned = self.images.pin(image, spec.image_digest.as_deref()).await?;
            return Ok(Code::Image { uri: pinned.uri });
        }
        let missing = |what: &str| {
            DeployError(format!(
                "module `{}` has no `backend.image`, so its zip package needs {what}",
                manifest.name
            ))
        };
        Ok(Code::Zip {
            bucket: self
                .settings
                .package_bucket
                .clone()
                .ok_or_else(|| missing("PLINTH_LAMBDA_PACKAGE_BUCKET"))?,
            key: Self::package_key(manifest),
            handler: backend
                .entry_point
                .clone()
                .ok_or_else(|| missing("`backend.entry_point`"))?,
            runtime: backend
                .runtime
                .clone()
                .ok_or_else(|| missing("`backend.runtime`"))?,
        })
    }

    fn function_spec(
        &self,
        spec: &DeploySpec,
        code: Code,
        env: &BTreeMap<String, String>,
    ) -> FunctionSpec {
        let manifest = &spec.manifest;
        FunctionSpec {
            name: spec.deployed_name(),
            code,
            role_arn: self.settings.role_arn.clone().unwrap_or_default(),
            memory: manifest.backend.memory.unwrap_or(DEFAULT_MEMORY),
            timeout_seconds: self.settings.timeout_seconds,
            architecture: self.settings.architecture.clone(),
            env: env.clone(),
        }
    }

    async fn live_function(&self, name: &str) -> Result<Option<LiveFunction>, DeployError> {
        let found = match self.lambda.get_function().function_name(name).send().await {
            Ok(found) => found,
            Err(e) if e.code() == Some("ResourceNotFoundException") => return Ok(None),
            Err(e) => return Err(aws_error(format!("looking up function `{name}`"), &e)),
        };
        let configuration = found.configuration();
        Ok(Some(LiveFunction {
            arn: configuration
                .and_then(|c| c.function_arn())
                .unwrap_or(name)
                .to_owned(),
            package_type: configuration.and_then(|c| c.package_type()).cloned(),
            fingerprint: found
                .tags()
                .and_then(|tags| tags.get(FINGERPRINT_TAG))
                .cloned(),
        }))
    }

    async fn create(
        &self,
        spec: &FunctionSpec,
        manifest: &Manifest,
    ) -> Result<String, DeployError> {
        let mut create = self
            .lambda
            .create_function()
            .function_name(&spec.name)
            .role(&spec.role_arn)
            .package_type(spec.package_type())
            .code(spec.function_code())
            .memory_size(memory(spec)?)
            .timeout(spec.timeout_seconds)
            .architectures(Architecture::from(spec.architecture.as_str()))
            .environment(spec.environment())
            .description(description(manifest))
            .set_tags(Some(spec.tags(manifest)));
        if let Code::Zip {
            handler, runtime, ..
        } = &spec.code
        {
            create = create
                .handler(handler)
                .runtime(Runtime::from(runtime.as_str()));
        }
        let created = create
            .send()
            .await
            .map_err(|e| aws_error(format!("creating function `{}`", spec.name), &e))?;
        created
            .function_arn()
            .map(String::from)
            .ok_or_else(|| DeployError(format!("Lambda created `{}` without an ARN", spec.name)))
    }

    /// Replaces a function's code, then its configuration, then its fingerprint tag (last, so
    /// that an interrupted update is redone).
    async fn update(
        &self,
        spec: &FunctionSpec,
        live: &LiveFunction,
        manifest: &Manifest,
    ) -> Result<(), DeployError> {
        let name = &spec.name;
        if let Some(current) = &live.package_type
            && *current != spec.package_type()
        {
            return Err(DeployError(format!(
                "function `{name}` is a {current} function and Lambda cannot change it to {}: uninstall the module first",
                spec.package_type()
            )));
        }
        // A change still in progress (an interrupted deploy) would refuse the update.
        self.wait_until_ready(name).await?;
        self.update_code(spec).await?;
        self.wait_until_ready(name).await?;
        self.update_configuration(spec, manifest).await?;
        self.wait_until_ready(name).await?;
        self.lambda
            .tag_resource()
            .resource(&live.arn)
            .set_tags(Some(spec.tags(manifest)))
            .send()
            .await
            .map_err(|e| aws_error(format!("tagging `{name}`"), &e))?;
        Ok(())
    }

    async fn update_code(&self, spec: &FunctionSpec) -> Result<(), DeployError> {
        let code = self
            .lambda
            .update_function_code()
            .function_name(&spec.name)
            .architectures(Architecture::from(spec.architecture.as_str()));
        let code = match &spec.code {
            Code::Image { uri } => code.image_uri(uri),
            Code::Zip { bucket, key, .. } => code.s3_bucket(bucket).s3_key(key),
        };
        code.send()
            .await
            .map_err(|e| aws_error(format!("updating the code of `{}`", spec.name), &e))?;
        Ok(())
    }

    async fn update_configuration(
        &self,
        spec: &FunctionSpec,
        manifest: &Manifest,
    ) -> Result<(), DeployError> {
        let mut configuration = self
            .lambda
            .update_function_configuration()
            .function_name(&spec.name)
            .role(&spec.role_arn)
            .memory_size(memory(spec)?)
            .timeout(spec.timeout_seconds)
            .environment(spec.environment())
            .description(description(manifest));
        if let Code::Zip {
            handler, runtime, ..
        } = &spec.code
        {
            configuration = configuration
                .handler(handler)
                .runtime(Runtime::from(runtime.as_str()));
        }
        configuration
            .send()
            .await
            .map_err(|e| aws_error(format!("updating the configuration of `{}`", spec.name), &e))?;
        Ok(())
    }

    /// Sets the function's reserved concurrency to the manifest's, capped (with a warning
    /// when capped), or removes one the manifest no longer asks for. Changes nothing when it
    /// is already so.
    async fn reserve_concurrency(
        &self,
        manifest: &Manifest,
        name: &str,
    ) -> Result<Option<ReservedConcurrency>, DeployError> {
        let cap = self.settings.max_concurrency.max(1);
        let wanted = manifest.backend.reserved_concurrency.map(|asked| {
            if asked > cap {
                tracing::warn!(module = %manifest.name, asked, cap, "backend.reserved_concurrency is above the platform's cap (PLINTH_LAMBDA_MAX_CONCURRENCY): capped");
            }
            ReservedConcurrency {
                reserved: asked.min(cap),
                capped_from: (asked > cap).then_some(asked),
            }
        });
        let current = self
            .lambda
            .get_function_concurrency()
            .function_name(name)
            .send()
            .await
            .map_err(|e| aws_error(format!("reading the concurrency of `{name}`"), &e))?
            .reserved_concurrent_executions();
        let target = wanted
            .as_ref()
            .map(|w| i32::try_from(w.reserved).unwrap_or(i32::MAX));
        if current == target {
            return Ok(wanted);
        }
        match target {
            Some(reserved) => {
                self.lambda
                    .put_function_concurrency()
                    .function_name(name)
                    .reserved_concurrent_executions(reserved)
                    .send()
                    .await
                    .map_err(|e| {
                        aws_error(format!("reserving {reserved} concurrency for `{name}`"), &e)
                    })?;
            }
            None => {
                self.lambda
                    .delete_function_concurrency()
                    .function_name(name)
                    .send()
                    .await
                    .map_err(|e| {
                        aws_error(format!("removing the reserved concurrency of `{name}`"), &e)
                    })?;
            }
        }
        Ok(wanted)
    }

    /// Waits until the function is `Active` and no update is in progress.
    async fn wait_until_ready(&self, name: &str) -> Result<(), DeployError> {
        let started = Instant::now();
        loop {
            let configuration = self
                .lambda
                .get_function_configuration()
                .function_name(name)
                .send()
                .await
                .map_err(|e| aws_error(format!("waiting for `{name}`"), &e))?;
            let state = configuration.state();
            let update = configuration.last_update_status();
            if state == Some(&State::Failed) || update == Some(&LastUpdateStatus::Failed) {
                let reason = configuration
                    .last_update_status_reason()
                    .or(configuration.state_reason())
                    .unwrap_or("no reason given");
                return Err(DeployError(format!("function `{name}` failed: {reason}")));
            }
            let busy =
                state == Some(&State::Pending) || update == Some(&LastUpdateStatus::InProgress);
            if !busy {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(DeployError(format!(
                    "function `{name}` was not ready after {READY_TIMEOUT:?}"
                )));
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

#[async_trait]
impl Deployer for LambdaDeployer {
    async fn deploy(&self, spec: &DeploySpec) -> Result<Deployment, DeployError> {
        let manifest = &spec.manifest;
        let code = self.code(spec).await?;
        let mut function = self.function_spec(spec, code, &spec.env);
        if let Some(role) = &spec.role_arn {
            function.role_arn.clone_from(role);
        }
        if function.role_arn.is_empty() {
            return Err(DeployError(format!(
                "no execution role for function `{}`: the deploy named no module role and PLINTH_LAMBDA_ROLE is not set",
                function.name
            )));
        }
        let fingerprint = function.fingerprint();
        let function_arn = match self.live_function(&function.name).await? {
            None => {
                let arn = self.create(&function, manifest).await?;
                self.wait_until_ready(&function.name).await?;
                arn
            }
            Some(live) if live.fingerprint.as_deref() == Some(fingerprint.as_str()) => live.arn,
            Some(live) => {
                self.update(&function, &live, manifest).await?;
                live.arn
            }
        };
        let reserved_concurrency = self.reserve_concurrency(manifest, &function.name).await?;
        let endpoint = format!("lambda:{function_arn}");
        let health = manifest
            .backend
            .health_check
            .as_deref()
            .unwrap_or(DEFAULT_HEALTH_PATH);
        let handle = LambdaHandle {
            function_name: function.name,
            function_arn,
            fingerprint,
            reserved_concurrency,
        };
        Ok(Deployment {
            health_url: format!("{endpoint}{health}"),
            endpoint,
            handle: json!(handle),
            addresses: Vec::new(),
        })
    }

    /// Deletes the function. One that has since been updated by a later deploy of the module
    /// is left alone: deleting it would stop the newer version.
    async fn undeploy(
        &self,
        manifest: &Manifest,
        deployment: &Deployment,
    ) -> Result<(), DeployError> {
        let handle: Option<LambdaHandle> = serde_json::from_value(deployment.handle.clone()).ok();
        // The deployment's own function: a version alongside has one of its own.
        let name = handle.as_ref().map_or_else(
            || Self::function_name(&manifest.name),
            |h| h.function_name.clone(),
        );
        let Some(live) = self.live_function(&name).await? else {
            return Ok(());
        };
        if let Some(handle) = &handle
            && live.fingerprint.as_deref() != Some(handle.fingerprint.as_str())
        {
            tracing::info!(function = %name, "undeploy: the function runs a later deployment; left running");
            return Ok(());
        }
        match self
            .lambda
            .delete_function()
            .function_name(&name)
            .send()
            .await
        {
            Err(e) if e.code() != Some("ResourceNotFoundException") => {
                Err(aws_error(format!("deleting function `{name}`"), &e))
            }
            _ => Ok(()),
        }
    }
}

fn memory(spec: &FunctionSpec) -> Result<i32, DeployError> {
    i32::try_from(spec.memory).map_err(|_| {
        DeployError(format!(
            "memory of `{}` is too large: {}",
            spec.name, spec.memory
        ))
    })
}

fn description(manifest: &Manifest) -> String {
    format!("Plinth module {} {}", manifest.name, manifest.version)
}
