//! latch-audit's integration tests: one script per checkpoint, and properties over synthetic
//! ledgers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod checkpoints;
mod props;
mod script;
#[allow(dead_code, reason = "shared with the benchmark, which uses the rest")]
mod synth;
