//! A data-key cache in front of KMS. Every KMS call of a transfer can go
//! through [`CachedKeys`], which counts them; for bulk transfers the answers
//! are reused within explicit limits (objects and age per cached key, as the
//! AWS Encryption SDK's caching does), so 10,000 small files do not make
//! 10,000 KMS calls.
//!
//! Reuse is safe for v2: every object derives its own frame key from the
//! data key and a fresh random salt, so no AES-GCM key and nonce pair ever
//! repeats. What the limits bound is how much one plaintext data key, held
//! in memory, protects.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use atrest_crypto::DataKey;
use tokio::time::Instant;

use crate::{Kms, KmsError};

/// How long and for how many objects one data key may be reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLimits {
    /// Objects per cached key; 1 means no reuse.
    pub max_objects: u64,
    /// Age at which a cached key is dropped.
    pub max_age: Duration,
}

/// Cached keys kept at once: bulk decryption of objects that each have their
/// own wrapped key would otherwise hold one plaintext key per object.
const CACHE_CAPACITY: usize = 64;

/// A data key freshly generated (or reused) for encrypting.
#[derive(Clone, Debug)]
pub struct Generated {
    /// The plaintext key.
    pub key: Arc<DataKey>,
    /// Its wrapped form (KMS `CiphertextBlob`).
    pub wrapped: Arc<[u8]>,
    /// The ARN of the KMS key that wrapped it.
    pub key_id: Option<Arc<str>>,
}

/// A data key unwrapped (or found in the cache).
#[derive(Clone, Debug)]
pub struct Unwrapped {
    /// The plaintext key.
    pub key: Arc<DataKey>,
    /// The ARN of the KMS key that had wrapped it.
    pub key_id: Option<Arc<str>>,
}

type Context = Vec<(String, String)>;

/// Data keys from KMS, cached within [`CacheLimits`].
#[derive(Debug)]
pub struct CachedKeys {
    kms: Kms,
    calls: AtomicU64,
    generated: Cache<(String, Context), Generated>,
    unwrapped: Cache<(Vec<u8>, Context), Unwrapped>,
}

impl CachedKeys {
    /// Every request goes to KMS.
    pub fn uncached(kms: Kms) -> Self {
        let no_reuse = CacheLimits {
            max_objects: 1,
            max_age: Duration::ZERO,
        };
        Self::cached(kms, no_reuse)
    }

    /// Answers are reused within `limits`.
    pub fn cached(kms: Kms, limits: CacheLimits) -> Self {
        CachedKeys {
            kms,
            calls: AtomicU64::new(0),
            generated: Cache::new(limits),
            unwrapped: Cache::new(limits),
        }
    }

    /// KMS calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// A data key under `key_id`, bound to `context` (GenerateDataKey).
    pub async fn generate(
        &self,
        key_id: &str,
        context: &[(String, String)],
    ) -> Result<Generated, KmsError> {
        self.generated
            .get((key_id.to_owned(), context.to_vec()), async {
                self.calls.fetch_add(1, Ordering::Relaxed);
                let fresh = self.kms.generate_data_key(key_id, context).await?;
                Ok(Generated {
                    key: Arc::new(fresh.key),
                    wrapped: fresh.wrapped.into(),
                    key_id: fresh.key_id.map(Into::into),
                })
            })
            .await
    }

    /// The plaintext of a wrapped data key (KMS Decrypt with `context`).
    pub async fn unwrap(
        &self,
        wrapped: &[u8],
        context: &[(String, String)],
    ) -> Result<Unwrapped, KmsError> {
        self.unwrap_recorded(wrapped, context, None).await
    }

    /// [`CachedKeys::unwrap`] of a key its object records as wrapped under
    /// `recorded` (see [`Kms::decrypt_recorded`]).
    pub async fn unwrap_recorded(
        &self,
        wrapped: &[u8],
        context: &[(String, String)],
        recorded: Option<&str>,
    ) -> Result<Unwrapped, KmsError> {
        self.unwrapped
            .get((wrapped.to_vec(), context.to_vec()), async {
                self.calls.fetch_add(1, Ordering::Relaxed);
                let got = self
                    .kms
                    .decrypt_recorded(wrapped, context, recorded)
                    .await?;
                Ok(Unwrapped {
                    key: Arc::new(got.key),
                    key_id: got.key_id.map(Into::into),
                })
            })
            .await
    }
}

