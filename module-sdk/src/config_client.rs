//! [`ConfigClient`]: the resolved configuration and features of a tenant (and company) for
//! this module, cached by the platform's version (`ETag`).
//!
//! A cached answer is used without asking while it is younger than [`CONFIG_TTL`], or while it
//! has the `config_version` of the request's signed context; otherwise it is revalidated with
//! `If-None-Match`, which costs the platform no resolution when nothing changed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::platform_client::{ConfigFetch, PlatformClient, PlatformError};
use crate::{ApiError, TenantContext};

/// How long a cached configuration is used without revalidation.
pub const CONFIG_TTL: Duration = Duration::from_secs(10);

/// The tier that set a configuration key, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConfigTier {
    /// The manifest's `configuration.defaults`.
    Module,
    /// The tenant's configuration.
    Tenant,
    /// The company's override.
    Company,
    /// A tier this SDK does not know yet (a newer platform's).
    #[serde(other)]
    Unknown,
}

/// A tenant's (and company's) configuration of this module, as the platform resolves it
/// (`GET /api/v1/tenants/{t}/modules/{m}/config`; its `ETag` is [`ResolvedConfig::version`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResolvedConfig {
    /// The module.
    pub module: String,
    /// The tenant.
    pub tenant_id: String,
    /// The company, when resolved for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<String>,
    /// Module defaults with the tenant's and the company's changes merged in.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub configuration: Map<String, Value>,
    /// For each top-level key, the tier that set it.
    #[serde(default)]
    pub sources: BTreeMap<String, ConfigTier>,
    /// The features that are on.
    #[serde(default)]
    pub features: Vec<String>,
    /// Changes whenever any input changes.
    pub version: String,
}

impl ResolvedConfig {
    /// One configuration value.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.configuration.get(key)
    }

    /// Whether a feature is on.
    #[must_use]
    pub fn feature(&self, name: &str) -> bool {
        self.features.iter().any(|f| f == name)
    }

    /// The configuration as the module's own type.
    ///
    /// ```
    /// use plinth_module_sdk::ResolvedConfig;
    /// use serde_json::json;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Financial { currency: String, tax_rate: f64 }
    ///
    /// let config: ResolvedConfig = serde_json::from_value(json!({
    ///     "module": "financial", "tenant_id": "acme", "version": "3",
    ///     "configuration": {"currency": "EUR", "tax_rate": 19}
    /// })).unwrap();
    /// let typed: Financial = config.parse().unwrap();
    /// assert_eq!((typed.currency.as_str(), typed.tax_rate), ("EUR", 19.0));
    /// ```
    ///
    /// # Errors
    /// When the configuration does not have the type's shape.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_value(Value::Object(self.configuration.clone()))
    }
}

type Key = (String, Option<String>);

#[derive(Debug)]
struct Cached {
    config: ResolvedConfig,
    etag: Option<String>,
    checked_at: Instant,
}

/// Fetches and caches resolved configurations. Cheap to clone; clones share the cache.
///
/// ```no_run
/// use plinth_module_sdk::{ApiError, ConfigClient, TenantContext};
///
/// async fn currency(config: &ConfigClient, ctx: &TenantContext) -> Result<String, ApiError> {
///     let resolved = config.for_context(ctx).await?;
///     Ok(resolved.get("currency").and_then(|v| v.as_str()).unwrap_or("USD").to_owned())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct ConfigClient {
    platform: PlatformClient,
    cache: Arc<Mutex<HashMap<Key, Cached>>>,
}

impl ConfigClient {
    /// A client that asks `platform`.
    #[must_use]
    pub fn new(platform: PlatformClient) -> Self {
        Self {
            platform,
            cache: Arc::default(),
        }
    }

    /// The configuration of `tenant` (and `company`), or `None` when the tenant (or company)
    /// does not have the module.
    ///
    /// # Errors
    /// A [`PlatformError`] when the platform cannot answer.
    pub async fn get(
        &self,
        tenant: &str,
        company: Option<&str>,
    ) -> Result<Option<ResolvedConfig>, PlatformError> {
        self.resolve(tenant, company, None).await
    }

    /// The configuration for a request's context: the cached one when it has the context's
    /// `config_version`, else a revalidated one.
    ///
    /// # Errors
    /// `404` when the tenant (or company) does not have the module; `502` when the platform
    /// cannot answer.
    pub async fn for_context(&self, ctx: &TenantContext) -> Result<ResolvedConfig, ApiError> {
        let version = Some(ctx.config_version.as_str()).filter(|v| !v.is_empty());
        let tenant = &ctx.tenant_id;
        self.resolve(tenant, ctx.company_id.as_deref(), version)
            .await?
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "tenant `{tenant}` does not have this module enabled"
                ))
            })
    }

    async fn resolve(
        &self,
        tenant: &str,
        company: Option<&str>,
        version: Option<&str>,
    ) -> Result<Option<ResolvedConfig>, PlatformError> {
        let key = (tenant.to_owned(), company.map(str::to_owned));
        let etag = {
            let cache = self.cache.lock().await;
            match cache.get(&key) {
                Some(hit) if current(hit, version) => return Ok(Some(hit.config.clone())),
                Some(hit) => hit.etag.clone(),
                None => None,
            }
        };
        let fetched = self
            .platform
            .fetch_config(tenant, company, etag.as_deref())
            .await?;
        let mut cache = self.cache.lock().await;
        match fetched {
            ConfigFetch::NotEnabled => {
                cache.remove(&key);
                Ok(None)
            }
            ConfigFetch::NotModified => {
                let hit = cache.get_mut(&key).ok_or_else(|| {
                    PlatformError::Malformed("304 for a configuration not asked for".into())
                })?;
                hit.checked_at = Instant::now();
                Ok(Some(hit.config.clone()))
            }
            ConfigFetch::Fresh(body, etag) => {
                let config: ResolvedConfig = serde_json::from_value(body)
                    .map_err(|e| PlatformError::Malformed(format!("configuration: {e}")))?;
                let cached = Cached {
                    config: config.clone(),
                    etag,
                    checked_at: Instant::now(),
                };
                cache.insert(key, cached);
                Ok(Some(config))
            }
        }
    }
}

/// Whether a cached entry may be used as it is.
fn current(hit: &Cached, version: Option<&str>) -> bool {
    match version {
        Some(version) => hit.config.version == version,
        None => hit.checked_at.elapsed() < CONFIG_TTL,
    }
}
