//! The control plane's state: its ports and its settings. Domain operations are methods on
//! [`Platform`], grouped by concept in their own modules (`catalog`, `install`, `tenancy`,
//! `config`, …).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use plinth_module_sdk::ModuleName;

use crate::cache::TtlCache;

use crate::deploy::{Deployer, TableProvisioner};
use crate::error::Result;
use crate::events::{Event, EventBus, Subscriptions};
use crate::gateway::{ModuleRoutes, Passes, RateLimits};
use crate::hooks::Hooks;
use crate::identity::ContextSigner;
use crate::identity::TokenVerifier;
use crate::install::{InstallQueue, Step};
use crate::rbac::Grants;
use crate::store::{Store, Write};
use crate::tenancy::Tenant;
use plinth_module_sdk::wire::ResolvedConfig;

/// The adapters a platform runs on.
#[derive(Debug, Clone)]
pub struct Ports {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn EventBus>,
    pub subscriptions: Arc<dyn Subscriptions>,
    pub deployer: Arc<dyn Deployer>,
    pub tables: Arc<dyn TableProvisioner>,
    pub hooks: Arc<dyn Hooks>,
    pub install_queue: Arc<dyn InstallQueue>,
}

/// What the platform was configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The URL modules reach the platform at (`PLINTH_URL` in their environment).
    pub public_url: String,
    /// The EventBridge bus modules publish to, on AWS (`PLINTH_EVENT_BUS`).
    pub event_bus: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Platform {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn EventBus>,
    pub subscriptions: Arc<dyn Subscriptions>,
    pub deployer: Arc<dyn Deployer>,
    pub tables: Arc<dyn TableProvisioner>,
    pub hooks: Arc<dyn Hooks>,
    pub install_queue: Arc<dyn InstallQueue>,
    pub tokens: TokenVerifier,
    pub settings: Settings,
    pub caches: Arc<Caches>,
    /// Signs the tenant context handed to module backends.
    pub context: Arc<ContextSigner>,
    pub rate_limits: Arc<RateLimits>,
    /// Test hook: the saga stops as if its process died right after this step.
    crash_after: Arc<Mutex<Option<Step>>>,
}

/// What the hot path remembers between requests (each bounded by a TTL).
#[derive(Debug)]
pub struct Caches {
    /// API key hash → module, and when the key stops working.
    pub api_keys: TtlCache<String, (ModuleName, Option<i64>)>,
    /// (tenant, module, company) → resolved configuration (and so: enabled).
    pub config: TtlCache<(String, String, Option<String>), ResolvedConfig>,
    /// module → its manifest and healthy instances.
    pub routes: TtlCache<String, ModuleRoutes>,
    /// tenant → its record (tier).
    pub tenants: TtlCache<String, Tenant>,
    /// (tenant, user) → grants.
    pub grants: TtlCache<(String, String), Grants>,
    /// What the gateway decided per (token, module); see [`crate::gateway::Pass`].
    pub passes: Passes,
    /// Bumped by every change that invalidates anything: a pass built under an older
    /// generation is not reused.
    generation: AtomicU64,
}

impl Default for Caches {
    fn default() -> Self {
        Self {
            api_keys: TtlCache::default(),
            config: TtlCache::default(),
            routes: TtlCache::default(),
            tenants: TtlCache::default(),
            grants: TtlCache::default(),
            passes: Passes::default(),
            generation: AtomicU64::new(0),
        }
    }
}

impl Caches {
    /// The current generation (see [`Caches::changed`]).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Marks every gateway pass stale; called with every invalidation.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Drops what is cached about a module: its installation, settings or instances changed.
    pub fn invalidate_module(&self, module: &str) {
        self.config.retain(|(_, m, _)| m != module);
        self.routes.remove(&module.to_owned());
        self.changed();
    }

    /// Drops everything (when change events may have been missed).
    pub fn clear(&self) {
        self.config.clear();
        self.routes.clear();
        self.tenants.clear();
        self.grants.clear();
        self.passes.clear();
        self.changed();
    }

    /// Drops what a platform event makes stale; how caches in other processes follow
    /// changes (each entry also expires on its own within 30 s).
    pub fn on_event(&self, event: &Event) {
        if event.source != crate::events::PLATFORM_SOURCE {
            return;
        }
        match event
            .detail
            .get("module")
            .and_then(serde_json::Value::as_str)
        {
            Some(module) => self.invalidate_module(module),
            None if event.detail_type.starts_with("module.") => self.config.clear(),
            None => {}
        }
        if let Some(tenant) = event.tenant_id() {
            if event.detail_type.starts_with("role.") || event.detail_type.starts_with("user.") {
                self.grants.retain(|(t, _)| t != tenant);
            }
            if event.detail_type.starts_with("tenant.") {
                self.tenants.remove(&tenant.to_owned());
            }
        }
        self.changed();
    }
}

impl Platform {
    pub fn new(
        ports: Ports,
        tokens: TokenVerifier,
        settings: Settings,
        context: ContextSigner,
    ) -> Self {
        Self {
            store: ports.store,
            bus: ports.bus,
            subscriptions: ports.subscriptions,
            deployer: ports.deployer,
            tables: ports.tables,
            hooks: ports.hooks,
            install_queue: ports.install_queue,
            tokens,
            settings,
            caches: Arc::default(),
            context: Arc::new(context),
            rate_limits: Arc::default(),
            crash_after: Arc::default(),
        }
    }

    /// Makes the next saga stop right after `step`, as if its worker had crashed (tests).
    pub fn simulate_crash_after(&self, step: Step) {
        if let Ok(mut crash) = self.crash_after.lock() {
            *crash = Some(step);
        }
    }

    pub(crate) fn should_crash_after(&self, step: Step) -> bool {
        self.crash_after
            .lock()
            .map(|mut crash| {
                if *crash == Some(step) {
                    *crash = None;
                    true
                } else {
                    false
                }
            })
            .unwrap_or(false)
    }

    /// Writes a change all or nothing, then publishes its events. A change that was written
    /// stays written when the bus fails: the failure is logged, the caller still succeeds.
    pub async fn commit(&self, writes: Vec<Write>, events: Vec<Event>) -> Result<()> {
        self.store.transact(writes).await?;
        self.caches.changed();
        self.publish_events(events).await;
        Ok(())
    }

    pub async fn publish_events(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        if let Err(e) = self.bus.publish(events).await {
            tracing::error!(error = %e, "events not published");
        }
    }
}
