//! `latch-bench ledger verify`: the real `latch ledger verify --config FILE` over a large SQLite
//! ledger (made by `generate`), started with `setsid` under `/usr/bin/time -v`: events per second
//! and peak RSS.
//!
//! Beside it, in the same run and over the same bytes, what the machine can do at best, on one
//! core: the bench reads the events as the verifier does (`latch_store::raw_event_pages` from
//! the SQLite file, pages of 5000), once alone to time the read, and once more timing,
//! separately and with the read overlapped, SHA-256 of every leaf (`0x00 || body`, with
//! `latch_ledger::leaf_hash` as the verifier hashes it), appending the leaves to the tree (`CompactRange`), and decoding
//! each event with the canonical check (`latch_core::event::Decoder`, as the verifier decodes).
//! Verify speed is reported as a fraction of the SHA-256 speed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use latch_core::event::Decoder;
use latch_ledger::{CompactRange, Hash};
use latch_store::Store;
use tokio::process::Command;

use super::{Generated, Source, mib};
use crate::lifecycle::find_latch;
use crate::stats::median;

/// The target.
const TARGET_EVENTS_PER_SEC: f64 = 1_000_000.0;

/// Events per page, as `latch ledger verify` reads them.
const PAGE: usize = 5000;

#[derive(clap::Args)]
pub struct Options {
    #[command(flatten)]
    source: Source,
    /// The `latch` binary, a release build. Default: the `latch` next to this binary.
    #[arg(long)]
    latch: Option<PathBuf>,
    /// Rounds of (hashing baseline, then `latch ledger verify`).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
}

/// The bench's own pass over the events.
struct Baseline {
    events: u64,
    /// Leaf bytes hashed: `0x00 || body` for every event.
    bytes: u64,
    read: Duration,
    leaf: Duration,
    tree: Duration,
    decode: Duration,
}

/// One `latch ledger verify`.
struct Verified {
    wall: Duration,
    user_secs: Option<f64>,
    system_secs: Option<f64>,
    peak_rss_kib: Option<u64>,
    /// How the peak RSS was measured.
    rss_from: &'static str,
    summary: String,
}

struct Round {
    baseline: Baseline,
    verified: Verified,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    ensure!(options.rounds > 0, "--rounds must be at least 1");
    let latch = find_latch(options.latch.as_deref())?;
    let opened = options.source.open().await?;
    let ledger = &opened.ledger;
    let (events, checkpoints, root) = {
        let store = ledger.open_store().await?;
        let events = store.ledger_size().await?;
        let checkpoints = store.checkpoints().await?;
        store.close().await;
        let root = checkpoints
            .last()
            .filter(|c| c.size == events)
            .map(|c| c.root)
            .context("the ledger's last checkpoint does not cover every event: regenerate it")?;
        (events, checkpoints.len(), root)
    };
    let database_bytes = super::dir_size(&ledger.dir.join("data"))?;
    eprintln!(
        "ledger verify: {events} events, {checkpoints} checkpoints, {} MiB in {}; latch at {}",
        mib(database_bytes),
        ledger.dir.display(),
        latch.display()
    );
    let mut rounds = Vec::new();
    for round in 1..=options.rounds {
        let baseline = baseline(ledger, root).await?;
        eprintln!(
            "  round {round}: baseline read {:.1} s, SHA-256 of the leaves {:.2} s, tree {:.2} s, decode {:.1} s",
            baseline.read.as_secs_f64(),
            baseline.leaf.as_secs_f64(),
            baseline.tree.as_secs_f64(),
            baseline.decode.as_secs_f64()
        );
        ensure!(
            baseline.events == events,
            "the baseline saw {} events, the ledger holds {events}",
            baseline.events
        );
        let verified = verify(&latch, ledger, events).await?;
        eprintln!(
            "  round {round}: latch ledger verify {:.1} s, peak RSS {} MiB",
            verified.wall.as_secs_f64(),
            verified
                .peak_rss_kib
                .map_or_else(|| "?".into(), |kib| mib(kib * 1024))
        );
        rounds.push(Round { baseline, verified });
    }
    report(&rounds, events, checkpoints, database_bytes);
    Ok(())
}

