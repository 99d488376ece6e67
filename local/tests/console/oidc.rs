//! Sign-in through an identity provider (OIDC authorization code with PKCE), over HTTP with
//! the test provider of `provider.rs`: each step's redirect followed by hand, cookies kept by
//! hand, so that every URL, cookie and body can be checked for the token.

use serde_json::{Value, json};

use crate::provider::Provider;
use crate::support::{Platform, client};

/// Every `name=value` the response sets, with its attributes.
fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The value the response sets for cookie `name` (`""` when it clears it).
fn cookie_set(response: &reqwest::Response, name: &str) -> Option<String> {
    set_cookies(response).into_iter().find_map(|cookie| {
        let pair = cookie.split(';').next().unwrap().to_owned();
        pair.strip_prefix(&format!("{name}=")).map(str::to_owned)
    })
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// A sign-in started at the console and answered by the provider: the login cookie the
/// console set, and the callback URL the provider sends the browser to.
struct Started {
    login_cookie: String,
    callback: url::Url,
}

async fn start_sign_in(platform: &Platform) -> Started {
    let login = client()
        .get(format!("{}/console/oidc/login", platform.url))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 302, "{:?}", login.text().await);
    let value = cookie_set(&login, "plinth_oidc_login").expect("a login cookie");
    let to_provider = location(&login);
    let at_provider = client().get(&to_provider).send().await.unwrap();
    assert_eq!(at_provider.status(), 302, "{:?}", at_provider.text().await);
    Started {
        login_cookie: format!("plinth_oidc_login={value}"),
        callback: url::Url::parse(&location(&at_provider)).unwrap(),
    }
}

async fn call_back(callback: &url::Url, login_cookie: Option<&str>) -> reqwest::Response {
    let mut request = client().get(callback.as_str());
    if let Some(cookie) = login_cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.unwrap()
}

/// The callback `url` with its query parameter `name` set to `value`.
fn with_param(url: &url::Url, name: &str, value: &str) -> url::Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(n, _)| n != name)
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    let mut changed = url.clone();
    changed
        .query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair(name, value);
    changed
}

