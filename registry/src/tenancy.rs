//! Tenants (with their subscription tier) and their companies.

use plinth_module_sdk::Tier;
use serde::{Deserialize, Serialize};
use serde_json::json;

use std::sync::Arc;

use crate::audit;
use crate::cache::{ChangeAwareCache, Stale, Staleness, TtlCache};
use crate::changes::{Change, Changes};
use crate::clock::now;
use crate::error::{Error, Result, did_you_mean};
use crate::events::platform_event;
use crate::identity::Caller;
use crate::ids::{CompanyId, TenantId};
use crate::store::{Condition, Item, Query, Store, Write, from_item, keys, query_all, to_data};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub subscription_tier: Tier,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Company {
    pub id: CompanyId,
    pub tenant_id: TenantId,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    pub created_at: String,
}

/// `POST /api/v1/tenants`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    pub id: TenantId,
    pub name: String,
    #[serde(default)]
    pub subscription_tier: Tier,
}

/// `POST /api/v1/tenants/{t}/companies`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCompany {
    pub id: CompanyId,
    pub name: String,
    #[serde(default)]
    pub country: Option<String>,
}

fn forget_tenant(tenants: &TtlCache<String, Tenant>, stale: &Stale) {
    match stale {
        Stale::Tenant(tenant) => tenants.remove(tenant),
        Stale::Everything => tenants.clear(),
        _ => {}
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(Error::field(
            "name",
            "must be 1 to 200 characters, not blank",
        ));
    }
    Ok(())
}

/// Tenants and their companies; owns the cache of tenant records the gateway reads.
#[derive(Debug)]
pub struct Tenancy {
    store: Arc<dyn Store>,
    changes: Arc<Changes>,
    /// tenant → its record (tier).
    tenants: ChangeAwareCache<String, Tenant>,
}

impl Tenancy {
    pub fn new(store: Arc<dyn Store>, changes: Arc<Changes>, staleness: &Arc<Staleness>) -> Self {
        Self {
            store,
            changes,
            tenants: ChangeAwareCache::new(Arc::clone(staleness)),
        }
    }

    pub async fn create_tenant(&self, caller: &Caller, new: NewTenant) -> Result<Tenant> {
        caller.require_platform_admin()?;
        check_name(&new.name)?;
        let tenant = Tenant {
            id: new.id,
            name: new.name,
            subscription_tier: new.subscription_tier,
            created_at: now(),
        };
        let id = tenant.id.as_str();
        let writes = vec![
            Write::Put {
                item: Item::new(keys::tenant(id), to_data(&tenant)),
                condition: Condition::Absent,
            },
            Write::Put {
                item: Item::new(keys::tenant_listing(id), to_data(&tenant)),
                condition: Condition::Always,
            },
            audit::record(
                id,
                &caller.actor(),
                "tenant.created",
                &format!("tenant:{id}"),
                json!({"tier": tenant.subscription_tier}),
            ),
        ];
        let event = platform_event("tenant.created", json!({"tier": tenant.subscription_tier}))
            .for_tenant(id, None);
        let change = Change::new(writes)
            .events([event])
            .on_conflict(format!("a tenant with id {id} already exists"));
        self.changes.commit(change).await?;
        Ok(tenant)
    }

    /// The tenant, for its members; `NotFound` for a tenant that does not exist.
    pub async fn tenant(&self, tenant: &TenantId) -> Result<Tenant> {
        let item = self
            .store
            .get(&keys::tenant(tenant.as_str()))
            .await?
            .ok_or_else(|| Error::NotFound(format!("no tenant {tenant}")))?;
        from_item(&item)
    }

    /// The tenant, as [`Tenancy::tenant`]; a platform admin (who may see every tenant) is
    /// told the closest existing tenant id when there is no such tenant.
    pub async fn tenant_as(&self, caller: &Caller, tenant: &TenantId) -> Result<Tenant> {
        match self.tenant(tenant).await {
            Err(Error::NotFound(detail)) if caller.is_platform_admin() => {
                let known = self.listed().await.unwrap_or_default();
                let hint = did_you_mean(tenant.as_str(), known.iter().map(|t| t.id.as_str()));
                Err(Error::NotFound(format!("{detail}{hint}")))
            }
            other => other,
        }
    }

