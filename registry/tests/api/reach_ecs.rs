//! Finding 1 of "Modules on AWS", ECS half: an ECS service's endpoint is a Service Connect
//! name only API Gateway's VPC link resolves. The platform calls the module's hooks, and checks
//! its health, at its tasks' own addresses (the deployment's `addresses`, registered as
//! instances) — never at that name.

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use plinth_module_sdk::{Manifest, ModuleName};
use plinth_registry::deploy::{DeployError, DeploySpec, Deployer, Deployment};
use plinth_registry::instances::Health;
use serde_json::json;

use crate::support::api::{TestPlatform, operator};
use crate::support::fakes::Backend;

/// What the ECS deployer gives back: the Service Connect endpoint, and the address of the
/// task running the version deployed (`tasks`: version → task address).
#[derive(Debug)]
struct EcsService {
    tasks: Vec<(&'static str, String)>,
}

#[async_trait]
impl Deployer for EcsService {
    async fn deploy(&self, spec: &DeploySpec) -> Result<Deployment, DeployError> {
        let endpoint = "http://ledger.plinth-dev.internal:8080".to_owned();
        let version = spec.manifest.version.to_string();
        let task = self
            .tasks
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, task)| task.clone())
            .ok_or_else(|| DeployError(format!("no task for {version}")))?;
        Ok(Deployment {
            health_url: format!("{endpoint}/health"),
            endpoint,
            addresses: vec![task],
            handle: json!({"service": "plinth-ledger"}),
        })
    }

    async fn undeploy(&self, _: &Manifest, _: &Deployment) -> Result<(), DeployError> {
        Ok(())
    }
}

/// Asks `operation` (install, upgrade) of ledger at `version` and waits until it settles.
async fn run(p: &TestPlatform, operation: &str, version: &str) -> serde_json::Value {
    p.call(
        Method::POST,
        &format!("/api/v1/modules/ledger/{operation}"),
        operator(),
        Some(json!({"version": version})),
    )
    .await
    .expect(StatusCode::ACCEPTED);
    p.settled("ledger").await
}

#[tokio::test]
async fn hooks_and_health_checks_of_an_ecs_module_go_to_its_tasks_not_its_service_name() {
    let backend = Backend::default();
    let task = backend.start().await;
    let p = TestPlatform::embedded_adapted(|ports| {
        ports.with_deployer(Arc::new(EcsService {
            tasks: vec![("1.0.0", task.clone())],
        }))
    });
    let manifest = json!({
        "name": "ledger", "display_name": "Ledger", "version": "1.0.0",
        "backend": {"type": "microservice", "api_prefix": "/api/v1/ledger", "health_check": "/health"},
        "hooks": {"post_install": "/_plinth/hooks/post_install"}
    });
    p.call(Method::POST, "/api/v1/modules", operator(), Some(manifest))
        .await
        .expect(StatusCode::CREATED);
    let installation = run(&p, "install", "1.0.0").await;
    assert_eq!(installation["status"], "installed", "{installation}");
    assert_eq!(backend.hooks_called(), ["post_install"]);

    let module = ModuleName::parse("ledger").unwrap();
    let instances = &p.app.plane.instances;
    let listed = instances.list(&module).await.unwrap();
    assert_eq!(
        listed.iter().map(|i| i.url.as_str()).collect::<Vec<_>>(),
        [task.as_str()],
        "the task is the instance, not the service name"
    );
    assert_eq!(instances.check_health().await.unwrap(), 0);
    assert_eq!(
        instances.list(&module).await.unwrap()[0].health,
        Health::Healthy
    );
}

/// An upgrade replaces the module's tasks: its hooks go to the new version's task, never to the
/// previous one's, which ECS has stopped (the health checker has not noticed yet).
#[tokio::test]
async fn an_upgrades_hooks_go_to_the_new_tasks_not_the_stopped_ones() {
    let backend = Backend::default();
    let new_task = backend.start().await;
    // The old task's address answers nothing any more (and sorts first).
    let old_task = "http://127.0.0.1:1".to_owned();
    let p = TestPlatform::embedded_adapted(|ports| {
        ports.with_deployer(Arc::new(EcsService {
            tasks: vec![("1.0.0", old_task.clone()), ("1.1.0", new_task.clone())],
        }))
    });
    let ledger = |version: &str, hooks: serde_json::Value| {
        json!({
            "name": "ledger", "display_name": "Ledger", "version": version,
            "backend": {"type": "microservice", "api_prefix": "/api/v1/ledger", "health_check": "/health"},
            "hooks": hooks
        })
    };
    for manifest in [
        ledger("1.0.0", json!({})),
        ledger(
            "1.1.0",
            json!({"post_install": "/_plinth/hooks/post_install"}),
        ),
    ] {
        p.call(Method::POST, "/api/v1/modules", operator(), Some(manifest))
            .await
            .expect(StatusCode::CREATED);
    }
    assert_eq!(run(&p, "install", "1.0.0").await["status"], "installed");

    let upgraded = run(&p, "upgrade", "1.1.0").await;
    assert_eq!(upgraded["status"], "installed", "{upgraded}");
    assert_eq!(backend.hooks_called(), ["post_install"]);
    let module = ModuleName::parse("ledger").unwrap();
    let urls: Vec<String> = p
        .app
        .plane
        .instances
        .list(&module)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.url)
        .collect();
    assert_eq!(
        urls,
        [new_task],
        "the stopped task is no longer an instance"
    );
}
