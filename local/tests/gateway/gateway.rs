//! The gateway: identity, enablement, route permissions, rate limits, routing and the tenant
//! context a module backend receives.

use axum::http::{Method, StatusCode};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use crate::served::ServedGateway;
use crate::support::api::{Auth, TestPlatform, operator, tenant_admin, token};
use crate::support::fakes::Backend;

crate::on_both_stores!(
    the_backend_receives_a_verifiable_context_and_no_forged_headers,
    route_permissions_come_from_roles,
    a_warm_request_follows_role_and_enablement_changes,
    a_tenant_without_the_module_gets_404,
    api_keys_are_issued_rotated_and_revoked,
    a_module_without_a_healthy_instance_answers_503,
    platform_paths_are_answered_by_the_platform_never_by_a_module,
    a_role_naming_what_is_not_installed_is_refused_with_the_closest_name,
    one_token_acts_in_the_company_each_request_picks,
    a_module_calls_another_through_the_gateway_only_as_declared,
);

// The same scenarios over TCP, through the relay that serves module routes in `plinth up`.
crate::served_too!(
    the_backend_receives_a_verifiable_context_and_no_forged_headers,
    route_permissions_come_from_roles,
    a_warm_request_follows_role_and_enablement_changes,
    a_tenant_without_the_module_gets_404,
    api_keys_are_issued_rotated_and_revoked,
    a_module_without_a_healthy_instance_answers_503,
    a_burst_over_the_tier_limit_gets_429_with_retry_after,
    platform_paths_are_answered_by_the_platform_never_by_a_module,
    one_token_acts_in_the_company_each_request_picks,
    a_module_calls_another_through_the_gateway_only_as_declared,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_the_tier_limit_gets_429_in_process() {
    a_burst_over_the_tier_limit_gets_429_with_retry_after(TestPlatform::gateway()).await;
}

fn financial(tier: &str) -> Value {
    json!({
        "name": "financial", "display_name": "Financial", "version": "1.0.0",
        "backend": {"type": "microservice", "api_prefix": "/api/v1/financial", "health_check": "/health"},
        "subscription_tier": tier,
        "permissions": ["financial:invoices.read", "financial:invoices.write", "financial:reports.read"],
        "routes": [
            {"path": "/invoices", "methods": ["GET"], "permission": "financial:invoices.read"},
            {"path": "/invoices", "methods": ["POST"], "permission": "financial:invoices.write"},
            {"path": "/invoices/{id}", "methods": ["GET"], "permission": "financial:invoices.read"},
            {"path": "/status", "methods": ["GET"]}
        ]
    })
}

/// financial installed on a fake backend, enabled for acme (and its company acme-de).
async fn setup(p: &TestPlatform, tier: &str) -> Backend {
    let backend = Backend::default();
    let url = backend.start().await;
    install_financial(p, tier, &url).await;
    backend
}

/// financial installed with its backend at `url`, enabled for acme (and its company acme-de).
async fn install_financial(p: &TestPlatform, tier: &str, url: &str) {
    p.call(
        Method::POST,
        "/api/v1/modules",
        operator(),
        Some(financial(tier)),
    )
    .await
    .expect(StatusCode::CREATED);
    let body = json!({"version": "1.0.0", "endpoint": url});
    p.call(
        Method::POST,
        "/api/v1/modules/financial/install",
        operator(),
        Some(body),
    )
    .await
    .expect(StatusCode::ACCEPTED);
    assert_eq!(p.settled("financial").await["status"], "installed");
    for tenant in ["acme", "globex"] {
        let body = json!({"id": tenant, "name": tenant, "subscription_tier": tier});
        p.call(Method::POST, "/api/v1/tenants", operator(), Some(body))
            .await
            .expect(StatusCode::CREATED);
    }
    let company = json!({"id": "acme-de", "name": "ACME GmbH"});
    p.call(
        Method::POST,
        "/api/v1/tenants/acme/companies",
        tenant_admin("acme"),
        Some(company),
    )
    .await
    .expect(StatusCode::CREATED);
    p.enable("acme", "financial").await;
}

async fn grant(p: &TestPlatform, user: &str, permissions: &[&str]) {
    let role = json!({"permissions": permissions});
    p.call(
        Method::PUT,
        "/api/v1/tenants/acme/roles/clerk",
        tenant_admin("acme"),
        Some(role),
    )
    .await
    .expect(StatusCode::OK);
    let assignment = json!({"roles": ["clerk"]});
    let path = format!("/api/v1/tenants/acme/users/{user}/roles");
    p.call(Method::PUT, &path, tenant_admin("acme"), Some(assignment))
        .await
        .expect(StatusCode::OK);
}

async fn the_backend_receives_a_verifiable_context_and_no_forged_headers(p: TestPlatform) {
    setup(&p, "free").await;
    grant(&p, "alice", &["financial:invoices.*"]).await;
    let alice = token("alice", Some("acme"), Some("acme-de"), &[]);
    let Auth::Token(bearer) = alice.clone() else {
        unreachable!()
    };
    let request = axum::http::Request::builder()
        .method("GET")
        .uri("/api/v1/financial/invoices/42?expand=lines")
        .header("authorization", format!("Bearer {bearer}"))
        .header("x-plinth-context", "forged")
        .header("x-plinth-tenant", "globex")
        .header("x-custom", "kept")
        .body(axum::body::Body::empty())
        .unwrap();
    let seen = p.raw(request).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
    let seen = seen.body;
    assert_eq!(
        (seen["method"].as_str(), seen["path"].as_str()),
        (Some("GET"), Some("/api/v1/financial/invoices/42"))
    );
    assert_eq!(seen["query"], "expand=lines");
    assert_eq!(seen["custom"], "kept");
    assert_eq!(
        seen["authorization"],
        Value::Null,
        "the caller's token stays at the gateway"
    );
    assert_eq!(
        seen["plinth_headers"],
        json!(["x-plinth-context"]),
        "only the gateway's own"
    );
    let context = seen["context"].as_str().unwrap();
    assert_ne!(context, "forged");

    let jwks = p
        .call(Method::GET, "/.well-known/jwks.json", Auth::None, None)
        .await;
    let jwks: JwkSet = serde_json::from_value(jwks.expect(StatusCode::OK).clone()).unwrap();
    let header = jsonwebtoken::decode_header(context).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the context's key is published");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&["financial"]);
    validation.set_issuer(&["plinth"]);
    let claims =
        jsonwebtoken::decode::<Value>(context, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .unwrap()
            .claims;
    assert_eq!(
        (
            claims["sub"].as_str(),
            claims["tenant_id"].as_str(),
            claims["company_id"].as_str()
        ),
        (Some("alice"), Some("acme"), Some("acme-de"))
    );
    assert_eq!(
        claims["permissions"],
        json!(["financial:invoices.read", "financial:invoices.write"])
    );
    assert!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap() <= 60);
}

async fn route_permissions_come_from_roles(p: TestPlatform) {
    setup(&p, "free").await;
    let bob = token("bob", Some("acme"), None, &[]);
    let refused = p
        .call(Method::GET, "/api/v1/financial/invoices", bob.clone(), None)
        .await;
    refused.expect_problem(
        StatusCode::FORBIDDEN,
        "this needs the permission financial:invoices.read",
    );
    p.call(Method::GET, "/api/v1/financial/status", bob.clone(), None)
        .await
        .expect(StatusCode::OK);
    grant(&p, "bob", &["financial:invoices.read"]).await;
    p.call(Method::GET, "/api/v1/financial/invoices", bob.clone(), None)
        .await
        .expect(StatusCode::OK);
    let write = p
        .call(
            Method::POST,
            "/api/v1/financial/invoices",
            bob.clone(),
            Some(json!({})),
        )
        .await;
    write.expect_problem(StatusCode::FORBIDDEN, "financial:invoices.write");
    p.call(
        Method::POST,
        "/api/v1/financial/invoices",
        tenant_admin("acme"),
        Some(json!({})),
    )
    .await
    .expect(StatusCode::OK);
    let undeclared = p
        .call(
            Method::GET,
            "/api/v1/financial/secrets",
            tenant_admin("acme"),
            None,
        )
        .await;
    undeclared.expect_problem(StatusCode::NOT_FOUND, "financial has no route GET /secrets");
    // Matched as sent, a path a backend would resolve differently is refused outright.
    for (path, why) in [
        (
            "/api/v1/financial/status/../invoices",
            "a `.` or `..` segment",
        ),
        (
            "/api/v1/financial/status/%2E%2E/invoices",
            "a `.` or `..` segment",
        ),
        ("/api/v1/financial/status%2F..%2Finvoices", "an encoded `/`"),
    ] {
        p.call(Method::GET, path, bob.clone(), None)
            .await
            .expect_problem(StatusCode::BAD_REQUEST, why);
    }

    let verify =
        json!({"tenant_id": "acme", "user_id": "bob", "permission": "financial:invoices.read"});
    let answer = p
        .call(
            Method::POST,
            "/api/v1/rbac/verify",
            tenant_admin("acme"),
            Some(verify),
        )
        .await;
    assert_eq!(answer.expect(StatusCode::OK)["has_permission"], true);
    let verify =
        json!({"tenant_id": "acme", "user_id": "bob", "permission": "financial:invoices.write"});
    let answer = p
        .call(
            Method::POST,
            "/api/v1/rbac/verify",
            tenant_admin("acme"),
            Some(verify),
        )
        .await;
    assert_eq!(answer.expect(StatusCode::OK)["has_permission"], false);
    let bad = json!({"permissions": ["financial"]});
    let refused = p
        .call(
            Method::PUT,
            "/api/v1/tenants/acme/roles/broken",
            tenant_admin("acme"),
            Some(bad),
        )
        .await;
    assert_eq!(
        refused.expect(StatusCode::UNPROCESSABLE_ENTITY)["errors"][0]["path"],
        "permissions[0]"
    );
    let unknown_role = json!({"roles": ["ghost"]});
    let refused = p
        .call(
            Method::PUT,
            "/api/v1/tenants/acme/users/bob/roles",
            tenant_admin("acme"),
            Some(unknown_role),
        )
        .await;
    refused.expect(StatusCode::UNPROCESSABLE_ENTITY);
}

/// The gateway reuses what it decided for a token and module; a change of roles or of the
/// tenant's modules must still apply to the very next request.
async fn a_warm_request_follows_role_and_enablement_changes(p: TestPlatform) {
    setup(&p, "free").await;
    grant(&p, "bob", &["financial:invoices.read"]).await;
    let bob = token("bob", Some("acme"), None, &[]);
    for _ in 0..3 {
        p.call(Method::GET, "/api/v1/financial/invoices", bob.clone(), None)
            .await
            .expect(StatusCode::OK);
    }
    p.call(
        Method::PUT,
        "/api/v1/tenants/acme/users/bob/roles",
        tenant_admin("acme"),
        Some(json!({"roles": []})),
    )
    .await
    .expect(StatusCode::OK);
    p.call(Method::GET, "/api/v1/financial/invoices", bob.clone(), None)
        .await
        .expect_problem(
            StatusCode::FORBIDDEN,
            "this needs the permission financial:invoices.read",
        );
    grant(&p, "bob", &["financial:invoices.read"]).await;
    p.call(Method::GET, "/api/v1/financial/invoices", bob.clone(), None)
        .await
        .expect(StatusCode::OK);
    p.call(
        Method::DELETE,
        "/api/v1/tenants/acme/modules/financial",
        tenant_admin("acme"),
        None,
    )
    .await
    .expect(StatusCode::OK);
    p.call(Method::GET, "/api/v1/financial/invoices", bob, None)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "no module financial for your tenant");
}

