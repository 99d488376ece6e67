//! Publishing on EventBridge: events go out in `PutEvents` calls of at most 10 entries and
//! 256 KB; the entries a call reports as failed (throttling, internal errors) are retried, and
//! only they, with backoff; what still fails is given back in the [`PublishError`].

use async_trait::async_trait;

use super::super::{Event, PublishError, RetryPolicy};

/// The most entries one `PutEvents` call takes.
pub(crate) const MAX_ENTRIES: usize = 10;
/// The most bytes of entries one `PutEvents` call takes, and so one entry.
pub(crate) const MAX_BYTES: usize = 256 * 1024;

/// Why EventBridge refused one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryError {
    pub code: String,
    pub message: String,
}

impl EntryError {
    /// Throttling and EventBridge's own failures pass; a malformed entry or a missing
    /// permission does not.
    fn is_retryable(&self) -> bool {
        matches!(
            self.code.as_str(),
            "ThrottlingException" | "InternalFailure" | "InternalException" | "ServiceUnavailable"
        ) || self.code.is_empty()
    }

    fn describe(&self) -> String {
        match (self.code.is_empty(), self.message.is_empty()) {
            (true, _) => format!("refused: {}", self.message),
            (false, true) => self.code.clone(),
            (false, false) => format!("{}: {}", self.code, self.message),
        }
    }
}

/// One `PutEvents` call.
#[async_trait]
pub(crate) trait PutEvents: Send + Sync {
    /// Sends `batch`; gives back, entry by entry, `None` when accepted or why not; `Err` when
    /// the call itself failed (then no entry was accepted).
    async fn put_events(&self, batch: &[Event]) -> Result<Vec<Option<EntryError>>, String>;
}

/// The size EventBridge counts for an entry: source, detail-type, detail and resources in
/// UTF-8 bytes, plus 14 for the time.
pub(crate) fn entry_size(event: &Event) -> usize {
    let detail = serde_json::to_string(&event.detail).map_or(0, |d| d.len());
    let resources: usize = event.resources.iter().map(String::len).sum();
    14 + event.source.len() + event.detail_type.len() + detail + resources
}

/// Consecutive groups of events, each fitting one call.
pub(crate) fn batches(events: Vec<Event>) -> Vec<Vec<Event>> {
    let mut batches: Vec<Vec<Event>> = Vec::new();
    let mut bytes = 0;
    for event in events {
        let size = entry_size(&event);
        match batches.last_mut() {
            Some(batch) if batch.len() < MAX_ENTRIES && bytes + size <= MAX_BYTES => {
                bytes += size;
                batch.push(event);
            }
            _ => {
                bytes = size;
                batches.push(vec![event]);
            }
        }
    }
    batches
}

/// Publishes `events` through `sender` with `policy`.
pub(crate) async fn publish(
    sender: &dyn PutEvents,
    policy: RetryPolicy,
    events: Vec<Event>,
) -> Result<(), PublishError> {
    let (mut pending, too_large): (Vec<Event>, Vec<Event>) =
        events.into_iter().partition(|e| entry_size(e) <= MAX_BYTES);
    let mut failed: Vec<(Event, String)> = too_large
        .into_iter()
        .map(|e| (e, "larger than EventBridge's 256 KB per entry".to_owned()))
        .collect();
    let mut attempts = 0;
    while !pending.is_empty() {
        attempts += 1;
        let mut retry = Vec::new();
        for batch in batches(pending) {
            send(sender, batch, &mut retry, &mut failed).await;
        }
        if retry.is_empty() {
            break;
        }
        if attempts >= policy.attempts.max(1) {
            failed.extend(retry);
            break;
        }
        tracing::debug!(
            events = retry.len(),
            attempts,
            "PutEvents entries failed; retrying"
        );
        tokio::time::sleep(policy.backoff(attempts)).await;
        pending = retry.into_iter().map(|(event, _)| event).collect();
    }
    if failed.is_empty() {
        return Ok(());
    }
    let mut reasons: Vec<&str> = Vec::new();
    for (_, reason) in &failed {
        if !reasons.contains(&reason.as_str()) {
            reasons.push(reason);
        }
    }
    let reason = reasons.join("; ");
    Err(PublishError {
        failed: failed.into_iter().map(|(event, _)| event).collect(),
        reason,
    })
}

/// Sends one batch, sorting its events into those to retry and those that failed for good.
async fn send(
    sender: &dyn PutEvents,
    batch: Vec<Event>,
    retry: &mut Vec<(Event, String)>,
    failed: &mut Vec<(Event, String)>,
) {
    let results = match sender.put_events(&batch).await {
        Ok(results) => results,
        Err(reason) => {
            retry.extend(batch.into_iter().map(|event| (event, reason.clone())));
            return;
        }
    };
    let mut results = results.into_iter();
    for event in batch {
        match results.next() {
            Some(None) => {}
            Some(Some(error)) if error.is_retryable() => retry.push((event, error.describe())),
            Some(Some(error)) => failed.push((event, error.describe())),
            None => retry.push((event, "EventBridge gave no result for the entry".into())),
        }
    }
}

#[cfg(test)]
mod tests;
