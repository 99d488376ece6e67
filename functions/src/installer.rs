//! The installer: runs a module's install, upgrade, rollback or uninstall saga when the
//! registry asks for it (`module.install.requested` on the platform's bus). Sagas are
//! resumable, so Lambda's retries of a failed invocation resume where it stopped.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use plinth_module_sdk::ModuleName;
use plinth_registry::events::PLATFORM_SOURCE;
use plinth_registry::queue::INSTALL_REQUESTED;
use plinth_registry::{App, Error, Result};
use serde_json::Value;

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
pub async fn handle(app: &App, event: EventBridgeEvent<Value>) -> Result<ModuleName> {
    let module = requested_module(&event)?;
    tracing::info!(%module, "running the installation");
    app.plane.installer.run_installation(&module).await?;
    Ok(module)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{Kit, fixture};

    #[tokio::test]
    async fn an_install_request_on_the_bus_is_run_by_the_handler() {
        let mut kit = Kit::new();
        kit.install_requested().await;
        let queued: Vec<_> = kit
            .bus
            .recent()
            .into_iter()
            .filter(|e| e.detail_type == INSTALL_REQUESTED)
            .collect();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].detail["module"], "financial");
        // What EventBridge hands the function is the published envelope.
        let event: EventBridgeEvent<Value> =
            serde_json::from_value(serde_json::to_value(&queued[0]).unwrap()).unwrap();
        assert_eq!(handle(&kit.app, event).await.unwrap().as_str(), "financial");
        let module = ModuleName::parse("financial").unwrap();
        let (installation, _) = kit
            .app
            .plane
            .installations
            .item(&module)
            .await
            .unwrap()
            .unwrap();
        assert!(installation.is_installed(), "{installation:?}");
    }

    #[test]
    fn other_events_are_refused() {
        let schedule: EventBridgeEvent<Value> =
            serde_json::from_value(fixture("eventbridge-schedule.json")).unwrap();
        let error = requested_module(&schedule).unwrap_err();
        assert!(error.to_string().contains("Scheduled Event"), "{error}");
        let mut event: EventBridgeEvent<Value> =
            serde_json::from_value(fixture("eventbridge-install-requested.json")).unwrap();
        assert_eq!(requested_module(&event).unwrap().as_str(), "financial");
        event.detail = serde_json::json!({"module": "Not A Name"});
        assert!(
            requested_module(&event)
                .unwrap_err()
                .to_string()
                .contains("detail.module")
        );
    }
}
