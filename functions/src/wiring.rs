//! From the function's environment to an [`App`] on AWS adapters.
//!
//! | variable | used by | meaning |
//! | --- | --- | --- |
//! | `PLINTH_TABLE` | all | the control plane's DynamoDB table |
//! | `PLINTH_EVENT_BUS` | all | the platform's EventBridge bus |
//! | `PLINTH_JWT_SECRET_ARN` | those that read tokens | Secrets Manager secret holding the HS256 secret (its whole `SecretString`), read at cold start |
//! | `PLINTH_JWT_SECRET` | those that read tokens | the HS256 secret itself, when `PLINTH_JWT_SECRET_ARN` is unset (one machine, tests) |
//! | `PLINTH_JWT_ISSUER`, `PLINTH_JWT_AUDIENCE` | those that read tokens | required `iss` and `aud` (HS256: when set; with an identity provider: always) |
//! | `PLINTH_JWKS_URL` | those that read tokens | an identity provider's JWKS URL, or `oidc` to discover it from the issuer; then its tokens only, and no secret is read |
//! | `PLINTH_JWT_CLAIMS` | those that read tokens | the provider's claims for Plinth's, e.g. `tenant_id=custom:tenant_id,roles=cognito:groups` (docs/identity.md) |
//! | `PLINTH_CONTEXT_KEY_ARN` | those that sign or publish the tenant context | Secrets Manager secret holding the ES256 key as base64 PKCS#8 DER; while it holds `generate-on-first-start` (or no value) the first cold start generates the key and stores it there ([`crate::platform_secrets`]) |
//! | `PLINTH_CONTEXT_KEY` | those that sign or publish the tenant context | base64 PKCS#8 DER of the ES256 key itself, when `PLINTH_CONTEXT_KEY_ARN` is unset |
//! | `PLINTH_URL` | installer | the URL modules reach the platform at |
//! | `PLINTH_BUNDLES_BUCKET` | registry API | the S3 bucket module UI bundles are stored in (docs/aws.md); unset, a publish with a bundle is refused |
//! | `PLINTH_BUNDLES_ORIGIN` | all | the origin (S3 website or CloudFront) the bucket's `bundles/` are served at; unset, the platform's own |
//! | `PLINTH_SWEEP_AFTER_SECS`, `PLINTH_SWEEP_MAX_ATTEMPTS` | installer | when its sweep counts an operation as stuck (default 960 s: longer than the function's 900 s timeout) and how often it requests one again before failing it (default 3) |
//! | `PLINTH_DATA_RETENTION_DAYS` | installer, registry-api | days an uninstall (or a tenant's disable with `drop_data`) keeps the data before the sweep drops it (default 30; 1 to 3650) |
//! | `PLINTH_ECS_*`, `PLINTH_LAMBDA_*` | installer | see `infra/module-stack.md` |
//! | `PLINTH_HTTP_API_ID`, `PLINTH_AUTHORIZER_ID`, `PLINTH_VPC_LINK_ID` | installer | where module routes go (`infra/module-stack.md`) |
//! | `PLINTH_MODULE_LISTENER_ARN` | installer | the module listener: each installed version gets its rule and target group, tenants reach their own version (`deploy::alb`) |
//!
//! On AWS each module is deployed as its own IAM role with its API key in Secrets Manager
//! ([`IsolatedDeployer`]), and a key rotated through the registry API is written into the
//! module's secret ([`SecretsManagerKeys`]).

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::region::Region;
use aws_types::sdk_config::SdkConfig;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};
use plinth_module_sdk::Manifest;
use plinth_registry::aws;
use plinth_registry::bundles;
use plinth_registry::bundles::s3::S3Bundles;
use plinth_registry::deploy::alb::{ListenerSettings, VersionListener};
use plinth_registry::deploy::apigateway::{ApiGatewayRoutes, ApiGatewaySettings};
use plinth_registry::deploy::backend::BackendDeployer;
use plinth_registry::deploy::backend::InstallerOnly;
use plinth_registry::deploy::dynamodb_tables::DynamoTables;
use plinth_registry::deploy::ecr::EcrImages;
use plinth_registry::deploy::ecs::{EcsDeployer, EcsSettings};
use plinth_registry::deploy::isolated::IsolatedDeployer;
use plinth_registry::deploy::lambda::{LambdaDeployer, LambdaSettings};
use plinth_registry::deploy::module_role::ModuleRoles;
use plinth_registry::deploy::module_secrets::SecretsManagerKeys;
use plinth_registry::deploy::routed::RoutedDeployer;
use plinth_registry::deploy::{DeployError, Deployer, TableProvisioner, TenantPartitions};
use plinth_registry::events::eventbridge::EventBridgeBus;
use plinth_registry::identity::{self, ContextSigner, TokenVerifier};
use plinth_registry::install::SweepPolicy;
use plinth_registry::queue::BusInstallQueue;
use plinth_registry::reach::Reaches;
use plinth_registry::reach::lambda::LambdaReach;
use plinth_registry::store::dynamodb::DynamoStore;
use plinth_registry::{App, Identity, Ports, Settings};
use serde_json::Value;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::platform_secrets::{PlatformSecrets, decode_context_key};

