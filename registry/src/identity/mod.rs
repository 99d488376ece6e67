//! Who is calling: a user with a verified JWT, or a module with its API key.
//!
//! Tokens are HS256 with `PLINTH_JWT_SECRET` (`PLINTH_JWT_ISSUER` and `PLINTH_JWT_AUDIENCE`
//! enforced when set), or an identity provider's, checked against its JWKS
//! (`PLINTH_JWKS_URL`; issuer and audience required; see [`provider`]). The algorithm is
//! pinned to the key, so `alg: none` and algorithm confusion are refused by construction. The token's `roles` claim carries platform roles
//! only; module permissions come from stored role assignments (see `rbac`).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use plinth_module_sdk::ModuleName;
use plinth_module_sdk::jwks::{JwksCache, KeyError};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{CompanyId, TenantId, UserId};

pub mod context;
pub mod provider;

pub use context::ContextSigner;
pub use provider::{
    ClaimMap, PROVIDER_KEYS_TTL, ProviderSettings, discover_jwks_url, discovery_document,
    provider_from_env,
};

/// HS256 secrets shorter than this are refused (RFC 7518 asks for the hash's 256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

/// Seconds of clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;

/// The claims of a user's token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<String>,
    /// Every company the user may act in; a request picks one with `X-Plinth-Company`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub company_ids: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

impl Claims {
    /// A user's claims, valid for `valid_for` from now; no `nbf`, `iss` or `aud` (set them on
    /// the result when the platform requires them). For development tokens and tests.
    #[must_use]
    pub fn user(
        sub: &str,
        tenant: Option<&str>,
        company: Option<&str>,
        roles: &[&str],
        valid_for: std::time::Duration,
    ) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self {
            sub: sub.into(),
            tenant_id: tenant.map(Into::into),
            company_id: company.map(Into::into),
            company_ids: Vec::new(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            exp: now + valid_for.as_secs(),
            nbf: None,
            iss: None,
            aud: None,
        }
    }
}

/// The platform roles a token may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PlatformRole {
    PlatformAdmin,
    TenantAdmin,
    CompanyAdmin,
}

impl PlatformRole {
    pub fn parse(role: &str) -> Option<Self> {
        match role {
            "platform:admin" => Some(PlatformRole::PlatformAdmin),
            "tenant:admin" => Some(PlatformRole::TenantAdmin),
            "company:admin" => Some(PlatformRole::CompanyAdmin),
            _ => None,
        }
    }
}

/// A signed-in user, as their verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub tenant: Option<TenantId>,
    /// The company the user acts in for this request: the one `X-Plinth-Company` picked, else
    /// the token's `company_id`, else its only `company_ids` entry.
    pub company: Option<CompanyId>,
    /// The companies the token lets the user act in (`company_id` and `company_ids`).
    pub companies: BTreeSet<CompanyId>,
    pub roles: BTreeSet<PlatformRole>,
}

/// The request header with which a user picks the company to act in.
pub const COMPANY_HEADER: &str = "x-plinth-company";

impl User {
    /// The user acting in the company `selected` names (the `X-Plinth-Company` field's
    /// value), when it names one: a company the token lists, or — for tenant and platform
    /// admins — any company id (its tenant's routes check it exists). Without one, as the
    /// token says.
    pub fn acting_in(mut self, selected: Option<&[u8]>) -> Result<Self> {
        let Some(selected) = selected else {
            return Ok(self);
        };
        let company = std::str::from_utf8(selected)
            .ok()
            .and_then(|text| CompanyId::parse(text).ok())
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "the {COMPANY_HEADER} header is not a company id: {:?}",
                    String::from_utf8_lossy(selected)
                ))
            })?;
        let admin = self.roles.contains(&PlatformRole::TenantAdmin)
            || self.roles.contains(&PlatformRole::PlatformAdmin);
        if !(admin || self.companies.contains(&company)) {
            let granted: Vec<&str> = self.companies.iter().map(CompanyId::as_str).collect();
            return Err(Error::Forbidden(if granted.is_empty() {
                format!("your token grants no company, so it cannot act in {company}")
            } else {
                format!(
                    "your token does not grant company {company}; it grants {}",
                    granted.join(", ")
                )
            }));
        }
        self.company = Some(company);
        Ok(self)
    }
}

