//! ECR pushes on `plinth up --aws`: as on AWS (the `ecr-events` function), an image pushed
//! with its manifest in the annotation `dev.plinth.manifest` publishes that version, and a
//! push that would change a published digest is refused. ECR announces pushes on the
//! account's default event bus; a rule there (`plinth-up-{table}-ecr-push`, after the control
//! plane's table: `plinth-up-plinth-ecr-push` by default) sends them to the queue
//! `plinth-up-{table}-ecr-events`, which this process reads. Named per platform, so that two
//! platforms on one account (two tables) each see every push, and a platform that stopped
//! leaves nothing reading another's; `plinth-up-` keeps them apart from a deployed stack's
//! `plinth-{stage}-ecr-push`.

use std::time::Duration;

use anyhow::{Context, Result};
use aws_config::SdkConfig;
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::Target;
use aws_sdk_sqs::types::QueueAttributeName;
use plinth_registry::deploy::ecr::{EcrImageAction, EcrImages};
use plinth_registry::{App, Error, aws};
use serde_json::{Value, json};

/// The rule on the default bus and the queue it fills, for the platform whose control plane is
/// `table`: `plinth-up-{table}-ecr-push` and `plinth-up-{table}-ecr-events`, with what neither
/// name may hold (a table's `.`) as `-`, and a long table name cut (both stay within 64
/// characters).
#[must_use]
pub fn names(table: &str) -> (String, String) {
    let base: String = table
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    (
        format!("plinth-up-{base}-ecr-push"),
        format!("plinth-up-{base}-ecr-events"),
    )
}

/// Routes ECR's push events to the platform's queue, and starts reading it.
pub async fn listen(app: &App, sdk: &SdkConfig, table: &str) -> Result<()> {
    let (rule_name, queue_name) = names(table);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let created = sqs
        .create_queue()
        .queue_name(&queue_name)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(aws::describe(format!("SQS CreateQueue {queue_name}"), &e)))
        .context("cannot create the queue of ECR pushes")?;
    let url = created.queue_url().unwrap_or_default().to_owned();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(aws::describe(
                format!("SQS GetQueueAttributes {queue_name}"),
                &e
            ))
        })?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .context("the queue of ECR pushes has no ARN")?;
    let pattern = json!({
        "source": ["aws.ecr"],
        "detail-type": ["ECR Image Action"],
        "detail": {"action-type": ["PUSH"], "result": ["SUCCESS"]}
    });
    let rule = events
        .put_rule()
        .name(&rule_name)
        .event_pattern(pattern.to_string())
        .description("plinth up --aws: ECR pushes, to publish module versions")
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(aws::describe(
                format!("EventBridge PutRule {rule_name}"),
                &e
            ))
        })
        .context("cannot route ECR pushes")?;
    let policy = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage", "Resource": arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": rule.rule_arn().unwrap_or_default()}}
    }]});
    sqs.set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::Policy, policy.to_string())
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(aws::describe(
                format!("SQS SetQueueAttributes {queue_name}"),
                &e
            ))
        })?;
    let target = Target::builder().id("plinth-local").arn(&arn).build()?;
    let put = events
        .put_targets()
        .rule(&rule_name)
        .targets(target)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(aws::describe(
                format!("EventBridge PutTargets {rule_name}"),
                &e
            ))
        })?;
    if let Some(entry) = put.failed_entries().first() {
        anyhow::bail!(
            "EventBridge refused the queue as the target of {rule_name}: {} {}",
            entry.error_code().unwrap_or_default(),
            entry.error_message().unwrap_or_default()
        );
    }
    tokio::spawn(read(app.clone(), sqs, url, EcrImages::new(sdk)));
    Ok(())
}

/// Handles each push; one that fails for a reason that may pass (ECR or the store not
/// answering) is left on the queue to be read again.
async fn read(app: App, sqs: aws_sdk_sqs::Client, url: String, images: EcrImages) {
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&url)
            .wait_time_seconds(20)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .send()
            .await;
        let messages = match received {
            Ok(received) => received.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %DisplayErrorContext(e), "cannot read ECR pushes; trying again");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        for message in messages {
            let mut event: Value = serde_json::from_str(message.body().unwrap_or_default())
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "a message on the ECR push queue is not JSON");
                    Value::Null
                });
            // AWS names the registry's account; moto's events leave it out.
            if let Some(fields) = event.as_object_mut() {
                fields.entry("account").or_insert_with(|| "local".into());
            }
            let handled = match EcrImageAction::from_event(event) {
                Ok(action) => match app.plane.catalog.image_action(&images, &action).await {
                    Ok(outcome) => {
                        tracing::info!(?outcome, "ECR push handled");
                        true
                    }
                    Err(e @ (Error::Unavailable { .. } | Error::Internal { .. })) => {
                        tracing::warn!(error = %e.chain(), "ECR push not handled yet");
                        false
                    }
                    Err(e) => {
                        tracing::warn!(error = %e.chain(), "ECR push refused");
                        true
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "not an ECR push");
                    true
                }
            };
            if handled
                && let Some(receipt) = message.receipt_handle()
                && let Err(e) = sqs
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(receipt)
                    .send()
                    .await
            {
                tracing::warn!(error = %DisplayErrorContext(e), "cannot delete a handled ECR push; it will be read again");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::names;

    #[test]
    fn each_platform_s_rule_and_queue_are_named_after_its_table_as_both_services_allow() {
        assert_eq!(
            names("plinth"),
            (
                "plinth-up-plinth-ecr-push".to_owned(),
                "plinth-up-plinth-ecr-events".to_owned()
            )
        );
        let (rule, queue) = names("plinth.prod");
        assert_eq!(
            (rule.as_str(), queue.as_str()),
            (
                "plinth-up-plinth-prod-ecr-push",
                "plinth-up-plinth-prod-ecr-events"
            )
        );
        let (rule, queue) = names(&"t".repeat(255));
        assert!(rule.len() <= 64 && queue.len() <= 64, "{rule} {queue}");
    }
}
