//! The API's contract failures the property-based run (`tests/reliability/schemathesis.sh`)
//! found, each kept out by a test named after what it proves: the API answers as its document
//! says.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::api::{Auth, TestPlatform, operator, tenant_admin, token};
use crate::support::fakes::Backend;

crate::on_both_stores!(
    an_audit_page_limit_outside_1_to_100_is_a_422_naming_limit,
    publishing_an_event_is_refused_to_a_caller_who_may_not_publish_before_its_body_is_read,
    an_event_without_its_envelope_is_a_422_naming_the_missing_field,
    an_instance_of_a_module_that_is_not_installed_is_a_404_and_never_registered,
    an_instance_url_that_is_not_a_uri_is_a_422_naming_the_field_and_never_registered,
);

async fn tenant(p: &TestPlatform, id: &str) {
    let body = json!({"id": id, "name": format!("{id} Inc.")});
    p.call(Method::POST, "/api/v1/tenants", operator(), Some(body))
        .await
        .expect(StatusCode::CREATED);
}

fn manifest(name: &str) -> Value {
    json!({"name": name, "display_name": name, "version": "1.0.0",
           "backend": {"type": "microservice", "api_prefix": format!("/api/v1/{name}"), "health_check": "/health"},
           "events": {"publishes": [format!("{name}.entry.posted")]},
           "permissions": [{"code": format!("{name}:entries.read"), "description": "read"}]})
}

/// Publishes and installs `name` against a fake backend, and issues a key for it.
async fn installed(p: &TestPlatform, name: &str) -> (Backend, Auth) {
    let backend = Backend::default();
    let url = backend.start().await;
    p.call(
        Method::POST,
        "/api/v1/modules",
        operator(),
        Some(manifest(name)),
    )
    .await
    .expect(StatusCode::CREATED);
    let body = json!({"version": "1.0.0", "endpoint": url});
    let install = format!("/api/v1/modules/{name}/install");
    p.call(Method::POST, &install, operator(), Some(body))
        .await
        .expect(StatusCode::ACCEPTED);
    assert_eq!(p.settled(name).await["status"], "installed");
    let keys = format!("/api/v1/modules/{name}/api-keys");
    let issued = p.call(Method::POST, &keys, operator(), None).await;
    let key = issued.expect(StatusCode::CREATED)["key"].as_str().unwrap();
    (backend, Auth::ApiKey(key.to_string()))
}

/// Baseline entry (was 200): the document says a page holds at most 100 records, and the
/// route took any `limit`, clamping it quietly.
async fn an_audit_page_limit_outside_1_to_100_is_a_422_naming_limit(p: TestPlatform) {
    tenant(&p, "acme").await;
    for limit in ["101", "0", "100000"] {
        let path = format!("/api/v1/tenants/acme/audit?limit={limit}");
        let answer = p.call(Method::GET, &path, tenant_admin("acme"), None).await;
        let problem = answer.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "limit");
        assert_eq!(problem["errors"][0]["path"], "limit", "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("1 to 100"),
            "{problem}"
        );
    }
    for limit in ["1", "100"] {
        let path = format!("/api/v1/tenants/acme/audit?limit={limit}");
        let answer = p.call(Method::GET, &path, tenant_admin("acme"), None).await;
        assert!(answer.expect(StatusCode::OK)["records"].is_array());
    }
}

/// Baseline entry (was 422 `missing field id`): the body was read before the caller was
/// authorized, so a user of another tenant learned the envelope's rules instead of a 403.
async fn publishing_an_event_is_refused_to_a_caller_who_may_not_publish_before_its_body_is_read(
    p: TestPlatform,
) {
    let stranger = || token("mallory", Some("elsewhere"), None, &["user"]);
    for body in [json!({}), json!({"id": 1}), json!({"detail": null})] {
        for caller in [stranger(), operator(), tenant_admin("acme")] {
            p.call(Method::POST, "/api/v1/events", caller, Some(body.clone()))
                .await
                .expect_problem(StatusCode::FORBIDDEN, "only a module's API key");
        }
    }
    assert!(p.events().is_empty(), "{:?}", p.events());
}

