//! The one seam between the gateway and the rest of latch: who may connect (the
//! [`Authority`] decides, the gateway never does), and where records go.

use std::net::SocketAddr;

use zeroize::Zeroizing;

/// What latch knows and decides; implemented by the server over its store and policy, and by
/// tests in memory.
#[async_trait::async_trait]
pub trait Authority: Send + Sync + 'static {
    /// Checks the credential presented for `user` on `resource` (with the role from
    /// `database=resource:role` when given) and returns the grant the session runs under, or a
    /// refusal whose SQLSTATE and message the client sees (e.g. 28000 ``no active grant for
    /// `alice` on `payments-db`: request one with `latch request payments-db --role read --for 1h --reason …` ``).
    async fn authorize(&self, attempt: ConnectAttempt) -> Result<SessionGrant, Refusal>;

    /// Makes records durable (appends them to the ledger); `Ok` means durable. Called by the
    /// batching recorder with batches, and in strict mode by sessions directly, concurrently.
    /// Borrowed so that a failed batch can be retried without a copy.
    async fn record(&self, records: &[SessionRecord]) -> Result<(), RecordError>;

    /// The SCRAM secrets of the credentials `user` may present on `resource`, for
    /// [`crate::ClientAuth::ScramSha256`] only: SCRAM proves knowledge of a credential without
    /// sending it, and the gateway checks the proof against these, so the authority never
    /// keeps a plaintext. None (the default) fails the exchange like a wrong credential, after
    /// the same messages. A refusal (the store is down, say) ends the connection with it.
    async fn scram_verifiers(&self, user: &str, resource: &str) -> Result<ScramVerifiers, Refusal> {
        let _ = resource;
        Ok(ScramVerifiers::none(user))
    }
}

/// What a client presented for its latch credential.
#[derive(Clone)]
pub enum PresentedCredential {
    /// The credential itself (cleartext password authentication, over TLS or loopback).
    Secret(Zeroizing<String>),
    /// A SCRAM proof that matched the secret of this credential (an id from
    /// [`Authority::scram_verifiers`]); `bound` when it covered the gateway's TLS certificate
    /// (SCRAM-SHA-256-PLUS).
    ScramProven { credential_id: String, bound: bool },
    /// A SCRAM proof that matched none: the authority refuses it as a wrong credential.
    ScramFailed,
}

impl PresentedCredential {
    /// The authentication method, as recorded in `session.started`.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Secret(_) => "password",
            Self::ScramProven { bound: true, .. } => "scram-sha-256-plus",
            Self::ScramProven { bound: false, .. } | Self::ScramFailed => "scram-sha-256",
        }
    }
}

impl std::fmt::Debug for PresentedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret(_) => f.write_str("Secret(..)"),
            Self::ScramProven {
                credential_id,
                bound,
            } => f
                .debug_struct("ScramProven")
                .field("credential_id", credential_id)
                .field("bound", bound)
                .finish(),
            Self::ScramFailed => f.write_str("ScramFailed"),
        }
    }
}

/// The SCRAM secrets a user's proof is checked against. They share one salt and iteration
/// count because the server names them before it knows which credential the client holds.
#[derive(Clone, Debug)]
pub struct ScramVerifiers {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub candidates: Vec<ScramCandidate>,
}

impl ScramVerifiers {
    /// No credential: the exchange runs with `user`'s usual salt and fails at the proof, so an
    /// unknown user looks like a known one with a wrong credential.
    pub fn none(user: &str) -> Self {
        ScramVerifiers {
            salt: credential_salt(user).to_vec(),
            iterations: latch_pgwire::scram::DEFAULT_ITERATIONS,
            candidates: Vec::new(),
        }
    }
}

/// One credential's SCRAM secret.
#[derive(Clone)]
pub struct ScramCandidate {
    pub credential_id: String,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl std::fmt::Debug for ScramCandidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCandidate")
            .field("credential_id", &self.credential_id)
            .finish_non_exhaustive()
    }
}

/// The SCRAM salt of every session credential of `user`: one per user, so that all of a
/// user's live credentials can be tried against one proof, and computable for users that do
/// not exist, so that the salt does not tell them apart. A salt needs to be unique, not secret;
/// the credentials carry 256 random bits, so nothing is precomputed against them either way.
pub fn credential_salt(user: &str) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"latch session credential SCRAM salt\0")
        .chain_update(user.as_bytes())
        .finalize();
    let mut salt = [0u8; 16];
    for (s, d) in salt.iter_mut().zip(digest) {
        *s = d;
    }
    salt
}

