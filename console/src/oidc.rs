//! Sign-in through an identity provider: OpenID Connect's authorization code flow with PKCE
//! (S256), run by the console's server side (docs/console.md, "Sign-in").
//!
//! `GET /console/oidc/login` sends the browser to the provider's `authorization_endpoint` with
//! a fresh `state`, `nonce` and PKCE challenge; the three are kept in a short-lived `HttpOnly`
//! cookie signed with a key of the console's (an HS256 JWT), scoped to `/console/oidc/`.
//! `GET /console/oidc/callback` checks the `state`, exchanges the code at the provider's
//! `token_endpoint` with the PKCE verifier, verifies the ID token with the platform's own
//! verifier (signature from the JWKS, issuer, audience) and its `nonce`, and sets the same
//! session cookie as the development sign-in. No token ever reaches a URL or a script.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use oauth2::basic::{BasicErrorResponse, BasicRevocationErrorResponse};
use oauth2::basic::{BasicTokenIntrospectionResponse, BasicTokenType};
use oauth2::{
    AuthUrl, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, StandardRevocableToken, StandardTokenResponse, TokenUrl,
};
use plinth_registry::hash::sha256_hex;
use plinth_registry::identity::discovery_document;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use super::{CONTENT_SECURITY_POLICY, Console, security_headers};

/// The login cookie: the `state`, `nonce` and PKCE verifier of one sign-in under way.
const LOGIN_COOKIE: &str = "plinth_oidc_login";

/// How long a sign-in may take at the provider.
const LOGIN_TTL: Duration = Duration::from_secs(600);

/// Where the callback lands once signed in.
const AFTER_SIGN_IN: &str = "/";

/// The console's client at an identity provider: `PLINTH_OIDC_CLIENT_ID`,
/// `PLINTH_OIDC_CLIENT_SECRET` (optional: a public client relies on PKCE alone),
/// `PLINTH_OIDC_REDIRECT_URI` (the console's `/console/oidc/callback` as the provider knows
/// it; by default the platform's own address's), `PLINTH_OIDC_SCOPES` (default `openid`), and whether the development sign-in stays
/// on beside it (`PLINTH_CONSOLE_DEVELOPMENT_SIGN_IN=on`; off by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub development_sign_in: bool,
}

impl OidcSettings {
    /// The settings the environment names; `None` without `PLINTH_OIDC_CLIENT_ID`. A redirect
    /// URI that is not the console's callback is refused naming it; none at all is left empty,
    /// for the platform to fill in with its own address ([`OidcSettings::or_callback_of`]).
    pub fn from_env() -> Result<Option<Self>, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let Some(client_id) = var("PLINTH_OIDC_CLIENT_ID") else {
            return Ok(None);
        };
        // Empty: the platform's own address's callback (`plinth up`: http://127.0.0.1:8080/…).
        let redirect_uri = var("PLINTH_OIDC_REDIRECT_URI").unwrap_or_default();
        let development_sign_in = match var("PLINTH_CONSOLE_DEVELOPMENT_SIGN_IN").as_deref() {
            None | Some("off" | "false" | "0") => false,
            Some("on" | "true" | "1") => true,
            Some(other) => {
                return Err(format!(
                    "PLINTH_CONSOLE_DEVELOPMENT_SIGN_IN: {other:?} is neither on nor off"
                ));
            }
        };
        let settings = Self {
            client_id: client_id.trim().to_owned(),
            client_secret: var("PLINTH_OIDC_CLIENT_SECRET"),
            redirect_uri: redirect_uri.trim().to_owned(),
            scopes: var("PLINTH_OIDC_SCOPES")
                .map(|s| s.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
            development_sign_in,
        };
        if !settings.redirect_uri.is_empty() {
            settings.check()?;
        }
        Ok(Some(settings))
    }

    /// These settings, their redirect URI `{public_url}/console/oidc/callback` if none is set.
    #[must_use]
    pub fn or_callback_of(mut self, public_url: &str) -> Self {
        if self.redirect_uri.is_empty() {
            self.redirect_uri =
                format!("{}/console/oidc/callback", public_url.trim_end_matches('/'));
        }
        self
    }