async fn baseline(ledger: &Generated, root: Hash) -> anyhow::Result<Baseline> {
    let source = || latch_store::PageSource::SqliteFile(ledger.database.clone());
    // The read alone: the reader's thread as fast as the pages are taken.
    let started = Instant::now();
    let mut pages = latch_store::raw_event_pages(source(), 0, PAGE);
    let mut read_events = 0u64;
    while let Some(page) = pages.next().await {
        read_events += page?.len() as u64;
    }
    let read = started.elapsed();
    let mut result = Baseline {
        events: 0,
        bytes: 0,
        read,
        leaf: Duration::ZERO,
        tree: Duration::ZERO,
        decode: Duration::ZERO,
    };
    // The rest, one stage after the other over each page, while the next pages are read.
    let mut range = CompactRange::new();
    let mut decoder = Decoder::default();
    let mut leaves: Vec<Hash> = Vec::with_capacity(PAGE);
    let mut pages = latch_store::raw_event_pages(source(), 0, PAGE);
    while let Some(page) = pages.next().await {
        let page = page?;
        let t1 = Instant::now();
        leaves.clear();
        for event in page.iter() {
            leaves.push(latch_ledger::leaf_hash(event.body.as_bytes()));
            result.bytes += 1 + event.body.len() as u64;
        }
        let t2 = Instant::now();
        for leaf in &leaves {
            range.append(*leaf);
        }
        let t3 = Instant::now();
        for event in page.iter() {
            let decoded = decoder
                .decode(event.body)
                .map_err(|err| anyhow::anyhow!("event {}: {err}", event.seq))?;
            ensure!(decoded.seq == event.seq, "event {} is misplaced", event.seq);
        }
        let t4 = Instant::now();
        result.leaf += t2 - t1;
        result.tree += t3 - t2;
        result.decode += t4 - t3;
        result.events += page.len() as u64;
    }
    ensure!(
        read_events == result.events,
        "the read saw {read_events} events, the second pass {}",
        result.events
    );
    ensure!(
        range.root() == root,
        "the bench's root differs from the last checkpoint's: the ledger is not what it should be"
    );
    Ok(result)
}

/// Runs `setsid /usr/bin/time -v latch ledger verify --config FILE` (or, without
/// `/usr/bin/time`, `setsid latch …` with its RSS read from /proc while it runs).
async fn verify(latch: &Path, ledger: &Generated, events: u64) -> anyhow::Result<Verified> {
    let time = Path::new("/usr/bin/time");
    let log = ledger.dir.join("verify.log");
    let time_file = ledger.dir.join("verify.time");
    let mut command = Command::new("setsid");
    if time.is_file() {
        command.arg(time).arg("-v").arg("-o").arg(&time_file);
    }
    command
        .arg(latch)
        .args(["ledger", "verify", "--config"])
        .arg(&ledger.config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .context("cannot run `setsid latch ledger verify`")?;
    let pid = child.id();
    let mut stdout = child.stdout.take().context("no stdout")?;
    let reader = tokio::spawn(async move {
        let mut text = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut text).await;
        text
    });
    // Without /usr/bin/time: the high-water mark as last seen in /proc.
    let mut polled_hwm = None;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            () = tokio::time::sleep(Duration::from_millis(20)), if !time.is_file() => {
                if let Some(kib) = pid.and_then(vm_hwm_kib) {
                    polled_hwm = Some(kib);
                }
            }
        }
    };
    let wall = started.elapsed();
    let stdout = reader.await.unwrap_or_default();
    if !status.success() {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        bail!("`latch ledger verify` failed ({status}):\n{stdout}{log}");
    }
    let summary = stdout.lines().next().unwrap_or_default().to_owned();
    ensure!(
        summary.starts_with(&format!("ledger ok: {events} events")),
        "`latch ledger verify` said: {stdout}"
    );
    if time.is_file() {
        let text = std::fs::read_to_string(&time_file)?;
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.trim().strip_prefix(name))
                .map(|v| v.trim().to_owned())
        };
        Ok(Verified {
            wall,
            user_secs: field("User time (seconds):").and_then(|v| v.parse().ok()),
            system_secs: field("System time (seconds):").and_then(|v| v.parse().ok()),
            peak_rss_kib: field("Maximum resident set size (kbytes):").and_then(|v| v.parse().ok()),
            rss_from: "/usr/bin/time -v",
            summary,
        })
    } else {
        Ok(Verified {
            wall,
            user_secs: None,
            system_secs: None,
            peak_rss_kib: polled_hwm,
            rss_from: "VmHWM in /proc, polled every 20 ms",
            summary,
        })
    }
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        line.strip_prefix("VmHWM:")?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    })
}

