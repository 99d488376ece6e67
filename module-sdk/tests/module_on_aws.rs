//! A module built with the SDK, started as ECS starts it: it registers the task's own address
//! (read from the task metadata endpoint), reads its API key from Secrets Manager (again after
//! a rotation), and consumes its SQS queue, dead-letter queue included. The Secrets Manager and
//! SQS tests run against the emulator (moto) and skip without one (fail under CI).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use axum::Router;
use axum::routing::get;
use plinth_module_sdk::subscriber::{Delivery, Subscriptions};
use plinth_module_sdk::testkit::{FakePlatform, TestKit};
use plinth_module_sdk::{ApiError, Manifest, Module, ModuleEnv, SetupError};
use serde_json::{Value, json};

const TASK_METADATA: &str = include_str!("fixtures/aws/ecs-task-metadata-v4.json");
const EVENTBRIDGE_BODY: &str = include_str!("fixtures/aws/eventbridge-to-sqs-body.json");

fn manifest() -> Manifest {
    Manifest::from_json_str(
        &json!({
            "name": "stock", "display_name": "Stock", "version": "1.0.0",
            "backend": {"type": "microservice", "api_prefix": "/api/v1/stock", "port": 8000},
            "events": {"subscribes": [
                {"name": "invoice-paid", "pattern": {"detail-type": ["financial.invoice.paid"]},
                 "path": "/_plinth/events/invoice-paid"},
                {"name": "invoice-voided", "pattern": {"detail-type": ["financial.invoice.voided"]},
                 "path": "/_plinth/events/invoice-voided"}
            ]}
        })
        .to_string(),
    )
    .expect("a valid manifest")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a local port");
    listener.local_addr().expect("its address").port()
}

/// Waits up to `seconds` for `done`.
async fn wait_until(seconds: u64, mut done: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while tokio::time::Instant::now() < deadline {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    done().await
}

fn emulator_configured(test: &str) -> bool {
    if std::env::var_os("AWS_ENDPOINT_URL").is_some() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: CI is set but AWS_ENDPOINT_URL is not; run the tests with ./tests/run"
    );
    eprintln!("{test}: skipped, no emulator (AWS_ENDPOINT_URL unset); ./tests/run starts one");
    false
}