async fn a_tenant_without_the_module_gets_404(p: TestPlatform) {
    setup(&p, "free").await;
    let outsider = tenant_admin("globex");
    let missing = p
        .call(Method::GET, "/api/v1/financial/invoices", outsider, None)
        .await;
    let body = missing.expect_problem(StatusCode::NOT_FOUND, "no module financial for your tenant");
    assert!(!body["detail"].as_str().unwrap().contains("acme"));
    let unknown = p
        .call(
            Method::GET,
            "/api/v1/warehouse/items",
            tenant_admin("acme"),
            None,
        )
        .await;
    unknown.expect_problem(StatusCode::NOT_FOUND, "no module warehouse for your tenant");
    // Finding 9 of "The first hour": a misspelt module gets the closest of the tenant's own
    // modules; globex, which enabled none, is told of none (nothing of acme's leaks).
    for (path, who, detail) in [
        (
            "/api/v1/financal/invoices",
            tenant_admin("acme"),
            "no module financal for your tenant; did you mean `financial`?",
        ),
        (
            "/api/v1/Financial/invoices",
            tenant_admin("acme"),
            "no module Financial for your tenant; did you mean `financial`?",
        ),
        (
            "/api/v1/financal/invoices",
            tenant_admin("globex"),
            "no module financal for your tenant",
        ),
    ] {
        let answer = p.call(Method::GET, path, who, None).await;
        assert_eq!(answer.body["detail"], detail, "{path}");
    }
    let anonymous = p
        .call(Method::GET, "/api/v1/financial/status", Auth::None, None)
        .await;
    anonymous.expect(StatusCode::UNAUTHORIZED);
    let no_tenant = p
        .call(Method::GET, "/api/v1/financial/status", operator(), None)
        .await;
    no_tenant.expect_problem(StatusCode::FORBIDDEN, "your token names no tenant");
    p.call(
        Method::PUT,
        "/api/v1/tenants/acme/companies/acme-de/modules/financial",
        tenant_admin("acme"),
        Some(json!({"is_enabled": false})),
    )
    .await
    .expect(StatusCode::OK);
    let de_user = token("dora", Some("acme"), Some("acme-de"), &["tenant:admin"]);
    p.call(Method::GET, "/api/v1/financial/status", de_user, None)
        .await
        .expect(StatusCode::NOT_FOUND);
}

