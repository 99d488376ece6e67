//! Tenants, companies, enablement and the three-tier configuration.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::api::{Auth, TestPlatform, operator, tenant_admin, token};
use crate::support::fakes::Backend;

crate::on_both_stores!(
    the_seed_example_resolves_to_the_seed_result,
    tiers_gate_enablement_and_the_refusal_names_the_tier,
    required_modules_must_be_enabled_first,
    hooks_can_refuse_enablement,
    an_invalid_override_is_refused_and_nothing_is_stored,
    null_removes_a_key_and_features_toggle_per_tier,
    a_company_cannot_enable_what_its_tenant_has_not,
    disabling_keeps_the_configuration_for_a_later_re_enable,
    tenant_routes_take_the_tenant_from_the_token,
    changes_are_audited_newest_first,
);

/// The seed's financial module, with the seed's defaults and a schema.
fn financial(version: &str, tier: &str, requires: &[&str]) -> Value {
    json!({
        "name": "financial", "display_name": "Financial", "version": version,
        "backend": {"type": "microservice", "api_prefix": "/api/v1/financial", "health_check": "/health"},
        "dependencies": {"required_modules": requires},
        "subscription_tier": tier,
        "configuration": {
            "defaults": {"currency": "USD", "tax_rate": 0, "invoice_prefix": "INV", "payment_terms_days": 30},
            "schema": {
                "type": "object",
                "properties": {
                    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                    "tax_rate": {"type": "number", "minimum": 0, "maximum": 1},
                    "invoice_prefix": {"type": "string"},
                    "payment_terms_days": {"type": "integer", "minimum": 0}
                },
                "required": ["currency"]
            }
        },
        "features": [{"name": "invoicing", "default": true}, {"name": "payments", "default": true},
                     {"name": "reporting", "default": false}],
        "hooks": {"pre_enable_tenant": "/_plinth/hooks/pre_enable_tenant",
                  "post_enable_company": "/_plinth/hooks/post_enable_company"}
    })
}

fn plain(name: &str) -> Value {
    json!({"name": name, "display_name": name, "version": "1.0.0",
           "backend": {"type": "microservice", "api_prefix": format!("/api/v1/{name}"), "health_check": "/health"}})
}

/// Publishes and installs `manifest` against a fake backend; returns the backend.
async fn installed(p: &TestPlatform, manifest: Value) -> Backend {
    let backend = Backend::default();
    let url = backend.start().await;
    let name = manifest["name"].as_str().unwrap().to_string();
    let version = manifest["version"].clone();
    p.call(Method::POST, "/api/v1/modules", operator(), Some(manifest))
        .await
        .expect(StatusCode::CREATED);
    let body = json!({"version": version, "endpoint": url});
    p.call(
        Method::POST,
        &format!("/api/v1/modules/{name}/install"),
        operator(),
        Some(body),
    )
    .await
    .expect(StatusCode::ACCEPTED);
    assert_eq!(p.settled(&name).await["status"], "installed");
    backend
}

async fn tenant(p: &TestPlatform, id: &str, tier: &str) {
    let body = json!({"id": id, "name": format!("{id} Inc."), "subscription_tier": tier});
    p.call(Method::POST, "/api/v1/tenants", operator(), Some(body))
        .await
        .expect(StatusCode::CREATED);
}

async fn company(p: &TestPlatform, tenant: &str, id: &str) {
    let body = json!({"id": id, "name": id});
    let path = format!("/api/v1/tenants/{tenant}/companies");
    p.call(Method::POST, &path, tenant_admin(tenant), Some(body))
        .await
        .expect(StatusCode::CREATED);
}

