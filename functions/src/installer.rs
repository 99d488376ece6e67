//! The installer: runs a module's install, upgrade, rollback or uninstall saga when the
//! registry asks for it (`module.install.requested` on the platform's bus). Sagas are
//! resumable, so Lambda's retries of a failed invocation resume where it stopped.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use plinth_module_sdk::ModuleName;
use plinth_registry::events::PLATFORM_SOURCE;
use plinth_registry::{Error, Platform, Result};
use serde_json::Value;

use crate::adapters::INSTALL_REQUESTED;

/// The module an install request names.
///
/// # Errors
/// `BadRequest` for another event, or a detail without a valid `module`.
pub fn requested_module(event: &EventBridgeEvent<Value>) -> Result<ModuleName> {
    if event.source != PLATFORM_SOURCE || event.detail_type != INSTALL_REQUESTED {
        return Err(Error::BadRequest(format!(
            "the installer takes {PLATFORM_SOURCE} {INSTALL_REQUESTED} events, not {} {}",
            event.source, event.detail_type
        )));
    }
    let module = event
        .detail
        .get("module")
        .and_then(Value::as_str)
        .unwrap_or_default();
    ModuleName::parse(module).map_err(|e| Error::field("detail.module", e.to_string()))
}

/// Runs the saga of the module the event names.
pub async fn handle(platform: &Platform, event: EventBridgeEvent<Value>) -> Result<ModuleName> {
    let module = requested_module(&event)?;
    tracing::info!(%module, "running the installation");
    platform.run_installation(&module).await?;
    Ok(module)
}
