//! What a version's target group and listener rule should be: the part of
//! [`super::VersionListener`] that makes no call.

use std::collections::BTreeSet;

use plinth_module_sdk::Manifest;
use sha2::{Digest, Sha256};

use crate::deploy::{DeployError, deployed_name};

/// The header the rules match: the integration sets it from the authorizer's `version`.
pub const VERSION_HEADER: &str = "X-Plinth-Version";
/// The integration's mapping of the authorizer's version onto [`VERSION_HEADER`].
pub const VERSION_PARAMETER: &str = "overwrite:header.x-plinth-version";
/// Where the authorizer puts the version serving the tenant.
pub const AUTHORIZER_VERSION: &str = "$context.authorizer.version";

/// Tags that mark what the installer made, and find it again after an interrupted run.
pub const MODULE_TAG: &str = "plinth:module";
pub const DEPLOYMENT_TAG: &str = "plinth:deployment";
pub const VERSION_TAG: &str = "plinth:version";

/// A target group name's limit (Elastic Load Balancing).
const NAME_LIMIT: usize = 32;
/// Rule priorities a listener takes (1 is the first evaluated).
pub const PRIORITIES: u32 = 50_000;

/// The deployment a version's target group and rule belong to: `plinth-{module}` for the
/// first installation, `plinth-{module}-v{version}` for a version alongside (its Lambda
/// function's or ECS service's name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRoute {
    pub module: String,
    pub version: String,
    pub deployment: String,
    pub target_group: String,
    /// `{api_prefix}` and `{api_prefix}/*`.
    pub paths: [String; 2],
}

impl VersionRoute {
    /// The route of `manifest`'s version, installed alongside or as the first installation.
    ///
    /// # Errors
    /// When the manifest's `api_prefix` cannot be a path pattern.
    pub fn of(manifest: &Manifest, alongside: bool) -> Result<Self, DeployError> {
        let version = manifest.version.to_string();
        let deployment = deployed_name(&manifest.name, alongside.then_some(version.as_str()));
        let prefix = manifest.backend.api_prefix.trim_end_matches('/');
        if !prefix.starts_with('/')
            || prefix.len() + 2 > 128
            || prefix.contains(|c: char| c.is_whitespace() || c == '*' || c == '?')
        {
            return Err(DeployError(format!(
                "module `{}` has no usable `backend.api_prefix` for a listener rule: `{}`",
                manifest.name, manifest.backend.api_prefix
            )));
        }
        Ok(Self {
            module: manifest.name.to_string(),
            target_group: target_group_name(&deployment),
            deployment,
            paths: [prefix.to_owned(), format!("{prefix}/*")],
            version,
        })
    }

    /// The tags of the target group and the rule.
    pub fn tags(&self) -> [(&'static str, &str); 3] {
        [
            (MODULE_TAG, self.module.as_str()),
            (DEPLOYMENT_TAG, self.deployment.as_str()),
            (VERSION_TAG, self.version.as_str()),
        ]
    }

    /// Where probing for a free priority starts: the same for the same deployment on every
    /// run, spread over the listener's range.
    pub fn first_priority(&self) -> u32 {
        let digest = Sha256::digest(self.deployment.as_bytes());
        let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        1 + n % PRIORITIES
    }

    /// The first priority from [`Self::first_priority`] on (wrapping) that no rule has.
    pub fn free_priority(&self, taken: &BTreeSet<u32>) -> Option<u32> {
        let start = self.first_priority();
        (0..PRIORITIES)
            .map(|step| 1 + (start - 1 + step) % PRIORITIES)
            .find(|p| !taken.contains(p))
    }
}

/// A target group name for `deployment`: itself when it fits ELB's 32 characters (letters,
/// digits, single `-`, none at either end), else its first part and a hash of the whole, so
/// two long names stay apart.
pub fn target_group_name(deployment: &str) -> String {
    let mut name = String::with_capacity(deployment.len());
    for c in deployment.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && (name.is_empty() || name.ends_with('-'))) {
            name.push(c);
        }
    }
    let name = name.trim_end_matches('-');
    if name.len() <= NAME_LIMIT && name == deployment {
        return name.to_owned();
    }
    let digest = Sha256::digest(deployment.as_bytes());
    let hash: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    let keep = NAME_LIMIT - hash.len() - 1;
    let head = name[..name.len().min(keep)].trim_end_matches('-');
    format!("{head}-{hash}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn manifest(name: &str, version: &str) -> Manifest {
        Manifest::from_json_str(
            &json!({
                "name": name, "display_name": "M", "version": version,
                "backend": {"type": "lambda", "api_prefix": format!("/api/v1/{name}"),
                            "runtime": "provided.al2023", "entry_point": "bootstrap"}
            })
            .to_string(),
        )
        .unwrap()
    }

    #[test]
    fn a_version_s_target_group_is_named_after_its_deployment() {
        let first = VersionRoute::of(&manifest("financial", "1.2.0"), false).unwrap();
        let alongside = VersionRoute::of(&manifest("financial", "1.3.0"), true).unwrap();
        assert_eq!(first.target_group, "plinth-financial");
        assert_eq!(alongside.target_group, "plinth-financial-v1-3-0");
        assert_eq!(alongside.deployment, "plinth-financial-v1-3-0");
        assert_eq!(
            alongside.paths,
            ["/api/v1/financial", "/api/v1/financial/*"]
        );
    }

    #[test]
    fn a_long_deployment_name_is_cut_and_hashed_within_32_characters() {
        let a = target_group_name("plinth-accounts-receivable-v1-3-0-rc-1");
        let b = target_group_name("plinth-accounts-receivable-v1-3-0-rc-2");
        assert_ne!(a, b);
        for name in [&a, &b] {
            assert!(name.len() <= 32, "{name}");
            assert!(name.starts_with("plinth-accounts-receiva-"), "{name}");
            assert!(!name.contains("--") && !name.ends_with('-'), "{name}");
        }
        assert_eq!(
            a,
            target_group_name("plinth-accounts-receivable-v1-3-0-rc-1")
        );
    }

    #[test]
    fn a_priority_is_probed_from_the_deployment_s_own_start_past_those_taken() {
        let route = VersionRoute::of(&manifest("financial", "1.3.0"), true).unwrap();
        let start = route.first_priority();
        assert!((1..=PRIORITIES).contains(&start));
        assert_eq!(route.free_priority(&BTreeSet::new()), Some(start));
        let taken: BTreeSet<u32> = [start, 1 + start % PRIORITIES].into();
        assert_eq!(
            route.free_priority(&taken),
            Some(1 + (start + 1) % PRIORITIES)
        );
        let all: BTreeSet<u32> = (1..=PRIORITIES).collect();
        assert_eq!(route.free_priority(&all), None);
    }
}
