//! Rate limits that hold across processes.
//!
//! The gateway's token buckets (`gateway::rate`) live in one process. On one machine that is
//! the whole platform; on AWS every warm authorizer instance has its own, so *n* instances
//! would let a tenant through at *n* times its tier's rate. With a [`RateBudget`], an
//! instance also takes each request from the tenant's budget for the current second, kept in
//! the store: it leases a batch of requests at a time ([`batch_of`]: one conditional write per
//! batch, not per request) from the item `RATE#{tenant}` / `{second}`, so that all instances
//! together admit at most the tier's rate in any one second. What an instance leased and did
//! not use in its second is lost: a tenant may get up to a batch per warm instance per second
//! less than its rate, never more.
//!
//! Once the store says a tenant's second is spent, the process refuses that tenant's requests
//! until the second ends without asking again, so a tenant over its quota costs the store at
//! most one read per process per second beyond its leases. When the store cannot be reached
//! for a tenant, its request is let through (logged), and so are the tenant's requests for the
//! next [`PAUSE_AFTER_FAILURE`] without asking the store again: the instance's own token bucket
//! still holds the tenant to its tier's rate, and an outage of the table neither refuses nor
//! slows requests. A lease that loses to other processes writing the same second
//! [`ATTEMPTS`] times (each time after a short wait) refuses its one request: under heavy
//! contention a request may be refused while the second has budget left, never admitted past
//! it.
//!
//! The seconds are calendar seconds of each process's clock: in a sliding second across a
//! boundary up to twice the rate can pass, and processes whose clocks differ share a budget
//! only as far as their seconds agree.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::store::{Condition, Item, Key, Store, StoreError};

/// How many times a lease is tried again when another instance wrote the same second's
/// budget in between.
const ATTEMPTS: usize = 8;
/// How long a second's budget is kept (DynamoDB's TTL removes it later).
const KEPT_SECONDS: i64 = 120;
/// How long the budget is not asked after the store failed.
pub const PAUSE_AFTER_FAILURE: std::time::Duration = std::time::Duration::from_secs(5);

/// Requests leased at a time for a tier allowing `per_second`: a twentieth of it, at least one.
#[must_use]
pub const fn batch_of(per_second: u32) -> u32 {
    let batch = per_second / 20;
    if batch == 0 { 1 } else { batch }
}

/// Every tenant's budget for the current second, shared through the store.
#[derive(Debug)]
pub struct RateBudget {
    store: Arc<dyn Store>,
    /// What this process knows of each tenant's current second.
    tenants: Mutex<HashMap<String, TenantSecond>>,
}

/// One tenant's second, as this process knows it.
#[derive(Debug, Clone, Copy, Default)]
struct TenantSecond {
    second: i64,
    /// Leased and not used yet.
    left: u32,
    /// The store said the second's budget is spent: refused without asking again.
    spent: bool,
    /// The store failed: the tenant's requests go through on the process's own limit until
    /// then, without asking it.
    paused_until: Option<std::time::Instant>,
}

/// What a lease got from the store.
enum Lease {
    Granted(u32),
    /// The second's budget is spent.
    Spent,
    /// Every attempt lost to another process writing the same second.
    Contended,
}

