//! The installer: runs a module's install, upgrade, rollback or uninstall saga when the
//! registry asks for it (`module.install.requested` on the platform's bus). Sagas are
//! resumable, so Lambda's retries of a failed invocation resume where it stopped.
//!
//! On its schedule it also sweeps ([`sweep`]): an operation left pending or running past the
//! deadline is requested again on the bus, and one past its attempts is failed and undone —
//! which takes the installer's own rights (undeploying, dropping rules), so the sweep runs
//! here rather than in a function that holds none of them.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use plinth_module_sdk::ModuleName;
use plinth_registry::events::PLATFORM_SOURCE;
use plinth_registry::install::Swept;
use plinth_registry::queue::INSTALL_REQUESTED;
use plinth_registry::{App, Error, Result};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// `detail-type` of the installer's schedule (an EventBridge schedule rule).
pub const SCHEDULED: &str = "Scheduled Event";

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

/// Either trigger: the schedule sweeps, an install request runs its saga. Answers what was
/// done (`{"swept": …}` or `{"ran": module}`).
pub async fn dispatch(app: &App, event: EventBridgeEvent<Value>) -> Result<Value> {
    if event.detail_type == SCHEDULED {
        let swept = sweep(app, &event).await?;
        return Ok(json!({ "swept": swept }));
    }
    let module = handle(app, event).await?;
    Ok(json!({ "ran": module }))
}

/// One sweep as of the schedule's time (a late or retried delivery sweeps no more than the
/// one on time would have), with the platform's sweep policy.
pub async fn sweep(app: &App, event: &EventBridgeEvent<Value>) -> Result<Swept> {
    let at = event
        .time
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t.timestamp()).ok())
        .unwrap_or_else(OffsetDateTime::now_utc);
    let stale_after = app.plane.settings.sweep.stale_after;
    app.plane.installer.sweep(at, stale_after).await
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

    /// Finding 9: on AWS the sweep is the installer's schedule, and a stuck operation is
    /// requested again on the bus, where the installer's rule picks it up.
    #[tokio::test]
    async fn a_scheduled_run_requests_a_stuck_install_again_on_the_bus() {
        let mut kit = Kit::new();
        kit.install_requested().await;
        let requests = |kit: &Kit| {
            kit.bus
                .recent()
                .into_iter()
                .filter(|e| e.detail_type == INSTALL_REQUESTED)
                .collect::<Vec<_>>()
        };
        let answer = dispatch(&kit.app, schedule_in(60)).await.unwrap();
        assert_eq!(answer["swept"]["rerequested"], json!([]), "not stuck yet");
        assert_eq!(requests(&kit).len(), 1);

        let answer = dispatch(&kit.app, schedule_in(17 * 60)).await.unwrap();
        assert_eq!(
            answer["swept"]["rerequested"],
            json!(["financial"]),
            "{answer}"
        );
        let again = requests(&kit);
        assert_eq!(again.len(), 2, "requested again on the bus");
        let event: EventBridgeEvent<Value> =
            serde_json::from_value(serde_json::to_value(&again[1]).unwrap()).unwrap();
        assert_eq!(dispatch(&kit.app, event).await.unwrap()["ran"], "financial");
        let module = ModuleName::parse("financial").unwrap();
        let installation = kit.app.plane.installations.get(&module).await.unwrap();
        assert!(installation.is_installed(), "{installation:?}");
        assert_eq!(installation.attempts, 1);
    }

    /// The schedule's event, fired `secs` from now.
    fn schedule_in(secs: i64) -> EventBridgeEvent<Value> {
        let at = OffsetDateTime::now_utc() + time::Duration::seconds(secs);
        let mut event = fixture("eventbridge-schedule.json");
        event["time"] = at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
            .into();
        serde_json::from_value(event).unwrap()
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
