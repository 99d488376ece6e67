//! [`ApiKey`]: the module's platform API key, shared by every client of the process.
//!
//! On one machine the platform hands the key over in `PLINTH_API_KEY`. On AWS nothing secret
//! sits in a task definition or a function's environment: `PLINTH_API_KEY_SECRET` names the
//! module's Secrets Manager secret (`plinth/module/{module}/api-key`), read at start (feature
//! `aws`). When the platform answers `401` to the key in use — it was rotated, and the overlap
//! of old and new ended — the secret is read once more and the call retried with the new key.

use std::fmt;
use std::sync::{Arc, RwLock};

use crate::platform_client::PlatformError;

/// Where the key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// Given as it is (`PLINTH_API_KEY`), or none (empty).
    Given,
    /// The ARN (or name) of a Secrets Manager secret (`PLINTH_API_KEY_SECRET`).
    Secret(String),
}

struct Inner {
    source: Source,
    current: RwLock<Option<String>>,
    /// Held while the secret is read, so that concurrent `401`s read it once.
    reading: tokio::sync::Mutex<()>,
}

/// The module's API key, given or read from Secrets Manager. Cheap to clone; clones share the
/// key, so a key read again after a rotation serves every client of the process.
///
/// ```
/// use plinth_module_sdk::api_key::ApiKey;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let key = ApiKey::given("pk_live_123");
/// assert_eq!(key.current().await.unwrap(), "pk_live_123");
/// assert!(!ApiKey::given("").is_configured());
/// # }
/// ```
#[derive(Clone)]
pub struct ApiKey {
    inner: Arc<Inner>,
}

impl ApiKey {
    /// A key given as it is (empty: the module has none, and does not register itself).
    #[must_use]
    pub fn given(key: &str) -> Self {
        Self::with(Source::Given, Some(key.to_owned()))
    }

    /// A key kept in the Secrets Manager secret `secret` (an ARN or a name), read on first use
    /// (or by [`ApiKey::load`]) with credentials and region from the environment, and
    /// `AWS_ENDPOINT_URL` when set. Its `SecretString` is the key itself, or a JSON object
    /// with the key in `api_key`.
    #[must_use]
    pub fn from_secret(secret: &str) -> Self {
        Self::with(Source::Secret(secret.to_owned()), None)
    }

    fn with(source: Source, current: Option<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                source,
                current: RwLock::new(current),
                reading: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Whether there is a key at all (a secret to read counts).
    #[must_use]
    pub fn is_configured(&self) -> bool {
        match &self.inner.source {
            Source::Secret(_) => true,
            Source::Given => self.cached().is_some_and(|key| !key.is_empty()),
        }
    }

    /// The secret the key is read from, if any.
    #[must_use]
    pub fn secret(&self) -> Option<&str> {
        match &self.inner.source {
            Source::Secret(secret) => Some(secret),
            Source::Given => None,
        }
    }

    /// Reads the key now if it comes from a secret not read yet: what start-up does, so that
    /// a module without access to its secret fails at once.
    ///
    /// # Errors
    /// A [`PlatformError::ApiKey`] naming the secret and why it cannot be read.
    pub async fn load(&self) -> Result<(), PlatformError> {
        self.current().await.map(drop)
    }

    /// The key to send now.
    ///
    /// # Errors
    /// A [`PlatformError::ApiKey`] when the secret cannot be read.
    pub async fn current(&self) -> Result<String, PlatformError> {
        if let Some(key) = self.cached() {
            return Ok(key);
        }
        let _reading = self.inner.reading.lock().await;
        if let Some(key) = self.cached() {
            return Ok(key);
        }
        let key = self.read().await?;
        self.store(&key);
        Ok(key)
    }

    /// After the platform refused `refused`: the key to retry with, read again from the
    /// secret, or `None` when there is nothing newer (a given key, or the secret still holds
    /// the refused one).
    ///
    /// # Errors
    /// A [`PlatformError::ApiKey`] when the secret cannot be read.
    pub async fn renew(&self, refused: &str) -> Result<Option<String>, PlatformError> {
        if self.inner.source == Source::Given {
            return Ok(None);
        }
        let _reading = self.inner.reading.lock().await;
        // Another call read the secret again while this one waited.
        if let Some(key) = self.cached().filter(|key| key != refused) {
            return Ok(Some(key));
        }
        let key = self.read().await?;
        self.store(&key);
        tracing::info!("the platform refused the module's API key; read it again from its secret");
        Ok(Some(key).filter(|key| key != refused))
    }

    fn cached(&self) -> Option<String> {
        self.inner.current.read().ok().and_then(|key| key.clone())
    }

    fn store(&self, key: &str) {
        if let Ok(mut current) = self.inner.current.write() {
            *current = Some(key.to_owned());
        }
    }

    async fn read(&self) -> Result<String, PlatformError> {
        match &self.inner.source {
            Source::Given => Ok(self.cached().unwrap_or_default()),
            Source::Secret(secret) => read_secret(secret).await,
        }
    }
}

impl fmt::Debug for ApiKey {
    // Never the key itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.source {
            Source::Given if self.is_configured() => f.write_str("ApiKey(given)"),
            Source::Given => f.write_str("ApiKey(none)"),
            Source::Secret(secret) => write!(f, "ApiKey(secret {secret})"),
        }
    }
}

