//! The access-summary projection on real SQLite and PostgreSQL: folded page by page, by
//! followers racing each other, it reads back what one fold of the whole ledger gives.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "integration tests fail loudly"
)]

use latch_core::{Actor, Event, EventKind, Timestamp};
use latch_report::{AccessSummary, summarize};
use latch_store::{Store, SummaryRange};
use latch_testkit::{Backend, TestStore};

const MIN: i64 = 60_000;

fn event(at: i64, actor: Actor, subject: &str, kind: EventKind) -> Event {
    Event {
        at: Timestamp::from_millis(at),
        actor,
        subject: subject.to_owned(),
        kind,
    }
}

fn created(at: i64, who: &str, id: &str, resource: &str) -> Event {
    event(
        at,
        Actor::user(who),
        id,
        EventKind::RequestCreated {
            requester: who.into(),
            resource: resource.into(),
            role: "read".into(),
            duration_secs: 3600,
            reason: "a stuck job, \"urgent\"".into(),
            ticket: Some("PAY-1".into()),
            required_approvals: 2,
            pending_until: None,
            policies: Vec::new(),
            approver_groups: Vec::new(),
            once: false,
        },
    )
}

fn finding(at: i64, id: &str, about: &str, checkpoint: &str) -> Event {
    event(
        at,
        Actor::System,
        id,
        EventKind::FindingOpened {
            key: format!("{checkpoint}/{about}"),
            checkpoint: checkpoint.into(),
            severity: "high".into(),
            about: about.into(),
            summary: "look".into(),
            evidence: vec![1],
        },
    )
}

fn statement(at: i64, who: &str, session: &str, grant: &str, n: u64, class: &str) -> Event {
    event(
        at,
        Actor::user(who),
        session,
        EventKind::SessionStatement {
            grant_id: grant.into(),
            seq: n,
            text: "SELECT 1".into(),
            protocol: "simple".into(),
            class: class.into(),
            objects: vec![format!("public.t{}", n % 3)],
            outcome: "rows".into(),
            rows: Some(1),
            detail: None,
            duration_us: 10,
        },
    )
}

/// Three accesses whose events interleave, with every kind the summary reads: two approvers,
/// a denial, a revocation, a session with statements, findings about a request, a grant and a
/// session; and events about no access in between.
fn ledger() -> Vec<Event> {
    let t = 1_780_000_000_000;
    let (a, b, c) = ("req_a", "req_b", "req_c");
    let approve = |at: i64, who: &str, id: &str| {
        event(
            at,
            Actor::user(who),
            id,
            EventKind::RequestApproved {
                comment: Some(format!("ok, {who}")),
                policies: Vec::new(),
                break_glass: false,
            },
        )
    };
    let issued = |at: i64, id: &str, grant: &str, who: &str| {
        event(
            at,
            Actor::System,
            id,
            EventKind::GrantIssued {
                grant_id: grant.into(),
                grantee: who.into(),
                resource: "payments-db".into(),
                role: "read".into(),
                starts_at: Timestamp::from_millis(at),
                expires_at: Timestamp::from_millis(at + 60 * MIN),
            },
        )
    };
    vec![
        created(t, "alice", a, "payments-db"),
        created(t + 1, "dave", b, "orders-db"),
        event(
            t + 2,
            Actor::user("bob"),
            a,
            EventKind::ApprovalRecorded {
                comment: None,
                policies: Vec::new(),
            },
        ),
        event(
            t + 3,
            Actor::user("mallory"),
            "refusal",
            EventKind::AccessRefused {
                action: "approve".into(),
                reason: "not an approver".into(),
            },
        ),
        approve(t + 4, "carol", a),
        issued(t + 4, a, "grt_a", "alice"),
        event(
            t + 5,
            Actor::user("bob"),
            b,
            EventKind::RequestDenied {
                reason: "no".into(),
            },
        ),
        created(t + 6, "alice", c, "payments-db"),
        event(
            t + MIN,
            Actor::user("alice"),
            "ses_1",
            EventKind::SessionStarted {
                grant_id: "grt_a".into(),
                user: "alice".into(),
                resource: "payments-db".into(),
                role: "read".into(),
                client_addr: "10.0.0.7:5000".into(),
                application_name: Some("psql".into()),
                auth: None,
                tls: true,
            },
        ),
        statement(t + MIN + 1, "alice", "ses_1", "grt_a", 1, "read"),
        finding(t + MIN + 2, "fnd_1", b, "rubber_stamp"),
        statement(t + MIN + 3, "alice", "ses_1", "grt_a", 2, "write"),
        approve(t + MIN + 4, "bob", c),
        issued(t + MIN + 4, c, "grt_c", "alice"),
        statement(t + MIN + 5, "alice", "ses_1", "grt_a", 3, "read"),
        finding(t + MIN + 6, "fnd_2", "ses_1", "bulk_read"),
        event(
            t + 9 * MIN,
            Actor::user("alice"),
            "ses_1",
            EventKind::SessionEnded {
                grant_id: "grt_a".into(),
                reason: "client_closed".into(),
                detail: None,
                bytes_in: 10,
                bytes_out: 100,
                statements: 3,
                revocation_delay_ms: None,
            },
        ),
        finding(t + 9 * MIN + 1, "fnd_3", "grt_c", "unused_grant"),
        event(
            t + 10 * MIN,
            Actor::user("carol"),
            c,
            EventKind::GrantRevoked {
                grant_id: "grt_c".into(),
                reason: "done".into(),
            },
        ),
        event(
            t + 61 * MIN,
            Actor::System,
            a,
            EventKind::GrantExpired {
                grant_id: "grt_a".into(),
            },
        ),
    ]
}

