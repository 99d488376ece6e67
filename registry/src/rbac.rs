//! Module-namespaced RBAC: a tenant's roles are sets of permission grants
//! (`financial:invoices.read`, `financial:invoices.*`, `financial:*`); users are assigned
//! roles for the whole tenant or for one company. `tenant:admin` and `platform:admin` hold
//! every permission of the modules enabled for the tenant.

use std::collections::{BTreeMap, BTreeSet};

use plinth_module_sdk::{Manifest, ModuleName, Permission, PermissionGrant, Problem};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use std::sync::Arc;

use crate::audit;
use crate::cache::{ChangeAwareCache, Stale, Staleness, TtlCache};
use crate::changes::{Change, Changes};
use crate::clock::now;
use crate::error::{Error, Result, did_you_mean};
use crate::events::platform_event;
use crate::identity::{Caller, PlatformRole, User};
use crate::ids::{CompanyId, RoleName, TenantId, UserId};
use crate::installation::{IndexEntry, Installations};
use crate::store::{
    Condition, Item, Key, Query, Store, Write, from_item, keys, query_all, to_data,
};
use crate::tenancy::Tenancy;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Role {
    pub name: RoleName,
    pub permissions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub updated_at: String,
}

/// `PUT /api/v1/tenants/{t}/roles/{r}`
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    pub permissions: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A user's roles in a tenant: for the whole tenant, and per company.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    #[serde(default)]
    pub roles: Vec<RoleName>,
    #[serde(default)]
    pub companies: BTreeMap<CompanyId, Vec<RoleName>>,
}

/// A user and the roles they hold (`GET /api/v1/tenants/{t}/users`).
#[derive(Debug, Clone, Serialize)]
pub struct UserAssignment {
    pub user: String,
    #[serde(flatten)]
    pub assignment: Assignment,
}

/// `POST /api/v1/rbac/verify`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub permission: String,
    #[serde(default)]
    pub company_id: Option<CompanyId>,
}

/// What one user may do in a tenant: their grants, tenant-wide and per company.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grants {
    pub tenant: Vec<PermissionGrant>,
    pub companies: BTreeMap<String, Vec<PermissionGrant>>,
}

impl Grants {
    pub fn allows(&self, permission: &Permission, company: Option<&str>) -> bool {
        let company_grants = company
            .and_then(|c| self.companies.get(c))
            .into_iter()
            .flatten();
        self.tenant
            .iter()
            .chain(company_grants)
            .any(|g| g.grants(permission))
    }
}

fn forget_grants(grants: &TtlCache<(String, String), Grants>, stale: &Stale) {
    match stale {
        Stale::TenantRoles(tenant) => grants.retain(|(t, _)| t != tenant),
        Stale::UserRoles { tenant, user } => grants.remove(&(tenant.clone(), user.clone())),
        Stale::Everything => grants.clear(),
        _ => {}
    }
}

/// The permissions of `manifest` a user holds: admins all of them, others what their grants allow.
pub fn granted_permissions(
    manifest: &Manifest,
    user: &User,
    grants: &Grants,
    company: Option<&str>,
) -> Vec<String> {
    let admin = user.roles.contains(&PlatformRole::PlatformAdmin)
        || user.roles.contains(&PlatformRole::TenantAdmin);
    manifest
        .permissions
        .iter()
        .filter(|p| admin || grants.allows(&p.code, company))
        .map(|p| p.code.to_string())
        .collect()
}

/// Roles, assignments and permission checks; owns the cache of users' grants.
#[derive(Debug)]
pub struct Rbac {
    store: Arc<dyn Store>,
    changes: Arc<Changes>,
    tenancy: Arc<Tenancy>,
    installations: Arc<Installations>,
    /// (tenant, user) → grants.
    grants: ChangeAwareCache<(String, String), Grants>,
}

impl Rbac {
    pub fn new(
        store: Arc<dyn Store>,
        changes: Arc<Changes>,
        tenancy: Arc<Tenancy>,
        installations: Arc<Installations>,
        staleness: &Arc<Staleness>,
    ) -> Self {
        Self {
            store,
            changes,
            tenancy,
            installations,
            grants: ChangeAwareCache::new(Arc::clone(staleness)),
        }
    }

