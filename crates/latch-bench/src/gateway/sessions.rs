//! Many sessions through the gateway at once, with tokio-postgres: the memory each idle session
//! costs latch, and how soon sessions are cut when their grants expire together.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use futures_util::StreamExt;
use latch_api::ConnectView;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_postgres::config::SslMode;

use super::setup::{Latch, Tokens};
use crate::stats::percentile;

/// Sessions opened at once.
const OPEN_CONCURRENCY: usize = 32;

pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// How a session ended, as its client saw it.
struct Closed {
    /// Unix ms.
    at_ms: i64,
    /// The SQLSTATE the gateway sent, when it sent one.
    sqlstate: Option<String>,
}

/// One open session: the client (dropping it would close the session) and its connection task,
/// which ends when the gateway closes the session.
struct Session {
    client: tokio_postgres::Client,
    connection: JoinHandle<Closed>,
}

async fn open(port: u16, credential: &ConnectView) -> anyhow::Result<Session> {
    let (client, connection) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user(&credential.user)
        .password(&credential.credential)
        .dbname(&credential.resource)
        .ssl_mode(SslMode::Disable)
        .connect_timeout(Duration::from_secs(30))
        .connect(tokio_postgres::NoTls)
        .await
        .with_context(|| format!("cannot open a session on `{}`", credential.resource))?;
    let connection = tokio::spawn(async move {
        let outcome = connection.await;
        Closed {
            at_ms: unix_ms(),
            sqlstate: outcome
                .err()
                .and_then(|e| e.code().map(|c| c.code().to_owned())),
        }
    });
    Ok(Session { client, connection })
}

/// `count` sessions under `credential`, [`OPEN_CONCURRENCY`] at a time.
async fn open_many(
    port: u16,
    credential: &ConnectView,
    count: usize,
) -> anyhow::Result<Vec<Session>> {
    let opened: Vec<anyhow::Result<Session>> = futures_util::stream::iter(0..count)
        .map(|_| open(port, credential))
        .buffer_unordered(OPEN_CONCURRENCY)
        .collect()
        .await;
    opened.into_iter().collect()
}

/// Idle sessions against latch's resident memory.
#[derive(Clone, Debug, Serialize)]
pub struct Memory {
    pub sessions: usize,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub per_session_kib: f64,
}

/// latch's RSS moves by this much on its own between readings (the allocator, the server's
/// background tasks): a growth smaller than this says nothing about the sessions.
const RSS_NOISE_KIB: f64 = 512.0;

impl Memory {
    /// The figure per session, or why there is none: too few sessions to rise above the
    /// RSS's own movement (a quick run's ten sessions can even show it falling).
    pub fn per_session_text(&self) -> String {
        let grew = self.rss_after_kib as f64 - self.rss_before_kib as f64;
        if grew < RSS_NOISE_KIB {
            format!(
                "not measurable: {grew:.0} KiB for {} sessions is within the RSS's own movement (±{RSS_NOISE_KIB:.0} KiB); open more (`--memory-sessions`)",
                self.sessions
            )
        } else {
            format!("{:.1} KiB per session", self.per_session_kib)
        }
    }
}

/// Opens one session (so that the first session's one-off costs are paid), reads latch's
/// RSS, opens `count` more idle sessions, waits for the recorder to settle, reads it again.
pub async fn memory(
    latch: &Latch,
    tokens: &Tokens,
    resource: &str,
    count: usize,
) -> anyhow::Result<Memory> {
    let credential = latch.grant(tokens, resource, "mem", "4h").await?;
    let first = open_many(latch.gateway_port, &credential, 1).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = settled_rss_kib(latch).await?;
    let sessions = open_many(latch.gateway_port, &credential, count).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = settled_rss_kib(latch).await?;
    for session in sessions.into_iter().chain(first) {
        drop(session.client);
        let _ = session.connection.await;
    }
    Ok(Memory {
        sessions: count,
        rss_before_kib: before,
        rss_after_kib: after,
        per_session_kib: (after as f64 - before as f64) / count.max(1) as f64,
    })
}

/// The median of a few readings of latch's RSS: the allocator returns and takes pages while
/// the server's background tasks run, a few hundred KiB either way, which a single reading
/// would count against (or for) the sessions.
async fn settled_rss_kib(latch: &Latch) -> anyhow::Result<u64> {
    let mut readings = Vec::with_capacity(RSS_READINGS);
    for reading in 0..RSS_READINGS {
        if reading > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        readings.push(latch.rss_kib()? as f64);
    }
    crate::stats::median(&readings)
        .map(|kib| kib.round() as u64)
        .context("no RSS reading")
}

