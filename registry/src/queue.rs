//! The install queue port: something that runs pending installations. Locally a task of
//! `plinth up` ([`LocalQueue`]); on AWS the installer function, invoked by an EventBridge
//! rule on `module.install.requested` ([`BusInstallQueue`]).

use std::sync::Arc;

use async_trait::async_trait;
use plinth_module_sdk::ModuleName;

use crate::error::{Error, Result};
use crate::events::{EventBus, platform_event};

/// Something that runs pending installations.
#[async_trait]
pub trait InstallQueue: Send + Sync + std::fmt::Debug {
    async fn enqueue(&self, module: &ModuleName) -> Result<()>;
}

/// Runs sagas in this process: `plinth up` and tests start the worker
/// ([`crate::install::Installer::run_worker`]) with the receiver.
#[derive(Debug, Clone)]
pub struct LocalQueue(pub tokio::sync::mpsc::UnboundedSender<ModuleName>);

#[async_trait]
impl InstallQueue for LocalQueue {
    async fn enqueue(&self, module: &ModuleName) -> Result<()> {
        self.0
            .send(module.clone())
            .map_err(|_| Error::unavailable("the install worker has stopped"))
    }
}

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
            Error::unavailable_because(format!("cannot queue the installation of {module}"), e)
        })
    }
}
