//! Issue 23 on AWS: each installed version of a module gets a target group and a rule on the
//! module listener (the internal load balancer behind the VPC link), matching the module's
//! prefix and `X-Plinth-Version`; the module's integration goes to the listener and sets that
//! header from the authorizer's `version`. moto stores listeners, rules and target groups but
//! serves no request through them, so what is checked is what it stores.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_apigatewayv2::types::{ConnectionType, IntegrationType};
use aws_sdk_elasticloadbalancingv2::Client as Elb;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, LoadBalancerSchemeEnum,
    LoadBalancerTypeEnum, ProtocolEnum, Rule, TargetTypeEnum,
};
use plinth_module_sdk::Manifest;
use plinth_registry::deploy::alb::{
    AUTHORIZER_VERSION, ListenerSettings, MODULE_TAG, VERSION_PARAMETER, VersionListener,
    target_group_name,
};
use plinth_registry::deploy::apigateway::{ApiGatewayRoutes, header_parameters};
use plinth_registry::deploy::lambda::{LambdaDeployer, LambdaSettings};
use plinth_registry::deploy::routed::{ModuleRoutes, RoutedDeployer};
use plinth_registry::deploy::{DeploySpec, Deployer, Deployment, deployed_name};
use serde_json::json;

use crate::moto::{iam_role, manifest, s3_object, spec, unique_module};
use crate::routes::{Api, EMPTY_ZIP, api, parameters};

/// The platform's internal load balancer and its HTTP listener, as `template.yaml` declares
/// them: two subnets of a VPC, a default action answering 503.
struct Listener {
    elb: Elb,
    arn: String,
    vpc_id: String,
}

async fn listener(sdk: &SdkConfig, name: &str) -> Listener {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.1.0.0/16")
        .send()
        .await
        .expect("create vpc");
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("vpc id")
        .to_owned();
    let mut subnets = Vec::new();
    for (cidr, zone) in [("10.1.1.0/24", "us-east-1a"), ("10.1.2.0/24", "us-east-1b")] {
        let subnet = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(cidr)
            .availability_zone(zone)
            .send()
            .await
            .expect("create subnet");
        subnets.push(
            subnet
                .subnet()
                .and_then(|s| s.subnet_id())
                .unwrap()
                .to_owned(),
        );
    }
    let elb = Elb::new(sdk);
    let balancer_name: String = format!("lb-{name}").chars().take(32).collect();
    let balancer = elb
        .create_load_balancer()
        .name(balancer_name.trim_end_matches('-'))
        .set_subnets(Some(subnets))
        .scheme(LoadBalancerSchemeEnum::Internal)
        .r#type(LoadBalancerTypeEnum::Application)
        .send()
        .await
        .expect("create load balancer");
    let balancer_arn = balancer.load_balancers()[0].load_balancer_arn().unwrap();
    let answer = FixedResponseActionConfig::builder()
        .status_code("503")
        .content_type("application/json")
        .message_body(r#"{"title":"no version of this module is routed","status":503}"#)
        .build();
    let created = elb
        .create_listener()
        .load_balancer_arn(balancer_arn)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::FixedResponse)
                .fixed_response_config(answer)
                .build(),
        )
        .send()
        .await
        .expect("create listener");
    let arn = created.listeners()[0].listener_arn().unwrap().to_owned();
    Listener { elb, arn, vpc_id }
}

impl Listener {
    fn versions(&self, sdk: &SdkConfig) -> VersionListener {
        VersionListener::new(
            sdk,
            ListenerSettings {
                listener_arn: self.arn.clone(),
            },
        )
    }

