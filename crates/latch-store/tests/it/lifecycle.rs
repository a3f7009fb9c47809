//! Commands through the store: events and projections written together, serialised, replayable.

use std::sync::Arc;

use latch_core::{Actor, Command, EventKind, GrantState, RefusalKind, RequestState};
use latch_store::{Executed, RequestFilter, Store, TokenRecord};
use latch_testkit::{Backend, FakeClock, T0, TestStore, sample_catalog};

crate::on_both_stores!(
    request_approve_expire_writes_events_and_projections,
    refusals_change_nothing,
    racing_approvers_produce_one_grant,
    scheduler_batches_expire_due_grants_only,
    visibility_limits_what_a_requester_sees,
    tokens_are_stored_as_hashes_and_revoked_once,
    sequence_numbers_are_gapless_under_concurrency,
    leaves_are_the_canonical_events_and_checkpoints_are_kept,
    policies_see_the_requesters_history_counted_in_the_transaction,
    a_long_history_is_counted_up_to_the_cap,
    unapproved_requests_escalate_when_due_and_keep_their_level,
);

pub(crate) fn create(requester: &str) -> Command {
    Command::Create {
        requester: requester.into(),
        resource: "payments-db".into(),
        role: "read".into(),
        duration: "30m".parse().unwrap(),
        reason: "INC-1: stuck job".into(),
        ticket: Some("INC-1".into()),
        once: false,
        history: Default::default(),
    }
}

pub(crate) fn approve(approver: &str) -> Command {
    Command::Approve {
        approver: approver.into(),
        comment: Some("ok".into()),
    }
}

fn done(executed: Executed) -> (latch_core::AccessRequest, Vec<latch_core::StoredEvent>) {
    match executed {
        Executed::Done { request, events } => (request, events),
        Executed::Refused(refusal) => panic!("refused: {refusal}"),
    }
}

async fn request_approve_expire_writes_events_and_projections(backend: Backend) {
    let store = TestStore::new(backend).await;
    let (catalog, clock) = (Arc::new(sample_catalog()), FakeClock::new(T0));
    let (request, events) = done(
        store
            .execute("req_1", &create("alice"), catalog.clone(), clock.clone())
            .await
            .unwrap(),
    );
    assert_eq!(request.state, RequestState::Pending);
    assert_eq!(events[0].seq, 1);

    clock.advance_secs(60);
    let (request, events) = done(
        store
            .execute("req_1", &approve("bob"), catalog.clone(), clock.clone())
            .await
            .unwrap(),
    );
    assert_eq!(request.state, RequestState::Granted);
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
    let grant = request.grant.clone().unwrap();
    assert_eq!(grant.expires_at.millis_since(grant.starts_at), 1_800_000);

    // The projection read back equals the state the command produced.
    assert_eq!(store.request("req_1").await.unwrap(), Some(request.clone()));
    let active = store
        .requests(&RequestFilter {
            states: vec![RequestState::Granted],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(active, vec![request]);

    clock.advance_secs(1800);
    let due = store.due(clock_now(&clock), 100, None).await.unwrap();
    assert_eq!(due, vec![("req_1".to_owned(), Command::Expire)]);
    let results = store.execute_batch(&due, &catalog, &*clock).await.unwrap();
    let (request, _) = done(results.into_iter().next().unwrap());
    assert_eq!(request.grant.unwrap().state, GrantState::Expired);
    assert!(
        store
            .due(clock_now(&clock), 100, None)
            .await
            .unwrap()
            .is_empty()
    );

    let events = store.events(0, 100).await.unwrap();
    let types: Vec<_> = events
        .iter()
        .map(|entry| entry.event.event.kind.type_name())
        .collect();
    assert_eq!(
        types,
        [
            "request.created",
            "request.approved",
            "grant.issued",
            "grant.expired"
        ]
    );
    assert_eq!(events[3].event.event.actor, Actor::System);
    // Canonical bytes are stored as written.
    assert_eq!(events[0].body, events[0].event.canonical_json());
    assert!(store.verify_projections().await.unwrap().is_empty());
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.events, counts.active_grants), (4, 0));
}

fn clock_now(clock: &Arc<FakeClock>) -> latch_core::Timestamp {
    use latch_core::time::Clock;
    clock.now()
}

