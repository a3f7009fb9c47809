//! The access-summary fold, as the store's projection runs it: page by page, each page given
//! only the summaries and sessions its events need, it ends where one fold of the whole ledger
//! ends, however the ledger is cut and however accesses interleave.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

use std::collections::HashMap;

use latch_core::{Actor, Event, EventKind, StoredEvent, Timestamp};
use latch_report::{AccessFold, AccessSummary, Lookup, lookup, summarize};
use proptest::prelude::*;

/// One access's events, in order, from a script of what happens to it.
fn access(n: usize, script: &[u8]) -> Vec<Event> {
    let id = format!("req_{n}");
    let grant = format!("grt_{n}");
    let who = format!("user{}", n % 3);
    let at = |i: usize| Timestamp::from_millis(1_780_000_000_000 + (n * 1000 + i) as i64);
    let mut events = vec![Event {
        at: at(0),
        actor: Actor::user(&who),
        subject: id.clone(),
        kind: EventKind::RequestCreated {
            requester: who.clone(),
            resource: format!("db{}", n % 2),
            role: "read".into(),
            duration_secs: 3600,
            reason: "why".into(),
            ticket: None,
            required_approvals: 1,
            pending_until: None,
            policies: Vec::new(),
            approver_groups: Vec::new(),
            once: false,
        },
    }];
    let mut session = 0;
    for (i, step) in script.iter().enumerate() {
        let i = i + 1;
        let (actor, subject, kind) = match step % 9 {
            0 => (
                Actor::user("bob"),
                id.clone(),
                EventKind::ApprovalRecorded {
                    comment: Some("fine".into()),
                    policies: Vec::new(),
                },
            ),
            1 => (
                Actor::user("carol"),
                id.clone(),
                EventKind::RequestApproved {
                    comment: None,
                    policies: Vec::new(),
                    break_glass: step % 2 == 0,
                },
            ),
            2 => (
                Actor::System,
                id.clone(),
                EventKind::GrantIssued {
                    grant_id: grant.clone(),
                    grantee: who.clone(),
                    resource: "db".into(),
                    role: "read".into(),
                    starts_at: at(i),
                    expires_at: at(i + 3_600_000),
                },
            ),
            3 => {
                session += 1;
                (
                    Actor::user(&who),
                    format!("ses_{n}_{session}"),
                    EventKind::SessionStarted {
                        grant_id: grant.clone(),
                        user: who.clone(),
                        resource: "db".into(),
                        role: "read".into(),
                        client_addr: "10.0.0.1:1".into(),
                        application_name: None,
                        auth: None,
                        tls: true,
                    },
                )
            }
            4 => (
                Actor::user(&who),
                format!("ses_{n}_{session}"),
                EventKind::SessionStatement {
                    grant_id: grant.clone(),
                    seq: i as u64,
                    text: "SELECT 1".into(),
                    protocol: "simple".into(),
                    class: ["read", "write", "ddl"][usize::from(*step / 9) % 3].into(),
                    objects: vec![format!("t{}", step % 4)],
                    outcome: "rows".into(),
                    rows: Some(1),
                    detail: None,
                    duration_us: 1,
                },
            ),
            5 => (
                Actor::user(&who),
                format!("ses_{n}_{session}"),
                EventKind::SessionEnded {
                    grant_id: grant.clone(),
                    reason: "client_closed".into(),
                    detail: None,
                    bytes_in: 1,
                    bytes_out: 1,
                    statements: 1,
                    revocation_delay_ms: None,
                },
            ),
            6 => {
                let about = match (step / 9) % 3 {
                    0 => id.clone(),
                    1 => grant.clone(),
                    _ => format!("ses_{n}_{session}"),
                };
                (
                    Actor::System,
                    format!("fnd_{n}_{i}"),
                    EventKind::FindingOpened {
                        key: format!("k{n}{i}"),
                        checkpoint: "bulk_read".into(),
                        severity: "high".into(),
                        about,
                        summary: "s".into(),
                        evidence: vec![],
                    },
                )
            }
            7 => (
                Actor::user("dave"),
                id.clone(),
                EventKind::RequestDenied {
                    reason: "no".into(),
                },
            ),
            _ => (
                Actor::user("carol"),
                id.clone(),
                EventKind::GrantRevoked {
                    grant_id: grant.clone(),
                    reason: "done".into(),
                },
            ),
        };
        events.push(Event {
            at: at(i),
            actor,
            subject,
            kind,
        });
    }
    events
}

