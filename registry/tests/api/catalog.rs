//! Publishing versions and browsing the marketplace.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::api::{Auth, TestPlatform, financial, fixture, operator, tenant_admin};

crate::on_both_stores!(
    publishing_a_first_version_lists_it_in_the_marketplace,
    a_first_version_needs_a_platform_admin,
    republishing_is_idempotent_but_changed_content_is_a_conflict,
    an_invalid_manifest_is_refused_with_every_problem,
    the_marketplace_filters_by_category_tag_and_tier,
    the_api_refuses_anonymous_callers_with_a_problem_document,
    a_module_s_own_key_may_not_make_its_frontend_run_in_the_console_s_page,
);

/// Review finding: a module's frontend runs in the console's page (`spa-module`, with the
/// signed-in user's session) or sandboxed (`iframe`) as its manifest says, and the module's
/// own key may publish its later versions: a third party could turn its micro-frontend into an
/// integrated one. Only a platform admin publishes the first version that does.
async fn a_module_s_own_key_may_not_make_its_frontend_run_in_the_console_s_page(p: TestPlatform) {
    let mut framed = financial();
    framed["frontend"] = json!({"type": "iframe", "entry_point": "index.html"});
    p.call(
        Method::POST,
        "/api/v1/modules",
        operator(),
        Some(framed.clone()),
    )
    .await
    .expect(StatusCode::CREATED);
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
    let mut integrated = framed.clone();
    integrated["version"] = "1.3.0".into();
    integrated["frontend"] = json!({"type": "spa-module", "entry_point": "module.js"});
    p.call(
        Method::POST,
        "/api/v1/modules",
        key.clone(),
        Some(integrated.clone()),
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "frontend.type");
    let versions = p
        .call(
            Method::GET,
            "/api/v1/modules/financial/versions",
            operator(),
            None,
        )
        .await;
    assert_eq!(
        versions.expect(StatusCode::OK).as_array().map(Vec::len),
        Some(1),
        "nothing stored"
    );
    // Its key may publish another framed version; a platform admin the integrated one, after
    // which the key may publish integrated versions too.
    let mut framed_again = framed.clone();
    framed_again["version"] = "1.2.1".into();
    p.call(
        Method::POST,
        "/api/v1/modules",
        key.clone(),
        Some(framed_again),
    )
    .await
    .expect(StatusCode::CREATED);
    p.call(
        Method::POST,
        "/api/v1/modules",
        operator(),
        Some(integrated.clone()),
    )
    .await
    .expect(StatusCode::CREATED);
    let mut later = integrated;
    later["version"] = "1.4.0".into();
    p.call(Method::POST, "/api/v1/modules", key, Some(later))
        .await
        .expect(StatusCode::CREATED);
}

async fn publishing_a_first_version_lists_it_in_the_marketplace(p: TestPlatform) {
    let published = p
        .call(
            Method::POST,
            "/api/v1/modules",
            operator(),
            Some(financial()),
        )
        .await;
    let body = published.expect(StatusCode::CREATED);
    assert_eq!(
        (body["module"].as_str(), body["version"].as_str()),
        (Some("financial"), Some("1.2.0"))
    );
    assert_eq!(body["published_by"], "user:operator");

    let list = p
        .call(Method::GET, "/api/v1/modules", tenant_admin("acme"), None)
        .await;
    let list = list.expect(StatusCode::OK).as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "financial");
    assert_eq!(list[0]["latest_version"], "1.2.0");

    let mut next = financial();
    next["version"] = json!("1.10.0");
    p.call(Method::POST, "/api/v1/modules", operator(), Some(next))
        .await
        .expect(StatusCode::CREATED);
    let detail = p
        .call(Method::GET, "/api/v1/modules/financial", operator(), None)
        .await;
    let detail = detail.expect(StatusCode::OK);
    assert_eq!(
        detail["latest_version"], "1.10.0",
        "semver order, not text order"
    );
    assert_eq!(detail["versions"], json!(["1.2.0", "1.10.0"]));
    let versions = p
        .call(
            Method::GET,
            "/api/v1/modules/financial/versions",
            operator(),
            None,
        )
        .await;
    let versions = versions.expect(StatusCode::OK).as_array().unwrap().clone();
    let listed: Vec<&str> = versions
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["1.10.0", "1.2.0"]);
    assert_eq!(
        p.events(),
        ["module.version.published", "module.version.published"]
    );

    let missing = p
        .call(Method::GET, "/api/v1/modules/warehouse", operator(), None)
        .await;
    missing.expect_problem(StatusCode::NOT_FOUND, "no module named warehouse");
}

async fn a_first_version_needs_a_platform_admin(p: TestPlatform) {
    let refused = p
        .call(
            Method::POST,
            "/api/v1/modules",
            tenant_admin("acme"),
            Some(financial()),
        )
        .await;
    refused.expect_problem(StatusCode::FORBIDDEN, "platform:admin");
    let list = p
        .call(Method::GET, "/api/v1/modules", operator(), None)
        .await;
    assert_eq!(
        list.expect(StatusCode::OK),
        &json!([]),
        "nothing was written"
    );
}

