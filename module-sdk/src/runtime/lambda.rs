//! The module as a Lambda function: one function receives API Gateway (and ALB) requests,
//! which the same router serves as under ECS, and the events of its subscriptions, either
//! straight from an EventBridge rule or through an SQS queue.

use std::sync::Arc;

use axum::Router;
use lambda_http::lambda_runtime::{self, LambdaEvent};
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Service, service_fn};
use serde_json::{Value, json};

use super::SetupError;
use crate::manifest::Manifest;
use crate::subscriber::{Subscriptions, dispatch_message};

type LambdaError = lambda_http::Error;

/// What an invocation carries.
#[derive(Debug)]
pub(crate) enum Invocation {
    /// An EventBridge event, from a rule that targets the function.
    Event(Value),
    /// SQS messages whose bodies are EventBridge events.
    Queue(Vec<Value>),
    /// An HTTP request (API Gateway v1/v2, ALB).
    Http(Value),
}

impl Invocation {
    pub(crate) fn classify(payload: Value) -> Self {
        if payload.get("detail-type").is_some() && payload.get("source").is_some() {
            return Self::Event(payload);
        }
        let from_sqs = payload["Records"]
            .as_array()
            .and_then(|records| records.first())
            .is_some_and(|record| record["eventSource"] == "aws:sqs");
        if from_sqs {
            let records = payload["Records"].as_array().cloned().unwrap_or_default();
            return Self::Queue(records);
        }
        Self::Http(payload)
    }
}

pub(super) async fn run(
    router: Router,
    manifest: Arc<Manifest>,
    subscriptions: Option<Subscriptions>,
) -> Result<(), SetupError> {
    let handler = service_fn(move |event: LambdaEvent<Value>| {
        let (router, manifest) = (router.clone(), manifest.clone());
        let subscriptions = subscriptions.clone();
        async move { handle(router, &manifest, subscriptions.as_ref(), event).await }
    });
    lambda_runtime::run(handler)
        .await
        .map_err(|e| SetupError(format!("the Lambda runtime stopped: {e}")))
}

async fn handle(
    router: Router,
    manifest: &Manifest,
    subscriptions: Option<&Subscriptions>,
    event: LambdaEvent<Value>,
) -> Result<Value, LambdaError> {
    let LambdaEvent { payload, context } = event;
    match Invocation::classify(payload) {
        Invocation::Event(event) => {
            deliver(manifest, subscriptions, &event).await?;
            Ok(json!({}))
        }
        Invocation::Queue(records) => Ok(deliver_batch(manifest, subscriptions, records).await),
        Invocation::Http(payload) => {
            // `LambdaRequest` reads raw JSON text, not a `Value`.
            let request: LambdaRequest = serde_json::from_str(&payload.to_string())?;
            let mut adapter = Adapter::from(router);
            let response = adapter
                .call(LambdaEvent::new(request, context))
                .await
                .map_err(|never| match never {})?;
            Ok(serde_json::to_value(response)?)
        }
    }
}

async fn deliver(
    manifest: &Manifest,
    subscriptions: Option<&Subscriptions>,
    event: &Value,
) -> Result<(), LambdaError> {
    dispatch_message(subscriptions, manifest, &event.to_string())
        .await
        .map(drop)
        .map_err(|e| LambdaError::from(e.to_string()))
}

/// Delivers each message; those not delivered are reported so that only they are retried
/// (and, past the queue's `maxReceiveCount`, moved to its dead-letter queue — a body that is
/// not an event too, so that nothing is dropped unseen).
async fn deliver_batch(
    manifest: &Manifest,
    subscriptions: Option<&Subscriptions>,
    records: Vec<Value>,
) -> Value {
    let mut failures = Vec::new();
    for record in records {
        let id = record["messageId"].as_str().unwrap_or_default().to_owned();
        let body = record["body"].as_str().unwrap_or_default();
        if let Err(error) = dispatch_message(subscriptions, manifest, body).await {
            tracing::warn!(%error, id, "an SQS message was not delivered; it stays on its queue");
            failures.push(json!({"itemIdentifier": id}));
        }
    }
    json!({"batchItemFailures": failures})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invocations_are_told_apart_by_shape() {
        let event = json!({"source": "plinth.module.financial", "detail-type": "x", "detail": {}});
        assert!(matches!(Invocation::classify(event), Invocation::Event(_)));
        let queue =
            json!({"Records": [{"eventSource": "aws:sqs", "messageId": "1", "body": "{}"}]});
        assert!(matches!(Invocation::classify(queue), Invocation::Queue(r) if r.len() == 1));
        let http = json!({"version": "2.0", "rawPath": "/api/v1/financial/invoices"});
        assert!(matches!(Invocation::classify(http), Invocation::Http(_)));
    }
}