async fn api_keys_are_issued_rotated_and_revoked(p: TestPlatform) {
    setup(&p, "free").await;
    let issued = p
        .call(
            Method::POST,
            "/api/v1/modules/financial/api-keys",
            operator(),
            None,
        )
        .await;
    let first = issued.expect(StatusCode::CREATED)["key"]
        .as_str()
        .unwrap()
        .to_string();
    let listed = p
        .call(
            Method::GET,
            "/api/v1/modules/financial/api-keys",
            operator(),
            None,
        )
        .await;
    let listed = listed.expect(StatusCode::OK).to_string();
    assert!(
        !listed.contains(&first),
        "a key is shown once, never listed"
    );
    let config = "/api/v1/tenants/acme/modules/financial/config";
    p.call(Method::GET, config, Auth::ApiKey(first.clone()), None)
        .await
        .expect(StatusCode::OK);

    let rotated = p
        .call(
            Method::POST,
            "/api/v1/modules/financial/api-keys",
            operator(),
            Some(json!({"rotate_after_secs": 0})),
        )
        .await;
    let rotated = rotated.expect(StatusCode::CREATED).clone();
    let second = rotated["key"].as_str().unwrap().to_string();
    p.call(Method::GET, config, Auth::ApiKey(second.clone()), None)
        .await
        .expect(StatusCode::OK);
    let old = p.call(Method::GET, config, Auth::ApiKey(first), None).await;
    old.expect_problem(StatusCode::UNAUTHORIZED, "API key");

    let id = rotated["id"].as_str().unwrap();
    p.call(
        Method::DELETE,
        &format!("/api/v1/modules/financial/api-keys/{id}"),
        operator(),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let revoked = p
        .call(Method::GET, config, Auth::ApiKey(second), None)
        .await;
    revoked.expect_problem(StatusCode::UNAUTHORIZED, "API key");
    let other = p
        .call(
            Method::GET,
            "/api/v1/tenants/acme/modules/other/config",
            Auth::ApiKey("plk_x".into()),
            None,
        )
        .await;
    other.expect(StatusCode::UNAUTHORIZED);
}

async fn a_module_without_a_healthy_instance_answers_503(p: TestPlatform) {
    let manifest = json!({
        "name": "ghost", "display_name": "Ghost", "version": "1.0.0",
        "backend": {"type": "microservice", "api_prefix": "/api/v1/ghost", "health_check": "/health"}
    });
    p.call(Method::POST, "/api/v1/modules", operator(), Some(manifest))
        .await
        .expect(StatusCode::CREATED);
    let dead = "http://127.0.0.1:9"; // discard port: nothing answers
    p.call(
        Method::POST,
        "/api/v1/modules/ghost/install",
        operator(),
        Some(json!({"version": "1.0.0", "endpoint": dead})),
    )
    .await
    .expect(StatusCode::ACCEPTED);
    assert_eq!(p.settled("ghost").await["status"], "installed");
    p.call(
        Method::POST,
        "/api/v1/tenants",
        operator(),
        Some(json!({"id": "acme", "name": "ACME"})),
    )
    .await
    .expect(StatusCode::CREATED);
    p.enable("acme", "ghost").await;
    let unreachable = p
        .call(
            Method::GET,
            "/api/v1/ghost/anything",
            tenant_admin("acme"),
            None,
        )
        .await;
    unreachable.expect_problem(StatusCode::BAD_GATEWAY, "ghost did not answer");
    let changed = p.app.plane.instances.check_health().await.unwrap();
    assert_eq!(changed, 1);
    let down = p
        .call(
            Method::GET,
            "/api/v1/ghost/anything",
            tenant_admin("acme"),
            None,
        )
        .await;
    down.expect_problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "ghost has no healthy instance",
    );
}