const RSS_READINGS: usize = 5;

/// What a scenario's sessions do when their grant ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    /// Nothing: the session waits for the client.
    Idle,
    /// `select pg_sleep(600)`, cancelled upstream at the cut.
    Sleeping,
    /// `select 1` after `select 1`, from [`BUSY_BEFORE_END_MS`] before the end until the cut:
    /// whether a statement slips through after the end.
    Busy,
}

/// Busy sessions start their statements this long before their grant's end.
const BUSY_BEFORE_END_MS: i64 = 700;

/// One revocation scenario: `grants` grants expiring together, each with
/// `sessions_per_grant` sessions, idle, sleeping or busy.
pub struct Scenario {
    pub name: String,
    pub resource: &'static str,
    /// One role per grant (a role holds one grant at a time, see `setup::MANY_GRANT_ROLES`).
    pub roles: Vec<String>,
    pub sessions_per_grant: usize,
    pub activity: Activity,
    /// Grant duration in seconds: time enough to open every session.
    pub grant_secs: u64,
}

/// Delays from grant expiry to the client seeing its session closed, and latch's own account.
#[derive(Clone, Debug, Serialize)]
pub struct Revocation {
    pub name: String,
    pub grants: usize,
    pub sessions: usize,
    pub activity: Activity,
    /// Last grant expiry minus first, ms (approvals are concurrent).
    pub expiry_spread_ms: i64,
    /// Client-side delays (ms from its grant's expiry to the close), sorted.
    pub client_delays_ms: Vec<i64>,
    /// Sessions not closed 15 s after the expiry.
    pub not_closed: usize,
    /// SQLSTATEs the clients got (`closed` when the socket closed without one).
    pub sqlstates: BTreeMap<String, usize>,
    /// `revocation_delay_ms` of the sessions as `GET /api/v1/sessions` reports them, sorted.
    pub server_delays_ms: Vec<i64>,
    /// End reasons recorded in the ledger.
    pub end_reasons: BTreeMap<String, usize>,
    /// Busy sessions: statements recorded, and how many of them started after their grant's
    /// end (must be none).
    pub statements_recorded: usize,
    pub statements_after_end: usize,
}

impl Revocation {
    pub fn client(&self, p: f64) -> Option<i64> {
        percentile(&self.client_delays_ms, p)
    }

    pub fn server(&self, p: f64) -> Option<i64> {
        percentile(&self.server_delays_ms, p)
    }
}

