//! Modules' subscriptions as EventBridge rules.
//!
//! A rule belongs to a module by its name (`plinth-{module}-…`) and its description
//! (`plinth module {module}: subscription …`); the description tells `plinth-hr-…` rules of
//! module `hr` from those of module `hr-payroll`. Subscribing replaces the module's rules (and
//! removes those the manifest no longer lists); unsubscribing removes targets, then rules.
//! A service module's SQS queue has a dead-letter queue (`plinth-{module}-events-dlq`) that
//! takes a message after [`MAX_RECEIVE_COUNT`] receives. Both queues are kept on unsubscribe:
//! they may still hold events the module has not read; they go with the module's data
//! ([`drop_queues`], an uninstall with `drop_data`, or the undo of a first install).

use aws_sdk_eventbridge::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_eventbridge::types::{RuleState, Target};
use aws_sdk_sqs::types::QueueAttributeName;
use plinth_module_sdk::ModuleName;
use plinth_module_sdk::events::pattern::Pattern;
use plinth_module_sdk::manifest::Subscription;
use serde_json::{Value, json};

use super::EventBridgeBus;
use crate::deploy::Deployment;
use crate::events::{SubscriptionError, rule_name};

/// The id of the one target of a module's rule.
const TARGET_ID: &str = "plinth-module";

/// The SQS queue a service module's events are delivered to.
pub fn queue_name(module: &ModuleName) -> String {
    format!("plinth-{module}-events")
}

/// The dead-letter queue of a service module's queue: where an event goes that the module
/// failed to handle [`MAX_RECEIVE_COUNT`] times (or that is not an event).
pub fn dead_letter_queue_name(module: &ModuleName) -> String {
    format!("plinth-{module}-events-dlq")
}

/// How many times a message of a module's queue is received before it moves to the
/// dead-letter queue.
pub const MAX_RECEIVE_COUNT: u32 = 5;

/// How long the dead-letter queue keeps a message: 14 days, SQS's longest.
const DEAD_LETTER_RETENTION_SECONDS: u32 = 1_209_600;

fn description(module: &ModuleName, subscription: &str) -> String {
    format!("{}{subscription}", description_prefix(module))
}

fn description_prefix(module: &ModuleName) -> String {
    format!("plinth module {module}: subscription ")
}

fn failed<E: std::error::Error + Send + Sync + 'static, R: std::fmt::Debug>(
    operation: &str,
    error: SdkError<E, R>,
) -> SubscriptionError {
    SubscriptionError(format!(
        "EventBridge {operation} failed: {}",
        DisplayErrorContext(error)
    ))
}

pub(super) async fn subscribe(
    bus: &EventBridgeBus,
    module: &ModuleName,
    subscriptions: &[Subscription],
    deployment: &Deployment,
) -> Result<Vec<String>, SubscriptionError> {
    // Every pattern is checked before anything is created.
    for subscription in subscriptions {
        Pattern::parse(&Value::Object(subscription.pattern.clone())).map_err(|error| {
            SubscriptionError(format!(
                "subscription `{}` of {module}: {error}",
                subscription.name
            ))
        })?;
    }
    let mut names = Vec::with_capacity(subscriptions.len());
    let mut rule_arns = Vec::with_capacity(subscriptions.len());
    if !subscriptions.is_empty() {
        let target = target_arn(bus, module, deployment).await?;
        for subscription in subscriptions {
            let name = rule_name(module, &subscription.name);
            let rule_arn = put_rule(bus, module, subscription, &name, &target.arn).await?;
            if target.queue_url.is_none() {
                allow_rule_to_invoke(bus, &target.arn, &name, &rule_arn).await?;
            }
            rule_arns.push(rule_arn);
            names.push(name);
        }
        if let Some(queue_url) = target.queue_url {
            allow_rules_to_send(bus, &queue_url, &target.arn, &rule_arns).await?;
        }
    }
    for stale in module_rules(bus, module).await? {
        if !names.contains(&stale) {
            remove_rule(bus, &stale).await?;
        }
    }
    Ok(names)
}

pub(super) async fn unsubscribe(
    bus: &EventBridgeBus,
    module: &ModuleName,
) -> Result<(), SubscriptionError> {
    for rule in module_rules(bus, module).await? {
        remove_rule(bus, &rule).await?;
    }
    Ok(())
}

