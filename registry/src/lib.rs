//! Plinth's control plane: the module catalog and installer, tenancy, the configuration
//! resolver, RBAC, API keys and audit — and the ports they run over, with their adapters.
//!
//! - [`platform::Platform`]: the state every operation runs on; operations are its methods.
//! - [`api::router`]: the HTTP API (`/api/v1/…`), served by axum locally and by `lambda_http`.
//! - [`catalog`]: published versions and the marketplace.
//! - [`identity`]: tokens, API keys and who may do what; [`ids`]: identifiers.
//! - [`audit`]: who changed what, when.
//! - [`events`]: the `EventBus` port and the local bus.
//! - [`store`]: the `Store` port (DynamoDB, embedded redb) and the key design.
//! - [`error`]: errors as RFC 9457 problem documents.

pub mod api;
pub mod api_keys;
pub mod audit;
pub mod aws;
pub mod cache;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod deploy;
pub mod enablement;
pub mod error;
pub mod events;
pub mod gateway;
pub mod hash;
pub mod hooks;
pub mod identity;
pub mod ids;
pub mod install;
pub mod instances;
pub mod module_events;
pub mod platform;
pub mod rbac;
pub mod store;
pub mod tenancy;

pub use error::{Error, Result};
pub use platform::{Platform, Ports, Settings};