/// Which secrets a function reads beyond the store and the bus.
///
/// What a function *links* is not a flag here: a flag is read at run time, so the code
/// behind it is in every binary. Calling modules (the Lambda client) and deploying them
/// (the installer's clients) are chosen by the constructor a binary calls —
/// [`app_from_env`], [`module_calling_app_from_env`] or [`installer_app_from_env`] — so that
/// only the binaries that call it contain it (BENCHMARKS.md, Lambda functions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// Verifies users' tokens (`PLINTH_JWT_*`).
    pub tokens: bool,
    /// Signs tenant contexts or serves their public key (`PLINTH_CONTEXT_KEY_ARN` or
    /// `PLINTH_CONTEXT_KEY`).
    pub context_key: bool,
}

/// The identity of a function that reads no secret: no token accepted, no context signed
/// (see [`identity_without_secrets`]). A binary that passes this links no Secrets Manager
/// client, where `Needs::default()` — the same identity, chosen at run time — would.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoSecrets;

/// Where a function's [`Identity`] comes from: [`Needs`] (its secrets, read at cold start) or
/// [`NoSecrets`]. A type rather than a flag, so that what a binary links is chosen where it is
/// built.
pub trait IdentitySource {
    /// The identity, its secrets read with `sdk`.
    fn identity(self, sdk: &SdkConfig) -> impl Future<Output = Result<Identity>>;
}

impl IdentitySource for Needs {
    async fn identity(self, sdk: &SdkConfig) -> Result<Identity> {
        identity(self, sdk).await
    }
}