async fn the_seed_example_resolves_to_the_seed_result(p: TestPlatform) {
    installed(&p, financial("1.0.0", "premium", &[])).await;
    tenant(&p, "acme", "premium").await;
    company(&p, "acme", "acme-de").await;
    let tenant_config =
        json!({"configuration": {"currency": "EUR", "tax_rate": 0.20, "invoice_prefix": "ACME"}});
    p.call(
        Method::PUT,
        "/api/v1/tenants/acme/modules/financial",
        tenant_admin("acme"),
        Some(tenant_config),
    )
    .await
    .expect(StatusCode::OK);
    let company_config = json!({"configuration": {"tax_rate": 0.19, "invoice_prefix": "ACME-DE"}});
    let customized = p
        .call(
            Method::PUT,
            "/api/v1/tenants/acme/companies/acme-de/modules/financial",
            tenant_admin("acme"),
            Some(company_config),
        )
        .await;
    let customized = customized.expect(StatusCode::OK);
    assert_eq!(customized["is_enabled"], true);
    assert_eq!(customized["customized_by_user_id"], "acme-admin");

    let resolved = p
        .call(
            Method::GET,
            "/api/v1/tenants/acme/modules/financial/config?company=acme-de",
            tenant_admin("acme"),
            None,
        )
        .await;
    let body = resolved.expect(StatusCode::OK);
    assert_eq!(
        body["configuration"],
        json!({"currency": "EUR", "tax_rate": 0.19, "invoice_prefix": "ACME-DE", "payment_terms_days": 30})
    );
    assert_eq!(
        body["sources"],
        json!({"currency": "tenant", "invoice_prefix": "company", "payment_terms_days": "module", "tax_rate": "company"})
    );
    assert_eq!(body["features"], json!(["invoicing", "payments"]));
    let tenant_only = p
        .call(
            Method::GET,
            "/api/v1/tenants/acme/modules/financial/config",
            tenant_admin("acme"),
            None,
        )
        .await;
    assert_eq!(
        tenant_only.expect(StatusCode::OK)["configuration"]["invoice_prefix"],
        "ACME"
    );
    let events = p.events();
    for expected in [
        "tenant.created",
        "company.created",
        "tenant.module.enabled",
        "company.module.customized",
        "config.changed",
    ] {
        assert!(
            events.iter().any(|e| e == expected),
            "{expected} missing from {events:?}"
        );
    }
}

async fn tiers_gate_enablement_and_the_refusal_names_the_tier(p: TestPlatform) {
    installed(&p, financial("1.0.0", "premium", &[])).await;
    tenant(&p, "small", "basic").await;
    let refused = p
        .call(
            Method::PUT,
            "/api/v1/tenants/small/modules/financial",
            tenant_admin("small"),
            Some(json!({})),
        )
        .await;
    refused.expect_problem(
        StatusCode::FORBIDDEN,
        "financial needs the premium tier or higher; tenant small is on basic",
    );
    let config = p
        .call(
            Method::GET,
            "/api/v1/tenants/small/modules/financial/config",
            tenant_admin("small"),
            None,
        )
        .await;
    config.expect_problem(
        StatusCode::NOT_FOUND,
        "tenant small has not enabled financial",
    );
    tenant(&p, "big", "enterprise").await;
    p.enable("big", "financial").await;
}

async fn required_modules_must_be_enabled_first(p: TestPlatform) {
    installed(&p, plain("ledger")).await;
    installed(&p, financial("1.0.0", "free", &["ledger"])).await;
    tenant(&p, "acme", "free").await;
    let refused = p
        .call(
            Method::PUT,
            "/api/v1/tenants/acme/modules/financial",
            tenant_admin("acme"),
            Some(json!({})),
        )
        .await;
    refused.expect_problem(
        StatusCode::CONFLICT,
        "financial requires these modules enabled for tenant acme first: ledger",
    );
    p.enable("acme", "ledger").await;
    p.enable("acme", "financial").await;
}

async fn hooks_can_refuse_enablement(p: TestPlatform) {
    let backend = installed(&p, financial("1.0.0", "free", &[])).await;
    backend.answer(
        "pre_enable_tenant",
        200,
        json!({"allow": false, "reason": "acme has unpaid invoices"}),
    );
    tenant(&p, "acme", "free").await;
    let refused = p
        .call(
            Method::PUT,
            "/api/v1/tenants/acme/modules/financial",
            tenant_admin("acme"),
            Some(json!({})),
        )
        .await;
    refused.expect_problem(
        StatusCode::CONFLICT,
        "refused by financial: acme has unpaid invoices",
    );
    let config = p
        .call(
            Method::GET,
            "/api/v1/tenants/acme/modules/financial/config",
            tenant_admin("acme"),
            None,
        )
        .await;
    config.expect(StatusCode::NOT_FOUND);
    backend.answer("pre_enable_tenant", 200, json!({}));
    p.enable("acme", "financial").await;
    company(&p, "acme", "acme-de").await;
    let body = json!({"configuration": {"invoice_prefix": "DE"}});
    p.call(
        Method::PUT,
        "/api/v1/tenants/acme/companies/acme-de/modules/financial",
        tenant_admin("acme"),
        Some(body),
    )
    .await
    .expect(StatusCode::OK);
    let calls = backend.calls.lock().unwrap().clone();
    let company_hook = calls
        .iter()
        .find(|(h, _)| h == "post_enable_company")
        .expect("post_enable_company called");
    assert_eq!(
        (
            company_hook.1["tenant_id"].as_str(),
            company_hook.1["company_id"].as_str()
        ),
        (Some("acme"), Some("acme-de"))
    );
}