async fn refusals_change_nothing(backend: Backend) {
    let store = TestStore::new(backend).await;
    let (catalog, clock) = (Arc::new(sample_catalog()), FakeClock::new(T0));
    done(
        store
            .execute("req_1", &create("alice"), catalog.clone(), clock.clone())
            .await
            .unwrap(),
    );
    let Executed::Refused(refusal) = store
        .execute("req_1", &approve("alice"), catalog.clone(), clock.clone())
        .await
        .unwrap()
    else {
        panic!("self-approval accepted");
    };
    assert_eq!(refusal.kind, RefusalKind::Forbidden);
    let Executed::Refused(refusal) = store
        .execute("req_9", &approve("bob"), catalog.clone(), clock.clone())
        .await
        .unwrap()
    else {
        panic!("approval of nothing accepted");
    };
    assert_eq!(refusal.kind, RefusalKind::NotFound);
    assert_eq!(store.counts().await.unwrap().events, 1);
    assert_eq!(
        store.request("req_1").await.unwrap().unwrap().state,
        RequestState::Pending
    );
    // A recorded refusal about the request is evidence, not a transition: the request still
    // replays and moves on.
    let refused = latch_core::Event {
        at: T0,
        actor: Actor::user("alice"),
        subject: "req_1".into(),
        kind: EventKind::AccessRefused {
            action: "approve".into(),
            reason: "own request".into(),
        },
    };
    store.record(vec![refused]).await.unwrap();
    let (request, _) = done(
        store
            .execute("req_1", &approve("bob"), catalog.clone(), clock.clone())
            .await
            .unwrap(),
    );
    assert_eq!(request.state, RequestState::Granted);
    assert!(store.verify_projections().await.unwrap().is_empty());
}

async fn racing_approvers_produce_one_grant(backend: Backend) {
    let store = Arc::new(TestStore::new(backend).await);
    let (catalog, clock) = (Arc::new(sample_catalog()), FakeClock::new(T0));
    done(
        store
            .execute("req_1", &create("alice"), catalog.clone(), clock.clone())
            .await
            .unwrap(),
    );
    let mut racers = Vec::new();
    for approver in ["bob", "carol", "bob", "carol"] {
        let (store, catalog, clock) = (store.clone(), catalog.clone(), clock.clone());
        racers.push(tokio::spawn(async move {
            store
                .execute("req_1", &approve(approver), catalog.clone(), clock.clone())
                .await
                .unwrap()
        }));
    }
    let mut granted = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Executed::Done { .. } => granted += 1,
            Executed::Refused(refusal) => assert_eq!(refusal.kind, RefusalKind::Conflict),
        }
    }
    assert_eq!(granted, 1);
    let events = store.events(0, 100).await.unwrap();
    let issued = events
        .iter()
        .filter(|entry| matches!(entry.event.event.kind, EventKind::GrantIssued { .. }))
        .count();
    assert_eq!(issued, 1);
    assert!(store.verify_projections().await.unwrap().is_empty());
}

async fn scheduler_batches_expire_due_grants_only(backend: Backend) {
    let store = TestStore::new(backend).await;
    let (catalog, clock) = (Arc::new(sample_catalog()), FakeClock::new(T0));
    for i in 0..5 {
        let id = format!("req_{i}");
        done(
            store
                .execute(&id, &create("alice"), catalog.clone(), clock.clone())
                .await
                .unwrap(),
        );
        if i < 3 {
            done(
                store
                    .execute(&id, &approve("bob"), catalog.clone(), clock.clone())
                    .await
                    .unwrap(),
            );
        }
    }
    clock.advance_secs(1800);
    let due = store.due(clock_now(&clock), 100, None).await.unwrap();
    assert_eq!(
        due.len(),
        3,
        "three grants are due, two requests are still pending"
    );
    clock.advance_secs(24 * 3600);
    let due = store.due(clock_now(&clock), 100, None).await.unwrap();
    let timeouts = due.iter().filter(|(_, c)| *c == Command::TimeOut).count();
    assert_eq!((due.len(), timeouts), (5, 2));
    store.execute_batch(&due, &catalog, &*clock).await.unwrap();
    // Running the same batch again refuses every command and writes nothing.
    let again = store.execute_batch(&due, &catalog, &*clock).await.unwrap();
    assert!(again.iter().all(|e| matches!(e, Executed::Refused(_))));
    let states: Vec<_> = store
        .requests(&RequestFilter::default())
        .await
        .unwrap()
        .iter()
        .map(|r| r.state)
        .collect();
    assert_eq!(
        states
            .iter()
            .filter(|s| **s == RequestState::Expired)
            .count(),
        3
    );
    assert_eq!(
        states
            .iter()
            .filter(|s| **s == RequestState::TimedOut)
            .count(),
        2
    );
    assert!(store.verify_projections().await.unwrap().is_empty());
}

