//! The newest events, kept in memory as the SQLite writer committed them, for the followers of
//! the ledger (the access projection, the live audit, the checkpointer) that read every event
//! soon after it is written. Read back through sqlx, each event cost a row handed across
//! sqlx's worker thread and a decode of its canonical JSON, once per follower: under the
//! gateway's load (an event per statement) that was about a fifth of latch's CPU.
//!
//! The leaf hashes are kept for longer than the events (32 bytes against about 1 KiB): the
//! checkpointer reads a second's worth at a time, which at the gateway's busiest is more events
//! than it is worth keeping whole, and read back through sqlx they cost a tenth of latch's CPU.
//!
//! The cache only ever answers for a run it holds whole: it keeps one contiguous run of
//! sequence numbers, starts a new run when a commit does not follow on (a write that went
//! around the writer thread), and says "not here" (the caller reads the store) for anything
//! it does not hold. Only committed events are put in it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use latch_ledger::Hash;

use crate::LedgerEntry;

/// One appended event: what the store wrote for it. The entry is shared with every follower
/// that reads it, not copied for each.
#[derive(Debug)]
pub(crate) struct Appended {
    pub entry: Arc<LedgerEntry>,
    pub leaf_hash: Hash,
}

/// The held run: the newest events and, further back, the newest leaf hashes, both ending
/// just before `end`.
struct Held {
    entries: VecDeque<Arc<LedgerEntry>>,
    hashes: VecDeque<Hash>,
    /// The sequence number after the newest held (0: nothing held yet).
    end: u64,
}

impl Held {
    fn clear(&mut self) {
        self.entries.clear();
        self.hashes.clear();
    }

    /// The offset in a run of `len` ending before `self.end` of event `wanted`, if it holds it.
    fn offset(&self, len: usize, wanted: u64) -> Option<usize> {
        let first = self.end.checked_sub(u64::try_from(len).ok()?)?;
        let offset = usize::try_from(wanted.checked_sub(first)?).ok()?;
        (offset < len).then_some(offset)
    }
}

/// The newest committed events, at most `capacity` of them, and the leaf hashes of at most
/// `hash_capacity`.
pub(crate) struct RecentEvents {
    held: Mutex<Held>,
    capacity: usize,
    hash_capacity: usize,
}

impl RecentEvents {
    pub(crate) fn new(capacity: usize, hash_capacity: usize) -> Self {
        Self {
            held: Mutex::new(Held {
                entries: VecDeque::with_capacity(capacity.min(4096)),
                hashes: VecDeque::with_capacity(hash_capacity.min(4096)),
                end: 0,
            }),
            capacity,
            hash_capacity: hash_capacity.max(capacity),
        }
    }

    /// Adds events just committed, in order.
    pub(crate) fn publish(&self, appended: Vec<Appended>) {
        let Some(first) = appended.first().map(|a| a.entry.event.seq) else {
            return;
        };
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.end != first {
            held.clear();
        }
        for (expected, a) in (first..).zip(appended) {
            if a.entry.event.seq != expected {
                // Not one run: keep nothing rather than a hole.
                held.clear();
                return;
            }
            held.entries.push_back(a.entry);
            held.hashes.push_back(a.leaf_hash);
            held.end = expected.saturating_add(1);
        }
        let excess = held.entries.len().saturating_sub(self.capacity);
        held.entries.drain(..excess);
        let excess = held.hashes.len().saturating_sub(self.hash_capacity);
        held.hashes.drain(..excess);
    }

    /// Up to `limit` events after `after`, if the cache holds the next one; `None` sends the
    /// caller to the store. An empty answer never comes from here: whether nothing follows
    /// `after` is for the store to say.
    pub(crate) fn after(&self, after: u64, limit: usize) -> Option<Vec<Arc<LedgerEntry>>> {
        if limit == 0 {
            return None;
        }
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let offset = held.offset(held.entries.len(), after.checked_add(1)?)?;
        Some(held.entries.range(offset..).take(limit).cloned().collect())
    }

    /// Whether the cache holds every event up to `after` and nothing after it: a reader there
    /// is caught up with what was published.
    pub(crate) fn caught_up(&self, after: u64) -> bool {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.end > 0 && held.end == after.saturating_add(1)
    }

