//! `latch-bench ledger append`: ledger events appended per second, with durable commits (SQLite
//! `synchronous = FULL`, PostgreSQL `fsync` and `synchronous_commit` on) and group commit
//! (concurrent calls share a transaction and its fsync). In process, on a fresh store per run.
//!
//! Two workloads, each a loop per writer task that appends and waits for the acknowledgement
//! before the next:
//! - `statements`: the gateway's strict recording. Each writer is a session: it appends one
//!   `session.statement` event per call through `Store::append_session_events`, the call strict
//!   mode waits on before it forwards a statement. This is the ledger's volume path.
//! - `requests`: the lifecycle. Each writer creates requests with distinct ids through
//!   `Store::execute` (`Command::Create`, one `request.created` event each), the path every API
//!   write takes: it also reads the requester's history and writes the `requests` projection.
//!
//! After `--warmup` seconds, `--seconds` are measured; events/s is the events of the appends
//! started in the measured window over the time until the last of them was acknowledged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use latch_core::time::{Clock, SystemClock};
use latch_core::{AccessDuration, Actor, Catalog, Command, Event, EventKind};
use latch_store::{Executed, SqlStore, Store};
use tokio::task::JoinSet;

use crate::backend::{Backend, BackendChoice, open};
use crate::host::MachineTicks;
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
    /// What each append is (comma-separated): a gateway statement recorded strictly, or a new
    /// access request.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "statements,requests"
    )]
    workload: Vec<Workload>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// `session.statement` events through `Store::append_session_events` (strict recording).
    Statements,
    /// `Command::Create` through `Store::execute` (the lifecycle).
    Requests,
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Statements => "statements",
            Self::Requests => "requests",
        })
    }
}

