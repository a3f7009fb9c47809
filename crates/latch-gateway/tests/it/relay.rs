//! Statements through the gateway with real clients, and what gets recorded.

use std::time::Duration;

use latch_gateway::{EndReason, Outcome, Protocol, SessionRecord};

use crate::support::*;

#[tokio::test]
async fn simple_and_prepared_statements_are_relayed_and_recorded() {
    let h = Harness::start().await;
    let client = h.connect("write").await;
    client
        .batch_execute("create table t (id int primary key, name text); insert into t values (1, 'one'), (2, 'two')")
        .await
        .unwrap();
    let rows = client
        .query("select name from t where id = $1", &[&2i32])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, &str>(0), "two");
    let stmt = client
        .prepare("update t set name = $1 where id = $2")
        .await
        .unwrap();
    assert_eq!(client.execute(&stmt, &[&"uno", &1i32]).await.unwrap(), 1);
    let err = client
        .simple_query("select * from missing_table")
        .await
        .unwrap_err();
    assert_eq!(db_error(&err).0, "42P01");
    assert_eq!(count_rows(&client, "select 1; select 2").await, 2);
    drop(client);

    let ended = h
        .authority
        .wait_for("Ended", |r| matches!(r, SessionRecord::Ended { .. }))
        .await;
    let SessionRecord::Ended {
        reason,
        statements,
        bytes_in,
        bytes_out,
        ..
    } = ended
    else {
        unreachable!()
    };
    assert_eq!(reason, EndReason::ClientClosed);
    assert!(bytes_in > 0 && bytes_out > 0);
    let stmts = h.authority.statements();
    assert_eq!(statements, stmts.len() as u64);
    let summary: Vec<(Protocol, &str, &str, Outcome)> = stmts
        .iter()
        .map(|s| (s.protocol, s.text.as_str(), s.class, s.outcome.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                Protocol::Simple,
                "create table t (id int primary key, name text); insert into t values (1, 'one'), (2, 'two')",
                "ddl",
                Outcome::Rows(2)
            ),
            (
                Protocol::Extended,
                "select name from t where id = $1",
                "read",
                Outcome::Rows(1)
            ),
            (
                Protocol::Extended,
                "update t set name = $1 where id = $2",
                "write",
                Outcome::Rows(1)
            ),
            (
                Protocol::Simple,
                "select * from missing_table",
                "read",
                Outcome::Error("42P01".to_owned())
            ),
            (
                Protocol::Simple,
                "select 1; select 2",
                "read",
                Outcome::Rows(2)
            ),
        ]
    );
    assert_eq!(
        stmts.iter().map(|s| s.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert!(stmts.iter().all(|s| s.grant_id == GRANT));
    assert_eq!(stmts[2].objects, ["t"]);
    assert!(matches!(
        h.authority.records()[0],
        SessionRecord::Started { .. }
    ));
    h.stop().await;
}

#[tokio::test]
async fn literals_are_redacted_when_configured() {
    let h = Harness::start_with(|s| s.redact_literals = true).await;
    let client = h.connect("write").await;
    client.simple_query("select 'secret', 42").await.unwrap();
    drop(client);
    h.authority
        .wait_for("Ended", |r| matches!(r, SessionRecord::Ended { .. }))
        .await;
    assert_eq!(h.authority.statements()[0].text, "select ?, ?");
    h.stop().await;
}

/// `relay_threads = 0`: sessions run on the runtime that runs the gateway, and relay and
/// record as on threads of their own.
#[tokio::test]
async fn sessions_relay_on_the_callers_runtime_without_relay_threads() {
    let h = Harness::start_with(|s| s.relay_threads = 0).await;
    let client = h.connect("write").await;
    assert_eq!(count_rows(&client, "select 1; select 2").await, 2);
    drop(client);
    h.authority
        .wait_for("Ended", |r| matches!(r, SessionRecord::Ended { .. }))
        .await;
    assert_eq!(h.authority.statements()[0].text, "select 1; select 2");
    let threads = h.authority.authorized_on.lock().unwrap().clone();
    assert!(
        threads.iter().all(|name| !name.starts_with("latch-relay")),
        "{threads:?}"
    );
    h.stop().await;
}

/// With relay threads, each session runs on one of them, taken in turn.
#[tokio::test]
async fn sessions_are_spread_over_the_relay_threads() {
    let h = Harness::start().await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        let client = h.connect("write").await;
        assert_eq!(count_rows(&client, "select 1").await, 1);
        clients.push(client);
    }
    let threads = h.authority.authorized_on.lock().unwrap().clone();
    assert_eq!(
        threads,
        [
            "latch-relay-0",
            "latch-relay-1",
            "latch-relay-0",
            "latch-relay-1"
        ]
    );
    drop(clients);
    h.stop().await;
}

