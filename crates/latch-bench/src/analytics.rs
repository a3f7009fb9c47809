//! `latch-bench analytics`: the dashboard's analytics and the access report over a large
//! synthesized history in a real store, SQLite and PostgreSQL side by side.
//!
//! The history: `--accesses` requests spread evenly over `--days` days, by 2,000 people in 50
//! teams on 200 resources. 80% are approved and used (one session of seven statements),
//! 10% approved and never used, 5% denied, 5% timed out: about 11 events per access, so the
//! default million accesses are about eleven million events. They are appended to a fresh
//! store (`Store::record`, 5,000 accesses per transaction; the bench never holds more), then,
//! timed one after the other: the access-summary projection folding the whole ledger
//! (`latch_accesses::catch_up`, what a server does once after upgrading), the full-period CSV
//! report streamed to a file (`latch_accesses::write_csv`, as `latch report` does), and the
//! dashboard's analytics for the last 90 days and for the whole period (the summaries folded
//! into a `latch_analytics::Analyzer` as they are read, as `GET /api/v1/analytics` does), each
//! with the
//! peak resident memory (`VmHWM`, reset before each step; the CSV comes before the analytics,
//! whose memory the allocator keeps afterwards).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::ops::Range;
use std::time::Instant;

use anyhow::Context;
use latch_core::{Actor, Catalog, Event, EventKind, Team, TicketPattern, Timestamp, User};
use latch_store::Store;

use crate::backend::{self, BackendChoice};

const TEAMS: usize = 50;
const PEOPLE: usize = 2000;
const RESOURCES: usize = 200;
const STATEMENTS: u64 = 7;
const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;

