//! The platform as template.yaml deploys it, on moto: the table, the bus and the two secrets,
//! the function binaries started as Lambda runs them (cargo-lambda's runtime emulator), each
//! with the environment the template gives it, and the template's rules that target them
//! (delivered by the `BusToLambda` shim); the ECS cluster modules' services run on, their
//! tasks run by the `Containers` shim.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_config::SdkConfig;
use plinth_registry::store::dynamodb::DynamoStore;
use serde_json::{Value, json};

use crate::access_log::AccessLog;
use crate::api_gateway::serve_platform_routes;
use crate::bus_to_lambda::{BusToLambda, Rule};
use crate::containers::{Containers, Image};
use crate::dynamo_tap::DynamoTap;
use crate::ecs_cluster::ecs_config;
use crate::lambda_emulator::{Function, LambdaEmulator, cargo_lambda, workspace_binary};
use crate::lambda_front::{LambdaFront, ModuleFunction};
use crate::module_listener::ModuleListener;

/// The template's placeholder of the context key: the first function that signs replaces it.
const CONTEXT_KEY_PLACEHOLDER: &str = "generate-on-first-start";

/// The functions of template.yaml this cell runs, by the name they are invoked by.
pub const REGISTRY_API: &str = "plinth-cell-registry-api";
pub const AUTHORIZER: &str = "plinth-cell-authorizer";
pub const CONFIG_RESOLVER: &str = "plinth-cell-config-resolver";
pub const INSTALLER: &str = "plinth-cell-installer";
pub const ECR_EVENTS: &str = "plinth-cell-ecr-events";
pub const HEALTH_CHECKER: &str = "plinth-cell-health-checker";
pub const USAGE: &str = "plinth-cell-usage";
pub const ROLLOUT_DRIVER: &str = "plinth-cell-rollout-driver";

/// The Lambda module's function as the installer names it (`plinth-{module}`).
pub const FINANCIAL_FUNCTION: &str = "plinth-financial";
/// Financial 1.3.0's function when installed alongside (`plinth-{module}-v{version}`).
pub const FINANCIAL_ALONGSIDE_FUNCTION: &str = "plinth-financial-v1-3-0";
/// The ECS module's image repository (`plinth-{module}`): the notifications example, as a
/// container.
pub const NOTIFICATIONS_REPOSITORY: &str = "plinth-notifications";

/// What one invocation gives back: the Invoke API's status and the function's answer.
#[derive(Debug)]
pub struct Invoked {
    pub status: u16,
    /// `X-Amz-Function-Error` when the function failed (its answer is then the error).
    pub function_error: Option<String>,
    pub payload: Value,
}

/// Invokes the cell's functions through the Invoke API; cheap to clone.
#[derive(Clone)]
pub struct Invoker {
    endpoint: String,
    http: reqwest::Client,
    /// Names of functions whose process was killed: an invocation in flight then fails at
    /// once, as Lambda fails one whose runtime exits.
    killed: tokio::sync::broadcast::Sender<String>,
}

impl Invoker {
    /// Invokes function `name` synchronously (`RequestResponse`); `Err` when the Invoke API
    /// does not answer.
    pub async fn invoke(&self, name: &str, payload: &Value) -> Result<Invoked, reqwest::Error> {
        let url = format!("{}/2015-03-31/functions/{name}/invocations", self.endpoint);
        let mut killed = self.killed.subscribe();
        let sent = self.http.post(&url).json(payload).send();
        let killed = async move {
            loop {
                match killed.recv().await {
                    Ok(function) if function == name => return,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        std::future::pending::<()>().await;
                    }
                    _ => {}
                }
            }
        };
        let response = tokio::select! {
            response = sent => response?,
            () = killed => return Ok(Invoked {
                status: 200,
                function_error: Some("Unhandled".into()),
                payload: serde_json::json!({
                    "errorType": "Runtime.ExitError",
                    "errorMessage": "Runtime exited with error: signal: killed"
                }),
            }),
        };
        let status = response.status().as_u16();
        let function_error = response
            .headers()
            .get("x-amz-function-error")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await.unwrap_or_default();
        let payload = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Invoked {
            status,
            function_error,
            payload,
        })
    }
}