impl IdentitySource for NoSecrets {
    async fn identity(self, _: &SdkConfig) -> Result<Identity> {
        identity_without_secrets()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The platform this function runs on, from its environment, for a function that calls no
/// module (modules are reached over HTTP only, and a `lambda:` instance is refused). Module
/// resources are refused: only the installer's role may create them
/// ([`installer_app_from_env`]).
///
/// # Errors
/// A message naming the variable that is missing or malformed.
pub async fn app_from_env(needs: impl IdentitySource) -> Result<App> {
    app_with(
        async |sdk| needs.identity(sdk).await,
        |_, _, _, ports| Ok(ports),
    )
    .await
}

/// [`app_from_env`] for a function that calls modules' hooks or health checks: Lambda
/// modules through `Invoke`. Only the binaries that call this link the Lambda client.
///
/// # Errors
/// As [`app_from_env`].
pub async fn module_calling_app_from_env(needs: impl IdentitySource) -> Result<App> {
    app_with(
        async |sdk| needs.identity(sdk).await,
        |sdk, _, _, ports| Ok(reaching_modules(sdk, ports)),
    )
    .await
}

/// The installer's platform: [`module_calling_app_from_env`] with the AWS deployers, tables,
/// the bus's subscriptions and the bundle bucket (an uninstall's exports). Only the installer binary calls this, so only its binary
/// links the ECS, IAM, Application Auto Scaling, API Gateway, Elastic Load Balancing and SQS
/// clients.
///
/// # Errors
/// As [`app_from_env`], and for a malformed deployer variable.
pub async fn installer_app_from_env(needs: impl IdentitySource) -> Result<App> {
    app_with(
        async |sdk| needs.identity(sdk).await,
        |sdk, bus, bus_name, ports| {
            let ports = reaching_modules(sdk, ports)
                .with_module_keys(Arc::new(SecretsManagerKeys::new(sdk)))
                .with_deployer(backend_deployer(sdk, bus_name)?)
                .with_tables(Arc::new(DynamoTables::new(sdk)))
                .with_subscriptions(bus.clone());
            // An uninstall with `export` writes each tenant's files to the bundle bucket.
            Ok(match env("PLINTH_BUNDLES_BUCKET") {
                Some(bucket) => ports.with_bundles(Arc::new(S3Bundles::new(sdk, bucket))),
                None => ports,
            })
        },
    )
    .await
}

/// The registry API's platform: [`module_calling_app_from_env`] with the S3 store of modules'
/// UI bundles (`PLINTH_BUNDLES_BUCKET`), which it publishes and serves to the console, and
/// where tenants' exports are written; and modules' tables, read for exports (never created or
/// dropped here). It and the installer are the binaries that link the S3 client.
///
/// # Errors
/// As [`app_from_env`].
pub async fn registry_api_app_from_env(needs: impl IdentitySource) -> Result<App> {
    app_with(
        async |sdk| needs.identity(sdk).await,
        |sdk, _, _, ports| {
            // Exports (`POST …/export`, a disable with `export`) read modules' tables; it creates
            // and drops none (its role cannot). A key rotated through the API is written into the
            // module's secret.
            let ports = reaching_modules(sdk, ports)
                .with_tables(Arc::new(ModuleTableRows(DynamoTables::new(sdk))))
                .with_module_keys(Arc::new(SecretsManagerKeys::new(sdk)));
            Ok(match env("PLINTH_BUNDLES_BUCKET") {
                Some(bucket) => ports.with_bundles(Arc::new(S3Bundles::new(sdk, bucket))),
                None => ports,
            })
        },
    )
    .await
}

/// The ECR function's platform ([`app_from_env`] with [`NoSecrets`]) and the ECR client it
/// reads pushed images with, both on one SDK configuration, made once at cold start.
///
/// # Errors
/// As [`app_from_env`].
pub async fn ecr_events_app_from_env() -> Result<(App, EcrImages)> {
    let mut images = None;
    let app = app_with(
        async |sdk| NoSecrets.identity(sdk).await,
        |sdk, _, _, ports| {
            images = Some(EcrImages::new(sdk));
            Ok(ports)
        },
    )
    .await?;
    let images = images.context("the ECR client is made with the platform")?;
    Ok((app, images))
}

/// Modules' tables as the registry API uses them: their rows (a tenant's export, counts, a
/// tenant's deletion) through [`DynamoTables`]; creating and dropping tables refused as by
/// every function but the installer ([`InstallerOnly`]) — the API's role may not, and so its
/// binary links no `CreateTable`, `DescribeTable` or `DeleteTable` (BENCHMARKS.md).
#[derive(Debug)]
struct ModuleTableRows(DynamoTables);

#[async_trait]
impl TableProvisioner for ModuleTableRows {
    async fn create_tables(&self, manifest: &Manifest) -> Result<Vec<String>, DeployError> {
        InstallerOnly.create_tables(manifest).await
    }

    async fn drop_tables(&self, manifest: &Manifest) -> Result<(), DeployError> {
        InstallerOnly.drop_tables(manifest).await
    }

    async fn tenant_rows(
        &self,
        manifest: &Manifest,
        table: &str,
        tenant: &TenantPartitions,
    ) -> Result<Vec<Value>, DeployError> {
        self.0.tenant_rows(manifest, table, tenant).await
    }

    async fn count_rows(
        &self,
        manifest: &Manifest,
        table: &str,
        tenant: Option<&TenantPartitions>,
    ) -> Result<u64, DeployError> {
        self.0.count_rows(manifest, table, tenant).await
    }

    async fn delete_tenant_rows(
        &self,
        manifest: &Manifest,
        table: &str,
        tenant: &TenantPartitions,
    ) -> Result<u64, DeployError> {
        self.0.delete_tenant_rows(manifest, table, tenant).await
    }
}

/// Lambda modules reached through `Invoke`, besides HTTP.
fn reaching_modules(sdk: &SdkConfig, ports: Ports) -> Ports {
    ports.with_reach(Arc::new(Reaches::with_lambda(Arc::new(LambdaReach::new(
        sdk,
    )))))
}

/// The SDK configuration of a function, from what Lambda sets: the region (`AWS_REGION`), the
/// execution role's credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`), endpoints (`AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`), and
/// `AWS_USE_FIPS_ENDPOINT` and `AWS_USE_DUALSTACK_ENDPOINT`.
///
/// Not `aws_config::load_defaults`: its chain of credential providers (profiles, web
/// identity, SSO, IMDS, container credentials, STS) is code no Lambda function runs, about
/// 170 kB of symbols in every binary (BENCHMARKS.md, Lambda functions). Retries and the default
/// region are those of [`aws::config_from_env`], which one machine and the tests use; the
/// connect timeout is aws-config's default, 3.1 s.
#[must_use]
pub fn sdk_config() -> SdkConfig {
    sdk_config_from(std::env::vars().collect())
}

fn sdk_config_from(vars: HashMap<String, String>) -> SdkConfig {
    let vars = EnvVars(vars);
    let region = vars
        .get("AWS_REGION")
        .or_else(|| vars.get("AWS_DEFAULT_REGION"))
        .unwrap_or(aws::DEFAULT_REGION)
        .to_owned();
    let endpoint = vars.get("AWS_ENDPOINT_URL").map(str::to_owned);
    let flag = |name: &str| vars.get(name).map(|v| v.eq_ignore_ascii_case("true"));
    let (fips, dual_stack) = (
        flag("AWS_USE_FIPS_ENDPOINT"),
        flag("AWS_USE_DUALSTACK_ENDPOINT"),
    );
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ))
        .retry_config(aws::retry_config())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_millis(3100))
                .build(),
        );
    config.set_use_fips(fips);
    config.set_use_dual_stack(dual_stack);
    config.set_endpoint_url(endpoint);
    config.service_config(vars).build()
}

