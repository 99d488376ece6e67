//! Staged rollouts on AWS: started through the registry API function, stepped by the
//! rollout-driver function (invoked as its schedule does, with `{}`), judged on what the usage
//! function counted per version from the access log (the `AccessLog` shim's lines in the
//! template's format, `version` from the authorizer's context), and heard on the platform's
//! bus through an SQS queue a rule of this file's own fills.

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};

use crate::access_log::Logged;
use crate::api_gateway::{ApiGateway, Request};
use crate::platform::{Cell, HEALTH_CHECKER, ROLLOUT_DRIVER, USAGE};
use crate::{Users, alongside_reaches, expect, installation_reaches};

/// The platform's rollout events, as a subscriber on the bus gets them: a rule on the
/// platform's bus (`module.rollout.*`) with an SQS queue as its target.
struct RolloutEvents {
    sqs: aws_sdk_sqs::Client,
    url: String,
    seen: Vec<Value>,
}

impl RolloutEvents {
    async fn subscribe(cell: &Cell) -> Self {
        let sqs = aws_sdk_sqs::Client::new(&cell.sdk);
        let name = format!("cell-rollout-events-{}", std::process::id());
        let url = sqs
            .create_queue()
            .queue_name(&name)
            .send()
            .await
            .expect("create the subscriber's queue")
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
            .expect("the queue's ARN");
        let events = aws_sdk_eventbridge::Client::new(&cell.sdk);
        events
            .put_rule()
            .name(&name)
            .event_bus_name(&cell.bus)
            .event_pattern(json!({"detail-type": [{"prefix": "module.rollout."}]}).to_string())
            .send()
            .await
            .expect("put the subscriber's rule");
        events
            .put_targets()
            .rule(&name)
            .event_bus_name(&cell.bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(arn)
                    .build()
                    .expect("a target"),
            )
            .send()
            .await
            .expect("put the subscriber's target");
        Self {
            sqs,
            url,
            seen: Vec::new(),
        }
    }

    /// The first event of `detail_type` about rollout `id`, waiting for it up to 30 s.
    async fn expect(&mut self, detail_type: &str, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = self
                .seen
                .iter()
                .find(|e| e["detail-type"] == detail_type && e["detail"]["rollout_id"] == id);
            if let Some(found) = found {
                return found.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {detail_type} of rollout {id} on the bus; got {:#?}",
                self.seen
            );
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .wait_time_seconds(1)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive from the subscriber's queue");
            for message in received.messages() {
                if let Some(body) = message.body() {
                    self.seen
                        .push(serde_json::from_str(body).unwrap_or(Value::Null));
                }
            }
        }
    }
}

/// One step of the rollout driver, as its schedule invokes it; how many active rollouts it
/// looked at.
async fn step(api: &ApiGateway<'_>) -> u64 {
    let stepped = api.cell.invoke(ROLLOUT_DRIVER, &json!({})).await;
    assert!(
        stepped.function_error.is_none() && stepped.status == 200,
        "the rollout driver failed: {stepped:?}\n{}",
        api.cell.log(ROLLOUT_DRIVER)
    );
    stepped.payload["rollouts"]
        .as_u64()
        .unwrap_or_else(|| panic!("the driver's answer: {}", stepped.payload))
}

/// `n` requests of acme to financial `version` answered `status`, logged as API Gateway logs
/// them, then delivered by CloudWatch Logs to the usage function — twice, as it may.
async fn logged(api: &ApiGateway<'_>, version: &str, status: u16, n: usize) {
    let authorizer = json!({"tenant": "acme", "module": "financial", "version": version,
                            "request_bytes": "0"});
    for _ in 0..n {
        api.cell.access_log.record(&Logged {
            status,
            response_bytes: 20,
            latency_ms: 12,
            route_key: "ANY /api/v1/financial/{proxy+}",
            authorizer: &authorizer,
        });
    }
    let (delivery, _) = api.cell.access_log.delivery().expect("lines were logged");
    for _ in 0..2 {
        let counted = api.cell.invoke(USAGE, &delivery).await;
        assert!(
            counted.function_error.is_none(),
            "the usage function failed: {:?}\n{}",
            counted.payload,
            api.cell.log(USAGE)
        );
    }
}

async fn start(api: &ApiGateway<'_>, users: &Users, body: Value) -> String {
    let started = api
        .send(
            Request::new("POST", "/api/v1/modules/financial/rollouts")
                .bearer(&users.operator)
                .json(body),
        )
        .await;
    expect(&started, 201, "start a rollout of financial 1.3.0");
    started.json()["id"].as_str().expect("its id").to_owned()
}

async fn show(api: &ApiGateway<'_>, users: &Users, id: &str) -> Value {
    let path = format!("/api/v1/modules/financial/rollouts/{id}");
    let shown = api
        .send(Request::new("GET", &path).bearer(&users.operator))
        .await;
    expect(&shown, 200, "the rollout");
    shown.json()
}

/// Acme's pin of financial, as the registry API shows it (`null` when unpinned).
async fn pin(api: &ApiGateway<'_>, users: &Users) -> Value {
    let shown = api
        .send(
            Request::new("GET", "/api/v1/tenants/acme/modules/financial/pin")
                .bearer(&users.operator),
        )
        .await;
    expect(&shown, 200, "acme's pin");
    shown.json()["pinned"].clone()
}

