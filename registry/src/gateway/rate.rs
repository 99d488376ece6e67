//! Rate limits per tenant by subscription tier: a token bucket per tenant (governor).

use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
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

/// One keyed bucket set per tier.
#[derive(Debug)]
pub struct RateLimits {
    limiters: Vec<(Tier, DefaultKeyedRateLimiter<String>)>,
    clock: DefaultClock,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::with_quotas(quota_of)
    }
}

impl RateLimits {
    /// Limits with the given (per second, burst) for each tier.
    pub fn with_quotas(quota: impl Fn(Tier) -> (u32, u32)) -> Self {
        let limiters = Tier::ALL
            .iter()
            .map(|tier| {
                let (per_second, burst) = quota(*tier);
                let per_second = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
                let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
                (
                    *tier,
                    RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
                )
            })
            .collect();
        Self {
            limiters,
            clock: DefaultClock::default(),
        }
    }

    /// Takes a token from the tenant's bucket, or says when to retry (a 429).
    pub fn check(&self, tenant: &str, tier: Tier) -> Result<()> {
        let Some((_, limiter)) = self.limiters.iter().find(|(t, _)| *t == tier) else {
            return Ok(());
        };
        match limiter.check_key(&tenant.to_owned()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Err(Error::TooManyRequests {
                    detail: format!("tenant {tenant} is over its {tier} rate limit; retry shortly"),
                    retry_after_secs: wait.as_secs_f64().ceil() as u64,
                })
            }
        }
    }
}
