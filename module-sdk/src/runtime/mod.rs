//! Start-up: [`ModuleEnv`] reads what the platform gives a module process (`PLINTH_URL`,
//! `PLINTH_MODULE`, `PLINTH_API_KEY`, `PORT`; on AWS `PLINTH_EVENT_BUS`,
//! `PLINTH_API_KEY_SECRET` and `PLINTH_EVENT_QUEUE_URL`, and ECS's
//! `ECS_CONTAINER_METADATA_URI_V4`); [`Module`] composes the module's API (behind context
//! verification, under its `api_prefix`), its health check, hooks and event subscriptions into
//! one router, and [`Module::run`] serves it: as a Lambda function when Lambda runs the
//! process, else as an HTTP server that registers itself with the platform and, on ECS,
//! consumes the module's event queue. `<binary> health` checks a served instance instead
//! ([`health`]). The module's tables come from the environment too
//! ([`crate::data::Tables::from_env`]: `PLINTH_TABLES_DIR` under `plinth up`, DynamoDB and
//! `PLINTH_MODULE_ROLE_ARN` on AWS).

#[cfg(feature = "server")]
mod address;
pub mod health;
#[cfg(feature = "lambda")]
mod lambda;
#[cfg(all(feature = "server", feature = "aws"))]
mod queue;

#[cfg(feature = "server")]
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router, middleware};
use serde_json::json;

use crate::api_key::ApiKey;
use crate::auth::{ContextVerifier, verify_context};
use crate::config_client::ConfigClient;
use crate::hooks::{Hooks, hooks_router};
use crate::manifest::Manifest;
use crate::platform_client::PlatformClient;
use crate::publisher::{PlatformPublisher, Publisher};
use crate::subscriber::Subscriptions;
use crate::{ApiError, ModuleName};

/// Where `PLINTH_URL` points when unset: `plinth up`'s default address.
pub const DEFAULT_PLATFORM_URL: &str = "http://127.0.0.1:8080";

/// How long an event received from the module's queue stays hidden while its handlers run,
/// unless [`Module::visibility_timeout`] says otherwise.
pub const DEFAULT_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(60);

/// The module's code and its manifest do not fit together, or the environment is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);

/// What the platform told the module process, through its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleEnv {
    /// `PLINTH_MODULE`: the module's name (the manifest's, when unset).
    pub module: ModuleName,
    /// `PLINTH_URL`: the platform's base URL ([`DEFAULT_PLATFORM_URL`] when unset).
    pub platform_url: String,
    /// The module's API key: `PLINTH_API_KEY` (one machine), or read at start from the
    /// Secrets Manager secret `PLINTH_API_KEY_SECRET` names (AWS; feature `aws`). None when
    /// both are unset: the instance does not register itself.
    pub api_key: ApiKey,
    /// `PORT`: where to listen (the manifest's `backend.port`, else 8000, when unset).
    pub port: u16,
    /// `PLINTH_EVENT_BUS`: the EventBridge bus to publish to, on AWS.
    pub event_bus: Option<String>,
    /// `PLINTH_EVENT_QUEUE_URL`: the module's SQS queue (`plinth-{module}-events`), consumed
    /// while the module serves (ECS; feature `aws`).
    pub event_queue_url: Option<String>,
    /// `PLINTH_INSTANCE_URL`: how the platform reaches this instance (default: the ECS task's
    /// address, else `http://127.0.0.1:{PORT}`).
    pub instance_url: Option<String>,
    /// `ECS_CONTAINER_METADATA_URI_V4`, which ECS sets: where the task's address is read.
    pub task_metadata_url: Option<String>,
}

impl ModuleEnv {
    /// Reads the process environment for the module of `manifest`.
    ///
    /// # Errors
    /// A [`SetupError`] when a variable is malformed or names another module.
    pub fn from_env(manifest: &Manifest) -> Result<Self, SetupError> {
        Self::from_vars(manifest, |name| std::env::var(name).ok())
    }