/// Values reused for at most `max_objects` gets and `max_age`, at most
/// [`CACHE_CAPACITY`] at once. Failures are not cached.
#[derive(Debug)]
struct Cache<K, V> {
    limits: CacheLimits,
    // Never held across an await: a slow fetch holds up no other key.
    entries: std::sync::Mutex<Vec<Entry<K, V>>>,
    /// One gate per key being fetched: concurrent misses of one key wait
    /// for the first one's fetch instead of each calling KMS.
    fetching: std::sync::Mutex<Vec<(K, Arc<tokio::sync::Mutex<()>>)>>,
}

#[derive(Debug)]
struct Entry<K, V> {
    key: K,
    value: V,
    born: Instant,
    uses: u64,
}

impl<K: PartialEq + Clone, V: Clone> Cache<K, V> {
    fn new(limits: CacheLimits) -> Self {
        Cache {
            limits,
            entries: std::sync::Mutex::default(),
            fetching: std::sync::Mutex::default(),
        }
    }

    fn reuses(&self) -> bool {
        self.limits.max_objects > 1 && !self.limits.max_age.is_zero()
    }

    async fn get<E>(&self, key: K, fetch: impl Future<Output = Result<V, E>>) -> Result<V, E> {
        if !self.reuses() {
            return fetch.await;
        }
        if let Some(value) = self.lookup(&key) {
            return Ok(value);
        }
        let gate = self.gate(&key);
        let _fetching = gate.lock().await;
        // Fetched meanwhile by the one that held the gate.
        if let Some(value) = self.lookup(&key) {
            return Ok(value);
        }
        let value = fetch.await?;
        let mut entries = self.entries.lock().expect("not poisoned");
        if entries.len() == CACHE_CAPACITY {
            entries.remove(0);
        }
        entries.push(Entry {
            key,
            value: value.clone(),
            born: Instant::now(),
            uses: 1,
        });
        Ok(value)
    }

    /// The cached value of `key`, counted as one more use.
    fn lookup(&self, key: &K) -> Option<V> {
        let mut entries = self.entries.lock().expect("not poisoned");
        let now = Instant::now();
        let limits = self.limits;
        // Spent keys go at once: their plaintext is dropped (and zeroized)
        // as soon as no transfer uses it.
        entries
            .retain(|e| e.uses < limits.max_objects && now.duration_since(e.born) < limits.max_age);
        let entry = entries.iter_mut().find(|e| e.key == *key)?;
        entry.uses += 1;
        Some(entry.value.clone())
    }

