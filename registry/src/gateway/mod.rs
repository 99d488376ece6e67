//! The gateway's decision for a request to `/api/v1/{m}/…` — the [`Authorizer`]: the same
//! code decides in the `plinth` gateway on one machine and in the authorizer Lambda behind
//! API Gateway on AWS. ("The gateway" is what stands in front of module backends; this is
//! its decision, and [`Decide`] is where a transport asks for it.)
//!
//! The path in its one canonical form ([`path`], 400) → identity (401) → module installed
//! (404) → enabled for the tenant and not disabled for the company (404) → its route (404; a
//! parameter a loose backend could read as another route's literal, 400) → the route's
//! permission (403) → the tenant's rate limit (429) → a healthy instance (503) → a signed
//! tenant context.
//!
//! Warm, a request costs one look-up: everything decided about a (token, module) pair is kept
//! as a [`Pass`] — the verified user, the module's routes and healthy instances, the permissions
//! granted, the tenant's rate-limit bucket and the signed context — until the token expires,
//! the context is half-way through its life, 30 s pass, or any platform change event arrives
//! (each counts in [`Staleness::generation`](crate::cache::Staleness)). Only the route match, the
//! permission check and the rate limit run per request. A cold pass is built from the
//! per-concept caches (routes, resolved configuration, grants, tenants), so it reads the store
//! only for what is not cached there either.

mod decide;
pub mod path;
pub mod rate;
mod routes;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::http::header::AUTHORIZATION;
use axum::http::uri::{PathAndQuery, Scheme};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};
use plinth_module_sdk::{Manifest, ModuleName};

use crate::cache::{ChangeAwareCache, Stale, Staleness, TtlCache};
use crate::error::{Error, Result};
use crate::identity::{COMPANY_HEADER, User};
use crate::ids::{CompanyId, TenantId, UserId};
use crate::instances::{Health, Serving};
use crate::plane::ControlPlane;
use crate::rbac::granted_permissions;
pub use decide::{Decide, Forward};
use plinth_module_sdk::wire::{
    CONTEXT_HEADER, CONTEXT_ISSUER, ContextClaims, MAX_CONTEXT_LIFETIME_SECS as CONTEXT_TTL_SECS,
    TENANT_HEADER,
};
pub use rate::{RateLimits, TenantLimit};
pub use routes::{NoMatch, RouteMatch};

/// `X-Module-API-Key`, parsed once rather than on every request's look-up.
static API_KEY: HeaderName = HeaderName::from_static(plinth_module_sdk::wire::API_KEY_HEADER);

/// What the gateway knows of an installed module (cached per module).
#[derive(Debug, Clone)]
pub struct ModuleRoutes {
    pub manifest: Arc<Manifest>,
    /// The manifest's version, as text once (each request is counted under it: `rollout`).
    pub version: Arc<str>,
    /// Healthy instances.
    pub healthy: Arc<Vec<Arc<Upstream>>>,
}

/// A backend's base URL, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub url: String,
    /// `host:port` to connect to, for an `http` URL.
    address: Option<String>,
    /// The URL's path without its trailing `/`, put before every request's path.
    base_path: String,
    /// The `Host` header for this backend, made once.
    pub host: Option<HeaderValue>,
}

