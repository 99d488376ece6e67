//! The app API (`/api/v1/modules…`, `/tenants…`, `/rbac…`, `/health`, JWKS) behind API
//! Gateway: the registry's own router, served by `lambda_http`.

use plinth_functions::wiring::{Needs, app_from_env, init_logging};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    init_logging();
    let needs = Needs {
        tokens: true,
        context_key: true,
        calls_modules: true,
    };
    let app = app_from_env(needs).await?;
    lambda_http::run(app.api()).await
}
