//! The console's session, the development sign-in and the console's API pass-through
//! (docs/console.md, "Sign-in"); the identity provider's sign-in is `oidc.rs`, which ends in
//! the same session.
//!
//! The signed-in user's token lives in one place: an `HttpOnly`, `SameSite=Strict` cookie
//! scoped to `/console/`. No script of the shell or of a module bundle can read it, and no URL
//! carries it. The shell calls the platform and modules' routes through
//! `/console/api/…`, which adds the token as `Authorization: Bearer` and passes the request
//! to the gateway as any client's: the same decision, limits and metering.
//!
//! Cross-site requests cannot use the cookie: it is `SameSite=Strict`, and every request that
//! the cookie authorizes must also come from the console's own origin (`Sec-Fetch-Site:
//! same-origin`, or a matching `Origin`), which a sandboxed module frame's is not.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use plinth_registry::Error;
use plinth_registry::identity::{Claims, User, mint_token};
use serde_json::{Value, json};

use super::Console;

/// The session cookie's name.
pub const COOKIE: &str = "plinth_console";

/// How long a development sign-in lasts.
const SESSION: Duration = Duration::from_secs(8 * 3600);

/// A user the development sign-in offers: the demo's (`plinth up --demo`).
struct DevUser {
    id: &'static str,
    label: &'static str,
    tenant: Option<&'static str>,
    company: Option<&'static str>,
    companies: &'static [&'static str],
    roles: &'static [&'static str],
}

const DEV_USERS: &[DevUser] = &[
    DevUser {
        id: "alice",
        label: "Alice — ACME's tenant admin (ACME GmbH)",
        tenant: Some("acme"),
        company: Some("acme-de"),
        companies: &["acme-de", "acme-us"],
        roles: &["tenant:admin"],
    },
    DevUser {
        id: "operator",
        label: "Olivia — platform operator",
        tenant: None,
        company: None,
        companies: &[],
        roles: &["platform:admin"],
    },
];

/// The fields a request to the platform through the console keeps.
const PASSED_TO_GATEWAY: [HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::ACCEPT,
    header::IF_NONE_MATCH,
    HeaderName::from_static("x-plinth-company"),
];

/// The fields a response keeps on its way back.
const PASSED_BACK: [HeaderName; 3] = [header::CONTENT_TYPE, header::ETAG, header::LOCATION];

/// `GET /console/session`: who is signed in (`user`, or `null`), whom the development
/// sign-in offers (none when it is off) and, with an identity provider, where its sign-in
/// starts (`oidc.login`).
pub(super) async fn show(State(console): State<Console>, headers: HeaderMap) -> Response {
    let user = match session_token(&headers) {
        Some(token) => console.plane.identity.tokens.verify(token).await.ok(),
        None => None,
    };
    let users: Vec<Value> = if console.development_sign_in() {
        DEV_USERS
            .iter()
            .map(|u| json!({"id": u.id, "label": u.label}))
            .collect()
    } else {
        Vec::new()
    };
    let oidc = console
        .oidc
        .as_ref()
        .map(|_| json!({"login": "/console/oidc/login"}));
    no_store(axum::Json(json!({
        "user": user.as_ref().map(describe),
        "development_users": users,
        "oidc": oidc,
    })))
}

