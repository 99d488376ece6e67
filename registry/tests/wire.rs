//! The wire contract, end to end between the two sides: what the platform (this crate) sends,
//! the module SDK reads, and the other way round — with the SDK's own readers, not a copy of
//! the types.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use plinth_module_sdk::hooks::{HookAnswer, HookResult, Hooks, hooks_router};
use plinth_module_sdk::manifest::Hook;
use plinth_module_sdk::wire::{ContextClaims, HookCall, ProblemDocument};
use plinth_module_sdk::{Manifest, Problem};
use plinth_registry::Error;
use plinth_registry::hooks::ModuleHooks;
use plinth_registry::hooks::{HookOutcome, HookRequest, Hooks as HookPort};
use plinth_registry::identity::ContextSigner;
use plinth_registry::reach::Reaches;

#[tokio::test]
async fn a_context_the_platform_signs_is_read_by_the_sdk() {
    let signer = ContextSigner::generate().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = ContextClaims {
        iss: "plinth".into(),
        aud: "financial".into(),
        sub: "alice".into(),
        tenant_id: "acme".into(),
        company_id: Some("acme-de".into()),
        permissions: vec!["financial:invoices.read".into()],
        config_version: "v7".into(),
        calling_module: None,
        iat: now,
        exp: now + 60,
    };
    let token = signer.sign(&claims).unwrap();
    // The SDK's verifier, with the keys the platform publishes at /.well-known/jwks.json.
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(signer.jwks()).unwrap();
    let keys: HashMap<String, jsonwebtoken::DecodingKey> = jwks
        .keys
        .iter()
        .map(|jwk| {
            let kid = jwk.common.key_id.clone().unwrap();
            (kid, jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap())
        })
        .collect();
    let verifier = plinth_module_sdk::auth::ContextVerifier::with_keys("financial", keys);
    let context = verifier.verify(&token).await.unwrap();
    assert_eq!(context.tenant_id, "acme");
    assert_eq!(context.company_id.as_deref(), Some("acme-de"));
    assert_eq!(context.user_id, "alice");
    assert!(
        context
            .require_permission("financial:invoices.read")
            .is_ok()
    );
    assert!(
        plinth_module_sdk::auth::ContextVerifier::with_keys("warehouse", HashMap::new())
            .verify(&token)
            .await
            .is_err(),
        "a context for another module is refused"
    );
}

#[tokio::test]
async fn a_platform_error_is_a_problem_document_the_sdk_reads() {
    let error = Error::invalid(
        "the configuration breaks financial's schema",
        vec![Problem {
            path: "configuration.tax_rate".into(),
            message: "must be a number".into(),
        }],
    );
    let response = error.into_response();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        response.headers()["content-type"],
        plinth_module_sdk::PROBLEM_JSON
    );
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let document: ProblemDocument = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(document.status, 422);
    assert_eq!(document.kind, "about:blank");
    assert_eq!(document.errors[0].path, "configuration.tax_rate");
    // And the SDK's own errors are the same document.
    let sdk = plinth_module_sdk::ApiError::forbidden("no").document();
    let text = serde_json::to_value(&sdk).unwrap();
    let read: ProblemDocument = serde_json::from_value(text).unwrap();
    assert_eq!((read.status, read.detail.as_str()), (403, "no"));
}

/// A module that refuses to be disabled for a company and checks what it was called with.
#[derive(Debug)]
struct Refusing;

#[async_trait::async_trait]
impl Hooks for Refusing {
    async fn pre_disable_company(&self, call: &HookCall) -> HookResult {
        assert_eq!(call.tenant_id.as_deref(), Some("acme"));
        Ok(HookAnswer::Refuse(format!(
            "{} has open invoices",
            call.company_id.as_deref().unwrap_or("?")
        )))
    }
}

#[tokio::test]
async fn a_hook_the_platform_calls_is_served_by_the_sdk_and_its_refusal_read_back() {
    let manifest = Manifest::from_json_str(
        &serde_json::json!({
            "name": "financial", "display_name": "Financial", "version": "1.0.0",
            "backend": {"type": "microservice", "api_prefix": "/api/v1/financial"},
            "hooks": {
                "pre_disable_company": "/_plinth/hooks/pre_disable_company",
                "post_install": "/_plinth/hooks/post_install"
            }
        })
        .to_string(),
    )
    .unwrap();
    let hooks: Arc<dyn Hooks> = Arc::new(Refusing);
    let app = hooks_router(&manifest, &hooks);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let port = ModuleHooks::new(Arc::new(Reaches::http()));
    let refuse = HookRequest {
        url: format!("{base}/_plinth/hooks/pre_disable_company"),
        call: HookCall::new(Hook::PreDisableCompany, "financial", "1.0.0")
            .for_tenant("acme", Some("acme-de".into())),
    };
    assert_eq!(
        port.call(&refuse).await.unwrap(),
        HookOutcome::Refused("acme-de has open invoices".into())
    );
    let proceed = HookRequest {
        url: format!("{base}/_plinth/hooks/post_install"),
        call: HookCall::new(Hook::PostInstall, "financial", "1.0.0"),
    };
    assert_eq!(port.call(&proceed).await.unwrap(), HookOutcome::Proceed);
}
