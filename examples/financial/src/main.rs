//! The `financial` backend: a Lambda function on AWS, a local HTTP server on `PORT` otherwise
//! (how `plinth up` runs it, through the manifest's `dev_command`).

use std::process::ExitCode;

use plinth_example_financial::{Financial, ledger::Ledger, manifest, module};
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
    let app = Financial {
        ledger: Ledger::new(tables),
        config: env.config(),
        events: env.publisher().await,
    };
    match module(app, env.verifier()).run(&env).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "stopped");
            ExitCode::FAILURE
        }
    }
}
