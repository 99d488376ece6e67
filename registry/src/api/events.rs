//! `POST /api/v1/events`: a module's own event, onto the platform's bus.

use axum::Router;
use axum::extract::State as Extract;
use axum::http::StatusCode;
use axum::routing::post;
use plinth_module_sdk::events::Event;
use serde_json::{Value, json};

use super::{Json, State};
use crate::error::Result;
use crate::identity::Caller;

pub(super) fn routes() -> Router<State> {
    Router::new().route("/api/v1/events", post(publish))
}

async fn publish(Extract(platform): Extract<State>, caller: Caller, Json(event): Json<Event>) -> Result<(StatusCode, Json<Value>)> {
    let id = event.id.clone();
    platform.publish_module_event(&caller, event).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"id": id}))))
}