async fn a_burst_over_the_tier_limit_gets_429_with_retry_after(p: TestPlatform) {
    setup(&p, "free").await;
    let (limit, burst) = plinth_registry::gateway::rate::quota_of(plinth_module_sdk::Tier::Free);
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..(burst + limit + 10) {
        let answer = p
            .call(
                Method::GET,
                "/api/v1/financial/status",
                tenant_admin("acme"),
                None,
            )
            .await;
        if answer.status == StatusCode::TOO_MANY_REQUESTS && retry_after.is_none() {
            retry_after = answer.retry_after.clone();
            assert!(
                answer.body["detail"]
                    .as_str()
                    .unwrap()
                    .contains("rate limit")
            );
        }
        statuses.push(answer.status);
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert!(ok as u32 >= burst, "the burst passes: {ok}");
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "then 429s"
    );
    assert!(retry_after.is_some_and(|r| r.parse::<u64>().unwrap() >= 1));
    let other = p
        .call(
            Method::GET,
            "/api/v1/tenants/acme/modules/financial/config",
            tenant_admin("acme"),
            None,
        )
        .await;
    other.expect(StatusCode::OK);
}

/// A warm request reads nothing from the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_a_warm_request_makes_no_store_round_trip() {
    let Some((p, store)) =
        TestPlatform::dynamo_counted_with("gateway_hot_path", plinth_local::gateway::router).await
    else {
        return;
    };
    setup(&p, "enterprise").await;
    grant(&p, "alice", &["financial:*"]).await;
    let alice = token("alice", Some("acme"), Some("acme-de"), &[]);
    p.call(
        Method::GET,
        "/api/v1/financial/invoices",
        alice.clone(),
        None,
    )
    .await
    .expect(StatusCode::OK);
    let before = store.round_trips();
    for _ in 0..20 {
        p.call(
            Method::GET,
            "/api/v1/financial/invoices/7",
            alice.clone(),
            None,
        )
        .await
        .expect(StatusCode::OK);
    }
    assert_eq!(store.round_trips() - before, 0);
}

/// A backend that answers every module path with the client port of the connection it came
/// on, so a test can tell connections apart; stops when `stop` fires.
async fn port_echo(
    listener: tokio::net::TcpListener,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> tokio::task::JoinHandle<()> {
    use axum::extract::ConnectInfo;
    let app = axum::Router::new().route(
        "/api/v1/{*rest}",
        axum::routing::any(
            |ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>| async move {
                peer.port().to_string()
            },
        ),
    );
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.await;
            })
            .await
            .unwrap();
    })
}

/// The gateway as `plinth up` serves it, over TCP: the platform API and module routes on one
/// keep-alive connection; the module's backend reached over one connection of its own per
/// client connection, replaced when the backend goes away and comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_gateway_keeps_one_backend_connection_per_client_and_recovers() {
    let p = TestPlatform::gateway();
    let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend_addr = backend.local_addr().unwrap();
    let (stop_backend, stopped) = tokio::sync::oneshot::channel();
    let first_backend = port_echo(backend, stopped).await;
    install_financial(&p, "free", &format!("http://{backend_addr}")).await;

    let served = ServedGateway::start(&p).await;
    let gateway_addr = served.addr.clone();

    let Auth::Token(admin) = tenant_admin("acme") else {
        unreachable!()
    };
    let mut client = OneConnection::open(&gateway_addr, &admin).await;
    assert_eq!(client.get("/health").await.0, 200);
    let mut ports = Vec::new();
    for _ in 0..3 {
        let (status, port) = client.get("/api/v1/financial/status").await;
        assert_eq!(status, 200);
        ports.push(port);
    }
    assert!(
        ports.iter().all(|port| port == &ports[0]),
        "one backend connection for the client's connection: {ports:?}"
    );
    let (status, _) = client.get("/api/v1/tenants/acme").await;
    assert_eq!(status, 200, "the platform API on the same connection");

    stop_backend.send(()).unwrap();
    first_backend.await.unwrap();
    let (status, problem) = client.get("/api/v1/financial/status").await;
    assert_eq!(status, 502);
    let problem: Value = serde_json::from_str(&problem).unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("financial did not answer"),
        "{problem}"
    );

    let backend = tokio::net::TcpListener::bind(backend_addr).await.unwrap();
    let (_stop_backend, stopped) = tokio::sync::oneshot::channel();
    port_echo(backend, stopped).await;
    let (status, port) = client.get("/api/v1/financial/status").await;
    assert_eq!(status, 200, "a new backend connection once it is back");
    assert_ne!(port, ports[0]);

    served.stop().await;
}

/// What the streaming backend sends for `GET /invoices/{n}`: `n` chunks of 32 KiB, each byte
/// its chunk's number, with pauses so the body reaches the gateway over many reads.
fn streamed(chunks: usize) -> Vec<u8> {
    (0..chunks).flat_map(chunk).collect()
}

/// The streaming backend's chunk number `i`.
fn chunk(i: usize) -> Vec<u8> {
    vec![i as u8; 32 * 1024]
}

