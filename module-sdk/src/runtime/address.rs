//! Where the platform reaches this instance: `PLINTH_INSTANCE_URL` when set; on ECS the task's
//! own address in its VPC, read from the task metadata endpoint (v4) that ECS names in
//! `ECS_CONTAINER_METADATA_URI_V4`; else `http://127.0.0.1:{PORT}` (one machine).
//!
//! On ECS, `127.0.0.1` would be the platform's own loopback: an instance registered there can
//! never be reached, so a task whose metadata cannot be read does not start at all.

use std::time::Duration;

use serde::Deserialize;

use super::{ModuleEnv, SetupError};

const ATTEMPTS: u32 = 3;
const TIMEOUT: Duration = Duration::from_secs(2);

/// The task metadata v4 document (`${ECS_CONTAINER_METADATA_URI_V4}/task`), the part read.
#[derive(Debug, Deserialize)]
struct TaskMetadata {
    #[serde(rename = "Containers", default)]
    containers: Vec<Container>,
}

#[derive(Debug, Deserialize)]
struct Container {
    #[serde(rename = "Networks", default)]
    networks: Vec<Network>,
}

#[derive(Debug, Deserialize)]
struct Network {
    #[serde(rename = "IPv4Addresses", default)]
    ipv4_addresses: Vec<String>,
}

/// The URL this instance registers.
///
/// # Errors
/// A [`SetupError`] on ECS when the task metadata cannot be read or names no address.
pub(super) async fn instance_url(env: &ModuleEnv) -> Result<String, SetupError> {
    if let Some(url) = &env.instance_url {
        return Ok(url.clone());
    }
    let Some(metadata) = &env.task_metadata_url else {
        return Ok(format!("http://127.0.0.1:{}", env.port));
    };
    let ip = task_ip(metadata).await?;
    Ok(format!("http://{ip}:{}", env.port))
}

/// The task's IPv4 address in its VPC (awsvpc: every container of the task shares it).
async fn task_ip(metadata: &str) -> Result<String, SetupError> {
    let url = format!("{}/task", metadata.trim_end_matches('/'));
    let failed = |reason: String| {
        SetupError(format!(
            "cannot tell this ECS task's address from its metadata ({url}, from \
             ECS_CONTAINER_METADATA_URI_V4): {reason}; set PLINTH_INSTANCE_URL to register \
             another address"
        ))
    };
    let http = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        match read(&http, &url).await {
            Ok(task) => {
                return first_address(&task)
                    .ok_or_else(|| failed("no container of the task has an IPv4 address".into()));
            }
            Err(reason) => last = reason,
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
    }
    Err(failed(last))
}

async fn read(http: &reqwest::Client, url: &str) -> Result<TaskMetadata, String> {
    let response = http.get(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("it answered {status}"));
    }
    let text = response.text().await.map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| format!("not a task metadata document: {e}"))
}

fn first_address(task: &TaskMetadata) -> Option<String> {
    task.containers
        .iter()
        .flat_map(|container| &container.networks)
        .find_map(|network| network.ipv4_addresses.first())
        .cloned()
}