/// The environment as the SDK's clients ask it for per-service settings: a service's own
/// variable (`AWS_ENDPOINT_URL_DYNAMODB`: the service id upper-cased, spaces as `_`), else the
/// shared one (`AWS_ENDPOINT_URL`) — aws-config's order, without its profile files.
#[derive(Debug)]
struct EnvVars(HashMap<String, String>);

impl EnvVars {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }
}

impl LoadServiceConfig for EnvVars {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        let service = key.service_id().to_uppercase().replace(' ', "_");
        self.get(&format!("{}_{service}", key.env()))
            .or_else(|| self.get(key.env()))
            .map(str::to_owned)
    }
}

/// The platform over the store, the bus and the `identity` it is given; `wiring` adds what the
/// function's binary links beyond them. Closures, not flags, so that a binary that does not
/// pass one does not contain it.
async fn app_with(
    identity: impl AsyncFnOnce(&SdkConfig) -> Result<Identity>,
    wiring: impl FnOnce(&SdkConfig, &Arc<EventBridgeBus>, &str, Ports) -> Result<Ports>,
) -> Result<App> {
    let sdk = sdk_config();
    let table =
        env("PLINTH_TABLE").context("PLINTH_TABLE is not set: the platform's DynamoDB table")?;
    let bus_name =
        env("PLINTH_EVENT_BUS").context("PLINTH_EVENT_BUS is not set: the platform's event bus")?;
    let bus = Arc::new(EventBridgeBus::new(&sdk, bus_name.clone()));
    let ports = Ports::new(
        Arc::new(DynamoStore::new(&sdk, table)),
        bus.clone(),
        Arc::new(BusInstallQueue(bus.clone())),
    );
    let ports = wiring(&sdk, &bus, &bus_name, ports)?;
    let bundles_origin = env("PLINTH_BUNDLES_ORIGIN")
        .map(|origin| bundles::parse_origin(&origin).map_err(|e| anyhow!(e)))
        .transpose()?;
    let settings = Settings {
        public_url: env("PLINTH_URL").unwrap_or_default(),
        event_bus: Some(bus_name),
        sweep: sweep_policy()?,
        shared_rate_limits: shared_rate_limits()?,
        bundles_origin,
        data_retention_days: env("PLINTH_DATA_RETENTION_DAYS")
            .map(|days| plinth_registry::export::parse_retention_days(&days))
            .transpose()
            .map_err(|e| anyhow::anyhow!(e))?,
        ..Settings::default()
    };
    let identity = identity(&sdk).await?;
    Ok(App::build(ports, identity, settings))
}

