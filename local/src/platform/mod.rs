//! The whole platform in one process: gateway and registry API, authorizer, config resolver,
//! installer worker, health checker and local bus, on the embedded store — or, with `--aws`,
//! on every AWS adapter an emulator (or an account) at `AWS_ENDPOINT_URL` can serve: see
//! [`ON_AWS`] and [`STAYS_LOCAL`].

mod demo;
mod ecr;
mod reaper;
mod secrets;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use plinth_registry::aws;
use plinth_registry::bundles::{self, folder::FolderBundles, s3::S3Bundles};
use plinth_registry::config::EnabledForTenants;
use plinth_registry::deploy::TableProvisioner;
use plinth_registry::deploy::local::{EmbeddedTableFiles, ProcessDeployer};
use plinth_registry::events::eventbridge::EventBridgeBus;
use plinth_registry::events::local::{Delivered, LocalBus};
use plinth_registry::events::{EventBus, Subscriptions};
use plinth_registry::identity::{ProviderSettings, TokenVerifier};
use plinth_registry::queue::LocalQueue;
use plinth_registry::store::Store;
use plinth_registry::store::dynamodb::DynamoStore;
use plinth_registry::store::embedded::EmbeddedStore;
use plinth_registry::usage::{self, Prices};
use plinth_registry::{App, Identity, Ports, Settings};
use tokio::net::TcpListener;

use crate::console::{Console, Oidc, OidcSettings};
use crate::gateway::Gateway;

pub use demo::{DemoReport, demo_token};
pub use secrets::{DEFAULT_DATA_DIR, SecretSource, find_jwt_secret, jwt_secret};

/// The folder of the data directory where module backends keep their tables
/// (`PLINTH_TABLES_DIR`), one file per module.
pub const TABLES_DIR: &str = "tables";

/// How to run the platform.
#[derive(Debug, Clone)]
pub struct Options {
    pub port: u16,
    pub data_dir: PathBuf,
    pub demo: bool,
    /// On AWS services (`--aws`), with these names.
    pub aws: Option<AwsNames>,
    /// Where module backends' `dev_command`s run (the repository root for the examples).
    pub working_dir: PathBuf,
}

/// The names `plinth up --aws` uses on AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsNames {
    /// The control plane's DynamoDB table (`PLINTH_TABLE`, default `plinth`), created if missing.
    pub table: String,
    /// The EventBridge bus (`PLINTH_EVENT_BUS`, default `plinth`), created if missing.
    pub event_bus: String,
}

impl AwsNames {
    #[must_use]
    pub fn from_env() -> Self {
        Self {
            table: env("PLINTH_TABLE").unwrap_or_else(|| "plinth".into()),
            event_bus: env("PLINTH_EVENT_BUS").unwrap_or_else(|| "plinth".into()),
        }
    }
}

