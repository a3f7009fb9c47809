//! Bad input ends only its own session; the listener keeps serving.

use std::time::Duration;

use latch_gateway::{EndReason, SessionRecord};

use crate::support::*;

async fn still_serving(h: &Harness) {
    let client = h.connect("write").await;
    assert_eq!(count_rows(&client, "select 1").await, 1);
}

#[tokio::test]
async fn malformed_startup_packet_is_refused() {
    let h = Harness::start().await;
    let mut raw = Raw::connect(h.addr).await;
    raw.send(&[0, 0, 0, 9, 0, 2, 0, 0, 0]).await;
    let (severity, code, message) = raw.expect_error().await;
    assert_eq!((severity.as_str(), code.as_str()), ("FATAL", "08P01"));
    assert!(
        message.starts_with("unsupported frontend protocol 2.0"),
        "{message}"
    );
    assert!(raw.closed().await);

    let mut raw = Raw::connect(h.addr).await;
    raw.send(&[0x7f, 0xff, 0xff, 0xff]).await;
    let (_, code, message) = raw.expect_error().await;
    assert_eq!(code, "54000");
    assert!(
        message.contains("exceeds the limit of 10000 bytes"),
        "{message}"
    );
    still_serving(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn oversized_message_ends_the_session() {
    let h = Harness::start_with(|s| s.max_message_bytes = 1024).await;
    let client = h.connect("write").await;
    let long = format!("select '{}'", "x".repeat(4096));
    let err = client.simple_query(&long).await.unwrap_err();
    let (code, message) = db_error(&err);
    assert_eq!(code, "54000");
    assert_eq!(
        message,
        "message `Q` of 4111 bytes exceeds the limit of 1024 bytes"
    );
    h.authority
        .wait_for("Ended", |r| {
            matches!(
                r,
                SessionRecord::Ended {
                    reason: EndReason::ProtocolError(_),
                    ..
                }
            )
        })
        .await;
    still_serving(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn client_disconnecting_mid_message_ends_only_its_session() {
    let h = Harness::start().await;
    let mut raw = Raw::login(h.addr, "res:write").await;
    // Half a Query: header announces 100 bytes, 10 arrive.
    raw.send(&[b'Q', 0, 0, 0, 100, b's', b'e', b'l', b'e', b'c'])
        .await;
    drop(raw);
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
    eventually("session gone", || h.gateway.sessions().is_empty()).await;
    still_serving(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn garbage_after_login_is_a_protocol_error() {
    let h = Harness::start().await;
    let mut raw = Raw::login(h.addr, "res:write").await;
    raw.send(&[b'Q', 0xff, 0xff, 0xff, 0xf0]).await;
    let (severity, code, _) = raw.expect_error().await;
    assert_eq!((severity.as_str(), code.as_str()), ("FATAL", "08P01"));
    assert!(raw.closed().await);
    still_serving(&h).await;
    h.stop().await;
}

#[tokio::test]
async fn silent_client_does_not_hold_the_listener() {
    let h = Harness::start().await;
    let _silent = Raw::connect(h.addr).await;
    tokio::time::timeout(Duration::from_secs(5), still_serving(&h))
        .await
        .unwrap();
    h.stop().await;
}