    /// Reads the variables from `var` (the environment, or a map in tests).
    ///
    /// ```
    /// use plinth_module_sdk::runtime::ModuleEnv;
    /// use plinth_module_sdk::Manifest;
    ///
    /// let manifest = Manifest::from_json_str(r#"{"name": "hr", "display_name": "HR",
    ///     "version": "0.1.0", "backend": {"type": "microservice", "api_prefix": "/api/v1/hr"}}"#)
    ///     .unwrap();
    /// let env = ModuleEnv::from_vars(&manifest, |name| match name {
    ///     "PORT" => Some("9001".into()),
    ///     _ => None,
    /// })
    /// .unwrap();
    /// assert_eq!((env.module.as_str(), env.port), ("hr", 9001));
    /// assert_eq!(env.platform_url, "http://127.0.0.1:8080");
    /// ```
    ///
    /// # Errors
    /// A [`SetupError`] when a variable is malformed or names another module, when both
    /// `PLINTH_API_KEY` and `PLINTH_API_KEY_SECRET` are set, or when the secret is set and the
    /// `aws` feature is off.
    pub fn from_vars(
        manifest: &Manifest,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SetupError> {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let module = match set("PLINTH_MODULE") {
            Some(name) if name != manifest.name.as_str() => {
                return Err(SetupError(format!(
                    "PLINTH_MODULE is `{name}`, but this is module `{}`",
                    manifest.name
                )));
            }
            _ => manifest.name.clone(),
        };
        let port = match set("PORT") {
            Some(port) => port
                .parse()
                .map_err(|_| SetupError(format!("PORT must be a port number, not `{port}`")))?,
            None => manifest.backend.port.unwrap_or(8000),
        };
        let api_key = match (set("PLINTH_API_KEY"), set("PLINTH_API_KEY_SECRET")) {
            (Some(_), Some(_)) => {
                return Err(SetupError(
                    "PLINTH_API_KEY and PLINTH_API_KEY_SECRET are both set: set the key itself \
                     (one machine) or the ARN of its secret (AWS), not both"
                        .into(),
                ));
            }
            (None, Some(secret)) => api_key_secret(&secret)?,
            (key, None) => ApiKey::given(&key.unwrap_or_default()),
        };
        Ok(Self {
            module,
            platform_url: set("PLINTH_URL").unwrap_or_else(|| DEFAULT_PLATFORM_URL.to_owned()),
            api_key,
            port,
            event_bus: set("PLINTH_EVENT_BUS"),
            event_queue_url: set("PLINTH_EVENT_QUEUE_URL"),
            instance_url: set("PLINTH_INSTANCE_URL"),
            task_metadata_url: set("ECS_CONTAINER_METADATA_URI_V4"),
        })
    }

    /// A client of the platform with the module's API key (shared by every client of this
    /// environment, so a key read again after a rotation serves them all).
    #[must_use]
    pub fn platform(&self) -> PlatformClient {
        PlatformClient::with_key(&self.platform_url, &self.module, self.api_key.clone())
    }

    /// A configuration client (share one per process: clones share its cache).
    #[must_use]
    pub fn config(&self) -> ConfigClient {
        ConfigClient::new(self.platform())
    }

    /// A verifier of context tokens with the platform's JWKS.
    #[must_use]
    pub fn verifier(&self) -> ContextVerifier {
        ContextVerifier::for_platform(&self.module, &self.platform_url)
    }

    /// The module's event publisher: EventBridge when `PLINTH_EVENT_BUS` is set (and the
    /// `eventbridge` feature is on), else the platform's bus through its API.
    pub async fn publisher(&self) -> Publisher {
        #[cfg(feature = "eventbridge")]
        if let Some(bus) = &self.event_bus {
            let eventbridge = crate::publisher::EventBridgePublisher::from_env(bus.clone()).await;
            return Publisher::new(&self.module, Arc::new(eventbridge));
        }
        Publisher::new(
            &self.module,
            Arc::new(PlatformPublisher::new(self.platform())),
        )
    }
}

#[cfg(feature = "aws")]
#[allow(clippy::unnecessary_wraps)] // Fails without the feature.
fn api_key_secret(secret: &str) -> Result<ApiKey, SetupError> {
    Ok(ApiKey::from_secret(secret))
}

#[cfg(not(feature = "aws"))]
fn api_key_secret(secret: &str) -> Result<ApiKey, SetupError> {
    Err(SetupError(format!(
        "PLINTH_API_KEY_SECRET names {secret}, but this build cannot read secrets: enable \
         plinth-module-sdk's `aws` feature"
    )))
}

/// A module's backend: its API, hooks and subscriptions, tied to its manifest.
///
/// ```
/// use axum::{Router, routing::get};
/// use plinth_module_sdk::runtime::Module;
/// use plinth_module_sdk::{Manifest, TenantContext, testkit::TestKit};
///
/// let manifest = Manifest::from_json_str(r#"{"name": "hr", "display_name": "HR",
///     "version": "0.1.0", "backend": {"type": "microservice", "api_prefix": "/api/v1/hr"}}"#)
///     .unwrap();
/// let api = Router::new().route("/me", get(|ctx: TenantContext| async move { ctx.user_id }));
/// let router = Module::new(manifest, TestKit::new("hr").verifier())
///     .api(api)
///     .router()
///     .expect("code and manifest fit");
/// // GET /api/v1/hr/me now answers for requests with a valid X-Plinth-Context.
/// # let _ = router;
/// ```
#[derive(Debug)]
pub struct Module {
    manifest: Arc<Manifest>,
    verifier: ContextVerifier,
    api: Router,
    hooks: Option<Arc<dyn Hooks>>,
    subscriptions: Option<Subscriptions>,
    visibility_timeout: Duration,
}

impl Module {
    /// A module with no routes yet, whose requests are verified by `verifier`.
    #[must_use]
    pub fn new(manifest: Manifest, verifier: ContextVerifier) -> Self {
        Self {
            manifest: Arc::new(manifest),
            verifier,
            api: Router::new(),
            hooks: None,
            subscriptions: None,
            visibility_timeout: DEFAULT_VISIBILITY_TIMEOUT,
        }
    }