async fn republishing_is_idempotent_but_changed_content_is_a_conflict(p: TestPlatform) {
    p.call(
        Method::POST,
        "/api/v1/modules",
        operator(),
        Some(financial()),
    )
    .await
    .expect(StatusCode::CREATED);
    let again = p
        .call(
            Method::POST,
            "/api/v1/modules",
            operator(),
            Some(financial()),
        )
        .await;
    again.expect(StatusCode::OK);
    let mut changed = financial();
    changed["description"] = json!("something else");
    let conflict = p
        .call(Method::POST, "/api/v1/modules", operator(), Some(changed))
        .await;
    conflict.expect_problem(
        StatusCode::CONFLICT,
        "financial 1.2.0 is already published with other content",
    );
    assert_eq!(p.events().len(), 1);
}

async fn an_invalid_manifest_is_refused_with_every_problem(p: TestPlatform) {
    let broken = fixture("module-sdk/tests/fixtures/manifests/broken/multiple-problems.json");
    let refused = p
        .call(Method::POST, "/api/v1/modules", operator(), Some(broken))
        .await;
    let body = refused.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "problem");
    let errors = body["errors"].as_array().unwrap();
    assert!(errors.len() >= 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .all(|e| e["path"].is_string() && e["message"].is_string())
    );

    let not_json = p
        .call(
            Method::POST,
            "/api/v1/modules",
            operator(),
            Some(json!("text")),
        )
        .await;
    not_json.expect(StatusCode::UNPROCESSABLE_ENTITY);
    let list = p
        .call(Method::GET, "/api/v1/modules", operator(), None)
        .await;
    assert_eq!(list.expect(StatusCode::OK), &json!([]));
}

async fn the_marketplace_filters_by_category_tag_and_tier(p: TestPlatform) {
    let seed = fixture("module-sdk/tests/fixtures/manifests/seed-financial.json");
    let mut basic = seed.clone();
    basic["name"] = json!("ledger");
    basic["backend"]["api_prefix"] = json!("/api/v1/ledger");
    basic["subscription_tier"] = json!("basic");
    basic["category"] = json!("accounting");
    basic["tags"] = json!(["ledger"]);
    rename_namespace(&mut basic, "financial", "ledger");
    for manifest in [seed, basic] {
        p.call(Method::POST, "/api/v1/modules", operator(), Some(manifest))
            .await
            .expect(StatusCode::CREATED);
    }
    let names = |body: &serde_json::Value| -> Vec<String> {
        body.as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_string())
            .collect()
    };
    let by_tier = p
        .call(Method::GET, "/api/v1/modules?tier=basic", operator(), None)
        .await;
    assert_eq!(names(by_tier.expect(StatusCode::OK)), ["ledger"]);
    let by_tag = p
        .call(
            Method::GET,
            "/api/v1/modules?tag=invoicing",
            operator(),
            None,
        )
        .await;
    assert_eq!(names(by_tag.expect(StatusCode::OK)), ["financial"]);
    let by_category = p
        .call(
            Method::GET,
            "/api/v1/modules?category=Accounting",
            operator(),
            None,
        )
        .await;
    assert_eq!(names(by_category.expect(StatusCode::OK)), ["ledger"]);
    let bad = p
        .call(Method::GET, "/api/v1/modules?tier=gold", operator(), None)
        .await;
    bad.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "tier");
}

async fn the_api_refuses_anonymous_callers_with_a_problem_document(p: TestPlatform) {
    let anonymous = p
        .call(Method::GET, "/api/v1/modules", Auth::None, None)
        .await;
    anonymous.expect_problem(StatusCode::UNAUTHORIZED, "Bearer");
    let garbage = p
        .call(
            Method::GET,
            "/api/v1/modules",
            Auth::Token("not.a.token".into()),
            None,
        )
        .await;
    garbage.expect_problem(StatusCode::UNAUTHORIZED, "invalid token");
    let bad_key = p
        .call(
            Method::GET,
            "/api/v1/modules",
            Auth::ApiKey("plk_nope".into()),
            None,
        )
        .await;
    bad_key.expect_problem(StatusCode::UNAUTHORIZED, "API key");
    let health = p.call(Method::GET, "/health", Auth::None, None).await;
    assert_eq!(health.expect(StatusCode::OK)["status"], "healthy");
}

/// Moves every `from:` permission and `from_` table of a manifest to another module's names.
fn rename_namespace(manifest: &mut serde_json::Value, from: &str, to: &str) {
    let text = manifest.to_string();
    let text = text
        .replace(&format!("\"{from}:"), &format!("\"{to}:"))
        .replace(&format!("\"{from}_"), &format!("\"{to}_"));
    *manifest = serde_json::from_str(&text).unwrap();
}

/// Finding 11 of "The first hour": the versions route answers newest first, and its OpenAPI
/// text says so.
#[tokio::test]
async fn versions_come_newest_first_as_the_openapi_document_says() {
    let p = TestPlatform::embedded();
    for version in ["1.0.0", "1.10.0", "1.2.0"] {
        let mut manifest = financial();
        manifest["version"] = json!(version);
        p.call(Method::POST, "/api/v1/modules", operator(), Some(manifest))
            .await
            .expect(StatusCode::CREATED);
    }
    let listed = p
        .call(
            Method::GET,
            "/api/v1/modules/financial/versions",
            operator(),
            None,
        )
        .await;
    let versions: Vec<&str> = listed
        .expect(StatusCode::OK)
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1.10.0", "1.2.0", "1.0.0"]);
    let document = p.call(Method::GET, "/openapi.json", Auth::None, None).await;
    let said = &document.expect(StatusCode::OK)["paths"]["/api/v1/modules/{module}/versions"]["get"]
        ["responses"]["200"]["description"];
    assert_eq!(said, "Versions, newest first");
}
