//! The smallest Lambda function that calls AWS through the SDK as the platform's functions
//! do (`default-https-client`: hyper, h2, rustls on aws-lc), with aws-config's default
//! credential chain, which the functions no longer link (`wiring::sdk_config`): one
//! `GetSecretValue` per event. The floor under any function's zip (BENCHMARKS.md, Lambda
//! functions). Not a platform function: built only for the benchmark (`--features bench`,
//! BENCHMARKS.md "Cold starts side by side").

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let secrets = secrets.clone();
        async move {
            let id = event.payload["secret"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let read = secrets.get_secret_value().secret_id(id).send().await?;
            Ok::<Value, Error>(json!({"length": read.secret_string().map_or(0, str::len)}))
        }
    }))
    .await
}
