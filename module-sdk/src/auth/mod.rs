//! Verifying the `X-Plinth-Context` token: [`ContextVerifier`] checks signature (ES256, keys
//! from the platform's `/.well-known/jwks.json`), issuer, audience (this module) and expiry;
//! [`verify_context`] is the middleware that refuses requests without a valid context and
//! gives handlers a [`TenantContext`]; [`require_permission`] guards routes by permission.

mod guard;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use tracing::Instrument;

pub use crate::jwks::{KEYS_TTL, MIN_REFETCH_INTERVAL};
pub use guard::{RequirePermission, RequirePermissionLayer, require_permission};

use crate::context::{CONTEXT_HEADER, CONTEXT_ISSUER, ContextClaims, TenantContext};
use crate::jwks::{JwksCache, KeyError};
use crate::{ApiError, ModuleName};

/// The longest life a context token may have (`exp - iat`).
pub const MAX_CONTEXT_LIFETIME_SECS: u64 = 60;

/// Clock skew tolerated on `exp`.
const LEEWAY_SECS: u64 = 5;

/// Why a context was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    /// The request had no `X-Plinth-Context` header.
    #[error(
        "no {CONTEXT_HEADER} header: module APIs are called through the Plinth gateway, which \
         signs the tenant context"
    )]
    Missing,
    /// The token is not a valid context for this module; the text says why.
    #[error("invalid {CONTEXT_HEADER}: {0}")]
    Invalid(String),
    /// The platform's keys could not be fetched to check the token.
    #[error("cannot check {CONTEXT_HEADER}: {0}")]
    KeysUnavailable(String),
}

impl From<ContextError> for ApiError {
    fn from(error: ContextError) -> Self {
        match error {
            ContextError::KeysUnavailable(_) => {
                ApiError::new(http::StatusCode::SERVICE_UNAVAILABLE, error.to_string())
            }
            _ => ApiError::unauthorized(error.to_string()),
        }
    }
}

/// Where a verifier's keys come from.
enum KeySource {
    /// Keys given up front (tests, or keys distributed out of band).
    Fixed(HashMap<String, DecodingKey>),
    /// The platform's JWKS document.
    Jwks(JwksCache),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fixed(keys) => f
                .debug_tuple("Fixed")
                .field(&keys.keys().collect::<Vec<_>>())
                .finish(),
            Self::Jwks(cache) => f.debug_tuple("Jwks").field(&cache.url()).finish(),
        }
    }
}

impl KeySource {
    async fn key(&self, kid: &str) -> Result<DecodingKey, KeyError> {
        match self {
            Self::Fixed(keys) => keys
                .get(kid)
                .cloned()
                .ok_or_else(|| KeyError::Unknown(kid.to_owned())),
            Self::Jwks(cache) => cache.key(kid).await.map(|found| found.key),
        }
    }
}

/// Checks context tokens for one module. Cheap to clone; share one per process so the key
/// cache is shared.
///
/// ```
/// use plinth_module_sdk::auth::ContextVerifier;
/// use plinth_module_sdk::testkit::TestKit;
///
/// # tokio_test();
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn tokio_test() {
/// let kit = TestKit::new("financial");
/// let verifier = kit.verifier();
/// let token = kit.context("acme").company("acme-de").token();
/// let ctx = verifier.verify(&token).await.expect("a valid context");
/// assert_eq!(ctx.tenant_id, "acme");
/// assert_eq!(ctx.company_id.as_deref(), Some("acme-de"));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ContextVerifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    module: String,
    keys: KeySource,
}

impl ContextVerifier {
    /// A verifier for `module` that fetches keys from the JWKS at `jwks_url`.
    #[must_use]
    pub fn from_jwks_url(module: &ModuleName, jwks_url: impl Into<String>) -> Self {
        let cache = JwksCache::new(jwks_url.into(), reqwest::Client::new());
        Self::with_source(module.as_str(), KeySource::Jwks(cache))
    }

    /// A verifier for `module` that fetches the platform's keys from
    /// `{platform_url}/.well-known/jwks.json`.
    #[must_use]
    pub fn for_platform(module: &ModuleName, platform_url: &str) -> Self {
        let base = platform_url.trim_end_matches('/');
        Self::from_jwks_url(module, format!("{base}/.well-known/jwks.json"))
    }

    /// A verifier with fixed keys, by key id (the test kit uses this).
    #[must_use]
    pub fn with_keys(module: &str, keys: HashMap<String, DecodingKey>) -> Self {
        Self::with_source(module, KeySource::Fixed(keys))
    }

    fn with_source(module: &str, keys: KeySource) -> Self {
        Self {
            inner: Arc::new(Inner {
                module: module.to_owned(),
                keys,
            }),
        }
    }

