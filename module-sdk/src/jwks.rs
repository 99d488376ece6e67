//! Public keys from a JWKS document (RFC 7517), cached: the platform's context keys for a
//! module, and an identity provider's signing keys for the platform.
//!
//! Keys are trusted for a time-to-live ([`KEYS_TTL`] unless set), fetched again when a token
//! names a key id the cache does not hold — at most once per [`MIN_REFETCH_INTERVAL`], so
//! tokens with made-up key ids cannot flood the document's server. Each key is pinned to one
//! algorithm (its `alg`, else the one its type and curve imply), so a token cannot choose how
//! its signature is checked.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use tokio::sync::Mutex;

/// How long fetched keys are trusted without asking again, unless [`JwksCache::with_ttl`]
/// says otherwise.
pub const KEYS_TTL: Duration = Duration::from_secs(30);

/// The least time between two fetches caused by unknown key ids.
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(1);

const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A verification key and the one algorithm it verifies.
#[derive(Clone)]
pub struct JwksKey {
    /// The public key.
    pub key: DecodingKey,
    /// The one algorithm it verifies.
    pub algorithm: Algorithm,
}

impl fmt::Debug for JwksKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Why no key could be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The keys are known and none has this id.
    Unknown(String),
    /// The JWKS could not be fetched and no cached key has this id.
    Unavailable(String),
}

#[derive(Default)]
struct Cached {
    keys: HashMap<String, JwksKey>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
    /// Why the last fetch failed, while it is the last one.
    failed: Option<String>,
}

/// The JWKS at a URL, cached. Share one per process.
///
/// Lookups never wait for a fetch when the cache can answer: a known key is served at once
/// (a stale one too while another request refreshes the set); only a request for an unknown
/// key id waits, for the one fetch in flight.
pub struct JwksCache {
    url: String,
    client: reqwest::Client,
    ttl: Duration,
    cached: std::sync::RwLock<Cached>,
    /// Held while fetching: one fetch at a time.
    fetching: Mutex<()>,
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksCache")
            .field("url", &self.url)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// What the cache knows of one key id.
struct Look {
    key: Option<JwksKey>,
    fresh: bool,
    recently_tried: bool,
    failed: Option<String>,
}

impl JwksCache {
    /// The JWKS at `url`, fetched with `client` when first needed.
    #[must_use]
    pub fn new(url: impl Into<String>, client: reqwest::Client) -> Self {
        Self {
            url: url.into(),
            client,
            ttl: KEYS_TTL,
            cached: std::sync::RwLock::default(),
            fetching: Mutex::new(()),
        }
    }

    /// Trusts fetched keys for `ttl` (an unknown key id still fetches sooner).
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Where the keys come from.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The key with id `kid`, fetching the document when the cache is stale or does not
    /// hold it (at most once per [`MIN_REFETCH_INTERVAL`]).
    ///
    /// # Errors
    /// [`KeyError::Unknown`] when the document lists no such key, [`KeyError::Unavailable`]
    /// when it cannot be fetched and no cached key has the id.
    pub async fn key(&self, kid: &str) -> Result<JwksKey, KeyError> {
        let look = self.look(kid);
        if let Some(key) = look.key {
            if look.fresh || look.recently_tried {
                return Ok(key);
            }
            // Stale: refresh unless another request is; serve the cached key either way
            // (it still verifies while the server is briefly unreachable).
            if let Ok(_fetching) = self.fetching.try_lock() {
                self.refresh().await;
            }
            return Ok(self.look(kid).key.unwrap_or(key));
        }
        // Unknown: wait for a fetch in flight, then fetch unless one was tried just now.
        let _fetching = self.fetching.lock().await;
        let look = self.look(kid);
        if let Some(key) = look.key {
            return Ok(key);
        }
        if !look.recently_tried {
            self.refresh().await;
        }
        let look = self.look(kid);
        match (look.key, look.failed) {
            (Some(key), _) => Ok(key),
            (None, Some(reason)) => Err(KeyError::Unavailable(reason)),
            (None, None) => Err(KeyError::Unknown(kid.to_owned())),
        }
    }

