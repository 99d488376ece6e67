//! Shim `BusToLambda`: **moto cannot invoke a Lambda target** (it runs a function's code only
//! in Docker). So each rule template.yaml gives a function is put on moto as the template has
//! it — its name, its bus, its pattern — but with an SQS queue as its target, and a pump hands
//! each message to the function through the Invoke API. The message is the EventBridge event,
//! exactly what a Lambda target receives; it is deleted once the function answers without an
//! error, and otherwise left on the queue to be delivered again, as EventBridge retries.
//!
//! It stands in for the rule → function delivery only: the pump invokes synchronously and
//! one event at a time, not asynchronously with `EventInvokeConfig`'s retries and dead-letter
//! queue. And moto leaves `account` out of the events it delivers, which EventBridge always
//! sets: the pump adds the account of the rule's ARN (an event is delivered in the account
//! whose rule matched it; ECR's events carry the registry's, the same account here).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::Target;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::platform::Invoker;

/// A rule of template.yaml whose target is one of the cell's functions.
pub struct Rule {
    pub name: String,
    /// The bus it is on; `None` for the account's default bus (where ECR announces pushes).
    pub bus: Option<String>,
    pub pattern: Value,
    pub function: &'static str,
}

/// The rules on moto, and a pump per rule.
pub struct BusToLambda {
    pumps: Vec<JoinHandle<()>>,
    failures: Arc<Mutex<Vec<String>>>,
}

/// The queue standing in for one rule's function.
struct Stand {
    sqs: aws_sdk_sqs::Client,
    url: String,
    /// The account of the rule's ARN.
    account: String,
    function: String,
}

impl BusToLambda {
    /// Puts each rule on moto with its queue as target, and starts pumping.
    pub async fn start(sdk: &SdkConfig, invoker: &Invoker, rules: &[Rule]) -> Self {
        let failures = Arc::new(Mutex::new(Vec::new()));
        let mut pumps = Vec::with_capacity(rules.len());
        for rule in rules {
            let stand = Stand::for_rule(sdk, rule).await;
            pumps.push(tokio::spawn(pump(stand, invoker.clone(), failures.clone())));
        }
        Self { pumps, failures }
    }

