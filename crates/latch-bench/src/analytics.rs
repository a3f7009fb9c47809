//! `latch-bench analytics`: the dashboard's analytics and the access report over a large
//! synthesized history, in process (no store: the figures are the fold and the rendering, not
//! the database read).
//!
//! The history: `--accesses` requests spread evenly over `--days` days, by 2,000 people in 50
//! teams on 200 resources. 80% are approved and used (one session of seven statements),
//! 10% approved and never used, 5% denied, 5% timed out: about 10 events per access, so the
//! default million accesses are about ten million events. Then, timed one after the other:
//! `latch_analytics::analyze` over the last 90 days and over the whole period, and the
//! full-period report (`latch_report::access_rows` then `to_csv`), with the peak resident
//! memory (`VmHWM`) after each step.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use anyhow::Context;
use latch_core::{
    Actor, Catalog, Event, EventKind, StoredEvent, Team, TicketPattern, Timestamp, User,
};

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
}

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

fn history(accesses: u64, start: Timestamp, days: i64) -> Vec<StoredEvent> {
    let mut events = Vec::with_capacity(usize::try_from(accesses * 10).unwrap_or(0));
    let mut push = |at: i64, actor: Actor, subject: &str, kind: EventKind| {
        let seq = events.len() as u64 + 1;
        events.push(StoredEvent {
            seq,
            event: Event {
                at: Timestamp::from_millis(at),
                actor,
                subject: subject.to_owned(),
                kind,
            },
        });
    };
    let step = (days * DAY) / i64::try_from(accesses.max(1)).unwrap_or(i64::MAX);
    for i in 0..accesses {
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

/// Peak resident memory of this process so far, in MiB.
fn peak_rss_mib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc")?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/self/status")?;
    Ok(kib / 1024)
}

pub fn run(options: &Options) -> anyhow::Result<()> {
    let catalog = catalog();
    let patterns = patterns()?;
    let start = Timestamp::parse("2026-01-01T00:00:00Z").map_err(anyhow::Error::msg)?;
    let end = Timestamp::from_millis(start.as_millis() + options.days * DAY);

    let began = Instant::now();
    let events = history(options.accesses, start, options.days);
    println!(
        "history: {} accesses, {} events over {} days, synthesized in {:.1} s; peak RSS {} MiB",
        options.accesses,
        events.len(),
        options.days,
        began.elapsed().as_secs_f64(),
        peak_rss_mib()?
    );

    let analyze = |from: Timestamp, label: &str| -> anyhow::Result<()> {
        let filter = latch_analytics::AnalyticsFilter {
            from,
            to: end,
            team: None,
            resource: None,
            principal: None,
            approver: None,
        };
        let began = Instant::now();
        let analytics = latch_analytics::analyze(&events, &catalog, &patterns, &filter);
        let elapsed = began.elapsed().as_secs_f64();
        println!(
            "analytics, {label}: {} requests ({} grants, {} recommendations) in {:.3} s; \
             peak RSS {} MiB",
            analytics.requests,
            analytics.grants_total,
            analytics.recommendations.len(),
            elapsed,
            peak_rss_mib()?
        );
        Ok(())
    };
    analyze(
        Timestamp::from_millis(end.as_millis() - 90 * DAY),
        "last 90 days",
    )?;
    analyze(start, "full period")?;

    let began = Instant::now();
    let rows = latch_report::access_rows(
        &events,
        &latch_report::ReportFilter {
            from: start,
            to: end,
            team: None,
            resource: None,
        },
    );
    let folded = began.elapsed().as_secs_f64();
    let began = Instant::now();
    let csv = latch_report::to_csv(&rows);
    let rendered = began.elapsed().as_secs_f64();
    let total = folded + rendered;
    println!(
        "report CSV, full period: {} rows, {} MiB: fold {:.3} s + render {:.3} s = {:.0} rows/s \
         (render alone {:.0} rows/s); peak RSS {} MiB",
        rows.len(),
        csv.len() / (1024 * 1024),
        folded,
        rendered,
        rows.len() as f64 / total,
        rows.len() as f64 / rendered,
        peak_rss_mib()?
    );
    Ok(())
}
