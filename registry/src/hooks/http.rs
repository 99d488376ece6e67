//! Hooks over HTTP: `POST {endpoint}{hook path}` with the hook's JSON payload.
//!
//! The answer decides: a 2xx proceeds unless its body says `{"allow": false, "reason": …}`;
//! a 4xx from a `pre_*` hook refuses with the body's `reason` (or problem `detail`); any
//! other answer, a timeout or no connection fails the step with that reason.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use plinth_module_sdk::wire::HookReply;

use super::{HOOK_TIMEOUT, HookError, HookOutcome, HookRequest, Hooks};

#[derive(Debug, Clone)]
pub struct HttpHooks {
    client: reqwest::Client,
    timeout: Duration,
}

impl Default for HttpHooks {
    fn default() -> Self {
        Self::with_timeout(HOOK_TIMEOUT)
    }
}

impl HttpHooks {
    pub fn with_timeout(timeout: Duration) -> Self {
        Self {
            client: reqwest::Client::new(),
            timeout,
        }
    }
}

pub(crate) fn hook_name(hook: plinth_module_sdk::manifest::Hook) -> String {
    serde_json::to_value(hook)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn reason(body: &Value, text: &str) -> String {
    ["reason", "detail", "message"]
        .iter()
        .find_map(|field| body.get(field).and_then(Value::as_str))
        .map_or_else(|| text.trim().chars().take(500).collect(), str::to_owned)
}

#[async_trait]
impl Hooks for HttpHooks {
    async fn call(&self, request: &HookRequest) -> Result<HookOutcome, HookError> {
        let call = &request.call;
        let failed = |reason: String| HookError {
            module: call.module.clone(),
            hook: hook_name(call.hook),
            reason,
        };
        let response = self
            .client
            .post(&request.url)
            .json(call)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    failed(format!("no answer within {} s", self.timeout.as_secs_f32()))
                } else {
                    failed(format!("cannot reach {}: {e}", request.url))
                }
            })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(match serde_json::from_value::<HookReply>(body) {
                Ok(HookReply {
                    allow: false,
                    reason,
                }) => HookOutcome::Refused(reason.unwrap_or_else(|| "refused".into())),
                _ => HookOutcome::Proceed,
            });
        }
        if status.is_client_error() && call.hook.can_refuse() {
            return Ok(HookOutcome::Refused(reason(&body, &text)));
        }
        Err(failed(format!(
            "answered {status}: {}",
            reason(&body, &text)
        )))
    }
}
