//! Properties over synthetic ledgers: replays agree, ticks never duplicate a key, and no
//! sequence of events (in any order, about anything) makes the auditor panic.

use std::collections::HashSet;

use latch_audit::{AuditSettings, Auditor, Finding};
use latch_core::{Actor, Event, EventKind, StoredEvent, Timestamp};
use proptest::prelude::*;

use crate::synth::{self, Rng, Scale, Synth};

fn stream(seed: u64, n: usize) -> (Synth, Vec<StoredEvent>) {
    let mut synth = Synth::new(seed, Scale::SMALL);
    let mut events = Vec::with_capacity(n);
    synth.fill(n, &mut events);
    (synth, events)
}

fn auditor(synth: &Synth) -> Auditor {
    Auditor::new(
        AuditSettings::default(),
        synth.catalog(),
        synth::rules(Scale::SMALL),
    )
}

fn assert_unique(findings: &[Finding]) -> Result<(), TestCaseError> {
    let mut seen = HashSet::new();
    for finding in findings {
        prop_assert!(seen.insert(&finding.key), "duplicate key {}", finding.key);
    }
    Ok(())
}

fn end_of(events: &[StoredEvent]) -> Timestamp {
    let last = events
        .iter()
        .map(|e| e.event.at.as_millis())
        .max()
        .unwrap_or(0);
    Timestamp::from_millis(last + 30 * 86_400_000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn replaying_the_same_events_yields_the_same_findings(seed in any::<u64>()) {
        let (synth, events) = stream(seed, 1_500);
        let until = end_of(&events);
        let first = auditor(&synth).replay(&events, until);
        let second = auditor(&synth).replay(&events, until);
        prop_assert!(!first.is_empty());
        prop_assert_eq!(&first, &second);
        assert_unique(&first)?;
    }

    #[test]
    fn ticks_between_observes_never_duplicate_a_key(
        seed in any::<u64>(),
        chunks in prop::collection::vec((1usize..200, 0i64..7_200_000), 1..40),
    ) {
        let (synth, events) = stream(seed, 2_000);
        let mut auditor = auditor(&synth);
        let mut findings = Vec::new();
        let mut rest = events.as_slice();
        let mut chunks = chunks.into_iter().cycle();
        while !rest.is_empty() {
            let (size, ahead) = chunks.next().unwrap_or((1, 0));
            let (now, later) = rest.split_at(size.min(rest.len()));
            for event in now {
                findings.extend(auditor.observe(event));
            }
            let last = now.last().map_or(0, |e| e.event.at.as_millis());
            findings.extend(auditor.tick(Timestamp::from_millis(last + ahead)));
            rest = later;
        }
        findings.extend(auditor.tick(end_of(&events)));
        assert_unique(&findings)?;
        // Nothing outlives the stream but what the organisation bounds.
        let stats = auditor.stats();
        prop_assert_eq!((stats.grants, stats.sessions, stats.timers), (0, 0, 0));
    }

    #[test]
    fn events_in_any_order_never_panic(seed in any::<u64>(), ticks in 0u64..50) {
        let (synth, mut events) = stream(seed, 800);
        let mut rng = Rng::new(seed ^ 0x5eed);
        // Fisher-Yates.
        for i in (1..events.len()).rev() {
            let j = usize::try_from(rng.below(i as u64 + 1)).unwrap();
            events.swap(i, j);
        }
        let mut auditor = auditor(&synth);
        let mut findings = Vec::new();
        for (i, event) in events.iter().enumerate() {
            findings.extend(auditor.observe(event));
            if ticks > 0 && (i as u64).is_multiple_of(ticks) {
                findings.extend(auditor.tick(event.event.at));
            }
        }
        findings.extend(auditor.tick(end_of(&events)));
        assert_unique(&findings)?;
    }

    #[test]
    fn arbitrary_events_about_anything_never_panic(
        script in prop::collection::vec((0u8..19, 0u8..4, 0u8..4, 0i64..20_000_000, any::<u64>()), 1..120),
    ) {
        let synth = Synth::new(1, Scale::SMALL);
        let mut auditor = auditor(&synth);
        let mut findings = Vec::new();
        for (seq, (kind, a, b, offset, n)) in script.into_iter().enumerate() {
            let event = arbitrary(seq as u64 + 1, kind, a, b, synth::START + offset, n);
            findings.extend(auditor.observe(&event));
            if n % 7 == 0 {
                findings.extend(auditor.tick(event.event.at));
            }
        }
        findings.extend(auditor.tick(Timestamp::from_millis(synth::START + 90 * 86_400_000)));
    }
}

/// An event of any kind about one of a few requests, grants and sessions, by one of a few users.
fn arbitrary(seq: u64, kind: u8, a: u8, b: u8, at: i64, n: u64) -> StoredEvent {
    let user = ["u0000", "u0001", "u0008", "nobody"][usize::from(a)].to_owned();
    let request = format!("req_{b}");
    let grant = format!("grt_{b}");
    let session = format!("ses_{a}");
    let resource = ["db00", "db01", "db02", "nowhere"][usize::from(b)].to_owned();
    let time = Timestamp::from_millis;
    let (subject, kind) = match kind {
        0 => (
            request,
            EventKind::RequestCreated {
                requester: user.clone(),
                resource,
                role: if n.is_multiple_of(2) { "read" } else { "write" }.to_owned(),
                duration_secs: n % 20_000,
                reason: ["test", "", "PAY-1: fix", "aaaa"][usize::from(b)].to_owned(),
                ticket: n.is_multiple_of(3).then(|| "PAY-1".to_owned()),
                required_approvals: u32::try_from(n % 3).unwrap(),
                pending_until: n.is_multiple_of(5).then(|| time(at + 1_000)),
                policies: Vec::new(),
                approver_groups: Vec::new(),
                once: n.is_multiple_of(11),
            },
        ),
        1 => (
            request,
            EventKind::ApprovalRecorded {
                comment: None,
                policies: Vec::new(),
            },
        ),
        2 => (
            request,
            EventKind::RequestApproved {
                comment: None,
                policies: Vec::new(),
                break_glass: n.is_multiple_of(2),
            },
        ),
        3 => (
            request,
            EventKind::RequestDenied {
                reason: "no".to_owned(),
            },
        ),
        4 => (request, EventKind::RequestCancelled {}),
        5 => (request, EventKind::RequestTimedOut {}),
        6 => (
            request,
            EventKind::RequestEscalated {
                level: 1,
                to: vec![user.clone()],
            },
        ),
        7 => (
            request,
            EventKind::GrantIssued {
                grant_id: grant,
                grantee: user.clone(),
                resource,
                role: "read".to_owned(),
                starts_at: time(at),
                expires_at: time(at + i64::try_from(n % 100_000_000).unwrap() - 1_000),
            },
        ),
        8 => (request, EventKind::GrantExpired { grant_id: grant }),
        9 => (
            request,
            EventKind::GrantRevoked {
                grant_id: grant,
                reason: "x".to_owned(),
            },
        ),
        10 => (
            session,
            EventKind::SessionStarted {
                grant_id: grant,
                user: user.clone(),
                resource,
                role: "read".to_owned(),
                client_addr: "x".to_owned(),
                application_name: None,
                auth: None,
                tls: false,
            },
        ),
        11..=13 => (
            session,
            EventKind::SessionStatement {
                grant_id: grant,
                seq: n % 4,
                text: String::new(),
                protocol: "simple".to_owned(),
                class: ["read", "write", "ddl", "other"][usize::from(b)].to_owned(),
                objects: vec!["public.x".to_owned(), "y".to_owned()],
                outcome: ["rows", "refused", "pending", "error"][usize::from(a)].to_owned(),
                rows: Some(n % 200_000),
                detail: None,
                duration_us: 1,
            },
        ),
        14 => (
            session,
            EventKind::SessionStatementOutcome {
                grant_id: grant,
                seq: n % 4,
                outcome: "rows".to_owned(),
                rows: Some(n),
                detail: None,
                duration_us: 1,
            },
        ),
        15 => (
            session,
            EventKind::SessionEnded {
                grant_id: grant,
                reason: "grant_expired".to_owned(),
                detail: None,
                bytes_in: 0,
                bytes_out: 0,
                statements: 0,
                revocation_delay_ms: Some(i64::try_from(n % 10_000).unwrap() - 100),
            },
        ),
        16 => (
            "/api".to_owned(),
            EventKind::AccessRefused {
                action: "x".to_owned(),
                reason: "y".to_owned(),
            },
        ),
        17 => (
            grant,
            EventKind::CredentialIssued {
                credential_id: "c".to_owned(),
                user: user.clone(),
                expires_at: time(at),
            },
        ),
        _ => (
            "tok".to_owned(),
            EventKind::TokenCreated {
                token_id: "t".to_owned(),
                user: user.clone(),
                label: None,
            },
        ),
    };
    let actor = if n.is_multiple_of(13) {
        Actor::System
    } else {
        Actor::user(user)
    };
    StoredEvent {
        seq,
        event: Event {
            at: time(at),
            actor,
            subject,
            kind,
        },
    }
}

#[test]
fn the_synthetic_ledger_exercises_most_checkpoints() {
    let (synth, events) = stream(7, 20_000);
    let findings = auditor(&synth).replay(&events, end_of(&events));
    let seen: std::collections::BTreeSet<&str> =
        findings.iter().map(|f| f.checkpoint.as_str()).collect();
    let seen: Vec<&str> = seen.into_iter().collect();
    expect_test::expect![[r#"
        [
            "approval.break_glass",
            "approval.rubber_stamp",
            "approval.self",
            "approval.unauthorized",
            "grant.excessive",
            "grant.idle_tail",
            "grant.unused",
            "justification.missing",
            "justification.weak",
            "requests.standing_candidate",
            "revocation.late",
            "usage.bulk_read",
            "usage.first_time",
            "usage.off_hours",
            "usage.outside_window",
            "usage.scope",
        ]
    "#]]
    .assert_debug_eq(&seen);
}
