//! The app API (`/api/v1/modules…`, `/tenants…`, `/rbac…`, `/health`, JWKS) behind API
//! Gateway: the registry's own router, with the console beside it (`/`, `/console/…`), served
//! by `lambda_http` ([`registry_api::Function`]).

use plinth_functions::registry_api;
use plinth_functions::wiring::{Needs, init_logging, registry_api_app_from_env};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    init_logging();
    let needs = Needs {
        tokens: true,
        context_key: true,
    };
    let app = registry_api_app_from_env(needs).await?;
    let console = registry_api::console(&app, registry_api::console_settings_from_env().await?)?;
    lambda_http::run(registry_api::Function(registry_api::router(&app, console))).await
}
