use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::StatusCode;
use tower::ServiceExt;

use super::*;
use crate::testkit::{FakePlatform, TestKit};

async fn refusal(verifier: &ContextVerifier, token: &str) -> String {
    verifier.verify(token).await.unwrap_err().to_string()
}

#[tokio::test]
async fn a_valid_context_gives_tenant_company_user_and_permissions() {
    let kit = TestKit::new("financial");
    let token = kit
        .context("acme")
        .company("acme-de")
        .user("ann")
        .permissions(["financial:invoices.read"])
        .config_version("7")
        .token();
    let ctx = kit.verifier().verify(&token).await.unwrap();
    assert_eq!(ctx.tenant_id, "acme");
    assert_eq!(ctx.company_id.as_deref(), Some("acme-de"));
    assert_eq!(ctx.user_id, "ann");
    assert_eq!(ctx.permissions, ["financial:invoices.read"]);
    assert_eq!(ctx.config_version, "7");
}

#[tokio::test]
async fn expired_foreign_and_long_lived_contexts_are_refused_with_the_reason() {
    let kit = TestKit::new("financial");
    let verifier = kit.verifier();
    let mut expired = kit.context("acme").claims();
    expired.iat -= 200;
    expired.exp -= 200;
    assert!(
        refusal(&verifier, &kit.sign(&expired))
            .await
            .ends_with("it has expired")
    );

    let mut other_module = kit.context("acme").claims();
    other_module.aud = "warehouse".into();
    let text = refusal(&verifier, &kit.sign(&other_module)).await;
    assert!(text.ends_with("it is not for module `financial`"), "{text}");

    let mut other_issuer = kit.context("acme").claims();
    other_issuer.iss = "someone".into();
    let text = refusal(&verifier, &kit.sign(&other_issuer)).await;
    assert!(text.ends_with("its issuer is not `plinth`"), "{text}");

    let mut long_lived = kit.context("acme").claims();
    long_lived.exp = long_lived.iat + 3600;
    let text = refusal(&verifier, &kit.sign(&long_lived)).await;
    assert!(
        text.ends_with("it lives 3600 s; a context may live at most 60 s"),
        "{text}"
    );
}

#[tokio::test]
async fn a_token_signed_with_another_key_or_not_a_jwt_is_refused() {
    let kit = TestKit::new("financial");
    let stranger = TestKit::new("financial");
    let text = refusal(&kit.verifier(), &stranger.context("acme").token()).await;
    assert_eq!(
        text,
        format!(
            "invalid x-plinth-context: signed with unknown key `{}`",
            stranger.key_id()
        )
    );
    let text = refusal(&kit.verifier(), "hello").await;
    assert_eq!(text, "invalid x-plinth-context: not a JWT");
}

#[tokio::test]
async fn keys_come_from_the_platform_jwks_and_a_new_key_is_fetched_when_seen() {
    let kit = TestKit::new("financial");
    let platform = FakePlatform::start(&kit).await;
    let verifier = platform.env().verifier();
    let ctx = verifier.verify(&kit.context("acme").token()).await.unwrap();
    assert_eq!(ctx.tenant_id, "acme");

    let rotated = TestKit::new("financial");
    platform.use_keys(&[&kit, &rotated]);
    tokio::time::sleep(MIN_REFETCH_INTERVAL).await;
    let ctx = verifier
        .verify(&rotated.context("globex").token())
        .await
        .unwrap();
    assert_eq!(ctx.tenant_id, "globex");
}

#[tokio::test]
async fn an_unreachable_platform_is_a_503_not_a_401() {
    let module = crate::ModuleName::parse("financial").unwrap();
    let verifier = ContextVerifier::for_platform(&module, "http://127.0.0.1:9");
    let kit = TestKit::new("financial");
    let error = ApiError::from(
        verifier
            .verify(&kit.context("acme").token())
            .await
            .unwrap_err(),
    );
    assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        error
            .detail()
            .starts_with("cannot check x-plinth-context: cannot fetch")
    );
}

fn app(kit: &TestKit) -> Router {
    let invoices = get(|ctx: TenantContext| async move { ctx.tenant_id })
        .route_layer(require_permission("financial:invoices.read"));
    Router::new()
        .route("/invoices", invoices)
        .layer(axum::middleware::from_fn_with_state(
            kit.verifier(),
            verify_context,
        ))
}

async fn call(app: Router, request: http::Request<Body>) -> (StatusCode, serde_json::Value) {
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, body)
}

#[tokio::test]
async fn the_middleware_refuses_requests_without_a_context_as_problem_json() {
    let kit = TestKit::new("financial");
    let request = http::Request::get("/invoices").body(Body::empty()).unwrap();
    let (status, body) = call(app(&kit), request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["detail"],
        "no x-plinth-context header: module APIs are called through the Plinth gateway, which \
         signs the tenant context"
    );
}

#[tokio::test]
async fn require_permission_lets_holders_through_and_names_what_others_lack() {
    let kit = TestKit::new("financial");
    let allowed = kit.context("acme").permissions(["financial:*"]);
    let (status, _) = call(
        app(&kit),
        allowed.request("GET", "/invoices", Body::empty()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let refused = kit
        .context("acme")
        .user("bob")
        .permissions(["financial:accounts.read"]);
    let (status, body) = call(
        app(&kit),
        refused.request("GET", "/invoices", Body::empty()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["detail"],
        "this needs the permission `financial:invoices.read`, which user `bob` does not have in \
         tenant `acme`"
    );
}