pub async fn revocation(
    latch: &Latch,
    tokens: &Tokens,
    scenario: &Scenario,
) -> anyhow::Result<Revocation> {
    let duration = format!("{}s", scenario.grant_secs);
    let mut requests = Vec::new();
    for role in &scenario.roles {
        requests.push(
            latch
                .request(tokens, scenario.resource, role, &duration)
                .await?,
        );
    }
    // Approved together, so that the grants end within the same second.
    let approved = futures_util::future::join_all(
        requests
            .iter()
            .map(|request| latch.approve(tokens, request)),
    )
    .await
    .into_iter()
    .collect::<anyhow::Result<Vec<(String, i64)>>>()?;
    let first_end = approved.iter().map(|(_, end)| *end).min().unwrap_or(0);
    let last_end = approved.iter().map(|(_, end)| *end).max().unwrap_or(0);
    let mut groups = Vec::new();
    for (role, (grant, ends_ms)) in scenario.roles.iter().zip(&approved) {
        let credential = latch.connect(tokens, scenario.resource, role).await?;
        ensure!(
            &credential.grant_id == grant,
            "`POST /connect` for role `{role}` gave grant `{}`, expected `{grant}`",
            credential.grant_id
        );
        let sessions =
            open_many(latch.gateway_port, &credential, scenario.sessions_per_grant).await?;
        groups.push((grant.clone(), *ends_ms, sessions));
    }
    let opened_by = unix_ms();
    if opened_by > first_end - 1000 {
        bail!(
            "opening {} sessions took until {} ms before the grants' end: raise --revocation-secs",
            scenario.roles.len() * scenario.sessions_per_grant,
            first_end - opened_by
        );
    }
    // Per session: its grant's end and when its client saw it closed.
    let mut waits = Vec::new();
    // Idle sessions' clients, kept until the end: dropping one would close its session.
    let mut idle = Vec::new();
    for (_, ends_ms, sessions) in groups {
        for Session { client, connection } in sessions {
            let query = match scenario.activity {
                Activity::Idle => {
                    idle.push(client);
                    waits.push((ends_ms, connection, None));
                    continue;
                }
                Activity::Sleeping => tokio::spawn(async move {
                    let outcome = client.simple_query("select pg_sleep(600)").await;
                    let at_ms = unix_ms();
                    let sqlstate = outcome
                        .err()
                        .and_then(|e| e.code().map(|c| c.code().to_owned()));
                    // Keep the client (and so the session) until the query returns.
                    drop(client);
                    Closed { at_ms, sqlstate }
                }),
                Activity::Busy => tokio::spawn(async move {
                    let start = ends_ms - BUSY_BEFORE_END_MS - unix_ms();
                    tokio::time::sleep(Duration::from_millis(u64::try_from(start).unwrap_or(0)))
                        .await;
                    let err = loop {
                        if let Err(err) = client.simple_query("select 1").await {
                            break err;
                        }
                    };
                    Closed {
                        at_ms: unix_ms(),
                        sqlstate: err.code().map(|c| c.code().to_owned()),
                    }
                }),
            };
            waits.push((ends_ms, connection, Some(query)));
        }
    }
    let deadline = tokio::time::Instant::now()
        + Duration::from_millis(u64::try_from(last_end - unix_ms() + 15_000).unwrap_or(15_000));
    let mut client_delays = Vec::new();
    let mut sqlstates = BTreeMap::new();
    let mut not_closed = 0;
    for (ends_ms, connection, query) in waits {
        // The client sees the end first in whichever of the two returns first.
        let closed = match query {
            Some(query) => tokio::time::timeout_at(deadline, query).await,
            None => tokio::time::timeout_at(deadline, connection).await,
        };
        match closed {
            Ok(Ok(closed)) => {
                client_delays.push(closed.at_ms - ends_ms);
                *sqlstates
                    .entry(closed.sqlstate.unwrap_or_else(|| "closed".into()))
                    .or_insert(0) += 1;
            }
            Ok(Err(_)) | Err(_) => not_closed += 1,
        }
    }
    drop(idle);
    client_delays.sort_unstable();
    // The ledger's account: every session ended, with its delay.
    let expected = scenario.sessions_per_grant;
    let mut server_delays = Vec::new();
    let mut end_reasons = BTreeMap::new();
    let mut statements_recorded = 0;
    let mut statements_after_end = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for (grant, ends_ms) in &approved {
        loop {
            let sessions = latch.sessions(tokens, grant).await?;
            let ended = sessions.iter().filter(|s| s.end_reason.is_some()).count();
            if ended >= expected || tokio::time::Instant::now() > deadline {
                if scenario.activity == Activity::Busy {
                    for s in &sessions {
                        for statement in latch.statements(tokens, &s.id).await? {
                            statements_recorded += 1;
                            let at = latch_core::Timestamp::parse(&statement.at)
                                .map_err(anyhow::Error::msg)?;
                            if at.as_millis() > *ends_ms {
                                statements_after_end += 1;
                            }
                        }
                    }
                }
                for s in sessions {
                    server_delays.extend(s.revocation_delay_ms);
                    *end_reasons
                        .entry(s.end_reason.unwrap_or_else(|| "(open)".into()))
                        .or_insert(0) += 1;
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    server_delays.sort_unstable();
    Ok(Revocation {
        name: scenario.name.clone(),
        grants: scenario.roles.len(),
        sessions: scenario.roles.len() * scenario.sessions_per_grant,
        activity: scenario.activity,
        expiry_spread_ms: last_end - first_end,
        client_delays_ms: client_delays,
        not_closed,
        sqlstates,
        server_delays_ms: server_delays,
        end_reasons,
        statements_recorded,
        statements_after_end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(sessions: usize, before: u64, after: u64) -> Memory {
        Memory {
            sessions,
            rss_before_kib: before,
            rss_after_kib: after,
            per_session_kib: (after as f64 - before as f64) / sessions as f64,
        }
    }

    #[test]
    fn a_growth_within_the_rss_noise_is_not_reported_as_a_figure() {
        // A quick run's ten sessions once read as −29.2 KiB each.
        let fell = memory(10, 63_960, 63_668).per_session_text();
        assert!(fell.starts_with("not measurable"), "{fell}");
        assert!(
            !memory(10, 60_000, 60_300)
                .per_session_text()
                .contains("per session")
        );
        assert_eq!(
            memory(500, 60_000, 70_000).per_session_text(),
            "20.0 KiB per session"
        );
    }
}
