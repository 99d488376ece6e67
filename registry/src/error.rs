//! The control plane's errors, answered as RFC 9457 `application/problem+json`.
//!
//! Bad input is a 4xx whose detail names the field; a 500 is a bug and says so.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use plinth_module_sdk::Problem;
use plinth_module_sdk::wire::ProblemDocument;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error underneath a 5xx, kept for the log.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// What a caller is told when its write lost a race and no more precise message was given.
pub const CHANGED_MEANWHILE: &str = "the resource changed while this request was handled; retry it";

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
    /// A body, or the record it would be stored as, is larger than the platform takes (413):
    /// the detail names the limit, and the field where one is to blame.
    #[error("{0}")]
    TooLarge(String),
    /// A body in a media type or charset the API does not read (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
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
    /// Something the platform needs (the store, the bus, a worker) is not answering.
    #[error("{detail}")]
    Unavailable {
        detail: String,
        #[source]
        cause: Option<Cause>,
    },
    /// A module's backend did not answer in time (504).
    #[error("{0}")]
    GatewayTimeout(String),
    /// A bug: what was being done, and the error underneath.
    #[error("{detail}")]
    Internal {
        detail: String,
        #[source]
        cause: Option<Cause>,
    },
}

/// The candidate nearest `wanted`, when one is near enough to be a likely typo (Jaro-Winkler
/// similarity of 0.8 or more): the one "did you mean" of every refusal that names something.
pub fn closest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .filter(|c| *c != wanted)
        .map(|c| (strsim::jaro_winkler(wanted, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `; did you mean `x`?` for the candidate nearest `wanted`, or nothing.
pub fn did_you_mean<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(wanted, candidates)
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

impl Error {
    pub fn invalid(detail: impl Into<String>, problems: Vec<Problem>) -> Self {
        Error::Invalid {
            detail: detail.into(),
            problems,
        }
    }

    /// A bug, in words.
    pub fn internal(detail: impl Into<String>) -> Self {
        Error::Internal {
            detail: detail.into(),
            cause: None,
        }
    }

    /// A bug: what was being done, and the error that stopped it.
    pub fn internal_because(detail: impl Into<String>, cause: impl Into<Cause>) -> Self {
        Error::Internal {
            detail: detail.into(),
            cause: Some(cause.into()),
        }
    }

    /// Something the platform needs is not answering.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Error::Unavailable {
            detail: detail.into(),
            cause: None,
        }
    }

    /// Something the platform needs failed: what was being done, and how it failed.
    pub fn unavailable_because(detail: impl Into<String>, cause: impl Into<Cause>) -> Self {
        Error::Unavailable {
            detail: detail.into(),
            cause: Some(cause.into()),
        }
    }

    /// The error and every cause underneath it, `: `-separated (what the log says).
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(error) = cause {
            text.push_str(": ");
            text.push_str(&error.to_string());
            cause = error.source();
        }
        text
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
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Error::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        // The edge: the one place a failed request is logged, with every cause. The caller
        // reads the error's own words: what lies underneath a 5xx stays in the log.
        if status.is_server_error() {
            tracing::error!(error = %self.chain(), "request failed");
        }
        let detail = self.to_string();
        // A 422 always names at least one place (`""` is the whole body), as the API document
        // says of its `ValidationProblem`.
        let errors = match &self {
            Error::Invalid { problems, .. } if problems.is_empty() => vec![Problem {
                path: String::new(),
                message: detail.clone(),
            }],
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_is_kept_and_told_in_the_detail_and_the_log() {
        let parse = serde_json::from_str::<u8>("x").unwrap_err();
        let error = Error::internal_because("stored item MODULE#a is unreadable", parse);
        assert!(
            std::error::Error::source(&error).is_some(),
            "the cause is kept"
        );
        assert_eq!(error.to_string(), "stored item MODULE#a is unreadable");
        assert!(
            error
                .chain()
                .starts_with("stored item MODULE#a is unreadable: expected value"),
            "{}",
            error.chain()
        );
    }

    #[tokio::test]
    async fn every_422_names_at_least_one_place_in_errors() {
        let response =
            Error::invalid("the body must be a JSON object, not null", vec![]).into_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["errors"][0]["path"], "", "{body}");
        assert_eq!(
            body["errors"][0]["message"],
            "the body must be a JSON object, not null"
        );
    }

    #[tokio::test]
    async fn a_5xx_answers_its_own_words_and_keeps_the_cause_for_the_log() {
        let cause = std::io::Error::other("disk /dev/vda1 full");
        let response =
            Error::unavailable_because("the store did not answer", cause).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["detail"], "the store did not answer");
    }
}
