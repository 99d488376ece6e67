//! The health checker: on its schedule, probes every instance of every installed module once
//! and records changes, so the gateway routes to healthy instances only.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use plinth_registry::{Platform, Result};
use serde::Serialize;
use serde_json::Value;

/// What one round found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Checked {
    /// Instances whose health changed.
    pub changed: usize,
}

/// One round of checks; the scheduled event itself carries nothing the check needs.
pub async fn handle(
    platform: &Platform,
    client: &reqwest::Client,
    event: &EventBridgeEvent<Value>,
) -> Result<Checked> {
    tracing::debug!(source = %event.source, detail_type = %event.detail_type, "health check round");
    let changed = platform.check_health(client).await?;
    Ok(Checked { changed })
}
