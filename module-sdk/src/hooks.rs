//! Lifecycle hooks: the platform POSTs `{"hook", "module", "version", "tenant_id"?,
//! "company_id"?, "operation"?}` to the path the manifest declares for each hook; the module answers `{}`
//! to proceed or, from a `pre_*` hook, `{"allow": false, "reason": "…"}` to refuse.
//!
//! Implement [`Hooks`] (every method defaults to proceeding) and give it to
//! [`crate::runtime::Module::hooks`]: only the hooks the manifest declares are served.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ApiError;
use crate::manifest::{Hook, Manifest};

/// What the platform sends to a hook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookCall {
    /// Which hook.
    pub hook: Hook,
    /// The module.
    pub module: String,
    /// The module version concerned (the one installed, or being installed).
    pub version: String,
    /// The tenant, for tenant and company hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// The company, for company hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<String>,
    /// For install hooks: the operation under way (`install`, `upgrade`, `rollback`,
    /// `uninstall`, `restore`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
}

impl HookCall {
    /// A call of `hook` for `module` at `version`, for no tenant.
    #[must_use]
    pub fn new(hook: Hook, module: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            hook,
            module: module.into(),
            version: version.into(),
            tenant_id: None,
            company_id: None,
            operation: None,
        }
    }

    /// The same call, for a tenant (and a company of it).
    #[must_use]
    pub fn for_tenant(mut self, tenant: impl Into<String>, company: Option<String>) -> Self {
        self.tenant_id = Some(tenant.into());
        self.company_id = company;
        self
    }
}

/// A hook's answer as sent on the wire: `{}` proceeds, `{"allow": false, "reason": "…"}`
/// refuses (from a `pre_*` hook).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookReply {
    /// `false` refuses the transition.
    #[serde(default = "proceed", skip_serializing_if = "is_true")]
    pub allow: bool,
    /// Why it refused; the caller of the transition reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn proceed() -> bool {
    true
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_true(allow: &bool) -> bool {
    *allow
}

impl HookReply {
    /// Go ahead.
    #[must_use]
    pub fn proceed() -> Self {
        Self {
            allow: true,
            reason: None,
        }
    }

    /// Refuse, saying why.
    #[must_use]
    pub fn refuse(reason: impl Into<String>) -> Self {
        Self {
            allow: false,
            reason: Some(reason.into()),
        }
    }
}

/// A hook's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookAnswer {
    /// Go ahead.
    Proceed,
    /// Refuse the transition (only `pre_*` hooks can); the reason reaches the caller.
    Refuse(String),
}

/// What a hook method gives back; an `Err` fails the platform's step with its detail.
pub type HookResult = Result<HookAnswer, ApiError>;