/// `POST /console/session` `{"user": "alice"}`: signs in as one of the demo's users; the
/// token goes into the cookie only. Off (403) when an identity provider is configured, unless
/// `PLINTH_CONSOLE_DEVELOPMENT_SIGN_IN=on`.
pub(super) async fn sign_in(
    State(console): State<Console>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = same_origin(&headers) {
        return refused.into_response();
    }
    if !loopback_host(&headers) {
        return Error::Forbidden(
            "the development sign-in answers only at 127.0.0.1, localhost or [::1] (Host): a page \
             of another name resolving here (DNS rebinding) gets no session"
                .into(),
        )
        .into_response();
    }
    if !console.development_sign_in() {
        return Error::Forbidden(
            "the development sign-in is off: this console signs in through its identity \
             provider (/console/oidc/login); PLINTH_CONSOLE_DEVELOPMENT_SIGN_IN=on keeps it"
                .into(),
        )
        .into_response();
    }
    let Ok(asked) = serde_json::from_slice::<Value>(&body) else {
        return Error::BadRequest("the body must be JSON: {\"user\": \"alice\"}".into())
            .into_response();
    };
    let id = asked["user"].as_str().unwrap_or_default();
    let Some(dev) = DEV_USERS.iter().find(|u| u.id == id) else {
        let offered: Vec<&str> = DEV_USERS.iter().map(|u| u.id).collect();
        return Error::BadRequest(format!(
            "user: {id:?} is not a development user (offered: {})",
            offered.join(", ")
        ))
        .into_response();
    };
    let mut claims = Claims::user(dev.id, dev.tenant, dev.company, dev.roles, SESSION);
    claims.company_ids = dev.companies.iter().map(|c| (*c).to_owned()).collect();
    claims.iss = std::env::var("PLINTH_JWT_ISSUER").ok();
    claims.aud = std::env::var("PLINTH_JWT_AUDIENCE").ok();
    let token = match mint_token(console.secret.as_bytes(), &claims) {
        Ok(token) => token,
        Err(e) => return e.into_response(),
    };
    let user = match console.plane.identity.tokens.verify(&token).await {
        Ok(user) => user,
        Err(e) => return e.into_response(),
    };
    let mut response = no_store(axum::Json(json!({"user": describe(&user)})));
    let cookie = session_cookie(&token, SESSION.as_secs(), console.https());
    if let Ok(cookie) = HeaderValue::try_from(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// The session cookie holding `token` for `max_age` seconds: readable by no script, sent to
/// the console's own paths only, never with a request another site starts.
pub(super) fn session_cookie(token: &str, max_age: u64, https: bool) -> String {
    let secure = if https { "; Secure" } else { "" };
    format!(
        "{COOKIE}={token}; Path=/console/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    )
}

/// `DELETE /console/session`: signs out (the cookie is dropped). With an identity provider
/// that offers an `end_session_endpoint`, the answer names it (`{"end_session": url}`) for
/// the shell to go to, ending the provider's session too.
pub(super) async fn sign_out(State(console): State<Console>, headers: HeaderMap) -> Response {
    if let Err(refused) = same_origin(&headers) {
        return refused.into_response();
    }
    let end_session = match &console.oidc {
        Some(oidc) => oidc.end_session(console.client()).await,
        None => None,
    };
    let mut response = match end_session {
        Some(url) => no_store(axum::Json(json!({"end_session": url}))),
        None => StatusCode::NO_CONTENT.into_response(),
    };
    let gone = session_cookie("", 0, console.https());
    if let Ok(gone) = HeaderValue::try_from(gone) {
        response.headers_mut().insert(header::SET_COOKIE, gone);
    }
    response
}

/// `/console/api/{rest}`: the request passed to the gateway's `/api/{rest}` with the
/// session's token; the answer passed back as it came (status, type, body).
pub(super) async fn pass_through(
    State(console): State<Console>,
    Path(rest): Path<String>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = same_origin(&headers) {
        return refused.into_response();
    }
    let Some(token) = session_token(&headers) else {
        return Error::Unauthorized("not signed in to the console".into()).into_response();
    };
    // The platform API's paths only: the token goes nowhere else, not even on this host.
    if !rest.starts_with("v1/") || rest.split('/').any(|part| part == ".." || part == ".") {
        return Error::NotFound(format!("no platform route /api/{rest}")).into_response();
    }
    let mut url = format!("{}/api/{rest}", console.gateway_url);
    if let Some(query) = query {
        url.push('?');
        url.push_str(&query);
    }
    // Decided again on the URL as it will be sent: parsing normalises what the path's
    // decoding left (`%2e%2e` from `%252e%252e`, `\`), and it must still be under /api/v1/.
    let gateway = url::Url::parse(&console.gateway_url);
    let Ok(url) = url::Url::parse(&url) else {
        return Error::NotFound(format!("no platform route /api/{rest}")).into_response();
    };
    let prefix = gateway.map_or_else(
        |_| "/api/v1/".to_owned(),
        |g| format!("{}/api/v1/", g.path().trim_end_matches('/')),
    );
    if !url.path().starts_with(&prefix) || url.path().contains("%2e") || url.path().contains("%2E")
    {
        return Error::NotFound(format!("no platform route /api/{rest}")).into_response();
    }
    let mut request = console
        .client()
        .request(method, url)
        .bearer_auth(token)
        .body(body);
    for name in &PASSED_TO_GATEWAY {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value);
        }
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(e) => {
            return Error::BadGateway(format!("the gateway did not answer: {e}")).into_response();
        }
    };
    let status = answer.status();
    let mut kept = HeaderMap::new();
    for name in &PASSED_BACK {
        if let Some(value) = answer.headers().get(name) {
            kept.insert(name, value.clone());
        }
    }
    let body = match answer.bytes().await {
        Ok(body) => body,
        Err(e) => {
            return Error::BadGateway(format!("the gateway's answer broke off: {e}"))
                .into_response();
        }
    };
    let mut response = (status, kept, body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The session cookie's token, if the request carries one.
fn session_token(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, COOKIE)
}

/// The value of the request's cookie `name`, if it carries a non-empty one.
pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// Refuses a request a browser says comes from another site or an opaque origin (a
/// sandboxed frame): only the console's own pages may use the session. Clients that are not
/// browsers send neither field, and carry no ambient cookie to abuse.
/// Whether the request names this machine by a loopback name (`Host`), as a browser on the
/// developer's machine does; a DNS-rebinding page sends its own name.
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return true; // HTTP/1.0 or a test client: no name to judge; Origin is checked too.
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    matches!(
        name.to_ascii_lowercase().as_str(),
        "127.0.0.1" | "localhost" | "[::1]"
    )
}

fn same_origin(headers: &HeaderMap) -> Result<(), Error> {
    if let Some(site) = headers.get("sec-fetch-site") {
        return if site == "same-origin" {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "the console's session is for its own pages only (Sec-Fetch-Site: {})",
                site.to_str().unwrap_or("?")
            )))
        };
    }
    match (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        (None, _) => Ok(()),
        (Some(origin), Some(host))
            if origin.to_str().ok().and_then(|o| {
                o.strip_prefix("http://")
                    .or_else(|| o.strip_prefix("https://"))
            }) == host.to_str().ok() =>
        {
            Ok(())
        }
        (Some(origin), _) => Err(Error::Forbidden(format!(
            "the console's session is for its own pages only (Origin: {})",
            origin.to_str().unwrap_or("?")
        ))),
    }
}

/// A user as the shell shows them.
fn describe(user: &User) -> Value {
    json!({
        "id": user.id.to_string(),
        "tenant": user.tenant.as_ref().map(ToString::to_string),
        "company": user.company.as_ref().map(ToString::to_string),
        "companies": user.companies.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "platform_admin": user.roles.contains(&plinth_registry::identity::PlatformRole::PlatformAdmin),
        "tenant_admin": user.roles.contains(&plinth_registry::identity::PlatformRole::TenantAdmin),
    })
}

fn no_store(body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
