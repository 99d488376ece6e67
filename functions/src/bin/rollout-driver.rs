//! Steps every active staged rollout on a schedule, judged on the figures stored from the
//! HTTP API's access log.

use lambda_runtime::{LambdaEvent, service_fn};
use plinth_functions::rollouts::{driver, handle};
use plinth_functions::wiring::{NoSecrets, app_from_env, init_logging};
use plinth_functions::{LambdaError, lambda_error};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), LambdaError> {
    init_logging();
    let app = app_from_env(NoSecrets).await?;
    let driver = std::sync::Arc::new(driver(&app));
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (app, driver) = (app.clone(), driver.clone());
        async move {
            handle(&app, &driver, &event.payload)
                .await
                .map_err(lambda_error)
        }
    }))
    .await
}
