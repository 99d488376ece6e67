//! `EcsDeployer` on the emulator: the image pinned by digest, one service per module,
//! updated in place, removed on undeploy.

use aws_config::SdkConfig;
use aws_sdk_ecs::types::{Service, TaskDefinition};
use plinth_module_sdk::Manifest;
use plinth_registry::deploy::Deployer;
use plinth_registry::deploy::ecs::{EcsDeployer, EcsHandle, EcsSettings};
use serde_json::json;

use crate::moto::{ecr_repository, ecs_config, manifest, push_image, sdk, spec, unique_module};

/// A module `name` whose image is `{name}:{version}` in ECR.
fn module(name: &str, version: &str) -> Manifest {
    let backend = json!({
        "type": "microservice",
        "image": format!("{name}:{version}"),
        "port": 9000,
        "cpu": 512,
        "memory": 1024,
        "health_check": "/health",
        "env": {"RUST_LOG": "info"}
    });
    manifest(name, version, backend, None)
}

struct Setup {
    sdk: SdkConfig,
    config: EcsSettings,
    deployer: EcsDeployer,
    name: String,
    repository_uri: String,
}

async fn setup(test: &str) -> Option<Setup> {
    let sdk = sdk(test).await?;
    let name = unique_module("ecs");
    let config = ecs_config(&sdk, &name).await;
    let repository_uri = ecr_repository(&sdk, &name).await;
    Some(Setup {
        deployer: EcsDeployer::new(&sdk, config.clone()),
        sdk,
        config,
        name,
        repository_uri,
    })
}

impl Setup {
    fn ecs(&self) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::new(&self.sdk)
    }

    async fn services(&self) -> Vec<String> {
        let listed = self
            .ecs()
            .list_services()
            .cluster(&self.config.cluster)
            .send()
            .await;
        listed.expect("list services").service_arns().to_vec()
    }

    async fn service(&self) -> Service {
        let described = self
            .ecs()
            .describe_services()
            .cluster(&self.config.cluster)
            .services(format!("plinth-{}", self.name))
            .send()
            .await
            .expect("describe services");
        described.services().first().cloned().expect("the service")
    }

    async fn task_definition(&self, arn: &str) -> TaskDefinition {
        let described = self
            .ecs()
            .describe_task_definition()
            .task_definition(arn)
            .send()
            .await;
        described
            .expect("describe task definition")
            .task_definition()
            .cloned()
            .expect("it")
    }

    async fn revisions(&self) -> usize {
        let listed = self
            .ecs()
            .list_task_definitions()
            .family_prefix(format!("plinth-{}", self.name))
            .send()
            .await
            .expect("list task definitions");
        listed.task_definition_arns().len()
    }
}

fn handle(deployment: &plinth_registry::deploy::Deployment) -> EcsHandle {
    serde_json::from_value(deployment.handle.clone()).expect("an ECS handle")
}

/// The task definition runs `pinned` as the manifest of `module(name, …)` asks.
fn assert_runs(definition: &TaskDefinition, name: &str, pinned: &str) {
    assert_eq!(definition.family(), Some(format!("plinth-{name}").as_str()));
    assert_eq!(definition.cpu(), Some("512"));
    assert_eq!(definition.memory(), Some("1024"));
    assert_eq!(
        definition.network_mode().map(|m| m.as_str()),
        Some("awsvpc")
    );
    let fargate = definition
        .requires_compatibilities()
        .iter()
        .map(|c| c.as_str());
    assert_eq!(fargate.collect::<Vec<_>>(), ["FARGATE"]);
    let container = &definition.container_definitions()[0];
    assert_eq!(container.image(), Some(pinned));
    assert_eq!(container.port_mappings()[0].container_port(), Some(9000));
    let env: Vec<_> = container
        .environment()
        .iter()
        .map(|kv| (kv.name().unwrap(), kv.value().unwrap()))
        .collect();
    assert!(env.contains(&("RUST_LOG", "info")), "{env:?}");
    assert!(env.contains(&("PORT", "9000")), "{env:?}");
    assert!(env.contains(&("PLINTH_MODULE", name)), "{env:?}");
    let check = container
        .health_check()
        .expect("a health check")
        .command()
        .join(" ");
    assert!(check.contains("http://localhost:9000/health"), "{check}");
}

