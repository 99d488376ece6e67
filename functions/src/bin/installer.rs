//! Runs install, upgrade, rollback and uninstall sagas on `module.install.requested` events,
//! and sweeps stuck installations on its schedule.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use plinth_functions::installer::dispatch;
use plinth_functions::wiring::{NoSecrets, init_logging, installer_app_from_env};
use plinth_functions::{LambdaError, lambda_error};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), LambdaError> {
    init_logging();
    let app = installer_app_from_env(NoSecrets).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<EventBridgeEvent<Value>>| {
        let app = app.clone();
        async move { dispatch(&app, event.payload).await.map_err(lambda_error) }
    }))
    .await
}
