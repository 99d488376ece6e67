//! What the hot path remembers: a small TTL cache (every entry lives at most `ttl` ≤ 30 s,
//! since a change event cannot reach every warm Lambda), and [`Staleness`], through which a
//! change tells every cache what it made stale, sooner than the TTL.
//!
//! Each domain service owns its caches and registers with [`Staleness::listen`]; a change
//! (see `changes`) marks what it touched, whichever service made it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// What a change made stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    /// A module's installation, settings, configuration or instances.
    Module(String),
    /// Every module's (a change that names none).
    Modules,
    /// A tenant's record (its tier).
    Tenant(String),
    /// Every role of a tenant, so every user's grants there.
    TenantRoles(String),
    /// One user's role assignment in a tenant.
    UserRoles { tenant: String, user: String },
    /// An API key, by its hash.
    ApiKey(String),
    /// Everything (change events may have been missed).
    Everything,
}

type Listener = Box<dyn Fn(&Stale) + Send + Sync>;

/// Tells every cache what a change made stale, and counts changes: something built from
/// several caches (the gateway's passes) is reused only while the count is the one it was
/// built under.
#[derive(Default)]
pub struct Staleness {
    generation: AtomicU64,
    listeners: RwLock<Vec<Listener>>,
}

impl std::fmt::Debug for Staleness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staleness")
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl Staleness {
    /// The number of changes seen so far.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Calls `listener` with everything marked stale from now on.
    pub fn listen(&self, listener: impl Fn(&Stale) + Send + Sync + 'static) {
        // A listener that panicked poisons nothing that matters: the list itself is whole.
        let mut listeners = self
            .listeners
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        listeners.push(Box::new(listener));
    }

    /// Tells every listener, then counts a change.
    pub fn mark(&self, stale: &Stale) {
        let listeners = self
            .listeners
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        for listener in listeners.iter() {
            listener(stale);
        }
        self.changed();
    }

    /// Counts a change that made no cache entry stale by name.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

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

/// How a cache drops what a change made stale.
pub type Forget<K, V> = fn(&TtlCache<K, V>, &Stale);

/// A service's TTL cache that hears of changes from its first entry on: what it drops is
/// given with each insert, so a program that never fills the cache (a Lambda function that
/// never reads through it) links none of its invalidation.
#[derive(Debug)]
pub struct ChangeAwareCache<K, V> {
    entries: Arc<TtlCache<K, V>>,
    staleness: Arc<Staleness>,
    listening: OnceLock<()>,
}

impl<K, V> ChangeAwareCache<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub fn new(staleness: Arc<Staleness>) -> Self {
        Self {
            entries: Arc::default(),
            staleness,
            listening: OnceLock::new(),
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        self.entries.get(key)
    }

    /// Remembers `value`; from the first insert on, each change calls `forget`. (Nothing was
    /// cached before the first insert, so no change before it concerns this cache.)
    pub fn insert(&self, key: K, value: V, forget: Forget<K, V>) {
        self.listening.get_or_init(|| {
            let entries = Arc::clone(&self.entries);
            self.staleness.listen(move |stale| forget(&entries, stale));
        });
        self.entries.insert(key, value);
    }

    pub fn clear(&self) {
        self.entries.clear();
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

    #[test]
    fn a_change_aware_cache_hears_of_changes_from_its_first_entry() {
        fn forget(entries: &TtlCache<String, u8>, stale: &Stale) {
            if let Stale::Module(module) = stale {
                entries.remove(module);
            }
        }
        let staleness = std::sync::Arc::new(Staleness::default());
        let cache = ChangeAwareCache::new(std::sync::Arc::clone(&staleness));
        staleness.mark(&Stale::Module("financial".into())); // nothing cached: nothing to drop
        cache.insert("financial".to_owned(), 1, forget);
        cache.insert("warehouse".to_owned(), 2, forget);
        staleness.mark(&Stale::Module("financial".into()));
        assert_eq!(cache.get(&"financial".to_owned()), None);
        assert_eq!(cache.get(&"warehouse".to_owned()), Some(2));
        // One listener however many inserts: a second mark drops the next entry once.
        cache.insert("financial".to_owned(), 3, forget);
        staleness.mark(&Stale::Module("financial".into()));
        assert_eq!(cache.get(&"financial".to_owned()), None);
        assert_eq!(staleness.listeners.read().unwrap().len(), 1);
    }

    #[test]
    fn a_mark_reaches_every_listener_and_counts_a_change() {
        let staleness = Staleness::default();
        let cache = std::sync::Arc::new(TtlCache::default());
        cache.insert("financial".to_owned(), 1);
        cache.insert("warehouse".to_owned(), 2);
        let listening = std::sync::Arc::clone(&cache);
        staleness.listen(move |stale| {
            if let Stale::Module(module) = stale {
                listening.remove(module);
            }
        });
        let before = staleness.generation();
        staleness.mark(&Stale::Module("financial".into()));
        assert_eq!(cache.get(&"financial".to_owned()), None);
        assert_eq!(cache.get(&"warehouse".to_owned()), Some(2));
        assert_eq!(staleness.generation(), before + 1);
    }
}
