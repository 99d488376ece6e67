//! Issue 22's API-level findings: what an outsider tried against the platform API and got
//! through, each kept out by a test named after it.

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::api::{Auth, TestPlatform, operator, tenant_admin, token};
use crate::support::fakes::Backend;

crate::on_both_stores!(
    a_modules_key_verifies_only_for_tenants_that_enabled_it_and_namespaces_it_declares,
    a_modules_key_verifies_nothing_for_a_company_that_disabled_it,
    data_past_the_stores_item_limit_is_refused_naming_the_field_and_the_limit,
);

fn module(name: &str, optional: &[&str]) -> Value {
    json!({"name": name, "display_name": name, "version": "1.0.0",
           "backend": {"type": "microservice", "api_prefix": format!("/api/v1/{name}"), "health_check": "/health"},
           "dependencies": {"optional_modules": optional},
           "permissions": [{"code": format!("{name}:entries.read"), "description": "read"}]})
}

/// Publishes and installs `manifest` against a fake backend, and issues a key for it.
async fn installed(p: &TestPlatform, manifest: Value) -> (Backend, Auth) {
    let backend = Backend::default();
    let url = backend.start().await;
    let name = manifest["name"].as_str().unwrap().to_string();
    p.call(Method::POST, "/api/v1/modules", operator(), Some(manifest))
        .await
        .expect(StatusCode::CREATED);
    let body = json!({"version": "1.0.0", "endpoint": url});
    let install = format!("/api/v1/modules/{name}/install");
    p.call(Method::POST, &install, operator(), Some(body))
        .await
        .expect(StatusCode::ACCEPTED);
    assert_eq!(p.settled(&name).await["status"], "installed");
    let keys = format!("/api/v1/modules/{name}/api-keys");
    let issued = p.call(Method::POST, &keys, operator(), None).await;
    let key = issued.expect(StatusCode::CREATED)["key"].as_str().unwrap();
    (backend, Auth::ApiKey(key.to_string()))
}

async fn tenant(p: &TestPlatform, id: &str) {
    let body = json!({"id": id, "name": format!("{id} Inc.")});
    p.call(Method::POST, "/api/v1/tenants", operator(), Some(body))
        .await
        .expect(StatusCode::CREATED);
}

/// A request as sent, and the response's status, headers and body as received.
async fn send(p: &TestPlatform, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let response = p.router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (parts.status, parts.headers, body)
}

fn bearer(auth: &Auth) -> String {
    match auth {
        Auth::Token(token) => format!("Bearer {token}"),
        _ => unreachable!("a token"),
    }
}

#[track_caller]
fn assert_problem(answer: &(StatusCode, HeaderMap, Value), status: StatusCode, needles: &[&str]) {
    let (got, headers, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "application/problem+json",
        "{body}"
    );
    assert_eq!(body["status"], status.as_u16(), "{body}");
    let text = body.to_string();
    for needle in needles {
        assert!(text.contains(needle), "`{needle}` not in {text}");
    }
}

/// Finding (medium): a module's key asked `rbac/verify` about any tenant and any namespace.
async fn a_modules_key_verifies_only_for_tenants_that_enabled_it_and_namespaces_it_declares(
    p: TestPlatform,
) {
    let (_financial, key) = installed(&p, module("financial", &["ledger"])).await;
    let (_ledger, _) = installed(&p, module("ledger", &[])).await;
    let (_warehouse, _) = installed(&p, module("warehouse", &[])).await;
    tenant(&p, "acme").await;
    tenant(&p, "globex").await;
    p.enable("acme", "financial").await;
    p.enable("globex", "warehouse").await;
    let verify = |tenant: &str, permission: &str| json!({"tenant_id": tenant, "user_id": "bob", "permission": permission});
    let ask = |body: Value| p.call(Method::POST, "/api/v1/rbac/verify", key.clone(), Some(body));

    let own = ask(verify("acme", "financial:entries.read")).await;
    assert_eq!(own.expect(StatusCode::OK)["has_permission"], false);
    // A module it declares it uses may be asked about.
    let declared = ask(verify("acme", "ledger:entries.read")).await;
    declared.expect(StatusCode::OK);

    let elsewhere = ask(verify("globex", "financial:entries.read")).await;
    elsewhere.expect_problem(
        StatusCode::FORBIDDEN,
        "tenant globex has not enabled financial",
    );
    let never_created = ask(verify("initech", "financial:entries.read")).await;
    never_created.expect_problem(
        StatusCode::FORBIDDEN,
        "tenant initech has not enabled financial",
    );
    let foreign = ask(verify("acme", "warehouse:entries.read")).await;
    foreign.expect_problem(
        StatusCode::FORBIDDEN,
        "financial may ask only about its own permissions",
    );
    // Disabling the module takes the tenant away at once.
    p.call(
        Method::DELETE,
        "/api/v1/tenants/acme/modules/financial",
        tenant_admin("acme"),
        None,
    )
    .await
    .expect(StatusCode::OK);
    let disabled = ask(verify("acme", "financial:entries.read")).await;
    disabled.expect_problem(StatusCode::FORBIDDEN, "has not enabled financial");
}

