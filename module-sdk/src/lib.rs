//! Plinth module SDK: the contract between the Plinth platform and its modules.
//!
//! - [`manifest`]: a module's `manifest.json` — the typed [`Manifest`], its newtypes
//!   ([`ModuleName`], [`Permission`], [`PermissionGrant`], [`Tier`], [`RoutePath`]) and
//!   [`validate_manifest`], which reports every [`Problem`] of a document at once.
//! - [`events`]: the event envelope carried on EventBridge and on the local bus.
//! - [`PLATFORM_VERSION`]: the version of this contract, which manifests' `platform_version`
//!   requirements are checked against.

#![warn(missing_docs)]

pub mod events;
pub mod manifest;

pub use manifest::{
    Manifest, ManifestError, ModuleName, ParseError, Permission, PermissionGrant, Problem,
    RoutePath, Tier, validate_manifest,
};

/// The version of the platform–module contract (manifest shapes, hooks, events, tenant
/// context). A manifest's `dependencies.platform_version` must accept it. It is not the crates'
/// version: it rises only when the contract changes incompatibly.
pub const PLATFORM_VERSION: semver::Version = semver::Version::new(2, 0, 0);
