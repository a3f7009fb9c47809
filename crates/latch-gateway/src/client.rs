//! The client side of a connection until it is authenticated: SSLRequest and TLS, the startup
//! packet, CancelRequest, and the password exchange. Errors are written to the client here (as
//! FATAL) before they are returned.

use std::net::SocketAddr;

use latch_pgwire::scram::ScramServer;
use latch_pgwire::{FrontendMessage, Startup, decode_frontend, decode_startup, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zeroize::{Zeroize, Zeroizing};

use crate::authority::{Authority, PresentedCredential};
use crate::error::SessionError;
use crate::settings::{ClientAuth, GatewaySettings};
use crate::stream::Stream;

/// Startup parameters passed on to the upstream (case-insensitive names). Others are dropped:
/// `options` could carry `-c` settings that lift a read-only session, `replication` would open
/// a replication connection.
const FORWARDED_PARAMS: &[&str] = &[
    "client_encoding",
    "datestyle",
    "timezone",
    "extra_float_digits",
    "intervalstyle",
];

/// Largest authentication message accepted from a client.
const MAX_AUTH_MESSAGE: usize = 10_000;

pub(crate) enum Accepted {
    Session(Box<ClientHello>),
    Cancel { process_id: i32, secret_key: i32 },
}

/// An authenticated-by-credential client (the grant is not checked yet).
pub(crate) struct ClientHello {
    pub(crate) stream: Stream,
    pub(crate) user: String,
    pub(crate) resource: String,
    pub(crate) role: Option<String>,
    pub(crate) application_name: Option<String>,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) credential: PresentedCredential,
    /// Bytes the client sent after its password (normally none).
    pub(crate) leftover: Vec<u8>,
}

/// Writes a FATAL for `err` to the client (best effort) and returns `err`.
pub(crate) async fn fail(stream: &mut Stream, err: SessionError) -> SessionError {
    let mut out = Vec::new();
    err.encode(&mut out);
    if !out.is_empty() {
        let write = async {
            stream.write_all(&out).await?;
            stream.flush().await
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), write).await;
    }
    err
}

pub(crate) async fn send(stream: &mut Stream, bytes: &[u8]) -> Result<(), SessionError> {
    stream
        .write_all(bytes)
        .await
        .map_err(SessionError::ClientIo)?;
    stream.flush().await.map_err(SessionError::ClientIo)
}

async fn fill(stream: &mut Stream, buf: &mut Vec<u8>) -> Result<(), SessionError> {
    buf.reserve(1024);
    match stream.read_buf(buf).await {
        Ok(0) => Err(SessionError::ClientGone),
        Ok(_) => Ok(()),
        Err(e) => Err(SessionError::ClientIo(e)),
    }
}

/// Runs the startup phase; on error the client has been told.
pub(crate) async fn accept(
    tcp: TcpStream,
    peer: SocketAddr,
    settings: &GatewaySettings,
    authority: &dyn Authority,
) -> Result<Accepted, SessionError> {
    let mut stream = Stream::Tcp(tcp);
    match accept_inner(&mut stream, peer, settings, authority).await {
        Ok(a) => Ok(a),
        Err(e) => Err(fail(&mut stream, e).await),
    }
}