impl Upstream {
    pub fn new(url: String) -> Self {
        let parsed = url.parse::<Uri>().ok();
        let authority = parsed
            .as_ref()
            .filter(|uri| uri.scheme() == Some(&Scheme::HTTP))
            .and_then(Uri::authority);
        let address = authority.map(|authority| match authority.port_u16() {
            Some(_) => authority.as_str().to_owned(),
            None => format!("{}:80", authority.as_str()),
        });
        let host = authority.and_then(|authority| HeaderValue::from_str(authority.as_str()).ok());
        let base_path = parsed
            .as_ref()
            .map(|uri| uri.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        Self {
            url,
            address,
            base_path,
            host,
        }
    }

    /// Where to connect: `host:port`, for the `http` backends the local gateway can reach.
    pub fn address(&self) -> Result<&str> {
        self.address.as_deref().ok_or_else(|| {
            Error::BadGateway(format!(
                "the local gateway reaches only http:// backends, not {}",
                self.url
            ))
        })
    }

    /// The request target (origin form) to send the backend for a request's target:
    /// unchanged, unless the backend's URL has a path of its own to put first (or the client
    /// sent an absolute URI).
    pub fn target_for(&self, uri: Uri) -> Result<Uri> {
        if self.base_path.is_empty() && uri.scheme().is_none() && uri.authority().is_none() {
            return Ok(uri);
        }
        let path_and_query = uri.path_and_query().map_or("/", PathAndQuery::as_str);
        format!("{}{path_and_query}", self.base_path)
            .parse::<Uri>()
            .map_err(|e| self.bad_url(&e))
    }

    /// The path put before every request's target (empty for a backend URL without one).
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    fn bad_url(&self, error: &dyn std::fmt::Display) -> Error {
        Error::internal(format!("bad upstream URL {}: {error}", self.url))
    }
}

/// Everything decided about one (token, module, selected company), reused while fresh.
#[derive(Debug)]
pub struct Pass {
    generation: u64,
    /// The `X-Plinth-Company` value it was built for, as sent.
    selected: Option<Box<[u8]>>,
    built: Instant,
    /// Unix time after which the token is no longer valid (leeway included).
    valid_until: i64,
    pub user: User,
    pub module: ModuleName,
    pub tenant: TenantId,
    /// The module whose call this is, when a module called with its API key.
    pub calling_module: Option<ModuleName>,
    routes: ModuleRoutes,
    permissions: Vec<String>,
    limit: Arc<TenantLimit>,
    /// The signed tenant context (`X-Plinth-Context`).
    pub context: HeaderValue,
}

/// How long a pass is reused at most: half a context token's life, so a backend never gets a
/// context with less than half its life left.
const PASS_TTL: Duration = Duration::from_secs(CONTEXT_TTL_SECS / 2);
/// The most tokens remembered; past it, stale passes go first, then all.
const MAX_TOKENS: usize = 100_000;
/// The most passes one token keeps (one per module and company it is used with).
const MAX_PASSES_PER_TOKEN: usize = 64;

/// Passes by raw token, then by module. foldhash rather than SipHash: the key is the whole
/// token (hundreds of bytes) and is hashed on every request; the map is seeded per process
/// and holds only tokens that verified.
#[derive(Debug, Default)]
pub struct Passes {
    by_token: RwLock<HashMap<Box<str>, Vec<Arc<Pass>>, foldhash::fast::RandomState>>,
}

impl Passes {
    fn get(&self, token: &str, module: &str, selected: Option<&[u8]>) -> Option<Arc<Pass>> {
        let by_token = self.by_token.read().ok()?;
        by_token
            .get(token)?
            .iter()
            .find(|pass| pass.module.as_str() == module && pass.selected.as_deref() == selected)
            .cloned()
    }

    fn insert(&self, token: &str, pass: Arc<Pass>) {
        let Ok(mut by_token) = self.by_token.write() else {
            return;
        };
        if by_token.len() >= MAX_TOKENS && !by_token.contains_key(token) {
            by_token.retain(|_, passes| {
                passes.retain(|p| p.built.elapsed() < PASS_TTL);
                !passes.is_empty()
            });
            if by_token.len() >= MAX_TOKENS {
                by_token.clear();
            }
        }
        let passes = by_token.entry(token.into()).or_default();
        passes.retain(|p| p.module != pass.module || p.selected != pass.selected);
        // One token's (module, company) pairs are few; more is someone varying a header.
        if passes.len() >= MAX_PASSES_PER_TOKEN {
            passes.clear();
        }
        passes.push(pass);
    }

    fn clear(&self) {
        if let Ok(mut by_token) = self.by_token.write() {
            by_token.clear();
        }
    }
}

/// Where to send an allowed request, and what to send with it.
#[derive(Debug, Clone)]
pub struct Decision {
    pub pass: Arc<Pass>,
    pub upstream: Arc<Upstream>,
}

impl Decision {
    pub fn module(&self) -> &ModuleName {
        &self.pass.module
    }

    pub fn tenant(&self) -> &TenantId {
        &self.pass.tenant
    }

