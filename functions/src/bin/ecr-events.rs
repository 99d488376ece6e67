//! Publishes the manifest a pushed image carries, or records its digest against the published
//! versions that name it; refuses a push that would change a published version.

use lambda_runtime::{LambdaEvent, service_fn};
use plinth_functions::ecr_events::handle;
use plinth_functions::wiring::{ecr_events_app_from_env, init_logging};
use plinth_functions::{LambdaError, lambda_error};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), LambdaError> {
    init_logging();
    let (app, images) = ecr_events_app_from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (app, images) = (app.clone(), images.clone());
        async move {
            handle(&app, &images, event.payload)
                .await
                .map_err(lambda_error)
        }
    }))
    .await
}
