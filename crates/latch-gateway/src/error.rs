//! Everything that can end a session or refuse a statement, and **the one place** where each
//! is mapped to what the client sees (severity, SQLSTATE, message) and to the session's
//! [`EndReason`].

use latch_pgwire::{ErrorResponse, ProtocolError, Severity};

use crate::authority::{EndReason, Refusal};

/// Why a session ends (or never starts).
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
    #[error("latch requires TLS for connections from other hosts: connect with `sslmode=require`")]
    PlaintextRefused,
    #[error("latch requires TLS but the gateway has no certificate configured")]
    TlsUnavailable,
    #[error("TLS handshake failed: {0}")]
    TlsHandshake(std::io::Error),
    #[error("no user name in the startup packet: connect with a latch user name")]
    MissingUser,
    #[error("unknown resource `{resource}` (resources: {known})")]
    UnknownResource { resource: String, known: String },
    #[error("unknown role `{role}` for resource `{resource}` (roles: {known})")]
    UnknownRole {
        role: String,
        resource: String,
        known: String,
    },
    #[error("expected a password message, got message `{0}`")]
    ExpectedPassword(latch_pgwire::Tag),
    #[error("SCRAM authentication failed: {0}")]
    Scram(latch_pgwire::scram::ScramError),
    #[error("{}", .0.message)]
    Refused(Refusal),
    #[error("grant {grant_id} already ended: request access again with `latch request`")]
    GrantAlreadyEnded { grant_id: String },
    #[error("cannot reach `{resource}` at {address}: {cause}")]
    UpstreamUnreachable {
        resource: String,
        address: String,
        cause: String,
    },
    #[error("`{resource}` refused latch's connection: {message}")]
    UpstreamRefused {
        resource: String,
        code: String,
        message: String,
    },
    #[error("`{resource}` failed during connection setup: {cause}")]
    UpstreamSetup { resource: String, cause: String },
    #[error("latch could not record this session: {0}; nothing was executed")]
    RecordingFailed(String),
    #[error("access ended: {0}")]
    GrantEnded(String),
    #[error("latch is shutting down")]
    Shutdown,
    #[error("the client closed the connection")]
    ClientGone,
    #[error("the client connection failed: {0}")]
    ClientIo(std::io::Error),
    #[error("the upstream closed the connection")]
    UpstreamGone,
    #[error("the upstream connection failed: {0}")]
    UpstreamIo(std::io::Error),
}

impl SessionError {
    /// SQLSTATE shown to the client; `None` when the client cannot be told (it is gone).
    fn code(&self) -> Option<&str> {
        Some(match self {
            SessionError::Protocol(ProtocolError::TooLarge { .. }) => "54000",
            SessionError::Protocol(_) => "08P01",
            SessionError::PlaintextRefused
            | SessionError::TlsUnavailable
            | SessionError::MissingUser
            | SessionError::UnknownRole { .. }
            | SessionError::GrantAlreadyEnded { .. } => "28000",
            SessionError::TlsHandshake(_)
            | SessionError::ClientGone
            | SessionError::ClientIo(_) => {
                return None;
            }
            SessionError::UnknownResource { .. } => "3D000",
            SessionError::ExpectedPassword(_) => "08P01",
            SessionError::Scram(_) => "28P01",
            SessionError::Refused(r) => &r.code,
            SessionError::UpstreamUnreachable { .. } | SessionError::UpstreamSetup { .. } => {
                "08006"
            }
            SessionError::UpstreamRefused { .. } => "08004",
            SessionError::RecordingFailed(_) => "58000",
            SessionError::GrantEnded(_) | SessionError::Shutdown => "57P01",
            SessionError::UpstreamGone | SessionError::UpstreamIo(_) => "08006",
        })
    }

    /// Writes the FATAL ErrorResponse for this error, if the client can still be told.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        if let Some(code) = self.code() {
            let message = self.to_string();
            let hint = match self {
                SessionError::UpstreamRefused { code, .. } => {
                    Some(format!("upstream SQLSTATE {code}"))
                }
                _ => None,
            };
            ErrorResponse {
                severity: Severity::Fatal,
                code,
                message: &message,
                detail: None,
                hint: hint.as_deref(),
            }
            .encode(out);
        }
    }

    /// The session's end reason, for the `Ended` record.
    pub(crate) fn end_reason(&self) -> EndReason {
        match self {
            SessionError::Protocol(e) => EndReason::ProtocolError(e.to_string()),
            SessionError::ExpectedPassword(_) => EndReason::ProtocolError(self.to_string()),
            SessionError::RecordingFailed(_) => EndReason::RecordingFailed,
            SessionError::Shutdown => EndReason::Shutdown,
            SessionError::UpstreamGone
            | SessionError::UpstreamIo(_)
            | SessionError::UpstreamUnreachable { .. }
            | SessionError::UpstreamRefused { .. }
            | SessionError::UpstreamSetup { .. } => EndReason::UpstreamClosed,
            _ => EndReason::ClientClosed,
        }
    }
}

/// Why latch refuses one statement (the session goes on): shown as an ERROR.
pub(crate) enum StatementRefusal<'a> {
    /// EnforceReadOnly and the statement is not read-only.
    ReadOnly {
        role: &'a str,
        resource: &'a str,
        /// The statement's first keyword when the text holds one statement.
        verb: Option<&'a str>,
        class: &'a str,
        grant_id: &'a str,
    },
    /// The recording channel stayed full for `record_wait`.
    RecorderBusy,
}

impl StatementRefusal<'_> {
    pub(crate) fn message(&self) -> String {
        match self {
            StatementRefusal::ReadOnly {
                role,
                resource,
                verb,
                class,
                grant_id,
            } => match verb {
                Some(verb) => format!(
                    "permission denied by latch: role `{role}` on `{resource}` is read-only; `{}` is a {class} statement (grant {grant_id})",
                    verb.to_ascii_uppercase()
                ),
                None => format!(
                    "permission denied by latch: role `{role}` on `{resource}` is read-only; the query holds a {class} statement (grant {grant_id})"
                ),
            },
            StatementRefusal::RecorderBusy => {
                "latch cannot record statements right now; nothing was executed".to_owned()
            }
        }
    }

    pub(crate) fn code(&self) -> &'static str {
        match self {
            StatementRefusal::ReadOnly { .. } => "42501",
            StatementRefusal::RecorderBusy => "53400",
        }
    }

    /// Writes the ERROR for this refusal.
    pub(crate) fn encode(&self, message: &str, out: &mut Vec<u8>) {
        ErrorResponse::new(Severity::Error, self.code(), message).encode(out);
    }
}
