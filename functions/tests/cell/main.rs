//! The AWS cell (issue 19), first slice: the platform's function binaries started as Lambda
//! runs them (cargo-lambda's runtime emulator), against moto, driven only through their
//! Invoke API — the registry API and the config resolver behind the `ApiGateway` shim, the
//! installer with its EventBridge event.
//!
//! Skips without `AWS_ENDPOINT_URL` (moto) or `PLINTH_CARGO_LAMBDA` (cargo-lambda), except
//! under CI. Run it as `./tests/run` does:
//! `source infra/emulator/moto.sh && emulator_start && source infra/emulator/lambda.sh &&
//! lambda_emulator_install && cargo test -p plinth-functions --test cell`.

#[path = "../../../registry/tests/support/lambda_emulator.rs"]
#[allow(dead_code)]
mod lambda_emulator;

mod api_gateway;
mod module_backend;
mod platform;

use base64::Engine;
use plinth_registry::identity::{Claims, mint_token};
use serde_json::{Value, json};

use api_gateway::{ApiGateway, Request, Response};
use module_backend::ModuleBackend;
use platform::{Cell, ECR_EVENTS, INSTALLER};

/// A user's token, signed with the JWT secret read back from Secrets Manager.
fn token(
    secret: &str,
    sub: &str,
    tenant: Option<&str>,
    company: Option<&str>,
    roles: &[&str],
) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = Claims {
        sub: sub.into(),
        tenant_id: tenant.map(Into::into),
        company_id: company.map(Into::into),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        exp: now + 600,
        nbf: None,
        iss: None,
        aud: None,
    };
    mint_token(secret.as_bytes(), &claims).expect("a token")
}

fn financial() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/financial/manifest.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("the manifest is JSON")
}

fn expect(response: &Response, status: u16, what: &str) {
    assert_eq!(response.status, status, "{what}: {}", response.body);
}

/// What the installer function gets from the rule `platform-{s}-install-requested`.
fn install_requested(module: &str) -> Value {
    json!({
        "version": "0",
        "id": "cell-install-requested",
        "detail-type": "module.install.requested",
        "source": "plinth.registry",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"module": module, "event_id": "cell-install-requested", "occurred_at": "2026-01-01T00:00:00Z"}
    })
}

/// The tokens of the scenario's users.
struct Users {
    operator: String,
    admin: String,
    alice: String,
    stranger: String,
}

