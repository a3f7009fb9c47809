//! The offline ledger verifier: fed the events in order and the signed checkpoints, it
//! recomputes every leaf and the tree, checks every signature, and names the first thing wrong.
//! No IO here: `ledger.rs` reads a store or a bundle and feeds it.

use latch_core::StoredEvent;
use latch_core::event::{DecodeError, Decoder};
use latch_ledger::{Checkpoint, CompactRange, Hash, VerifierKey};

/// What is wrong, and where: the ledger index (`seq - 1`) of the first bad event when it can be
/// known exactly, or the range a changed event must lie in.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error(
        "index {index}: missing event: expected event {expected}, found event {found} (events were deleted or reordered)"
    )]
    Missing {
        index: u64,
        expected: u64,
        found: u64,
    },
    #[error(
        "index {index}: event {found} is out of place: expected event {expected} (events were inserted, duplicated or reordered)"
    )]
    OutOfPlace {
        index: u64,
        expected: u64,
        found: u64,
    },
    #[error("index {index}: the event does not decode: {reason}")]
    Undecodable { index: u64, reason: String },
    #[error(
        "index {index}: the event's bytes say it is event {claimed}, which belongs further on (it was moved here, or events before it were deleted)"
    )]
    Moved { index: u64, claimed: u64 },
    #[error(
        "index {index}: the event's bytes say it is event {claimed}, whose place has passed (an event was inserted before it, or it was moved)"
    )]
    MovedBack { index: u64, claimed: u64 },
    #[error(
        "index {index}: hash mismatch: the stored leaf hash is not the hash of the stored event (the event was edited)"
    )]
    LeafHash { index: u64 },
    #[error(
        "index {first}..{last}: hash mismatch: the events do not match the checkpoint of size {size} signed at {time} (an event in this range was edited)"
    )]
    Root {
        first: u64,
        last: u64,
        size: u64,
        time: String,
    },
    #[error("checkpoint of size {size}: bad signature: {reason}")]
    Signature { size: u64, reason: String },
    #[error(
        "checkpoint of size {size}: two checkpoints of this size, both validly signed, have different roots (the log was forked)"
    )]
    Forked { size: u64 },
    #[error("index {index}: the event does not apply to its request: {reason}")]
    DoesNotApply { index: u64, reason: String },
    #[error("projection drift: request `{request}`: {problem}")]
    Drift { request: String, problem: String },
    #[error("projection drift: session `{session}`: {problem}")]
    SessionDrift { session: String, problem: String },
    #[error("checkpoint of size {size}: it says size {claimed}")]
    SizeMismatch { size: u64, claimed: u64 },
    #[error(
        "index {index}: missing events: the checkpoint of size {size} covers {size} events but the ledger ends after {index} (events were deleted)"
    )]
    Truncated { index: u64, size: u64 },
}

/// What can be worked out about an event before its turn: its decoding and its leaf hash.
/// Pure, so that a page of events is prepared on another thread while the verifier checks the
/// one before it; [`Verifier::push_prepared`] still names what is wrong in the order it always
/// did: the position first, then the decoding, the event's own number, the leaf hash.
pub struct Prepared {
    /// The event's own `seq`, and the event when the caller keeps events of its kind.
    decoded: Result<(u64, Option<StoredEvent>), DecodeError>,
    leaf: Hash,
}

impl Prepared {
    /// Decodes and hashes `body`; keeps the decoded event when `keep` says so (the others
    /// are dropped here, on the preparing thread).
    pub fn new(decoder: &mut Decoder, body: &str, keep: fn(&StoredEvent) -> bool) -> Self {
        Self {
            decoded: decoder
                .decode(body)
                .map(|event| (event.seq, keep(&event).then_some(event))),
            leaf: latch_ledger::leaf_hash(body.as_bytes()),
        }
    }

    /// The event's own sequence number, when it decodes.
    pub fn claimed_seq(&self) -> Option<u64> {
        self.decoded.as_ref().ok().map(|(seq, _)| *seq)
    }
}

/// The events the store's replays need: request transitions and session starts and ends.
pub fn replayed(event: &StoredEvent) -> bool {
    use latch_core::EventKind;
    event.event.kind.is_request_transition()
        || matches!(
            event.event.kind,
            EventKind::SessionStarted { .. } | EventKind::SessionEnded { .. }
        )
}

