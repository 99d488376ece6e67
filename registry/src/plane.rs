//! The control plane: its domain services, built together over one set of ports. Each
//! service holds only the ports and services it uses and owns its caches; they reach each
//! other's caches only through [`Staleness`], and every write goes through [`Changes`].

use std::sync::Arc;

use crate::api_keys::ApiKeys;
use crate::audit::Audit;
use crate::bundles::{BundleStore, NoBundleStore};
use crate::cache::Staleness;
use crate::catalog::Catalog;
use crate::changes::Changes;
use crate::config::ConfigResolver;
use crate::deploy::backend::InstallerOnly;
use crate::deploy::module_secrets::{KeysInEnvironment, ModuleKeySecrets};
use crate::deploy::{Deployer, TableProvisioner};
use crate::enablement::Enablement;
use crate::events::dead_letters::DeadLetterQueue;
use crate::events::{Event, EventBus, Subscriptions};
use crate::export::Exports;
use crate::hooks::{Hooks, ModuleHooks};
use crate::identity::{ContextSigner, TokenVerifier};
use crate::install::{
    InstallSettings, Installer, InstallerPorts, InstallerServices, StepObserver, SweepPolicy,
};
use crate::installation::Installations;
use crate::instances::Instances;
use crate::module_events::ModuleEvents;
use crate::queue::InstallQueue;
use crate::rate_budget::RateBudget;
use crate::rbac::Rbac;
use crate::reach::{Reach, Reaches};
use crate::rollout::Rollouts;
use crate::store::Store;
use crate::tenancy::Tenancy;
use crate::usage::{Prices, Usage};
use crate::versions::Versions;

/// The adapters a platform runs on. [`Ports::new`] is the one place they are assembled:
/// what it does not name runs nothing (every module resource is refused, as in the AWS
/// functions other than the installer), and the `with_*` methods put the real ones in.
#[derive(Debug, Clone)]
pub struct Ports {
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    install_queue: Arc<dyn InstallQueue>,
    subscriptions: Arc<dyn Subscriptions>,
    deployer: Arc<dyn Deployer>,
    tables: Arc<dyn TableProvisioner>,
    reach: Arc<dyn Reach>,
    hooks: Option<Arc<dyn Hooks>>,
    module_keys: Arc<dyn ModuleKeySecrets>,
    step_observer: Option<Arc<dyn StepObserver>>,
    dead_letters: Option<Arc<dyn DeadLetterQueue>>,
    bundles: Arc<dyn BundleStore>,
}

impl Ports {
    /// The store, the bus and the install queue; modules reached over HTTP only, and nothing
    /// that creates module resources.
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        install_queue: Arc<dyn InstallQueue>,
    ) -> Self {
        Self {
            store,
            bus,
            install_queue,
            subscriptions: Arc::new(InstallerOnly),
            deployer: Arc::new(InstallerOnly),
            tables: Arc::new(InstallerOnly),
            reach: Arc::new(Reaches::http()),
            hooks: None,
            module_keys: Arc::new(KeysInEnvironment),
            step_observer: None,
            dead_letters: None,
            bundles: Arc::new(NoBundleStore),
        }
    }

    /// Where published module bundles are kept (a folder of the data directory, an S3
    /// bucket); without it a publish with a bundle is refused.
    pub fn with_bundles(mut self, bundles: Arc<dyn BundleStore>) -> Self {
        self.bundles = bundles;
        self
    }

    /// Where undelivered events are kept and replayed (the local bus); without it the API
    /// says they are not kept by this platform.
    pub fn with_dead_letters(mut self, dead_letters: Arc<dyn DeadLetterQueue>) -> Self {
        self.dead_letters = Some(dead_letters);
        self
    }

    pub fn with_deployer(mut self, deployer: Arc<dyn Deployer>) -> Self {
        self.deployer = deployer;
        self
    }

    pub fn with_tables(mut self, tables: Arc<dyn TableProvisioner>) -> Self {
        self.tables = tables;
        self
    }

    pub fn with_subscriptions(mut self, subscriptions: Arc<dyn Subscriptions>) -> Self {
        self.subscriptions = subscriptions;
        self
    }

    /// How the platform calls modules' hooks and health checks (on AWS: HTTP and Lambda
    /// `Invoke`).
    pub fn with_reach(mut self, reach: Arc<dyn Reach>) -> Self {
        self.reach = reach;
        self
    }

    /// Hooks other than [`ModuleHooks`] over the reach (tests shorten their timeout).
    pub fn with_hooks(mut self, hooks: Arc<dyn Hooks>) -> Self {
        self.hooks = Some(hooks);
        self
    }

    /// Where modules read their API keys (on AWS, their secrets): a rotation writes there.
    pub fn with_module_keys(mut self, module_keys: Arc<dyn ModuleKeySecrets>) -> Self {
        self.module_keys = module_keys;
        self
    }

    /// Told after each saga step: the seam the tests and crash drills stop sagas with (a
    /// platform that is not being drilled has none).
    pub fn with_step_observer(mut self, observer: Arc<dyn StepObserver>) -> Self {
        self.step_observer = Some(observer);
        self
    }
}

