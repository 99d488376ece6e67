//! "The first hour", Deliver 3 and 5 in process: the reads the CLI's `list` and `show` use, and
//! the closest name in a 404 — told only to whom may see it.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::api::{TestPlatform, operator, tenant_admin, token};

crate::on_both_stores!(
    tenants_are_listed_for_platform_admins_and_their_own_for_members,
    a_misspelt_tenant_is_suggested_to_platform_admins_only,
    dead_letters_are_a_404_where_the_platform_keeps_none,
);

async fn tenant(p: &TestPlatform, id: &str) {
    p.call(
        Method::POST,
        "/api/v1/tenants",
        operator(),
        Some(json!({"id": id, "name": id})),
    )
    .await
    .expect(StatusCode::CREATED);
}

async fn tenants_are_listed_for_platform_admins_and_their_own_for_members(p: TestPlatform) {
    tenant(&p, "acme").await;
    tenant(&p, "globex").await;
    let all = p
        .call(Method::GET, "/api/v1/tenants", operator(), None)
        .await;
    let ids: Vec<&str> = all
        .expect(StatusCode::OK)
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme", "globex"]);
    let own = p
        .call(Method::GET, "/api/v1/tenants", tenant_admin("acme"), None)
        .await;
    assert_eq!(own.expect(StatusCode::OK).as_array().unwrap().len(), 1);
    assert_eq!(own.body[0]["id"], "acme");
    let module_less = token("nobody", None, None, &[]);
    p.call(Method::GET, "/api/v1/tenants", module_less, None)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "may list tenants");
}

/// A platform admin is told the closest tenant; a token for a tenant that does not exist is
/// not told another tenant's id.
async fn a_misspelt_tenant_is_suggested_to_platform_admins_only(p: TestPlatform) {
    tenant(&p, "acme").await;
    p.call(Method::GET, "/api/v1/tenants/acne", operator(), None)
        .await
        .expect_problem(
            StatusCode::NOT_FOUND,
            "no tenant acne; did you mean `acme`?",
        );
    let stranger = p
        .call(
            Method::GET,
            "/api/v1/tenants/acne",
            tenant_admin("acne"),
            None,
        )
        .await;
    let body = stranger.expect_problem(StatusCode::NOT_FOUND, "no tenant acne");
    assert!(!body.to_string().contains("acme"), "{body}");
}

async fn dead_letters_are_a_404_where_the_platform_keeps_none(p: TestPlatform) {
    p.call(Method::GET, "/api/v1/dead-letters", operator(), None)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "keeps no dead letters");
    p.call(
        Method::POST,
        "/api/v1/dead-letters/replay",
        tenant_admin("acme"),
        None,
    )
    .await
    .expect_problem(StatusCode::FORBIDDEN, "platform");
}