/// Deletes the module's queue and dead-letter queue where they exist; gives back the names
/// deleted.
pub(super) async fn drop_queues(
    bus: &EventBridgeBus,
    module: &ModuleName,
) -> Result<Vec<String>, SubscriptionError> {
    let mut dropped = Vec::new();
    for name in [queue_name(module), dead_letter_queue_name(module)] {
        let url = match bus.sqs().get_queue_url().queue_name(&name).send().await {
            Ok(found) => found.queue_url().unwrap_or_default().to_owned(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_queue_does_not_exist()) =>
            {
                continue;
            }
            Err(e) => return Err(sqs_failed("GetQueueUrl", &name, &DisplayErrorContext(e))),
        };
        match bus.sqs().delete_queue().queue_url(&url).send().await {
            Ok(_) => dropped.push(name),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_queue_does_not_exist()) => {}
            Err(e) => return Err(sqs_failed("DeleteQueue", &name, &DisplayErrorContext(e))),
        }
    }
    Ok(dropped)
}

/// Where the module's rules deliver.
struct RuleTarget {
    arn: String,
    /// Set when the target is the module's queue.
    queue_url: Option<String>,
}

async fn target_arn(
    bus: &EventBridgeBus,
    module: &ModuleName,
    deployment: &Deployment,
) -> Result<RuleTarget, SubscriptionError> {
    if let Some(function) = deployment
        .handle
        .get("function_arn")
        .and_then(Value::as_str)
    {
        return Ok(RuleTarget {
            arn: function.to_owned(),
            queue_url: None,
        });
    }
    let (_, dead_letter_arn) = create_queue(bus, &dead_letter_queue_name(module)).await?;
    let (url, arn) = create_queue(bus, &queue_name(module)).await?;
    let redrive = json!({
        "deadLetterTargetArn": dead_letter_arn,
        "maxReceiveCount": MAX_RECEIVE_COUNT.to_string(),
    });
    // Set apart from CreateQueue, which refuses other attributes than an existing queue's.
    bus.sqs()
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .map_err(|e| sqs_failed("SetQueueAttributes", &url, &DisplayErrorContext(e)))?;
    Ok(RuleTarget {
        arn,
        queue_url: Some(url),
    })
}

fn sqs_failed(operation: &str, queue: &str, error: &dyn std::fmt::Display) -> SubscriptionError {
    SubscriptionError(format!("SQS {operation} on {queue} failed: {error}"))
}

/// Creates the queue `name` if missing; gives back its URL and ARN.
async fn create_queue(
    bus: &EventBridgeBus,
    name: &str,
) -> Result<(String, String), SubscriptionError> {
    let mut create = bus.sqs().create_queue().queue_name(name);
    if name.ends_with("-dlq") {
        create = create.attributes(
            QueueAttributeName::MessageRetentionPeriod,
            DEAD_LETTER_RETENTION_SECONDS.to_string(),
        );
    }
    let created = create.send().await.map_err(|e| {
        if e.as_service_error()
            .is_some_and(|e| e.is_queue_deleted_recently())
        {
            SubscriptionError(format!(
                "SQS does not create {name} again within 60 s of deleting it (the module's \
                 data was dropped moments ago); retry in a minute"
            ))
        } else {
            sqs_failed("CreateQueue", name, &DisplayErrorContext(e))
        }
    })?;
    let url = created.queue_url().unwrap_or_default().to_owned();
    let attributes = bus
        .sqs()
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| sqs_failed("GetQueueAttributes", name, &DisplayErrorContext(e)))?;
    let arn = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| sqs_failed("GetQueueAttributes", name, &"no QueueArn in the answer"))?;
    Ok((url, arn))
}

/// Creates or replaces the rule and its target; gives back the rule's ARN.
async fn put_rule(
    bus: &EventBridgeBus,
    module: &ModuleName,
    subscription: &Subscription,
    name: &str,
    target: &str,
) -> Result<String, SubscriptionError> {
    let pattern = Value::Object(subscription.pattern.clone()).to_string();
    let rule = bus
        .events
        .put_rule()
        .name(name)
        .event_bus_name(&bus.bus_name)
        .event_pattern(pattern)
        .state(RuleState::Enabled)
        .description(description(module, &subscription.name))
        .send()
        .await
        .map_err(|e| failed("PutRule", e))?;
    let target = Target::builder()
        .id(TARGET_ID)
        .arn(target)
        .build()
        .map_err(|e| SubscriptionError(format!("the target of {name}: {e}")))?;
    let put = bus
        .events
        .put_targets()
        .rule(name)
        .event_bus_name(&bus.bus_name)
        .targets(target)
        .send()
        .await
        .map_err(|e| failed("PutTargets", e))?;
    if let Some(entry) = put.failed_entries().first() {
        return Err(SubscriptionError(format!(
            "EventBridge PutTargets refused the target of {name}: {} {}",
            entry.error_code().unwrap_or_default(),
            entry.error_message().unwrap_or_default()
        )));
    }
    Ok(rule.rule_arn().unwrap_or_default().to_owned())
}

