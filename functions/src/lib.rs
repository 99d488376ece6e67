//! Plinth's Lambda functions. Each binary in `src/bin/` only reads its environment
//! ([`wiring`]), builds the AWS adapters, and hands its event to a handler here, which calls
//! the same registry code the local platform serves. Handlers take a [`plinth_registry::App`]
//! and a typed event, so tests drive them on the embedded store with the real payloads in
//! `fixtures/` (and, for the AWS events the registry parses, `registry/tests/fixtures/`).
//!
//! | binary | event | handler |
//! | --- | --- | --- |
//! | `registry-api` | API Gateway HTTP API (payload 2.0) | [`registry_api::router`]: [`plinth_registry::App::api`] and the console |
//! | `authorizer` | Lambda authorizer request 2.0 | [`authorizer::authorize`] |
//! | `config-resolver` | API Gateway, or direct invoke | [`config_resolver::handle`] |
//! | `installer` | EventBridge `module.install.requested`; its schedule (the sweep) | [`installer::dispatch`] |
//! | `health-checker` | EventBridge schedule | [`health::handle`] |
//! | `usage` | CloudWatch Logs (the access log's subscription); EventBridge, every platform and module event | [`usage::handle`] |
//! | `rollout-driver` | EventBridge schedule | [`rollouts::handle`]: `Rollouts::tick`, judged on the figures the usage function stored |
//! | `ecr-events` | EventBridge `ECR Image Action` (reads the image from ECR) | [`ecr_events::handle`] |

pub mod authorizer;
pub mod config_resolver;
pub mod ecr_events;
pub mod health;
pub mod installer;
pub mod platform_secrets;
pub mod registry_api;
pub mod rollouts;
pub mod usage;
pub mod wiring;

#[cfg(test)]
mod testkit;

/// What a handler's failure becomes for the Lambda runtime (logged, and retried for
/// asynchronous invocations).
pub type LambdaError = lambda_runtime::Error;

/// A registry error as the runtime reports it.
#[must_use]
pub fn lambda_error(error: plinth_registry::Error) -> LambdaError {
    Box::new(Reported(error))
}

/// A registry error as the runtime reports it: the runtime logs an error's own words, so they
/// are every cause's; the causes stay attached.
#[derive(Debug)]
struct Reported(plinth_registry::Error);

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.chain())
    }
}

impl std::error::Error for Reported {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.0)
    }
}