/// A refused callback: a 400 page saying `why`, no session cookie, the login cookie spent.
async fn assert_refused(response: reqwest::Response, why: &str) {
    assert_eq!(response.status(), 400);
    let session = cookie_set(&response, "plinth_console");
    assert!(session.is_none(), "a session was set: {session:?}");
    assert_eq!(
        cookie_set(&response, "plinth_oidc_login").as_deref(),
        Some("")
    );
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let page = response.text().await.unwrap();
    assert!(page.contains("Sign-in failed"), "{page}");
    assert!(page.contains(why), "{why:?} not in {page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_through_the_provider_with_pkce_sets_a_session_and_no_token_reaches_the_page() {
    let provider = Provider::start().await;
    let platform = Platform::start_with(provider.identity()).await;
    let url = &platform.url;

    // The shell is told where the provider's sign-in starts; the development sign-in is off.
    let offered: Value = client()
        .get(format!("{url}/console/session"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(offered["oidc"]["login"], "/console/oidc/login");
    assert_eq!(offered["development_users"], json!([]));
    let development = client()
        .post(format!("{url}/console/session"))
        .json(&json!({"user": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(development.status(), 403);
    assert!(
        development
            .text()
            .await
            .unwrap()
            .contains("PLINTH_CONSOLE_DEVELOPMENT_SIGN_IN=on")
    );

    let login = client()
        .get(format!("{url}/console/oidc/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 302);
    let to_provider = url::Url::parse(&location(&login)).unwrap();
    assert_eq!(
        to_provider.as_str().split('?').next().unwrap(),
        format!("{}/authorize", provider.issuer())
    );
    let asked: std::collections::HashMap<String, String> =
        to_provider.query_pairs().into_owned().collect();
    assert_eq!(asked["code_challenge_method"], "S256");
    assert_eq!(asked["code_challenge"].len(), 43, "{asked:?}");
    assert_eq!(asked["response_type"], "code");
    assert_eq!(
        asked["redirect_uri"],
        format!("{url}/console/oidc/callback")
    );
    assert!(asked["scope"].split(' ').any(|s| s == "openid"));
    assert!(asked["state"].len() >= 16 && asked["nonce"].len() >= 16);
    assert!(!asked.contains_key("code_verifier"));
    let login_cookie = set_cookies(&login)
        .into_iter()
        .find(|c| c.starts_with("plinth_oidc_login="))
        .unwrap();
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/console/oidc/",
        "Max-Age=600",
    ] {
        assert!(login_cookie.contains(attribute), "{login_cookie}");
    }
    let login_cookie = login_cookie.split(';').next().unwrap().to_owned();

    let at_provider = client().get(to_provider.as_str()).send().await.unwrap();
    let callback = url::Url::parse(&location(&at_provider)).unwrap();
    let names: Vec<String> = callback
        .query_pairs()
        .map(|(n, _)| n.into_owned())
        .collect();
    assert_eq!(
        names,
        ["code", "state"],
        "only a code comes back in the URL"
    );

    let signed_in = call_back(&callback, Some(&login_cookie)).await;
    assert_eq!(signed_in.status(), 302);
    assert_eq!(location(&signed_in), "/");
    let session = set_cookies(&signed_in)
        .into_iter()
        .find(|c| c.starts_with("plinth_console="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console/"] {
        assert!(session.contains(attribute), "{session}");
    }
    let token = session
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("plinth_console=")
        .to_owned();
    assert_eq!(token.split('.').count(), 3, "the ID token: {token}");
    assert_eq!(
        cookie_set(&signed_in, "plinth_oidc_login").as_deref(),
        Some(""),
        "the login cookie is spent"
    );
    assert!(!location(&signed_in).contains(&token));
    assert!(!signed_in.text().await.unwrap().contains(&token));

    // The shell sees the user, never the token; the console's calls go as them.
    let cookie = format!("plinth_console={token}");
    let who = client()
        .get(format!("{url}/console/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!who.contains(&token), "{who}");
    let who: Value = serde_json::from_str(&who).unwrap();
    assert_eq!(who["user"]["id"], "alice");
    assert_eq!(who["user"]["tenant"], "acme");
    assert_eq!(who["user"]["companies"], json!(["acme-de", "acme-us"]));
    let page = client().get(format!("{url}/")).send().await.unwrap();
    assert!(!page.text().await.unwrap().contains(&token));
    let as_alice = client()
        .get(format!("{url}/console/api/v1/tenants/acme/modules"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let (status, body) = (as_alice.status(), as_alice.text().await.unwrap());
    assert!(status != 401 && status != 403, "{status}: {body}");
    assert!(!body.contains(&token));

    // The same callback again (its login cookie kept by hand): the code is spent.
    let replayed = call_back(&callback, Some(&login_cookie)).await;
    assert_refused(
        replayed,
        "invalid_grant (the code is unknown or already used)",
    )
    .await;

    // Sign-out drops the cookie and names the provider's end of session, not the token.
    let out = client()
        .delete(format!("{url}/console/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(cookie_set(&out, "plinth_console").as_deref(), Some(""));
    let out: Value = out.json().await.unwrap();
    let end = out["end_session"].as_str().unwrap();
    assert!(
        end.starts_with(&format!(
            "{}/logout?client_id=plinth-console&post_logout_redirect_uri=",
            provider.issuer()
        )),
        "{end}"
    );
    assert!(!end.contains(&token));
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_with_a_forged_state_is_refused_and_sets_no_session() {
    let provider = Provider::start().await;
    let platform = Platform::start_with(provider.identity()).await;
    let started = start_sign_in(&platform).await;
    let forged = with_param(&started.callback, "state", "forged-by-another-site");
    assert_refused(
        call_back(&forged, Some(&started.login_cookie)).await,
        "is not the one this sign-in sent",
    )
    .await;
    // A callback with the right state but no login cookie (started in another browser).
    let started = start_sign_in(&platform).await;
    assert_refused(
        call_back(&started.callback, None).await,
        "This sign-in was not started here or has expired",
    )
    .await;
    // A login cookie of the console's shape but not signed by it.
    let tampered = format!("{}x", started.login_cookie);
    assert_refused(
        call_back(&started.callback, Some(&tampered)).await,
        "no valid login cookie",
    )
    .await;
    // No state at all.
    let mut stateless = started.callback.clone();
    let code: Vec<(String, String)> = started
        .callback
        .query_pairs()
        .filter(|(n, _)| n == "code")
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    stateless.query_pairs_mut().clear().extend_pairs(code);
    assert_refused(
        call_back(&stateless, Some(&started.login_cookie)).await,
        "The callback has no `state`",
    )
    .await;
    assert!(provider.refusals().is_empty(), "no code was even exchanged");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_exchanged_without_the_right_verifier_is_refused() {
    let provider = Provider::start().await;
    let platform = Platform::start_with(provider.identity()).await;
    // The victim's code, intercepted on its way back...
    let victim = start_sign_in(&platform).await;
    let code = victim
        .callback
        .query_pairs()
        .find(|(n, _)| n == "code")
        .unwrap()
        .1
        .into_owned();
    // ...and presented in the attacker's own sign-in (its state, its cookie, its verifier).
    let attacker = start_sign_in(&platform).await;
    let presented = with_param(&attacker.callback, "code", &code);
    assert_refused(
        call_back(&presented, Some(&attacker.login_cookie)).await,
        "The identity provider refused the code: invalid_grant (PKCE verification failed)",
    )
    .await;
    assert_eq!(
        provider.refusals(),
        ["invalid_grant: PKCE verification failed"]
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_with_another_nonce_is_refused() {
    let provider = Provider::start().await;
    let platform = Platform::start_with(provider.identity()).await;
    provider.sign_with_nonce("the-nonce-of-another-sign-in");
    let started = start_sign_in(&platform).await;
    assert_refused(
        call_back(&started.callback, Some(&started.login_cookie)).await,
        "its `nonce` is not the one this sign-in sent",
    )
    .await;
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_error_is_shown_and_sets_no_session() {
    let provider = Provider::start().await;
    let platform = Platform::start_with(provider.identity()).await;
    provider.deny_next();
    let started = start_sign_in(&platform).await;
    assert_refused(
        call_back(&started.callback, Some(&started.login_cookie)).await,
        "The identity provider did not sign you in: access_denied (The user declined).",
    )
    .await;
    // What a page shows of the provider's words is text, never markup.
    let hostile = with_param(
        &started.callback,
        "error_description",
        "<script>alert(1)</script>",
    );
    let page = call_back(&hostile, Some(&started.login_cookie)).await;
    let page = page.text().await.unwrap();
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script>"), "{page}");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_link_not_from_this_browser_s_sign_in_shows_none_of_its_words() {
    let provider = Provider::start().await;
    let platform = Platform::start_with(provider.identity()).await;
    let started = start_sign_in(&platform).await;
    let lure = "Your account is locked: call 0800 555 0100";
    let mut crafted = url::Url::parse(&format!("{}/console/oidc/callback", platform.url)).unwrap();
    crafted
        .query_pairs_mut()
        .append_pair("error", "access_denied")
        .append_pair("error_description", lure);
    // Sent to a victim: no login cookie in their browser, no state of theirs.
    let response = call_back(&crafted, None).await;
    let page = response.text().await.unwrap();
    assert!(page.contains("was not started here"), "{page}");
    assert!(!page.contains("0800"), "{page}");
    // Opened in a browser with a sign-in under way: the state is not that sign-in's.
    let with_state = with_param(&crafted, "state", "guessed");
    let response = call_back(&with_state, Some(&started.login_cookie)).await;
    let page = response.text().await.unwrap();
    assert!(page.contains("is not the one this sign-in sent"), "{page}");
    assert!(!page.contains("0800"), "{page}");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_development_sign_in_stays_beside_the_provider_only_when_a_setting_says_so() {
    let provider = Provider::start().await;
    let mut identity = provider.identity();
    identity.console.as_mut().unwrap().development_sign_in = true;
    let platform = Platform::start_with(identity).await;
    let url = &platform.url;
    let offered: Value = client()
        .get(format!("{url}/console/session"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(offered["oidc"]["login"], "/console/oidc/login");
    assert_eq!(offered["development_users"][0]["id"], "alice");
    let signed_in = client()
        .post(format!("{url}/console/session"))
        .json(&json!({"user": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200);
    assert!(cookie_set(&signed_in, "plinth_console").is_some_and(|t| !t.is_empty()));
    platform.stop().await;
}
