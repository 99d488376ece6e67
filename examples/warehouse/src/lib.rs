//! Example Plinth module `warehouse`: stock items per company, as an ECS service.
//!
//! Items are kept per (tenant, company) from the verified context, in the declared table
//! `warehouse_items` through the SDK's data handle (partition `{tenant}#{company}`, sort key
//! the SKU): on the embedded file `plinth up` gives, or DynamoDB on AWS. Stock moves in and out
//! through movements; stock never goes below zero, and an item falling to the tenant's
//! `low_stock_threshold` publishes `warehouse.stock.low` (when the `low-stock-alerts` feature
//! is on).

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use plinth_module_sdk::auth::{ContextVerifier, require_permission};
use plinth_module_sdk::data::{Range, Table, Tables};
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

/// The table of items.
pub const ITEMS_TABLE: &str = "warehouse_items";

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct Warehouse {
    tables: Tables,
    /// A read-then-write (a movement) is one at a time in this process.
    writing: Arc<tokio::sync::Mutex<()>>,
    /// The platform's resolved configuration, cached.
    pub config: ConfigClient,
    /// This module's events.
    pub events: Publisher,
}

impl Warehouse {
    /// A warehouse keeping its items in `tables` (the module's declared tables).
    #[must_use]
    pub fn new(tables: Tables, config: ConfigClient, events: Publisher) -> Self {
        Self {
            tables,
            writing: Arc::default(),
            config,
            events,
        }
    }

    /// The items of the context's tenant and company.
    fn items(&self, ctx: &TenantContext) -> Result<Table, ApiError> {
        ctx.require_company()?;
        Ok(self.tables.for_context(ctx).company_table(ITEMS_TABLE)?)
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
    Ok(Json(app.items(&ctx)?.query(Range::All).await?))
}

async fn read_one(
    State(app): State<Warehouse>,
    ctx: TenantContext,
    Path(sku): Path<String>,
) -> Result<Json<Item>, ApiError> {
    let item = app.items(&ctx)?.get(&sku).await?;
    item.map(Json).ok_or_else(|| no_item(&sku))
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
    // One atomic step: of two requests creating one SKU (on any instance), one is a 409.
    if !app.items(&ctx)?.insert(&item.sku, &item).await? {
        return Err(ApiError::conflict(format!("item {} exists", item.sku)));
    }
    Ok((StatusCode::CREATED, Json(item)))
}

async fn remove(
    State(app): State<Warehouse>,
    ctx: TenantContext,
    Path(sku): Path<String>,
) -> Result<StatusCode, ApiError> {
    if app.items(&ctx)?.delete(&sku).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_item(&sku))
    }
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
    let items = app.items(&ctx)?;
    let item = {
        let _one_at_a_time = app.writing.lock().await;
        let mut item: Item = items.get(&sku).await?.ok_or_else(|| no_item(&sku))?;
        item.quantity = item
            .quantity
            .checked_add_signed(movement.quantity)
            .ok_or_else(|| {
                ApiError::conflict(format!(
                    "only {} {} of {sku} in stock",
                    item.quantity, item.unit
                ))
            })?;
        items.put(&sku, &item).await?;
        item
    };
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
