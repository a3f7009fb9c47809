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
        .wait_for("two Ended", |_| {
            h.authority
                .records()
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
