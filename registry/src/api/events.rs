//! `POST /api/v1/events`: a module's own event, onto the platform's bus; the dead letters of
//! one-machine mode (`/api/v1/dead-letters`).

use axum::Router;
use axum::extract::{FromRequest, Request, State as Extract};
use axum::http::StatusCode;
use axum::routing::{get, post};
use plinth_module_sdk::events::Event;
use serde_json::{Value, json};

use super::openapi::ProblemDocument;
use super::{Json, State};
use crate::error::{Error, Result};
use crate::events::dead_letters::{DeadLetter, DeadLetterQueue, Replay};
use crate::identity::Caller;
use crate::module_events::publisher;
use std::sync::Arc;

pub(super) fn routes() -> Router<State> {
    Router::new()
        .route("/api/v1/events", post(publish))
        .route("/api/v1/dead-letters", get(dead_letters))
        .route("/api/v1/dead-letters/replay", post(replay))
}

#[utoipa::path(
    post,
    path = "/api/v1/events",
    tag = "events",
    operation_id = "publish_event",
    summary = "A module publishes one of its declared events for a tenant that enabled it (module API key)",
    request_body(content = serde_json::Value, description = "The event envelope: `id`, `source` (`plinth.module.{name}`), `detail-type` (declared in the manifest's `events.publishes`), `time` (RFC 3339), `detail` (an object; `tenant_id` names a tenant that enabled the module), and optionally `version` and `resources`"),
    responses(
        (status = 202, description = "`{\"id\"}`: on the bus", body = serde_json::Value),
        (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `errors` names each field", body = ProblemDocument, content_type = "application/problem+json")
    ),
    security(("module_api_key" = []))
)]
async fn publish(
    Extract(platform): Extract<State>,
    caller: Caller,
    request: Request,
) -> Result<(StatusCode, Json<Value>)> {
    // Who may publish is decided before the body is read: a caller who may not publish is
    // refused whatever it sent, and learns nothing of the envelope.
    publisher(&caller)?;
    let Json(event) = Json::<Event>::from_request(request, &()).await?;
    let id = event.id.clone();
    let tenant = event.tenant_id().map(str::to_owned);
    platform.module_events.publish(&caller, event).await?;
    if let (Some(tenant), Caller::Module(module)) = (tenant, &caller) {
        let usage = platform.usage.meter();
        usage.shared().published(&tenant, module.as_str());
    }
    Ok((StatusCode::ACCEPTED, Json(json!({"id": id}))))
}

/// The platform's dead-letter queue, for a platform admin; 404 where the platform does not
/// keep them (on AWS they are in SQS dead-letter queues: docs/aws.md).
fn queue(
    platform: &crate::plane::ControlPlane,
    caller: &Caller,
) -> Result<Arc<dyn DeadLetterQueue>> {
    caller.require_platform_admin()?;
    platform.dead_letters.clone().ok_or_else(|| {
        Error::NotFound(
            "this platform keeps no dead letters: on AWS they are in the SQS dead-letter queues \
             (docs/aws.md)"
                .into(),
        )
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/dead-letters",
    tag = "events",
    summary = "Events the platform's bus could not deliver, oldest first (one machine; platform admin)",
    responses((status = 200, description = "Dead letters: the event, module, rule, target, reason, attempts", body = Vec<serde_json::Value>), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
async fn dead_letters(
    Extract(platform): Extract<State>,
    caller: Caller,
) -> Result<Json<Vec<DeadLetter>>> {
    let queue = queue(&platform, &caller)?;
    Ok(Json(queue.list().await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/dead-letters/replay",
    tag = "events",
    summary = "Deliver every dead letter again; delivered ones are forgotten (platform admin)",
    responses((status = 200, description = "`{\"delivered\": n, \"failed\": [dead letters kept]}`", body = serde_json::Value), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not allowed", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "Not found", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
async fn replay(Extract(platform): Extract<State>, caller: Caller) -> Result<Json<Replay>> {
    let queue = queue(&platform, &caller)?;
    Ok(Json(queue.replay().await?))
}
