//! The platform as template.yaml deploys it, on moto: the table, the bus and the two secrets,
//! the function binaries started as Lambda runs them (cargo-lambda's runtime emulator), each
//! with the environment the template gives it, and the template's rules that target them
//! (delivered by the `BusToLambda` shim).

use std::path::PathBuf;
use std::time::Duration;

use aws_config::SdkConfig;
use plinth_registry::store::dynamodb::DynamoStore;
use serde_json::{Value, json};

use crate::bus_to_lambda::{BusToLambda, Rule};
use crate::lambda_emulator::{Function, LambdaEmulator, cargo_lambda};

/// The template's placeholder of the context key: the first function that signs replaces it.
const CONTEXT_KEY_PLACEHOLDER: &str = "generate-on-first-start";

/// The functions of template.yaml this cell runs, by the name they are invoked by.
pub const REGISTRY_API: &str = "plinth-cell-registry-api";
pub const AUTHORIZER: &str = "plinth-cell-authorizer";
pub const CONFIG_RESOLVER: &str = "plinth-cell-config-resolver";
pub const INSTALLER: &str = "plinth-cell-installer";
pub const ECR_EVENTS: &str = "plinth-cell-ecr-events";
pub const HEALTH_CHECKER: &str = "plinth-cell-health-checker";

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
}

impl Invoker {
    /// Invokes function `name` synchronously (`RequestResponse`); `Err` when the Invoke API
    /// does not answer.
    pub async fn invoke(&self, name: &str, payload: &Value) -> Result<Invoked, reqwest::Error> {
        let url = format!("{}/2015-03-31/functions/{name}/invocations", self.endpoint);
        let response = self.http.post(&url).json(payload).send().await?;
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
    invoker: Invoker,
    lambda: LambdaEmulator,
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
        if !emulators_configured(test) {
            return None;
        }
        let sdk = plinth_registry::aws::config_from_env().await;
        let stage = unique("cell");
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
        let lambda = start_functions(&table, &bus, &jwt_secret_arn, &context_key_arn, test).await?;
        let invoker = Invoker {
            endpoint: lambda.endpoint.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("an HTTP client"),
        };
        let rules = BusToLambda::start(&sdk, &invoker, &template_rules(&stage, &bus)).await;
        Some(Self {
            sdk,
            bus,
            jwt_secret_arn,
            context_key_arn,
            rules,
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

    /// What function `name` logged: shown when a step fails.
    pub fn log(&self, name: &str) -> String {
        self.lambda.log(name)
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
/// installer's on the platform's bus, the ECR events function's on the default bus. (The
/// schedules — the sweep, the health check — are not rules the cell runs: it invokes the
/// functions as their schedules would.)
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

/// The functions with the environment template.yaml gives each (its `Globals` and its own
/// `Environment`), plus the emulator's endpoint, credentials and region. Binaries are the
/// debug builds cargo makes for this package's tests, not cargo-lambda's release builds.
async fn start_functions(
    table: &str,
    bus: &str,
    jwt_arn: &str,
    context_arn: &str,
    test: &str,
) -> Option<LambdaEmulator> {
    let aws: Vec<(&str, String)> = [
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
    ]
    .into_iter()
    .map(|name| (name, std::env::var(name).unwrap_or_default()))
    .collect();
    let globals = [("PLINTH_TABLE", table), ("PLINTH_EVENT_BUS", bus)];
    // JwtIssuer and JwtAudience default to empty: not checked.
    let tokens = [
        ("PLINTH_JWT_SECRET_ARN", jwt_arn),
        ("PLINTH_JWT_ISSUER", ""),
        ("PLINTH_JWT_AUDIENCE", ""),
    ];
    let context = [("PLINTH_CONTEXT_KEY_ARN", context_arn)];
    // InstallDeadlineSeconds' default; no ECS, Lambda or API Gateway settings yet: the cell's
    // module runs at an endpoint of its own (the `ModuleBackend` shim).
    let installer = [
        ("PLINTH_URL", "http://127.0.0.1:1"),
        ("PLINTH_SWEEP_AFTER_SECS", "5400"),
    ];
    let env_of = |own: &[&[(&str, &str)]]| -> Vec<(String, String)> {
        aws.iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
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
            env!("CARGO_BIN_EXE_registry-api"),
            env_of(&[&tokens, &context]),
        ),
        Spec::new(
            AUTHORIZER,
            env!("CARGO_BIN_EXE_authorizer"),
            env_of(&[&tokens, &context]),
        ),
        Spec::new(
            CONFIG_RESOLVER,
            env!("CARGO_BIN_EXE_config-resolver"),
            env_of(&[&tokens]),
        ),
        Spec::new(
            INSTALLER,
            env!("CARGO_BIN_EXE_installer"),
            env_of(&[&installer]),
        ),
        Spec::new(ECR_EVENTS, env!("CARGO_BIN_EXE_ecr-events"), env_of(&[])),
        Spec::new(
            HEALTH_CHECKER,
            env!("CARGO_BIN_EXE_health-checker"),
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
    LambdaEmulator::start(test, &functions).await
}

/// One function to start: its name, binary and environment.
struct Spec {
    name: &'static str,
    binary: PathBuf,
    env: Vec<(String, String)>,
}

impl Spec {
    fn new(name: &'static str, binary: &str, env: Vec<(String, String)>) -> Self {
        Self {
            name,
            binary: PathBuf::from(binary),
            env,
        }
    }
}