fn everything() -> SummaryRange {
    SummaryRange {
        from: Timestamp::from_millis(0),
        to: Timestamp::from_millis(i64::MAX),
        resource: None,
        requesters: None,
    }
}

async fn read(store: &dyn Store, range: &SummaryRange) -> Vec<AccessSummary> {
    latch_accesses::read_all(store, range).await.unwrap()
}

async fn folded_page_by_page_reads_back_one_fold(backend: Backend) {
    let test = TestStore::new(backend).await;
    let store: &dyn Store = test.store.as_ref();
    let events = ledger();
    // The first half is folded in pages of 3 events, so that sessions, grants and findings
    // find summaries saved by earlier pages; the rest by the reader's own catch-up.
    let stored_first = store.record(events[..11].to_vec()).await.unwrap();
    latch_accesses::catch_up_with(store, 3).await.unwrap();
    let mut stored = stored_first;
    stored.extend(store.record(events[11..].to_vec()).await.unwrap());

    let expected = summarize(&stored);
    assert_eq!(expected.len(), 3);
    let all = read(store, &everything()).await;
    assert_eq!(all, expected);
    assert_eq!(
        store.summary_cursor().await.unwrap(),
        stored.last().unwrap().seq
    );

    // What a reviewer reads from it.
    let a = &all[0].row;
    assert_eq!(a.outcome, "expired");
    assert_eq!(a.approvers.len(), 2);
    assert_eq!(a.sessions, 1);
    assert_eq!(a.duration_used_secs, Some(8 * 60));
    assert_eq!(a.statements_by_class.get("read"), Some(&2));
    assert_eq!(a.findings, ["fnd_2"]);
    assert_eq!(all[1].row.outcome, "denied by bob");
    assert_eq!(all[1].row.findings, ["fnd_1"]);
    assert_eq!(all[2].row.outcome, "revoked by carol");
    assert_eq!(
        all[2].finding_kinds,
        [("unused_grant".to_owned(), "high".to_owned())]
    );

    // Filters: a period, a resource, some people.
    let mut range = everything();
    range.resource = Some("payments-db".into());
    let ids: Vec<String> = read(store, &range)
        .await
        .into_iter()
        .map(|s| s.row.request_id)
        .collect();
    assert_eq!(ids, ["req_a", "req_c"]);
    range.resource = None;
    range.requesters = Some(vec!["dave".into()]);
    assert_eq!(read(store, &range).await.len(), 1);
    range.requesters = Some(Vec::new());
    assert!(read(store, &range).await.is_empty());
    let mut range = everything();
    range.from = all[1].row.requested_at;
    range.to = all[2].row.requested_at;
    let ids: Vec<String> = read(store, &range)
        .await
        .into_iter()
        .map(|s| s.row.request_id)
        .collect();
    assert_eq!(ids, ["req_b"]);

    // Pages of one: keyset paging neither skips nor repeats.
    let mut after = None;
    let mut paged = Vec::new();
    loop {
        let (page, next) = latch_accesses::read_page(store, &everything(), after, 1)
            .await
            .unwrap();
        paged.extend(page);
        match next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(paged, expected);

    // The CSV report, read as pre-rendered lines, is what rendering the rows gives.
    let mut csv = Vec::new();
    let rows = latch_accesses::write_csv(store, &everything(), &mut csv)
        .await
        .unwrap();
    assert_eq!(rows, 3);
    let rendered: Vec<latch_report::AccessRow> = expected.into_iter().map(|s| s.row).collect();
    assert_eq!(
        String::from_utf8(csv).unwrap(),
        latch_report::to_csv(&rendered)
    );
}

async fn racing_followers_fold_each_event_once(backend: Backend) {
    let test = TestStore::new(backend).await;
    let store: &dyn Store = test.store.as_ref();
    let stored = store.record(ledger()).await.unwrap();
    let (one, two, three) = tokio::join!(
        latch_accesses::catch_up_with(store, 2),
        latch_accesses::catch_up_with(store, 3),
        latch_accesses::catch_up_with(store, 5),
    );
    for cursor in [one, two, three] {
        assert_eq!(cursor.unwrap(), stored.last().unwrap().seq);
    }
    assert_eq!(read(store, &everything()).await, summarize(&stored));
}

/// While events keep arriving, a catch-up ends at the head it found (the server's follower
/// then sleeps until its next pass) instead of folding each new commit as it lands.
async fn catch_up_does_not_chase_a_growing_ledger(backend: Backend) {
    let test = TestStore::new(backend).await;
    let store = test.store.clone();
    let head = store.record(ledger()).await.unwrap().last().unwrap().seq;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let appender = tokio::spawn({
        let store = store.clone();
        let stop = stop.clone();
        async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                n += 1;
                store
                    .record(vec![statement(
                        1_780_000_000_000 + 90 * MIN,
                        "alice",
                        "ses_1",
                        "grt_a",
                        n,
                        "read",
                    )])
                    .await
                    .unwrap();
            }
        }
    });
    // Events arrive while it folds: give the appender a head start.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let folded = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        latch_accesses::catch_up_with(store.as_ref(), 1000),
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    appender.await.unwrap();
    let folded = folded
        .expect("catch-up chased the appends instead of stopping at the head it found")
        .unwrap();
    assert!(
        folded > head,
        "it folds at least what was there when it started"
    );
}

