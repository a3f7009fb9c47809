//! The two databases a benchmark compares, a throwaway PostgreSQL database per run, and a fresh
//! store on either.

use std::fmt;

use std::sync::Arc;

use clap::ValueEnum;
use latch_store::SqlStore;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        })
    }
}

/// `--backend`: one database or both, side by side.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BackendChoice {
    Sqlite,
    Postgres,
    Both,
}

impl BackendChoice {
    /// SQLite first, so that an interleaved run goes SQLite, PostgreSQL, SQLite, …
    pub fn backends(self) -> Vec<Backend> {
        match self {
            Self::Sqlite => vec![Backend::Sqlite],
            Self::Postgres => vec![Backend::Postgres],
            Self::Both => vec![Backend::Sqlite, Backend::Postgres],
        }
    }
}

/// A uniquely named database on the PostgreSQL server of `LATCH_TEST_DATABASE_URL` (default
/// `postgres://postgres@127.0.0.1:5432/postgres`), dropped (with `FORCE`) when this is dropped.
pub struct PgDatabase {
    name: String,
    pub url: String,
}

impl PgDatabase {
    /// Fails loudly (the testkit panics) when the server cannot be reached.
    pub async fn create() -> Self {
        let (name, url) = latch_testkit::create_postgres_database().await;
        Self { name, url }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        latch_testkit::drop_postgres_database(&self.name);
    }
}

/// A store and what must outlive it (dropped after it, in field order).
pub struct Opened {
    pub store: Arc<SqlStore>,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<PgDatabase>,
}

/// A fresh, empty store: SQLite in a temporary directory, or a new PostgreSQL database.
pub async fn open(backend: Backend) -> anyhow::Result<Opened> {
    Ok(match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir()?;
            let store = SqlStore::open_sqlite(&dir.path().join("latch.db")).await?;
            Opened {
                store: Arc::new(store),
                _dir: Some(dir),
                _pg: None,
            }
        }
        Backend::Postgres => {
            let db = PgDatabase::create().await;
            let store = SqlStore::open_postgres(&db.url).await?;
            Opened {
                store: Arc::new(store),
                _dir: None,
                _pg: Some(db),
            }
        }
    })
}