/// Whoever made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    User(User),
    /// A module's backend, by its API key; acts for that module only.
    Module(ModuleName),
}

impl Caller {
    pub fn user(&self) -> Option<&User> {
        match self {
            Caller::User(user) => Some(user),
            Caller::Module(_) => None,
        }
    }

    /// Who to name in audit records.
    pub fn actor(&self) -> String {
        match self {
            Caller::User(user) => format!("user:{}", user.id),
            Caller::Module(module) => format!("module:{module}"),
        }
    }

    pub fn is_platform_admin(&self) -> bool {
        self.user()
            .is_some_and(|u| u.roles.contains(&PlatformRole::PlatformAdmin))
    }

    pub fn require_platform_admin(&self) -> Result<()> {
        if self.is_platform_admin() {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "this needs the platform:admin role".into(),
            ))
        }
    }

    /// The caller's token is of `tenant` (platform admins reach every tenant). Tenant routes
    /// take the tenant from the token, whatever the path says.
    pub fn require_tenant_member(&self, tenant: &TenantId) -> Result<&User> {
        let user = self.user().ok_or_else(|| {
            Error::Forbidden("a module's API key cannot act on this tenant route".into())
        })?;
        if self.is_platform_admin() || user.tenant.as_ref() == Some(tenant) {
            Ok(user)
        } else {
            Err(Error::Forbidden(format!(
                "your token is not for tenant {tenant}"
            )))
        }
    }

    pub fn require_tenant_admin(&self, tenant: &TenantId) -> Result<&User> {
        let user = self.require_tenant_member(tenant)?;
        if self.is_platform_admin() || user.roles.contains(&PlatformRole::TenantAdmin) {
            Ok(user)
        } else {
            Err(Error::Forbidden(format!(
                "this needs the tenant:admin role for tenant {tenant}"
            )))
        }
    }

    /// Tenant admins, and company admins acting in this company (the one the token names,
    /// or the one `X-Plinth-Company` picked among those it grants).
    pub fn require_company_admin(&self, tenant: &TenantId, company: &CompanyId) -> Result<&User> {
        let user = self.require_tenant_member(tenant)?;
        let company_admin = user.roles.contains(&PlatformRole::CompanyAdmin)
            && user.company.as_ref() == Some(company);
        if self.is_platform_admin()
            || user.roles.contains(&PlatformRole::TenantAdmin)
            || company_admin
        {
            Ok(user)
        } else {
            Err(Error::Forbidden(format!(
                "this needs the company:admin role for company {company}"
            )))
        }
    }
}

/// Verifies users' tokens: HS256 with the platform's secret (development, and one machine),
/// or an identity provider's tokens against its JWKS.
#[derive(Clone)]
pub struct TokenVerifier {
    /// The platform's own HS256 secret, with its validation.
    secret: Option<(DecodingKey, Validation)>,
    /// The identity provider: its keys, the validation every algorithm shares (issuer and
    /// audience required), its claim mapping.
    provider: Option<Provider>,
}

#[derive(Clone)]
struct Provider {
    keys: Arc<JwksCache>,
    validation: Validation,
    claims: ClaimMap,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("secret", &self.secret.is_some())
            .field("provider", &self.provider.as_ref().map(|p| p.keys.url()))
            .finish()
    }
}

/// The checks every token gets: `exp` and `sub` required, `nbf` honoured, the leeway.
fn validation(algorithm: Algorithm, issuer: Option<&str>, audience: Option<&str>) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "sub"]);
    if let Some(issuer) = issuer {
        validation.set_issuer(&[issuer]);
    }
    match audience {
        Some(audience) => validation.set_audience(&[audience]),
        None => validation.validate_aud = false,
    }
    validation
}