/// Keys are equal when they come from the same place: the same given key, or the same secret.
impl PartialEq for ApiKey {
    fn eq(&self, other: &Self) -> bool {
        self.inner.source == other.inner.source
            && (self.inner.source != Source::Given || self.cached() == other.cached())
    }
}

impl Eq for ApiKey {}

/// The key in a secret's `SecretString`: the string itself, or the `api_key` of a JSON object.
#[cfg(any(feature = "aws", test))]
fn key_in(secret_string: &str) -> Option<String> {
    let text = secret_string.trim();
    let key = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(fields)) => fields.get("api_key")?.as_str()?.to_owned(),
        _ => text.to_owned(),
    };
    Some(key).filter(|key| !key.is_empty())
}

#[cfg(feature = "aws")]
async fn read_secret(secret: &str) -> Result<String, PlatformError> {
    use aws_sdk_secretsmanager::error::DisplayErrorContext;
    let config = aws_config::load_from_env().await;
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let failed = |reason: String| {
        PlatformError::ApiKey(format!(
            "cannot read the API key from secret {secret} (PLINTH_API_KEY_SECRET): {reason}"
        ))
    };
    let value = client
        .get_secret_value()
        .secret_id(secret)
        .send()
        .await
        .map_err(|e| failed(DisplayErrorContext(e).to_string()))?;
    value
        .secret_string()
        .and_then(key_in)
        .ok_or_else(|| failed("its SecretString holds no key".into()))
}

#[cfg(not(feature = "aws"))]
async fn read_secret(secret: &str) -> Result<String, PlatformError> {
    Err(PlatformError::ApiKey(format!(
        "PLINTH_API_KEY_SECRET names {secret}, but this build cannot read secrets: enable \
         plinth-module-sdk's `aws` feature"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_holds_the_key_or_a_json_object_with_it() {
        assert_eq!(key_in("pk_1\n").as_deref(), Some("pk_1"));
        assert_eq!(key_in(r#"{"api_key": "pk_2"}"#).as_deref(), Some("pk_2"));
        assert_eq!(key_in(r#"{"key": "pk_2"}"#), None);
        assert_eq!(key_in("  "), None);
    }

    #[tokio::test]
    async fn a_given_key_is_never_renewed_and_never_printed() {
        let key = ApiKey::given("pk_secret");
        assert_eq!(key.renew("pk_secret").await.unwrap(), None);
        assert_eq!(format!("{key:?}"), "ApiKey(given)");
        assert_eq!(key, ApiKey::given("pk_secret"));
        assert_ne!(key, ApiKey::given("pk_other"));
    }
}
