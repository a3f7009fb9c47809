//! The store suite: every test runs on SQLite and on PostgreSQL (which must be reachable at
//! `LATCH_TEST_DATABASE_URL`, by default 127.0.0.1:5432).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod lifecycle;

/// Declares one test per backend for each `async fn NAME(backend)` listed.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(latch_testkit::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(latch_testkit::Backend::Postgres).await;
                }
            )*
        }
    };
}
mod findings;
mod once;
mod sessions;
