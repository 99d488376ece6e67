//! Tenant-scoped data: a module's own declared tables (`database.tables` of its manifest),
//! reached only through a handle bound to the tenant (and company) of a verified context.
//!
//! **The key scheme.** Whatever a table's partition key is called, its value is chosen by the
//! handle, never by the module: `{tenant}` for a tenant's rows ([`TenantData::table`]),
//! `{tenant}#{company}` for a company's ([`TenantData::company_table`]). Tenant and company
//! ids hold no `#` (the platform parses them), so one tenant's partitions are exactly
//! `{tenant}` and `{tenant}#…`. The module chooses only the sort key. An item whose partition
//! key attribute names anything else is refused ([`DataError::ForeignKey`]), and every call
//! is checked once more just before it reaches the backend.
//!
//! **Backends**, behind [`Backend`]: an embedded file per module under `plinth up`
//! (`PLINTH_TABLES_DIR`, [`embedded`]) and DynamoDB on AWS (feature `dynamodb`), where each
//! tenant's calls run with credentials of the module's own role narrowed by a session policy
//! to that tenant's partitions (`dynamodb:LeadingKeys`): so the handle's calls cannot cross
//! tenants even where its own checks would fail. Code that goes around the handle with the
//! process's own credentials reaches all of the module's tables: the module is trusted to use
//! the handle. `docs/data.md` tells the whole story.
//!
//! ```
//! use plinth_module_sdk::data::Tables;
//! use plinth_module_sdk::{Manifest, TenantContext};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let manifest = Manifest::from_json_str(r#"{"name": "hr", "display_name": "HR",
//!     "version": "0.1.0", "backend": {"type": "microservice", "api_prefix": "/api/v1/hr"},
//!     "database": {"type": "dynamodb", "tables": [
//!         {"name": "hr_people", "partition_key": "tenant_id", "sort_key": "person_id"}]}}"#)
//!     .unwrap();
//! let tables = Tables::in_memory(&manifest).unwrap();
//! let ctx = TenantContext {
//!     tenant_id: "acme".into(), company_id: Some("acme-de".into()), user_id: "ann".into(),
//!     permissions: vec![], config_version: String::new(), calling_module: None,
//! };
//! let people = tables.for_context(&ctx).company_table("hr_people").unwrap();
//! people.put("ann", &json!({"name": "Ann"})).await.unwrap();
//! let ann: serde_json::Value = people.get("ann").await.unwrap().unwrap();
//! assert_eq!(ann, json!({"person_id": "ann", "name": "Ann"}));
//! # }
//! ```

mod backend;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
pub mod embedded;
mod handle;
mod key;
#[cfg(feature = "dynamodb")]
pub mod session_policy;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

pub use backend::{Backend, Item};
pub use handle::{Table, TenantData};
pub use key::{ItemKey, KeyKind, Range, SortKey, TableSpec, partition_of, tenant_prefixes};

use crate::runtime::SetupError;
use crate::{ApiError, Manifest, ModuleName, TenantContext};

/// `PLINTH_TABLES_DIR`: the folder where the embedded backend keeps `{module}.redb` (set by
/// `plinth up`, under its data directory).
pub const TABLES_DIR_VARIABLE: &str = "PLINTH_TABLES_DIR";

/// `PLINTH_MODULE_ROLE_ARN`: the module's own role (set by the installer on AWS), assumed per
/// tenant with a session policy narrowing it to the tenant's partitions.
pub const ROLE_ARN_VARIABLE: &str = "PLINTH_MODULE_ROLE_ARN";

/// Why a data call was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// The table is not one of the module's declared tables.
    #[error("table `{0}` is not declared in this module's manifest (database.tables)")]
    UndeclaredTable(String),
    /// A company table was asked for without a company in the context.
    #[error("table `{0}` is kept per company, and the context has no company_id")]
    NoCompany(String),
    /// A key or item that names another tenant's (or company's) partition.
    #[error(
        "refused: `{attribute}` = `{found}` is not a partition of tenant `{tenant}` (this \
         handle reads and writes `{expected}` only)"
    )]
    ForeignKey {
        /// The partition key attribute.
        attribute: String,
        /// What the item or key named.
        found: String,
        /// The handle's tenant.
        tenant: String,
        /// The handle's partition.
        expected: String,
    },
    /// A malformed key, id or table definition.
    #[error("{0}")]
    BadKey(String),
    /// An item that is not a JSON object, or does not fit the type asked for.
    #[error("{0}")]
    BadItem(String),
    /// The backend failed.
    #[error("{0}")]
    Backend(String),
}

impl From<DataError> for ApiError {
    fn from(error: DataError) -> Self {
        match error {
            DataError::NoCompany(_) => ApiError::bad_request(format!(
                "this route works on one company: call it with a company selected ({error})"
            )),
            // What the backend said (account, role, table, path) is for the module's log, not
            // for its callers.
            DataError::Backend(detail) => {
                tracing::error!(%detail, "the module's tables failed");
                ApiError::bad_gateway("the module's tables are unavailable; try again shortly")
            }
            _ => ApiError::internal(error.to_string()),
        }
    }
}

/// The module's declared tables on one backend; [`Tables::for_context`] binds them to a
/// tenant. Clones share the backend.
#[derive(Debug, Clone)]
pub struct Tables {
    specs: Arc<HashMap<String, Arc<TableSpec>>>,
    problems: Arc<HashMap<String, String>>,
    backend: Arc<dyn Backend>,
}

