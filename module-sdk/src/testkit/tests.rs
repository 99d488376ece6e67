use super::*;
use crate::testkit::platform::TEST_API_KEY;

#[test]
fn the_jwks_holds_one_p256_key_with_the_kit_key_id() {
    let kit = TestKit::new("financial");
    let key = &kit.jwks()["keys"][0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert_eq!(key["alg"], "ES256");
    assert_eq!(key["kid"], kit.key_id());
}

#[test]
fn a_built_context_is_what_the_handler_sees() {
    let kit = TestKit::new("financial");
    let ctx = kit
        .context("acme")
        .company("acme-de")
        .permissions(["financial:*"])
        .build();
    assert_eq!(ctx.user_id, DEFAULT_USER);
    assert_eq!(ctx.company_id.as_deref(), Some("acme-de"));
    assert!(ctx.has_permission("financial:invoices.write"));
}

#[tokio::test]
async fn the_fake_platform_checks_the_api_key_and_records_registrations() {
    let kit = TestKit::new("financial");
    let platform = FakePlatform::start(&kit).await;
    let client = platform.env().platform();
    client
        .register_instance("http://127.0.0.1:9000", "http://127.0.0.1:9000/health")
        .await
        .unwrap();
    assert_eq!(
        platform.instances()[0]["instance_url"],
        "http://127.0.0.1:9000"
    );

    let module = crate::ModuleName::parse("financial").unwrap();
    let stranger = crate::PlatformClient::new(platform.url(), &module, "wrong");
    let error = stranger.company("acme", "acme-de").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "the platform answered 401 Unauthorized: the module API key is not valid"
    );
    assert_ne!(TEST_API_KEY, "wrong");
}

#[tokio::test]
async fn rbac_verify_answers_what_was_granted() {
    let kit = TestKit::new("financial");
    let platform = FakePlatform::start(&kit).await;
    platform.grant("acme", "ann", "financial:invoices.read");
    let client = platform.env().platform();
    let check = |user: &'static str| {
        let client = client.clone();
        async move {
            client
                .verify_permission("acme", user, "financial:invoices.read", Some("acme-de"))
                .await
                .unwrap()
        }
    };
    assert!(check("ann").await);
    assert!(!check("bob").await);
}
