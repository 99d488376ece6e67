//! Batching and partial-failure retries, against a fake `PutEvents` (the emulator never fails
//! part of a call).

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::*;

type Answer = dyn Fn(usize, &Event) -> Option<EntryError> + Send + Sync;

/// Answers each entry of call number `n` (from 0) with `answer(n, event)`, or fails whole calls
/// listed in `failing_calls`; records the detail `n` of every event sent, call by call.
struct Fake {
    calls: Mutex<Vec<Vec<u64>>>,
    answer: Box<Answer>,
    failing_calls: Vec<usize>,
}

impl Fake {
    fn new(answer: impl Fn(usize, &Event) -> Option<EntryError> + Send + Sync + 'static) -> Self {
        Self {
            calls: Mutex::new(Vec::new()),
            answer: Box::new(answer),
            failing_calls: Vec::new(),
        }
    }

    fn calls(&self) -> Vec<Vec<u64>> {
        self.calls.lock().expect("calls").clone()
    }
}

#[async_trait]
impl PutEvents for Fake {
    async fn put_events(&self, batch: &[Event]) -> Result<Vec<Option<EntryError>>, String> {
        let call = {
            let mut calls = self.calls.lock().expect("calls");
            calls.push(batch.iter().map(number).collect());
            calls.len() - 1
        };
        if self.failing_calls.contains(&call) {
            return Err("dispatch failure: connection reset".into());
        }
        Ok(batch.iter().map(|e| (self.answer)(call, e)).collect())
    }
}

fn event(n: u64, detail_bytes: usize) -> Event {
    let mut payload = Map::new();
    payload.insert("n".into(), json!(n));
    payload.insert("padding".into(), Value::String("x".repeat(detail_bytes)));
    Event::new("plinth.registry", "test.event", payload)
}

fn number(event: &Event) -> u64 {
    event.detail["n"].as_u64().unwrap_or(u64::MAX)
}

fn events(count: u64) -> Vec<Event> {
    (0..count).map(|n| event(n, 10)).collect()
}

const FAST: RetryPolicy = RetryPolicy {
    attempts: 3,
    initial_backoff: Duration::from_millis(1),
    max_backoff: Duration::from_millis(5),
};

fn throttled() -> Option<EntryError> {
    Some(EntryError {
        code: "ThrottlingException".into(),
        message: "Rate exceeded".into(),
    })
}

#[tokio::test]
async fn events_go_out_ten_to_a_call() {
    let fake = Fake::new(|_, _| None);
    publish(&fake, FAST, events(25)).await.expect("published");
    let sizes: Vec<usize> = fake.calls().iter().map(Vec::len).collect();
    assert_eq!(sizes, [10, 10, 5]);
    assert_eq!(fake.calls()[2], [20, 21, 22, 23, 24]);
}

#[tokio::test]
async fn a_call_stays_under_256_kb() {
    let fake = Fake::new(|_, _| None);
    let big: Vec<Event> = (0..5).map(|n| event(n, 100 * 1024)).collect();
    publish(&fake, FAST, big).await.expect("published");
    assert_eq!(fake.calls(), [vec![0, 1], vec![2, 3], vec![4]]);
}

#[tokio::test]
async fn an_event_over_256_kb_is_refused_and_the_rest_go_out() {
    let fake = Fake::new(|_, _| None);
    let mut batch = events(3);
    batch.insert(1, event(99, 300 * 1024));
    let error = publish(&fake, FAST, batch)
        .await
        .expect_err("one too large");
    let failed: Vec<u64> = error.failed.iter().map(number).collect();
    assert_eq!(failed, [99]);
    assert_eq!(error.reason, "larger than EventBridge's 256 KB per entry");
    assert_eq!(fake.calls(), [vec![0, 1, 2]]);
}

#[tokio::test]
async fn only_the_failed_entries_are_sent_again() {
    let fake = Fake::new(|call, e| match (call, number(e)) {
        (0, 2 | 5) => throttled(),
        _ => None,
    });
    publish(&fake, FAST, events(8))
        .await
        .expect("published on retry");
    assert_eq!(fake.calls(), [vec![0, 1, 2, 3, 4, 5, 6, 7], vec![2, 5]]);
}

#[tokio::test]
async fn entries_failing_every_time_are_given_back_after_the_last_attempt() {
    let fake = Fake::new(|_, e| if number(e) == 4 { throttled() } else { None });
    let error = publish(&fake, FAST, events(6))
        .await
        .expect_err("one keeps failing");
    assert_eq!(error.failed.iter().map(number).collect::<Vec<_>>(), [4]);
    assert_eq!(error.reason, "ThrottlingException: Rate exceeded");
    assert_eq!(
        error.to_string(),
        "1 event(s) not published: ThrottlingException: Rate exceeded"
    );
    assert_eq!(fake.calls(), [vec![0, 1, 2, 3, 4, 5], vec![4], vec![4]]);
}

#[tokio::test]
async fn a_malformed_entry_is_not_retried() {
    let fake = Fake::new(|_, e| {
        (number(e) == 1).then(|| EntryError {
            code: "MalformedDetail".into(),
            message: "Detail is malformed.".into(),
        })
    });
    let error = publish(&fake, FAST, events(3))
        .await
        .expect_err("malformed");
    assert_eq!(error.failed.iter().map(number).collect::<Vec<_>>(), [1]);
    assert_eq!(error.reason, "MalformedDetail: Detail is malformed.");
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test]
async fn a_failed_call_is_sent_again_whole() {
    let mut fake = Fake::new(|_, _| None);
    fake.failing_calls = vec![1];
    publish(&fake, FAST, events(15))
        .await
        .expect("published on retry");
    let calls = fake.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[2], calls[1]);
    assert_eq!(calls[1], [10, 11, 12, 13, 14]);
}

#[test]
fn entry_size_counts_what_eventbridge_counts() {
    let mut e = event(1, 0);
    e.resources = vec!["arn:a".into()];
    let detail = serde_json::to_string(&e.detail).expect("JSON").len();
    assert_eq!(
        entry_size(&e),
        14 + "plinth.registry".len() + "test.event".len() + detail + 5
    );
}
