//! The health checker: on its schedule, probes every instance of every installed module once
//! and records changes, so the gateway routes to healthy instances only.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use plinth_registry::{App, Result};
use serde::Serialize;
use serde_json::Value;

/// What one round found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Checked {
    /// Instances whose health changed.
    pub changed: usize,
}

/// One round of checks; the scheduled event itself carries nothing the check needs.
pub async fn handle(app: &App, event: &EventBridgeEvent<Value>) -> Result<Checked> {
    tracing::debug!(source = %event.source, detail_type = %event.detail_type, "health check round");
    let changed = app.plane.instances.check_health().await?;
    Ok(Checked { changed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{Kit, fixture};

    #[tokio::test]
    async fn a_scheduled_round_records_an_instance_that_went_down() {
        let mut kit = Kit::new();
        kit.installed_and_enabled().await;
        let event: EventBridgeEvent<Value> =
            serde_json::from_value(fixture("eventbridge-schedule.json")).unwrap();
        assert_eq!(
            handle(&kit.app, &event).await.unwrap(),
            Checked { changed: 0 }
        );
        kit.stop_backend();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(
            handle(&kit.app, &event).await.unwrap(),
            Checked { changed: 1 }
        );
        assert_eq!(
            handle(&kit.app, &event).await.unwrap(),
            Checked { changed: 0 }
        );
    }
}
