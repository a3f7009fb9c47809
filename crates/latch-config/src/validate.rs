//! The checks serde cannot make — names, references between tables, cycles, durations,
//! addresses, secrets — all reported at once, and the typed [`Config`] built from what passed.
//! `[notify]` is checked in [`notify`].

mod audit;
mod export;
mod notify;
mod reviews;

use std::collections::{BTreeMap, BTreeSet};
use std::env::VarError;
use std::net::{Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use latch_core::{
    AccessDuration, Catalog, Resource, ResourceKind, ResourceRole, Team, User, UserRole,
};
use toml::Spanned;

use crate::document::{Entry, RawConfig, ResourceEntry, key_path};
use crate::error::Diagnostics;
use crate::interval::parse_interval;
use crate::raw::{
    RawGateway, RawLedger, RawPolicy, RawResource, RawRole, RawServer, RawTeam, RawUser,
};
use crate::{
    ClientAuth, Config, Credential, DEFAULT_CHECKPOINT_INTERVAL, DEFAULT_CREDENTIAL_TTL,
    DEFAULT_DATA_DIR, DEFAULT_ENVIRONMENT, DEFAULT_GATEWAY_LISTEN, DEFAULT_LISTEN,
    DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_ORIGIN, DEFAULT_RECORDING_BUFFER, DEFAULT_RELAY_THREADS,
    DEFAULT_SCHEDULER_INTERVAL, DEFAULT_SCRAM_ITERATIONS, DEFAULT_SENSITIVITY, Database,
    Enforcement, GatewaySettings, GatewayTls, LedgerSettings, MAX_RELAY_THREADS,
    MAX_SCRAM_ITERATIONS, RecordingMode, ResourceLabels, RoleAccess, SENSITIVITIES, SecretRef,
    ServerSettings, TicketPattern, Upstream,
};

/// Reads an environment variable; the process environment, or a map in tests.
pub(crate) type Env<'e> = &'e dyn Fn(&str) -> Result<String, VarError>;

/// How many known names a problem lists before it stops.
const MAX_LISTED: usize = 20;

/// `gateway.credential_ttl` bounds: long enough to type a `psql` command, short enough that a
/// leaked credential is soon useless.
const MIN_CREDENTIAL_TTL: Duration = Duration::from_secs(60);
const MAX_CREDENTIAL_TTL: Duration = Duration::from_secs(24 * 3600);
/// `gateway.max_message_bytes` bounds: below 1 KiB ordinary statements do not fit; 1 GiB is
/// PostgreSQL's own limit for one message.
const MIN_MESSAGE_BYTES: i64 = 1024;
const MAX_MESSAGE_BYTES: i64 = 1024 * 1024 * 1024;
/// `gateway.recording_buffer` bounds: a buffer must hold at least one statement; a million is far
/// beyond what batching needs and keeps the memory a full buffer takes within reason.
const MIN_RECORDING_BUFFER: i64 = 1;
const MAX_RECORDING_BUFFER: i64 = 1_000_000;

/// Checks everything in `raw`, reporting every problem, and builds the config from what passed
/// (the caller discards it when anything was reported).
pub(crate) fn check(
    raw: RawConfig,
    file: &Path,
    env: Env<'_>,
    diagnostics: &mut Diagnostics<'_>,
) -> Config {
    let mut checker = Checker {
        base: file.parent().unwrap_or(Path::new("")).to_owned(),
        env,
        diagnostics,
    };
    // Tables that failed to decode still count as defined, so that references to them are not
    // reported as unknown on top of their own problem.
    let names = Names {
        teams: raw.teams.iter().map(|team| team.name.clone()).collect(),
        users: raw.users.iter().map(|user| user.name.clone()).collect(),
        service_accounts: raw
            .users
            .iter()
            .filter(|user| user.raw.as_ref().is_some_and(|raw| raw.service_account))
            .map(|user| user.name.clone())
            .collect(),
        resources: raw
            .resources
            .iter()
            .map(|resource| resource.entry.name.clone())
            .collect(),
    };
    let (server, timeouts) = checker.server(&raw.server);
    let ledger = checker.ledger(&raw.ledger, &server.data_dir);
    let policy = checker.policy(&raw.policy, &names);
    let gateway = raw
        .gateway
        .as_ref()
        .map(|gateway| checker.gateway(gateway, &server.data_dir));
    let teams = checker.teams(&raw.teams, &names);
    let users = checker.users(&raw.users, &names, raw.users_span);
    let slack_ids = checker.slack_ids(&raw.users);
    let checked = checker.resources(&raw.resources, &names);
    let audit = checker.audit(&raw.audit);
    let nats_export = raw
        .export
        .as_ref()
        .and_then(|export| export.nats.as_ref())
        .and_then(|nats| checker.nats_export(nats));
    let notify = raw
        .notify
        .as_ref()
        .and_then(|notify| checker.notify(notify, &names));
    let reviews = raw
        .reviews
        .as_ref()
        .and_then(|reviews| checker.reviews(reviews, raw.reviews_span.clone()));
    Config {
        path: file.to_owned(),
        server,
        ledger,
        policy,
        audit: crate::AuditSettings {
            enabled: raw.audit.enabled.unwrap_or(true),
            thresholds: audit,
        },
        nats_export,
        reviews,
        catalog: Catalog {
            users,
            teams,
            resources: checked.resources,
            pending_timeout: timeouts.pending_timeout,
            escalate_after: timeouts.escalate_after,
            policy: None,
        },
        upstreams: checked.upstreams,
        resource_labels: checked.labels,
        service_accounts: names.service_accounts,
        gateway,
        notify,
        slack_ids,
    }
}

struct Names {
    teams: BTreeSet<String>,
    users: BTreeSet<String>,
    /// Users with `service_account = true`, who may never be in a position to approve.
    service_accounts: BTreeSet<String>,
    resources: BTreeSet<String>,
}

impl Names {
    fn team(&self, checker: &mut Checker<'_, '_>, team: &Spanned<String>, key: &str) {
        if !self.teams.contains(team.get_ref()) {
            checker.report(
                team,
                key,
                format!(
                    "unknown team `{}` ({})",
                    team.get_ref(),
                    listed("teams", &self.teams)
                ),
            );
        }
    }

    fn user(&self, checker: &mut Checker<'_, '_>, user: &Spanned<String>, key: &str) {
        if !self.users.contains(user.get_ref()) {
            checker.report(
                user,
                key,
                format!(
                    "unknown user `{}` ({})",
                    user.get_ref(),
                    listed("users", &self.users)
                ),
            );
        }
    }

    /// A known user put where they could approve (`as_what`: "lead a team", …) must be a person.
    fn approver(
        &self,
        checker: &mut Checker<'_, '_>,
        user: &Spanned<String>,
        key: &str,
        as_what: &str,
    ) {
        let name = user.get_ref();
        if self.service_accounts.contains(name) {
            checker.report(
                user,
                key,
                format!(
                    "user `{name}` is a service account and cannot {as_what} (service accounts \
                     never approve; expected a person, or `service_account = false` under \
                     `[users.{name}]`)"
                ),
            );
        }
    }
}

/// The server's two request timeouts, for the catalog.
struct Timeouts {
    pending_timeout: Option<AccessDuration>,
    escalate_after: Option<AccessDuration>,
}

/// What the resources become: the catalog's view, the gateway's and the labels.
struct CheckedResources {
    resources: BTreeMap<String, Resource>,
    upstreams: BTreeMap<String, Upstream>,
    labels: BTreeMap<String, ResourceLabels>,
}

/// `teams: eng, payments`, or a hint when there are none.
fn listed(kind: &str, names: &BTreeSet<String>) -> String {
    if names.is_empty() {
        return format!("no {kind} are defined");
    }
    let shown: Vec<&str> = names.iter().take(MAX_LISTED).map(String::as_str).collect();
    let more = if names.len() > MAX_LISTED {
        ", …"
    } else {
        ""
    };
    format!("{kind}: {}{more}", shown.join(", "))
}

struct Checker<'d, 'a> {
    /// The config file's directory, which relative paths are resolved against.
    base: PathBuf,
    env: Env<'d>,
    diagnostics: &'d mut Diagnostics<'a>,
}

impl Checker<'_, '_> {
    fn report<T>(&mut self, value: &Spanned<T>, key: &str, message: impl Into<String>) {
        self.diagnostics.report(Some(value.span()), key, message);
    }

    fn resolve(&self, path: &str) -> PathBuf {
        self.base.join(path)
    }

    /// Users, teams, resources and roles share one rule: resource names become PostgreSQL
    /// database names, and the others appear in commands and URLs.
    fn name<T>(&mut self, entry: &Entry<T>, what: &str) {
        if !valid_name(&entry.name) {
            self.diagnostics.report(
                entry.span.clone(),
                &entry.path,
                format!(
                    "invalid {what} name `{}` (expected a lowercase letter, then up to 62 \
                     lowercase letters, digits, `_` or `-`)",
                    entry.name
                ),
            );
        }
    }

    fn server(&mut self, raw: &RawServer) -> (ServerSettings, Timeouts) {
        let listen = match &raw.listen {
            None => DEFAULT_LISTEN,
            Some(listen) => listen.get_ref().parse::<SocketAddr>().unwrap_or_else(|_| {
                self.report(
                    listen,
                    "server.listen",
                    format!(
                        "invalid socket address `{}` (expected an IP address and a port, e.g. \
                         `127.0.0.1:7070` or `[::1]:7070`)",
                        listen.get_ref()
                    ),
                );
                DEFAULT_LISTEN
            }),
        };
        let data_dir = match &raw.data_dir {
            None => self.resolve(DEFAULT_DATA_DIR),
            Some(dir) => {
                if dir.get_ref().trim().is_empty() {
                    self.report(
                        dir,
                        "server.data_dir",
                        format!(
                            "expected a directory path, e.g. `{DEFAULT_DATA_DIR}` (leave the key \
                             out for the default)"
                        ),
                    );
                }
                self.resolve(dir.get_ref())
            }
        };
        let database = self.database(raw, &data_dir);
        let pending_timeout = self.access_duration(&raw.pending_timeout, "server.pending_timeout");
        let escalate_after = self.access_duration(&raw.escalate_after, "server.escalate_after");
        if let (Some(escalate), Some(pending), Some(escalate_text), Some(pending_text)) = (
            escalate_after,
            pending_timeout,
            &raw.escalate_after,
            &raw.pending_timeout,
        ) && escalate >= pending
        {
            self.report(
                escalate_text,
                "server.escalate_after",
                format!(
                    "`escalate_after` (`{}`) must be shorter than `pending_timeout` (`{}`): \
                     requests time out before they could be escalated (expected a shorter \
                     duration, or no `escalate_after`)",
                    escalate_text.get_ref(),
                    pending_text.get_ref()
                ),
            );
        }
        let scheduler_interval = match &raw.scheduler_interval {
            None => DEFAULT_SCHEDULER_INTERVAL,
            Some(interval) => parse_interval(interval.get_ref()).unwrap_or_else(|message| {
                self.report(interval, "server.scheduler_interval", message);
                DEFAULT_SCHEDULER_INTERVAL
            }),
        };
        let settings = ServerSettings {
            listen,
            data_dir,
            database,
            scheduler_interval,
        };
        let timeouts = Timeouts {
            pending_timeout,
            escalate_after,
        };
        (settings, timeouts)
    }

    /// An optional duration such as `pending_timeout`; `None` when absent or bad (reported).
    fn access_duration(
        &mut self,
        value: &Option<Spanned<String>>,
        key: &str,
    ) -> Option<AccessDuration> {
        let value = value.as_ref()?;
        value
            .get_ref()
            .parse::<AccessDuration>()
            .map_err(|error| self.report(value, key, error.to_string()))
            .ok()
    }

    fn gateway(&mut self, raw: &RawGateway, data_dir: &Path) -> GatewaySettings {
        let listen = match &raw.listen {
            None => DEFAULT_GATEWAY_LISTEN,
            Some(listen) => listen.get_ref().parse::<SocketAddr>().unwrap_or_else(|_| {
                self.report(
                    listen,
                    "gateway.listen",
                    format!(
                        "invalid socket address `{}` (expected an IP address and a port, e.g. \
                         `127.0.0.1:6432` or `[::1]:6432`)",
                        listen.get_ref()
                    ),
                );
                DEFAULT_GATEWAY_LISTEN
            }),
        };
        let self_signed = GatewayTls::SelfSigned {
            cert: data_dir.join("gateway.crt"),
            key: data_dir.join("gateway.key"),
        };
        let tls = match (&raw.tls_cert_file, &raw.tls_key_file) {
            (None, None) => self_signed,
            (Some(cert), Some(key)) => GatewayTls::Files {
                cert: self.tls_file(cert, "gateway.tls_cert_file"),
                key: self.tls_file(key, "gateway.tls_key_file"),
            },
            (Some(cert), None) => {
                self.lone_tls_file(cert, "tls_cert_file", "tls_key_file");
                self_signed
            }
            (None, Some(key)) => {
                self.lone_tls_file(key, "tls_key_file", "tls_cert_file");
                self_signed
            }
        };
        let credential_ttl = match &raw.credential_ttl {
            None => DEFAULT_CREDENTIAL_TTL,
            Some(ttl) => self.credential_ttl(ttl).unwrap_or(DEFAULT_CREDENTIAL_TTL),
        };
        let max_message_bytes = self
            .bounded(
                &raw.max_message_bytes,
                "gateway.max_message_bytes",
                MIN_MESSAGE_BYTES..=MAX_MESSAGE_BYTES,
                "a number of bytes",
                &format!(
                    ", i.e. 1 KiB to 1 GiB; the default is `{DEFAULT_MAX_MESSAGE_BYTES}`, 16 MiB"
                ),
            )
            .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
        let recording_buffer = self
            .bounded(
                &raw.recording_buffer,
                "gateway.recording_buffer",
                MIN_RECORDING_BUFFER..=MAX_RECORDING_BUFFER,
                "a number of statements",
                &format!("; the default is `{DEFAULT_RECORDING_BUFFER}`"),
            )
            .unwrap_or(DEFAULT_RECORDING_BUFFER);
        let relay_threads = self
            .bounded(
                &raw.relay_threads,
                "gateway.relay_threads",
                0..=MAX_RELAY_THREADS as i64,
                "a number of threads",
                &format!(
                    "; `0` relays on the server's shared threads; the default is `{DEFAULT_RELAY_THREADS}`"
                ),
            )
            .unwrap_or(DEFAULT_RELAY_THREADS);
        let scram_iterations = self
            .bounded(
                &raw.scram_iterations,
                "gateway.scram_iterations",
                1..=i64::from(MAX_SCRAM_ITERATIONS),
                "an iteration count",
                &format!("; the default is `{DEFAULT_SCRAM_ITERATIONS}`"),
            )
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(DEFAULT_SCRAM_ITERATIONS);
        let client_auth = match &raw.client_auth {
            None => ClientAuth::default(),
            Some(given) => match given.get_ref().as_str() {
                "scram-sha-256" => ClientAuth::ScramSha256,
                "password" => ClientAuth::Password,
                other => {
                    self.report(
                        given,
                        "gateway.client_auth",
                        format!(
                            "unknown client authentication `{other}` (expected `scram-sha-256`, the default, or `password`)"
                        ),
                    );
                    ClientAuth::default()
                }
            },
        };
        GatewaySettings {
            listen,
            tls,
            allow_plaintext: raw.allow_plaintext,
            client_auth,
            redact_literals: raw.redact_literals,
            credential_ttl,
            max_message_bytes,
            recording_buffer,
            relay_threads,
            scram_iterations,
        }
    }

    /// `tls_cert_file` without `tls_key_file`, or the other way round.
    fn lone_tls_file(&mut self, given: &Spanned<String>, key: &str, other: &str) {
        self.report(
            given,
            &key_path("gateway", key),
            format!(
                "`{key}` is given without `{other}` (expected both, or neither for a self-signed \
                 certificate that latch creates in `data_dir`)"
            ),
        );
    }

    /// A PEM file path, resolved against the config file's directory; not read here.
    fn tls_file(&mut self, path: &Spanned<String>, key: &str) -> PathBuf {
        if path.get_ref().trim().is_empty() {
            self.report(
                path,
                key,
                "expected a PEM file path (leave both `tls_cert_file` and `tls_key_file` out \
                 for a self-signed certificate)",
            );
        }
        self.resolve(path.get_ref())
    }

    fn credential_ttl(&mut self, ttl: &Spanned<String>) -> Option<Duration> {
        let key = "gateway.credential_ttl";
        let parsed = ttl
            .get_ref()
            .parse::<AccessDuration>()
            .map_err(|error| self.report(ttl, key, error.to_string()))
            .ok()?;
        let duration = Duration::from_secs(parsed.as_secs());
        let problem = if duration < MIN_CREDENTIAL_TTL {
            "it is shorter than `1m`"
        } else if duration > MAX_CREDENTIAL_TTL {
            "it is longer than `24h`"
        } else {
            return Some(duration);
        };
        self.report(
            ttl,
            key,
            format!(
                "invalid credential ttl `{}`: {problem} (expected a duration from `1m` to `24h`, \
                 e.g. `10m`)",
                ttl.get_ref()
            ),
        );
        None
    }

    /// An optional whole number within `range`; `None` when absent or out of range (reported).
    fn bounded(
        &mut self,
        value: &Option<Spanned<i64>>,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
        what: &str,
        hint: &str,
    ) -> Option<usize> {
        let value = value.as_ref()?;
        let number = *value.get_ref();
        match usize::try_from(number) {
            Ok(checked) if range.contains(&number) => Some(checked),
            _ => {
                self.report(
                    value,
                    key,
                    format!(
                        "`{number}` is out of range (expected {what} from `{}` to `{}`{hint})",
                        range.start(),
                        range.end()
                    ),
                );
                None
            }
        }
    }

    fn policy(&mut self, raw: &RawPolicy, names: &Names) -> crate::PolicySettings {
        let mut files = Vec::new();
        for (i, file) in raw.files.iter().enumerate() {
            if file.get_ref().trim().is_empty() {
                self.report(
                    file,
                    &format!("policy.files[{i}]"),
                    "expected a path to a `.cedar` file",
                );
                continue;
            }
            files.push(self.resolve(file.get_ref()));
        }
        let mut on_call = BTreeSet::new();
        for (i, user) in raw.on_call.iter().enumerate() {
            if names.users.contains(user.get_ref()) {
                // On-call users may approve their own break-glass access.
                names.approver(self, user, &format!("policy.on_call[{i}]"), "be on call");
                on_call.insert(user.get_ref().clone());
            } else {
                self.report(
                    user,
                    &format!("policy.on_call[{i}]"),
                    format!(
                        "unknown user `{}` ({})",
                        user.get_ref(),
                        listed("users", &names.users)
                    ),
                );
            }
        }
        crate::PolicySettings { files, on_call }
    }

    fn ledger(&mut self, raw: &RawLedger, data_dir: &Path) -> LedgerSettings {
        let origin = match &raw.origin {
            None => DEFAULT_ORIGIN.to_owned(),
            Some(origin) => {
                let text = origin.get_ref();
                // The origin is a line of the checkpoint and the key's name in signed notes.
                let valid = !text.is_empty()
                    && text.len() <= 128
                    && text.chars().all(|c| c.is_ascii_graphic() && c != '+');
                if !valid {
                    self.report(
                        origin,
                        "ledger.origin",
                        format!(
                            "invalid origin `{text}` (expected up to 128 printable ASCII \
                             characters without spaces or `+`, e.g. `{DEFAULT_ORIGIN}`)"
                        ),
                    );
                }
                text.clone()
            }
        };
        let signing_key_file = match &raw.signing_key_file {
            None => data_dir.join("ledger.key"),
            Some(path) => {
                if path.get_ref().trim().is_empty() {
                    self.report(
                        path,
                        "ledger.signing_key_file",
                        "expected a file path (leave the key out for `data_dir/ledger.key`)",
                    );
                }
                self.resolve(path.get_ref())
            }
        };
        let checkpoint_interval = match &raw.checkpoint_interval {
            None => DEFAULT_CHECKPOINT_INTERVAL,
            Some(interval) => parse_interval(interval.get_ref()).unwrap_or_else(|message| {
                self.report(interval, "ledger.checkpoint_interval", message);
                DEFAULT_CHECKPOINT_INTERVAL
            }),
        };
        LedgerSettings {
            origin,
            signing_key_file,
            checkpoint_interval,
        }
    }

    /// The URL is never echoed in a problem: it may hold a password.
    fn database(&mut self, raw: &RawServer, data_dir: &Path) -> Database {
        let sqlite = Database::Sqlite {
            path: data_dir.join("latch.db"),
        };
        match (&raw.database_url, &raw.database_url_env) {
            (None, None) => sqlite,
            (Some(_), Some(var)) => {
                self.report(
                    var,
                    "server.database_url_env",
                    "`database_url` and `database_url_env` are mutually exclusive (keep \
                     `database_url_env` so that the password stays out of the file)",
                );
                sqlite
            }
            (Some(url), None) => {
                if is_postgres_url(url.get_ref()) {
                    Database::Postgres {
                        url: url.get_ref().clone(),
                    }
                } else {
                    self.report(
                        url,
                        "server.database_url",
                        "expected a PostgreSQL URL starting with `postgres://` or \
                         `postgresql://` (leave the key out to use the embedded SQLite database)",
                    );
                    sqlite
                }
            }
            (None, Some(var)) => {
                let key = "server.database_url_env";
                let name = var.get_ref();
                match (self.env)(name) {
                    _ if name.is_empty() => {
                        self.report(var, key, "expected the name of an environment variable");
                    }
                    Ok(url) if is_postgres_url(&url) => return Database::Postgres { url },
                    Ok(_) => self.report(
                        var,
                        key,
                        format!(
                            "environment variable `{name}` does not hold a PostgreSQL URL \
                             (expected one starting with `postgres://` or `postgresql://`)"
                        ),
                    ),
                    Err(VarError::NotPresent) => self.report(
                        var,
                        key,
                        format!(
                            "environment variable `{name}` is not set (expected it to hold the \
                             PostgreSQL URL, e.g. `postgres://latch@db:5432/latch`)"
                        ),
                    ),
                    Err(VarError::NotUnicode(_)) => self.report(
                        var,
                        key,
                        format!("environment variable `{name}` is not valid unicode"),
                    ),
                }
                sqlite
            }
        }
    }

    fn teams(&mut self, entries: &[Entry<RawTeam>], names: &Names) -> BTreeMap<String, Team> {
        let mut teams = BTreeMap::new();
        let mut parents = BTreeMap::new();
        for entry in entries {
            self.name(entry, "team");
            let Some(raw) = &entry.raw else { continue };
            let leads_key = key_path(&entry.path, "leads");
            for lead in &raw.leads {
                names.user(self, lead, &leads_key);
                names.approver(self, lead, &leads_key, "lead a team");
            }
            if let Some(parent) = &raw.parent {
                names.team(self, parent, &key_path(&entry.path, "parent"));
                if names.teams.contains(parent.get_ref()) {
                    parents.insert(entry.name.as_str(), parent);
                }
            }
            let team = Team {
                name: entry.name.clone(),
                leads: raw
                    .leads
                    .iter()
                    .map(|lead| lead.get_ref().clone())
                    .collect(),
                parent: raw.parent.as_ref().map(|parent| parent.get_ref().clone()),
            };
            teams.insert(entry.name.clone(), team);
        }
        for cycle in cycles(&parents) {
            let Some(first) = cycle.first() else { continue };
            if let Some(parent) = parents.get(first.as_str()) {
                let key = key_path(&key_path("teams", first), "parent");
                self.report(
                    parent,
                    &key,
                    format!(
                        "team parents form a cycle: {} (expected a tree: no team may be its own \
                         ancestor)",
                        render_cycle(&cycle)
                    ),
                );
            }
        }
        teams
    }

    fn users(
        &mut self,
        entries: &[Entry<RawUser>],
        names: &Names,
        users_span: Option<Range<usize>>,
    ) -> BTreeMap<String, User> {
        let mut users = BTreeMap::new();
        let mut managers = BTreeMap::new();
        for entry in entries {
            self.name(entry, "user");
            let Some(raw) = &entry.raw else { continue };
            if !is_email(raw.email.get_ref()) {
                self.report(
                    &raw.email,
                    &key_path(&entry.path, "email"),
                    format!(
                        "invalid email address `{}` (expected one like `alice@example.com`)",
                        raw.email.get_ref()
                    ),
                );
            }
            let teams_key = key_path(&entry.path, "teams");
            for team in &raw.teams {
                names.team(self, team, &teams_key);
            }
            if let Some(manager) = &raw.manager {
                let key = key_path(&entry.path, "manager");
                if manager.get_ref() == &entry.name {
                    self.report(
                        manager,
                        &key,
                        format!(
                            "user `{}` cannot be their own manager (expected another user, or no \
                             `manager` key)",
                            entry.name
                        ),
                    );
                } else {
                    names.user(self, manager, &key);
                    names.approver(self, manager, &key, "be a manager");
                    if names.users.contains(manager.get_ref()) {
                        managers.insert(entry.name.as_str(), manager);
                    }
                }
            }
            let mut roles = BTreeSet::new();
            for role in &raw.roles {
                match UserRole::parse(role.get_ref()) {
                    Some(UserRole::Admin) if raw.service_account => self.report(
                        role,
                        &key_path(&entry.path, "roles"),
                        format!(
                            "user `{}` is a service account and cannot have the role `admin` \
                             (admins revoke grants and manage tokens; expected `auditor` or no \
                             role, or `service_account = false`)",
                            entry.name
                        ),
                    ),
                    Some(parsed) => {
                        roles.insert(parsed);
                    }
                    None => self.report(
                        role,
                        &key_path(&entry.path, "roles"),
                        format!(
                            "unknown role `{}` (expected `admin` or `auditor`; roles on a \
                             resource go under `[resources.NAME.roles.ROLE]`)",
                            role.get_ref()
                        ),
                    ),
                }
            }
            let user = User {
                name: entry.name.clone(),
                email: raw.email.get_ref().clone(),
                teams: raw
                    .teams
                    .iter()
                    .map(|team| team.get_ref().clone())
                    .collect(),
                manager: raw
                    .manager
                    .as_ref()
                    .map(|manager| manager.get_ref().clone()),
                roles,
            };
            users.insert(entry.name.clone(), user);
        }
        for cycle in cycles(&managers) {
            let Some(first) = cycle.first() else { continue };
            if let Some(manager) = managers.get(first.as_str()) {
                let key = key_path(&key_path("users", first), "manager");
                self.report(
                    manager,
                    &key,
                    format!(
                        "managers form a cycle: {} (expected a chain that ends with someone \
                         who has no manager)",
                        render_cycle(&cycle)
                    ),
                );
            }
        }
        // A user that failed to decode may be the admin; do not add a guess to its problem.
        let all_decoded = entries.iter().all(|entry| entry.raw.is_some());
        let has_admin = users
            .values()
            .any(|user| user.roles.contains(&UserRole::Admin));
        if all_decoded && !has_admin {
            self.diagnostics.report(
                users_span,
                "users",
                "no user has the role `admin` (expected at least one, e.g. `roles = [\"admin\"]` \
                 under `[users.NAME]`, so that someone can revoke any grant)",
            );
        }
        users
    }

    fn resources(&mut self, entries: &[ResourceEntry], names: &Names) -> CheckedResources {
        let mut resources = BTreeMap::new();
        let mut upstreams = BTreeMap::new();
        let mut labels = BTreeMap::new();
        for ResourceEntry {
            entry,
            no_roles,
            roles: role_entries,
        } in entries
        {
            self.name(entry, "resource");
            let mut roles = BTreeMap::new();
            let mut credentials = BTreeMap::new();
            for (role, credential) in role_entries.iter().filter_map(|role| self.role(role)) {
                credentials.insert(role.name.clone(), credential);
                roles.insert(role.name.clone(), role);
            }
            if *no_roles {
                self.diagnostics.report(
                    entry.span.clone(),
                    &entry.path,
                    format!(
                        "resource `{}` has no roles (expected at least one \
                         `[{}.roles.ROLE]` table)",
                        entry.name, entry.path
                    ),
                );
            }
            let Some(raw) = &entry.raw else { continue };
            names.team(self, &raw.owner_team, &key_path(&entry.path, "owner_team"));
            let kind = match raw.kind.get_ref().as_str() {
                "postgres" => Some(ResourceKind::Postgres),
                "mysql" => Some(ResourceKind::Mysql),
                other => {
                    self.report(
                        &raw.kind,
                        &key_path(&entry.path, "kind"),
                        format!("unknown resource kind `{other}` (expected `postgres` or `mysql`)"),
                    );
                    None
                }
            };
            let upstream_path = key_path(&entry.path, "upstream");
            let address = &raw.upstream.address;
            let address_path = key_path(&upstream_path, "address");
            if is_socket_path(address.get_ref()) {
                // A Unix-domain socket: the gateway's PostgreSQL connector speaks it; TLS
                // over a local socket is neither offered by PostgreSQL nor needed.
                if kind != Some(ResourceKind::Postgres) {
                    self.report(
                        address,
                        &address_path,
                        format!(
                            "a Unix-domain socket (`{}`) is supported for `postgres` resources \
                             only (expected `host:port`)",
                            address.get_ref()
                        ),
                    );
                } else if raw.upstream.tls {
                    self.report(
                        address,
                        &address_path,
                        format!(
                            "`tls = true` needs a TCP address: PostgreSQL does not offer TLS on \
                             its Unix-domain socket `{}` (remove `tls`, or give `host:port`)",
                            address.get_ref()
                        ),
                    );
                }
            } else if !is_host_port(address.get_ref()) {
                self.report(
                    address,
                    &address_path,
                    format!(
                        "invalid address `{}` (expected `host:port`, e.g. `127.0.0.1:5432`, \
                         `db.internal:5432` or `[::1]:5432`, or the path of PostgreSQL's \
                         Unix-domain socket, e.g. `/var/run/postgresql/.s.PGSQL.5432`)",
                        address.get_ref()
                    ),
                );
            }
            if let Some(database) = &raw.upstream.database
                && database.get_ref().is_empty()
            {
                self.report(
                    database,
                    &key_path(&upstream_path, "database"),
                    "expected a database name (leave the key out for the upstream's default)",
                );
            }
            let recording = self.recording(raw, &entry.path);
            upstreams.insert(
                entry.name.clone(),
                Upstream {
                    address: address.get_ref().clone(),
                    database: raw
                        .upstream
                        .database
                        .as_ref()
                        .map(|database| database.get_ref().clone()),
                    tls: raw.upstream.tls,
                    tls_ca_file: self.upstream_ca(raw, &entry.path),
                    credentials,
                    recording,
                },
            );
            labels.insert(entry.name.clone(), self.labels(raw, &entry.path));
            if let Some(kind) = kind {
                let resource = Resource {
                    name: entry.name.clone(),
                    kind,
                    owner_team: raw.owner_team.get_ref().clone(),
                    roles,
                };
                resources.insert(entry.name.clone(), resource);
            }
        }
        CheckedResources {
            resources,
            upstreams,
            labels,
        }
    }

    /// `sensitivity`, `environment` and `ticket_pattern`, with their defaults.
    fn labels(&mut self, raw: &RawResource, path: &str) -> ResourceLabels {
        let sensitivity = match &raw.sensitivity {
            None => DEFAULT_SENSITIVITY.to_owned(),
            Some(sensitivity) => {
                let text = sensitivity.get_ref();
                if !SENSITIVITIES.contains(&text.as_str()) {
                    self.report(
                        sensitivity,
                        &key_path(path, "sensitivity"),
                        format!(
                            "unknown sensitivity `{text}` (expected `low`, `normal`, `high` or \
                             `critical`)"
                        ),
                    );
                }
                text.clone()
            }
        };
        let environment = match &raw.environment {
            None => DEFAULT_ENVIRONMENT.to_owned(),
            Some(environment) => {
                let text = environment.get_ref();
                if !valid_name(text) {
                    self.report(
                        environment,
                        &key_path(path, "environment"),
                        format!(
                            "invalid environment name `{text}` (expected a lowercase letter, then \
                             up to 62 lowercase letters, digits, `_` or `-`, e.g. `production` \
                             or `staging`)"
                        ),
                    );
                }
                text.clone()
            }
        };
        let ticket_pattern = raw.ticket_pattern.as_ref().and_then(|pattern| {
            TicketPattern::new(pattern.get_ref())
                .map_err(|error| {
                    self.report(
                        pattern,
                        &key_path(path, "ticket_pattern"),
                        error.to_string(),
                    );
                })
                .ok()
        });
        ResourceLabels {
            sensitivity,
            environment,
            ticket_pattern,
            scope: self.scope(&raw.scope, path),
        }
    }

    /// `upstream.tls_ca_file`, resolved against the config's directory; only with `tls = true`.
    fn upstream_ca(&mut self, raw: &RawResource, path: &str) -> Option<PathBuf> {
        let file = raw.upstream.tls_ca_file.as_ref()?;
        if !raw.upstream.tls {
            self.report(
                file,
                &key_path(&key_path(path, "upstream"), "tls_ca_file"),
                "`tls_ca_file` is only used with TLS (expected `tls = true` beside it)",
            );
        }
        Some(self.resolve(file.get_ref()))
    }

    fn recording(&mut self, raw: &RawResource, path: &str) -> RecordingMode {
        let Some(recording) = &raw.recording else {
            return RecordingMode::Buffered;
        };
        match recording.get_ref().as_str() {
            "buffered" => RecordingMode::Buffered,
            "strict" => RecordingMode::Strict,
            other => {
                self.report(
                    recording,
                    &key_path(path, "recording"),
                    format!("unknown recording mode `{other}` (expected `buffered` or `strict`)"),
                );
                RecordingMode::Buffered
            }
        }
    }

    /// One resource role: its grant limit for the catalog and its login for the gateway; `None`
    /// when it has a problem (already reported).
    fn role(&mut self, entry: &Entry<RawRole>) -> Option<(ResourceRole, Credential)> {
        self.name(entry, "role");
        let raw = entry.raw.as_ref()?;
        let key = |name: &str| key_path(&entry.path, name);
        let max_duration = raw
            .max_duration
            .get_ref()
            .parse::<AccessDuration>()
            .map_err(|error| {
                self.report(&raw.max_duration, &key("max_duration"), error.to_string())
            })
            .ok();
        if raw.username.get_ref().is_empty() {
            self.report(
                &raw.username,
                &key("username"),
                "expected the upstream user name this role logs in as",
            );
        }
        let password = match (&raw.password_env, &raw.password_file) {
            (Some(_), Some(file)) => {
                self.report(
                    file,
                    &key("password_file"),
                    "`password_env` and `password_file` are mutually exclusive (expected one of \
                     them, or neither for an upstream that trusts the user without a password)",
                );
                SecretRef::None
            }
            (Some(var), None) => {
                if var.get_ref().is_empty() {
                    self.report(
                        var,
                        &key("password_env"),
                        "expected the name of an environment variable",
                    );
                }
                SecretRef::Env(var.get_ref().clone())
            }
            (None, Some(file)) => {
                if file.get_ref().is_empty() {
                    self.report(
                        file,
                        &key("password_file"),
                        "expected the path of a file holding the password",
                    );
                }
                SecretRef::File(self.resolve(file.get_ref()))
            }
            (None, None) => SecretRef::None,
        };
        let access = match raw.access.as_ref() {
            None => Some(RoleAccess::Read),
            Some(access) => match access.get_ref().as_str() {
                "read" => Some(RoleAccess::Read),
                "write" => Some(RoleAccess::Write),
                other => {
                    self.report(
                        access,
                        &key("access"),
                        format!("unknown access `{other}` (expected `read` or `write`)"),
                    );
                    None
                }
            },
        };
        let enforcement = match raw.enforcement.as_ref() {
            None => Some(Enforcement::Enforce),
            Some(enforcement) => match enforcement.get_ref().as_str() {
                "enforce" => Some(Enforcement::Enforce),
                "audit" => Some(Enforcement::Audit),
                other => {
                    self.report(
                        enforcement,
                        &key("enforcement"),
                        format!("unknown enforcement `{other}` (expected `enforce` or `audit`)"),
                    );
                    None
                }
            },
        };
        let role = ResourceRole {
            name: entry.name.clone(),
            max_duration: max_duration?,
        };
        let credential = Credential {
            username: raw.username.get_ref().clone(),
            password,
            access: access?,
            enforcement: enforcement?,
        };
        Some((role, credential))
    }
}

/// `^[a-z][a-z0-9_-]{0,62}$`
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|first| first.is_ascii_lowercase())
        && name.len() <= 63
        && chars.all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '-')
}

