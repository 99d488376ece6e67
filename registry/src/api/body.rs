//! Request extractors whose rejections are problem documents naming the field: a JSON body
//! ([`Json`]) and a query string ([`Query`]).
//!
//! A body is JSON (`application/json` or `…+json`) in UTF-8, at most [`MAX_BODY_BYTES`], and
//! an object: another charset is 415, a larger body 413, `null` or any other non-object 422.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// The largest request body the platform API reads (axum's default, stated once): larger
/// bodies are 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Like `axum::Json`, but bad bodies are 400/413/415/422 problem documents.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        json_content_type(req.headers())?;
        let bytes = body_bytes(req, state).await?;
        object_body(&bytes)?;
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(rejected(&rejection)),
        }
    }
}

/// The body's bytes, or 413 past [`MAX_BODY_BYTES`] (for handlers that read a body that may
/// be empty).
pub async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, Error> {
    Bytes::from_request(req, state)
        .await
        .map_err(|rejection| match rejection {
            BytesRejection::FailedToBufferBody(_)
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
            {
                too_large()
            }
            other => {
                Error::BadRequest(format!("the body could not be read: {}", other.body_text()))
            }
        })
}

fn too_large() -> Error {
    Error::TooLarge(format!(
        "the body is more than {MAX_BODY_BYTES} bytes, the most the platform API reads"
    ))
}

/// `Content-Type` is JSON, and its charset, when one is named, is UTF-8 (RFC 8259 §8.1).
pub(super) fn json_content_type(headers: &HeaderMap) -> Result<(), Error> {
    let missing =
        || Error::BadRequest("send the body as JSON with `Content-Type: application/json`".into());
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(missing)?;
    let mime: mime::Mime = value.parse().map_err(|_| missing())?;
    let json = mime.type_() == mime::APPLICATION
        && (mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON));
    if !json {
        return Err(missing());
    }
    match mime.get_param(mime::CHARSET) {
        Some(charset) if !charset.as_str().eq_ignore_ascii_case("utf-8") => {
            Err(Error::UnsupportedMediaType(format!(
                "the body must be UTF-8 JSON, not charset={charset}"
            )))
        }
        _ => Ok(()),
    }
}

/// A body is one JSON object: `null`, arrays and scalars are refused before the fields are read.
pub(super) fn object_body(bytes: &[u8]) -> Result<(), Error> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        Some(b'{') => Ok(()),
        // Not JSON at all: the parser says where.
        Some(c) if !(c.is_ascii_alphanumeric() || matches!(c, b'[' | b'"' | b'-')) => Ok(()),
        None => Err(Error::invalid(
            "the body must be a JSON object, and it is empty",
            vec![],
        )),
        Some(_) => {
            let kind = match serde_json::from_slice::<serde_json::Value>(bytes) {
                Ok(serde_json::Value::Null) => "null",
                Ok(serde_json::Value::Array(_)) => "an array",
                Ok(serde_json::Value::String(_)) => "a string",
                Ok(serde_json::Value::Number(_)) => "a number",
                Ok(serde_json::Value::Bool(_)) => "a boolean",
                _ => return Ok(()),
            };
            Err(Error::invalid(
                format!("the body must be a JSON object, not {kind}"),
                vec![],
            ))
        }
    }
}

fn rejected(rejection: &JsonRejection) -> Error {
    let text = rejection.body_text();
    // axum says "Failed to deserialize the JSON body into the target type: field: message".
    let detail = text
        .split_once("target type: ")
        .map_or(text.as_str(), |(_, rest)| rest);
    let detail = without_position(detail).to_string();
    match rejection {
        JsonRejection::JsonDataError(_) => field_error(&detail),
        _ => Error::BadRequest(format!("the body is not valid JSON: {detail}")),
    }
}

/// serde's " at line 1 column 51" points into a body the sender never sees as lines.
fn without_position(detail: &str) -> &str {
    detail
        .rsplit_once(" at line ")
        .filter(|(_, at)| {
            at.split_once(" column ").is_some_and(|(l, c)| {
                l.chars().all(|c| c.is_ascii_digit())
                    && c.trim().chars().all(|c| c.is_ascii_digit())
            })
        })
        .map_or(detail, |(message, _)| message)
}

/// `path: message` as one invalid field; otherwise the whole as the detail.
fn field_error(detail: &str) -> Error {
    match detail.split_once(": ") {
        Some((path, message)) if !path.contains(' ') => Error::field(path, message),
        _ => Error::invalid(detail.to_owned(), Vec::new()),
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Like `axum::extract::Query`, but a bad parameter is a 422 problem document naming it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(query_rejected(&rejection)),
        }
    }
}

fn query_rejected(rejection: &QueryRejection) -> Error {
    let text = rejection.body_text();
    // axum says "Failed to deserialize query string: parameter: message".
    let detail = text
        .split_once("query string: ")
        .map_or(text.as_str(), |(_, rest)| rest);
    match field_error(detail) {
        Error::Invalid { problems, .. } if !problems.is_empty() => Error::invalid(
            format!(
                "query parameter {}: {}",
                problems[0].path, problems[0].message
            ),
            problems,
        ),
        other => other,
    }
}
