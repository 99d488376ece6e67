//! `POST /api/v1/events`: a module's own event, onto the platform's bus.

use axum::Router;
use axum::extract::{FromRequest, Request, State as Extract};
use axum::http::StatusCode;
use axum::routing::post;
use plinth_module_sdk::events::Event;
use serde_json::{Value, json};

use super::openapi::ProblemDocument;
use super::{Json, State};
use crate::error::Result;
use crate::identity::Caller;
use crate::module_events::publisher;

pub(super) fn routes() -> Router<State> {
    Router::new().route("/api/v1/events", post(publish))
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
    platform.module_events.publish(&caller, event).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"id": id}))))
}