impl Tables {
    /// The tables of `manifest` on `backend`.
    ///
    /// # Errors
    /// A [`SetupError`] when the manifest declares no `dynamodb` tables.
    pub fn new(manifest: &Manifest, backend: Arc<dyn Backend>) -> Result<Self, SetupError> {
        let mut specs = HashMap::new();
        let mut problems = HashMap::new();
        for table in manifest
            .database
            .iter()
            .filter(|d| d.is_dynamodb())
            .flat_map(|d| d.tables.iter())
        {
            match TableSpec::from_manifest(table) {
                Ok(spec) => {
                    specs.insert(table.name.clone(), Arc::new(spec));
                }
                Err(problem) => {
                    problems.insert(table.name.clone(), problem);
                }
            }
        }
        if specs.is_empty() && problems.is_empty() {
            return Err(SetupError(format!(
                "module `{}` declares no dynamodb tables (database.tables): it has no data handle",
                manifest.name
            )));
        }
        Ok(Self {
            specs: Arc::new(specs),
            problems: Arc::new(problems),
            backend,
        })
    }

    /// The tables in a file of their own, `{dir}/{module}.redb` (created when missing).
    ///
    /// # Errors
    /// A [`SetupError`] naming the file when it cannot be opened.
    pub fn embedded(manifest: &Manifest, dir: &Path) -> Result<Self, SetupError> {
        let backend = embedded::EmbeddedTables::open_for(&manifest.name, dir)
            .map_err(|e| SetupError(e.to_string()))?;
        Self::new(manifest, Arc::new(backend))
    }

    /// The tables in memory, gone with the process: for tests.
    ///
    /// # Errors
    /// A [`SetupError`] as [`Tables::new`].
    pub fn in_memory(manifest: &Manifest) -> Result<Self, SetupError> {
        let backend =
            embedded::EmbeddedTables::in_memory().map_err(|e| SetupError(e.to_string()))?;
        Self::new(manifest, Arc::new(backend))
    }

    /// The backend the environment names: the embedded file under `PLINTH_TABLES_DIR` when it
    /// is set (`plinth up`); else DynamoDB with the AWS configuration of the environment
    /// (`AWS_ENDPOINT_URL` honoured), assuming `PLINTH_MODULE_ROLE_ARN` per tenant when set.
    ///
    /// # Errors
    /// A [`SetupError`] when the file cannot be opened, or neither backend is available (no
    /// `PLINTH_TABLES_DIR` in a build without the `dynamodb` feature).
    pub async fn from_env(manifest: &Manifest) -> Result<Self, SetupError> {
        Self::from_vars(manifest, |name| std::env::var(name).ok()).await
    }

    /// As [`Tables::from_env`], with the variables read from `var`.
    ///
    /// # Errors
    /// As [`Tables::from_env`].
    pub async fn from_vars(
        manifest: &Manifest,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SetupError> {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if let Some(dir) = set(TABLES_DIR_VARIABLE) {
            return Self::embedded(manifest, Path::new(&dir));
        }
        Self::aws(manifest, set(ROLE_ARN_VARIABLE)).await
    }

    #[cfg(feature = "dynamodb")]
    #[allow(clippy::unused_async)] // Async without the feature's lazy backend too.
    async fn aws(manifest: &Manifest, role_arn: Option<String>) -> Result<Self, SetupError> {
        let backend = dynamodb::DynamoTables::lazy(role_arn);
        Self::new(manifest, Arc::new(backend))
    }

    #[cfg(not(feature = "dynamodb"))]
    async fn aws(manifest: &Manifest, _role_arn: Option<String>) -> Result<Self, SetupError> {
        Err(SetupError(format!(
            "{TABLES_DIR_VARIABLE} is not set and this build of module `{}` has no DynamoDB \
             backend: set {TABLES_DIR_VARIABLE} (plinth up does), or enable \
             plinth-module-sdk's `dynamodb` feature",
            manifest.name
        )))
    }

    /// The tables bound to the tenant and company of a verified context.
    #[must_use]
    pub fn for_context(&self, ctx: &TenantContext) -> TenantData {
        TenantData::new(self.clone(), &ctx.tenant_id, ctx.company_id.as_deref())
    }

    /// The tables bound to `tenant` (and `company`) as the platform names them in a hook call
    /// or an event delivery.
    #[must_use]
    pub fn for_tenant(&self, tenant: &str, company: Option<&str>) -> TenantData {
        TenantData::new(self.clone(), tenant, company)
    }

    fn spec(&self, name: &str) -> Result<Arc<TableSpec>, DataError> {
        if let Some(problem) = self.problems.get(name) {
            return Err(DataError::BadKey(problem.clone()));
        }
        self.specs
            .get(name)
            .cloned()
            .ok_or_else(|| DataError::UndeclaredTable(name.to_owned()))
    }
}

/// The file the embedded backend keeps a module's tables in: `{dir}/{module}.redb`.
#[must_use]
pub fn embedded_file(dir: &Path, module: &ModuleName) -> std::path::PathBuf {
    dir.join(format!("{module}.redb"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Review finding: a backend's failure (an AWS error names the account, the role, the
    /// session and the table; a local one a path) reached the caller as the 502's detail.
    #[test]
    fn a_backend_failure_tells_the_caller_nothing_of_the_backend() {
        let error = DataError::Backend(
            "AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/plinth-module-financial/plinth-acme is not authorized (table financial_invoices)".into(),
        );
        let answer = ApiError::from(error);
        assert_eq!(answer.status(), http::StatusCode::BAD_GATEWAY);
        assert!(
            !answer.detail().contains("123456789012"),
            "{}",
            answer.detail()
        );
        assert!(
            !answer.detail().contains("financial_invoices"),
            "{}",
            answer.detail()
        );
    }
}