/// Issue 22 (left open): `rbac/verify` with a module's key checked the tenant's enabling but
/// not a company's disabling: the key still learned the permissions of that company's users.
async fn a_modules_key_verifies_nothing_for_a_company_that_disabled_it(p: TestPlatform) {
    let (_financial, key) = installed(&p, module("financial", &[])).await;
    tenant(&p, "acme").await;
    for company in ["acme-us", "acme-de"] {
        let body = json!({"id": company, "name": company});
        p.call(
            Method::POST,
            "/api/v1/tenants/acme/companies",
            operator(),
            Some(body),
        )
        .await
        .expect(StatusCode::CREATED);
    }
    p.enable("acme", "financial").await;
    p.call(
        Method::PUT,
        "/api/v1/tenants/acme/companies/acme-de/modules/financial",
        tenant_admin("acme"),
        Some(json!({"is_enabled": false})),
    )
    .await
    .expect(StatusCode::OK);
    let verify = |company: Option<&str>| json!({"tenant_id": "acme", "user_id": "bob", "permission": "financial:entries.read", "company_id": company});
    let ask = |body: Value| p.call(Method::POST, "/api/v1/rbac/verify", key.clone(), Some(body));

    ask(verify(Some("acme-de"))).await.expect_problem(
        StatusCode::FORBIDDEN,
        "financial is disabled for company acme-de",
    );
    ask(verify(Some("initech")))
        .await
        .expect_problem(StatusCode::FORBIDDEN, "has no company initech");
    // The tenant and its other company are still the module's to ask about.
    let tenant_wide = ask(verify(None)).await;
    assert_eq!(tenant_wide.expect(StatusCode::OK)["has_permission"], false);
    let other = ask(verify(Some("acme-us"))).await;
    assert_eq!(other.expect(StatusCode::OK)["has_permission"], false);
}

/// Finding (low): an item past the store's 400 KB was a 500 whose detail showed store keys.
async fn data_past_the_stores_item_limit_is_refused_naming_the_field_and_the_limit(
    p: TestPlatform,
) {
    installed(&p, module("financial", &[])).await;
    tenant(&p, "acme").await;
    let huge = "x".repeat(1024 * 1024);
    let config = json!({"configuration": {"currency": huge}});
    for path in [
        "/api/v1/tenants/acme/modules/financial",
        "/api/v1/tenants/acme/companies/acme-de/modules/financial",
    ] {
        if path.contains("companies") {
            let company = json!({"id": "acme-de", "name": "Acme DE"});
            p.call(
                Method::POST,
                "/api/v1/tenants/acme/companies",
                tenant_admin("acme"),
                Some(company),
            )
            .await
            .expect(StatusCode::CREATED);
        }
        let refused = p
            .call(
                Method::PUT,
                path,
                tenant_admin("acme"),
                Some(config.clone()),
            )
            .await;
        let body = refused.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "configuration");
        assert_eq!(body["errors"][0]["path"], "configuration", "{body}");
        no_store_key(body);
        assert!(body.to_string().contains("65536 bytes"), "{body}");
    }

    let mut manifest = module("ledger", &[]);
    manifest["routes"] = (0..10_000)
        .map(|i| json!({"path": format!("/entries/{i}/lines"), "methods": ["GET"], "permission": "ledger:entries.read"}))
        .collect();
    let refused = p
        .call(Method::POST, "/api/v1/modules", operator(), Some(manifest))
        .await;
    let body = refused.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "routes");
    assert_eq!(body["errors"][0]["path"], "routes", "{body}");
    assert!(body.to_string().contains("262144 bytes"), "{body}");
    no_store_key(body);

    // Whatever else would pass the limit is refused by the store's own check, as a 413
    // naming the record's largest field: here a role of 20,000 (valid) grants.
    let grants: Vec<&str> = vec!["financial:entries.read"; 20_000];
    let refused = p
        .call(
            Method::PUT,
            "/api/v1/tenants/acme/roles/everything",
            tenant_admin("acme"),
            Some(json!({"permissions": grants})),
        )
        .await;
    let body = refused.expect_problem(StatusCode::PAYLOAD_TOO_LARGE, "409600 bytes");
    assert!(
        body["detail"].as_str().unwrap().contains("`permissions`"),
        "{body}"
    );
    no_store_key(body);
}

