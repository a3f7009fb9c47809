//! Client authentication, grant refusals, TLS, and upstream authentication methods.

use std::collections::HashMap;
use std::sync::Arc;

use latch_gateway::{
    ClientAuth, Enforcement, RecordingMode, SessionRecord, UpstreamRole, UpstreamTarget,
};
use latch_pgwire::scram::{ScramSecret, ScramServer};
use latch_pgwire::{FrontendMessage, Startup, decode_frontend, decode_startup, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zeroize::Zeroizing;

use crate::support::*;

#[tokio::test]
async fn wrong_credential_is_refused() {
    let h = Harness::start().await;
    let conn = h
        .conn_str("write")
        .replace("password=cred", "password=nope");
    let err = h.try_connect(&conn).await.unwrap_err();
    assert_eq!(
        db_error(&err),
        (
            "28P01".to_owned(),
            "invalid latch credential for `alice`".to_owned()
        )
    );
    h.stop().await;
}

#[tokio::test]
async fn user_without_grant_is_told_how_to_get_one() {
    let h = Harness::start().await;
    let conn = h.conn_str("read").replace("user=alice", "user=bob");
    let err = h.try_connect(&conn).await.unwrap_err();
    let (code, message) = db_error(&err);
    assert_eq!(code, "28000");
    assert!(
        message.contains("latch request res --role read"),
        "{message}"
    );
    h.stop().await;
}

#[tokio::test]
async fn unknown_resource_and_role_are_named() {
    let h = Harness::start().await;
    let err = h
        .try_connect(
            &h.conn_str("read")
                .replace("dbname=res:read", "dbname=payments"),
        )
        .await
        .unwrap_err();
    assert_eq!(
        db_error(&err),
        (
            "3D000".to_owned(),
            "unknown resource `payments` (resources: res)".to_owned()
        )
    );
    let err = h.try_connect(&h.conn_str("wirte")).await.unwrap_err();
    assert_eq!(
        db_error(&err),
        (
            "28000".to_owned(),
            "unknown role `wirte` for resource `res` (roles: read, strict, write)".to_owned()
        )
    );
    h.stop().await;
}

#[tokio::test]
async fn upstream_unreachable_is_a_clear_fatal() {
    let h = Harness::start_with(|s| {
        let target = s.upstreams.get_mut("res").unwrap();
        target.address = "127.0.0.1:1".to_owned();
    })
    .await;
    let err = h.try_connect(&h.conn_str("write")).await.unwrap_err();
    let (code, message) = db_error(&err);
    assert_eq!(code, "08006");
    assert!(
        message.starts_with("cannot reach `res` at 127.0.0.1:1: "),
        "{message}"
    );
    h.stop().await;
}

pub(crate) fn tls_config() -> Arc<rustls::ServerConfig> {
    tls_with_end_point().0
}

/// A self-signed TLS config and its certificate's `tls-server-end-point` data.
pub(crate) fn tls_with_end_point() -> (Arc<rustls::ServerConfig>, Vec<u8>) {
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let end_point = latch_pgwire::scram::tls_server_end_point(cert.der()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key_pair.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], key)
    .unwrap();
    (Arc::new(config), end_point)
}

#[tokio::test]
async fn tls_clients_are_served_over_tls() {
    let h = Harness::start_with(|s| s.tls = Some(tls_config())).await;
    assert_eq!(h.psql("require", "select 'over tls'").await, "over tls");
    let started = h
        .authority
        .wait_for("Started", |r| matches!(r, SessionRecord::Started { .. }))
        .await;
    assert!(matches!(started, SessionRecord::Started { tls: true, .. }));
    // Without TLS configured, psql's sslmode=require is refused by the client itself ('N').
    h.stop().await;
}

/// SCRAM over TLS with libpq (psql) and tokio-postgres: the proof is matched among the
/// user's credentials; a wrong credential, and a user with none, reach the authority, which
/// refuses them with its own reasons.
#[tokio::test]
async fn clients_can_authenticate_with_scram() {
    let (tls, end_point) = tls_with_end_point();
    let h = Harness::start_with(|s| {
        s.client_auth = ClientAuth::ScramSha256;
        s.tls = Some(tls);
        s.tls_end_point = Some(end_point);
    })
    .await;
    let client = h.connect("write").await;
    assert_eq!(count_rows(&client, "select 1").await, 1);
    // libpq binds the login to the certificate when the gateway offers it over TLS.
    assert_eq!(
        h.psql("require&channel_binding=require", "select 'scram over tls'")
            .await,
        "scram over tls"
    );

    let bad = h
        .conn_str("write")
        .replace("password=cred", "password=nope");
    let err = h.try_connect(&bad).await.unwrap_err();
    assert_eq!(
        db_error(&err),
        (
            "28P01".to_owned(),
            "invalid latch credential for `alice`".to_owned()
        )
    );
    let bob = h.conn_str("write").replace("user=alice", "user=bob");
    let (code, message) = db_error(&h.try_connect(&bob).await.unwrap_err());
    assert_eq!(code, "28000");
    assert!(message.contains("latch request"), "{message}");
    h.stop().await;
}