    /// Adds API routes, with paths relative to the manifest's `api_prefix`; every one of them
    /// requires a valid tenant context.
    #[must_use]
    pub fn api(mut self, api: Router) -> Self {
        self.api = self.api.merge(api);
        self
    }

    /// Serves `hooks` on the paths the manifest declares under `hooks`.
    #[must_use]
    pub fn hooks(mut self, hooks: impl Hooks) -> Self {
        self.hooks = Some(Arc::new(hooks));
        self
    }

    /// Serves the subscriptions' handlers on the paths the manifest declares.
    #[must_use]
    pub fn subscriptions(mut self, subscriptions: Subscriptions) -> Self {
        self.subscriptions = Some(subscriptions);
        self
    }

    /// How long an event received from the module's queue stays hidden from other instances
    /// while its handlers run ([`DEFAULT_VISIBILITY_TIMEOUT`] unless set); when it passes
    /// before the event is delivered, the event is received again. Longer than the slowest
    /// handler, then.
    #[must_use]
    pub fn visibility_timeout(mut self, timeout: Duration) -> Self {
        self.visibility_timeout = timeout;
        self
    }

    /// The manifest.
    #[must_use]
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The whole backend as one router: the API under `api_prefix` behind
    /// [`verify_context`], the health check, hooks and subscriptions (which the gateway does
    /// not route to, so they take no user context).
    ///
    /// # Errors
    /// A [`SetupError`] when the verifier is for another module or a subscription handler
    /// has no subscription in the manifest.
    pub fn router(&self) -> Result<Router, SetupError> {
        let manifest = &self.manifest;
        if self.verifier.module() != manifest.name.as_str() {
            return Err(SetupError(format!(
                "the context verifier is for module `{}`, the manifest is `{}`",
                self.verifier.module(),
                manifest.name
            )));
        }
        let api = self.api.clone().layer(middleware::from_fn_with_state(
            self.verifier.clone(),
            verify_context,
        ));
        let prefix = manifest.backend.api_prefix.trim_end_matches('/');
        let mut router = Router::new()
            .nest(prefix, api)
            .route(&health_path(manifest), get(health(manifest)));
        if let Some(hooks) = &self.hooks {
            router = router.merge(hooks_router(manifest, hooks));
        }
        if let Some(subscriptions) = &self.subscriptions {
            subscriptions.check(manifest)?;
            router = router.merge(subscriptions.router(manifest));
        }
        Ok(router.fallback(|| async { ApiError::not_found("no such route") }))
    }