struct RunResult {
    round: usize,
    workload: Workload,
    backend: Backend,
    writers: usize,
    /// Events of the appends started after the warm-up.
    events: u64,
    events_per_sec: f64,
    /// Append latencies in microseconds, sorted.
    latencies: Vec<i64>,
    errors: u64,
    first_error: Option<String>,
    /// The share of the machine's time the host took during the run (%).
    host_steal_pct: Option<f64>,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    ensure!(
        !options.writers.is_empty() && options.writers.iter().all(|&w| w > 0),
        "--writers must list counts of at least 1"
    );
    ensure!(options.seconds > 0, "--seconds must be at least 1");
    ensure!(options.rounds > 0, "--rounds must be at least 1");
    ensure!(!options.workload.is_empty(), "--workload must name one");
    let backends = options.backend.backends();
    eprintln!(
        "ledger append: workloads {:?}, writers {:?}, {} s measured after {} s warm-up, {} round(s) of {}",
        options.workload,
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
        for &workload in &options.workload {
            for &writers in &options.writers {
                for &backend in &backends {
                    let machine_before = MachineTicks::read();
                    let mut result = run_once(round, workload, backend, writers, &options)
                        .await
                        .with_context(|| {
                            format!("round {round}, {workload}, {writers} writers on {backend}")
                        })?;
                    result.host_steal_pct =
                        MachineTicks::steal_pct_between(machine_before, MachineTicks::read());
                    eprintln!(
                        "  round {round} {workload} {backend} {writers} writers: {:.0} events/s, p50 {} ms, p99 {} ms, {} errors, host steal {}",
                        result.events_per_sec,
                        percentile(&result.latencies, 50.0).map_or_else(|| "-".into(), ms),
                        percentile(&result.latencies, 99.0).map_or_else(|| "-".into(), ms),
                        result.errors,
                        steal_text(result.host_steal_pct)
                    );
                    results.push(result);
                }
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
    workload: Workload,
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
    for writer in 0..writers {
        match workload {
            Workload::Requests => tasks.spawn(write(
                opened.store.clone(),
                catalog.clone(),
                clock.clone(),
                measure_from,
                until,
            )),
            Workload::Statements => tasks.spawn(record_statements(
                opened.store.clone(),
                clock.clone(),
                writer,
                measure_from,
                until,
            )),
        };
    }
    let mut result = RunResult {
        round,
        workload,
        backend,
        writers,
        events: 0,
        events_per_sec: 0.0,
        latencies: Vec::new(),
        errors: 0,
        first_error: None,
        host_steal_pct: None,
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
    let stored = opened.store.ledger_size().await?;
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

impl WriterResult {
    fn new(until: Instant) -> Self {
        Self {
            measured_events: 0,
            all_events: 0,
            latencies: Vec::new(),
            last_end: until,
            errors: 0,
            first_error: None,
        }
    }

    /// `events` acknowledged for an append that began at `started` and ended at `ended`;
    /// measured when it began after the warm-up.
    fn acknowledged(
        &mut self,
        events: u64,
        started: Instant,
        ended: Instant,
        measure_from: Instant,
    ) {
        self.all_events += events;
        if started >= measure_from {
            self.measured_events += events;
            self.latencies
                .push(i64::try_from((ended - started).as_micros()).unwrap_or(i64::MAX));
            self.last_end = self.last_end.max(ended);
        }
    }
}

/// One writer as a gateway session in strict mode: records one statement at a time, each
/// acknowledged durable before the next, until `until`. The session's start is appended first
/// and counted as a warm-up event.
async fn record_statements(
    store: Arc<SqlStore>,
    clock: Arc<dyn Clock>,
    writer: usize,
    measure_from: Instant,
    until: Instant,
) -> WriterResult {
    let mut result = WriterResult::new(until);
    let session = format!("ses_{}", ulid::Ulid::new().to_string().to_lowercase());
    let grant = format!("grt_bench{writer:04}");
    let user = format!("user{writer:04}");
    let started = Event {
        at: clock.now(),
        actor: Actor::user(user.clone()),
        subject: session.clone(),
        kind: EventKind::SessionStarted {
            grant_id: grant.clone(),
            user: user.clone(),
            resource: "payments-db".into(),
            role: "read".into(),
            client_addr: "127.0.0.1:50000".into(),
            application_name: Some("pgbench".into()),
            auth: None,
            tls: true,
        },
    };
    if let Err(err) = store.append_session_events(vec![started]).await {
        result.errors += 1;
        result.first_error = Some(err.to_string());
        return result;
    }
    result.all_events += 1;
    for seq in 1u64.. {
        let begun = Instant::now();
        if begun >= until {
            break;
        }
        // What strict mode records before forwarding: the statement, its outcome pending.
        let statement = Event {
            at: clock.now(),
            actor: Actor::user(user.clone()),
            subject: session.clone(),
            kind: EventKind::SessionStatement {
                grant_id: grant.clone(),
                seq,
                text: format!(
                    "SELECT abalance FROM pgbench_accounts WHERE aid = {}",
                    seq * 7919 % 1_000_000
                ),
                protocol: "simple".into(),
                class: "read".into(),
                objects: vec!["pgbench_accounts".into()],
                outcome: "pending".into(),
                rows: None,
                detail: None,
                duration_us: 0,
            },
        };
        match store.append_session_events(vec![statement]).await {
            Ok(()) => result.acknowledged(1, begun, Instant::now(), measure_from),
            Err(err) => {
                result.errors += 1;
                result.first_error.get_or_insert(err.to_string());
            }
        }
    }
    result
}

/// One writer: creates requests with fresh ids, one at a time, until `until`.
async fn write(
    store: Arc<SqlStore>,
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
    measure_from: Instant,
    until: Instant,
) -> WriterResult {
    let mut result = WriterResult::new(until);
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
                result.acknowledged(events.len() as u64, started, ended, measure_from);
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

/// The host's share of a run, or `-` where `/proc/stat` could not be read.
fn steal_text(steal_pct: Option<f64>) -> String {
    steal_pct.map_or_else(|| "-".into(), crate::host::steal_text)
}

fn report(results: &[RunResult], backends: &[Backend], options: &Options) {
    println!();
    println!(
        "ledger append: one event per append, group commit, durable; {} s per run, workspace at {}",
        options.seconds,
        super::commit()
    );
    println!();
    println!(
        "| round | workload | backend | writers | events | events/s | p50 ms | p99 ms | errors | host steal |"
    );
    println!("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in results {
        println!(
            "| {} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {} |",
            r.round,
            r.workload,
            r.backend,
            r.writers,
            r.events,
            r.events_per_sec,
            percentile(&r.latencies, 50.0).map_or_else(|| "-".into(), ms),
            percentile(&r.latencies, 99.0).map_or_else(|| "-".into(), ms),
            r.errors,
            steal_text(r.host_steal_pct)
        );
    }
    let rate = |workload: Workload, backend: Backend, writers: usize| {
        median(
            &results
                .iter()
                .filter(|r| r.workload == workload && r.backend == backend && r.writers == writers)
                .map(|r| r.events_per_sec)
                .collect::<Vec<_>>(),
        )
    };
    let (first, last) = match (options.writers.first(), options.writers.last()) {
        (Some(&first), Some(&last)) => (first, last),
        _ => return,
    };
    let header: Vec<String> = options
        .writers
        .iter()
        .map(|w| format!("{w} writers events/s"))
        .collect();
    println!();
    println!(
        "| workload | backend | {} | {last}/{first} writers |",
        header.join(" | ")
    );
    println!("|---|---|{}---:|", "---:|".repeat(options.writers.len()));
    for &workload in &options.workload {
        for &backend in backends {
            let cells: Vec<String> = options
                .writers
                .iter()
                .map(|&w| {
                    rate(workload, backend, w).map_or_else(|| "-".into(), |v| format!("{v:.0}"))
                })
                .collect();
            let ratio = match (
                rate(workload, backend, last),
                rate(workload, backend, first),
            ) {
                (Some(l), Some(f)) => format!("{:.1}", l / f),
                _ => "-".into(),
            };
            println!(
                "| {workload} | {backend} | {} | {ratio} |",
                cells.join(" | ")
            );
        }
    }
    if backends.len() == 2 {
        println!();
        for &workload in &options.workload {
            let ratios: Vec<String> = options
                .writers
                .iter()
                .filter_map(|&w| {
                    Some(format!(
                        "{w} writers {:.2}",
                        rate(workload, Backend::Postgres, w)? / rate(workload, Backend::Sqlite, w)?
                    ))
                })
                .collect();
            println!(
                "PostgreSQL/SQLite events/s (medians), {workload}: {}",
                ratios.join(", ")
            );
        }
    }
    println!();
    for &workload in &options.workload {
        match rate(workload, Backend::Sqlite, TARGET_WRITERS) {
            Some(v) if v >= TARGET_EVENTS_PER_SEC => println!(
                "{workload}: target met: SQLite with 64 writers appends {v:.0} events/s, at least 100,000"
            ),
            Some(v) => println!(
                "{workload}: target NOT met: SQLite with 64 writers appends {v:.0} events/s against 100,000 ({:.1}× short)",
                TARGET_EVENTS_PER_SEC / v
            ),
            None => println!("{workload}: target not measured: run SQLite with 64 writers"),
        }
    }
    for r in results {
        if let Some(example) = &r.first_error {
            println!(
                "errors in round {}, {}, on {} with {} writers: {} × e.g. {example}",
                r.round, r.workload, r.backend, r.writers, r.errors
            );
        }
    }
}
