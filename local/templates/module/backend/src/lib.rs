//! The `{{name}}` module's backend: its API, hooks and events, built with the Plinth module SDK.
//!
//! Every handler takes the verified [`TenantContext`] and keys its data by the tenant (and
//! company) in it, never by anything in the path or the body.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use plinth_module_sdk::auth::{ContextVerifier, require_permission};
use plinth_module_sdk::hooks::{HookAnswer, HookCall, HookResult, Hooks};
use plinth_module_sdk::publisher::Publisher;
use plinth_module_sdk::{ApiError, ConfigClient, Manifest, Module, TenantContext};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The module's manifest, as published to the platform.
pub const MANIFEST: &str = include_str!("../../manifest.json");

/// The parsed manifest.
///
/// # Panics
/// When manifest.json is not a valid manifest (a test checks it is).
#[must_use]
pub fn manifest() -> Manifest {
    Manifest::from_json_str(MANIFEST).expect("manifest.json is a valid manifest")
}

/// An item, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// What the item is called.
    pub name: String,
    /// The tenant's greeting (configuration `greeting`) with the name.
    pub greeting: String,
}

/// `POST /items`
#[derive(Debug, Deserialize)]
pub struct NewItem {
    /// What the item is called.
    pub name: String,
}

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct App {
    /// Items by (tenant, company).
    items: Arc<Mutex<HashMap<(String, Option<String>), Vec<Item>>>>,
    /// The tenant's resolved configuration, cached.
    pub config: ConfigClient,
    /// This module's events.
    pub events: Publisher,
}

impl App {
    /// An app with no items.
    #[must_use]
    pub fn new(config: ConfigClient, events: Publisher) -> Self {
        Self { items: Arc::default(), config, events }
    }
}

/// The module: API, hooks, verified by `verifier`.
#[must_use]
pub fn module(app: App, verifier: ContextVerifier) -> Module {
    let api = Router::new()
        .route("/items", get(list).route_layer(require_permission("{{name}}:items.read")))
        .route(
            "/items",
            axum::routing::post(create).route_layer(require_permission("{{name}}:items.write")),
        )
        .with_state(app);
    Module::new(manifest(), verifier).api(api).hooks(LifecycleHooks)
}

fn key(ctx: &TenantContext) -> (String, Option<String>) {
    (ctx.tenant_id.clone(), ctx.company_id.clone())
}

async fn list(State(app): State<App>, ctx: TenantContext) -> Json<Vec<Item>> {
    let items = app.items.lock().map(|all| all.get(&key(&ctx)).cloned()).ok().flatten();
    Json(items.unwrap_or_default())
}

async fn create(
    State(app): State<App>,
    ctx: TenantContext,
    Json(new): Json<NewItem>,
) -> Result<(StatusCode, Json<Item>), ApiError> {
    if new.name.trim().is_empty() {
        return Err(ApiError::bad_request("name: must not be empty"));
    }
    let config = app.config.for_context(&ctx).await?;
    let greeting = config.get("greeting").and_then(|g| g.as_str()).unwrap_or("Hello");
    let item = Item { greeting: format!("{greeting}, {}!", new.name), name: new.name };
    if let Ok(mut all) = app.items.lock() {
        all.entry(key(&ctx)).or_default().push(item.clone());
    }
    app.events
        .publish(&ctx, "{{name}}.item.created", &json!({"name": item.name}))
        .await?;
    Ok((StatusCode::CREATED, Json(item)))
}

/// The lifecycle hooks the manifest declares.
#[derive(Debug, Clone, Copy)]
pub struct LifecycleHooks;

#[async_trait::async_trait]
impl Hooks for LifecycleHooks {
    async fn post_enable_tenant(&self, call: &HookCall) -> HookResult {
        tracing::info!(tenant = ?call.tenant_id, "enabled for a tenant");
        Ok(HookAnswer::Proceed)
    }
}
