//! Running instances of modules, their health, and discovery.
//!
//! Instances are registered by the installer (the deployment it made) or by the instance
//! itself on start-up (`POST /api/v1/modules/{m}/instances` with its API key, as the seed's
//! `register_with_platform` does). A periodic checker marks them healthy or unhealthy;
//! discovery returns only healthy ones.

use std::collections::HashMap;
use std::time::Duration;

use plinth_module_sdk::ModuleName;
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::cache::Stale;
use crate::changes::{Change, Changes};
use crate::clock::now;
use crate::deploy::Deployment;
use crate::error::{Error, Result};
use crate::identity::Caller;
use crate::installation::Installations;
use crate::reach::{Call, Reach};
use crate::store::{
    Condition, Item, Key, Query, Store, Update, Write, from_item, keys, query_all, to_data,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Healthy,
    Unhealthy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Instance {
    pub module: String,
    pub url: String,
    pub health_url: String,
    pub health: Health,
    /// `installer` or `self`.
    pub registered_by: String,
    pub last_checked: String,
    /// When the health checker first found it unhealthy (cleared when it recovers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_since: Option<String>,
    /// The version it serves, as its installer deployed it (none: registered by itself, for
    /// the module's first installation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// It serves a version installed alongside the module's first installation (`versions`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub alongside: bool,
}

/// Which of a module's installations a deployment serves: its first (upgraded and rolled
/// back in place), or a version installed alongside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serving<'a> {
    First(&'a str),
    Alongside(&'a str),
}

impl Serving<'_> {
    /// Whether `instance` belongs to this installation (the first's are all not alongside).
    pub fn owns(&self, instance: &Instance) -> bool {
        match self {
            Serving::First(_) => !instance.alongside,
            Serving::Alongside(version) => {
                instance.alongside && instance.version.as_deref() == Some(version)
            }
        }
    }
}

impl Instance {
    /// `deployment` of `module` as a healthy instance, registered `by` the installer or itself.
    fn healthy(module: &ModuleName, deployment: &Deployment, by: &str) -> Self {
        Self {
            version: None,
            alongside: false,
            module: module.to_string(),
            url: deployment.endpoint.clone(),
            health_url: deployment.health_url.clone(),
            health: Health::Healthy,
            registered_by: by.into(),
            last_checked: now(),
            unhealthy_since: None,
        }
    }
}

/// `POST /api/v1/modules/{m}/instances`
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub instance_url: String,
    #[serde(default)]
    pub health_check_url: Option<String>,
}

fn instance_key(module: &str, url: &str) -> Key {
    keys::instance(module, url)
}

/// An http(s) URL with a host, written as a URI (RFC 3986): the URL parser alone would take
/// and quietly escape what a URI may not hold (`<`, `>`, spaces, non-ASCII…).
fn check_url(field: &str, url: &str) -> Result<()> {
    if let Some(bad) = not_uri(url) {
        return Err(Error::field(field, format!("`{url}` is not a URI: {bad}")));
    }
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => {
            Ok(())
        }
        _ => Err(Error::field(
            field,
            format!("`{url}` is not an http(s) URL"),
        )),
    }
}

/// What in `text` a URI may not hold (RFC 3986 §2: unreserved and reserved characters, and
/// `%` before two hex digits), if anything.
fn not_uri(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    for (at, c) in text.char_indices() {
        let allowed = c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=".contains(c);
        if c == '%' {
            let hex = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(at + 1) && hex(at + 2)) {
                return Some("`%` not followed by two hex digits".into());
            }
        } else if !allowed {
            return Some(format!("{c:?} must be percent-encoded"));
        }
    }
    None
}

/// How long a health check may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

/// How long an instance may stay unhealthy beside a healthy one before it is forgotten: an
/// ECS task that was replaced never answers again, and each round would wait for it.
pub const FORGET_UNHEALTHY_AFTER: Duration = Duration::from_secs(15 * 60);

/// Module instances: registration, health, discovery.
#[derive(Debug)]
pub struct Instances {
    store: Arc<dyn Store>,
    changes: Arc<Changes>,
    installations: Arc<Installations>,
    reach: Arc<dyn Reach>,
}

impl Instances {
    pub fn new(
        store: Arc<dyn Store>,
        changes: Arc<Changes>,
        installations: Arc<Installations>,
        reach: Arc<dyn Reach>,
    ) -> Self {
        Self {
            store,
            changes,
            installations,
            reach,
        }
    }

    /// Where the platform itself calls a module (its hooks): a healthy registered instance —
    /// an ECS task at its own address, a Lambda function through `Invoke`, a local process —,
    /// else the deployment's endpoint. On AWS the endpoint of an ECS service is a Service
    /// Connect name only API Gateway's VPC link resolves, so the instances come first.
    pub async fn reach_url(&self, module: &ModuleName, deployment: &Deployment) -> String {
        let instances = self.list(module).await.unwrap_or_else(|e| {
            tracing::warn!(module = %module, error = %e.chain(), "cannot list instances; calling the deployment's endpoint");
            Vec::new()
        });
        instances
            .iter()
            .find(|i| i.health == Health::Healthy)
            .map_or_else(|| deployment.endpoint.clone(), |i| i.url.clone())
    }

