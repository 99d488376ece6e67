//! The HTTP API's Lambda authorizer for module routes (payload 2.0, simple responses).

use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use lambda_runtime::{LambdaEvent, service_fn};
use plinth_functions::LambdaError;
use plinth_functions::authorizer::{AuthorizerResponse, authorize};
use plinth_functions::wiring::{Needs, app_from_env, init_logging};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), LambdaError> {
    init_logging();
    let needs = Needs {
        tokens: true,
        context_key: true,
    };
    let app = app_from_env(needs).await?;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<ApiGatewayV2CustomAuthorizerV2Request>| {
            let app = app.clone();
            async move {
                Ok::<AuthorizerResponse, LambdaError>(authorize(&app, event.payload).await)
            }
        },
    ))
    .await
}