    /// Serves the module until the process is told to stop: as a Lambda function when
    /// `AWS_LAMBDA_RUNTIME_API` is set, else as an HTTP server on `env.port` (see
    /// [`Module::serve`]).
    ///
    /// Run as `<binary> health`, it serves nothing: it checks the instance serving on
    /// `env.port` (`GET http://127.0.0.1:{port}{health_check}`) and ends the process, with
    /// status `0` when it answers `2xx`, else `1` and the reason on stderr — the container
    /// health check `["CMD", "/proc/1/exe", "health"]`.
    ///
    /// # Errors
    /// A [`SetupError`] from [`Module::router`], when the API key's secret cannot be read, or
    /// why serving failed.
    pub async fn run(self, env: &ModuleEnv) -> Result<(), SetupError> {
        if std::env::args().nth(1).as_deref() == Some(health::HEALTH_COMMAND) {
            health::exit_with_check(&local_health_url(&self.manifest, env.port)).await;
        }
        #[cfg(feature = "lambda")]
        if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
            let router = self.router()?;
            load_api_key(env).await?;
            return lambda::run(router, self.manifest.clone(), self.subscriptions).await;
        }
        self.serve(env).await
    }

    /// Serves the module as an HTTP server on `env.port` until the process is told to stop
    /// (`SIGTERM`, `Ctrl-C`): reads the API key (from its secret, on AWS), registers the
    /// instance with the platform at its address (`PLINTH_INSTANCE_URL`, the ECS task's, or
    /// `127.0.0.1`) when there is a key, and consumes the module's event queue when
    /// `PLINTH_EVENT_QUEUE_URL` is set, stopping with the server.
    ///
    /// # Errors
    /// A [`SetupError`] from [`Module::router`]; when the API key's secret or the ECS task's
    /// address cannot be read, or the queue cannot be consumed (no `aws` feature); or why
    /// serving failed.
    pub async fn serve(self, env: &ModuleEnv) -> Result<(), SetupError> {
        let router = self.router()?;
        serve_http(router, self, env).await
    }
}

/// Reads the API key now when it comes from a secret, so that a module that cannot read it
/// fails to start, saying why.
#[cfg(any(feature = "server", feature = "lambda"))]
async fn load_api_key(env: &ModuleEnv) -> Result<(), SetupError> {
    if env.api_key.secret().is_none() {
        return Ok(());
    }
    env.api_key
        .load()
        .await
        .map_err(|e| SetupError(e.to_string()))
}

/// Where `<binary> health` asks: this host, the serving port, the manifest's health path.
fn local_health_url(manifest: &Manifest, port: u16) -> String {
    format!("http://127.0.0.1:{port}{}", health_path(manifest))
}

/// Sends `tracing` output to stderr: JSON lines when running in Lambda (for CloudWatch), text
/// otherwise — coloured only on a terminal, so a log file (`plinth up`'s `logs/`, a
/// container's log driver) gets no escape codes; the level comes from `RUST_LOG` (default
/// `info`). Does nothing when a subscriber is already set.
pub fn init_tracing() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn health_path(manifest: &Manifest) -> String {
    manifest
        .backend
        .health_check
        .clone()
        .unwrap_or_else(|| "/health".to_owned())
}

fn health(
    manifest: &Manifest,
) -> impl Fn() -> std::future::Ready<Json<serde_json::Value>> + Clone + use<> {
    let body = json!({
        "status": "ok",
        "module": manifest.name,
        "version": manifest.version.to_string(),
    });
    move || std::future::ready(Json(body.clone()))
}