/// An event row as the verifier takes it: where the store (or bundle) keeps it, the leaf hash
/// kept beside it if any, and its prepared bytes.
pub struct PreparedRow {
    pub stored_seq: u64,
    pub stored_leaf: Option<Hash>,
    pub prepared: Prepared,
}

/// Prepares a page of store rows, keeping the events [`replayed`] needs. A malformed stored
/// hash is itself a mismatch: it is compared as something that cannot equal the recomputed
/// hash.
pub fn prepare_rows(page: &latch_store::RawPage) -> Vec<PreparedRow> {
    let mut decoder = Decoder::default();
    page.iter()
        .map(|row| PreparedRow {
            stored_seq: row.seq,
            stored_leaf: Some(parse_hex(row.leaf_hash).unwrap_or(Hash::from_bytes([0; 32]))),
            prepared: Prepared::new(&mut decoder, row.body, replayed),
        })
        .collect()
}

/// Prepares a page of bundle lines, the first being line `first` (0-based). A bundle has no
/// position column: an event is where its own `seq` says, so a gap or a swap is named as
/// such; a line that does not even parse is caught as undecodable at its line's place.
pub fn prepare_lines(first: u64, lines: Vec<String>) -> Vec<PreparedRow> {
    let mut decoder = Decoder::default();
    (first..)
        .zip(lines)
        .map(|(line_no, line)| {
            let prepared = Prepared::new(&mut decoder, &line, |_| false);
            let stored_seq = prepared.claimed_seq().unwrap_or_else(|| {
                serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|event| event.get("seq").and_then(serde_json::Value::as_u64))
                    .unwrap_or(line_no + 1)
            });
            PreparedRow {
                stored_seq,
                stored_leaf: None,
                prepared,
            }
        })
        .collect()
}

/// A SHA-256 hash from its 64 hex digits.
pub fn parse_hex(hex: &str) -> Option<Hash> {
    /// Each byte's value as a hex digit; `0xff` for a byte that is not one.
    const DIGITS: [u8; 256] = {
        let mut table = [0xff; 256];
        let mut i = 0;
        while i < 10 {
            table[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            table[b'a' as usize + i] = 10 + i as u8;
            table[b'A' as usize + i] = 10 + i as u8;
            i += 1;
        }
        table
    };
    if hex.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        let (high, low) = match pair {
            [high, low] => (DIGITS[usize::from(*high)], DIGITS[usize::from(*low)]),
            _ => return None,
        };
        *byte = if (high | low) < 16 {
            high << 4 | low
        } else {
            // What `u8::from_str_radix` makes of the pair (it takes `+a` for 10, say), as
            // stored hashes were always read.
            u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?
        };
    }
    Some(Hash::from_bytes(bytes))
}

/// Streams events through the tree and checks checkpoints as their sizes are reached.
pub struct Verifier {
    range: CompactRange,
    /// Opened checkpoints, smallest first; the front is the next one to reach.
    pending: std::collections::VecDeque<Checkpoint>,
    /// The last size at which a checkpoint matched: a later mismatch lies after it.
    last_good: u64,
    pub checkpoints_checked: u64,
}

impl Verifier {
    /// Opens every checkpoint note with `key`; the first bad signature fails. Checkpoints of the
    /// same size (one from the store, one kept by an auditor) must agree.
    pub fn new(checkpoints: &[(u64, String)], key: &VerifierKey) -> Result<Self, Failure> {
        let mut opened = Vec::with_capacity(checkpoints.len());
        for (size, note) in checkpoints {
            let checkpoint = latch_ledger::open(note, key).map_err(|err| Failure::Signature {
                size: *size,
                reason: err.to_string(),
            })?;
            if checkpoint.size != *size {
                return Err(Failure::SizeMismatch {
                    size: *size,
                    claimed: checkpoint.size,
                });
            }
            opened.push(checkpoint);
        }
        opened.sort_by_key(|c| c.size);
        for pair in opened.windows(2) {
            if let [a, b] = pair
                && a.size == b.size
                && a.root != b.root
            {
                return Err(Failure::Forked { size: a.size });
            }
        }
        Ok(Self {
            range: CompactRange::new(),
            pending: opened.into(),
            last_good: 0,
            checkpoints_checked: 0,
        })
    }

