//! Read-only roles: writes are refused without being forwarded, in both protocols, and the
//! session stays usable.

use latch_gateway::{Outcome, SessionRecord};

use crate::support::*;

#[tokio::test]
async fn read_only_role_refuses_writes_in_simple_protocol() {
    let h = Harness::start().await;
    let setup = h.connect("write").await;
    setup
        .batch_execute("create table acct (id int); insert into acct values (1)")
        .await
        .unwrap();
    let client = h.connect("read").await;
    let err = client.simple_query("delete from acct").await.unwrap_err();
    let (code, message) = db_error(&err);
    assert_eq!(code, "42501");
    assert_eq!(
        message,
        format!(
            "permission denied by latch: role `read` on `res` is read-only; `DELETE` is a write statement (grant {GRANT})"
        )
    );
    // Usable afterwards, also inside a transaction, with the right status.
    assert_eq!(count_rows(&client, "select count(*) from acct").await, 1);
    client.batch_execute("begin").await.unwrap();
    let err = client
        .simple_query("insert into acct values (2)")
        .await
        .unwrap_err();
    assert_eq!(db_error(&err).0, "42501");
    let rows = client
        .query("select count(*) from acct", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 1);
    client.batch_execute("commit").await.unwrap();
    // Upstream defence in depth: the session itself is read-only.
    let rows = client
        .query("show default_transaction_read_only", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, &str>(0), "on");
    let still_one = setup
        .query_one("select count(*) from acct", &[])
        .await
        .unwrap();
    assert_eq!(still_one.get::<_, i64>(0), 1);
    drop(client);
    drop(setup);
    let refused: Vec<_> = h
        .authority
        .statements()
        .into_iter()
        .filter(|s| matches!(s.outcome, Outcome::Refused(_)))
        .map(|s| (s.text, s.class))
        .collect();
    assert_eq!(
        refused,
        [
            ("delete from acct".to_owned(), "write"),
            ("insert into acct values (2)".to_owned(), "write")
        ]
    );
    h.stop().await;
}

#[tokio::test]
async fn read_only_role_refuses_writes_in_extended_protocol() {
    let h = Harness::start().await;
    let setup = h.connect("write").await;
    setup
        .batch_execute("create table acct (id int)")
        .await
        .unwrap();
    let client = h.connect("read").await;
    let err = client
        .prepare("insert into acct values ($1)")
        .await
        .unwrap_err();
    assert_eq!(db_error(&err).0, "42501");
    let err = client
        .execute("update acct set id = $1", &[&5i32])
        .await
        .unwrap_err();
    assert_eq!(db_error(&err).0, "42501");
    // Reads work before and after; so does a pipeline mixing both.
    let rows = client
        .query("select count(*) from acct where id > $1", &[&0i32])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 0);
    let (a, b) = tokio::join!(
        client.query("select 1::int", &[]),
        client.query("delete from acct where id = $1", &[&1i32]),
    );
    assert_eq!(a.unwrap()[0].get::<_, i32>(0), 1);
    assert_eq!(db_error(&b.unwrap_err()).0, "42501");
    let rows = client.query("select 2::int", &[]).await.unwrap();
    assert_eq!(rows[0].get::<_, i32>(0), 2);
    drop(client);
    h.authority
        .wait_for("3 refusals", |_| {
            h.authority
                .statements()
                .iter()
                .filter(|s| matches!(s.outcome, Outcome::Refused(_)))
                .count()
                == 3
        })
        .await;
    assert!(!h.authority.records().iter().any(|r| matches!(
        r,
        SessionRecord::Ended {
            reason: latch_gateway::EndReason::ProtocolError(_),
            ..
        }
    )));
    h.stop().await;
}