/// One platform: its own table, bus and secrets (named for this run), its functions running.
pub struct Cell {
    pub sdk: SdkConfig,
    /// The platform's bus, `plinth-{stage}`.
    pub bus: String,
    pub jwt_secret_arn: String,
    pub context_key_arn: String,
    /// Declared before `lambda`: the pumps stop before the functions do.
    pub rules: BusToLambda,
    /// The HTTP API's access log, which the `ApiGateway` shim writes.
    pub access_log: AccessLog,
    /// Where the functions' Lambda calls go (`AWS_ENDPOINT_URL_LAMBDA`).
    pub front: LambdaFront,
    /// The HTTP API's platform routes over HTTP: the modules' `PLINTH_URL`.
    platform_routes: tokio::task::JoinHandle<()>,
    /// The installer's DynamoDB endpoint: armed, it kills the installer's process right
    /// after a saga step is stored, and starts a new one (the crash drill).
    pub tap: DynamoTap,
    /// The cluster ECS modules run in (`PLINTH_ECS_CLUSTER`).
    pub cluster: String,
    /// The ECS modules' tasks, as processes; `None` off moto (LocalStack), where the cell
    /// has no ECS module.
    pub containers: Option<Containers>,
    /// The HTTP API, VPC link and module listener the installer routes versions on, in a
    /// cell started with [`Self::start_with_module_listener`]; `None` otherwise (the
    /// `ApiGateway` shim then picks a module's backend by name).
    pub module_listener: Option<ModuleListener>,
    /// Invokes modules' functions as API Gateway's Lambda integrations do (through the
    /// `LambdaFront`).
    modules: Invoker,
    invoker: Invoker,
    lambda: Arc<Mutex<LambdaEmulator>>,
}

/// Whether the emulator is moto (it has the `/moto-api/` dashboard): the ECS shims use
/// moto's own levers.
async fn on_moto() -> bool {
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") else {
        return false;
    };
    let url = format!("{}/moto-api/", endpoint.trim_end_matches('/'));
    reqwest::get(&url)
        .await
        .is_ok_and(|answer| answer.status().is_success())
}

/// Whether both emulators are configured: without them the cell skips, except under CI.
fn emulators_configured(test: &str) -> bool {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: CI is set but AWS_ENDPOINT_URL is not; run the tests with ./tests/run"
        );
        eprintln!("{test}: skipped, no emulator (AWS_ENDPOINT_URL unset); ./tests/run starts one");
        return false;
    }
    cargo_lambda(test).is_some()
}

/// A name no other run against the same emulator uses.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{nanos}", std::process::id())
}

impl Cell {
    /// Creates the stack's resources on moto and starts the functions; `None` (skipped)
    /// without the emulators.
    pub async fn start(test: &str) -> Option<Self> {
        Self::start_with(test, false).await
    }

    /// As [`Self::start`], and the installer also publishes module routes on an HTTP API
    /// through the module listener (`ModuleListener`), each installed version by its own
    /// rule: as template.yaml deploys the platform with `ModuleListener`. Needs moto.
    pub async fn start_with_module_listener(test: &str) -> Option<Self> {
        Self::start_with(test, true).await
    }

