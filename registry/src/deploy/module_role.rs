//! Each module's own IAM role, `plinth-module-{module}`: what its ECS tasks and its Lambda
//! function run as, so that a module reaches only what is its own.
//!
//! The role trusts `ecs-tasks.amazonaws.com` and `lambda.amazonaws.com` and has one inline
//! policy, [`POLICY_NAME`], built by [`policy_document`] from the manifest. It names only:
//!
//! | statement | actions | resources |
//! | --- | --- | --- |
//! | `OwnTables` | DynamoDB item reads and writes, `DescribeTable` | each declared `dynamodb` table and its indexes, by exact name |
//! | `OwnTableStreams` | `DescribeStream`, `GetRecords`, `GetShardIterator` | those tables' streams |
//! | `OwnEventQueue` (microservices) | `ReceiveMessage`, `DeleteMessage`, `ChangeMessageVisibility`, `GetQueueAttributes` | `plinth-{module}-events` and `plinth-{module}-events-dlq` |
//! | `OwnEvents` | `events:PutEvents` | the platform's bus, on condition `events:source` = `plinth.module.{module}` |
//! | `OwnApiKey` | `secretsmanager:GetSecretValue` | the module's secret `plinth/module/{module}/api-key` |
//! | `OwnLogs` (Lambda) | `CreateLogGroup`, `CreateLogStream`, `PutLogEvents` | `/aws/lambda/plinth-{module}` |
//! | `OwnRolePerTenant` (with tables) | `sts:AssumeRole` | the role itself |
//!
//! The module's SDK assumes its own role once per tenant with a session policy narrowing it
//! to that tenant's partitions (`plinth_module_sdk::data`), so the trust policy also lets the
//! role assume itself ([`own_trust_policy`]); the role is created trusting the two services,
//! then given that trust once its ARN is known. Its ARN reaches the module as
//! `PLINTH_MODULE_ROLE_ARN`.
//!
//! Tables are named exactly rather than by `{schema prefix}*`: schema prefixes may nest (the
//! prefix `time_` of a module `time` is the start of `time_tracking_`, the prefix of a module
//! `time-tracking`), so a prefix wildcard could reach another module's tables.
//!
//! The role carries the tags `plinth:module` and, once a deployment runs as it,
//! `plinth:version`, the version that deployment serves: how
//! [`super::isolated::IsolatedDeployer`] tells the undeploy of the module's serving version
//! (the role goes with it) from the undeploy of an older one (the role stays).

use aws_config::SdkConfig;
use aws_sdk_iam::Client;
use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_sdk_iam::types::Tag;
use plinth_module_sdk::manifest::BackendKind;
use plinth_module_sdk::{Manifest, ModuleName, events::module_source};
use serde_json::{Value, json};

use super::DeployError;
use super::ecs::aws_error;
use super::lambda::LambdaDeployer;
use super::module_secrets::SecretsManagerKeys;

/// The name of the role's one inline policy.
pub const POLICY_NAME: &str = "plinth-module-access";
/// The tag naming the version whose deployment runs as the role.
pub const VERSION_TAG: &str = "plinth:version";
/// The tag naming the module a role belongs to.
pub const MODULE_TAG: &str = "plinth:module";

/// The role name of a module: `plinth-module-{module}` (at most 54 characters, since a module
/// name has at most 40; IAM allows 64).
#[must_use]
pub fn role_name(module: &ModuleName) -> String {
    format!("plinth-module-{module}")
}

/// The SQS queue an ECS module's events arrive in, and its dead-letter queue (the names
/// `events::eventbridge` gives them; a test holds the two together).
#[must_use]
pub fn queue_names(module: &ModuleName) -> [String; 2] {
    [
        format!("plinth-{module}-events"),
        format!("plinth-{module}-events-dlq"),
    ]
}

/// The trust policy of every module role.
#[must_use]
pub fn trust_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": ["ecs-tasks.amazonaws.com", "lambda.amazonaws.com"]},
            "Action": "sts:AssumeRole"
        }]
    })
}

/// The trust policy of a module role whose ARN is `role_arn`: the two services, and the role
/// itself (principal the account, on condition `aws:PrincipalArn` = the role: a principal
/// naming the role would be refused while IAM does not see the new role yet), so that the
/// module can assume it per tenant with a narrower session policy.
#[must_use]
pub fn own_trust_policy(role_arn: &str, account: &Account) -> Value {
    let mut policy = trust_policy();
    if let Some(statements) = policy["Statement"].as_array_mut() {
        statements.push(json!({
            "Sid": "ItselfPerTenant",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:{}:iam::{}:root", account.partition, account.id)},
            "Action": "sts:AssumeRole",
            "Condition": {"ArnEquals": {"aws:PrincipalArn": role_arn}}
        }));
    }
    policy
}

