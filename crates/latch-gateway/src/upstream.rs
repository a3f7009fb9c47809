//! The upstream side: connect (TCP with TLS optional, or a Unix-domain socket), start up as the
//! role's login, authenticate (trust, cleartext, md5, SCRAM-SHA-256), collect ParameterStatus
//! and BackendKeyData; and CancelRequests toward the upstream.

use std::path::Path;
use std::time::Duration;

use latch_pgwire::scram::{SCRAM_SHA_256, ScramClient};
use latch_pgwire::{Authentication, BackendMessage, decode_backend, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use crate::error::SessionError;
use crate::registry::CancelTarget;
use crate::settings::{Enforcement, UpstreamRole, UpstreamTarget};
use crate::stream::Stream;

/// Largest message accepted from an upstream during setup.
const MAX_SETUP_MESSAGE: usize = 1 << 20;

/// A ready upstream session.
pub(crate) struct Upstream {
    pub(crate) stream: Stream,
    pub(crate) process_id: i32,
    pub(crate) secret_key: i32,
    /// The upstream's ParameterStatus messages, raw, to forward to the client.
    pub(crate) parameter_status: Vec<u8>,
    /// Transaction status of the final ReadyForQuery.
    pub(crate) status: u8,
    /// Bytes after the final ReadyForQuery (normally none).
    pub(crate) leftover: Vec<u8>,
}

pub(crate) struct UpstreamRequest<'a> {
    pub(crate) resource: &'a str,
    pub(crate) target: &'a UpstreamTarget,
    pub(crate) role: &'a UpstreamRole,
    pub(crate) application_name: &'a str,
    pub(crate) client_params: &'a [(String, String)],
}

pub(crate) async fn connect(req: &UpstreamRequest<'_>) -> Result<Upstream, SessionError> {
    let unreachable = |cause: String| SessionError::UpstreamUnreachable {
        resource: req.resource.to_owned(),
        address: req.target.address.clone(),
        cause,
    };
    let setup = |cause: String| SessionError::UpstreamSetup {
        resource: req.resource.to_owned(),
        cause,
    };
    let mut stream = match (&req.target.tls, socket_path(&req.target.address)) {
        (None, Some(path)) => Stream::Unix(
            UnixStream::connect(path)
                .await
                .map_err(|e| unreachable(e.to_string()))?,
        ),
        (Some(_), Some(_)) => {
            return Err(setup(
                "TLS is configured toward a Unix-domain socket, where PostgreSQL offers none"
                    .to_owned(),
            ));
        }
        (None, None) => Stream::Tcp(
            tcp_connect(&req.target.address)
                .await
                .map_err(|e| unreachable(e.to_string()))?,
        ),
        (Some(cfg), None) => {
            let mut tcp = tcp_connect(&req.target.address)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let mut out = Vec::new();
            encode::ssl_request(&mut out);
            tcp.write_all(&out)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let answer = tcp
                .read_u8()
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            if answer != b'S' {
                return Err(setup(
                    "the upstream does not accept TLS, which latch is configured to require"
                        .to_owned(),
                ));
            }
            let host = host_of(&req.target.address);
            let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                .map_err(|e| setup(format!("invalid TLS server name `{host}`: {e}")))?;
            let tls = tokio_rustls::TlsConnector::from(cfg.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| setup(format!("TLS handshake failed: {e}")))?;
            Stream::ClientTls(Box::new(tls))
        }
    };

    let mut params: Vec<(&str, &str)> = vec![
        ("user", &req.role.username),
        ("application_name", req.application_name),
    ];
    if let Some(db) = &req.target.database {
        params.push(("database", db));
    }
    for (n, v) in req.client_params {
        params.push((n, v));
    }
    if req.role.enforcement == Enforcement::EnforceReadOnly {
        // Set in the startup packet, the value is the session's reset value: neither `RESET
        // ALL` nor `DISCARD ALL` nor `SET SESSION CHARACTERISTICS` undoes it.
        params.push(("default_transaction_read_only", "on"));
    }
    let mut out = Vec::new();
    encode::startup_message(&mut out, &params);
    write(&mut stream, &out)
        .await
        .map_err(|e| unreachable(e.to_string()))?;

    let mut buf = Vec::with_capacity(1024);
    let mut scram: Option<ScramClient> = None;
    let mut parameter_status = Vec::new();
    let mut keys = (0, 0);
    let password = || {
        req.role
            .password
            .as_ref()
            .map(|p| p.as_str())
            .ok_or_else(|| {
                setup(format!(
                    "the upstream asks for a password but none is configured for login `{}`",
                    req.role.username
                ))
            })
    };
    loop {
        let (msg, used) = loop {
            match decode_backend(&buf, MAX_SETUP_MESSAGE) {
                Ok(Some(found)) => break found,
                Ok(None) => {}
                Err(e) => return Err(setup(e.to_string())),
            }
            buf.reserve(4096);
            match stream.read_buf(&mut buf).await {
                Ok(0) => return Err(setup("the upstream closed the connection".to_owned())),
                Ok(_) => {}
                Err(e) => return Err(setup(e.to_string())),
            }
        };
        out.clear();
        match msg {
            BackendMessage::Authentication(auth) => match auth {
                Authentication::Ok => {}
                Authentication::CleartextPassword => {
                    encode::password_message(&mut out, password()?)
                }
                Authentication::Md5Password { salt } => encode::password_message(
                    &mut out,
                    &latch_pgwire::md5::md5_password(&req.role.username, password()?, salt),
                ),
                Authentication::Sasl { mechanisms } => {
                    if !mechanisms.contains(SCRAM_SHA_256) {
                        return Err(setup(format!(
                            "the upstream offers SASL mechanisms latch does not support ({})",
                            mechanisms.iter().collect::<Vec<_>>().join(", ")
                        )));
                    }
                    let client =
                        ScramClient::new(password()?).with_cache(req.role.scram_keys.clone());
                    encode::sasl_initial_response(&mut out, SCRAM_SHA_256, &client.client_first());
                    scram = Some(client);
                }
                Authentication::SaslContinue(data) => {
                    let client = scram
                        .as_mut()
                        .ok_or_else(|| setup("unexpected SASL continue".to_owned()))?;
                    let fin = client
                        .handle_server_first(data)
                        .map_err(|e| setup(e.to_string()))?;
                    encode::sasl_response(&mut out, &fin);
                }
                Authentication::SaslFinal(data) => {
                    let client = scram
                        .as_mut()
                        .ok_or_else(|| setup("unexpected SASL final".to_owned()))?;
                    client
                        .handle_server_final(data)
                        .map_err(|e| setup(e.to_string()))?;
                }
                Authentication::Other { code, .. } => {
                    return Err(setup(format!(
                        "the upstream asks for an authentication method latch does not support (code {code}); configure password, md5 or scram-sha-256 for login `{}`",
                        req.role.username
                    )));
                }
            },
            BackendMessage::ParameterStatus { .. } => {
                parameter_status.extend_from_slice(buf.get(..used).unwrap_or_default());
            }
            BackendMessage::BackendKeyData {
                process_id,
                secret_key,
            } => {
                keys = (process_id, secret_key);
            }
            BackendMessage::ErrorResponse(f) => {
                return Err(SessionError::UpstreamRefused {
                    resource: req.resource.to_owned(),
                    code: f.code.to_owned(),
                    message: f.message.to_owned(),
                });
            }
            BackendMessage::ReadyForQuery { status } => {
                buf.drain(..used);
                return Ok(Upstream {
                    stream,
                    process_id: keys.0,
                    secret_key: keys.1,
                    parameter_status,
                    status,
                    leftover: buf,
                });
            }
            _ => {}
        }
        buf.drain(..used);
        if !out.is_empty() {
            write(&mut stream, &out)
                .await
                .map_err(|e| setup(e.to_string()))?;
        }
    }
}