impl TokenVerifier {
    /// HS256 with a shared secret (at least 32 bytes); `issuer` and `audience` are enforced
    /// when given.
    pub fn hs256(secret: &[u8], issuer: Option<&str>, audience: Option<&str>) -> Result<Self> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(Error::BadRequest(format!(
                "PLINTH_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long"
            )));
        }
        let key = DecodingKey::from_secret(secret)
            .map_err(|e| Error::BadRequest(format!("PLINTH_JWT_SECRET: {e}")))?;
        let validation = validation(Algorithm::HS256, issuer, audience);
        Ok(Self {
            secret: Some((key, validation)),
            provider: None,
        })
    }

    /// An identity provider's tokens, checked with the keys of its JWKS (each key pinned to
    /// one asymmetric algorithm), its `iss` and `aud` required, its claims read through
    /// `claims`. Its tokens only: see [`TokenVerifier::with_development_secret`].
    pub fn provider(
        keys: JwksCache,
        issuer: &str,
        audience: &str,
        claims: ClaimMap,
    ) -> Result<Self> {
        for (value, name) in [
            (issuer, "PLINTH_JWT_ISSUER"),
            (audience, "PLINTH_JWT_AUDIENCE"),
        ] {
            if value.trim().is_empty() {
                return Err(Error::BadRequest(format!(
                    "{name} is required with an identity provider (PLINTH_JWKS_URL): tokens \
                     of any other issuer or audience it signs must not be accepted"
                )));
            }
        }
        let mut validation = validation(Algorithm::RS256, Some(issuer), Some(audience));
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        Ok(Self {
            secret: None,
            provider: Some(Provider {
                keys: Arc::new(keys),
                validation,
                claims,
            }),
        })
    }

    /// Also accepts HS256 tokens of the platform's own secret beside the provider's (one
    /// machine: `plinth token` and the demo keep working). The header's algorithm picks the
    /// key: HS256 the secret, any other the provider's key it names — never one for the other.
    #[must_use]
    pub fn with_development_secret(mut self, secret: TokenVerifier) -> Self {
        self.secret = secret.secret;
        self
    }

    /// Whether an identity provider's tokens are accepted.
    #[must_use]
    pub fn has_provider(&self) -> bool {
        self.provider.is_some()
    }

    /// The user a bearer token stands for.
    pub async fn verify(&self, token: &str) -> Result<User> {
        self.verify_until(token).await.map(|(user, _)| user)
    }

    /// The user a bearer token stands for, and the Unix time (leeway included) after which
    /// the token stops being valid: until then a verified token can be trusted again
    /// without re-checking its signature.
    pub async fn verify_until(&self, token: &str) -> Result<(User, i64)> {
        let refused = |why: String| Error::Unauthorized(format!("invalid token: {why}"));
        let header = jsonwebtoken::decode_header(token).map_err(|e| refused(why_refused(&e)))?;
        let claims = match (&self.secret, &self.provider) {
            (_, Some(provider)) if header.alg != Algorithm::HS256 || self.secret.is_none() => {
                provider.verify(token, header).await?
            }
            (Some((key, validation)), _) => {
                jsonwebtoken::decode::<Claims>(token, key, validation)
                    .map_err(|e| refused(why_refused(&e)))?
                    .claims
            }
            (None, _) => return Err(refused("the platform accepts no tokens".into())),
        };
        let leeway = LEEWAY_SECS;
        let valid_until = i64::try_from(claims.exp.saturating_add(leeway)).unwrap_or(i64::MAX);
        Ok((user_from_claims(claims)?, valid_until))
    }

    /// The user an identity provider's ID token stands for, when it is the provider's (never
    /// a token of the platform's own secret) and its `nonce` is `nonce`, the one the sign-in
    /// that asked for it sent (OpenID Connect Core §3.1.3.7): a token minted for another
    /// sign-in, replayed into this one, is refused.
    pub async fn verify_id_token(&self, token: &str, nonce: &str) -> Result<(User, i64)> {
        let refused = |why: String| Error::Unauthorized(format!("invalid ID token: {why}"));
        let Some(provider) = &self.provider else {
            return Err(refused("no identity provider is configured".into()));
        };
        let header = jsonwebtoken::decode_header(token).map_err(|e| refused(why_refused(&e)))?;
        if header.alg == Algorithm::HS256 {
            return Err(refused("it is not signed by the identity provider".into()));
        }
        let (claims, sent) = provider.verify_claims(token, header).await?;
        if sent.get("nonce").and_then(serde_json::Value::as_str) != Some(nonce) {
            return Err(refused(
                "its `nonce` is not the one this sign-in sent (a token of another sign-in?)".into(),
            ));
        }
        let valid_until = i64::try_from(claims.exp.saturating_add(LEEWAY_SECS)).unwrap_or(i64::MAX);
        Ok((user_from_claims(claims)?, valid_until))
    }
}