/// A running platform: its address and the handles to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub app: App,
    deployer: Arc<ProcessDeployer>,
    /// The in-process bus, whose deliveries in flight a stop waits for.
    local_bus: Option<Arc<LocalBus>>,
    listener: Option<TcpListener>,
    secret: String,
    /// The console's sign-in through the identity provider, when one is configured.
    oidc: Option<Arc<Oidc>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn prepare_data_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot use the data directory {}", dir.display()))?;
    let probe = dir.join(".plinth-write-test");
    std::fs::write(&probe, b"ok")
        .with_context(|| format!("the data directory {} is not writable", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// What `plinth up --aws` runs on AWS's services (at `AWS_ENDPOINT_URL`).
pub const ON_AWS: &str = "the control plane's table and modules' tables in DynamoDB, events on \
    an EventBridge bus, delivered to modules through their SQS queues, and ECR pushes (an image \
    carrying its manifest publishes it, read from ECR)";

/// What stays on this machine with `--aws`, and why.
pub const STAYS_LOCAL: &str = "module backends run as local processes (an emulator runs no \
    containers or functions), the gateway serves their routes (it cannot serve API Gateway), and \
    the installer runs in this process (it cannot invoke the installer function); the JWT secret, \
    the context key and modules' API keys stay in the data directory and the processes' \
    environment, not Secrets Manager";

/// Where the platform keeps its state and carries its events.
struct Adapters {
    store: Arc<dyn Store>,
    tables: Arc<dyn TableProvisioner>,
    bus: Arc<dyn EventBus>,
    subscriptions: Arc<dyn Subscriptions>,
    /// The in-process bus, when events stay on this machine.
    local_bus: Option<Arc<LocalBus>>,
    /// The EventBridge bus modules publish to, with `--aws`.
    event_bus: Option<String>,
    /// The AWS configuration, with `--aws`.
    sdk: Option<aws_config::SdkConfig>,
}

async fn open_adapters(options: &Options) -> Result<Adapters> {
    if let Some(names) = &options.aws {
        return aws_adapters(names).await;
    }
    let path = options.data_dir.join("plinth.redb");
    let store = EmbeddedStore::open(&path).map_err(|e| {
        anyhow::anyhow!(
            "{e} (is another `plinth up` using {}?)",
            options.data_dir.display()
        )
    })?;
    let bus = Arc::new(LocalBus::default());
    Ok(Adapters {
        store: Arc::new(store),
        // Modules create their files themselves; dropping a module's data deletes its file.
        tables: Arc::new(EmbeddedTableFiles::new(options.data_dir.join(TABLES_DIR))),
        bus: bus.clone(),
        subscriptions: bus.clone(),
        local_bus: Some(bus),
        event_bus: None,
        sdk: None,
    })
}

async fn aws_adapters(names: &AwsNames) -> Result<Adapters> {
    let config = aws::config_from_env().await;
    let at = || std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "AWS".into());
    let store = DynamoStore::new(&config, names.table.clone());
    store
        .create_table()
        .await
        .with_context(|| format!("cannot reach DynamoDB at {}", at()))?;
    let bus_name = names.event_bus.clone();
    let bus = Arc::new(EventBridgeBus::new(&config, bus_name.clone()));
    bus.create_if_missing()
        .await
        .map_err(|e| anyhow::anyhow!("{e} (at {})", at()))?;
    Ok(Adapters {
        store: Arc::new(store),
        tables: Arc::new(plinth_registry::deploy::dynamodb_tables::DynamoTables::new(
            &config,
        )),
        bus: bus.clone(),
        subscriptions: bus,
        local_bus: None,
        event_bus: Some(bus_name),
        sdk: Some(config),
    })
}

/// Who signs users in: an identity provider (its tokens accepted beside the platform's own
/// secret's) and the console's client at it (docs/identity.md, docs/console.md).
#[derive(Debug, Clone, Default)]
pub struct IdentitySettings {
    pub provider: Option<ProviderSettings>,
    pub console: Option<OidcSettings>,
}

impl IdentitySettings {
    /// `PLINTH_JWKS_URL` and the rest, and `PLINTH_OIDC_CLIENT_ID` and the rest.
    pub fn from_env() -> Result<Self> {
        Ok(Self {
            provider: ProviderSettings::from_env(),
            console: OidcSettings::from_env().map_err(|e| anyhow::anyhow!("{e}"))?,
        })
    }
}

/// Builds the platform and binds its port; nothing is served until [`Running::serve`]. Users
/// sign in as the environment says ([`IdentitySettings::from_env`]).
pub async fn start(options: &Options) -> Result<Running> {
    start_with(options, IdentitySettings::from_env()?).await
}

/// [`start`], with users signing in as `identity` says.
pub async fn start_with(options: &Options, identity: IdentitySettings) -> Result<Running> {
    prepare_data_dir(&options.data_dir)?;
    let listener = TcpListener::bind(("127.0.0.1", options.port))
        .await
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                anyhow::anyhow!(
                    "port {} is busy: stop what uses it, or pick another with --port",
                    options.port
                )
            } else {
                anyhow::anyhow!("cannot listen on 127.0.0.1:{}: {e}", options.port)
            }
        })?;
    let addr = listener.local_addr()?;
    let adapters = open_adapters(options).await?;
    let secret = jwt_secret(&options.data_dir)?;
    let development = TokenVerifier::hs256(
        secret.as_bytes(),
        env("PLINTH_JWT_ISSUER").as_deref(),
        env("PLINTH_JWT_AUDIENCE").as_deref(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    // An identity provider's tokens when PLINTH_JWKS_URL names one; the platform's own secret
    // keeps working beside it on one machine (`plinth token`, the demo).
    let tokens = match &identity.provider {
        Some(provider) => provider
            .verifier()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .with_development_secret(development),
        None => development,
    };
    let oidc = match (identity.console, &identity.provider) {
        (None, _) => None,
        (Some(_), None) => bail!(
            "PLINTH_OIDC_CLIENT_ID needs an identity provider: set PLINTH_JWKS_URL (or `oidc`), \
             PLINTH_JWT_ISSUER and PLINTH_JWT_AUDIENCE"
        ),
        (Some(console), Some(provider)) => Some(Arc::new(
            Oidc::new(
                console.or_callback_of(&format!("http://{addr}")),
                &provider.issuer,
                &provider.audience,
                secret.as_bytes(),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        )),
    };
    let context = secrets::context_key(&options.data_dir)?;
    let logs = options.data_dir.join("logs");
    let reaped = reaper::reap(&logs);
    if !reaped.is_empty() {
        tracing::warn!(
            pids = ?reaped,
            "stopped module backends a previous plinth up on {} left running",
            options.data_dir.display()
        );
    }
    let mut deployer = ProcessDeployer::new(&options.working_dir, logs)
        .with_start_timeout(Duration::from_secs(600));
    if options.aws.is_none() {
        // Modules' tables on this machine, beside the platform's store; with `--aws` they are
        // in DynamoDB (the backends inherit `AWS_ENDPOINT_URL`).
        deployer = deployer.with_tables_dir(options.data_dir.join(TABLES_DIR));
    }
    let deployer = Arc::new(deployer);
    // A running backend holds its tables file: an export reads it by stopping the backend
    // for that moment (docs/operations.md, "Export and retention").
    let tables = if options.aws.is_none() {
        Arc::new(
            EmbeddedTableFiles::new(options.data_dir.join(TABLES_DIR))
                .with_backends(deployer.clone()),
        )
    } else {
        adapters.tables
    };
    let (queue, worker) = tokio::sync::mpsc::unbounded_channel();
    let mut ports = Ports::new(adapters.store, adapters.bus, Arc::new(LocalQueue(queue)))
        .with_subscriptions(adapters.subscriptions)
        .with_deployer(deployer.clone())
        .with_tables(tables);
    if let Some(bus) = &adapters.local_bus {
        ports = ports.with_dead_letters(bus.clone());
    }
    // Module bundles in the data directory; with `--aws` and PLINTH_BUNDLES_BUCKET, in S3.
    ports = match (&adapters.sdk, env("PLINTH_BUNDLES_BUCKET")) {
        (Some(sdk), Some(bucket)) => ports.with_bundles(Arc::new(S3Bundles::new(sdk, bucket))),
        _ => ports.with_bundles(Arc::new(FolderBundles::new(&options.data_dir))),
    };
    let bundles_origin = env("PLINTH_BUNDLES_ORIGIN")
        .map(|origin| bundles::parse_origin(&origin).map_err(|e| anyhow::anyhow!(e)))
        .transpose()?;
    let settings = Settings {
        public_url: format!("http://{addr}"),
        event_bus: adapters.event_bus,
        // Benchmarks raise every tier's limit so that they measure the gateway, not 429s.
        rate_limit_scale: env("PLINTH_RATE_LIMIT_SCALE")
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(1),
        // Backends are this process's children and, off AWS, rules live in its bus: an
        // operation it resumes from a stopped one deploys and subscribes again.
        redeploy_on_resume: true,
        prices: usage_prices()?,
        bundles_origin,
        data_retention_days: env("PLINTH_DATA_RETENTION_DAYS")
            .map(|days| plinth_registry::export::parse_retention_days(&days))
            .transpose()
            .map_err(|e| anyhow::anyhow!(e))?,
        ..Settings::default()
    };
    let identity = Identity {
        tokens,
        context: Arc::new(context),
    };
    let app = App::build(ports, identity, settings);
    if let Some(bus) = &adapters.local_bus {
        bus.set_enabled_tenants(Arc::new(EnabledForTenants(Arc::downgrade(
            &app.plane.config,
        ))));
        let meter = Arc::clone(app.plane.usage.meter());
        bus.on_delivered(Delivered(Arc::new(move |tenant, module| {
            meter.shared().delivered(tenant, module.as_str());
        })));
    }
    spawn_workers(&app, adapters.local_bus.as_ref(), worker).await?;
    if let (Some(sdk), Some(names)) = (&adapters.sdk, &options.aws) {
        ecr::listen(&app, sdk, &names.table).await?;
    }
    Ok(Running {
        addr,
        app,
        deployer,
        local_bus: adapters.local_bus,
        listener: Some(listener),
        secret,
        oidc,
    })
}

/// How long a stop waits for the local bus's deliveries in flight (within a supervisor's usual
/// 10 s between SIGTERM and SIGKILL).
const DRAIN: Duration = Duration::from_secs(5);

/// Each tier's prices for usage's bill estimates: `PLINTH_USAGE_PRICES` (JSON), else the
/// defaults (docs/operations.md).
fn usage_prices() -> Result<Prices> {
    match env("PLINTH_USAGE_PRICES") {
        Some(text) => Prices::parse(&text)
            .map_err(|e| anyhow::anyhow!("PLINTH_USAGE_PRICES is not a price list: {e}")),
        None => Ok(Prices::default()),
    }
}

/// How often usage is flushed to the store: `PLINTH_USAGE_FLUSH_SECS`, else
/// [`usage::FLUSH_INTERVAL`] — the most a crash loses.
fn usage_flush_interval() -> Duration {
    env("PLINTH_USAGE_FLUSH_SECS")
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|n| *n > 0)
        .map_or(usage::FLUSH_INTERVAL, Duration::from_secs)
}

/// How often rollouts are stepped: `PLINTH_ROLLOUT_TICK_SECS`, else [`TICK`](plinth_registry::rollout::TICK).
fn rollout_tick() -> Duration {
    env("PLINTH_ROLLOUT_TICK_SECS")
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|n| *n > 0)
        .map_or(plinth_registry::rollout::TICK, Duration::from_secs)
}

