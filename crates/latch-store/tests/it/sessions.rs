//! Gateway sessions through the store: grouped appends keep the sessions projection in step,
//! statements read back by session, credentials stored as hashes.

use latch_core::catalog::Visibility;
use latch_core::time::Clock;
use latch_core::{Actor, Event, EventKind, Timestamp};
use latch_store::{CredentialRecord, ScramSecret, SessionFilter, Store};
use latch_testkit::{Backend, FakeClock, T0, TestStore};

use crate::lifecycle::{approve, create};

crate::on_both_stores!(
    concurrent_session_appends_share_commits_and_project_sessions,
    credentials_are_found_by_hash_id_or_user,
    a_session_reads_back_whole_whether_its_statements_are_indexed_or_not,
    statements_recorded_before_the_session_index_are_indexed_by_its_migration,
    an_edited_statement_index_is_named_as_drift,
    a_store_opened_read_only_is_read_and_never_written,
);

fn event(session: &str, at: Timestamp, kind: EventKind) -> Event {
    Event {
        at,
        actor: Actor::user("alice"),
        subject: session.to_owned(),
        kind,
    }
}

fn started(session: &str, at: Timestamp) -> Event {
    event(
        session,
        at,
        EventKind::SessionStarted {
            grant_id: "grt_1".into(),
            user: "alice".into(),
            resource: "payments-db".into(),
            role: "read".into(),
            client_addr: "127.0.0.1:5555".into(),
            application_name: Some("psql".into()),
            auth: None,
            tls: false,
        },
    )
}

fn statement(session: &str, at: Timestamp, seq: u64) -> Event {
    event(
        session,
        at,
        EventKind::SessionStatement {
            grant_id: "grt_1".into(),
            seq,
            text: format!("select {seq}"),
            protocol: "simple".into(),
            class: "read".into(),
            objects: Vec::new(),
            outcome: "rows".into(),
            rows: Some(1),
            detail: None,
            duration_us: 120,
        },
    )
}

