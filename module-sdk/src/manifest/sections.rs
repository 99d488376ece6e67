//! The typed sections of a manifest: backend, frontend, database, dependencies, permissions,
//! routes, configuration, features, hooks and events.

use std::collections::BTreeMap;
use std::fmt;

use semver::VersionReq;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::problem::{JsonPath, Problems};
use super::schema::report_schema_errors;
use super::{ModuleName, Permission, PermissionGrant, Problem, RoutePath};

/// Where the module's source lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repository {
    /// Version control system, e.g. `git`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Clone URL.
    pub url: String,
    /// Branch releases are cut from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

/// Who makes and supports the module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Author {
    /// Person or company name.
    pub name: String,
    /// Support address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Home page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
}

/// How the module's backend runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// A long-running container: an ECS service from an ECR image.
    Microservice,
    /// An AWS Lambda function.
    Lambda,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Microservice => "microservice",
            BackendKind::Lambda => "lambda",
        })
    }
}

/// The module's API backend, reached through API Gateway under `api_prefix`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    /// `microservice` (ECS) or `lambda`.
    #[serde(rename = "type")]
    pub kind: BackendKind,
    /// Language runtime, e.g. `python:3.11` or `provided.al2023`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Web framework, informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework: Option<String>,
    /// Application entry point or Lambda handler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_point: Option<String>,
    /// Path of the health check on the backend, e.g. `/health`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<String>,
    /// Always `/api/v1/{name}`.
    pub api_prefix: String,
    /// Port the container listens on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Container image in ECR, `repository:tag` (or `repository@sha256:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// ECS CPU units (1024 = one vCPU); microservices only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    /// Memory in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u32>,
    /// Shell command `plinth up` runs to start the backend on a developer's machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev_command: Option<String>,
    /// Extra environment variables for the backend.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// The container health check's command, in ECS's form (`["CMD", "/app/bin", "health"]` or
    /// `["CMD-SHELL", "curl -f localhost:8000/health"]`); microservices only. By default the
    /// module's own binary checks itself: `["CMD", "/proc/1/exe", "health"]` (the SDK's
    /// `health` subcommand, for an image whose entrypoint is the module binary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_command: Option<Vec<String>>,
    /// How many tasks an ECS service may scale between; microservices only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<Scaling>,
    /// Concurrent executions reserved for (and capping) a Lambda module; lambdas only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_concurrency: Option<u32>,
}

/// Target-tracking autoscaling bounds of a microservice (the platform caps `max_tasks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scaling {
    /// Fewest running tasks (default 1).
    #[serde(default = "Scaling::default_min")]
    pub min_tasks: u32,
    /// Most running tasks.
    pub max_tasks: u32,
    /// Average CPU utilisation, in percent, the service is scaled to hold (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_cpu_percent: Option<u32>,
}

impl Scaling {
    fn default_min() -> u32 {
        1
    }
}

/// The module's UI bundle, loaded by the platform's web shell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Frontend {
    /// Kind of bundle, e.g. `spa-module`.
    #[serde(rename = "type")]
    pub kind: String,
    /// UI framework, informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework: Option<String>,
    /// Module entry file, e.g. `module.js`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_point: Option<String>,
    /// Built bundle path, e.g. `dist/financial.bundle.js`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
}

/// The module's data: `dynamodb` tables are created by the installer; other kinds (like the
/// seed's `postgresql`) are recorded for the operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// `dynamodb`, `postgresql`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// Prefix of every table name; defaults to the module name in snake case plus `_`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_prefix: Option<String>,
    /// Whether the module runs its own migrations.
    #[serde(default)]
    pub has_migrations: bool,
    /// Whether the module needs a database of its own.
    #[serde(default)]
    pub requires_separate_db: bool,
    /// The module's tables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<Table>,
}

impl Database {
    /// Whether the installer creates these tables in DynamoDB.
    #[must_use]
    pub fn is_dynamodb(&self) -> bool {
        self.kind == "dynamodb"
    }
}