    /// Events seen so far.
    pub fn size(&self) -> u64 {
        self.range.size()
    }

    pub fn root(&self) -> Hash {
        self.range.root()
    }

    /// Feeds the next event: `stored_seq` is where the store (or bundle) keeps it, `prepared`
    /// its bytes decoded and hashed, `stored_leaf` the leaf hash kept beside it, if any. Gives
    /// back the event if it was kept when prepared.
    pub fn push_prepared(
        &mut self,
        stored_seq: u64,
        prepared: Prepared,
        stored_leaf: Option<&Hash>,
    ) -> Result<Option<StoredEvent>, Failure> {
        let index = self.range.size();
        let expected = index + 1;
        if stored_seq > expected {
            return Err(Failure::Missing {
                index,
                expected,
                found: stored_seq,
            });
        }
        if stored_seq < expected {
            return Err(Failure::OutOfPlace {
                index,
                expected,
                found: stored_seq,
            });
        }
        let (claimed, event) = prepared.decoded.map_err(|err| Failure::Undecodable {
            index,
            reason: err.to_string(),
        })?;
        if claimed > expected {
            return Err(Failure::Moved { index, claimed });
        }
        if claimed < expected {
            return Err(Failure::MovedBack { index, claimed });
        }
        let leaf = prepared.leaf;
        if stored_leaf.is_some_and(|stored| *stored != leaf) {
            return Err(Failure::LeafHash { index });
        }
        self.range.append(leaf);
        self.check_reached()?;
        Ok(event)
    }

    fn check_reached(&mut self) -> Result<(), Failure> {
        while let Some(next) = self.pending.front() {
            if next.size > self.range.size() {
                break;
            }
            if next.size < self.range.size() {
                // Only possible for size 0 or duplicates; nothing to compare.
                self.pending.pop_front();
                continue;
            }
            if next.root != self.range.root() {
                return Err(Failure::Root {
                    first: self.last_good,
                    last: next.size - 1,
                    size: next.size,
                    time: latch_core::Timestamp::from_millis(next.time_millis).to_string(),
                });
            }
            self.last_good = next.size;
            self.checkpoints_checked += 1;
            self.pending.pop_front();
        }
        Ok(())
    }

    /// Events after the last checkpoint checked: not yet covered by any signature.
    pub fn uncovered(&self) -> u64 {
        self.range.size() - self.last_good
    }

    /// Ends the stream: a checkpoint beyond the last event means events were removed.
    pub fn finish(&self) -> Result<(), Failure> {
        match self.pending.back() {
            Some(checkpoint) if checkpoint.size > self.range.size() => Err(Failure::Truncated {
                index: self.range.size(),
                size: checkpoint.size,
            }),
            _ => Ok(()),
        }
    }
}

/// Replays the requests as their events stream past and compares each with its projection when
/// the log reaches the last event the projection records for it (`last_seq`), so memory holds
/// only the requests between their first and last event at the current point of the log.
#[derive(Default)]
pub struct Replay {
    /// Replayed requests whose last projected event has not been reached yet.
    open: std::collections::HashMap<String, latch_core::AccessRequest>,
    /// Projections whose last event lies in the window being read, with that event's seq.
    expected: std::collections::HashMap<String, (u64, latch_core::AccessRequest)>,
    pub requests: u64,
}

impl Replay {
    /// Adds the projections whose last event is in the next window of the log.
    pub fn expect(&mut self, rows: Vec<(u64, latch_core::AccessRequest)>) {
        self.expected
            .extend(rows.into_iter().map(|(seq, r)| (r.id.clone(), (seq, r))));
    }

    /// Folds one verified event; `index` names it if it does not apply.
    pub fn push(&mut self, index: u64, event: &StoredEvent) -> Result<(), Failure> {
        if !event.event.kind.is_request_transition() {
            return Ok(());
        }
        let subject = &event.event.subject;
        let current = self.open.remove(subject);
        if current.is_none() {
            self.requests += 1;
        }
        let next = latch_core::lifecycle::apply(current, &event.event).map_err(|err| {
            Failure::DoesNotApply {
                index,
                reason: err.to_string(),
            }
        })?;
        match self.expected.get(subject) {
            Some((last, _)) if *last == event.seq => {
                if let Some((_, projected)) = self.expected.remove(subject)
                    && projected != next
                {
                    return Err(Failure::Drift {
                        request: subject.clone(),
                        problem: latch_store::describe_drift(&projected, &next),
                    });
                }
            }
            _ => {
                self.open.insert(subject.clone(), next);
            }
        }
        Ok(())
    }

