//! `latch-bench`: the benchmarks of docs/BENCHMARKS.md. Each compares SQLite and PostgreSQL side
//! by side in one run, because on shared machines only ratios measured together mean anything.
//!
//! - `lifecycle`: request→approve→grant cycles per second through the HTTP API of a real
//!   `latch serve`, with concurrent keep-alive clients.
//! - `expiry`: many grants expiring in the same second, in process with the real scheduler and
//!   the system clock: how late each `grant.expired` event is.
//! - `gateway`: the PostgreSQL gateway against PostgreSQL and pgbouncer: pgbench throughput,
//!   added latency, connection rate, memory per session, revocation of live sessions.
//! - `analytics`: the dashboard's analytics (90 days, full period) and the full-period CSV
//!   report over a large synthesized history, in process, with peak memory.
//! - `alerts`: event-to-alert latency under a steady load of events, through the real notifier
//!   to a local webhook receiver.
//! - `ledger append|generate|verify|proof`: the ledger's append throughput by writer count,
//!   the offline verifier's speed over a large ledger, and inclusion proof times.

/// glibc's allocator serialises threads that free what another allocated, which a reader handing
/// pages to a consumer does for every row (docs/ARCHITECTURE.md, "Memory allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod alerts;
mod analytics;
mod backend;
mod expiry;
mod gateway;
mod host;
mod ledger;
mod lifecycle;
mod stats;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "latch-bench",
    about = "latch's benchmarks (see docs/BENCHMARKS.md)"
)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Request→approve→grant cycles per second through the API, SQLite and PostgreSQL side by side.
    Lifecycle(lifecycle::Options),
    /// Many grants expiring in one second: how long after its expiry each one is expired.
    Expiry(expiry::Options),
    /// The PostgreSQL gateway against PostgreSQL and pgbouncer, side by side (pgbench).
    Gateway(Box<gateway::Options>),
    /// Analytics (90 days, full period) and the CSV report over a synthesized history in a real
    /// store, SQLite and PostgreSQL side by side.
    Analytics(analytics::Options),
    /// Event-to-alert latency: events at a steady rate, a webhook route to a local receiver.
    Alerts(alerts::Options),
    /// The ledger: append throughput, verification speed, proof times.
    #[command(subcommand)]
    Ledger(ledger::LedgerBench),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.bench {
            Bench::Lifecycle(options) => lifecycle::run(options).await,
            Bench::Expiry(options) => expiry::run(options).await,
            Bench::Gateway(options) => gateway::run(*options).await,
            Bench::Analytics(options) => analytics::run(&options).await,
            Bench::Alerts(options) => alerts::run(options).await,
            Bench::Ledger(bench) => ledger::run(bench).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