    /// The module whose contexts this verifier accepts.
    #[must_use]
    pub fn module(&self) -> &str {
        &self.inner.module
    }

    /// Verifies a context token and gives back its context.
    ///
    /// # Errors
    /// [`ContextError::Invalid`] saying what is wrong (signature, key id, issuer, audience,
    /// expiry, lifetime), or [`ContextError::KeysUnavailable`].
    pub async fn verify(&self, token: &str) -> Result<TenantContext, ContextError> {
        let invalid = |reason: &str| ContextError::Invalid(reason.to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("not a JWT"))?;
        if header.alg != Algorithm::ES256 {
            return Err(invalid(&format!(
                "signed with {:?}, expected ES256",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| invalid("its header has no `kid`"))?;
        let key = self
            .inner
            .keys
            .key(&kid)
            .await
            .map_err(|error| match error {
                KeyError::Unknown(kid) => invalid(&format!("signed with unknown key `{kid}`")),
                KeyError::Unavailable(reason) => ContextError::KeysUnavailable(reason),
            })?;
        let data = jsonwebtoken::decode::<ContextClaims>(token, &key, &self.validation())
            .map_err(|error| ContextError::Invalid(self.explain(error.kind())))?;
        let claims = data.claims;
        if claims.exp.saturating_sub(claims.iat) > MAX_CONTEXT_LIFETIME_SECS {
            return Err(invalid(&format!(
                "it lives {} s; a context may live at most {MAX_CONTEXT_LIFETIME_SECS} s",
                claims.exp.saturating_sub(claims.iat)
            )));
        }
        Ok(claims.into())
    }

    fn validation(&self) -> Validation {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[CONTEXT_ISSUER]);
        validation.set_audience(&[self.inner.module.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        validation
    }

    fn explain(&self, kind: &ErrorKind) -> String {
        match kind {
            ErrorKind::ExpiredSignature => "it has expired".to_owned(),
            ErrorKind::InvalidIssuer => format!("its issuer is not `{CONTEXT_ISSUER}`"),
            ErrorKind::InvalidAudience => {
                format!("it is not for module `{}`", self.inner.module)
            }
            ErrorKind::InvalidSignature => "its signature does not verify".to_owned(),
            ErrorKind::MissingRequiredClaim(claim) => format!("it has no `{claim}` claim"),
            ErrorKind::Json(error) => format!("its claims are malformed: {error}"),
            other => format!("it cannot be verified ({other:?})"),
        }
    }
}

/// Middleware: verifies `X-Plinth-Context`, puts the [`TenantContext`] on the request for the
/// extractor, and runs the rest inside a span with the tenant id; refuses the request with a
/// `401` problem otherwise (`503` when the platform's keys cannot be had).
///
/// ```
/// use axum::{Router, middleware, routing::get};
/// use plinth_module_sdk::auth::verify_context;
/// use plinth_module_sdk::testkit::TestKit;
///
/// let verifier = TestKit::new("financial").verifier();
/// let api: Router = Router::new()
///     .route("/invoices", get(|| async { "[]" }))
///     .layer(middleware::from_fn_with_state(verifier, verify_context));
/// ```
pub async fn verify_context(
    State(verifier): State<ContextVerifier>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = match request.headers().get(CONTEXT_HEADER) {
        None => return ApiError::from(ContextError::Missing).into_response(),
        Some(value) => match value.to_str() {
            Ok(token) => token.trim().to_owned(),
            Err(_) => {
                return ApiError::from(ContextError::Invalid("not text".into())).into_response();
            }
        },
    };
    let context = match verifier.verify(&token).await {
        Ok(context) => context,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let span = tracing::info_span!(
        "module_request",
        tenant_id = %context.tenant_id,
        company_id = context.company_id.as_deref().unwrap_or(""),
        user_id = %context.user_id,
    );
    request.extensions_mut().insert(context);
    request.extensions_mut().insert(ContextToken(token));
    next.run(request).instrument(span).await
}

/// The verified context token of the request being handled, as received: what
/// [`crate::PlatformClient::call_module_for`] passes on to call another module for the same
/// user. An extractor, like [`TenantContext`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextToken(String);

impl ContextToken {
    /// A token as if a request had carried it (tests of code that passes contexts on).
    #[must_use]
    pub fn for_tests(token: &str) -> Self {
        Self(token.to_owned())
    }

    /// The token's text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ContextToken {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ContextToken>()
            .cloned()
            .ok_or_else(|| {
                ApiError::unauthorized(format!(
                    "no verified {CONTEXT_HEADER}: the route is not behind verify_context"
                ))
            })
    }
}

#[cfg(test)]
mod tests;