impl RateBudget {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            tenants: Mutex::default(),
        }
    }

    /// Takes one request from the tenant's budget of `per_second` for this second, or says
    /// to retry in a second (a 429).
    ///
    /// # Errors
    /// [`Error::TooManyRequests`] when the second's budget is spent (never for a store
    /// failure: see the module's documentation).
    pub async fn take(&self, tenant: &str, per_second: u32) -> Result<()> {
        self.take_at(tenant, per_second, crate::store::now_unix())
            .await
    }

    /// [`RateBudget::take`] in the given second (Unix seconds).
    ///
    /// # Errors
    /// As [`RateBudget::take`].
    pub async fn take_at(&self, tenant: &str, per_second: u32, second: i64) -> Result<()> {
        let over = || Error::TooManyRequests {
            detail: format!(
                "tenant {tenant} is over its rate limit of {per_second} requests a second; \
                 retry shortly"
            ),
            retry_after_secs: 1,
        };
        {
            let mut tenants = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
            let known = tenants.entry(tenant.to_owned()).or_default();
            if known
                .paused_until
                .is_some_and(|until| std::time::Instant::now() < until)
            {
                return Ok(());
            }
            if known.second == second {
                if known.left > 0 {
                    known.left -= 1;
                    return Ok(());
                }
                if known.spent {
                    return Err(over());
                }
            }
        }
        let lease = self
            .lease(tenant, second, batch_of(per_second), per_second)
            .await;
        let mut tenants = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        let known = tenants.entry(tenant.to_owned()).or_default();
        if known.second != second {
            *known = TenantSecond {
                second,
                ..TenantSecond::default()
            };
        }
        match lease {
            // One of the granted requests is this one.
            Ok(Lease::Granted(granted)) => {
                known.left += granted - 1;
                Ok(())
            }
            Ok(Lease::Spent) => {
                known.spent = true;
                Err(over())
            }
            // Many processes at once lost to each other: refused rather than let through, so
            // that the processes together never pass the rate.
            Ok(Lease::Contended) => Err(over()),
            Err(error) => {
                tracing::warn!(%tenant, %error, pause_secs = PAUSE_AFTER_FAILURE.as_secs(), "the shared rate budget cannot be read: the tenant's requests go through on this instance's own limit meanwhile");
                known.paused_until = Some(std::time::Instant::now() + PAUSE_AFTER_FAILURE);
                Ok(())
            }
        }
    }

    /// Adds up to `want` requests to the second's `used`, without passing `quota`.
    async fn lease(&self, tenant: &str, second: i64, want: u32, quota: u32) -> Result<Lease> {
        let key = Key::new(format!("RATE#{tenant}"), second.to_string());
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                // Spread the retries of processes that lost together.
                let wait =
                    u64::try_from(attempt).unwrap_or(1) + u64::from(rand::random::<u8>() % 4);
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            }
            let stored = self.store.get(&key).await?;
            let used = stored
                .as_ref()
                .and_then(|item| item.data.get("used"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let left = u64::from(quota).saturating_sub(used);
            if left == 0 {
                return Ok(Lease::Spent);
            }
            let granted = u32::try_from(left.min(u64::from(want))).unwrap_or(want);
            let data = used_data(used + u64::from(granted));
            let (item, condition) = match &stored {
                Some(item) => item.next(data),
                None => (Item::new(key.clone(), data), Condition::Absent),
            };
            match self
                .store
                .put(item.expiring_at(second + KEPT_SECONDS), condition)
                .await
            {
                Ok(()) => return Ok(Lease::Granted(granted)),
                Err(StoreError::ConditionFailed { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Lease::Contended)
    }
}

fn used_data(used: u64) -> Map<String, Value> {
    match json!({ "used": used }) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::embedded::EmbeddedStore;

    fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().expect("a folder");
        let store = EmbeddedStore::open(dir.path().join("plinth.redb")).expect("a store");
        (dir, Arc::new(store))
    }

    #[test]
    fn a_batch_is_a_twentieth_of_the_rate_and_at_least_one() {
        assert_eq!(batch_of(20), 1);
        assert_eq!(batch_of(100), 5);
        assert_eq!(batch_of(5000), 250);
        assert_eq!(batch_of(7), 1);
    }

    /// Three processes sharing a store admit, together, exactly the rate in one second, and
    /// the rate again in the next.
    #[tokio::test]
    async fn processes_sharing_a_store_admit_the_rate_together_not_each() {
        let (_dir, store) = store();
        let processes: Vec<RateBudget> = (0..3).map(|_| RateBudget::new(store.clone())).collect();
        let now = crate::store::now_unix();
        for second in [now, now + 1] {
            let mut admitted = 0;
            for round in 0..60 {
                if processes[round % 3]
                    .take_at("acme", 20, second)
                    .await
                    .is_ok()
                {
                    admitted += 1;
                }
            }
            assert_eq!(admitted, 20, "second {second}");
        }
        let refused = processes[0].take_at("acme", 20, now + 1).await;
        assert!(
            matches!(
                refused,
                Err(Error::TooManyRequests {
                    retry_after_secs: 1,
                    ..
                })
            ),
            "{refused:?}"
        );
        // Another tenant has its own budget.
        assert!(processes[0].take_at("globex", 20, now + 1).await.is_ok());
    }

    /// A process leases a batch at a time: a premium tenant's 500 requests a second cost 20
    /// writes, not 500.
    #[tokio::test]
    async fn a_process_leases_a_batch_at_a_time() {
        let (_dir, store) = store();
        let budget = RateBudget::new(store.clone());
        let now = crate::store::now_unix();
        for _ in 0..500 {
            budget
                .take_at("acme", 500, now)
                .await
                .expect("within the rate");
        }
        assert!(budget.take_at("acme", 500, now).await.is_err());
        let item = store
            .get(&Key::new("RATE#acme", now.to_string()))
            .await
            .expect("read")
            .expect("the second's budget");
        assert_eq!(item.data["used"], 500);
        assert_eq!(item.version, 20, "one write per batch of 25");
    }
}

#[cfg(test)]
mod unavailable {
    use async_trait::async_trait;

    use super::*;
    use crate::store::{Page, Query, StoreResult, Update, Write};

    /// A store that cannot be reached, counting the reads it was asked for.
    #[derive(Debug, Default)]
    struct Down(std::sync::atomic::AtomicUsize);

    fn down<T>() -> StoreResult<T> {
        Err(StoreError::Unavailable("connection refused".into()))
    }

    #[async_trait]
    impl Store for Down {
        async fn get(&self, _: &Key) -> StoreResult<Option<Item>> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            down()
        }
        async fn put(&self, _: Item, _: Condition) -> StoreResult<()> {
            down()
        }
        async fn update(&self, _: &Key, _: Update, _: Condition) -> StoreResult<Item> {
            down()
        }
        async fn delete(&self, _: &Key, _: Condition) -> StoreResult<()> {
            down()
        }
        async fn query(&self, _: &Query) -> StoreResult<Page> {
            down()
        }
        async fn batch_get(&self, _: &[Key]) -> StoreResult<Vec<Item>> {
            down()
        }
        async fn transact(&self, _: Vec<Write>) -> StoreResult<()> {
            down()
        }
    }

    /// An outage of the budget's table refuses no request and is asked once, not per
    /// request: the instance's own bucket (the gateway's, checked before) still limits the
    /// tenant meanwhile.
    #[tokio::test]
    async fn a_store_that_cannot_be_reached_lets_requests_through_without_asking_again() {
        let store = Arc::new(Down::default());
        let budget = RateBudget::new(store.clone());
        for _ in 0..50 {
            budget.take("acme", 20).await.expect("let through");
        }
        assert_eq!(store.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}

#[cfg(test)]
mod flood {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::store::embedded::EmbeddedStore;
    use crate::store::{Page, Query, StoreResult, Update, Write};

    /// A store counting the reads it serves.
    #[derive(Debug)]
    struct Counting(EmbeddedStore, AtomicUsize);

    #[async_trait]
    impl Store for Counting {
        async fn get(&self, key: &Key) -> StoreResult<Option<Item>> {
            self.1.fetch_add(1, Ordering::SeqCst);
            self.0.get(key).await
        }
        async fn put(&self, item: Item, condition: Condition) -> StoreResult<()> {
            self.0.put(item, condition).await
        }
        async fn update(
            &self,
            key: &Key,
            update: Update,
            condition: Condition,
        ) -> StoreResult<Item> {
            self.0.update(key, update, condition).await
        }
        async fn delete(&self, key: &Key, condition: Condition) -> StoreResult<()> {
            self.0.delete(key, condition).await
        }
        async fn query(&self, query: &Query) -> StoreResult<Page> {
            self.0.query(query).await
        }
        async fn batch_get(&self, keys: &[Key]) -> StoreResult<Vec<Item>> {
            self.0.batch_get(keys).await
        }
        async fn transact(&self, writes: Vec<Write>) -> StoreResult<()> {
            self.0.transact(writes).await
        }
    }

    /// Review finding: a tenant over its quota made every request read the second's item
    /// again, so a flood could throttle the store. Once spent, a second is refused from memory.
    #[tokio::test]
    async fn a_tenant_over_its_quota_costs_one_read_per_second_not_one_per_request() {
        let dir = tempfile::tempdir().expect("a folder");
        let store = EmbeddedStore::open(dir.path().join("plinth.redb")).expect("a store");
        let counting = Arc::new(Counting(store, AtomicUsize::new(0)));
        let budget = RateBudget::new(counting.clone());
        let now = crate::store::now_unix();
        let mut refused = 0;
        for _ in 0..1_000 {
            if budget.take_at("acme", 20, now).await.is_err() {
                refused += 1;
            }
        }
        assert_eq!(refused, 980);
        // 20 leases of one, then the read that found the second spent.
        assert_eq!(counting.1.load(Ordering::SeqCst), 21);
        // The next second has its budget again.
        assert!(budget.take_at("acme", 20, now + 1).await.is_ok());
    }
}
