//! Publishes the manifest a pushed image carries, or records its digest against the published
//! versions that name it; refuses a push that would change a published version.

use lambda_runtime::{LambdaEvent, service_fn};
use plinth_functions::ecr_events::handle;
use plinth_functions::wiring::{Needs, app_from_env, init_logging};
use plinth_functions::{LambdaError, lambda_error};
use plinth_registry::aws;
use plinth_registry::deploy::ecr::EcrImages;
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), LambdaError> {
    init_logging();
    let app = app_from_env(Needs::default()).await?;
    let images = EcrImages::new(&aws::config_from_env().await);
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