/// A module's lifecycle hooks. Every method proceeds unless overridden.
///
/// ```
/// use plinth_module_sdk::hooks::{HookAnswer, HookCall, HookResult, Hooks};
///
/// #[derive(Debug)]
/// struct Financial;
///
/// #[async_trait::async_trait]
/// impl Hooks for Financial {
///     async fn pre_disable_company(&self, call: &HookCall) -> HookResult {
///         Ok(HookAnswer::Refuse(format!(
///             "{} has open invoices",
///             call.company_id.as_deref().unwrap_or("the company")
///         )))
///     }
/// }
/// ```
#[async_trait]
#[allow(unused_variables)]
pub trait Hooks: Send + Sync + std::fmt::Debug + 'static {
    /// Before the module is installed on the platform.
    async fn pre_install(&self, call: &HookCall) -> HookResult {
        Ok(HookAnswer::Proceed)
    }
    /// After the module is installed.
    async fn post_install(&self, call: &HookCall) -> HookResult {
        Ok(HookAnswer::Proceed)
    }
    /// Before the module is uninstalled.
    async fn pre_uninstall(&self, call: &HookCall) -> HookResult {
        Ok(HookAnswer::Proceed)
    }
    /// After the module is uninstalled.
    async fn post_uninstall(&self, call: &HookCall) -> HookResult {
        Ok(HookAnswer::Proceed)
    }
    /// Before a tenant enables the module.
    async fn pre_enable_tenant(&self, call: &HookCall) -> HookResult {
        Ok(HookAnswer::Proceed)
    }
    /// After a tenant enabled the module.
    async fn post_enable_tenant(&self, call: &HookCall) -> HookResult {
        Ok(HookAnswer::Proceed)
    }
    /// Before a tenant disables the module.
    async fn pre_disable_tenant(&self, call: &HookCall) -> HookResult {
        Ok(HookAnswer::Proceed)
    }
    /// After a tenant disabled the module.
    async fn post_disable_tenant(&self, call: &HookCall) -> HookResult {
        Ok(HookAnswer::Proceed)
    }
    /// Before the module is enabled for a company.
    async fn pre_enable_company(&self, call: &HookCall) -> HookResult {
        Ok(HookAnswer::Proceed)
    }
    /// After the module was enabled for a company.
    async fn post_enable_company(&self, call: &HookCall) -> HookResult {
        Ok(HookAnswer::Proceed)
    }
    /// Before the module is disabled for a company.
    async fn pre_disable_company(&self, call: &HookCall) -> HookResult {
        Ok(HookAnswer::Proceed)
    }
    /// After the module was disabled for a company.
    async fn post_disable_company(&self, call: &HookCall) -> HookResult {
        Ok(HookAnswer::Proceed)
    }
}

/// Calls the method of `hooks` for `call.hook`.
///
/// # Errors
/// What the method gives back.
pub async fn dispatch(hooks: &dyn Hooks, call: &HookCall) -> HookResult {
    match call.hook {
        Hook::PreInstall => hooks.pre_install(call).await,
        Hook::PostInstall => hooks.post_install(call).await,
        Hook::PreUninstall => hooks.pre_uninstall(call).await,
        Hook::PostUninstall => hooks.post_uninstall(call).await,
        Hook::PreEnableTenant => hooks.pre_enable_tenant(call).await,
        Hook::PostEnableTenant => hooks.post_enable_tenant(call).await,
        Hook::PreDisableTenant => hooks.pre_disable_tenant(call).await,
        Hook::PostDisableTenant => hooks.post_disable_tenant(call).await,
        Hook::PreEnableCompany => hooks.pre_enable_company(call).await,
        Hook::PostEnableCompany => hooks.post_enable_company(call).await,
        Hook::PreDisableCompany => hooks.pre_disable_company(call).await,
        Hook::PostDisableCompany => hooks.post_disable_company(call).await,
    }
}

/// A router serving `hooks` on the paths `manifest` declares, one `POST` route per hook.
pub fn hooks_router(manifest: &Manifest, hooks: &Arc<dyn Hooks>) -> Router {
    manifest
        .hooks
        .iter()
        .fold(Router::new(), |router, (hook, path)| {
            let hook = *hook;
            let route = post(
                move |State(hooks): State<Arc<dyn Hooks>>, Json(body): Json<Value>| async move {
                    serve_hook(hooks.as_ref(), hook, body).await
                },
            );
            router.route(path, route.with_state(hooks.clone()))
        })
}

async fn serve_hook(hooks: &dyn Hooks, hook: Hook, body: Value) -> Response {
    let call: HookCall = match serde_json::from_value(body) {
        Ok(call) => call,
        Err(error) => {
            return ApiError::bad_request(format!("not a hook call: {error}")).into_response();
        }
    };
    if call.hook != hook {
        let detail = format!("this path serves {hook:?}, not {:?}", call.hook);
        return ApiError::bad_request(detail).into_response();
    }
    match dispatch(hooks, &call).await {
        Ok(HookAnswer::Proceed) => Json(HookReply::proceed()).into_response(),
        Ok(HookAnswer::Refuse(reason)) => {
            if !hook.can_refuse() {
                tracing::warn!(?hook, %reason, "only pre_* hooks can refuse; proceeding");
                return Json(HookReply::proceed()).into_response();
            }
            Json(HookReply::refuse(reason)).into_response()
        }
        Err(error) => error.into_response(),
    }
}