    /// The tenants `caller` may see: every one for a platform admin, otherwise the caller's
    /// own (tenants created before the list existed are not in it).
    pub async fn tenants(&self, caller: &Caller) -> Result<Vec<Tenant>> {
        if caller.is_platform_admin() {
            return self.listed().await;
        }
        let own = caller.user().and_then(|u| u.tenant.clone());
        match own {
            Some(tenant) => match self.tenant(&tenant).await {
                Ok(found) => Ok(vec![found]),
                Err(Error::NotFound(_)) => Ok(Vec::new()),
                Err(other) => Err(other),
            },
            None => Err(Error::Forbidden(
                "only platform admins and a tenant's users may list tenants".into(),
            )),
        }
    }

    /// Every listed tenant (no caller: for the platform's own work, such as exports).
    pub(crate) async fn listed(&self) -> Result<Vec<Tenant>> {
        let query = Query::partition(keys::TENANTS);
        let items = query_all(self.store.as_ref(), &query).await?;
        items.iter().map(from_item).collect()
    }

    pub async fn create_company(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        new: NewCompany,
    ) -> Result<Company> {
        caller.require_tenant_admin(tenant)?;
        check_name(&new.name)?;
        self.tenant_as(caller, tenant).await?;
        let company = Company {
            id: new.id,
            tenant_id: tenant.clone(),
            name: new.name,
            country: new.country,
            created_at: now(),
        };
        let (t, c) = (tenant.as_str(), company.id.as_str());
        let writes = vec![
            Write::Put {
                item: Item::new(keys::company(t, c), to_data(&company)),
                condition: Condition::Absent,
            },
            Write::Check {
                key: keys::tenant(t),
                condition: Condition::Exists,
            },
            audit::record(
                t,
                &caller.actor(),
                "company.created",
                &format!("company:{c}"),
                json!({"name": company.name}),
            ),
        ];
        let event =
            platform_event("company.created", json!({"name": company.name})).for_tenant(t, Some(c));
        let change = Change::new(writes)
            .events([event])
            .on_conflict(format!("tenant {t} already has a company {c}"));
        self.changes.commit(change).await?;
        Ok(company)
    }

    /// The company; when there is none, the closest of the tenant's companies in the 404.
    pub async fn company(&self, tenant: &TenantId, company: &CompanyId) -> Result<Company> {
        let item = self
            .store
            .get(&keys::company(tenant.as_str(), company.as_str()))
            .await?;
        match item {
            Some(item) => from_item(&item),
            None => Err(self.no_company(tenant, company.as_str()).await),
        }
    }

    /// `tenant {t} has no company {c}`, with the closest of its companies.
    pub async fn no_company(&self, tenant: &TenantId, company: &str) -> Error {
        let known = self.companies(tenant).await.unwrap_or_default();
        let hint = did_you_mean(company, known.iter().map(|c| c.id.as_str()));
        Error::NotFound(format!("tenant {tenant} has no company {company}{hint}"))
    }

    /// The tenant's record, cached (the gateway reads its tier on every cold pass).
    pub async fn tenant_cached(&self, tenant: &TenantId) -> Result<Tenant> {
        if let Some(found) = self.tenants.get(&tenant.to_string()) {
            return Ok(found);
        }
        let found = self.tenant(tenant).await?;
        self.tenants
            .insert(tenant.to_string(), found.clone(), forget_tenant);
        Ok(found)
    }

    pub async fn companies(&self, tenant: &TenantId) -> Result<Vec<Company>> {
        let query = Query::prefix(keys::tenant_partition(tenant.as_str()), "COMPANY#");
        let items = query_all(self.store.as_ref(), &query).await?;
        items.iter().map(from_item).collect()
    }
}
