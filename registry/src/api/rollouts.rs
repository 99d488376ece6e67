//! Staged rollouts of a module's tenants to another installed version (`rollout`).

use axum::Router;
use axum::extract::{Path, State as Extract};
use axum::http::StatusCode;
use axum::routing::{get, post};

use super::modules::module_name;
use super::openapi::ProblemDocument;
use super::{Json, State};
use crate::error::{Error, Result};
use crate::identity::Caller;
use crate::rollout::{RolloutRequest, RolloutView};

pub(super) fn routes() -> Router<State> {
    Router::new()
        .route(
            "/api/v1/modules/{module}/rollouts",
            get(list_rollouts).post(start_rollout),
        )
        .route("/api/v1/modules/{module}/rollouts/{id}", get(show_rollout))
        .route(
            "/api/v1/modules/{module}/rollouts/{id}/pause",
            post(pause_rollout),
        )
        .route(
            "/api/v1/modules/{module}/rollouts/{id}/resume",
            post(resume_rollout),
        )
        .route(
            "/api/v1/modules/{module}/rollouts/{id}/abort",
            post(abort_rollout),
        )
}

/// A rollout's id: a UUID, else no rollout has it (404).
fn rollout_id(module: &str, id: &str) -> Result<String> {
    uuid::Uuid::parse_str(id)
        .map(|u| u.to_string())
        .map_err(|_| Error::NotFound(format!("{module} has no rollout {id}")))
}

#[utoipa::path(
    post,
    path = "/api/v1/modules/{module}/rollouts",
    tag = "installer",
    summary = "Start a staged rollout: move the module's tenants to an installed version wave by wave (platform admins)",
    description = "Each wave's tenants are pinned to the version; the version's 5xx share and p95 latency through the gateway, and its instances' health checks, are watched for `bake_seconds`, then the next wave moves. A breach stops the rollout and moves every moved tenant back (its previous pin, or unpinned). A rollout whose last wave is `100%` makes the version the default when it completes. Refused (422, naming the field) for waves that do not parse or name a tenant without the module, thresholds out of range, or a version that is not installed or already the default; 409 while another rollout of the module is running or paused.",
    params(("module" = String, Path, description = "Module name")),
    request_body(content = RolloutRequest),
    responses((status = 201, description = "Started; its first wave moves at the driver's next step", body = RolloutView), (status = 400, description = "Malformed request", body = ProblemDocument, content_type = "application/problem+json"), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not a platform admin", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "The module is not installed", body = ProblemDocument, content_type = "application/problem+json"), (status = 409, description = "Another rollout of the module is running or paused", body = ProblemDocument, content_type = "application/problem+json"), (status = 422, description = "Bad waves, thresholds or bake time, or a version not installed or already the default; `errors` names each field", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn start_rollout(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(module): Path<String>,
    Json(request): Json<RolloutRequest>,
) -> Result<(StatusCode, Json<RolloutView>)> {
    let module = module_name(&module)?;
    let started = platform.rollouts.start(&caller, &module, request).await?;
    Ok((StatusCode::CREATED, Json(started)))
}

#[utoipa::path(
    get,
    path = "/api/v1/modules/{module}/rollouts",
    tag = "installer",
    summary = "The module's rollouts, oldest first, each with its progress (platform admins)",
    params(("module" = String, Path, description = "Module name")),
    responses((status = 200, description = "Rollouts", body = [RolloutView]), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not a platform admin", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "No such module name", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn list_rollouts(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path(module): Path<String>,
) -> Result<Json<Vec<RolloutView>>> {
    let module = module_name(&module)?;
    platform.rollouts.list(&caller, &module).await.map(Json)
}

#[utoipa::path(
    get,
    path = "/api/v1/modules/{module}/rollouts/{id}",
    tag = "installer",
    summary = "One rollout: its state, current wave, tenants moved, the figures seen and why it stopped (platform admins)",
    params(("module" = String, Path, description = "Module name"), ("id" = String, Path, description = "The rollout's id")),
    responses((status = 200, description = "The rollout", body = RolloutView), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not a platform admin", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "No such rollout of the module", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn show_rollout(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path((module, id)): Path<(String, String)>,
) -> Result<Json<RolloutView>> {
    let id = rollout_id(&module, &id)?;
    let module = module_name(&module)?;
    platform
        .rollouts
        .show(&caller, &module, &id)
        .await
        .map(Json)
}

#[utoipa::path(
    post,
    path = "/api/v1/modules/{module}/rollouts/{id}/pause",
    tag = "installer",
    summary = "Hold a running rollout: its tenants stay where they are and nothing is judged until it resumes (platform admins)",
    params(("module" = String, Path, description = "Module name"), ("id" = String, Path, description = "The rollout's id")),
    responses((status = 200, description = "Paused", body = RolloutView), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not a platform admin", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "No such rollout of the module", body = ProblemDocument, content_type = "application/problem+json"), (status = 409, description = "The rollout is not running (paused or ended), or changed meanwhile", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn pause_rollout(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path((module, id)): Path<(String, String)>,
) -> Result<Json<RolloutView>> {
    let id = rollout_id(&module, &id)?;
    let module = module_name(&module)?;
    platform
        .rollouts
        .pause(&caller, &module, &id)
        .await
        .map(Json)
}

#[utoipa::path(
    post,
    path = "/api/v1/modules/{module}/rollouts/{id}/resume",
    tag = "installer",
    summary = "Resume a paused rollout; the current wave's bake starts again (platform admins)",
    params(("module" = String, Path, description = "Module name"), ("id" = String, Path, description = "The rollout's id")),
    responses((status = 200, description = "Running again", body = RolloutView), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not a platform admin", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "No such rollout of the module", body = ProblemDocument, content_type = "application/problem+json"), (status = 409, description = "The rollout is not paused, or changed meanwhile", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn resume_rollout(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path((module, id)): Path<(String, String)>,
) -> Result<Json<RolloutView>> {
    let id = rollout_id(&module, &id)?;
    let module = module_name(&module)?;
    platform
        .rollouts
        .resume(&caller, &module, &id)
        .await
        .map(Json)
}

#[utoipa::path(
    post,
    path = "/api/v1/modules/{module}/rollouts/{id}/abort",
    tag = "installer",
    summary = "Stop a running or paused rollout and move its tenants back to their previous versions (platform admins)",
    params(("module" = String, Path, description = "Module name"), ("id" = String, Path, description = "The rollout's id")),
    responses((status = 200, description = "Aborted; its tenants are back", body = RolloutView), (status = 401, description = "Not signed in", body = ProblemDocument, content_type = "application/problem+json"), (status = 403, description = "Not a platform admin", body = ProblemDocument, content_type = "application/problem+json"), (status = 404, description = "No such rollout of the module", body = ProblemDocument, content_type = "application/problem+json"), (status = 409, description = "The rollout has ended already, or changed meanwhile", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = []), ("module_api_key" = []))
)]
async fn abort_rollout(
    Extract(platform): Extract<State>,
    caller: Caller,
    Path((module, id)): Path<(String, String)>,
) -> Result<Json<RolloutView>> {
    let id = rollout_id(&module, &id)?;
    let module = module_name(&module)?;
    platform
        .rollouts
        .abort(&caller, &module, &id)
        .await
        .map(Json)
}
