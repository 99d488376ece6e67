//! The control plane's errors, answered as RFC 9457 `application/problem+json`.
//!
//! Bad input is a 4xx whose detail names the field; a 500 is a bug and says so.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use plinth_module_sdk::Problem;
use plinth_module_sdk::wire::ProblemDocument;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed input: the detail names the field.
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed input that breaks a rule; each problem names its path.
    #[error("{detail}")]
    Invalid {
        detail: String,
        problems: Vec<Problem>,
    },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (a duplicate, a dependent, a refusal).
    #[error("{0}")]
    Conflict(String),
    #[error("{detail}")]
    TooManyRequests {
        detail: String,
        retry_after_secs: u64,
    },
    /// A module's backend did not answer the gateway.
    #[error("{0}")]
    BadGateway(String),
    #[error("{0}")]
    Unavailable(String),
    /// A module's backend did not answer in time (504).
    #[error("{0}")]
    GatewayTimeout(String),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(detail: impl Into<String>, problems: Vec<Problem>) -> Self {
        Error::Invalid {
            detail: detail.into(),
            problems,
        }
    }

    /// One invalid field.
    pub fn field(path: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Error::Invalid {
            detail: format!("{path}: {message}"),
            problems: vec![Problem {
                path: path.into(),
                message,
            }],
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let detail = self.to_string();
        let errors = match &self {
            Error::Invalid { problems, .. } => problems.clone(),
            _ => Vec::new(),
        };
        let mut response = ProblemDocument::new(status, detail, errors).into_response_with(status);
        let headers = response.headers_mut();
        if let Error::TooManyRequests {
            retry_after_secs, ..
        } = self
        {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs.max(1)),
            );
        }
        response
    }
}
