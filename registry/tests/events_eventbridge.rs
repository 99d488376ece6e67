//! The EventBridge adapter against the emulator (moto): subscriptions become rules on a bus of
//! the test's own, matching events reach the module's SQS queue, others do not, and nothing
//! arrives once the module is unsubscribed. Skips without an emulator (fails under CI).

mod support;

use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime};
use aws_sdk_sqs::Client as Sqs;
use aws_sdk_sqs::types::QueueAttributeName;
use plinth_module_sdk::ModuleName;
use plinth_module_sdk::manifest::Subscription;
use plinth_registry::aws;
use plinth_registry::deploy::Deployment;
use plinth_registry::events::eventbridge::{EventBridgeBus, dead_letter_queue_name, queue_name};
use plinth_registry::events::{EventBus, Subscriptions, platform_event};
use serde_json::{Value, json};

struct Setup {
    bus: EventBridgeBus,
    sqs: Sqs,
}

/// A bus of this test's own on the emulator, or `None` without an emulator.
async fn setup(test: &str) -> Option<Setup> {
    if !support::emulator_configured(test) {
        return None;
    }
    let config = aws::config_from_env().await;
    let name = support::unique_table("plinth-bus");
    let bus = EventBridgeBus::new(&config, &name);
    bus.client()
        .create_event_bus()
        .name(&name)
        .send()
        .await
        .expect("create the event bus on the emulator");
    Some(Setup {
        bus,
        sqs: Sqs::new(&config),
    })
}

/// A module name no other test (or earlier run against the same emulator) uses.
fn unique_module(prefix: &str) -> ModuleName {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = format!("{prefix}-{}-{nanos}-{n}", std::process::id());
    ModuleName::parse(&name).expect("a module name")
}

fn service() -> Deployment {
    Deployment {
        endpoint: "http://financial.internal:8001".into(),
        health_url: "http://financial.internal:8001/health".into(),
        handle: json!({"service_arn": "arn:aws:ecs:us-east-1:000000000000:service/plinth/x"}),
        addresses: Vec::new(),
    }
}

fn subscription(name: &str, detail_type: &str) -> Subscription {
    let pattern = json!({"source": ["plinth.registry"], "detail-type": [detail_type]});
    Subscription {
        name: name.into(),
        pattern: pattern.as_object().cloned().unwrap_or_default(),
        path: format!("/_plinth/events/{name}"),
    }
}

async fn queue_url(sqs: &Sqs, module: &ModuleName) -> String {
    let url = sqs
        .get_queue_url()
        .queue_name(queue_name(module))
        .send()
        .await;
    let url = url.expect("the module's queue exists");
    url.queue_url().unwrap_or_default().to_owned()
}

/// Every message waiting in the queue, as JSON, removing them.
async fn drain(sqs: &Sqs, url: &str) -> Vec<Value> {
    let mut bodies = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive from the queue");
        if received.messages().is_empty() {
            return bodies;
        }
        for message in received.messages() {
            let body = message.body().unwrap_or("null");
            bodies.push(serde_json::from_str(body).unwrap_or(Value::Null));
            let receipt = message.receipt_handle().unwrap_or_default();
            let deleted = sqs.delete_message().queue_url(url).receipt_handle(receipt);
            deleted.send().await.expect("delete the message");
        }
    }
}