/// Gateway threads: `PLINTH_GATEWAY_THREADS`, or one per core.
fn gateway_threads() -> usize {
    env("PLINTH_GATEWAY_THREADS")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

async fn spawn_workers(
    app: &App,
    bus: Option<&Arc<LocalBus>>,
    worker: tokio::sync::mpsc::UnboundedReceiver<plinth_module_sdk::ModuleName>,
) -> Result<()> {
    // This process's own changes reach its caches as they are committed; the local bus also
    // carries them as events (an EventBridge bus has no listener here: nothing else writes).
    if let Some(bus) = bus {
        listen(app, bus);
    }
    let installer = &app.plane.installer;
    claim_unfinished(app).await;
    let restored = installer
        .restore_installed()
        .await
        .map_err(|e| anyhow::anyhow!("cannot restore installed modules: {e}"))?;
    if !restored.is_empty() {
        let names: Vec<String> = restored.iter().map(ToString::to_string).collect();
        tracing::info!("restarting installed modules: {}", names.join(", "));
    }
    tokio::spawn(Arc::clone(installer).run_worker(worker));
    tokio::spawn(Arc::clone(&app.plane.instances).run_health_checker(Duration::from_secs(10)));
    tokio::spawn(Arc::clone(&app.plane.usage).run_flusher(usage_flush_interval()));
    // Rollouts found running in the store (a restart) carry on from their stored state.
    tokio::spawn(Arc::clone(&app.plane.rollouts).run_driver(rollout_tick()));
    Ok(())
}

/// Claims each operation the previous process left unfinished with a conditional write of its
/// own, before anything reads what is installed. A write that process sent just before it died
/// can still land (a DynamoDB request in flight outlives its sender): it then fails its
/// condition, or — landing first — is seen here, and the module it finished is restored like
/// every installed one rather than left without its backend.
async fn claim_unfinished(app: &App) {
    let plane = &app.plane;
    let Ok(unfinished) = plane.installations.unfinished().await else {
        return; // the worker lists them again, and says why it cannot
    };
    let caller = demo::platform_caller("plinth-up");
    for module in unfinished {
        for _ in 0..3 {
            match plane.installer.retry(&caller, &module).await {
                // Moved meanwhile: look again (it may be finished now, or still running).
                Err(plinth_registry::Error::Conflict(_)) => {}
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(module = %module, error = %e.chain(), "cannot claim the unfinished operation");
                    break;
                }
            }
        }
    }
}