impl Provider {
    async fn verify(&self, token: &str, header: jsonwebtoken::Header) -> Result<Claims> {
        self.verify_claims(token, header)
            .await
            .map(|(claims, _)| claims)
    }

    /// Plinth's claims of a verified token, and every claim it carries.
    async fn verify_claims(
        &self,
        token: &str,
        header: jsonwebtoken::Header,
    ) -> Result<(Claims, serde_json::Map<String, serde_json::Value>)> {
        let refused = |why: String| Error::Unauthorized(format!("invalid token: {why}"));
        let kid = header.kid.ok_or_else(|| {
            refused("its header names no key (`kid`) of the identity provider".into())
        })?;
        let key = self.keys.key(&kid).await.map_err(|error| match error {
            KeyError::Unknown(kid) => refused(format!(
                "it is signed with key `{}`, which the identity provider does not list",
                shown(&kid)
            )),
            KeyError::Unavailable(reason) => {
                tracing::warn!(%reason, url = self.keys.url(), "the identity provider's keys cannot be read");
                Error::Unavailable {
                    detail: "the identity provider's keys cannot be read; try again shortly"
                        .into(),
                    cause: None,
                }
            }
        })?;
        let kid = shown(&kid);
        if header.alg != key.algorithm {
            return Err(refused(format!(
                "it says it is signed with {:?}, but the identity provider's key `{kid}` signs \
                 with {:?} only",
                header.alg, key.algorithm
            )));
        }
        let mut validation = self.validation.clone();
        validation.algorithms = vec![key.algorithm];
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key.key,
            &validation,
        )
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => refused(format!(
                "its signature does not verify with the identity provider's key `{kid}`"
            )),
            _ => refused(why_refused(&e)),
        })?;
        Ok((self.claims.apply(&data.claims)?, data.claims))
    }
}

/// A key id as refusals show it: at most 64 printable ASCII characters.
fn shown(kid: &str) -> String {
    kid.chars()
        .filter(char::is_ascii_graphic)
        .take(64)
        .collect()
}

/// Why a token was refused, in words a person who minted it can act on (not the library's
/// enum names).
fn why_refused(error: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidSignature => {
            "its signature does not match the platform's secret (was it \
            minted with another PLINTH_JWT_SECRET, or changed after signing?)"
                .to_owned()
        }
        ErrorKind::ExpiredSignature => {
            "it has expired (its `exp` is in the past); mint a new one".into()
        }
        ErrorKind::ImmatureSignature => "it is not valid yet (its `nbf` is in the future)".into(),
        ErrorKind::InvalidIssuer => {
            "its issuer (`iss`) is not the one the platform requires".into()
        }
        ErrorKind::InvalidAudience => {
            "its audience (`aud`) is not the one the platform requires".into()
        }
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "it is signed with an algorithm the platform does not accept (HS256 with the \
             platform's secret, or the identity provider's key's own)"
                .into()
        }
        ErrorKind::MissingAlgorithm => "its header names no signing algorithm".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("it has no `{claim}` claim"),
        ErrorKind::InvalidToken => {
            "it is not a JWT (three base64url parts separated by dots)".into()
        }
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
            "a part of it is not valid base64url-encoded text".into()
        }
        ErrorKind::Json(json) => format!("its header or claims are not the JSON expected: {json}"),
        _ => "it cannot be verified".into(),
    }
}

