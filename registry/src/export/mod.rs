//! Exports of a tenant's rows of a module's declared tables (docs/operations.md, "Export and
//! retention"): one JSON Lines file per table (each line a row as stored, in key order) and a
//! `manifest.json` with each file's row count and SHA-256, written to the bundle store under
//! `exports/{module}/{tenant}/{id}/` — a folder of the data directory on one machine, the
//! bundle bucket on AWS, where the answer carries pre-signed links.
//!
//! The rows are read through the [`TableProvisioner`] port: the redb file on one machine, a
//! Query per partition of the tenant on DynamoDB. An export is made before anything is
//! dropped; when it fails, the operation that asked for it stops and says why.

pub mod tenant_drops;

use std::sync::Arc;
use std::time::Duration;

use plinth_module_sdk::Manifest;
use serde::{Deserialize, Serialize};

use crate::bundles::BundleStore;
use crate::clock::now;
use crate::deploy::{DeployError, TableProvisioner, TenantPartitions};
use crate::error::{Error, Result};
use crate::hash::sha256_hex;
use crate::ids::TenantId;
use crate::store::Store;
use crate::tenancy::Tenancy;

/// Days kept data stays when neither the request nor the platform says.
pub const DEFAULT_RETENTION_DAYS: u32 = 30;
/// The longest retention a request may ask for (ten years).
pub const MAX_RETENTION_DAYS: u32 = 3650;

/// The platform's retention from `PLINTH_DATA_RETENTION_DAYS`: whole days, 1 to 3650.
///
/// # Errors
/// A message naming the variable.
pub fn parse_retention_days(text: &str) -> std::result::Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(days) if (1..=MAX_RETENTION_DAYS).contains(&days) => Ok(days),
        _ => Err(format!(
            "PLINTH_DATA_RETENTION_DAYS is `{text}`, not a number of days from 1 to {MAX_RETENTION_DAYS}"
        )),
    }
}

/// RFC 3339 of `days` days from now (when kept data is dropped).
#[must_use]
pub fn days_from_now(days: u32) -> String {
    let at = time::OffsetDateTime::now_utc() + time::Duration::days(i64::from(days));
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// How long an export's pre-signed links work (S3's longest for a signed GET is 7 days).
pub const LINK_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// One table of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportedTable {
    /// The declared table's name; its file is `{name}.jsonl`.
    pub name: String,
    /// Lines in the file: the tenant's rows.
    pub rows: u64,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
    /// The file's key in the bundle store (`exports/{module}/{tenant}/{id}/{name}.jsonl`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// A link that reads the file without credentials for 7 days (S3); none from a folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// A made export: what `manifest.json` holds, and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Export {
    /// `{yyyymmddThhmmssZ}-{8 hex}`: in time order, and unique.
    pub id: String,
    pub module: String,
    pub version: String,
    pub tenant: String,
    pub created_at: String,
    pub tables: Vec<ExportedTable>,
    /// The folder of the export in the bundle store: `exports/{module}/{tenant}/{id}/`
    /// (on one machine, under the data directory).
    pub location: String,
    /// A link to `manifest.json` (S3, 7 days); none from a folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_link: Option<String>,
}

/// The `manifest.json` of an export: the same, without the links.
#[derive(Debug, Serialize)]
struct ManifestFile<'a> {
    module: &'a str,
    version: &'a str,
    tenant: &'a str,
    created_at: &'a str,
    tables: Vec<ManifestTable<'a>>,
}

#[derive(Debug, Serialize)]
struct ManifestTable<'a> {
    name: &'a str,
    rows: u64,
    sha256: &'a str,
}

/// A table's row count, for an impact report; `rows` is `None` when they could not be read
/// (`unreadable` says why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TableRows {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

/// Makes exports and counts rows.
#[derive(Debug)]
pub struct Exports {
    tables: Arc<dyn TableProvisioner>,
    bundles: Arc<dyn BundleStore>,
    tenancy: Arc<Tenancy>,
    store: Arc<dyn Store>,
    /// `PLINTH_DATA_RETENTION_DAYS`; `None`: [`DEFAULT_RETENTION_DAYS`].
    retention_days: Option<u32>,
}

