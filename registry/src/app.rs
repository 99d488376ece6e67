//! The composition root: the control plane and the gateway's decision built over one set of
//! ports. `functions/`, `local/`, the tests and the benchmarks all start here.

use std::sync::Arc;

use axum::Router;

use crate::gateway::Authorizer;
use crate::plane::{ControlPlane, Identity, Ports, Settings};

/// A platform: its services and its authorizer (the gateway's decision).
#[derive(Debug, Clone)]
pub struct App {
    pub plane: Arc<ControlPlane>,
    pub authorizer: Arc<Authorizer>,
}

impl App {
    pub fn build(ports: Ports, identity: Identity, settings: Settings) -> Self {
        let plane = Arc::new(ControlPlane::build(ports, identity, settings));
        let authorizer = Arc::new(Authorizer::new(Arc::clone(&plane)));
        Self { plane, authorizer }
    }

    /// The platform API (what the registry-api function serves).
    pub fn api(&self) -> Router {
        crate::api::router(Arc::clone(&self.plane))
    }
}
