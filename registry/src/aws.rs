//! What every AWS adapter shares: the SDK configuration from the environment, and how an SDK
//! failure is described to a person.

use std::fmt::Display;

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// The region when the environment names none.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The retries of every adapter: the standard mode (throttling included), five attempts.
#[must_use]
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(5)
}

/// The SDK configuration from the environment (`AWS_ENDPOINT_URL`, credentials, region —
/// [`DEFAULT_REGION`] when none is set), with [`retry_config`]. The Lambda functions build
/// theirs from Lambda's variables alone, with the same two (`plinth_functions::wiring`).
pub async fn config_from_env() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(RegionProviderChain::default_provider().or_else(DEFAULT_REGION))
        .retry_config(retry_config())
        .load()
        .await
}

/// An SDK failure in words: what was being done, then the service's error code and message
/// (or the transport failure).
pub fn describe<E, R>(doing: impl Display, error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match error
        .as_service_error()
        .and_then(ProvideErrorMetadata::code)
    {
        Some(code) => {
            let message = error
                .as_service_error()
                .and_then(ProvideErrorMetadata::message);
            format!("{doing}: {code}: {}", message.unwrap_or("no message"))
        }
        None => format!(
            "{doing}: {}",
            aws_smithy_types::error::display::DisplayErrorContext(&error)
        ),
    }
}
