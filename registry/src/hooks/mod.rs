//! The `Hooks` port: calls a module's lifecycle hooks (declared in its manifest) with a
//! timeout and the module's signed context. A `pre_*` hook may refuse with a reason, which
//! the caller of the transition sees; a hook that errors or times out fails the step.

pub mod http;

use std::time::Duration;

use async_trait::async_trait;
use plinth_module_sdk::wire::HookCall;

/// How long a hook may take.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and what to call.
#[derive(Debug, Clone)]
pub struct HookRequest {
    /// Full URL: the module's endpoint and the hook's path.
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
