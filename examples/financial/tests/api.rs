//! The financial module driven through its router as the gateway and the platform drive it,
//! with contexts from the SDK's test kit and its platform in memory.

use axum::Router;
use axum::body::Body;
use http::StatusCode;
use plinth_example_financial::{Financial, ledger::Ledger, manifest, module};
use plinth_module_sdk::data::Tables;
use plinth_module_sdk::testkit::{FakePlatform, TestKit};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Setup {
    kit: TestKit,
    platform: FakePlatform,
    app: Router,
}

async fn setup() -> Setup {
    let kit = TestKit::new("financial");
    let platform = FakePlatform::start(&kit).await;
    let defaults = json!({"currency": "USD", "tax_rate": 0, "invoice_prefix": "INV", "payment_terms_days": 30});
    platform.enable("acme", defaults.clone());
    platform.configure_company(
        "acme",
        "acme-de",
        json!({"currency": "EUR", "tax_rate": 0.19, "invoice_prefix": "ACME-DE", "payment_terms_days": 14}),
    );
    platform.enable("globex", defaults);
    let env = platform.env();
    let app = Financial {
        ledger: Ledger::new(Tables::in_memory(&manifest()).expect("the declared tables")),
        config: env.config(),
        events: env.publisher().await,
    };
    let app = module(app, env.verifier())
        .router()
        .expect("code and manifest fit");
    Setup { kit, platform, app }
}

impl Setup {
    async fn call(
        &self,
        ctx: plinth_module_sdk::testkit::ContextBuilder<'_>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let uri = format!("/api/v1/financial{path}");
        let response = self
            .app
            .clone()
            .oneshot(ctx.request(method, &uri, body))
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn clerk(&self, tenant: &str, company: &str) -> plinth_module_sdk::testkit::ContextBuilder<'_> {
        self.kit
            .context(tenant)
            .company(company)
            .permissions(["financial:*"])
    }