#[tokio::test]
async fn psql_runs_through_the_gateway() {
    let h = Harness::start().await;
    assert_eq!(h.psql("disable", "select 40 + 2").await, "42");
    h.authority
        .wait_for("Ended", |r| {
            matches!(
                r,
                SessionRecord::Ended {
                    reason: EndReason::ClientClosed,
                    ..
                }
            )
        })
        .await;
    h.stop().await;
}

#[tokio::test]
async fn copy_in_and_out() {
    use futures_util::SinkExt;
    let h = Harness::start().await;
    let client = h.connect("write").await;
    client
        .batch_execute("create table c (id int, name text)")
        .await
        .unwrap();
    let sink = client.copy_in("copy c from stdin").await.unwrap();
    let mut sink = std::pin::pin!(sink);
    let mut data = String::new();
    for i in 0..5000 {
        data.push_str(&format!("{i}\tname number {i}\n"));
    }
    sink.send(bytes::Bytes::from(data.clone())).await.unwrap();
    assert_eq!(sink.as_mut().finish().await.unwrap(), 5000);
    let stream = client.copy_out("copy c to stdout").await.unwrap();
    let chunks: Vec<bytes::Bytes> = futures_util::TryStreamExt::try_collect(stream)
        .await
        .unwrap();
    let out: Vec<u8> = chunks.concat();
    assert_eq!(String::from_utf8(out).unwrap(), data);
    drop(client);
    h.authority
        .wait_for("Ended", |r| matches!(r, SessionRecord::Ended { .. }))
        .await;
    let outcomes: Vec<Outcome> = h
        .authority
        .statements()
        .iter()
        .map(|s| s.outcome.clone())
        .collect();
    assert_eq!(outcomes[1..], [Outcome::Rows(5000), Outcome::Rows(5000)]);
    h.stop().await;
}

#[tokio::test]
async fn cancel_request_reaches_the_upstream() {
    let h = Harness::start().await;
    let client = h.connect("write").await;
    cancel_reaches_the_upstream(&client).await;
    h.stop().await;
}

/// A CancelRequest sent while `pg_sleep(20)` runs ends it (57014) within seconds, and the
/// session goes on.
async fn cancel_reaches_the_upstream(client: &tokio_postgres::Client) {
    let token = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    });
    let started = std::time::Instant::now();
    let err = client
        .simple_query("select pg_sleep(20)")
        .await
        .unwrap_err();
    assert_eq!(db_error(&err).0, "57014", "query_canceled");
    assert!(started.elapsed() < Duration::from_secs(5));
    canceller.await.unwrap();
    assert_eq!(count_rows(client, "select 1").await, 1);
}

/// PostgreSQL's own Unix-domain socket for port 5432 (its first `unix_socket_directories`).
fn postgres_socket() -> String {
    let dirs = psql_admin("show unix_socket_directories");
    let dir = dirs.split(',').next().unwrap_or_default().trim();
    assert!(
        dir.starts_with('/'),
        "PostgreSQL at 127.0.0.1:5432 must also listen on a Unix-domain socket: unix_socket_directories = `{dirs}`"
    );
    format!("{dir}/.s.PGSQL.5432")
}

#[tokio::test]
async fn an_upstream_through_a_unix_domain_socket_relays_and_cancels() {
    let socket = postgres_socket();
    let h = Harness::start_with(|s| {
        for target in s.upstreams.values_mut() {
            target.address = socket.clone();
        }
    })
    .await;
    let client = h.connect("write").await;
    // PostgreSQL shows no client address for a session on its Unix-domain socket.
    let row = client
        .query_one(
            "select client_addr is null, application_name from pg_stat_activity where pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert!(
        row.get::<_, bool>(0),
        "the upstream session is on the socket"
    );
    assert_eq!(row.get::<_, &str>(1), format!("latch:{GRANT}:alice"));
    // A CancelRequest reaches the upstream the same way.
    cancel_reaches_the_upstream(&client).await;
    h.stop().await;
}

#[tokio::test]
async fn a_missing_unix_domain_socket_is_a_clear_refusal() {
    let h = Harness::start_with(|s| {
        for target in s.upstreams.values_mut() {
            target.address = "/nonexistent/.s.PGSQL.5432".to_owned();
        }
    })
    .await;
    let err = h.try_connect(&h.conn_str("write")).await.unwrap_err();
    let (code, message) = db_error(&err);
    assert_eq!(code, "08006", "{message}");
    assert!(message.contains("/nonexistent/.s.PGSQL.5432"), "{message}");
    h.stop().await;
}