    /// Every healthy instance of the module (the decision's `upstream` is one of them).
    pub fn upstreams(&self) -> &[Arc<Upstream>] {
        &self.pass.routes.healthy
    }

    /// The version serving the tenant (its pin, else the module's default): what an AWS
    /// load balancer's rules route on (`deploy::alb`).
    pub fn version(&self) -> &str {
        &self.pass.routes.version
    }

    /// The signed tenant context, as text.
    pub fn context(&self) -> &str {
        self.pass.context.to_str().unwrap_or_default()
    }
}

/// The parts of a request the decision needs.
#[derive(Debug, Clone, Copy)]
pub struct GatewayRequest<'a> {
    pub method: &'a str,
    /// In canonical form ([`canonical_path`]).
    pub path: &'a str,
    /// The query, without its `?`.
    pub query: Option<&'a str>,
    /// The `Authorization` field's value.
    pub authorization: Option<&'a [u8]>,
    /// The `X-Module-API-Key` field's value.
    pub api_key: Option<&'a [u8]>,
    /// The `X-Plinth-Company` field's value: the company the user acts in.
    pub company: Option<&'a [u8]>,
    /// A module's call: the `X-Plinth-Tenant` field's value (the tenant it calls for).
    pub tenant: Option<&'a [u8]>,
    /// A module's call for a user: the `X-Plinth-Context` it received and passes on.
    pub context: Option<&'a [u8]>,
}

impl<'a> GatewayRequest<'a> {
    /// A request with these header fields.
    pub fn new(
        method: &'a str,
        path: &'a str,
        query: Option<&'a str>,
        headers: &'a HeaderMap,
    ) -> Self {
        Self {
            method,
            path,
            query,
            authorization: headers.get(AUTHORIZATION).map(HeaderValue::as_bytes),
            api_key: headers.get(&API_KEY).map(HeaderValue::as_bytes),
            company: headers.get(COMPANY_HEADER).map(HeaderValue::as_bytes),
            tenant: headers.get(TENANT_HEADER).map(HeaderValue::as_bytes),
            context: headers.get(CONTEXT_HEADER).map(HeaderValue::as_bytes),
        }
    }
}

/// The gateway's decision: who may call which module route, and where the request goes.
/// Owns the caches of module routes and passes.
#[derive(Debug)]
pub struct Authorizer {
    plane: Arc<ControlPlane>,
    staleness: Arc<Staleness>,
    /// (module, version) → that version's manifest and healthy instances.
    routes: ChangeAwareCache<(String, String), ModuleRoutes>,
    passes: Arc<Passes>,
    /// Set once the passes hear of changes (from the first pass on).
    passes_listening: std::sync::OnceLock<()>,
    rate_limits: RateLimits,
}

impl Authorizer {
    pub fn new(plane: Arc<ControlPlane>) -> Self {
        let staleness = Arc::clone(plane.staleness());
        let routes = ChangeAwareCache::new(Arc::clone(&staleness));
        let scale = plane.settings.rate_limit_scale.max(1);
        let rate_limits = RateLimits::with_quotas(move |tier| {
            let (rate, burst) = rate::quota_of(tier);
            (rate.saturating_mul(scale), burst.saturating_mul(scale))
        });
        Self {
            plane,
            staleness,
            routes,
            passes: Arc::default(),
            passes_listening: std::sync::OnceLock::new(),
            rate_limits,
        }
    }

    /// The control plane the decision reads.
    pub fn plane(&self) -> &Arc<ControlPlane> {
        &self.plane
    }

    /// How many changes the decision has seen ([`Staleness::generation`]): a pass built under
    /// an older one is built again.
    pub fn generation(&self) -> u64 {
        self.staleness.generation()
    }

    /// Drops what is decided about a module's instances: its backend failed to answer (the
    /// instance may be gone).
    pub fn forget_routes(&self, module: &ModuleName) {
        self.staleness.mark(&Stale::Module(module.to_string()));
    }

