//! The in-process bus of one-machine mode: listeners in this process (caches, the delivery
//! worker) receive every event, and the most recent ones are kept for inspection.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::broadcast;

use super::{Event, EventBus, PublishError};

const KEPT: usize = 1000;

#[derive(Debug)]
pub struct LocalBus {
    sender: broadcast::Sender<Event>,
    recent: Mutex<VecDeque<Event>>,
}

impl Default for LocalBus {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(4096).0,
            recent: Mutex::new(VecDeque::with_capacity(KEPT)),
        }
    }
}

impl LocalBus {
    /// Every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }

    /// The most recent events (up to 1000), oldest first.
    pub fn recent(&self) -> Vec<Event> {
        self.recent
            .lock()
            .map(|recent| recent.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl EventBus for LocalBus {
    async fn publish(&self, events: Vec<Event>) -> Result<(), PublishError> {
        if let Ok(mut recent) = self.recent.lock() {
            for event in &events {
                if recent.len() == KEPT {
                    recent.pop_front();
                }
                recent.push_back(event.clone());
            }
        }
        for event in events {
            // No listener is fine: nobody needs this event in this process.
            let _ = self.sender.send(event);
        }
        Ok(())
    }
}
