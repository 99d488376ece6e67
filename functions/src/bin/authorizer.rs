//! The HTTP API's Lambda authorizer for module routes (payload 2.0, simple responses).

use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use lambda_runtime::{LambdaEvent, service_fn};
use plinth_functions::LambdaError;
use plinth_functions::authorizer::{AuthorizerResponse, authorize};
use plinth_functions::wiring::{Needs, init_logging, platform_from_env};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), LambdaError> {
    init_logging();
    let needs = Needs {
        tokens: true,
        context_key: true,
    };
    let platform = platform_from_env(needs).await?;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<ApiGatewayV2CustomAuthorizerV2Request>| {
            let platform = platform.clone();
            async move {
                Ok::<AuthorizerResponse, LambdaError>(authorize(&platform, event.payload).await)
            }
        },
    ))
    .await
}
