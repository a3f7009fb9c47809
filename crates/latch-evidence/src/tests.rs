//! A small ledger made by hand, its pack built and verified, and every tampering named.

use std::collections::BTreeMap;

use latch_core::{Actor, Event, EventKind, StoredEvent, Timestamp};
use latch_ledger::{Checkpoint, Hash, SigningKey};

use crate::*;

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn created(who: &str, reason: &str) -> EventKind {
    EventKind::RequestCreated {
        requester: who.into(),
        resource: "payments-db".into(),
        role: "read".into(),
        duration_secs: 1800,
        reason: reason.into(),
        ticket: None,
        required_approvals: 1,
        pending_until: None,
        policies: vec![],
        approver_groups: vec![],
        once: false,
    }
}

/// The ledger: a policy set before Q3 and one older, a request in Q2, two in Q3 (one approved,
/// granted and expired), a finding about the Q2 request opened in Q3 and resolved, one about a
/// Q3 request, and a request in Q4.
fn ledger() -> Vec<StoredEvent> {
    let rows: Vec<(&str, &str, &str, EventKind)> = vec![
        (
            "2026-05-01T00:00:00Z",
            "user:admin",
            "policy",
            EventKind::PolicyLoaded {
                hash: "old".into(),
                files: vec!["p.cedar".into()],
                policies: 1,
            },
        ),
        (
            "2026-06-01T00:00:00Z",
            "user:admin",
            "policy",
            EventKind::PolicyLoaded {
                hash: "h1".into(),
                files: vec!["p.cedar".into()],
                policies: 2,
            },
        ),
        (
            "2026-06-10T00:00:00Z",
            "user:alice",
            "req_A",
            created("alice", "INC-1: q2"),
        ),
        (
            "2026-07-02T09:00:00Z",
            "user:alice",
            "req_B",
            created("alice", "INC-2: stuck job"),
        ),
        (
            "2026-07-02T09:01:00Z",
            "user:bob",
            "req_B",
            EventKind::RequestApproved {
                comment: Some("ok".into()),
                policies: vec![],
                break_glass: false,
            },
        ),
        (
            "2026-07-02T09:01:00Z",
            "system",
            "req_B",
            EventKind::GrantIssued {
                grant_id: "grt_B".into(),
                grantee: "alice".into(),
                resource: "payments-db".into(),
                role: "read".into(),
                starts_at: at("2026-07-02T09:01:00Z"),
                expires_at: at("2026-07-02T09:31:00Z"),
            },
        ),
        (
            "2026-07-02T09:10:00Z",
            "user:carol",
            "tok_1",
            EventKind::TokenCreated {
                token_id: "tok_1".into(),
                user: "carol".into(),
                label: None,
            },
        ),
        (
            "2026-07-02T09:31:00Z",
            "system",
            "req_B",
            EventKind::GrantExpired {
                grant_id: "grt_B".into(),
            },
        ),
        (
            "2026-07-03T00:00:00Z",
            "system",
            "fnd_1",
            EventKind::FindingOpened {
                key: "k1".into(),
                checkpoint: "justification.weak".into(),
                severity: "low".into(),
                about: "req_A".into(),
                summary: "weak reason".into(),
                evidence: vec![3],
            },
        ),
        (
            "2026-07-04T00:00:00Z",
            "user:dave",
            "fnd_1",
            EventKind::FindingStatusChanged {
                status: "resolved".into(),
                comment: "ticket was in chat, \"fine\"".into(),
            },
        ),
        (
            "2026-08-01T00:00:00Z",
            "user:erin",
            "req_C",
            created("erin", "test"),
        ),
        (
            "2026-08-01T00:00:01Z",
            "system",
            "fnd_2",
            EventKind::FindingOpened {
                key: "k2".into(),
                checkpoint: "justification.weak".into(),
                severity: "medium".into(),
                about: "req_C".into(),
                summary: "reason `test`".into(),
                evidence: vec![11],
            },
        ),
        (
            "2026-10-02T00:00:00Z",
            "user:alice",
            "req_D",
            created("alice", "INC-3: q4"),
        ),
    ];
    rows.into_iter()
        .enumerate()
        .map(|(i, (time, actor, subject, kind))| StoredEvent {
            seq: i as u64 + 1,
            event: Event {
                at: at(time),
                actor: Actor::parse(actor).unwrap(),
                subject: subject.into(),
                kind,
            },
        })
        .collect()
}

