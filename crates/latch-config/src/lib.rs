//! latch's one config file: TOML read once, checked once, and turned into typed values — the
//! server settings, the organisation and resources as a [`latch_core::Catalog`], the resources'
//! labels, the gateway's settings with the upstream addresses and credential references it
//! needs, and where notifications go. Every problem in a file is reported at once with its file, line, column and key path.
//!
//! Parsing goes in three steps: `document` parses the syntax and decodes each table on its own
//! (so one bad table does not hide the others), `raw` holds the decoded tables with the position
//! of every value, and `validate` checks names, references, durations and addresses.

mod document;
mod error;
mod interval;
mod raw;
mod secret;

mod validate;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::env::VarError;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{ConfigError, Problem};
pub use latch_core::ticket::{TicketPattern, TicketPatternError};
pub use secret::{SecretError, SecretRef, UrlRef};

/// Where `latch serve` listens when `server.listen` is not given.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 7070);
/// `server.data_dir` when not given, relative to the config file's directory.
pub const DEFAULT_DATA_DIR: &str = "data";
/// `server.scheduler_interval` when not given.
pub const DEFAULT_SCHEDULER_INTERVAL: Duration = Duration::from_millis(100);

/// A checked config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The file it was read from, to name it in messages and resolve relative paths.
    pub path: PathBuf,
    /// `[server]`, with its defaults.
    pub server: ServerSettings,
    /// `[ledger]`, with its defaults.
    pub ledger: LedgerSettings,
    /// `[policy]`; empty when absent (the built-in approval rule applies).
    pub policy: PolicySettings,
    /// `[export.nats]`: the live sink, when configured.
    pub nats_export: Option<NatsExport>,
    /// `[reviews]`: scheduled access reviews; `None` when the table is absent.
    pub reviews: Option<ReviewSettings>,
    /// `[audit]`: the audit checkpoints (docs/CHECKPOINTS.md).
    pub audit: AuditSettings,
    /// The organisation and resources, as the lifecycle and policy see them.
    pub catalog: latch_core::Catalog,
    /// How the gateway reaches each resource, by resource name; kept out of the catalog because
    /// only the gateway may know addresses and credentials.
    pub upstreams: BTreeMap<String, Upstream>,
    /// The labels of each resource, by resource name: an entry for every resource, with the
    /// defaults filled in, so that policies and request checks never meet a missing one.
    pub resource_labels: BTreeMap<String, ResourceLabels>,
    /// Users with `service_account = true`: machines and AI agents, which may request access and
    /// connect but never approve (the config refuses one that leads a team, manages someone, is
    /// on call or is an admin).
    pub service_accounts: BTreeSet<String>,
    /// `[gateway]`, the PostgreSQL gateway; `None` when the table is absent: the gateway is off.
    pub gateway: Option<GatewaySettings>,
    /// `[notify]`, where notifications go; `None` when the table is absent: nothing is sent.
    pub notify: Option<NotifySettings>,
    /// `slack_id` of `[users.NAME]`: the latch user behind each Slack user id, so that a click
    /// in Slack is attributed to a latch user (and refused for an unknown Slack user).
    ///
    /// INVARIANT: one latch user per Slack id; the config refuses a Slack id given twice.
    pub slack_ids: BTreeMap<String, String>,
}

/// `[server]`: how `latch serve` runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSettings {
    /// The HTTP API's address; [`DEFAULT_LISTEN`] when not given.
    pub listen: SocketAddr,
    /// Where latch keeps its files (the embedded database, keys); relative paths are resolved
    /// against the config file's directory.
    pub data_dir: PathBuf,
    pub database: Database,
    /// How often the scheduler looks for due grants and requests; expiry waits up to this long.
    pub scheduler_interval: Duration,
}

/// `[ledger]`: how the ledger signs its checkpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerSettings {
    /// The ledger's name, the first line of every checkpoint and the signing key's name; by
    /// default `latch.local/audit`. Give each deployment its own.
    pub origin: String,
    /// The Ed25519 signing key (note private-key text), created with mode 0600 at first start
    /// when missing; by default `data_dir/ledger.key`.
    pub signing_key_file: PathBuf,
    /// How often a checkpoint is signed when the tree has grown; default 1s.
    pub checkpoint_interval: Duration,
}

/// `[export.nats]`: a live copy of the ledger for a SIEM, published to NATS JetStream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsExport {
    /// The server, `nats://host:port` (or `tls://host:port`).
    pub server: String,
    /// The subject every event is published on.
    pub subject: String,
    /// The JetStream stream latch publishes into; latch creates it (bound to `subject`) when
    /// missing, and it must hold nothing but latch's events: latch resumes after its last one.
    pub stream: String,
    pub format: ExportFormat,
}

