//! Users' tokens from an identity provider: signed by a standard JWT library (jsonwebtoken)
//! with RS256, ES256 and EdDSA keys that a local JWKS endpoint publishes, as Cognito, Auth0,
//! Entra ID or Keycloak would — accepted and mapped, keys rotated, unknown key ids, wrong
//! issuer or audience and algorithm confusion refused.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use plinth_module_sdk::jwks::JwksCache;
use plinth_registry::error::Error;
use plinth_registry::identity::{ClaimMap, PlatformRole, TokenVerifier, discover_jwks_url};
use serde_json::{Value, json};

const ISSUER: &str = "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_Plinth";
const AUDIENCE: &str = "plinth-console";
const COGNITO: &str =
    "tenant_id=custom:tenant_id,company_id=custom:company_id,roles=cognito:groups";

/// A signing key of the provider's: the private half signs tokens, the public half is in
/// the JWKS.
struct Key {
    kid: String,
    algorithm: Algorithm,
    encoding: EncodingKey,
}

impl Key {
    fn rsa(kid: &str) -> Self {
        let pair = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048).unwrap();
        let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> = pair.as_der().unwrap();
        let pem = pem("PRIVATE KEY", der.as_ref());
        Self::new(
            kid,
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        )
    }

    fn ec(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Self::new(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_der(pkcs8.as_ref()),
        )
    }

    fn ed(kid: &str) -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new()).unwrap();
        Self::new(
            kid,
            Algorithm::EdDSA,
            EncodingKey::from_ed_der(pkcs8.as_ref()),
        )
    }

    fn new(kid: &str, algorithm: Algorithm, encoding: EncodingKey) -> Self {
        Self {
            kid: kid.into(),
            algorithm,
            encoding,
        }
    }

    /// The public half as a JWK, with its `kid` (and its `alg`, as Cognito writes it).
    fn jwk(&self) -> Value {
        let mut jwk = Jwk::from_encoding_key(&self.encoding, self.algorithm).unwrap();
        jwk.common.key_id = Some(self.kid.clone());
        serde_json::to_value(jwk).unwrap()
    }

    /// A token signed by this key, its header naming it.
    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// What a Cognito ID token of a user of tenant acme, company acme-de, carries.
fn cognito_claims() -> Value {
    json!({
        "sub": "6f1c2d3e-0b1a-4c5d-9e8f-7a6b5c4d3e2f",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "token_use": "id",
        "exp": now() + 600,
        "iat": now(),
        "custom:tenant_id": "acme",
        "custom:company_id": "acme-de",
        "cognito:groups": ["tenant:admin", "acme-accountants"],
        "email": "alice@acme.example"
    })
}

/// The provider's endpoints: its JWKS (which the test can change: rotation) and its OIDC
/// discovery document; counts the JWKS fetches.
#[derive(Clone)]
struct Provider {
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
    /// Milliseconds each JWKS answer takes (a slow or failing provider).
    delay_ms: Arc<AtomicUsize>,
    issuer: Arc<Mutex<String>>,
    url: String,
}

