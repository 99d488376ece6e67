//! Dependency checks: the platform version, required modules installed at satisfying
//! versions, no cycles; and what an uninstall would touch.

use std::collections::{BTreeMap, BTreeSet};

use plinth_module_sdk::{Manifest, PLATFORM_VERSION};
use semver::Version;
use serde::Serialize;

use super::{DataPlan, Installer};
use crate::clock::now;
use crate::error::{Error, Result};
use crate::export::TableRows;
use crate::installation::{IndexEntry, Installation};

/// What uninstalling a module would do (`?dry_run=true`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UninstallImpact {
    pub module: String,
    pub version: String,
    /// Installed modules that require this one: while any is there, uninstall is refused.
    pub dependents: Vec<String>,
    /// The backend that would be stopped.
    pub endpoint: Option<String>,
    pub event_rules: Vec<String>,
    /// Tables dropped only with `drop_data=true`; otherwise kept. On AWS the module's event
    /// queue and its dead-letter queue (which may hold events it has not read) go with them.
    pub tables: Vec<String>,
    pub drop_data: bool,
    /// Why the uninstall would be refused, besides dependents (a version tenants are pinned
    /// to, or the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// Each declared table's rows, every tenant's (a table that cannot be read now says why).
    #[serde(default)]
    pub rows: Vec<TableRows>,
    /// Whether each tenant's rows would be exported first (`export=true`).
    #[serde(default)]
    pub export: bool,
    /// When the tables would be dropped: now with `drop_data`, else once the retention has
    /// passed (RFC 3339); none when the module declares no tables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_after: Option<String>,
}

impl Installer {
    /// Refuses a manifest whose dependencies this platform cannot meet now; returns the
    /// optional modules that are not installed.
    pub(crate) async fn check_dependencies(&self, manifest: &Manifest) -> Result<Vec<String>> {
        let name = manifest.name.as_str();
        if let Some(required) = &manifest.dependencies.platform_version
            && !required.matches(&PLATFORM_VERSION)
        {
            return Err(Error::Conflict(format!(
                "{name} {} needs platform {required}; this platform is {PLATFORM_VERSION}",
                manifest.version
            )));
        }
        let index = self.installations.installed_index().await?;
        let mut missing = Vec::new();
        for requirement in &manifest.dependencies.required_modules {
            let installed = index
                .get(requirement.name.as_str())
                .and_then(|e| e.installed_version.as_deref())
                .and_then(|v| Version::parse(v).ok());
            match installed {
                Some(version) if requirement.version.matches(&version) => {}
                Some(version) => missing.push(format!(
                    "{} {} (installed: {version})",
                    requirement.name, requirement.version
                )),
                None => missing.push(format!("{} {}", requirement.name, requirement.version)),
            }
        }
        if !missing.is_empty() {
            return Err(Error::Conflict(format!(
                "{name} requires these modules installed first: {}",
                missing.join(", ")
            )));
        }
        if let Some(cycle) = find_cycle(name, manifest, &index) {
            return Err(Error::Conflict(format!(
                "dependency cycle: {}",
                cycle.join(" → ")
            )));
        }
        Ok(manifest
            .dependencies
            .optional_modules
            .iter()
            .filter(|m| !index.contains_key(m.as_str()))
            .map(ToString::to_string)
            .collect())
    }

    pub(crate) async fn uninstall_impact(
        &self,
        installation: &Installation,
        plan: DataPlan,
    ) -> Result<UninstallImpact> {
        let manifest = match installation.serving_manifest() {
            Some(manifest) => Some(manifest?),
            None => None,
        };
        let rows = match &manifest {
            Some(manifest) => self.exports.count(manifest, None).await,
            None => Vec::new(),
        };
        let drop_after = (!installation.tables.is_empty()).then(|| {
            if plan.drop_data {
                now()
            } else {
                crate::export::days_from_now(plan.retention_days)
            }
        });
        let index = self.installations.installed_index().await?;
        let dependents = index
            .values()
            .filter(|e| {
                e.module != installation.module && e.requires.contains(&installation.module)
            })
            .map(|e| e.module.clone())
            .collect();
        Ok(UninstallImpact {
            module: installation.module.clone(),
            version: installation.installed_version.clone().unwrap_or_default(),
            dependents,
            endpoint: installation.deployment.as_ref().map(|d| d.endpoint.clone()),
            event_rules: installation.rules.clone(),
            tables: installation.tables.clone(),
            drop_data: plan.drop_data,
            refused: None,
            rows,
            export: plan.export,
            drop_after,
        })
    }
}

/// A path from `name` back to itself through required modules, if any: the manifest's own
/// requirements, then what the installed modules require.
fn find_cycle(
    name: &str,
    manifest: &Manifest,
    index: &BTreeMap<String, IndexEntry>,
) -> Option<Vec<String>> {
    let mut stack: Vec<Vec<String>> = manifest
        .dependencies
        .required_modules
        .iter()
        .map(|r| vec![name.to_owned(), r.name.to_string()])
        .collect();
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last()?.clone();
        if last == name {
            return Some(path);
        }
        if !seen.insert(last.clone()) {
            continue;
        }
        for next in index
            .get(&last)
            .map(|e| e.requires.clone())
            .unwrap_or_default()
        {
            let mut longer = path.clone();
            longer.push(next);
            stack.push(longer);
        }
    }
    None
}
