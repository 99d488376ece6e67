//! Example Plinth module `warehouse`: stock items per company, as an ECS service.
//!
//! Items are kept per (tenant, company) from the verified context. Stock moves in and out
//! through movements; stock never goes below zero, and an item falling to the tenant's
//! `low_stock_threshold` publishes `warehouse.stock.low` (when the `low-stock-alerts` feature
//! is on).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use plinth_module_sdk::auth::{ContextVerifier, require_permission};
use plinth_module_sdk::publisher::Publisher;
use plinth_module_sdk::{ApiError, ConfigClient, Manifest, Module, TenantContext};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The module's manifest, as published to the platform.
pub const MANIFEST: &str = include_str!("../manifest.json");

/// The parsed manifest.
///
/// # Panics
/// Never for the manifest shipped here (a test holds it valid).
#[must_use]
pub fn manifest() -> Manifest {
    Manifest::from_json_str(MANIFEST).expect("manifest.json is a valid manifest")
}

/// A stock item of one company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Stock-keeping unit, unique in the company.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Unit of measure (the tenant's `default_unit` unless given).
    pub unit: String,
    /// Quantity in stock.
    pub quantity: u64,
}

type Key = (String, String);

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct Warehouse {
    items: Arc<Mutex<HashMap<Key, BTreeMap<String, Item>>>>,
    /// The platform's resolved configuration, cached.
    pub config: ConfigClient,
    /// This module's events.
    pub events: Publisher,
}

impl Warehouse {
    /// An empty warehouse.
    #[must_use]
    pub fn new(config: ConfigClient, events: Publisher) -> Self {
        Self {
            items: Arc::default(),
            config,
            events,
        }
    }

    /// Runs `f` on the items of the context's tenant and company.
    fn with<T>(
        &self,
        ctx: &TenantContext,
        f: impl FnOnce(&mut BTreeMap<String, Item>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let key = (ctx.tenant_id.clone(), ctx.require_company()?.to_owned());
        let mut all: MutexGuard<'_, _> = self
            .items
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(all.entry(key).or_default())
    }
}

/// The module around `app`, verified by `verifier`.
#[must_use]
pub fn module(app: Warehouse, verifier: ContextVerifier) -> Module {
    let read = || require_permission("warehouse:stock.read");
    let write = || require_permission("warehouse:stock.write");
    let api = Router::new()
        .route("/items", get(list).route_layer(read()))
        .route("/items", post(create).route_layer(write()))
        .route("/items/{sku}", get(read_one).route_layer(read()))
        .route(
            "/items/{sku}",
            axum::routing::delete(remove).route_layer(write()),
        )
        .route(
            "/items/{sku}/movements",
            post(movement).route_layer(write()),
        )
        .with_state(app);
    Module::new(manifest(), verifier).api(api)
}

fn no_item(sku: &str) -> ApiError {
    ApiError::not_found(format!("there is no item {sku}"))
}

async fn list(
    State(app): State<Warehouse>,
    ctx: TenantContext,
) -> Result<Json<Vec<Item>>, ApiError> {
    app.with(&ctx, |items| Ok(Json(items.values().cloned().collect())))
}

async fn read_one(
    State(app): State<Warehouse>,
    ctx: TenantContext,
    Path(sku): Path<String>,
) -> Result<Json<Item>, ApiError> {
    app.with(&ctx, |items| {
        items
            .get(&sku)
            .cloned()
            .map(Json)
            .ok_or_else(|| no_item(&sku))
    })
}

/// `POST /items`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewItem {
    sku: String,
    name: String,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    quantity: u64,
}

async fn create(
    State(app): State<Warehouse>,
    ctx: TenantContext,
    body: Result<Json<NewItem>, JsonRejection>,
) -> Result<(StatusCode, Json<Item>), ApiError> {
    let Json(new) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if new.sku.is_empty()
        || !new
            .sku
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(ApiError::bad_request(
            "sku: letters, digits and `-` only, not empty",
        ));
    }
    let config = app.config.for_context(&ctx).await?;
    let default_unit = config
        .get("default_unit")
        .and_then(|v| v.as_str())
        .unwrap_or("pcs");
    let item = Item {
        unit: new.unit.unwrap_or_else(|| default_unit.to_owned()),
        sku: new.sku,
        name: new.name,
        quantity: new.quantity,
    };
    app.with(&ctx, |items| {
        if items.contains_key(&item.sku) {
            return Err(ApiError::conflict(format!("item {} exists", item.sku)));
        }
        items.insert(item.sku.clone(), item.clone());
        Ok((StatusCode::CREATED, Json(item)))
    })
}

async fn remove(
    State(app): State<Warehouse>,
    ctx: TenantContext,
    Path(sku): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.with(&ctx, |items| {
        items.remove(&sku).ok_or_else(|| no_item(&sku))?;
        Ok(StatusCode::NO_CONTENT)
    })
}

/// `POST /items/{sku}/movements`: `quantity` in (positive) or out (negative).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Movement {
    quantity: i64,
}

async fn movement(
    State(app): State<Warehouse>,
    ctx: TenantContext,
    Path(sku): Path<String>,
    body: Result<Json<Movement>, JsonRejection>,
) -> Result<Json<Item>, ApiError> {
    let Json(movement) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if movement.quantity == 0 {
        return Err(ApiError::bad_request("quantity: must not be 0"));
    }
    let config = app.config.for_context(&ctx).await?;
    let item = app.with(&ctx, |items| {
        let item = items.get_mut(&sku).ok_or_else(|| no_item(&sku))?;
        let quantity = item
            .quantity
            .checked_add_signed(movement.quantity)
            .ok_or_else(|| {
                ApiError::conflict(format!(
                    "only {} {} of {sku} in stock",
                    item.quantity, item.unit
                ))
            })?;
        item.quantity = quantity;
        Ok(item.clone())
    })?;
    let threshold = config
        .get("low_stock_threshold")
        .and_then(serde_json::Value::as_u64);
    let low = threshold.is_some_and(|t| item.quantity <= t) && movement.quantity < 0;
    if low && config.feature("low-stock-alerts") {
        let payload = json!({"sku": item.sku, "name": item.name, "quantity": item.quantity});
        app.events
            .publish(&ctx, "warehouse.stock.low", &payload)
            .await?;
    }
    Ok(Json(item))
}