/// A table: a bare name, or (required for DynamoDB) a name with its key schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, from = "TableRepr", into = "TableRepr")]
pub struct Table {
    /// Full table name, starting with the schema prefix.
    pub name: String,
    /// Partition (hash) key; absent when only the name was given.
    pub partition_key: Option<KeyAttribute>,
    /// Sort (range) key, if any.
    pub sort_key: Option<KeyAttribute>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum TableRepr {
    Name(String),
    Keyed {
        name: String,
        partition_key: KeyAttribute,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sort_key: Option<KeyAttribute>,
    },
}

impl From<TableRepr> for Table {
    fn from(repr: TableRepr) -> Self {
        match repr {
            TableRepr::Name(name) => Table {
                name,
                partition_key: None,
                sort_key: None,
            },
            TableRepr::Keyed {
                name,
                partition_key,
                sort_key,
            } => Table {
                name,
                partition_key: Some(partition_key),
                sort_key,
            },
        }
    }
}

impl From<Table> for TableRepr {
    fn from(table: Table) -> Self {
        match table.partition_key {
            None => TableRepr::Name(table.name),
            Some(partition_key) => TableRepr::Keyed {
                name: table.name,
                partition_key,
                sort_key: table.sort_key,
            },
        }
    }
}

/// A key attribute: written as a bare name (a string key) or `{"name", "type"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, from = "KeyAttributeRepr")]
pub struct KeyAttribute {
    /// Attribute name.
    pub name: String,
    /// Attribute type.
    #[serde(rename = "type")]
    pub kind: KeyType,
}

#[derive(Debug, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum KeyAttributeRepr {
    Name(String),
    Typed {
        name: String,
        #[serde(rename = "type")]
        kind: KeyType,
    },
}

impl From<KeyAttributeRepr> for KeyAttribute {
    fn from(repr: KeyAttributeRepr) -> Self {
        match repr {
            KeyAttributeRepr::Name(name) => KeyAttribute {
                name,
                kind: KeyType::S,
            },
            KeyAttributeRepr::Typed { name, kind } => KeyAttribute { name, kind },
        }
    }
}

/// DynamoDB key attribute types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyType {
    /// String.
    S,
    /// Number.
    N,
    /// Binary.
    B,
}

/// What the module needs from the platform and from other modules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dependencies {
    /// Which platform contract versions the module works with, e.g. `>=2.0.0`
    /// (checked against [`PLATFORM_VERSION`](crate::PLATFORM_VERSION)); absent means any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<VersionReq>,
    /// Modules that must be installed first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_modules: Vec<ModuleRequirement>,
    /// Modules used when present.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub optional_modules: Vec<ModuleName>,
    /// Services outside Plinth the module uses (informational), e.g. `redis`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_services: Vec<String>,
    /// The modules whose routes this one calls through the gateway with its API key, and with
    /// which of their permissions; the gateway refuses any other module-to-module call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<ModuleCall>,
}

impl Dependencies {
    /// What this module declares calling on `module`, if anything.
    #[must_use]
    pub fn call_to(&self, module: &str) -> Option<&ModuleCall> {
        self.calls
            .iter()
            .find(|call| call.module.as_str() == module)
    }
}

/// A module called through the gateway and the permissions the calls may use, e.g.
/// `{"module": "inventory", "permissions": ["inventory:stock.read"]}` (grants, so
/// `inventory:stock.*` works too). The module must be in `required_modules` or
/// `optional_modules`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleCall {
    /// The module called.
    pub module: ModuleName,
    /// The permissions of `module` the calls may use.
    pub permissions: Vec<PermissionGrant>,
}

/// A required module and the versions that will do; a bare name in JSON means any version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, from = "ModuleRequirementRepr")]
pub struct ModuleRequirement {
    /// The module required.
    pub name: ModuleName,
    /// Acceptable versions, e.g. `^1.2`.
    pub version: VersionReq,
}

#[derive(Debug, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum ModuleRequirementRepr {
    Name(ModuleName),
    Full {
        name: ModuleName,
        #[serde(default)]
        version: Option<VersionReq>,
    },
}

impl From<ModuleRequirementRepr> for ModuleRequirement {
    fn from(repr: ModuleRequirementRepr) -> Self {
        match repr {
            ModuleRequirementRepr::Name(name) => ModuleRequirement {
                name,
                version: VersionReq::STAR,
            },
            ModuleRequirementRepr::Full { name, version } => ModuleRequirement {
                name,
                version: version.unwrap_or(VersionReq::STAR),
            },
        }
    }
}