/// The tables a manifest declares, by name.
#[must_use]
pub fn declared_tables(manifest: &Manifest) -> Vec<String> {
    manifest
        .database
        .as_ref()
        .map(|db| db.tables.iter().map(|t| t.name.clone()).collect())
        .unwrap_or_default()
}

/// A failure to read a module's tables, as the operation that needed them answers it: a file
/// its running backend holds is a conflict of state, anything else the backend's failure.
pub fn unreadable(module: &str, e: &DeployError) -> Error {
    let detail = format!("the export of {module} failed, and nothing was dropped: {e}");
    if e.0.contains("held open by its running backend") {
        Error::Conflict(detail)
    } else {
        Error::BadGateway(detail)
    }
}

fn export_id() -> String {
    let at = time::OffsetDateTime::now_utc();
    let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{suffix}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

impl Exports {
    pub fn new(
        tables: Arc<dyn TableProvisioner>,
        bundles: Arc<dyn BundleStore>,
        tenancy: Arc<Tenancy>,
        store: Arc<dyn Store>,
    ) -> Self {
        Self {
            tables,
            bundles,
            tenancy,
            store,
            retention_days: None,
        }
    }

    /// Kept data stays `days` (the platform's setting) unless a request says otherwise.
    #[must_use]
    pub fn with_retention_days(mut self, days: Option<u32>) -> Self {
        self.retention_days = days;
        self
    }

    /// Days kept data stays when a request names none.
    #[must_use]
    pub fn retention_days(&self) -> Option<u32> {
        self.retention_days
    }

    /// The partitions of `tenant`'s rows: its own and its companies'.
    pub async fn partitions(&self, tenant: &TenantId) -> Result<TenantPartitions> {
        let companies = self.tenancy.companies(tenant).await?;
        Ok(TenantPartitions {
            tenant: tenant.to_string(),
            companies: companies.into_iter().map(|c| c.id.to_string()).collect(),
        })
    }

    /// Exports `tenant`'s rows of every table `manifest` declares. Every file is written
    /// before the manifest, so a manifest names only files that are there.
    ///
    /// # Errors
    /// 409 when the tables are held by a running backend (one machine), 502 when they or the
    /// bundle store cannot be read or written.
    pub async fn export(&self, manifest: &Manifest, tenant: &TenantId) -> Result<Export> {
        let read = self.read(manifest, tenant).await?;
        self.write(manifest, tenant, read).await
    }

    /// [`Exports::export`], only when the tenant has rows (an uninstall exports every tenant
    /// that has).
    ///
    /// # Errors
    /// As [`Exports::export`].
    pub async fn export_if_any(
        &self,
        manifest: &Manifest,
        tenant: &TenantId,
    ) -> Result<Option<Export>> {
        let read = self.read(manifest, tenant).await?;
        if read.iter().all(|(_, rows)| rows.is_empty()) {
            return Ok(None);
        }
        self.write(manifest, tenant, read).await.map(Some)
    }

    /// Every table's rows of `tenant`, all read before anything is written.
    async fn read(
        &self,
        manifest: &Manifest,
        tenant: &TenantId,
    ) -> Result<Vec<(String, Vec<serde_json::Value>)>> {
        let partitions = self.partitions(tenant).await?;
        let mut read = Vec::new();
        for name in declared_tables(manifest) {
            let rows = self
                .tables
                .tenant_rows(manifest, &name, &partitions)
                .await
                .map_err(|e| unreadable(manifest.name.as_str(), &e))?;
            read.push((name, rows));
        }
        Ok(read)
    }

    async fn write(
        &self,
        manifest: &Manifest,
        tenant: &TenantId,
        read: Vec<(String, Vec<serde_json::Value>)>,
    ) -> Result<Export> {
        let module = manifest.name.to_string();
        let id = export_id();
        let location = format!("exports/{module}/{tenant}/{id}/");
        let mut tables = Vec::new();
        for (name, rows) in read {
            let mut body = Vec::new();
            for row in &rows {
                serde_json::to_writer(&mut body, row)
                    .map_err(|e| Error::internal_because("a row is not JSON", e))?;
                body.push(b'\n');
            }
            let key = format!("{location}{name}.jsonl");
            let sha256 = sha256_hex(&body);
            self.put(&module, &key, body, "application/x-ndjson")
                .await?;
            tables.push(ExportedTable {
                link: self.link(&key).await,
                name,
                rows: rows.len() as u64,
                sha256,
                key,
            });
        }
        let created_at = now();
        let version = manifest.version.to_string();
        let file = ManifestFile {
            module: &module,
            version: &version,
            tenant: tenant.as_str(),
            created_at: &created_at,
            tables: tables
                .iter()
                .map(|t| ManifestTable {
                    name: &t.name,
                    rows: t.rows,
                    sha256: &t.sha256,
                })
                .collect(),
        };
        let body = serde_json::to_vec_pretty(&file)
            .map_err(|e| Error::internal_because("the export's manifest", e))?;
        let manifest_key = format!("{location}manifest.json");
        self.put(&module, &manifest_key, body, "application/json")
            .await?;
        Ok(Export {
            manifest_link: self.link(&manifest_key).await,
            id,
            module,
            version,
            tenant: tenant.to_string(),
            created_at,
            tables,
            location,
        })
    }

    async fn put(&self, module: &str, key: &str, body: Vec<u8>, content_type: &str) -> Result<()> {
        self.bundles
            .put(key, body, content_type)
            .await
            .map_err(|e| match e {
                Error::Invalid { .. } => Error::Conflict(format!(
                    "the export of {module} failed, and nothing was dropped: this platform \
                     keeps no export files (on AWS, PLINTH_BUNDLES_BUCKET is unset)"
                )),
                e => Error::BadGateway(format!(
                    "the export of {module} failed, and nothing was dropped: writing {key}: {}",
                    e.chain()
                )),
            })
    }

    /// A pre-signed link, when the store gives one; a link that cannot be made is left out
    /// (the file is written, its key is in the answer).
    async fn link(&self, key: &str) -> Option<String> {
        match self.bundles.presigned_get(key, LINK_LIFETIME).await {
            Ok(link) => link,
            Err(e) => {
                tracing::warn!(key, error = %e.chain(), "no pre-signed link for an export file");
                None
            }
        }
    }

    /// Each declared table's rows: `tenant`'s, or every tenant's. A table that cannot be read
    /// is listed with why (an impact report says what it knows).
    pub async fn count(&self, manifest: &Manifest, tenant: Option<&TenantId>) -> Vec<TableRows> {
        let partitions = match tenant {
            Some(tenant) => match self.partitions(tenant).await {
                Ok(p) => Some(p),
                Err(e) => {
                    return declared_tables(manifest)
                        .into_iter()
                        .map(|name| TableRows {
                            name,
                            rows: None,
                            unreadable: Some(e.to_string()),
                        })
                        .collect();
                }
            },
            None => None,
        };
        let mut counts = Vec::new();
        for name in declared_tables(manifest) {
            let counted = self
                .tables
                .count_rows(manifest, &name, partitions.as_ref())
                .await;
            counts.push(match counted {
                Ok(rows) => TableRows {
                    name,
                    rows: Some(rows),
                    unreadable: None,
                },
                Err(e) => TableRows {
                    name,
                    rows: None,
                    unreadable: Some(e.0),
                },
            });
        }
        counts
    }

    /// Deletes `tenant`'s rows of every declared table; returns how many went.
    ///
    /// # Errors
    /// As [`Exports::export`].
    pub async fn delete_tenant_rows(&self, manifest: &Manifest, tenant: &TenantId) -> Result<u64> {
        let partitions = self.partitions(tenant).await?;
        let mut deleted = 0;
        for name in declared_tables(manifest) {
            deleted += self
                .tables
                .delete_tenant_rows(manifest, &name, &partitions)
                .await
                .map_err(|e| unreadable(manifest.name.as_str(), &e))?;
        }
        Ok(deleted)
    }

    /// Every tenant of the platform (an uninstall exports each one's rows).
    pub async fn tenants(&self) -> Result<Vec<TenantId>> {
        let tenants = self.tenancy.listed().await?;
        Ok(tenants.into_iter().map(|t| t.id).collect())
    }
}
