//! Integration tests of latch-sqlclass: the classification table, redaction, properties.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod classify;
mod props;
mod redact;
