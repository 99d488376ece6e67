//! The health checker: on its schedule, probes every instance of every installed module once
//! and records changes, so the gateway routes to healthy instances only.

use plinth_registry::{App, Result};
use serde::Serialize;
use serde_json::Value;

/// What one round found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Checked {
    /// Instances whose health changed.
    pub changed: usize,
}

/// One round of checks. The scheduled event carries nothing the check needs, and is not read:
/// EventBridge Scheduler sends its target's `Input` (none is set), not an EventBridge envelope.
pub async fn handle(app: &App, _event: &Value) -> Result<Checked> {
    tracing::debug!("health check round");
    let changed = app.plane.instances.check_health().await?;
    Ok(Checked { changed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{Kit, fixture};

    /// EventBridge Scheduler hands the function its target's input — `{}` when none is set —
    /// not an EventBridge envelope: a round runs whatever it is given.
    #[tokio::test]
    async fn a_round_runs_on_the_schedulers_bare_input() {
        let mut kit = Kit::new();
        kit.installed_and_enabled().await;
        let bare = serde_json::json!({});
        assert_eq!(
            handle(&kit.app, &bare).await.unwrap(),
            Checked { changed: 0 }
        );
    }

    #[tokio::test]
    async fn a_scheduled_round_records_an_instance_that_went_down() {
        let mut kit = Kit::new();
        kit.installed_and_enabled().await;
        let event = fixture("eventbridge-schedule.json");
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