    async fn post_raw(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let request = http::Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

#[tokio::test]
async fn an_invoice_uses_the_company_configuration_and_is_announced() {
    let s = setup().await;
    let body = json!({"customer": "Initech", "amount": 1000, "description": "Consulting"});
    let (status, invoice) = s
        .call(s.clerk("acme", "acme-de"), "POST", "/invoices", Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invoice}");
    assert_eq!(invoice["number"], "ACME-DE-1");
    assert_eq!(invoice["currency"], "EUR");
    assert_eq!(
        (
            invoice["subtotal"].as_f64(),
            invoice["tax"].as_f64(),
            invoice["total"].as_f64()
        ),
        (Some(1000.0), Some(190.0), Some(1190.0))
    );
    let issued = time::Date::parse(
        invoice["issued_on"].as_str().unwrap(),
        &time::format_description::well_known::Iso8601::DATE,
    )
    .unwrap();
    assert_eq!(
        invoice["due_on"],
        (issued + time::Duration::days(14)).to_string()
    );

    let (_, second) = s
        .call(
            s.clerk("acme", "acme-hq"),
            "POST",
            "/invoices",
            Some(json!({"customer": "Hooli", "amount": 50})),
        )
        .await;
    assert_eq!(
        (&second["number"], &second["currency"], &second["tax"]),
        (&json!("INV-1"), &json!("USD"), &json!(0.0))
    );

    let event = &s.platform.published()[0];
    assert_eq!(event.detail_type, "financial.invoice.created");
    assert_eq!(
        (event.tenant_id(), event.company_id()),
        (Some("acme"), Some("acme-de"))
    );
    assert_eq!(event.detail["invoice_id"], "ACME-DE-1");
}

#[tokio::test]
async fn tenant_b_cannot_read_tenant_a_invoices_with_a_valid_context_of_its_own() {
    let s = setup().await;
    let body = json!({"customer": "Initech", "amount": 1000});
    s.call(s.clerk("acme", "acme-de"), "POST", "/invoices", Some(body))
        .await;

    // globex's admin holds every financial permission, and even names acme's company.
    let (status, list) = s
        .call(s.clerk("globex", "acme-de"), "GET", "/invoices", None)
        .await;
    assert_eq!((status, list), (StatusCode::OK, json!([])));
    let (status, body) = s
        .call(
            s.clerk("globex", "acme-de"),
            "GET",
            "/invoices/ACME-DE-1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], "there is no invoice ACME-DE-1");
    let (status, _) = s
        .call(
            s.clerk("globex", "acme-de"),
            "POST",
            "/invoices/ACME-DE-1/payments",
            Some(json!({"amount": 1190})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, mine) = s
        .call(
            s.clerk("acme", "acme-de"),
            "GET",
            "/invoices/ACME-DE-1",
            None,
        )
        .await;
    assert_eq!(
        (status, &mine["customer"]),
        (StatusCode::OK, &json!("Initech"))
    );
}

#[tokio::test]
async fn a_payment_that_settles_an_invoice_marks_it_paid_and_publishes_paid() {
    let s = setup().await;
    let clerk = || s.clerk("acme", "acme-de");
    s.call(
        clerk(),
        "POST",
        "/invoices",
        Some(json!({"customer": "Initech", "amount": 100})),
    )
    .await;
    let (status, body) = s
        .call(
            clerk(),
            "POST",
            "/invoices/ACME-DE-1/payments",
            Some(json!({"amount": 500})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["detail"],
        "amount: 500 is more than the 119 EUR outstanding on ACME-DE-1"
    );

    let (_, partly) = s
        .call(
            clerk(),
            "POST",
            "/invoices/ACME-DE-1/payments",
            Some(json!({"amount": 19})),
        )
        .await;
    assert_eq!(partly["status"], "open");
    let (_, paid) = s
        .call(
            clerk(),
            "POST",
            "/invoices/ACME-DE-1/payments",
            Some(json!({"amount": 100})),
        )
        .await;
    assert_eq!(
        (&paid["status"], &paid["paid"]),
        (&json!("paid"), &json!(119.0))
    );
    let types: Vec<String> = s
        .platform
        .published()
        .into_iter()
        .map(|e| e.detail_type)
        .collect();
    assert_eq!(
        types,
        ["financial.invoice.created", "financial.invoice.paid"]
    );

    let (status, body) = s
        .call(
            clerk(),
            "POST",
            "/invoices/ACME-DE-1/payments",
            Some(json!({"amount": 1})),
        )
        .await;
    assert_eq!(
        (status, &body["detail"]),
        (
            StatusCode::CONFLICT,
            &json!("invoice ACME-DE-1 is paid already")
        )
    );

    let (_, summary) = s.call(clerk(), "GET", "/reports/summary", None).await;
    assert_eq!(
        (
            &summary["invoiced"],
            &summary["outstanding"],
            &summary["currency"]
        ),
        (&json!(119.0), &json!(0.0), &json!("EUR"))
    );
}

#[tokio::test]
async fn permissions_and_company_are_required_and_bad_input_names_the_field() {
    let s = setup().await;
    let reader = s
        .kit
        .context("acme")
        .company("acme-de")
        .user("ann")
        .permissions(["financial:invoices.read"]);
    let (status, body) = s
        .call(
            reader,
            "POST",
            "/invoices",
            Some(json!({"customer": "X", "amount": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["detail"],
        "this needs the permission `financial:invoices.write`, which user `ann` does not have in tenant `acme`"
    );

    let no_company = s.kit.context("acme").permissions(["financial:*"]);
    let (status, _) = s.call(no_company, "GET", "/invoices", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, body) = s
        .call(
            s.clerk("acme", "acme-de"),
            "POST",
            "/invoices",
            Some(json!({"customer": "X", "amount": -5})),
        )
        .await;
    assert_eq!(
        (status, &body["detail"]),
        (
            StatusCode::BAD_REQUEST,
            &json!("amount: must be more than 0")
        )
    );
}

#[tokio::test]
async fn enabling_a_company_opens_default_accounts_and_open_invoices_block_disabling() {
    let s = setup().await;
    let call = json!({"hook": "post_enable_company", "module": "financial", "version": "1.2.0", "tenant_id": "acme", "company_id": "acme-fr"});
    assert_eq!(
        s.post_raw("/_plinth/hooks/post_enable_company", &call)
            .await,
        (StatusCode::OK, json!({}))
    );
    let (_, accounts) = s
        .call(s.clerk("acme", "acme-fr"), "GET", "/accounts", None)
        .await;
    let codes: Vec<&str> = accounts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["1000", "1200", "2200", "4000"]);

    s.call(
        s.clerk("acme", "acme-fr"),
        "POST",
        "/invoices",
        Some(json!({"customer": "X", "amount": 10})),
    )
    .await;
    let call = json!({"hook": "pre_disable_company", "module": "financial", "version": "1.2.0", "tenant_id": "acme", "company_id": "acme-fr"});
    let (_, answer) = s
        .post_raw("/_plinth/hooks/pre_disable_company", &call)
        .await;
    assert_eq!(
        answer,
        json!({"allow": false, "reason": "acme-fr has 1 open invoice(s): settle them before disabling financial"})
    );
}

#[tokio::test]
async fn a_company_created_in_a_tenant_with_the_module_gets_default_accounts() {
    let s = setup().await;
    let created = |tenant: &str| {
        let payload = json!({"name": "New Co"}).as_object().cloned().unwrap();
        plinth_module_sdk::events::Event::new("plinth.registry", "company.created", payload)
            .for_tenant(tenant, Some("newco"))
            .to_value()
    };
    let (_, outcome) = s
        .post_raw("/_plinth/events/company-created", &created("acme"))
        .await;
    assert_eq!(outcome["outcome"], "delivered");
    let (_, accounts) = s
        .call(s.clerk("acme", "newco"), "GET", "/accounts", None)
        .await;
    assert_eq!(accounts.as_array().map(Vec::len), Some(4));

    let (_, outcome) = s
        .post_raw("/_plinth/events/company-created", &created("initech"))
        .await;
    assert_eq!(outcome["outcome"], "dropped");
}

#[test]
fn the_manifest_is_valid_and_starts_the_built_binary() {
    let manifest = plinth_example_financial::manifest();
    let command = manifest.backend.dev_command.expect("a dev_command");
    assert!(command.contains("/debug/financial"), "{command}");
}