    /// The leaf hashes of events `from + 1 ..= to`, if the cache holds them all.
    pub(crate) fn leaf_hashes(&self, from: u64, to: u64) -> Option<Vec<Hash>> {
        let count = usize::try_from(to.checked_sub(from)?).ok()?;
        if count == 0 {
            return None;
        }
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let offset = held.offset(held.hashes.len(), from.checked_add(1)?)?;
        let run: Vec<Hash> = held.hashes.range(offset..).take(count).copied().collect();
        (run.len() == count).then_some(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latch_core::{Actor, Event, EventKind, StoredEvent, Timestamp};

    fn appended(seq: u64) -> Appended {
        let event = StoredEvent {
            seq,
            event: Event {
                at: Timestamp::from_millis(1_700_000_000_000),
                actor: Actor::System,
                subject: format!("s{seq}"),
                kind: EventKind::AccessRefused {
                    action: "connect".into(),
                    reason: "test".into(),
                },
            },
        };
        let body = event.canonical_json();
        let leaf_hash = latch_ledger::leaf_hash(body.as_bytes());
        Appended {
            entry: Arc::new(LedgerEntry { event, body }),
            leaf_hash,
        }
    }

    fn seqs(run: Option<Vec<Arc<LedgerEntry>>>) -> Option<Vec<u64>> {
        run.map(|r| r.iter().map(|a| a.event.seq).collect())
    }

    #[test]
    fn answers_only_for_what_it_holds() {
        let recent = RecentEvents::new(4, 4);
        assert_eq!(seqs(recent.after(0, 10)), None, "empty");
        recent.publish((1..=3).map(appended).collect());
        assert_eq!(seqs(recent.after(0, 10)), Some(vec![1, 2, 3]));
        assert_eq!(seqs(recent.after(1, 1)), Some(vec![2]));
        assert_eq!(seqs(recent.after(3, 10)), None, "nothing after the newest");
        recent.publish((4..=6).map(appended).collect());
        // Capacity 4: 1 and 2 are gone, so a reader after 0 or 1 goes to the store.
        assert_eq!(seqs(recent.after(0, 10)), None);
        assert_eq!(seqs(recent.after(1, 10)), None);
        assert_eq!(seqs(recent.after(2, 10)), Some(vec![3, 4, 5, 6]));
    }

    #[test]
    fn a_gap_starts_a_new_run() {
        let recent = RecentEvents::new(100, 100);
        recent.publish((1..=3).map(appended).collect());
        // Events 4 and 5 were written around the writer: the cache must not skip them.
        recent.publish((6..=7).map(appended).collect());
        assert_eq!(seqs(recent.after(3, 10)), None);
        assert_eq!(seqs(recent.after(5, 10)), Some(vec![6, 7]));
        assert_eq!(recent.leaf_hashes(2, 7), None);
        assert_eq!(
            recent.leaf_hashes(5, 7),
            Some(vec![appended(6).leaf_hash, appended(7).leaf_hash])
        );
        // A commit out of order keeps nothing.
        recent.publish(vec![appended(8), appended(10)]);
        assert_eq!(seqs(recent.after(7, 10)), None);
    }

    proptest::proptest! {
        /// Whatever runs are committed (in order, with holes where a write went around), an
        /// answer is always the events that follow `after`, without a gap, and the newest run's
        /// events are always answered for.
        #[test]
        fn answers_are_the_events_that_follow(
            runs in proptest::collection::vec((0u64..3, 1u64..20), 1..30),
            capacity in 1usize..64,
            extra_hashes in 0usize..64,
            limit in 1usize..40,
        ) {
            let hash_capacity = capacity + extra_hashes;
            let recent = RecentEvents::new(capacity, hash_capacity);
            let mut next = 1u64;
            let mut newest_run = 1..1;
            for (hole, len) in runs {
                next += hole;
                recent.publish((next..next + len).map(appended).collect());
                newest_run = if hole == 0 && newest_run.end == next {
                    newest_run.start..next + len
                } else {
                    next..next + len
                };
                next += len;
            }
            for after in 0..next + 2 {
                let answer = seqs(recent.after(after, limit));
                if let Some(answer) = &answer {
                    proptest::prop_assert!(!answer.is_empty() && answer.len() <= limit);
                    let expected: Vec<u64> = (after + 1..).take(answer.len()).collect();
                    proptest::prop_assert_eq!(answer, &expected);
                }
                let held = newest_run.end.saturating_sub(capacity as u64).max(newest_run.start);
                if after + 1 >= held && after + 1 < newest_run.end {
                    proptest::prop_assert!(answer.is_some(), "after {} not answered", after);
                }
                let to = (after + limit as u64).min(next + 1);
                let hashes = recent.leaf_hashes(after, to);
                if let Some(hashes) = &hashes {
                    let expected: Vec<Hash> = (after + 1..=to).map(|seq| appended(seq).leaf_hash).collect();
                    proptest::prop_assert_eq!(hashes, &expected);
                }
                let hashes_held = newest_run.end.saturating_sub(hash_capacity as u64).max(newest_run.start);
                if after + 1 >= hashes_held && to < newest_run.end && to > after {
                    proptest::prop_assert!(hashes.is_some(), "hashes after {} not answered", after);
                }
            }
        }
    }
}