/// Hands the local bus's events to the control plane's caches.
fn listen(app: &App, bus: &Arc<LocalBus>) {
    let mut events = bus.subscribe();
    let plane = Arc::clone(&app.plane);
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => plane.on_event(&event),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    plane.forget_everything();
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

impl Running {
    /// Serves until `shutdown` resolves, then stops the module backends it started.
    ///
    /// The gateway runs one single-threaded runtime per core, each accepting on the same
    /// socket (as nginx runs a worker process per core): a request and its upstream call stay
    /// on one thread, with no hand-offs between threads. Background work (installer, health
    /// checker, event deliveries) stays on the caller's runtime.
    pub async fn serve(
        mut self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let Some(listener) = self.listener.take() else {
            bail!("already served");
        };
        let listener = listener.into_std()?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut workers = Vec::new();
        // One client for every thread's console, made before the first request.
        let console_client = plinth_console::http_client();
        for index in 0..gateway_threads() {
            let listener = listener.try_clone()?;
            let console = Console::new(
                Arc::clone(&self.app.plane),
                &self.secret,
                &format!("http://{}", self.addr),
            )
            .with_client(console_client.clone());
            let console = match &self.oidc {
                Some(oidc) => console.with_oidc(Arc::clone(oidc)),
                None => console,
            };
            let gateway = Gateway::of_with(&self.app, console.router());
            let mut stopped = stopped.clone();
            let worker = std::thread::Builder::new()
                .name(format!("plinth-gateway-{index}"))
                .spawn(move || -> std::io::Result<()> {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime.block_on(async move {
                        let listener = TcpListener::from_std(listener)?;
                        gateway
                            .serve(listener, async move {
                                let _ = stopped.wait_for(|stop| *stop).await;
                            })
                            .await
                    })
                })?;
            workers.push(worker);
        }
        shutdown.await;
        let _ = stop.send(true);
        for worker in workers {
            match tokio::task::spawn_blocking(move || worker.join()).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::error!(error = %e, "gateway thread failed"),
                _ => tracing::error!("gateway thread panicked"),
            }
        }
        // Events answered 202 live only in this process's bus until delivered: deliver what is
        // in flight (the gateway takes no more) before the backends stop.
        if let Some(bus) = &self.local_bus
            && tokio::time::timeout(DRAIN, bus.idle()).await.is_err()
        {
            tracing::warn!(
                "stopping with event deliveries still in flight after {} s",
                DRAIN.as_secs()
            );
        }
        // What the gateway and the bus counted since the last flush (the deliveries just
        // drained included).
        if let Err(error) = self.app.plane.usage.flush().await {
            tracing::error!(error = %error.chain(), "usage since the last flush was not kept");
        }
        self.deployer.stop_all().await;
        Ok(())
    }

    /// What the demo needs, to run while the server serves.
    pub fn demo(&self) -> Demo {
        Demo {
            app: self.app.clone(),
            secret: self.secret.clone(),
        }
    }
}

/// Sets up the demo on a running platform.
#[derive(Debug, Clone)]
pub struct Demo {
    app: App,
    secret: String,
}

impl Demo {
    /// Publishes, installs and enables the example modules for tenant `acme`.
    pub async fn run(&self, examples: &Path) -> Result<DemoReport> {
        demo::run(&self.app, examples, &self.secret).await
    }
}
