//! Routing each tenant to its own version of a module on AWS: the platform's internal
//! Application Load Balancer behind the VPC link, one target group and one listener rule per
//! installed version.
//!
//! With a listener (`PLINTH_MODULE_LISTENER_ARN`), a module's API Gateway integration is
//! `HTTP_PROXY` over the VPC link to the listener, setting `X-Plinth-Version` from the
//! authorizer's `version` (the tenant's pin, else the module's default: every allowed request
//! has one). For each installed version (the first installation and each alongside)
//! [`VersionListener::route`] keeps:
//!
//! - a target group named after the deployment (`plinth-{m}`, `plinth-{m}-v1-3-0`; cut and
//!   hashed past 32 characters): an ECS deployment's service registers its tasks into it
//!   (target type `ip`, the backend's port, the service's `loadBalancers`); a Lambda
//!   deployment's function is its one target (target type `lambda`, with the function's
//!   permission for Elastic Load Balancing to invoke it from that target group);
//! - a rule: path `{api_prefix}` or `{api_prefix}/*` and `X-Plinth-Version` = the version →
//!   forward to the target group, at a priority probed from one derived from the deployment.
//!
//! Both are tagged `plinth:module`, `plinth:deployment`, `plinth:version`: a retry finds them
//! by their tags and name and creates no second one. [`VersionListener::unroute`] deletes the
//! rule, then the target group. A new pin or default changes no rule: the header changes.

mod plan;

use std::collections::BTreeSet;

use aws_config::SdkConfig;
use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, HttpHeaderConditionConfig, PathPatternConditionConfig, ProtocolEnum,
    Rule, RuleCondition, Tag, TargetDescription, TargetGroup, TargetTypeEnum,
};
use plinth_module_sdk::Manifest;

use super::ecs::{DEFAULT_PORT, EcsHandle, aws_error};
use super::{DeployError, Deployment};

pub use plan::{
    AUTHORIZER_VERSION, DEPLOYMENT_TAG, MODULE_TAG, VERSION_HEADER, VERSION_PARAMETER, VERSION_TAG,
    VersionRoute, target_group_name,
};

/// The listener module versions are routed on (`PLINTH_MODULE_LISTENER_ARN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSettings {
    pub listener_arn: String,
}

impl ListenerSettings {
    /// `PLINTH_MODULE_LISTENER_ARN`; `None` when unset (each module is routed to its first
    /// installation only: pins take effect on one machine only).
    #[must_use]
    pub fn from_env() -> Option<Self> {
        std::env::var("PLINTH_MODULE_LISTENER_ARN")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|listener_arn| Self { listener_arn })
    }
}

/// The module listener's rules and target groups, one of each per installed version.
#[derive(Debug, Clone)]
pub struct VersionListener {
    elb: Client,
    ecs: aws_sdk_ecs::Client,
    lambda: aws_sdk_lambda::Client,
    settings: ListenerSettings,
}

/// What a deployment runs on, as a load balancer reaches it.
enum Backend {
    Ecs(EcsHandle),
    Lambda(String),
}

impl Backend {
    fn of(deployment: &Deployment) -> Result<Self, DeployError> {
        if let Some(arn) = deployment.endpoint.strip_prefix("lambda:") {
            return Ok(Self::Lambda(arn.to_owned()));
        }
        serde_json::from_value(deployment.handle.clone())
            .map(Self::Ecs)
            .map_err(|_| {
                DeployError(format!(
                    "cannot route `{}` through the module listener: not a Lambda or ECS deployment",
                    deployment.endpoint
                ))
            })
    }
}

fn is_not_found<E: ProvideErrorMetadata>(error: &E) -> bool {
    matches!(
        error.code(),
        Some(
            "TargetGroupNotFound"
                | "TargetGroupNotFoundException"
                | "RuleNotFound"
                | "RuleNotFoundException"
                | "ResourceNotFoundException"
        )
    )
}

impl VersionListener {
    #[must_use]
    pub fn new(sdk: &SdkConfig, settings: ListenerSettings) -> Self {
        Self {
            elb: Client::new(sdk),
            ecs: aws_sdk_ecs::Client::new(sdk),
            lambda: aws_sdk_lambda::Client::new(sdk),
            settings,
        }
    }

    /// The listener's ARN: what the module's integration targets.
    #[must_use]
    pub fn listener_arn(&self) -> &str {
        &self.settings.listener_arn
    }

    /// Whether the deployment can be routed through the listener (a Lambda function or an
    /// ECS service; an external endpoint cannot).
    #[must_use]
    pub fn routes(deployment: &Deployment) -> bool {
        Backend::of(deployment).is_ok()
    }

