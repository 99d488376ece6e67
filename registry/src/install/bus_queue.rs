//! The [`InstallQueue`] of the platform on AWS: an event on the platform's bus, which an
//! EventBridge rule turns into an invocation of the installer function.

use std::sync::Arc;

use async_trait::async_trait;
use plinth_module_sdk::ModuleName;

use super::InstallQueue;
use crate::error::{Error, Result};
use crate::events::{EventBus, platform_event};

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
