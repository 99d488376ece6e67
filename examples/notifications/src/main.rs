//! The `notifications` backend: a Lambda function on AWS (HTTP requests and EventBridge or
//! SQS deliveries), a local HTTP server on `PORT` otherwise (how `plinth up` runs it).

use std::process::ExitCode;

use plinth_example_notifications::{Outbox, manifest, module};
use plinth_module_sdk::ModuleEnv;
use plinth_module_sdk::data::Tables;
use plinth_module_sdk::runtime::init_tracing;

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let manifest = manifest();
    let env = match ModuleEnv::from_env(&manifest) {
        Ok(env) => env,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    let tables = match Tables::from_env(&manifest).await {
        Ok(tables) => tables,
        Err(error) => {
            tracing::error!(%error, "cannot open the module's tables");
            return ExitCode::FAILURE;
        }
    };
    match module(Outbox::new(tables), env.config(), env.verifier())
        .run(&env)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "stopped");
            ExitCode::FAILURE
        }
    }
}
