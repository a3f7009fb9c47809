//! `latch-bench expiry`: `--grants` grants whose `expires_at` all fall within one second a few
//! seconds ahead, expired by the real scheduler (`latch_server::scheduler::run`) on the system
//! clock, in process, on SQLite and on PostgreSQL.
//!
//! The grants are made with a fake clock: created an hour and a minute back, approved at
//! `T - 1h + offset` so that each expires at `T + offset`, the offsets spread evenly over
//! `--spread-ms` (within one second) in `--slots` steps. Then the scheduler runs and the bench
//! polls the ledger, so each grant gets two lags:
//!
//! - *recorded*: `grant.expired.at - expires_at`, the time the event carries (the scheduler's
//!   `now` when its batch began);
//! - *committed*: when the bench first saw the event in the store, minus `expires_at`: when the
//!   grant actually stopped being active for every reader. An upper bound; the commit happened
//!   after the previous poll began (the `±` column gives the widest such window).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use latch_core::time::{Clock, SystemClock};
use latch_core::{AccessDuration, Command, EventKind, Timestamp};
use latch_store::{Executed, SqlStore, Store};
use latch_testkit::FakeClock;
use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, BackendChoice, open};
use crate::stats::percentile;

/// The grants' duration: the fake clock puts their approval this far before their expiry.
const DURATION_SECS: u64 = 3600;

/// Creates per setup transaction.
const CREATE_BATCH: usize = 500;

#[derive(clap::Args)]
pub struct Options {
    /// How many grants expire in the same second.
    #[arg(long, default_value_t = 10_000)]
    grants: usize,
    #[arg(long, value_enum, default_value_t = BackendChoice::Both)]
    backend: BackendChoice,
    /// The scheduler's interval in milliseconds (the server's default is 100).
    #[arg(long, default_value_t = 100)]
    interval_ms: u64,
    /// The expiry times are spread evenly over this many milliseconds (1 to 1000).
    #[arg(long, default_value_t = 1000)]
    spread_ms: u64,
    /// Distinct expiry times (each one approval transaction in the setup).
    #[arg(long, default_value_t = 100)]
    slots: usize,
    /// How often the bench polls the ledger for `grant.expired`, in milliseconds.
    #[arg(long, default_value_t = 10)]
    poll_ms: u64,
    /// Give up when the grants are not all expired this many seconds after their second.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Runs per backend, interleaved.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
}

/// One grant's expiry as observed.
struct Expiry {
    expires_at: Timestamp,
    /// The `at` of its `grant.expired` event.
    recorded_at: Timestamp,
    /// When the bench first saw the event (the end of that poll).
    seen_at: Timestamp,
}

