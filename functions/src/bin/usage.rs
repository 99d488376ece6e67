//! Counts tenants' use of modules from the HTTP API's access log and the platform's bus.

use lambda_runtime::{LambdaEvent, service_fn};
use plinth_functions::usage::{Subscribers, handle};
use plinth_functions::wiring::{NoSecrets, app_from_env, init_logging};
use plinth_functions::{LambdaError, lambda_error};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), LambdaError> {
    init_logging();
    let app = app_from_env(NoSecrets).await?;
    let subscribers = std::sync::Arc::new(Subscribers::default());
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (app, subscribers) = (app.clone(), subscribers.clone());
        async move {
            handle(&app, &subscribers, event.payload)
                .await
                .map_err(lambda_error)
        }
    }))
    .await
}