impl Provider {
    async fn start(keys: &[&Key]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let provider = Self {
            jwks: Arc::new(Mutex::new(json!({}))),
            fetches: Arc::new(AtomicUsize::new(0)),
            delay_ms: Arc::new(AtomicUsize::new(0)),
            issuer: Arc::new(Mutex::new(url.clone())),
            url,
        };
        provider.publish(keys);
        let app = Router::new()
            .route(
                "/.well-known/jwks.json",
                get(|State(p): State<Provider>| async move {
                    p.fetches.fetch_add(1, Ordering::SeqCst);
                    let delay = p.delay_ms.load(Ordering::SeqCst) as u64;
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    Json(p.jwks.lock().unwrap().clone())
                }),
            )
            .route(
                "/.well-known/openid-configuration",
                get(|State(p): State<Provider>| async move {
                    Json(json!({
                        "issuer": *p.issuer.lock().unwrap(),
                        "jwks_uri": format!("{}/.well-known/jwks.json", p.url),
                    }))
                }),
            )
            .with_state(provider.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        provider
    }

    fn publish(&self, keys: &[&Key]) {
        let keys: Vec<Value> = keys.iter().map(|k| k.jwk()).collect();
        *self.jwks.lock().unwrap() = json!({ "keys": keys });
    }

    fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.url)
    }

    fn verifier(&self) -> TokenVerifier {
        let keys = JwksCache::new(self.jwks_url(), reqwest::Client::new());
        TokenVerifier::provider(keys, ISSUER, AUDIENCE, ClaimMap::parse(COGNITO).unwrap()).unwrap()
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

async fn refusal(verifier: &TokenVerifier, token: &str) -> String {
    match verifier.verify(token).await {
        Err(Error::Unauthorized(message)) => message,
        other => panic!("expected a 401, got {other:?}"),
    }
}

#[tokio::test]
async fn rs256_es256_and_eddsa_tokens_of_the_provider_are_accepted_and_their_claims_mapped() {
    let keys = [Key::rsa("rsa-1"), Key::ec("ec-1"), Key::ed("ed-1")];
    let provider = Provider::start(&keys.iter().collect::<Vec<_>>()).await;
    let verifier = provider.verifier();
    for key in &keys {
        let user = verifier.verify(&key.sign(&cognito_claims())).await.unwrap();
        assert_eq!(
            user.id.as_str(),
            "6f1c2d3e-0b1a-4c5d-9e8f-7a6b5c4d3e2f",
            "{}",
            key.kid
        );
        assert_eq!(user.tenant.as_ref().unwrap().as_str(), "acme");
        assert_eq!(user.company.as_ref().unwrap().as_str(), "acme-de");
        // Groups that are not platform roles are the provider's own: ignored.
        assert_eq!(
            user.roles.into_iter().collect::<Vec<_>>(),
            [PlatformRole::TenantAdmin]
        );
    }
    assert_eq!(provider.fetches(), 1, "one JWKS read serves every key");
}

#[tokio::test]
async fn a_rotated_key_is_read_on_its_first_token_and_a_retired_one_is_refused() {
    let (old, new) = (Key::rsa("2026-11"), Key::rsa("2026-12"));
    let provider = Provider::start(&[&old]).await;
    let verifier = provider.verifier();
    verifier.verify(&old.sign(&cognito_claims())).await.unwrap();
    // The provider rotates: the new key is published, the old one retired; the first token
    // of the new key comes after the refetch limit's second (sooner, it would wait for it).
    provider.publish(&[&new]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let user = verifier.verify(&new.sign(&cognito_claims())).await.unwrap();
    assert_eq!(user.tenant.unwrap().as_str(), "acme");
    assert_eq!(provider.fetches(), 2, "the unknown kid read the JWKS again");
    // The refetch limit (one a second) holds the retired key's token up for a moment at most.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let message = refusal(&verifier, &old.sign(&cognito_claims())).await;
    assert!(
        message.contains("signed with key `2026-11`, which the identity provider does not list"),
        "{message}"
    );
}

#[tokio::test]
async fn a_flood_of_unknown_key_ids_reads_the_jwks_at_most_once_a_second() {
    let key = Key::ec("ec-1");
    let provider = Provider::start(&[&key]).await;
    let verifier = provider.verifier();
    verifier.verify(&key.sign(&cognito_claims())).await.unwrap();
    let forger = Key::ec("unused");
    let started = std::time::Instant::now();
    for n in 0..200 {
        let forged = Key::new(
            &format!("made-up-{n}"),
            Algorithm::ES256,
            forger.encoding.clone(),
        );
        let message = refusal(&verifier, &forged.sign(&cognito_claims())).await;
        assert!(message.contains("does not list"), "{message}");
    }
    let seconds = started.elapsed().as_secs() as usize;
    assert!(
        provider.fetches() <= 2 + seconds,
        "{} JWKS reads for 200 unknown kids in {seconds} s",
        provider.fetches()
    );
    // The genuine key still verifies, from the cache.
    verifier.verify(&key.sign(&cognito_claims())).await.unwrap();
}

#[tokio::test]
async fn a_token_of_another_issuer_or_audience_or_without_them_is_refused() {
    let key = Key::rsa("rsa-1");
    let provider = Provider::start(&[&key]).await;
    let verifier = provider.verifier();
    let with = |field: &str, value: Value| {
        let mut claims = cognito_claims();
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(field);
        } else {
            claims[field] = value;
        }
        key.sign(&claims)
    };
    for (token, why) in [
        (with("iss", json!("https://evil.example")), "issuer (`iss`)"),
        (with("aud", json!("another-app")), "audience (`aud`)"),
        (with("iss", Value::Null), "no `iss` claim"),
        (with("aud", Value::Null), "no `aud` claim"),
        (with("exp", json!(now() - 3600)), "expired"),
        (
            with("custom:tenant_id", json!(42)),
            "`custom:tenant_id` (Plinth's `tenant_id`) is not a string",
        ),
    ] {
        let message = refusal(&verifier, &token).await;
        assert!(message.contains(why), "{why}: {message}");
    }
}

#[tokio::test]
async fn algorithm_confusion_and_unsigned_tokens_are_refused() {
    let (rsa, ec) = (Key::rsa("rsa-1"), Key::ec("ec-1"));
    let provider = Provider::start(&[&rsa, &ec]).await;
    let verifier = provider.verifier();
    let claims = cognito_claims();
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let payload = b64(&claims);
    // HS256 keyed with the RSA key's public JWK text (the classic confusion), naming its kid.
    let public = serde_json::to_vec(&rsa.jwk()).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    let confused = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(&public).unwrap(),
    )
    .unwrap();
    // An EC key's token relabelled RS256, and an RSA token relabelled PS256.
    let relabel = |token: &str, alg: &str, kid: &str| {
        let parts: Vec<&str> = token.split('.').collect();
        let head = b64(&json!({"alg": alg, "typ": "JWT", "kid": kid}));
        format!("{head}.{}.{}", parts[1], parts[2])
    };
    let unsigned = format!(
        "{}.{payload}.",
        b64(&json!({"alg": "none", "kid": "rsa-1"}))
    );
    let cases = [
        (
            confused,
            "the identity provider's key `rsa-1` signs with RS256 only",
        ),
        (
            relabel(&ec.sign(&claims), "RS256", "ec-1"),
            "key `ec-1` signs with ES256 only",
        ),
        (
            relabel(&rsa.sign(&claims), "PS256", "rsa-1"),
            "key `rsa-1` signs with RS256 only",
        ),
        (
            relabel(&ec.sign(&claims), "ES256", "rsa-1"),
            "key `rsa-1` signs with RS256 only",
        ),
        (unsigned, "invalid token"),
        (
            Key::new("rsa-1", Algorithm::RS256, Key::rsa("x").encoding).sign(&claims),
            "does not verify with the identity provider's key `rsa-1`",
        ),
    ];
    for (token, why) in cases {
        let message = refusal(&verifier, &token).await;
        assert!(message.contains(why), "{why}: {message}");
    }
    // Without the platform's development secret, an HS256 token is never checked by a secret.
    let hs = plinth_registry::identity::mint_token(
        b"plinth-tests-secret-0123456789abcdef",
        &plinth_registry::identity::Claims::user(
            "alice",
            Some("acme"),
            None,
            &[],
            Duration::from_secs(60),
        ),
    )
    .unwrap();
    let message = refusal(&verifier, &hs).await;
    assert!(message.contains("names no key (`kid`)"), "{message}");
}