async fn visibility_limits_what_a_requester_sees(backend: Backend) {
    let store = TestStore::new(backend).await;
    let (catalog, clock) = (Arc::new(sample_catalog()), FakeClock::new(T0));
    done(
        store
            .execute("req_a", &create("alice"), catalog.clone(), clock.clone())
            .await
            .unwrap(),
    );
    clock.advance_secs(1);
    done(
        store
            .execute("req_b", &create("bob"), catalog.clone(), clock.clone())
            .await
            .unwrap(),
    );
    let seen = |user: &str| {
        let filter = RequestFilter {
            visibility: catalog.visibility(user),
            ..Default::default()
        };
        let store = &store;
        async move {
            store
                .requests(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(seen("alice").await, ["req_a"]);
    assert_eq!(
        seen("bob").await,
        ["req_b", "req_a"],
        "bob leads the owner team"
    );
    assert_eq!(seen("dave").await, ["req_b", "req_a"], "dave audits");
    assert_eq!(seen("erin").await, ["req_b", "req_a"], "erin administers");
}

async fn tokens_are_stored_as_hashes_and_revoked_once(backend: Backend) {
    let store = TestStore::new(backend).await;
    let clock = FakeClock::new(T0);
    let token = TokenRecord {
        id: "tok_1".into(),
        user: "alice".into(),
        label: Some("laptop".into()),
        created_at: T0,
        revoked_at: None,
    };
    store
        .create_token(&token, "hash-1", Actor::System, &*clock)
        .await
        .unwrap();
    assert_eq!(
        store.token_by_hash("hash-1").await.unwrap(),
        Some(token.clone())
    );
    assert_eq!(store.token_by_hash("tok_1").await.unwrap(), None);
    clock.advance_secs(5);
    let revoked = store
        .revoke_token("tok_1", Actor::user("erin"), &*clock)
        .await
        .unwrap()
        .unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(store.token_by_hash("hash-1").await.unwrap(), None);
    let again = store
        .revoke_token("tok_1", Actor::user("erin"), &*clock)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(again.kind, RefusalKind::Conflict);
    let unknown = store
        .revoke_token("tok_9", Actor::user("erin"), &*clock)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(unknown.kind, RefusalKind::NotFound);
    let types: Vec<_> = store
        .events(0, 10)
        .await
        .unwrap()
        .iter()
        .map(|entry| entry.event.event.kind.type_name())
        .collect();
    assert_eq!(types, ["token.created", "token.revoked"]);
}

async fn sequence_numbers_are_gapless_under_concurrency(backend: Backend) {
    let store = Arc::new(TestStore::new(backend).await);
    let (catalog, clock) = (Arc::new(sample_catalog()), FakeClock::new(T0));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (store, catalog, clock) = (store.clone(), catalog.clone(), clock.clone());
        tasks.push(tokio::spawn(async move {
            let id = format!("req_{i}");
            done(
                store
                    .execute(&id, &create("alice"), catalog.clone(), clock.clone())
                    .await
                    .unwrap(),
            );
            done(
                store
                    .execute(&id, &approve("bob"), catalog.clone(), clock.clone())
                    .await
                    .unwrap(),
            );
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let seqs: Vec<u64> = store
        .events(0, 1000)
        .await
        .unwrap()
        .iter()
        .map(|entry| entry.event.seq)
        .collect();
    assert_eq!(seqs, (1..=48).collect::<Vec<_>>());
    assert!(store.verify_projections().await.unwrap().is_empty());
}

async fn leaves_are_the_canonical_events_and_checkpoints_are_kept(backend: Backend) {
    let store = TestStore::new(backend).await;
    let (catalog, clock) = (Arc::new(sample_catalog()), FakeClock::new(T0));
    done(
        store
            .execute("req_1", &create("alice"), catalog.clone(), clock.clone())
            .await
            .unwrap(),
    );
    done(
        store
            .execute("req_1", &approve("bob"), catalog.clone(), clock.clone())
            .await
            .unwrap(),
    );
    let events = store.events(0, 10).await.unwrap();
    let leaves = store.leaf_hashes(0, 3).await.unwrap();
    let expected: Vec<_> = events
        .iter()
        .map(|entry| latch_ledger::leaf_hash(entry.body.as_bytes()))
        .collect();
    assert_eq!(leaves, expected);
    assert_eq!(store.leaf_hashes(1, 3).await.unwrap(), expected[1..]);
    assert!(
        store.leaf_hashes(0, 4).await.is_err(),
        "asking past the end is an error, not a short answer"
    );

    let checkpoint = latch_store::StoredCheckpoint {
        size: 3,
        root: latch_ledger::root(&leaves),
        at: T0,
        note: "note".into(),
    };
    assert_eq!(store.checkpoint(None).await.unwrap(), None, "none yet");
    store.add_checkpoint(&checkpoint).await.unwrap();
    store
        .add_checkpoint(&latch_store::StoredCheckpoint {
            note: "other".into(),
            ..checkpoint.clone()
        })
        .await
        .unwrap();
    assert_eq!(store.checkpoints().await.unwrap(), vec![checkpoint.clone()]);

    // The checkpointer reads the latest one and the proofs one by size, not the whole list.
    let later = latch_store::StoredCheckpoint {
        size: 4,
        root: latch_ledger::root(&leaves[..2]),
        at: T0,
        note: "later".into(),
    };
    store.add_checkpoint(&later).await.unwrap();
    assert_eq!(store.checkpoint(None).await.unwrap(), Some(later.clone()));
    assert_eq!(store.checkpoint(Some(3)).await.unwrap(), Some(checkpoint));
    assert_eq!(store.checkpoint(Some(4)).await.unwrap(), Some(later));
    assert_eq!(store.checkpoint(Some(5)).await.unwrap(), None);
    assert_eq!(
        store.checkpoint(Some(u64::MAX)).await.unwrap(),
        None,
        "a size no ledger reaches is not found, not an error"
    );
    assert_eq!(store.ledger_size().await.unwrap(), 3);
}

/// A policy that refuses a request once `cap` are open and records what it was shown.
struct CapOpenRequests {
    cap: u32,
    seen: std::sync::Mutex<Vec<(u32, u32)>>,
}

impl latch_core::policy::AccessPolicy for CapOpenRequests {
    fn request(
        &self,
        facts: &latch_core::policy::RequestFacts<'_>,
    ) -> latch_core::policy::RequestVerdict {
        self.seen
            .lock()
            .unwrap()
            .push((facts.history.open_requests, facts.history.recent_requests));
        let allowed = facts.history.open_requests < self.cap;
        latch_core::policy::RequestVerdict {
            verdict: latch_core::policy::Verdict {
                allowed,
                reason: if allowed {
                    "ok".into()
                } else {
                    "two open requests already".into()
                },
                policies: vec!["cap".into()],
            },
            approvals: 1,
            ..Default::default()
        }
    }
    fn approve(
        &self,
        approver: &str,
        request: &latch_core::AccessRequest,
        _now: latch_core::Timestamp,
    ) -> latch_core::policy::Verdict {
        latch_core::policy::Verdict {
            allowed: approver != request.requester,
            reason: String::new(),
            policies: Vec::new(),
        }
    }
    fn revoke(
        &self,
        _actor: &str,
        _request: &latch_core::AccessRequest,
        _now: latch_core::Timestamp,
    ) -> latch_core::policy::Verdict {
        latch_core::policy::Verdict::default()
    }
    fn self_approve(
        &self,
        _request: &latch_core::AccessRequest,
        _now: latch_core::Timestamp,
    ) -> latch_core::policy::Verdict {
        latch_core::policy::Verdict::default()
    }
    fn missing_groups(&self, _approvers: &[String], _groups: &[String]) -> Vec<String> {
        Vec::new()
    }
}

async fn policies_see_the_requesters_history_counted_in_the_transaction(backend: Backend) {
    let store = TestStore::new(backend).await;
    let policy = Arc::new(CapOpenRequests {
        cap: 2,
        seen: std::sync::Mutex::new(Vec::new()),
    });
    let mut catalog = sample_catalog();
    catalog.policy = Some(latch_core::policy::SharedPolicy(policy.clone()));
    let (catalog, clock) = (Arc::new(catalog), FakeClock::new(T0));
    // An old, closed request counts as neither open nor recent.
    done(
        store
            .execute("req_old", &create("alice"), catalog.clone(), clock.clone())
            .await
            .unwrap(),
    );
    done(
        store
            .execute(
                "req_old",
                &Command::Cancel { by: "alice".into() },
                catalog.clone(),
                clock.clone(),
            )
            .await
            .unwrap(),
    );
    clock.advance_secs(2 * 24 * 3600);
    policy.seen.lock().unwrap().clear();
    // Five concurrent requests: however they are grouped, exactly two get through.
    let mut tasks = Vec::new();
    for i in 0..5 {
        let (store, catalog, clock) = (store.store.clone(), catalog.clone(), clock.clone());
        tasks.push(tokio::spawn(async move {
            store
                .execute(&format!("req_{i}"), &create("alice"), catalog, clock)
                .await
                .unwrap()
        }));
    }
    let mut created = 0;
    for task in tasks {
        if let Executed::Done { .. } = task.await.unwrap() {
            created += 1;
        }
    }
    assert_eq!(created, 2, "the cap holds under concurrent requests");
    let mut seen = policy.seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen[0], (0, 0), "the first request saw no history");
    assert_eq!(seen[1], (1, 1));
    assert!(
        seen[2..]
            .iter()
            .all(|&(open, recent)| open == 2 && recent == 2),
        "{seen:?}"
    );
    // bob's history is his own.
    done(
        store
            .execute("req_bob", &create("bob"), catalog.clone(), clock.clone())
            .await
            .unwrap(),
    );
    assert_eq!(policy.seen.lock().unwrap().last(), Some(&(0, 0)));
}

/// A requester with more open and recent requests than the cap is shown the cap: what each
/// new request costs does not grow with their history.
async fn a_long_history_is_counted_up_to_the_cap(backend: Backend) {
    let store = TestStore::new(backend).await;
    let policy = Arc::new(CapOpenRequests {
        cap: u32::MAX,
        seen: std::sync::Mutex::new(Vec::new()),
    });
    let mut catalog = sample_catalog();
    catalog.policy = Some(latch_core::policy::SharedPolicy(policy.clone()));
    let (catalog, clock) = (Arc::new(catalog), FakeClock::new(T0));
    let cap = latch_core::lifecycle::HISTORY_COUNT_CAP;
    let work: Vec<(String, Command)> = (0..=cap)
        .map(|i| (format!("req_{i}"), create("alice")))
        .collect();
    let results = store.execute_batch(&work, &catalog, &*clock).await.unwrap();
    assert!(results.iter().all(|r| matches!(r, Executed::Done { .. })));
    done(
        store
            .execute("req_next", &create("alice"), catalog.clone(), clock.clone())
            .await
            .unwrap(),
    );
    assert_eq!(policy.seen.lock().unwrap().last(), Some(&(cap, cap)));
}

async fn unapproved_requests_escalate_when_due_and_keep_their_level(backend: Backend) {
    let store = TestStore::new(backend).await;
    let mut catalog = sample_catalog();
    catalog.escalate_after = latch_core::AccessDuration::from_secs(3600);
    let (catalog, clock) = (Arc::new(catalog), FakeClock::new(T0));
    let after = catalog.escalate_after;
    done(
        store
            .execute("req_1", &create("alice"), catalog.clone(), clock.clone())
            .await
            .unwrap(),
    );
    clock.advance_secs(3599);
    assert!(
        store
            .due(clock_now(&clock), 100, after)
            .await
            .unwrap()
            .is_empty()
    );
    clock.advance_secs(1);
    let due = store.due(clock_now(&clock), 100, after).await.unwrap();
    assert_eq!(due, vec![("req_1".to_owned(), Command::Escalate)]);
    let results = store.execute_batch(&due, &catalog, &*clock).await.unwrap();
    let (request, events) = done(results.into_iter().next().unwrap());
    assert_eq!(request.escalation_level, 1);
    assert!(matches!(
        events[0].event.kind,
        EventKind::RequestEscalated { level: 1, .. }
    ));
    // The projection keeps the level, so the next escalation is an hour later.
    assert_eq!(store.request("req_1").await.unwrap(), Some(request));
    assert!(
        store
            .due(clock_now(&clock), 100, after)
            .await
            .unwrap()
            .is_empty()
    );
    clock.advance_secs(3600);
    assert_eq!(
        store
            .due(clock_now(&clock), 100, after)
            .await
            .unwrap()
            .len(),
        1
    );
}
