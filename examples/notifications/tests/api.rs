//! The notifications module receiving `financial.invoice.paid` as the local bus delivers it,
//! and listing what it sent per tenant.

use axum::Router;
use axum::body::Body;
use http::StatusCode;
use plinth_example_notifications::{Outbox, manifest, module};
use plinth_module_sdk::data::Tables;
use plinth_module_sdk::events::Event;
use plinth_module_sdk::testkit::{FakePlatform, TestKit};
use serde_json::{Value, json};
use tower::ServiceExt;

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

fn paid(tenant: &str, invoice: &str) -> http::Request<Body> {
    let payload =
        json!({"invoice_id": invoice, "customer": "Initech", "total": 1190.0, "currency": "EUR"});
    let event = Event::new(
        "plinth.module.financial",
        "financial.invoice.paid",
        payload.as_object().cloned().unwrap(),
    )
    .for_tenant(tenant, Some(&format!("{tenant}-de")));
    http::Request::post("/_plinth/events/invoice-paid")
        .header("content-type", "application/json")
        .body(Body::from(event.to_value().to_string()))
        .unwrap()
}

#[tokio::test]
async fn a_paid_invoice_is_recorded_for_its_tenant_only_and_listed_to_readers() {
    let kit = TestKit::new("notifications");
    let platform = FakePlatform::start(&kit).await;
    platform.enable(
        "acme",
        json!({"channel": "email", "sender": "billing@acme.example"}),
    );
    platform.enable("globex", json!({"channel": "sms", "sender": "GLOBEX"}));
    let env = platform.env();
    let tables = Tables::in_memory(&manifest()).expect("the declared tables");
    let app = module(Outbox::new(tables), env.config(), env.verifier())
        .router()
        .unwrap();

    assert_eq!(
        send(&app, paid("acme", "ACME-DE-1")).await.1["outcome"],
        "delivered"
    );
    assert_eq!(
        send(&app, paid("initech", "INV-9")).await.1["outcome"],
        "dropped"
    );

    let reader = |tenant: &str| kit.context(tenant).permissions(["notifications:sent.read"]);
    let request = reader("acme").request("GET", "/api/v1/notifications/sent", Body::empty());
    let (status, sent) = send(&app, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sent.as_array().map(Vec::len), Some(1));
    assert_eq!(sent[0]["to"], "Initech");
    assert_eq!(sent[0]["from"], "billing@acme.example");
    assert_eq!(sent[0]["company_id"], "acme-de");
    assert_eq!(
        sent[0]["subject"],
        "Invoice ACME-DE-1 is paid: thank you (1190.0 EUR)"
    );

    let request = reader("globex").request("GET", "/api/v1/notifications/sent", Body::empty());
    assert_eq!(send(&app, request).await, (StatusCode::OK, json!([])));
    let stranger = kit
        .context("acme")
        .request("GET", "/api/v1/notifications/sent", Body::empty());
    assert_eq!(send(&app, stranger).await.0, StatusCode::FORBIDDEN);
}
