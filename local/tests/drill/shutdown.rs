//! `plinth up` stopped mid-work (issue 22): while an install waits on its module's
//! post-install hook, three writers roll out configuration (the tenant's, two companies') and
//! a module publishes a burst of events; then SIGTERM, and SIGKILL if it has not stopped within
//! a grace. Started again on the same data directory (or table): every write answered 2xx reads
//! back (or the one in flight at the stop, which may have landed), every event answered 202
//! is delivered (on AWS: in the module's queue), the interrupted install finishes, and no
//! module process of the stopped platform runs.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::installer::Aws;
use super::support::{Api, Control, Platform, alive, emulator, kill_all, manifest, unique};

const TENANT: &str = "shop";
const COMPANIES: [&str; 2] = ["shop-a", "shop-b"];
const POST_INSTALL: &str = "_plinth/hooks/post_install";
const DELIVERED: &str = "_plinth/events/pinged";
/// How long the bursts run before the stop (longer on the emulator, which is slower).
const BURST: Duration = Duration::from_millis(1500);
const BURST_ON_AWS: Duration = Duration::from_secs(4);
/// How long `plinth up` has to stop on SIGTERM before it is killed: enough to stop, or so
/// short that SIGKILL lands in the middle of its stopping.
const GRACE: Duration = Duration::from_secs(5);
const NO_GRACE: Duration = Duration::from_millis(30);

/// What one writer had answered: the last value acknowledged and the last one sent (the one
/// in flight at the stop, if it got no answer).
#[derive(Debug, Default, Clone, Copy)]
struct Written {
    acknowledged: Option<u64>,
    sent: Option<u64>,
    count: u64,
}

/// Writes `{field: 1, 2, …}` to `path` one after the other until `stop` or the first write
/// that gets no answer.
async fn rollout(api: Api, path: String, field: &'static str, stop: Arc<AtomicBool>) -> Written {
    let mut written = Written::default();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        written.sent = Some(n);
        let body = json!({"configuration": {field: n}});
        let (status, _) = api.call("PUT", &path, Some(&body)).await;
        if (200..300).contains(&status) {
            written.acknowledged = Some(n);
            written.count += 1;
        } else if status == 0 {
            break; // no answer: the platform is stopping, and this write may or may not land
        }
    }
    written
}

/// Publishes `module`'s events one after the other until `stop` or the first that gets no
/// answer; the numbers answered 202.
async fn burst(api: Api, key: String, module: String, stop: Arc<AtomicBool>) -> Vec<usize> {
    let mut acknowledged = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        match api.publish(&key, &module, TENANT, n).await.0 {
            202 => acknowledged.push(n),
            0 => break,
            _ => {}
        }
    }
    acknowledged
}

async fn resolved(api: &Api, module: &str, company: Option<&str>, field: &str) -> Option<u64> {
    let query = company.map(|c| format!("?company={c}")).unwrap_or_default();
    let path = format!("/api/v1/tenants/{TENANT}/modules/{module}/config{query}");
    let config = api.expect("GET", &path, None, 200).await;
    config["configuration"][field].as_u64()
}

fn event_number(event: &Value) -> Option<usize> {
    event["detail"]["n"]
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
}