async fn write(stream: &mut Stream, bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// The socket file when `address` is one (an absolute path) rather than `host:port`: the rule
/// latch's config checks `upstream.address` by.
fn socket_path(address: &str) -> Option<&Path> {
    address.starts_with('/').then(|| Path::new(address))
}

async fn tcp_connect(address: &str) -> std::io::Result<TcpStream> {
    let tcp = TcpStream::connect(address).await?;
    // Statements and results go out as soon as they are whole: no Nagle delay.
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// `host` of `host:port` or `[v6]:port`.
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Sends a CancelRequest to the upstream (plain TCP, as libpq does unless the server requires
/// TLS for it, or its Unix-domain socket), giving up after `within`.
pub(crate) async fn send_cancel(target: &CancelTarget, within: Duration) {
    let send = async {
        let mut conn = match socket_path(&target.address) {
            Some(path) => Stream::Unix(UnixStream::connect(path).await?),
            None => Stream::Tcp(TcpStream::connect(&target.address).await?),
        };
        let mut out = Vec::with_capacity(16);
        encode::cancel_request(&mut out, target.process_id, target.secret_key);
        conn.write_all(&out).await?;
        // The server closes the connection once it has read the request.
        let mut sink = [0u8; 1];
        let _ = conn.read(&mut sink).await;
        Ok::<(), std::io::Error>(())
    };
    match tokio::time::timeout(within, send).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(address = %target.address, error = %e, "cancel request failed")
        }
        Err(_) => tracing::warn!(address = %target.address, "cancel request timed out"),
    }
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn host_of_addresses() {
        assert_eq!(host_of("db.internal:5432"), "db.internal");
        assert_eq!(host_of("[::1]:5432"), "::1");
        assert_eq!(host_of("localhost"), "localhost");
    }
}