    async fn start_with(test: &str, with_listener: bool) -> Option<Self> {
        if !emulators_configured(test) {
            return None;
        }
        let sdk = plinth_registry::aws::config_from_env().await;
        let stage = unique("cell");
        let module_listener = if with_listener {
            Some(ModuleListener::create(&sdk, &stage).await)
        } else {
            None
        };
        let table = format!("plinth-{stage}");
        DynamoStore::new(&sdk, table.clone())
            .create_table()
            .await
            .expect("create the platform's table");
        let bus = format!("plinth-{stage}");
        aws_sdk_eventbridge::Client::new(&sdk)
            .create_event_bus()
            .name(&bus)
            .send()
            .await
            .expect("create the platform's bus");
        // As the template's JwtSecret: 64 letters and digits, generated.
        let jwt: String = (0..2)
            .map(|_| format!("{:032x}", rand::random::<u128>()))
            .collect();
        let jwt_secret_arn = create_secret(&sdk, &format!("plinth/{stage}/jwt-secret"), &jwt).await;
        let context_key_arn = create_secret(
            &sdk,
            &format!("plinth/{stage}/context-key"),
            CONTEXT_KEY_PLACEHOLDER,
        )
        .await;
        let boundary = permissions_boundary(&sdk, &stage).await;
        let ecs = if on_moto().await {
            Some(ecs_config(&sdk, &stage).await)
        } else {
            eprintln!(
                "{test}: the emulator is not moto: no ECS module (the cell runs its tasks with \
                 shims of moto's ECS)"
            );
            None
        };
        let (cluster, subnets, groups, execution_role) =
            ecs.as_ref().map_or_else(Default::default, |ecs| {
                (
                    ecs.cluster.clone(),
                    ecs.subnets.join(","),
                    ecs.security_groups.join(","),
                    ecs.execution_role_arn.clone(),
                )
            });
        let front_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the Lambda front");
        let front_url = format!(
            "http://{}",
            front_listener.local_addr().expect("the front's address")
        );
        let platform_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the platform's routes");
        let platform_url = format!(
            "http://{}",
            platform_listener
                .local_addr()
                .expect("the platform routes' address")
        );
        let tap_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the DynamoDB tap");
        let tap_url = format!(
            "http://{}",
            tap_listener.local_addr().expect("the tap's address")
        );
        let stack = Stack {
            installer_dynamodb: &tap_url,
            platform_url: &platform_url,
            table: &table,
            bus: &bus,
            jwt_arn: &jwt_secret_arn,
            context_arn: &context_key_arn,
            boundary: &boundary,
            lambda_front: &front_url,
            ecs_cluster: &cluster,
            ecs_subnets: &subnets,
            ecs_security_groups: &groups,
            ecs_execution_role: &execution_role,
            routes: module_listener
                .as_ref()
                .map(|listener| listener.installer_env().to_vec())
                .unwrap_or_default(),
        };
        let (lambda, installer_spec) = start_functions(&stack, test).await?;
        let endpoint = lambda.endpoint.clone();
        let lambda = Arc::new(Mutex::new(lambda));
        let modules = [FINANCIAL_FUNCTION, FINANCIAL_ALONGSIDE_FUNCTION]
            .into_iter()
            .map(|name| ModuleFunction {
                name,
                binary: workspace_binary("plinth-example-financial", "financial"),
            })
            .collect();
        let front = LambdaFront::start(
            front_listener,
            &sdk,
            Arc::clone(&lambda),
            modules,
            aws_env(),
        )
        .await;
        let (killed, _) = tokio::sync::broadcast::channel(16);
        let invoker = Invoker {
            endpoint,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("an HTTP client"),
            killed: killed.clone(),
        };
        let tap = DynamoTap::start(tap_listener);
        let (emulator, installer_spec) = (Arc::clone(&lambda), installer_spec);
        tap.on_trigger(move || {
            let mut emulator = emulator.lock().unwrap_or_else(PoisonError::into_inner);
            emulator.stop(INSTALLER);
            let _ = killed.send(INSTALLER.to_owned());
            let env: Vec<(&str, &str)> = installer_spec
                .env
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            emulator.run(&Function {
                name: installer_spec.name,
                binary: &installer_spec.binary,
                env: &env,
            });
        });
        let mut rules = BusToLambda::start(&sdk, &invoker, &template_rules(&stage, &bus)).await;
        let through_the_front = Invoker {
            endpoint: front_url.clone(),
            http: invoker.http.clone(),
            killed: invoker.killed.clone(),
        };
        rules.follow_module_rules(&sdk, &bus, through_the_front.clone());
        let platform_routes = serve_platform_routes(platform_listener, invoker.clone());
        let images = vec![Image {
            repository: NOTIFICATIONS_REPOSITORY.to_owned(),
            binary: workspace_binary("plinth-example-notifications", "notifications"),
        }];
        let containers = match &ecs {
            Some(ecs) => Some(Containers::start(&sdk, ecs, images, aws_env()).await),
            None => None,
        };
        Some(Self {
            sdk,
            bus,
            jwt_secret_arn,
            context_key_arn,
            rules,
            access_log: AccessLog::from_template(),
            front,
            platform_routes,
            tap,
            cluster,
            containers,
            module_listener,
            modules: through_the_front,
            invoker,
            lambda,
        })
    }