    /// The redirect URI is an absolute URL ending in the console's callback path.
    pub fn check(&self) -> Result<(), String> {
        let parsed = url::Url::parse(&self.redirect_uri)
            .map_err(|e| format!("PLINTH_OIDC_REDIRECT_URI: {:?}: {e}", self.redirect_uri))?;
        if parsed.path() != "/console/oidc/callback" || parsed.query().is_some() {
            return Err(format!(
                "PLINTH_OIDC_REDIRECT_URI: {:?} must end with the console's callback, \
                 /console/oidc/callback",
                self.redirect_uri
            ));
        }
        Ok(())
    }

    /// Whether the console is served over HTTPS (its cookies then carry `Secure`).
    fn https(&self) -> bool {
        self.redirect_uri.starts_with("https://")
    }
}

/// The provider's endpoints, from its discovery document.
#[derive(Debug, Clone)]
struct Endpoints {
    authorization: String,
    token: String,
    end_session: Option<String>,
}

/// The console's OIDC client: its settings, the provider's issuer, the key that signs login
/// cookies, and the endpoints (discovered on the first sign-in, then kept).
#[derive(Debug)]
pub struct Oidc {
    settings: OidcSettings,
    issuer: String,
    cookie_key: Vec<u8>,
    endpoints: OnceCell<Endpoints>,
}

impl Oidc {
    /// The console's client at the provider of `issuer`, whose ID tokens must be for
    /// `audience` (the client id: the platform verifies the session's token with it); login
    /// cookies are signed with a key derived from `secret`.
    pub fn new(
        settings: OidcSettings,
        issuer: &str,
        audience: &str,
        secret: &[u8],
    ) -> Result<Self, String> {
        settings.check()?;
        if issuer.trim().is_empty() {
            return Err(
                "PLINTH_OIDC_CLIENT_ID needs an identity provider: set PLINTH_JWKS_URL \
                        (or `oidc`), PLINTH_JWT_ISSUER and PLINTH_JWT_AUDIENCE"
                    .into(),
            );
        }
        if audience != settings.client_id {
            return Err(format!(
                "PLINTH_JWT_AUDIENCE ({audience:?}) must be PLINTH_OIDC_CLIENT_ID ({:?}): the \
                 console's session holds the ID token, whose audience is the client",
                settings.client_id
            ));
        }
        // A key of its own, so that a login cookie can never pass for a user's token.
        let mut keyed = b"plinth console oidc login\0".to_vec();
        keyed.extend_from_slice(secret);
        Ok(Self {
            settings,
            issuer: issuer.trim_end_matches('/').to_owned(),
            cookie_key: sha256_hex(&keyed).into_bytes(),
            endpoints: OnceCell::new(),
        })
    }

    /// Whether the development sign-in stays on beside the provider.
    #[must_use]
    pub fn development_sign_in(&self) -> bool {
        self.settings.development_sign_in
    }

    /// Whether the console's cookies carry `Secure`.
    pub(super) fn https(&self) -> bool {
        self.settings.https()
    }

    async fn endpoints(&self, client: &reqwest::Client) -> Result<&Endpoints, String> {
        self.endpoints
            .get_or_try_init(|| async {
                let document = discovery_document(client, &self.issuer)
                    .await
                    .map_err(|e| e.to_string())?;
                let field = |name: &str| document[name].as_str().map(str::to_owned);
                Ok(Endpoints {
                    authorization: field("authorization_endpoint").ok_or(
                        "the identity provider's discovery document has no authorization_endpoint",
                    )?,
                    token: field("token_endpoint").ok_or(
                        "the identity provider's discovery document has no token_endpoint",
                    )?,
                    end_session: field("end_session_endpoint"),
                })
            })
            .await
    }