#[track_caller]
fn no_store_key(body: &Value) {
    let text = body.to_string();
    for key in ["TENANT#", "MODULE#", "#"] {
        assert!(!text.contains(key), "a store key in {text}");
    }
}

/// Finding (low): any signed-in user read an installation with its backend and key id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installation_is_read_only_by_platform_admins_and_the_module_itself() {
    let p = TestPlatform::embedded();
    let (_financial, key) = installed(&p, module("financial", &[])).await;
    let (_ledger, other) = installed(&p, module("ledger", &[])).await;
    tenant(&p, "acme").await;
    let path = "/api/v1/modules/financial/installation";
    for user in [
        tenant_admin("acme"),
        token("bob", Some("acme"), None, &[]),
        other,
    ] {
        let refused = p.call(Method::GET, path, user, None).await;
        let body = refused.expect_problem(StatusCode::FORBIDDEN, "platform:admin");
        assert!(body.get("endpoint").is_none() && body.get("api_key_id").is_none());
    }
    let full = p.call(Method::GET, path, operator(), None).await;
    assert!(full.expect(StatusCode::OK)["endpoint"].is_string());
    let own = p.call(Method::GET, path, key, None).await;
    assert_eq!(own.expect(StatusCode::OK)["module"], "financial");
}

/// Finding (low): ids `.`, `..` and `...` were accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_only_ids_are_refused_naming_the_field() {
    let p = TestPlatform::embedded();
    tenant(&p, "acme").await;
    for id in [".", "..", "..."] {
        let refused = p
            .call(
                Method::POST,
                "/api/v1/tenants",
                operator(),
                Some(json!({"id": id, "name": "Dots"})),
            )
            .await;
        let body = refused.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "id");
        assert_eq!(body["errors"][0]["path"], "id", "{body}");
        let refused = p
            .call(
                Method::POST,
                "/api/v1/tenants/acme/companies",
                tenant_admin("acme"),
                Some(json!({"id": id, "name": "Dots"})),
            )
            .await;
        let body = refused.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "only dots");
        assert_eq!(body["errors"][0]["path"], "id", "{body}");
        let role = format!("/api/v1/tenants/acme/roles/{id}");
        let refused = p
            .call(
                Method::PUT,
                &role,
                tenant_admin("acme"),
                Some(json!({"permissions": []})),
            )
            .await;
        let body = refused.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "only dots");
        assert_eq!(body["errors"][0]["path"], "role", "{body}");
        let user = format!("/api/v1/tenants/acme/users/{id}/roles");
        let refused = p
            .call(
                Method::PUT,
                &user,
                tenant_admin("acme"),
                Some(json!({"roles": []})),
            )
            .await;
        let body = refused.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "only dots");
        assert_eq!(body["errors"][0]["path"], "user", "{body}");
    }
}

/// Finding (low): a 405 came with an empty body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_a_route_does_not_take_is_a_problem_document_with_allow() {
    let p = TestPlatform::embedded();
    let request = Request::delete("/api/v1/tenants")
        .header(header::AUTHORIZATION, bearer(&operator()))
        .body(Body::empty())
        .unwrap();
    let answer = send(&p, request).await;
    assert_problem(
        &answer,
        StatusCode::METHOD_NOT_ALLOWED,
        &["/api/v1/tenants does not take DELETE"],
    );
    // `GET /api/v1/tenants` lists tenants, so both methods are allowed.
    let allow = answer.1[header::ALLOW].to_str().unwrap().to_string();
    assert!(
        allow.contains("POST") && allow.contains("GET"),
        "Allow: {allow}"
    );
    let request = Request::patch("/api/v1/modules/financial/installation")
        .body(Body::empty())
        .unwrap();
    let answer = send(&p, request).await;
    assert_problem(&answer, StatusCode::METHOD_NOT_ALLOWED, &["PATCH"]);
    let allow = answer.1[header::ALLOW].to_str().unwrap().to_string();
    assert!(
        allow.contains("GET") && allow.contains("DELETE"),
        "Allow: {allow}"
    );
}

/// Finding (low): a bad query string was answered as text/plain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_string_errors_are_problem_documents_naming_the_parameter() {
    let p = TestPlatform::embedded();
    tenant(&p, "acme").await;
    for (path, parameter) in [
        ("/api/v1/tenants/acme/audit?limit=many", "limit"),
        ("/api/v1/modules?tier=U", "tier"),
        (
            "/api/v1/modules/financial/installation?dry_run=maybe",
            "dry_run",
        ),
    ] {
        let method = if path.contains("installation") {
            Method::DELETE
        } else {
            Method::GET
        };
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, bearer(&operator()))
            .body(Body::empty())
            .unwrap();
        let answer = send(&p, request).await;
        assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, &[parameter]);
        assert_eq!(answer.2["errors"][0]["path"], parameter, "{}", answer.2);
    }
}