#[tokio::test]
async fn deploy_runs_the_image_pinned_by_digest() {
    let Some(setup) = setup("deploy_runs_the_image_pinned_by_digest").await else {
        return;
    };
    let digest = push_image(&setup.sdk, &setup.name, "1.0.0").await;
    let manifest = module(&setup.name, "1.0.0");

    let deployment = setup
        .deployer
        .deploy(&spec(&manifest, None))
        .await
        .expect("deploy");

    let endpoint = format!("http://{}.plinth.internal:9000", setup.name);
    assert_eq!(deployment.endpoint, endpoint);
    assert_eq!(deployment.health_url, format!("{endpoint}/health"));
    let handle = handle(&deployment);
    let pinned = format!("{}@{digest}", setup.repository_uri);
    assert_eq!(handle.image, pinned);
    assert_eq!(handle.cluster, setup.config.cluster);

    let definition = setup.task_definition(&handle.task_definition_arn).await;
    assert_runs(&definition, &setup.name, &pinned);

    let service = setup.service().await;
    assert_eq!(service.status(), Some("ACTIVE"));
    assert_eq!(service.service_arn(), Some(handle.service_arn.as_str()));
    assert_eq!(
        service.task_definition(),
        Some(handle.task_definition_arn.as_str())
    );
    assert_eq!(service.desired_count(), 1);
    assert_eq!(service.launch_type().map(|l| l.as_str()), Some("FARGATE"));
}

#[tokio::test]
async fn deploying_again_keeps_one_service_and_an_upgrade_updates_it() {
    let Some(setup) = setup("deploying_again_keeps_one_service_and_an_upgrade_updates_it").await
    else {
        return;
    };
    push_image(&setup.sdk, &setup.name, "1.0.0").await;
    let v1 = module(&setup.name, "1.0.0");
    let first = setup
        .deployer
        .deploy(&spec(&v1, None))
        .await
        .expect("deploy");
    let again = setup
        .deployer
        .deploy(&spec(&v1, None))
        .await
        .expect("deploy again");

    assert_eq!(
        again, first,
        "the same version deploys to the same deployment"
    );
    assert_eq!(setup.services().await.len(), 1);
    assert_eq!(setup.revisions().await, 1, "nothing new was registered");

    let digest = push_image(&setup.sdk, &setup.name, "1.1.0").await;
    let v2 = module(&setup.name, "1.1.0");
    let upgraded = setup
        .deployer
        .deploy(&spec(&v2, None))
        .await
        .expect("upgrade");

    let (first, upgraded) = (handle(&first), handle(&upgraded));
    assert_eq!(
        upgraded.service_arn, first.service_arn,
        "the service is updated in place"
    );
    assert_ne!(upgraded.task_definition_arn, first.task_definition_arn);
    assert_eq!(upgraded.image, format!("{}@{digest}", setup.repository_uri));
    assert_eq!(setup.services().await.len(), 1);
    let service = setup.service().await;
    assert_eq!(
        service.task_definition(),
        Some(upgraded.task_definition_arn.as_str())
    );
}

#[tokio::test]
async fn undeploy_removes_the_service_and_tolerates_it_gone() {
    let Some(setup) = setup("undeploy_removes_the_service_and_tolerates_it_gone").await else {
        return;
    };
    push_image(&setup.sdk, &setup.name, "1.0.0").await;
    let manifest = module(&setup.name, "1.0.0");
    let deployment = setup
        .deployer
        .deploy(&spec(&manifest, None))
        .await
        .expect("deploy");

    setup
        .deployer
        .undeploy(&manifest, &deployment)
        .await
        .expect("undeploy");

    let service = setup.service().await;
    assert_eq!(
        service.status(),
        Some("INACTIVE"),
        "deleted services go inactive"
    );
    assert_eq!(service.desired_count(), 0);
    setup
        .deployer
        .undeploy(&manifest, &deployment)
        .await
        .expect("undeploy again");

    let redeployed = setup
        .deployer
        .deploy(&spec(&manifest, None))
        .await
        .expect("redeploy");
    assert_eq!(setup.service().await.status(), Some("ACTIVE"));
    assert_ne!(
        handle(&redeployed).task_definition_arn,
        handle(&deployment).task_definition_arn
    );
}

