//! The caller of a request: a user's bearer token, or a module's API key.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use plinth_module_sdk::wire::API_KEY_HEADER;

use super::State;
use crate::error::Error;
use crate::identity::{COMPANY_HEADER, Caller, bearer_token};
use crate::plane::ControlPlane;

impl FromRequestParts<State> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Error> {
        caller_of(parts, state).await
    }
}

/// The caller of a request, from its `Authorization` or `X-Module-API-Key` header.
pub async fn caller_of(parts: &Parts, state: &ControlPlane) -> Result<Caller, Error> {
    caller_from(&parts.headers, state).await
}

/// The caller named by request headers: a module's API key, or a user's bearer token.
pub(super) async fn caller_from(
    headers: &HeaderMap,
    state: &ControlPlane,
) -> Result<Caller, Error> {
    if let Some(key) = headers.get(API_KEY_HEADER) {
        let key = key
            .to_str()
            .map_err(|_| Error::Unauthorized("the API key is not valid text".into()))?;
        return state.api_keys.authenticate(key).await.map(Caller::Module);
    }
    let token = bearer_token(headers)?;
    let user = state.identity.tokens.verify(token).await?;
    let selected = headers.get(COMPANY_HEADER).map(|v| v.as_bytes());
    user.acting_in(selected).map(Caller::User)
}