/// A fake upstream that authenticates with `method` ("scram" or "md5") for password `upw`,
/// then answers every Query with `SELECT 0`. Returns its address and the startup parameters
/// it saw.
async fn fake_upstream(
    method: &'static str,
) -> (
    String,
    tokio::sync::oneshot::Receiver<Vec<(String, String)>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let params = loop {
            read_more(&mut s, &mut buf).await;
            if let Some((Startup::Startup(p), n)) = decode_startup(&buf, 10_000).unwrap() {
                let params: Vec<(String, String)> = p
                    .iter()
                    .map(|(a, b)| (a.to_owned(), b.to_owned()))
                    .collect();
                buf.drain(..n);
                break params;
            }
        };
        let user = params.iter().find(|(n, _)| n == "user").unwrap().1.clone();
        tx.send(params).unwrap();
        let mut out = Vec::new();
        match method {
            "scram" => {
                encode::authentication_sasl(&mut out, &["SCRAM-SHA-256"]);
                s.write_all(&out).await.unwrap();
                let body = next_auth(&mut s, &mut buf).await;
                let (_, data) = latch_pgwire::frontend::sasl_initial_response(&body).unwrap();
                let mut server = ScramServer::new(ScramSecret::derive_random_salt("upw", 4096));
                let first = server.handle_client_first(data.unwrap()).unwrap();
                out.clear();
                encode::authentication_sasl_continue(&mut out, &first);
                s.write_all(&out).await.unwrap();
                let body = next_auth(&mut s, &mut buf).await;
                let fin = server.handle_client_final(&body).unwrap();
                out.clear();
                encode::authentication_sasl_final(&mut out, &fin);
            }
            _ => {
                encode::authentication_md5_password(&mut out, [7, 7, 7, 7]);
                s.write_all(&out).await.unwrap();
                let body = next_auth(&mut s, &mut buf).await;
                let pw = latch_pgwire::frontend::password(&body).unwrap();
                assert_eq!(
                    pw,
                    latch_pgwire::md5::md5_password(&user, "upw", [7, 7, 7, 7])
                );
                out.clear();
            }
        }
        encode::authentication_ok(&mut out);
        encode::parameter_status(&mut out, "server_version", "15.0-fake");
        encode::backend_key_data(&mut out, 1, 2);
        encode::ready_for_query(&mut out, b'I');
        s.write_all(&out).await.unwrap();
        loop {
            let msg = loop {
                if let Some((m, n)) = decode_frontend(&buf, 1 << 20).unwrap() {
                    let tag = m.tag();
                    buf.drain(..n);
                    break tag;
                }
                if !read_more(&mut s, &mut buf).await {
                    return;
                }
            };
            if msg == b'Q' {
                out.clear();
                encode::command_complete(&mut out, "SELECT 0");
                encode::ready_for_query(&mut out, b'I');
                s.write_all(&out).await.unwrap();
            }
            if msg == b'X' {
                return;
            }
        }
    });
    (addr, rx)
}

async fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    let n = s.read(&mut chunk).await.unwrap_or(0);
    buf.extend_from_slice(&chunk[..n]);
    n > 0
}

async fn next_auth(s: &mut TcpStream, buf: &mut Vec<u8>) -> Vec<u8> {
    loop {
        if let Some((FrontendMessage::AuthResponse(body), n)) =
            decode_frontend(buf, 1 << 20).unwrap()
        {
            let body = body.to_vec();
            buf.drain(..n);
            return body;
        }
        assert!(read_more(s, buf).await, "gateway closed during auth");
    }
}

async fn through_fake_upstream(method: &'static str) {
    let (address, params) = fake_upstream(method).await;
    let h = Harness::start_with(|s| {
        let mut roles = HashMap::new();
        roles.insert(
            "write".to_owned(),
            UpstreamRole {
                scram_keys: Default::default(),
                username: "svc_writer".to_owned(),
                password: Some(Zeroizing::new("upw".to_owned())),
                enforcement: Enforcement::Audit,
                recording: RecordingMode::Buffered,
            },
        );
        s.upstreams.insert(
            "fake".to_owned(),
            UpstreamTarget {
                address,
                database: Some("app".to_owned()),
                tls: None,
                roles,
            },
        );
    })
    .await;
    let conn = h.conn_str("write").replace(
        "dbname=res:write",
        "dbname=fake:write application_name=psql",
    );
    let client = h.try_connect(&conn).await.unwrap();
    let msgs = client.simple_query("select whatever").await.unwrap();
    assert_eq!(msgs.len(), 1);
    let params = params.await.unwrap();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("user"), Some("svc_writer"));
    assert_eq!(get("database"), Some("app"));
    assert_eq!(
        get("application_name"),
        Some(format!("latch:{GRANT}:alice:psql").as_str())
    );
    h.stop().await;
}

/// pg_hba.conf here trusts 127.0.0.1, so a real PostgreSQL never asks for a password: the
/// gateway's SCRAM and md5 clients are tested against a fake upstream using latch-pgwire's
/// server side.
#[tokio::test]
async fn upstream_scram_authentication() {
    through_fake_upstream("scram").await;
}

#[tokio::test]
async fn upstream_md5_authentication() {
    through_fake_upstream("md5").await;
}