/// A backend that streams large bodies: `GET /invoices/{n}` as [`streamed`] (chunked, no
/// length), `POST /invoices` echoes the request body as it arrives, `GET /status` answers the
/// client port of its connection; with `X-Refuse`, `POST /invoices` answers 413 at once.
async fn streaming_backend() -> String {
    use axum::extract::{ConnectInfo, Path};
    use axum::response::IntoResponse as _;
    use axum::routing::{get, post};
    use futures::StreamExt as _;
    let app = axum::Router::new()
        .route(
            "/api/v1/financial/invoices/{chunks}",
            get(|Path(chunks): Path<usize>| async move {
                let stream = futures::stream::iter(0..chunks).then(|i| async move {
                    if i % 8 == 0 {
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    }
                    Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(chunk(i)))
                });
                axum::body::Body::from_stream(stream)
            }),
        )
        .route(
            "/api/v1/financial/invoices",
            post(
                |headers: axum::http::HeaderMap, body: axum::body::Body| async move {
                    // Answers before reading a byte of the body, as a backend refusing it does.
                    if headers.contains_key("x-refuse") {
                        return (StatusCode::PAYLOAD_TOO_LARGE, "too large").into_response();
                    }
                    body.into_response()
                },
            ),
        )
        .route(
            "/api/v1/financial/status",
            get(
                |ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>| async move {
                    peer.port().to_string()
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// Bodies larger than any buffer stream through the served gateway both ways, the backend
/// connection serving the next request once they are done; a client that hangs up halfway
/// through a response leaves the gateway serving everyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_gateway_streams_large_bodies_both_ways() {
    // A body the gateway stops relaying would hang the test rather than fail it.
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        use http_body_util::BodyExt as _;
        let p = TestPlatform::gateway();
        install_financial(&p, "free", &streaming_backend().await).await;
        let served = ServedGateway::start(&p).await;
        let gateway_addr = served.addr.clone();
        let Auth::Token(admin) = tenant_admin("acme") else {
            unreachable!()
        };

        let mut client = OneConnection::open(&gateway_addr, &admin).await;
        let (status, port) = client.get("/api/v1/financial/status").await;
        assert_eq!(status, 200);
        let (status, body) = client
            .send(Method::GET, "/api/v1/financial/invoices/64", Vec::new())
            .await;
        assert_eq!(status, 200);
        assert_eq!(body.len(), 2 * 1024 * 1024);
        assert!(
            body == streamed(64),
            "the 2 MiB response arrives whole and in order"
        );
        assert_eq!(
            client.get("/api/v1/financial/status").await,
            (200, port.clone()),
            "the same backend connection once the streamed response is done"
        );
        let upload: Vec<u8> = (0..1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
        let (status, echoed) = client
            .send(Method::POST, "/api/v1/financial/invoices", upload.clone())
            .await;
        assert_eq!(status, 200);
        assert!(
            echoed == upload,
            "the 1 MiB request body reaches the backend whole"
        );
        assert_eq!(
            client.get("/api/v1/financial/status").await,
            (200, port.clone()),
            "the backend connection serves on once the upload and its echo are done"
        );

        // A backend that answers before reading the upload: the client gets the answer, and
        // its connection then either takes the next request or closes — it does not hang.
        let mut uploader = OneConnection::open(&gateway_addr, &admin).await;
        let mut request = uploader.request(
            Method::POST,
            "/api/v1/financial/invoices",
            vec![7u8; 4 * 1024 * 1024],
        );
        request
            .headers_mut()
            .insert("x-refuse", axum::http::HeaderValue::from_static("1"));
        uploader.sender.ready().await.unwrap();
        // The answer is 413 when the gateway reads it before the backend resets the unread
        // upload, else 502; or the gateway closes the connection under the rest of the
        // upload. What must not happen is no answer at all.
        match uploader.sender.send_request(request).await {
            Ok(refused) => {
                let status = refused.status().as_u16();
                assert!([413, 502].contains(&status), "{status}");
                refused.into_body().collect().await.unwrap();
            }
            Err(closed) => assert!(
                closed.is_closed()
                    || closed.is_incomplete_message()
                    || closed.is_body_write_aborted()
                    || cut_off_mid_write(&closed),
                "{closed}"
            ),
        }
        // Then the connection takes the next request or is closed; again, an answer.
        let next = uploader.request(Method::GET, "/api/v1/financial/status", Vec::new());
        if uploader.sender.ready().await.is_ok()
            && let Ok(response) = uploader.sender.send_request(next).await
        {
            assert_eq!(response.status(), 200);
        }

        let mut quitter = OneConnection::open(&gateway_addr, &admin).await;
        let response = quitter
            .head(Method::GET, "/api/v1/financial/invoices/256", Vec::new())
            .await;
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert!(first.is_data(), "the first chunk arrives");
        drop(body);
        drop(quitter);

        let mut other = OneConnection::open(&gateway_addr, &admin).await;
        assert_eq!(other.get("/api/v1/financial/status").await.0, 200);
        assert_eq!(client.get("/api/v1/financial/status").await, (200, port));

        served.stop().await;
    })
    .await
    .expect("every exchange finishes");
}

/// Whether `error` is the connection closing under a body being written ("error writing a
/// body to connection", from a broken pipe or a reset): the peer stopped reading the upload.
fn cut_off_mid_write(error: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            );
        }
        source = cause.source();
    }
    false
}

/// One HTTP/1 connection to the gateway, its requests sent one after another on it.
struct OneConnection {
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Full<axum::body::Bytes>>,
    host: String,
    token: String,
}

impl OneConnection {
    async fn open(addr: &str, token: &str) -> Self {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        Self {
            sender,
            host: addr.into(),
            token: token.into(),
        }
    }

    /// Status and body text of `GET path`.
    async fn get(&mut self, path: &str) -> (u16, String) {
        let (status, body) = self.send(Method::GET, path, Vec::new()).await;
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// Status and body of `method path` with `body`.
    async fn send(&mut self, method: Method, path: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
        use http_body_util::BodyExt;
        let response = self.head(method, path, body).await;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, body.to_vec())
    }

