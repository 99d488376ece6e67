//! What a rollout is asked to do: its waves (`canary:acme,10%,50%,100%`), thresholds and
//! bake time, parsed from a request — each mistake a 422 naming the field — and the order in
//! which percentage waves take tenants.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hash::sha256_hex;
use crate::ids::TenantId;

/// How long each wave bakes unless the request says: long enough to see a few minutes'
/// traffic on one machine, short enough to finish a demo rollout over a coffee.
pub const DEFAULT_BAKE_SECONDS: u64 = 60;
/// The longest bake a rollout may ask for (a day).
pub const MAX_BAKE_SECONDS: u64 = 86_400;

/// One wave: named tenants, or a share of the module's enabled tenants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Wave {
    /// These tenants, named (`canary:acme,globex`).
    Tenants { name: String, tenants: Vec<String> },
    /// Until this share of the module's enabled tenants is on the new version, counted from
    /// the first wave (`10%`).
    Percent { percent: u8 },
}

impl Wave {
    /// As written in `--waves`.
    pub fn label(&self) -> String {
        match self {
            Wave::Tenants { name, tenants } => format!("{name}:{}", tenants.join(",")),
            Wave::Percent { percent } => format!("{percent}%"),
        }
    }
}

/// Parses `canary:acme,10%,50%,100%`: a `name:tenant` starts a wave of named tenants, and the
/// plain names after it join it; `N%` is a percentage wave. Percentages rise; 422 on `waves`.
pub fn parse_waves(text: &str) -> Result<Vec<Wave>> {
    let bad = |message: String| Error::field("waves", message);
    let mut waves: Vec<Wave> = Vec::new();
    let mut last_percent = 0u8;
    for token in text.split(',').map(str::trim) {
        if token.is_empty() {
            return Err(bad(format!("`{text}` has an empty wave")));
        }
        if let Some(number) = token.strip_suffix('%') {
            let percent = number
                .parse::<u8>()
                .ok()
                .filter(|p| (1..=100).contains(p))
                .ok_or_else(|| bad(format!("`{token}` is not a percentage from 1% to 100%")))?;
            if percent <= last_percent {
                return Err(bad(format!(
                    "`{token}` does not rise above {last_percent}%: each percentage wave takes more tenants than the one before"
                )));
            }
            last_percent = percent;
            waves.push(Wave::Percent { percent });
            continue;
        }
        let (name, tenant) = match token.split_once(':') {
            Some((name, tenant)) => (Some(name.trim()), tenant.trim()),
            None => (None, token),
        };
        TenantId::parse(tenant).map_err(|e| bad(format!("`{tenant}`: {e}")))?;
        match (name, waves.last_mut()) {
            (Some(name), _) => {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    return Err(bad(format!(
                        "`{name}` is not a wave name (letters, digits, `-`)"
                    )));
                }
                if last_percent > 0 {
                    return Err(bad(format!(
                        "the named wave `{name}` comes after a percentage: name tenants first"
                    )));
                }
                waves.push(Wave::Tenants {
                    name: name.to_owned(),
                    tenants: vec![tenant.to_owned()],
                });
            }
            (None, Some(Wave::Tenants { tenants, .. })) if last_percent == 0 => {
                tenants.push(tenant.to_owned());
            }
            (None, _) => {
                return Err(bad(format!(
                    "`{token}` is neither `name:tenant` nor a percentage such as `10%`"
                )));
            }
        }
    }
    let mut named: Vec<&str> = waves
        .iter()
        .flat_map(|w| match w {
            Wave::Tenants { tenants, .. } => tenants.iter().map(String::as_str).collect(),
            Wave::Percent { .. } => Vec::new(),
        })
        .collect();
    named.sort_unstable();
    if let Some(twice) = named.windows(2).find(|w| w[0] == w[1]) {
        return Err(bad(format!("tenant {} is named twice", twice[0])));
    }
    if waves.is_empty() {
        return Err(bad("no wave given".into()));
    }
    Ok(waves)
}

/// When a wave's figures stop the rollout.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Thresholds {
    /// The largest share of the new version's requests that may answer 5xx (0 to 1).
    pub max_error_rate: f64,
    /// The largest 95th-percentile latency through the gateway, in milliseconds.
    pub max_p95_ms: u64,
    /// Requests a wave must have seen before its error rate and latency are judged.
    pub min_requests: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            max_error_rate: 0.05,
            max_p95_ms: 1000,
            min_requests: 10,
        }
    }
}

