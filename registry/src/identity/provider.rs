//! Users' tokens from an identity provider (Cognito, Auth0, Entra ID, Keycloak…): keys from
//! its JWKS (given, or found by OIDC discovery from the issuer), and the mapping from its
//! claims to Plinth's `sub`, `tenant_id`, `company_id` and `roles`.

use std::time::Duration;

use plinth_module_sdk::jwks::JwksCache;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// How long an identity provider's keys are trusted before the JWKS is read again (a token of
/// a key id not in the cache reads it sooner, at most once a second).
pub const PROVIDER_KEYS_TTL: Duration = Duration::from_secs(300);

const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Which of a provider's claims carry what Plinth needs; the default reads Plinth's own names.
///
/// Written as `plinth=provider` pairs, comma-separated (`PLINTH_JWT_CLAIMS`), e.g. for Cognito
/// `tenant_id=custom:tenant_id,company_id=custom:company_id,roles=cognito:groups`; a dotted
/// name reaches into nested objects (`roles=realm_access.roles`). A roles claim may be a list
/// of strings or one space-separated string (as OAuth's `scope`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMap {
    pub sub: String,
    pub tenant_id: String,
    pub company_id: String,
    pub company_ids: String,
    pub roles: String,
}

impl Default for ClaimMap {
    fn default() -> Self {
        Self {
            sub: "sub".into(),
            tenant_id: "tenant_id".into(),
            company_id: "company_id".into(),
            company_ids: "company_ids".into(),
            roles: "roles".into(),
        }
    }
}

/// The Plinth claims a [`ClaimMap`] can name.
const MAPPED: [&str; 5] = ["sub", "tenant_id", "company_id", "company_ids", "roles"];

impl ClaimMap {
    /// Parses `plinth=provider` pairs; claims not named keep their default. An unknown Plinth
    /// claim, an empty provider claim or a pair without `=` is refused, naming it.
    pub fn parse(spec: &str) -> Result<Self> {
        let mut map = Self::default();
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (ours, theirs) = pair.split_once('=').ok_or_else(|| {
                Error::BadRequest(format!(
                    "PLINTH_JWT_CLAIMS: `{pair}` is not `plinth_claim=provider_claim`"
                ))
            })?;
            let (ours, theirs) = (ours.trim(), theirs.trim());
            if theirs.is_empty() {
                return Err(Error::BadRequest(format!(
                    "PLINTH_JWT_CLAIMS: `{ours}` maps to no claim"
                )));
            }
            let slot = match ours {
                "sub" => &mut map.sub,
                "tenant_id" => &mut map.tenant_id,
                "company_id" => &mut map.company_id,
                "company_ids" => &mut map.company_ids,
                "roles" => &mut map.roles,
                other => {
                    return Err(Error::BadRequest(format!(
                        "PLINTH_JWT_CLAIMS: `{other}` is not a claim Plinth reads (one of {})",
                        MAPPED.join(", ")
                    )));
                }
            };
            theirs.clone_into(slot);
        }
        Ok(map)
    }

    /// Plinth's claims from a verified token's claims.
    pub(super) fn apply(&self, claims: &Map<String, Value>) -> Result<super::Claims> {
        let text = |name: &str, plinth: &str| -> Result<Option<String>> {
            match claim(claims, name) {
                // Some providers write an unset attribute as "".
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(Error::Unauthorized(format!(
                    "invalid token: claim `{name}` (Plinth's `{plinth}`) is not a string"
                ))),
            }
        };
        let sub = text(&self.sub, "sub")?.ok_or_else(|| {
            Error::Unauthorized(format!("invalid token: it has no `{}` claim", self.sub))
        })?;
        let list = |name: &str, plinth: &str| -> Result<Vec<String>> {
            match claim(claims, name) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::String(s)) => Ok(s.split_whitespace().map(str::to_owned).collect()),
                Some(Value::Array(items)) => Ok(items
                    .iter()
                    .filter_map(|r| r.as_str().map(str::to_owned))
                    .collect()),
                Some(_) => Err(Error::Unauthorized(format!(
                    "invalid token: claim `{name}` (Plinth's `{plinth}`) is neither a list nor \
                     a string"
                ))),
            }
        };
        let roles = list(&self.roles, "roles")?;
        Ok(super::Claims {
            sub,
            tenant_id: text(&self.tenant_id, "tenant_id")?,
            company_id: text(&self.company_id, "company_id")?,
            company_ids: list(&self.company_ids, "company_ids")?,
            roles,
            // Checked by the verifier before mapping.
            exp: claims
                .get("exp")
                .and_then(Value::as_u64)
                .unwrap_or_default(),
            nbf: None,
            iss: None,
            aud: None,
        })
    }
}

/// A claim by its name, or, when no claim has that name, by a dotted path into nested objects
/// (Keycloak's `realm_access.roles`). Names with dots (Auth0's namespaced
/// `https://example.com/tenant_id`) are found whole first.
fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    claims.get(name).or_else(|| {
        let mut parts = name.split('.');
        let first = claims.get(parts.next()?)?;
        parts.try_fold(first, |value, part| value.get(part))
    })
}