async fn an_invalid_override_is_refused_and_nothing_is_stored(p: TestPlatform) {
    installed(&p, financial("1.0.0", "free", &[])).await;
    tenant(&p, "acme", "free").await;
    let bad = json!({"configuration": {"currency": "euro", "tax_rate": 7}});
    let refused = p
        .call(
            Method::PUT,
            "/api/v1/tenants/acme/modules/financial",
            tenant_admin("acme"),
            Some(bad),
        )
        .await;
    let body = refused.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "schema");
    let paths: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["configuration.currency", "configuration.tax_rate"],
        "{body}"
    );
    let config = p
        .call(
            Method::GET,
            "/api/v1/tenants/acme/modules/financial/config",
            tenant_admin("acme"),
            None,
        )
        .await;
    config.expect(StatusCode::NOT_FOUND);
    let feature = json!({"enabled_features": ["teleport"]});
    let refused = p
        .call(
            Method::PUT,
            "/api/v1/tenants/acme/modules/financial",
            tenant_admin("acme"),
            Some(feature),
        )
        .await;
    let body = refused.expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["path"], "enabled_features[0]");
    let removes_required = json!({"configuration": {"currency": null}});
    let refused = p
        .call(
            Method::PUT,
            "/api/v1/tenants/acme/modules/financial",
            tenant_admin("acme"),
            Some(removes_required),
        )
        .await;
    refused.expect(StatusCode::UNPROCESSABLE_ENTITY);
    let typo = json!({"configuraton": {}});
    p.call(
        Method::PUT,
        "/api/v1/tenants/acme/modules/financial",
        tenant_admin("acme"),
        Some(typo),
    )
    .await
    .expect(StatusCode::UNPROCESSABLE_ENTITY);
}

async fn null_removes_a_key_and_features_toggle_per_tier(p: TestPlatform) {
    installed(&p, financial("1.0.0", "free", &[])).await;
    tenant(&p, "acme", "free").await;
    company(&p, "acme", "acme-de").await;
    let body = json!({"configuration": {"payment_terms_days": null}, "enabled_features": ["reporting"], "disabled_features": ["payments"]});
    p.call(
        Method::PUT,
        "/api/v1/tenants/acme/modules/financial",
        tenant_admin("acme"),
        Some(body),
    )
    .await
    .expect(StatusCode::OK);
    let resolved = p
        .call(
            Method::GET,
            "/api/v1/tenants/acme/modules/financial/config",
            tenant_admin("acme"),
            None,
        )
        .await;
    let body = resolved.expect(StatusCode::OK);
    assert!(
        body["configuration"].get("payment_terms_days").is_none(),
        "{body}"
    );
    assert_eq!(body["features"], json!(["invoicing", "reporting"]));
    let company_toggles =
        json!({"enabled_features": ["payments"], "disabled_features": ["invoicing"]});
    let path = "/api/v1/tenants/acme/companies/acme-de/modules/financial";
    p.call(
        Method::PUT,
        path,
        tenant_admin("acme"),
        Some(company_toggles),
    )
    .await
    .expect(StatusCode::OK);
    let resolved = p
        .call(
            Method::GET,
            "/api/v1/tenants/acme/modules/financial/config?company=acme-de",
            tenant_admin("acme"),
            None,
        )
        .await;
    assert_eq!(
        resolved.expect(StatusCode::OK)["features"],
        json!(["payments", "reporting"])
    );
}

