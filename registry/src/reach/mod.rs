//! The `Reach` port: how the platform itself calls a module — its lifecycle hooks and its
//! health check — at the URL of one of its instances.
//!
//! | URL | adapter | how |
//! | --- | --- | --- |
//! | `http://…`, `https://…` | [`http::HttpReach`] | an HTTP request (one machine; ECS tasks at their task IP, from inside the VPC) |
//! | `lambda:{function_arn}{path}` | [`lambda::LambdaReach`] | Lambda `Invoke` with the payload API Gateway's HTTP API sends (version 2.0), so the module's router serves it as any request |
//!
//! [`Reaches`] picks by the URL; a `lambda:` URL where no Lambda client is configured (one
//! machine) fails with a message saying so.

pub mod http;
#[cfg(feature = "aws")]
pub mod lambda;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

/// The scheme of the URL of a Lambda module's instance: `lambda:{function_arn}`.
pub const LAMBDA_SCHEME: &str = "lambda:";

/// What the platform asks of a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// One call: a method on a full URL, with a JSON body for `POST`, answered within `timeout`.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub url: String,
    pub json: Option<serde_json::Value>,
    pub timeout: Duration,
}

impl Call {
    #[must_use]
    pub fn get(url: impl Into<String>, timeout: Duration) -> Self {
        Self {
            method: Method::Get,
            url: url.into(),
            json: None,
            timeout,
        }
    }

    #[must_use]
    pub fn post(url: impl Into<String>, json: serde_json::Value, timeout: Duration) -> Self {
        Self {
            method: Method::Post,
            url: url.into(),
            json: Some(json),
            timeout,
        }
    }
}

/// The module's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    #[must_use]
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The module could not be asked, or gave no answer in time.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReachError {
    #[error("no answer within {0} s")]
    TimedOut(f32),
    #[error("{0}")]
    Unreachable(String),
}

#[async_trait]
pub trait Reach: Send + Sync + std::fmt::Debug {
    async fn call(&self, call: &Call) -> Result<Answer, ReachError>;
}

/// HTTP URLs over HTTP, `lambda:` URLs through Lambda `Invoke` when a client is given.
#[derive(Debug, Clone, Default)]
pub struct Reaches {
    http: http::HttpReach,
    /// Behind `dyn`, so that a program that never invokes a module links no Lambda client.
    lambda: Option<Arc<dyn Reach>>,
}

impl Reaches {
    /// HTTP only (one machine).
    #[must_use]
    pub fn http() -> Self {
        Self::default()
    }

    /// HTTP, and Lambda modules through `lambda`.
    #[must_use]
    pub fn with_lambda(lambda: Arc<dyn Reach>) -> Self {
        Self {
            http: http::HttpReach::default(),
            lambda: Some(lambda),
        }
    }
}

#[async_trait]
impl Reach for Reaches {
    async fn call(&self, call: &Call) -> Result<Answer, ReachError> {
        if call.url.starts_with(LAMBDA_SCHEME) {
            return match &self.lambda {
                Some(lambda) => lambda.call(call).await,
                None => Err(ReachError::Unreachable(format!(
                    "cannot invoke `{}`: this platform has no Lambda client (Lambda modules run on AWS)",
                    call.url
                ))),
            };
        }
        self.http.call(call).await
    }
}
