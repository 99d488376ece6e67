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

use plinth_registry::identity::{Claims, mint_token};
use serde_json::{Value, json};

use api_gateway::{ApiGateway, Request, Response};
use module_backend::ModuleBackend;
use platform::{Cell, INSTALLER};

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

    let secret = cell.jwt_secret().await;
    let operator = token(&secret, "ops", None, None, &["platform:admin"]);
    let published = api
        .send(
            Request::new("POST", "/api/v1/modules")
                .bearer(&operator)
                .json(financial()),
        )
        .await;
    expect(&published, 201, "publish financial");

    // The installation: requested through the registry API, run by the installer function
    // on the event the bus's rule would deliver (EventBridge → Lambda is not emulated).
    let module = ModuleBackend::start().await;
    let install = json!({"version": "1.2.0", "endpoint": module.url});
    let requested = api
        .send(
            Request::new("POST", "/api/v1/modules/financial/install")
                .bearer(&operator)
                .json(install),
        )
        .await;
    expect(&requested, 202, "install financial");
    let ran = cell
        .invoke(INSTALLER, &install_requested("financial"))
        .await;
    assert!(
        ran.function_error.is_none() && ran.status == 200,
        "the installer failed: {ran:?}\n{}",
        cell.log(INSTALLER)
    );
    let status = api
        .send(Request::new("GET", "/api/v1/modules/financial/installation").bearer(&operator))
        .await;
    expect(&status, 200, "the installation");
    assert_eq!(status.json()["status"], "installed", "{}", status.body);

    let tenant = json!({"id": "acme", "name": "ACME", "subscription_tier": "premium"});
    let created = api
        .send(
            Request::new("POST", "/api/v1/tenants")
                .bearer(&operator)
                .json(tenant),
        )
        .await;
    expect(&created, 201, "create tenant acme");
    let admin = token(&secret, "boss", Some("acme"), None, &["tenant:admin"]);
    let company = json!({"id": "acme-de", "name": "ACME GmbH"});
    let created = api
        .send(
            Request::new("POST", "/api/v1/tenants/acme/companies")
                .bearer(&admin)
                .json(company),
        )
        .await;
    expect(&created, 201, "create company acme-de");
    let enabled = api
        .send(
            Request::new("PUT", "/api/v1/tenants/acme/modules/financial")
                .bearer(&admin)
                .json(json!({})),
        )
        .await;
    expect(&enabled, 200, "enable financial for acme");

    let alice = token(&secret, "alice", Some("acme"), Some("acme-de"), &[]);
    let config = "/api/v1/tenants/acme/modules/financial/config?company=acme-de";
    let first = api.send(Request::new("GET", config).bearer(&alice)).await;
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
                .bearer(&alice)
                .header("if-none-match", &etag),
        )
        .await;
    expect(&again, 304, "the same config again, If-None-Match");

    eprintln!(
        "the cell took {:.1} s (the module got {} calls)",
        started.elapsed().as_secs_f64(),
        module.calls()
    );
}