fn is_email(email: &str) -> bool {
    email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && !email.chars().any(char::is_whitespace)
    })
}

fn is_postgres_url(url: &str) -> bool {
    ["postgres://", "postgresql://"].iter().any(|scheme| {
        url.strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty())
    })
}

/// An absolute path: the file of a Unix-domain socket (PostgreSQL names it
/// `<unix_socket_directory>/.s.PGSQL.<port>`).
fn is_socket_path(address: &str) -> bool {
    address.starts_with('/') && address.len() > 1
}

/// `host:port` with a non-zero port; an IPv6 host goes in brackets.
fn is_host_port(address: &str) -> bool {
    let Some((host, port)) = address.rsplit_once(':') else {
        return false;
    };
    let port_ok = !port.is_empty()
        && port.chars().all(|ch| ch.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|port| port != 0);
    let host_ok = match host.strip_prefix('[') {
        Some(bracketed) => bracketed
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<Ipv6Addr>().is_ok()),
        None => {
            !host.is_empty()
                && host
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '_'))
        }
    };
    port_ok && host_ok
}

/// The cycles of a graph where each node has at most one successor (a team's parent, a user's
/// manager), each starting at its smallest node, ordered by it.
fn cycles(edges: &BTreeMap<&str, &Spanned<String>>) -> Vec<Vec<String>> {
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut found = Vec::new();
    for &start in edges.keys() {
        let mut path: Vec<&str> = Vec::new();
        let mut node = start;
        loop {
            if done.contains(node) {
                break;
            }
            if let Some(at) = path.iter().position(|seen| *seen == node) {
                let mut cycle = path.split_off(at);
                done.extend(cycle.iter().copied());
                if let Some(smallest) = cycle
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, name)| **name)
                    .map(|(index, _)| index)
                {
                    cycle.rotate_left(smallest);
                }
                found.push(cycle.into_iter().map(str::to_owned).collect());
                break;
            }
            path.push(node);
            match edges.get(node) {
                Some(next) => node = next.get_ref(),
                None => break,
            }
        }
        done.extend(path);
    }
    found.sort();
    found
}

