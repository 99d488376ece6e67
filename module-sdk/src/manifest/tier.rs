//! Subscription tiers.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ParseError;

/// A subscription tier, lowest first: `free` < `basic` < `premium` < `enterprise`.
///
/// A module's `subscription_tier` is the least tier that may enable it, so a tenant on tier `t`
/// may enable a module needing `m` exactly when `t >= m`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Available to every tenant; the default.
    #[default]
    Free,
    /// The first paid tier.
    Basic,
    /// For modules like the seed's financial module.
    Premium,
    /// The highest tier.
    Enterprise,
}

impl Tier {
    /// Every tier, lowest first.
    pub const ALL: [Tier; 4] = [Tier::Free, Tier::Basic, Tier::Premium, Tier::Enterprise];

    /// Parses a tier name (lowercase, as written in manifests and tenants).
    ///
    /// # Errors
    /// A [`ParseError`] listing the tiers that exist.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|tier| tier.as_str() == text)
            .ok_or_else(|| {
                ParseError::new("tier", text, "expected free, basic, premium or enterprise")
            })
    }

    /// The tier's name as written in JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Basic => "basic",
            Tier::Premium => "premium",
            Tier::Enterprise => "enterprise",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Tier {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_are_ordered_lowest_first() {
        assert!(Tier::Free < Tier::Basic);
        assert!(Tier::Basic < Tier::Premium);
        assert!(Tier::Premium < Tier::Enterprise);
        assert_eq!(Tier::default(), Tier::Free);
    }

    #[test]
    fn parse_and_display_round_trip() {
        for tier in Tier::ALL {
            assert_eq!(Tier::parse(&tier.to_string()), Ok(tier));
        }
    }

    #[test]
    fn refuses_unknown_tiers() {
        let error = Tier::parse("Premium").expect_err("case matters");
        assert_eq!(
            error.to_string(),
            "`Premium` is not a valid tier: expected free, basic, premium or enterprise"
        );
    }

    #[test]
    fn serializes_lowercase() {
        assert_eq!(
            serde_json::to_string(&Tier::Enterprise).ok().as_deref(),
            Some("\"enterprise\"")
        );
    }
}
