//! The warehouse module through its router, with the SDK's test kit.

use axum::Router;
use axum::body::Body;
use http::StatusCode;
use plinth_example_warehouse::{Warehouse, manifest, module};
use plinth_module_sdk::data::Tables;
use plinth_module_sdk::testkit::{ContextBuilder, FakePlatform, TestKit};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn setup() -> (TestKit, FakePlatform, Router) {
    let kit = TestKit::new("warehouse");
    let platform = FakePlatform::start(&kit).await;
    platform.enable(
        "acme",
        json!({"low_stock_threshold": 5, "default_unit": "pcs"}),
    );
    platform.set_features("acme", &["low-stock-alerts"]);
    platform.enable(
        "globex",
        json!({"low_stock_threshold": 0, "default_unit": "kg"}),
    );
    let env = platform.env();
    let tables = Tables::in_memory(&manifest()).expect("the declared tables");
    let app = Warehouse::new(tables, env.config(), env.publisher().await);
    let router = module(app, env.verifier())
        .router()
        .expect("code and manifest fit");
    (kit, platform, router)
}

async fn call(
    app: &Router,
    ctx: ContextBuilder<'_>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let request = ctx.request(method, &format!("/api/v1/warehouse{path}"), body);
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn keeper<'a>(kit: &'a TestKit, tenant: &str, company: &str) -> ContextBuilder<'a> {
    kit.context(tenant)
        .company(company)
        .permissions(["warehouse:*"])
}

#[tokio::test]
async fn stock_is_kept_per_company_and_never_goes_below_zero() {
    let (kit, platform, app) = setup().await;
    let item = json!({"sku": "BOLT-8", "name": "Bolt M8", "quantity": 10});
    let (status, created) = call(
        &app,
        keeper(&kit, "acme", "acme-de"),
        "POST",
        "/items",
        Some(item),
    )
    .await;
    assert_eq!(
        (status, &created["unit"]),
        (StatusCode::CREATED, &json!("pcs"))
    );

    let (status, body) = call(
        &app,
        keeper(&kit, "acme", "acme-de"),
        "POST",
        "/items/BOLT-8/movements",
        Some(json!({"quantity": -11})),
    )
    .await;
    assert_eq!(
        (status, &body["detail"]),
        (
            StatusCode::CONFLICT,
            &json!("only 10 pcs of BOLT-8 in stock")
        )
    );
    let (_, item) = call(
        &app,
        keeper(&kit, "acme", "acme-de"),
        "POST",
        "/items/BOLT-8/movements",
        Some(json!({"quantity": -6})),
    )
    .await;
    assert_eq!(item["quantity"], 4);
    let low = &platform.published()[0];
    assert_eq!(
        (low.detail_type.as_str(), &low.detail["quantity"]),
        ("warehouse.stock.low", &json!(4))
    );

    let (_, other_company) =
        call(&app, keeper(&kit, "acme", "acme-fr"), "GET", "/items", None).await;
    assert_eq!(other_company, json!([]));
    let (status, _) = call(
        &app,
        keeper(&kit, "globex", "acme-de"),
        "GET",
        "/items/BOLT-8",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn readers_cannot_move_stock() {
    let (kit, _platform, app) = setup().await;
    let reader = kit
        .context("acme")
        .company("acme-de")
        .user("rita")
        .permissions(["warehouse:stock.read"]);
    let (status, body) = call(
        &app,
        reader,
        "POST",
        "/items",
        Some(json!({"sku": "A", "name": "A"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["detail"],
        "this needs the permission `warehouse:stock.write`, which user `rita` does not have in tenant `acme`"
    );
}

#[test]
fn the_manifest_is_a_valid_microservice() {
    let manifest = plinth_example_warehouse::manifest();
    assert_eq!(manifest.backend.port, Some(8000));
    assert!(
        manifest
            .backend
            .dev_command
            .unwrap()
            .contains("/debug/warehouse")
    );
}
