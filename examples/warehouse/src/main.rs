//! The `warehouse` backend: an HTTP server on `PORT` (an ECS service on AWS, a child process
//! of `plinth up` locally, through the manifest's `dev_command`); `warehouse health` is the
//! image's container health check.

use std::process::ExitCode;

use plinth_example_warehouse::{Warehouse, manifest, module};
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
    let app = Warehouse::new(tables, env.config(), env.publisher().await);
    match module(app, env.verifier()).run(&env).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "stopped");
            ExitCode::FAILURE
        }
    }
}
