//! Testing a module without the platform: [`TestKit`] holds a local ES256 key, mints
//! `X-Plinth-Context` tokens for made-up tenants, users and permissions, and serves its JWKS;
//! [`FakePlatform`] answers the platform API a module calls (JWKS, configuration, RBAC,
//! instances, events, companies) from memory, on a local port.
//!
//! ```
//! use axum::{Router, body::Body, routing::get};
//! use plinth_module_sdk::{Manifest, TenantContext, runtime::Module, testkit::TestKit};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let manifest = Manifest::from_json_str(r#"{"name": "hr", "display_name": "HR",
//!     "version": "0.1.0", "backend": {"type": "microservice", "api_prefix": "/api/v1/hr"}}"#)
//!     .unwrap();
//! let kit = TestKit::new("hr");
//! let api = Router::new().route("/me", get(|ctx: TenantContext| async move { ctx.tenant_id }));
//! let app = Module::new(manifest, kit.verifier()).api(api).router().unwrap();
//!
//! let request = kit.context("acme").request("GET", "/api/v1/hr/me", Body::empty());
//! let response = app.clone().oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//!
//! let anonymous = http::Request::get("/api/v1/hr/me").body(Body::empty()).unwrap();
//! assert_eq!(app.oneshot(anonymous).await.unwrap().status(), 401);
//! # }
//! ```

mod platform;

use std::collections::HashMap;
use std::fmt;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{Value, json};

pub use platform::FakePlatform;

use crate::auth::ContextVerifier;
use crate::context::{CONTEXT_HEADER, CONTEXT_ISSUER, ContextClaims, TenantContext};

/// The user tokens are minted for when none is named.
pub const DEFAULT_USER: &str = "test-user";

/// A signing key for one module's test contexts.
#[derive(Clone)]
pub struct TestKit {
    module: String,
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Value,
}

impl fmt::Debug for TestKit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestKit")
            .field("module", &self.module)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TestKit {
    /// A fresh P-256 key for contexts of `module`.
    ///
    /// # Panics
    /// When the system cannot generate a key (no randomness).
    #[must_use]
    pub fn new(module: &str) -> Self {
        let pair =
            EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("a P-256 key pair");
        let pkcs8 = pair.to_pkcs8v1().expect("the key pair as PKCS#8");
        // An uncompressed point: 0x04, then x and y, 32 bytes each.
        let point = pair.public_key().as_ref();
        let (x, y) = (
            URL_SAFE_NO_PAD.encode(&point[1..33]),
            URL_SAFE_NO_PAD.encode(&point[33..65]),
        );
        let kid = format!("test-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let decoding = DecodingKey::from_ec_components(&x, &y).expect("the public key");
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "x": x, "y": y,
            "kid": kid, "alg": "ES256", "use": "sig",
        });
        Self {
            module: module.to_owned(),
            kid,
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            decoding,
            jwk,
        }
    }

    /// The module the contexts are for.
    #[must_use]
    pub fn module(&self) -> &str {
        &self.module
    }

    /// The key id tokens carry in their header.
    #[must_use]
    pub fn key_id(&self) -> &str {
        &self.kid
    }

    /// The JWKS document with the public key, as the platform serves it.
    #[must_use]
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk]})
    }

    /// A verifier that knows this kit's key without fetching it.
    #[must_use]
    pub fn verifier(&self) -> ContextVerifier {
        let keys = HashMap::from([(self.kid.clone(), self.decoding.clone())]);
        ContextVerifier::with_keys(&self.module, keys)
    }

    /// Starts a context for `tenant`: user [`DEFAULT_USER`], no company, no permissions,
    /// valid for 60 s from now.
    #[must_use]
    pub fn context(&self, tenant: &str) -> ContextBuilder<'_> {
        let now = jsonwebtoken::get_current_timestamp();
        ContextBuilder {
            kit: self,
            claims: ContextClaims {
                iss: CONTEXT_ISSUER.to_owned(),
                aud: self.module.clone(),
                sub: DEFAULT_USER.to_owned(),
                tenant_id: tenant.to_owned(),
                company_id: None,
                permissions: Vec::new(),
                config_version: String::new(),
                calling_module: None,
                exp: now + 60,
                iat: now,
            },
        }
    }

    /// Signs any claims with this kit's key, for tests of what verification refuses.
    ///
    /// # Panics
    /// When the claims cannot be serialised (they always can).
    #[must_use]
    pub fn sign(&self, claims: &ContextClaims) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signed claims")
    }
}

/// A context being made; see [`TestKit::context`].
#[derive(Debug, Clone)]
pub struct ContextBuilder<'a> {
    kit: &'a TestKit,
    claims: ContextClaims,
}

impl ContextBuilder<'_> {
    /// For this company.
    #[must_use]
    pub fn company(mut self, company: &str) -> Self {
        self.claims.company_id = Some(company.to_owned());
        self
    }

    /// For this user.
    #[must_use]
    pub fn user(mut self, user: &str) -> Self {
        self.claims.sub = user.to_owned();
        self
    }

    /// With these permission codes (or grants such as `financial:*`).
    #[must_use]
    pub fn permissions<I, S>(mut self, permissions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.claims.permissions = permissions.into_iter().map(Into::into).collect();
        self
    }

    /// With this configuration version.
    #[must_use]
    pub fn config_version(mut self, version: &str) -> Self {
        self.claims.config_version = version.to_owned();
        self
    }

    /// The claims, to change further and sign with [`TestKit::sign`].
    #[must_use]
    pub fn claims(&self) -> ContextClaims {
        self.claims.clone()
    }

    /// The context a handler would see.
    #[must_use]
    pub fn build(&self) -> TenantContext {
        self.claims.clone().into()
    }

    /// The signed token.
    #[must_use]
    pub fn token(&self) -> String {
        self.kit.sign(&self.claims)
    }

    /// A request with this context in `X-Plinth-Context` (and a JSON content type).
    ///
    /// # Panics
    /// When `method` or `uri` is invalid.
    #[must_use]
    pub fn request(
        &self,
        method: &str,
        uri: &str,
        body: axum::body::Body,
    ) -> http::Request<axum::body::Body> {
        http::Request::builder()
            .method(method)
            .uri(uri)
            .header(CONTEXT_HEADER, self.token())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .expect("a valid request")
    }
}

#[cfg(test)]
mod tests;