    /// Decides a request to a module route. Its path must be in canonical form
    /// ([`canonical_path`]): the route is matched on it, and it is what the backend gets.
    pub async fn authorize(&self, request: GatewayRequest<'_>) -> Result<Decision> {
        ensure_canonical(request.path)?;
        let (module, rest) = split_module_path(request.path)?;
        if let Some(query) = request.query {
            ensure_no_method_override(request.path, query)?;
        }
        let pass = match request.api_key {
            Some(key) => Box::pin(self.module_call_pass(key, &request, module)).await?,
            None => {
                let token = crate::identity::bearer_of(request.authorization)?;
                match self.passes.get(token, module, request.company) {
                    Some(pass) if self.is_fresh(&pass) => pass,
                    _ => {
                        // Boxed: a cold pass reads caches and the store, and its state would
                        // otherwise be carried (and moved) by every request's future.
                        let built = self.build_pass(token, module, request.company);
                        let pass = Arc::new(Box::pin(built).await?);
                        self.remember(token, Arc::clone(&pass));
                        pass
                    }
                }
            }
        };
        let matched = routes::match_route(&pass.routes.manifest, request.method, rest).map_err(
            |no| match no {
                NoMatch::Undeclared => {
                    Error::NotFound(format!("{module} has no route {} {rest}", request.method))
                }
                NoMatch::Ambiguous { segment, literal } => Error::BadRequest(format!(
                    "the path {} has a segment `{segment}` that a module could read as \
                     `{literal}`, another route; spell route names as the module declares them",
                    request.path
                )),
            },
        )?;
        if let Some(needed) = &matched.permission
            && !pass.permissions.iter().any(|p| p == needed.as_str())
        {
            return Err(Error::Forbidden(match &pass.calling_module {
                Some(caller) => format!(
                    "this needs the permission {needed}, which {caller} does not declare calling \
                     with (dependencies.calls){}",
                    if pass.user.id.as_str().starts_with("module:") {
                        ""
                    } else {
                        " or its user does not hold"
                    }
                ),
                None => format!("this needs the permission {needed}"),
            }));
        }
        pass.limit.check(pass.tenant.as_str())?;
        if let Some(budget) = &self.plane.rate_budget {
            budget
                .take(pass.tenant.as_str(), pass.limit.per_second())
                .await?;
        }
        let upstream = pick(&pass.routes.healthy).ok_or_else(|| {
            Error::unavailable(format!(
                "{module} has no healthy instance; try again shortly"
            ))
        })?;
        Ok(Decision { pass, upstream })
    }

    /// Keeps a pass; from the first on, the passes are all dropped when everything is stale
    /// (each pass also checks the generation it was built under).
    fn remember(&self, token: &str, pass: Arc<Pass>) {
        self.passes_listening.get_or_init(|| {
            let passes = Arc::clone(&self.passes);
            self.staleness.listen(move |stale| {
                if *stale == Stale::Everything {
                    passes.clear();
                }
            });
        });
        self.passes.insert(token, pass);
    }

    fn is_fresh(&self, pass: &Pass) -> bool {
        pass.generation == self.staleness.generation()
            && pass.built.elapsed() < PASS_TTL
            && crate::store::now_unix() <= pass.valid_until
    }

    /// Verifies the token and decides everything about (user, module) that does not depend
    /// on the request's route.
    async fn build_pass(&self, token: &str, module: &str, selected: Option<&[u8]>) -> Result<Pass> {
        // Read before anything is looked up: a change landing meanwhile makes this pass stale.
        let generation = self.staleness.generation();
        let (user, valid_until) = self.plane.identity.tokens.verify_until(token).await?;
        let user = user.acting_in(selected)?;
        let tenant = user
            .tenant
            .clone()
            .ok_or_else(|| Error::Forbidden("your token names no tenant".into()))?;
        let Ok(module) = ModuleName::parse(module) else {
            return Err(self.no_module(&tenant, module).await);
        };
        let routes = match self.tenant_routes(&tenant, &module).await {
            Err(Error::NotFound(_)) => return Err(self.no_module(&tenant, module.as_str()).await),
            other => other?,
        };
        let resolved = self.resolve(&tenant, &module, &user).await?;
        let permissions = self
            .held_permissions(&tenant, &user, &routes.manifest)
            .await?;
        let limit = self.tenant_limit(&tenant).await?;
        let context = self.sign_context(
            &module,
            &user,
            &tenant,
            &permissions,
            &resolved.version,
            None,
        )?;
        Ok(Pass {
            generation,
            selected: selected.map(Box::from),
            built: Instant::now(),
            valid_until,
            user,
            module,
            tenant,
            calling_module: None,
            routes,
            permissions,
            limit,
            context,
        })
    }