/// What the platform was configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The URL modules reach the platform at (`PLINTH_URL` in their environment).
    pub public_url: String,
    /// The EventBridge bus modules publish to, on AWS (`PLINTH_EVENT_BUS`).
    pub event_bus: Option<String>,
    /// Every tier's rate limit is multiplied by this (benchmarks raise it, so that they
    /// measure the gateway rather than 429s).
    pub rate_limit_scale: u32,
    /// When the installer's sweep counts an operation as stuck (`install::SweepPolicy`).
    pub sweep: SweepPolicy,
    /// `install::InstallSettings::redeploy_on_resume`: `plinth up`, whose backends and rules
    /// end with its process.
    pub redeploy_on_resume: bool,
    /// Each tier's prices, for usage's bill estimates (`usage::Prices`).
    pub prices: Prices,
    /// Whether tenants' rate limits hold across processes ([`RateBudget`]): on AWS, where
    /// every warm authorizer instance decides on its own (`PLINTH_SHARED_RATE_LIMITS`).
    pub shared_rate_limits: bool,
    /// Where module bundles are served from when not from the platform's own origin
    /// (`PLINTH_BUNDLES_ORIGIN`: an S3 or CloudFront origin); the console's CSP lists it.
    pub bundles_origin: Option<String>,
    /// Days an uninstall keeps a module's data before the sweep drops it
    /// (`PLINTH_DATA_RETENTION_DAYS`); `None`: 30.
    pub data_retention_days: Option<u32>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            public_url: String::new(),
            event_bus: None,
            rate_limit_scale: 1,
            sweep: SweepPolicy::default(),
            redeploy_on_resume: false,
            prices: Prices::default(),
            shared_rate_limits: false,
            bundles_origin: None,
            data_retention_days: None,
        }
    }
}

/// Who the platform trusts and how it vouches for callers to modules.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Verifies users' tokens.
    pub tokens: TokenVerifier,
    /// Signs the tenant context handed to module backends.
    pub context: Arc<ContextSigner>,
}

/// The control plane's services.
#[derive(Debug)]
pub struct ControlPlane {
    pub catalog: Arc<Catalog>,
    pub installations: Arc<Installations>,
    pub installer: Arc<Installer>,
    pub instances: Arc<Instances>,
    pub api_keys: Arc<ApiKeys>,
    pub tenancy: Arc<Tenancy>,
    pub enablement: Arc<Enablement>,
    pub config: Arc<ConfigResolver>,
    pub rbac: Arc<Rbac>,
    pub audit: Arc<Audit>,
    pub module_events: Arc<ModuleEvents>,
    /// Usage metering: the meter the gateway counts into, its flushes, the reports.
    pub usage: Arc<Usage>,
    pub versions: Arc<Versions>,
    /// Exports of a tenant's rows of a module's tables.
    pub exports: Arc<Exports>,
    /// Staged rollouts, and what the gateway saw of each version for them.
    pub rollouts: Arc<Rollouts>,
    /// Undelivered events, when this platform keeps them (one machine).
    pub dead_letters: Option<Arc<dyn DeadLetterQueue>>,
    /// Tenants' budgets of requests per second shared by every process, when
    /// [`Settings::shared_rate_limits`].
    pub rate_budget: Option<Arc<RateBudget>>,
    pub identity: Identity,
    pub settings: Settings,
    changes: Arc<Changes>,
    staleness: Arc<Staleness>,
}