    /// Keeps the version's target group (with the deployment registered in it) and its rule.
    ///
    /// # Errors
    /// When Elastic Load Balancing, ECS or Lambda refuses a call.
    pub async fn route(
        &self,
        manifest: &Manifest,
        deployment: &Deployment,
        alongside: bool,
    ) -> Result<(), DeployError> {
        let route = VersionRoute::of(manifest, alongside)?;
        let backend = Backend::of(deployment)?;
        let group = self.put_target_group(manifest, &route, &backend).await?;
        let group_arn = group.target_group_arn().unwrap_or_default().to_owned();
        match &backend {
            Backend::Ecs(handle) => self.attach_service(manifest, handle, &group_arn).await?,
            Backend::Lambda(function) => {
                self.attach_function(function, &route.target_group, &group_arn)
                    .await?;
            }
        }
        self.put_rule(&route, &group_arn).await?;
        tracing::info!(module = %route.module, version = %route.version, target_group = %route.target_group, "version routed on the module listener");
        Ok(())
    }

    /// Deletes the version's rule, then its target group; either already gone is fine.
    ///
    /// # Errors
    /// When Elastic Load Balancing or Lambda refuses a call.
    pub async fn unroute(
        &self,
        manifest: &Manifest,
        deployment: &Deployment,
        alongside: bool,
    ) -> Result<(), DeployError> {
        let route = VersionRoute::of(manifest, alongside)?;
        for rule in self.rules_of(&route).await? {
            self.delete_rule(&rule).await?;
        }
        let Some(group) = self.target_group(&route.target_group).await? else {
            return Ok(());
        };
        let group_arn = group.target_group_arn().unwrap_or_default();
        if let Ok(Backend::Lambda(function)) = Backend::of(deployment) {
            let removed = self
                .lambda
                .remove_permission()
                .function_name(&function)
                .statement_id(statement_id(&route.target_group))
                .send()
                .await;
            if let Err(e) = removed
                && !e.as_service_error().is_some_and(is_not_found)
            {
                return Err(aws_error(
                    format!("removing the load balancer's permission from `{function}`"),
                    &e,
                ));
            }
        }
        match self
            .elb
            .delete_target_group()
            .target_group_arn(group_arn)
            .send()
            .await
        {
            Err(e) if !e.as_service_error().is_some_and(is_not_found) => Err(aws_error(
                format!("deleting the target group `{}`", route.target_group),
                &e,
            )),
            _ => Ok(()),
        }
    }

    async fn target_group(&self, name: &str) -> Result<Option<TargetGroup>, DeployError> {
        match self.elb.describe_target_groups().names(name).send().await {
            Ok(found) => Ok(found.target_groups().first().cloned()),
            Err(e) if e.as_service_error().is_some_and(is_not_found) => Ok(None),
            Err(e) => Err(aws_error(
                format!("describing the target group `{name}`"),
                &e,
            )),
        }
    }

    /// The VPC of the listener's load balancer: where `ip` target groups are made.
    async fn vpc_id(&self) -> Result<String, DeployError> {
        let listener_arn = &self.settings.listener_arn;
        let listeners = self
            .elb
            .describe_listeners()
            .listener_arns(listener_arn)
            .send()
            .await
            .map_err(|e| aws_error(format!("describing the listener `{listener_arn}`"), &e))?;
        let balancer = listeners
            .listeners()
            .first()
            .and_then(|l| l.load_balancer_arn())
            .ok_or_else(|| DeployError(format!("listener `{listener_arn}` not found")))?;
        let balancers = self
            .elb
            .describe_load_balancers()
            .load_balancer_arns(balancer)
            .send()
            .await
            .map_err(|e| aws_error(format!("describing the load balancer `{balancer}`"), &e))?;
        balancers
            .load_balancers()
            .first()
            .and_then(|b| b.vpc_id())
            .map(String::from)
            .ok_or_else(|| DeployError(format!("load balancer `{balancer}` has no VPC")))
    }

    /// The version's target group, found by name or created (tagged).
    async fn put_target_group(
        &self,
        manifest: &Manifest,
        route: &VersionRoute,
        backend: &Backend,
    ) -> Result<TargetGroup, DeployError> {
        if let Some(group) = self.target_group(&route.target_group).await? {
            return Ok(group);
        }
        let mut create = self
            .elb
            .create_target_group()
            .name(&route.target_group)
            .set_tags(Some(tags(route)));
        create = match backend {
            Backend::Lambda(_) => create.target_type(TargetTypeEnum::Lambda),
            Backend::Ecs(_) => create
                .target_type(TargetTypeEnum::Ip)
                .protocol(ProtocolEnum::Http)
                .port(i32::from(manifest.backend.port.unwrap_or(DEFAULT_PORT)))
                .vpc_id(self.vpc_id().await?)
                .health_check_path(
                    manifest
                        .backend
                        .health_check
                        .clone()
                        .unwrap_or_else(|| "/health".into()),
                ),
        };
        let created = create.send().await.map_err(|e| {
            aws_error(
                format!("creating the target group `{}`", route.target_group),
                &e,
            )
        })?;
        created.target_groups().first().cloned().ok_or_else(|| {
            DeployError(format!(
                "Elastic Load Balancing created `{}` without describing it",
                route.target_group
            ))
        })
    }

