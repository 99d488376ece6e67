//! The AWS cell (issue 19): the platform's function binaries started as Lambda runs them
//! (cargo-lambda's runtime emulator), against moto, driven only through their Invoke API —
//! the registry API, the config resolver and the authorizer behind the `ApiGateway` shim; the
//! installer and the ECR events function by their rules on the buses, delivered by the
//! `BusToLambda` shim.
//!
//! Skips without `AWS_ENDPOINT_URL` (moto) or `PLINTH_CARGO_LAMBDA` (cargo-lambda), except
//! under CI. Run it as `./tests/run` does:
//! `source infra/emulator/moto.sh && emulator_start && source infra/emulator/lambda.sh &&
//! lambda_emulator_install && cargo test -p plinth-functions --test cell`.

#[path = "../../../registry/tests/support/lambda_emulator.rs"]
#[allow(dead_code)]
mod lambda_emulator;

#[path = "../../../registry/tests/support/ecs_cluster.rs"]
mod ecs_cluster;

mod access_log;
mod alb;
mod api_gateway;
mod bus_to_lambda;
mod containers;
mod crash;
mod dynamo_tap;
mod lambda_front;
mod module_listener;
mod platform;
mod rollouts;
mod versions;

use std::time::{Duration, Instant};

use base64::Engine;
use plinth_registry::identity::{Claims, mint_token};
use serde_json::{Value, json};

use api_gateway::{ApiGateway, Request, Response};
use platform::{
    Cell, ECR_EVENTS, FINANCIAL_FUNCTION, HEALTH_CHECKER, INSTALLER, NOTIFICATIONS_REPOSITORY,
    REGISTRY_API, USAGE,
};

/// A user's token, signed with the JWT secret read back from Secrets Manager.
fn token(
    secret: &str,
    sub: &str,
    tenant: Option<&str>,
    company: Option<&str>,
    roles: &[&str],
) -> String {
    let claims = Claims::user(
        sub,
        tenant,
        company,
        roles,
        std::time::Duration::from_secs(600),
    );
    mint_token(secret.as_bytes(), &claims).expect("a token")
}