struct RunResult {
    round: usize,
    backend: Backend,
    grants: usize,
    setup: Duration,
    /// The chosen second: every grant expires in `[target, target + 1 s)`.
    target: Timestamp,
    expiries: Vec<Expiry>,
    /// The widest gap between two polls: the uncertainty of a committed lag.
    poll_window_ms: i64,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    ensure!(options.grants > 0, "--grants must be at least 1");
    ensure!(
        (1..=1000).contains(&options.spread_ms),
        "--spread-ms must be 1 to 1000"
    );
    ensure!(options.slots > 0, "--slots must be at least 1");
    ensure!(options.rounds > 0, "--rounds must be at least 1");
    let backends = options.backend.backends();
    eprintln!(
        "expiry: {} grants over {} ms in {} slots, scheduler every {} ms, {} round(s) of {}",
        options.grants,
        options.spread_ms,
        options.slots,
        options.interval_ms,
        options.rounds,
        backends
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut results = Vec::new();
    for round in 1..=options.rounds {
        for &backend in &backends {
            let result = run_once(round, backend, &options)
                .await
                .with_context(|| format!("round {round} on {backend}"))?;
            results.push(result);
        }
    }
    report(&results, &options);
    Ok(())
}

fn done(results: Vec<Executed>, what: &str) -> anyhow::Result<Vec<latch_core::AccessRequest>> {
    results
        .into_iter()
        .map(|r| match r {
            Executed::Done { request, .. } => Ok(request),
            Executed::Refused(refusal) => bail!("setup {what} refused: {}", refusal.message),
        })
        .collect()
}

async fn run_once(round: usize, backend: Backend, options: &Options) -> anyhow::Result<RunResult> {
    let opened = open(backend).await?;
    let store = &opened.store;
    let catalog = Arc::new(latch_testkit::sample_catalog());
    let duration = AccessDuration::from_secs(DURATION_SECS).context("bad duration")?;
    let duration_ms = i64::try_from(DURATION_SECS * 1000)?;
    let setup_started = Instant::now();

    // Created a minute before the earliest approval; nothing times out (24 h).
    let clock = FakeClock::new(Timestamp::from_millis(
        SystemClock.now().as_millis() - duration_ms - 60_000,
    ));
    let ids: Vec<String> = (0..options.grants)
        .map(|_| format!("req_{}", ulid::Ulid::new().to_string().to_lowercase()))
        .collect();
    for chunk in ids.chunks(CREATE_BATCH) {
        let work: Vec<(String, Command)> = chunk
            .iter()
            .map(|id| {
                (
                    id.clone(),
                    Command::Create {
                        requester: "alice".into(),
                        resource: "payments-db".into(),
                        role: "read".into(),
                        duration,
                        reason: "latch-bench expiry".into(),
                        ticket: None,
                        once: false,
                        history: Default::default(),
                    },
                )
            })
            .collect();
        done(
            store.execute_batch(&work, &catalog, &*clock).await?,
            "create",
        )?;
    }
    let create_time = setup_started.elapsed();

    // The chosen second: far enough ahead for the approvals (about twice the creates' work),
    // on a whole second.
    let lead_ms = 3000 + 3 * i64::try_from(create_time.as_millis())?;
    let target =
        Timestamp::from_millis((SystemClock.now().as_millis() + lead_ms) / 1000 * 1000 + 1000);
    let spread = i64::try_from(options.spread_ms)?;
    let slots = i64::try_from(options.slots)?;
    let mut expires: HashMap<String, Timestamp> = HashMap::with_capacity(options.grants);
    for slot in 0..options.slots {
        let offset = i64::try_from(slot)? * spread / slots;
        clock.set(Timestamp::from_millis(
            target.as_millis() - duration_ms + offset,
        ));
        let work: Vec<(String, Command)> = ids
            .iter()
            .skip(slot)
            .step_by(options.slots)
            .map(|id| {
                (
                    id.clone(),
                    Command::Approve {
                        approver: "bob".into(),
                        comment: None,
                    },
                )
            })
            .collect();
        if work.is_empty() {
            continue;
        }
        for request in done(
            store.execute_batch(&work, &catalog, &*clock).await?,
            "approve",
        )? {
            let grant = request.grant.context("an approval issued no grant")?;
            let into = grant.expires_at.millis_since(target);
            ensure!(
                (0..1000).contains(&into),
                "grant expires {into} ms into the second"
            );
            expires.insert(grant.id, grant.expires_at);
        }
    }
    ensure!(
        expires.len() == options.grants,
        "made {} grants, not {}",
        expires.len(),
        options.grants
    );
    let setup = setup_started.elapsed();
    let margin = target.millis_since(SystemClock.now());
    ensure!(
        margin > 200,
        "the setup ({:.1} s) overran the chosen second by {} ms: the grants were due before the scheduler started",
        setup.as_secs_f64(),
        -margin
    );
    let mut after = store.ledger_size().await?;
    eprintln!(
        "  round {round} {backend}: {} grants set up in {:.1} s; they expire in the second from {target}, {:.1} s from now",
        options.grants,
        setup.as_secs_f64(),
        margin as f64 / 1000.0
    );

    let shutdown = CancellationToken::new();
    let scheduler = tokio::spawn(latch_server::scheduler::run(
        store.clone() as Arc<dyn Store>,
        Arc::new(latch_server::LiveCatalog::new(catalog.clone())),
        Arc::new(SystemClock),
        Duration::from_millis(options.interval_ms),
        shutdown.clone(),
    ));
    let observed = observe(store, &expires, &mut after, target, options).await;
    shutdown.cancel();
    scheduler.await.context("the scheduler task failed")?;
    let (expiries, poll_window_ms) = observed?;
    drop(opened);
    Ok(RunResult {
        round,
        backend,
        grants: options.grants,
        setup,
        target,
        expiries,
        poll_window_ms,
    })
}

/// Polls the ledger until every grant has its `grant.expired` (or the timeout).
async fn observe(
    store: &SqlStore,
    expires: &HashMap<String, Timestamp>,
    after: &mut u64,
    target: Timestamp,
    options: &Options,
) -> anyhow::Result<(Vec<Expiry>, i64)> {
    const PAGE: u32 = 5000;
    let give_up =
        Timestamp::from_millis(target.as_millis() + 1000 + i64::try_from(options.timeout)? * 1000);
    let mut expiries = Vec::with_capacity(expires.len());
    let mut window = 0;
    let mut previous_poll = SystemClock.now();
    while expiries.len() < expires.len() {
        let polled = SystemClock.now();
        if polled > give_up {
            bail!(
                "only {} of {} grants expired within {} s after their second",
                expiries.len(),
                expires.len(),
                options.timeout
            );
        }
        let page = store.events(*after, PAGE).await?;
        let seen_at = SystemClock.now();
        let mut fresh = false;
        for entry in &page {
            let event = &entry.event;
            *after = event.seq;
            if let EventKind::GrantExpired { grant_id } = &event.event.kind {
                let expires_at = *expires.get(grant_id).context("an unknown grant expired")?;
                expiries.push(Expiry {
                    expires_at,
                    recorded_at: event.event.at,
                    seen_at,
                });
                fresh = true;
            }
        }
        if fresh {
            window = window.max(seen_at.millis_since(previous_poll));
        }
        previous_poll = polled;
        if page.len() < PAGE as usize {
            tokio::time::sleep(Duration::from_millis(options.poll_ms)).await;
        }
    }
    Ok((expiries, window))
}

fn summary(lags: &mut [i64]) -> (i64, i64, i64, usize) {
    lags.sort_unstable();
    let p = |q| percentile(lags, q).unwrap_or(0);
    (
        p(50.0),
        p(99.0),
        lags.last().copied().unwrap_or(0),
        lags.iter().filter(|&&l| l > 1000).count(),
    )
}

fn report(results: &[RunResult], options: &Options) {
    println!();
    println!(
        "expiry: {} grants expiring within one second (spread over {} ms), scheduler every {} ms; lags in ms after each grant's expires_at",
        options.grants, options.spread_ms, options.interval_ms
    );
    println!();
    println!(
        "| round | backend | grants | recorded p50 / p99 / max | > 1 s | committed p50 / p99 / max (± poll) | > 1 s | last expired at | batches | batch time per grant |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut all_met = true;
    for r in results {
        let mut recorded: Vec<i64> = r
            .expiries
            .iter()
            .map(|e| e.recorded_at.millis_since(e.expires_at))
            .collect();
        let mut committed: Vec<i64> = r
            .expiries
            .iter()
            .map(|e| e.seen_at.millis_since(e.expires_at))
            .collect();
        let (r50, r99, rmax, rlate) = summary(&mut recorded);
        let (c50, c99, cmax, clate) = summary(&mut committed);
        all_met &= clate == 0 && rlate == 0;
        let last = r
            .expiries
            .iter()
            .map(|e| e.seen_at)
            .max()
            .unwrap_or(r.target);
        let batches = batches(r);
        let batch_ms: i64 = batches.iter().map(|b| b.took_ms).sum();
        println!(
            "| {} | {} | {} | {r50} / {r99} / {rmax} | {rlate} | {c50} / {c99} / {cmax} (± {}) | {clate} | T + {:.2} s | {} | {:.0} µs |",
            r.round,
            r.backend,
            r.grants,
            r.poll_window_ms,
            last.millis_since(r.target) as f64 / 1000.0,
            batches.len(),
            batch_ms as f64 * 1000.0 / r.expiries.len().max(1) as f64,
        );
    }
    println!();
    println!(
        "the scheduler's batches (all grants of a batch share the event's `at`; commit seen − `at` is the batch's own time):"
    );
    for r in results {
        let shown: Vec<String> = batches(r)
            .iter()
            .map(|b| {
                format!(
                    "{} at T+{} ms in {} ms",
                    b.size,
                    b.at.millis_since(r.target),
                    b.took_ms
                )
            })
            .collect();
        println!(
            "- round {} {} (setup {:.1} s): {}",
            r.round,
            r.backend,
            r.setup.as_secs_f64(),
            shown.join("; ")
        );
    }
    println!();
    if all_met {
        println!(
            "target met: every grant expired (recorded and committed) within 1 s of its expires_at"
        );
    } else {
        println!(
            "target NOT met: some grants expired more than 1 s after their expires_at (see `> 1 s`)"
        );
    }
}

struct Batch {
    at: Timestamp,
    size: usize,
    /// From the batch's `now` to the last poll that first saw its events.
    took_ms: i64,
}

fn batches(r: &RunResult) -> Vec<Batch> {
    let mut batches: Vec<Batch> = Vec::new();
    let mut sorted: Vec<&Expiry> = r.expiries.iter().collect();
    sorted.sort_by_key(|e| e.recorded_at);
    for e in sorted {
        match batches.last_mut() {
            Some(b) if b.at == e.recorded_at => {
                b.size += 1;
                b.took_ms = b.took_ms.max(e.seen_at.millis_since(e.recorded_at));
            }
            _ => batches.push(Batch {
                at: e.recorded_at,
                size: 1,
                took_ms: e.seen_at.millis_since(e.recorded_at),
            }),
        }
    }
    batches
}
