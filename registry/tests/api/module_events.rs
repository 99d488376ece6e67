//! Modules publish their own events through the platform with their API key.

use axum::http::{Method, StatusCode};
use plinth_module_sdk::ModuleName;
use plinth_module_sdk::events::{Event, module_source};
use serde_json::json;

use crate::support::api::{Auth, TestPlatform, operator, tenant_admin};
use crate::support::fakes::Backend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_publishes_its_declared_events_for_its_tenants() {
    let p = TestPlatform::embedded();
    let backend = Backend::default();
    let url = backend.start().await;
    let manifest = json!({
        "name": "financial", "display_name": "F", "version": "1.0.0",
        "backend": {"type": "microservice", "api_prefix": "/api/v1/financial", "health_check": "/health"},
        "events": {"publishes": ["financial.invoice.paid"]}
    });
    p.call(Method::POST, "/api/v1/modules", operator(), Some(manifest))
        .await
        .expect(StatusCode::CREATED);
    p.call(
        Method::POST,
        "/api/v1/modules/financial/install",
        operator(),
        Some(json!({"version": "1.0.0", "endpoint": url})),
    )
    .await
    .expect(StatusCode::ACCEPTED);
    assert_eq!(p.settled("financial").await["status"], "installed");
    for tenant in ["acme", "globex"] {
        p.call(
            Method::POST,
            "/api/v1/tenants",
            operator(),
            Some(json!({"id": tenant, "name": tenant})),
        )
        .await
        .expect(StatusCode::CREATED);
    }
    p.enable("acme", "financial").await;
    let issued = p
        .call(
            Method::POST,
            "/api/v1/modules/financial/api-keys",
            operator(),
            None,
        )
        .await;
    let key = Auth::ApiKey(
        issued.expect(StatusCode::CREATED)["key"]
            .as_str()
            .unwrap()
            .to_string(),
    );

    let module = ModuleName::parse("financial").unwrap();
    let payload = json!({"invoice_id": "ACME-1", "amount": 100})
        .as_object()
        .cloned()
        .unwrap();
    let paid = Event::new(
        module_source(&module),
        "financial.invoice.paid",
        payload.clone(),
    )
    .for_tenant("acme", None);
    let accepted = p
        .call(
            Method::POST,
            "/api/v1/events",
            key.clone(),
            Some(paid.to_value()),
        )
        .await;
    assert_eq!(
        accepted.expect(StatusCode::ACCEPTED)["id"],
        paid.id.as_str()
    );
    assert!(p.events().contains(&"financial.invoice.paid".to_string()));

    let foreign = Event::new("plinth.registry", "financial.invoice.paid", payload.clone());
    let refused = p
        .call(
            Method::POST,
            "/api/v1/events",
            key.clone(),
            Some(foreign.to_value()),
        )
        .await;
    refused.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "source");
    let undeclared = Event::new(
        module_source(&module),
        "financial.invoice.voided",
        payload.clone(),
    );
    let refused = p
        .call(
            Method::POST,
            "/api/v1/events",
            key.clone(),
            Some(undeclared.to_value()),
        )
        .await;
    refused.expect_problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "does not declare `financial.invoice.voided`",
    );
    let other_tenant = Event::new(module_source(&module), "financial.invoice.paid", payload)
        .for_tenant("globex", None);
    let refused = p
        .call(
            Method::POST,
            "/api/v1/events",
            key,
            Some(other_tenant.to_value()),
        )
        .await;
    refused.expect_problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "tenant globex has not enabled financial",
    );
    let user = p
        .call(
            Method::POST,
            "/api/v1/events",
            tenant_admin("acme"),
            Some(paid.to_value()),
        )
        .await;
    user.expect(StatusCode::FORBIDDEN);
    let published = p
        .events()
        .iter()
        .filter(|e| *e == "financial.invoice.paid")
        .count();
    assert_eq!(published, 1, "nothing refused reached the bus");
}