fn user_from_claims(claims: Claims) -> Result<User> {
    let invalid = |claim: &str, message: String| {
        Error::Unauthorized(format!("invalid token: claim `{claim}`: {message}"))
    };
    let Claims {
        sub,
        tenant_id,
        company_id,
        company_ids,
        roles,
        ..
    } = claims;
    let id = UserId::parse(&sub).map_err(|m| invalid("sub", m))?;
    if sub.starts_with("module:") {
        return Err(invalid(
            "sub",
            "`module:` starts the user of a module's own call; no user's id may".into(),
        ));
    }
    let tenant = tenant_id
        .as_deref()
        .map(TenantId::parse)
        .transpose()
        .map_err(|m| invalid("tenant_id", m))?;
    let company = company_id
        .as_deref()
        .map(CompanyId::parse)
        .transpose()
        .map_err(|m| invalid("company_id", m))?;
    let mut companies = company_ids
        .iter()
        .map(|c| CompanyId::parse(c))
        .collect::<std::result::Result<BTreeSet<_>, _>>()
        .map_err(|m| invalid("company_ids", m))?;
    companies.extend(company.iter().cloned());
    // No company named: the only one the token grants, if it grants one.
    let company = match (company, companies.len()) {
        (None, 1) => companies.first().cloned(),
        (company, _) => company,
    };
    // Unknown roles are ignored: identity providers add their own.
    let roles = roles
        .iter()
        .filter_map(|r| PlatformRole::parse(r))
        .collect();
    Ok(User {
        id,
        tenant,
        company,
        companies,
        roles,
    })
}

/// A development token signed with `secret` (what `plinth token` prints).
pub fn mint_token(secret: &[u8], claims: &Claims) -> Result<String> {
    let key = EncodingKey::from_secret(secret)
        .map_err(|e| Error::BadRequest(format!("PLINTH_JWT_SECRET: {e}")))?;
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key)
        .map_err(|e| Error::internal_because("cannot sign a token", e))
}

/// The bearer token of a request's `Authorization` header (401 when missing or malformed).
pub fn bearer_token(headers: &HeaderMap) -> Result<&str> {
    bearer_of(headers.get(AUTHORIZATION).map(|value| value.as_bytes()))
}