async fn a_corrupt_summary_is_named(backend: Backend) {
    let test = TestStore::new(backend).await;
    let store: &dyn Store = test.store.as_ref();
    let stored = store.record(ledger()[..3].to_vec()).await.unwrap();
    latch_accesses::catch_up(store).await.unwrap();
    let mut records = store.summaries_by_key(&["a".to_owned()]).await.unwrap();
    // Cut short: the encoding ends partway through a field.
    let half = records[0].body.len() / 2;
    records[0].body.truncate(half);
    let cursor = stored.last().unwrap().seq;
    assert!(
        store
            .save_summaries(cursor, cursor, &records, &[])
            .await
            .unwrap()
    );
    let err = latch_accesses::read_all(store, &everything())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("req_a"), "{err}");
}

/// A report filtered on names with quotes and backslashes (PostgreSQL's `COPY` carries its
/// filters as literals) selects exactly those requests, and a name built to break out of a
/// literal selects nothing and breaks nothing.
async fn filters_on_awkward_names_select_exactly(backend: Backend) {
    let test = TestStore::new(backend).await;
    let store: &dyn Store = test.store.as_ref();
    let t = 1_780_000_000_000;
    let (quoted, slashed) = ("o'brien", r"back\slash");
    store
        .record(vec![
            created(t, quoted, "req_q", "pay'ments"),
            created(t + MIN, slashed, "req_s", r"db\1"),
            created(t + 2 * MIN, "alice", "req_a", "payments-db"),
        ])
        .await
        .unwrap();
    let csv_of = |range: SummaryRange| async move {
        let mut csv = Vec::new();
        let rows = latch_accesses::write_csv(store, &range, &mut csv)
            .await
            .unwrap();
        (rows, String::from_utf8(csv).unwrap())
    };
    let by = |people: &[&str], resource: Option<&str>| SummaryRange {
        requesters: Some(people.iter().map(|p| (*p).to_owned()).collect()),
        resource: resource.map(str::to_owned),
        ..everything()
    };
    let (rows, csv) = csv_of(by(&[quoted], None)).await;
    assert_eq!(rows, 1);
    assert!(csv.contains("req_q") && !csv.contains("req_s"), "{csv}");
    let (rows, csv) = csv_of(by(&[slashed, "alice"], Some(r"db\1"))).await;
    assert_eq!(rows, 1);
    assert!(csv.contains("req_s"), "{csv}");
    let (rows, _) = csv_of(by(&[quoted], Some("pay'ments"))).await;
    assert_eq!(rows, 1);
    let escape = r"x\'; DROP TABLE access_summaries; --";
    assert_eq!(csv_of(by(&[escape], None)).await.0, 0);
    assert_eq!(csv_of(by(&[], None)).await.0, 0);
    assert_eq!(csv_of(everything()).await.0, 3);
}

#[tokio::test]
async fn sqlite_filters_on_awkward_names_select_exactly() {
    filters_on_awkward_names_select_exactly(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_filters_on_awkward_names_select_exactly() {
    filters_on_awkward_names_select_exactly(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_folded_page_by_page_reads_back_one_fold() {
    folded_page_by_page_reads_back_one_fold(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_folded_page_by_page_reads_back_one_fold() {
    folded_page_by_page_reads_back_one_fold(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_racing_followers_fold_each_event_once() {
    racing_followers_fold_each_event_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_racing_followers_fold_each_event_once() {
    racing_followers_fold_each_event_once(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_corrupt_summary_is_named() {
    a_corrupt_summary_is_named(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_a_corrupt_summary_is_named() {
    a_corrupt_summary_is_named(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_catch_up_does_not_chase_a_growing_ledger() {
    catch_up_does_not_chase_a_growing_ledger(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_catch_up_does_not_chase_a_growing_ledger() {
    catch_up_does_not_chase_a_growing_ledger(Backend::Postgres).await;
}
