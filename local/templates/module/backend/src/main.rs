//! The `{{name}}` backend: an HTTP server on `PORT` (ECS, or `plinth up` locally), or a
//! Lambda function when Lambda runs it.

use std::process::ExitCode;

use plinth_module_sdk::ModuleEnv;
use plinth_module_sdk::runtime::init_tracing;
use {{crate}}::{App, manifest, module};

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
    let app = App::new(env.config(), env.publisher().await);
    match module(app, env.verifier()).run(&env).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "stopped");
            ExitCode::FAILURE
        }
    }
}
