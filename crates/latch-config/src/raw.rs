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

/// `[audit]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawAudit {
    pub enabled: Option<bool>,
    /// Checkpoint ids that never report.
    #[serde(default)]
    pub disabled: Vec<Spanned<String>>,
    /// Checkpoint id → severity, replacing the default severity.
    #[serde(default)]
    pub severity: std::collections::BTreeMap<String, Spanned<String>>,
    pub boilerplate_reasons: Option<Vec<Spanned<String>>>,
    pub min_reason_chars: Option<Spanned<i64>>,
    pub repeated_reasons: Option<Spanned<i64>>,
    pub rubber_stamp_within: Option<Spanned<String>>,
    pub approver_min_decisions: Option<Spanned<i64>>,
    pub approver_approval_percent: Option<Spanned<i64>>,
    pub approver_window: Option<Spanned<String>>,
    pub read_roles: Option<Vec<Spanned<String>>>,
    pub bulk_read_rows: Option<Spanned<i64>>,
    pub bulk_session_rows: Option<Spanned<i64>>,
    pub revocation_tolerance: Option<Spanned<String>>,
    pub revocation_high_after: Option<Spanned<String>>,
    pub idle_tail_percent: Option<Spanned<i64>>,
    pub idle_tail_min: Option<Spanned<String>>,
    pub excessive_factor: Option<Spanned<i64>>,
    pub excessive_min_sample: Option<Spanned<i64>>,
    pub burst_requests: Option<Spanned<i64>>,
    pub burst_window: Option<Spanned<String>>,
    pub standing_requests: Option<Spanned<i64>>,
    pub standing_window: Option<Spanned<String>>,
    pub business_hours: Option<RawBusinessHours>,
}

/// `[audit.business_hours]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawBusinessHours {
    pub days: Option<Vec<Spanned<String>>>,
    pub start: Option<Spanned<String>>,
    pub end: Option<Spanned<String>>,
    pub utc_offset: Option<Spanned<String>>,
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
    pub slack_id: Option<Spanned<String>>,
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
    /// The objects sessions are expected to touch (`usage.scope`), e.g. `public.accounts`.
    pub scope: Option<Vec<Spanned<String>>>,
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
    /// PEM file of the CA (or certificate) that signs the upstream's certificate.
    pub tls_ca_file: Option<Spanned<String>>,
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
    pub client_auth: Option<Spanned<String>>,
    #[serde(default)]
    pub redact_literals: bool,
    pub credential_ttl: Option<Spanned<String>>,
    /// Integers are read as TOML's own `i64` and range-checked later, so that `-1` gets a message
    /// about bytes rather than serde's about `u64`.
    pub max_message_bytes: Option<Spanned<i64>>,
    pub recording_buffer: Option<Spanned<i64>>,
    pub relay_threads: Option<Spanned<i64>>,
    pub scram_iterations: Option<Spanned<i64>>,
}

/// `[notify]`, without its channels and routes.
///
/// An inline `slack_signing_secret` never reaches this type: `document` refuses it and removes
/// it first, like a role's `password`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawNotify {
    pub base_url: Option<Spanned<String>>,
    /// Read as TOML's `i64` and range-checked later, like `gateway.max_message_bytes`.
    pub digest_minutes: Option<Spanned<i64>>,
    pub expiry_warning: Option<Spanned<String>>,
    pub reminder_after: Option<Spanned<String>>,
    pub slack_signing_secret_env: Option<Spanned<String>>,
    pub slack_signing_secret_file: Option<Spanned<String>>,
    pub smtp_url: Option<Spanned<String>>,
    pub smtp_from: Option<Spanned<String>>,
    pub smtp_username: Option<Spanned<String>>,
    pub smtp_password_env: Option<Spanned<String>>,
    pub smtp_password_file: Option<Spanned<String>>,
    /// Each channel and route is decoded on its own (see `document`); named here so that
    /// `channels` and `routes` are allowed keys.
    #[serde(default, rename = "channels")]
    pub _channels: Option<IgnoredAny>,
    #[serde(default, rename = "routes")]
    pub _routes: Option<IgnoredAny>,
}

/// `[[notify.channels]]`: every key any kind may take; `validate` checks which ones this kind
/// needs and refuses the others.
///
/// An inline `secret` or `bot_token` never reaches this type: `document` refuses it and
/// removes it first. A
/// plain `url` does, because a webhook may have one; `validate` refuses it for Slack and Teams
/// without echoing it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawChannel {
    pub name: Spanned<String>,
    pub kind: Spanned<String>,
    pub url: Option<Spanned<String>>,
    pub url_env: Option<Spanned<String>>,
    pub url_file: Option<Spanned<String>>,
    pub secret_env: Option<Spanned<String>>,
    pub secret_file: Option<Spanned<String>>,
    pub to: Option<Spanned<Vec<Spanned<String>>>>,
    pub bot_token_env: Option<Spanned<String>>,
    pub bot_token_file: Option<Spanned<String>>,
    pub channel_id: Option<Spanned<String>>,
    pub api_base: Option<Spanned<String>>,
    /// An inline `secret` was refused (by `document`): its absence is not reported again.
    #[serde(skip)]
    pub inline_secret: bool,
    /// An inline `bot_token` was refused (by `document`): the channel still meant a bot token.
    #[serde(skip)]
    pub inline_bot_token: bool,
}

/// `[[notify.routes]]`; the lists keep their own position so that an empty one can be pointed
/// at.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawRoute {
    pub events: Option<Spanned<Vec<Spanned<String>>>>,
    pub min_severity: Option<Spanned<String>>,
    pub resources: Option<Spanned<Vec<Spanned<String>>>>,
    pub teams: Option<Spanned<Vec<Spanned<String>>>>,
    pub channel: Spanned<String>,
}

/// `[reviews]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawReviews {
    pub schedule: Option<Spanned<String>>,
    pub out_dir: Option<Spanned<String>>,
}

/// `[export]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawExport {
    pub nats: Option<RawNats>,
}

/// `[export.nats]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawNats {
    pub server: Spanned<String>,
    pub subject: Spanned<String>,
    pub stream: Spanned<String>,
    pub format: Option<Spanned<String>>,
}