/// `[reviews]`: when a period closes, `latch serve` writes its evidence pack into
/// `out_dir/<period>/` and asks each resource's owner-team leads to review their section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewSettings {
    pub schedule: ReviewSchedule,
    /// Where the packs go, one directory per period; resolved against the config file's
    /// directory (default `reviews`).
    pub out_dir: PathBuf,
}

/// How often access is reviewed: each calendar month or quarter, in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewSchedule {
    Monthly,
    Quarterly,
}

/// `[reviews] out_dir` when not given, relative to the config file's directory.
pub const DEFAULT_REVIEWS_DIR: &str = "reviews";

/// What a sink publishes for each event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// The ledger's own canonical JSON (the Merkle leaf): verifiable against the ledger.
    Ledger,
    /// An OCSF record (the class that fits the event).
    Ocsf,
}

/// `[audit]`: whether the audit checkpoints run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditSettings {
    /// `enabled` (default `true`): the checkpoints follow the ledger and open findings.
    pub enabled: bool,
    /// The checkpoints' thresholds: the documented defaults with the file's overrides.
    pub thresholds: latch_audit::AuditSettings,
}

/// `[policy]`: the Cedar policy files and the on-call list they may consult.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicySettings {
    /// Policy files, resolved against the config file's directory; read when loading policies.
    pub files: Vec<PathBuf>,
    /// Users on call (`context.requester_on_call`, break-glass).
    pub on_call: BTreeSet<String>,
}

/// `ledger.origin` when not given.
pub const DEFAULT_ORIGIN: &str = "latch.local/audit";
/// `ledger.checkpoint_interval` when not given.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Where latch stores its ledger and projections.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// The embedded default: one file, `data_dir/latch.db` unless a URL is configured.
    Sqlite { path: PathBuf },
    /// Shared by several replicas: from `database_url` or the variable named by
    /// `database_url_env`.
    Postgres { url: String },
}

impl std::fmt::Debug for Database {
    /// Never prints the URL: it may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite { path } => f.debug_struct("Sqlite").field("path", path).finish(),
            Self::Postgres { .. } => f
                .debug_struct("Postgres")
                .field("url", &"<redacted>")
                .finish(),
        }
    }
}

/// `[resources.NAME.upstream]`, the credentials of its roles and its recording mode: how the
/// gateway reaches a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    /// `host:port`, checked for shape only (the host is resolved when connecting), or the
    /// absolute path of PostgreSQL's Unix-domain socket (`postgres` resources, without TLS).
    pub address: String,
    /// The database to connect to; `None` lets the upstream pick its default.
    pub database: Option<String>,
    /// Connect to the upstream with TLS; default `false`.
    pub tls: bool,
    /// Trust only the certificates in this PEM file for the upstream (a private CA, or the
    /// server's own self-signed certificate); `None`: the public web PKI roots.
    pub tls_ca_file: Option<PathBuf>,
    /// The upstream login used for each of the resource's roles, by role name.
    pub credentials: BTreeMap<String, Credential>,
    /// `recording`: how the gateway records this resource's statements; buffered by default.
    pub recording: RecordingMode,
}

/// The upstream login behind one resource role, and what the gateway lets it do; users never see
/// the login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// The upstream user this role logs in as.
    pub username: String,
    /// Where that user's password is found, read only when connecting.
    pub password: SecretRef,
    /// `access`: the statements this role is for; read-only unless the config says `write`.
    pub access: RoleAccess,
    /// `enforcement`: whether statements beyond [`Credential::access`] are refused or only
    /// recorded.
    pub enforcement: Enforcement,
}

/// `access` of a resource role: which statements a session under this role is meant to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleAccess {
    /// Reads only: the default, so that a role which should write has to say so.
    Read,
    /// Reads and writes.
    Write,
}

impl RoleAccess {
    /// The config's spelling: `read` or `write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// `enforcement` of a resource role: what the gateway does with a statement beyond the role's
/// [`RoleAccess`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enforcement {
    /// Refuse it (the default).
    Enforce,
    /// Forward it and only record it, like every statement: to learn what a role really needs
    /// before enforcing.
    Audit,
}

impl Enforcement {
    /// The config's spelling: `enforce` or `audit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Audit => "audit",
        }
    }
}