async fn stop_mid_work(aws: bool, grace: Duration) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let control = Control::default();
    let control_url = control.start().await;
    let names = aws.then(|| (unique("plinth-stop-"), unique("plinth-stop-")));
    let queues = match &names {
        Some((_, bus)) => Some(Aws::new(bus).await),
        None => None,
    };
    let mut platform = Platform::new(dir.path(), names, &control_url);
    platform.start().await;
    let api = Api::new(&platform.url, &platform.admin_token());
    let tenant = json!({"id": TENANT, "name": "Shop", "subscription_tier": "enterprise"});
    api.expect("POST", "/api/v1/tenants", Some(&tenant), 201)
        .await;
    for company in COMPANIES {
        let body = json!({"id": company, "name": company});
        api.expect(
            "POST",
            &format!("/api/v1/tenants/{TENANT}/companies"),
            Some(&body),
            201,
        )
        .await;
    }

    // A module installed and enabled, whose configuration is rolled out and whose events burst…
    let tag = match (aws, grace == GRACE) {
        (true, true) => "sa",
        (true, false) => "sak",
        (false, true) => "se",
        (false, false) => "sek",
    };
    let settled = format!("{tag}c-{}", unique("x"));
    api.expect("POST", "/api/v1/modules", Some(&manifest(&settled)), 201)
        .await;
    let install = json!({"version": "1.0.0"});
    api.expect(
        "POST",
        &format!("/api/v1/modules/{settled}/install"),
        Some(&install),
        202,
    )
    .await;
    assert_eq!(api.settled(&settled).await["status"], "installed");
    api.expect(
        "PUT",
        &format!("/api/v1/tenants/{TENANT}/modules/{settled}"),
        Some(&json!({"enabled": true})),
        200,
    )
    .await;
    // …and one whose install waits on its post-install hook.
    let late = format!("{tag}l-{}", unique("x"));
    control.gate(&late, POST_INSTALL);
    api.expect("POST", "/api/v1/modules", Some(&manifest(&late)), 201)
        .await;
    api.expect(
        "POST",
        &format!("/api/v1/modules/{late}/install"),
        Some(&install),
        202,
    )
    .await;
    control.called(&late, POST_INSTALL).await;

    let stop = Arc::new(AtomicBool::new(false));
    let tenant_path = format!("/api/v1/tenants/{TENANT}/modules/{settled}");
    let mut writers = vec![tokio::spawn(rollout(
        api.clone(),
        tenant_path,
        "tenant_seq",
        stop.clone(),
    ))];
    for company in COMPANIES {
        let path = format!("/api/v1/tenants/{TENANT}/companies/{company}/modules/{settled}");
        writers.push(tokio::spawn(rollout(
            api.clone(),
            path,
            "company_seq",
            stop.clone(),
        )));
    }
    let key = control.key_of(&settled);
    let publisher = tokio::spawn(burst(api.clone(), key, settled.clone(), stop.clone()));
    tokio::time::sleep(if aws { BURST_ON_AWS } else { BURST }).await;
    let first = platform.pid();
    let backends = control.pids();
    let stopped_itself = platform.terminate(grace).await;
    let left_after_stop: Vec<u32> = backends.iter().copied().filter(|p| alive(*p)).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let mut written = Vec::new();
    for writer in writers {
        written.push(writer.await.expect("a writer"));
    }
    let published = publisher.await.expect("the publisher");

    // The resumed install's post-install hook is answered at once this time.
    control.release(&late);
    platform.start().await;
    let outcome = Arc::new(Mutex::new(Vec::<String>::new()));
    let report = |line: String| {
        let outcome = outcome.clone();
        async move { outcome.lock().await.push(line) }
    };
    // Every acknowledged configuration write reads back.
    let checks = [
        (None, "tenant_seq"),
        (Some(COMPANIES[0]), "company_seq"),
        (Some(COMPANIES[1]), "company_seq"),
    ];
    let mut verified = 0;
    for ((company, field), written) in checks.into_iter().zip(&written) {
        let read = resolved(&api, &settled, company, field).await;
        let landed =
            read.is_some_and(|n| Some(n) == written.acknowledged || Some(n) == written.sent);
        if landed {
            verified += 1;
        } else {
            report(format!(
                "{company:?} {field}: read {read:?} after {written:?}"
            ))
            .await;
        }
    }
    // Every event answered 202 is delivered (at least once).
    let deadline = Instant::now() + Duration::from_secs(20);
    let delivered: BTreeSet<usize> = loop {
        let delivered: BTreeSet<usize> = match &queues {
            Some(queues) => queues
                .read_queue(&settled, 2)
                .await
                .iter()
                .filter_map(event_number)
                .collect(),
            None => control
                .calls(&settled, DELIVERED)
                .iter()
                .filter_map(|c| event_number(&c.body))
                .collect(),
        };
        if published.iter().all(|n| delivered.contains(n)) || Instant::now() > deadline {
            break delivered;
        }
        if queues.is_some() {
            // What was read is hidden for two minutes: count it once.
            break delivered;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let lost: Vec<usize> = published
        .iter()
        .copied()
        .filter(|n| !delivered.contains(n))
        .collect();
    // Off AWS the bus is this process's memory: SIGTERM delivers what is in flight, but a
    // SIGKILL in the middle of stopping loses an event answered 202 and not yet delivered
    // (RELIABILITY.md says so). EventBridge has it once it answered.
    let bus_in_memory = !aws && grace != GRACE;
    if !lost.is_empty() && !bus_in_memory {
        report(format!(
            "{} of {} acknowledged events never delivered: {lost:?}",
            lost.len(),
            published.len()
        ))
        .await;
    }
    // The interrupted install finishes; its post-install hook ran again (hooks: at least once).
    let late_state = api.settled(&late).await;
    if late_state["status"] != "installed" {
        report(format!("the interrupted install ended {late_state}")).await;
    }
    // Nothing of the stopped platform runs.
    let orphans: Vec<u32> = backends.iter().copied().filter(|p| alive(*p)).collect();
    if !orphans.is_empty() {
        report(format!(
            "backends of the stopped platform ({first}) still run: {orphans:?}"
        ))
        .await;
    }
    eprintln!(
        "stop drill {tag}: SIGTERM {}; configuration writes acknowledged {:?}, verified {verified} of 3 writers' last; events acknowledged {}, delivered {} (lost: {lost:?}); backends left by the stop {left_after_stop:?}",
        if stopped_itself {
            "stopped it"
        } else {
            "did not: killed after the grace"
        },
        written.iter().map(|w| w.count).collect::<Vec<_>>(),
        published.len(),
        published.iter().filter(|n| delivered.contains(n)).count(),
    );
    let pids = control.pids();
    let stopped = platform.terminate(Duration::from_secs(10)).await;
    kill_all(&pids);
    let outcome = outcome.lock().await.clone();
    assert!(
        outcome.is_empty(),
        "after the stop and the start:\n{}",
        outcome.join("\n")
    );
    assert!(stopped, "SIGTERM stops plinth up");
    if grace == GRACE {
        assert!(stopped_itself, "SIGTERM stops plinth up within {GRACE:?}");
        assert!(
            left_after_stop.is_empty(),
            "SIGTERM left backends running: {left_after_stop:?}"
        );
    }
    assert!(
        !published.is_empty() && written.iter().all(|w| w.count > 0),
        "the bursts ran: {published:?} {written:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plinth_up_stopped_mid_install_rollout_and_events_keeps_every_acknowledged_change() {
    stop_mid_work(false, GRACE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plinth_up_killed_while_stopping_keeps_every_acknowledged_change_and_no_backend() {
    stop_mid_work(false, NO_GRACE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plinth_up_on_aws_stopped_mid_install_rollout_and_events_keeps_every_acknowledged_change() {
    if !emulator() {
        return;
    }
    stop_mid_work(true, GRACE).await;
    stop_mid_work(true, NO_GRACE).await;
}
