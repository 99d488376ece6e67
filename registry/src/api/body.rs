//! A JSON body extractor whose rejections are problem documents naming the field.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// Like `axum::Json`, but bad bodies are 400/415/422 problem documents.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(rejected(&rejection)),
        }
    }
}

fn rejected(rejection: &JsonRejection) -> Error {
    let text = rejection.body_text();
    // axum says "Failed to deserialize the JSON body into the target type: field: message".
    let detail = text
        .split_once("target type: ")
        .map_or(text.as_str(), |(_, rest)| rest);
    // serde's " at line 1 column 51" points into a body the sender never sees as lines.
    let detail = detail
        .rsplit_once(" at line ")
        .filter(|(_, at)| {
            at.split_once(" column ").is_some_and(|(l, c)| {
                l.chars().all(|c| c.is_ascii_digit())
                    && c.trim().chars().all(|c| c.is_ascii_digit())
            })
        })
        .map_or(detail, |(message, _)| message)
        .to_string();
    match rejection {
        JsonRejection::JsonDataError(_) => match detail.split_once(": ") {
            Some((path, message)) if !path.contains(' ') => Error::field(path, message),
            _ => Error::invalid(detail.clone(), Vec::new()),
        },
        JsonRejection::MissingJsonContentType(_) => {
            Error::BadRequest("send the body as JSON with `Content-Type: application/json`".into())
        }
        _ => Error::BadRequest(format!("the body is not valid JSON: {detail}")),
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