/// `` `a` → `b` → `a` ``
fn render_cycle(cycle: &[String]) -> String {
    cycle
        .iter()
        .chain(cycle.first())
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(" → ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spanned(text: &str) -> Spanned<String> {
        Spanned::new(0..0, text.to_owned())
    }

    #[test]
    fn finds_each_cycle_once_from_its_smallest_node() {
        let names = ["a", "b", "c", "d", "e", "f", "g"].map(spanned);
        let [a, b, c, d, e, f, g] = &names;
        // g → a → b → c → a (g leads into the cycle), d → d, e → f (no cycle).
        let edges = BTreeMap::from([("g", a), ("a", b), ("b", c), ("c", a), ("d", d), ("e", f)]);
        assert_eq!(
            cycles(&edges),
            vec![
                vec!["a".to_owned(), "b".to_owned(), "c".to_owned()],
                vec!["d".to_owned()]
            ]
        );
        let _ = (e, g);
        assert_eq!(
            render_cycle(&["a".to_owned(), "b".to_owned()]),
            "`a` → `b` → `a`"
        );
    }

    #[test]
    fn names_are_lowercase_identifiers_of_at_most_63_characters() {
        for good in ["a", "payments-db", "read_only", "team2", &"a".repeat(63)] {
            assert!(valid_name(good), "{good}");
        }
        for bad in [
            "",
            "2fa",
            "-a",
            "Alice",
            "payments db",
            "é",
            "a.b",
            &"a".repeat(64),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn addresses_are_host_and_port() {
        for good in [
            "127.0.0.1:5432",
            "db.internal:5432",
            "[::1]:5432",
            "db-1_a:1",
        ] {
            assert!(is_host_port(good), "{good}");
        }
        for bad in [
            "127.0.0.1",
            ":5432",
            "db:",
            "db:0",
            "db:65536",
            "db:+1",
            "::1:5432",
            "[db]:1",
            "a b:1",
        ] {
            assert!(!is_host_port(bad), "{bad}");
        }
    }

    #[test]
    fn emails_and_postgres_urls_are_checked_for_shape() {
        assert!(is_email("alice@example.com"));
        for bad in [
            "alice",
            "@example.com",
            "alice@",
            "a@b@c",
            "a lice@example.com",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
        assert!(is_postgres_url("postgres://latch@db/latch"));
        assert!(is_postgres_url("postgresql://db"));
        assert!(!is_postgres_url("postgres://"));
        assert!(!is_postgres_url("mysql://db"));
    }
}