#[tokio::test]
async fn the_development_secret_works_beside_the_provider_only_for_hs256() {
    let key = Key::ec("ec-1");
    let provider = Provider::start(&[&key]).await;
    let secret = b"plinth-tests-secret-0123456789abcdef";
    let verifier = provider
        .verifier()
        .with_development_secret(TokenVerifier::hs256(secret, None, None).unwrap());
    let claims = plinth_registry::identity::Claims::user(
        "dev",
        Some("acme"),
        None,
        &["tenant:admin"],
        Duration::from_secs(60),
    );
    let dev = plinth_registry::identity::mint_token(secret, &claims).unwrap();
    assert_eq!(verifier.verify(&dev).await.unwrap().id.as_str(), "dev");
    let other =
        plinth_registry::identity::mint_token(b"another-secret-0123456789abcdefghij", &claims)
            .unwrap();
    assert!(
        refusal(&verifier, &other)
            .await
            .contains("platform's secret")
    );
    assert_eq!(
        verifier
            .verify(&key.sign(&cognito_claims()))
            .await
            .unwrap()
            .tenant
            .unwrap()
            .as_str(),
        "acme"
    );
}

#[tokio::test]
async fn an_unreachable_provider_is_a_503_not_a_401() {
    let key = Key::rsa("rsa-1");
    let keys = JwksCache::new(
        "http://127.0.0.1:9/.well-known/jwks.json",
        reqwest::Client::new(),
    );
    let verifier =
        TokenVerifier::provider(keys, ISSUER, AUDIENCE, ClaimMap::parse(COGNITO).unwrap()).unwrap();
    match verifier.verify(&key.sign(&cognito_claims())).await {
        Err(error @ Error::Unavailable { .. }) => {
            assert!(
                error
                    .to_string()
                    .contains("identity provider's keys cannot be read")
            );
        }
        other => panic!("expected 503, got {other:?}"),
    }
}