    /// Where sign-out sends the browser: the provider's `end_session_endpoint`, naming the
    /// client and where to come back (never the ID token: `id_token_hint` would put it in a
    /// URL).
    pub(super) async fn end_session(&self, client: &reqwest::Client) -> Option<String> {
        let end = self.endpoints(client).await.ok()?.end_session.clone()?;
        let mut url = url::Url::parse(&end).ok()?;
        let back = url::Url::parse(&self.settings.redirect_uri)
            .ok()?
            .join(AFTER_SIGN_IN)
            .ok()?;
        url.query_pairs_mut()
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("post_logout_redirect_uri", back.as_str());
        Some(url.into())
    }
}

/// The ID token in the token endpoint's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IdToken {
    id_token: Option<String>,
}

impl ExtraTokenFields for IdToken {}

type TokenAnswer = StandardTokenResponse<IdToken, BasicTokenType>;

type OidcClient = Client<
    BasicErrorResponse,
    TokenAnswer,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

fn oauth_client(oidc: &Oidc, endpoints: &Endpoints) -> Result<OidcClient, String> {
    let mut client = Client::new(ClientId::new(oidc.settings.client_id.clone()))
        .set_auth_uri(AuthUrl::new(endpoints.authorization.clone()).map_err(|e| {
            format!(
                "the provider's authorization_endpoint {:?}: {e}",
                endpoints.authorization
            )
        })?)
        .set_token_uri(
            TokenUrl::new(endpoints.token.clone())
                .map_err(|e| format!("the provider's token_endpoint {:?}: {e}", endpoints.token))?,
        )
        .set_redirect_uri(
            RedirectUrl::new(oidc.settings.redirect_uri.clone())
                .map_err(|e| format!("PLINTH_OIDC_REDIRECT_URI: {e}"))?,
        );
    if let Some(secret) = &oidc.settings.client_secret {
        client = client.set_client_secret(ClientSecret::new(secret.clone()));
    }
    Ok(client)
}

