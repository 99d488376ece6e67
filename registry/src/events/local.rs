//! The in-process bus of one-machine mode, behaving as EventBridge does for Plinth's rules.
//!
//! Every published event goes to listeners in this process (caches; [`LocalBus::subscribe`])
//! and the most recent ones are kept ([`LocalBus::recent`]). Modules' subscriptions become
//! rules ([`Subscriptions`]): an event matching a rule's pattern (EventBridge's pattern
//! language, `plinth_module_sdk::events::pattern`) is posted as JSON to the module's backend
//! at the subscription's path, in a task of its own so that publishing never waits for it
//! (on the runtime the bus was made on, so that it outlives the publisher's).
//! A delivery is retried with exponential backoff ([`RetryPolicy`]); when it gives up, the
//! event becomes a [`DeadLetter`], which [`LocalBus::replay_dead_letters`] delivers again.
//! With [`EnabledTenants`] set, an event about a tenant reaches only the modules that tenant
//! has enabled.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use plinth_module_sdk::ModuleName;
use plinth_module_sdk::events::pattern::Pattern;
use plinth_module_sdk::manifest::Subscription;
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use super::dead_letters::{
    DeadLetter, DeadLetterQueue, DeadLetterStore, InMemoryDeadLetters, Replay,
};
use super::delivery::HttpDelivery;
use super::{
    EnabledTenants, Event, EventBus, PublishError, RetryPolicy, SubscriptionError, Subscriptions,
    rule_name, subscription_target,
};
use crate::deploy::Deployment;
use crate::store::StoreResult;

const KEPT: usize = 1000;

/// How the local bus delivers to rules' targets.
#[derive(Debug, Clone)]
pub struct LocalBusOptions {
    pub retry: RetryPolicy,
    /// How long one delivery attempt may take.
    pub request_timeout: Duration,
    pub dead_letters: Arc<dyn DeadLetterStore>,
}

impl Default for LocalBusOptions {
    /// The default retry policy, ten seconds per attempt, dead letters in memory.
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(10),
            dead_letters: Arc::new(InMemoryDeadLetters::default()),
        }
    }
}

/// A module's subscription as a rule of the local bus.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `plinth-{module}-{subscription}`, as on EventBridge.
    pub name: String,
    pub module: ModuleName,
    pub subscription: String,
    pub pattern: Pattern,
    /// The URL matching events are posted to.
    pub target: String,
}

/// The bus of one-machine mode. Its inherent `subscribe` listens to every event; the
/// [`Subscriptions`] port's `subscribe` creates rules (call it as
/// `Subscriptions::subscribe(&bus, …)` or through `dyn Subscriptions`).
pub struct LocalBus {
    sender: broadcast::Sender<Event>,
    recent: Mutex<VecDeque<Event>>,
    rules: RwLock<BTreeMap<ModuleName, Vec<Arc<Rule>>>>,
    enabled: RwLock<Option<Arc<dyn EnabledTenants>>>,
    worker: Arc<Worker>,
    /// Where deliveries run: the runtime the bus was made on, not the one that published.
    runtime: Option<tokio::runtime::Handle>,
}

/// What delivery tasks share with the bus.
#[derive(Debug)]
struct Worker {
    delivery: HttpDelivery,
    dead_letters: Arc<dyn DeadLetterStore>,
    /// Deliveries started and not finished.
    in_flight: watch::Sender<usize>,
    /// Told of each event about a tenant delivered to a module (usage metering).
    delivered: std::sync::OnceLock<Delivered>,
}

/// What a bus tells of each event delivered: the tenant it is about, the module it reached.
#[derive(Clone)]
pub struct Delivered(pub Arc<OnDelivered>);

/// Called with the tenant and the module of an event delivered.
pub type OnDelivered = dyn Fn(&str, &ModuleName) + Send + Sync;

impl fmt::Debug for Delivered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Delivered")
    }
}

impl Default for LocalBus {
    fn default() -> Self {
        Self::new(LocalBusOptions::default())
    }
}

impl fmt::Debug for LocalBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalBus")
            .field("rules", &self.rules().len())
            .field("in_flight", &*self.worker.in_flight.borrow())
            .finish_non_exhaustive()
    }
}

