//! What the gateway is configured with: listeners' TLS, limits, and the upstream of each
//! resource with the upstream role each latch role maps to. Built and validated by the caller
//! (the server reads latch's config); the gateway only reads it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use latch_pgwire::scram::ScramKeyCache;
use zeroize::Zeroizing;

/// How the gateway runs. [`GatewaySettings::default`] has no upstreams and no TLS.
#[derive(Clone)]
pub struct GatewaySettings {
    /// TLS for clients that send SSLRequest; `None` answers `N`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The `tls-server-end-point` data of `tls`'s certificate
    /// ([`latch_pgwire::scram::tls_server_end_point`]): with it, SCRAM logins over TLS may be
    /// bound to the certificate (SCRAM-SHA-256-PLUS).
    pub tls_end_point: Option<Vec<u8>>,
    /// Accept plaintext connections from non-loopback clients. Off by default: a latch
    /// credential must not cross a network in clear.
    pub allow_plaintext: bool,
    /// How clients prove their latch credential.
    pub client_auth: ClientAuth,
    /// Largest client message accepted (Query, Parse, Bind, …); CopyData is streamed and not
    /// limited. A larger message ends the session with SQLSTATE 54000.
    pub max_message_bytes: usize,
    /// Resource name → upstream.
    pub upstreams: HashMap<String, UpstreamTarget>,
    /// Capacity of the channel to the batching recorder (buffered recording).
    pub recording_buffer: usize,
    /// How long a statement waits for room in a full recording channel before it is refused.
    pub record_wait: Duration,
    /// Least time between the starts of two batches of buffered records (unless one was
    /// full): fewer, larger commits. No client waits for a buffered record.
    pub record_interval: Duration,
    /// Replace literals with `?` in recorded statement texts.
    pub redact_literals: bool,
    /// Time allowed to connect and authenticate to an upstream.
    pub connect_timeout: Duration,
    /// Time allowed to a client between connecting and finishing authentication.
    pub startup_timeout: Duration,
    /// On shutdown, how long sessions get to close before the gateway stops waiting.
    pub shutdown_grace: Duration,
    /// Threads of the gateway's own that relay sessions, each on a single-threaded runtime
    /// (a session stays on the thread it was given); `0` relays on the caller's runtime.
    pub relay_threads: usize,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            tls: None,
            tls_end_point: None,
            allow_plaintext: false,
            client_auth: ClientAuth::Cleartext,
            max_message_bytes: 16 * 1024 * 1024,
            upstreams: HashMap::new(),
            recording_buffer: 4096,
            record_wait: Duration::from_secs(5),
            record_interval: crate::recorder::BATCH_INTERVAL,
            redact_literals: false,
            connect_timeout: Duration::from_secs(10),
            startup_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
            relay_threads: 0,
        }
    }
}

/// How a client proves its latch credential to the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// AuthenticationCleartextPassword: the credential arrives as sent, and the
    /// [`crate::Authority`] checks it (against a hash). Only over TLS or from loopback unless
    /// `allow_plaintext`.
    Cleartext,
    /// SCRAM-SHA-256: the credential never crosses the wire; the gateway checks the proof
    /// against the secrets from [`crate::Authority::scram_verifiers`], and never sees the
    /// credential itself.
    ScramSha256,
}

/// Where a resource lives and how latch logs in there.
#[derive(Clone)]
pub struct UpstreamTarget {
    /// `host:port`, or the absolute path of a Unix-domain socket (`/…/.s.PGSQL.5432`).
    pub address: String,
    /// Database to open; `None` lets PostgreSQL default to the upstream user's name.
    pub database: Option<String>,
    /// TLS toward the upstream (SSLRequest first, required when set).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// latch role name → upstream login.
    pub roles: HashMap<String, UpstreamRole>,
}

/// The upstream login a latch role uses, and how its sessions are watched.
#[derive(Clone)]
pub struct UpstreamRole {
    pub username: String,
    /// Resolved by the caller from its secret store; never shown to clients.
    pub password: Option<Zeroizing<String>>,
    pub enforcement: Enforcement,
    pub recording: RecordingMode,
    /// The SCRAM keys of this login's last upstream login, so that each new session does not
    /// derive them again from `password`.
    pub scram_keys: ScramKeyCache,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcement {
    /// Record everything, refuse nothing.
    Audit,
    /// Refuse statements that are not read-only (by `latch-sqlclass`), and open the upstream
    /// session with `default_transaction_read_only = on`.
    EnforceReadOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingMode {
    /// Statements are recorded after they complete, through the batching recorder; a full
    /// channel holds new statements back (up to `record_wait`), and never drops a record.
    Buffered,
    /// Each statement is durable in the ledger before it is forwarded; its outcome follows
    /// through the batching recorder.
    Strict,
}