async fn rule_names(bus: &EventBridgeBus) -> Vec<String> {
    let rules = bus.client().list_rules().event_bus_name(bus.bus_name());
    let rules = rules.send().await.expect("list the rules");
    let mut names: Vec<String> = rules
        .rules()
        .iter()
        .filter_map(|rule| rule.name().map(str::to_owned))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_matching_event_reaches_the_modules_queue_and_a_non_matching_one_does_not() {
    let Some(Setup { bus, sqs }) = setup("eventbridge_matching").await else {
        return;
    };
    let module = unique_module("fin");
    let subscriptions = [subscription("company-created", "company.created")];
    let names = bus
        .subscribe(&module, &subscriptions, &service())
        .await
        .expect("subscribed");
    assert_eq!(names, [format!("plinth-{module}-company-created")]);
    assert_eq!(rule_names(&bus).await, names);
    let url = queue_url(&sqs, &module).await;
    let created = platform_event("company.created", json!({"company_id": "acme-de"}))
        .for_tenant("acme", Some("acme-de"));
    let other = platform_event("tenant.created", json!({})).for_tenant("acme", None);
    bus.publish(vec![other, created.clone()])
        .await
        .expect("published");
    let received = drain(&sqs, &url).await;
    assert_eq!(received.len(), 1, "{received:#?}");
    assert_eq!(received[0]["detail-type"], "company.created");
    assert_eq!(received[0]["source"], "plinth.registry");
    assert_eq!(received[0]["detail"]["event_id"], json!(created.id));
    assert_eq!(received[0]["detail"]["tenant_id"], "acme");
}

#[tokio::test]
async fn after_unsubscribing_no_event_arrives_and_the_rules_are_gone() {
    let Some(Setup { bus, sqs }) = setup("eventbridge_unsubscribe").await else {
        return;
    };
    let module = unique_module("fin");
    let subscriptions = [subscription("company-created", "company.created")];
    bus.subscribe(&module, &subscriptions, &service())
        .await
        .expect("subscribed");
    let url = queue_url(&sqs, &module).await;
    let event = || platform_event("company.created", json!({}));
    bus.publish(vec![event()]).await.expect("published");
    assert_eq!(drain(&sqs, &url).await.len(), 1);
    bus.unsubscribe(&module).await.expect("unsubscribed");
    assert!(rule_names(&bus).await.is_empty());
    bus.publish(vec![event()]).await.expect("published");
    assert!(drain(&sqs, &url).await.is_empty());
    bus.unsubscribe(&module)
        .await
        .expect("unsubscribing twice is fine");
}

/// The queues hold the module's unread events: kept when it unsubscribes, deleted (both, the
/// dead-letter queue too) only when its data is dropped; dropping twice is fine.
#[tokio::test]
async fn a_modules_queues_outlive_its_rules_and_go_with_its_data() {
    let Some(Setup { bus, sqs }) = setup("eventbridge_drop_queues").await else {
        return;
    };
    let module = unique_module("fin");
    let subscriptions = [subscription("company-created", "company.created")];
    bus.subscribe(&module, &subscriptions, &service())
        .await
        .expect("subscribed");
    let exists = |name: String| {
        let sqs = sqs.clone();
        async move { sqs.get_queue_url().queue_name(name).send().await.is_ok() }
    };
    bus.unsubscribe(&module).await.expect("unsubscribed");
    assert!(exists(queue_name(&module)).await, "the queue is kept");
    assert!(
        exists(dead_letter_queue_name(&module)).await,
        "the DLQ is kept"
    );

    let dropped = bus.drop_queues(&module).await.expect("dropped");
    assert_eq!(
        dropped,
        [queue_name(&module), dead_letter_queue_name(&module)]
    );
    assert!(!exists(queue_name(&module)).await, "the queue is gone");
    assert!(
        !exists(dead_letter_queue_name(&module)).await,
        "the DLQ is gone"
    );
    let again = bus
        .drop_queues(&module)
        .await
        .expect("dropping twice is fine");
    assert!(again.is_empty(), "{again:?}");
}

/// Finding 5 (platform half): an event the module keeps failing on is not received forever,
/// nor lost: after five receives SQS moves it to the module's dead-letter queue.
#[tokio::test]
async fn a_service_modules_queue_sends_to_its_dead_letter_queue_after_five_receives() {
    let Some(Setup { bus, sqs }) = setup("eventbridge_dead_letters").await else {
        return;
    };
    let module = unique_module("stock");
    let subscriptions = [subscription("company-created", "company.created")];
    for _ in 0..2 {
        // Subscribing again (a new install) keeps the queues and their redrive policy.
        bus.subscribe(&module, &subscriptions, &service())
            .await
            .expect("subscribed");
    }
    let url = queue_url(&sqs, &module).await;
    let dead = sqs
        .get_queue_url()
        .queue_name(dead_letter_queue_name(&module))
        .send()
        .await
        .expect("the dead-letter queue exists");
    let dead_url = dead.queue_url().unwrap_or_default().to_owned();
    assert!(
        dead_url.ends_with(&format!("plinth-{module}-events-dlq")),
        "{dead_url}"
    );
    let attribute = |url: String, name: QueueAttributeName| {
        let sqs = sqs.clone();
        async move {
            let read = sqs.get_queue_attributes().queue_url(url);
            let read = read.attribute_names(name.clone()).send().await;
            let attributes = read.expect("the queue's attributes");
            let attributes = attributes.attributes().cloned().unwrap_or_default();
            attributes.get(&name).cloned().unwrap_or_default()
        }
    };
    let dead_arn = attribute(dead_url.clone(), QueueAttributeName::QueueArn).await;
    let redrive = attribute(url.clone(), QueueAttributeName::RedrivePolicy).await;
    let redrive: Value = serde_json::from_str(&redrive).expect("a JSON redrive policy");
    assert_eq!(redrive["deadLetterTargetArn"], json!(dead_arn));
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "5"
    );
    let retention = attribute(dead_url.clone(), QueueAttributeName::MessageRetentionPeriod).await;
    assert_eq!(retention, "1209600", "dead letters are kept 14 days");

    bus.publish(vec![platform_event("company.created", json!({}))])
        .await
        .expect("published");
    let mut receives = 0;
    while receives < 10 {
        let received = sqs
            .receive_message()
            .queue_url(&url)
            .visibility_timeout(0)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive from the queue");
        if received.messages().is_empty() {
            break;
        }
        receives += 1;
    }
    assert_eq!(receives, 5, "received five times, never deleted");
    let dead_letters = drain(&sqs, &dead_url).await;
    assert_eq!(dead_letters.len(), 1, "{dead_letters:#?}");
    assert_eq!(dead_letters[0]["detail-type"], "company.created");
}

