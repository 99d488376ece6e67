//! Each module's own identity on the emulator (issue #18, findings 7 and 8): `IsolatedDeployer`
//! around the ECS and Lambda deployers gives each module its role `plinth-module-{module}`,
//! whose one policy names only that module's resources, and keeps its API key in its
//! Secrets Manager secret rather than in its task definition or function configuration.

use std::collections::BTreeSet;
use std::sync::Arc;

use aws_config::SdkConfig;
use plinth_module_sdk::manifest::BackendKind;
use plinth_module_sdk::{Manifest, ModuleName};
use plinth_registry::deploy::backend::BackendDeployer;
use plinth_registry::deploy::ecs::{EcsDeployer, EcsHandle};
use plinth_registry::deploy::isolated::IsolatedDeployer;
use plinth_registry::deploy::lambda::{LambdaDeployer, LambdaSettings};
use plinth_registry::deploy::module_role::{ModuleRoles, POLICY_NAME, role_name};
use plinth_registry::deploy::module_secrets::SecretsManagerKeys;
use plinth_registry::deploy::{Deployer, Deployment};
use serde_json::{Value, json};

use crate::moto::{
    EcsScheduler, TaskFate, ecr_repository, ecs_config, iam_role, manifest, push_image, sdk, spec,
    unique_module,
};

const BUS: &str = "plinth-identity-tests";
/// The stack's permissions boundary of module roles (`PLINTH_MODULE_PERMISSIONS_BOUNDARY`).
const BOUNDARY: &str = "arn:aws:iam::123456789012:policy/plinth-dev-module-boundary";

struct Setup {
    sdk: SdkConfig,
    deployer: IsolatedDeployer,
    /// Runs the services' tasks, which the emulator does not.
    _scheduler: EcsScheduler,
}

async fn setup(test: &str) -> Option<Setup> {
    let sdk = sdk(test).await?;
    let name = unique_module("idp");
    let config = ecs_config(&sdk, &name).await;
    let scheduler = EcsScheduler::start(&sdk, &config, Arc::new(|_: &str| TaskFate::Runs)).await;
    let ecs = EcsDeployer::new(&sdk, config);
    let lambda = LambdaDeployer::new(
        &sdk,
        LambdaSettings {
            role_arn: Some(iam_role(&name).await),
            package_bucket: None,
            architecture: "x86_64".into(),
            timeout_seconds: 30,
            max_concurrency: 100,
        },
    );
    let deployer = IsolatedDeployer {
        inner: Arc::new(BackendDeployer {
            ecs: Ok(Arc::new(ecs)),
            lambda: Ok(Arc::new(lambda)),
        }),
        roles: ModuleRoles::new(&sdk, BUS).with_boundary(Some(BOUNDARY.into())),
        keys: SecretsManagerKeys::new(&sdk),
    };
    Some(Setup {
        sdk,
        deployer,
        _scheduler: scheduler,
    })
}

/// A module of `kind` with two DynamoDB tables, its image pushed to ECR as `{name}:{version}`.
async fn module(sdk: &SdkConfig, prefix: &str, kind: &str, version: &str) -> Manifest {
    let name = unique_module(prefix);
    ecr_repository(sdk, &name).await;
    push_image(sdk, &name, version).await;
    versioned(&name, kind, version)
}

fn versioned(name: &str, kind: &str, version: &str) -> Manifest {
    let snake = name.replace('-', "_");
    let database = json!({
        "type": "dynamodb",
        "tables": [
            {"name": format!("{snake}_orders"), "partition_key": "tenant_id", "sort_key": "id"},
            {"name": format!("{snake}_settings"), "partition_key": "tenant_id"}
        ]
    });
    let backend =
        json!({"type": kind, "image": format!("{name}:{version}"), "health_check": "/health"});
    manifest(name, version, backend, Some(database))
}

fn iam(sdk: &SdkConfig) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(sdk)
}

fn secrets(sdk: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(sdk)
}

/// A policy document as IAM gives it back: URL-encoded JSON on AWS, plain JSON on moto.
fn document(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| {
        let decoded = percent_decode(text);
        serde_json::from_str(&decoded).unwrap_or_else(|e| panic!("policy {text}: {e}"))
    })
}

fn percent_decode(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(byte) = bytes.next() {
        if byte == b'%' {
            let hex: Vec<u8> = bytes.by_ref().take(2).collect();
            let hex = std::str::from_utf8(&hex).expect("ASCII escape");
            out.push(u8::from_str_radix(hex, 16).expect("a hex escape"));
        } else {
            out.push(byte);
        }
    }
    String::from_utf8(out).expect("UTF-8 policy")
}