    /// The pass of a module calling `module` with its API key, for the tenant it names or the
    /// user whose context it passes on; remembered per (key, tenant, context, company).
    async fn module_call_pass(
        &self,
        key: &[u8],
        request: &GatewayRequest<'_>,
        module: &str,
    ) -> Result<Arc<Pass>> {
        let key = std::str::from_utf8(key)
            .map_err(|_| Error::Unauthorized("the API key is not valid text".into()))?;
        let lossy =
            |value: Option<&[u8]>| String::from_utf8_lossy(value.unwrap_or_default()).into_owned();
        let remembered_as = format!(
            "{key}\u{0}{}\u{0}{}",
            lossy(request.tenant),
            lossy(request.context)
        );
        if let Some(pass) = self.passes.get(&remembered_as, module, request.company)
            && self.is_fresh(&pass)
        {
            return Ok(pass);
        }
        let pass = Arc::new(self.build_module_call_pass(key, request, module).await?);
        self.remember(&remembered_as, Arc::clone(&pass));
        Ok(pass)
    }

    /// Decides a module's call of another's routes: the caller's key, its manifest declaring
    /// the call (`dependencies.calls`), the tenant (named, or the passed-on context's) having
    /// enabled both, and the permissions: those declared, and, for a user, only those the
    /// user holds in the callee too.
    async fn build_module_call_pass(
        &self,
        key: &str,
        request: &GatewayRequest<'_>,
        module: &str,
    ) -> Result<Pass> {
        let generation = self.staleness.generation();
        let (caller, key_expires_at) = self.plane.api_keys.authenticate_until(key).await?;
        let callee = ModuleName::parse(module)
            .map_err(|_| Error::NotFound(format!("no module {module} for your tenant")))?;
        let declared = self
            .first_routes(&caller)
            .await?
            .manifest
            .dependencies
            .call_to(callee.as_str())
            .map(|call| call.permissions.clone())
            .ok_or_else(|| {
                Error::Forbidden(format!(
                    "{caller} does not declare calling {callee}: its manifest's \
                     dependencies.calls must name it"
                ))
            })?;
        // For whom: the user of a passed-on context, or a tenant by name.
        let (user, valid_until, context_exp) = match request.context {
            Some(context) => {
                let claims = self
                    .plane
                    .identity
                    .context
                    .verify(header_text(context, CONTEXT_HEADER)?, caller.as_str())?;
                let field = |value: &str, what: &str| {
                    Error::Unauthorized(format!(
                        "the context passed on names no valid {what}: {value}"
                    ))
                };
                let user = User {
                    id: UserId::parse(&claims.sub).map_err(|_| field(&claims.sub, "user"))?,
                    tenant: Some(
                        TenantId::parse(&claims.tenant_id)
                            .map_err(|_| field(&claims.tenant_id, "tenant"))?,
                    ),
                    company: claims
                        .company_id
                        .as_deref()
                        .map(CompanyId::parse)
                        .transpose()
                        .map_err(|_| field("company_id", "company"))?,
                    companies: std::collections::BTreeSet::new(),
                    roles: std::collections::BTreeSet::new(),
                };
                if let Some(named) = request.tenant
                    && user.tenant.as_ref().map(TenantId::as_str)
                        != Some(header_text(named, TENANT_HEADER)?)
                {
                    return Err(Error::Forbidden(format!(
                        "the {TENANT_HEADER} header names another tenant than the context passed on"
                    )));
                }
                let exp = i64::try_from(claims.exp).unwrap_or(i64::MAX);
                (user, exp, Some(claims.exp))
            }
            None => {
                let named = request.tenant.ok_or_else(|| {
                    Error::BadRequest(format!(
                        "a module's call names its tenant in {TENANT_HEADER} (or passes on its \
                         user's {CONTEXT_HEADER})"
                    ))
                })?;
                let tenant = TenantId::parse(header_text(named, TENANT_HEADER)?)
                    .map_err(|m| Error::BadRequest(format!("{TENANT_HEADER}: {m}")))?;
                let id = UserId::parse(&format!("module:{caller}"))
                    .map_err(|e| Error::internal(format!("a module's user id: {e}")))?;
                // A call for the tenant may pick any of its companies (the resolution
                // below refuses one the tenant lacks).
                let company = request
                    .company
                    .map(|company| {
                        CompanyId::parse(header_text(company, COMPANY_HEADER)?).map_err(|m| {
                            Error::BadRequest(format!("the {COMPANY_HEADER} header: {m}"))
                        })
                    })
                    .transpose()?;
                let user = User {
                    id,
                    tenant: Some(tenant),
                    company,
                    companies: std::collections::BTreeSet::new(),
                    roles: std::collections::BTreeSet::new(),
                };
                (user, i64::MAX, None)
            }
        };
        let valid_until = valid_until.min(key_expires_at.unwrap_or(i64::MAX));
        let tenant = user
            .tenant
            .clone()
            .unwrap_or_else(|| unreachable!("set above"));
        self.plane
            .config
            .resolve_cached(&tenant, &caller, user.company.as_ref())
            .await
            .map_err(|e| match (e, user.company.as_ref()) {
                (Error::NotFound(_), Some(company)) => Error::Forbidden(format!(
                    "{caller} is not enabled for tenant {tenant}'s company {company}"
                )),
                (Error::NotFound(_), None) => {
                    Error::Forbidden(format!("tenant {tenant} has not enabled {caller}"))
                }
                (other, _) => other,
            })?;
        let routes = self.tenant_routes(&tenant, &callee).await?;
        let resolved = self.resolve(&tenant, &callee, &user).await?;
        let mut permissions: Vec<String> = routes
            .manifest
            .permissions
            .iter()
            .filter(|p| declared.iter().any(|grant| grant.grants(&p.code)))
            .map(|p| p.code.to_string())
            .collect();
        if request.context.is_some() {
            let held = self
                .held_permissions(&tenant, &user, &routes.manifest)
                .await?;
            permissions.retain(|p| held.contains(p));
        }
        let limit = self.tenant_limit(&tenant).await?;
        let context = self.sign_context(
            &callee,
            &user,
            &tenant,
            &permissions,
            &resolved.version,
            Some((&caller, context_exp)),
        )?;
        Ok(Pass {
            generation,
            selected: request.company.map(Box::from),
            built: Instant::now(),
            valid_until,
            user,
            module: callee,
            tenant,
            calling_module: Some(caller),
            routes,
            permissions,
            limit,
            context,
        })
    }

