//! Probes every module instance on a schedule and records changes of health.

use lambda_runtime::{LambdaEvent, service_fn};
use plinth_functions::health::handle;
use plinth_functions::wiring::{NoSecrets, init_logging, module_calling_app_from_env};
use plinth_functions::{LambdaError, lambda_error};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), LambdaError> {
    init_logging();
    let app = module_calling_app_from_env(NoSecrets).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let app = app.clone();
        async move { handle(&app, &event.payload).await.map_err(lambda_error) }
    }))
    .await
}
