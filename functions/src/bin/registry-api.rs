//! The app API (`/api/v1/modules…`, `/tenants…`, `/rbac…`, `/health`, JWKS) behind API
//! Gateway: the registry's own router, served by `lambda_http`.

use plinth_functions::wiring::{Needs, init_logging, module_calling_app_from_env};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    init_logging();
    let needs = Needs {
        tokens: true,
        context_key: true,
    };
    let app = module_calling_app_from_env(needs).await?;
    lambda_http::run(app.api()).await
}
