//! Grant ends: at the deadline and on `end_grant`, sessions are cut within a second, the
//! running query is cancelled upstream, the client is told.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use latch_gateway::{EndReason, SessionRecord};

use crate::support::*;

fn upstream_backends(db: &str) -> i64 {
    psql_admin(&format!(
        "select count(*) from pg_stat_activity where datname = '{db}' and application_name like 'latch:%'"
    ))
    .parse()
    .unwrap()
}

#[tokio::test]
async fn session_is_cut_at_the_deadline_during_a_long_query() {
    let h = Harness::start().await;
    let deadline = now_ms() + 1500;
    h.authority.ends_at_ms.store(deadline, Ordering::SeqCst);
    let client = h.connect("write").await;
    assert_eq!(upstream_backends(&h.db.name), 1);
    let err = client
        .simple_query("select pg_sleep(30)")
        .await
        .unwrap_err();
    let after_deadline = now_ms() - deadline;
    let (code, message) = db_error(&err);
    assert_eq!(code, "57P01");
    assert!(
        message.starts_with(&format!("access ended: grant {GRANT} expired at ")),
        "{message}"
    );
    assert!(
        (0..1000).contains(&after_deadline),
        "closed {after_deadline} ms after the deadline"
    );
    assert!(client.is_closed() || client.simple_query("select 1").await.is_err());
    let ended = h
        .authority
        .wait_for("Ended", |r| matches!(r, SessionRecord::Ended { .. }))
        .await;
    let SessionRecord::Ended {
        reason,
        revocation_delay_ms,
        ..
    } = ended
    else {
        unreachable!()
    };
    assert_eq!(reason, EndReason::GrantExpired);
    let delay = revocation_delay_ms.unwrap();
    assert!((0..1000).contains(&delay), "measured delay {delay} ms");
    let start = Instant::now();
    while upstream_backends(&h.db.name) != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "upstream backend still there"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let interrupted = h.authority.statements();
    assert_eq!(
        interrupted.last().unwrap().outcome,
        latch_gateway::Outcome::Interrupted
    );
    h.stop().await;
}