    pub async fn put_role(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        role: &RoleName,
        change: RoleChange,
    ) -> Result<Role> {
        caller.require_tenant_admin(tenant)?;
        self.tenancy.tenant_as(caller, tenant).await?;
        // One read of what is installed, and each named module's manifest once, whatever the
        // number of grants.
        let installed = self.installations.installed_index().await?;
        let mut manifests = BTreeMap::new();
        let mut problems = Vec::new();
        for (i, grant) in change.permissions.iter().enumerate() {
            let message = match PermissionGrant::parse(grant) {
                Err(e) => Some(e.to_string()),
                Ok(parsed) => {
                    self.unknown_to_the_platform(grant, &parsed, &installed, &mut manifests)
                        .await?
                }
            };
            if let Some(message) = message {
                problems.push(Problem {
                    path: format!("permissions[{i}]"),
                    message,
                });
            }
        }
        if !problems.is_empty() {
            return Err(Error::invalid(
                format!("{} invalid permission grant(s)", problems.len()),
                problems,
            ));
        }
        let record = Role {
            name: role.clone(),
            permissions: change.permissions,
            description: change.description,
            updated_at: now(),
        };
        // Read to record what the role granted before, and written only over that version.
        let key = keys::role(tenant.as_str(), role.as_str());
        let stored = self.store.get(&key).await?;
        let previous: Option<Role> = stored.as_ref().map(from_item).transpose()?;
        let (item, condition) = over(stored.as_ref(), key, to_data(&record));
        let writes = vec![
            Write::Put { item, condition },
            audit::record(
                tenant.as_str(),
                &caller.actor(),
                "role.changed",
                &format!("role:{role}"),
                json!({"permissions": record.permissions, "previous": previous.map(|p| json!({
                    "permissions": p.permissions, "description": p.description,
                }))}),
            ),
        ];
        let event =
            platform_event("role.changed", json!({"role": role})).for_tenant(tenant.as_str(), None);
        let stale = Stale::TenantRoles(tenant.to_string());
        self.changes
            .commit(Change::new(writes).events([event]).stale(stale))
            .await?;
        Ok(record)
    }

    /// Why a well-formed grant names nothing installed — a module that is not installed, or a
    /// permission its manifest does not declare — with the closest name that exists.
    async fn unknown_to_the_platform(
        &self,
        text: &str,
        grant: &PermissionGrant,
        installed: &BTreeMap<String, IndexEntry>,
        manifests: &mut BTreeMap<String, Manifest>,
    ) -> Result<Option<String>> {
        let module = grant.module();
        let name = match ModuleName::parse(module) {
            Ok(name) if installed.contains_key(module) => name,
            _ => {
                let hint = did_you_mean(module, installed.keys().map(String::as_str));
                return Ok(Some(format!("no module `{module}` is installed{hint}")));
            }
        };
        if !manifests.contains_key(module) {
            let (manifest, _) = self.installations.installed_module(&name).await?;
            manifests.insert(module.to_owned(), manifest);
        }
        let declared = &manifests[module].permissions;
        if declared.iter().any(|p| grant.grants(&p.code)) {
            return Ok(None);
        }
        let hint = did_you_mean(text, declared.iter().map(|p| p.code.as_str()));
        Ok(Some(format!(
            "{module} declares no permission `{text}` grants{hint}"
        )))
    }

    pub async fn roles(&self, tenant: &TenantId) -> Result<Vec<Role>> {
        let query = Query::prefix(keys::tenant_partition(tenant.as_str()), "ROLE#");
        let items = query_all(self.store.as_ref(), &query).await?;
        items.iter().map(from_item).collect()
    }

    /// One role of the tenant's; 404 with the closest role name when there is none.
    pub async fn role(&self, caller: &Caller, tenant: &TenantId, role: &str) -> Result<Role> {
        caller.require_tenant_admin(tenant)?;
        let roles = self.roles(tenant).await?;
        if let Some(found) = roles.iter().find(|r| r.name.as_str() == role) {
            return Ok(found.clone());
        }
        let known: BTreeSet<RoleName> = roles.into_iter().map(|r| r.name).collect();
        Err(Error::NotFound(no_role(tenant, role, &known)))
    }

    /// Every user holding roles in the tenant, with what they hold (for its admins).
    pub async fn assignments(
        &self,
        caller: &Caller,
        tenant: &TenantId,
    ) -> Result<Vec<UserAssignment>> {
        caller.require_tenant_admin(tenant)?;
        let query = Query::prefix(keys::tenant_partition(tenant.as_str()), "USER#");
        let items = query_all(self.store.as_ref(), &query).await?;
        items
            .iter()
            .map(|item| {
                let assignment: Assignment = from_item(item)?;
                let user = item.key.sk.trim_start_matches("USER#").to_owned();
                Ok(UserAssignment { user, assignment })
            })
            .collect()
    }