    /// The same for the rules the installer gives modules on the platform's bus
    /// (`plinth-{module}-…`) whose target is a module's function: as soon as such a rule
    /// appears (or is put again, by an upgrade), its target is replaced, under the installer's
    /// target id, by a queue of the shim's, pumped through `invoker` (the `LambdaFront`, which
    /// runs the module's function). The installer's unsubscribe removes it as its own.
    pub fn follow_module_rules(&mut self, sdk: &SdkConfig, bus: &str, invoker: Invoker) {
        let events = aws_sdk_eventbridge::Client::new(sdk);
        let sdk = sdk.clone();
        let bus = bus.to_owned();
        let failures = Arc::clone(&self.failures);
        self.pumps.push(tokio::spawn(async move {
            let mut pumped = std::collections::HashMap::<String, String>::new();
            loop {
                let rules = events
                    .list_rules()
                    .event_bus_name(&bus)
                    .name_prefix("plinth-")
                    .send()
                    .await;
                for rule in rules.iter().flat_map(|r| r.rules()) {
                    let name = rule.name().unwrap_or_default();
                    let Ok(targets) = events
                        .list_targets_by_rule()
                        .rule(name)
                        .event_bus_name(&bus)
                        .send()
                        .await
                    else {
                        continue;
                    };
                    let Some(target) = targets
                        .targets()
                        .iter()
                        .find(|t| t.arn().contains(":function:"))
                    else {
                        continue;
                    };
                    let function = target
                        .arn()
                        .rsplit(':')
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let stand =
                        Stand::for_module_rule(&sdk, &bus, name, target.id(), &function).await;
                    if pumped.insert(name.to_owned(), function).is_none() {
                        tokio::spawn(pump(stand, invoker.clone(), Arc::clone(&failures)));
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }

    /// The deliveries a function failed on so far, each as `function (status): answer`: a
    /// step that waits in vain shows them.
    pub fn failures(&self) -> String {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .join("\n")
    }
}

impl Drop for BusToLambda {
    fn drop(&mut self) {
        for pump in &self.pumps {
            pump.abort();
        }
    }
}

impl Stand {
    async fn for_rule(sdk: &SdkConfig, rule: &Rule) -> Self {
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let events = aws_sdk_eventbridge::Client::new(sdk);
        let (url, arn) = stand_queue(&sqs, &format!("bus-to-lambda-{}", rule.name)).await;
        let put = events
            .put_rule()
            .name(&rule.name)
            .set_event_bus_name(rule.bus.clone())
            .event_pattern(rule.pattern.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("put rule {}: {}", rule.name, DisplayErrorContext(e)));
        let rule_arn = put.rule_arn().unwrap_or_default();
        let account = rule_arn.split(':').nth(4).unwrap_or_default().to_owned();
        assert!(!account.is_empty(), "no account in rule ARN {rule_arn:?}");
        let target = Target::builder()
            .id("BusToLambda")
            .arn(arn)
            .build()
            .expect("a target");
        let targets = events
            .put_targets()
            .rule(&rule.name)
            .set_event_bus_name(rule.bus.clone())
            .targets(target)
            .send()
            .await
            .unwrap_or_else(|e| panic!("target of rule {}: {}", rule.name, DisplayErrorContext(e)));
        assert_eq!(
            targets.failed_entry_count(),
            0,
            "target of rule {}",
            rule.name
        );
        Self {
            sqs,
            url,
            account,
            function: rule.function.to_owned(),
        }
    }
}

impl Stand {
    /// The queue standing in for the function target `id` of module rule `rule`.
    async fn for_module_rule(
        sdk: &SdkConfig,
        bus: &str,
        rule: &str,
        id: &str,
        function: &str,
    ) -> Self {
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let (url, arn) = stand_queue(&sqs, &format!("bus-to-lambda-{rule}")).await;
        let account = arn.split(':').nth(4).unwrap_or_default().to_owned();
        let target = Target::builder().id(id).arn(arn).build().expect("a target");
        let _ = aws_sdk_eventbridge::Client::new(sdk)
            .put_targets()
            .rule(rule)
            .event_bus_name(bus)
            .targets(target)
            .send()
            .await;
        Self {
            sqs,
            url,
            account,
            function: function.to_owned(),
        }
    }
}

/// Creates the queue `name` standing in for a rule's function; gives back its URL and ARN.
async fn stand_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> (String, String) {
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create queue {name}: {}", DisplayErrorContext(e)))
        .queue_url()
        .unwrap_or_default()
        .to_owned();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .ok()
        .and_then(|a| a.attributes()?.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap_or_else(|| panic!("the ARN of queue {name}"));
    (url, arn)
}

/// Receives from the rule's queue and invokes its function with each event, for as long as
/// the cell runs.
async fn pump(stand: Stand, invoker: Invoker, failures: Arc<Mutex<Vec<String>>>) {
    loop {
        let received = stand
            .sqs
            .receive_message()
            .queue_url(&stand.url)
            .wait_time_seconds(1)
            .max_number_of_messages(10)
            .visibility_timeout(300)
            .send()
            .await;
        let Ok(received) = received else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        for message in received.messages() {
            let body = message.body().unwrap_or_default();
            let mut event: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            if let Some(fields) = event.as_object_mut() {
                fields
                    .entry("account")
                    .or_insert_with(|| stand.account.clone().into());
            }
            let receipt = message.receipt_handle().unwrap_or_default();
            let failure = match invoker.invoke(&stand.function, &event).await {
                Ok(done) if done.function_error.is_none() && done.status == 200 => None,
                Ok(failed) => Some(format!(
                    "{} ({}): {}",
                    stand.function, failed.status, failed.payload
                )),
                Err(e) => Some(format!("{}: {e}", stand.function)),
            };
            let Some(failure) = failure else {
                let _ = stand
                    .sqs
                    .delete_message()
                    .queue_url(&stand.url)
                    .receipt_handle(receipt)
                    .send()
                    .await;
                continue;
            };
            failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(failure);
            // Delivered again shortly, as EventBridge retries.
            let _ = stand
                .sqs
                .change_message_visibility()
                .queue_url(&stand.url)
                .receipt_handle(receipt)
                .visibility_timeout(2)
                .send()
                .await;
        }
    }
}
