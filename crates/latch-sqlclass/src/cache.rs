//! `Classifier`: a bounded, sharded cache in front of [`classify`] for the gateway's hot path,
//! where prepared statements and benchmark-style clients send the same texts again and again.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};

use crate::class::Classified;
use crate::classify::classify;
use crate::redact::replace_literals;

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

    /// The classification of `sql`, from the cache or computed and then cached. Texts that
    /// differ only in their numbers share an entry (see [`numbers_as_zero`]).
    pub fn classify(&self, sql: &str) -> Arc<Classified> {
        let shaped = numbers_as_zero(sql);
        let key = shaped.as_deref().unwrap_or(sql);
        let Some(shard) = self.shard(key) else {
            return Arc::new(classify(sql));
        };
        if let Some(hit) = shard
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
        {
            return Arc::clone(hit);
        }
        let classified = Arc::new(classify(sql));
        let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
        if !map.contains_key(key) {
            if map.len() >= self.shard_capacity
                && let Some(victim) = map.keys().next().cloned()
            {
                map.remove(&victim);
            }
            map.insert(Box::from(key), Arc::clone(&classified));
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

/// `sql` with every number written as `0`, when that is certain not to change what the text
/// does; `None` when nothing changes or when it cannot be certain.
///
/// Clients of the simple protocol put their values in the text (`… WHERE aid = 48213`), so
/// without this every statement missed the cache and was parsed: a third of the gateway's CPU
/// under `pgbench -M simple`. A number's value never changes a statement's class or the
/// objects it names, but mistaking something else for a number could, and under an enforced
/// read role the class is the gate. So only texts without quotes of any kind, dollar quotes or
/// parameters, backslashes or comments are shaped: in what is left, the literals the lexer
/// finds can only be numbers. They become `0`, itself a number, so a shaped text is a text
/// that does the same, and no other text can share its entry by accident.
fn numbers_as_zero(sql: &str) -> Option<String> {
    let bytes = sql.as_bytes();
    let unsure = bytes
        .iter()
        .any(|b| matches!(b, b'\'' | b'"' | b'$' | b'\\' | b'`'))
        || sql.contains("--")
        || sql.contains("/*");
    if unsure || !bytes.iter().any(u8::is_ascii_digit) {
        return None;
    }
    let shaped = replace_literals(sql, "0");
    (shaped != sql).then_some(shaped)
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
    fn texts_differing_only_in_numbers_share_an_entry() {
        let cache = Classifier::new(64);
        let a = cache.classify("SELECT abalance FROM pgbench_accounts WHERE aid = 48213;");
        let b = cache.classify("SELECT abalance FROM pgbench_accounts WHERE aid = 7;");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(cache.len(), 1);
        assert_eq!(
            numbers_as_zero("update t1 set x = 2.5 where id=10 limit 3").as_deref(),
            Some("update t1 set x = 0 where id=0 limit 0")
        );
    }

    #[test]
    fn texts_with_anything_unsure_are_taken_as_they_are() {
        for text in [
            "select 'a', 1",
            "select \"t1\".x from \"t1\" where y = 2",
            "select $$ 1 $$",
            "select $1 + 2",
            "select 1 -- 2",
            "select /* 1 */ 2",
            "select e'\\' || 3",
            "select x from t2",
            "select 0",
        ] {
            assert_eq!(numbers_as_zero(text), None, "{text}");
        }
    }

    proptest::proptest! {
        /// Sharing an entry never changes an answer: whatever numbers a text holds, and in
        /// whichever order texts arrive, the cache says what the classifier says of that text.
        #[test]
        fn a_shared_entry_answers_as_the_text_itself(
            texts in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "select a from t where id = {}",
                        "delete from t where id = {} returning 1",
                        "insert into t1 values ({}, {}.5)",
                        "select {} ; drop table t{}",
                        "update t set v = v + {} where k in ({}, 2)",
                        "grant select on t{} to r",
                        "select 'x{}' from t",
                        "select \"{}\" from t",
                        "select {}e{} , x{}y",
                        "create table t{} (a int default {})",
                        "set statement_timeout = {}",
                    ]),
                    proptest::collection::vec(0u32..100_000, 3),
                ),
                1..20,
            ),
        ) {
            let cache = Classifier::new(64);
            for (template, numbers) in texts {
                let mut text = template.to_owned();
                for n in &numbers {
                    text = text.replacen("{}", &n.to_string(), 1);
                }
                proptest::prop_assert_eq!(&*cache.classify(&text), &classify(&text), "{}", text);
            }
        }
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