/// One sign-in under way, as the login cookie carries it.
#[derive(Debug, Serialize, Deserialize)]
struct Login {
    state: String,
    nonce: String,
    verifier: String,
    exp: u64,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `GET /console/oidc/login`: to the provider, with a new `state`, `nonce` and PKCE challenge.
pub(super) async fn login(State(console): State<Console>) -> Response {
    let Some(oidc) = console.oidc.clone() else {
        return page(
            StatusCode::NOT_FOUND,
            "No identity provider is configured for this console (PLINTH_OIDC_CLIENT_ID).",
        );
    };
    let endpoints = match oidc.endpoints(console.client()).await {
        Ok(endpoints) => endpoints,
        Err(e) => {
            tracing::warn!(reason = %e, "the identity provider cannot be discovered");
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The identity provider cannot be reached; try again shortly.",
            );
        }
    };
    let client = match oauth_client(&oidc, endpoints) {
        Ok(client) => client,
        Err(e) => return page(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let nonce = CsrfToken::new_random();
    let mut asked = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("openid".into()))
        .add_extra_param("nonce", nonce.secret())
        .set_pkce_challenge(challenge);
    for scope in oidc.settings.scopes.iter().filter(|s| *s != "openid") {
        asked = asked.add_scope(Scope::new(scope.clone()));
    }
    let (url, state) = asked.url();
    let login = Login {
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
        exp: now() + LOGIN_TTL.as_secs(),
    };
    let sealed = match EncodingKey::from_secret(&oidc.cookie_key)
        .and_then(|key| jsonwebtoken::encode(&Header::new(Algorithm::HS256), &login, &key))
    {
        Ok(sealed) => sealed,
        Err(e) => return page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let mut response = (
        StatusCode::FOUND,
        [
            (header::LOCATION, url.to_string()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response();
    set_cookie(
        &mut response,
        &login_cookie(&sealed, LOGIN_TTL.as_secs(), oidc.https()),
    );
    response
}

/// The login cookie. `SameSite=Lax`, not `Strict`: the callback is a top-level navigation
/// from the provider's site, which a `Strict` cookie would not come back with.
fn login_cookie(value: &str, max_age: u64, https: bool) -> String {
    let secure = if https { "; Secure" } else { "" };
    format!(
        "{LOGIN_COOKIE}={value}; Path=/console/oidc/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    )
}

/// What the provider sends back to the callback.
#[derive(Debug, Deserialize)]
pub(super) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /console/oidc/callback?code&state` (or `?error`): checks the state, exchanges the code
/// with the PKCE verifier, verifies the ID token and its nonce, then sets the session. Any
/// failure is a page saying why and no session; the login cookie is spent either way.
pub(super) async fn callback(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(answer): Query<Callback>,
) -> Response {
    let Some(oidc) = console.oidc.clone() else {
        return page(
            StatusCode::NOT_FOUND,
            "No identity provider is configured for this console (PLINTH_OIDC_CLIENT_ID).",
        );
    };
    let mut response = match signed_in(&console, &oidc, &headers, answer).await {
        Ok((token, valid_until)) => {
            let max_age = u64::try_from(valid_until)
                .unwrap_or_default()
                .saturating_sub(now());
            let mut response = (
                StatusCode::FOUND,
                [
                    (header::LOCATION, AFTER_SIGN_IN),
                    (header::CACHE_CONTROL, "no-store"),
                ],
            )
                .into_response();
            set_cookie(
                &mut response,
                &super::session::session_cookie(&token, max_age, oidc.https()),
            );
            response
        }
        Err((status, why)) => page(status, &why),
    };
    // A login cookie serves one callback only.
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::try_from(login_cookie("", 0, oidc.https()))
            .unwrap_or(HeaderValue::from_static("")),
    );
    response
}

type Refusal = (StatusCode, String);

/// The ID token of a callback that passes every check, and until when it is valid.
async fn signed_in(
    console: &Console,
    oidc: &Oidc,
    headers: &HeaderMap,
    answer: Callback,
) -> Result<(String, i64), Refusal> {
    let bad = |why: String| (StatusCode::BAD_REQUEST, why);
    // The login cookie and the state first: a link crafted elsewhere (`?error=…` with words
    // of its author's choosing) is refused before any of its text reaches the page.
    let login = login_of(oidc, headers).ok_or_else(|| {
        bad(
            "This sign-in was not started here or has expired (no valid login cookie): \
             start again."
                .into(),
        )
    })?;
    let state = answer
        .state
        .ok_or_else(|| bad("The callback has no `state`: start the sign-in again.".into()))?;
    if state != login.state {
        return Err(bad(
            "The callback's `state` is not the one this sign-in sent (a forged or crossed \
             sign-in): start again."
                .into(),
        ));
    }
    if let Some(error) = answer.error {
        let detail = answer
            .error_description
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        return Err(bad(format!(
            "The identity provider did not sign you in: {error}{detail}."
        )));
    }
    let code = answer
        .code
        .ok_or_else(|| bad("The callback has no `code`: start the sign-in again.".into()))?;
    let endpoints = oidc
        .endpoints(console.client())
        .await
        .map_err(|e| (StatusCode::BAD_GATEWAY, e))?;
    let client = oauth_client(oidc, endpoints).map_err(|e| (StatusCode::BAD_GATEWAY, e))?;
    let http = |request: oauth2::HttpRequest| exchange(console.client().clone(), request);
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(login.verifier))
        .request_async(&http)
        .await
        .map_err(|e| match e {
            RequestTokenError::ServerResponse(refusal) => bad(format!(
                "The identity provider refused the code: {}{}.",
                refusal.error(),
                refusal
                    .error_description()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            )),
            other => (
                StatusCode::BAD_GATEWAY,
                format!("The identity provider's token endpoint failed: {other}."),
            ),
        })?;
    let id_token = tokens.extra_fields().id_token.clone().ok_or_else(|| {
        (
            StatusCode::BAD_GATEWAY,
            "The identity provider answered without an ID token (is `openid` among the \
             client's scopes?)."
                .to_owned(),
        )
    })?;
    let (_, valid_until) = console
        .plane
        .identity
        .tokens
        .verify_id_token(&id_token, &login.nonce)
        .await
        .map_err(|e| bad(format!("The identity provider's answer is refused: {e}.")))?;
    Ok((id_token, valid_until))
}

/// The sign-in under way, from a login cookie that is this console's and not expired.
fn login_of(oidc: &Oidc, headers: &HeaderMap) -> Option<Login> {
    let sealed = super::session::cookie(headers, LOGIN_COOKIE)?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp"]);
    validation.validate_aud = false;
    validation.leeway = 0;
    let key = DecodingKey::from_secret(&oidc.cookie_key).ok()?;
    jsonwebtoken::decode::<Login>(sealed, &key, &validation)
        .ok()
        .map(|data| data.claims)
}

/// The token endpoint's call, made with the console's own HTTP client.
async fn exchange(
    client: reqwest::Client,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let answer = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await?;
    let mut response = http_response(answer.status());
    *response.headers_mut() = answer.headers().clone();
    *response.body_mut() = answer.bytes().await?.to_vec();
    Ok(response)
}

fn http_response(status: StatusCode) -> oauth2::HttpResponse {
    let mut response = oauth2::HttpResponse::new(Vec::new());
    *response.status_mut() = status;
    response
}

fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::try_from(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// A page saying why a sign-in failed, with a way back; no script.
fn page(status: StatusCode, why: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Sign-in failed · Plinth</title></head><body><main>\
         <h1>Sign-in failed</h1><p id=\"sign-in-error\" role=\"alert\">{}</p>\
         <p><a href=\"/\">Back to the console</a></p></main></body></html>",
        escape(why)
    );
    let mut response = (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response();
    // The console's own policy: the page has no script, and needs no bundle's origin.
    security_headers(
        response.headers_mut(),
        &HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(redirect_uri: &str) -> OidcSettings {
        OidcSettings {
            client_id: "plinth-console".into(),
            client_secret: None,
            redirect_uri: redirect_uri.into(),
            scopes: Vec::new(),
            development_sign_in: false,
        }
    }

    #[test]
    fn a_redirect_uri_that_is_not_the_consoles_callback_is_refused_naming_the_setting() {
        for (uri, says) in [
            ("not a url", "PLINTH_OIDC_REDIRECT_URI: \"not a url\""),
            (
                "https://console.example.com/callback",
                "must end with the console's callback, /console/oidc/callback",
            ),
            (
                "https://console.example.com/console/oidc/callback?next=/",
                "must end with the console's callback",
            ),
        ] {
            let error = settings(uri).check().unwrap_err();
            assert!(error.contains(says), "{uri}: {error}");
        }
        assert!(
            settings("https://console.example.com/console/oidc/callback")
                .check()
                .is_ok()
        );
        let filled = settings("").or_callback_of("http://127.0.0.1:8080/");
        assert_eq!(
            filled.redirect_uri,
            "http://127.0.0.1:8080/console/oidc/callback"
        );
    }

    #[test]
    fn a_client_that_is_not_the_tokens_audience_is_refused_naming_both_settings() {
        let callback = "https://console.example.com/console/oidc/callback";
        let error =
            Oidc::new(settings(callback), "https://idp.example", "other", b"k").unwrap_err();
        assert!(error.contains("PLINTH_JWT_AUDIENCE (\"other\")"), "{error}");
        assert!(
            error.contains("PLINTH_OIDC_CLIENT_ID (\"plinth-console\")"),
            "{error}"
        );
        let oidc = Oidc::new(
            settings(callback),
            "https://idp.example/",
            "plinth-console",
            b"k",
        )
        .unwrap();
        assert!(oidc.https());
    }

    #[test]
    fn a_providers_words_are_shown_as_text() {
        assert_eq!(
            escape("<b>\"access\" & 'denied'</b>"),
            "&lt;b&gt;&quot;access&quot; &amp; &#39;denied&#39;&lt;/b&gt;"
        );
    }
}