    /// Registers the ECS service's tasks into the target group (its `loadBalancers`), unless
    /// it already does.
    async fn attach_service(
        &self,
        manifest: &Manifest,
        handle: &EcsHandle,
        group_arn: &str,
    ) -> Result<(), DeployError> {
        let described = self
            .ecs
            .describe_services()
            .cluster(&handle.cluster)
            .services(&handle.service_arn)
            .send()
            .await
            .map_err(|e| aws_error(format!("describing `{}`", handle.service_arn), &e))?;
        let attached = described.services().iter().any(|s| {
            s.load_balancers()
                .iter()
                .any(|lb| lb.target_group_arn() == Some(group_arn))
        });
        if attached {
            return Ok(());
        }
        let port = manifest.backend.port.unwrap_or(DEFAULT_PORT);
        self.ecs
            .update_service()
            .cluster(&handle.cluster)
            .service(&handle.service_arn)
            .load_balancers(
                aws_sdk_ecs::types::LoadBalancer::builder()
                    .target_group_arn(group_arn)
                    .container_name(manifest.name.as_str())
                    .container_port(i32::from(port))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    format!("registering `{}` in its target group", handle.service_arn),
                    &e,
                )
            })?;
        Ok(())
    }

    /// Lets the load balancer invoke the function from the target group, and registers it.
    async fn attach_function(
        &self,
        function: &str,
        name: &str,
        group_arn: &str,
    ) -> Result<(), DeployError> {
        let added = self
            .lambda
            .add_permission()
            .function_name(function)
            .statement_id(statement_id(name))
            .action("lambda:InvokeFunction")
            .principal("elasticloadbalancing.amazonaws.com")
            .source_arn(group_arn)
            .send()
            .await;
        if let Err(e) = added
            && e.as_service_error().and_then(ProvideErrorMetadata::code)
                != Some("ResourceConflictException")
        {
            return Err(aws_error(
                format!("letting the load balancer invoke `{function}`"),
                &e,
            ));
        }
        self.elb
            .register_targets()
            .target_group_arn(group_arn)
            .targets(TargetDescription::builder().id(function).build())
            .send()
            .await
            .map_err(|e| aws_error(format!("registering `{function}` in its target group"), &e))?;
        Ok(())
    }

    /// Every rule of the listener but its default, with the listener's taken priorities.
    async fn rules(&self) -> Result<Vec<Rule>, DeployError> {
        let mut all = Vec::new();
        let mut marker = None;
        loop {
            let page = self
                .elb
                .describe_rules()
                .listener_arn(&self.settings.listener_arn)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        format!("listing the rules of `{}`", self.settings.listener_arn),
                        &e,
                    )
                })?;
            all.extend(
                page.rules()
                    .iter()
                    .filter(|r| r.is_default() != Some(true))
                    .cloned(),
            );
            match page.next_marker() {
                Some(next) if !next.is_empty() => marker = Some(next.to_owned()),
                _ => return Ok(all),
            }
        }
    }

    /// The rules tagged as the deployment's (normally one).
    async fn rules_of(&self, route: &VersionRoute) -> Result<Vec<Rule>, DeployError> {
        let rules = self.rules().await?;
        let arns: Vec<String> = rules
            .iter()
            .filter_map(|r| r.rule_arn().map(String::from))
            .collect();
        let mut ours = BTreeSet::new();
        // Tags are read 20 resources at a time.
        for chunk in arns.chunks(20) {
            let described = self
                .elb
                .describe_tags()
                .set_resource_arns(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| aws_error("reading the tags of the listener's rules", &e))?;
            for description in described.tag_descriptions() {
                let is_ours = description.tags().iter().any(|t| {
                    t.key() == Some(DEPLOYMENT_TAG) && t.value() == Some(route.deployment.as_str())
                });
                if is_ours && let Some(arn) = description.resource_arn() {
                    ours.insert(arn.to_owned());
                }
            }
        }
        Ok(rules
            .into_iter()
            .filter(|r| r.rule_arn().is_some_and(|a| ours.contains(a)))
            .collect())
    }

    /// The deployment's rule, created at a free priority or brought up to date (a first
    /// installation's upgrade changes its version); a duplicate is deleted.
    async fn put_rule(&self, route: &VersionRoute, group_arn: &str) -> Result<(), DeployError> {
        let conditions = conditions(route);
        let action = Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(group_arn)
            .build();
        let mut ours = self.rules_of(route).await?.into_iter();
        if let Some(rule) = ours.next() {
            let current = same_conditions(rule.conditions(), &conditions)
                && rule.actions().len() == 1
                && rule.actions()[0].target_group_arn() == Some(group_arn);
            if !current {
                self.elb
                    .modify_rule()
                    .rule_arn(rule.rule_arn().unwrap_or_default())
                    .set_conditions(Some(conditions.clone()))
                    .actions(action.clone())
                    .send()
                    .await
                    .map_err(|e| {
                        aws_error(format!("updating the rule of `{}`", route.deployment), &e)
                    })?;
                self.elb
                    .add_tags()
                    .resource_arns(rule.rule_arn().unwrap_or_default())
                    .set_tags(Some(tags(route)))
                    .send()
                    .await
                    .map_err(|e| {
                        aws_error(format!("tagging the rule of `{}`", route.deployment), &e)
                    })?;
            }
            for duplicate in ours {
                self.delete_rule(&duplicate).await?;
            }
            return Ok(());
        }
        // Another installer may take the same priority at the same time: probe again.
        let mut last = None;
        for _ in 0..3 {
            let taken: BTreeSet<u32> = self
                .rules()
                .await?
                .iter()
                .filter_map(|r| r.priority()?.parse().ok())
                .collect();
            let priority = route.free_priority(&taken).ok_or_else(|| {
                DeployError(format!(
                    "the listener `{}` has no free rule priority",
                    self.settings.listener_arn
                ))
            })?;
            let created = self
                .elb
                .create_rule()
                .listener_arn(&self.settings.listener_arn)
                .priority(i32::try_from(priority).unwrap_or(i32::MAX))
                .set_conditions(Some(conditions.clone()))
                .actions(action.clone())
                .set_tags(Some(tags(route)))
                .send()
                .await;
            match created {
                Ok(_) => return Ok(()),
                Err(e)
                    if e.as_service_error().and_then(ProvideErrorMetadata::code)
                        == Some("PriorityInUse") =>
                {
                    last = Some(aws_error("creating a rule", &e));
                }
                Err(e) => {
                    return Err(aws_error(
                        format!("creating the rule of `{}`", route.deployment),
                        &e,
                    ));
                }
            }
        }
        Err(last.unwrap_or_else(|| DeployError("no rule created".into())))
    }

    async fn delete_rule(&self, rule: &Rule) -> Result<(), DeployError> {
        let arn = rule.rule_arn().unwrap_or_default();
        match self.elb.delete_rule().rule_arn(arn).send().await {
            Err(e) if !e.as_service_error().is_some_and(is_not_found) => {
                Err(aws_error(format!("deleting the rule `{arn}`"), &e))
            }
            _ => Ok(()),
        }
    }
}