async fn a_company_cannot_enable_what_its_tenant_has_not(p: TestPlatform) {
    installed(&p, financial("1.0.0", "free", &[])).await;
    tenant(&p, "acme", "free").await;
    company(&p, "acme", "acme-de").await;
    let path = "/api/v1/tenants/acme/companies/acme-de/modules/financial";
    let refused = p
        .call(
            Method::PUT,
            path,
            tenant_admin("acme"),
            Some(json!({"is_enabled": true})),
        )
        .await;
    refused.expect_problem(
        StatusCode::CONFLICT,
        "tenant acme has not enabled financial",
    );
    p.enable("acme", "financial").await;
    let company_admin = token(
        "de-admin",
        Some("acme"),
        Some("acme-de"),
        &["company:admin"],
    );
    p.call(
        Method::PUT,
        path,
        company_admin.clone(),
        Some(json!({"is_enabled": false})),
    )
    .await
    .expect(StatusCode::OK);
    let resolved = p
        .call(
            Method::GET,
            "/api/v1/tenants/acme/modules/financial/config?company=acme-de",
            company_admin,
            None,
        )
        .await;
    resolved.expect_problem(
        StatusCode::NOT_FOUND,
        "financial is disabled for company acme-de",
    );
    let other_company_admin = token(
        "fr-admin",
        Some("acme"),
        Some("acme-fr"),
        &["company:admin"],
    );
    let refused = p
        .call(
            Method::PUT,
            path,
            other_company_admin,
            Some(json!({"is_enabled": true})),
        )
        .await;
    refused.expect_problem(StatusCode::FORBIDDEN, "company:admin");
    let missing = p
        .call(
            Method::GET,
            "/api/v1/tenants/acme/modules/financial/config?company=ghost",
            tenant_admin("acme"),
            None,
        )
        .await;
    missing.expect_problem(StatusCode::NOT_FOUND, "tenant acme has no company ghost");
}

async fn disabling_keeps_the_configuration_for_a_later_re_enable(p: TestPlatform) {
    installed(&p, financial("1.0.0", "free", &[])).await;
    tenant(&p, "acme", "free").await;
    let path = "/api/v1/tenants/acme/modules/financial";
    p.call(
        Method::PUT,
        path,
        tenant_admin("acme"),
        Some(json!({"configuration": {"currency": "EUR"}})),
    )
    .await
    .expect(StatusCode::OK);
    let disabled = p
        .call(Method::DELETE, path, tenant_admin("acme"), None)
        .await;
    assert_eq!(disabled.expect(StatusCode::OK)["enabled"], false);
    p.call(
        Method::GET,
        &format!("{path}/config"),
        tenant_admin("acme"),
        None,
    )
    .await
    .expect(StatusCode::NOT_FOUND);
    p.call(
        Method::PUT,
        path,
        tenant_admin("acme"),
        Some(json!({"enabled": true})),
    )
    .await
    .expect(StatusCode::OK);
    let resolved = p
        .call(
            Method::GET,
            &format!("{path}/config"),
            tenant_admin("acme"),
            None,
        )
        .await;
    assert_eq!(
        resolved.expect(StatusCode::OK)["configuration"]["currency"],
        "EUR"
    );
    assert!(p.events().contains(&"tenant.module.disabled".to_string()));
}

async fn tenant_routes_take_the_tenant_from_the_token(p: TestPlatform) {
    installed(&p, financial("1.0.0", "free", &[])).await;
    tenant(&p, "acme", "free").await;
    tenant(&p, "globex", "free").await;
    company(&p, "acme", "acme-de").await;
    p.enable("acme", "financial").await;
    let intruder = tenant_admin("globex");
    let attempts: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::GET, "/api/v1/tenants/acme", None),
        (Method::GET, "/api/v1/tenants/acme/companies", None),
        (Method::GET, "/api/v1/tenants/acme/companies/acme-de", None),
        (
            Method::POST,
            "/api/v1/tenants/acme/companies",
            Some(json!({"id": "x", "name": "x"})),
        ),
        (
            Method::PUT,
            "/api/v1/tenants/acme/modules/financial",
            Some(json!({})),
        ),
        (
            Method::DELETE,
            "/api/v1/tenants/acme/modules/financial",
            None,
        ),
        (
            Method::PUT,
            "/api/v1/tenants/acme/companies/acme-de/modules/financial",
            Some(json!({})),
        ),
        (
            Method::GET,
            "/api/v1/tenants/acme/modules/financial/config",
            None,
        ),
        (Method::GET, "/api/v1/tenants/acme/audit", None),
    ];
    for (method, path, body) in attempts {
        let refused = p.call(method.clone(), path, intruder.clone(), body).await;
        let detail = refused.expect_problem(StatusCode::FORBIDDEN, "not for tenant acme")["detail"]
            .to_string();
        assert!(
            !detail.contains("acme-de") && !detail.contains("EUR"),
            "{method} {path}: {detail}"
        );
    }
    let user = token("bob", Some("acme"), None, &[]);
    let refused = p
        .call(
            Method::PUT,
            "/api/v1/tenants/acme/modules/financial",
            user.clone(),
            Some(json!({})),
        )
        .await;
    refused.expect_problem(StatusCode::FORBIDDEN, "tenant:admin");
    p.call(
        Method::GET,
        "/api/v1/tenants/acme/modules/financial/config",
        user,
        None,
    )
    .await
    .expect(StatusCode::OK);
    let anonymous = p
        .call(Method::GET, "/api/v1/tenants/acme", Auth::None, None)
        .await;
    anonymous.expect(StatusCode::UNAUTHORIZED);
}