async fn concurrent_session_appends_share_commits_and_project_sessions(backend: Backend) {
    let store = TestStore::new(backend).await;
    let now = T0;
    let sessions: Vec<String> = (0..20).map(|i| format!("ses_{i}")).collect();
    for id in &sessions {
        store
            .append_session_events(vec![started(id, now)])
            .await
            .unwrap();
    }
    // 20 sessions × 50 statements, each statement its own append, all at once.
    let mut tasks = Vec::new();
    for id in &sessions {
        let (store, id) = (store.store.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            for seq in 1..=50 {
                store
                    .append_session_events(vec![statement(&id, now, seq)])
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let active = store
        .sessions(&SessionFilter {
            active_only: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(active.len(), 20);
    store
        .append_session_events(vec![event(
            "ses_3",
            now,
            EventKind::SessionEnded {
                grant_id: "grt_1".into(),
                reason: "grant_expired".into(),
                detail: None,
                bytes_in: 10,
                bytes_out: 20,
                statements: 50,
                revocation_delay_ms: Some(12),
            },
        )])
        .await
        .unwrap();
    let ended = store.session("ses_3").await.unwrap().unwrap();
    assert_eq!(ended.end_reason.as_deref(), Some("grant_expired"));
    assert_eq!(
        (ended.statements, ended.revocation_delay_ms),
        (50, Some(12))
    );
    assert_eq!(ended.application_name.as_deref(), Some("psql"));
    let active = store
        .sessions(&SessionFilter {
            active_only: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(active.len(), 19);
    // Every statement of a session, in order, from its subject.
    let events = store.subject_events("ses_7", 0, 1000).await.unwrap();
    let seqs: Vec<u64> = events
        .iter()
        .filter_map(|(e, _)| match &e.event.kind {
            EventKind::SessionStatement { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
    // The ledger stays gapless across grouped appends.
    let all = store.events(0, 10_000).await.unwrap();
    assert_eq!(all.len(), 20 + 20 * 50 + 1);
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, entry)| entry.event.seq == i as u64 + 1)
    );
    // Each leaf is the event's canonical bytes and its hash theirs.
    let hashes = store.leaf_hashes(0, all.len() as u64).await.unwrap();
    for (entry, hash) in all.iter().zip(&hashes) {
        assert_eq!(entry.body, entry.event.canonical_json());
        assert_eq!(*hash, latch_ledger::leaf_hash(entry.body.as_bytes()));
    }
    // Visibility applies: bob (no relation) sees nothing.
    let hidden = store
        .sessions(&SessionFilter {
            visibility: Visibility::Some {
                requesters: ["bob".to_owned()].into(),
                resources: Default::default(),
            },
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(hidden.is_empty());
}

async fn credentials_are_found_by_hash_id_or_user(backend: Backend) {
    let store = TestStore::new(backend).await;
    let clock = FakeClock::new(T0);
    let catalog = std::sync::Arc::new(latch_testkit::sample_catalog());
    store
        .execute("req_1", &create("alice"), catalog.clone(), clock.clone())
        .await
        .unwrap();
    let granted = match store
        .execute("req_1", &approve("bob"), catalog, clock.clone())
        .await
        .unwrap()
    {
        latch_store::Executed::Done { request, .. } => request.grant.unwrap(),
        latch_store::Executed::Refused(refusal) => panic!("refused: {refusal}"),
    };
    let record = CredentialRecord {
        id: "lcc_1".into(),
        user: "alice".into(),
        grant_id: granted.id.clone(),
        created_at: clock.now(),
        expires_at: Timestamp::from_millis(clock.now().as_millis() + 600_000),
    };
    let scram = ScramSecret {
        salt: b"salt of alice".to_vec(),
        iterations: 4096,
        stored_key: [1; 32],
        server_key: [2; 32],
    };
    let event = store
        .create_credential(&record, "hash-of-secret", &scram, &*clock)
        .await
        .unwrap();
    assert_eq!(event.event.subject, granted.id);
    assert!(!event.canonical_json().contains("hash-of-secret"));
    assert!(!event.canonical_json().contains(&hex::encode([1u8; 32])));
    assert_eq!(
        store.credential_by_hash("hash-of-secret").await.unwrap(),
        Some(record.clone())
    );
    assert_eq!(store.credential_by_hash("other").await.unwrap(), None);
    assert_eq!(
        store.credential("lcc_1").await.unwrap(),
        Some(record.clone())
    );
    assert_eq!(store.credential("lcc_2").await.unwrap(), None);

    // A newer credential of alice's, one of bob's, one of alice's already expired, and one
    // whose grant is on no resource known here.
    let newer = CredentialRecord {
        id: "lcc_2".into(),
        created_at: Timestamp::from_millis(clock.now().as_millis() + 1),
        ..record.clone()
    };
    let newer_scram = ScramSecret {
        stored_key: [3; 32],
        ..scram.clone()
    };
    let others = [
        (newer.clone(), &newer_scram),
        (
            CredentialRecord {
                id: "lcc_3".into(),
                user: "bob".into(),
                ..record.clone()
            },
            &scram,
        ),
        (
            CredentialRecord {
                id: "lcc_4".into(),
                expires_at: clock.now(),
                ..record.clone()
            },
            &scram,
        ),
        (
            CredentialRecord {
                id: "lcc_5".into(),
                grant_id: "grt_elsewhere".into(),
                ..record.clone()
            },
            &scram,
        ),
    ];
    for (i, (credential, verifier)) in others.iter().enumerate() {
        store
            .create_credential(credential, &format!("hash-{i}"), verifier, &*clock)
            .await
            .unwrap();
    }
    let live = |user: &'static str, resource: &'static str, limit| {
        let store = &store;
        let now = clock.now();
        async move {
            store
                .scram_credentials(user, resource, now, limit)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        live("alice", "payments-db", 10).await,
        vec![
            (newer.clone(), newer_scram),
            (record.clone(), scram.clone())
        ]
    );
    let newest = live("alice", "payments-db", 1).await;
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0].0, newer);
    assert!(live("alice", "other-db", 10).await.is_empty());
    assert!(live("carol", "payments-db", 10).await.is_empty());

    // Purging: only what expired before the bound goes, at most `limit` a call.
    assert_eq!(store.purge_credentials(clock.now(), 10).await.unwrap(), 0);
    let after_all = Timestamp::from_millis(clock.now().as_millis() + 600_001);
    assert_eq!(
        store
            .purge_credentials(Timestamp::from_millis(clock.now().as_millis() + 1), 10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.credential("lcc_4").await.unwrap(), None);
    assert_eq!(
        store.credential("lcc_1").await.unwrap(),
        Some(record.clone())
    );
    assert_eq!(store.purge_credentials(after_all, 3).await.unwrap(), 3);
    assert_eq!(store.purge_credentials(after_all, 3).await.unwrap(), 1);
    assert_eq!(
        store.credential_by_hash("hash-of-secret").await.unwrap(),
        None
    );
}

/// Statements are indexed by session off the append path, in batches: a session's events read
/// back the same, in order and page by page, before, during and after indexing.
async fn a_session_reads_back_whole_whether_its_statements_are_indexed_or_not(backend: Backend) {
    let store = TestStore::new(backend).await;
    let now = T0;
    let ended = |statements| {
        event(
            "ses_a",
            now,
            EventKind::SessionEnded {
                grant_id: "grt_1".into(),
                reason: "client_closed".into(),
                detail: None,
                bytes_in: 1,
                bytes_out: 2,
                statements,
                revocation_delay_ms: None,
            },
        )
    };
    let read_all = |page: u32| {
        let store = store.store.clone();
        async move {
            let mut kinds = Vec::new();
            let mut after = 0;
            loop {
                let events = store.subject_events("ses_a", after, page).await.unwrap();
                let Some((last, _)) = events.last() else {
                    return kinds;
                };
                after = last.seq;
                for (e, body) in &events {
                    assert_eq!(e.event.subject, "ses_a");
                    assert_eq!(body, &e.canonical_json());
                    kinds.push(match &e.event.kind {
                        EventKind::SessionStarted { .. } => "started".to_owned(),
                        EventKind::SessionStatement { seq, .. } => format!("s{seq}"),
                        EventKind::SessionEnded { .. } => "ended".to_owned(),
                        other => panic!("unexpected {other:?}"),
                    });
                }
            }
        }
    };
    // Half of ses_a's statements indexed, then the rest not yet.
    record_two_sessions(&store, 30, 15).await;
    let mut expected = vec!["started".to_owned()];
    expected.extend((1..=30).map(|seq| format!("s{seq}")));
    store.append_session_events(vec![ended(30)]).await.unwrap();
    expected.push("ended".to_owned());
    for page in [1, 7, 1000] {
        assert_eq!(
            read_all(page).await,
            expected,
            "page size {page}, partly indexed"
        );
    }
    store.index_statements().await.unwrap();
    assert_eq!(
        store.index_statements().await.unwrap(),
        0,
        "nothing left to index"
    );
    for page in [1, 7, 1000] {
        assert_eq!(
            read_all(page).await,
            expected,
            "page size {page}, all indexed"
        );
    }
    // The other session is untouched by ses_a's reads.
    let other = store.subject_events("ses_b", 0, 1000).await.unwrap();
    assert_eq!(other.len(), 31);
}

/// Starts sessions `ses_a` and `ses_b` at `T0` and records `statements` statements in each,
/// interleaved, one append per pair; indexes by session once `index_after` pairs are in.
async fn record_two_sessions(store: &latch_store::SqlStore, statements: u64, index_after: u64) {
    store
        .append_session_events(vec![started("ses_a", T0), started("ses_b", T0)])
        .await
        .unwrap();
    for seq in 1..=statements {
        store
            .append_session_events(vec![
                statement("ses_a", T0, seq),
                statement("ses_b", T0, seq),
            ])
            .await
            .unwrap();
        if seq == index_after {
            store.index_statements().await.unwrap();
        }
    }
}

/// A store in a place of its own, reopened and edited with plain SQL by the tests below.
struct Fresh {
    dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl Fresh {
    async fn new(backend: Backend) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            pg: match backend {
                Backend::Sqlite => None,
                Backend::Postgres => Some(latch_testkit::create_postgres_database().await),
            },
        }
    }

    async fn open(&self) -> latch_store::SqlStore {
        match &self.pg {
            Some((_, url)) => latch_store::SqlStore::open_postgres(url).await.unwrap(),
            None => latch_store::SqlStore::open_sqlite(&self.dir.path().join("latch.db"))
                .await
                .unwrap(),
        }
    }

    /// Runs `statements` as an attacker with database access would.
    async fn tamper(&self, statements: &[&str]) {
        use sqlx::{Connection, Executor};
        let url = match &self.pg {
            Some((_, url)) => url.clone(),
            None => format!("sqlite://{}", self.dir.path().join("latch.db").display()),
        };
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        for sql in statements {
            conn.execute(*sql).await.unwrap();
        }
        conn.close().await.unwrap();
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        if let Some((name, _)) = &self.pg {
            latch_testkit::drop_postgres_database(name);
        }
    }
}

fn statement_seqs(events: &[(latch_core::StoredEvent, String)]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|(e, _)| match &e.event.kind {
            EventKind::SessionStatement { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect()
}

/// A store recorded before statements were indexed off the append path (migration 11) is
/// upgraded in place: every statement it already holds is found by its session at once.
async fn statements_recorded_before_the_session_index_are_indexed_by_its_migration(
    backend: Backend,
) {
    let fresh = Fresh::new(backend).await;
    let now = T0;
    {
        let store = fresh.open().await;
        store
            .append_session_events(vec![started("ses_old", now)])
            .await
            .unwrap();
        for seq in 1..=5 {
            store
                .append_session_events(vec![statement("ses_old", now, seq)])
                .await
                .unwrap();
        }
        store.close().await;
    }
    // Back to the schema before migration 11, with its statements in the ledger.
    fresh
        .tamper(&[
            "DROP TABLE session_statements",
            "DROP TABLE session_statements_cursor",
            "DROP INDEX events_subject",
            "CREATE INDEX events_subject ON events (subject, seq)",
            "DELETE FROM schema_migrations WHERE version = 11",
        ])
        .await;

    let store = fresh.open().await;
    let events = store.subject_events("ses_old", 0, 1000).await.unwrap();
    assert_eq!(statement_seqs(&events), [1, 2, 3, 4, 5]);
    assert_eq!(
        store.index_statements().await.unwrap(),
        0,
        "the migration indexed every statement already recorded"
    );
    assert_eq!(store.statement_index_drift().await.unwrap(), None);
    store.close().await;
}

/// The index of statements by session is derived, so an edit to it leaves the ledger whole
/// but would hide a statement from its session: the drift check names the session.
async fn an_edited_statement_index_is_named_as_drift(backend: Backend) {
    let fresh = Fresh::new(backend).await;
    let store = fresh.open().await;
    record_two_sessions(&store, 3, 3).await;
    assert_eq!(store.statement_index_drift().await.unwrap(), None);
    let events = store.subject_events("ses_a", 0, 1000).await.unwrap();
    let hidden = events
        .iter()
        .find(|(e, _)| matches!(e.event.kind, EventKind::SessionStatement { seq: 2, .. }))
        .map(|(e, _)| e.seq)
        .unwrap();

    fresh
        .tamper(&[&format!(
            "DELETE FROM session_statements WHERE seq = {hidden}"
        )])
        .await;
    let (session, problem) = store.statement_index_drift().await.unwrap().unwrap();
    assert_eq!(session, "ses_a");
    assert!(
        problem.contains(&format!("event {hidden} is missing")),
        "{problem}"
    );

    // Put back under the other session: listed where it does not belong.
    fresh
        .tamper(&[&format!(
            "INSERT INTO session_statements (session, seq) VALUES ('ses_b', {hidden})"
        )])
        .await;
    let (session, _) = store.statement_index_drift().await.unwrap().unwrap();
    assert_eq!(session, "ses_a", "still missing from its own session");
    fresh
        .tamper(&[&format!(
            "INSERT INTO session_statements (session, seq) VALUES ('ses_a', {hidden})"
        )])
        .await;
    let (session, problem) = store.statement_index_drift().await.unwrap().unwrap();
    assert_eq!(session, "ses_b");
    assert!(
        problem.contains(&format!("lists event {hidden}")),
        "{problem}"
    );
    store.close().await;
}

/// The SQLite writer's commits are made durable by latch's own sync of the write-ahead log. If
/// that file is deleted under a running store, SQLite goes on writing to a file that a restart
/// would not find: the store refuses every write from then on, and acknowledges none.
#[tokio::test]
async fn a_write_ahead_log_that_cannot_be_synced_stops_every_write() {
    let fresh = Fresh::new(Backend::Sqlite).await;
    let store = fresh.open().await;
    let now = T0;
    store
        .append_session_events(vec![started("ses_a", now)])
        .await
        .unwrap();
    assert_eq!(store.ledger_size().await.unwrap(), 1);
    let wal = fresh.dir.path().join("latch.db-wal");
    std::fs::remove_file(&wal).unwrap();
    // The store looks for the file's name at most once a second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let err = store
        .append_session_events(vec![statement("ses_a", now, 1)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("latch.db-wal"), "{err}");
    for _ in 0..3 {
        let err = store
            .append_session_events(vec![statement("ses_a", now, 2)])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("cannot sync"), "{err}");
    }
    let err = store
        .execute(
            "req_after",
            &create("alice"),
            std::sync::Arc::new(latch_testkit::sample_catalog()),
            FakeClock::new(now),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot sync"), "{err}");
    // The failed commits are in the database file but not known to be on disk: reads, which
    // could see them, fail the same way rather than answer with them.
    let err = store.ledger_size().await.unwrap_err();
    assert!(err.to_string().contains("cannot sync"), "{err}");
}

/// `OpenMode::ReadOnly` (the offline verifier, exports) reads a store whole and refuses every
/// write; neither it nor `Existing` creates a store, upgrades an older one or opens a newer one.
async fn a_store_opened_read_only_is_read_and_never_written(backend: Backend) {
    use latch_store::{OpenMode, SqlStore, StoreError};
    let fresh = Fresh::new(backend).await;
    let sqlite = fresh.dir.path().join("latch.db");
    let open = async |mode| match &fresh.pg {
        Some((_, url)) => SqlStore::open_postgres_with(url, mode).await,
        None => SqlStore::open_sqlite_with(&sqlite, mode).await,
    };
    // The message of the schema refusal `mode` must meet.
    let refusal = async |mode| match open(mode).await.map(|_| ()) {
        Err(StoreError::Schema(message)) => message,
        other => panic!("{mode:?} opened: {other:?}"),
    };
    for mode in [OpenMode::Existing, OpenMode::ReadOnly] {
        let message = refusal(mode).await;
        assert!(
            message.contains("no store at") || message.contains("no latch store here"),
            "{mode:?} over nothing: {message}"
        );
    }
    assert!(!sqlite.exists(), "a store was created");

    {
        let store = fresh.open().await;
        store
            .append_session_events(vec![started("ses_1", T0), statement("ses_1", T0, 1)])
            .await
            .unwrap();
        store.close().await;
    }
    let store = open(OpenMode::ReadOnly).await.unwrap();
    assert_eq!(store.ledger_size().await.unwrap(), 2);
    assert_eq!(store.subject_events("ses_1", 0, 10).await.unwrap().len(), 2);
    let write = store
        .append_session_events(vec![statement("ses_1", T0, 2)])
        .await;
    assert!(write.is_err(), "a read-only store took a write");
    store.close().await;
    assert_eq!(fresh.open().await.ledger_size().await.unwrap(), 2);

    fresh
        .tamper(&["DELETE FROM schema_migrations WHERE version = 16"])
        .await;
    for mode in [OpenMode::Existing, OpenMode::ReadOnly] {
        let message = refusal(mode).await;
        assert!(
            message.contains("older latch (schema version 15"),
            "{mode:?} over an older store: {message}"
        );
    }
    fresh
        .tamper(&[
            "INSERT INTO schema_migrations (version, name) VALUES (16, 'back')",
            "INSERT INTO schema_migrations (version, name) VALUES (99, 'newer')",
        ])
        .await;
    for mode in [OpenMode::Migrate, OpenMode::Existing, OpenMode::ReadOnly] {
        let message = refusal(mode).await;
        assert!(
            message.contains("newer latch (schema version 99"),
            "{mode:?} over a newer store: {message}"
        );
    }
}