impl ControlPlane {
    pub fn build(ports: Ports, identity: Identity, settings: Settings) -> Self {
        let Ports {
            store,
            bus,
            install_queue,
            subscriptions,
            deployer,
            tables,
            reach,
            hooks,
            module_keys,
            step_observer,
            dead_letters,
            bundles,
        } = ports;
        let hooks = hooks.unwrap_or_else(|| Arc::new(ModuleHooks::new(Arc::clone(&reach))));
        let staleness = Arc::new(Staleness::default());
        let changes = Arc::new(Changes::new(
            Arc::clone(&store),
            Arc::clone(&bus),
            Arc::clone(&staleness),
        ));
        let catalog = Arc::new(Catalog::new(
            Arc::clone(&store),
            Arc::clone(&changes),
            Arc::clone(&bundles),
        ));
        let installations = Arc::new(Installations::new(Arc::clone(&store)));
        let api_keys = Arc::new(ApiKeys::new(
            Arc::clone(&store),
            Arc::clone(&changes),
            Arc::clone(&catalog),
            module_keys,
            &staleness,
        ));
        let instances = Arc::new(Instances::new(
            Arc::clone(&store),
            Arc::clone(&changes),
            Arc::clone(&installations),
            reach,
        ));
        let tenancy = Arc::new(Tenancy::new(
            Arc::clone(&store),
            Arc::clone(&changes),
            &staleness,
        ));
        let rbac = Arc::new(Rbac::new(
            Arc::clone(&store),
            Arc::clone(&changes),
            Arc::clone(&tenancy),
            Arc::clone(&installations),
            &staleness,
        ));
        let versions = Arc::new(Versions::new(
            Arc::clone(&store),
            Arc::clone(&changes),
            Arc::clone(&installations),
            Arc::clone(&tenancy),
            &staleness,
        ));
        let config = Arc::new(ConfigResolver::new(
            Arc::clone(&store),
            Arc::clone(&installations),
            &staleness,
        ));
        let exports = Arc::new(
            Exports::new(
                Arc::clone(&tables),
                bundles,
                Arc::clone(&tenancy),
                Arc::clone(&store),
            )
            .with_retention_days(settings.data_retention_days),
        );
        let enablement = Arc::new(Enablement::new(
            Arc::clone(&store),
            Arc::clone(&changes),
            Arc::clone(&hooks),
            Arc::clone(&instances),
            Arc::clone(&installations),
            Arc::clone(&tenancy),
            Arc::clone(&exports),
        ));
        let module_events = Arc::new(ModuleEvents::new(
            Arc::clone(&bus),
            Arc::clone(&installations),
            Arc::clone(&config),
        ));
        let rollouts = Arc::new(Rollouts::new(
            Arc::clone(&store),
            Arc::clone(&changes),
            Arc::clone(&installations),
            Arc::clone(&instances),
            Arc::clone(&versions),
        ));
        let usage = Arc::new(Usage::new(Arc::clone(&store), settings.prices.clone()));
        let installer = Arc::new(Installer::new(
            InstallerPorts {
                deployer,
                tables: Arc::clone(&tables),
                subscriptions,
                hooks,
                queue: install_queue,
            },
            InstallerServices {
                changes: Arc::clone(&changes),
                catalog: Arc::clone(&catalog),
                installations: Arc::clone(&installations),
                api_keys: Arc::clone(&api_keys),
                instances: Arc::clone(&instances),
                versions: Arc::clone(&versions),
                exports: Arc::clone(&exports),
            },
            InstallSettings {
                public_url: settings.public_url.clone(),
                event_bus: settings.event_bus.clone(),
                sweep: settings.sweep,
                redeploy_on_resume: settings.redeploy_on_resume,
                data_retention_days: settings.data_retention_days,
            },
            step_observer,
        ));
        Self {
            catalog,
            installations,
            installer,
            instances,
            api_keys,
            tenancy,
            enablement,
            config,
            rbac,
            rate_budget: settings
                .shared_rate_limits
                .then(|| Arc::new(RateBudget::new(Arc::clone(&store)))),
            audit: Arc::new(Audit::new(store)),
            module_events,
            usage,
            versions,
            exports,
            rollouts,
            dead_letters,
            identity,
            settings,
            changes,
            staleness,
        }
    }

    /// Drops what a platform event made stale (changes made by other processes).
    pub fn on_event(&self, event: &Event) {
        self.changes.on_event(event);
    }

    /// Drops everything cached (when change events may have been missed).
    pub fn forget_everything(&self) {
        self.changes.forget_everything();
    }

    /// Where every change is counted and announced to caches.
    pub(crate) fn staleness(&self) -> &Arc<Staleness> {
        &self.staleness
    }
}