async fn changes_are_audited_newest_first(p: TestPlatform) {
    installed(&p, financial("1.0.0", "free", &[])).await;
    tenant(&p, "acme", "free").await;
    company(&p, "acme", "acme-de").await;
    let path = "/api/v1/tenants/acme/modules/financial";
    p.call(Method::PUT, path, tenant_admin("acme"), Some(json!({})))
        .await
        .expect(StatusCode::OK);
    p.call(
        Method::PUT,
        path,
        tenant_admin("acme"),
        Some(json!({"configuration": {"currency": "EUR"}})),
    )
    .await
    .expect(StatusCode::OK);
    let page = p
        .call(
            Method::GET,
            "/api/v1/tenants/acme/audit?limit=2",
            tenant_admin("acme"),
            None,
        )
        .await;
    let page = page.expect(StatusCode::OK).clone();
    let actions: Vec<&str> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["tenant.module.configured", "tenant.module.enabled"]
    );
    assert_eq!(page["records"][0]["actor"], "user:acme-admin");
    let after = page["next"].as_str().expect("a next page");
    let rest = p
        .call(
            Method::GET,
            &format!("/api/v1/tenants/acme/audit?after={}", urlencode(after)),
            tenant_admin("acme"),
            None,
        )
        .await;
    let rest: Vec<String> = rest.expect(StatusCode::OK)["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(rest, ["company.created", "tenant.created"]);
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The resolver reads the installation, the tenant's row, the company and its row in one
/// batch get; a warm resolution reads nothing; a change makes the next one read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_resolution_is_one_round_trip_cold_and_none_warm() {
    let Some((p, store)) = TestPlatform::dynamo_counted("resolution_round_trips").await else {
        return;
    };
    installed(&p, financial("1.0.0", "free", &[])).await;
    tenant(&p, "acme", "free").await;
    company(&p, "acme", "acme-de").await;
    p.enable("acme", "financial").await;
    let path = "/api/v1/tenants/acme/modules/financial/config?company=acme-de";
    let before = store.round_trips();
    p.call(Method::GET, path, tenant_admin("acme"), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(store.round_trips() - before, 1, "uncached: one batch get");
    let before = store.round_trips();
    for _ in 0..5 {
        p.call(Method::GET, path, tenant_admin("acme"), None)
            .await
            .expect(StatusCode::OK);
    }
    assert_eq!(store.round_trips() - before, 0, "cached: no round trip");
    let change = json!({"configuration": {"currency": "EUR"}});
    p.call(
        Method::PUT,
        "/api/v1/tenants/acme/modules/financial",
        tenant_admin("acme"),
        Some(change),
    )
    .await
    .expect(StatusCode::OK);
    let resolved = p.call(Method::GET, path, tenant_admin("acme"), None).await;
    assert_eq!(
        resolved.expect(StatusCode::OK)["configuration"]["currency"],
        "EUR",
        "the change is seen at once"
    );
}

/// Finding 11 of "The first hour": a body with a value of the wrong kind is refused naming
/// the field and the values it takes, without serde's "at line 1 column 51".
#[tokio::test]
async fn a_bad_value_is_refused_without_serdes_position() {
    let p = TestPlatform::embedded();
    let refused = p
        .call(
            Method::POST,
            "/api/v1/tenants",
            operator(),
            Some(json!({"id": "acme", "name": "Acme", "subscription_tier": "gold"})),
        )
        .await;
    let body = refused.expect(StatusCode::UNPROCESSABLE_ENTITY).to_string();
    assert!(
        body.contains("subscription_tier") && body.contains("gold"),
        "{body}"
    );
    assert!(
        !body.contains("line 1") && !body.contains("column"),
        "{body}"
    );
}
