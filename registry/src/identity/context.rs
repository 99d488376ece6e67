//! The tenant context the gateway hands to module backends: a short-lived ES256 JWT in
//! `X-Plinth-Context`, whose public key is served at `/.well-known/jwks.json`.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use plinth_module_sdk::wire::ContextClaims;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Signs context tokens with one P-256 key.
pub struct ContextSigner {
    kid: String,
    key: EncodingKey,
    pkcs8: Vec<u8>,
    jwk: Value,
}

impl std::fmt::Debug for ContextSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl ContextSigner {
    /// A fresh key.
    pub fn generate() -> Result<Self> {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|e| Error::internal_because("cannot generate a context key", e))?;
        Self::from_pkcs8(pkcs8.as_ref())
    }

    /// A key kept as DER: PKCS#8 (what [`ContextSigner::pkcs8`] gives) or SEC1 / RFC 5915
    /// (what `openssl genpkey … -outform DER` writes).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self> {
        let pair = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|e| {
                Error::BadRequest(format!(
                    "the context key is not a P-256 private key in PKCS#8 or SEC1 DER: {e}"
                ))
            })?;
        let pkcs8 = pair
            .to_pkcs8v1()
            .map_err(|_| Error::BadRequest("the context key cannot be exported".into()))?;
        let der = pkcs8.as_ref();
        let point = pair.public_key().as_ref();
        if point.len() != 65 || point[0] != 4 {
            return Err(Error::BadRequest(
                "the context key's public point is not uncompressed P-256".into(),
            ));
        }
        let kid: String = Sha256::digest(point)
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        Ok(Self {
            kid,
            key: EncodingKey::from_ec_der(der),
            pkcs8: der.to_vec(),
            jwk,
        })
    }

    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWKS document modules verify contexts with.
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk]})
    }

    /// The claims of a context this platform signed for `module` that has not expired: what
    /// a module passes on when it calls another module for the same user.
    pub fn verify(&self, token: &str, module: &str) -> Result<ContextClaims> {
        let refused = |why: &str| {
            Error::Unauthorized(format!(
                "the {} passed on is not a valid context of {module}: {why}",
                plinth_module_sdk::wire::CONTEXT_HEADER
            ))
        };
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(self.jwk.clone())
            .map_err(|e| Error::internal_because("the context key's JWK", e))?;
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk)
            .map_err(|e| Error::internal_because("the context key's JWK", e))?;
        let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
        validation.set_issuer(&[plinth_module_sdk::wire::CONTEXT_ISSUER]);
        validation.set_audience(&[module]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        jsonwebtoken::decode::<ContextClaims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                refused(match e.kind() {
                    ErrorKind::ExpiredSignature => "it has expired",
                    ErrorKind::InvalidAudience => "it was issued to another module",
                    _ => "it does not verify",
                })
            })
    }

    pub fn sign(&self, claims: &ContextClaims) -> Result<String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key)
            .map_err(|e| Error::internal_because("cannot sign a context", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::jwk::JwkSet;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn a_signed_context_verifies_with_the_published_jwks() {
        let signer = ContextSigner::generate().unwrap();
        let claims = ContextClaims {
            iss: "plinth".into(),
            aud: "financial".into(),
            sub: "alice".into(),
            tenant_id: "acme".into(),
            company_id: Some("acme-de".into()),
            permissions: vec!["financial:invoices.read".into()],
            config_version: "abc".into(),
            calling_module: None,
            iat: 1,
            exp: u64::MAX / 2,
        };
        let token = signer.sign(&claims).unwrap();
        let jwks: JwkSet = serde_json::from_value(signer.jwks()).unwrap();
        let key = DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&["financial"]);
        validation.set_issuer(&["plinth"]);
        let decoded = jsonwebtoken::decode::<ContextClaims>(&token, &key, &validation).unwrap();
        assert_eq!(decoded.claims, claims);
        // Modules read it with the SDK: the same claims come out on that side.
        let json = serde_json::to_value(&decoded.claims).unwrap();
        let read: plinth_module_sdk::wire::ContextClaims = serde_json::from_value(json).unwrap();
        assert_eq!(read, claims);
        let again = ContextSigner::from_pkcs8(signer.pkcs8()).unwrap();
        assert_eq!(again.kid(), signer.kid());
    }

    #[test]
    fn an_openssl_sec1_key_is_accepted_and_junk_is_refused() {
        // `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -outform DER`
        let sec1 = base64::engine::general_purpose::STANDARD
            .decode(
                "MHcCAQEEIDxgv2A94DbiYuC+gX8tKEk/VKoyPUmq19rGTGsbK1gnoAoGCCqGSM49AwEHoUQDQgAE\
                 6XpDTko6aGSDsQLi9FsdNovPgLTLA+SWsGD3rERcZXG5nQyiL+kEljBdBS6/qEfbvFcw2XkzBY6v\
                 PUACt7dpQQ==",
            )
            .unwrap();
        let signer = ContextSigner::from_pkcs8(&sec1);
        assert!(signer.is_ok(), "{signer:?}");
        let refused = ContextSigner::from_pkcs8(b"not a key").unwrap_err();
        assert!(refused.to_string().contains("PKCS#8 or SEC1"), "{refused}");
    }
}