    /// The response to `method path` with `body`, its body not yet read.
    async fn head(
        &mut self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> axum::http::Response<hyper::body::Incoming> {
        let request = self.request(method, path, body);
        self.sender.ready().await.unwrap();
        self.sender.send_request(request).await.unwrap()
    }

    /// `method path` with `body`, this connection's `Host` and token.
    fn request(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> axum::http::Request<http_body_util::Full<axum::body::Bytes>> {
        axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header("authorization", format!("Bearer {}", self.token))
            .body(http_body_util::Full::from(body))
            .unwrap()
    }
}

/// Finding 7 of "The first hour": a path under a platform prefix is the platform's — a route
/// it has, or its own 404 — never taken for a module named `tenants` or `modules`.
async fn platform_paths_are_answered_by_the_platform_never_by_a_module(p: TestPlatform) {
    let _backend = setup(&p, "premium").await;
    let listed = p
        .call(
            Method::GET,
            "/api/v1/tenants/acme/modules",
            tenant_admin("acme"),
            None,
        )
        .await;
    let rows = listed.expect(StatusCode::OK).as_array().unwrap().clone();
    assert!(
        rows.iter()
            .any(|r| r["module"] == "financial" && r["enabled"] == true),
        "{rows:?}"
    );
    for path in [
        "/api/v1/tenants/acme/no-such-thing",
        "/api/v1/modules/financial/no-such-thing",
        "/api/v1/rbac/no-such-thing",
    ] {
        let answer = p.call(Method::GET, path, tenant_admin("acme"), None).await;
        answer.expect_problem(StatusCode::NOT_FOUND, &format!("no route for {path}"));
    }

    // Who holds what: the tenant's admin and the user themself can read an assignment.
    grant(&p, "bob", &["financial:invoices.read"]).await;
    let path = "/api/v1/tenants/acme/users/bob/roles";
    let bob = token("bob", Some("acme"), None, &[]);
    for reader in [tenant_admin("acme"), bob] {
        let read = p.call(Method::GET, path, reader, None).await;
        assert_eq!(read.expect(StatusCode::OK)["roles"], json!(["clerk"]));
    }
    let carol = token("carol", Some("acme"), None, &[]);
    p.call(Method::GET, path, carol, None)
        .await
        .expect(StatusCode::FORBIDDEN);
    // A method the path does not take is a problem document too, not an empty 405.
    p.call(Method::DELETE, path, tenant_admin("acme"), None)
        .await
        .expect_problem(StatusCode::METHOD_NOT_ALLOWED, "does not take DELETE");
}

/// Finding 9 of "The first hour": a role's grant must name an installed module and a
/// permission it declares (wildcards must match one); a near miss gets the closest name.
async fn a_role_naming_what_is_not_installed_is_refused_with_the_closest_name(p: TestPlatform) {
    let _backend = setup(&p, "premium").await;
    let cases = [
        (
            "financial:invoice.reed",
            "did you mean `financial:invoices.read`?",
        ),
        (
            "financal:invoices.read",
            "no module `financal` is installed; did you mean `financial`?",
        ),
        (
            "nosuchmodule:foo.read",
            "no module `nosuchmodule` is installed",
        ),
        (
            "financial:payroll.*",
            "financial declares no permission `financial:payroll.*` grants",
        ),
    ];
    for (grant, needle) in cases {
        let refused = p
            .call(
                Method::PUT,
                "/api/v1/tenants/acme/roles/typo",
                tenant_admin("acme"),
                Some(json!({"permissions": [grant]})),
            )
            .await;
        let body = refused.expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["errors"][0]["path"], "permissions[0]", "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{grant}: {message}");
    }
    let roles = p
        .call(
            Method::GET,
            "/api/v1/tenants/acme/roles",
            tenant_admin("acme"),
            None,
        )
        .await;
    assert!(
        !roles.expect(StatusCode::OK).to_string().contains("typo"),
        "nothing was written"
    );
    for fine in [
        "financial:invoices.read",
        "financial:invoices.*",
        "financial:*",
    ] {
        p.call(
            Method::PUT,
            "/api/v1/tenants/acme/roles/fine",
            tenant_admin("acme"),
            Some(json!({"permissions": [fine]})),
        )
        .await
        .expect(StatusCode::OK);
    }
}

/// Finding 10 of "The first hour": a user with access to several companies needed one token
/// per company. Now one token lists them (`company_ids`) and each request picks one with
/// `X-Plinth-Company`; the backend's context names the company picked.
async fn one_token_acts_in_the_company_each_request_picks(p: TestPlatform) {
    setup(&p, "free").await;
    let company = json!({"id": "acme-fr", "name": "ACME SARL"});
    p.call(
        Method::POST,
        "/api/v1/tenants/acme/companies",
        tenant_admin("acme"),
        Some(company),
    )
    .await
    .expect(StatusCode::CREATED);
    grant(&p, "carol", &["financial:invoices.*"]).await;
    let mint = |companies: &[&str], roles: &[&str]| {
        let claims = plinth_registry::identity::Claims {
            company_ids: companies.iter().map(|c| (*c).to_owned()).collect(),
            ..plinth_registry::identity::Claims::user(
                "carol",
                Some("acme"),
                None,
                roles,
                std::time::Duration::from_secs(600),
            )
        };
        plinth_registry::identity::mint_token(crate::support::api::SECRET, &claims).unwrap()
    };
    let carol = mint(&["acme-de", "acme-fr"], &[]);
    let call = |bearer: String, company: Option<&'static str>| {
        let mut request = axum::http::Request::builder()
            .method("GET")
            .uri("/api/v1/financial/invoices/7")
            .header("authorization", format!("Bearer {bearer}"));
        if let Some(company) = company {
            request = request.header("x-plinth-company", company);
        }
        p.raw(request.body(axum::body::Body::empty()).unwrap())
    };
    let company_of = |seen: &Value| -> Value {
        let context = seen["context"].as_str().expect("a context");
        jsonwebtoken::dangerous::insecure_decode_claims::<Value>(context).unwrap()["company_id"]
            .clone()
    };
    // Each pick is its own decision: the second is not served the first's context.
    for company in ["acme-fr", "acme-de", "acme-fr"] {
        let seen = call(carol.clone(), Some(company)).await;
        assert_eq!(seen.status, StatusCode::OK, "{company}: {}", seen.body);
        assert_eq!(company_of(&seen.body), company);
        assert_eq!(
            seen.body["plinth_headers"],
            json!(["x-plinth-context"]),
            "the pick is not forwarded; the context says it"
        );
    }
    // Two companies and no pick: none (the tenant's configuration).
    let seen = call(carol.clone(), None).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
    assert_eq!(company_of(&seen.body), Value::Null);
    // One company: picked without asking.
    let seen = call(mint(&["acme-fr"], &[]), None).await;
    assert_eq!(company_of(&seen.body), "acme-fr");
    // A company the token does not grant, and one that is not a company id.
    let seen = call(carol.clone(), Some("acme-it")).await;
    assert_eq!(seen.status, StatusCode::FORBIDDEN, "{}", seen.body);
    assert_eq!(
        seen.body["detail"],
        "your token does not grant company acme-it; it grants acme-de, acme-fr"
    );
    let seen = call(carol.clone(), Some("Not a company!")).await;
    assert_eq!(seen.status, StatusCode::BAD_REQUEST, "{}", seen.body);
    // Review: a granted id followed by a Unicode space is not the same company again (each
    // variant would have been another remembered decision).
    let request = axum::http::Request::builder()
        .method("GET")
        .uri("/api/v1/financial/invoices/7")
        .header("authorization", format!("Bearer {carol}"))
        .header(
            "x-plinth-company",
            axum::http::HeaderValue::from_bytes(b"acme-de\xc2\xa0").unwrap(),
        )
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(p.raw(request).await.status, StatusCode::BAD_REQUEST);
    // Review: a company admin acts for the company picked, not every company the token lists.
    let company_admin = mint(&["acme-de", "acme-fr"], &["company:admin"]);
    let disable = |company: &'static str| {
        let request = axum::http::Request::builder()
            .method("PUT")
            .uri("/api/v1/tenants/acme/companies/acme-fr/modules/financial")
            .header("authorization", format!("Bearer {company_admin}"))
            .header("x-plinth-company", company)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(r#"{"is_enabled": true}"#))
            .unwrap();
        p.raw(request)
    };
    assert_eq!(disable("acme-de").await.status, StatusCode::FORBIDDEN);
    assert_eq!(disable("acme-fr").await.status, StatusCode::OK);
    assert!(
        seen.body["detail"]
            .as_str()
            .unwrap()
            .contains("x-plinth-company header is not a company id"),
        "{}",
        seen.body
    );
    // A tenant admin may pick any company of the tenant, and hears when there is none.
    let admin = mint(&[], &["tenant:admin"]);
    let seen = call(admin.clone(), Some("acme-fr")).await;
    assert_eq!(company_of(&seen.body), "acme-fr");
    let seen = call(admin, Some("acme-xx")).await;
    assert_eq!(seen.status, StatusCode::NOT_FOUND, "{}", seen.body);
    assert_eq!(seen.body["detail"], "tenant acme has no company acme-xx");
}