fn example(name: &str) -> Value {
    let path = format!(
        "{}/../examples/{name}/manifest.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("the manifest is JSON")
}

fn financial() -> Value {
    example("financial")
}

/// The notifications example as an ECS module: the same binary, packaged as a container
/// (a `microservice` backend on the default port), its `invoice-paid` subscription filling
/// the module's queue.
fn notifications_on_ecs() -> Value {
    let mut manifest = example("notifications");
    manifest["backend"] = json!({
        "type": "microservice",
        "runtime": "rust",
        "framework": "axum",
        "entry_point": "notifications",
        "image": format!("{NOTIFICATIONS_REPOSITORY}:1.0.0"),
        "cpu": 256,
        "memory": 512,
        "health_check": "/health",
        "api_prefix": "/api/v1/notifications",
        "env": {"RUST_LOG": "info"}
    });
    manifest
}

fn expect(response: &Response, status: u16, what: &str) {
    assert_eq!(response.status, status, "{what}: {}", response.body);
}

/// Polls financial's `version` installed alongside its first installation until its status is
/// `status` (an uninstalled one may be gone: 404).
async fn alongside_reaches(api: &ApiGateway<'_>, users: &Users, version: &str, status: &str) {
    let path = format!("/api/v1/modules/financial/installation?version={version}");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let read = api
            .send(Request::new("GET", &path).bearer(&users.operator))
            .await;
        let body = read.json();
        if (read.status == 200 && body["status"] == status)
            || (status == "uninstalled" && read.status == 404)
        {
            return;
        }
        assert!(
            Instant::now() < deadline && body["status"] != "failed",
            "financial {version} alongside did not reach `{status}`: {} {}\ninstaller's log:\n{}",
            read.status,
            read.body,
            api.cell.log(INSTALLER)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Polls the installation through the registry API until its status is `status`: the
/// installer runs on the event the registry put on the bus, not on the test's call. Panics
/// with what the bus's deliveries and the installer said when it does not get there.
async fn installation_reaches(
    api: &ApiGateway<'_>,
    users: &Users,
    module: &str,
    status: &str,
) -> Value {
    let path = format!("/api/v1/modules/{module}/installation");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let read = api
            .send(Request::new("GET", &path).bearer(&users.operator))
            .await;
        let body = read.json();
        if read.status == 200 && body["status"] == status {
            return body;
        }
        if Instant::now() > deadline || (body["status"] == "failed" && status != "failed") {
            panic!(
                "the installation of {module} did not reach `{status}` through the bus: {}\n\
                 deliveries that failed:\n{}\ninstaller's log:\n{}",
                read.body,
                api.cell.rules.failures(),
                api.cell.log(INSTALLER)
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Asks the registry API to install financial 1.2.0 and waits until the installer function
/// (on the bus's event) has it installed.
async fn install_financial(api: &ApiGateway<'_>, users: &Users) -> Value {
    install(api, users, "financial", "1.2.0").await
}

/// Asks the registry API to install `module` at `version` and waits until the installer
/// function (on the bus's event) has it installed.
async fn install(api: &ApiGateway<'_>, users: &Users, module: &str, version: &str) -> Value {
    let requested = api
        .send(
            Request::new("POST", &format!("/api/v1/modules/{module}/install"))
                .bearer(&users.operator)
                .json(json!({"version": version})),
        )
        .await;
    expect(&requested, 202, &format!("install {module}"));
    installation_reaches(api, users, module, "installed").await
}

/// Runs one step of the scenario and says how long it took (`--nocapture` shows it).
async fn timed(step: &str, run: impl std::future::Future<Output = ()>) {
    let started = Instant::now();
    run.await;
    eprintln!("cell: {step} took {:.1} s", started.elapsed().as_secs_f64());
}

/// The tokens of the scenario's users.
struct Users {
    operator: String,
    admin: String,
    alice: String,
    /// A tenant admin of acme working in company acme-de.
    clerk: String,
    stranger: String,
}

impl Users {
    fn signed_with(secret: &str) -> Self {
        Self {
            operator: token(secret, "ops", None, None, &["platform:admin"]),
            admin: token(secret, "boss", Some("acme"), None, &["tenant:admin"]),
            alice: token(secret, "alice", Some("acme"), Some("acme-de"), &[]),
            clerk: token(
                secret,
                "bob",
                Some("acme"),
                Some("acme-de"),
                &["tenant:admin"],
            ),
            stranger: token(secret, "eve", Some("globex"), None, &["tenant:admin"]),
        }
    }
}

/// The cells of this file's tests install the same module on the same emulator: one at a
/// time.
static ONE_CELL_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_runs_as_lambda_runs_it() {
    let _one = ONE_CELL_AT_A_TIME.lock().await;
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

    timed("publish", publish_the_first_version(&api, &users)).await;
    timed("install", install_the_lambda_module(&api, &users)).await;
    timed("tenant", tenant_with_financial(&api, &users)).await;
    timed("config", config_with_etag(&api, &users)).await;
    timed("authorizer", authorizer_decides(&api, &users)).await;
    timed("health", health_follows_the_module(&api, &users)).await;
    timed("ecs module", ecs_module_gets_its_events(&api, &users)).await;
    timed("usage", usage_is_metered(&api, &users)).await;
    timed("upgrade", upgrade_and_rollback(&api, &users)).await;
    timed(
        "rollouts",
        rollouts::stepped_and_watched_on_aws(&api, &users),
    )
    .await;
    timed("uninstall", uninstall_leaves_nothing(&api, &users)).await;
    timed("ecs uninstall", ecs_uninstall_leaves_nothing(&api, &users)).await;

    eprintln!(
        "the cell took {:.1} s (financial's function was invoked {} times)",
        started.elapsed().as_secs_f64(),
        cell.front.invocations(FINANCIAL_FUNCTION).len()
    );
}

/// financial 1.2.0 (its image pushed in the previous step), installed as Lambda runs it:
/// the install asked of the registry API runs in the installer function, on the event the
/// registry put on the platform's bus (the rule `platform-{stage}-install-requested`); the
/// installer creates the module's function on moto, its role and its key's secret, and its
/// `post_install` hook reaches the function through Invoke.
async fn install_the_lambda_module(api: &ApiGateway<'_>, users: &Users) {
    let installed = install_financial(api, users).await;
    let hook = installed["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["step"] == "post_install")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (&hook["status"], &hook["detail"]),
        (&json!("done"), &json!("ok")),
        "the post_install hook answered: {installed}"
    );
    let tags = function_tags(api.cell, FINANCIAL_FUNCTION)
        .await
        .expect("financial's function on moto");
    assert_eq!(
        tags.get("plinth:version").map(String::as_str),
        Some("1.2.0"),
        "{tags:?}"
    );
    let invoked = api.cell.front.invocations(FINANCIAL_FUNCTION);
    assert!(
        invoked.iter().any(|p| p == "/_plinth/hooks/post_install"),
        "the hook went through Invoke: {invoked:?}"
    );
}

/// Tenant acme (premium, as financial asks), company acme-de, financial enabled for acme;
/// alice may read accounts; then company acme-fr, whose `company.created` reaches financial's
/// function through its rule.
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
    // A company created now is an event on the platform's bus that financial's rule
    // delivers to its function (as EventBridge delivers to a Lambda target).
    let second = api
        .send(
            Request::new("POST", "/api/v1/tenants/acme/companies")
                .bearer(&users.admin)
                .json(json!({"id": "acme-fr", "name": "ACME SARL"})),
        )
        .await;
    expect(&second, 201, "a second company");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !api
        .cell
        .front
        .invocations(FINANCIAL_FUNCTION)
        .iter()
        .any(|p| p == "event:company.created")
    {
        assert!(
            Instant::now() < deadline,
            "company.created did not reach financial's function: {:?}\ndeliveries that failed:\n{}",
            api.cell.front.invocations(FINANCIAL_FUNCTION),
            api.cell.rules.failures()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(api.cell.rules.failures(), "", "every delivery succeeded");
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
    let etag = first
        .header("etag")
        .unwrap_or_else(|| {
            panic!(
                "the config resolver's 200 has no ETag (headers {:?})",
                first.headers
            )
        })
        .to_owned();
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
        expect(
            &refused,
            403,
            &format!(
                "{path} refused by the authorizer ({reason}); its decision: {:?}",
                refused.authorizer
            ),
        );
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

/// Pushes financial `version`'s image to ECR with its manifest (the annotation
/// `dev.plinth.manifest`, base64, as docs/images.md has buildx write it), and puts ECR's
/// "ECR Image Action" on the default bus (moto's ECR announces nothing), where it reaches the
/// ECR events function by its rule `plinth-{stage}-ecr-push`. Gives back the image's digest.
async fn push_image(api: &ApiGateway<'_>, manifest: &Value, version: &str) -> String {
    let sdk = &api.cell.sdk;
    // The repository the module's published versions name: a push elsewhere publishes nothing.
    let repository = format!("plinth-{}", manifest["name"].as_str().unwrap_or_default());
    let repository = repository.as_str();
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
    let mut next = manifest.clone();
    next["version"] = version.into();
    next["backend"]["image"] = format!("{repository}:{version}").into();
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
        .image_tag(version)
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

    let mut detail = registry_fixture("ecr-image-action-oci.json")["detail"].clone();
    detail["repository-name"] = repository.into();
    detail["image-tag"] = version.into();
    detail["image-digest"] = digest.clone().into();
    let announced = aws_sdk_eventbridge::Client::new(sdk)
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .source("aws.ecr")
                .detail_type("ECR Image Action")
                .detail(detail.to_string())
                .build(),
        )
        .send()
        .await
        .expect("ECR's event on the default bus");
    assert_eq!(announced.failed_entry_count(), 0, "{announced:?}");

    digest
}

/// The first version of financial, published by a platform admin through the registry API
/// (a push publishes only the next versions of a module someone published), then its image
/// pushed: the ECR events function records the image's digest on the version.
async fn publish_the_first_version(api: &ApiGateway<'_>, users: &Users) {
    let published = api
        .send(
            Request::new("POST", "/api/v1/modules")
                .bearer(&users.operator)
                .json(financial()),
        )
        .await;
    expect(&published, 201, "publish financial");
    let digest = push_image(api, &financial(), "1.2.0").await;
    version_published(api, users, "financial", "1.2.0", &digest).await;
}

/// A next version of financial pushed to ECR is published by the ECR events function.
async fn pushed_image_publishes(api: &ApiGateway<'_>, users: &Users, version: &str) {
    let digest = push_image(api, &financial(), version).await;
    let published = version_published(api, users, "financial", version, &digest).await;
    // `ecr:{account}/{repository}`: moto's account is 123456789012, LocalStack's 000000000000.
    let by = published["published_by"].as_str().unwrap_or_default();
    assert!(
        by.starts_with("ecr:") && by.ends_with("/plinth-financial"),
        "published by the push: {published}"
    );
}

/// Polls financial's versions until `version` is published with the image `digest` (by the
/// ECR events function, on the default bus's delivery).
async fn version_published(
    api: &ApiGateway<'_>,
    users: &Users,
    module: &str,
    version: &str,
    digest: &str,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    let path = format!("/api/v1/modules/{module}/versions");
    loop {
        let versions = api
            .send(Request::new("GET", &path).bearer(&users.operator))
            .await;
        // 404 until the first version is published.
        if versions.status != 404 {
            expect(&versions, 200, &format!("{module}'s versions"));
        }
        let found = versions
            .json()
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["version"] == version && v["image_digest"] == digest)
            .cloned();
        if let Some(found) = found {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{version} with image {digest} is not published through the default bus: {}\ndeliveries that failed:\n{}\n\
             the ECR events function's log:\n{}",
            versions.body,
            api.cell.rules.failures(),
            api.cell.log(ECR_EVENTS)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The health checker, invoked as its schedule does (EventBridge Scheduler sends the target's
/// input, `{}`), checks financial's function through Invoke: healthy while it answers,
/// unhealthy when it crashes at start (Lambda's `Runtime.ExitError`), healthy again when it
/// is back — read through the registry API.
async fn health_follows_the_module(api: &ApiGateway<'_>, users: &Users) {
    let round = || async {
        let ran = api.cell.invoke(HEALTH_CHECKER, &json!({})).await;
        assert!(
            ran.function_error.is_none() && ran.status == 200,
            "the health checker failed: {ran:?}\n{}",
            api.cell.log(HEALTH_CHECKER)
        );
        ran.payload["changed"].as_u64().unwrap_or_else(|| {
            panic!(
                "the health checker's answer has no `changed`: {}",
                ran.payload
            )
        })
    };
    let instance = || async {
        let listed = api
            .send(
                Request::new("GET", "/api/v1/modules/financial/instances").bearer(&users.operator),
            )
            .await;
        expect(&listed, 200, "financial's instances");
        let instances = listed.json();
        let all = instances.as_array().cloned().unwrap_or_default();
        assert_eq!(all.len(), 1, "one instance, the function: {instances}");
        let url = all[0]["url"].as_str().unwrap_or_default();
        assert!(
            url.starts_with("lambda:arn:aws:lambda:")
                && url.ends_with(":function:plinth-financial"),
            "{instances}"
        );
        all[0].clone()
    };

    let checks = api.cell.front.invocations(FINANCIAL_FUNCTION).len();
    round().await;
    assert_eq!(instance().await["health"], "healthy");
    let invoked = api.cell.front.invocations(FINANCIAL_FUNCTION);
    assert_eq!(
        invoked[checks..],
        ["/health"],
        "the health check went through Invoke"
    );

    api.cell.front.crash(FINANCIAL_FUNCTION);
    assert_eq!(round().await, 1, "the function that crashes");
    let down = instance().await;
    assert_eq!(down["health"], "unhealthy", "{down}");
    assert!(down["unhealthy_since"].is_string(), "{down}");

    api.cell.front.heal(FINANCIAL_FUNCTION);
    assert_eq!(round().await, 1, "the function that answers again");
    let back = instance().await;
    assert_eq!(back["health"], "healthy", "{back}");
}

/// financial 1.3.0, pushed to ECR and published by the ECR events function, is installed over
/// 1.2.0 by the installer function (the function's code and tags replaced on moto, the next
/// invocation a cold start of the new code); then rolled back to 1.2.0.
async fn upgrade_and_rollback(api: &ApiGateway<'_>, users: &Users) {
    pushed_image_publishes(api, users, "1.3.0").await;
    for (operation, body, version) in [
        ("upgrade", json!({"version": "1.3.0"}), "1.3.0"),
        ("rollback", json!({}), "1.2.0"),
    ] {
        let path = format!("/api/v1/modules/financial/{operation}");
        let asked = api
            .send(
                Request::new("POST", &path)
                    .bearer(&users.operator)
                    .json(body),
            )
            .await;
        expect(&asked, 202, &format!("{operation} financial"));
        let deadline = Instant::now() + Duration::from_secs(60);
        let settled = loop {
            let now = installation_reaches(api, users, "financial", "installed").await;
            if now["installed_version"] == version {
                break now;
            }
            assert!(
                Instant::now() < deadline,
                "the {operation} did not run: {now}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert_eq!(settled["operation"], operation, "{settled}");
        let tags = function_tags(api.cell, FINANCIAL_FUNCTION)
            .await
            .expect("financial's function on moto");
        assert_eq!(
            tags.get("plinth:version").map(String::as_str),
            Some(version),
            "after the {operation}: {tags:?}"
        );
    }
}

/// The tags of function `name` on moto, or `None` when there is no such function.
async fn function_tags(
    cell: &Cell,
    name: &str,
) -> Option<std::collections::HashMap<String, String>> {
    let lambda = aws_sdk_lambda::Client::new(&cell.sdk);
    let function = lambda.get_function().function_name(name).send().await;
    match function {
        Ok(found) => Some(found.tags().cloned().unwrap_or_default()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(e) => panic!("GetFunction {name}: {e:?}"),
    }
}

/// The names an installation lists under `field` (`rules`, `tables`), sorted.
fn names(installed: &Value, field: &str) -> Vec<String> {
    let mut names: Vec<String> = installed[field]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// The uninstall asked of the registry API (dropping the module's data) reaches the installer
/// through the bus; then, listed on moto, no rule of financial is left on the platform's bus
/// and none of its tables, and its API keys are gone — one issued through the API is refused.
async fn uninstall_leaves_nothing(api: &ApiGateway<'_>, users: &Users) {
    let installed = installation_reaches(api, users, "financial", "installed").await;
    let (rules, tables) = (names(&installed, "rules"), names(&installed, "tables"));
    assert!(!rules.is_empty() && !tables.is_empty(), "{installed}");
    assert_eq!(
        module_rules(api.cell, "financial").await,
        rules,
        "financial's rules on the bus"
    );
    assert_eq!(
        module_tables(api.cell, &tables).await,
        tables,
        "financial's tables"
    );

    let keys = "/api/v1/modules/financial/api-keys";
    let issued = api
        .send(
            Request::new("POST", keys)
                .bearer(&users.operator)
                .json(json!({})),
        )
        .await;
    expect(&issued, 201, "an API key of financial");
    let key = issued.json()["key"].as_str().unwrap_or_default().to_owned();

    let uninstall = "/api/v1/modules/financial/installation?drop_data=true";
    let asked = api
        .send(Request::new("DELETE", uninstall).bearer(&users.operator))
        .await;
    expect(&asked, 202, "uninstall financial, dropping its data");
    installation_reaches(api, users, "financial", "uninstalled").await;

    assert_eq!(
        module_rules(api.cell, "financial").await,
        Vec::<String>::new(),
        "rules left"
    );
    assert_eq!(
        module_tables(api.cell, &tables).await,
        Vec::<String>::new(),
        "tables left"
    );
    assert_eq!(
        function_tags(api.cell, FINANCIAL_FUNCTION).await,
        None,
        "financial's function is left"
    );
    let role = aws_sdk_iam::Client::new(&api.cell.sdk)
        .get_role()
        .role_name("plinth-module-financial")
        .send()
        .await;
    assert!(
        role.as_ref()
            .is_err_and(|e| e.as_service_error().is_some_and(
                aws_sdk_iam::operation::get_role::GetRoleError::is_no_such_entity_exception
            )),
        "financial's role is left: {role:?}"
    );
    let secret = aws_sdk_secretsmanager::Client::new(&api.cell.sdk)
        .describe_secret()
        .secret_id("plinth/module/financial/api-key")
        .send()
        .await;
    assert!(
        secret.as_ref().is_err_and(|e| e
            .as_service_error()
            .is_some_and(aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretError::is_resource_not_found_exception)),
        "financial's API key secret is left: {secret:?}"
    );
    let listed = api
        .send(Request::new("GET", keys).bearer(&users.operator))
        .await;
    expect(&listed, 200, "financial's API keys");
    assert_eq!(listed.json(), json!([]), "API keys left");
    let with_key = api
        .send(
            Request::new("GET", "/api/v1/modules/financial/installation")
                .header(plinth_module_sdk::wire::API_KEY_HEADER, &key),
        )
        .await;
    expect(&with_key, 401, "a key of the uninstalled module");
}

/// The rules of `module` on the platform's bus (`plinth-{module}-…`), by name.
async fn module_rules(cell: &Cell, module: &str) -> Vec<String> {
    let listed = aws_sdk_eventbridge::Client::new(&cell.sdk)
        .list_rules()
        .event_bus_name(&cell.bus)
        .name_prefix(format!("plinth-{module}-"))
        .send()
        .await
        .expect("list the bus's rules");
    let mut names: Vec<String> = listed
        .rules()
        .iter()
        .filter_map(|r| r.name().map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// Which of `tables` DynamoDB lists.
async fn module_tables(cell: &Cell, tables: &[String]) -> Vec<String> {
    let dynamodb = aws_sdk_dynamodb::Client::new(&cell.sdk);
    let mut listed = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = dynamodb
            .list_tables()
            .set_exclusive_start_table_name(after.take())
            .send()
            .await
            .expect("list the tables");
        listed.extend(page.table_names().iter().cloned());
        match page.last_evaluated_table_name() {
            Some(last) => after = Some(last.to_owned()),
            None => break,
        }
    }
    let mut found: Vec<String> = tables
        .iter()
        .filter(|t| listed.contains(t))
        .cloned()
        .collect();
    found.sort();
    found
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

/// The ECS module: notifications published and its image pushed, installed by the installer
/// function as an ECS service (its tasks run by the `Containers` shim); a paid invoice of
/// financial — the Lambda module — goes on the platform's bus, EventBridge puts it in
/// notifications' queue (its rule's SQS target, as moto delivers it), the SDK's consumer in the
/// container handles it, and the notification it made is read through the authorizer and the
/// registry API, which reach the task at its private address.
async fn ecs_module_gets_its_events(api: &ApiGateway<'_>, users: &Users) {
    let Some(containers) = &api.cell.containers else {
        eprintln!("cell: no ECS module on this emulator");
        return;
    };
    let manifest = notifications_on_ecs();
    let published = api
        .send(
            Request::new("POST", "/api/v1/modules")
                .bearer(&users.operator)
                .json(manifest.clone()),
        )
        .await;
    expect(&published, 201, "publish notifications as an ECS module");
    let digest = push_image(api, &manifest, "1.0.0").await;
    version_published(api, users, "notifications", "1.0.0", &digest).await;
    let installed = install(api, users, "notifications", "1.0.0").await;
    let services = ecs_services(api.cell, "plinth-notifications").await;
    assert_eq!(services, ["ACTIVE"], "notifications' service: {installed}");
    assert_eq!(
        event_queues(api.cell, "notifications").await,
        [
            "plinth-notifications-events",
            "plinth-notifications-events-dlq"
        ],
        "notifications' queue and its dead-letter queue"
    );
    let enabled = api
        .send(
            Request::new("PUT", "/api/v1/tenants/acme/modules/notifications")
                .bearer(&users.admin)
                .json(json!({})),
        )
        .await;
    expect(&enabled, 200, "enable notifications for acme");

    let invoice = api
        .send(
            Request::new("POST", "/api/v1/financial/invoices")
                .bearer(&users.clerk)
                .json(json!({"customer": "Globex", "amount": 100})),
        )
        .await;
    expect(&invoice, 201, "an invoice of acme-de");
    let invoice = invoice.json();
    let number = invoice["number"].as_str().unwrap_or_default().to_owned();
    let paid = api
        .send(
            Request::new(
                "POST",
                &format!("/api/v1/financial/invoices/{number}/payments"),
            )
            .bearer(&users.clerk)
            .json(json!({"amount": invoice["total"]})),
        )
        .await;
    expect(&paid, 200, "the invoice paid in full");

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sent = api
            .send(Request::new("GET", "/api/v1/notifications/sent").bearer(&users.admin))
            .await;
        if sent.status == 200 && sent.body.contains(&number) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the paid invoice {number} made no notification: GET /sent answered {} {}\n\
             the container's output:\n{}\nthe registry API's log:\n{}",
            sent.status,
            sent.body,
            containers.log(NOTIFICATIONS_REPOSITORY),
            api.cell.log(REGISTRY_API)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Uninstalling notifications, dropping its data, leaves nothing of it on the emulator: no
/// service, no active task definition, no queue, no rule, no role, no secret; and its
/// container stops.
async fn ecs_uninstall_leaves_nothing(api: &ApiGateway<'_>, users: &Users) {
    let Some(containers) = &api.cell.containers else {
        return;
    };
    let asked = api
        .send(
            Request::new(
                "DELETE",
                "/api/v1/modules/notifications/installation?drop_data=true",
            )
            .bearer(&users.operator),
        )
        .await;
    expect(
        &asked,
        202,
        "uninstall notifications, dropping its data (its queues)",
    );
    installation_reaches(api, users, "notifications", "uninstalled").await;
    let cell = api.cell;
    assert_eq!(
        ecs_services(cell, "plinth-notifications").await,
        Vec::<String>::new(),
        "services left"
    );
    let definitions = aws_sdk_ecs::Client::new(&cell.sdk)
        .list_task_definitions()
        .family_prefix("plinth-notifications")
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
        .send()
        .await
        .expect("list task definitions");
    assert_eq!(
        definitions.task_definition_arns(),
        Vec::<String>::new(),
        "active task definitions left"
    );
    assert_eq!(
        event_queues(cell, "notifications").await,
        Vec::<String>::new(),
        "queues left"
    );
    assert_eq!(
        module_rules(cell, "notifications").await,
        Vec::<String>::new(),
        "rules left"
    );
    let role = aws_sdk_iam::Client::new(&cell.sdk)
        .get_role()
        .role_name("plinth-module-notifications")
        .send()
        .await;
    assert!(role.is_err(), "notifications' role is left: {role:?}");
    let secret = aws_sdk_secretsmanager::Client::new(&cell.sdk)
        .describe_secret()
        .secret_id("plinth/module/notifications/api-key")
        .send()
        .await;
    assert!(secret.is_err(), "notifications' secret is left: {secret:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while containers.running() > 0 {
        assert!(Instant::now() < deadline, "a container still runs");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The status of each service named `name` in the cell's cluster that is not gone.
async fn ecs_services(cell: &Cell, name: &str) -> Vec<String> {
    let described = aws_sdk_ecs::Client::new(&cell.sdk)
        .describe_services()
        .cluster(&cell.cluster)
        .services(name)
        .send()
        .await
        .expect("describe services");
    described
        .services()
        .iter()
        .filter_map(|s| s.status())
        .filter(|status| *status != "INACTIVE")
        .map(str::to_owned)
        .collect()
}

/// The names of the SQS queues of `module` (`plinth-{module}-…`).
async fn event_queues(cell: &Cell, module: &str) -> Vec<String> {
    let listed = aws_sdk_sqs::Client::new(&cell.sdk)
        .list_queues()
        .queue_name_prefix(format!("plinth-{module}-"))
        .send()
        .await
        .expect("list queues");
    let mut names: Vec<String> = listed
        .queue_urls()
        .iter()
        .filter_map(|url| url.rsplit('/').next().map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// Usage on AWS: the module requests of the access log (the `AccessLog` shim hands over what
/// the `ApiGateway` shim logged, as CloudWatch Logs delivers it — twice here, as it may) and
/// the events on the bus (the usage rule) reach the usage function; the registry API's report
/// then has each module request of acme once, none of the refused ones, and — with the ECS
/// module — the paid invoice's event published by financial and delivered to notifications.
async fn usage_is_metered(api: &ApiGateway<'_>, users: &Users) {
    let (delivery, lines) = api
        .cell
        .access_log
        .delivery()
        .expect("the module requests were logged");
    let logged = |module: &str| {
        let module = format!(r#""module":"{module}""#);
        lines
            .iter()
            .filter(|line| line.contains(r#""tenant":"acme""#) && line.contains(&module))
            .count() as u64
    };
    let (financial, notifications) = (logged("financial"), logged("notifications"));
    assert!(
        financial >= 3 && notifications >= 1 && lines.len() as u64 > financial + notifications,
        "allowed and refused module requests were logged: {lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line.contains(r#""status":"201""#)
                && !line.contains(r#""requestBytes":"0""#)),
        "the invoice's POST carried its declared length: {lines:#?}"
    );
    for _ in 0..2 {
        let counted = api.cell.invoke(USAGE, &delivery).await;
        assert!(
            counted.function_error.is_none(),
            "the usage function failed: {:?}\n{}",
            counted.payload,
            api.cell.log(USAGE)
        );
    }
    let with_events = api.cell.containers.is_some();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let report = api
            .send(Request::new("GET", "/api/v1/tenants/acme/usage").bearer(&users.admin))
            .await;
        expect(&report, 200, "acme's usage, from the registry API");
        let report = report.json();
        let row = |module: &str| {
            report["tenants"][0]["rows"]
                .as_array()
                .and_then(|rows| rows.iter().find(|row| row["module"] == module))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let requests = |module: &str| row(module)["requests"].as_u64().unwrap_or(0);
        let counted =
            requests("financial") == financial && requests("notifications") == notifications;
        let events = !with_events
            || (row("financial")["events_published"].as_u64() >= Some(1)
                && row("notifications")["events_delivered"].as_u64() >= Some(1));
        if counted && events {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "acme's usage is not what the access log and the bus carried ({financial} financial \
             and {notifications} notifications requests logged): {report:#}\nthe usage \
             function's log:\n{}",
            api.cell.log(USAGE)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