    /// An instance registered again keeps the version it was deployed as (a backend of a
    /// version alongside that registers itself stays that version's).
    ///
    /// Written on the condition that the record is still the one read: a backend registering
    /// itself while the installer records it as a version's ([`Self::serve`]) would otherwise
    /// overwrite that version with none, and its tenants would have no instance. On a
    /// conflict the record is read again, a few times.
    pub async fn register(
        &self,
        module: &ModuleName,
        deployment: &Deployment,
        by: &str,
    ) -> Result<()> {
        const ATTEMPTS: usize = 4;
        let mut attempt = 1;
        loop {
            let mut instance = Instance::healthy(module, deployment, by);
            let key = instance_key(module.as_str(), &instance.url);
            let (item, condition) = match self.store.get(&key).await? {
                Some(known) => {
                    let was: Instance = from_item(&known)?;
                    instance.version = was.version;
                    instance.alongside = was.alongside;
                    known.next(to_data(&instance))
                }
                None => (Item::new(key, to_data(&instance)), Condition::Absent),
            };
            let write = Write::Put { item, condition };
            let stale = Stale::Module(module.to_string());
            match self
                .changes
                .commit(Change::new(vec![write]).stale(stale))
                .await
            {
                Err(Error::Conflict(_)) if attempt < ATTEMPTS => attempt += 1,
                outcome => return outcome,
            }
        }
    }

    /// Makes `deployment` what serves `module`: each of its addresses (an ECS task), or else its
    /// endpoint, is registered as a healthy instance, and the module's other instances — a
    /// previous version's stopped tasks, which would otherwise take hooks until the health
    /// checker noticed — are removed, in one change.
    /// Only the instances of the same installation are replaced: a version installed
    /// alongside keeps serving.
    pub async fn serve(
        &self,
        module: &ModuleName,
        deployment: &Deployment,
        of: Serving<'_>,
    ) -> Result<()> {
        let serving = deployment.instances();
        let query = Query::prefix(keys::module_partition(module.as_str()), "INSTANCE#");
        let known = query_all(self.store.as_ref(), &query).await?;
        let mut stored_versions = HashMap::new();
        let mut writes = Vec::new();
        for item in &known {
            let old: Instance = from_item(item)?;
            if of.owns(&old) && !serving.iter().any(|new| new.endpoint == old.url) {
                writes.push(Write::Delete {
                    key: item.key.clone(),
                    condition: Condition::Always,
                });
            }
            stored_versions.insert(old.url, item.version);
        }
        for instance in &serving {
            let mut registered = Instance::healthy(module, instance, "installer");
            let (Serving::First(version) | Serving::Alongside(version)) = of;
            registered.version = Some(version.to_owned());
            registered.alongside = matches!(of, Serving::Alongside(_));
            // A later version than any stored, so that a registration that read the record
            // before this write fails its condition and reads it again.
            let mut item = Item::new(
                instance_key(module.as_str(), &registered.url),
                to_data(&registered),
            );
            item.version = stored_versions.get(&registered.url).map_or(1, |v| v + 1);
            writes.push(Write::Put {
                item,
                condition: Condition::Always,
            });
        }
        let stale = Stale::Module(module.to_string());
        self.changes.commit(Change::new(writes).stale(stale)).await
    }

    /// An instance registering itself with its module's API key.
    pub async fn self_register(
        &self,
        caller: &Caller,
        module: &ModuleName,
        registration: Registration,
    ) -> Result<Instance> {
        match caller {
            Caller::Module(own) if own == module => {}
            _ if caller.is_platform_admin() => {}
            _ => {
                return Err(Error::Forbidden(format!(
                    "only {module}'s own API key may register its instances"
                )));
            }
        }
        // A module has instances only while it is installed or being installed (its backend
        // registers while the saga runs): any other is 404, whatever the registration says.
        let live = self.installations.item(module).await?;
        if !live.is_some_and(|(installation, _)| installation.is_installed() || installation.busy())
        {
            return Err(Error::NotFound(format!(
                "module {module} is not installed on this platform"
            )));
        }
        check_url("instance_url", &registration.instance_url)?;
        let url = registration.instance_url.trim_end_matches('/').to_owned();
        let health_url = registration
            .health_check_url
            .unwrap_or_else(|| format!("{url}/health"));
        check_url("health_check_url", &health_url)?;
        let deployment = Deployment {
            endpoint: url.clone(),
            health_url,
            handle: serde_json::Value::Null,
            addresses: Vec::new(),
        };
        self.register(module, &deployment, "self").await?;
        let item = self.store.get(&instance_key(module.as_str(), &url)).await?;
        item.as_ref()
            .map(from_item)
            .transpose()?
            .ok_or_else(|| Error::internal("instance vanished"))
    }