/// The role's policies read back: the inline policy names, the attached ones, and the one
/// document.
async fn policies(sdk: &SdkConfig, module: &ModuleName) -> (Vec<String>, Vec<String>, Value) {
    let role = role_name(module);
    let inline = iam(sdk)
        .list_role_policies()
        .role_name(&role)
        .send()
        .await
        .expect("list role policies")
        .policy_names()
        .to_vec();
    let attached = iam(sdk)
        .list_attached_role_policies()
        .role_name(&role)
        .send()
        .await
        .expect("list attached role policies")
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(String::from))
        .collect();
    let policy = iam(sdk)
        .get_role_policy()
        .role_name(&role)
        .policy_name(POLICY_NAME)
        .send()
        .await
        .expect("get role policy");
    (inline, attached, document(policy.policy_document()))
}

async fn role_arn(sdk: &SdkConfig, module: &ModuleName) -> Option<String> {
    let found = iam(sdk)
        .get_role()
        .role_name(role_name(module))
        .send()
        .await;
    found.ok().and_then(|r| r.role).map(|role| role.arn)
}

/// Every `Resource` of a policy, flattened.
fn resources(policy: &Value) -> Vec<String> {
    let mut all = Vec::new();
    for statement in policy["Statement"].as_array().expect("statements") {
        match &statement["Resource"] {
            Value::String(one) => all.push(one.clone()),
            Value::Array(many) => {
                all.extend(many.iter().filter_map(|r| r.as_str().map(String::from)));
            }
            other => panic!("a statement without resources: {other}"),
        }
    }
    all
}

/// What module `manifest` owns, as strings that may appear in a policy.
fn owned(manifest: &Manifest) -> Vec<String> {
    let name = manifest.name.to_string();
    let mut owned: Vec<String> = manifest
        .database
        .as_ref()
        .unwrap()
        .tables
        .iter()
        .map(|t| t.name.clone())
        .collect();
    owned.extend([
        format!("plinth-{name}-events"),
        format!("plinth.module.{name}"),
        format!("plinth/module/{name}/api-key"),
        format!("/aws/lambda/plinth-{name}"),
        name,
    ]);
    owned
}

/// `a`'s policy names each of its own resources and nothing of `b`'s; its only wildcards
/// are under its own tables and log group.
fn assert_names_only_its_own(policy: &Value, a: &Manifest, b: &Manifest) {
    let text = policy.to_string();
    for theirs in owned(b) {
        assert!(
            !text.contains(&theirs),
            "{}'s policy names {theirs} of {}: {text}",
            a.name,
            b.name
        );
    }
    let own_tables: Vec<String> = owned(a)[..2].to_vec();
    for resource in resources(policy) {
        assert_ne!(
            resource, "*",
            "{}'s policy has a bare wildcard: {text}",
            a.name
        );
        let own = own_tables
            .iter()
            .any(|t| resource.contains(&format!(":table/{t}")))
            || resource.contains(&format!("plinth-{}-events", a.name))
            || resource.ends_with(&format!(":event-bus/{BUS}"))
            || resource.contains(&format!(":secret:plinth/module/{}/api-key-", a.name))
            || resource.contains(&format!(":log-group:/aws/lambda/plinth-{}:", a.name))
            || resource.ends_with(&format!(":role/plinth-module-{}", a.name));
        assert!(own, "{}'s policy names {resource}, not its own", a.name);
        if let Some(star) = resource.find('*') {
            let before = &resource[..star];
            let under_own = own_tables.iter().any(|t| {
                before.ends_with(&format!(":table/{t}/index/"))
                    || before.ends_with(&format!(":table/{t}/stream/"))
            }) || before
                .ends_with(&format!(":log-group:/aws/lambda/plinth-{}:", a.name));
            assert!(
                under_own,
                "{}'s policy has a wildcard beyond its own: {resource}",
                a.name
            );
        }
    }
    let microservice = a.backend.kind == BackendKind::Microservice;
    let queue = |own: &String| own.ends_with("-events");
    for own in owned(a)
        .iter()
        .filter(|own| microservice || !queue(own))
        .take(5)
    {
        assert!(
            text.contains(own.as_str()),
            "{}'s policy does not name its own {own}: {text}",
            a.name
        );
    }
    let events = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Action"] == "events:PutEvents")
        .expect("a PutEvents statement");
    assert_eq!(
        events["Condition"]["StringEquals"]["events:source"],
        format!("plinth.module.{}", a.name)
    );
}