    /// Invokes function `name` synchronously (`RequestResponse`) through the Invoke API.
    pub async fn invoke(&self, name: &str, payload: &Value) -> Invoked {
        match self.invoker.invoke(name, payload).await {
            Ok(invoked) => invoked,
            Err(e) => panic!("invoke {name}: {e}\n{name}'s log:\n{}", self.log(name)),
        }
    }

    /// Invokes a module's function (`plinth-{module}`), as an `AWS_PROXY` integration does;
    /// `None` when moto has no such function (the module is not on Lambda).
    pub async fn invoke_module(&self, function: &str, payload: &Value) -> Option<Invoked> {
        aws_sdk_lambda::Client::new(&self.sdk)
            .get_function()
            .function_name(function)
            .send()
            .await
            .ok()?;
        match self.modules.invoke(function, payload).await {
            Ok(invoked) => Some(invoked),
            Err(e) => panic!("invoke {function}: {e}"),
        }
    }

    /// What function `name` logged: shown when a step fails.
    pub fn log(&self, name: &str) -> String {
        self.lambda
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .log(name)
    }

    /// The JWT secret as the functions read it, from Secrets Manager.
    pub async fn jwt_secret(&self) -> String {
        secret_value(&self.sdk, &self.jwt_secret_arn).await
    }

    /// The context key's secret as it is now.
    pub async fn context_key(&self) -> String {
        secret_value(&self.sdk, &self.context_key_arn).await
    }
}

/// The rules template.yaml gives the functions, as `Events` of type `EventBridgeRule`: the
/// installer's and the usage function's on the platform's bus, the ECR events function's on
/// the default bus. (The schedules — the sweep, the health check, the rollout driver — are not
/// rules the cell runs: it invokes the functions as their schedules would.)
fn template_rules(stage: &str, bus: &str) -> Vec<Rule> {
    vec![
        Rule {
            name: format!("platform-{stage}-install-requested"),
            bus: Some(bus.to_owned()),
            pattern: json!({
                "source": ["plinth.registry"],
                "detail-type": ["module.install.requested"]
            }),
            function: INSTALLER,
        },
        Rule {
            name: format!("plinth-{stage}-ecr-push"),
            bus: None,
            pattern: json!({
                "source": ["aws.ecr"],
                "detail-type": ["ECR Image Action"],
                "detail": {"action-type": ["PUSH"], "result": ["SUCCESS"]}
            }),
            function: ECR_EVENTS,
        },
        Rule {
            name: format!("platform-{stage}-usage"),
            bus: Some(bus.to_owned()),
            pattern: json!({"source": [{"prefix": "plinth."}]}),
            function: USAGE,
        },
    ]
}

async fn create_secret(sdk: &SdkConfig, name: &str, value: &str) -> String {
    let created = aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create secret {name}: {e:?}"));
    created.arn().expect("the secret's ARN").to_owned()
}

async fn secret_value(sdk: &SdkConfig, arn: &str) -> String {
    let read = aws_sdk_secretsmanager::Client::new(sdk)
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("read secret {arn}: {e:?}"));
    read.secret_string().unwrap_or_default().to_owned()
}