/// The bearer token in an `Authorization` field's value (401 when missing or malformed).
pub fn bearer_of(authorization: Option<&[u8]>) -> Result<&str> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test-secret-of-at-least-32-bytes!!";

    fn claims(exp_in: i64) -> Claims {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        Claims {
            sub: "alice".into(),
            tenant_id: Some("acme".into()),
            company_id: None,
            company_ids: Vec::new(),
            roles: vec!["tenant:admin".into(), "billing:viewer".into()],
            exp: (now + exp_in) as u64,
            nbf: None,
            iss: Some("plinth-dev".into()),
            aud: Some("plinth".into()),
        }
    }

    #[tokio::test]
    async fn a_valid_token_gives_its_user_and_platform_roles() {
        let token = mint_token(SECRET, &claims(60)).unwrap();
        let verifier = TokenVerifier::hs256(SECRET, Some("plinth-dev"), Some("plinth")).unwrap();
        let user = verifier.verify(&token).await.unwrap();
        assert_eq!(user.id.as_str(), "alice");
        assert_eq!(user.tenant.unwrap().as_str(), "acme");
        assert_eq!(user.roles, BTreeSet::from([PlatformRole::TenantAdmin]));
    }

    #[tokio::test]
    async fn expired_wrong_issuer_and_wrong_key_are_refused() {
        let verifier = TokenVerifier::hs256(SECRET, Some("plinth-dev"), Some("plinth")).unwrap();
        let expired = mint_token(SECRET, &claims(-120)).unwrap();
        assert!(
            matches!(verifier.verify(&expired).await, Err(Error::Unauthorized(m)) if m.contains("expired"))
        );
        let mut other_issuer = claims(60);
        other_issuer.iss = Some("evil".into());
        let token = mint_token(SECRET, &other_issuer).unwrap();
        assert!(verifier.verify(&token).await.is_err());
        let forged = mint_token(b"another-secret-of-at-least-32-bytes", &claims(60)).unwrap();
        assert!(verifier.verify(&forged).await.is_err());
    }

    fn b64(bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    async fn refused(verifier: &TokenVerifier, token: &str) -> String {
        match verifier.verify(token).await {
            Err(Error::Unauthorized(message)) => message,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// Finding 11 of "The first hour": a refusal says why in English, never with the token
    /// library's enum names.
    #[tokio::test]
    async fn token_errors_speak_english_not_enum_names() {
        let verifier = TokenVerifier::hs256(SECRET, Some("plinth-dev"), Some("plinth")).unwrap();
        let other = mint_token(b"another-secret-0123456789abcdef-xyz", &claims(60)).unwrap();
        let mut expired = claims(60);
        expired.exp = 1_000;
        let cases = [
            other,
            mint_token(SECRET, &expired).unwrap(),
            "not-a-jwt".to_owned(),
            "a.b.c".to_owned(),
        ];
        for token in cases {
            let message = refused(&verifier, &token).await;
            assert!(message.starts_with("invalid token: "), "{message}");
            // CamelCase words such as `InvalidSignature`: an upper-case letter after a lower-case one.
            let enum_like = message
                .split(|c: char| !c.is_ascii_alphanumeric())
                .any(|word| {
                    word.as_bytes()
                        .windows(2)
                        .any(|pair| pair[0].is_ascii_lowercase() && pair[1].is_ascii_uppercase())
                });
            assert!(!enum_like, "no enum names: {message}");
        }
        assert!(
            refused(&verifier, &mint_token(SECRET, &expired).unwrap())
                .await
                .contains("expired")
        );
    }

    #[tokio::test]
    async fn forged_tokens_of_every_kind_are_refused() {
        let verifier = TokenVerifier::hs256(SECRET, Some("plinth-dev"), Some("plinth")).unwrap();
        let good = mint_token(SECRET, &claims(60)).unwrap();
        let parts: Vec<&str> = good.split('.').collect();
        // alg none, with and without a signature
        let none = b64(br#"{"alg":"none","typ":"JWT"}"#);
        refused(&verifier, &format!("{none}.{}.", parts[1])).await;
        refused(&verifier, &format!("{none}.{}.{}", parts[1], parts[2])).await;
        // HS/RS confusion: an RS256 header over an HMAC signature
        let rs = b64(br#"{"alg":"RS256","typ":"JWT"}"#);
        refused(&verifier, &format!("{rs}.{}.{}", parts[1], parts[2])).await;
        // a tampered payload keeps the old signature
        let mut tampered = claims(60);
        tampered.tenant_id = Some("globex".into());
        let payload = b64(serde_json::to_string(&tampered).unwrap().as_bytes());
        assert!(
            refused(&verifier, &format!("{}.{payload}.{}", parts[0], parts[2]))
                .await
                .contains("signature does not match the platform's secret")
        );
        // not yet valid, and for another audience
        let mut early = claims(600);
        early.nbf = Some(early.exp - 60);
        assert!(
            refused(&verifier, &mint_token(SECRET, &early).unwrap())
                .await
                .contains("not valid yet")
        );
        let mut elsewhere = claims(60);
        elsewhere.aud = Some("other-app".into());
        assert!(
            refused(&verifier, &mint_token(SECRET, &elsewhere).unwrap())
                .await
                .contains("audience (`aud`)")
        );
        assert!(
            TokenVerifier::hs256(b"short", None, None).is_err(),
            "weak secrets are refused"
        );
    }
}
