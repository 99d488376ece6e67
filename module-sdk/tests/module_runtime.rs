//! A module built with the SDK, driven as the platform drives it: API calls with a signed
//! context, hooks, event deliveries, configuration and start-up registration, against the
//! test kit's platform in memory.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use plinth_module_sdk::events::Event;
use plinth_module_sdk::hooks::{HookAnswer, HookCall, HookResult, Hooks};
use plinth_module_sdk::subscriber::{Delivery, Subscriptions};
use plinth_module_sdk::testkit::{FakePlatform, TestKit};
use plinth_module_sdk::{ApiError, ConfigClient, Manifest, Module, ModuleEnv, TenantContext};
use serde_json::{Value, json};
use tower::ServiceExt;

fn manifest() -> Manifest {
    Manifest::from_json_str(
        &json!({
            "name": "billing", "display_name": "Billing", "version": "0.3.0",
            "backend": {"type": "microservice", "api_prefix": "/api/v1/billing", "health_check": "/health"},
            "permissions": ["billing:bills.read"],
            "hooks": {
                "pre_disable_company": "/_plinth/hooks/pre_disable_company",
                "post_enable_company": "/_plinth/hooks/post_enable_company"
            },
            "events": {"subscribes": [{
                "name": "invoice-paid",
                "pattern": {"detail-type": ["financial.invoice.paid"]},
                "path": "/_plinth/events/invoice-paid"
            }]}
        })
        .to_string(),
    )
    .expect("a valid manifest")
}

