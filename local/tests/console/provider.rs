//! A small OpenID Connect provider for the tests, on a port of its own: discovery,
//! `authorize` (which signs the user in at once and redirects back with a code), a token
//! endpoint that checks the PKCE verifier and spends each code once, and the JWKS of its RS256
//! key. Knobs make it refuse the sign-in or put another nonce in the ID token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use plinth_local::console::OidcSettings;
use plinth_local::platform::IdentitySettings;
use plinth_registry::identity::ProviderSettings;
use serde_json::{Value, json};

/// The console's client id at the provider (and so the platform's audience).
pub const CLIENT_ID: &str = "plinth-console";
pub const CLIENT_SECRET: &str = "console-secret-of-the-tests";
const KID: &str = "test-rsa-1";

/// A code the provider handed out, and what its exchange must match.
struct Grant {
    challenge: String,
    nonce: String,
    redirect_uri: String,
}

#[derive(Default)]
struct Knobs {
    /// The next authorization answers `error=access_denied`.
    deny: bool,
    /// The ID token carries this nonce rather than the one the sign-in sent.
    nonce: Option<String>,
}

struct Inner {
    issuer: String,
    key: EncodingKey,
    jwk: Value,
    codes: Mutex<HashMap<String, Grant>>,
    knobs: Mutex<Knobs>,
    /// The token endpoint's refusals, in order (what the console's exchange got).
    refusals: Mutex<Vec<String>>,
}

/// The provider, serving until dropped.
pub struct Provider {
    inner: Arc<Inner>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Provider {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let pair = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048).unwrap();
        let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> = pair.as_der().unwrap();
        let key = EncodingKey::from_rsa_pem(pem(der.as_ref()).as_bytes()).unwrap();
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap();
        jwk.common.key_id = Some(KID.into());
        let inner = Arc::new(Inner {
            issuer,
            key,
            jwk: serde_json::to_value(jwk).unwrap(),
            codes: Mutex::default(),
            knobs: Mutex::default(),
            refusals: Mutex::default(),
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/jwks", get(jwks))
            .route("/logout", get(|| async { "signed out" }))
            .with_state(Arc::clone(&inner));
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { inner, server }
    }

    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The platform's settings for this provider: its keys, issuer and audience, and the
    /// console's client at it.
    pub fn identity(&self) -> IdentitySettings {
        IdentitySettings {
            provider: Some(ProviderSettings {
                jwks_url: "oidc".into(),
                issuer: self.inner.issuer.clone(),
                audience: CLIENT_ID.into(),
                claims: String::new(),
            }),
            console: Some(OidcSettings {
                client_id: CLIENT_ID.into(),
                client_secret: Some(CLIENT_SECRET.into()),
                redirect_uri: String::new(),
                scopes: vec!["openid".into(), "profile".into()],
                development_sign_in: false,
            }),
        }
    }

    /// The next sign-in is refused by the user (`error=access_denied`).
    pub fn deny_next(&self) {
        self.inner.knobs.lock().unwrap().deny = true;
    }

    /// ID tokens carry `nonce` from now on, whatever the sign-in sent.
    pub fn sign_with_nonce(&self, nonce: &str) {
        self.inner.knobs.lock().unwrap().nonce = Some(nonce.into());
    }

    /// The token endpoint's refusals so far.
    pub fn refusals(&self) -> Vec<String> {
        self.inner.refusals.lock().unwrap().clone()
    }
}

fn pem(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

async fn discovery(State(inner): State<Arc<Inner>>) -> Json<Value> {
    let issuer = &inner.issuer;
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "end_session_endpoint": format!("{issuer}/logout"),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

async fn jwks(State(inner): State<Arc<Inner>>) -> Json<Value> {
    Json(json!({"keys": [inner.jwk]}))
}

fn bad(detail: &str) -> Response {
    (StatusCode::BAD_REQUEST, detail.to_owned()).into_response()
}

/// Signs the user in at once (no login page) and sends them back with a code, or with
/// `error=access_denied` when told to.
async fn authorize(
    State(inner): State<Arc<Inner>>,
    Query(asked): Query<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| asked.get(name).cloned().unwrap_or_default();
    if field("response_type") != "code" || field("client_id") != CLIENT_ID {
        return bad("response_type=code and the console's client_id, please");
    }
    if field("code_challenge_method") != "S256" || field("code_challenge").len() != 43 {
        return bad("this provider requires PKCE with S256");
    }
    if field("nonce").is_empty() || field("state").is_empty() {
        return bad("a nonce and a state, please");
    }
    if !field("scope").split(' ').any(|s| s == "openid") {
        return bad("the openid scope, please");
    }
    let mut back = url::Url::parse(&field("redirect_uri")).unwrap();
    let deny = std::mem::take(&mut inner.knobs.lock().unwrap().deny);
    if deny {
        back.query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("error_description", "The user declined")
            .append_pair("state", &field("state"));
    } else {
        let code = format!("{:032x}", rand::random::<u128>());
        inner.codes.lock().unwrap().insert(
            code.clone(),
            Grant {
                challenge: field("code_challenge"),
                nonce: field("nonce"),
                redirect_uri: field("redirect_uri"),
            },
        );
        back.query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", &field("state"));
    }
    (StatusCode::FOUND, [(header::LOCATION, back.to_string())]).into_response()
}

/// The code exchange: the client's credentials, a code not yet spent, the same redirect URI,
/// and a verifier whose SHA-256 is the challenge.
async fn token(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let refuse = |error: &str, description: &str| {
        inner
            .refusals
            .lock()
            .unwrap()
            .push(format!("{error}: {description}"));
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": error, "error_description": description})),
        )
            .into_response()
    };
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()) != Some(basic.as_bytes()) {
        return refuse("invalid_client", "the client's credentials do not match");
    }
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    if field("grant_type") != "authorization_code" {
        return refuse("unsupported_grant_type", "authorization_code only");
    }
    let Some(grant) = inner.codes.lock().unwrap().remove(&field("code")) else {
        return refuse("invalid_grant", "the code is unknown or already used");
    };
    if grant.redirect_uri != field("redirect_uri") {
        return refuse(
            "invalid_grant",
            "the redirect_uri is not the authorization's",
        );
    }
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        field("code_verifier").as_bytes(),
    );
    if URL_SAFE_NO_PAD.encode(digest.as_ref()) != grant.challenge {
        return refuse("invalid_grant", "PKCE verification failed");
    }
    let nonce = inner
        .knobs
        .lock()
        .unwrap()
        .nonce
        .clone()
        .unwrap_or(grant.nonce);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": inner.issuer, "aud": CLIENT_ID, "sub": "alice",
        "tenant_id": "acme", "company_id": "acme-de", "company_ids": ["acme-de", "acme-us"],
        "roles": ["tenant:admin"], "nonce": nonce, "iat": now, "exp": now + 3600,
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.into());
    let id_token = jsonwebtoken::encode(&header, &claims, &inner.key).unwrap();
    Json(json!({
        "access_token": "an-opaque-access-token",
        "token_type": "Bearer",
        "expires_in": 3600,
        "id_token": id_token,
    }))
    .into_response()
}
