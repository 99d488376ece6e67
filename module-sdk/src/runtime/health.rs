//! `<module binary> health`: the container health check of a module's image. ECS runs
//! `["CMD", "/proc/1/exe", "health"]` — the module's own binary, so the image needs no shell,
//! `curl` or `wget` — which asks the serving process's health path on its port and exits `0`
//! on a `2xx` answer, else `1` with the reason on stderr.

use std::time::Duration;

/// The subcommand's name.
pub const HEALTH_COMMAND: &str = "health";

/// How long the check waits for an answer (ECS's own timeout is 5 s by default).
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

/// Asks `url` once: `Ok` on a `2xx` answer, else why not.
///
/// # Errors
/// The reason in words: the status answered, or why nothing answered.
pub async fn check(url: &str, timeout: Duration) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| format!("unhealthy: {e}"))?;
    match http.get(url).send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("unhealthy: {url} answered {}", response.status())),
        Err(error) if error.is_timeout() => Err(format!(
            "unhealthy: {url} did not answer within {} s",
            timeout.as_secs_f32()
        )),
        Err(error) => Err(format!("unhealthy: cannot reach {url}: {}", cause(&error))),
    }
}

/// The innermost cause ("Connection refused"), which says more than reqwest's outer text.
fn cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = error;
    while let Some(source) = inner.source() {
        inner = source;
    }
    inner.to_string()
}

/// Runs the check and ends the process with its exit status.
pub(super) async fn exit_with_check(url: &str) -> ! {
    match check(url, HEALTH_TIMEOUT).await {
        Ok(()) => std::process::exit(0),
        Err(reason) => {
            eprintln!("{reason}");
            std::process::exit(1)
        }
    }
}
