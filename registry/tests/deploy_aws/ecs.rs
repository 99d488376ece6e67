//! `EcsDeployer` on the emulator: the image pinned by digest, one service per module,
//! updated in place, removed on undeploy; a deploy waits for running tasks (started here by
//! [`EcsScheduler`], since the emulator's services start none) and is undone when they do
//! not come; the tasks' private addresses; the container health check; autoscaling.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_ecs::types::{Service, TaskDefinition};
use plinth_module_sdk::Manifest;
use plinth_registry::deploy::Deployer;
use plinth_registry::deploy::ecs::{EcsDeployer, EcsHandle, EcsSettings};
use serde_json::json;

use crate::moto::{
    CRASHED, EcsScheduler, Fate, TaskFate, ecr_repository, ecs_config, manifest, push_image,
    running_tasks, sdk, spec, unique_module,
};

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
    scheduler: EcsScheduler,
}

async fn setup(test: &str) -> Option<Setup> {
    let sdk = sdk(test).await?;
    let name = unique_module("ecs");
    let config = ecs_config(&sdk, &name).await;
    let repository_uri = ecr_repository(&sdk, &name).await;
    let scheduler = EcsScheduler::start(&sdk, &config, Arc::new(|_: &str| TaskFate::Runs)).await;
    Some(Setup {
        deployer: EcsDeployer::new(&sdk, config.clone()),
        scheduler,
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

    /// ECS's scheduler from now on decides tasks' fate by `fate`.
    async fn schedule(&mut self, fate: Fate) {
        self.scheduler = EcsScheduler::start(&self.sdk, &self.config, fate).await;
    }

    /// A deployer that waits at most `timeout` for a steady service.
    fn impatient(&self, timeout: Duration) -> EcsDeployer {
        let config = EcsSettings {
            steady_timeout: timeout,
            ..self.config.clone()
        };
        EcsDeployer::new(&self.sdk, config)
    }

    /// The private addresses the emulator gave the running tasks of the module's service.
    async fn task_addresses(&self, port: u16) -> Vec<String> {
        let group = format!("service:plinth-{}", self.name);
        let tasks = running_tasks(&self.ecs(), &self.config.cluster).await;
        let mut addresses: Vec<String> = tasks
            .iter()
            .filter(|t| t.group() == Some(group.as_str()))
            .flat_map(|t| t.attachments().iter().flat_map(|a| a.details().to_vec()))
            .filter(|d| d.name() == Some("privateIPv4Address"))
            .map(|d| format!("http://{}:{port}", d.value().unwrap_or_default()))
            .collect();
        addresses.sort();
        addresses
    }

    async fn task_definition_status(&self, arn: &str) -> String {
        let definition = self.task_definition(arn).await;
        definition
            .status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default()
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
    let check = container.health_check().expect("a health check").command();
    assert_eq!(check, ["CMD", "/proc/1/exe", "health"]);
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

/// Finding 4: the deploy does not return before the service's tasks run healthy; when they
/// never do, it fails naming the service, the counts and why the last task stopped, and
/// removes the service it created.
#[tokio::test]
async fn ecs_deploy_waits_for_healthy_tasks_and_undoes_on_timeout() {
    let test = "ecs_deploy_waits_for_healthy_tasks_and_undoes_on_timeout";
    let Some(mut setup) = setup(test).await else {
        return;
    };
    push_image(&setup.sdk, &setup.name, "1.0.0").await;
    let manifest = module(&setup.name, "1.0.0");
    setup.schedule(Arc::new(|_: &str| TaskFate::Crashes)).await;

    let error = setup
        .impatient(Duration::from_secs(2))
        .deploy(&spec(&manifest, None))
        .await
        .unwrap_err()
        .to_string();

    let service = format!("plinth-{}", setup.name);
    assert!(
        error.starts_with(&format!(
            "service `{service}` in cluster `{}` was not steady with healthy tasks after 2s: 0 of 1 task(s) running the new task definition, 0 healthy",
            setup.config.cluster
        )),
        "{error}"
    );
    assert!(
        error.contains(&format!("its last task stopped: {CRASHED}")),
        "{error}"
    );
    assert!(error.ends_with("the service was removed"), "{error}");
    let gone = setup.service().await;
    assert_eq!(gone.status(), Some("INACTIVE"));
    let revision = gone
        .task_definition()
        .expect("its task definition")
        .to_owned();
    assert_eq!(setup.task_definition_status(&revision).await, "INACTIVE");

    // Tasks that come up healthy, late: the deploy waits for them.
    setup.schedule(Arc::new(|_: &str| TaskFate::Runs)).await;
    let deployment = setup
        .deployer
        .deploy(&spec(&manifest, None))
        .await
        .expect("deploy");
    assert_eq!(setup.service().await.running_count(), 1);
    assert_eq!(deployment.addresses.len(), 1, "{deployment:?}");
}

/// Finding 4, an upgrade: tasks of the new version never stay up, so the service goes back
/// to the version that ran.
#[tokio::test]
async fn an_upgrade_that_never_gets_healthy_puts_the_previous_version_back() {
    let test = "an_upgrade_that_never_gets_healthy_puts_the_previous_version_back";
    let Some(mut setup) = setup(test).await else {
        return;
    };
    push_image(&setup.sdk, &setup.name, "1.0.0").await;
    push_image(&setup.sdk, &setup.name, "2.0.0").await;
    let first = setup
        .deployer
        .deploy(&spec(&module(&setup.name, "1.0.0"), None))
        .await
        .expect("deploy v1");
    let v1 = handle(&first).task_definition_arn;
    let kept = v1.clone();
    setup
        .schedule(Arc::new(move |definition: &str| {
            if definition == kept {
                TaskFate::Runs
            } else {
                TaskFate::Crashes
            }
        }))
        .await;

    let error = setup
        .impatient(Duration::from_secs(2))
        .deploy(&spec(&module(&setup.name, "2.0.0"), None))
        .await
        .unwrap_err()
        .to_string();

    assert!(
        error.contains("was not steady with healthy tasks after 2s"),
        "{error}"
    );
    assert!(error.contains(CRASHED), "{error}");
    assert!(
        error.ends_with(&format!("the service was put back on `{v1}`")),
        "{error}"
    );
    let service = setup.service().await;
    assert_eq!(service.status(), Some("ACTIVE"));
    assert_eq!(service.task_definition(), Some(v1.as_str()));
    assert_eq!(setup.revisions().await, 1, "v2's revision is deregistered");
    let v2 = format!("{}:2", v1.rsplit_once(':').expect("a revision").0);
    assert_eq!(setup.task_definition_status(&v2).await, "INACTIVE");
}

/// Finding 3: the deployment names each task's private address (never 127.0.0.1), and each
/// becomes an instance with the module's health path.
#[tokio::test]
async fn ecs_tasks_are_found_at_their_private_addresses_never_loopback() {
    let test = "ecs_tasks_are_found_at_their_private_addresses_never_loopback";
    let Some(setup) = setup(test).await else {
        return;
    };
    push_image(&setup.sdk, &setup.name, "1.0.0").await;
    let mut manifest = module(&setup.name, "1.0.0");
    manifest.backend.scaling = Some(plinth_module_sdk::manifest::Scaling {
        min_tasks: 2,
        max_tasks: 3,
        target_cpu_percent: None,
    });

    let deployment = setup
        .deployer
        .deploy(&spec(&manifest, None))
        .await
        .expect("deploy");

    let addresses = setup.task_addresses(9000).await;
    assert_eq!(addresses.len(), 2, "{addresses:?}");
    assert_eq!(deployment.addresses, addresses);
    assert!(addresses.iter().all(|a| !a.contains("127.0.0.1")));
    let instances = deployment.instances();
    let urls: Vec<_> = instances.iter().map(|i| i.endpoint.clone()).collect();
    assert_eq!(urls, addresses);
    assert_eq!(instances[0].health_url, format!("{}/health", addresses[0]));
    assert_eq!(
        deployment.endpoint,
        format!("http://{}.plinth.internal:9000", setup.name),
        "API Gateway still reaches the service by its Service Connect name"
    );
}

/// Finding 6: the container checks itself with the module binary's `health` subcommand, or
/// the manifest's own command; never curl or wget.
#[tokio::test]
async fn the_container_health_check_runs_the_module_binary_not_curl() {
    let test = "the_container_health_check_runs_the_module_binary_not_curl";
    let Some(setup) = setup(test).await else {
        return;
    };
    push_image(&setup.sdk, &setup.name, "1.0.0").await;
    let mut manifest = module(&setup.name, "1.0.0");
    let own = ["CMD", "/app/billing", "health", "--port", "9000"];
    manifest.backend.health_check_command = Some(own.map(String::from).to_vec());

    let deployment = setup
        .deployer
        .deploy(&spec(&manifest, None))
        .await
        .expect("deploy");

    let definition = setup
        .task_definition(&handle(&deployment).task_definition_arn)
        .await;
    let check = definition.container_definitions()[0]
        .health_check()
        .expect("a health check");
    assert_eq!(check.command(), own);
    assert_eq!(check.interval(), Some(30));
    assert_eq!(check.start_period(), Some(60));
}

/// Deliver 9: `backend.scaling` becomes a scalable target on the service's desired count,
/// `max_tasks` capped by the platform, and a CPU target-tracking policy; undeploy removes
/// both.
#[tokio::test]
async fn scaling_tracks_cpu_within_the_capped_bounds_and_undeploy_removes_it() {
    let test = "scaling_tracks_cpu_within_the_capped_bounds_and_undeploy_removes_it";
    let Some(setup) = setup(test).await else {
        return;
    };
    push_image(&setup.sdk, &setup.name, "1.0.0").await;
    let mut manifest = module(&setup.name, "1.0.0");
    manifest.backend.scaling = Some(plinth_module_sdk::manifest::Scaling {
        min_tasks: 1,
        max_tasks: 50,
        target_cpu_percent: Some(70),
    });
    let config = EcsSettings {
        max_tasks: 4,
        ..setup.config.clone()
    };
    let deployer = EcsDeployer::new(&setup.sdk, config);

    let deployment = deployer
        .deploy(&spec(&manifest, None))
        .await
        .expect("deploy");

    let scaling = handle(&deployment).scaling.expect("scaling applied");
    assert_eq!((scaling.min_tasks, scaling.max_tasks), (1, 4));
    assert_eq!(
        scaling.capped_from,
        Some(50),
        "the deployment says it was capped"
    );
    let autoscaling = aws_sdk_applicationautoscaling::Client::new(&setup.sdk);
    let ecs = aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs;
    let resource = format!("service/{}/plinth-{}", setup.config.cluster, setup.name);
    let targets = autoscaling
        .describe_scalable_targets()
        .service_namespace(ecs.clone())
        .resource_ids(&resource)
        .send()
        .await
        .expect("describe targets");
    let target = targets
        .scalable_targets()
        .first()
        .expect("a scalable target");
    assert_eq!(
        target.scalable_dimension().as_str(),
        "ecs:service:DesiredCount"
    );
    assert_eq!((target.min_capacity(), target.max_capacity()), (1, 4));
    let policies = autoscaling
        .describe_scaling_policies()
        .service_namespace(ecs.clone())
        .resource_id(&resource)
        .send()
        .await
        .expect("describe policies");
    let policy = policies.scaling_policies().first().expect("a policy");
    assert_eq!(policy.policy_type().as_str(), "TargetTrackingScaling");
    let tracking = policy
        .target_tracking_scaling_policy_configuration()
        .expect("target tracking");
    assert!((tracking.target_value() - 70.0).abs() < f64::EPSILON);
    let metric = tracking.predefined_metric_specification().expect("metric");
    assert_eq!(
        metric.predefined_metric_type().as_str(),
        "ECSServiceAverageCPUUtilization"
    );

    deployer
        .undeploy(&manifest, &deployment)
        .await
        .expect("undeploy");

    let targets = autoscaling
        .describe_scalable_targets()
        .service_namespace(ecs.clone())
        .resource_ids(&resource)
        .send()
        .await
        .expect("describe targets");
    assert!(targets.scalable_targets().is_empty(), "target removed");
    let policies = autoscaling
        .describe_scaling_policies()
        .service_namespace(ecs)
        .resource_id(&resource)
        .send()
        .await
        .expect("describe policies");
    assert!(policies.scaling_policies().is_empty(), "policy removed");
}

/// Versions side by side (`versions`): a version installed alongside is a service of its own,
/// `plinth-{module}-v{version}` (its task family and Service Connect name too); undeploying it
/// leaves the first version's service running.
#[tokio::test]
async fn two_versions_are_two_services_and_undeploying_one_leaves_the_other() {
    let test = "two_versions_are_two_services_and_undeploying_one_leaves_the_other";
    let Some(setup) = setup(test).await else {
        return;
    };
    push_image(&setup.sdk, &setup.name, "1.2.0").await;
    push_image(&setup.sdk, &setup.name, "1.3.0").await;
    let (first, second) = (module(&setup.name, "1.2.0"), module(&setup.name, "1.3.0"));
    let serving = setup
        .deployer
        .deploy(&spec(&first, None))
        .await
        .expect("deploy 1.2.0");
    let mut alongside = spec(&second, None);
    alongside.alongside = true;
    let beside = setup
        .deployer
        .deploy(&alongside)
        .await
        .expect("deploy 1.3.0 alongside");

    let services = setup.services().await;
    assert_eq!(services.len(), 2, "{services:?}");
    let second_name = format!("plinth-{}-v1-3-0", setup.name);
    assert!(
        handle(&beside)
            .service_arn
            .ends_with(&format!("/{second_name}")),
        "{}",
        handle(&beside).service_arn
    );
    assert_eq!(
        beside.endpoint,
        format!(
            "http://{}-v1-3-0.{}:9000",
            setup.name, setup.config.namespace
        )
    );
    assert_ne!(handle(&serving).service_arn, handle(&beside).service_arn);
    let family = setup
        .task_definition(&handle(&beside).task_definition_arn)
        .await;
    assert_eq!(family.family(), Some(second_name.as_str()));

    setup
        .deployer
        .undeploy(&second, &beside)
        .await
        .expect("undeploy 1.3.0");
    let first_service = setup.service().await;
    assert_eq!(first_service.status(), Some("ACTIVE"), "1.2.0 still runs");
    assert_eq!(
        first_service.task_definition(),
        Some(handle(&serving).task_definition_arn.as_str())
    );
    let described = setup
        .ecs()
        .describe_services()
        .cluster(&setup.config.cluster)
        .services(&second_name)
        .send()
        .await
        .expect("describe 1.3.0's service");
    assert_eq!(
        described.services().first().and_then(|s| s.status()),
        Some("INACTIVE"),
        "1.3.0's service is deleted"
    );
}