impl Users {
    fn signed_with(secret: &str) -> Self {
        Self {
            operator: token(secret, "ops", None, None, &["platform:admin"]),
            admin: token(secret, "boss", Some("acme"), None, &["tenant:admin"]),
            alice: token(secret, "alice", Some("acme"), Some("acme-de"), &[]),
            stranger: token(secret, "eve", Some("globex"), None, &["tenant:admin"]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_runs_as_lambda_runs_it() {
    let started = std::time::Instant::now();
    let Some(cell) = Cell::start("the_platform_runs_as_lambda_runs_it").await else {
        return;
    };
    let api = ApiGateway { cell: &cell };

    let health = api.send(Request::new("GET", "/health")).await;
    expect(
        &health,
        200,
        "GET /health through the registry API function",
    );
    assert_ne!(
        cell.context_key().await,
        "generate-on-first-start",
        "the first signing function generates the context key"
    );
    let users = Users::signed_with(&cell.jwt_secret().await);
    let module = ModuleBackend::start().await;

    publish_and_install(&api, &users, &module).await;
    tenant_with_financial(&api, &users).await;
    config_with_etag(&api, &users).await;
    authorizer_decides(&api, &users).await;
    pushed_image_publishes(&api, &users).await;

    eprintln!(
        "the cell took {:.1} s (the module got {} calls)",
        started.elapsed().as_secs_f64(),
        module.calls()
    );
}

/// financial published through the registry API, its install requested there and run by the
/// installer function on the event the bus's rule would deliver (EventBridge → Lambda is not
/// emulated), at the module's own endpoint.
async fn publish_and_install(api: &ApiGateway<'_>, users: &Users, module: &ModuleBackend) {
    let published = api
        .send(
            Request::new("POST", "/api/v1/modules")
                .bearer(&users.operator)
                .json(financial()),
        )
        .await;
    expect(&published, 201, "publish financial");
    let install = json!({"version": "1.2.0", "endpoint": module.url});
    let requested = api
        .send(
            Request::new("POST", "/api/v1/modules/financial/install")
                .bearer(&users.operator)
                .json(install),
        )
        .await;
    expect(&requested, 202, "install financial");
    let ran = api
        .cell
        .invoke(INSTALLER, &install_requested("financial"))
        .await;
    assert!(
        ran.function_error.is_none() && ran.status == 200,
        "the installer failed: {ran:?}\n{}",
        api.cell.log(INSTALLER)
    );
    let status = api
        .send(Request::new("GET", "/api/v1/modules/financial/installation").bearer(&users.operator))
        .await;
    expect(&status, 200, "the installation");
    assert_eq!(status.json()["status"], "installed", "{}", status.body);
}

/// Tenant acme (premium, as financial asks), company acme-de, financial enabled for acme;
/// alice may read accounts.
async fn tenant_with_financial(api: &ApiGateway<'_>, users: &Users) {
    let calls = [
        (
            "POST",
            "/api/v1/tenants",
            &users.operator,
            json!({"id": "acme", "name": "ACME", "subscription_tier": "premium"}),
            201,
        ),
        (
            "POST",
            "/api/v1/tenants/acme/companies",
            &users.admin,
            json!({"id": "acme-de", "name": "ACME GmbH"}),
            201,
        ),
        (
            "PUT",
            "/api/v1/tenants/acme/modules/financial",
            &users.admin,
            json!({}),
            200,
        ),
        (
            "PUT",
            "/api/v1/tenants/acme/roles/bookkeeper",
            &users.admin,
            json!({"permissions": ["financial:accounts.read"]}),
            200,
        ),
        (
            "PUT",
            "/api/v1/tenants/acme/users/alice/roles",
            &users.admin,
            json!({"roles": ["bookkeeper"]}),
            200,
        ),
    ];
    for (method, path, bearer, body, status) in calls {
        let response = api
            .send(Request::new(method, path).bearer(bearer).json(body))
            .await;
        expect(&response, status, &format!("{method} {path}"));
    }
}

/// The company's configuration through the config resolver function: 200 with an `ETag`,
/// then 304 to `If-None-Match`.
async fn config_with_etag(api: &ApiGateway<'_>, users: &Users) {
    let config = "/api/v1/tenants/acme/modules/financial/config?company=acme-de";
    let first = api
        .send(Request::new("GET", config).bearer(&users.alice))
        .await;
    expect(
        &first,
        200,
        "the company's config through the config resolver",
    );
    assert_eq!(
        first.json()["configuration"]["currency"],
        "USD",
        "{}",
        first.body
    );
    let etag = first.header("etag").expect("an ETag").to_owned();
    let again = api
        .send(
            Request::new("GET", config)
                .bearer(&users.alice)
                .header("if-none-match", &etag),
        )
        .await;
    expect(&again, 304, "the same config again, If-None-Match");
}

/// The authorizer function on module routes: a permitted route allowed with a signed tenant
/// context; a route alice has no permission for, and another tenant's token, refused.
async fn authorizer_decides(api: &ApiGateway<'_>, users: &Users) {
    let allowed = api
        .send(Request::new("GET", "/api/v1/financial/accounts").bearer(&users.alice))
        .await;
    let decision = allowed.authorizer.clone().expect("the authorizer decided");
    assert_eq!(decision["isAuthorized"], true, "{decision}");
    assert_eq!(decision["context"]["tenant"], "acme", "{decision}");
    assert_eq!(decision["context"]["module"], "financial", "{decision}");
    let context = decision["context"]["context"].as_str().unwrap_or_default();
    assert_eq!(
        context.split('.').count(),
        3,
        "a signed context: {decision}"
    );

    let refusals = [
        (
            &users.alice,
            "/api/v1/financial/invoices",
            "financial:invoices.read",
        ),
        (
            &users.stranger,
            "/api/v1/financial/accounts",
            "no module financial",
        ),
    ];
    for (bearer, path, reason) in refusals {
        let refused = api.send(Request::new("GET", path).bearer(bearer)).await;
        expect(&refused, 403, path);
        let decision = refused.authorizer.expect("the authorizer decided");
        assert_eq!(decision["isAuthorized"], false, "{decision}");
        let why = decision["context"]["reason"].as_str().unwrap_or_default();
        assert!(why.contains(reason), "{path}: {why}");
    }
    let anonymous = api
        .send(Request::new("GET", "/api/v1/financial/accounts"))
        .await;
    expect(&anonymous, 401, "no Authorization: API Gateway's own 401");
}

/// The next version pushed to ECR with its manifest (the annotation `dev.plinth.manifest`,
/// base64, as docs/images.md has buildx write it); the ECR events function, invoked with the
/// "ECR Image Action" the default bus's rule would deliver, publishes it.
async fn pushed_image_publishes(api: &ApiGateway<'_>, users: &Users) {
    let sdk = &api.cell.sdk;
    // The repository financial's published versions name: a push elsewhere publishes nothing.
    let repository = "plinth-financial";
    let created = aws_sdk_ecr::Client::new(sdk)
        .create_repository()
        .repository_name(repository)
        .send()
        .await;
    if let Err(e) = created {
        let exists = e
            .as_service_error()
            .is_some_and(aws_sdk_ecr::operation::create_repository::CreateRepositoryError::is_repository_already_exists_exception);
        assert!(exists, "create the module's repository: {e:?}");
    }
    let mut next = financial();
    next["version"] = "1.3.0".into();
    next["backend"]["image"] = format!("{repository}:1.3.0").into();
    let mut image = registry_fixture("oci-image-manifest-annotated.json");
    // A layer of this run's own, so that a second run on the same emulator pushes a new image.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    image["layers"][1]["digest"] = format!("sha256:{nanos:064x}").into();
    image["annotations"]["dev.plinth.manifest"] = base64::engine::general_purpose::STANDARD
        .encode(next.to_string())
        .into();
    let pushed = aws_sdk_ecr::Client::new(sdk)
        .put_image()
        .repository_name(repository)
        .image_tag("1.3.0")
        .image_manifest(image.to_string())
        .image_manifest_media_type("application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .expect("push the image");
    let digest = pushed
        .image()
        .and_then(|i| i.image_id())
        .and_then(|id| id.image_digest())
        .expect("the image's digest")
        .to_owned();

    let mut event = registry_fixture("ecr-image-action-oci.json");
    event["detail"]["repository-name"] = repository.into();
    event["detail"]["image-tag"] = "1.3.0".into();
    event["detail"]["image-digest"] = digest.clone().into();
    let ran = api.cell.invoke(ECR_EVENTS, &event).await;
    assert!(
        ran.function_error.is_none() && ran.status == 200,
        "the ECR events function failed: {ran:?}\n{}",
        api.cell.log(ECR_EVENTS)
    );

    let versions = api
        .send(Request::new("GET", "/api/v1/modules/financial/versions").bearer(&users.operator))
        .await;
    expect(&versions, 200, "financial's versions");
    let listed = versions.json();
    let published = listed
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["version"] == "1.3.0")
        .unwrap_or_else(|| {
            panic!(
                "1.3.0 is not published: {:?}\n{}",
                ran.payload,
                api.cell.log(ECR_EVENTS)
            )
        });
    assert_eq!(published["image_digest"], digest.as_str(), "{published}");
    assert_eq!(
        published["published_by"],
        format!("ecr:123456789012/{repository}"),
        "{published}"
    );
}

/// A fixture the registry's tests keep (the AWS payloads it parses).
fn registry_fixture(name: &str) -> Value {
    let path = format!(
        "{}/../registry/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}
