//! The tenant context: who is calling, for which tenant and company, with which permissions.
//!
//! The gateway (the authorizer on AWS) verifies the user's token, then signs a short-lived
//! [`ContextClaims`] JWT for the module and sends it in [`CONTEXT_HEADER`]. The module's
//! backend verifies it ([`crate::auth`]) and hands handlers a [`TenantContext`]: module data is
//! always keyed by `tenant_id` (and `company_id`) from here, never from the path or the body.

use axum::extract::FromRequestParts;
use http::request::Parts;
use serde::{Deserialize, Serialize};

use crate::ApiError;
use crate::manifest::{Permission, PermissionGrant};

/// The header carrying the signed tenant context to a module's backend.
pub const CONTEXT_HEADER: &str = "x-plinth-context";

/// The issuer of every tenant context token.
pub const CONTEXT_ISSUER: &str = "plinth";

/// The claims of the `X-Plinth-Context` token (ES256, `exp` at most 60 s after `iat`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextClaims {
    /// Always [`CONTEXT_ISSUER`].
    pub iss: String,
    /// The module the context is for.
    pub aud: String,
    /// The user's id.
    pub sub: String,
    /// The tenant the request is for.
    pub tenant_id: String,
    /// The company, when the request is for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<String>,
    /// Permission codes granted to the user for this module.
    #[serde(default)]
    pub permissions: Vec<String>,
    /// The version of the tenant's (and company's) resolved configuration.
    #[serde(default)]
    pub config_version: String,
    /// The module whose call through the gateway this is, when a module called (with its API
    /// key, for the tenant, and for a user when `sub` is one; else `sub` is `module:{name}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calling_module: Option<String>,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issue time, seconds since the epoch.
    pub iat: u64,
}

/// The verified context of one request: handlers take it as an extractor.
///
/// ```
/// use axum::{Json, Router, routing::get};
/// use plinth_module_sdk::{ApiError, TenantContext};
/// use serde_json::{Value, json};
///
/// async fn whoami(ctx: TenantContext) -> Result<Json<Value>, ApiError> {
///     ctx.require_permission("financial:invoices.read")?;
///     Ok(Json(json!({"tenant": ctx.tenant_id, "user": ctx.user_id})))
/// }
///
/// let api: Router = Router::new().route("/whoami", get(whoami));
/// ```
///
/// The extractor reads what [`crate::auth::verify_context`] put on the request; a request that
/// did not pass it is refused with `401`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantContext {
    /// The tenant the request is for.
    pub tenant_id: String,
    /// The company, when the request is for one.
    pub company_id: Option<String>,
    /// The calling user.
    pub user_id: String,
    /// Permission codes granted to the user for this module (grants may use wildcards such
    /// as `financial:*`).
    pub permissions: Vec<String>,
    /// The version of the resolved configuration when the context was signed.
    pub config_version: String,
    /// The module that made this call, when another module called this one through the
    /// gateway (its manifest declares the call); `None` for a user's request.
    pub calling_module: Option<String>,
}

impl From<ContextClaims> for TenantContext {
    fn from(claims: ContextClaims) -> Self {
        Self {
            tenant_id: claims.tenant_id,
            company_id: claims.company_id,
            user_id: claims.sub,
            permissions: claims.permissions,
            config_version: claims.config_version,
            calling_module: claims.calling_module,
        }
    }
}

impl TenantContext {
    /// Whether the user holds `permission` (exactly, or through a wildcard grant).
    ///
    /// ```
    /// # use plinth_module_sdk::TenantContext;
    /// let ctx = TenantContext {
    ///     tenant_id: "acme".into(),
    ///     company_id: None,
    ///     user_id: "ann".into(),
    ///     permissions: vec!["financial:invoices.*".into()],
    ///     config_version: String::new(),
    ///     calling_module: None,
    /// };
    /// assert!(ctx.has_permission("financial:invoices.read"));
    /// assert!(!ctx.has_permission("financial:accounts.read"));
    /// ```
    #[must_use]
    pub fn has_permission(&self, permission: &str) -> bool {
        let Ok(wanted) = Permission::parse(permission) else {
            return false;
        };
        self.permissions
            .iter()
            .any(|held| PermissionGrant::parse(held).is_ok_and(|grant| grant.grants(&wanted)))
    }

    /// `Ok` when the user holds `permission`, else a `403` naming it.
    ///
    /// # Errors
    /// [`ApiError::forbidden`] when the permission is not granted.
    pub fn require_permission(&self, permission: &str) -> Result<(), ApiError> {
        if self.has_permission(permission) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the permission `{permission}`, which user `{}` does not have in \
                 tenant `{}`",
                self.user_id, self.tenant_id
            )))
        }
    }

    /// The company, or a `400` saying this route works on one company at a time.
    ///
    /// # Errors
    /// [`ApiError::bad_request`] when the context names no company.
    pub fn require_company(&self) -> Result<&str, ApiError> {
        self.company_id.as_deref().ok_or_else(|| {
            ApiError::bad_request(
                "this route works on one company: call it with a company selected (the \
                 context has no company_id)",
            )
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TenantContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<TenantContext>()
            .cloned()
            .ok_or_else(|| {
                ApiError::unauthorized(format!(
                    "no verified tenant context: the request must come through the Plinth gateway \
                 with a valid {CONTEXT_HEADER} header"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(permissions: &[&str]) -> TenantContext {
        TenantContext {
            tenant_id: "acme".into(),
            company_id: Some("acme-de".into()),
            user_id: "ann".into(),
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            config_version: "v1".into(),
            calling_module: None,
        }
    }

    #[test]
    fn exact_and_wildcard_grants_allow_and_others_do_not() {
        let ctx = context(&["financial:*"]);
        assert!(ctx.has_permission("financial:reports.read"));
        assert!(!ctx.has_permission("warehouse:stock.read"));
        let ctx = context(&["financial:invoices.read"]);
        assert!(ctx.has_permission("financial:invoices.read"));
        assert!(!ctx.has_permission("financial:invoices.write"));
    }

    #[test]
    fn a_missing_permission_is_a_403_naming_it() {
        let error = context(&[])
            .require_permission("financial:invoices.write")
            .unwrap_err();
        assert_eq!(error.status(), http::StatusCode::FORBIDDEN);
        assert!(error.detail().contains("`financial:invoices.write`"));
    }

    #[tokio::test]
    async fn without_verification_the_extractor_answers_401() {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        let error = TenantContext::from_request_parts(&mut parts, &())
            .await
            .unwrap_err();
        assert_eq!(error.status(), http::StatusCode::UNAUTHORIZED);
    }
}