/// Interleaves the accesses' events as `picks` say, keeping each access's own order.
fn interleave(mut accesses: Vec<Vec<Event>>, picks: &[usize]) -> Vec<StoredEvent> {
    for events in &mut accesses {
        events.reverse();
    }
    let mut out = Vec::new();
    let mut pick = picks.iter().cycle();
    while accesses.iter().any(|events| !events.is_empty()) {
        let live: Vec<usize> = (0..accesses.len())
            .filter(|&i| !accesses[i].is_empty())
            .collect();
        let i = live[pick.next().copied().unwrap_or(0) % live.len()];
        let event = accesses[i].pop().unwrap();
        out.push(StoredEvent {
            seq: out.len() as u64 + 1,
            event,
        });
    }
    out
}

/// The projection's way: a fresh fold per page, loaded with what the page needs from the
/// summaries and sessions saved by earlier pages.
fn paged(events: &[StoredEvent], page: usize) -> Vec<AccessSummary> {
    let mut saved: HashMap<String, AccessSummary> = HashMap::new();
    let mut sessions: HashMap<String, String> = HashMap::new();
    for chunk in events.chunks(page.max(1)) {
        let mut fold = AccessFold::new();
        for stored in chunk {
            match lookup(&stored.event) {
                Lookup::Key(key) => {
                    if let Some(summary) = saved.get(key) {
                        fold.load(summary.clone());
                    }
                }
                Lookup::Session(id) => {
                    if let Some(key) = sessions.get(id) {
                        fold.load_session(id.to_owned(), key.clone());
                        if let Some(summary) = saved.get(key) {
                            fold.load(summary.clone());
                        }
                    }
                }
                Lookup::Nothing => {}
            }
        }
        // Loading is done before folding, as the projection does it: a summary loaded twice
        // above is the same saved one.
        for stored in chunk {
            fold.observe(stored);
        }
        let (changed, learnt) = fold.take_changed();
        for summary in changed {
            saved.insert(summary.key().to_owned(), summary);
        }
        sessions.extend(learnt);
    }
    let mut all: Vec<AccessSummary> = saved.into_values().collect();
    all.sort_by_key(|summary| summary.created_seq);
    all
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn page_by_page_equals_one_fold(
        scripts in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..12), 1..6),
        picks in prop::collection::vec(any::<usize>(), 1..40),
        page in 1usize..9,
    ) {
        let accesses = scripts
            .iter()
            .enumerate()
            .map(|(n, script)| access(n, script))
            .collect();
        let events = interleave(accesses, &picks);
        let whole = summarize(&events);
        prop_assert_eq!(whole.len(), scripts.len());
        prop_assert_eq!(paged(&events, page), whole);
    }
}

#[test]
fn a_session_finding_and_its_statements_land_on_the_access() {
    // created, approved, granted, session, statement, finding about the session, end.
    let events = interleave(vec![access(0, &[1, 2, 3, 4, 6 + 9 * 2, 5])], &[0]);
    let summary = &summarize(&events)[0];
    assert_eq!(summary.row.sessions, 1);
    assert_eq!(summary.row.findings, ["fnd_0_5"]);
    assert_eq!(summary.objects.values().sum::<u64>(), 1);
    assert_eq!(paged(&events, 1), summarize(&events));
}