    /// The tenant's rate-limit bucket, sized for its tier.
    async fn tenant_limit(&self, tenant: &TenantId) -> Result<Arc<TenantLimit>> {
        let tier = self
            .plane
            .tenancy
            .tenant_cached(tenant)
            .await?
            .subscription_tier;
        Ok(self.rate_limits.limit(tenant.as_str(), tier))
    }

    /// The permissions of `manifest` the user holds in the tenant (and the company they act
    /// in), from their role assignments.
    async fn held_permissions(
        &self,
        tenant: &TenantId,
        user: &User,
        manifest: &Manifest,
    ) -> Result<Vec<String>> {
        let grants = self.plane.rbac.grants(tenant, &user.id).await?;
        let company = user.company.as_ref().map(CompanyId::as_str);
        Ok(granted_permissions(manifest, user, &grants, company))
    }

    /// The module's resolved configuration for the tenant and the user's company, which is
    /// its enablement: a 404 that reveals nothing of other tenants, unless the company the
    /// user acts in is missing or disabled the module (said as such).
    async fn resolve(
        &self,
        tenant: &TenantId,
        module: &ModuleName,
        user: &User,
    ) -> Result<plinth_module_sdk::ResolvedConfig> {
        match self
            .plane
            .config
            .resolve_cached(tenant, module, user.company.as_ref())
            .await
        {
            Ok(resolved) => Ok(resolved),
            // A company the user acts in that the tenant lacks, or that disabled the module.
            Err(Error::NotFound(message))
                if user.company.is_some() && message.contains(" company ") =>
            {
                Err(Error::NotFound(message))
            }
            Err(Error::NotFound(_)) => Err(self.no_module(tenant, module.as_str()).await),
            Err(other) => Err(other),
        }
    }

