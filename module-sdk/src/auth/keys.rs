//! The platform's public keys, from its JWKS: cached for at most [`KEYS_TTL`], fetched again
//! when a token names a key id the cache does not hold (at most once per
//! [`MIN_REFETCH_INTERVAL`], so tokens with made-up key ids cannot flood the platform).

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::Jwk;
use serde_json::Value;
use tokio::sync::Mutex;

/// How long fetched keys are trusted without asking again (every cache is bounded by 30 s).
pub const KEYS_TTL: Duration = Duration::from_secs(30);

/// The least time between two fetches caused by unknown key ids.
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(1);

const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where verification keys come from.
pub(crate) enum KeySource {
    /// Keys given up front (tests, or keys distributed out of band).
    Fixed(HashMap<String, DecodingKey>),
    /// The platform's JWKS document.
    Jwks(JwksCache),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(keys) => f
                .debug_tuple("Fixed")
                .field(&keys.keys().collect::<Vec<_>>())
                .finish(),
            Self::Jwks(cache) => f.debug_tuple("Jwks").field(&cache.url).finish(),
        }
    }
}

/// Why no key could be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyError {
    /// The keys are known and none has this id.
    Unknown(String),
    /// The JWKS could not be fetched and no cached key has this id.
    Unavailable(String),
}

impl KeySource {
    pub(crate) async fn key(&self, kid: &str) -> Result<DecodingKey, KeyError> {
        match self {
            Self::Fixed(keys) => keys
                .get(kid)
                .cloned()
                .ok_or_else(|| KeyError::Unknown(kid.to_owned())),
            Self::Jwks(cache) => cache.key(kid).await,
        }
    }
}

#[derive(Default)]
struct Cached {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
}

/// The JWKS at `url`, cached.
pub(crate) struct JwksCache {
    url: String,
    client: reqwest::Client,
    cached: Mutex<Cached>,
}

impl JwksCache {
    pub(crate) fn new(url: String, client: reqwest::Client) -> Self {
        Self {
            url,
            client,
            cached: Mutex::new(Cached::default()),
        }
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, KeyError> {
        // One lock across the fetch: concurrent requests wait for the same answer.
        let mut cached = self.cached.lock().await;
        let fresh = cached.fetched_at.is_some_and(|at| at.elapsed() < KEYS_TTL);
        let known = cached.keys.contains_key(kid);
        let recently_tried = cached
            .attempted_at
            .is_some_and(|at| at.elapsed() < MIN_REFETCH_INTERVAL);
        let fetch = !(recently_tried || (known && fresh));
        if fetch {
            cached.attempted_at = Some(Instant::now());
            match self.fetch().await {
                Ok(keys) => {
                    cached.keys = keys;
                    cached.fetched_at = Some(Instant::now());
                }
                Err(reason) if !cached.keys.contains_key(kid) => {
                    return Err(KeyError::Unavailable(reason));
                }
                // A stale key still verifies while the platform is briefly unreachable.
                Err(reason) => tracing::warn!(%reason, "using cached context keys"),
            }
        }
        cached
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| KeyError::Unknown(kid.to_owned()))
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, String> {
        let response = self
            .client
            .get(&self.url)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("cannot fetch {}: {e}", self.url))?;
        if !response.status().is_success() {
            return Err(format!("{} answered {}", self.url, response.status()));
        }
        let document: Value = response
            .json()
            .await
            .map_err(|e| format!("{} is not a JWKS document: {e}", self.url))?;
        Ok(parse_jwks(&document))
    }
}

/// The usable keys of a JWKS document, by key id; keys without an id or of a kind this SDK
/// cannot use are skipped rather than failing the whole set.
pub(crate) fn parse_jwks(document: &Value) -> HashMap<String, DecodingKey> {
    let keys = document.get("keys").and_then(Value::as_array);
    keys.into_iter()
        .flatten()
        .filter_map(|key| {
            let jwk: Jwk = serde_json::from_value(key.clone()).ok()?;
            let kid = jwk.common.key_id.clone()?;
            let decoding = DecodingKey::from_jwk(&jwk).ok()?;
            Some((kid, decoding))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_without_an_id_or_of_unknown_kinds_are_skipped() {
        let kit = crate::testkit::TestKit::new("financial");
        let mut document = kit.jwks();
        let keys = document["keys"].as_array_mut().unwrap();
        keys.push(json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}));
        keys.push(json!({"kty": "weird", "kid": "w"}));
        let parsed = parse_jwks(&document);
        assert_eq!(parsed.keys().collect::<Vec<_>>(), [kit.key_id()]);
    }
}