/// A permission the module declares; a bare code in JSON has no description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, from = "DeclaredPermissionRepr")]
pub struct DeclaredPermission {
    /// The permission, in the module's own namespace.
    pub code: Permission,
    /// What it allows, for admins assigning roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum DeclaredPermissionRepr {
    Code(Permission),
    Full {
        code: Permission,
        #[serde(default)]
        description: Option<String>,
    },
}

impl From<DeclaredPermissionRepr> for DeclaredPermission {
    fn from(repr: DeclaredPermissionRepr) -> Self {
        match repr {
            DeclaredPermissionRepr::Code(code) => DeclaredPermission {
                code,
                description: None,
            },
            DeclaredPermissionRepr::Full { code, description } => {
                DeclaredPermission { code, description }
            }
        }
    }
}

/// An HTTP method a route accepts; `ANY` stands for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `HEAD`
    Head,
    /// `OPTIONS`
    Options,
    /// Every method.
    Any,
}

impl Method {
    /// The method's name as the manifest spells it (`GET`, …, `ANY`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
            Method::Any => "ANY",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A route of the module's API, relative to its `api_prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Path below the prefix, e.g. `/invoices/{id}`.
    pub path: RoutePath,
    /// Methods the route accepts.
    pub methods: Vec<Method>,
    /// Permission a user needs; absent means any user of an enabled tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<Permission>,
}

/// The module's configuration: defaults, and the JSON Schema every tier's configuration must meet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Configuration {
    /// Module-level defaults, the lowest configuration tier.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub defaults: Map<String, Value>,
    /// JSON Schema of the resolved configuration; absent means anything goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
}

impl Configuration {
    /// Every way `config` (a resolved configuration: defaults with the tenant's and company's
    /// patches merged in) breaks the module's schema, with paths relative to the configuration
    /// (`$`, `tax_rate`). Nothing when the module has no schema.
    ///
    /// Builds a validator on each call: callers on a hot path keep their own.
    #[must_use]
    pub fn problems_in(&self, config: &Value) -> Vec<Problem> {
        let Some(schema) = &self.schema else {
            return Vec::new();
        };
        let mut problems = Problems::default();
        match jsonschema::validator_for(schema) {
            Ok(validator) => {
                report_schema_errors(&validator, schema, config, &JsonPath::root(), &mut problems);
            }
            Err(error) => problems.add(
                &JsonPath::root(),
                format!("the module's configuration schema is not usable: {error}"),
            ),
        }
        problems.into_sorted(config)
    }
}

/// A feature tenants and companies can switch on and off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    /// Feature name, e.g. `invoicing`.
    pub name: String,
    /// Whether it is on when nobody chose.
    pub default: bool,
    /// What it does, for admins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A lifecycle hook the platform calls on the module's backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hook {
    /// `pre_install`
    PreInstall,
    /// `post_install`
    PostInstall,
    /// `pre_uninstall`
    PreUninstall,
    /// `post_uninstall`
    PostUninstall,
    /// `pre_enable_tenant`
    PreEnableTenant,
    /// `post_enable_tenant`
    PostEnableTenant,
    /// `pre_disable_tenant`
    PreDisableTenant,
    /// `post_disable_tenant`
    PostDisableTenant,
    /// `pre_enable_company`
    PreEnableCompany,
    /// `post_enable_company`
    PostEnableCompany,
    /// `pre_disable_company`
    PreDisableCompany,
    /// `post_disable_company`
    PostDisableCompany,
}

impl Hook {
    /// Whether the hook runs before its transition and so may refuse it.
    #[must_use]
    pub fn can_refuse(self) -> bool {
        matches!(
            self,
            Hook::PreInstall
                | Hook::PreUninstall
                | Hook::PreEnableTenant
                | Hook::PreDisableTenant
                | Hook::PreEnableCompany
                | Hook::PreDisableCompany
        )
    }
}

/// The events a module publishes and subscribes to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Events {
    /// Detail-types the module publishes, each starting with `{name}.`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publishes: Vec<String>,
    /// Events delivered to the module's backend.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribes: Vec<Subscription>,
}

/// A subscription: events matching `pattern` are posted to `path` on the backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    /// Subscription name, unique within the module.
    pub name: String,
    /// EventBridge event pattern.
    pub pattern: Map<String, Value>,
    /// Path on the backend that receives matching events.
    pub path: String,
}
