//! Gateway integration tests against the real PostgreSQL at 127.0.0.1:5432 (each test gets its
//! own database), real clients (tokio-postgres, psql) and raw wire bytes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod support;

mod auth;
mod enforce;
mod lifecycle;
mod relay;
mod robustness;
mod upstream_auth;
