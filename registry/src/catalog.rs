//! The module catalog: published versions (immutable) and the marketplace listing; what a
//! pushed image does to them is in [`pushed`]; a version's UI bundle, stored with it and read
//! back by the console, in [`bundle`].

mod bundle;
mod pushed;

pub use bundle::{Frontend, StoredFile};

pub use pushed::{IMAGE_REFUSED, PushOutcome, Refusal};

use plinth_module_sdk::{Manifest, ModuleName, Tier, validate_manifest};
use semver::Version;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use std::sync::Arc;

use crate::audit;
use crate::bundles::{Bundle, BundleStore, Upload};
use crate::changes::{Change, Changes};
use crate::deploy::ecr::ImagePush;
use crate::error::{Error, Result, did_you_mean};
use crate::events::platform_event;
use crate::identity::Caller;
use crate::store::{Condition, Item, Query, Store, Write, from_item, keys, query_all, to_data};

/// A published version of a module.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModuleVersion {
    pub module: String,
    pub version: String,
    /// SHA-256 of the manifest as published; republishing must match it.
    pub digest: String,
    pub published_at: String,
    pub published_by: String,
    /// The ECR image digest recorded when the image was pushed, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    pub manifest: Value,
    /// The files of its UI bundle and their SHA-384, when it was published with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<Bundle>,
}

impl ModuleVersion {
    pub fn manifest(&self) -> Result<Manifest> {
        serde_json::from_value(self.manifest.clone())
            .map_err(|e| Error::internal_because("stored manifest unreadable", e))
    }
}

/// A module's marketplace entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub name: String,
    pub display_name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub subscription_tier: Tier,
    pub latest_version: String,
    pub versions: Vec<String>,
}

/// What `GET /api/v1/modules` filters on.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListFilter {
    pub category: Option<String>,
    pub tag: Option<String>,
    /// Modules a tenant of this tier may enable.
    pub tier: Option<String>,
}

/// The outcome of a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    Created,
    /// The same content was published before: nothing changed.
    AlreadyPublished,
}

pub(crate) fn digest(manifest: &Value) -> String {
    let bytes = serde_json::to_vec(manifest).unwrap_or_default();
    crate::hash::sha256_hex(&bytes)
}

/// Published versions (immutable) and the marketplace.
#[derive(Debug)]
pub struct Catalog {
    store: Arc<dyn Store>,
    changes: Arc<Changes>,
    bundles: Arc<dyn BundleStore>,
}

/// A version whose image digest was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedImage {
    pub module: String,
    pub version: String,
    pub image_digest: String,
}

impl Catalog {
    pub fn new(
        store: Arc<dyn Store>,
        changes: Arc<Changes>,
        bundles: Arc<dyn BundleStore>,
    ) -> Self {
        Self {
            store,
            changes,
            bundles,
        }
    }

    /// Publishes a version from its manifest document.
    pub async fn publish(
        &self,
        caller: &Caller,
        document: &Value,
    ) -> Result<(Published, ModuleVersion)> {
        self.publish_with_bundle(caller, document, None).await
    }