    /// After a window: a projection whose last event was in it but never came is drift.
    pub fn end_window(&mut self) -> Result<(), Failure> {
        let first = self.expected.drain().min_by_key(|(_, (seq, _))| *seq);
        match first {
            Some((id, (seq, _))) => Err(Failure::Drift {
                request: id,
                problem: format!(
                    "its projection ends at event {seq}, which is not one of its events"
                ),
            }),
            None => Ok(()),
        }
    }

    /// At the end of the log: the replayed requests whose projection never matched.
    pub fn leftovers(&mut self) -> Vec<latch_core::AccessRequest> {
        self.open.drain().map(|(_, r)| r).collect()
    }
}

/// How many requests are compared per read of the projection.
pub const COMPARE_BATCH: usize = 1000;

/// Compares replayed requests with their projected rows.
pub fn compare(
    replayed: &[latch_core::AccessRequest],
    projected: Vec<latch_core::AccessRequest>,
) -> Result<(), Failure> {
    let mut projected: std::collections::HashMap<String, latch_core::AccessRequest> =
        projected.into_iter().map(|r| (r.id.clone(), r)).collect();
    for request in replayed {
        match projected.remove(&request.id) {
            None => {
                return Err(Failure::Drift {
                    request: request.id.clone(),
                    problem: "created by events but missing from the projection".into(),
                });
            }
            Some(row) if row != *request => {
                return Err(Failure::Drift {
                    request: request.id.clone(),
                    problem: latch_store::describe_drift(&row, request),
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The gateway sessions as their events say they are (`session.started`, then
/// `session.ended`), to compare with the store's `sessions` projection. Holds one row per
/// session: sessions are far fewer than events.
#[derive(Default)]
pub struct SessionReplay {
    sessions: std::collections::BTreeMap<String, latch_store::SessionRow>,
}

impl SessionReplay {
    pub fn push(&mut self, event: &StoredEvent) {
        use latch_core::EventKind;
        let id = &event.event.subject;
        match &event.event.kind {
            EventKind::SessionStarted {
                grant_id,
                user,
                resource,
                role,
                client_addr,
                application_name,
                tls,
                auth,
            } => {
                // The projection keeps the first start of an id, as this does.
                self.sessions
                    .entry(id.clone())
                    .or_insert_with(|| latch_store::SessionRow {
                        id: id.clone(),
                        grant_id: grant_id.clone(),
                        user: user.clone(),
                        resource: resource.clone(),
                        role: role.clone(),
                        client_addr: client_addr.clone(),
                        application_name: application_name.clone(),
                        tls: *tls,
                        auth: auth.clone(),
                        started_at: event.event.at,
                        ended_at: None,
                        end_reason: None,
                        end_detail: None,
                        bytes_in: 0,
                        bytes_out: 0,
                        statements: 0,
                        revocation_delay_ms: None,
                    });
            }
            EventKind::SessionEnded {
                reason,
                detail,
                bytes_in,
                bytes_out,
                statements,
                revocation_delay_ms,
                ..
            } => {
                if let Some(row) = self.sessions.get_mut(id) {
                    row.ended_at = Some(event.event.at);
                    row.end_reason = Some(reason.clone());
                    row.end_detail = detail.clone();
                    // The store keeps counters as signed 64-bit numbers.
                    row.bytes_in = (*bytes_in).min(i64::MAX as u64);
                    row.bytes_out = (*bytes_out).min(i64::MAX as u64);
                    row.statements = (*statements).min(i64::MAX as u64);
                    row.revocation_delay_ms = *revocation_delay_ms;
                }
            }
            _ => {}
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Compares with every row of the projection: a row that differs, one the events never
    /// made, and a session the events made that the projection lacks are each drift.
    pub fn compare(&self, projected: Vec<latch_store::SessionRow>) -> Result<(), Failure> {
        let mut seen = std::collections::BTreeSet::new();
        for row in projected {
            let drift = |problem: String| Failure::SessionDrift {
                session: row.id.clone(),
                problem,
            };
            let Some(expected) = self.sessions.get(&row.id) else {
                return Err(drift("projected but no event started it".into()));
            };
            if *expected != row {
                return Err(drift(format!(
                    "the projection says {row:?} but the events say {expected:?}"
                )));
            }
            seen.insert(row.id.clone());
        }
        match self.sessions.keys().find(|id| !seen.contains(*id)) {
            Some(missing) => Err(Failure::SessionDrift {
                session: missing.clone(),
                problem: "started by events but missing from the projection".into(),
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use latch_core::{Actor, Event, EventKind, Timestamp};
    use latch_ledger::{SigningKey, sign};

    use super::*;

    impl Verifier {
        fn push(
            &mut self,
            stored_seq: u64,
            body: &str,
            stored_leaf: Option<&Hash>,
        ) -> Result<Option<StoredEvent>, Failure> {
            let prepared = Prepared::new(&mut Decoder::default(), body, |_| true);
            self.push_prepared(stored_seq, prepared, stored_leaf)
        }
    }

    fn body(seq: u64, reason: &str) -> String {
        StoredEvent {
            seq,
            event: Event {
                at: Timestamp::from_millis(1_795_600_800_000 + seq as i64),
                actor: Actor::user("alice"),
                subject: format!("req_{seq}"),
                kind: EventKind::RequestDenied {
                    reason: reason.to_owned(),
                },
            },
        }
        .canonical_json()
    }

    /// Ten events with checkpoints signed at sizes 4 and 10.
    fn ledger() -> (Vec<String>, Vec<(u64, String)>, VerifierKey) {
        let key = SigningKey::from_seed("latch.test/audit", [3; 32]).unwrap();
        let bodies: Vec<String> = (1..=10).map(|seq| body(seq, "r")).collect();
        let mut checkpoints = Vec::new();
        for size in [4u64, 10] {
            let leaves: Vec<Hash> = bodies[..size as usize]
                .iter()
                .map(|b| latch_ledger::leaf_hash(b.as_bytes()))
                .collect();
            let checkpoint = Checkpoint {
                origin: "latch.test/audit".into(),
                size,
                root: latch_ledger::root(&leaves),
                time_millis: 1_795_600_900_000,
            };
            checkpoints.push((size, sign(&checkpoint, &key).unwrap()));
        }
        (bodies, checkpoints, key.verifier_key())
    }

    fn run(
        events: &[(u64, String)],
        checkpoints: &[(u64, String)],
        key: &VerifierKey,
    ) -> Result<Verifier, Failure> {
        let mut verifier = Verifier::new(checkpoints, key)?;
        for (seq, body) in events {
            verifier.push(*seq, body, None)?;
        }
        verifier.finish()?;
        Ok(verifier)
    }

    fn numbered(bodies: &[String]) -> Vec<(u64, String)> {
        bodies
            .iter()
            .enumerate()
            .map(|(i, b)| (i as u64 + 1, b.clone()))
            .collect()
    }

    #[test]
    fn an_untouched_ledger_verifies() {
        let (bodies, checkpoints, key) = ledger();
        let verifier = run(&numbered(&bodies), &checkpoints, &key).unwrap();
        assert_eq!((verifier.size(), verifier.checkpoints_checked), (10, 2));
        assert_eq!(verifier.uncovered(), 0);
        let verifier = run(&numbered(&bodies), &checkpoints[..1], &key).unwrap();
        assert_eq!((verifier.checkpoints_checked, verifier.uncovered()), (1, 6));
    }

    #[test]
    fn an_edit_is_found_in_the_range_before_the_first_checkpoint_that_disagrees() {
        let (mut bodies, checkpoints, key) = ledger();
        bodies[6] = body(7, "edited");
        let failure = run(&numbered(&bodies), &checkpoints, &key).err().unwrap();
        assert!(
            matches!(
                failure,
                Failure::Root {
                    first: 4,
                    last: 9,
                    size: 10,
                    ..
                }
            ),
            "{failure}"
        );
        assert!(failure.to_string().starts_with("index 4..9: hash mismatch"));
    }

    #[test]
    fn an_edit_with_a_stale_leaf_hash_is_named_exactly() {
        let (bodies, checkpoints, key) = ledger();
        let mut verifier = Verifier::new(&checkpoints, &key).unwrap();
        for (i, body_text) in bodies.iter().enumerate() {
            let seq = i as u64 + 1;
            let stored_leaf = latch_ledger::leaf_hash(body_text.as_bytes());
            let shown = if seq == 3 {
                body(3, "edited")
            } else {
                body_text.clone()
            };
            if let Err(failure) = verifier.push(seq, &shown, Some(&stored_leaf)) {
                assert_eq!(failure, Failure::LeafHash { index: 2 });
                return;
            }
        }
        panic!("edit not found");
    }

    #[test]
    fn deletion_insertion_reordering_and_truncation_name_the_index() {
        let (bodies, checkpoints, key) = ledger();
        let mut deleted = numbered(&bodies);
        deleted.remove(5);
        assert_eq!(
            run(&deleted, &checkpoints, &key).err(),
            Some(Failure::Missing {
                index: 5,
                expected: 6,
                found: 7
            })
        );

        let mut swapped = numbered(&bodies);
        swapped.swap(2, 3);
        assert_eq!(
            run(&swapped, &checkpoints, &key).err(),
            Some(Failure::Missing {
                index: 2,
                expected: 3,
                found: 4
            })
        );

        // Rows renumbered to hide a swap: the bytes still say where each event belongs.
        let mut renumbered = numbered(&bodies);
        renumbered.swap(2, 3);
        renumbered[2].0 = 3;
        renumbered[3].0 = 4;
        assert_eq!(
            run(&renumbered, &checkpoints, &key).err(),
            Some(Failure::Moved {
                index: 2,
                claimed: 4
            })
        );

        let mut inserted = numbered(&bodies);
        inserted.insert(4, (4, body(4, "forged")));
        assert_eq!(
            run(&inserted, &checkpoints, &key).err(),
            Some(Failure::OutOfPlace {
                index: 4,
                expected: 5,
                found: 4
            })
        );

        let truncated = numbered(&bodies[..8]);
        assert_eq!(
            run(&truncated, &checkpoints, &key).err(),
            Some(Failure::Truncated { index: 8, size: 10 })
        );

        let mut garbled = numbered(&bodies);
        garbled[1].1 = garbled[1].1.replace("\"v\":1", "\"v\": 1");
        assert!(matches!(
            run(&garbled, &checkpoints, &key).err(),
            Some(Failure::Undecodable { index: 1, .. })
        ));
    }

    #[test]
    fn an_insertion_with_renumbering_is_named_where_the_originals_resume() {
        let (bodies, checkpoints, key) = ledger();
        // A forged row slipped in as event 5, the rest renumbered in the store's column: the
        // first original after it says it belongs earlier.
        let mut shifted = numbered(&bodies);
        shifted.insert(4, (5, body(5, "forged")));
        for (i, row) in shifted.iter_mut().enumerate().skip(5) {
            row.0 = i as u64 + 1;
        }
        assert_eq!(
            run(&shifted, &checkpoints, &key).err(),
            Some(Failure::MovedBack {
                index: 5,
                claimed: 5
            })
        );
    }

    #[test]
    fn two_checkpoints_of_one_size_must_agree() {
        let (bodies, mut checkpoints, key) = ledger();
        let signer = SigningKey::from_seed("latch.test/audit", [3; 32]).unwrap();
        let leaves: Vec<Hash> = bodies[..4]
            .iter()
            .map(|b| latch_ledger::leaf_hash(b.replace("\"r\"", "\"x\"").as_bytes()))
            .collect();
        let forged = Checkpoint {
            origin: "latch.test/audit".into(),
            size: 4,
            root: latch_ledger::root(&leaves),
            time_millis: 1,
        };
        checkpoints.push((4, sign(&forged, &signer).unwrap()));
        assert_eq!(
            run(&numbered(&bodies), &checkpoints, &key).err(),
            Some(Failure::Forked { size: 4 })
        );
    }

    #[test]
    fn a_forged_checkpoint_or_a_wrong_key_is_refused() {
        let (bodies, mut checkpoints, key) = ledger();
        checkpoints[1].1 = checkpoints[1].1.replacen("\n10\n", "\n11\n", 1);
        assert!(matches!(
            run(&numbered(&bodies), &checkpoints, &key).err(),
            Some(Failure::Signature { size: 10, .. })
        ));
        let (_, checkpoints, _) = ledger();
        let other = SigningKey::from_seed("latch.test/audit", [4; 32])
            .unwrap()
            .verifier_key();
        assert!(matches!(
            run(&numbered(&bodies), &checkpoints, &other).err(),
            Some(Failure::Signature { size: 4, .. })
        ));
    }

    /// The hex reader reads every stored hash as the former one (`u8::from_str_radix` on each
    /// pair) did, odd ones included.
    #[test]
    fn stored_hashes_read_as_they_always_did() {
        let former = |hex: &str| -> Option<Hash> {
            if hex.len() != 64 {
                return None;
            }
            let bytes: Option<Vec<u8>> = (0..32)
                .map(|i| {
                    hex.get(2 * i..2 * i + 2)
                        .and_then(|b| u8::from_str_radix(b, 16).ok())
                })
                .collect();
            Hash::from_slice(&bytes?).ok()
        };
        let good = latch_ledger::leaf_hash(b"x").to_string();
        assert_eq!(parse_hex(&good), Some(latch_ledger::leaf_hash(b"x")));
        let odd = ["+", "-", " ", "g", "G", "é", "0", "a", "F", "\u{0}"];
        for first in odd {
            for second in odd {
                for at in [0, 2, 62] {
                    let mut hex = good.clone();
                    hex.replace_range(at..at + 2, &format!("{first}{second}"));
                    assert_eq!(parse_hex(&hex), former(&hex), "{hex}");
                    assert_eq!(parse_hex(&hex.to_uppercase()), former(&hex.to_uppercase()));
                }
            }
        }
        assert_eq!(parse_hex(&good[1..]), None);
    }

    fn session_event(seq: u64, at: i64, kind: EventKind) -> StoredEvent {
        StoredEvent {
            seq,
            event: Event {
                at: Timestamp::from_millis(at),
                actor: Actor::user("alice"),
                subject: "ses_1".to_owned(),
                kind,
            },
        }
    }

    #[test]
    fn the_sessions_projection_is_compared_with_the_session_events() {
        let mut replay = SessionReplay::default();
        replay.push(&session_event(
            1,
            1_000,
            EventKind::SessionStarted {
                grant_id: "gr_1".into(),
                user: "alice".into(),
                resource: "db".into(),
                role: "read".into(),
                client_addr: "127.0.0.1:5000".into(),
                application_name: Some("psql".into()),
                auth: Some("scram-sha-256-plus".into()),
                tls: true,
            },
        ));
        replay.push(&session_event(
            2,
            9_000,
            EventKind::SessionEnded {
                grant_id: "gr_1".into(),
                reason: "expired".into(),
                detail: None,
                bytes_in: 10,
                bytes_out: 20,
                statements: 3,
                revocation_delay_ms: Some(12),
            },
        ));
        let row = latch_store::SessionRow {
            id: "ses_1".into(),
            grant_id: "gr_1".into(),
            user: "alice".into(),
            resource: "db".into(),
            role: "read".into(),
            client_addr: "127.0.0.1:5000".into(),
            application_name: Some("psql".into()),
            tls: true,
            auth: Some("scram-sha-256-plus".into()),
            started_at: Timestamp::from_millis(1_000),
            ended_at: Some(Timestamp::from_millis(9_000)),
            end_reason: Some("expired".into()),
            end_detail: None,
            bytes_in: 10,
            bytes_out: 20,
            statements: 3,
            revocation_delay_ms: Some(12),
        };
        assert_eq!(replay.compare(vec![row.clone()]), Ok(()));

        let edited = latch_store::SessionRow {
            statements: 0,
            ..row.clone()
        };
        let drift = replay.compare(vec![edited]).unwrap_err().to_string();
        assert!(
            drift.starts_with("projection drift: session `ses_1`: the projection says"),
            "{drift}"
        );

        let deleted = replay.compare(Vec::new()).unwrap_err().to_string();
        assert!(
            deleted.contains("started by events but missing from the projection"),
            "{deleted}"
        );

        let invented = latch_store::SessionRow {
            id: "ses_2".into(),
            ..row.clone()
        };
        let invented = replay.compare(vec![row, invented]).unwrap_err().to_string();
        assert_eq!(
            invented,
            "projection drift: session `ses_2`: projected but no event started it"
        );
    }
}