fn key() -> SigningKey {
    SigningKey::from_seed("acme.example/audit", [7; 32]).unwrap()
}

/// The pack of Q3 over `events`, proved against a checkpoint of all of them.
fn pack_of(events: &[StoredEvent]) -> BTreeMap<String, Vec<u8>> {
    let bodies: BTreeMap<u64, String> =
        events.iter().map(|e| (e.seq, e.canonical_json())).collect();
    let leaves: Vec<Hash> = bodies
        .values()
        .map(|b| latch_ledger::leaf_hash(b.as_bytes()))
        .collect();
    let size = leaves.len() as u64;
    let note = latch_ledger::sign(
        &Checkpoint {
            origin: "acme.example/audit".into(),
            size,
            root: latch_ledger::root(&leaves),
            time_millis: at("2026-10-05T00:00:00Z").as_millis(),
        },
        &key(),
    )
    .unwrap();
    let plan = plan(events, &Period::parse("2026-Q3").unwrap());
    let proofs: BTreeMap<u64, Vec<Hash>> = plan
        .cited
        .iter()
        .map(|seq| {
            (
                seq - 1,
                latch_ledger::inclusion_proof(&leaves, seq - 1).unwrap(),
            )
        })
        .collect();
    let policy_files = [PolicyFile {
        path: "p.cedar".into(),
        text: "permit(principal, action, resource);\n".into(),
    }];
    build(&PackInput {
        plan: &plan,
        events: &bodies,
        checkpoint_note: &note,
        checkpoint_size: size,
        proofs: &proofs,
        public_key: &key().verifier_key().to_string(),
        generated_at: at("2026-10-05T00:00:01Z"),
        policy_files: &policy_files,
    })
    .unwrap()
}

fn text(pack: &BTreeMap<String, Vec<u8>>, name: &str) -> String {
    String::from_utf8(pack[name].clone()).unwrap()
}

#[test]
fn a_quarter_holds_its_accesses_findings_and_policy_sets_and_cites_their_events() {
    let events = ledger();
    let plan = plan(&events, &Period::parse("2026-Q3").unwrap());
    let ids: Vec<&str> = plan.rows.iter().map(|r| r.request_id.as_str()).collect();
    assert_eq!(ids, ["req_B", "req_C"], "Q2 and Q4 requests are left out");
    let b: Vec<u64> = plan.row_events["req_B"].iter().copied().collect();
    assert_eq!(b, [4, 5, 6, 8], "the token event is not the access's");
    let findings: Vec<(&str, &str)> = plan
        .findings
        .iter()
        .map(|f| (f.id.as_str(), f.status()))
        .collect();
    assert_eq!(
        findings,
        [("fnd_1", "resolved"), ("fnd_2", "open")],
        "a finding about an earlier request handled in the period is in"
    );
    assert_eq!(plan.findings[0].history[0].by, "dave");
    let hashes: Vec<&str> = plan.policies.iter().map(|p| p.hash.as_str()).collect();
    assert_eq!(
        hashes,
        ["h1"],
        "only the set in force when the period began"
    );
    let cited: Vec<u64> = plan.cited.iter().copied().collect();
    assert_eq!(
        cited,
        [2, 3, 4, 5, 6, 8, 9, 10, 11, 12],
        "the Q2 request is cited as the finding's evidence"
    );
}