async fn accept_inner(
    stream: &mut Stream,
    peer: SocketAddr,
    settings: &GatewaySettings,
    authority: &dyn Authority,
) -> Result<Accepted, SessionError> {
    let mut buf = Vec::with_capacity(512);
    loop {
        let (msg, used) = loop {
            if let Some(found) = decode_startup(&buf, latch_pgwire::MAX_STARTUP_LEN)? {
                break found;
            }
            fill(stream, &mut buf).await?;
        };
        match msg {
            Startup::SslRequest | Startup::GssEncRequest if used != buf.len() => {
                // Bytes after the request would be read as if they came over TLS
                // (CVE-2021-23214): refuse.
                return Err(SessionError::Protocol(
                    latch_pgwire::ProtocolError::Malformed {
                        tag: latch_pgwire::Tag::STARTUP,
                        what: "data after an encryption request",
                    },
                ));
            }
            Startup::SslRequest => {
                buf.clear();
                match (&settings.tls, &*stream) {
                    (Some(cfg), Stream::Tcp(_)) => {
                        send(stream, b"S").await?;
                        let Stream::Tcp(tcp) = std::mem::replace(stream, Stream::Closed) else {
                            return Err(SessionError::ClientGone);
                        };
                        let acceptor = tokio_rustls::TlsAcceptor::from(cfg.clone());
                        let tls = acceptor
                            .accept(tcp)
                            .await
                            .map_err(SessionError::TlsHandshake)?;
                        *stream = Stream::ServerTls(Box::new(tls));
                    }
                    _ => send(stream, b"N").await?,
                }
            }
            Startup::GssEncRequest => {
                buf.clear();
                send(stream, b"N").await?;
            }
            Startup::Cancel {
                process_id,
                secret_key,
            } => {
                return Ok(Accepted::Cancel {
                    process_id,
                    secret_key,
                });
            }
            Startup::Startup(params) => {
                let tls = stream.is_tls();
                if !tls && !peer.ip().is_loopback() && !settings.allow_plaintext {
                    return Err(if settings.tls.is_some() {
                        SessionError::PlaintextRefused
                    } else {
                        SessionError::TlsUnavailable
                    });
                }
                let user = params.get("user").filter(|u| !u.is_empty());
                let user = user.ok_or(SessionError::MissingUser)?.to_owned();
                let database = params
                    .get("database")
                    .filter(|d| !d.is_empty())
                    .unwrap_or(&user);
                let (resource, role) = match database.split_once(':') {
                    Some((r, role)) => (r.to_owned(), Some(role.to_owned())),
                    None => (database.to_owned(), None),
                };
                let application_name = params
                    .get("application_name")
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned);
                let forwarded = params
                    .iter()
                    .filter(|(n, _)| FORWARDED_PARAMS.iter().any(|f| f.eq_ignore_ascii_case(n)))
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect();
                buf.drain(..used);
                check_resource(settings, &resource, role.as_deref())?;
                let credential = match settings.client_auth {
                    ClientAuth::Cleartext => cleartext(stream, &mut buf).await?,
                    ClientAuth::ScramSha256 => {
                        let end_point = &settings.tls_end_point;
                        scram(stream, &mut buf, &user, &resource, end_point, authority).await?
                    }
                };
                return Ok(Accepted::Session(Box::new(ClientHello {
                    stream: std::mem::replace(stream, Stream::Closed),
                    user,
                    resource,
                    role,
                    application_name,
                    params: forwarded,
                    credential,
                    leftover: buf,
                })));
            }
        }
    }
}

fn check_resource(
    settings: &GatewaySettings,
    resource: &str,
    role: Option<&str>,
) -> Result<(), SessionError> {
    let Some(target) = settings.upstreams.get(resource) else {
        let mut known: Vec<&str> = settings.upstreams.keys().map(String::as_str).collect();
        known.sort_unstable();
        return Err(SessionError::UnknownResource {
            resource: resource.to_owned(),
            known: known.join(", "),
        });
    };
    if let Some(role) = role
        && !target.roles.contains_key(role)
    {
        let mut known: Vec<&str> = target.roles.keys().map(String::as_str).collect();
        known.sort_unstable();
        return Err(SessionError::UnknownRole {
            role: role.to_owned(),
            resource: resource.to_owned(),
            known: known.join(", "),
        });
    }
    Ok(())
}

/// Reads one `p` message and returns its body (copied, to be zeroized by the caller).
async fn read_auth_response(
    stream: &mut Stream,
    buf: &mut Vec<u8>,
) -> Result<Zeroizing<Vec<u8>>, SessionError> {
    loop {
        if let Some((msg, used)) = decode_frontend(buf, MAX_AUTH_MESSAGE)? {
            let body = match msg {
                FrontendMessage::AuthResponse(body) => Zeroizing::new(body.to_vec()),
                other => {
                    return Err(SessionError::ExpectedPassword(latch_pgwire::Tag(
                        other.tag(),
                    )));
                }
            };
            if let Some(head) = buf.get_mut(..used) {
                head.zeroize();
            }
            buf.drain(..used);
            return Ok(body);
        }
        fill(stream, buf).await?;
    }
}