/// Financial 1.3.0 (published by the upgrade step) installed alongside 1.2.0 by the installer
/// function, its function checked healthy; then two rollouts of it to acme. The first's canary
/// answers 5xx in the access log: the driver stops it and moves acme back on its own, the
/// reason recorded, audited in acme's log and the platform's, and emitted on the bus. The
/// second's canary answers 200: after its bake the wave advances, and the rollout completes.
/// Then 1.2.0 is the default again and 1.3.0 uninstalled, as the next steps expect.
pub(crate) async fn stepped_and_watched_on_aws(api: &ApiGateway<'_>, users: &Users) {
    let mut events = RolloutEvents::subscribe(api.cell).await;
    let asked = api
        .send(
            Request::new("POST", "/api/v1/modules/financial/install")
                .bearer(&users.operator)
                .json(json!({"version": "1.3.0", "alongside": true})),
        )
        .await;
    expect(&asked, 202, "install financial 1.3.0 alongside");
    alongside_reaches(api, users, "1.3.0", "installed").await;
    let checked = api.cell.invoke(HEALTH_CHECKER, &json!({})).await;
    assert!(checked.function_error.is_none(), "{checked:?}");

    // A canary answering 5xx.
    let id = start(
        api,
        users,
        json!({"version": "1.3.0", "waves": "canary:acme", "bake_seconds": 600,
               "thresholds": {"min_requests": 5}}),
    )
    .await;
    assert_eq!(step(api).await, 1);
    assert_eq!(pin(api, users).await, "1.3.0", "the canary moved");
    assert_eq!(show(api, users, &id).await["waves"][0]["state"], "baking");
    logged(api, "1.3.0", 503, 4).await;
    logged(api, "1.3.0", 200, 1).await;
    logged(api, "1.2.0", 200, 20).await;
    step(api).await;
    let stopped = show(api, users, &id).await;
    assert_eq!(stopped["state"], "rolled_back", "{stopped}");
    let reason = stopped["reason"].as_str().unwrap_or_default().to_owned();
    assert!(
        reason.contains("error rate 80.0% (4 of 5 requests answered 5xx)"),
        "{reason}"
    );
    assert_eq!(stopped["waves"][0]["figures"]["requests"], 5, "{stopped}");
    assert_eq!(stopped["moved"][0]["restored"], true);
    assert_eq!(pin(api, users).await, Value::Null, "acme is back, unpinned");
    let audit = api
        .send(Request::new("GET", "/api/v1/tenants/acme/audit").bearer(&users.admin))
        .await;
    expect(&audit, 200, "acme's audit log");
    let records = audit.json()["records"].clone();
    let back = records
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["action"] == "module.rollout.rolled_back" && r["detail"]["rollout_id"] == id)
        .unwrap_or_else(|| panic!("no rollback in acme's audit: {records:#}"));
    assert_eq!(back["detail"]["reason"], reason.as_str());
    assert_eq!(back["detail"]["version"], "1.2.0");
    let event = events.expect("module.rollout.rolled_back", &id).await;
    assert_eq!(event["detail"]["reason"], reason.as_str());
    assert_eq!(event["detail"]["tenants"], json!(["acme"]));

    // Figures are kept per minute, and a wave counts the whole minute its bake began: the next
    // rollout starts in a minute of its own, past the first one's 5xx.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    tokio::time::sleep(Duration::from_millis(
        60_500 - (now.as_millis() % 60_000) as u64,
    ))
    .await;

    // A canary answering 200: the wave advances after its bake, and the rollout completes.
    // The bake is long enough for the steps between its start and "still baking" (two
    // invocations of the usage function among them, over a second on a loaded machine once).
    const BAKE: Duration = Duration::from_secs(5);
    let past_a_bake = || BAKE + Duration::from_millis(100);
    let id = start(
        api,
        users,
        json!({"version": "1.3.0", "waves": "canary:acme,100%", "bake_seconds": BAKE.as_secs(),
               "thresholds": {"min_requests": 5}}),
    )
    .await;
    step(api).await;
    // The canary's bake began during that step, so it is over a bake from now, not sooner.
    let baking = tokio::time::Instant::now();
    assert_eq!(pin(api, users).await, "1.3.0");
    logged(api, "1.3.0", 200, 30).await;
    step(api).await;
    assert_eq!(
        show(api, users, &id).await["current_wave"],
        1,
        "still baking"
    );
    tokio::time::sleep_until(baking + past_a_bake()).await;
    step(api).await;
    let advanced = show(api, users, &id).await;
    assert_eq!(advanced["current_wave"], 2, "{advanced}");
    assert_eq!(advanced["waves"][0]["state"], "done");
    assert_eq!(
        advanced["waves"][0]["figures"]["requests"], 30,
        "{advanced}"
    );
    events.expect("module.rollout.wave_advanced", &id).await;
    tokio::time::sleep(past_a_bake()).await;
    step(api).await;
    let completed = show(api, users, &id).await;
    assert_eq!(completed["state"], "completed", "{completed}");
    events.expect("module.rollout.completed", &id).await;
    assert_eq!(step(api).await, 0, "no rollout active");

    // As before: 1.2.0 the default, 1.3.0 no longer installed alongside.
    let default = api
        .send(
            Request::new("PUT", "/api/v1/modules/financial/default-version")
                .bearer(&users.operator)
                .json(json!({"version": "1.2.0"})),
        )
        .await;
    expect(&default, 200, "1.2.0 the default again");
    let removed = api
        .send(
            Request::new(
                "DELETE",
                "/api/v1/modules/financial/installation?version=1.3.0",
            )
            .bearer(&users.operator),
        )
        .await;
    expect(&removed, 202, "uninstall financial 1.3.0");
    alongside_reaches(api, users, "1.3.0", "uninstalled").await;
    installation_reaches(api, users, "financial", "installed").await;
}