/// `recording` of a resource: how the gateway records the statements sessions run on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordingMode {
    /// The default: statements are recorded in batches, off the hot path. When the recorder
    /// cannot keep up (its buffer, `gateway.recording_buffer`, is full), statements wait and are
    /// then refused; they are never forwarded unrecorded and records are never dropped.
    Buffered,
    /// A statement is forwarded to the upstream only once its record is durable: slower, for
    /// resources where no statement may run before it is on record.
    Strict,
}

impl RecordingMode {
    /// The config's spelling: `buffered` or `strict`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Buffered => "buffered",
            Self::Strict => "strict",
        }
    }
}

/// `sensitivity`, `environment` and `ticket_pattern` of `[resources.NAME]`: what policies and
/// request checks know about a resource beyond its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceLabels {
    /// One of [`SENSITIVITIES`]; [`DEFAULT_SENSITIVITY`] when not given.
    pub sensitivity: String,
    /// The environment the resource belongs to, a name such as `production`, `staging` or
    /// `development`; [`DEFAULT_ENVIRONMENT`] when not given, so that an unlabelled resource is
    /// treated as production.
    pub environment: String,
    /// When set, a request for this resource must give a ticket reference, and the whole of it
    /// must match; `None` accepts any ticket, or none.
    pub ticket_pattern: Option<TicketPattern>,
    /// `scope`: the objects sessions are expected to touch (`usage.scope`), as `schema.name`
    /// patterns; empty: no scope check.
    pub scope: Vec<String>,
}

/// The values `sensitivity` may take, from least to most sensitive.
pub const SENSITIVITIES: [&str; 4] = ["low", "normal", "high", "critical"];
/// `resources.NAME.sensitivity` when not given.
pub const DEFAULT_SENSITIVITY: &str = "normal";
/// `resources.NAME.environment` when not given: unlabelled resources count as production.
pub const DEFAULT_ENVIRONMENT: &str = "production";

/// `[gateway]`: the PostgreSQL gateway through which granted users reach resources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewaySettings {
    /// Where the gateway accepts PostgreSQL clients; [`DEFAULT_GATEWAY_LISTEN`] when not given.
    pub listen: SocketAddr,
    /// The certificate clients see when they ask for TLS.
    pub tls: GatewayTls,
    /// `false` (the default): a client without TLS is accepted only from a loopback address.
    /// `true` accepts plaintext from anywhere, which exposes the connection credential and every
    /// statement and row to the network: only for a network that is private end to end.
    pub allow_plaintext: bool,
    /// How clients prove their connection credential (`client_auth`); default
    /// [`ClientAuth::ScramSha256`].
    pub client_auth: ClientAuth,
    /// Record statements with their literals (strings, numbers) replaced by `?`, so that values
    /// such as personal data or secrets written in queries stay out of the recording; default
    /// `false`.
    pub redact_literals: bool,
    /// How long a connection credential from `latch connect` may be used to open sessions; a
    /// session opened with it still ends when its grant does. Default
    /// [`DEFAULT_CREDENTIAL_TTL`], from 1 minute to 24 hours.
    pub credential_ttl: Duration,
    /// The largest PostgreSQL message a client may send, in bytes, checked before anything is
    /// allocated; default [`DEFAULT_MAX_MESSAGE_BYTES`], from 1024 to 1 GiB.
    pub max_message_bytes: usize,
    /// How many statements the buffered recorder holds before sessions wait for it (see
    /// [`RecordingMode::Buffered`]); default [`DEFAULT_RECORDING_BUFFER`].
    pub recording_buffer: usize,
    /// Threads that relay sessions, each running its share of them on its own (`relay_threads`);
    /// `0` runs them on the server's shared runtime. Default [`DEFAULT_RELAY_THREADS`], at most
    /// [`MAX_RELAY_THREADS`].
    pub relay_threads: usize,
    /// The SCRAM iteration count of the credentials `latch connect` makes
    /// (`scram_iterations`); default [`DEFAULT_SCRAM_ITERATIONS`], from 1 to
    /// [`MAX_SCRAM_ITERATIONS`].
    pub scram_iterations: u32,
}

/// `gateway.client_auth`: how a client proves its connection credential, named as in
/// PostgreSQL's `pg_hba.conf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// `scram-sha-256` (the default): the credential never crosses the wire, not even inside
    /// TLS, and latch keeps only its SCRAM secret.
    #[default]
    ScramSha256,
    /// `password`: the credential is sent as typed (over TLS, or plaintext from loopback or
    /// with `allow_plaintext`), for clients that cannot do SCRAM.
    Password,
}

