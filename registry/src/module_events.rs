//! Modules publishing their own events through the platform (one machine; on AWS they put
//! them on EventBridge directly): `POST /api/v1/events` with the module's API key.

use plinth_module_sdk::ModuleName;
use plinth_module_sdk::events::{Event, module_source};

use std::sync::Arc;

use crate::config::ConfigResolver;
use crate::error::{Error, Result};
use crate::events::EventBus;
use crate::identity::Caller;
use crate::ids::TenantId;
use crate::installation::Installations;

/// The module a caller publishes as: only a module's API key publishes events (403 otherwise).
pub fn publisher(caller: &Caller) -> Result<&ModuleName> {
    match caller {
        Caller::Module(module) => Ok(module),
        _ => Err(Error::Forbidden(
            "only a module's API key publishes its events".into(),
        )),
    }
}

/// Puts modules' own events on the platform's bus, as their manifests allow.
#[derive(Debug)]
pub struct ModuleEvents {
    bus: Arc<dyn EventBus>,
    installations: Arc<Installations>,
    config: Arc<ConfigResolver>,
}

impl ModuleEvents {
    pub fn new(
        bus: Arc<dyn EventBus>,
        installations: Arc<Installations>,
        config: Arc<ConfigResolver>,
    ) -> Self {
        Self {
            bus,
            installations,
            config,
        }
    }

    /// Puts a module's event on the bus: its source must be the module's own, its detail-type
    /// one the manifest declares, and a tenant it names must have the module enabled.
    pub async fn publish(&self, caller: &Caller, event: Event) -> Result<()> {
        let module = publisher(caller)?;
        let expected = module_source(module);
        if event.source != expected {
            return Err(Error::field(
                "source",
                format!(
                    "{module} publishes with source `{expected}`, not `{}`",
                    event.source
                ),
            ));
        }
        let (manifest, _) = self.installations.installed_module(module).await?;
        if !manifest
            .events
            .publishes
            .iter()
            .any(|d| d == &event.detail_type)
        {
            return Err(Error::field(
                "detail-type",
                format!(
                    "{module} does not declare `{}` in events.publishes",
                    event.detail_type
                ),
            ));
        }
        if let Some(tenant) = event.tenant_id() {
            self.require_enabled(module, tenant).await?;
        }
        self.bus
            .publish(vec![event])
            .await
            .map_err(|e| Error::unavailable_because("the event was not published", e))
    }

    async fn require_enabled(&self, module: &ModuleName, tenant: &str) -> Result<()> {
        let not_enabled = || {
            Error::field(
                "detail.tenant_id",
                format!("tenant {tenant} has not enabled {module}"),
            )
        };
        let tenant = TenantId::parse(tenant).map_err(|_| not_enabled())?;
        self.config
            .resolve_cached(&tenant, module, None)
            .await
            .map(|_| ())
            .map_err(|_| not_enabled())
    }
}