async fn task_role(
    sdk: &SdkConfig,
    deployment: &Deployment,
) -> (Option<String>, Vec<(String, String)>) {
    let handle: EcsHandle =
        serde_json::from_value(deployment.handle.clone()).expect("an ECS handle");
    let described = aws_sdk_ecs::Client::new(sdk)
        .describe_task_definition()
        .task_definition(&handle.task_definition_arn)
        .send()
        .await
        .expect("describe task definition");
    let definition = described.task_definition().expect("task definition");
    let env = definition.container_definitions()[0]
        .environment()
        .iter()
        .map(|kv| {
            (
                kv.name().unwrap_or_default().to_owned(),
                kv.value().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    (definition.task_role_arn().map(String::from), env)
}

async fn function_role(sdk: &SdkConfig, module: &ModuleName) -> (String, Vec<(String, String)>) {
    let configuration = aws_sdk_lambda::Client::new(sdk)
        .get_function_configuration()
        .function_name(format!("plinth-{module}"))
        .send()
        .await
        .expect("get function configuration");
    let env = configuration
        .environment()
        .and_then(|e| e.variables())
        .map(|vars| vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    (configuration.role().unwrap_or_default().to_owned(), env)
}

async fn secret_value(sdk: &SdkConfig, arn: &str) -> Option<String> {
    let read = secrets(sdk)
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .ok()?;
    read.secret_string().map(String::from)
}

#[tokio::test]
async fn module_roles_name_only_their_own_resources() {
    let Some(setup) = setup("module_roles_name_only_their_own_resources").await else {
        return;
    };
    let sdk = &setup.sdk;
    let a = module(sdk, "ida", "microservice", "1.0.0").await;
    let b = module(sdk, "idb", "lambda", "1.0.0").await;
    let a_deployed = setup
        .deployer
        .deploy(&spec(&a, None))
        .await
        .expect("deploy A on ECS");
    setup
        .deployer
        .deploy(&spec(&b, None))
        .await
        .expect("deploy B on Lambda");

    for (this, other) in [(&a, &b), (&b, &a)] {
        let (inline, attached, policy) = policies(sdk, &this.name).await;
        assert_eq!(inline, [POLICY_NAME], "{}: one inline policy", this.name);
        assert!(
            attached.is_empty(),
            "{}: no managed policy: {attached:?}",
            this.name
        );
        assert_names_only_its_own(&policy, this, other);
    }
    // A (microservice) reads its own queue and DLQ; B (Lambda) has no queue and writes its logs.
    let (_, _, a_policy) = policies(sdk, &a.name).await;
    let queue_statement = a_policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "OwnEventQueue")
        .expect("A's queue statement");
    for action in plinth_module_sdk::wire::EVENT_QUEUE_ACTIONS {
        assert!(
            queue_statement["Action"]
                .as_array()
                .is_some_and(|actions| actions.iter().any(|a| a == action)),
            "the SDK's runtime calls {action} on its queue: {queue_statement}"
        );
    }
    let a_resources: BTreeSet<String> = resources(&a_policy).into_iter().collect();
    for queue in [
        format!("plinth-{}-events", a.name),
        format!("plinth-{}-events-dlq", a.name),
    ] {
        assert!(
            a_resources
                .iter()
                .any(|r| r.ends_with(&format!(":{queue}"))),
            "{queue} in {a_resources:?}"
        );
    }
    assert_eq!(
        plinth_registry::events::eventbridge::queue_name(&a.name),
        format!("plinth-{}-events", a.name),
        "the policy names the queue the subscriptions fill"
    );
    let (_, _, b_policy) = policies(sdk, &b.name).await;
    assert!(
        !b_policy.to_string().contains(":sqs:"),
        "a Lambda module reads no queue: {b_policy}"
    );
    assert!(b_policy.to_string().contains("logs:PutLogEvents"));

    // Each role trusts ECS tasks and Lambda, and is what the backend runs as.
    let a_role = role_arn(sdk, &a.name).await.expect("A's role");
    let b_role = role_arn(sdk, &b.name).await.expect("B's role");
    let role = iam(sdk)
        .get_role()
        .role_name(role_name(&a.name))
        .send()
        .await
        .unwrap()
        .role
        .unwrap();
    assert_eq!(
        role.permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn()),
        Some(BOUNDARY),
        "module roles carry the stack's permissions boundary, which IAM requires of the installer"
    );
    let trust = document(role.assume_role_policy_document().unwrap()).to_string();
    assert!(
        trust.contains("ecs-tasks.amazonaws.com") && trust.contains("lambda.amazonaws.com"),
        "{trust}"
    );
    let tags: Vec<(&str, &str)> = role.tags().iter().map(|t| (t.key(), t.value())).collect();
    assert!(
        tags.contains(&("plinth:module", a.name.as_str())),
        "{tags:?}"
    );
    assert_eq!(task_role(sdk, &a_deployed).await.0, Some(a_role));
    assert_eq!(function_role(sdk, &b.name).await.0, b_role);
}

#[tokio::test]
async fn no_module_api_key_in_task_definition_or_function_environment() {
    let Some(setup) = setup("no_module_api_key_in_task_definition_or_function_environment").await
    else {
        return;
    };
    let sdk = &setup.sdk;
    let a = module(sdk, "ida", "microservice", "1.0.0").await;
    let b = module(sdk, "idb", "lambda", "1.0.0").await;
    let key = |m: &Manifest| {
        format!(
            "plk_{}_{}",
            m.name.as_str().replace('-', ""),
            "0123456789abcdef"
        )
    };
    let with_key = |m: &Manifest| {
        let mut spec = spec(m, None);
        spec.env.insert("PLINTH_API_KEY".into(), key(m));
        spec
    };
    let a_deployed = setup
        .deployer
        .deploy(&with_key(&a))
        .await
        .expect("deploy A on ECS");
    setup
        .deployer
        .deploy(&with_key(&b))
        .await
        .expect("deploy B on Lambda");

    let (_, a_env) = task_role(sdk, &a_deployed).await;
    let (_, b_env) = function_role(sdk, &b.name).await;
    for (manifest, env) in [(&a, a_env), (&b, b_env)] {
        let issued = key(manifest);
        for (name, value) in &env {
            assert!(
                !value.contains(&issued),
                "{name} of {} holds its API key",
                manifest.name
            );
        }
        assert!(
            !env.iter().any(|(name, _)| name == "PLINTH_API_KEY"),
            "{env:?}"
        );
        let arn = env
            .iter()
            .find(|(name, _)| name == "PLINTH_API_KEY_SECRET")
            .map(|(_, arn)| arn.clone())
            .unwrap_or_else(|| panic!("no PLINTH_API_KEY_SECRET in {env:?}"));
        assert!(
            arn.contains(&format!(":secret:plinth/module/{}/api-key", manifest.name)),
            "{arn}"
        );
        assert_eq!(
            secret_value(sdk, &arn).await.as_deref(),
            Some(issued.as_str())
        );
        let (_, _, policy) = policies(sdk, &manifest.name).await;
        assert!(
            policy.to_string().contains(&arn),
            "the role reads exactly its secret: {policy}"
        );
        let described = secrets(sdk)
            .describe_secret()
            .secret_id(&arn)
            .send()
            .await
            .unwrap();
        let tags: Vec<(Option<&str>, Option<&str>)> = described
            .tags()
            .iter()
            .map(|t| (t.key(), t.value()))
            .collect();
        assert!(
            tags.contains(&(Some("plinth:module"), Some(manifest.name.as_str()))),
            "{tags:?}"
        );
    }
}

#[tokio::test]
async fn a_modules_role_and_secret_outlive_an_older_versions_undeploy_and_go_at_uninstall() {
    let Some(setup) =
        setup("a_modules_role_and_secret_outlive_an_older_versions_undeploy_and_go_at_uninstall")
            .await
    else {
        return;
    };
    let sdk = &setup.sdk;
    let first = module(sdk, "idu", "lambda", "1.0.0").await;
    push_image(sdk, first.name.as_str(), "2.0.0").await;
    let second = versioned(first.name.as_str(), "lambda", "2.0.0");
    let old = setup
        .deployer
        .deploy(&spec(&first, None))
        .await
        .expect("deploy 1.0.0");
    let new = setup
        .deployer
        .deploy(&spec(&second, None))
        .await
        .expect("upgrade to 2.0.0");
    let secret = SecretsManagerKeys::new(sdk);
    assert!(
        secret.arn(&first.name).await.unwrap().is_some(),
        "the secret is there"
    );

    // The old version's deployment goes; the module's identity stays with 2.0.0.
    setup
        .deployer
        .undeploy(&first, &old)
        .await
        .expect("undeploy 1.0.0");
    assert!(
        role_arn(sdk, &first.name).await.is_some(),
        "the role outlives 1.0.0"
    );
    assert!(
        secret.arn(&first.name).await.unwrap().is_some(),
        "the secret outlives 1.0.0"
    );

    // The serving version's undeploy (the uninstall) takes the secret, the policy and the role.
    setup
        .deployer
        .undeploy(&second, &new)
        .await
        .expect("undeploy 2.0.0");
    assert_eq!(role_arn(sdk, &first.name).await, None, "the role is gone");
    assert_eq!(
        secret.arn(&first.name).await.unwrap(),
        None,
        "the secret is gone"
    );
    let function = aws_sdk_lambda::Client::new(sdk)
        .get_function()
        .function_name(format!("plinth-{}", first.name))
        .send()
        .await;
    assert!(function.is_err(), "the function is gone");

    // Undeploying again (a retried uninstall) is fine.
    setup
        .deployer
        .undeploy(&second, &new)
        .await
        .expect("undeploy again");
}

/// Module resources carry no stage: a role another environment (another boundary) made is
/// not taken over, and the deploy says why.
#[tokio::test]
async fn a_module_role_of_another_environment_is_not_taken_over() {
    let Some(setup) = setup("a_module_role_of_another_environment_is_not_taken_over").await else {
        return;
    };
    let sdk = &setup.sdk;
    let manifest = module(sdk, "idx", "microservice", "1.0.0").await;
    iam(sdk)
        .create_role()
        .role_name(role_name(&manifest.name))
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .permissions_boundary("arn:aws:iam::123456789012:policy/plinth-staging-module-boundary")
        .send()
        .await
        .expect("another environment's role");
    let refused = setup
        .deployer
        .deploy(&spec(&manifest, None))
        .await
        .expect_err("the role is another environment's");
    let message = refused.to_string();
    assert!(
        message.contains("another permissions boundary") && message.contains("plinth-staging"),
        "{message}"
    );
    let policies = iam(sdk)
        .list_role_policies()
        .role_name(role_name(&manifest.name))
        .send()
        .await
        .unwrap();
    assert!(
        policies.policy_names().is_empty(),
        "nothing was written to it: {policies:?}"
    );
}

/// Issue 20: the module's SDK assumes the module's own role once per tenant, narrowed to the
/// tenant's partitions. The role's trust lets it assume itself (and no other principal of the
/// account), its policy lets it assume only itself, and the backend is told its ARN.
#[tokio::test]
async fn a_module_role_may_assume_itself_per_tenant_and_its_backend_knows_its_arn() {
    let Some(setup) =
        setup("a_module_role_may_assume_itself_per_tenant_and_its_backend_knows_its_arn").await
    else {
        return;
    };
    let sdk = &setup.sdk;
    let m = module(sdk, "self", "lambda", "1.0.0").await;
    setup
        .deployer
        .deploy(&spec(&m, None))
        .await
        .expect("deploy on Lambda");
    let own = role_arn(sdk, &m.name).await.expect("its role");

    let role = iam(sdk)
        .get_role()
        .role_name(role_name(&m.name))
        .send()
        .await
        .unwrap()
        .role
        .unwrap();
    let trust = document(role.assume_role_policy_document().unwrap());
    let statements = trust["Statement"].as_array().expect("statements");
    let itself: Vec<&Value> = statements
        .iter()
        .filter(|s| s["Principal"]["AWS"].is_string())
        .collect();
    assert_eq!(itself.len(), 1, "{trust}");
    assert_eq!(
        itself[0]["Condition"]["ArnEquals"]["aws:PrincipalArn"],
        own.as_str()
    );
    assert!(
        statements.iter().any(|s| s["Principal"]["Service"]
            .to_string()
            .contains("lambda.amazonaws.com")),
        "the services stay trusted: {trust}"
    );

    let (_, _, policy) = policies(sdk, &m.name).await;
    let assume: Vec<&Value> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Action"].to_string().contains("sts:"))
        .collect();
    assert_eq!(assume.len(), 1, "{policy}");
    assert_eq!(assume[0]["Resource"], own.as_str(), "only itself");

    let (_, env) = function_role(sdk, &m.name).await;
    assert!(
        env.contains(&("PLINTH_MODULE_ROLE_ARN".to_owned(), own.clone())),
        "{env:?}"
    );
}