/// Lets the module's rules, and only them, send to its queue.
async fn allow_rules_to_send(
    bus: &EventBridgeBus,
    queue_url: &str,
    queue_arn: &str,
    rule_arns: &[String],
) -> Result<(), SubscriptionError> {
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "plinth-module-rules",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": rule_arns}}
        }]
    });
    bus.sqs()
        .set_queue_attributes()
        .queue_url(queue_url)
        .attributes(QueueAttributeName::Policy, policy.to_string())
        .send()
        .await
        .map_err(|e| {
            SubscriptionError(format!(
                "SQS SetQueueAttributes failed: {}",
                DisplayErrorContext(e)
            ))
        })?;
    Ok(())
}

/// The statement of a function's policy that lets `rule` invoke it.
fn statement_id(rule: &str) -> String {
    rule.replace('.', "_")
}

/// Lets the rule invoke the module's function (EventBridge needs it in the function's policy),
/// replacing the statement an earlier install left, whose rule ARN may differ.
async fn allow_rule_to_invoke(
    bus: &EventBridgeBus,
    function: &str,
    rule: &str,
    rule_arn: &str,
) -> Result<(), SubscriptionError> {
    forbid_rule_to_invoke(bus, function, rule).await?;
    let added = bus
        .lambda()
        .add_permission()
        .function_name(function)
        .statement_id(statement_id(rule))
        .action("lambda:InvokeFunction")
        .principal("events.amazonaws.com")
        .source_arn(rule_arn)
        .send()
        .await;
    match added {
        Ok(_) => Ok(()),
        // Another install added it in between: it names the same rule.
        Err(error) if has_code(&error, "ResourceConflictException") => Ok(()),
        Err(error) => Err(SubscriptionError(format!(
            "Lambda AddPermission on {function} failed: {}",
            DisplayErrorContext(error)
        ))),
    }
}

/// Takes back a rule's permission to invoke a function; one already gone is fine.
async fn forbid_rule_to_invoke(
    bus: &EventBridgeBus,
    function: &str,
    rule: &str,
) -> Result<(), SubscriptionError> {
    let removed = bus
        .lambda()
        .remove_permission()
        .function_name(function)
        .statement_id(statement_id(rule))
        .send()
        .await;
    match removed {
        Ok(_) => Ok(()),
        Err(error) if has_code(&error, "ResourceNotFoundException") => Ok(()),
        Err(error) => Err(SubscriptionError(format!(
            "Lambda RemovePermission on {function} failed: {}",
            DisplayErrorContext(error)
        ))),
    }
}

/// The names of the module's rules on the bus.
async fn module_rules(
    bus: &EventBridgeBus,
    module: &ModuleName,
) -> Result<Vec<String>, SubscriptionError> {
    let prefix = description_prefix(module);
    let mut names = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = bus
            .events
            .list_rules()
            .event_bus_name(&bus.bus_name)
            .name_prefix(format!("plinth-{module}-"))
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| failed("ListRules", e))?;
        let mine = page
            .rules()
            .iter()
            .filter(|rule| rule.description().is_some_and(|d| d.starts_with(&prefix)));
        names.extend(mine.filter_map(|rule| rule.name().map(str::to_owned)));
        match page.next_token() {
            Some(token) if !token.is_empty() => next = Some(token.to_owned()),
            _ => return Ok(names),
        }
    }
}

/// Removes a rule's targets, then the rule; a rule already gone is fine.
async fn remove_rule(bus: &EventBridgeBus, name: &str) -> Result<(), SubscriptionError> {
    let targets = match bus
        .events
        .list_targets_by_rule()
        .rule(name)
        .event_bus_name(&bus.bus_name)
        .send()
        .await
    {
        Ok(targets) => targets,
        Err(error) if is_not_found(&error) => return Ok(()),
        Err(error) => return Err(failed("ListTargetsByRule", error)),
    };
    let ids: Vec<String> = targets
        .targets()
        .iter()
        .map(|target| target.id().to_owned())
        .collect();
    for target in targets.targets() {
        if target.arn().starts_with("arn:aws:lambda:") {
            forbid_rule_to_invoke(bus, target.arn(), name).await?;
        }
    }
    if !ids.is_empty() {
        bus.events
            .remove_targets()
            .rule(name)
            .event_bus_name(&bus.bus_name)
            .set_ids(Some(ids))
            .send()
            .await
            .map_err(|e| failed("RemoveTargets", e))?;
    }
    match bus
        .events
        .delete_rule()
        .name(name)
        .event_bus_name(&bus.bus_name)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(error) if is_not_found(&error) => Ok(()),
        Err(error) => Err(failed("DeleteRule", error)),
    }
}

fn is_not_found<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    has_code(error, "ResourceNotFoundException")
}

fn has_code<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>, code: &str) -> bool {
    error
        .as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|c| c == code)
}