#[test]
fn a_pack_verifies_and_says_what_it_checked() {
    let pack = pack_of(&ledger());
    for file in files::ALL {
        assert!(pack.contains_key(file), "{file} is written");
    }
    assert!(pack.contains_key("policy/files/p.cedar"));
    let checked = verify(&pack, &key().verifier_key()).unwrap();
    let all = checked.join("\n");
    assert!(all.contains("tree size 13"), "{all}");
    assert!(all.contains("10 events, each canonical"), "{all}");
    assert!(
        all.contains("accesses: 2, findings: 2 (1 resolved)"),
        "{all}"
    );
    assert!(all.contains("the SHA-256 of all"), "{all}");
    let findings_csv = text(&pack, files::FINDINGS_CSV);
    assert!(
        findings_csv.contains(
            "\"resolved by dave at 2026-07-04T00:00:00.000Z: ticket was in chat, \"\"fine\"\"\""
        ),
        "{findings_csv}"
    );
    let policy = text(&pack, files::POLICY_README);
    assert!(
        policy.contains("their hash differs from every set recorded"),
        "{policy}"
    );
    let readme = text(&pack, files::README);
    assert!(
        readme.contains("latch ledger verify --bundle . --key"),
        "{readme}"
    );
    assert!(readme.contains("2026-Q3"), "{readme}");
}

fn edited(
    pack: &BTreeMap<String, Vec<u8>>,
    name: &str,
    edit: impl FnOnce(String) -> String,
) -> BTreeMap<String, Vec<u8>> {
    let mut pack = pack.clone();
    let new = edit(text(&pack, name));
    pack.insert(name.to_owned(), new.into_bytes());
    pack
}

#[test]
fn every_tampering_is_named() {
    let pack = pack_of(&ledger());
    let check = |pack: &BTreeMap<String, Vec<u8>>| {
        verify(pack, &key().verifier_key()).unwrap_err().to_string()
    };

    let changed_reason = edited(&pack, files::EVENTS, |t| {
        t.replacen("stuck job", "stuck jab", 1)
    });
    let got = check(&changed_reason);
    assert!(
        got.starts_with("`ledger/events.jsonl`: event 4 (index 3): not in the signed checkpoint"),
        "{got}"
    );

    let no_proof = edited(&pack, files::PROOFS, |t| {
        t.lines()
            .filter(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["index"] != 3)
            .map(|l| format!("{l}\n"))
            .collect()
    });
    assert_eq!(
        check(&no_proof),
        "`ledger/events.jsonl`: event 4 (index 3): no inclusion proof in `ledger/proofs.jsonl`"
    );

    let no_event = edited(&pack, files::EVENTS, |t| {
        t.lines()
            // By content, not by the line's text: the key order of `{"index", "event"}` is
            // serde_json's to choose.
            .filter(|l| {
                let line: serde_json::Value = serde_json::from_str(l).unwrap();
                !line["event"]
                    .as_str()
                    .unwrap()
                    .starts_with("{\"actor\":\"user:bob\"")
            })
            .map(|l| format!("{l}\n"))
            .collect()
    });
    assert_eq!(
        check(&no_event),
        "`report.json` cites event 5 (access req_B), which is not in `ledger/events.jsonl`"
    );

    let csv = edited(&pack, files::REPORT_CSV, |t| {
        t.replacen("bob (ok)", "carol (ok)", 1)
    });
    let got = check(&csv);
    assert!(
        got.starts_with(
            "`report.csv` is not what the events in `ledger/events.jsonl` give: line 2 is `req_B,alice,payments-db,read,INC-2: stuck job,,carol (ok)"
        ),
        "{got}"
    );

    let readme = edited(&pack, files::README, |t| t + "trust me\n");
    assert_eq!(
        check(&readme),
        "`README.md` does not match its SHA-256 in `manifest.json`: it was changed after the pack was made"
    );

    let mut added = pack.clone();
    added.insert("notes.txt".into(), b"hi".to_vec());
    assert_eq!(
        check(&added),
        "`notes.txt` is not listed in `manifest.json`: it was added after the pack was made"
    );

    let other = SigningKey::from_seed("acme.example/audit", [8; 32]).unwrap();
    let got = verify(&pack, &other.verifier_key())
        .unwrap_err()
        .to_string();
    assert!(
        got.starts_with("`ledger/checkpoint.txt` does not verify with the key"),
        "{got}"
    );
}

