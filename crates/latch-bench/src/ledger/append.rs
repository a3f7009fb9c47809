//! `latch-bench ledger append`: ledger events appended per second through `Store::execute`, the
//! path every API write takes, with durable commits (SQLite `synchronous = FULL`, PostgreSQL
//! `fsync` and `synchronous_commit` on) and group commit (concurrent calls share a transaction
//! and its fsync). In process, on a fresh store per run.
//!
//! Each writer is a task that loops creating requests with distinct ids (`Command::Create`, one
//! `request.created` event each) and waits for each to be acknowledged before the next. After
//! `--warmup` seconds, `--seconds` are measured; events/s is the events of the appends started in
//! the measured window over the time until the last of them was acknowledged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use latch_core::time::{Clock, SystemClock};
use latch_core::{AccessDuration, Catalog, Command};
use latch_store::{Executed, SqlStore, Store};
use tokio::task::JoinSet;

use crate::backend::{Backend, BackendChoice, open};
use crate::stats::{median, ms, percentile};

/// The target, for the embedded store with 64 writers.
const TARGET_EVENTS_PER_SEC: f64 = 100_000.0;
const TARGET_WRITERS: usize = 64;

#[derive(clap::Args)]
pub struct Options {
    /// Concurrent writers, one run each (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    writers: Vec<usize>,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds of load before measuring, in every run.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Runs per (writers, backend), interleaved: SQLite and PostgreSQL alternate.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    #[arg(long, value_enum, default_value_t = BackendChoice::Both)]
    backend: BackendChoice,
}

