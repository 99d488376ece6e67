//! A small TTL cache for the hot path: every entry lives at most `ttl` (≤ 30 s, since a
//! change event cannot reach every warm Lambda), and change events drop entries sooner.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// The longest any cached answer may live.
pub const MAX_TTL: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct TtlCache<K, V> {
    ttl: Duration,
    entries: RwLock<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl: ttl.min(MAX_TTL),
            entries: RwLock::new(HashMap::new()),
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.read().ok()?;
        let (at, value) = entries.get(key)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    pub fn insert(&self, key: K, value: V) {
        if let Ok(mut entries) = self.entries.write() {
            // Bound the memory: past 100k entries, drop the stale ones first, then all.
            if entries.len() >= 100_000 {
                let ttl = self.ttl;
                entries.retain(|_, (at, _)| at.elapsed() < ttl);
                if entries.len() >= 100_000 {
                    entries.clear();
                }
            }
            entries.insert(key, (Instant::now(), value));
        }
    }

    pub fn remove(&self, key: &K) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(key);
        }
    }

    pub fn retain(&self, keep: impl Fn(&K) -> bool) {
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|k, _| keep(k));
        }
    }

    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Default for TtlCache<K, V> {
    fn default() -> Self {
        Self::new(MAX_TTL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_can_be_dropped() {
        let cache = TtlCache::new(Duration::from_millis(30));
        cache.insert("a", 1);
        assert_eq!(cache.get(&"a"), Some(1));
        cache.remove(&"a");
        assert_eq!(cache.get(&"a"), None);
        cache.insert("b", 2);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get(&"b"), None);
        assert_eq!(
            TtlCache::<u8, u8>::new(Duration::from_secs(600)).ttl,
            MAX_TTL
        );
    }
}