    pub async fn list(&self, module: &ModuleName) -> Result<Vec<Instance>> {
        let query = Query::prefix(keys::module_partition(module.as_str()), "INSTANCE#");
        let items = query_all(self.store.as_ref(), &query).await?;
        items.iter().map(from_item).collect()
    }

    /// Removes the instances of one installation of `module` (a version alongside keeps its).
    pub async fn remove_all(&self, module: &ModuleName, of: Serving<'_>) -> Result<()> {
        let writes = self
            .list(module)
            .await?
            .iter()
            .filter(|instance| of.owns(instance))
            .map(|instance| Write::Delete {
                key: instance_key(module.as_str(), &instance.url),
                condition: Condition::Always,
            })
            .collect();
        let stale = Stale::Module(module.to_string());
        self.changes.commit(Change::new(writes).stale(stale)).await
    }

    /// Checks every instance of every installed module once, recording changes of health.
    /// An instance unhealthy for [`FORGET_UNHEALTHY_AFTER`] while another instance of its
    /// module is healthy is removed (a replaced task); a module's last instances are kept.
    pub async fn check_health(&self) -> Result<usize> {
        let mut changed = 0;
        for module in self.installations.installed_index().await?.into_keys() {
            let Ok(module) = ModuleName::parse(&module) else {
                continue;
            };
            let mut checked = Vec::new();
            for instance in self.list(&module).await? {
                let health = self.probe(&instance).await;
                if self.record(&module, &instance, health).await && health != instance.health {
                    changed += 1;
                    tracing::warn!(module = %module, url = %instance.url, ?health, "instance health changed");
                }
                checked.push((instance, health));
            }
            self.forget_replaced(&module, &checked).await;
        }
        Ok(changed)
    }

    async fn probe(&self, instance: &Instance) -> Health {
        let answer = self
            .reach
            .call(&Call::get(&instance.health_url, HEALTH_TIMEOUT))
            .await;
        if answer.is_ok_and(|a| a.is_success()) {
            Health::Healthy
        } else {
            Health::Unhealthy
        }
    }

    /// Records a check's result; false when the instance was removed meanwhile.
    async fn record(&self, module: &ModuleName, instance: &Instance, health: Health) -> bool {
        let checked_at = now();
        let since = match (health, &instance.unhealthy_since) {
            (Health::Healthy, _) => serde_json::Value::Null,
            (Health::Unhealthy, Some(since)) => serde_json::Value::String(since.clone()),
            (Health::Unhealthy, None) => serde_json::Value::String(checked_at.clone()),
        };
        let update = Update::default()
            .set("health", serde_json::to_value(health).unwrap_or_default())
            .set("last_checked", serde_json::Value::String(checked_at))
            .set("unhealthy_since", since);
        let key = instance_key(module.as_str(), &instance.url);
        let stale = (health != instance.health).then(|| Stale::Module(module.to_string()));
        self.changes
            .observe(&key, update, Condition::Exists, stale)
            .await
            .is_ok()
    }

    async fn forget_replaced(&self, module: &ModuleName, checked: &[(Instance, Health)]) {
        if !checked.iter().any(|(_, health)| *health == Health::Healthy) {
            return;
        }
        let long_ago = time::OffsetDateTime::now_utc() - FORGET_UNHEALTHY_AFTER;
        let forgotten: Vec<Write> = checked
            .iter()
            .filter(|(instance, health)| {
                *health == Health::Unhealthy
                    && instance
                        .unhealthy_since
                        .as_deref()
                        .and_then(|since| {
                            time::OffsetDateTime::parse(
                                since,
                                &time::format_description::well_known::Rfc3339,
                            )
                            .ok()
                        })
                        .is_some_and(|since| since < long_ago)
            })
            .map(|(instance, _)| Write::Delete {
                key: instance_key(module.as_str(), &instance.url),
                condition: Condition::Always,
            })
            .collect();
        if forgotten.is_empty() {
            return;
        }
        tracing::info!(module = %module, count = forgotten.len(), "forgetting instances unhealthy for long");
        let stale = Stale::Module(module.to_string());
        if let Err(e) = self
            .changes
            .commit(Change::new(forgotten).stale(stale))
            .await
        {
            tracing::warn!(module = %module, error = %e.chain(), "cannot forget unhealthy instances");
        }
    }

    /// Checks health every `every` until the process ends.
    pub async fn run_health_checker(self: std::sync::Arc<Self>, every: Duration) {
        loop {
            if let Err(e) = self.check_health().await {
                tracing::error!(error = %e.chain(), "health check failed");
            }
            tokio::time::sleep(every).await;
        }
    }
}