/// Where the module's resources live: what ARNs are built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// `aws`, `aws-cn`, `aws-us-gov`.
    pub partition: String,
    pub region: String,
    pub id: String,
}

impl Account {
    /// The partition and account of an ARN (a role's, say), in `region`.
    #[must_use]
    pub fn of_arn(arn: &str, region: &str) -> Option<Self> {
        let mut parts = arn.split(':');
        let (Some("arn"), Some(partition), _, _, Some(id)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        Some(Self {
            partition: partition.to_owned(),
            region: region.to_owned(),
            id: id.to_owned(),
        })
    }

    /// The ARN of role `name` in this account (IAM's ARNs name no region).
    #[must_use]
    pub fn role_arn(&self, name: &str) -> String {
        format!("arn:{}:iam::{}:role/{name}", self.partition, self.id)
    }

    fn arn(&self, service: &str, resource: &str) -> String {
        let Self {
            partition,
            region,
            id,
        } = self;
        format!("arn:{partition}:{service}:{region}:{id}:{resource}")
    }
}

/// The inline policy of the module's role: see the module's doc for what it names.
/// `event_bus` is the platform bus's name or ARN; `secret_arn` the module's secret, or, when
/// unknown, its name with the six characters Secrets Manager appends.
#[must_use]
pub fn policy_document(
    manifest: &Manifest,
    account: &Account,
    event_bus: &str,
    secret_arn: Option<&str>,
) -> Value {
    let module = &manifest.name;
    let mut statements = Vec::new();
    let tables: Vec<&str> = manifest
        .database
        .iter()
        .filter(|database| database.is_dynamodb())
        .flat_map(|database| database.tables.iter().map(|t| t.name.as_str()))
        .collect();
    if !tables.is_empty() {
        let table =
            |name: &str, tail: &str| account.arn("dynamodb", &format!("table/{name}{tail}"));
        let items: Vec<String> = tables
            .iter()
            .flat_map(|name| [table(name, ""), table(name, "/index/*")])
            .collect();
        let streams: Vec<String> = tables.iter().map(|name| table(name, "/stream/*")).collect();
        statements.push(json!({
            "Sid": "OwnTables",
            "Effect": "Allow",
            "Action": [
                "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem",
                "dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:GetItem",
                "dynamodb:PutItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:UpdateItem"
            ],
            "Resource": items
        }));
        statements.push(json!({
            "Sid": "OwnTableStreams",
            "Effect": "Allow",
            "Action": ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
            "Resource": streams
        }));
        statements.push(json!({
            "Sid": "OwnRolePerTenant",
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": account.role_arn(&role_name(module))
        }));
    }
    if manifest.backend.kind == BackendKind::Microservice {
        let queues: Vec<String> = queue_names(module)
            .iter()
            .map(|queue| account.arn("sqs", queue))
            .collect();
        statements.push(json!({
            "Sid": "OwnEventQueue",
            "Effect": "Allow",
            "Action": plinth_module_sdk::wire::EVENT_QUEUE_ACTIONS,
            "Resource": queues
        }));
    }
    let bus = if event_bus.starts_with("arn:") {
        event_bus.to_owned()
    } else {
        account.arn("events", &format!("event-bus/{event_bus}"))
    };
    statements.push(json!({
        "Sid": "OwnEvents",
        "Effect": "Allow",
        "Action": "events:PutEvents",
        "Resource": bus,
        "Condition": {"StringEquals": {"events:source": module_source(module)}}
    }));
    let secret = secret_arn.map_or_else(
        || {
            let name = SecretsManagerKeys::secret_name(module);
            account.arn("secretsmanager", &format!("secret:{name}-??????"))
        },
        String::from,
    );
    statements.push(json!({
        "Sid": "OwnApiKey",
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": secret
    }));
    if manifest.backend.kind == BackendKind::Lambda {
        let group = format!("/aws/lambda/{}", LambdaDeployer::function_name(module));
        statements.push(json!({
            "Sid": "OwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": account.arn("logs", &format!("log-group:{group}:*"))
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// A module role as [`ModuleRoles::ensure`] left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnsuredRole {
    pub arn: String,
    /// Whether this call created it (the module had no role before).
    pub created: bool,
}

/// Creates, tags and removes modules' roles.
#[derive(Debug, Clone)]
pub struct ModuleRoles {
    iam: Client,
    region: String,
    event_bus: String,
    boundary: Option<String>,
}

impl ModuleRoles {
    /// Roles whose policies allow `PutEvents` on `event_bus` (the platform bus's name or ARN).
    #[must_use]
    pub fn new(sdk: &SdkConfig, event_bus: impl Into<String>) -> Self {
        Self {
            iam: Client::new(sdk),
            region: sdk
                .region()
                .map_or_else(|| "us-east-1".into(), ToString::to_string),
            event_bus: event_bus.into(),
            boundary: None,
        }
    }

    /// Roles created with this permissions boundary (`PLINTH_MODULE_PERMISSIONS_BOUNDARY`: the
    /// most any module role may do; the stack lets the installer create roles only with it).
    #[must_use]
    pub fn with_boundary(mut self, boundary: Option<String>) -> Self {
        self.boundary = boundary;
        self
    }

    /// The role's ARN and tags; `None` when the module has no role.
    async fn get(
        &self,
        module: &ModuleName,
    ) -> Result<Option<aws_sdk_iam::types::Role>, DeployError> {
        let name = role_name(module);
        match self.iam.get_role().role_name(&name).send().await {
            Ok(found) => Ok(found.role),
            Err(e) if e.code() == Some("NoSuchEntity") => Ok(None),
            Err(e) => Err(aws_error(format!("reading role `{name}`"), &e)),
        }
    }

    /// Creates the module's role when it has none, then puts its inline policy (replacing the
    /// one there: the policy follows the manifest being deployed).
    ///
    /// # Errors
    /// A [`DeployError`] naming the role when IAM refuses.
    pub async fn ensure(
        &self,
        manifest: &Manifest,
        secret_arn: Option<&str>,
    ) -> Result<EnsuredRole, DeployError> {
        let module = &manifest.name;
        let name = role_name(module);
        let (arn, created) = match self.get(module).await? {
            Some(role) => {
                let bound = role
                    .permissions_boundary
                    .as_ref()
                    .and_then(|b| b.permissions_boundary_arn.clone());
                if self.boundary.is_some() && bound != self.boundary {
                    return Err(DeployError(format!(
                        "role `{name}` exists with another permissions boundary ({}): it belongs to \
                         another Plinth environment in this account, or was made by hand. Module \
                         resources are named without the stage, so run one environment per account \
                         and region",
                        bound.as_deref().unwrap_or("none")
                    )));
                }
                (role.arn, false)
            }
            None => (self.create(module).await?, true),
        };
        let account = Account::of_arn(&arn, &self.region)
            .ok_or_else(|| DeployError(format!("role `{name}` has an unreadable ARN `{arn}`")))?;
        self.iam
            .update_assume_role_policy()
            .role_name(&name)
            .policy_document(own_trust_policy(&arn, &account).to_string())
            .send()
            .await
            .map_err(|e| aws_error(format!("putting the trust policy of role `{name}`"), &e))?;
        let policy = policy_document(manifest, &account, &self.event_bus, secret_arn);
        self.iam
            .put_role_policy()
            .role_name(&name)
            .policy_name(POLICY_NAME)
            .policy_document(policy.to_string())
            .send()
            .await
            .map_err(|e| aws_error(format!("putting the policy of role `{name}`"), &e))?;
        Ok(EnsuredRole { arn, created })
    }

    async fn create(&self, module: &ModuleName) -> Result<String, DeployError> {
        let name = role_name(module);
        let tag = Tag::builder()
            .key(MODULE_TAG)
            .value(module.as_str())
            .build()
            .map_err(|e| DeployError(format!("tag of role `{name}`: {e}")))?;
        let created = self
            .iam
            .create_role()
            .role_name(&name)
            .assume_role_policy_document(trust_policy().to_string())
            .set_permissions_boundary(self.boundary.clone())
            .description(format!(
                "Plinth module {module}: its own tables, queue, events and API key"
            ))
            .tags(tag)
            .send()
            .await;
        match created {
            Ok(created) => created
                .role
                .map(|role| role.arn)
                .ok_or_else(|| DeployError(format!("IAM created `{name}` without a role"))),
            // Created since it was looked up (a retried deploy): use that one.
            Err(e) if e.code() == Some("EntityAlreadyExists") => self
                .get(module)
                .await?
                .map(|role| role.arn)
                .ok_or_else(|| DeployError(format!("role `{name}` exists and cannot be read"))),
            Err(e) => Err(aws_error(format!("creating role `{name}`"), &e)),
        }
    }

    /// The version whose deployment runs as the module's role: `None` when the module has no
    /// role, `Some(None)` when no deployment has run as it yet.
    ///
    /// # Errors
    /// A [`DeployError`] when IAM cannot be asked.
    pub async fn serving_version(
        &self,
        module: &ModuleName,
    ) -> Result<Option<Option<String>>, DeployError> {
        Ok(self.get(module).await?.map(|role| {
            role.tags()
                .iter()
                .find(|tag| tag.key() == VERSION_TAG)
                .map(|tag| tag.value().to_owned())
        }))
    }

    /// Records that a deployment of `version` runs as the module's role.
    ///
    /// # Errors
    /// A [`DeployError`] naming the role when IAM refuses.
    pub async fn mark_serving(
        &self,
        module: &ModuleName,
        version: &str,
    ) -> Result<(), DeployError> {
        let name = role_name(module);
        let tag = Tag::builder()
            .key(VERSION_TAG)
            .value(version)
            .build()
            .map_err(|e| DeployError(format!("tag of role `{name}`: {e}")))?;
        self.iam
            .tag_role()
            .role_name(&name)
            .tags(tag)
            .send()
            .await
            .map_err(|e| aws_error(format!("tagging role `{name}`"), &e))?;
        Ok(())
    }

    /// Deletes the role's inline policy, then the role. One that is gone is fine.
    ///
    /// # Errors
    /// A [`DeployError`] naming the role when IAM refuses (a policy attached by hand, say).
    pub async fn remove(&self, module: &ModuleName) -> Result<(), DeployError> {
        let name = role_name(module);
        let gone = |code: Option<&str>| code == Some("NoSuchEntity");
        if let Err(e) = self
            .iam
            .delete_role_policy()
            .role_name(&name)
            .policy_name(POLICY_NAME)
            .send()
            .await
            && !gone(e.code())
        {
            return Err(aws_error(
                format!("deleting the policy of role `{name}`"),
                &e,
            ));
        }
        match self.iam.delete_role().role_name(&name).send().await {
            Err(e) if !gone(e.code()) => Err(aws_error(format!("deleting role `{name}`"), &e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        Account::of_arn(
            "arn:aws:iam::123456789012:role/plinth-module-x",
            "eu-west-1",
        )
        .unwrap()
    }

    #[test]
    fn the_account_and_partition_come_from_the_role_arn() {
        assert_eq!(
            account(),
            Account {
                partition: "aws".into(),
                region: "eu-west-1".into(),
                id: "123456789012".into()
            }
        );
        assert_eq!(Account::of_arn("plinth-module-x", "eu-west-1"), None);
    }

    #[test]
    fn a_module_with_tables_may_assume_its_own_role_and_nothing_else() {
        let manifest = Manifest::from_json_str(
            &json!({
                "name": "billing", "display_name": "Billing", "version": "1.0.0",
                "backend": {"type": "lambda", "api_prefix": "/api/v1/billing", "image": "billing:1"},
                "database": {"type": "dynamodb", "tables": [
                    {"name": "billing_bills", "partition_key": "tenant_id", "sort_key": "bill_id"}]}
            })
            .to_string(),
        )
        .unwrap();
        let own = "arn:aws:iam::123456789012:role/plinth-module-billing";
        let policy = policy_document(&manifest, &account(), "plinth", None);
        let assume: Vec<&Value> = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["Action"] == "sts:AssumeRole")
            .collect();
        assert_eq!(assume.len(), 1);
        assert_eq!(assume[0]["Resource"], own);

        let trust = own_trust_policy(own, &account());
        let itself = &trust["Statement"][1];
        assert_eq!(itself["Principal"]["AWS"], "arn:aws:iam::123456789012:root");
        assert_eq!(itself["Condition"]["ArnEquals"]["aws:PrincipalArn"], own);
        assert_eq!(
            trust["Statement"][0],
            trust_policy()["Statement"][0],
            "the services stay"
        );
    }

    #[test]
    fn a_bus_given_by_arn_is_named_as_it_is() {
        let manifest = Manifest::from_json_str(
            &json!({
                "name": "billing", "display_name": "Billing", "version": "1.0.0",
                "backend": {"type": "lambda", "api_prefix": "/api/v1/billing", "image": "billing:1"}
            })
            .to_string(),
        )
        .unwrap();
        let bus = "arn:aws:events:eu-west-1:123456789012:event-bus/plinth";
        let policy = policy_document(&manifest, &account(), bus, None);
        let events = &policy["Statement"].as_array().unwrap()[0];
        assert_eq!(events["Resource"], bus);
        assert_eq!(
            events["Condition"]["StringEquals"]["events:source"],
            "plinth.module.billing"
        );
        let secret = &policy["Statement"][1]["Resource"];
        assert_eq!(
            secret,
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:plinth/module/billing/api-key-??????"
        );
        assert_eq!(
            policy["Statement"][2]["Resource"],
            "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/plinth-billing:*"
        );
    }
}
