//! [`require_permission`]: a route layer that answers `403` unless the verified user holds a
//! permission, so a handler only runs for callers allowed to.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::ApiError;
use crate::context::TenantContext;
use crate::manifest::Permission;

/// A layer that lets a request through only when its [`TenantContext`] holds `permission`.
///
/// Use it as a route layer, inside [`super::verify_context`]:
///
/// ```
/// use axum::{Router, routing::get};
/// use plinth_module_sdk::auth::require_permission;
///
/// let api: Router = Router::new().route(
///     "/invoices",
///     get(|| async { "[]" }).route_layer(require_permission("financial:invoices.read")),
/// );
/// ```
///
/// # Panics
/// When `permission` is not a valid permission code (`{module}:{resource}.{action}`): that is a
/// mistake in the module's code, found the first time its router is built.
#[must_use]
pub fn require_permission(permission: &str) -> RequirePermissionLayer {
    let permission =
        Permission::parse(permission).unwrap_or_else(|error| panic!("require_permission: {error}"));
    RequirePermissionLayer { permission }
}

/// The layer [`require_permission`] makes.
#[derive(Debug, Clone)]
pub struct RequirePermissionLayer {
    permission: Permission,
}

impl<S> Layer<S> for RequirePermissionLayer {
    type Service = RequirePermission<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequirePermission {
            inner,
            permission: self.permission.clone(),
        }
    }
}

/// The service [`RequirePermissionLayer`] wraps around a route.
#[derive(Debug, Clone)]
pub struct RequirePermission<S> {
    inner: S,
    permission: Permission,
}

impl<S> Service<Request> for RequirePermission<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let verdict = match request.extensions().get::<TenantContext>() {
            None => Err(ApiError::unauthorized(
                "no verified tenant context: require_permission must run inside verify_context",
            )),
            Some(context) => context.require_permission(self.permission.as_str()),
        };
        if let Err(error) = verdict {
            return Box::pin(async move { Ok(error.into_response()) });
        }
        // The service polled ready serves this call; a fresh clone waits for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move { inner.call(request).await })
    }
}