    fn look(&self, kid: &str) -> Look {
        let cached = self
            .cached
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Look {
            key: cached.keys.get(kid).cloned(),
            fresh: cached.fetched_at.is_some_and(|at| at.elapsed() < self.ttl),
            recently_tried: cached
                .attempted_at
                .is_some_and(|at| at.elapsed() < MIN_REFETCH_INTERVAL),
            failed: cached.failed.clone(),
        }
    }

    /// Fetches the document; called with `fetching` held.
    async fn refresh(&self) {
        self.write().attempted_at = Some(Instant::now());
        let fetched = self.fetch().await;
        let mut cached = self.write();
        match fetched {
            Ok(keys) => {
                cached.keys = keys;
                cached.fetched_at = Some(Instant::now());
                cached.failed = None;
            }
            Err(reason) => {
                tracing::warn!(%reason, url = %self.url, "cannot refresh the JWKS; cached keys stay");
                cached.failed = Some(reason);
            }
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Cached> {
        self.cached
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn fetch(&self) -> Result<HashMap<String, JwksKey>, String> {
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

/// The usable signing keys of a JWKS document, by key id. Keys without an id, for
/// encryption, symmetric (`oct`: a shared secret has no place in a public document), or of a
/// kind or algorithm this crate cannot verify are skipped rather than failing the whole set.
#[must_use]
pub fn parse_jwks(document: &Value) -> HashMap<String, JwksKey> {
    let keys = document.get("keys").and_then(Value::as_array);
    keys.into_iter()
        .flatten()
        .filter_map(|key| {
            let jwk: Jwk = serde_json::from_value(key.clone()).ok()?;
            if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
                return None;
            }
            let kid = jwk.common.key_id.clone()?;
            let algorithm = pinned_algorithm(&jwk)?;
            let key = DecodingKey::from_jwk(&jwk).ok()?;
            Some((kid, JwksKey { key, algorithm }))
        })
        .collect()
}

/// The one algorithm a key verifies: its `alg` when it says (and that fits the key's type),
/// else the usual one for its type and curve. `None` for symmetric or unknown keys.
fn pinned_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    use Algorithm::{ES256, ES384, EdDSA, PS256, PS384, PS512, RS256, RS384, RS512};
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => RS256,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => ES256,
            EllipticCurve::P384 => ES384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => EdDSA,
        _ => return None,
    };
    let Some(stated) = jwk.common.key_algorithm else {
        return Some(implied);
    };
    let stated = Algorithm::try_from(stated).ok()?;
    let fits = match implied {
        RS256 => matches!(stated, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
        other => stated == other,
    };
    fits.then_some(stated)
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
        keys.push(json!({"kty": "oct", "kid": "shared", "k": "c2VjcmV0"}));
        let parsed = parse_jwks(&document);
        assert_eq!(parsed.keys().collect::<Vec<_>>(), [kit.key_id()]);
        assert_eq!(parsed[kit.key_id()].algorithm, Algorithm::ES256);
    }

    #[test]
    fn a_key_is_pinned_to_its_stated_algorithm_only_when_that_fits_its_type() {
        let kit = crate::testkit::TestKit::new("financial");
        let mut document = kit.jwks();
        let mut ec = document["keys"][0].clone();
        ec["kid"] = json!("claims-rs256");
        ec["alg"] = json!("RS256");
        let mut hs = document["keys"][0].clone();
        hs["kid"] = json!("claims-hs256");
        hs["alg"] = json!("HS256");
        let mut enc = document["keys"][0].clone();
        enc["kid"] = json!("for-encryption");
        enc["use"] = json!("enc");
        let keys = document["keys"].as_array_mut().unwrap();
        keys.extend([ec, hs, enc]);
        let parsed = parse_jwks(&document);
        assert_eq!(parsed.keys().collect::<Vec<_>>(), [kit.key_id()]);
    }
}