/// A client asking to open a session.
#[derive(Debug, Clone)]
pub struct ConnectAttempt {
    /// The latch user (the startup packet's `user`).
    pub user: String,
    pub resource: String,
    /// From `database=resource:role`; `None` lets the authority pick the grant's role.
    pub role: Option<String>,
    pub credential: PresentedCredential,
    pub client_addr: SocketAddr,
    pub application_name: Option<String>,
    /// Whether the client connection is TLS.
    pub tls: bool,
}

/// The grant a session runs under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionGrant {
    pub grant_id: String,
    pub user: String,
    pub resource: String,
    /// The latch role; must be one of the upstream's roles.
    pub role: String,
    /// Unix milliseconds; the gateway cuts the session at this instant.
    pub ends_at_ms: i64,
    /// A once-grant: the authority refuses the next connection after this one has started
    /// (the `Started` record marks the use).
    pub once: bool,
}

/// Why a connection is refused: shown to the client as a FATAL ErrorResponse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// SQLSTATE, e.g. `28000` (invalid authorization) or `28P01` (bad credential).
    pub code: String,
    pub message: String,
}

impl Refusal {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Refusal {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// `record` could not make the records durable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot record session events: {message}")]
pub struct RecordError {
    pub message: String,
}

/// One event of a session, for the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionRecord {
    /// The session is authenticated and connected upstream; sent before the client may send
    /// its first statement.
    Started {
        session_id: String,
        grant_id: String,
        user: String,
        resource: String,
        role: String,
        client_addr: SocketAddr,
        application_name: Option<String>,
        at_ms: i64,
        tls: bool,
        /// How the client proved its credential ([`PresentedCredential::method`]).
        auth: &'static str,
    },
    /// A statement. Buffered recording sends it once, completed; strict recording sends it
    /// before forwarding with [`Outcome::Pending`], then a [`SessionRecord::StatementOutcome`].
    /// Refused statements are sent once with [`Outcome::Refused`] in both modes.
    Statement(StatementRecord),
    /// The outcome of a statement recorded earlier as pending (strict recording).
    StatementOutcome {
        session_id: String,
        grant_id: String,
        seq: u64,
        outcome: Outcome,
        duration_us: u64,
    },
    Ended {
        session_id: String,
        grant_id: String,
        at_ms: i64,
        reason: EndReason,
        bytes_in: u64,
        bytes_out: u64,
        /// Statements recorded (refused ones included).
        statements: u64,
        /// For grant ends (expiry, revocation): milliseconds from the grant's end (or the
        /// revocation request) to the session's close, as measured by the gateway.
        revocation_delay_ms: Option<i64>,
    },
}

/// One statement: a simple Query message (all its statements), or one Execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRecord {
    pub session_id: String,
    pub grant_id: String,
    /// 1, 2, … within the session.
    pub seq: u64,
    /// As sent, or with literals replaced by `?` when redaction is on.
    pub text: String,
    pub protocol: Protocol,
    /// `latch-sqlclass` class name: `read`, `write`, `ddl`, `privilege`, `other`, `unparsed`.
    pub class: &'static str,
    pub read_only: bool,
    pub objects: Vec<String>,
    pub outcome: Outcome,
    pub started_at_ms: i64,
    /// From forwarding to completion; 0 for pending and refused statements.
    pub duration_us: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Simple,
    Extended,
    /// A fast-path FunctionCall message.
    FunctionCall,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded before forwarding (strict); the outcome follows.
    Pending,
    /// Completed; rows from CommandComplete (summed over a multi-statement Query).
    Rows(u64),
    /// Failed with this SQLSTATE.
    Error(String),
    /// Not forwarded: latch refused it.
    Refused(String),
    /// Forwarded but never run: an earlier message of the same extended-protocol batch failed,
    /// so the server skipped it.
    NotRun,
    /// The session ended before the statement completed.
    Interrupted,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    ClientClosed,
    GrantExpired,
    GrantRevoked { by: String },
    UpstreamClosed,
    ProtocolError(String),
    Shutdown,
    RecordingFailed,
}

/// A session in [`crate::Gateway::sessions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    pub session_id: String,
    pub grant_id: String,
    pub user: String,
    pub resource: String,
    pub role: String,
    pub client_addr: SocketAddr,
    pub started_at_ms: i64,
    pub ends_at_ms: i64,
    pub statements: u64,
}

/// Where the gateway reads time (unix milliseconds); tests pass a fake.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
}

impl<F: Fn() -> i64 + Send + Sync + 'static> Clock for F {
    fn now_ms(&self) -> i64 {
        self()
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}
