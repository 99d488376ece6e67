//! The caller of a request: a user's bearer token, or a module's API key.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::State;
use crate::error::Error;
use crate::identity::Caller;

/// The header a module's backend sends its API key in.
pub const API_KEY_HEADER: &str = "x-module-api-key";

impl FromRequestParts<State> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Error> {
        caller_of(parts, state).await
    }
}

/// The caller of a request, from its `Authorization` or `X-Module-API-Key` header.
pub async fn caller_of(parts: &Parts, state: &crate::platform::Platform) -> Result<Caller, Error> {
    if let Some(key) = parts.headers.get(API_KEY_HEADER) {
        let key = key
            .to_str()
            .map_err(|_| Error::Unauthorized("the API key is not valid text".into()))?;
        return state.authenticate_api_key(key).await.map(Caller::Module);
    }
    let token = bearer_token(&parts.headers)?;
    state.tokens.verify(token).map(Caller::User)
}

/// The bearer token of a request's `Authorization` header (401 when missing or malformed).
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, Error> {
    bearer_of(headers.get(AUTHORIZATION).map(|value| value.as_bytes()))
}

/// The bearer token in an `Authorization` field's value (401 when missing or malformed).
pub fn bearer_of(authorization: Option<&[u8]>) -> Result<&str, Error> {
    let value = authorization.ok_or_else(|| {
        Error::Unauthorized(
            "sign in: send `Authorization: Bearer <token>` or a module's X-Module-API-Key".into(),
        )
    })?;
    // UTF-8 rather than `to_str`'s visible-ASCII check, byte by byte over the whole token: a
    // token with other bytes fails verification (and only verified tokens are cached).
    std::str::from_utf8(value)
        .ok()
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| {
            Error::Unauthorized("the Authorization header is not `Bearer <token>`".into())
        })
}