struct RunResult {
    round: usize,
    backend: Backend,
    writers: usize,
    /// Events of the appends started after the warm-up.
    events: u64,
    events_per_sec: f64,
    /// Append latencies in microseconds, sorted.
    latencies: Vec<i64>,
    errors: u64,
    first_error: Option<String>,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    ensure!(
        !options.writers.is_empty() && options.writers.iter().all(|&w| w > 0),
        "--writers must list counts of at least 1"
    );
    ensure!(options.seconds > 0, "--seconds must be at least 1");
    ensure!(options.rounds > 0, "--rounds must be at least 1");
    let backends = options.backend.backends();
    eprintln!(
        "ledger append: writers {:?}, {} s measured after {} s warm-up, {} round(s) of {}",
        options.writers,
        options.seconds,
        options.warmup,
        options.rounds,
        backends
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut results = Vec::new();
    for round in 1..=options.rounds {
        for &writers in &options.writers {
            for &backend in &backends {
                let result = run_once(round, backend, writers, &options)
                    .await
                    .with_context(|| format!("round {round}, {writers} writers on {backend}"))?;
                eprintln!(
                    "  round {round} {backend} {writers} writers: {:.0} events/s, p50 {} ms, p99 {} ms, {} errors",
                    result.events_per_sec,
                    percentile(&result.latencies, 50.0).map_or_else(|| "-".into(), ms),
                    percentile(&result.latencies, 99.0).map_or_else(|| "-".into(), ms),
                    result.errors
                );
                results.push(result);
            }
        }
    }
    report(&results, &backends, &options);
    let errors: u64 = results.iter().map(|r| r.errors).sum();
    if errors > 0 {
        bail!("{errors} appends failed (see above): the figures are not valid");
    }
    Ok(())
}

async fn run_once(
    round: usize,
    backend: Backend,
    writers: usize,
    options: &Options,
) -> anyhow::Result<RunResult> {
    let opened = open(backend).await?;
    let catalog = Arc::new(latch_testkit::sample_catalog());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(options.warmup);
    let until = measure_from + Duration::from_secs(options.seconds);
    let mut tasks = JoinSet::new();
    for _ in 0..writers {
        tasks.spawn(write(
            opened.store.clone(),
            catalog.clone(),
            clock.clone(),
            measure_from,
            until,
        ));
    }
    let mut result = RunResult {
        round,
        backend,
        writers,
        events: 0,
        events_per_sec: 0.0,
        latencies: Vec::new(),
        errors: 0,
        first_error: None,
    };
    let mut acknowledged = 0;
    let mut last_end = until;
    while let Some(writer) = tasks.join_next().await {
        let writer = writer.context("a writer task failed")?;
        result.events += writer.measured_events;
        acknowledged += writer.all_events;
        result.latencies.extend(writer.latencies);
        last_end = last_end.max(writer.last_end);
        result.errors += writer.errors;
        if result.first_error.is_none() {
            result.first_error = writer.first_error;
        }
    }
    result.latencies.sort_unstable();
    result.events_per_sec = result.events as f64 / (last_end - measure_from).as_secs_f64();
    // Every acknowledged append must be in the ledger.
    let stored = opened.store.counts().await?.events;
    ensure!(
        stored == acknowledged,
        "the ledger holds {stored} events but {acknowledged} appends were acknowledged"
    );
    drop(opened);
    Ok(result)
}

struct WriterResult {
    measured_events: u64,
    all_events: u64,
    latencies: Vec<i64>,
    last_end: Instant,
    errors: u64,
    first_error: Option<String>,
}

/// One writer: creates requests with fresh ids, one at a time, until `until`.
async fn write(
    store: Arc<SqlStore>,
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
    measure_from: Instant,
    until: Instant,
) -> WriterResult {
    let mut result = WriterResult {
        measured_events: 0,
        all_events: 0,
        latencies: Vec::new(),
        last_end: until,
        errors: 0,
        first_error: None,
    };
    let Some(duration) = AccessDuration::from_secs(3600) else {
        result.errors += 1;
        result.first_error = Some("bad duration".into());
        return result;
    };
    let command = Command::Create {
        requester: "alice".into(),
        resource: "payments-db".into(),
        role: "read".into(),
        duration,
        reason: "latch-bench ledger append".into(),
        ticket: None,
        once: false,
        history: Default::default(),
    };
    loop {
        let started = Instant::now();
        if started >= until {
            break;
        }
        let id = format!("req_{}", ulid::Ulid::new().to_string().to_lowercase());
        let outcome = store
            .execute(&id, &command, catalog.clone(), clock.clone())
            .await;
        let ended = Instant::now();
        let problem = match outcome {
            Ok(Executed::Done { events, .. }) => {
                let n = events.len() as u64;
                result.all_events += n;
                if started >= measure_from {
                    result.measured_events += n;
                    result
                        .latencies
                        .push(i64::try_from((ended - started).as_micros()).unwrap_or(i64::MAX));
                    result.last_end = result.last_end.max(ended);
                }
                continue;
            }
            Ok(Executed::Refused(refusal)) => format!("refused: {}", refusal.message),
            Err(err) => err.to_string(),
        };
        result.errors += 1;
        result.first_error.get_or_insert(problem);
    }
    result
}

fn report(results: &[RunResult], backends: &[Backend], options: &Options) {
    println!();
    println!(
        "ledger append: `Store::execute` (one request.created per append, group commit, durable), {} s per run, workspace at {}",
        options.seconds,
        super::commit()
    );
    println!();
    println!("| round | backend | writers | events | events/s | p50 ms | p99 ms | errors |");
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    for r in results {
        println!(
            "| {} | {} | {} | {} | {:.0} | {} | {} | {} |",
            r.round,
            r.backend,
            r.writers,
            r.events,
            r.events_per_sec,
            percentile(&r.latencies, 50.0).map_or_else(|| "-".into(), ms),
            percentile(&r.latencies, 99.0).map_or_else(|| "-".into(), ms),
            r.errors
        );
    }
    let rate = |backend: Backend, writers: usize| {
        median(
            &results
                .iter()
                .filter(|r| r.backend == backend && r.writers == writers)
                .map(|r| r.events_per_sec)
                .collect::<Vec<_>>(),
        )
    };
    println!();
    let (first, last) = match (options.writers.first(), options.writers.last()) {
        (Some(&first), Some(&last)) => (first, last),
        _ => return,
    };
    let header: Vec<String> = options
        .writers
        .iter()
        .map(|w| format!("{w} writers events/s"))
        .collect();
    println!(
        "| backend | {} | {last}/{first} writers |",
        header.join(" | ")
    );
    println!("|---|{}---:|", "---:|".repeat(options.writers.len()));
    for &backend in backends {
        let cells: Vec<String> = options
            .writers
            .iter()
            .map(|&w| rate(backend, w).map_or_else(|| "-".into(), |v| format!("{v:.0}")))
            .collect();
        let ratio = match (rate(backend, last), rate(backend, first)) {
            (Some(l), Some(f)) => format!("{:.1}", l / f),
            _ => "-".into(),
        };
        println!("| {backend} | {} | {ratio} |", cells.join(" | "));
    }
    if backends.len() == 2 {
        let ratios: Vec<String> = options
            .writers
            .iter()
            .filter_map(|&w| {
                Some(format!(
                    "{w} writers {:.2}",
                    rate(Backend::Postgres, w)? / rate(Backend::Sqlite, w)?
                ))
            })
            .collect();
        println!();
        println!(
            "PostgreSQL/SQLite events/s (medians): {}",
            ratios.join(", ")
        );
    }
    println!();
    match rate(Backend::Sqlite, TARGET_WRITERS) {
        Some(v) if v >= TARGET_EVENTS_PER_SEC => {
            println!("target met: SQLite with 64 writers appends at least 100,000 events/s");
        }
        Some(v) => println!(
            "target NOT met: SQLite with 64 writers appends {v:.0} events/s against 100,000 ({:.1}× short)",
            TARGET_EVENTS_PER_SEC / v
        ),
        None => println!("target not measured: run SQLite with 64 writers"),
    }
    for r in results {
        if let Some(example) = &r.first_error {
            println!(
                "errors in round {} on {} with {} writers: {} × e.g. {example}",
                r.round, r.backend, r.writers, r.errors
            );
        }
    }
}