#[derive(clap::Args)]
pub struct Options {
    /// Requests in the history (about ten events each).
    #[arg(long, default_value_t = 1_000_000)]
    accesses: u64,
    /// Days the history spans (the requests are spread evenly over them).
    #[arg(long, default_value_t = 365)]
    days: i64,
    /// Which databases.
    #[arg(long, value_enum, default_value_t = BackendChoice::Both)]
    backend: BackendChoice,
    /// Timed runs of each analytics window (the median is reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

/// Accesses appended per transaction.
const CHUNK: u64 = 5000;

fn catalog() -> Catalog {
    let team = |t: usize| format!("team-{t:02}");
    let teams = (0..TEAMS)
        .map(|t| {
            (
                team(t),
                Team {
                    name: team(t),
                    leads: BTreeSet::from([format!("lead-{t:02}")]),
                    parent: None,
                },
            )
        })
        .collect();
    let users = (0..PEOPLE)
        .map(|p| format!("user-{p:04}"))
        .chain((0..TEAMS).map(|t| format!("lead-{t:02}")))
        .enumerate()
        .map(|(i, name)| {
            (
                name.clone(),
                User {
                    email: format!("{name}@example.com"),
                    teams: BTreeSet::from([team(i % TEAMS)]),
                    name,
                    manager: None,
                    roles: BTreeSet::new(),
                },
            )
        })
        .collect();
    Catalog {
        users,
        teams,
        ..Catalog::default()
    }
}

fn patterns() -> anyhow::Result<BTreeMap<String, TicketPattern>> {
    (0..RESOURCES)
        .step_by(3)
        .map(|r| Ok((format!("db-{r:03}"), TicketPattern::new("PAY-[0-9]+")?)))
        .collect()
}

/// A deterministic spread: the same history on every run.
fn mix(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

/// The events of accesses `range` of a history of `accesses` over `days` from `start`.
fn history(range: Range<u64>, accesses: u64, start: Timestamp, days: i64) -> Vec<Event> {
    let mut events =
        Vec::with_capacity(usize::try_from((range.end - range.start) * 11).unwrap_or(0));
    let mut push = |at: i64, actor: Actor, subject: &str, kind: EventKind| {
        events.push(Event {
            at: Timestamp::from_millis(at),
            actor,
            subject: subject.to_owned(),
            kind,
        });
    };
    let step = (days * DAY) / i64::try_from(accesses.max(1)).unwrap_or(i64::MAX);
    for i in range {
        let h = mix(i);
        let person = (h % PEOPLE as u64) as usize;
        let requester = format!("user-{person:04}");
        let team = person % TEAMS;
        // Each team works mostly on its own four resources.
        let resource = format!("db-{:03}", (team * 4 + (h >> 20) as usize % 4) % RESOURCES);
        let lead = format!("lead-{team:02}");
        let id = format!("req_{i:010}");
        let grant = format!("grt_{i:010}");
        let t0 = start.as_millis() + i64::try_from(i).unwrap_or(0) * step;
        push(
            t0,
            Actor::user(&requester),
            &id,
            EventKind::RequestCreated {
                requester: requester.clone(),
                resource: resource.clone(),
                role: "read".into(),
                duration_secs: 3600,
                reason: "investigating a stuck job".into(),
                ticket: Some(format!("PAY-{}", h % 10_000)),
                required_approvals: 1,
                pending_until: None,
                policies: Vec::new(),
                approver_groups: Vec::new(),
                once: false,
            },
        );
        let wait = i64::try_from((h >> 8) % 30 + 1).unwrap_or(1) * MIN;
        match h % 20 {
            0 => {
                push(
                    t0 + wait,
                    Actor::user(&lead),
                    &id,
                    EventKind::RequestDenied {
                        reason: "not needed".into(),
                    },
                );
                continue;
            }
            1 => {
                push(
                    t0 + 24 * 60 * MIN,
                    Actor::System,
                    &id,
                    EventKind::RequestTimedOut {},
                );
                continue;
            }
            _ => {}
        }
        let granted = t0 + wait;
        push(
            granted,
            Actor::user(&lead),
            &id,
            EventKind::RequestApproved {
                comment: Some("ok".into()),
                policies: Vec::new(),
                break_glass: false,
            },
        );
        push(
            granted,
            Actor::System,
            &id,
            EventKind::GrantIssued {
                grant_id: grant.clone(),
                grantee: requester.clone(),
                resource: resource.clone(),
                role: "read".into(),
                starts_at: Timestamp::from_millis(granted),
                expires_at: Timestamp::from_millis(granted + 60 * MIN),
            },
        );
        if h % 20 > 3 {
            let session = format!("ses_{i:010}");
            push(
                granted + MIN,
                Actor::user(&requester),
                &session,
                EventKind::SessionStarted {
                    grant_id: grant.clone(),
                    user: requester.clone(),
                    resource: resource.clone(),
                    role: "read".into(),
                    client_addr: "10.0.0.7:51234".into(),
                    application_name: Some("psql".into()),
                    auth: None,
                    tls: true,
                },
            );
            for s in 0..STATEMENTS {
                let write = (h >> 12).wrapping_add(s) % 10 == 0;
                push(
                    granted + MIN + i64::try_from(s).unwrap_or(0) * 1000,
                    Actor::user(&requester),
                    &session,
                    EventKind::SessionStatement {
                        grant_id: grant.clone(),
                        seq: s + 1,
                        text: "SELECT * FROM public.jobs WHERE id = $1".into(),
                        protocol: "extended".into(),
                        class: if write { "write" } else { "read" }.into(),
                        objects: vec![format!("public.t{}", (h >> 24).wrapping_add(s) % 8)],
                        outcome: "rows".into(),
                        rows: Some(1),
                        detail: None,
                        duration_us: 250,
                    },
                );
            }
            push(
                granted + (5 + i64::try_from(h % 20).unwrap_or(0)) * MIN,
                Actor::user(&requester),
                &session,
                EventKind::SessionEnded {
                    grant_id: grant.clone(),
                    reason: "client_closed".into(),
                    detail: None,
                    bytes_in: 1000,
                    bytes_out: 10_000,
                    statements: STATEMENTS,
                    revocation_delay_ms: None,
                },
            );
        }
        push(
            granted + 60 * MIN,
            Actor::System,
            &id,
            EventKind::GrantExpired { grant_id: grant },
        );
    }
    events
}

/// Peak resident memory of this process since the last [`reset_peak_rss`], in MiB.
fn peak_rss_mib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc")?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/self/status")?;
    Ok(kib / 1024)
}