async fn cleartext(
    stream: &mut Stream,
    buf: &mut Vec<u8>,
) -> Result<PresentedCredential, SessionError> {
    let mut out = Vec::new();
    encode::authentication_cleartext_password(&mut out);
    send(stream, &out).await?;
    let body = read_auth_response(stream, buf).await?;
    Ok(PresentedCredential::Secret(Zeroizing::new(
        latch_pgwire::frontend::password(&body)?.to_owned(),
    )))
}

async fn scram(
    stream: &mut Stream,
    buf: &mut Vec<u8>,
    user: &str,
    resource: &str,
    tls_end_point: &Option<Vec<u8>>,
    authority: &dyn Authority,
) -> Result<PresentedCredential, SessionError> {
    // An unknown user gets the same exchange with nothing to match, so both fail alike.
    let verifiers = authority
        .scram_verifiers(user, resource)
        .await
        .map_err(SessionError::Refused)?;
    let keys = verifiers
        .candidates
        .iter()
        .map(|c| (c.stored_key, c.server_key))
        .collect();
    // Over TLS, SCRAM-SHA-256-PLUS is offered too: the proof then covers the certificate the
    // client saw, so a man in the middle cannot relay the login (`sslmode=require` does not
    // check the certificate; libpq binds by default when offered).
    let end_point = stream.is_tls().then(|| tls_end_point.clone()).flatten();
    let mut server = ScramServer::any_of(verifiers.salt, verifiers.iterations, keys)
        .with_channel_binding(end_point);
    let mut out = Vec::new();
    encode::authentication_sasl(&mut out, server.mechanisms());
    send(stream, &out).await?;
    let body = read_auth_response(stream, buf).await?;
    let (mechanism, data) = latch_pgwire::frontend::sasl_initial_response(&body)?;
    server
        .choose_mechanism(mechanism)
        .map_err(SessionError::Scram)?;
    let first = server
        .handle_client_first(data.unwrap_or_default())
        .map_err(SessionError::Scram)?;
    out.clear();
    encode::authentication_sasl_continue(&mut out, &first);
    send(stream, &out).await?;
    let body = match read_auth_response(stream, buf).await {
        Ok(body) => body,
        Err(err) => {
            // A client that refuses the count hangs up here with an error of its own (pgjdbc's
            // says only "Something unusual has occurred"): the operator learns why from latch.
            if verifiers.iterations < latch_pgwire::scram::DEFAULT_ITERATIONS {
                tracing::warn!(
                    user,
                    resource,
                    %err,
                    "the client left the SCRAM login once told {} iterations; some clients \
                     (pgjdbc) refuse fewer than {}: raise `gateway.scram_iterations` if they \
                     connect through this gateway",
                    verifiers.iterations,
                    latch_pgwire::scram::DEFAULT_ITERATIONS
                );
            }
            return Err(err);
        }
    };
    // A proof that matches nothing goes to the authority like a wrong cleartext credential,
    // which refuses it with its reasons and records the refusal.
    let fin = match server.handle_client_final(&body) {
        Ok(fin) => fin,
        Err(latch_pgwire::scram::ScramError::InvalidProof) => {
            return Ok(PresentedCredential::ScramFailed);
        }
        Err(other) => return Err(SessionError::Scram(other)),
    };
    let Some(candidate) = server.matched().and_then(|i| verifiers.candidates.get(i)) else {
        return Ok(PresentedCredential::ScramFailed);
    };
    let credential_id = candidate.credential_id.clone();
    out.clear();
    encode::authentication_sasl_final(&mut out, &fin);
    send(stream, &out).await?;
    Ok(PresentedCredential::ScramProven {
        credential_id,
        bound: server.is_bound(),
    })
}