#[tokio::test]
async fn subscribing_again_keeps_only_the_listed_rules_of_that_module() {
    let Some(Setup { bus, .. }) = setup("eventbridge_resubscribe").await else {
        return;
    };
    let hr = unique_module("hr");
    let payroll = ModuleName::parse(&format!("{hr}-payroll")).expect("a module name");
    let both = [
        subscription("company-created", "company.created"),
        subscription("tenant-created", "tenant.created"),
    ];
    bus.subscribe(&hr, &both, &service())
        .await
        .expect("subscribed");
    bus.subscribe(&payroll, &both[..1], &service())
        .await
        .expect("subscribed");
    bus.subscribe(&hr, &both[1..], &service())
        .await
        .expect("subscribed again");
    let expected = [
        format!("plinth-{hr}-payroll-company-created"),
        format!("plinth-{hr}-tenant-created"),
    ];
    assert_eq!(rule_names(&bus).await, expected);
    bus.unsubscribe(&hr).await.expect("unsubscribed");
    assert_eq!(rule_names(&bus).await, expected[..1]);
}

/// A role Lambda may assume, created on the emulator with a raw IAM call (moto routes by the
/// service in the credential scope and does not check the signature).
async fn lambda_role(name: &str) -> String {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let encoded: String = trust
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let body = format!(
        "Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument={encoded}"
    );
    let scope = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0";
    let answer = reqwest::Client::new()
        .post(format!("{endpoint}/"))
        .header("authorization", scope)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("IAM answers");
    let answer = answer.text().await.unwrap_or_default();
    let arn = answer
        .split("<Arn>")
        .nth(1)
        .and_then(|a| a.split("</Arn>").next());
    arn.unwrap_or_else(|| panic!("no role ARN in {answer}"))
        .to_owned()
}