#[tokio::test]
async fn application_name_is_visible_upstream() {
    let h = Harness::start().await;
    let conn = format!("{} application_name=myapp", h.conn_str("write"));
    let client = h.try_connect(&conn).await.unwrap();
    let row = client
        .query_one(
            "select application_name from pg_stat_activity where pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), format!("latch:{GRANT}:alice:myapp"));
    let seen = psql_admin(&format!(
        "select count(*) from pg_stat_activity where application_name = 'latch:{GRANT}:alice:myapp' and datname = '{}'",
        h.db.name
    ));
    assert_eq!(seen, "1");
    h.stop().await;
}

#[tokio::test]
async fn strict_recording_records_before_forwarding() {
    let h = Harness::start().await;
    let client = h.connect("strict").await;
    client.simple_query("select 1").await.unwrap();
    h.authority
        .wait_for("outcome", |r| {
            matches!(
                r,
                SessionRecord::StatementOutcome {
                    seq: 1,
                    outcome: Outcome::Rows(1),
                    ..
                }
            )
        })
        .await;
    let pending = h.authority.statements();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].outcome, Outcome::Pending);
    assert_eq!(pending[0].text, "select 1");

    // The ledger fails: the next statement is not run, the session ends.
    h.authority
        .fail_record
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let err = client
        .simple_query("create table should_not_exist (x int)")
        .await
        .unwrap_err();
    assert_eq!(db_error(&err).0, "58000");
    h.authority
        .fail_record
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let ended = h
        .authority
        .wait_for("Ended", |r| matches!(r, SessionRecord::Ended { .. }))
        .await;
    assert!(matches!(
        ended,
        SessionRecord::Ended {
            reason: EndReason::RecordingFailed,
            ..
        }
    ));
    let direct = tokio::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            &h.db.name,
            "-XAtc",
            "select to_regclass('should_not_exist') is null",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&direct.stdout).trim(), "t");
    h.stop().await;
}

/// The JDBC driver most Java applications use (pgjdbc, from Debian's `libpostgresql-jdbc-java`,
/// which CI installs): SCRAM over TLS, named server-side prepared statements, a batch in a
/// transaction and a rollback, every statement recorded as the extended protocol.
#[tokio::test]
async fn jdbc_runs_through_the_gateway() {
    const DRIVER: &str = "/usr/share/java/postgresql.jar";
    assert!(
        std::path::Path::new(DRIVER).exists(),
        "{DRIVER} is missing: apt-get install libpostgresql-jdbc-java"
    );
    let (tls, end_point) = crate::auth::tls_with_end_point();
    let h = Harness::start_with(|s| {
        s.client_auth = latch_gateway::ClientAuth::ScramSha256;
        s.tls = Some(tls);
        s.tls_end_point = Some(end_point);
    })
    .await;
    let source = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/jdbc/JdbcThroughLatch.java"
    );
    let url = format!("jdbc:postgresql://127.0.0.1:{}/res:write", h.addr.port());
    let java = move |password: &str| {
        std::process::Command::new("java")
            .args(["-cp", DRIVER, source, &url, "alice", password])
            .output()
            .unwrap()
    };
    let (ok, wrong) = tokio::task::spawn_blocking(move || (java(CREDENTIAL), java("nope")))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["sum=30", "rows=3 total=6"]
    );
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&wrong.stdout).starts_with("sqlstate=28P01"),
        "{}",
        String::from_utf8_lossy(&wrong.stdout)
    );

    h.authority
        .wait_for("Ended", |r| matches!(r, SessionRecord::Ended { .. }))
        .await;
    let auth: Vec<&str> = h
        .authority
        .records()
        .iter()
        .filter_map(|r| match r {
            SessionRecord::Started { auth, .. } => Some(*auth),
            _ => None,
        })
        .collect();
    // pgjdbc 42.5 cannot bind (its channelBinding came later): offered SCRAM-SHA-256-PLUS
    // too, it must still log in, with plain SCRAM ("n"), and that is what gets recorded.
    assert_eq!(auth, ["scram-sha-256"]);
    let statements = h.authority.statements();
    let selects: Vec<_> = statements
        .iter()
        .filter(|s| s.text == "select $1::int * 2")
        .collect();
    assert_eq!(selects.len(), 5, "{statements:#?}");
    assert!(
        selects
            .iter()
            .all(|s| s.protocol == Protocol::Extended && s.outcome == Outcome::Rows(1))
    );
    let inserts: Vec<_> = statements
        .iter()
        .filter(|s| s.text.starts_with("insert into jdbc_t"))
        .collect();
    assert_eq!(inserts.len(), 4, "{statements:#?}");
    assert!(inserts.iter().all(|s| s.class == "write"));
    assert!(
        statements.iter().any(|s| s.text == "ROLLBACK"),
        "{statements:#?}"
    );
    h.stop().await;
}