/// A module (reports) installed beside financial whose manifest declares calling financial's
/// invoices with read permission only; `undeclared` names no calls at all. Each gets a key.
async fn install_callers(p: &TestPlatform) -> (String, String) {
    let caller = |name: &str, calls: Value| {
        json!({
            "name": name, "display_name": name, "version": "1.0.0",
            "backend": {"type": "microservice", "api_prefix": format!("/api/v1/{name}"), "health_check": "/health"},
            "dependencies": {"required_modules": ["financial"], "calls": calls}
        })
    };
    let mut keys = Vec::new();
    for (name, calls) in [
        (
            "reports",
            json!([{"module": "financial", "permissions": ["financial:invoices.read"]}]),
        ),
        ("undeclared", json!([])),
    ] {
        p.call(
            Method::POST,
            "/api/v1/modules",
            operator(),
            Some(caller(name, calls)),
        )
        .await
        .expect(StatusCode::CREATED);
        let backend = Backend::default();
        let body = json!({"version": "1.0.0", "endpoint": backend.start().await});
        let install = format!("/api/v1/modules/{name}/install");
        p.call(Method::POST, &install, operator(), Some(body))
            .await
            .expect(StatusCode::ACCEPTED);
        assert_eq!(p.settled(name).await["status"], "installed");
        p.enable("acme", name).await;
        let issued = p
            .call(
                Method::POST,
                &format!("/api/v1/modules/{name}/api-keys"),
                operator(),
                None,
            )
            .await;
        keys.push(
            issued.expect(StatusCode::CREATED)["key"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    (keys.remove(0), keys.remove(0))
}

/// Issue 13: modules call each other's routes through the gateway with their own key, for a
/// tenant (or for the user whose context they pass on); the callee's context names
/// `calling_module`; a call the manifest does not declare, or with a permission it does not
/// declare, is refused; so is a tenant that did not enable the caller.
async fn a_module_calls_another_through_the_gateway_only_as_declared(p: TestPlatform) {
    setup(&p, "free").await;
    let (reports, undeclared) = install_callers(&p).await;
    let call = |method: &str, path: &str, key: &str, headers: &[(&str, String)]| {
        let mut request = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("x-module-api-key", key);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        p.raw(request.body(axum::body::Body::empty()).unwrap())
    };
    let claims_of = |seen: &Value| -> Value {
        jsonwebtoken::dangerous::insecure_decode_claims::<Value>(seen["context"].as_str().unwrap())
            .unwrap()
    };
    let acme = [("x-plinth-tenant", "acme".to_owned())];
    // Declared: allowed, and the callee learns who called, for which tenant, with what.
    let seen = call("GET", "/api/v1/financial/invoices/7", &reports, &acme).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
    let claims = claims_of(&seen.body);
    assert_eq!(claims["calling_module"], "reports");
    assert_eq!(claims["tenant_id"], "acme");
    assert_eq!(claims["sub"], "module:reports");
    assert_eq!(claims["permissions"], json!(["financial:invoices.read"]));
    assert_eq!(seen.body["plinth_headers"], json!(["x-plinth-context"]));
    assert_eq!(
        seen.body["api_key"],
        Value::Null,
        "the caller's key stays at the gateway"
    );
    // A route needing a permission the manifest does not declare calling with.
    let seen = call("POST", "/api/v1/financial/invoices", &reports, &acme).await;
    assert_eq!(seen.status, StatusCode::FORBIDDEN, "{}", seen.body);
    assert!(
        seen.body["detail"].as_str().unwrap().contains(
            "needs the permission financial:invoices.write, which reports does not declare calling with"
        ),
        "{}",
        seen.body
    );
    // A module whose manifest declares no call to financial.
    let seen = call("GET", "/api/v1/financial/invoices/7", &undeclared, &acme).await;
    assert_eq!(seen.status, StatusCode::FORBIDDEN, "{}", seen.body);
    assert_eq!(
        seen.body["detail"],
        "undeclared does not declare calling financial: its manifest's dependencies.calls must name it"
    );
    // No tenant named; a tenant that has not enabled the caller.
    let seen = call("GET", "/api/v1/financial/invoices/7", &reports, &[]).await;
    assert_eq!(seen.status, StatusCode::BAD_REQUEST, "{}", seen.body);
    let globex = [("x-plinth-tenant", "globex".to_owned())];
    let seen = call("GET", "/api/v1/financial/invoices/7", &reports, &globex).await;
    assert_eq!(seen.status, StatusCode::FORBIDDEN, "{}", seen.body);
    assert_eq!(seen.body["detail"], "tenant globex has not enabled reports");
    // For a user: the context reports received, passed on. The user holds invoices.* in
    // financial, reports declares read only: the callee sees the user, with read only.
    grant(&p, "alice", &["financial:invoices.*"]).await;
    let alice = token("alice", Some("acme"), Some("acme-de"), &[]);
    let Auth::Token(bearer) = alice else {
        unreachable!()
    };
    let request = axum::http::Request::builder()
        .method("GET")
        .uri("/api/v1/reports/anything")
        .header("authorization", format!("Bearer {bearer}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let received = p.raw(request).await;
    assert_eq!(received.status, StatusCode::OK, "{}", received.body);
    let passed_on = received.body["context"].as_str().unwrap().to_owned();
    let seen = call(
        "GET",
        "/api/v1/financial/invoices/7",
        &reports,
        &[("x-plinth-context", passed_on.clone())],
    )
    .await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
    let claims = claims_of(&seen.body);
    assert_eq!(
        (
            &claims["sub"],
            &claims["tenant_id"],
            &claims["company_id"],
            &claims["calling_module"]
        ),
        (
            &json!("alice"),
            &json!("acme"),
            &json!("acme-de"),
            &json!("reports")
        )
    );
    assert_eq!(claims["permissions"], json!(["financial:invoices.read"]));
    // Review: a context passed on lives no longer than the one it came from.
    let received_exp = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(&passed_on)
        .unwrap()["exp"]
        .as_u64()
        .unwrap();
    assert!(claims["exp"].as_u64().unwrap() <= received_exp, "{claims}");
    // Review: no user's token may look like a module's own call.
    let impostor = token("module:reports", Some("acme"), None, &[]);
    p.call(Method::GET, "/api/v1/financial/status", impostor, None)
        .await
        .expect_problem(
            StatusCode::UNAUTHORIZED,
            "`module:` starts the user of a module's own call",
        );
    // Review: a company that disabled the caller is not called for.
    p.call(
        Method::PUT,
        "/api/v1/tenants/acme/companies/acme-de/modules/reports",
        tenant_admin("acme"),
        Some(json!({"is_enabled": false})),
    )
    .await
    .expect(StatusCode::OK);
    let seen = call(
        "GET",
        "/api/v1/financial/invoices/7",
        &reports,
        &[
            ("x-plinth-tenant", "acme".to_owned()),
            ("x-plinth-company", "acme-de".to_owned()),
        ],
    )
    .await;
    assert_eq!(seen.status, StatusCode::FORBIDDEN, "{}", seen.body);
    assert_eq!(
        seen.body["detail"],
        "reports is not enabled for tenant acme's company acme-de"
    );
    // A context issued to another module (financial's own) cannot be passed on by reports.
    let Auth::Token(bearer) = token("alice", Some("acme"), Some("acme-de"), &[]) else {
        unreachable!()
    };
    let direct = axum::http::Request::builder()
        .method("GET")
        .uri("/api/v1/financial/invoices/7")
        .header("authorization", format!("Bearer {bearer}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let financials = p.raw(direct).await.body["context"]
        .as_str()
        .unwrap()
        .to_owned();
    let seen = call(
        "GET",
        "/api/v1/financial/invoices/7",
        &reports,
        &[("x-plinth-context", financials)],
    )
    .await;
    assert_eq!(seen.status, StatusCode::UNAUTHORIZED, "{}", seen.body);
    assert!(
        seen.body["detail"]
            .as_str()
            .unwrap()
            .contains("it was issued to another module"),
        "{}",
        seen.body
    );
    drop(passed_on);
}