#[tokio::test]
async fn end_grant_ends_every_session_of_the_grant() {
    let h = Harness::start().await;
    let a = h.connect("write").await;
    let b = h.connect("read").await;
    assert_eq!(h.gateway.sessions().len(), 2);
    let running = tokio::spawn(async move { a.simple_query("select pg_sleep(30)").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    assert_eq!(
        h.gateway.end_grant(
            GRANT,
            EndReason::GrantRevoked {
                by: "carol".to_owned()
            }
        ),
        2
    );
    let err = running.await.unwrap().unwrap_err();
    let (code, message) = db_error(&err);
    assert_eq!(code, "57P01");
    assert_eq!(
        message,
        format!("access ended: grant {GRANT} was revoked by carol")
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(b.simple_query("select 1").await.is_err());
    eventually("sessions gone", || h.gateway.sessions().is_empty()).await;
    assert_eq!(h.gateway.end_grant("grt_other", EndReason::GrantExpired), 0);
    h.authority
        .wait_until("two Ended", |records| {
            records
                .iter()
                .filter(|r| {
                    matches!(
                        r,
                        SessionRecord::Ended {
                            reason: EndReason::GrantRevoked { .. },
                            ..
                        }
                    )
                })
                .count()
                == 2
        })
        .await;
    h.stop().await;
}

#[tokio::test]
async fn many_sessions_are_cut_within_a_second() {
    let h = Harness::start().await;
    let deadline = now_ms() + 2500;
    h.authority.ends_at_ms.store(deadline, Ordering::SeqCst);
    let mut clients = Vec::new();
    for _ in 0..40 {
        clients.push(h.connect("write").await);
    }
    let waits: Vec<_> = clients
        .into_iter()
        .map(|c| {
            tokio::spawn(async move {
                (
                    c.simple_query("select pg_sleep(30)").await.unwrap_err(),
                    now_ms(),
                )
            })
        })
        .collect();
    for w in waits {
        let (err, at) = w.await.unwrap();
        assert_eq!(db_error(&err).0, "57P01");
        assert!(
            at - deadline < 1000,
            "cut {} ms after the deadline",
            at - deadline
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn shutdown_ends_sessions_and_drains_records() {
    let h = Harness::start().await;
    let client = h.connect("write").await;
    client.simple_query("select 1").await.unwrap();
    let authority = h.authority.clone();
    h.stop().await;
    assert!(client.simple_query("select 1").await.is_err());
    assert!(authority.records().iter().any(|r| matches!(
        r,
        SessionRecord::Ended {
            reason: EndReason::Shutdown,
            ..
        }
    )));
    assert_eq!(authority.statements().len(), 1);
}

/// Sessions write as fast as they can while their grant ends at a random moment, in buffered
/// and strict recording, trial after trial. PostgreSQL's own table is the witness: every row
/// in it is a statement latch recorded, every recorded statement started before the grant's
/// end, and nothing was written later than the second in which sessions must be closed.
#[tokio::test]
async fn no_statement_runs_after_the_grant_ends_in_randomised_trials() {
    const TRIALS: usize = 4;
    const SESSIONS: usize = 6;
    let h = Harness::start().await;
    h.connect("write")
        .await
        .batch_execute(
            "create table marks (trial int, session int, n int, at_ms bigint, primary key (trial, session, n))",
        )
        .await
        .unwrap();
    let seed: u64 = rand::random();
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let mut ended_so_far = 1;
    for trial in 0..TRIALS {
        let end_ms = now_ms() + rand::Rng::gen_range(&mut rng, 300..1200);
        h.authority.ends_at_ms.store(end_ms, Ordering::SeqCst);
        let mut writers = Vec::new();
        for session in 0..SESSIONS {
            let role = if session % 2 == 0 { "write" } else { "strict" };
            let client = h.connect(role).await;
            writers.push(tokio::spawn(async move {
                for n in 0.. {
                    let insert = format!(
                        "insert into marks values ({trial}, {session}, {n}, \
                         (extract(epoch from clock_timestamp()) * 1000)::bigint)"
                    );
                    if let Err(err) = client.simple_query(&insert).await {
                        return (err, now_ms());
                    }
                }
                unreachable!()
            }));
        }
        for writer in writers {
            let (err, at) = writer.await.unwrap();
            if let Some(db) = err.as_db_error() {
                assert_eq!(db.code().code(), "57P01", "seed {seed}: {err}");
            }
            assert!(
                at - end_ms < 1000,
                "seed {seed}: cut {} ms after the grant's end",
                at - end_ms
            );
        }
        ended_so_far += SESSIONS;
        h.authority
            .wait_until("every session's end", |records| {
                records
                    .iter()
                    .filter(|r| matches!(r, SessionRecord::Ended { .. }))
                    .count()
                    >= ended_so_far
            })
            .await;

        let recorded: std::collections::HashMap<String, i64> = h
            .authority
            .statements()
            .into_iter()
            .filter(|s| s.text.contains(&format!("values ({trial}, ")))
            .map(|s| (s.text, s.started_at_ms))
            .collect();
        for (text, started) in &recorded {
            assert!(
                *started <= end_ms,
                "seed {seed}: `{text}` recorded as started {} ms after the grant's end",
                started - end_ms
            );
        }
        let rows = psql_admin_in(
            &h.db.name,
            &format!("select session, n, at_ms from marks where trial = {trial}"),
        );
        let rows: Vec<(usize, u64, i64)> = rows
            .lines()
            .map(|line| {
                let mut f = line.split('|');
                let mut next = || f.next().unwrap().parse::<i64>().unwrap();
                (next() as usize, next() as u64, next())
            })
            .collect();
        assert!(!rows.is_empty(), "seed {seed}: trial {trial} wrote nothing");
        for (session, n, at_ms) in rows {
            let text = format!(
                "insert into marks values ({trial}, {session}, {n}, \
                 (extract(epoch from clock_timestamp()) * 1000)::bigint)"
            );
            assert!(
                recorded.contains_key(&text),
                "seed {seed}: row ({trial}, {session}, {n}) was written but its statement is not recorded"
            );
            assert!(
                at_ms - end_ms < 1000,
                "seed {seed}: row ({trial}, {session}, {n}) written {} ms after the grant's end",
                at_ms - end_ms
            );
        }
    }
    h.stop().await;
}