/// The identity `needs` asks for, its secrets read from Secrets Manager (or the environment).
async fn identity(needs: Needs, sdk: &SdkConfig) -> Result<Identity> {
    let secrets = PlatformSecrets::new(sdk);
    Ok(Identity {
        tokens: token_verifier(needs.tokens, &secrets).await?,
        context: Arc::new(context_signer(needs.context_key, &secrets).await?),
    })
}

/// What [`identity`] gives a function with no [`Needs`], without the code that reads secrets:
/// a token verifier with a random secret nobody holds, and the context key of
/// `PLINTH_CONTEXT_KEY` or a throwaway one.
fn identity_without_secrets() -> Result<Identity> {
    Ok(Identity {
        tokens: unusable_token_verifier()?,
        context: Arc::new(unneeded_context_signer()?),
    })
}

/// Whether tenants' rate limits are shared by every warm instance through the table
/// (`PLINTH_SHARED_RATE_LIMITS`, `true` unless set to `false`): without it each instance
/// admits a tenant's whole rate on its own.
fn shared_rate_limits() -> Result<bool> {
    match env("PLINTH_SHARED_RATE_LIMITS").as_deref() {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => bail!("PLINTH_SHARED_RATE_LIMITS is `{other}`: say true or false"),
    }
}

/// The sweep's deadline and attempts, from `PLINTH_SWEEP_*` (defaults where unset).
fn sweep_policy() -> Result<SweepPolicy> {
    let mut policy = SweepPolicy::default();
    if let Some(secs) = env("PLINTH_SWEEP_AFTER_SECS") {
        let secs: u64 = secs
            .parse()
            .context("PLINTH_SWEEP_AFTER_SECS is not a number of seconds")?;
        policy.stale_after = std::time::Duration::from_secs(secs);
    }
    if let Some(attempts) = env("PLINTH_SWEEP_MAX_ATTEMPTS") {
        policy.max_attempts = attempts
            .parse()
            .context("PLINTH_SWEEP_MAX_ATTEMPTS is not a whole number")?;
    }
    Ok(policy)
}

/// ECS or Lambda by the manifest, each module as its own role with its key in Secrets
/// Manager; with `PLINTH_HTTP_API_ID` and `PLINTH_AUTHORIZER_ID`, each deployment is also
/// routed on the platform's HTTP API (routes are published after, and removed before, the
/// backend and its identity).
fn backend_deployer(sdk: &SdkConfig, event_bus: &str) -> Result<Arc<dyn Deployer>> {
    let ecs = EcsSettings::from_env()
        .map(|config| Arc::new(EcsDeployer::new(sdk, config)) as Arc<dyn Deployer>);
    let lambda = LambdaSettings::from_env()
        .map(|config| Arc::new(LambdaDeployer::new(sdk, config)) as Arc<dyn Deployer>);
    let backend = Arc::new(IsolatedDeployer {
        inner: Arc::new(BackendDeployer { ecs, lambda }),
        roles: ModuleRoles::new(sdk, event_bus)
            .with_boundary(env("PLINTH_MODULE_PERMISSIONS_BOUNDARY")),
        keys: SecretsManagerKeys::new(sdk),
    });
    match ApiGatewaySettings::from_env().map_err(|e| anyhow!("{e}"))? {
        Some(config) => {
            let mut routes = ApiGatewayRoutes::new(sdk, config);
            if let Some(listener) = ListenerSettings::from_env() {
                routes = routes.with_versions(VersionListener::new(sdk, listener));
            } else {
                tracing::warn!(
                    "PLINTH_MODULE_LISTENER_ARN is not set: each module is routed to its first installation, and pins take effect on one machine only"
                );
            }
            Ok(Arc::new(RoutedDeployer {
                inner: backend,
                routes: Arc::new(routes),
            }))
        }
        None => {
            tracing::warn!(
                "PLINTH_HTTP_API_ID and PLINTH_AUTHORIZER_ID are not set: modules are deployed without routes"
            );
            Ok(backend)
        }
    }
}

