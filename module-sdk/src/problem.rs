//! [`ApiError`]: an RFC 9457 `application/problem+json` answer, the error shape of the whole
//! platform, for module handlers to return as well.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::manifest::Problem;

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The body of every error the platform and its modules answer (RFC 9457), as sent on the
/// wire: `{"type", "title", "status", "detail", "errors"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProblemDocument {
    /// Always `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type", default = "about_blank")]
    pub kind: String,
    /// The status's reason phrase.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, naming the field for bad input.
    pub detail: String,
    /// One entry per invalid field (422 only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Problem>,
}

fn about_blank() -> String {
    "about:blank".to_owned()
}

impl ProblemDocument {
    /// The document of an answer with `status`, saying `detail`.
    #[must_use]
    pub fn new(status: StatusCode, detail: impl Into<String>, errors: Vec<Problem>) -> Self {
        Self {
            kind: about_blank(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            errors,
        }
    }

    /// The document as a response, with `Content-Type: application/problem+json`.
    #[must_use]
    pub fn into_response_with(self, status: StatusCode) -> Response {
        let mut response = (status, Json(self)).into_response();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, http::HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

/// An error answered as an RFC 9457 problem document: `{"type", "title", "status", "detail"}`.
///
/// Handlers return `Result<_, ApiError>`; the `detail` is what the caller reads, so it says
/// what was wrong and, where it helps, what to do.
///
/// ```
/// use plinth_module_sdk::ApiError;
/// use http::StatusCode;
///
/// let error = ApiError::not_found("invoice INV-9 does not exist");
/// assert_eq!(error.status(), StatusCode::NOT_FOUND);
/// assert_eq!(error.detail(), "invoice INV-9 does not exist");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {detail}")]
pub struct ApiError {
    status: StatusCode,
    detail: String,
}

impl ApiError {
    /// An error with any status.
    #[must_use]
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
        }
    }

    /// `400 Bad Request`: the input is wrong; the detail names the field.
    #[must_use]
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// `401 Unauthorized`: no valid tenant context came with the request.
    #[must_use]
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }

    /// `403 Forbidden`: the caller lacks a permission.
    #[must_use]
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    /// `404 Not Found`.
    #[must_use]
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// `409 Conflict`: the request contradicts the current state.
    #[must_use]
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }

    /// `502 Bad Gateway`: the platform, which this module depends on, failed.
    #[must_use]
    pub fn bad_gateway(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, detail)
    }

    /// `500 Internal Server Error`: a bug.
    #[must_use]
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, detail)
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What the caller is told.
    #[must_use]
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The problem document.
    #[must_use]
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.document()).unwrap_or(Value::Null)
    }

    /// The problem document answered for this error.
    #[must_use]
    pub fn document(&self) -> ProblemDocument {
        ProblemDocument::new(self.status, self.detail.clone(), Vec::new())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, detail = %self.detail, "request failed");
        }
        self.document().into_response_with(self.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_is_served_as_problem_json() {
        let response = ApiError::forbidden("missing financial:invoices.read").into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(response.headers()[CONTENT_TYPE], PROBLEM_JSON);
    }

    #[test]
    fn the_document_carries_status_title_and_detail() {
        let body = ApiError::not_found("no such invoice").to_json();
        assert_eq!(body["status"], 404);
        assert_eq!(body["title"], "Not Found");
        assert_eq!(body["detail"], "no such invoice");
    }
}