/// Without the `server` feature there is no HTTP server to run.
#[cfg(not(feature = "server"))]
async fn serve_http(_router: Router, _module: Module, _env: &ModuleEnv) -> Result<(), SetupError> {
    Err(SetupError(
        "this build serves only as a Lambda function: enable plinth-module-sdk's `server` feature"
            .into(),
    ))
}

#[cfg(feature = "server")]
async fn serve_http(router: Router, module: Module, env: &ModuleEnv) -> Result<(), SetupError> {
    let instance = address::instance_url(env).await?;
    load_api_key(env).await?;
    // The consumer stops when the server does: on the signal, or when the sender is dropped.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let consuming = event_queue(&module, env, stopped).await?;
    let address = SocketAddr::from(([0, 0, 0, 0], env.port));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| SetupError(format!("cannot listen on {address}: {e}")))?;
    tracing::info!(module = %env.module, %address, %instance, "serving");
    let health_url = format!("{instance}{}", health_path(&module.manifest));
    if env.api_key.is_configured() {
        tokio::spawn(register(env.platform(), instance, health_url));
    } else {
        tracing::warn!(
            "neither PLINTH_API_KEY nor PLINTH_API_KEY_SECRET is set: this instance does not \
             register itself"
        );
    }
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            stop_signal().await;
            let _ = stop.send(true);
        })
        .await;
    if let Some(consuming) = consuming {
        let _ = consuming.await;
    }
    served.map_err(|e| SetupError(format!("serving failed: {e}")))
}

/// Starts consuming the module's queue until `stopped`: the one `PLINTH_EVENT_QUEUE_URL`
/// names, or — on AWS (`PLINTH_EVENT_BUS` set) for a module that subscribes to events — its
/// queue `plinth-{module}-events`, once the platform has created it.
#[cfg(all(feature = "server", feature = "aws"))]
async fn event_queue(
    module: &Module,
    env: &ModuleEnv,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<()>>, SetupError> {
    let (manifest, subscriptions) = (module.manifest.clone(), module.subscriptions.clone());
    let consumer = match &env.event_queue_url {
        Some(url) => {
            queue::QueueConsumer::from_env(url, module.visibility_timeout, manifest, subscriptions)
                .await
        }
        None if env.event_bus.is_some() && !module.manifest.events.subscribes.is_empty() => {
            let name = format!("plinth-{}-events", env.module);
            queue::QueueConsumer::named(&name, module.visibility_timeout, manifest, subscriptions)
                .await
        }
        None => return Ok(None),
    };
    Ok(Some(tokio::spawn(consumer.run(stopped))))
}

#[cfg(all(feature = "server", not(feature = "aws")))]
async fn event_queue(
    _module: &Module,
    env: &ModuleEnv,
    _stopped: tokio::sync::watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<()>>, SetupError> {
    match &env.event_queue_url {
        None => Ok(None),
        Some(url) => Err(SetupError(format!(
            "PLINTH_EVENT_QUEUE_URL is {url}, but this build cannot read SQS queues: enable \
             plinth-module-sdk's `aws` feature"
        ))),
    }
}

/// Registers the instance, retrying a few times while the platform is not reachable yet.
#[cfg(feature = "server")]
async fn register(platform: PlatformClient, instance: String, health_url: String) {
    let mut delay = Duration::from_millis(250);
    for attempt in 1..=6 {
        match platform.register_instance(&instance, &health_url).await {
            Ok(()) => {
                tracing::info!(%instance, "registered with the platform");
                return;
            }
            Err(error) if attempt < 6 && error.status().is_none_or(|s| s.is_server_error()) => {
                tracing::debug!(%error, attempt, "registration failed; retrying");
            }
            Err(error) => {
                tracing::warn!(%error, "cannot register this instance with the platform");
                return;
            }
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
}

#[cfg(feature = "server")]
async fn stop_signal() {
    #[cfg(unix)]
    if let Ok(mut terminate) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = terminate.recv() => {},
        }
        return;
    }
    let _ = tokio::signal::ctrl_c().await;
}
