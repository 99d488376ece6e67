//! Plinth module SDK: the contract between the Plinth platform and its modules.
//!
//! - [`manifest`]: a module's `manifest.json` — the typed [`Manifest`], its newtypes
//!   ([`ModuleName`], [`Permission`], [`PermissionGrant`], [`Tier`], [`RoutePath`]) and
//!   [`validate_manifest`], which reports every [`Problem`] of a document at once.
//! - [`events`]: the event envelope carried on EventBridge and on the local bus.
//! - [`PLATFORM_VERSION`]: the version of this contract, which manifests' `platform_version`
//!   requirements are checked against.
//!
//! For module authors (the same handler code serves an axum service on ECS and a Lambda
//! function):
//! - [`context`]: the verified [`TenantContext`] handlers take as an extractor;
//! - [`auth`]: checking `X-Plinth-Context` against the platform's JWKS
//!   ([`auth::ContextVerifier`], [`auth::verify_context`]) and [`auth::require_permission`];
//! - [`data`]: the module's declared tables, bound to the context's tenant and company;
//! - [`config_client`]: the tenant's resolved configuration, cached by version;
//! - [`platform_client`]: `rbac/verify`, companies, instance registration, with the module's
//!   [`api_key`] (given, or read from Secrets Manager and read again after a rotation);
//! - [`publisher`] and [`subscriber`]: the module's events out and in;
//! - [`hooks`]: lifecycle hooks, served on the manifest's paths;
//! - [`runtime`]: start-up from the environment, one router, self-registration;
//! - [`testkit`]: contexts signed with a local key and a platform in memory, for tests;
//! - [`ApiError`]: RFC 9457 problem answers.
//!
//! [`wire`] gathers the contract itself: headers, claims and documents both sides exchange.

#![warn(missing_docs)]

pub mod api_key;
pub mod auth;
pub mod config_client;
pub mod context;
pub mod data;
pub mod events;
pub mod hooks;
pub mod jwks;
pub mod manifest;
pub mod platform_client;
mod problem;
pub mod publisher;
pub mod runtime;
pub mod subscriber;
#[cfg(feature = "server")]
pub mod testkit;
pub mod wire;

pub use config_client::{ConfigClient, ResolvedConfig};
pub use context::TenantContext;
pub use platform_client::{PlatformClient, PlatformError};
pub use problem::{ApiError, PROBLEM_JSON, ProblemDocument};
pub use runtime::{Module, ModuleEnv, SetupError};

pub use manifest::{
    Manifest, ManifestError, ModuleName, ParseError, Permission, PermissionGrant, Problem,
    RoutePath, Tier, validate_manifest,
};

/// The version of the platform–module contract (manifest shapes, hooks, events, tenant
/// context). A manifest's `dependencies.platform_version` must accept it. It is not the crates'
/// version: it rises only when the contract changes incompatibly.
pub const PLATFORM_VERSION: semver::Version = semver::Version::new(2, 0, 0);