    /// The gate of `key`'s fetch, made if none is in use.
    fn gate(&self, key: &K) -> Arc<tokio::sync::Mutex<()>> {
        let mut fetching = self.fetching.lock().expect("not poisoned");
        // A gate nobody holds or waits for is only the list's.
        fetching.retain(|(_, gate)| Arc::strong_count(gate) > 1);
        if let Some((_, gate)) = fetching.iter().find(|(k, _)| k == key) {
            return Arc::clone(gate);
        }
        let gate = Arc::default();
        fetching.push((key.clone(), Arc::clone(&gate)));
        gate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn limits(max_objects: u64, secs: u64) -> CacheLimits {
        CacheLimits {
            max_objects,
            max_age: Duration::from_secs(secs),
        }
    }

    /// Gets `key` from `cache`, counting fetches in `fetches`.
    async fn get(cache: &Cache<u8, u32>, key: u8, fetches: &AtomicU32) -> u32 {
        cache
            .get::<()>(key, async { Ok(fetches.fetch_add(1, Ordering::SeqCst)) })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn reuses_a_value_for_at_most_max_objects() {
        let cache = Cache::new(limits(3, 300));
        let fetches = AtomicU32::new(0);
        let mut seen = Vec::new();
        for _ in 0..7 {
            seen.push(get(&cache, 1, &fetches).await);
        }
        assert_eq!(seen, [0, 0, 0, 1, 1, 1, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn expires_a_value_after_max_age() {
        let cache = Cache::new(limits(1000, 10));
        let fetches = AtomicU32::new(0);
        assert_eq!(get(&cache, 1, &fetches).await, 0);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(get(&cache, 1, &fetches).await, 0);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(get(&cache, 1, &fetches).await, 1);
    }

    #[tokio::test]
    async fn keys_are_cached_apart_and_capacity_is_bounded() {
        let cache = Cache::new(limits(1000, 300));
        let fetches = AtomicU32::new(0);
        assert_eq!(get(&cache, 1, &fetches).await, 0);
        assert_eq!(get(&cache, 2, &fetches).await, 1);
        assert_eq!(get(&cache, 1, &fetches).await, 0);
        for k in 3..=CACHE_CAPACITY as u8 + 1 {
            get(&cache, k, &fetches).await;
        }
        assert_eq!(cache.entries.lock().unwrap().len(), CACHE_CAPACITY);
        // The oldest entry (key 1) made room.
        let before = fetches.load(Ordering::SeqCst);
        get(&cache, 1, &fetches).await;
        assert_eq!(fetches.load(Ordering::SeqCst), before + 1);
    }

    #[tokio::test]
    async fn no_reuse_with_one_object_and_failures_are_not_cached() {
        let cache = Cache::new(limits(1, 300));
        let fetches = AtomicU32::new(0);
        assert_eq!(get(&cache, 1, &fetches).await, 0);
        assert_eq!(get(&cache, 1, &fetches).await, 1);
        assert!(cache.entries.lock().unwrap().is_empty());

        let cache: Cache<u8, u32> = Cache::new(limits(100, 300));
        assert_eq!(cache.get(1, async { Err("denied") }).await, Err("denied"));
        assert_eq!(get(&cache, 1, &fetches).await, 2);
        assert_eq!(get(&cache, 1, &fetches).await, 2);
    }

    /// A fetch that takes a second, counted in `fetches`.
    async fn slow_get(cache: &Cache<u8, u32>, key: u8, fetches: &AtomicU32) -> u32 {
        let fetch = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, ()>(fetches.fetch_add(1, Ordering::SeqCst))
        };
        cache.get(key, fetch).await.unwrap()
    }

    /// A gate's holder whose fetch fails, or is dropped, hands over to the
    /// next: nothing is cached, nothing waits for ever.
    #[tokio::test(start_paused = true)]
    async fn a_failed_or_dropped_fetch_lets_the_next_one_fetch() {
        let cache: Cache<u8, u32> = Cache::new(limits(100, 300));
        let failing = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Err::<u32, _>("denied")
        };
        let fetches = AtomicU32::new(0);
        let (failed, fetched) =
            futures::future::join(cache.get(1, failing), slow_get(&cache, 1, &fetches)).await;
        assert_eq!((failed, fetched), (Err("denied"), 0));
        let dropped = cache.get(2, std::future::pending::<Result<u32, ()>>());
        assert!(tokio::time::timeout(Duration::from_secs(1), dropped)
            .await
            .is_err());
        assert_eq!(slow_get(&cache, 2, &fetches).await, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_misses_of_one_key_make_one_fetch() {
        let cache = Cache::new(limits(100, 300));
        let fetches = AtomicU32::new(0);
        let all = futures::future::join_all((0..8).map(|_| slow_get(&cache, 1, &fetches))).await;
        assert_eq!(all, [0; 8]);
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    /// The cache was locked across each fetch: KMS calls for different
    /// keys (every object with its own data key) went one at a time.
    #[tokio::test(start_paused = true)]
    async fn misses_of_different_keys_fetch_at_once() {
        for limits in [limits(100, 300), limits(1, 0)] {
            let cache = Cache::new(limits);
            let fetches = AtomicU32::new(0);
            let started = Instant::now();
            futures::future::join_all((0..8).map(|k| slow_get(&cache, k, &fetches))).await;
            assert_eq!(fetches.load(Ordering::SeqCst), 8);
            assert_eq!(started.elapsed(), Duration::from_secs(1), "{limits:?}");
            // Gates nobody holds go at the next miss: only its own stays.
            slow_get(&cache, 100, &fetches).await;
            let gates = cache.fetching.lock().unwrap().len();
            assert_eq!(gates, usize::from(cache.reuses()), "{limits:?}");
        }
    }
}