/// A function on the emulator, for rules to target (the emulator never runs it).
async fn function(name: &str) -> String {
    let config = aws::config_from_env().await;
    let role = lambda_role(name).await;
    // An empty zip archive: the package's bytes do not matter to the emulator.
    let mut empty_zip = b"PK\x05\x06".to_vec();
    empty_zip.resize(22, 0);
    let created = aws_sdk_lambda::Client::new(&config)
        .create_function()
        .function_name(name)
        .role(role)
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(empty_zip))
                .build(),
        )
        .send()
        .await
        .expect("create a function on the emulator");
    created.function_arn().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_lambda_module_is_the_target_of_its_rules_and_they_may_invoke_it() {
    let Some(Setup { bus, sqs }) = setup("eventbridge_lambda").await else {
        return;
    };
    let module = unique_module("fin");
    let function = function(&format!("plinth-{module}")).await;
    let deployment = Deployment {
        handle: json!({"function_arn": function}),
        addresses: Vec::new(),
        ..service()
    };
    let subscriptions = [subscription("company-created", "company.created")];
    let names = bus
        .subscribe(&module, &subscriptions, &deployment)
        .await
        .expect("subscribed");
    let targets = bus
        .client()
        .list_targets_by_rule()
        .rule(&names[0])
        .event_bus_name(bus.bus_name())
        .send()
        .await
        .expect("list the targets");
    let arns: Vec<&str> = targets.targets().iter().map(|t| t.arn()).collect();
    assert_eq!(arns, [function.as_str()]);
    let queue = sqs
        .get_queue_url()
        .queue_name(queue_name(&module))
        .send()
        .await;
    assert!(queue.is_err(), "no queue for a Lambda module");

    let rule_arn = format!("rule/{}/{}", bus.bus_name(), names[0]);
    let statements = invoke_statements(&function).await;
    assert_eq!(statements.len(), 1, "{statements:#?}");
    assert_eq!(
        statements[0]["Principal"]["Service"],
        "events.amazonaws.com"
    );
    let source = statements[0]["Condition"]["ArnLike"]["AWS:SourceArn"].as_str();
    assert!(
        source.is_some_and(|arn| arn.ends_with(&rule_arn)),
        "{statements:#?}"
    );
    bus.subscribe(&module, &subscriptions, &deployment)
        .await
        .expect("subscribing again is fine");
    assert_eq!(invoke_statements(&function).await, statements);

    bus.unsubscribe(&module).await.expect("unsubscribed");
    assert!(invoke_statements(&function).await.is_empty());
}

/// The statements of the function's policy letting something invoke it.
async fn invoke_statements(function: &str) -> Vec<Value> {
    let config = aws::config_from_env().await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let Ok(policy) = lambda.get_policy().function_name(function).send().await else {
        return Vec::new();
    };
    let policy: Value = serde_json::from_str(policy.policy().unwrap_or("{}")).unwrap_or_default();
    let statements = policy["Statement"].as_array().cloned().unwrap_or_default();
    statements
        .into_iter()
        .filter(|s| s["Action"] == "lambda:InvokeFunction")
        .collect()
}

#[tokio::test]
async fn an_invalid_pattern_creates_nothing() {
    let Some(Setup { bus, sqs }) = setup("eventbridge_invalid").await else {
        return;
    };
    let module = unique_module("fin");
    let mut broken = subscription("broken", "company.created");
    broken.pattern.insert(
        "detail".into(),
        json!({"amount": [{"numeric": [">", "x"]}]}),
    );
    let error = bus
        .subscribe(&module, &[broken], &service())
        .await
        .expect_err("refused");
    assert_eq!(
        error.to_string(),
        "subscription `broken` of ".to_owned()
            + module.as_str()
            + ": Event pattern is not valid. Reason: Value of > must be numeric (at `detail.amount[0].numeric`)"
    );
    assert!(rule_names(&bus).await.is_empty());
    let queue = sqs
        .get_queue_url()
        .queue_name(queue_name(&module))
        .send()
        .await;
    assert!(queue.is_err(), "no queue for a refused subscription");
}

#[tokio::test]
async fn many_events_are_published_in_batches_and_all_arrive() {
    let Some(Setup { bus, sqs }) = setup("eventbridge_batches").await else {
        return;
    };
    let module = unique_module("fin");
    let subscriptions = [subscription("config-changed", "config.changed")];
    bus.subscribe(&module, &subscriptions, &service())
        .await
        .expect("subscribed");
    let url = queue_url(&sqs, &module).await;
    let events: Vec<_> = (0..23)
        .map(|n| platform_event("config.changed", json!({"n": n})))
        .collect();
    bus.publish(events).await.expect("published");
    let mut received: Vec<i64> = drain(&sqs, &url)
        .await
        .iter()
        .filter_map(|e| e["detail"]["n"].as_i64())
        .collect();
    received.sort_unstable();
    assert_eq!(received, (0..23).collect::<Vec<i64>>());
}