#[derive(Debug, Default, Clone)]
struct RecordingHooks {
    calls: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl Hooks for RecordingHooks {
    async fn post_enable_company(&self, call: &HookCall) -> HookResult {
        let company = call.company_id.clone().unwrap_or_default();
        self.calls.lock().unwrap().push(company);
        Ok(HookAnswer::Proceed)
    }

    async fn pre_disable_company(&self, _call: &HookCall) -> HookResult {
        Ok(HookAnswer::Refuse("3 bills are still open".into()))
    }
}

#[derive(Debug, serde::Deserialize)]
struct InvoicePaid {
    invoice_id: String,
}

type Received = Arc<Mutex<Vec<(String, String, Value)>>>;

fn subscriptions(config: ConfigClient, received: &Received) -> Subscriptions {
    let received = received.clone();
    Subscriptions::new(config).on("invoice-paid", move |d: Delivery<InvoicePaid>| {
        let received = received.clone();
        async move {
            let currency = d.config.configuration["currency"].clone();
            received
                .lock()
                .unwrap()
                .push((d.tenant_id, d.payload.invoice_id, currency));
            Ok::<(), ApiError>(())
        }
    })
}

struct Setup {
    kit: TestKit,
    platform: FakePlatform,
    app: Router,
    hooks: RecordingHooks,
    received: Received,
}

async fn setup() -> Setup {
    let kit = TestKit::new("billing");
    let platform = FakePlatform::start(&kit).await;
    let env = platform.env();
    let hooks = RecordingHooks::default();
    let received = Received::default();
    let api = Router::new().route(
        "/me",
        get(|ctx: TenantContext| async move { Json(json!({"tenant": ctx.tenant_id})) }),
    );
    let app = Module::new(manifest(), env.verifier())
        .api(api)
        .hooks(hooks.clone())
        .subscriptions(subscriptions(env.config(), &received))
        .router()
        .expect("code and manifest fit");
    Setup {
        kit,
        platform,
        app,
        hooks,
        received,
    }
}

async fn send(app: &Router, request: http::Request<Body>) -> (StatusCode, Value) {
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

fn post(path: &str, body: &Value) -> http::Request<Body> {
    http::Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn the_api_answers_under_its_prefix_only_with_a_context_checked_against_the_jwks() {
    let s = setup().await;
    let request = s
        .kit
        .context("acme")
        .request("GET", "/api/v1/billing/me", Body::empty());
    assert_eq!(
        send(&s.app, request).await,
        (StatusCode::OK, json!({"tenant": "acme"}))
    );

    let stranger = TestKit::new("billing");
    let forged = stranger.context("acme");
    let (status, body) = send(
        &s.app,
        forged.request("GET", "/api/v1/billing/me", Body::empty()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("signed with unknown key"),
        "{body}"
    );

    let health = http::Request::get("/health").body(Body::empty()).unwrap();
    let (status, body) = send(&s.app, health).await;
    assert_eq!(
        (status, &body["module"], &body["version"]),
        (StatusCode::OK, &json!("billing"), &json!("0.3.0"))
    );
}

#[tokio::test]
async fn hooks_are_served_on_the_manifest_paths_and_pre_hooks_can_refuse() {
    let s = setup().await;
    let call = json!({"hook": "post_enable_company", "module": "billing", "version": "0.3.0",
                      "tenant_id": "acme", "company_id": "acme-de"});
    let answer = send(&s.app, post("/_plinth/hooks/post_enable_company", &call)).await;
    assert_eq!(answer, (StatusCode::OK, json!({})));
    assert_eq!(*s.hooks.calls.lock().unwrap(), ["acme-de"]);

    let call = json!({"hook": "pre_disable_company", "module": "billing", "version": "0.3.0",
                      "tenant_id": "acme", "company_id": "acme-de"});
    let answer = send(&s.app, post("/_plinth/hooks/pre_disable_company", &call)).await;
    assert_eq!(
        answer,
        (
            StatusCode::OK,
            json!({"allow": false, "reason": "3 bills are still open"})
        )
    );

    let undeclared = send(&s.app, post("/_plinth/hooks/post_install", &json!({}))).await;
    assert_eq!(undeclared.0, StatusCode::NOT_FOUND);
}

fn paid(tenant: &str) -> Event {
    let payload = json!({"invoice_id": "INV-1"}).as_object().cloned().unwrap();
    Event::new("plinth.module.financial", "financial.invoice.paid", payload)
        .for_tenant(tenant, None)
}

#[tokio::test]
async fn events_reach_the_handler_with_config_only_for_tenants_with_the_module_once() {
    let s = setup().await;
    s.platform.enable("acme", json!({"currency": "EUR"}));
    let path = "/_plinth/events/invoice-paid";
    let event = paid("acme");
    let delivered = send(&s.app, post(path, &event.to_value())).await;
    assert_eq!(delivered, (StatusCode::OK, json!({"outcome": "delivered"})));
    let again = send(&s.app, post(path, &event.to_value())).await;
    assert_eq!(again.1["outcome"], "dropped");

    let stranger = send(&s.app, post(path, &paid("globex").to_value())).await;
    assert_eq!(
        stranger,
        (
            StatusCode::OK,
            json!({"outcome": "dropped", "reason": "tenant `globex` does not have this module enabled"})
        )
    );
    let received = s.received.lock().unwrap().clone();
    assert_eq!(
        received,
        [("acme".to_owned(), "INV-1".to_owned(), json!("EUR"))]
    );

    let (status, body) = send(&s.app, post(path, &json!({"hello": 1}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("the body is not an event envelope")
    );
}

#[tokio::test]
async fn a_handler_for_an_undeclared_subscription_is_a_setup_error() {
    let kit = TestKit::new("billing");
    let platform = FakePlatform::start(&kit).await;
    let subscriptions = Subscriptions::new(platform.env().config())
        .on("invoice-created", |_: Delivery<Value>| async { Ok(()) });
    let error = Module::new(manifest(), kit.verifier())
        .subscriptions(subscriptions)
        .router()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "a handler is given for subscription `invoice-created`, which manifest.json does not \
         declare under events.subscribes"
    );
}

#[tokio::test]
async fn configuration_is_cached_and_revalidated_when_the_context_says_it_changed() {
    let kit = TestKit::new("billing");
    let platform = FakePlatform::start(&kit).await;
    platform.enable("acme", json!({"currency": "EUR"}));
    let config = platform.env().config();
    let ctx = kit
        .context("acme")
        .config_version(&platform.config_version())
        .build();
    assert_eq!(
        config.for_context(&ctx).await.unwrap().configuration["currency"],
        "EUR"
    );
    config.for_context(&ctx).await.unwrap();
    config.get("acme", None).await.unwrap();
    assert_eq!(platform.config_requests(), 1, "the cached version is used");

    platform.enable("acme", json!({"currency": "CHF"}));
    let newer = kit
        .context("acme")
        .config_version(&platform.config_version())
        .build();
    assert_eq!(
        config.for_context(&newer).await.unwrap().configuration["currency"],
        "CHF"
    );
    assert_eq!(platform.config_requests(), 2);

    let error = config
        .for_context(&kit.context("globex").build())
        .await
        .unwrap_err();
    assert_eq!(error.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        error.detail(),
        "tenant `globex` does not have this module enabled"
    );
}

#[tokio::test]
async fn published_events_carry_the_module_source_and_the_context_tenant() {
    let kit = TestKit::new("billing");
    let platform = FakePlatform::start(&kit).await;
    let publisher = platform.env().publisher().await;
    let ctx = kit.context("acme").company("acme-de").build();
    publisher
        .publish(&ctx, "billing.bill.sent", &json!({"bill": "B-1"}))
        .await
        .unwrap();
    let event = &platform.published()[0];
    assert_eq!(event.source, "plinth.module.billing");
    assert_eq!(
        (event.tenant_id(), event.company_id()),
        (Some("acme"), Some("acme-de"))
    );

    let error = publisher
        .publish(&ctx, "financial.invoice.paid", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot publish financial.invoice.paid: a module publishes only its own events, named `billing.…`"
    );
}

#[tokio::test]
async fn a_started_module_registers_its_instance_with_the_platform() {
    let kit = TestKit::new("billing");
    let platform = FakePlatform::start(&kit).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = ModuleEnv {
        port,
        ..platform.env()
    };
    let module = Module::new(manifest(), env.verifier());
    let server = tokio::spawn(async move { module.serve(&env).await });
    for _ in 0..100 {
        if !platform.instances().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server.abort();
    let instance = format!("http://127.0.0.1:{port}");
    assert_eq!(
        platform.instances(),
        [json!({"instance_url": instance, "health_check_url": format!("{instance}/health")})]
    );
}
