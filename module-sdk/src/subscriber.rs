//! Typed event subscriptions: [`Subscriptions::on`] binds a handler to a subscription the
//! manifest declares (by name); events reach it by `POST` to the subscription's path (the
//! local bus) or, on AWS, through [`Subscriptions::dispatch`] (an EventBridge target or an SQS
//! queue), matched by the subscription's pattern.
//!
//! Before a handler runs, the event's tenant (and company) is checked with the platform: an
//! event of a tenant that does not have the module enabled is acknowledged and dropped, as is
//! one that concerns no tenant, and one already delivered to this subscription (by
//! `detail.event_id`). The handler gets the tenant's resolved configuration with the payload.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::config_client::{ConfigClient, ResolvedConfig};
use crate::events::Event;
use crate::events::pattern::Pattern;
use crate::manifest::Manifest;
use crate::{ApiError, SetupError};

/// How many delivered event ids each subscription remembers, to drop redeliveries.
const REMEMBERED_EVENTS: usize = 1024;

/// One event, handed to a subscription's handler.
#[derive(Debug, Clone)]
pub struct Delivery<T> {
    /// The tenant the event concerns.
    pub tenant_id: String,
    /// The company it concerns, if any.
    pub company_id: Option<String>,
    /// The tenant's (and company's) configuration of this module.
    pub config: ResolvedConfig,
    /// `detail`, as the handler's type.
    pub payload: T,
    /// The whole envelope.
    pub event: Event,
}

/// What became of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The handler ran and succeeded.
    Delivered,
    /// The event was acknowledged without running the handler; the text says why.
    Dropped(String),
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Erased = dyn Fn(Event, ResolvedConfig) -> BoxFuture<Result<(), ApiError>> + Send + Sync;

struct Handler {
    name: String,
    run: Arc<Erased>,
}

/// A module's event handlers, by subscription name.
///
/// ```
/// use plinth_module_sdk::subscriber::{Delivery, Subscriptions};
/// use plinth_module_sdk::{ApiError, ConfigClient};
///
/// #[derive(serde::Deserialize)]
/// struct InvoicePaid { invoice_id: String, total: f64 }
///
/// async fn on_paid(delivery: Delivery<InvoicePaid>) -> Result<(), ApiError> {
///     println!("{} paid {}", delivery.tenant_id, delivery.payload.invoice_id);
///     Ok(())
/// }
///
/// fn subscriptions(config: ConfigClient) -> Subscriptions {
///     Subscriptions::new(config).on("invoice-paid", on_paid)
/// }
/// ```
#[derive(Clone)]
pub struct Subscriptions {
    config: ConfigClient,
    handlers: Arc<Vec<Handler>>,
    seen: Arc<Mutex<Seen>>,
}

impl fmt::Debug for Subscriptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.handlers.iter().map(|h| h.name.as_str()).collect();
        f.debug_struct("Subscriptions")
            .field("handlers", &names)
            .finish_non_exhaustive()
    }
}

impl Subscriptions {
    /// No handlers yet; tenants are checked with `config`.
    #[must_use]
    pub fn new(config: ConfigClient) -> Self {
        Self {
            config,
            handlers: Arc::new(Vec::new()),
            seen: Arc::default(),
        }
    }

    /// Adds the handler of the manifest's subscription `name`; `detail` is parsed as `T`.
    ///
    /// # Panics
    /// When called after the subscriptions were cloned (build them before serving).
    #[must_use]
    pub fn on<T, F, Fut>(mut self, name: &str, handler: F) -> Self
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(Delivery<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ApiError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let run: Arc<Erased> = Arc::new(move |event: Event, config: ResolvedConfig| {
            let handler = handler.clone();
            Box::pin(async move {
                let payload: T = serde_json::from_value(Value::Object(event.detail.clone()))
                    .map_err(|e| {
                        ApiError::bad_request(format!("the event's detail does not fit: {e}"))
                    })?;
                let delivery = Delivery {
                    tenant_id: config.tenant_id.clone(),
                    company_id: event.company_id().map(str::to_owned),
                    config,
                    payload,
                    event,
                };
                handler(delivery).await
            })
        });
        Arc::get_mut(&mut self.handlers)
            .expect("subscriptions are built before they are shared")
            .push(Handler {
                name: name.to_owned(),
                run,
            });
        self
    }

    /// The names of the subscriptions handled.
    #[must_use]
    pub fn names(&self) -> Vec<&str> {
        self.handlers.iter().map(|h| h.name.as_str()).collect()
    }

    /// Checks the handlers against the manifest: each names a declared subscription.
    pub(crate) fn check(&self, manifest: &Manifest) -> Result<(), SetupError> {
        for handler in self.handlers.iter() {
            if !manifest
                .events
                .subscribes
                .iter()
                .any(|s| s.name == handler.name)
            {
                return Err(SetupError(format!(
                    "a handler is given for subscription `{}`, which manifest.json does not \
                     declare under events.subscribes",
                    handler.name
                )));
            }
        }
        Ok(())
    }