    /// Publishes a version from its manifest document and the files of its UI bundle (the
    /// manifest's `frontend.bundle` folder). The upload is checked before anything is stored;
    /// its files are stored before the version's record, which lists them.
    pub async fn publish_with_bundle(
        &self,
        caller: &Caller,
        document: &Value,
        upload: Option<&Upload>,
    ) -> Result<(Published, ModuleVersion)> {
        let manifest = validate_manifest(document).map_err(|problems| {
            Error::invalid(
                format!("the manifest has {} problem(s)", problems.len()),
                problems,
            )
        })?;
        let checked = upload
            .map(|upload| bundle::check(&manifest, upload))
            .transpose()?;
        let name = manifest.name.as_str();
        let entry_item = self.store.get(&keys::catalog_entry(name)).await?;
        match (&entry_item, caller) {
            (_, c) if c.is_platform_admin() => {}
            (Some(_), Caller::Module(module)) if module == &manifest.name => {}
            (None, _) => {
                return Err(Error::Forbidden(
                    "publishing a module's first version needs the platform:admin role".into(),
                ));
            }
            _ => {
                return Err(Error::Forbidden(format!(
                    "only platform admins and {name}'s own API key may publish {name}"
                )));
            }
        }
        if !caller.is_platform_admin() && self.newly_integrated(&manifest).await? {
            return Err(Error::Forbidden(format!(
                "frontend.type: `{}` runs {name}'s frontend inside the console's page, with the \
                 signed-in user's session; only a platform admin may publish the first version \
                 that does (a module's own key may publish later ones, or an `iframe`)",
                manifest.frontend.as_ref().map_or("", |f| f.kind.as_str())
            )));
        }
        let version_key = keys::module_version(name, &manifest.version.to_string());
        if let Some(existing) = self.store.get(&version_key).await? {
            let existing: ModuleVersion = from_item(&existing)?;
            let same_bundle = existing.bundle.as_ref().map(|b| &b.digest)
                == checked.as_ref().map(|c| &c.bundle.digest);
            if existing.digest == digest(document) && same_bundle {
                return Ok((Published::AlreadyPublished, existing));
            }
            return Err(Error::Conflict(immutable(&existing)));
        }
        let bundle = match checked {
            Some(checked) => Some(self.store_bundle(&manifest, checked).await?),
            None => None,
        };
        let published = self
            .write_version(
                &caller.actor(),
                document,
                &manifest,
                entry_item.as_ref(),
                None,
                bundle,
            )
            .await?;
        Ok((Published::Created, published))
    }