#[tokio::test]
async fn undeploying_a_replaced_deployment_leaves_the_newer_one_running() {
    let test = "undeploying_a_replaced_deployment_leaves_the_newer_one_running";
    let Some(setup) = setup(test).await else {
        return;
    };
    push_image(&setup.sdk, &setup.name, "1.0.0").await;
    push_image(&setup.sdk, &setup.name, "2.0.0").await;
    let (v1, v2) = (module(&setup.name, "1.0.0"), module(&setup.name, "2.0.0"));
    let old = setup
        .deployer
        .deploy(&spec(&v1, None))
        .await
        .expect("deploy v1");
    let new = setup
        .deployer
        .deploy(&spec(&v2, None))
        .await
        .expect("deploy v2");

    setup
        .deployer
        .undeploy(&v1, &old)
        .await
        .expect("undeploy v1");

    let service = setup.service().await;
    assert_eq!(service.status(), Some("ACTIVE"));
    assert_eq!(
        service.task_definition(),
        Some(handle(&new).task_definition_arn.as_str())
    );
}

#[tokio::test]
async fn a_tag_missing_in_ecr_is_an_error_naming_the_image() {
    let Some(setup) = setup("a_tag_missing_in_ecr_is_an_error_naming_the_image").await else {
        return;
    };
    push_image(&setup.sdk, &setup.name, "1.0.0").await;
    let manifest = module(&setup.name, "9.9.9");

    let error = setup
        .deployer
        .deploy(&spec(&manifest, None))
        .await
        .unwrap_err();

    assert_eq!(
        error.to_string(),
        format!(
            "image `{0}:9.9.9` is not in ECR: repository `{0}` has no tag `9.9.9`; push it first",
            setup.name
        )
    );
    assert!(setup.services().await.is_empty(), "nothing was created");
    assert_eq!(setup.revisions().await, 0);
}

#[tokio::test]
async fn a_repository_missing_in_ecr_is_an_error_naming_it() {
    let Some(setup) = setup("a_repository_missing_in_ecr_is_an_error_naming_it").await else {
        return;
    };
    let mut manifest = module(&setup.name, "1.0.0");
    manifest.backend.image = Some("nobody-pushed-this:1.0.0".into());

    let error = setup
        .deployer
        .deploy(&spec(&manifest, None))
        .await
        .unwrap_err();

    assert_eq!(
        error.to_string(),
        "image `nobody-pushed-this:1.0.0` is not in ECR: there is no repository `nobody-pushed-this`"
    );
}

#[tokio::test]
async fn a_digest_recorded_at_push_is_used_as_it_is() {
    let Some(setup) = setup("a_digest_recorded_at_push_is_used_as_it_is").await else {
        return;
    };
    let recorded = push_image(&setup.sdk, &setup.name, "1.0.0").await;
    push_image(&setup.sdk, &setup.name, "1.0.0-moved").await;
    let mut manifest = module(&setup.name, "1.0.0");
    // The tag has since moved elsewhere; the version runs what was pushed for it.
    manifest.backend.image = Some(format!("{}:1.0.0-moved", setup.name));

    let deployment = setup
        .deployer
        .deploy(&spec(&manifest, Some(&recorded)))
        .await
        .expect("deploy");

    assert_eq!(
        handle(&deployment).image,
        format!("{}@{recorded}", setup.repository_uri)
    );
}

#[tokio::test]
async fn a_missing_cluster_is_named() {
    let Some(setup) = setup("a_missing_cluster_is_named").await else {
        return;
    };
    push_image(&setup.sdk, &setup.name, "1.0.0").await;
    let config = EcsSettings {
        cluster: "no-such-cluster".into(),
        ..setup.config.clone()
    };
    let deployer = EcsDeployer::new(&setup.sdk, config);

    let error = deployer
        .deploy(&spec(&module(&setup.name, "1.0.0"), None))
        .await
        .unwrap_err();

    let message = error.to_string();
    assert!(message.contains("cluster `no-such-cluster`"), "{message}");
    assert!(message.contains("ClusterNotFoundException"), "{message}");
}