/// The gateway's TLS certificate and key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayTls {
    /// Neither `tls_cert_file` nor `tls_key_file`: a self-signed certificate, created by the
    /// server at first start when missing (`data_dir/gateway.crt` and `data_dir/gateway.key`).
    SelfSigned {
        /// `data_dir/gateway.crt`.
        cert: PathBuf,
        /// `data_dir/gateway.key`.
        key: PathBuf,
    },
    /// `tls_cert_file` and `tls_key_file`: PEM files, read when the gateway starts (relative
    /// paths are already resolved against the config file's directory).
    Files {
        /// `tls_cert_file`: the certificate chain, leaf first.
        cert: PathBuf,
        /// `tls_key_file`: the private key.
        key: PathBuf,
    },
}

/// `gateway.listen` when not given: loopback only.
pub const DEFAULT_GATEWAY_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 6432);
/// `gateway.credential_ttl` when not given.
pub const DEFAULT_CREDENTIAL_TTL: Duration = Duration::from_secs(10 * 60);
/// `gateway.max_message_bytes` when not given: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// `gateway.recording_buffer` when not given.
pub const DEFAULT_RECORDING_BUFFER: usize = 10_000;
/// `gateway.relay_threads` when not given: one thread relays every session, as pgbouncer's one
/// process does (docs/BENCHMARKS.md, `gateway`, fifteenth session).
pub const DEFAULT_RELAY_THREADS: usize = 1;
/// `gateway.relay_threads` at most.
pub const MAX_RELAY_THREADS: usize = 64;
/// `gateway.scram_iterations` when not given: RFC 7677's 4,096, because some clients refuse
/// fewer (pgjdbc's SCRAM library does). Iterations slow down guessing a password from a stolen
/// SCRAM secret or a captured exchange; a `latch connect` credential is 256 random bits, which
/// no number of guesses finds, and the store keeps its SHA-256 beside the SCRAM secret anyway
/// (for `client_auth = "password"`). So where every client takes fewer (libpq does, as
/// PostgreSQL 16's own `scram_iterations` allows 1), fewer cost nothing in security and save
/// each client about 5 ms of CPU per connection with libpq on OpenSSL 3 (docs/BENCHMARKS.md,
/// `gateway`).
pub const DEFAULT_SCRAM_ITERATIONS: u32 = 4096;
/// `gateway.scram_iterations` at most: as many as latch itself accepts from a server.
pub const MAX_SCRAM_ITERATIONS: u32 = 1_000_000;

/// `[notify]`: which notifications latch sends, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifySettings {
    /// `base_url`: latch's address as people reach it (an `http://` or `https://` URL, without a
    /// trailing `/`), for links in messages; `None`: messages carry no links.
    pub base_url: Option<String>,
    /// `digest_minutes`: notices are batched into one message per channel every this many
    /// minutes, from 1 to 1440; 0 (the default) sends each notice at once.
    pub digest_minutes: u32,
    /// `expiry_warning`: grantees are warned this long before their grant ends; default
    /// [`DEFAULT_EXPIRY_WARNING`].
    pub expiry_warning: Duration,
    /// `reminder_after`: approvers are reminded of a request still pending after this long;
    /// `None` (the default): no reminders.
    pub reminder_after: Option<Duration>,
    /// `slack_signing_secret_env` or `slack_signing_secret_file`: the secret Slack signs its
    /// interactive requests with; `None`: the Slack interactivity endpoint is off (buttons in
    /// Slack messages do nothing).
    ///
    /// INVARIANT: never [`SecretRef::None`].
    pub slack_signing_secret: Option<SecretRef>,
    /// `smtp_url`, `smtp_from` and the optional login: the relay email channels send through;
    /// `None`: email messages cannot be sent (they are dead-lettered, saying so).
    pub smtp: Option<SmtpSettings>,
    /// `[[notify.channels]]`, in file order; each name is unique. A channel no route names is
    /// allowed and receives nothing.
    pub channels: Vec<ChannelSettings>,
    /// `[[notify.routes]]`, in file order: a notice goes to the channel of every route it
    /// matches. Each names a channel of [`NotifySettings::channels`].
    pub routes: Vec<RouteSettings>,
}

/// The SMTP relay of `[notify]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpSettings {
    /// `smtp_url`: `smtp://host:port` (plain, or `?tls=required` for STARTTLS) or
    /// `smtps://host:port`; never with credentials in it.
    pub url: String,
    /// `smtp_from`: the sender, `latch@example.com` or `latch <latch@example.com>`.
    pub from: String,
    /// `smtp_username`, when the relay wants a login.
    pub username: Option<String>,
    /// `smtp_password_env` or `smtp_password_file`; set exactly when `username` is.
    pub password: Option<SecretRef>,
}