impl LocalBus {
    /// A bus whose deliveries run on the Tokio runtime it is made on (or, made outside one,
    /// on the publisher's): a request's runtime ending — a gateway thread stopping — does not
    /// cancel the deliveries of the events it published.
    pub fn new(options: LocalBusOptions) -> Self {
        Self {
            sender: broadcast::channel(4096).0,
            recent: Mutex::new(VecDeque::with_capacity(KEPT)),
            rules: RwLock::new(BTreeMap::new()),
            enabled: RwLock::new(None),
            worker: Arc::new(Worker {
                delivery: HttpDelivery::new(options.retry, options.request_timeout),
                dead_letters: options.dead_letters,
                in_flight: watch::Sender::new(0),
                delivered: std::sync::OnceLock::new(),
            }),
            runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// This bus, delivering an event about a tenant only to modules the tenant has enabled.
    #[must_use]
    pub fn with_enabled_tenants(self, enabled: Arc<dyn EnabledTenants>) -> Self {
        self.set_enabled_tenants(enabled);
        self
    }

    /// From now on, delivers an event about a tenant only to modules the tenant has enabled.
    pub fn set_enabled_tenants(&self, enabled: Arc<dyn EnabledTenants>) {
        *self.enabled.write().unwrap_or_else(PoisonError::into_inner) = Some(enabled);
    }

    /// From now on, tells `delivered` of each event about a tenant delivered (once set, kept).
    pub fn on_delivered(&self, delivered: Delivered) {
        let _ = self.worker.delivered.set(delivered);
    }

    /// Every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }

    /// The most recent events (up to 1000), oldest first.
    pub fn recent(&self) -> Vec<Event> {
        self.recent
            .lock()
            .map(|recent| recent.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The rules, by module and then in the order of the manifest.
    pub fn rules(&self) -> Vec<Rule> {
        let rules = self.rules.read().unwrap_or_else(PoisonError::into_inner);
        rules
            .values()
            .flatten()
            .map(|rule| (**rule).clone())
            .collect()
    }

    /// Waits until every delivery started so far has ended, delivered or dead-lettered.
    pub async fn idle(&self) {
        let mut in_flight = self.worker.in_flight.subscribe();
        // The sender lives as long as `self`, so waiting cannot fail.
        let _ = in_flight.wait_for(|count| *count == 0).await;
    }

    /// The events that could not be delivered, oldest first.
    pub async fn dead_letters(&self) -> StoreResult<Vec<DeadLetter>> {
        self.worker.dead_letters.list().await
    }

    /// Delivers every dead letter again (with the retry policy), to its rule's current target
    /// when the rule still exists. Delivered ones are forgotten; the others are kept with
    /// their new reason.
    pub async fn replay_dead_letters(&self) -> StoreResult<Replay> {
        let store = &self.worker.dead_letters;
        let mut replay = Replay::default();
        for letter in store.list().await? {
            let target = self
                .current_target(&letter)
                .unwrap_or(letter.target.clone());
            let delivered = self
                .worker
                .delivery
                .deliver(&target, &letter.rule, &letter.event)
                .await;
            match delivered {
                Ok(_) => {
                    store.remove(&letter.id).await?;
                    replay.delivered += 1;
                }
                Err(failure) => {
                    let letter =
                        DeadLetter { target, ..letter }.failed(failure.reason, failure.attempts);
                    store.put(&letter).await?;
                    replay.failed.push(letter);
                }
            }
        }
        Ok(replay)
    }

    fn current_target(&self, letter: &DeadLetter) -> Option<String> {
        let rules = self.rules.read().unwrap_or_else(PoisonError::into_inner);
        let module_rules = rules.get(&letter.module)?;
        let rule = module_rules.iter().find(|rule| rule.name == letter.rule)?;
        Some(rule.target.clone())
    }

    fn remember(&self, events: &[Event]) {
        if let Ok(mut recent) = self.recent.lock() {
            for event in events {
                if recent.len() == KEPT {
                    recent.pop_front();
                }
                recent.push_back(event.clone());
            }
        }
    }

    /// Starts a delivery task for every rule `event` matches.
    fn route(&self, event: &Event) {
        let value = event.to_value();
        let matching: Vec<Arc<Rule>> = {
            let rules = self.rules.read().unwrap_or_else(PoisonError::into_inner);
            let all = rules.values().flatten();
            all.filter(|rule| rule.pattern.matches(&value))
                .cloned()
                .collect()
        };
        if matching.is_empty() {
            return;
        }
        let Some(runtime) = self
            .runtime
            .clone()
            .or_else(|| tokio::runtime::Handle::try_current().ok())
        else {
            tracing::error!(event = %event.id, "events not delivered: no Tokio runtime to deliver on");
            return;
        };
        let enabled = self
            .enabled
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for rule in matching {
            let started = Started::new(&self.worker);
            let (event, enabled) = (event.clone(), enabled.clone());
            runtime.spawn(async move {
                started
                    .worker
                    .deliver(&rule, event, enabled.as_deref())
                    .await;
            });
        }
    }
}

/// A delivery counted in flight until dropped, even if its task panics.
struct Started {
    worker: Arc<Worker>,
}

impl Started {
    fn new(worker: &Arc<Worker>) -> Self {
        worker.in_flight.send_modify(|count| *count += 1);
        Self {
            worker: Arc::clone(worker),
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        self.worker
            .in_flight
            .send_modify(|count| *count = count.saturating_sub(1));
    }
}

impl Worker {
    async fn deliver(&self, rule: &Rule, event: Event, enabled: Option<&dyn EnabledTenants>) {
        if let (Some(tenant), Some(enabled)) = (event.tenant_id(), enabled)
            && !enabled.is_enabled(tenant, &rule.module).await
        {
            tracing::debug!(rule = %rule.name, tenant, "not delivered: the tenant has not enabled the module");
            return;
        }
        let Err(failure) = self
            .delivery
            .deliver(&rule.target, &rule.name, &event)
            .await
        else {
            if let (Some(tenant), Some(delivered)) = (event.tenant_id(), self.delivered.get()) {
                (delivered.0)(tenant, &rule.module);
            }
            return;
        };
        tracing::warn!(rule = %rule.name, target = %rule.target, reason = %failure.reason, "event dead-lettered");
        let letter = DeadLetter::new(
            event,
            rule.module.clone(),
            rule.name.clone(),
            rule.target.clone(),
        )
        .failed(failure.reason, failure.attempts);
        if let Err(error) = self.dead_letters.put(&letter).await {
            tracing::error!(%error, rule = %rule.name, "a dead letter could not be kept");
        }
    }
}

#[async_trait]
impl EventBus for LocalBus {
    async fn publish(&self, events: Vec<Event>) -> Result<(), PublishError> {
        self.remember(&events);
        for event in events {
            self.route(&event);
            // No listener is fine: nobody needs this event in this process.
            let _ = self.sender.send(event);
        }
        Ok(())
    }
}

#[async_trait]
impl DeadLetterQueue for LocalBus {
    async fn list(&self) -> StoreResult<Vec<DeadLetter>> {
        self.dead_letters().await
    }

    async fn replay(&self) -> StoreResult<Replay> {
        self.replay_dead_letters().await
    }
}

#[async_trait]
impl Subscriptions for LocalBus {
    async fn subscribe(
        &self,
        module: &ModuleName,
        subscriptions: &[Subscription],
        deployment: &Deployment,
    ) -> Result<Vec<String>, SubscriptionError> {
        let mut rules = Vec::with_capacity(subscriptions.len());
        for subscription in subscriptions {
            let pattern =
                Pattern::parse(&Value::Object(subscription.pattern.clone())).map_err(|error| {
                    SubscriptionError(format!(
                        "subscription `{}` of {module}: {error}",
                        subscription.name
                    ))
                })?;
            rules.push(Arc::new(Rule {
                name: rule_name(module, &subscription.name),
                module: module.clone(),
                subscription: subscription.name.clone(),
                pattern,
                target: subscription_target(deployment, subscription),
            }));
        }
        let names = rules.iter().map(|rule| rule.name.clone()).collect();
        let mut all = self.rules.write().unwrap_or_else(PoisonError::into_inner);
        if rules.is_empty() {
            all.remove(module);
        } else {
            all.insert(module.clone(), rules);
        }
        Ok(names)
    }

    async fn unsubscribe(&self, module: &ModuleName) -> Result<(), SubscriptionError> {
        self.rules
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(module);
        Ok(())
    }
}