/// Starts the peak over from the current resident memory (Linux: `clear_refs` 5); returns
/// that memory in MiB, which a step that streams should barely exceed.
fn reset_peak_rss() -> anyhow::Result<u64> {
    std::fs::write("/proc/self/clear_refs", "5").context("resetting the peak RSS")?;
    peak_rss_mib()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

pub async fn run(options: &Options) -> anyhow::Result<()> {
    let catalog = catalog();
    let patterns = patterns()?;
    let start = Timestamp::parse("2026-01-01T00:00:00Z").map_err(anyhow::Error::msg)?;
    let end = Timestamp::from_millis(start.as_millis() + options.days * DAY);
    let mut summary = Vec::new();
    for backend in options.backend.backends() {
        let opened = backend::open(backend).await?;
        let store: &dyn Store = opened.store.as_ref();

        let began = Instant::now();
        let mut events = 0;
        let mut first = 0;
        while first < options.accesses {
            let last = (first + CHUNK).min(options.accesses);
            let chunk = history(first..last, options.accesses, start, options.days);
            events += chunk.len();
            store.record(chunk).await?;
            first = last;
        }
        println!(
            "{backend}: {} accesses, {events} events over {} days appended in {:.1} s",
            options.accesses,
            options.days,
            began.elapsed().as_secs_f64()
        );

        let fold_base = reset_peak_rss()?;
        let began = Instant::now();
        let folded_to = latch_accesses::catch_up(store).await?;
        let fold_secs = began.elapsed().as_secs_f64();
        println!(
            "{backend}: access summaries folded from the whole ledger ({folded_to} events) in \
             {fold_secs:.1} s ({:.0} events/s); peak RSS {} MiB (from {fold_base} MiB before it)",
            folded_to as f64 / fold_secs,
            peak_rss_mib()?
        );

        let dir = tempfile::tempdir()?;
        let path = dir.path().join("access.csv");
        let csv_base = reset_peak_rss()?;
        let began = Instant::now();
        let mut sink = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let range = latch_accesses::range(start, end, None, None, None);
        let rows = latch_accesses::write_csv(store, &range, &mut sink).await?;
        sink.flush()?;
        let csv_secs = began.elapsed().as_secs_f64();
        let csv_peak = peak_rss_mib()?;
        let bytes = std::fs::metadata(&path)?.len();
        println!(
            "{backend}: report CSV, full period: {rows} rows, {} MiB in {csv_secs:.3} s = {:.0} \
             rows/s; peak RSS {csv_peak} MiB (from {csv_base} MiB before it)",
            bytes / (1024 * 1024),
            rows as f64 / csv_secs,
        );
        let mut windows = Vec::new();
        for (label, from) in [
            (
                "last 90 days",
                Timestamp::from_millis(end.as_millis() - 90 * DAY),
            ),
            ("full period", start),
        ] {
            let filter = latch_analytics::AnalyticsFilter {
                from,
                to: end,
                team: None,
                resource: None,
                principal: None,
                approver: None,
            };
            let range = latch_accesses::range(from, end, None, None, None);
            let mut times = Vec::new();
            let mut requests = 0;
            reset_peak_rss()?;
            for _ in 0..options.rounds.max(1) {
                let began = Instant::now();
                let (analytics, finish) = {
                    let (catalog, patterns, filter) =
                        (catalog.clone(), patterns.clone(), filter.clone());
                    latch_accesses::consume(store, &range, move |accesses| {
                        let settings = latch_analytics::Settings::default();
                        let mut analyzer =
                            latch_analytics::Analyzer::new(&catalog, &patterns, &filter, &settings);
                        for access in accesses {
                            analyzer.observe(access?);
                        }
                        let finishing = Instant::now();
                        let analytics = analyzer.finish();
                        Ok::<_, latch_store::StoreError>((
                            analytics,
                            finishing.elapsed().as_secs_f64(),
                        ))
                    })
                    .await??
                };
                let total = began.elapsed().as_secs_f64();
                requests = analytics.requests;
                println!(
                    "{backend}: analytics, {label}: {requests} requests ({} grants, {} \
                     recommendations) in {total:.3} s (read and fold {:.3} s, then figures \
                     {finish:.3} s)",
                    analytics.grants_total,
                    analytics.recommendations.len(),
                    total - finish,
                );
                times.push(total);
            }
            let peak = peak_rss_mib()?;
            println!("{backend}: analytics, {label}: peak RSS {peak} MiB");
            windows.push((label, requests, median(times), peak));
        }

        summary.push((
            backend,
            fold_secs,
            folded_to,
            windows,
            rows,
            csv_secs,
            (csv_base, csv_peak),
        ));
    }
    println!();
    println!(
        "| database | summaries folded (events/s) | 90 days: requests, median s, peak RSS | full period: requests, median s, peak RSS | CSV rows/s, peak RSS |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (backend, fold_secs, folded, windows, rows, csv_secs, (csv_base, csv_peak)) in summary {
        let cell = |i: usize| {
            windows
                .get(i)
                .map_or(String::new(), |(_, requests, secs, peak)| {
                    format!("{requests}, {secs:.3} s, {peak} MiB")
                })
        };
        println!(
            "| {backend} | {fold_secs:.1} s ({:.0}/s) | {} | {} | {:.0}, {csv_peak} MiB (from {csv_base}) |",
            folded as f64 / fold_secs,
            cell(0),
            cell(1),
            rows as f64 / csv_secs,
        );
    }
    Ok(())
}
