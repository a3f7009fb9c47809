//! Throughput of `Auditor::observe` over a synthetic ledger, and the auditor's peak state.
//!
//! The ledger (see `tests/it/synth.rs`): 2,000 users in 40 teams, 30 resources (a third asking
//! for tickets, half declaring a scope); a new request every 100 s on average, each denied,
//! cancelled or approved (some break-glass), its grant (30 min to 2 h) used by 0 to 3 sessions of
//! up to 300 statements each (85 % reads), then expired or revoked. 10,000,000 events, about
//! 97 % of them statements, spanning some weeks; generated 100,000 at a time so that only the
//! events of live requests are held. Only `observe` and a `tick` per second of event time (as
//! the server calls it) are timed, not the generator.
//!
//! Run: `cargo bench -p latch-audit --bench stream` (`-- 1000000` for fewer events).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark: a broken setup should stop it loudly"
)]

#[path = "../tests/it/synth.rs"]
#[allow(dead_code, reason = "shared with the tests, which use all of it")]
mod synth;

use std::hint::black_box;
use std::time::{Duration, Instant};

use latch_audit::{AuditSettings, Auditor, AuditorStats, Checkpoint};
use latch_core::{EventKind, Timestamp};
use synth::{Scale, Synth};

const EVENTS: usize = 10_000_000;
const CHUNK: usize = 100_000;

/// The process's peak resident memory (Linux), for the record.
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .map(|line| line.trim_start_matches("VmHWM:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// This thread's CPU time (Linux `schedstat`, ns): on a shared machine, wall time also counts
/// the time other processes held the CPU.
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

fn main() {
    let total: usize = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
        .map_or(EVENTS, |arg| arg.parse().expect("the number of events"));
    let scale = Scale::BENCH;
    let mut synth = Synth::new(42, scale);
    let mut auditor = Auditor::new(
        AuditSettings::default(),
        synth.catalog(),
        synth::rules(scale),
    );
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut observing = Duration::ZERO;
    let mut observing_cpu = Duration::ZERO;
    let mut generating = Duration::ZERO;
    let mut counts = [0u64; Checkpoint::ALL.len()];
    let mut statements = 0u64;
    let mut peak = AuditorStats::default();
    let mut peak_buffered = 0;
    let mut last_tick = i64::MIN;
    let mut first_at = None;
    let mut last_at = 0;
    let mut done = 0;
    while done < total {
        let n = CHUNK.min(total - done);
        chunk.clear();
        let started = Instant::now();
        synth.fill(n, &mut chunk);
        generating += started.elapsed();
        peak_buffered = peak_buffered.max(synth.buffered());
        statements += chunk
            .iter()
            .filter(|e| matches!(e.event.kind, EventKind::SessionStatement { .. }))
            .count() as u64;
        let started = Instant::now();
        let cpu_before = thread_cpu();
        for event in &chunk {
            let at = event.event.at.as_millis();
            if at >= last_tick.saturating_add(1_000) {
                for finding in auditor.tick(Timestamp::from_millis(at)) {
                    counts[finding.checkpoint as usize] += 1;
                }
                last_tick = at;
            }
            for finding in black_box(auditor.observe(event)) {
                counts[finding.checkpoint as usize] += 1;
            }
        }
        observing += started.elapsed();
        if let (Some(before), Some(after)) = (cpu_before, thread_cpu()) {
            observing_cpu += after.saturating_sub(before);
        }
        first_at.get_or_insert(chunk.first().map_or(0, |e| e.event.at.as_millis()));
        last_at = chunk.last().map_or(last_at, |e| e.event.at.as_millis());
        // The stream-bounded state (history is bounded by the organisation and only grows).
        let stats = auditor.stats();
        let live = |s: &AuditorStats| s.total() - s.history;
        if live(&stats) > live(&peak) {
            peak = stats;
        }
        done += n;
    }
    let rate = done as f64 / observing.as_secs_f64();
    let days = (last_at - first_at.unwrap_or(0)) as f64 / 86_400_000.0;
    println!(
        "{done} events ({:.1} % statements) over {days:.1} days of ledger time",
        statements as f64 * 100.0 / done as f64
    );
    println!(
        "observe + tick: {observing:.2?} wall -> {:.2} M events/s; {observing_cpu:.2?} on CPU -> {:.2} M events/s (target > 1 M/s); generating took {generating:.2?}",
        rate / 1e6,
        done as f64 / observing_cpu.as_secs_f64() / 1e6
    );
    println!(
        "peak live state: {} entries ({} requests, {} grants, {} sessions, {} timers, {} windows; history then {}); final: {:?}",
        peak.total() - peak.history,
        peak.requests,
        peak.grants,
        peak.sessions,
        peak.timers,
        peak.windows,
        peak.history,
        auditor.stats()
    );
    println!(
        "generator buffer peak: {peak_buffered} events; process peak RSS (generator included): {}",
        peak_rss()
    );
    println!("findings:");
    for checkpoint in Checkpoint::ALL {
        println!(
            "  {:<28} {}",
            checkpoint.as_str(),
            counts[checkpoint as usize]
        );
    }
}