    /// The listener's rules tagged as `module`'s, by the version their header matches.
    async fn rules_of(&self, module: &str) -> BTreeMap<String, Rule> {
        let rules = self
            .elb
            .describe_rules()
            .listener_arn(&self.arn)
            .send()
            .await
            .expect("describe rules");
        let mut found = BTreeMap::new();
        for rule in rules.rules() {
            if rule.is_default() == Some(true) {
                continue;
            }
            let arn = rule.rule_arn().unwrap();
            let tags = self
                .elb
                .describe_tags()
                .resource_arns(arn)
                .send()
                .await
                .expect("describe tags");
            let ours = tags.tag_descriptions()[0]
                .tags()
                .iter()
                .any(|t| t.key() == Some(MODULE_TAG) && t.value() == Some(module));
            if !ours {
                continue;
            }
            let header = rule
                .conditions()
                .iter()
                .find(|c| c.field() == Some("http-header"))
                .and_then(|c| c.http_header_config())
                .expect("a header condition");
            assert!(
                header
                    .http_header_name()
                    .is_some_and(|n| n.eq_ignore_ascii_case("x-plinth-version")),
                "{header:?}"
            );
            assert_eq!(header.values().len(), 1, "{header:?}");
            let previous = found.insert(header.values()[0].clone(), rule.clone());
            assert!(previous.is_none(), "two rules for one version: {rules:?}");
        }
        found
    }

    /// The path patterns of a rule, sorted.
    fn paths(rule: &Rule) -> Vec<String> {
        let condition = rule
            .conditions()
            .iter()
            .find(|c| c.field() == Some("path-pattern"))
            .expect("a path condition");
        let mut paths = condition
            .path_pattern_config()
            .map(|p| p.values().to_vec())
            .unwrap_or_else(|| condition.values().to_vec());
        paths.sort();
        paths
    }

    /// The ARN of the target group `name`, if there is one.
    async fn target_group(
        &self,
        name: &str,
    ) -> Option<aws_sdk_elasticloadbalancingv2::types::TargetGroup> {
        self.elb
            .describe_target_groups()
            .names(name)
            .send()
            .await
            .ok()
            .and_then(|found| found.target_groups().first().cloned())
    }

    async fn targets(&self, group_arn: &str) -> Vec<String> {
        let health = self
            .elb
            .describe_target_health()
            .target_group_arn(group_arn)
            .send()
            .await
            .expect("describe target health");
        health
            .target_health_descriptions()
            .iter()
            .filter_map(|d| d.target()?.id().map(String::from))
            .collect()
    }
}

