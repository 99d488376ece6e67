//! The cost model: each tier's prices, which turn a tenant's usage into a bill estimate.

use std::collections::BTreeMap;

use plinth_module_sdk::manifest::Tier;
use serde::{Deserialize, Serialize};

use super::meter::Counts;

/// One tier's prices, in [`Prices::currency`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierPrices {
    /// Per million module requests (errors included).
    pub per_million_requests: f64,
    /// Per GB (10⁹ bytes) of request and response bodies.
    pub per_gb_transferred: f64,
    /// Per thousand events, published and delivered.
    pub per_thousand_events: f64,
}

/// Prices per tier (`PLINTH_USAGE_PRICES` on `plinth up`; docs/operations.md has the defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    pub currency: String,
    pub tiers: BTreeMap<Tier, TierPrices>,
}

impl Default for Prices {
    /// USD; free costs nothing, each tier above pays less per unit than the one below.
    fn default() -> Self {
        let tier = |requests, gb, events| TierPrices {
            per_million_requests: requests,
            per_gb_transferred: gb,
            per_thousand_events: events,
        };
        Self {
            currency: "USD".into(),
            tiers: BTreeMap::from([
                (Tier::Free, tier(0.0, 0.0, 0.0)),
                (Tier::Basic, tier(2.00, 0.10, 0.05)),
                (Tier::Premium, tier(1.50, 0.09, 0.04)),
                (Tier::Enterprise, tier(1.00, 0.08, 0.03)),
            ]),
        }
    }
}

/// A bill estimate: what each kind of use costs, and the total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Bill {
    pub currency: String,
    /// The prices it was computed with (the tenant's tier's).
    pub prices: TierPrices,
    pub requests: f64,
    pub transfer: f64,
    pub events: f64,
    pub total: f64,
}

impl Prices {
    /// Reads `text` (JSON: `{"currency": "EUR", "tiers": {"basic": {…}}}`); a tier it does not
    /// name keeps its default prices, and a missing currency stays USD.
    pub fn parse(text: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Given {
            currency: Option<String>,
            #[serde(default)]
            tiers: BTreeMap<Tier, TierPrices>,
        }
        let given: Given = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut prices = Self::default();
        if let Some(currency) = given.currency {
            prices.currency = currency;
        }
        for (tier, tier_prices) in given.tiers {
            let each = [
                tier_prices.per_million_requests,
                tier_prices.per_gb_transferred,
                tier_prices.per_thousand_events,
            ];
            if each.iter().any(|p| !p.is_finite() || *p < 0.0) {
                return Err(format!("tier {tier}: a price is a number of at least 0"));
            }
            prices.tiers.insert(tier, tier_prices);
        }
        Ok(prices)
    }

    /// What `usage` costs on `tier`.
    pub fn bill(&self, tier: Tier, usage: &Counts) -> Bill {
        let prices = self.tiers.get(&tier).copied().unwrap_or(TierPrices {
            per_million_requests: 0.0,
            per_gb_transferred: 0.0,
            per_thousand_events: 0.0,
        });
        let requests = usage.requests as f64 / 1e6 * prices.per_million_requests;
        let bytes = usage.request_bytes.saturating_add(usage.response_bytes);
        let transfer = bytes as f64 / 1e9 * prices.per_gb_transferred;
        let events = usage
            .events_published
            .saturating_add(usage.events_delivered) as f64
            / 1e3
            * prices.per_thousand_events;
        Bill {
            currency: self.currency.clone(),
            prices,
            requests: cents(requests),
            transfer: cents(transfer),
            events: cents(events),
            total: cents(requests + transfer + events),
        }
    }
}

/// Rounded to a millionth of the currency: an estimate, never a float's noise.
fn cents(amount: f64) -> f64 {
    (amount * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bill_prices_requests_bytes_and_events_at_the_tenant_s_tier() {
        let usage = Counts {
            requests: 2_000_000,
            request_bytes: 1_000_000_000,
            response_bytes: 4_000_000_000,
            events_published: 1_500,
            events_delivered: 500,
            ..Counts::default()
        };
        let bill = Prices::default().bill(Tier::Basic, &usage);
        assert_eq!(bill.requests, 4.0);
        assert_eq!(bill.transfer, 0.5);
        assert_eq!(bill.events, 0.1);
        assert_eq!(bill.total, 4.6);
        assert_eq!(Prices::default().bill(Tier::Free, &usage).total, 0.0);
    }

    #[test]
    fn configured_prices_replace_their_tier_s_and_keep_the_rest() {
        let prices = Prices::parse(
            r#"{"currency": "EUR", "tiers": {"premium": {"per_million_requests": 9, "per_gb_transferred": 1, "per_thousand_events": 0.5}}}"#,
        )
        .unwrap();
        assert_eq!(prices.currency, "EUR");
        assert_eq!(prices.tiers[&Tier::Premium].per_million_requests, 9.0);
        assert_eq!(
            prices.tiers[&Tier::Basic],
            Prices::default().tiers[&Tier::Basic]
        );
        let negative = r#"{"tiers": {"basic": {"per_million_requests": -1, "per_gb_transferred": 0, "per_thousand_events": 0}}}"#;
        assert!(Prices::parse(negative).unwrap_err().contains("tier basic"));
        assert!(Prices::parse(r#"{"tiers": {"gold": {}}}"#).is_err());
    }
}
