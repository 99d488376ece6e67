//! `RoutedDeployer` with `ApiGatewayRoutes` on the emulator: each module gets one integration
//! and the routes `ANY {prefix}` and `ANY {prefix}/{proxy+}` on the platform's HTTP API, behind
//! its authorizer; deploying again changes nothing; undeploying removes them and nothing else.
//! moto does not serve requests through the routes, so what is checked is what it stores.

use std::collections::HashMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_apigatewayv2::Client;
use aws_sdk_apigatewayv2::types::{
    AuthorizationType, AuthorizerType, ConnectionType, Integration, IntegrationType, ProtocolType,
    Route,
};
use plinth_module_sdk::Manifest;
use plinth_registry::deploy::apigateway::{
    ApiGatewayRoutes, ApiGatewaySettings, header_parameters, is_reserved,
};
use plinth_registry::deploy::backend::BackendDeployer;
use plinth_registry::deploy::lambda::{LambdaDeployer, LambdaSettings};
use plinth_registry::deploy::routed::{ModuleRoutes, RoutedDeployer};
use plinth_registry::deploy::{DeployError, DeploySpec, Deployer, Deployment};
use serde_json::json;

use crate::moto::{iam_role, manifest, s3_object, sdk, spec, unique_module};

/// An empty zip archive: the package's bytes do not matter to the emulator.
pub(crate) const EMPTY_ZIP: [u8; 22] = [
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// An HTTP API with a Lambda authorizer, as `template.yaml` declares them.
pub(crate) struct Api {
    pub(crate) sdk: SdkConfig,
    pub(crate) client: Client,
    pub(crate) config: ApiGatewaySettings,
}

pub(crate) async fn api(test: &str) -> Option<Api> {
    let sdk = sdk(test).await?;
    let client = Client::new(&sdk);
    let created = client
        .create_api()
        .name(unique_module("plinth-api"))
        .protocol_type(ProtocolType::Http)
        .send()
        .await
        .expect("create api");
    let api_id = created.api_id().expect("api id").to_owned();
    let authorizer = client
        .create_authorizer()
        .api_id(&api_id)
        .name("plinth")
        .authorizer_type(AuthorizerType::Request)
        .authorizer_uri("arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:plinth-authorizer/invocations")
        .authorizer_payload_format_version("2.0")
        .enable_simple_responses(true)
        .identity_source("$request.header.Authorization")
        .send()
        .await
        .expect("create authorizer");
    let authorizer_id = authorizer
        .authorizer_id()
        .expect("authorizer id")
        .to_owned();
    Some(Api {
        sdk,
        client,
        config: ApiGatewaySettings {
            api_id,
            authorizer_id,
            vpc_link_id: None,
        },
    })
}

impl Api {
    fn routes(&self) -> Arc<ApiGatewayRoutes> {
        Arc::new(ApiGatewayRoutes::new(&self.sdk, self.config.clone()))
    }

    /// Runs external endpoints only (no ECS or Lambda configured), routed.
    fn endpoint_deployer(&self) -> RoutedDeployer {
        let unconfigured = || Err(DeployError("not configured in this test".into()));
        RoutedDeployer {
            inner: Arc::new(BackendDeployer {
                ecs: unconfigured(),
                lambda: unconfigured(),
            }),
            routes: self.routes(),
        }
    }

    /// The routes of the module whose prefix is `/api/v1/{module}`.
    pub(crate) async fn routes_of(&self, module: &str) -> Vec<Route> {
        let keys = [
            format!("ANY /api/v1/{module}"),
            format!("ANY /api/v1/{module}/{{proxy+}}"),
        ];
        let all = self
            .client
            .get_routes()
            .api_id(&self.config.api_id)
            .send()
            .await
            .expect("get routes");
        let mut routes: Vec<Route> = all
            .items()
            .iter()
            .filter(|r| {
                r.route_key()
                    .is_some_and(|k| keys.iter().any(|key| key == k))
            })
            .cloned()
            .collect();
        routes.sort_by(|a, b| a.route_key().cmp(&b.route_key()));
        routes
    }

    async fn integrations(&self) -> Vec<Integration> {
        let all = self
            .client
            .get_integrations()
            .api_id(&self.config.api_id)
            .send()
            .await
            .expect("get integrations");
        all.items().to_vec()
    }

    /// The integrations marked as the module's.
    pub(crate) async fn integrations_of(&self, module: &str) -> Vec<Integration> {
        let marker = format!("plinth:module={module}");
        let mut all = self.integrations().await;
        all.retain(|i| i.description() == Some(marker.as_str()));
        all
    }

    /// Asserts the module has exactly its two routes, behind the authorizer, on its one
    /// integration, and gives that integration back.
    pub(crate) async fn assert_routed(&self, module: &str) -> Integration {
        let integrations = self.integrations_of(module).await;
        assert_eq!(integrations.len(), 1, "one integration: {integrations:?}");
        let integration = integrations[0].clone();
        let target = format!("integrations/{}", integration.integration_id().unwrap());
        let routes = self.routes_of(module).await;
        let keys: Vec<_> = routes.iter().map(|r| r.route_key().unwrap()).collect();
        assert_eq!(
            keys,
            [
                format!("ANY /api/v1/{module}"),
                format!("ANY /api/v1/{module}/{{proxy+}}")
            ]
        );
        for route in &routes {
            assert_eq!(route.target(), Some(target.as_str()), "{route:?}");
            assert_eq!(route.authorization_type(), Some(&AuthorizationType::Custom));
            assert_eq!(
                route.authorizer_id(),
                Some(self.config.authorizer_id.as_str())
            );
        }
        integration
    }

    pub(crate) async fn assert_not_routed(&self, module: &str) {
        assert!(self.routes_of(module).await.is_empty(), "routes left");
        assert!(
            self.integrations_of(module).await.is_empty(),
            "integration left"
        );
    }
}

/// The header mappings every module integration has beside its context and path: what only
/// the gateway sends a module, removed (`header_parameters`, checked one by one in
/// `the_integration_keeps_what_only_the_gateway_sends_from_the_module`).
pub(crate) fn guarded_headers() -> HashMap<String, String> {
    header_parameters().into_iter().collect()
}

pub(crate) fn parameters(integration: &Integration) -> HashMap<String, String> {
    integration
        .request_parameters()
        .cloned()
        .unwrap_or_default()
}

fn endpoint_module(name: &str) -> Manifest {
    let backend = json!({"type": "microservice", "image": format!("{name}:1.0.0")});
    manifest(name, "1.0.0", backend, None)
}

fn endpoint_spec(manifest: &Manifest, endpoint: &str) -> DeploySpec {
    let mut spec = spec(manifest, None);
    spec.endpoint = Some(endpoint.into());
    spec
}

/// Statement ids of the function's resource policy.
async fn policy_statements(sdk: &SdkConfig, function: &str) -> Vec<String> {
    let policy = aws_sdk_lambda::Client::new(sdk)
        .get_policy()
        .function_name(function)
        .send()
        .await
        .expect("the function's policy");
    let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let mut ids: Vec<String> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Sid"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_lambda_module_is_routed_to_its_function_behind_the_authorizer() {
    let test = "a_lambda_module_is_routed_to_its_function_behind_the_authorizer";
    let Some(api) = api(test).await else {
        return;
    };
    // Another module's routes, which nothing here may touch.
    let other = endpoint_module(&unique_module("other"));
    let endpoints = api.endpoint_deployer();
    endpoints
        .deploy(&endpoint_spec(&other, "https://other.example.com"))
        .await
        .expect("route the other module");
    let other_integration = api.assert_routed(other.name.as_str()).await;

    let name = unique_module("fn");
    let config = LambdaSettings {
        role_arn: Some(iam_role(&name).await),
        package_bucket: Some(name.clone()),
        architecture: "arm64".into(),
        timeout_seconds: 30,
        max_concurrency: 100,
    };
    let deployer = RoutedDeployer {
        inner: Arc::new(LambdaDeployer::new(&api.sdk, config)),
        routes: api.routes(),
    };
    let backend =
        json!({"type": "lambda", "runtime": "provided.al2023", "entry_point": "bootstrap"});
    let module = manifest(&name, "1.0.0", backend, None);
    s3_object(&name, &LambdaDeployer::package_key(&module), &EMPTY_ZIP).await;

    let deployment = deployer
        .deploy(&spec(&module, None))
        .await
        .expect("deploy and route");

    let function_arn = deployment.endpoint.strip_prefix("lambda:").unwrap();
    let integration = api.assert_routed(&name).await;
    assert_eq!(
        integration.integration_type(),
        Some(&IntegrationType::AwsProxy)
    );
    assert_eq!(integration.integration_uri(), Some(function_arn));
    assert_eq!(integration.payload_format_version(), Some("2.0"));
    assert_eq!(
        integration.connection_type(),
        Some(&ConnectionType::Internet)
    );
    let mut expected = guarded_headers();
    expected.extend([
        (
            "overwrite:header.x-plinth-context".to_owned(),
            "$context.authorizer.context".to_owned(),
        ),
        ("remove:header.x-plinth-rule".to_owned(), "''".to_owned()),
    ]);
    assert_eq!(parameters(&integration), expected);
    let api_id = &api.config.api_id;
    let permissions = [
        format!("plinth-{api_id}-prefix"),
        format!("plinth-{api_id}-proxy"),
    ];
    assert_eq!(policy_statements(&api.sdk, function_arn).await, permissions);

    let again = deployer
        .deploy(&spec(&module, None))
        .await
        .expect("deploy again");
    assert_eq!(again, deployment);
    let same = api.assert_routed(&name).await;
    assert_eq!(same.integration_id(), integration.integration_id());
    assert_eq!(
        policy_statements(&api.sdk, function_arn).await,
        permissions,
        "each permission once"
    );

    deployer
        .undeploy(&module, &deployment)
        .await
        .expect("undeploy");
    api.assert_not_routed(&name).await;
    let function = aws_sdk_lambda::Client::new(&api.sdk)
        .get_function()
        .function_name(function_arn)
        .send()
        .await;
    assert!(function.is_err(), "the function is deleted");
    let untouched = api.assert_routed(other.name.as_str()).await;
    assert_eq!(untouched, other_integration);
}

#[tokio::test]
async fn an_external_endpoint_is_routed_over_the_internet_and_updated_in_place() {
    let test = "an_external_endpoint_is_routed_over_the_internet_and_updated_in_place";
    let Some(api) = api(test).await else {
        return;
    };
    let deployer = api.endpoint_deployer();
    let other = endpoint_module(&unique_module("other"));
    deployer
        .deploy(&endpoint_spec(&other, "https://other.example.com"))
        .await
        .expect("route the other module");
    let other_integration = api.assert_routed(other.name.as_str()).await;
    let name = unique_module("ext");
    let module = endpoint_module(&name);

    let deployment = deployer
        .deploy(&endpoint_spec(&module, "https://billing.example.com/"))
        .await
        .expect("route");

    assert_eq!(deployment.endpoint, "https://billing.example.com");
    let integration = api.assert_routed(&name).await;
    assert_eq!(
        integration.integration_type(),
        Some(&IntegrationType::HttpProxy)
    );
    assert_eq!(
        integration.integration_uri(),
        Some("https://billing.example.com")
    );
    assert_eq!(
        integration.connection_type(),
        Some(&ConnectionType::Internet)
    );
    assert_eq!(integration.connection_id(), None);
    assert_eq!(integration.payload_format_version(), Some("1.0"));
    let mut expected = guarded_headers();
    expected.extend([
        (
            "overwrite:header.x-plinth-context".to_owned(),
            "$context.authorizer.context".to_owned(),
        ),
        ("remove:header.x-plinth-rule".to_owned(), "''".to_owned()),
        ("overwrite:path".to_owned(), "$request.path".to_owned()),
    ]);
    assert_eq!(parameters(&integration), expected);

    deployer
        .deploy(&endpoint_spec(&module, "https://billing.example.com"))
        .await
        .expect("route again");
    assert_eq!(api.assert_routed(&name).await, integration, "unchanged");

    let moved = deployer
        .deploy(&endpoint_spec(&module, "https://billing-2.example.com/v2"))
        .await
        .expect("route to the new endpoint");
    let updated = api.assert_routed(&name).await;
    assert_eq!(updated.integration_id(), integration.integration_id());
    assert_eq!(
        updated.integration_uri(),
        Some("https://billing-2.example.com")
    );
    assert_eq!(parameters(&updated)["overwrite:path"], "/v2${request.path}");

    deployer.undeploy(&module, &moved).await.expect("undeploy");
    api.assert_not_routed(&name).await;
    assert_eq!(
        api.assert_routed(other.name.as_str()).await,
        other_integration
    );
    deployer
        .undeploy(&module, &moved)
        .await
        .expect("undeploying again is fine");
}

/// Issue 22 (the AWS side of the header findings): the `plinth` gateway drops method
/// overrides, the underscore spellings of framing and credential fields and the client's
/// claimed address, and sends the address it saw; API Gateway does the same as far as its
/// parameter mapping goes. What the integration API Gateway stores is checked, mapping by
/// mapping, and again after the integration is updated in place.
#[tokio::test]
async fn the_integration_keeps_what_only_the_gateway_sends_from_the_module() {
    let test = "the_integration_keeps_what_only_the_gateway_sends_from_the_module";
    let Some(api) = api(test).await else {
        return;
    };
    let deployer = api.endpoint_deployer();
    let name = unique_module("hdr");
    let module = endpoint_module(&name);
    let first = deployer
        .deploy(&endpoint_spec(&module, "https://billing.example.com"))
        .await
        .expect("route");
    let created = parameters(&api.assert_routed(&name).await);
    let moved = deployer
        .deploy(&endpoint_spec(&module, "https://billing-2.example.com"))
        .await
        .expect("route to the new endpoint");
    let updated = parameters(&api.assert_routed(&name).await);
    for stored in [&created, &updated] {
        let removed = |name: &str| stored.contains_key(&format!("remove:header.{name}"));
        // Method overrides: the route's method is the one authorized.
        for name in [
            "x-http-method-override",
            "x_http_method_override",
            "x-http_method-override",
            "x-http-method",
            "x-method-override",
            "x_method_override",
        ] {
            assert!(removed(name), "{name}: {stored:?}");
        }
        // Underscore spellings of framing and credential fields (a CGI-style backend reads
        // them as the real ones), and of the platform's own.
        for name in [
            "content_length",
            "transfer_encoding",
            "x_module_api_key",
            "x-module_api-key",
            "x-module-api-key",
            "proxy_authorization",
            "x_plinth_context",
            "x_plinth_rule",
        ] {
            assert!(removed(name), "{name}: {stored:?}");
        }
        // The client's claimed address: removed where API Gateway lets a mapping touch it,
        // and the address API Gateway saw in X-Real-IP.
        for name in [
            "x-forwarded-port",
            "x_forwarded_for",
            "x_forwarded_host",
            "x-client-ip",
            "true-client-ip",
            "x_real_ip",
        ] {
            assert!(removed(name), "{name}: {stored:?}");
        }
        assert_eq!(
            stored.get("overwrite:header.x-real-ip").map(String::as_str),
            Some("$context.identity.sourceIp"),
            "{stored:?}"
        );
        // Nothing API Gateway refuses to map (it would fail the deploy on AWS; moto takes it).
        for key in stored.keys().filter(|k| k.contains(":header.")) {
            let name = key.split_once(":header.").unwrap().1;
            assert!(!is_reserved(name), "{key} is a reserved header");
        }
    }
    deployer.undeploy(&module, &moved).await.expect("undeploy");
    api.assert_not_routed(&name).await;
    drop(first);
}

#[tokio::test]
async fn what_an_interrupted_publish_left_is_reused_or_deleted() {
    let test = "what_an_interrupted_publish_left_is_reused_or_deleted";
    let Some(api) = api(test).await else {
        return;
    };
    let name = unique_module("half");
    let module = endpoint_module(&name);
    // Two integrations of the module (a create retried after a lost answer) and, twice, a
    // route of its prefix without the authorizer (moto, unlike API Gateway, takes a route key
    // twice).
    let mut left = Vec::new();
    for _ in 0..2 {
        let created = api
            .client
            .create_integration()
            .api_id(&api.config.api_id)
            .description(format!("plinth:module={name}"))
            .integration_type(IntegrationType::HttpProxy)
            .integration_uri("https://old.example.com")
            .integration_method("ANY")
            .payload_format_version("1.0")
            .send()
            .await
            .expect("create integration");
        left.push(created.integration_id().unwrap().to_owned());
    }
    for _ in 0..2 {
        api.client
            .create_route()
            .api_id(&api.config.api_id)
            .route_key(format!("ANY /api/v1/{name}"))
            .target(format!("integrations/{}", left[1]))
            .send()
            .await
            .expect("create route");
    }

    api.endpoint_deployer()
        .deploy(&endpoint_spec(&module, "https://billing.example.com"))
        .await
        .expect("route");

    let integration = api.assert_routed(&name).await;
    assert_eq!(
        integration.integration_id(),
        Some(left[1].as_str()),
        "the routed one is kept"
    );
    assert_eq!(
        integration.integration_uri(),
        Some("https://billing.example.com")
    );
    assert_eq!(
        parameters(&integration)["overwrite:header.x-plinth-context"],
        "$context.authorizer.context"
    );
}

#[tokio::test]
async fn an_ecs_service_is_routed_through_the_vpc_link_to_its_cloud_map_service() {
    let test = "an_ecs_service_is_routed_through_the_vpc_link_to_its_cloud_map_service";
    let Some(mut api) = api(test).await else {
        return;
    };
    api.config.vpc_link_id = Some("vpclink1".into());
    let name = unique_module("svc");
    let module = endpoint_module(&name);
    // moto's ECS does not report Service Connect's Cloud Map service, so the deployment is
    // written as the ECS deployer gives it back on AWS.
    let discovery = "arn:aws:servicediscovery:us-east-1:123456789012:service/srv-0123456789";
    let deployment = Deployment {
        endpoint: format!("http://{name}.plinth.internal:8080"),
        health_url: format!("http://{name}.plinth.internal:8080/health"),
        handle: json!({
            "cluster": "plinth",
            "service_arn": format!("arn:aws:ecs:us-east-1:123456789012:service/plinth/plinth-{name}"),
            "task_definition_arn": format!("arn:aws:ecs:us-east-1:123456789012:task-definition/plinth-{name}:1"),
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/svc@sha256:00",
            "discovery_arn": discovery,
        }),
        addresses: vec!["http://10.0.1.17:8080".into()],
    };
    let routes = api.routes();

    routes.publish(&module, &deployment).await.expect("publish");

    let integration = api.assert_routed(&name).await;
    assert_eq!(
        integration.integration_type(),
        Some(&IntegrationType::HttpProxy)
    );
    assert_eq!(integration.integration_uri(), Some(discovery));
    assert_eq!(
        integration.connection_type(),
        Some(&ConnectionType::VpcLink)
    );
    assert_eq!(integration.connection_id(), Some("vpclink1"));
    assert_eq!(parameters(&integration)["overwrite:path"], "$request.path");
    routes.remove(&module, &deployment).await.expect("remove");
    api.assert_not_routed(&name).await;
}
