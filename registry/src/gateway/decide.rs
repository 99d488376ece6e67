//! Where the gateway's decision meets its transport.
//!
//! The transport that serves `plinth up` (the relay and hyper's server, in `plinth-local`)
//! parses and forwards bytes; it asks [`Decide`] what to do with a module request and knows
//! nothing else of the control plane, so it can be run against a stub decision. On AWS, API
//! Gateway is the transport and the authorizer Lambda calls [`Authorizer::authorize`] itself.

use std::future::Future;
use std::sync::Arc;

use axum::http::HeaderValue;

use super::{Authorizer, Decision, GatewayRequest, Upstream};
use crate::error::Result;

/// The gateway's decision, as its transport asks for it: a module request's head in; where
/// to forward it, or the refusal to answer with (a problem [`Error`](crate::Error)), out.
pub trait Decide: Send + Sync + 'static {
    /// What an allowed request goes on with.
    type Allowed: Forward;

    /// Decides a request to a module route (`/api/v1/{m}/…`, see
    /// [`is_module_path`](super::is_module_path)).
    fn decide(
        &self,
        request: GatewayRequest<'_>,
    ) -> impl Future<Output = Result<Self::Allowed>> + Send;

    /// The backend `allowed` went to did not answer: what was decided about the module's
    /// instances is stale (the instance may be gone).
    fn backend_failed(&self, allowed: &Self::Allowed);
}

/// Where an allowed request goes, and what goes with it.
pub trait Forward: Send + Sync + 'static {
    /// The instance picked for it.
    fn upstream(&self) -> &Arc<Upstream>;

    /// Every healthy instance of the module, [`upstream`](Self::upstream) among them: a
    /// connection the transport keeps to one of them may take the request instead.
    fn upstreams(&self) -> &[Arc<Upstream>];

    /// The signed tenant context, sent as `X-Plinth-Context`.
    fn context(&self) -> &HeaderValue;

    /// The module, for logs and the transport's own 502 and 504.
    fn module(&self) -> &str;

    /// The tenant the request is for, for usage metering (`None`: not metered).
    fn tenant(&self) -> Option<&str> {
        None
    }

    /// The module's version the request goes to, for the rollout driver's figures (`None`:
    /// not counted).
    fn version(&self) -> Option<&str> {
        None
    }
}

impl Decide for Authorizer {
    type Allowed = Decision;

    async fn decide(&self, request: GatewayRequest<'_>) -> Result<Decision> {
        let decision = self.authorize(request).await?;
        tracing::debug!(module = %decision.module(), tenant = %decision.tenant(), user = %decision.pass.user.id, "allowed");
        Ok(decision)
    }

    fn backend_failed(&self, allowed: &Decision) {
        self.forget_routes(allowed.module());
    }
}

impl Forward for Decision {
    fn upstream(&self) -> &Arc<Upstream> {
        &self.upstream
    }

    fn upstreams(&self) -> &[Arc<Upstream>] {
        Decision::upstreams(self)
    }

    fn context(&self) -> &HeaderValue {
        &self.pass.context
    }

    fn module(&self) -> &str {
        Decision::module(self).as_str()
    }

    fn tenant(&self) -> Option<&str> {
        Some(Decision::tenant(self).as_str())
    }

    fn version(&self) -> Option<&str> {
        Some(Decision::version(self))
    }
}