/// `notify.expiry_warning` when not given.
pub const DEFAULT_EXPIRY_WARNING: Duration = Duration::from_secs(10 * 60);
/// The largest `notify.digest_minutes`: one day.
pub const MAX_DIGEST_MINUTES: u32 = 1440;
/// `api_base` of a Slack channel with a bot token when not given.
pub const DEFAULT_SLACK_API_BASE: &str = "https://slack.com/api";
/// The values `min_severity` of a route may take, from least to most severe.
pub const SEVERITIES: [&str; 4] = ["info", "warning", "high", "critical"];

/// One `[[notify.channels]]`: a named place notices are sent to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelSettings {
    /// `name`, which routes refer to; a name like a team's, unique among channels.
    pub name: String,
    /// `kind`, with the keys that kind needs.
    pub kind: ChannelKind,
}

/// `kind` of a channel, with where its URL and secrets are found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelKind {
    /// `kind = "slack"`: a Slack incoming webhook. Its URL is a secret (whoever has it may
    /// post), so it comes from `url_env` or `url_file`.
    ///
    /// INVARIANT: `url` is never [`SecretRef::None`].
    Slack { url: SecretRef },
    /// `kind = "slack"` with a bot token instead of a webhook: messages are posted with
    /// `chat.postMessage` to `channel_id`, and replaced with `chat.update` once their request is
    /// decided, wherever it was decided. The token is a secret, from `bot_token_env` or
    /// `bot_token_file`.
    ///
    /// INVARIANT: `token` is never [`SecretRef::None`].
    SlackBot {
        token: SecretRef,
        /// `channel_id`: Slack's id of the channel (`C0123ABCD`), not its name.
        channel_id: String,
        /// `api_base`: Slack's Web API without a trailing `/`; [`DEFAULT_SLACK_API_BASE`] unless
        /// set (for tests or a proxy).
        api_base: String,
    },
    /// `kind = "teams"`: a Microsoft Teams incoming webhook (or Workflows webhook) taking
    /// Adaptive Cards; its URL is a secret, like Slack's.
    ///
    /// INVARIANT: `url` is never [`SecretRef::None`].
    Teams { url: SecretRef },
    /// `kind = "webhook"`: JSON posted to any endpoint, signed with HMAC-SHA256 under `secret`.
    /// The URL may be written plainly (`url`): the signature, not the URL, protects the
    /// receiver.
    ///
    /// INVARIANT: `secret` is never [`SecretRef::None`], nor is the secret of `url`.
    Webhook { url: UrlRef, secret: SecretRef },
    /// `kind = "email"`: mail to `to`, a non-empty list of addresses.
    Email { to: Vec<String> },
}

impl ChannelKind {
    /// The config's spelling: `slack`, `teams`, `webhook` or `email`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Slack { .. } | Self::SlackBot { .. } => "slack",
            Self::Teams { .. } => "teams",
            Self::Webhook { .. } => "webhook",
            Self::Email { .. } => "email",
        }
    }
}

/// One `[[notify.routes]]`: notices matching every filter go to `channel`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSettings {
    /// `events`: event type patterns (`*` matches any run of characters), e.g. `request.*` or
    /// `finding.opened`; empty (the key left out): every event.
    pub events: Vec<String>,
    /// `min_severity`: only notices at least this severe, one of [`SEVERITIES`]; `None`: any.
    pub min_severity: Option<String>,
    /// `resources`: resource name patterns (`payments-*`); empty (the key left out): any
    /// resource. A pattern without `*` names a configured resource.
    pub resources: Vec<String>,
    /// `teams`: configured teams; empty (the key left out): no team filter.
    pub teams: Vec<String>,
    /// `channel`: the name of a configured channel.
    pub channel: String,
}

/// Reads and checks the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, path)
}

/// Checks config `text` as if read from `path` (which names it in problems and anchors relative
/// paths). Reads `database_url_env` from the process environment.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    parse_with_env(text, path, |name| std::env::var(name))
}

/// [`parse`], reading environment variables through `env` (tests pass a map).
pub fn parse_with_env(
    text: &str,
    path: &Path,
    env: impl Fn(&str) -> Result<String, VarError>,
) -> Result<Config, ConfigError> {
    let mut diagnostics = error::Diagnostics::new(text, path);
    let Some(raw) = document::read(text, &mut diagnostics) else {
        return Err(diagnostics.into_error());
    };
    let config = validate::check(raw, path, &env, &mut diagnostics);
    diagnostics.finish(config)
}