#[test]
fn a_pack_whose_events_outrun_the_checkpoint_is_refused_with_the_command_to_run() {
    let events = ledger();
    let plan = plan(&events, &Period::parse("2026-Q3").unwrap());
    let err = build(&PackInput {
        plan: &plan,
        events: &BTreeMap::new(),
        checkpoint_note: "",
        checkpoint_size: 9,
        proofs: &BTreeMap::new(),
        public_key: "",
        generated_at: at("2026-10-05T00:00:01Z"),
        policy_files: &[],
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("event 10 is cited but not covered by the checkpoint of size 9: run `latch ledger checkpoint`"),
        "{err}"
    );
}

#[test]
fn the_manifest_reads_back_what_it_wrote_and_refuses_another_format() {
    let period = Period::parse("2026-07").unwrap();
    let mut files = BTreeMap::new();
    files.insert("a.txt".to_owned(), b"abc".to_vec());
    files.insert(crate::files::MANIFEST.to_owned(), b"ignored".to_vec());
    let manifest = Manifest::of(&period, 42, at("2026-08-01T00:00:00Z"), &files);
    assert_eq!(
        manifest.files["a.txt"], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "SHA-256 of `abc`"
    );
    assert!(!manifest.files.contains_key(crate::files::MANIFEST));
    assert_eq!(Manifest::parse(&manifest.to_json()).unwrap(), manifest);
    let other = manifest.to_json().replace(PACK_FORMAT, "latch-evidence/9");
    assert_eq!(
        Manifest::parse(&other).unwrap_err(),
        "format `latch-evidence/9` is not one this latch reads (`latch-evidence/2`)"
    );
}

/// The ledger, then Q3's review: due on 1 October for two resources, payments-db approved by
/// dave (event 15), and a late review of Q2 by erin (event 16).
fn ledger_with_reviews() -> Vec<StoredEvent> {
    let mut events = ledger();
    let more: Vec<(&str, &str, &str, EventKind)> = vec![
        (
            "2026-10-01T00:00:05Z",
            "system",
            "review/2026-Q3",
            EventKind::ReviewDue {
                period: "2026-Q3".into(),
                pack_dir: "/var/lib/latch/reviews/2026-Q3".into(),
                resources: vec!["payments-db".into(), "orders-db".into()],
            },
        ),
        (
            "2026-10-03T10:00:00Z",
            "user:dave",
            "review/2026-Q3/payments-db",
            EventKind::ReviewRecorded {
                period: "2026-Q3".into(),
                resource: "payments-db".into(),
                outcome: "approved".into(),
                comment: "two accesses, both \"on call\", fine".into(),
            },
        ),
        (
            "2026-10-04T10:00:00Z",
            "user:erin",
            "review/2026-Q2/payments-db",
            EventKind::ReviewRecorded {
                period: "2026-Q2".into(),
                resource: "payments-db".into(),
                outcome: "changes_needed".into(),
                comment: "late".into(),
            },
        ),
    ];
    for (time, actor, subject, kind) in more {
        events.push(StoredEvent {
            seq: events.len() as u64 + 1,
            event: Event {
                at: at(time),
                actor: Actor::parse(actor).unwrap(),
                subject: subject.into(),
                kind,
            },
        });
    }
    events
}

#[test]
fn a_pack_holds_the_review_outcomes_of_its_period_and_verifies() {
    let events = ledger_with_reviews();
    let plan = plan(&events, &Period::parse("2026-Q3").unwrap());
    assert!(plan.cited.contains(&14) && plan.cited.contains(&15));
    let pack = pack_of(&events);
    let checked = verify(&pack, &key().verifier_key()).unwrap().join("\n");
    assert!(
        checked.contains("resources reviewed: 1 (1 pending)"),
        "{checked}"
    );
    let csv = text(&pack, files::REVIEWS_CSV);
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(
        lines,
        [
            "period,resource,due_at,status,outcome,reviewer,recorded_at,comment,ledger_events",
            "2026-Q3,orders-db,2026-10-01T00:00:05.000Z,pending,,,,,14",
            "2026-Q3,payments-db,2026-10-01T00:00:05.000Z,approved,approved,dave,2026-10-03T10:00:00.000Z,\"two accesses, both \"\"on call\"\", fine\",14 15",
            "",
        ]
    );
    let json: serde_json::Value = serde_json::from_str(&text(&pack, files::REVIEWS_JSON)).unwrap();
    assert_eq!(json["due"][0]["resources"][1], "orders-db");
    assert_eq!(json["reviews"][1]["status"], "approved");
    assert_eq!(json["reviews"][1]["outcomes"][0]["by"], "dave");
    assert_eq!(json["reviews"][1]["outcomes"][0]["event"], 15);
    let controls = text(&pack, files::CONTROLS_MD);
    let a518 = controls.lines().find(|l| l.contains("**A.5.18**")).unwrap();
    assert!(a518.contains("`reviews.csv`"), "{a518}");
    let readme = text(&pack, files::README);
    assert!(
        readme.contains("| `reviews.csv`, `reviews.json` |"),
        "{readme}"
    );
}

#[test]
fn an_edited_review_or_a_removed_review_event_is_named() {
    let pack = pack_of(&ledger_with_reviews());
    let check = |pack: &BTreeMap<String, Vec<u8>>| {
        verify(pack, &key().verifier_key()).unwrap_err().to_string()
    };
    let csv = edited(&pack, files::REVIEWS_CSV, |t| {
        t.replacen(",pending,,,,,14", ",approved,approved,dave,,,14", 1)
    });
    let got = check(&csv);
    assert!(
        got.starts_with(
            "`reviews.csv` is not what the events in `ledger/events.jsonl` give: line 2 is `2026-Q3,orders-db,2026-10-01T00:00:05.000Z,approved"
        ),
        "{got}"
    );
    let no_event = edited(&pack, files::EVENTS, |t| {
        t.lines()
            .filter(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["index"] != 14)
            .map(|l| format!("{l}\n"))
            .collect()
    });
    assert_eq!(
        check(&no_event),
        "`reviews.json` cites event 15 (the review of payments-db for 2026-Q3), which is not in `ledger/events.jsonl`"
    );
}

#[test]
fn a_review_of_another_period_is_left_out_and_a_year_holds_its_quarters() {
    let events = ledger_with_reviews();
    let q3 = plan(&events, &Period::parse("2026-Q3").unwrap());
    let periods: Vec<&str> = q3.reviews.iter().map(|r| r.period.as_str()).collect();
    assert_eq!(periods, ["2026-Q3"], "the Q2 review is not Q3's evidence");
    assert!(!q3.cited.contains(&16));
    let q4 = plan(&events, &Period::parse("2026-Q4").unwrap());
    assert!(q4.reviews.is_empty() && q4.reviews_due.is_empty());
    assert!(q4.summary().contains("resources reviewed: 0 (0 pending)"));
    let year = plan(&events, &Period::parse("2026").unwrap());
    let periods: Vec<&str> = year.reviews.iter().map(|r| r.period.as_str()).collect();
    assert_eq!(periods, ["2026-Q3", "2026-Q2"], "in ledger order");
}