/// HS256 verification from `PLINTH_JWT_SECRET_ARN` (or `PLINTH_JWT_SECRET`) and
/// `PLINTH_JWT_*`; a function that reads no tokens gets a random secret nobody holds, so it
/// cannot accept any.
async fn token_verifier(needed: bool, secrets: &PlatformSecrets) -> Result<TokenVerifier> {
    // With an identity provider, its tokens only: no shared secret is read or accepted.
    if needed
        && let Some(provider) = identity::provider_from_env()
            .await
            .map_err(|e| anyhow!("{e}"))?
    {
        return Ok(provider);
    }
    if !needed {
        return unusable_token_verifier();
    }
    let secret = if let Some(arn) = env("PLINTH_JWT_SECRET_ARN") {
        secrets
            .jwt_secret(&arn)
            .await
            .context("PLINTH_JWT_SECRET_ARN")?
    } else {
        env("PLINTH_JWT_SECRET").context(
            "PLINTH_JWT_SECRET_ARN (or PLINTH_JWT_SECRET) is not set: the secret users' tokens are signed with",
        )?
    };
    hs256_verifier(&secret)
}

/// HS256 with a random secret nobody holds: it accepts no token.
fn unusable_token_verifier() -> Result<TokenVerifier> {
    let secret: String = (0..2)
        .map(|_| format!("{:032x}", rand::random::<u128>()))
        .collect();
    hs256_verifier(&secret)
}

fn hs256_verifier(secret: &str) -> Result<TokenVerifier> {
    TokenVerifier::hs256(
        secret.as_bytes(),
        env("PLINTH_JWT_ISSUER").as_deref(),
        env("PLINTH_JWT_AUDIENCE").as_deref(),
    )
    .map_err(|e| anyhow!("{e}"))
}

/// The ES256 key from `PLINTH_CONTEXT_KEY_ARN` (generated there on the first start) or
/// `PLINTH_CONTEXT_KEY`; a function that signs nothing gets a throwaway one.
async fn context_signer(needed: bool, secrets: &PlatformSecrets) -> Result<ContextSigner> {
    if needed && let Some(arn) = env("PLINTH_CONTEXT_KEY_ARN") {
        return secrets
            .context_signer(&arn)
            .await
            .context("PLINTH_CONTEXT_KEY_ARN");
    }
    if !needed {
        return unneeded_context_signer();
    }
    let encoded = env("PLINTH_CONTEXT_KEY").context(
        "PLINTH_CONTEXT_KEY_ARN (or PLINTH_CONTEXT_KEY) is not set: the ES256 key that signs tenant contexts",
    )?;
    decode_context_key(&encoded).context("PLINTH_CONTEXT_KEY")
}

/// For a function that signs nothing: `PLINTH_CONTEXT_KEY` when set, else a throwaway key.
fn unneeded_context_signer() -> Result<ContextSigner> {
    match env("PLINTH_CONTEXT_KEY") {
        Some(encoded) => decode_context_key(&encoded).context("PLINTH_CONTEXT_KEY"),
        None => ContextSigner::generate().map_err(|e| anyhow!("{e}")),
    }
}