/// The rule's one action: forward to a target group; its ARN.
fn forwarded_to(rule: &Rule) -> &str {
    let actions = rule.actions();
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(actions[0].r#type(), Some(&ActionTypeEnum::Forward));
    actions[0]
        .target_group_arn()
        .or_else(|| {
            actions[0]
                .forward_config()
                .and_then(|f| f.target_groups().first())
                .and_then(|t| t.target_group_arn())
        })
        .expect("a target group")
}

/// A Lambda deployer routed through the listener, and a module with its packages for
/// `versions` in place.
async fn lambda_module(
    api: &Api,
    listener: &Listener,
    name: &str,
    versions: &[&str],
) -> (RoutedDeployer, Vec<Manifest>) {
    let config = LambdaSettings {
        role_arn: Some(iam_role(name).await),
        package_bucket: Some(name.to_owned()),
        architecture: "arm64".into(),
        timeout_seconds: 30,
        max_concurrency: 100,
    };
    let mut settings = api.config.clone();
    settings.vpc_link_id = Some("vpclink1".into());
    let routes =
        ApiGatewayRoutes::new(&api.sdk, settings).with_versions(listener.versions(&api.sdk));
    let deployer = RoutedDeployer {
        inner: Arc::new(LambdaDeployer::new(&api.sdk, config)),
        routes: Arc::new(routes),
    };
    let backend =
        json!({"type": "lambda", "runtime": "provided.al2023", "entry_point": "bootstrap"});
    let mut manifests = Vec::new();
    for version in versions {
        let module = manifest(name, version, backend.clone(), None);
        s3_object(name, &LambdaDeployer::package_key(&module), &EMPTY_ZIP).await;
        manifests.push(module);
    }
    (deployer, manifests)
}

fn alongside(module: &Manifest) -> DeploySpec {
    let mut spec = spec(module, None);
    spec.alongside = true;
    spec
}

fn function_arn(deployment: &Deployment) -> &str {
    deployment
        .endpoint
        .strip_prefix("lambda:")
        .expect("a function")
}

async fn policy_statements(sdk: &SdkConfig, function: &str) -> Vec<String> {
    let policy = aws_sdk_lambda::Client::new(sdk)
        .get_policy()
        .function_name(function)
        .send()
        .await
        .expect("the function's policy");
    let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Sid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn two_installed_versions_get_two_rules_on_their_header_and_the_integration_sends_the_tenant_s_version()
 {
    let test = "two_installed_versions_get_two_rules_on_their_header_and_the_integration_sends_the_tenant_s_version";
    let Some(api) = api(test).await else {
        return;
    };
    let name = unique_module("ver");
    let listener = listener(&api.sdk, &name).await;
    let (deployer, modules) = lambda_module(&api, &listener, &name, &["1.0.0", "1.1.0"]).await;
    let (first, second) = (&modules[0], &modules[1]);

    let first_deployment = deployer.deploy(&spec(first, None)).await.expect("install");
    let second_deployment = deployer
        .deploy(&alongside(second))
        .await
        .expect("install 1.1.0 alongside");

    // The integration: the listener over the VPC link, every header mapping kept, plus the
    // version from the authorizer.
    let integration = api.assert_routed(&name).await;
    assert_eq!(
        integration.integration_type(),
        Some(&IntegrationType::HttpProxy)
    );
    assert_eq!(integration.integration_uri(), Some(listener.arn.as_str()));
    assert_eq!(
        integration.connection_type(),
        Some(&ConnectionType::VpcLink)
    );
    assert_eq!(integration.connection_id(), Some("vpclink1"));
    let mut expected: std::collections::HashMap<String, String> =
        header_parameters().into_iter().collect();
    expected.insert("overwrite:path".into(), "$request.path".into());
    expected.insert(VERSION_PARAMETER.into(), AUTHORIZER_VERSION.into());
    assert_eq!(parameters(&integration), expected);
    assert_eq!(
        parameters(&integration)["overwrite:header.x-plinth-version"],
        "$context.authorizer.version"
    );

    // Two rules, one per version, each to its own target group holding its own function.
    let rules = listener.rules_of(&name).await;
    assert_eq!(rules.keys().collect::<Vec<_>>(), ["1.0.0", "1.1.0"]);
    let prefix = format!("/api/v1/{name}");
    for (version, deployment, alongside) in [
        ("1.0.0", &first_deployment, None),
        ("1.1.0", &second_deployment, Some("1.1.0")),
    ] {
        let rule = &rules[version];
        assert_eq!(
            Listener::paths(rule),
            [prefix.clone(), format!("{prefix}/*")]
        );
        let group_name = target_group_name(&deployed_name(&first.name, alongside));
        let group = listener
            .target_group(&group_name)
            .await
            .unwrap_or_else(|| panic!("no target group {group_name}"));
        assert!(group_name.len() <= 32, "{group_name}");
        assert_eq!(group.target_type(), Some(&TargetTypeEnum::Lambda));
        assert_eq!(forwarded_to(rule), group.target_group_arn().unwrap());
        let function = function_arn(deployment);
        assert_eq!(
            listener.targets(group.target_group_arn().unwrap()).await,
            [function]
        );
        let statements = policy_statements(&api.sdk, function).await;
        assert!(
            statements.contains(&format!("plinth-alb-{group_name}")),
            "{statements:?}"
        );
    }
    assert_ne!(rules["1.0.0"].priority(), rules["1.1.0"].priority());

    // Taking 1.1.0 away: its rule, then its target group; 1.0.0 keeps serving.
    deployer
        .undeploy_alongside(second, &second_deployment)
        .await
        .expect("uninstall 1.1.0");
    let rules = listener.rules_of(&name).await;
    assert_eq!(rules.keys().collect::<Vec<_>>(), ["1.0.0"]);
    let gone = target_group_name(&deployed_name(&first.name, Some("1.1.0")));
    assert!(listener.target_group(&gone).await.is_none(), "{gone} left");
    let kept = target_group_name(&deployed_name(&first.name, None));
    assert!(listener.target_group(&kept).await.is_some());
    api.assert_routed(&name).await;

    // Uninstalling the module: nothing of it is left on the listener.
    deployer
        .undeploy(first, &first_deployment)
        .await
        .expect("uninstall");
    api.assert_not_routed(&name).await;
    assert!(listener.rules_of(&name).await.is_empty());
    assert!(listener.target_group(&kept).await.is_none(), "{kept} left");
}

/// A publish interrupted after the listener's part (the integration not yet made), or after
/// the target group but before the rule, is completed by the retry without a second rule or
/// target group, and the rule takes the same priority again.
#[tokio::test]
async fn a_retry_after_an_interrupted_publish_creates_no_duplicate_rule_or_target_group() {
    let test = "a_retry_after_an_interrupted_publish_creates_no_duplicate_rule_or_target_group";
    let Some(api) = api(test).await else {
        return;
    };
    let name = unique_module("retry");
    let listener = listener(&api.sdk, &name).await;
    let (deployer, modules) = lambda_module(&api, &listener, &name, &["1.0.0", "2.0.0"]).await;
    let deployment = deployer
        .deploy(&spec(&modules[0], None))
        .await
        .expect("install");
    let versions = listener.versions(&api.sdk);

    // The listener's part ran again on its own (the integration step was interrupted).
    versions
        .route(&modules[0], &deployment, false)
        .await
        .expect("route again");
    let alongside_deployment = deployer
        .deploy(&alongside(&modules[1]))
        .await
        .expect("install 2.0.0 alongside");
    let rules = listener.rules_of(&name).await;
    assert_eq!(rules.keys().collect::<Vec<_>>(), ["1.0.0", "2.0.0"]);
    let priority = rules["2.0.0"].priority().unwrap().to_owned();

    // Interrupted between the target group and the rule: the rule is missing.
    listener
        .elb
        .delete_rule()
        .rule_arn(rules["2.0.0"].rule_arn().unwrap())
        .send()
        .await
        .expect("delete rule");
    deployer
        .deploy(&alongside(&modules[1]))
        .await
        .expect("retry");
    deployer
        .deploy(&spec(&modules[0], None))
        .await
        .expect("retry the first");
    let rules = listener.rules_of(&name).await;
    assert_eq!(rules.keys().collect::<Vec<_>>(), ["1.0.0", "2.0.0"]);
    assert_eq!(rules["2.0.0"].priority(), Some(priority.as_str()));
    let groups = listener
        .elb
        .describe_target_groups()
        .send()
        .await
        .expect("describe target groups");
    let ours: Vec<_> = groups
        .target_groups()
        .iter()
        .filter_map(|g| g.target_group_name())
        .filter(|n| {
            [
                target_group_name(&deployed_name(&modules[0].name, None)),
                target_group_name(&deployed_name(&modules[0].name, Some("2.0.0"))),
            ]
            .iter()
            .any(|o| o == n)
        })
        .collect();
    assert_eq!(ours.len(), 2, "{ours:?}");
    api.assert_routed(&name).await;
    let integrations = api.integrations_of(&name).await;
    assert_eq!(integrations.len(), 1);

    deployer
        .undeploy_alongside(&modules[1], &alongside_deployment)
        .await
        .expect("uninstall 2.0.0");
    deployer
        .undeploy(&modules[0], &deployment)
        .await
        .expect("uninstall");
}

/// An ECS deployment's service registers its tasks into an `ip` target group in the
/// listener's VPC, on the module's port.
#[tokio::test]
async fn an_ecs_version_s_service_registers_its_tasks_in_an_ip_target_group_on_the_module_s_port() {
    let test =
        "an_ecs_version_s_service_registers_its_tasks_in_an_ip_target_group_on_the_module_s_port";
    let Some(api) = api(test).await else {
        return;
    };
    let name = unique_module("ecsv");
    let listener = listener(&api.sdk, &name).await;
    let ecs = aws_sdk_ecs::Client::new(&api.sdk);
    ecs.create_cluster()
        .cluster_name(&name)
        .send()
        .await
        .expect("create cluster");
    let container = aws_sdk_ecs::types::ContainerDefinition::builder()
        .name(&name)
        .image("svc:1")
        .memory(512)
        .port_mappings(
            aws_sdk_ecs::types::PortMapping::builder()
                .container_port(9000)
                .build(),
        )
        .build();
    let definition = ecs
        .register_task_definition()
        .family(format!("plinth-{name}"))
        .container_definitions(container)
        .send()
        .await
        .expect("register task definition");
    let definition_arn = definition
        .task_definition()
        .and_then(|d| d.task_definition_arn())
        .unwrap()
        .to_owned();
    let service = ecs
        .create_service()
        .cluster(&name)
        .service_name(format!("plinth-{name}-v2-0-0"))
        .task_definition(&definition_arn)
        .desired_count(0)
        .send()
        .await
        .expect("create service");
    let service_arn = service
        .service()
        .and_then(|s| s.service_arn())
        .unwrap()
        .to_owned();
    let backend = json!({"type": "microservice", "image": "svc:2.0.0", "port": 9000, "health_check": "/ready"});
    let module: Manifest = manifest(&name, "2.0.0", backend, None);
    let deployment = Deployment {
        endpoint: format!("http://{name}-v2-0-0.plinth.internal:9000"),
        health_url: format!("http://{name}-v2-0-0.plinth.internal:9000/ready"),
        handle: json!({
            "cluster": name,
            "service_arn": service_arn,
            "task_definition_arn": definition_arn,
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/svc@sha256:00",
        }),
        addresses: Vec::new(),
    };
    let mut settings = api.config.clone();
    settings.vpc_link_id = Some("vpclink1".into());
    let routes =
        ApiGatewayRoutes::new(&api.sdk, settings).with_versions(listener.versions(&api.sdk));

    routes
        .publish_alongside(&module, &deployment)
        .await
        .expect("route the version");
    routes
        .publish_alongside(&module, &deployment)
        .await
        .expect("route it again");

    let group_name = target_group_name(&deployed_name(&module.name, Some("2.0.0")));
    let group = listener
        .target_group(&group_name)
        .await
        .expect("target group");
    assert_eq!(group.target_type(), Some(&TargetTypeEnum::Ip));
    assert_eq!(group.port(), Some(9000));
    assert_eq!(group.vpc_id(), Some(listener.vpc_id.as_str()));
    assert_eq!(group.health_check_path(), Some("/ready"));
    let described = ecs
        .describe_services()
        .cluster(&name)
        .services(&service_arn)
        .send()
        .await
        .expect("describe service");
    let balancers = described.services()[0].load_balancers();
    assert_eq!(balancers.len(), 1, "{balancers:?}");
    assert_eq!(balancers[0].target_group_arn(), group.target_group_arn());
    assert_eq!(balancers[0].container_name(), Some(name.as_str()));
    assert_eq!(balancers[0].container_port(), Some(9000));
    let rules = listener.rules_of(&name).await;
    assert_eq!(rules.keys().collect::<Vec<_>>(), ["2.0.0"]);
    assert_eq!(
        forwarded_to(&rules["2.0.0"]),
        group.target_group_arn().unwrap()
    );

    routes
        .remove_alongside(&module, &deployment)
        .await
        .expect("unroute");
    assert!(listener.rules_of(&name).await.is_empty());
    assert!(listener.target_group(&group_name).await.is_none());
}

/// Upgrading (or rolling back) the first installation keeps its deployment, so its target
/// group stays and its one rule now matches the new version: tenants on the new default reach
/// it, none is left on a rule for a version no longer installed.
#[tokio::test]
async fn an_upgrade_of_the_first_installation_moves_its_one_rule_to_the_new_version() {
    let test = "an_upgrade_of_the_first_installation_moves_its_one_rule_to_the_new_version";
    let Some(api) = api(test).await else {
        return;
    };
    let name = unique_module("upg");
    let listener = listener(&api.sdk, &name).await;
    let (deployer, modules) = lambda_module(&api, &listener, &name, &["1.0.0", "1.1.0"]).await;
    deployer
        .deploy(&spec(&modules[0], None))
        .await
        .expect("install");
    let before = listener.rules_of(&name).await;
    let group = target_group_name(&deployed_name(&modules[0].name, None));
    let group_arn = listener
        .target_group(&group)
        .await
        .and_then(|g| g.target_group_arn().map(String::from))
        .expect("target group");

    let upgraded = deployer
        .deploy(&spec(&modules[1], None))
        .await
        .expect("upgrade");

    let after = listener.rules_of(&name).await;
    assert_eq!(after.keys().collect::<Vec<_>>(), ["1.1.0"]);
    assert_eq!(after["1.1.0"].rule_arn(), before["1.0.0"].rule_arn());
    assert_eq!(forwarded_to(&after["1.1.0"]), group_arn);
    let tags = listener
        .elb
        .describe_tags()
        .resource_arns(after["1.1.0"].rule_arn().unwrap())
        .send()
        .await
        .expect("describe tags");
    let version = tags.tag_descriptions()[0]
        .tags()
        .iter()
        .find(|t| t.key() == Some("plinth:version"))
        .and_then(|t| t.value());
    assert_eq!(version, Some("1.1.0"));
    deployer
        .undeploy(&modules[1], &upgraded)
        .await
        .expect("uninstall");
    assert!(listener.rules_of(&name).await.is_empty());
}

/// A module installed with an external endpoint cannot be behind the listener: it keeps its
/// integration over the internet, and nothing of it is put on the listener.
#[tokio::test]
async fn an_external_endpoint_stays_routed_over_the_internet_with_a_listener_configured() {
    let test = "an_external_endpoint_stays_routed_over_the_internet_with_a_listener_configured";
    let Some(api) = api(test).await else {
        return;
    };
    let name = unique_module("ext");
    let listener = listener(&api.sdk, &name).await;
    let mut settings = api.config.clone();
    settings.vpc_link_id = Some("vpclink1".into());
    let routes =
        ApiGatewayRoutes::new(&api.sdk, settings).with_versions(listener.versions(&api.sdk));
    let backend = json!({"type": "microservice", "image": format!("{name}:1.0.0")});
    let module = manifest(&name, "1.0.0", backend, None);
    let deployment = Deployment {
        endpoint: "https://billing.example.com".into(),
        health_url: "https://billing.example.com/health".into(),
        handle: serde_json::Value::Null,
        addresses: Vec::new(),
    };

    routes.publish(&module, &deployment).await.expect("publish");

    let integration = api.assert_routed(&name).await;
    assert_eq!(
        integration.integration_uri(),
        Some("https://billing.example.com")
    );
    assert_eq!(
        integration.connection_type(),
        Some(&ConnectionType::Internet)
    );
    assert!(!parameters(&integration).contains_key(VERSION_PARAMETER));
    assert!(listener.rules_of(&name).await.is_empty());
    routes.remove(&module, &deployment).await.expect("remove");
    api.assert_not_routed(&name).await;
}
