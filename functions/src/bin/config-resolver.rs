//! A module's resolved configuration: from API Gateway, or invoked directly with
//! `{"tenant_id", "module", "company_id"?, "api_key"}` (the module's own API key).

use lambda_runtime::{LambdaEvent, service_fn};
use plinth_functions::config_resolver::handle;
use plinth_functions::wiring::{Needs, app_from_env, init_logging};
use plinth_functions::{LambdaError, lambda_error};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), LambdaError> {
    init_logging();
    let needs = Needs {
        tokens: true,
        context_key: false,
    };
    let app = app_from_env(needs).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let app = app.clone();
        async move { handle(&app, event.payload).await.map_err(lambda_error) }
    }))
    .await
}
