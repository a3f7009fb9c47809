//! Test fixtures for latch, used only by tests: a fake clock, throwaway stores on SQLite and on
//! PostgreSQL, and a sample organisation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test fixtures fail loudly"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use latch_core::time::Clock;
use latch_core::{
    AccessDuration, Catalog, Resource, ResourceKind, ResourceRole, Team, Timestamp, User, UserRole,
};
use latch_store::SqlStore;

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct FakeClock(AtomicI64);

impl FakeClock {
    pub fn new(at: Timestamp) -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(at.as_millis())))
    }

    pub fn advance_secs(&self, secs: i64) {
        self.0.fetch_add(secs * 1000, Ordering::SeqCst);
    }

    pub fn set(&self, at: Timestamp) {
        self.0.store(at.as_millis(), Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

/// 2026-11-25T10:00:00Z, a Wednesday.
pub const T0: Timestamp = Timestamp::from_millis(1_795_600_800_000);

/// alice (engineer in payments, manager carol), bob (lead of payments), carol (lead of eng),
/// dave (auditor), erin (admin), frank (no standing over anyone); `payments-db` owned by payments with roles read (4h) and
/// write (1h); requests time out after 24h.
pub fn sample_catalog() -> Catalog {
    let user = |name: &str, team: &str, manager: Option<&str>, roles: &[UserRole]| {
        (
            name.to_owned(),
            User {
                name: name.to_owned(),
                email: format!("{name}@example.com"),
                teams: BTreeSet::from([team.to_owned()]),
                manager: manager.map(str::to_owned),
                roles: roles.iter().copied().collect(),
            },
        )
    };
    let team = |name: &str, lead: &str, parent: Option<&str>| {
        (
            name.to_owned(),
            Team {
                name: name.to_owned(),
                leads: BTreeSet::from([lead.to_owned()]),
                parent: parent.map(str::to_owned),
            },
        )
    };
    let role = |name: &str, secs| {
        (
            name.to_owned(),
            ResourceRole {
                name: name.to_owned(),
                max_duration: AccessDuration::from_secs(secs).unwrap(),
            },
        )
    };
    Catalog {
        users: BTreeMap::from([
            user("alice", "payments", Some("carol"), &[]),
            user("bob", "payments", Some("carol"), &[]),
            user("carol", "eng", None, &[]),
            user("dave", "security", None, &[UserRole::Auditor]),
            user("erin", "platform", None, &[UserRole::Admin]),
            user("frank", "platform", None, &[]),
        ]),
        teams: BTreeMap::from([
            team("payments", "bob", Some("eng")),
            team("eng", "carol", None),
            team("security", "dave", None),
            team("platform", "erin", None),
        ]),
        resources: BTreeMap::from([(
            "payments-db".to_owned(),
            Resource {
                name: "payments-db".to_owned(),
                kind: ResourceKind::Postgres,
                owner_team: "payments".to_owned(),
                roles: BTreeMap::from([role("read", 4 * 3600), role("write", 3600)]),
            },
        )]),
        pending_timeout: AccessDuration::from_secs(24 * 3600),
        escalate_after: None,
        policy: None,
    }
}

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A store that removes its database when dropped.
pub struct TestStore {
    pub store: Arc<SqlStore>,
    _dir: Option<tempfile::TempDir>,
    pg_database: Option<String>,
}

impl std::ops::Deref for TestStore {
    type Target = SqlStore;
    fn deref(&self) -> &SqlStore {
        &self.store
    }
}

/// The PostgreSQL server tests use: `LATCH_TEST_DATABASE_URL`, by default the local one.
pub fn postgres_admin_url() -> String {
    std::env::var("LATCH_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Creates a uniquely named database on the test server and returns its URL. Panics (failing
/// the test) when the server cannot be reached: a test that needs PostgreSQL never passes
/// without it.
pub async fn create_postgres_database() -> (String, String) {
    use sqlx::{Connection, Executor};
    sqlx::any::install_default_drivers();
    let admin = postgres_admin_url();
    let name = format!(
        "latch_test_{}",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    let mut conn = sqlx::AnyConnection::connect(&admin)
        .await
        .unwrap_or_else(|err| {
            panic!("tests need PostgreSQL at `{admin}` (set LATCH_TEST_DATABASE_URL): {err}")
        });
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let url = with_database(&admin, &name);
    (name, url)
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority..].find('/') {
        Some(i) => &base[..authority + i],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// Drops a database made by [`create_postgres_database`], from any context (also from `Drop`).
pub fn drop_postgres_database(name: &str) {
    let name = name.to_owned();
    // A fresh thread with its own runtime: Drop may run inside (or outside) a runtime.
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            use sqlx::{Connection, Executor};
            if let Ok(mut conn) = sqlx::AnyConnection::connect(&postgres_admin_url()).await {
                let _ = conn
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await;
            }
        });
    })
    .join();
}

impl TestStore {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let store = SqlStore::open_sqlite(&dir.path().join("latch.db"))
                    .await
                    .unwrap();
                Self {
                    store: Arc::new(store),
                    _dir: Some(dir),
                    pg_database: None,
                }
            }
            Backend::Postgres => {
                let (name, url) = create_postgres_database().await;
                let store = SqlStore::open_postgres(&url).await.unwrap();
                Self {
                    store: Arc::new(store),
                    _dir: None,
                    pg_database: Some(name),
                }
            }
        }
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_database {
            drop_postgres_database(name);
        }
    }
}