/// The policy template.yaml's `ModulePermissionsBoundary` is: the ceiling of every module
/// role the installer creates. Gives back its ARN.
async fn permissions_boundary(sdk: &SdkConfig, stage: &str) -> String {
    let document = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["dynamodb:*", "sqs:*", "events:PutEvents", "secretsmanager:GetSecretValue",
                       "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*"
        }]
    });
    let created = aws_sdk_iam::Client::new(sdk)
        .create_policy()
        .policy_name(format!("plinth-{stage}-module-boundary"))
        .policy_document(document.to_string())
        .send()
        .await
        .expect("create the modules' permissions boundary");
    created
        .policy()
        .and_then(|p| p.arn())
        .expect("the boundary's ARN")
        .to_owned()
}

/// The emulator's endpoint, credentials and region: what every process of the cell gets to
/// reach the emulated AWS.
fn aws_env() -> Vec<(String, String)> {
    [
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
    ]
    .into_iter()
    .map(|name| (name.to_owned(), std::env::var(name).unwrap_or_default()))
    .collect()
}

/// What the stack gives the functions: the names and ARNs of its resources.
struct Stack<'a> {
    /// The installer's `AWS_ENDPOINT_URL_DYNAMODB`: the crash drill's `DynamoTap`.
    installer_dynamodb: &'a str,
    /// The HTTP API's URL (`PLINTH_URL`), served by the `ApiGateway` shim's platform routes.
    platform_url: &'a str,
    table: &'a str,
    bus: &'a str,
    jwt_arn: &'a str,
    context_arn: &'a str,
    boundary: &'a str,
    /// `AWS_ENDPOINT_URL_LAMBDA`: the `LambdaFront` shim.
    lambda_front: &'a str,
    ecs_cluster: &'a str,
    ecs_subnets: &'a str,
    ecs_security_groups: &'a str,
    ecs_execution_role: &'a str,
    /// The installer's API Gateway and module listener settings, when the cell has them
    /// (none otherwise: no routes published).
    routes: Vec<(&'static str, &'a str)>,
}

/// Where function `binary` is: cargo-lambda's build, as `sam build` makes it
/// (`PLINTH_LAMBDA_FUNCTIONS/<binary>/bootstrap`, which `./tests/run` builds and exports);
/// without it — a run of this test alone — the debug build cargo made for it. Under CI the
/// cargo-lambda build is required.
fn function_binary(binary: &str, debug_build: &str) -> PathBuf {
    match std::env::var_os("PLINTH_LAMBDA_FUNCTIONS") {
        Some(dir) => {
            let bootstrap = PathBuf::from(dir).join(binary).join("bootstrap");
            assert!(
                bootstrap.is_file(),
                "{} is missing: build the functions with `source infra/emulator/lambda.sh && \
                 lambda_functions_build`",
                bootstrap.display()
            );
            bootstrap
        }
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but PLINTH_LAMBDA_FUNCTIONS is not: the cell runs the functions as \
                 sam builds them; run the tests with ./tests/run"
            );
            PathBuf::from(debug_build)
        }
    }
}