    /// Delivers `event` to the handler of subscription `name`, after the tenant check.
    ///
    /// # Errors
    /// The handler's error; `400` when the event does not fit its type; `502` when the
    /// platform cannot say whether the tenant has the module (so the event is retried).
    pub async fn deliver(&self, name: &str, event: Event) -> Result<Outcome, ApiError> {
        let Some(handler) = self.handlers.iter().find(|h| h.name == name) else {
            return Ok(Outcome::Dropped(format!(
                "no handler for subscription `{name}`"
            )));
        };
        let Some(tenant) = event.tenant_id().map(str::to_owned) else {
            return Ok(Outcome::Dropped("the event concerns no tenant".into()));
        };
        let event_id = event
            .detail
            .get("event_id")
            .and_then(Value::as_str)
            .unwrap_or(&event.id)
            .to_owned();
        let key = format!("{name}/{event_id}");
        if self.seen.lock().is_ok_and(|seen| seen.contains(&key)) {
            return Ok(Outcome::Dropped(format!(
                "event {event_id} was delivered already"
            )));
        }
        let Some(config) = self.config.get(&tenant, event.company_id()).await? else {
            tracing::debug!(%tenant, name, "dropping an event of a tenant without the module");
            return Ok(Outcome::Dropped(format!(
                "tenant `{tenant}` does not have this module enabled"
            )));
        };
        (handler.run)(event, config).await?;
        if let Ok(mut seen) = self.seen.lock() {
            seen.remember(key);
        }
        Ok(Outcome::Delivered)
    }

    /// Delivers `event` to every handled subscription of `manifest` whose pattern matches it:
    /// how events arrive on AWS, where the envelope does not say which rule sent it.
    ///
    /// # Errors
    /// The first failure; the event should then be retried.
    pub async fn dispatch(
        &self,
        manifest: &Manifest,
        event: Event,
    ) -> Result<Vec<Outcome>, ApiError> {
        let value = event.to_value();
        let mut outcomes = Vec::new();
        for subscription in &manifest.events.subscribes {
            let matches = Pattern::parse(&Value::Object(subscription.pattern.clone()))
                .is_ok_and(|pattern| pattern.matches(&value));
            if matches && self.names().contains(&subscription.name.as_str()) {
                outcomes.push(self.deliver(&subscription.name, event.clone()).await?);
            }
        }
        Ok(outcomes)
    }
}

/// Why a message from a queue was not handled. It stays on the queue: received again after
/// its visibility timeout and, past the queue's `maxReceiveCount`, moved to its dead-letter
/// queue, where someone can look at it.
#[cfg(any(feature = "lambda", all(feature = "server", feature = "aws")))]
#[derive(Debug)]
pub(crate) enum Undelivered {
    /// The body is not an EventBridge event.
    NotAnEvent(String),
    /// A handler (or the tenant check) failed.
    Failed(ApiError),
}

#[cfg(any(feature = "lambda", all(feature = "server", feature = "aws")))]
impl fmt::Display for Undelivered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnEvent(reason) => write!(f, "the message is not an event: {reason}"),
            Self::Failed(error) => write!(f, "{}: {}", error.status(), error.detail()),
        }
    }
}

/// Delivers a message whose body is an EventBridge event — what a rule's SQS target sends —
/// through [`Subscriptions::dispatch`], the path every event takes on AWS (a Lambda
/// function's SQS batch and a served module's queue consumer alike). Without subscriptions
/// the event is acknowledged and dropped.
#[cfg(any(feature = "lambda", all(feature = "server", feature = "aws")))]
pub(crate) async fn dispatch_message(
    subscriptions: Option<&Subscriptions>,
    manifest: &Manifest,
    body: &str,
) -> Result<Vec<Outcome>, Undelivered> {
    let event: Event =
        serde_json::from_str(body).map_err(|e| Undelivered::NotAnEvent(e.to_string()))?;
    let Some(subscriptions) = subscriptions else {
        tracing::warn!(detail_type = %event.detail_type, "an event arrived, and no subscription handles it");
        return Ok(Vec::new());
    };
    subscriptions
        .dispatch(manifest, event)
        .await
        .map_err(Undelivered::Failed)
}

impl Subscriptions {
    /// A router posting each handled subscription's events (the body is the envelope) to its
    /// handler, on the path the manifest declares. Answers `200` with
    /// `{"outcome": "delivered"}` or `{"outcome": "dropped", "reason": …}`.
    pub(crate) fn router(&self, manifest: &Manifest) -> Router {
        let handled = manifest
            .events
            .subscribes
            .iter()
            .filter(|s| self.names().contains(&s.name.as_str()));
        handled.fold(Router::new(), |router, subscription| {
            let (subscriptions, name) = (self.clone(), subscription.name.clone());
            let route = post(move |body: Bytes| async move {
                let event = match serde_json::from_slice::<Event>(&body) {
                    Ok(event) => event,
                    Err(e) => {
                        let detail = format!("the body is not an event envelope: {e}");
                        return ApiError::bad_request(detail).into_response();
                    }
                };
                match subscriptions.deliver(&name, event).await {
                    Ok(Outcome::Delivered) => Json(json!({"outcome": "delivered"})).into_response(),
                    Ok(Outcome::Dropped(reason)) => {
                        Json(json!({"outcome": "dropped", "reason": reason})).into_response()
                    }
                    Err(error) => error.into_response(),
                }
            });
            router.route(&subscription.path, route)
        })
    }
}

/// Recently delivered keys, oldest forgotten first.
#[derive(Debug, Default)]
struct Seen {
    order: VecDeque<String>,
    keys: HashSet<String>,
}

impl Seen {
    fn contains(&self, key: &str) -> bool {
        self.keys.contains(key)
    }

    fn remember(&mut self, key: String) {
        if self.keys.insert(key.clone()) {
            self.order.push_back(key);
        }
        while self.order.len() > REMEMBERED_EVENTS {
            if let Some(old) = self.order.pop_front() {
                self.keys.remove(&old);
            }
        }
    }
}