    /// The 404 of a module the tenant does not have (revealing nothing of other tenants),
    /// with the closest of the modules it has enabled.
    async fn no_module(&self, tenant: &TenantId, module: &str) -> Error {
        let enabled = self
            .plane
            .enablement
            .tenant_modules(tenant)
            .await
            .unwrap_or_default();
        let names = enabled
            .iter()
            .filter(|m| m.enabled)
            .map(|m| m.module.as_str());
        Error::NotFound(format!(
            "no module {module} for your tenant{}",
            crate::error::did_you_mean(module, names)
        ))
    }

    /// The manifest and healthy instances of the version serving `tenant` (its pin, else the
    /// module's default: `versions`), cached.
    pub async fn tenant_routes(
        &self,
        tenant: &TenantId,
        module: &ModuleName,
    ) -> Result<ModuleRoutes> {
        let version = self
            .plane
            .versions
            .tenant_version(tenant, module)
            .await
            .map_err(|e| match e {
                // Not installed: as any unknown module. A store failure stays what it is (a
                // 503), not a 404 that tells the client the module is gone.
                Error::NotFound(_) => {
                    Error::NotFound(format!("no module {module} for your tenant"))
                }
                other => other,
            })?;
        self.module_routes(module, Some(&version)).await
    }

    /// The manifest and healthy instances of the module's first installation, cached.
    pub async fn first_routes(&self, module: &ModuleName) -> Result<ModuleRoutes> {
        self.module_routes(module, None).await
    }

    /// A version's manifest and healthy instances (the first installation's without one),
    /// cached per (module, version).
    async fn module_routes(
        &self,
        module: &ModuleName,
        version: Option<&str>,
    ) -> Result<ModuleRoutes> {
        let key = (module.to_string(), version.unwrap_or_default().to_owned());
        if let Some(routes) = self.routes.get(&key) {
            return Ok(routes);
        }
        let not_found = || Error::NotFound(format!("no module {module} for your tenant"));
        let (manifest, first) = self
            .plane
            .installations
            .installed_module(module)
            .await
            .map_err(|_| not_found())?;
        let (manifest, serving) = match version {
            Some(version) if first.installed_version.as_deref() != Some(version) => {
                let alongside = self
                    .plane
                    .installations
                    .serving(module, version)
                    .await?
                    .ok_or_else(not_found)?;
                let manifest = alongside.serving_manifest().ok_or_else(not_found)??;
                (manifest, Serving::Alongside(version))
            }
            _ => (manifest, Serving::First("")),
        };
        let healthy: Vec<Arc<Upstream>> = self
            .plane
            .instances
            .list(module)
            .await?
            .into_iter()
            .filter(|i| i.health == Health::Healthy && serving.owns(i))
            .map(|i| Arc::new(Upstream::new(i.url)))
            .collect();
        let routes = ModuleRoutes {
            version: Arc::from(manifest.version.to_string()),
            manifest: Arc::new(manifest),
            healthy: Arc::new(healthy),
        };
        self.routes.insert(key, routes.clone(), forget_routes);
        Ok(routes)
    }

    /// A context token for this user, module and configuration version.
    fn sign_context(
        &self,
        module: &ModuleName,
        user: &User,
        tenant: &TenantId,
        permissions: &[String],
        config_version: &str,
        // A module's call: the caller, and the expiry of the context it passed on, if any (a
        // context passed on lives no longer than the one it came from).
        call: Option<(&ModuleName, Option<u64>)>,
    ) -> Result<HeaderValue> {
        let iat = crate::store::now_unix().max(0) as u64;
        let not_after = call.and_then(|(_, exp)| exp).unwrap_or(u64::MAX);
        let exp = (iat + CONTEXT_TTL_SECS).min(not_after);
        let calling_module = call.map(|(caller, _)| caller);
        let claims = ContextClaims {
            iss: CONTEXT_ISSUER.into(),
            aud: module.to_string(),
            sub: user.id.to_string(),
            tenant_id: tenant.to_string(),
            company_id: user.company.as_ref().map(ToString::to_string),
            permissions: permissions.to_vec(),
            config_version: config_version.to_owned(),
            calling_module: calling_module.map(ToString::to_string),
            iat,
            exp,
        };
        let token = self.plane.identity.context.sign(&claims)?;
        HeaderValue::try_from(token).map_err(|e| Error::internal_because("context header", e))
    }
}

