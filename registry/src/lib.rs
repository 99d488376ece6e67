//! Plinth's control plane: the module catalog and installer, tenancy, the configuration
//! resolver, RBAC, API keys and audit — and the ports they run over, with their adapters.
//!
//! Read it by floors (docs/architecture.md draws them); no module names one above it:
//! - foundations: [`ids`], [`clock`], [`hash`], [`error`], [`cache`], [`identity`], [`aws`];
//! - ports and their adapters: [`store`], [`events`], [`deploy`], [`hooks`], [`queue`],
//!   [`bundles`] (modules' UI files);
//! - domain services, each holding the ports it uses: [`changes`] (the one write path),
//!   [`catalog`], [`installation`], [`install`], [`instances`], [`api_keys`], [`tenancy`],
//!   [`rbac`], [`config`], [`enablement`], [`module_events`], [`audit`], [`usage`], [`rollout`], gathered in
//!   [`plane::ControlPlane`];
//! - edges: [`api::router`] (the HTTP API, served by axum locally and by `lambda_http`) and
//!   [`gateway::Authorizer`] (the gateway's decision on every module request);
//! - the composition root: [`App::build`].
//!

pub mod api;
pub mod api_keys;
pub mod app;
pub mod audit;
#[cfg(feature = "aws")]
pub mod aws;
pub mod bundles;
pub mod cache;
pub mod catalog;
pub mod changes;
pub mod clock;
pub mod config;
pub mod deploy;
pub mod enablement;
pub mod error;
pub mod events;
pub mod export;
pub mod gateway;
pub mod hash;
pub mod hooks;
pub mod identity;
pub mod ids;
pub mod install;
pub mod installation;
pub mod instances;
pub mod module_events;
pub mod plane;
pub mod queue;
pub mod rate_budget;
pub mod rbac;
pub mod reach;
pub mod rollout;
pub mod store;
pub mod tenancy;
pub mod usage;
pub mod versions;

pub use app::App;
pub use error::{Error, Result};
pub use plane::{ControlPlane, Identity, Ports, Settings};