/// A name no other test (or earlier run against the same emulator) uses.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Serves a task metadata endpoint on a local port; its base URL is what ECS puts in
/// `ECS_CONTAINER_METADATA_URI_V4`.
async fn task_metadata_endpoint(document: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a local port");
    let address = listener.local_addr().expect("its address");
    let app = Router::new().route(
        "/v4/e9028f8d5d8e4f258373e7b93ce9a3c3-2495160603/task",
        get(move || async move { ([("content-type", "application/json")], document) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/v4/e9028f8d5d8e4f258373e7b93ce9a3c3-2495160603")
}

/// Finding 3: an ECS task registers the address the platform can reach it at, read from the
/// task metadata endpoint, never `127.0.0.1`.
#[tokio::test]
async fn an_ecs_task_registers_its_own_address_from_the_task_metadata_never_loopback() {
    let kit = TestKit::new("stock");
    let platform = FakePlatform::start(&kit).await;
    let port = free_port();
    let env = ModuleEnv {
        port,
        task_metadata_url: Some(task_metadata_endpoint(TASK_METADATA).await),
        ..platform.env()
    };
    let module = Module::new(manifest(), env.verifier());
    let server = tokio::spawn(async move { module.serve(&env).await });
    let registered = wait_until(5, async || !platform.instances().is_empty()).await;
    server.abort();
    assert!(registered, "the task registered itself");
    let instance = format!("http://10.0.2.106:{port}");
    assert_eq!(
        platform.instances(),
        [json!({"instance_url": instance, "health_check_url": format!("{instance}/health")})]
    );
}

/// Finding 3: on ECS, a task that cannot read its address does not start (rather than
/// register an address nobody can reach), and says why.
#[tokio::test]
async fn an_ecs_task_whose_metadata_cannot_be_read_does_not_start() {
    let kit = TestKit::new("stock");
    let platform = FakePlatform::start(&kit).await;
    let nothing = format!("http://127.0.0.1:{}/v4/x", free_port());
    let env = ModuleEnv {
        port: free_port(),
        task_metadata_url: Some(nothing.clone()),
        ..platform.env()
    };
    let error = Module::new(manifest(), env.verifier())
        .serve(&env)
        .await
        .unwrap_err();
    let SetupError(message) = error;
    assert!(
        message.starts_with(&format!(
            "cannot tell this ECS task's address from its metadata ({nothing}/task, from \
             ECS_CONTAINER_METADATA_URI_V4): "
        )),
        "{message}"
    );
    assert!(message.ends_with("set PLINTH_INSTANCE_URL to register another address"));
    assert!(platform.instances().is_empty());

    let no_address = task_metadata_endpoint(r#"{"Containers": [{"Networks": []}]}"#).await;
    let env = ModuleEnv {
        task_metadata_url: Some(no_address),
        ..env
    };
    let SetupError(message) = Module::new(manifest(), env.verifier())
        .serve(&env)
        .await
        .unwrap_err();
    assert!(
        message.contains("no container of the task has an IPv4 address"),
        "{message}"
    );
}

async fn secrets() -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&aws_config::load_from_env().await)
}

/// Finding 7 (module half): on AWS the API key is not in the environment; the module reads
/// it from its secret at start, registers with it, and after a rotation (once the platform
/// accepts only the new key) reads the secret again and retries, so its calls keep working.
#[tokio::test]
async fn the_api_key_is_read_from_its_secret_at_start_and_again_after_a_rotation() {
    if !emulator_configured("api_key_from_secret") {
        return;
    }
    let secrets = secrets().await;
    let name = format!("plinth/module/{}/api-key", unique("stock"));
    let created = secrets
        .create_secret()
        .name(&name)
        .secret_string("pk_first")
        .send()
        .await
        .expect("the secret created on the emulator");
    let arn = created.arn().expect("the secret's ARN").to_owned();

    let kit = TestKit::new("stock");
    let platform = FakePlatform::start(&kit).await;
    platform.accept_keys(&["pk_first"]);
    platform.grant("acme", "ann", "stock:items.read");
    let port = free_port().to_string();
    let vars = HashMap::from([
        ("PLINTH_URL", platform.url().to_owned()),
        ("PLINTH_API_KEY_SECRET", arn.clone()),
        ("PORT", port),
    ]);
    let env = ModuleEnv::from_vars(&manifest(), |name| vars.get(name).cloned()).expect("an env");
    let served = env.clone();
    let module = Module::new(manifest(), served.verifier());
    let server = tokio::spawn(async move { module.serve(&served).await });
    let registered = wait_until(10, async || !platform.instances().is_empty()).await;
    assert!(registered, "registered with the key from the secret");
    assert_eq!(platform.refused_keys(), 0);

    // Rotation: the new key goes into the secret; during the overlap both keys work.
    secrets
        .put_secret_value()
        .secret_id(&arn)
        .secret_string("pk_second")
        .send()
        .await
        .expect("the secret rotated");
    platform.accept_keys(&["pk_first", "pk_second"]);
    let client = env.platform();
    let allowed = client.verify_permission("acme", "ann", "stock:items.read", None);
    assert_eq!(allowed.await, Ok(true));
    assert_eq!(platform.refused_keys(), 0, "the old key still works");

    // The overlap ends: the old key is refused once, the secret read again, the call retried.
    platform.accept_keys(&["pk_second"]);
    let allowed = client.verify_permission("acme", "ann", "stock:items.read", None);
    assert_eq!(allowed.await, Ok(true));
    assert_eq!(platform.refused_keys(), 1);
    let config = env.config().get("acme", None).await;
    assert_eq!(
        config,
        Ok(None),
        "other clients of the module use the new key"
    );
    assert_eq!(platform.refused_keys(), 1);
    server.abort();
}

/// Finding 7: a module that cannot read its secret does not start, and names the secret.
#[tokio::test]
async fn a_module_that_cannot_read_its_api_key_secret_does_not_start() {
    if !emulator_configured("api_key_secret_missing") {
        return;
    }
    let kit = TestKit::new("stock");
    let platform = FakePlatform::start(&kit).await;
    let missing =
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:plinth/module/stock/api-key-AbCdEf";
    let vars = HashMap::from([
        ("PLINTH_URL", platform.url().to_owned()),
        ("PLINTH_API_KEY_SECRET", missing.to_owned()),
        ("PORT", free_port().to_string()),
    ]);
    let env = ModuleEnv::from_vars(&manifest(), |name| vars.get(name).cloned()).expect("an env");
    let SetupError(message) = Module::new(manifest(), env.verifier())
        .serve(&env)
        .await
        .unwrap_err();
    assert!(
        message.starts_with(&format!(
            "cannot read the API key from secret {missing} (PLINTH_API_KEY_SECRET): "
        )),
        "{message}"
    );
    assert!(message.contains("ResourceNotFoundException"), "{message}");
    assert!(platform.instances().is_empty());
}

#[test]
fn the_key_and_its_secret_are_not_both_given() {
    let vars = HashMap::from([
        ("PLINTH_API_KEY", "pk_plain"),
        ("PLINTH_API_KEY_SECRET", "arn:aws:secretsmanager:…"),
    ]);
    let error = ModuleEnv::from_vars(&manifest(), |name| vars.get(name).map(|v| (*v).into()));
    assert_eq!(
        error.unwrap_err().to_string(),
        "PLINTH_API_KEY and PLINTH_API_KEY_SECRET are both set: set the key itself (one \
         machine) or the ARN of its secret (AWS), not both"
    );
}

/// The module's queue and its dead-letter queue, as the platform creates them (redrive after
/// five receives).
async fn queues(sqs: &aws_sdk_sqs::Client) -> (String, String) {
    let name = unique("plinth-stock-events");
    let dead = sqs.create_queue().queue_name(format!("{name}-dlq")).send();
    let dead_url = dead.await.expect("the DLQ").queue_url().unwrap().to_owned();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&dead_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("the DLQ's ARN");
    let arn = arn.attributes().unwrap()[&QueueAttributeName::QueueArn].clone();
    let redrive = json!({"deadLetterTargetArn": arn, "maxReceiveCount": "5"}).to_string();
    let queue = sqs
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send();
    let url = queue
        .await
        .expect("the queue")
        .queue_url()
        .unwrap()
        .to_owned();
    (url, dead_url)
}

/// How many messages the queue holds, visible or being handled.
async fn held(sqs: &aws_sdk_sqs::Client, url: &str) -> usize {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("the queue's attributes");
    let attributes = attributes.attributes().cloned().unwrap_or_default();
    attributes
        .values()
        .map(|n| n.parse::<usize>().unwrap_or(0))
        .sum()
}

type Calls = Arc<Mutex<Vec<(String, String)>>>;

fn subscriptions(env: &ModuleEnv, calls: &Calls) -> Subscriptions {
    let (paid, voided) = (calls.clone(), calls.clone());
    Subscriptions::new(env.config())
        .on("invoice-paid", move |d: Delivery<Value>| {
            let calls = paid.clone();
            async move {
                let invoice = d.payload["invoice_id"].as_str().unwrap_or_default();
                calls
                    .lock()
                    .unwrap()
                    .push((d.tenant_id, invoice.to_owned()));
                Ok::<(), ApiError>(())
            }
        })
        .on("invoice-voided", move |d: Delivery<Value>| {
            let calls = voided.clone();
            async move {
                calls.lock().unwrap().push((d.tenant_id, "voided".into()));
                Err(ApiError::bad_gateway("the ledger is down"))
            }
        })
}

/// Finding 5: a served module consumes its queue: an EventBridge event from a rule's SQS
/// target reaches the subscription's handler and is deleted; one whose handler keeps failing,
/// and one that is not an event, stay until the fifth receive moves them to the dead-letter
/// queue.
#[tokio::test]
async fn events_on_the_modules_queue_reach_their_handler_and_failures_end_in_the_dead_letter_queue()
{
    if !emulator_configured("queue_consumer") {
        return;
    }
    let sqs = aws_sdk_sqs::Client::new(&aws_config::load_from_env().await);
    let (url, dead_url) = queues(&sqs).await;
    let kit = TestKit::new("stock");
    let platform = FakePlatform::start(&kit).await;
    platform.enable("acme", json!({}));
    let env = ModuleEnv {
        port: free_port(),
        event_queue_url: Some(url.clone()),
        ..platform.env()
    };
    let calls = Calls::default();
    let module = Module::new(manifest(), env.verifier())
        .subscriptions(subscriptions(&env, &calls))
        .visibility_timeout(Duration::from_secs(1));
    let served = env.clone();
    let server = tokio::spawn(async move { module.serve(&served).await });

    let send = |body: String| sqs.send_message().queue_url(&url).message_body(body).send();
    send(EVENTBRIDGE_BODY.to_owned()).await.expect("sent");
    let delivered = wait_until(10, async || !calls.lock().unwrap().is_empty()).await;
    assert!(delivered, "the handler ran");
    assert!(
        wait_until(5, async || held(&sqs, &url).await == 0).await,
        "and the message is deleted"
    );
    assert_eq!(
        *calls.lock().unwrap(),
        [("acme".to_owned(), "INV-2024-0042".to_owned())]
    );

    let mut voided: Value = serde_json::from_str(EVENTBRIDGE_BODY).unwrap();
    voided["detail-type"] = json!("financial.invoice.voided");
    voided["detail"]["event_id"] = json!("01926d4c-1f2e-7a3b-8c4d-000000000002");
    send(voided.to_string()).await.expect("sent");
    send("not an event".to_owned()).await.expect("sent");
    let moved = wait_until(40, async || held(&sqs, &dead_url).await == 2).await;
    server.abort();
    assert!(moved, "both ended in the dead-letter queue");
    let failed = calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.1 == "voided")
        .count();
    assert_eq!(
        failed, 5,
        "the failing handler ran on each of the five receives"
    );
    assert_eq!(
        held(&sqs, &url).await,
        0,
        "nothing is left on the module's queue"
    );
}

/// On AWS the installer creates the module's queue just after the module starts, and nothing
/// tells the module its URL: a module that subscribes finds `plinth-{module}-events` by name
/// once it exists, and consumes it.
#[tokio::test]
async fn a_module_on_aws_finds_its_queue_by_name_once_the_platform_creates_it() {
    if !emulator_configured("queue_by_name") {
        return;
    }
    let sqs = aws_sdk_sqs::Client::new(&aws_config::load_from_env().await);
    let kit = TestKit::new("stock");
    let platform = FakePlatform::start(&kit).await;
    platform.enable("acme", json!({}));
    let env = ModuleEnv {
        port: free_port(),
        event_bus: Some("plinth".into()),
        event_queue_url: None,
        ..platform.env()
    };
    let calls = Calls::default();
    let module = Module::new(manifest(), env.verifier())
        .subscriptions(subscriptions(&env, &calls))
        .visibility_timeout(Duration::from_secs(1));
    let served = env.clone();
    let server = tokio::spawn(async move { module.serve(&served).await });

    // The platform subscribes the module after it is up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let url = sqs
        .create_queue()
        .queue_name("plinth-stock-events")
        .send()
        .await
        .expect("the module's queue")
        .queue_url()
        .unwrap()
        .to_owned();
    sqs.send_message()
        .queue_url(&url)
        .message_body(EVENTBRIDGE_BODY)
        .send()
        .await
        .expect("sent");
    let delivered = wait_until(20, async || !calls.lock().unwrap().is_empty()).await;
    server.abort();
    assert!(delivered, "the handler ran");
    assert_eq!(
        *calls.lock().unwrap(),
        [("acme".to_owned(), "INV-2024-0042".to_owned())]
    );
}
