//! The file as written: serde types mirroring each table, every value kept with its position so
//! that later checks can point at it. Nothing here is validated beyond TOML types.

use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;

/// `[server]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawServer {
    pub listen: Option<Spanned<String>>,
    pub data_dir: Option<Spanned<String>>,
    pub database_url: Option<Spanned<String>>,
    pub database_url_env: Option<Spanned<String>>,
    pub pending_timeout: Option<Spanned<String>>,
    pub escalate_after: Option<Spanned<String>>,
    pub scheduler_interval: Option<Spanned<String>>,
}

/// `[ledger]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawLedger {
    pub origin: Option<Spanned<String>>,
    pub signing_key_file: Option<Spanned<String>>,
    pub checkpoint_interval: Option<Spanned<String>>,
}

/// `[policy]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawPolicy {
    #[serde(default)]
    pub files: Vec<Spanned<String>>,
    #[serde(default)]
    pub on_call: Vec<Spanned<String>>,
}

/// `[teams.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawTeam {
    #[serde(default)]
    pub leads: Vec<Spanned<String>>,
    pub parent: Option<Spanned<String>>,
}

/// `[users.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawUser {
    pub email: Spanned<String>,
    #[serde(default)]
    pub teams: Vec<Spanned<String>>,
    pub manager: Option<Spanned<String>>,
    #[serde(default)]
    pub roles: Vec<Spanned<String>>,
    #[serde(default)]
    pub service_account: bool,
}

/// `[resources.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawResource {
    pub kind: Spanned<String>,
    pub owner_team: Spanned<String>,
    pub upstream: RawUpstream,
    pub sensitivity: Option<Spanned<String>>,
    pub environment: Option<Spanned<String>>,
    pub ticket_pattern: Option<Spanned<String>>,
    pub recording: Option<Spanned<String>>,
    /// Each role is decoded on its own (see `document`), so that one bad role does not hide the
    /// problems of the others; it is named here so that `roles` is an allowed key.
    #[serde(default, rename = "roles")]
    pub _roles: Option<IgnoredAny>,
}

/// `[resources.NAME.upstream]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawUpstream {
    pub address: Spanned<String>,
    pub database: Option<Spanned<String>>,
    #[serde(default)]
    pub tls: bool,
}

/// `[resources.NAME.roles.ROLE]`
///
/// An inline `password` key never reaches this type: `document` refuses it with its own message
/// and removes it first, so the secret is not echoed in a type error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawRole {
    pub max_duration: Spanned<String>,
    pub username: Spanned<String>,
    pub password_env: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    pub access: Option<Spanned<String>>,
    pub enforcement: Option<Spanned<String>>,
}

/// `[gateway]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawGateway {
    pub listen: Option<Spanned<String>>,
    pub tls_cert_file: Option<Spanned<String>>,
    pub tls_key_file: Option<Spanned<String>>,
    #[serde(default)]
    pub allow_plaintext: bool,
    #[serde(default)]
    pub redact_literals: bool,
    pub credential_ttl: Option<Spanned<String>>,
    /// Integers are read as TOML's own `i64` and range-checked later, so that `-1` gets a message
    /// about bytes rather than serde's about `u64`.
    pub max_message_bytes: Option<Spanned<i64>>,
    pub recording_buffer: Option<Spanned<i64>>,
}