#[tokio::test]
async fn the_provider_mode_requires_an_issuer_and_an_audience() {
    for (issuer, audience, named) in [
        ("", AUDIENCE, "PLINTH_JWT_ISSUER"),
        (ISSUER, " ", "PLINTH_JWT_AUDIENCE"),
    ] {
        let keys = JwksCache::new("http://127.0.0.1:9/jwks.json", reqwest::Client::new());
        let error =
            TokenVerifier::provider(keys, issuer, audience, ClaimMap::default()).unwrap_err();
        assert!(error.to_string().contains(named), "{error}");
    }
}

#[tokio::test]
async fn oidc_discovery_finds_the_jwks_of_the_issuer_it_names() {
    let key = Key::ed("ed-1");
    let provider = Provider::start(&[&key]).await;
    let client = reqwest::Client::new();
    let found = discover_jwks_url(&client, &format!("{}/", provider.url))
        .await
        .unwrap();
    assert_eq!(found, provider.jwks_url());
    // A discovery document naming another issuer is not trusted.
    *provider.issuer.lock().unwrap() = "https://elsewhere.example".into();
    let error = discover_jwks_url(&client, &provider.url).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("names issuer `https://elsewhere.example`"),
        "{error}"
    );
}

/// Review finding: a fetch held one lock for up to its 5 s timeout, so with a slow provider a
/// token of an unknown key id (unauthenticated: the kid is read before any signature) held up
/// every other token's check. A known key is answered from the cache while a fetch is in
/// flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_fetch_for_an_unknown_kid_holds_up_no_known_keys_token() {
    let key = Key::ec("ec-1");
    let provider = Provider::start(&[&key]).await;
    let verifier = Arc::new(provider.verifier());
    verifier.verify(&key.sign(&cognito_claims())).await.unwrap();
    provider.delay_ms.store(3000, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let forged =
        Key::new("made-up", Algorithm::ES256, Key::ec("x").encoding).sign(&cognito_claims());
    let slow = {
        let verifier = Arc::clone(&verifier);
        tokio::spawn(async move { verifier.verify(&forged).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    verifier.verify(&key.sign(&cognito_claims())).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "the known key's token waited {:?} for the fetch",
        started.elapsed()
    );
    assert!(slow.await.unwrap().is_err());
}
