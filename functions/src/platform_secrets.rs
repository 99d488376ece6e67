//! The platform's own secrets in AWS Secrets Manager, read once at a function's cold start
//! ([`crate::wiring`]): the secret users' tokens are signed with (`PLINTH_JWT_SECRET_ARN`) and
//! the ES256 key that signs tenant contexts (`PLINTH_CONTEXT_KEY_ARN`).
//!
//! The template can have Secrets Manager generate the JWT secret, but not an ES256 key. So
//! the context-key secret starts as [`CONTEXT_KEY_PLACEHOLDER`], and the first function that
//! reads it generates a key and stores it with `PutSecretValue`. Concurrent cold starts must
//! not store two keys (each would sign with its own): every starter that saw the same
//! placeholder version writes with the same `ClientRequestToken`, derived from that version's
//! id, and Secrets Manager creates a version once per token: the first write wins, a later one
//! with another value is refused, and the refused starter reads the winner's key. Writing the
//! placeholder again (a new version, so a new token) has the next cold start generate a new
//! key.

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use base64::Engine;
use plinth_registry::aws::describe;
use plinth_registry::identity::ContextSigner;

/// What the context-key secret holds until a function has generated the key.
pub const CONTEXT_KEY_PLACEHOLDER: &str = "generate-on-first-start";

/// The token of the first key's write when the secret has no version at all.
const FIRST_KEY_TOKEN: &str = "plinth-context-key-first-generated";

/// A secret's current value and the id of its version; `None` for a secret with no value yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub value: Option<String>,
    pub version_id: Option<String>,
}

/// Reads the platform's secrets.
#[derive(Debug, Clone)]
pub struct PlatformSecrets {
    client: Client,
}

impl PlatformSecrets {
    #[must_use]
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            client: Client::new(sdk),
        }
    }

    /// The current value of secret `arn` (its `AWSCURRENT` version).
    ///
    /// # Errors
    /// When Secrets Manager refuses (no such secret, no permission).
    pub async fn current(&self, arn: &str) -> Result<Current> {
        match self.client.get_secret_value().secret_id(arn).send().await {
            Ok(read) => Ok(Current {
                value: read.secret_string().map(String::from),
                version_id: read.version_id().map(String::from),
            }),
            // A secret created without a value has no AWSCURRENT version yet.
            Err(e)
                if e.code() == Some("ResourceNotFoundException")
                    && e.message().is_some_and(|m| m.contains("staging label")) =>
            {
                Ok(Current {
                    value: None,
                    version_id: None,
                })
            }
            Err(e) => Err(anyhow!(describe(format!("reading secret `{arn}`"), &e))),
        }
    }

    /// The JWT secret: the whole `SecretString` of `arn` (what `GenerateSecretString` without
    /// a template writes).
    ///
    /// # Errors
    /// When it cannot be read or is empty.
    pub async fn jwt_secret(&self, arn: &str) -> Result<String> {
        match self.current(arn).await?.value {
            Some(value) if !value.trim().is_empty() => Ok(value),
            _ => bail!("secret `{arn}` holds no JWT secret"),
        }
    }

    /// The context key in secret `arn`: base64 PKCS#8 (or SEC1) DER, as `PLINTH_CONTEXT_KEY`;
    /// generated and stored when the secret holds [`CONTEXT_KEY_PLACEHOLDER`] or no value.
    ///
    /// # Errors
    /// When the secret cannot be read or written, or holds something that is neither a key
    /// nor the placeholder (a key an operator put there is never replaced).
    pub async fn context_signer(&self, arn: &str) -> Result<ContextSigner> {
        let current = self.current(arn).await?;
        if let Some(signer) = usable_key(arn, &current)? {
            return Ok(signer);
        }
        self.store_first_key(arn, current.version_id.as_deref())
            .await
    }

    /// Generates a key and stores it as the first key after the placeholder version
    /// `placeholder_version` (`None`: the secret had no value). When another starter stored
    /// one first, that one is read back and returned instead.
    ///
    /// # Errors
    /// When the write fails and no key can be read back.
    pub async fn store_first_key(
        &self,
        arn: &str,
        placeholder_version: Option<&str>,
    ) -> Result<ContextSigner> {
        let signer = ContextSigner::generate().map_err(|e| anyhow!("{e}"))?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(signer.pkcs8());
        let token = placeholder_version.map_or_else(
            || FIRST_KEY_TOKEN.to_owned(),
            |version| format!("plinth-context-key-{version}"),
        );
        let written = self
            .client
            .put_secret_value()
            .secret_id(arn)
            .secret_string(encoded)
            .client_request_token(token)
            .send()
            .await;
        let refused = match written {
            Ok(_) => {
                tracing::info!(secret = %arn, kid = %signer.kid(), "generated the context key");
                return Ok(signer);
            }
            Err(e) => describe(format!("storing the generated context key in `{arn}`"), &e),
        };
        // Another cold start stored its key first: use that one.
        let current = self.current(arn).await?;
        usable_key(arn, &current)?.ok_or_else(|| anyhow!(refused))
    }
}

/// The key a secret's value holds; `None` for the placeholder or no value.
fn usable_key(arn: &str, current: &Current) -> Result<Option<ContextSigner>> {
    let Some(value) = current.value.as_deref().map(str::trim) else {
        return Ok(None);
    };
    if value == CONTEXT_KEY_PLACEHOLDER {
        return Ok(None);
    }
    decode_context_key(value)
        .with_context(|| format!("secret `{arn}`"))
        .map(Some)
}

/// A context key from base64 DER (`PLINTH_CONTEXT_KEY`, or a secret's value).
///
/// # Errors
/// When it is not base64 or not a P-256 private key.
pub fn decode_context_key(encoded: &str) -> Result<ContextSigner> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .context("the context key is not base64")?;
    ContextSigner::from_pkcs8(&der).map_err(|e| anyhow!("{e}"))
}