fn rate(events: u64, took: Duration) -> f64 {
    events as f64 / took.as_secs_f64().max(1e-9)
}

/// Events per second as e.g. `1.23 M/s` or `456 k/s`.
fn per_sec(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2} M/s", value / 1e6)
    } else {
        format!("{:.0} k/s", value / 1e3)
    }
}

fn report(rounds: &[Round], events: u64, checkpoints: usize, database_bytes: u64) {
    println!();
    println!(
        "ledger verify: {events} events ({checkpoints} signed checkpoints, {} MiB on disk), workspace at {}",
        mib(database_bytes),
        super::commit()
    );
    println!();
    println!(
        "| round | `latch ledger verify` | events/s | user + sys s | peak RSS MiB | SHA-256 of the leaves | + tree | read (`raw_event_pages`) | decode | verify / SHA-256 |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (i, r) in rounds.iter().enumerate() {
        let b = &r.baseline;
        let v = &r.verified;
        println!(
            "| {} | {:.1} s | {} | {} | {} | {:.2} s ({}, {:.0} MiB/s) | {:.2} s ({}) | {:.1} s ({}) | {:.1} s ({}) | {:.3} |",
            i + 1,
            v.wall.as_secs_f64(),
            per_sec(rate(events, v.wall)),
            match (v.user_secs, v.system_secs) {
                (Some(u), Some(s)) => format!("{u:.1} + {s:.1}"),
                _ => "-".into(),
            },
            v.peak_rss_kib
                .map_or_else(|| "-".into(), |kib| mib(kib * 1024)),
            b.leaf.as_secs_f64(),
            per_sec(rate(b.events, b.leaf)),
            b.bytes as f64 / (1024.0 * 1024.0) / b.leaf.as_secs_f64().max(1e-9),
            (b.leaf + b.tree).as_secs_f64(),
            per_sec(rate(b.events, b.leaf + b.tree)),
            b.read.as_secs_f64(),
            per_sec(rate(b.events, b.read)),
            b.decode.as_secs_f64(),
            per_sec(rate(b.events, b.decode)),
            b.leaf.as_secs_f64() / v.wall.as_secs_f64().max(1e-9),
        );
    }
    let speeds: Vec<f64> = rounds
        .iter()
        .map(|r| rate(events, r.verified.wall))
        .collect();
    let fractions: Vec<f64> = rounds
        .iter()
        .map(|r| r.baseline.leaf.as_secs_f64() / r.verified.wall.as_secs_f64().max(1e-9))
        .collect();
    let Some(speed) = median(&speeds) else { return };
    println!();
    if let Some(first) = rounds.first() {
        println!("verify said: {}", first.verified.summary);
        println!("peak RSS from {}", first.verified.rss_from);
    }
    println!(
        "verify: {} (median), {:.1} % of the SHA-256 speed over the same bytes",
        per_sec(speed),
        median(&fractions).unwrap_or(0.0) * 100.0
    );
    if speed >= TARGET_EVENTS_PER_SEC {
        println!("target met: at least 1,000,000 events/s");
    } else {
        println!(
            "target NOT met: {} against 1,000,000 events/s ({:.1}× too slow)",
            per_sec(speed),
            TARGET_EVENTS_PER_SEC / speed
        );
    }
}
