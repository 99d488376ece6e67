//! Rate limits per tenant by subscription tier: a token bucket per tenant (governor).
//!
//! Each tenant gets its own direct limiter, so the hot path holds an `Arc` to it and a check
//! is one atomic update: no key hashing or allocation per request.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use plinth_module_sdk::Tier;

use crate::error::{Error, Result};

/// Requests per second and burst for each tier.
pub const fn quota_of(tier: Tier) -> (u32, u32) {
    match tier {
        Tier::Free => (20, 40),
        Tier::Basic => (100, 200),
        Tier::Premium => (500, 1000),
        Tier::Enterprise => (5000, 10000),
    }
}

/// One tenant's bucket, sized for its tier.
#[derive(Debug)]
pub struct TenantLimit {
    tier: Tier,
    /// The tier's rate, requests per second.
    per_second: u32,
    limiter: DefaultDirectRateLimiter,
}

impl TenantLimit {
    /// The tier's rate, requests per second.
    pub fn per_second(&self) -> u32 {
        self.per_second
    }

    /// Takes a token, or says when to retry (a 429).
    pub fn check(&self, tenant: &str) -> Result<()> {
        self.limiter.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            Error::TooManyRequests {
                detail: format!(
                    "tenant {tenant} is over its {} rate limit; retry shortly",
                    self.tier
                ),
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            }
        })
    }
}

/// The buckets of every tenant seen, by tier quota.
#[derive(Debug)]
pub struct RateLimits {
    /// Each tier's quota and its rate per second.
    quotas: Vec<(Tier, Quota, u32)>,
    tenants: RwLock<HashMap<String, Arc<TenantLimit>>>,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::with_quotas(quota_of)
    }
}

impl RateLimits {
    /// Limits with the given (per second, burst) for each tier.
    pub fn with_quotas(quota: impl Fn(Tier) -> (u32, u32)) -> Self {
        let quotas = Tier::ALL
            .iter()
            .map(|tier| {
                let (per_second, burst) = quota(*tier);
                let per_second = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
                let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
                (
                    *tier,
                    Quota::per_second(per_second).allow_burst(burst),
                    per_second.get(),
                )
            })
            .collect();
        Self {
            quotas,
            tenants: RwLock::default(),
        }
    }

    /// The tenant's bucket for its current tier (a new, full one when the tier changed).
    pub fn limit(&self, tenant: &str, tier: Tier) -> Arc<TenantLimit> {
        if let Ok(tenants) = self.tenants.read()
            && let Some(limit) = tenants.get(tenant)
            && limit.tier == tier
        {
            return Arc::clone(limit);
        }
        let (quota, per_second) = self.quotas.iter().find(|(t, _, _)| *t == tier).map_or_else(
            || (Quota::per_second(NonZeroU32::MAX), u32::MAX),
            |(_, q, rate)| (*q, *rate),
        );
        let fresh = Arc::new(TenantLimit {
            tier,
            per_second,
            limiter: RateLimiter::direct(quota),
        });
        match self.tenants.write() {
            Ok(mut tenants) => {
                let entry = tenants
                    .entry(tenant.to_owned())
                    .or_insert_with(|| Arc::clone(&fresh));
                if entry.tier != tier {
                    *entry = Arc::clone(&fresh);
                }
                Arc::clone(entry)
            }
            Err(_) => fresh,
        }
    }
}
