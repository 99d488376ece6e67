//! The console's HTTP surface, without a browser.

use serde_json::{Value, json};

use crate::support::{Platform, client, cookie_of};

/// The shell's page and the version its files are served under.
async fn page(url: &str) -> (reqwest::Response, String) {
    let response = client().get(format!("{url}/")).send().await.unwrap();
    let version = {
        let text = response.text().await.unwrap();
        let at = text.find("/console/").expect("the page names its files") + "/console/".len();
        text[at..at + 16].to_owned()
    };
    let again = client().get(format!("{url}/")).send().await.unwrap();
    (again, version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shell_is_served_at_the_root_with_a_policy_allowing_only_its_own_scripts() {
    let platform = Platform::start().await;
    let (response, _) = page(&platform.url).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self';"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(!policy.contains("unsafe"), "{policy}");
    let html = response.text().await.unwrap();
    // Every script is a file: none inline.
    for script in html.split("<script").skip(1) {
        let tag = &script[..script.find('>').unwrap()];
        assert!(tag.contains("src=\"/console/"), "an inline script: {tag}");
    }
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shells_files_are_cached_for_a_year_under_their_hash_and_another_hash_is_gone() {
    let platform = Platform::start().await;
    let (_, version) = page(&platform.url).await;
    for (file, kind) in [
        ("shell.js", "text/javascript; charset=utf-8"),
        ("api.js", "text/javascript; charset=utf-8"),
        ("loader.js", "text/javascript; charset=utf-8"),
        ("shell.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let url = format!("{}/console/{version}/{file}", platform.url);
        let response = client().get(url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{file}");
        assert_eq!(response.headers()["content-type"], kind, "{file}");
        assert_eq!(
            response.headers()["cache-control"],
            "public, max-age=31536000, immutable",
            "{file}"
        );
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }
    let stale = format!("{}/console/0000000000000000/shell.js", platform.url);
    let response = client().get(stale).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["cache-control"], "no-store");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_api_and_module_routes_answer_as_before_beside_the_console() {
    let platform = Platform::start().await;
    let url = &platform.url;
    let health = client().get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // A module route is still the gateway's: no token, no entry.
    let module = client()
        .get(format!("{url}/api/v1/financial/invoices"))
        .send()
        .await
        .unwrap();
    assert_eq!(module.status(), 401);
    assert_eq!(module.headers()["content-type"], "application/problem+json");
    // A path nobody takes is still the platform's 404 problem.
    let nothing = client()
        .get(format!("{url}/no-such-page"))
        .send()
        .await
        .unwrap();
    assert_eq!(nothing.status(), 404);
    assert_eq!(
        nothing.headers()["content-type"],
        "application/problem+json"
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_keeps_the_token_in_an_httponly_strict_cookie_never_in_the_answer() {
    let platform = Platform::start().await;
    let url = &platform.url;
    let offered: Value = client()
        .get(format!("{url}/console/session"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(offered["user"], Value::Null);
    let ids: Vec<&str> = offered["development_users"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["id"].as_str())
        .collect();
    assert_eq!(ids, ["alice", "operator"]);

    let response = client()
        .post(format!("{url}/console/session"))
        .json(&json!({"user": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let set = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console/"] {
        assert!(set.contains(attribute), "{set}");
    }
    let cookie = cookie_of(&response);
    let token = cookie.split_once('=').unwrap().1.to_owned();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body = response.text().await.unwrap();
    assert!(
        !body.contains(&token),
        "the answer carries the token: {body}"
    );
    let signed_in: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(signed_in["user"]["id"], "alice");
    assert_eq!(signed_in["user"]["tenant"], "acme");
    assert_eq!(signed_in["user"]["company"], "acme-de");

    // The cookie is the session: the console knows who it is, and signing out ends it.
    let session: Value = client()
        .get(format!("{url}/console/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(session["user"]["id"], "alice");
    let out = client()
        .delete(format!("{url}/console/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_api_calls_platform_api_paths_only_and_as_the_signed_in_user_only() {
    let platform = Platform::start().await;
    let url = &platform.url;
    let signed_out = client()
        .get(format!("{url}/console/api/v1/tenants"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), 401);
    let problem: Value = signed_out.json().await.unwrap();
    assert_eq!(problem["detail"], "not signed in to the console");

    let operator = client()
        .post(format!("{url}/console/session"))
        .json(&json!({"user": "operator"}))
        .send()
        .await
        .unwrap();
    let cookie = cookie_of(&operator);
    let created = client()
        .post(format!("{url}/console/api/v1/tenants"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin")
        .json(&json!({"id": "globex", "name": "Globex", "subscription_tier": "basic"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{:?}", created.text().await);
    let tenants: Value = client()
        .get(format!("{url}/console/api/v1/tenants"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = tenants
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids, ["globex"]);

    // The token goes to the platform API's paths only, however the path is spelled.
    let address = platform.url.trim_start_matches("http://");
    for elsewhere in [
        "/console/api/..%2F..%2Fconsole%2Fsession",
        "/console/api/v1%2F..%2F..%2Fhealth",
        "/console/api/openapi.json",
    ] {
        let status = raw_get_with(address, elsewhere, &cookie).await;
        assert_eq!(status, "404", "{elsewhere}");
    }
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_site_or_a_sandboxed_frame_cannot_use_the_console_session() {
    let platform = Platform::start().await;
    let url = &platform.url;
    let operator = client()
        .post(format!("{url}/console/session"))
        .json(&json!({"user": "operator"}))
        .send()
        .await
        .unwrap();
    let cookie = cookie_of(&operator);
    let tenant = json!({"id": "evil", "name": "Evil", "subscription_tier": "basic"});
    for (field, value) in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "http://evil.example"),
        // A sandboxed frame's requests come from an opaque origin.
        ("origin", "null"),
    ] {
        let refused = client()
            .post(format!("{url}/console/api/v1/tenants"))
            .header("cookie", &cookie)
            .header(field, value)
            .json(&tenant)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 403, "{field}: {value}");
        let problem: Value = refused.json().await.unwrap();
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("its own pages only"), "{detail}");
        let sign_in = client()
            .post(format!("{url}/console/session"))
            .header(field, value)
            .json(&json!({"user": "operator"}))
            .send()
            .await
            .unwrap();
        assert_eq!(sign_in.status(), 403, "sign-in with {field}: {value}");
    }
    let tenants: Value = client()
        .get(format!("{url}/console/api/v1/tenants"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tenants, json!([]), "nothing was created");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_as_someone_the_development_sign_in_does_not_offer_is_refused_naming_the_field()
{
    let platform = Platform::start().await;
    let response = client()
        .post(format!("{}/console/session", platform.url))
        .json(&json!({"user": "mallory"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("set-cookie").is_none());
    let problem: Value = response.json().await.unwrap();
    assert_eq!(
        problem["detail"],
        "user: \"mallory\" is not a development user (offered: alice, operator)"
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_bundle_is_served_its_frames_sandboxed_and_nothing_outside_it() {
    let platform = Platform::start().await;
    let module = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(module.path().join("ui/pages")).unwrap();
    std::fs::write(module.path().join("ui/module.js"), "export default {};").unwrap();
    std::fs::write(module.path().join("ui/pages/frame.html"), "<p>hi</p>").unwrap();
    std::fs::write(platform.data.path().join("secret.txt"), "no").unwrap();
    let manifest = json!({"name": "ledger", "version": "1.0.0", "frontend": {"type": "spa-module", "bundle": "ui"}});
    plinth_local::console::stage_bundle(platform.data.path(), module.path(), &manifest).unwrap();

    let base = format!("{}/console/bundles/ledger/1.0.0", platform.url);
    let script = client()
        .get(format!("{base}/module.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(script.headers()["x-content-type-options"], "nosniff");
    assert_eq!(script.text().await.unwrap(), "export default {};");

    let frame = client()
        .get(format!("{base}/pages/frame.html"))
        .send()
        .await
        .unwrap();
    assert_eq!(frame.status(), 200);
    let policy = frame.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.starts_with("sandbox allow-scripts"), "{policy}");
    assert!(policy.contains("connect-src 'none'"), "{policy}");

    // Sent as written (a URL parser would resolve the dots before they left).
    let address = platform.url.trim_start_matches("http://");
    for outside in [
        "../../../secret.txt",
        "..%2F..%2F..%2Fsecret.txt",
        "pages/..%2F..%2F..%2F..%2Fsecret.txt",
        ".hidden",
    ] {
        let status = raw_get(address, &format!("/console/bundles/ledger/1.0.0/{outside}")).await;
        assert_eq!(status, "404", "{outside}");
    }
    let other_version = client()
        .get(format!(
            "{}/console/bundles/ledger/2.0.0/module.js",
            platform.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(other_version.status(), 404);
    assert_eq!(
        other_version.text().await.unwrap(),
        "ledger 2.0.0 ships no frontend file module.js"
    );
    platform.stop().await;
}

/// The status of a `GET` of `path` sent byte for byte.
async fn raw_get(address: &str, path: &str) -> String {
    raw_get_with(address, path, "").await
}

/// The status of a `GET` of `path` sent byte for byte, with `cookie` (when not empty).
async fn raw_get_with(address: &str, path: &str, cookie: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let cookie = if cookie.is_empty() {
        String::new()
    } else {
        format!("Cookie: {cookie}\r\n")
    };
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {address}\r\n{cookie}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer)
        .split(' ')
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}