/// Logs for CloudWatch as `lambda_runtime`'s default subscriber writes them: JSON when
/// `AWS_LAMBDA_LOG_FORMAT` is `JSON` (Lambda's advanced logging controls), text otherwise, at
/// the level [`log_filter`] reads. Filtered by target ([`Targets`]) rather than by
/// `EnvFilter`, whose span and field directives link a regex engine into every binary
/// (BENCHMARKS.md, Lambda functions).
pub fn init_logging() {
    let filter = log_filter(
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
        std::env::var("RUST_LOG").ok().as_deref(),
    );
    let logs = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_writer(std::io::stdout);
    if std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        logs.json().finish().with(filter).init();
    } else {
        logs.finish().with(filter).init();
    }
}

/// What is logged: `RUST_LOG`'s `target=level` and level directives when it has any that
/// parse (one that does not is skipped, saying so); otherwise everything at
/// `AWS_LAMBDA_LOG_LEVEL`, else at `RUST_LOG` as one level, else at info — as
/// `lambda_runtime`'s `EnvFilter` reads them.
#[must_use]
pub fn log_filter(lambda_level: Option<&str>, rust_log: Option<&str>) -> Targets {
    let directives: Vec<Targets> = rust_log
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|directive| !directive.is_empty())
        .filter_map(|directive| match directive.parse::<Targets>() {
            Ok(parsed) => Some(parsed),
            Err(e) => {
                eprintln!("ignoring `{directive}` in RUST_LOG: {e}");
                None
            }
        })
        .collect();
    if directives.is_empty() {
        let level = lambda_level
            .or(rust_log)
            .and_then(|level| level.trim().parse::<LevelFilter>().ok())
            .unwrap_or(LevelFilter::INFO);
        return Targets::new().with_default(level);
    }
    directives.into_iter().fold(Targets::new(), |all, one| {
        let all = match one.default_level() {
            Some(level) => all.with_default(level),
            None => all,
        };
        all.with_targets(one)
    })
}

#[cfg(test)]
mod tests {
    use plinth_registry::deploy::backend::INSTALLER_ONLY;
    use tracing::Level;

    use super::*;

    fn billing() -> Manifest {
        Manifest::from_json_str(
            &serde_json::json!({
                "name": "billing",
                "display_name": "Billing",
                "version": "1.0.0",
                "backend": {"type": "microservice", "api_prefix": "/api/v1/billing", "image": "billing:1.0.0"},
                "database": {"type": "dynamodb", "tables": [{"name": "billing_invoices", "partition_key": "pk"}]}
            })
            .to_string(),
        )
        .unwrap()
    }

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn endpoint_of(config: &SdkConfig, service_id: &str) -> Option<String> {
        let key = ServiceConfigKey::builder()
            .service_id(service_id)
            .env("AWS_ENDPOINT_URL")
            .profile("endpoint_url")
            .build()
            .unwrap();
        config.service_config()?.load_config(key)
    }

    #[test]
    fn a_function_s_sdk_config_sends_each_service_to_its_own_endpoint_variable_else_the_shared_one()
    {
        let config = sdk_config_from(vars(&[
            ("AWS_REGION", "eu-central-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:7001"),
            ("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:7002"),
            (
                "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2",
                "http://127.0.0.1:7003",
            ),
        ]));
        assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-central-1"));
        assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:5000"));
        for (service, endpoint) in [
            ("DynamoDB", "http://127.0.0.1:7001"),
            ("Lambda", "http://127.0.0.1:7002"),
            ("EventBridge", "http://127.0.0.1:5000"),
            ("Elastic Load Balancing v2", "http://127.0.0.1:7003"),
        ] {
            assert_eq!(
                endpoint_of(&config, service).as_deref(),
                Some(endpoint),
                "{service}"
            );
        }
        assert_eq!((config.use_fips(), config.use_dual_stack()), (None, None));
        assert_eq!(config.retry_config().map(|r| r.max_attempts()), Some(5));
    }

    #[test]
    fn a_function_s_sdk_config_without_endpoints_goes_to_aws_in_the_lambda_s_region() {
        let config = sdk_config_from(vars(&[
            ("AWS_REGION", "ap-south-2"),
            ("AWS_USE_FIPS_ENDPOINT", "true"),
            ("AWS_USE_DUALSTACK_ENDPOINT", "false"),
        ]));
        assert_eq!(config.region().map(|r| r.as_ref()), Some("ap-south-2"));
        assert_eq!(config.endpoint_url(), None);
        assert_eq!(endpoint_of(&config, "DynamoDB"), None);
        assert!(config.credentials_provider().is_some());
        assert_eq!(
            (config.use_fips(), config.use_dual_stack()),
            (Some(true), Some(false))
        );
        let fallback = sdk_config_from(vars(&[("AWS_REGION", " ")]));
        assert_eq!(fallback.region().map(|r| r.as_ref()), Some("us-east-1"));
    }