/// The statement of a function's policy that lets the load balancer invoke it from the
/// target group `name`.
fn statement_id(target_group: &str) -> String {
    format!("plinth-alb-{target_group}")
}

fn tags(route: &VersionRoute) -> Vec<Tag> {
    route
        .tags()
        .iter()
        .map(|(key, value)| Tag::builder().key(*key).value(*value).build())
        .collect()
}

/// Path `{prefix}` or `{prefix}/*`, and `X-Plinth-Version` = the version.
fn conditions(route: &VersionRoute) -> Vec<RuleCondition> {
    vec![
        RuleCondition::builder()
            .field("path-pattern")
            .path_pattern_config(
                PathPatternConditionConfig::builder()
                    .set_values(Some(route.paths.to_vec()))
                    .build(),
            )
            .build(),
        RuleCondition::builder()
            .field("http-header")
            .http_header_config(
                HttpHeaderConditionConfig::builder()
                    .http_header_name(VERSION_HEADER)
                    .values(&route.version)
                    .build(),
            )
            .build(),
    ]
}

/// Whether a stored rule's conditions are the ones wanted (as field and values; ELB may
/// describe a condition's values in both its `Values` and its config).
fn same_conditions(stored: &[RuleCondition], wanted: &[RuleCondition]) -> bool {
    let key = |c: &RuleCondition| {
        let values: Vec<String> = c
            .path_pattern_config()
            .map(|p| p.values().to_vec())
            .or_else(|| c.http_header_config().map(|h| h.values().to_vec()))
            .unwrap_or_else(|| c.values().to_vec());
        let header = c
            .http_header_config()
            .and_then(|h| h.http_header_name())
            .map(str::to_ascii_lowercase);
        (c.field().map(String::from), header, values)
    };
    let mut a: Vec<_> = stored.iter().map(key).collect();
    let mut b: Vec<_> = wanted.iter().map(key).collect();
    a.sort();
    b.sort();
    a == b
}
