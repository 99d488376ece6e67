//! The backend driven as the Plinth gateway and platform drive it, with the SDK's test kit:
//! signed tenant contexts and a platform in memory.

use axum::Router;
use axum::body::Body;
use http::StatusCode;
use plinth_module_sdk::testkit::{ContextBuilder, FakePlatform, TestKit};
use serde_json::{Value, json};
use tower::ServiceExt;
use {{crate}}::{App, module};

async fn setup() -> (TestKit, FakePlatform, Router) {
    let kit = TestKit::new("{{name}}");
    let platform = FakePlatform::start(&kit).await;
    platform.enable("acme", json!({"greeting": "Welcome"}));
    platform.enable("globex", json!({"greeting": "Hi"}));
    let env = platform.env();
    let app = App::new(env.config(), env.publisher().await);
    let router = module(app, env.verifier()).router().expect("code and manifest fit");
    (kit, platform, router)
}

async fn call(app: &Router, ctx: ContextBuilder<'_>, method: &str, body: Option<Value>) -> (StatusCode, Value) {
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let request = ctx.request(method, "/api/v1/{{name}}/items", body);
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_item_uses_the_tenant_configuration_and_is_announced() {
    let (kit, platform, app) = setup().await;
    let writer = kit.context("acme").permissions(["{{name}}:*"]);
    let (status, item) = call(&app, writer, "POST", Some(json!({"name": "Ann"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(item["greeting"], "Welcome, Ann!");
    assert_eq!(platform.published()[0].detail_type, "{{name}}.item.created");
}

#[tokio::test]
async fn a_tenant_sees_only_its_own_items() {
    let (kit, _platform, app) = setup().await;
    let acme = || kit.context("acme").permissions(["{{name}}:*"]);
    call(&app, acme(), "POST", Some(json!({"name": "Ann"}))).await;
    let globex = kit.context("globex").permissions(["{{name}}:*"]);
    assert_eq!(call(&app, globex, "GET", None).await, (StatusCode::OK, json!([])));
    let (_, mine) = call(&app, acme(), "GET", None).await;
    assert_eq!(mine.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn requests_without_context_or_permission_are_refused() {
    let (kit, _platform, app) = setup().await;
    let reader = kit.context("acme").permissions(["{{name}}:items.read"]);
    let (status, body) = call(&app, reader, "POST", Some(json!({"name": "Ann"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let anonymous = http::Request::get("/api/v1/{{name}}/items").body(Body::empty()).unwrap();
    let response = app.oneshot(anonymous).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn the_manifest_is_valid() {
    let manifest = {{crate}}::manifest();
    assert_eq!(manifest.name.as_str(), "{{name}}");
}