    #[tokio::test]
    async fn the_registry_api_s_module_tables_read_rows_and_refuse_creating_or_dropping_tables() {
        let sdk = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .build();
        let tables = ModuleTableRows(DynamoTables::new(&sdk));
        let manifest = billing();
        let created = tables.create_tables(&manifest).await.unwrap_err();
        assert!(created.0.contains(INSTALLER_ONLY), "{created:?}");
        let dropped = tables.drop_tables(&manifest).await.unwrap_err();
        assert!(dropped.0.contains(INSTALLER_ONLY), "{dropped:?}");
        // Rows are DynamoTables' to read: it answers (here, about a table the manifest does not
        // declare, before any call to AWS), not the port's "does not read module tables".
        let tenant = TenantPartitions {
            tenant: "acme".into(),
            companies: Vec::new(),
        };
        let read = tables
            .tenant_rows(&manifest, "payments", &tenant)
            .await
            .unwrap_err();
        let counted = tables
            .count_rows(&manifest, "payments", Some(&tenant))
            .await
            .unwrap_err();
        let deleted = tables
            .delete_tenant_rows(&manifest, "payments", &tenant)
            .await
            .unwrap_err();
        for error in [read, counted, deleted] {
            assert!(
                error
                    .0
                    .contains("`payments` is not a DynamoDB table billing declares"),
                "{error:?}"
            );
        }
    }

    #[test]
    fn logs_are_at_info_unless_a_level_is_set() {
        let filter = log_filter(None, None);
        assert!(filter.would_enable("plinth_registry::gateway", &Level::INFO));
        assert!(!filter.would_enable("plinth_registry::gateway", &Level::DEBUG));
    }

    #[test]
    fn lambda_s_log_level_sets_the_level_of_every_target() {
        let filter = log_filter(Some("DEBUG"), None);
        assert!(filter.would_enable("aws_smithy_runtime", &Level::DEBUG));
        assert!(!filter.would_enable("aws_smithy_runtime", &Level::TRACE));
        // RUST_LOG as a bare level, when Lambda's is unset.
        assert!(log_filter(None, Some("warn")).would_enable("any", &Level::WARN));
        assert!(!log_filter(None, Some("warn")).would_enable("any", &Level::INFO));
    }

    #[test]
    fn rust_log_directives_filter_by_target_and_override_lambda_s_level() {
        let filter = log_filter(
            Some("ERROR"),
            Some("plinth_registry=debug, aws_config=warn"),
        );
        assert!(filter.would_enable("plinth_registry::install::saga", &Level::DEBUG));
        assert!(filter.would_enable("aws_config", &Level::WARN));
        assert!(!filter.would_enable("aws_config", &Level::INFO));
        // As EnvFilter: directives that name targets leave every other target off.
        assert!(!filter.would_enable("hyper", &Level::ERROR));
        let with_default = log_filter(None, Some("info,plinth_registry=trace"));
        assert!(with_default.would_enable("hyper", &Level::INFO));
        assert!(with_default.would_enable("plinth_registry", &Level::TRACE));
    }

    #[test]
    fn a_rust_log_directive_that_does_not_parse_is_skipped() {
        let filter = log_filter(None, Some("plinth_registry=loud,aws_config=debug"));
        assert!(filter.would_enable("aws_config", &Level::DEBUG));
        assert!(!filter.would_enable("plinth_registry", &Level::ERROR));
        // None parses: the level falls back to info.
        let filter = log_filter(None, Some("[span{field=1}]=nonsense"));
        assert!(filter.would_enable("plinth_registry", &Level::INFO));
        assert!(!filter.would_enable("plinth_registry", &Level::DEBUG));
    }
}
