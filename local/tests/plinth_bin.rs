//! Runs the built `plinth` binary. Besides checking it starts, this test makes
//! `cargo test --workspace` build `target/debug/plinth`, which `plinth-tests` drives.

use std::process::Command;

fn plinth(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args(args)
        .output()
        .expect("the plinth binary runs")
}

#[test]
fn help_lists_the_subcommands() {
    let output = plinth(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("up") && help.contains("manifest"), "{help}");
}

#[test]
fn up_refuses_a_busy_port_with_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let data = tempfile::tempdir().unwrap();
    let output = plinth(&[
        "up",
        "--port",
        &port,
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "error: port {port} is busy: stop what uses it, or pick another with --port"
        )),
        "{stderr}"
    );
}

#[test]
fn up_refuses_a_data_dir_it_cannot_use() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let output = plinth(&[
        "up",
        "--port",
        "0",
        "--data-dir",
        file.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot use the data directory"), "{stderr}");
}

#[test]
fn a_bad_argument_exits_2() {
    let output = plinth(&["manifest", "validate"]);
    assert_eq!(output.status.code(), Some(2));
}

/// `plinth up` with an identity provider: the provider's tokens (keys from its JWKS, claims
/// mapped) and `plinth token`'s own work side by side; a token for another audience does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_accepts_an_identity_providers_tokens_beside_its_own() {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
    use serde_json::{Value, json};

    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let key = EncodingKey::from_ec_der(pkcs8.as_ref());
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some("idp-1".into());
    let jwks = json!({ "keys": [jwk] });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let idp = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || async move { axum::Json(jwks) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let port = {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        free.local_addr().unwrap().port()
    };
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap().to_owned();
    let start = |audience: &str| {
        Command::new(env!("CARGO_BIN_EXE_plinth"))
            .args(["up", "--port", &port.to_string(), "--data-dir", &data_dir])
            .env("PLINTH_JWKS_URL", format!("{idp}/jwks.json"))
            .env("PLINTH_JWT_ISSUER", &idp)
            .env("PLINTH_JWT_AUDIENCE", audience)
            .env("PLINTH_JWT_CLAIMS", "tenant_id=custom:tenant,roles=groups")
            .env_remove("PLINTH_JWT_SECRET")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("plinth up starts")
    };
    // Without an audience, a provider's token for any of its applications would pass: refused.
    let refused = start("").wait_with_output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("PLINTH_JWT_AUDIENCE is required"),
        "{stderr}"
    );

    let mut up = start("plinth-console");
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while client.get(format!("{url}/health")).send().await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "plinth up did not answer"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let sign = |claims: Value| {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("idp-1".into());
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    let provider_token = |tenant: &str, groups: &[&str], audience: &str| {
        sign(
            json!({"sub": "u-1", "iss": idp, "aud": audience, "exp": now + 300,
                    "custom:tenant": tenant, "groups": groups}),
        )
    };
    let call = |method: reqwest::Method, path: &str, token: &str, body: Option<Value>| {
        let mut request = client
            .request(method, format!("{url}{path}"))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let answer = request.send().await.unwrap();
            let status = answer.status().as_u16();
            (status, answer.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let admin = provider_token("", &["platform:admin"], "plinth-console");
    let tenant = json!({"id": "acme", "name": "Acme", "subscription_tier": "basic"});
    let (status, body) = call(
        reqwest::Method::POST,
        "/api/v1/tenants",
        &admin,
        Some(tenant),
    )
    .await;
    assert_eq!(
        status, 201,
        "the provider's platform admin creates a tenant: {body}"
    );
    let acme_admin = provider_token("acme", &["tenant:admin"], "plinth-console");
    let (status, body) = call(
        reqwest::Method::GET,
        "/api/v1/tenants/acme",
        &acme_admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let globex_admin = provider_token("globex", &["tenant:admin"], "plinth-console");
    let (status, _) = call(
        reqwest::Method::GET,
        "/api/v1/tenants/acme",
        &globex_admin,
        None,
    )
    .await;
    assert_eq!(status, 403, "another tenant's admin");
    let elsewhere = provider_token("acme", &["tenant:admin"], "another-app");
    let (status, body) = call(
        reqwest::Method::GET,
        "/api/v1/tenants/acme",
        &elsewhere,
        None,
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("audience"),
        "{body}"
    );
    // `plinth token` signs with the data dir's secret: still accepted on one machine.
    let minted = plinth(&[
        "token",
        "--data-dir",
        &data_dir,
        "--tenant",
        "acme",
        "--roles",
        "tenant:admin",
    ]);
    assert!(
        minted.status.success(),
        "{}",
        String::from_utf8_lossy(&minted.stderr)
    );
    let own = String::from_utf8_lossy(&minted.stdout).trim().to_owned();
    let (status, body) = call(reqwest::Method::GET, "/api/v1/tenants/acme", &own, None).await;
    assert_eq!(status, 200, "{body}");
    up.kill().unwrap();
    up.wait().unwrap();
}