    /// The roles `user` holds in `tenant` (none is an empty assignment): for the tenant's
    /// admins, and for the user themself.
    pub async fn assignment(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Assignment> {
        let own = caller
            .user()
            .is_some_and(|u| &u.id == user && u.tenant.as_ref() == Some(tenant));
        if !own {
            caller.require_tenant_admin(tenant)?;
        }
        let item = self
            .store
            .get(&keys::user_roles(tenant.as_str(), user.as_str()))
            .await?;
        item.as_ref()
            .map(from_item)
            .transpose()
            .map(Option::unwrap_or_default)
    }

    pub async fn assign_roles(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        user: &UserId,
        assignment: Assignment,
    ) -> Result<Assignment> {
        caller.require_tenant_admin(tenant)?;
        let known: BTreeSet<RoleName> = self
            .roles(tenant)
            .await?
            .into_iter()
            .map(|r| r.name)
            .collect();
        let mut problems = Vec::new();
        for (i, role) in assignment.roles.iter().enumerate() {
            if !known.contains(role) {
                problems.push(Problem {
                    path: format!("roles[{i}]"),
                    message: no_role(tenant, role.as_str(), &known),
                });
            }
        }
        for (company, roles) in &assignment.companies {
            for (i, role) in roles.iter().enumerate() {
                if !known.contains(role) {
                    problems.push(Problem {
                        path: format!("companies.{company}[{i}]"),
                        message: no_role(tenant, role.as_str(), &known),
                    });
                }
            }
        }
        if !problems.is_empty() {
            return Err(Error::invalid("unknown roles", problems));
        }
        let key = keys::user_roles(tenant.as_str(), user.as_str());
        let stored = self.store.get(&key).await?;
        let previous: Option<Assignment> = stored.as_ref().map(from_item).transpose()?;
        let (item, condition) = over(stored.as_ref(), key, to_data(&assignment));
        let mut detail = json!(assignment);
        detail["previous"] = json!(previous);
        let writes = vec![
            Write::Put { item, condition },
            audit::record(
                tenant.as_str(),
                &caller.actor(),
                "user.roles.changed",
                &format!("user:{user}"),
                detail,
            ),
        ];
        let event = platform_event("user.roles.changed", json!({"user_id": user}))
            .for_tenant(tenant.as_str(), None);
        let stale = Stale::UserRoles {
            tenant: tenant.to_string(),
            user: user.to_string(),
        };
        self.changes
            .commit(Change::new(writes).events([event]).stale(stale))
            .await?;
        Ok(assignment)
    }

    /// A user's grants in a tenant; cached (two reads when cold: the assignment and the roles).
    pub async fn grants(&self, tenant: &TenantId, user: &UserId) -> Result<Grants> {
        let cache_key = (tenant.to_string(), user.to_string());
        if let Some(grants) = self.grants.get(&cache_key) {
            return Ok(grants);
        }
        let assignment: Assignment = match self
            .store
            .get(&keys::user_roles(tenant.as_str(), user.as_str()))
            .await?
        {
            Some(item) => from_item(&item)?,
            None => Assignment::default(),
        };
        let grants = if assignment.roles.is_empty() && assignment.companies.is_empty() {
            Grants::default()
        } else {
            let roles: BTreeMap<RoleName, Role> = self
                .roles(tenant)
                .await?
                .into_iter()
                .map(|r| (r.name.clone(), r))
                .collect();
            let expand = |names: &[RoleName]| -> Vec<PermissionGrant> {
                names
                    .iter()
                    .filter_map(|n| roles.get(n))
                    .flat_map(|r| {
                        r.permissions
                            .iter()
                            .filter_map(|g| PermissionGrant::parse(g).ok())
                    })
                    .collect()
            };
            Grants {
                tenant: expand(&assignment.roles),
                companies: assignment
                    .companies
                    .iter()
                    .map(|(c, names)| (c.to_string(), expand(names)))
                    .collect(),
            }
        };
        self.grants.insert(cache_key, grants.clone(), forget_grants);
        Ok(grants)
    }

    /// `rbac/verify`: for modules (their API key) and the tenant's admins.
    pub async fn verify(&self, caller: &Caller, request: &VerifyRequest) -> Result<bool> {
        if !matches!(caller, Caller::Module(_)) {
            caller.require_tenant_admin(&request.tenant_id)?;
        }
        let permission = Permission::parse(&request.permission)
            .map_err(|e| Error::field("permission", e.to_string()))?;
        let grants = self.grants(&request.tenant_id, &request.user_id).await?;
        Ok(grants.allows(
            &permission,
            request.company_id.as_ref().map(CompanyId::as_str),
        ))
    }
}

/// The item that replaces `stored` (or is new), written only if nothing changed it meanwhile.
fn over(
    stored: Option<&Item>,
    key: Key,
    data: serde_json::Map<String, Value>,
) -> (Item, Condition) {
    match stored {
        Some(stored) => (
            Item {
                key,
                version: stored.version + 1,
                data,
                expires_at: None,
            },
            Condition::Version(stored.version),
        ),
        None => (Item::new(key, data), Condition::Absent),
    }
}

/// `tenant {t} has no role {r}`, with the closest of its roles.
fn no_role(tenant: &TenantId, role: &str, known: &BTreeSet<RoleName>) -> String {
    let hint = did_you_mean(role, known.iter().map(RoleName::as_str));
    format!("tenant {tenant} has no role {role}{hint}")
}
