//! The `Hooks` port: calls a module's lifecycle hooks (declared in its manifest) with a
//! timeout. A `pre_*` hook may refuse with a reason, which the caller of the transition sees;
//! a hook that errors or times out fails the step.
//!
//! [`ModuleHooks`] posts the hook's JSON to `{instance URL}{hook path}` through the
//! [`Reach`] port (HTTP, or Lambda `Invoke` for a `lambda:` instance). The answer decides: a
//! 2xx proceeds unless its body says `{"allow": false, "reason": …}`; a 4xx from a `pre_*`
//! hook refuses with the body's `reason` (or problem `detail`); any other answer, a timeout
//! or no connection fails the step with that reason.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use plinth_module_sdk::wire::{HookCall, HookReply};
use serde_json::Value;

use crate::reach::{Call, Reach};

/// How long a hook may take.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and what to call.
#[derive(Debug, Clone)]
pub struct HookRequest {
    /// Full URL: one of the module's instances and the hook's path.
    pub url: String,
    /// What the module receives.
    pub call: HookCall,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookOutcome {
    Proceed,
    /// A `pre_*` hook said no.
    Refused(String),
}

#[derive(Debug, thiserror::Error)]
#[error("{hook} hook of {module} failed: {reason}")]
pub struct HookError {
    pub module: String,
    pub hook: String,
    pub reason: String,
}

#[async_trait]
pub trait Hooks: Send + Sync + std::fmt::Debug {
    async fn call(&self, request: &HookRequest) -> Result<HookOutcome, HookError>;
}

/// Hooks through the [`Reach`] port.
#[derive(Debug, Clone)]
pub struct ModuleHooks {
    reach: Arc<dyn Reach>,
    timeout: Duration,
}

impl ModuleHooks {
    pub fn new(reach: Arc<dyn Reach>) -> Self {
        Self {
            reach,
            timeout: HOOK_TIMEOUT,
        }
    }

    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
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
impl Hooks for ModuleHooks {
    async fn call(&self, request: &HookRequest) -> Result<HookOutcome, HookError> {
        let call = &request.call;
        let failed = |reason: String| HookError {
            module: call.module.clone(),
            hook: hook_name(call.hook),
            reason,
        };
        let json = serde_json::to_value(call).map_err(|e| failed(e.to_string()))?;
        let answer = self
            .reach
            .call(&Call::post(&request.url, json, self.timeout))
            .await
            .map_err(|e| failed(e.to_string()))?;
        let body: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        if answer.is_success() {
            return Ok(match serde_json::from_value::<HookReply>(body) {
                Ok(HookReply {
                    allow: false,
                    reason,
                }) => HookOutcome::Refused(reason.unwrap_or_else(|| "refused".into())),
                _ => HookOutcome::Proceed,
            });
        }
        if (400..500).contains(&answer.status) && call.hook.can_refuse() {
            return Ok(HookOutcome::Refused(reason(&body, &answer.body)));
        }
        Err(failed(format!(
            "answered {}: {}",
            answer.status,
            reason(&body, &answer.body)
        )))
    }
}
