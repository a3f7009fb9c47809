//! The two databases a benchmark compares, and a throwaway PostgreSQL database per run.

use std::fmt;

use clap::ValueEnum;

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
