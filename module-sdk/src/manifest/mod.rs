//! The module contract: a module's `manifest.json`, its typed form [`Manifest`], and
//! [`validate_manifest`], which reports every problem of a document at once.
//!
//! Validation runs two passes over the raw JSON and reports their problems together, in
//! document order: a structural pass against the embedded JSON Schema ([`manifest_schema`]:
//! field names, types, required fields) and a semantic pass (names, versions, namespaces,
//! prefixes, configuration defaults against their own schema). Only a document with no problem
//! becomes a [`Manifest`], whose newtypes ([`ModuleName`], [`Permission`], [`RoutePath`],
//! [`Tier`], `semver` versions) can then only hold valid values.

mod error;
mod names;
mod permission;
mod problem;
mod route_path;
mod rules;
mod schema;
mod sections;
mod tier;

use std::collections::BTreeMap;

use semver::Version;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use error::{ManifestError, ParseError};
pub use names::{MAX_MODULE_NAME_LEN, ModuleName, RESERVED_MODULE_NAMES};
pub use permission::{Permission, PermissionGrant};
pub use problem::Problem;
pub use route_path::{RoutePath, RouteSegment};
pub use rules::frontend::{FRONTEND_KINDS, MAX_BUNDLE_PATH, plain_bundle_path};
pub use schema::manifest_schema;
pub use sections::{
    Author, Backend, BackendKind, Configuration, Database, DeclaredPermission, Dependencies,
    Events, Feature, Frontend, Hook, KeyAttribute, KeyType, Method, ModuleCall, ModuleRequirement,
    Repository, Route, Scaling, Subscription, Table,
};
pub use tier::Tier;

use problem::Problems;

/// A module's manifest (`manifest.json`), known to be valid: build one with
/// [`validate_manifest`] or [`Manifest::from_json_str`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The module's name, its URL segment and namespace.
    pub name: ModuleName,
    /// Name shown to people.
    pub display_name: String,
    /// This version of the module.
    pub version: Version,
    /// One-line description for the marketplace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where the source lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<Repository>,
    /// Who makes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<Author>,
    /// The API backend.
    pub backend: Backend,
    /// The UI bundle, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontend: Option<Frontend>,
    /// The module's tables, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<Database>,
    /// Platform version and other modules needed.
    #[serde(default)]
    pub dependencies: Dependencies,
    /// Permissions the module declares, all in its own namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<DeclaredPermission>,
    /// Routes below `api_prefix`; none means every path is open to enabled tenants' users.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// Configuration defaults and schema.
    #[serde(default)]
    pub configuration: Configuration,
    /// Feature toggles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<Feature>,
    /// Lifecycle hooks: paths on the backend.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hooks: BTreeMap<Hook, String>,
    /// Events published and subscribed to.
    #[serde(default)]
    pub events: Events,
    /// The least tier that may enable the module.
    #[serde(default)]
    pub subscription_tier: Tier,
    /// License name, e.g. `proprietary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Marketplace category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Marketplace tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl Manifest {
    /// Parses and validates a manifest from JSON text.
    ///
    /// # Errors
    /// [`ManifestError::Json`] when the text is not JSON (with line and column), or
    /// [`ManifestError::Invalid`] with every problem of the document.
    pub fn from_json_str(text: &str) -> Result<Self, ManifestError> {
        let document: Value = serde_json::from_str(text)?;
        validate_manifest(&document).map_err(ManifestError::Invalid)
    }

    /// The prefix every table name starts with: `database.schema_prefix`, or the module name
    /// in snake case followed by `_`.
    #[must_use]
    pub fn schema_prefix(&self) -> String {
        self.database
            .as_ref()
            .and_then(|database| database.schema_prefix.clone())
            .unwrap_or_else(|| format!("{}_", self.name.snake_case()))
    }

    /// Whether the module declares `permission`.
    #[must_use]
    pub fn declares(&self, permission: &Permission) -> bool {
        self.permissions
            .iter()
            .any(|declared| &declared.code == permission)
    }
}

/// Validates a manifest document, reporting every problem at once.
///
/// # Errors
/// Every [`Problem`] found, in document order; a document with any problem yields no
/// [`Manifest`].
pub fn validate_manifest(document: &Value) -> Result<Manifest, Vec<Problem>> {
    let mut problems = Problems::default();
    schema::check_structure(document, &mut problems);
    rules::check_rules(document, &mut problems);
    if !problems.is_empty() {
        return Err(problems.into_sorted(document));
    }
    // Both passes accepted the document, so this cannot fail unless the passes and the types
    // disagree; say so rather than panic.
    Manifest::deserialize(document).map_err(|error| {
        vec![Problem {
            path: "$".to_owned(),
            message: format!("the manifest passed validation but could not be read ({error}); this is a bug in Plinth"),
        }]
    })
}
