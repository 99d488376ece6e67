//! Findings 1 and 2 of "Modules on AWS": the platform reaches a Lambda module's hooks and
//! health check through Lambda `Invoke` — here the example financial module's own binary,
//! run as Lambda runs it under cargo-lambda's runtime emulator.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_lambda::config::{Credentials, Region};
use axum::http::{Method, StatusCode};
use plinth_module_sdk::Manifest;
use plinth_registry::deploy::{DeployError, DeploySpec, Deployer, Deployment};
use plinth_registry::hooks::ModuleHooks;
use plinth_registry::instances::Health;
use plinth_registry::reach::lambda::LambdaReach;
use plinth_registry::reach::{Call, Reach, Reaches};
use serde_json::json;

use crate::support::api::{TestPlatform, financial, operator};
use crate::support::lambda_emulator::{Function, LambdaEmulator, workspace_binary};

const FUNCTION: &str = "plinth-financial";
const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:plinth-financial";

/// What the Lambda deployer gives back for the financial module (its creation is tested in
/// `lambda.rs`; moto cannot run the function, the emulator can).
#[derive(Debug)]
struct DeployedFunction;

#[async_trait]
impl Deployer for DeployedFunction {
    async fn deploy(&self, spec: &DeploySpec) -> Result<Deployment, DeployError> {
        let endpoint = format!("lambda:{ARN}");
        let health = spec
            .manifest
            .backend
            .health_check
            .as_deref()
            .unwrap_or("/health");
        Ok(Deployment {
            health_url: format!("{endpoint}{health}"),
            endpoint,
            addresses: Vec::new(),
            handle: json!({"function_arn": ARN}),
        })
    }

    async fn undeploy(&self, _: &Manifest, _: &Deployment) -> Result<(), DeployError> {
        Ok(())
    }
}

async fn reach_through(emulator: &LambdaEmulator) -> Arc<dyn Reach> {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(&emulator.endpoint)
        .load()
        .await;
    Arc::new(Reaches::with_lambda(Arc::new(LambdaReach::new(&sdk))))
}

#[tokio::test]
async fn hooks_and_health_checks_of_a_lambda_module_go_through_invoke() {
    let binary = workspace_binary("plinth-example-financial", "financial");
    let function = Function {
        name: FUNCTION,
        binary: &binary,
        env: &[("RUST_LOG", "warn")],
    };
    let Some(mut emulator) = LambdaEmulator::start(
        "hooks_and_health_checks_of_a_lambda_module_go_through_invoke",
        std::slice::from_ref(&function),
    )
    .await
    else {
        return;
    };
    let reach = reach_through(&emulator).await;

    // The module answers its health check through Invoke, as API Gateway would ask it.
    let health = reach
        .call(&Call::get(
            format!("lambda:{ARN}/health"),
            Duration::from_secs(10),
        ))
        .await
        .unwrap();
    assert_eq!(health.status, 200, "{}", health.body);
    assert!(health.body.contains("financial"), "{}", health.body);

    let hooks = ModuleHooks::new(Arc::clone(&reach)).with_timeout(Duration::from_secs(10));
    let p = TestPlatform::embedded_adapted(|ports| {
        ports
            .with_deployer(Arc::new(DeployedFunction))
            .with_reach(reach)
            .with_hooks(Arc::new(hooks))
    });
    p.call(
        Method::POST,
        "/api/v1/modules",
        operator(),
        Some(financial()),
    )
    .await
    .expect(StatusCode::CREATED);
    p.call(
        Method::POST,
        "/api/v1/modules/financial/install",
        operator(),
        Some(json!({"version": "1.2.0"})),
    )
    .await
    .expect(StatusCode::ACCEPTED);
    let installation = p.settled("financial").await;
    assert_eq!(installation["status"], "installed", "{installation}");
    let post_install = installation["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "post_install")
        .expect("a post_install step");
    assert_eq!(
        (&post_install["status"], &post_install["detail"]),
        (&json!("done"), &json!("ok")),
        "{installation}"
    );

    // The health checker keeps the function healthy while it answers…
    let module = plinth_module_sdk::ModuleName::parse("financial").unwrap();
    let instances = &p.app.plane.instances;
    assert_eq!(instances.check_health().await.unwrap(), 0);
    let listed = instances.list(&module).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].url.as_str(), listed[0].health),
        (format!("lambda:{ARN}").as_str(), Health::Healthy)
    );
    // …and marks it unhealthy when it no longer does.
    emulator.stop(FUNCTION);
    assert_eq!(instances.check_health().await.unwrap(), 1);
    assert_eq!(
        instances.list(&module).await.unwrap()[0].health,
        Health::Unhealthy
    );
}

#[tokio::test]
async fn a_lambda_url_without_a_lambda_client_says_so() {
    let answer = Reaches::http()
        .call(&Call::get(
            format!("lambda:{ARN}/health"),
            Duration::from_secs(1),
        ))
        .await;
    let error = answer.unwrap_err().to_string();
    assert!(error.contains("no Lambda client"), "{error}");
}