    /// Writes a new version (conditionally: it must not exist) and its catalog entry, audited,
    /// with `module.version.published` on the bus.
    async fn write_version(
        &self,
        publisher: &str,
        document: &Value,
        manifest: &Manifest,
        entry_item: Option<&Item>,
        image: Option<&ImagePush>,
        bundle: Option<Bundle>,
    ) -> Result<ModuleVersion> {
        let name = manifest.name.as_str();
        let version = manifest.version.to_string();
        let published = ModuleVersion {
            module: name.to_owned(),
            version: version.clone(),
            digest: digest(document),
            published_at: crate::clock::now(),
            published_by: publisher.to_owned(),
            image_digest: image.map(|push| push.digest.clone()),
            manifest: document.clone(),
            bundle,
        };
        let mut detail = json!({"version": version});
        if let Some(bundle) = &published.bundle {
            detail["bundle_digest"] = json!(bundle.digest);
        }
        if let Some(push) = image {
            detail["image_digest"] = json!(push.digest);
            detail["repository"] = json!(push.repository);
            detail["tag"] = json!(push.tag);
        }
        let (entry, entry_condition) = next_entry(entry_item, manifest)?;
        let writes = vec![
            Write::Put {
                item: Item::new(keys::module_version(name, &version), to_data(&published)),
                condition: Condition::Absent,
            },
            Write::Put {
                item: entry,
                condition: entry_condition,
            },
            audit::record(
                audit::PLATFORM_SCOPE,
                publisher,
                "module.version.published",
                &format!("module:{name}"),
                detail.clone(),
            ),
        ];
        detail["module"] = json!(name);
        let event = platform_event("module.version.published", detail);
        self.changes
            .commit(Change::new(writes).events([event]))
            .await?;
        Ok(published)
    }

    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<CatalogEntry>> {
        let tier = filter
            .tier
            .as_deref()
            .map(|t| Tier::parse(t).map_err(|e| Error::field("tier", e.to_string())))
            .transpose()?;
        let items = query_all(self.store.as_ref(), &Query::partition(keys::CATALOG)).await?;
        let mut entries = Vec::with_capacity(items.len());
        for item in &items {
            let entry: CatalogEntry = from_item(item)?;
            let category_ok = filter.category.as_ref().is_none_or(|c| {
                entry
                    .category
                    .as_ref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(c))
            });
            let tag_ok = filter.tag.as_ref().is_none_or(|t| entry.tags.contains(t));
            let tier_ok = tier.is_none_or(|t| entry.subscription_tier <= t);
            if category_ok && tag_ok && tier_ok {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    pub async fn entry(&self, module: &ModuleName) -> Result<CatalogEntry> {
        let item = self
            .store
            .get(&keys::catalog_entry(module.as_str()))
            .await?;
        match item {
            Some(item) => from_item(&item),
            None => Err(self.not_published(module.as_str()).await),
        }
    }

    /// `no module named {m} is published`, with the closest published name.
    pub async fn not_published(&self, module: &str) -> Error {
        let names = self.names().await.unwrap_or_default();
        let hint = did_you_mean(module, names.iter().map(String::as_str));
        Error::NotFound(format!("no module named {module} is published{hint}"))
    }

    /// The names of every published module.
    async fn names(&self) -> Result<Vec<String>> {
        let items = query_all(self.store.as_ref(), &Query::partition(keys::CATALOG)).await?;
        let entries = items.iter().map(from_item::<CatalogEntry>);
        entries.map(|e| e.map(|e| e.name)).collect()
    }

    /// Every published version, newest first.
    /// Whether `manifest` makes its module's frontend integrated (`spa-module`, `es-module`:
    /// run in the console's page) where no version published before was.
    async fn newly_integrated(&self, manifest: &Manifest) -> Result<bool> {
        let integrated = |kind: Option<&str>| matches!(kind, Some("spa-module" | "es-module"));
        if !integrated(manifest.frontend.as_ref().map(|f| f.kind.as_str())) {
            return Ok(false);
        }
        let query = Query::prefix(keys::module_partition(manifest.name.as_str()), "VERSION#");
        let before = query_all(self.store.as_ref(), &query).await?;
        for item in &before {
            let version: ModuleVersion = from_item(item)?;
            if integrated(version.manifest["frontend"]["type"].as_str()) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    pub async fn versions(&self, module: &ModuleName) -> Result<Vec<ModuleVersion>> {
        let query = Query::prefix(keys::module_partition(module.as_str()), "VERSION#");
        let items = query_all(self.store.as_ref(), &query).await?;
        if items.is_empty() {
            return Err(self.not_published(module.as_str()).await);
        }
        let mut versions = items
            .iter()
            .map(from_item::<ModuleVersion>)
            .collect::<Result<Vec<_>>>()?;
        versions.sort_by_key(|v| std::cmp::Reverse(semver_of(v)));
        Ok(versions)
    }

    pub async fn version(&self, module: &ModuleName, version: &str) -> Result<ModuleVersion> {
        let item = self
            .store
            .get(&keys::module_version(module.as_str(), version))
            .await?;
        if let Some(item) = item {
            return from_item(&item);
        }
        let published = self.versions(module).await?;
        let hint = did_you_mean(version, published.iter().map(|v| v.version.as_str()));
        Err(Error::NotFound(format!(
            "{module} has no published version {version}{hint}"
        )))
    }
}

fn semver_of(version: &ModuleVersion) -> Option<Version> {
    Version::parse(&version.version).ok()
}

fn immutable(existing: &ModuleVersion) -> String {
    format!(
        "{} {} is already published with other content; versions are immutable, publish a new \
         version",
        existing.module, existing.version
    )
}

/// The catalog entry after publishing `manifest`: the latest version's description wins.
fn next_entry(current: Option<&Item>, manifest: &Manifest) -> Result<(Item, Condition)> {
    let version = manifest.version.to_string();
    let mut versions = match current {
        Some(item) => from_item::<CatalogEntry>(item)?.versions,
        None => Vec::new(),
    };
    versions.push(version);
    versions.sort_by_key(|v| Version::parse(v).ok());
    let latest = versions.last().cloned().unwrap_or_default();
    let entry = CatalogEntry {
        name: manifest.name.to_string(),
        display_name: manifest.display_name.clone(),
        description: manifest.description.clone(),
        category: manifest.category.clone(),
        tags: manifest.tags.clone(),
        subscription_tier: manifest.subscription_tier,
        latest_version: latest.clone(),
        versions,
    };
    let is_latest = latest == manifest.version.to_string();
    match current {
        None => Ok((
            Item::new(keys::catalog_entry(&entry.name), to_data(&entry)),
            Condition::Absent,
        )),
        Some(item) => {
            let data = if is_latest {
                to_data(&entry)
            } else {
                let mut old: CatalogEntry = from_item(item)?;
                old.versions = entry.versions;
                to_data(&old)
            };
            let (next, condition) = item.next(data);
            Ok((next, condition))
        }
    }
}