/// An OIDC issuer's discovery document, `{issuer}/.well-known/openid-configuration`; it must
/// name the same issuer (OpenID Connect Discovery §4.3). Its `jwks_uri` gives the keys, its
/// `authorization_endpoint` and `token_endpoint` the console's sign-in.
pub async fn discovery_document(client: &reqwest::Client, issuer: &str) -> Result<Value> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let unavailable = |detail: String| Error::Unavailable {
        detail,
        cause: None,
    };
    let answer = client
        .get(&url)
        .timeout(DISCOVERY_TIMEOUT)
        .send()
        .await
        .map_err(|e| unavailable(format!("OIDC discovery: cannot fetch {url}: {e}")))?;
    if !answer.status().is_success() {
        return Err(unavailable(format!(
            "OIDC discovery: {url} answered {}",
            answer.status()
        )));
    }
    let document: Value = answer
        .json()
        .await
        .map_err(|e| unavailable(format!("OIDC discovery: {url} is not JSON: {e}")))?;
    let named = document["issuer"].as_str().unwrap_or_default();
    if named.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(Error::BadRequest(format!(
            "OIDC discovery: {url} names issuer `{named}`, not PLINTH_JWT_ISSUER `{issuer}`"
        )));
    }
    Ok(document)
}

/// The JWKS URL an OIDC issuer publishes in its discovery document.
pub async fn discover_jwks_url(client: &reqwest::Client, issuer: &str) -> Result<String> {
    let document = discovery_document(client, issuer).await?;
    document["jwks_uri"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::Unavailable {
            detail: format!("OIDC discovery: {issuer}'s document has no `jwks_uri`"),
            cause: None,
        })
}

/// An identity provider's settings: `PLINTH_JWKS_URL` (a JWKS URL, or `oidc` to discover it
/// from the issuer), `PLINTH_JWT_ISSUER` and `PLINTH_JWT_AUDIENCE` (both required), and
/// `PLINTH_JWT_CLAIMS` (the claim mapping, as [`ClaimMap::parse`] reads it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderSettings {
    pub jwks_url: String,
    pub issuer: String,
    pub audience: String,
    pub claims: String,
}

impl ProviderSettings {
    /// The provider the environment names; `None` when `PLINTH_JWKS_URL` is unset or empty
    /// (HS256 tokens of the platform's secret only).
    #[must_use]
    pub fn from_env() -> Option<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Some(Self {
            jwks_url: var("PLINTH_JWKS_URL")?,
            issuer: var("PLINTH_JWT_ISSUER").unwrap_or_default(),
            audience: var("PLINTH_JWT_AUDIENCE").unwrap_or_default(),
            claims: var("PLINTH_JWT_CLAIMS").unwrap_or_default(),
        })
    }

    /// The verifier of this provider's tokens (its keys discovered first with `oidc`).
    pub async fn verifier(&self) -> Result<super::TokenVerifier> {
        let claims = ClaimMap::parse(&self.claims)?;
        let client = reqwest::Client::new();
        let url = if self.jwks_url.trim() == "oidc" {
            if self.issuer.is_empty() {
                return Err(Error::BadRequest(
                    "PLINTH_JWKS_URL=oidc discovers the keys from PLINTH_JWT_ISSUER, which is not set"
                        .into(),
                ));
            }
            discover_jwks_url(&client, &self.issuer).await?
        } else {
            self.jwks_url.trim().to_owned()
        };
        let local = ["http://localhost", "http://127.0.0.1", "http://[::1]"];
        if url.starts_with("http://") && !local.iter().any(|l| url.starts_with(l)) {
            tracing::warn!(%url, "the identity provider's keys are read over plain HTTP: anyone on the path can swap them; use https");
        }
        let keys = JwksCache::new(url, client).with_ttl(PROVIDER_KEYS_TTL);
        super::TokenVerifier::provider(keys, &self.issuer, &self.audience, claims)
    }
}

/// The identity provider the environment names, if any ([`ProviderSettings::from_env`]).
pub async fn provider_from_env() -> Result<Option<super::TokenVerifier>> {
    match ProviderSettings::from_env() {
        Some(settings) => settings.verifier().await.map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_claim_map_names_the_providers_claims_and_refuses_what_plinth_does_not_read() {
        let map = ClaimMap::parse(
            "tenant_id=custom:tenant_id, roles=cognito:groups,company_id = custom:company",
        )
        .unwrap();
        assert_eq!(map.tenant_id, "custom:tenant_id");
        assert_eq!(map.roles, "cognito:groups");
        assert_eq!(map.company_id, "custom:company");
        assert_eq!(map.sub, "sub");
        for (spec, names) in [
            (
                "tenant=custom:tenant_id",
                "`tenant` is not a claim Plinth reads",
            ),
            ("roles", "`roles` is not `plinth_claim=provider_claim`"),
            ("roles=", "`roles` maps to no claim"),
        ] {
            let error = ClaimMap::parse(spec).unwrap_err().to_string();
            assert!(error.contains(names), "{spec}: {error}");
        }
    }

    #[test]
    fn a_nested_claim_is_found_by_its_dotted_path_and_a_dotted_name_whole_first() {
        let map =
            ClaimMap::parse("roles=realm_access.roles,tenant_id=https://plinth.example/tenant.id")
                .unwrap();
        let claims = json!({
            "sub": "u1", "exp": 9,
            "realm_access": {"roles": ["tenant:admin", "offline_access"]},
            "https://plinth.example/tenant.id": "acme"
        });
        let mapped = map.apply(claims.as_object().unwrap()).unwrap();
        assert_eq!(mapped.roles, ["tenant:admin", "offline_access"]);
        assert_eq!(mapped.tenant_id.as_deref(), Some("acme"));
    }

    #[test]
    fn roles_come_from_a_list_or_a_space_separated_string() {
        let map = ClaimMap::parse("roles=scope").unwrap();
        let mapped = map
            .apply(
                json!({"sub": "u1", "exp": 9, "scope": "tenant:admin openid"})
                    .as_object()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(mapped.roles, ["tenant:admin", "openid"]);
        let error = map
            .apply(
                json!({"sub": "u1", "exp": 9, "scope": 7})
                    .as_object()
                    .unwrap(),
            )
            .unwrap_err();
        assert!(error.to_string().contains("neither a list nor a string"));
    }
}
