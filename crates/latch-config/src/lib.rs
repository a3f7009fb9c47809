//! latch's one config file: TOML read once, checked once, and turned into typed values — the
//! server settings, the organisation and resources as a [`latch_core::Catalog`], and the upstream
//! addresses and credential references the gateway needs. Every problem in a file is reported at
//! once with its file, line, column and key path.
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

use std::collections::BTreeMap;
use std::env::VarError;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{ConfigError, Problem};
pub use secret::{SecretError, SecretRef};

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
    pub server: ServerSettings,
    pub ledger: LedgerSettings,
    pub policy: PolicySettings,
    /// The organisation and resources, as the lifecycle and policy see them.
    pub catalog: latch_core::Catalog,
    /// How the gateway reaches each resource, by resource name; kept out of the catalog because
    /// only the gateway may know addresses and credentials.
    pub upstreams: BTreeMap<String, Upstream>,
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

/// `[policy]`: the Cedar policy files and the on-call list they may consult.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicySettings {
    /// Policy files, resolved against the config file's directory; read when loading policies.
    pub files: Vec<PathBuf>,
    /// Users on call (`context.requester_on_call`, break-glass).
    pub on_call: std::collections::BTreeSet<String>,
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

/// `[resources.NAME.upstream]` and the credentials of its roles: how the gateway reaches a
/// resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    /// `host:port`, checked for shape only (the host is resolved when connecting).
    pub address: String,
    /// The database to connect to; `None` lets the upstream pick its default.
    pub database: Option<String>,
    pub tls: bool,
    /// The upstream login used for each of the resource's roles, by role name.
    pub credentials: BTreeMap<String, Credential>,
}

/// The upstream login behind one resource role; users never see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub password: SecretRef,
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