/// Finding (low): a 10 MB body was a 400, not a 413.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_past_the_limit_is_413() {
    let p = TestPlatform::embedded();
    let body = format!(
        "{{\"id\": \"acme\", \"name\": \"{}\"}}",
        "x".repeat(10 * 1024 * 1024)
    );
    let request = Request::post("/api/v1/tenants")
        .header(header::AUTHORIZATION, bearer(&operator()))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    let answer = send(&p, request).await;
    assert_problem(&answer, StatusCode::PAYLOAD_TOO_LARGE, &["2097152 bytes"]);
}

/// Finding (low): `charset=utf-16` was accepted and the body parsed as UTF-8.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_in_a_charset_other_than_utf_8_is_415() {
    let p = TestPlatform::embedded();
    let body = json!({"id": "acme", "name": "Acme"}).to_string();
    for (content_type, status) in [
        (
            "application/json; charset=utf-16",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "application/json; charset=latin1",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        ("application/json;charset=\"UTF-8\"", StatusCode::CREATED),
    ] {
        let request = Request::post("/api/v1/tenants")
            .header(header::AUTHORIZATION, bearer(&operator()))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body.clone()))
            .unwrap();
        let answer = send(&p, request).await;
        if status == StatusCode::CREATED {
            assert_eq!(answer.0, status, "{content_type}: {}", answer.2);
        } else {
            assert_problem(&answer, status, &["UTF-8"]);
        }
    }
}

/// The property-based run: a `null` body, which the document admitted, was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_null_body_is_refused_as_the_document_says() {
    let p = TestPlatform::embedded();
    for path in [
        "/api/v1/tenants",
        "/api/v1/rbac/verify",
        "/api/v1/modules/financial/api-keys",
    ] {
        let request = Request::post(path)
            .header(header::AUTHORIZATION, bearer(&operator()))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("null"))
            .unwrap();
        let answer = send(&p, request).await;
        assert_problem(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            &["a JSON object"],
        );
    }
}

/// The property-based run: which credential wins when both come is said, and holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_both_credentials_the_module_key_is_judged_as_the_document_says() {
    let p = TestPlatform::embedded();
    let request = Request::get("/api/v1/modules")
        .header(header::AUTHORIZATION, bearer(&operator()))
        .header("x-module-api-key", "plk_not-a-key")
        .body(Body::empty())
        .unwrap();
    let answer = send(&p, request).await;
    assert_problem(&answer, StatusCode::UNAUTHORIZED, &["module API key"]);
    let document = p.call(Method::GET, "/openapi.json", Auth::None, None).await;
    let description = document.expect(StatusCode::OK)["components"]["securitySchemes"]
        ["module_api_key"]["description"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        description.contains("the bearer token is not read"),
        "{description}"
    );
}

/// The property-based run: `{"rotate_after_secs": 30.0}`, an integer to JSON Schema, was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_number_of_seconds_written_with_a_point_rotates_a_key() {
    let p = TestPlatform::embedded();
    installed(&p, module("financial", &[])).await;
    let keys = "/api/v1/modules/financial/api-keys";
    let rotated = p
        .call(
            Method::POST,
            keys,
            operator(),
            Some(json!({"rotate_after_secs": 30.0})),
        )
        .await;
    rotated.expect(StatusCode::CREATED);
    let refused = p
        .call(
            Method::POST,
            keys,
            operator(),
            Some(json!({"rotate_after_secs": 1.5})),
        )
        .await;
    let body = refused.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "whole number");
    assert_eq!(body["errors"][0]["path"], "rotate_after_secs");
}

/// The property-based run: `{"rotate_after_secs": 50079193593834668032}`, an integer the
/// document admitted, was refused. The document now says what the API takes: at most a year.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_grace_past_a_year_is_refused_naming_the_field_as_the_document_says() {
    let p = TestPlatform::embedded();
    installed(&p, module("financial", &[])).await;
    let keys = "/api/v1/modules/financial/api-keys";
    for too_long in [json!(5.007_919_359_383_467e19), json!(31_536_001)] {
        let refused = p
            .call(
                Method::POST,
                keys,
                operator(),
                Some(json!({"rotate_after_secs": too_long})),
            )
            .await;
        let body = refused.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "more than a year");
        assert_eq!(body["errors"][0]["path"], "rotate_after_secs");
    }
    let a_year = p
        .call(
            Method::POST,
            keys,
            operator(),
            Some(json!({"rotate_after_secs": 31_536_000})),
        )
        .await;
    a_year.expect(StatusCode::CREATED);
    let document = p.call(Method::GET, "/openapi.json", operator(), None).await;
    let document = document.expect(StatusCode::OK);
    let text = document.to_string();
    assert!(
        text.contains("\"maximum\":31536000"),
        "the document names the limit"
    );
}
