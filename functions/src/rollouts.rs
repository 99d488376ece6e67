//! The rollout driver: on its schedule (every minute), steps every active staged rollout once
//! — moves a wave's tenants, judges the version, advances, completes, or moves the tenants
//! back (docs/operations.md, "Rollouts"). On AWS no gateway process counts each version's
//! requests, so the figures it judges are those the usage function stored from the access log
//! (`Rollouts::judged_on_stored_figures`); the instances' health is what the health checker
//! stored.

use plinth_registry::rollout::Rollouts;
use plinth_registry::{App, Result};
use serde::Serialize;
use serde_json::Value;

/// What one step found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stepped {
    /// Active rollouts looked at.
    pub rollouts: usize,
}

/// The driver of `app`'s rollouts, judged on the stored figures; built once per instance.
#[must_use]
pub fn driver(app: &App) -> Rollouts {
    app.plane.rollouts.judged_on_stored_figures()
}

/// One step of every active rollout. The scheduled event carries nothing the step needs, and
/// is not read: EventBridge Scheduler sends its target's `Input` (none is set). What this
/// instance cached is dropped first: the rollout's pins and tenants were changed by other
/// functions (the registry API's), whose events this function does not hear.
///
/// # Errors
/// The store's failure to list the active rollouts; one rollout's failure is logged and
/// tried again at the next step.
pub async fn handle(app: &App, driver: &Rollouts, _event: &Value) -> Result<Stepped> {
    app.plane.forget_everything();
    let rollouts = driver.tick().await?;
    tracing::debug!(rollouts, "rollouts stepped");
    Ok(Stepped { rollouts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{Kit, fixture};

    /// EventBridge Scheduler hands the function its target's input — `{}` when none is set —
    /// or, from a rule, an EventBridge envelope: a step runs on either.
    #[tokio::test]
    async fn a_step_runs_on_the_schedulers_bare_input_and_on_a_scheduled_event() {
        let mut kit = Kit::new();
        kit.installed_and_enabled().await;
        let driver = driver(&kit.app);
        for event in [serde_json::json!({}), fixture("eventbridge-schedule.json")] {
            assert_eq!(
                handle(&kit.app, &driver, &event).await.unwrap(),
                Stepped { rollouts: 0 }
            );
        }
    }
}
