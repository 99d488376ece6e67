//! The gateway's decision for a request to `/api/v1/{m}/…`: the same code runs in the
//! `plinth` gateway on one machine and in the API Gateway authorizer Lambda on AWS.
//!
//! Identity (401) → module installed and its route (404) → enabled for the tenant and not
//! disabled for the company (404) → the route's permission (403) → the tenant's rate limit
//! (429) → a healthy instance (503) → a signed tenant context. Warm, it reads nothing from the
//! store: module routes, enablement (the resolved configuration), grants and tenants are
//! cached, invalidated by the platform's change events and bounded by a 30 s TTL.

pub mod context;
pub mod proxy;
pub mod rate;
mod routes;

use std::sync::Arc;

use plinth_module_sdk::{Manifest, ModuleName};

use crate::error::{Error, Result};
use crate::identity::{Caller, User};
use crate::ids::{CompanyId, TenantId};
use crate::instances::Health;
use crate::platform::Platform;
use crate::rbac::granted_permissions;
use context::{CONTEXT_TTL_SECS, ContextClaims};
pub use rate::RateLimits;
pub use routes::RouteMatch;

/// What the gateway knows of an installed module (cached per module).
#[derive(Debug, Clone)]
pub struct ModuleRoutes {
    pub manifest: Arc<Manifest>,
    /// Healthy instances' base URLs.
    pub healthy: Arc<Vec<String>>,
}

/// Where to send an allowed request, and what to send with it.
#[derive(Debug, Clone)]
pub struct Decision {
    pub module: ModuleName,
    pub upstream: String,
    pub context: String,
    pub tenant: TenantId,
}

/// The parts of a request the decision needs.
#[derive(Debug, Clone, Copy)]
pub struct GatewayRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub caller: &'a Caller,
}

impl Platform {
    /// Decides a request to a module route.
    pub async fn authorize(&self, request: GatewayRequest<'_>) -> Result<Decision> {
        let (module, rest) = split_module_path(request.path)?;
        let user = match request.caller {
            Caller::User(user) => user,
            Caller::Module(_) => {
                return Err(Error::Forbidden(
                    "module API keys call the platform API, not module routes".into(),
                ));
            }
        };
        let tenant = user
            .tenant
            .clone()
            .ok_or_else(|| Error::Forbidden("your token names no tenant".into()))?;
        let routes = self.module_routes(&module).await?;
        let matched =
            routes::match_route(&routes.manifest, request.method, rest).ok_or_else(|| {
                Error::NotFound(format!("{module} has no route {} {rest}", request.method))
            })?;
        let resolved = self
            .resolve_cached(&tenant, &module, user.company.as_ref())
            .await
            .map_err(|e| match e {
                Error::NotFound(_) => {
                    Error::NotFound(format!("no module {module} for your tenant"))
                }
                other => other,
            })?;
        let grants = self.grants(&tenant, &user.id).await?;
        let company = user.company.as_ref().map(CompanyId::as_str);
        let permissions = granted_permissions(&routes.manifest, user, &grants, company);
        if let Some(needed) = &matched.permission
            && !permissions.iter().any(|p| p == needed.as_str())
        {
            return Err(Error::Forbidden(format!(
                "this needs the permission {needed}"
            )));
        }
        let tier = self.tenant_cached(&tenant).await?.subscription_tier;
        self.rate_limits.check(tenant.as_str(), tier)?;
        let upstream = pick(&routes.healthy).ok_or_else(|| {
            Error::Unavailable(format!(
                "{module} has no healthy instance; try again shortly"
            ))
        })?;
        let context = self.context_token(&module, user, &tenant, permissions, &resolved.version)?;
        Ok(Decision {
            module,
            upstream,
            context,
            tenant,
        })
    }

    /// The module's manifest and healthy instances, cached.
    pub async fn module_routes(&self, module: &ModuleName) -> Result<ModuleRoutes> {
        if let Some(routes) = self.caches.routes.get(&module.to_string()) {
            return Ok(routes);
        }
        let not_found = || Error::NotFound(format!("no module {module} for your tenant"));
        let (manifest, _) = self
            .installed_module(module)
            .await
            .map_err(|_| not_found())?;
        let healthy: Vec<String> = self
            .instances(module)
            .await?
            .into_iter()
            .filter(|i| i.health == Health::Healthy)
            .map(|i| i.url)
            .collect();
        let routes = ModuleRoutes {
            manifest: Arc::new(manifest),
            healthy: Arc::new(healthy),
        };
        self.caches
            .routes
            .insert(module.to_string(), routes.clone());
        Ok(routes)
    }

    async fn tenant_cached(&self, tenant: &TenantId) -> Result<crate::tenancy::Tenant> {
        if let Some(found) = self.caches.tenants.get(&tenant.to_string()) {
            return Ok(found);
        }
        let found = self.tenant(tenant).await?;
        self.caches
            .tenants
            .insert(tenant.to_string(), found.clone());
        Ok(found)
    }

    /// A context token for this user, module and configuration version; reused while it has
    /// more than half its life left, so the hot path seldom signs.
    fn context_token(
        &self,
        module: &ModuleName,
        user: &User,
        tenant: &TenantId,
        permissions: Vec<String>,
        config_version: &str,
    ) -> Result<String> {
        let key = format!(
            "{module}|{}|{tenant}|{}|{config_version}|{}",
            user.id,
            user.company.as_ref().map_or("", CompanyId::as_str),
            permissions.join(",")
        );
        if let Some(token) = self.caches.contexts.get(&key) {
            return Ok(token);
        }
        let iat = crate::store::now_unix().max(0) as u64;
        let claims = ContextClaims {
            iss: "plinth".into(),
            aud: module.to_string(),
            sub: user.id.to_string(),
            tenant_id: tenant.to_string(),
            company_id: user.company.as_ref().map(ToString::to_string),
            permissions,
            config_version: config_version.to_owned(),
            iat,
            exp: iat + CONTEXT_TTL_SECS,
        };
        let token = self.context.sign(&claims)?;
        self.caches.contexts.insert(key, token.clone());
        Ok(token)
    }
}

/// `/api/v1/{module}{rest}` → the module and the rest (`/` when empty).
pub fn split_module_path(path: &str) -> Result<(ModuleName, &str)> {
    let after = path
        .strip_prefix("/api/v1/")
        .ok_or_else(|| Error::NotFound(format!("no route for {path}")))?;
    let (name, rest) = after
        .find('/')
        .map_or((after, "/"), |i| (&after[..i], &after[i..]));
    let module = ModuleName::parse(name)
        .map_err(|_| Error::NotFound(format!("no module {name} for your tenant")))?;
    Ok((module, rest))
}

/// Spreads requests over the healthy instances.
fn pick(healthy: &[String]) -> Option<String> {
    match healthy.len() {
        0 => None,
        1 => Some(healthy[0].clone()),
        n => Some(healthy[rand::random_range(0..n)].clone()),
    }
}