/// The functions with the environment template.yaml gives each (its `Globals` and its own
/// `Environment`), plus the emulator's endpoint, credentials and region; each binary as
/// [`function_binary`] finds it.
async fn start_functions(stack: &Stack<'_>, test: &str) -> Option<(LambdaEmulator, Spec)> {
    let aws = aws_env();
    let globals = [
        ("PLINTH_TABLE", stack.table),
        ("PLINTH_EVENT_BUS", stack.bus),
        ("AWS_ENDPOINT_URL_LAMBDA", stack.lambda_front),
    ];
    // JwtIssuer and JwtAudience default to empty: not checked.
    let tokens = [
        ("PLINTH_JWT_SECRET_ARN", stack.jwt_arn),
        ("PLINTH_JWT_ISSUER", ""),
        ("PLINTH_JWT_AUDIENCE", ""),
    ];
    let context = [("PLINTH_CONTEXT_KEY_ARN", stack.context_arn)];
    // InstallDeadlineSeconds' default; Lambda modules as the template deploys them (no
    // package bucket: the cell's module is an image); ECS modules in the cell's cluster,
    // looked at every second; no API Gateway settings (the `ApiGateway` shim routes) unless
    // the cell has a module listener (`stack.routes`).
    let installer = [
        ("PLINTH_URL", stack.platform_url),
        ("PLINTH_ECS_CLUSTER", stack.ecs_cluster),
        ("PLINTH_ECS_SUBNETS", stack.ecs_subnets),
        ("PLINTH_ECS_SECURITY_GROUPS", stack.ecs_security_groups),
        ("PLINTH_ECS_EXECUTION_ROLE", stack.ecs_execution_role),
        ("PLINTH_ECS_POLL_SECONDS", "1"),
        ("PLINTH_SWEEP_AFTER_SECS", "5400"),
        ("PLINTH_LAMBDA_ARCHITECTURE", "x86_64"),
        ("PLINTH_LAMBDA_MAX_CONCURRENCY", "10"),
        ("PLINTH_MODULE_PERMISSIONS_BOUNDARY", stack.boundary),
        ("AWS_ENDPOINT_URL_DYNAMODB", stack.installer_dynamodb),
    ];
    let routes = &stack.routes[..];
    let env_of = |own: &[&[(&str, &str)]]| -> Vec<(String, String)> {
        aws.iter()
            .cloned()
            .chain(
                std::iter::once(&globals[..])
                    .chain(own.iter().copied())
                    .flatten()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            )
            .collect()
    };
    let specs = [
        Spec::new(
            REGISTRY_API,
            function_binary("registry-api", env!("CARGO_BIN_EXE_registry-api")),
            env_of(&[&tokens, &context]),
        ),
        Spec::new(
            AUTHORIZER,
            function_binary("authorizer", env!("CARGO_BIN_EXE_authorizer")),
            env_of(&[&tokens, &context]),
        ),
        Spec::new(
            CONFIG_RESOLVER,
            function_binary("config-resolver", env!("CARGO_BIN_EXE_config-resolver")),
            env_of(&[&tokens]),
        ),
        Spec::new(
            INSTALLER,
            function_binary("installer", env!("CARGO_BIN_EXE_installer")),
            env_of(&[&installer, routes]),
        ),
        Spec::new(
            ECR_EVENTS,
            function_binary("ecr-events", env!("CARGO_BIN_EXE_ecr-events")),
            env_of(&[]),
        ),
        Spec::new(
            HEALTH_CHECKER,
            function_binary("health-checker", env!("CARGO_BIN_EXE_health-checker")),
            env_of(&[]),
        ),
        Spec::new(
            USAGE,
            function_binary("usage", env!("CARGO_BIN_EXE_usage")),
            env_of(&[]),
        ),
        Spec::new(
            ROLLOUT_DRIVER,
            function_binary("rollout-driver", env!("CARGO_BIN_EXE_rollout-driver")),
            env_of(&[]),
        ),
    ];
    let borrowed: Vec<Vec<(&str, &str)>> = specs
        .iter()
        .map(|spec| {
            spec.env
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect()
        })
        .collect();
    let functions: Vec<Function<'_>> = specs
        .iter()
        .zip(&borrowed)
        .map(|(spec, env)| Function {
            name: spec.name,
            binary: &spec.binary,
            env,
        })
        .collect();
    let emulator = LambdaEmulator::start_declaring(
        test,
        &functions,
        &[FINANCIAL_FUNCTION, FINANCIAL_ALONGSIDE_FUNCTION],
    )
    .await?;
    let installer = specs
        .into_iter()
        .find(|spec| spec.name == INSTALLER)
        .expect("the installer's spec");
    Some((emulator, installer))
}

/// One function to start: its name, binary and environment.
struct Spec {
    name: &'static str,
    binary: PathBuf,
    env: Vec<(String, String)>,
}

impl Spec {
    fn new(name: &'static str, binary: PathBuf, env: Vec<(String, String)>) -> Self {
        Self { name, binary, env }
    }
}

impl Drop for Cell {
    fn drop(&mut self) {
        self.platform_routes.abort();
    }
}