/// Baseline entry (`{}` was documented as a valid body): the document describes the envelope
/// the route reads, and the module itself is told what its envelope lacks (422 naming it).
async fn an_event_without_its_envelope_is_a_422_naming_the_missing_field(p: TestPlatform) {
    let document = p.call(Method::GET, "/openapi.json", Auth::None, None).await;
    let body = &document.expect(StatusCode::OK)["paths"]["/api/v1/events"]["post"]["requestBody"];
    let schema = &body["content"]["application/json"]["schema"];
    assert_eq!(
        schema["required"],
        json!(["id", "source", "detail-type", "time", "detail"]),
        "{schema}"
    );
    let (_backend, key) = installed(&p, "ledger").await;
    p.call(Method::POST, "/api/v1/events", key.clone(), Some(json!({})))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "`id`");
    let event = json!({"id": "e1", "source": "plinth.module.ledger",
                       "detail-type": "ledger.entry.posted",
                       "time": "2026-12-07T05:00:00Z", "detail": {}});
    let answer = p
        .call(Method::POST, "/api/v1/events", key.clone(), Some(event))
        .await;
    assert_eq!(answer.expect(StatusCode::ACCEPTED)["id"], "e1");
}

/// Baseline entry (was 201): a platform admin registered an instance of a module that was
/// never published — an instance the gateway would never use, left in the store.
async fn an_instance_of_a_module_that_is_not_installed_is_a_404_and_never_registered(
    p: TestPlatform,
) {
    for url in ["https://0G:883/u-_H>E<Le?j>07", "http://127.0.0.1:9"] {
        let body = json!({"instance_url": "http://127.0.0.1:9", "health_check_url": url});
        p.call(
            Method::POST,
            "/api/v1/modules/a/instances",
            operator(),
            Some(body),
        )
        .await
        .expect_problem(StatusCode::NOT_FOUND, "a is not installed");
    }
    let listed = p
        .call(Method::GET, "/api/v1/modules/a/instances", operator(), None)
        .await;
    assert_eq!(listed.expect(StatusCode::OK), &json!([]));
}

/// Baseline entry (was 201): `health_check_url` is documented as a URI, and one holding `<`
/// and `>` (which the URL parser escapes quietly) was registered.
async fn an_instance_url_that_is_not_a_uri_is_a_422_naming_the_field_and_never_registered(
    p: TestPlatform,
) {
    let (_backend, key) = installed(&p, "ledger").await;
    let before = p
        .call(
            Method::GET,
            "/api/v1/modules/ledger/instances",
            operator(),
            None,
        )
        .await
        .expect(StatusCode::OK)
        .clone();
    let cases = [
        ("health_check_url", "https://0G:883/u-_H>E<Le?j>07"),
        ("health_check_url", "http://127.0.0.1:9/health check"),
        ("instance_url", "http://127.0.0.1:9/caf\u{e9}"),
        ("instance_url", "http://127.0.0.1:9/%zz"),
    ];
    for (field, url) in cases {
        let mut body = json!({"instance_url": "http://127.0.0.1:9/ok",
                              "health_check_url": "http://127.0.0.1:9/ok/health"});
        body[field] = json!(url);
        for caller in [operator(), key.clone()] {
            let answer = p
                .call(
                    Method::POST,
                    "/api/v1/modules/ledger/instances",
                    caller,
                    Some(body.clone()),
                )
                .await;
            let problem = answer.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "is not a URI");
            assert_eq!(problem["errors"][0]["path"], field, "{problem}");
        }
    }
    let after = p
        .call(
            Method::GET,
            "/api/v1/modules/ledger/instances",
            operator(),
            None,
        )
        .await;
    assert_eq!(after.expect(StatusCode::OK), &before);
    // A URI as RFC 3986 writes it is still taken.
    let body = json!({"instance_url": "http://127.0.0.1:9/ok",
                      "health_check_url": "http://127.0.0.1:9/ok/health?x=%20y"});
    p.call(
        Method::POST,
        "/api/v1/modules/ledger/instances",
        key.clone(),
        Some(body),
    )
    .await
    .expect(StatusCode::CREATED);
}