/// Overrides of the default thresholds, each optional.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdOverrides {
    /// 0 to 1 (default 0.05).
    pub max_error_rate: Option<f64>,
    /// At least 1 (default 1000).
    pub max_p95_ms: Option<u64>,
    /// At least 1 (default 10).
    pub min_requests: Option<u64>,
}

impl ThresholdOverrides {
    /// The defaults with these overrides; 422 naming `thresholds.…`.
    pub fn applied(&self) -> Result<Thresholds> {
        let mut thresholds = Thresholds::default();
        if let Some(rate) = self.max_error_rate {
            if !(0.0..=1.0).contains(&rate) {
                return Err(Error::field(
                    "thresholds.max_error_rate",
                    format!("{rate} is not a share from 0 to 1"),
                ));
            }
            thresholds.max_error_rate = rate;
        }
        if let Some(ms) = self.max_p95_ms {
            if ms == 0 {
                return Err(Error::field("thresholds.max_p95_ms", "must be at least 1"));
            }
            thresholds.max_p95_ms = ms;
        }
        if let Some(n) = self.min_requests {
            if n == 0 {
                return Err(Error::field(
                    "thresholds.min_requests",
                    "must be at least 1",
                ));
            }
            thresholds.min_requests = n;
        }
        Ok(thresholds)
    }
}

/// The bake time asked for, or the default; 422 naming `bake_seconds`.
pub fn bake_seconds(asked: Option<u64>) -> Result<u64> {
    match asked {
        None => Ok(DEFAULT_BAKE_SECONDS),
        Some(secs) if (1..=MAX_BAKE_SECONDS).contains(&secs) => Ok(secs),
        Some(secs) => Err(Error::field(
            "bake_seconds",
            format!("{secs} is not from 1 to {MAX_BAKE_SECONDS} seconds"),
        )),
    }
}

/// The order percentage waves take `module`'s tenants in: by a hash of module and tenant, so
/// the same tenants go first every time and each module's early tenants differ.
pub fn wave_order(module: &str, tenants: &mut [String]) {
    tenants.sort_by_cached_key(|t| sha256_hex(format!("{module}/{t}").as_bytes()));
}

/// How many of `eligible` tenants a `percent` wave has on the new version (rounded up).
pub fn wanted(percent: u8, eligible: usize) -> usize {
    (eligible * usize::from(percent)).div_ceil(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_canary_then_rising_percentages_parse() {
        let waves = parse_waves("canary:acme,globex, 10%,50%,100%").unwrap();
        assert_eq!(
            waves,
            [
                Wave::Tenants {
                    name: "canary".into(),
                    tenants: vec!["acme".into(), "globex".into()]
                },
                Wave::Percent { percent: 10 },
                Wave::Percent { percent: 50 },
                Wave::Percent { percent: 100 },
            ]
        );
        assert_eq!(waves[0].label(), "canary:acme,globex");
    }

    #[test]
    fn bad_waves_are_refused_naming_the_field_and_the_mistake() {
        for (text, needle) in [
            ("", "empty wave"),
            ("50%,10%", "does not rise above 50%"),
            ("0%", "not a percentage"),
            ("150%", "not a percentage"),
            ("acme", "neither `name:tenant`"),
            ("10%,canary:acme", "comes after a percentage"),
            ("canary:acme,beta:acme", "named twice"),
            ("canary:ac#me", "`ac#me`"),
        ] {
            let error = parse_waves(text).unwrap_err().to_string();
            assert!(error.starts_with("waves: "), "{text}: {error}");
            assert!(error.contains(needle), "{text}: {error}");
        }
    }

    #[test]
    fn percentages_round_up_and_the_order_is_stable() {
        assert_eq!(wanted(10, 3), 1);
        assert_eq!(wanted(50, 3), 2);
        assert_eq!(wanted(100, 3), 3);
        assert_eq!(wanted(10, 0), 0);
        let mut one = vec!["a".to_owned(), "b".into(), "c".into()];
        let mut two = vec!["c".to_owned(), "a".into(), "b".into()];
        wave_order("financial", &mut one);
        wave_order("financial", &mut two);
        assert_eq!(one, two);
    }
}