/// A header field's value as text, trimmed (400 naming the field otherwise).
fn header_text<'a>(value: &'a [u8], header: &str) -> Result<&'a str> {
    std::str::from_utf8(value)
        .map_err(|_| Error::BadRequest(format!("the {header} header is not text")))
}

fn forget_routes(routes: &TtlCache<(String, String), ModuleRoutes>, stale: &Stale) {
    match stale {
        Stale::Module(module) => routes.retain(|(m, _)| m != module),
        Stale::Modules | Stale::Everything => routes.clear(),
        _ => {}
    }
}

/// The canonical form of a request's path ([`path::canonicalize`]), or the 400 naming the
/// path and what in it a backend could read as another route.
pub fn canonical_path(path: &str) -> Result<Cow<'_, str>> {
    path::canonicalize(path).map_err(|refusal| {
        Error::BadRequest(format!(
            "the path {} has {refusal}, which a module could read as another route",
            printable(path)
        ))
    })
}

/// Refuses a path that is not in canonical form: the transports canonicalise before asking,
/// and on AWS, where the authorizer cannot rewrite what API Gateway forwards, only a path
/// already canonical can be forwarded as decided.
fn ensure_canonical(path: &str) -> Result<()> {
    match canonical_path(path)? {
        Cow::Borrowed(_) => Ok(()),
        Cow::Owned(canonical) => Err(Error::BadRequest(format!(
            "the path {path} is not in canonical form; send it as {canonical}"
        ))),
    }
}

/// Refuses a `_method` query parameter: the request line's method is the one authorized.
fn ensure_no_method_override(path: &str, query: &str) -> Result<()> {
    path::check_query(query).map_err(|name| {
        Error::BadRequest(format!(
            "the query of {path} has `{name}`, which a module could read as another method \
             than the one authorized; send the method in the request line"
        ))
    })
}

/// `path` as a problem document can show it: bytes past ASCII or control bytes escaped.
fn printable(path: &str) -> Cow<'_, str> {
    if path.bytes().all(|b| b.is_ascii_graphic()) {
        return Cow::Borrowed(path);
    }
    let mut shown = String::with_capacity(path.len() + 8);
    for byte in path.bytes() {
        if byte.is_ascii_graphic() {
            shown.push(byte as char);
        } else {
            shown.push_str(&format!("%{byte:02X}"));
        }
    }
    Cow::Owned(shown)
}

/// `/api/v1/{module}{rest}` → the module's name and the rest (`/` when empty).
pub fn split_module_path(path: &str) -> Result<(&str, &str)> {
    let after = path
        .strip_prefix("/api/v1/")
        .ok_or_else(|| Error::NotFound(format!("no route for {path}")))?;
    let (name, rest) = after
        .find('/')
        .map_or((after, "/"), |i| (&after[..i], &after[i..]));
    if name.is_empty() {
        return Err(Error::NotFound(format!("no route for {path}")));
    }
    Ok((name, rest))
}

/// `/api/v1/{m}/…` for a name no platform route takes: a module's route.
pub fn is_module_path(path: &str) -> bool {
    split_module_path(path)
        .is_ok_and(|(name, _)| !plinth_module_sdk::manifest::RESERVED_MODULE_NAMES.contains(&name))
}

/// Spreads requests over the healthy instances.
fn pick(healthy: &[Arc<Upstream>]) -> Option<Arc<Upstream>> {
    match healthy.len() {
        0 => None,
        1 => Some(healthy[0].clone()),
        n => Some(healthy[rand::random_range(0..n)].clone()),
    }
}
