//! `Classifier`: a bounded, sharded cache in front of [`classify`] for the gateway's hot path,
//! where prepared statements and benchmark-style clients send the same texts again and again.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};

use crate::class::Classified;
use crate::classify::classify;

/// Number of independently locked shards; a power of two.
const SHARDS: usize = 16;

/// One shard: texts to their classification.
type Shard = Mutex<HashMap<Box<str>, Arc<Classified>>>;

/// Texts longer than this are classified but not cached, which bounds the cache's memory to
/// about `capacity × MAX_CACHED_LEN` in the worst case (long texts are rarely repeated).
pub const MAX_CACHED_LEN: usize = 8 * 1024;

/// A bounded cache of classifications, shared by every session of a gateway.
///
/// A hit hashes the text once to pick a shard, locks that shard for one map lookup and clones
/// an `Arc`: no allocation, and no lock held while classifying. When a shard is full, a new
/// entry evicts an arbitrary one (the map's first in iteration order, which the map's random
/// hash seed makes unpredictable), which is enough for a working set of repeated texts that
/// fits.
#[derive(Debug)]
pub struct Classifier {
    shards: Box<[Shard]>,
    /// Picks the shard; independent of the maps' own seeds.
    hasher: RandomState,
    /// Entries per shard; 0 disables caching.
    shard_capacity: usize,
}

impl Classifier {
    /// A cache holding up to about `capacity` texts (rounded up to a multiple of the shard
    /// count); 0 classifies every time.
    pub fn new(capacity: usize) -> Self {
        let shard_capacity = capacity.div_ceil(SHARDS);
        let shards = (0..SHARDS)
            .map(|_| Mutex::new(HashMap::with_capacity(shard_capacity)))
            .collect();
        Self {
            shards,
            hasher: RandomState::new(),
            shard_capacity,
        }
    }

    /// The classification of `sql`, from the cache or computed and then cached.
    pub fn classify(&self, sql: &str) -> Arc<Classified> {
        let Some(shard) = self.shard(sql) else {
            return Arc::new(classify(sql));
        };
        if let Some(hit) = shard
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(sql)
        {
            return Arc::clone(hit);
        }
        let classified = Arc::new(classify(sql));
        let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
        if !map.contains_key(sql) {
            if map.len() >= self.shard_capacity
                && let Some(victim) = map.keys().next().cloned()
            {
                map.remove(&victim);
            }
            map.insert(Box::from(sql), Arc::clone(&classified));
        }
        classified
    }

    /// How many texts the cache holds.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    /// Whether the cache holds no text.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shard for `sql`, or `None` when it is not to be cached.
    fn shard(&self, sql: &str) -> Option<&Shard> {
        if self.shard_capacity == 0 || sql.len() > MAX_CACHED_LEN {
            return None;
        }
        // Truncation is intended: only the low bits pick the shard.
        #[allow(
            clippy::cast_possible_truncation,
            reason = "only the low bits are used"
        )]
        let index = (self.hasher.hash_one(sql) as usize) & (SHARDS - 1);
        self.shards.get(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StatementClass;

    #[test]
    fn hits_return_the_same_arc() {
        let cache = Classifier::new(64);
        let first = cache.classify("select 1");
        let second = cache.classify("select 1");
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(first.class, StatementClass::Read);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn stays_bounded() {
        let cache = Classifier::new(32);
        for i in 0..1000 {
            let classified = cache.classify(&format!("select {i} from t{i}"));
            assert_eq!(classified.class, StatementClass::Read);
        }
        assert!(cache.len() <= 32, "{}", cache.len());
    }

    #[test]
    fn zero_capacity_and_long_texts_are_not_cached() {
        let none = Classifier::new(0);
        none.classify("select 1");
        assert!(none.is_empty());
        let cache = Classifier::new(16);
        let long = format!("select {}", "1 + ".repeat(MAX_CACHED_LEN)) + "1";
        cache.classify(&long);
        assert!(cache.is_empty());
    }
}
