//! Whole files through [`crate::parse`]: what a good file becomes, and the exact problems a bad
//! one gets (snapshots, since people read them).

use std::collections::{BTreeMap, BTreeSet};
use std::env::VarError;
use std::path::{Path, PathBuf};
use std::time::Duration;

use expect_test::{Expect, expect};
use latch_core::{
    AccessDuration, Catalog, Resource, ResourceKind, ResourceRole, Team, User, UserRole,
};

use crate::{
    ChannelKind, ChannelSettings, ClientAuth, Config, Credential, Database, Enforcement,
    GatewaySettings, GatewayTls, NotifySettings, RecordingMode, ResourceLabels, RoleAccess,
    RouteSettings, SecretRef, ServerSettings, TicketPattern, Upstream, UrlRef, parse_with_env,
};

/// One admin, one team: enough for a file to be valid, so a case adds only its mistake.
const BASE: &str = r#"
[teams.eng]
[users.erin]
email = "erin@example.com"
teams = ["eng"]
roles = ["admin"]
"#;

/// The environment the tests see: only `LATCH_TEST_DB`.
fn env(name: &str) -> Result<String, VarError> {
    match name {
        "LATCH_TEST_DB" => Ok("postgres://latch:pw@db:5432/latch".to_owned()),
        "LATCH_TEST_NOT_A_URL" => Ok("mysql://secret@db".to_owned()),
        _ => Err(VarError::NotPresent),
    }
}

fn parse(text: &str) -> Result<Config, crate::ConfigError> {
    parse_with_env(text, Path::new("/etc/latch/latch.toml"), env)
}

/// Checks that `text` (after [`BASE`]) is refused with exactly `expected`.
fn check_err(text: &str, expected: Expect) {
    let text = format!("{BASE}{text}");
    match parse(&text) {
        Ok(config) => panic!("expected problems, got {config:#?}"),
        Err(error) => expected.assert_eq(&error.to_string()),
    }
}

fn user(name: &str, teams: &[&str], manager: Option<&str>, roles: &[UserRole]) -> User {
    User {
        name: name.to_owned(),
        email: format!("{name}@example.com"),
        teams: teams.iter().map(|team| (*team).to_owned()).collect(),
        manager: manager.map(str::to_owned),
        roles: roles.iter().copied().collect(),
    }
}

fn team(name: &str, leads: &[&str], parent: Option<&str>) -> Team {
    Team {
        name: name.to_owned(),
        leads: leads.iter().map(|lead| (*lead).to_owned()).collect(),
        parent: parent.map(str::to_owned),
    }
}

fn duration(text: &str) -> AccessDuration {
    text.parse().unwrap()
}

/// The labels of a resource that sets none.
fn default_labels() -> ResourceLabels {
    ResourceLabels {
        sensitivity: "normal".to_owned(),
        environment: "production".to_owned(),
        ticket_pattern: None,
        scope: Vec::new(),
    }
}

/// A login with the default gateway settings: read-only, enforced.
fn credential(username: &str, password: SecretRef) -> Credential {
    Credential {
        username: username.to_owned(),
        password,
        access: RoleAccess::Read,
        enforcement: Enforcement::Enforce,
    }
}

#[test]
fn a_good_file_becomes_typed_values() {
    let text = r#"
[server]
listen = "0.0.0.0:8080"
data_dir = "state"
pending_timeout = "2h"
escalate_after = "30m"
scheduler_interval = "250ms"

[teams.eng]
leads = ["carol"]
[teams.payments]
leads = ["bob"]
parent = "eng"

[users.alice]
email = "alice@example.com"
teams = ["payments"]
manager = "carol"
[users.bob]
email = "bob@example.com"
teams = ["payments"]
[users.carol]
email = "carol@example.com"
teams = ["eng"]
roles = ["admin", "auditor"]

[resources.payments-db]
kind = "postgres"
owner_team = "payments"
sensitivity = "high"
environment = "staging"
ticket_pattern = '[A-Z]+-\d+'
recording = "strict"
upstream = { address = "db.internal:5432", database = "payments", tls = true }
roles.read = { max_duration = "4h", username = "reader", password_env = "READ_PW" }
[resources.payments-db.roles.write]
max_duration = "1h30m"
username = "writer"
password_file = "secrets/write"
access = "write"
enforcement = "audit"
[resources.ledger]
kind = "mysql"
owner_team = "eng"
[resources.ledger.upstream]
address = "[::1]:3306"
[resources.ledger.roles.admin]
max_duration = "15m"
username = "root"
"#;
    let config = parse(text).unwrap();
    let expected = Config {
        path: PathBuf::from("/etc/latch/latch.toml"),
        server: ServerSettings {
            listen: "0.0.0.0:8080".parse().unwrap(),
            data_dir: PathBuf::from("/etc/latch/state"),
            database: Database::Sqlite {
                path: PathBuf::from("/etc/latch/state/latch.db"),
            },
            scheduler_interval: Duration::from_millis(250),
        },
        ledger: crate::LedgerSettings {
            origin: crate::DEFAULT_ORIGIN.to_owned(),
            signing_key_file: PathBuf::from("/etc/latch/state/ledger.key"),
            checkpoint_interval: crate::DEFAULT_CHECKPOINT_INTERVAL,
        },
        audit: crate::AuditSettings {
            enabled: true,
            thresholds: latch_audit::AuditSettings::default(),
        },
        nats_export: None,
        reviews: None,
        policy: crate::PolicySettings::default(),
        catalog: Catalog {
            users: BTreeMap::from([
                (
                    "alice".to_owned(),
                    user("alice", &["payments"], Some("carol"), &[]),
                ),
                ("bob".to_owned(), user("bob", &["payments"], None, &[])),
                (
                    "carol".to_owned(),
                    user(
                        "carol",
                        &["eng"],
                        None,
                        &[UserRole::Admin, UserRole::Auditor],
                    ),
                ),
            ]),
            teams: BTreeMap::from([
                ("eng".to_owned(), team("eng", &["carol"], None)),
                (
                    "payments".to_owned(),
                    team("payments", &["bob"], Some("eng")),
                ),
            ]),
            resources: BTreeMap::from([
                (
                    "ledger".to_owned(),
                    Resource {
                        name: "ledger".to_owned(),
                        kind: ResourceKind::Mysql,
                        owner_team: "eng".to_owned(),
                        roles: BTreeMap::from([(
                            "admin".to_owned(),
                            ResourceRole {
                                name: "admin".to_owned(),
                                max_duration: duration("15m"),
                            },
                        )]),
                    },
                ),
                (
                    "payments-db".to_owned(),
                    Resource {
                        name: "payments-db".to_owned(),
                        kind: ResourceKind::Postgres,
                        owner_team: "payments".to_owned(),
                        roles: BTreeMap::from([
                            (
                                "read".to_owned(),
                                ResourceRole {
                                    name: "read".to_owned(),
                                    max_duration: duration("4h"),
                                },
                            ),
                            (
                                "write".to_owned(),
                                ResourceRole {
                                    name: "write".to_owned(),
                                    max_duration: duration("1h30m"),
                                },
                            ),
                        ]),
                    },
                ),
            ]),
            pending_timeout: Some(duration("2h")),
            escalate_after: Some(duration("30m")),
            policy: None,
        },
        upstreams: BTreeMap::from([
            (
                "ledger".to_owned(),
                Upstream {
                    address: "[::1]:3306".to_owned(),
                    database: None,
                    tls: false,
                    tls_ca_file: None,
                    credentials: BTreeMap::from([(
                        "admin".to_owned(),
                        credential("root", SecretRef::None),
                    )]),
                    recording: RecordingMode::Buffered,
                },
            ),
            (
                "payments-db".to_owned(),
                Upstream {
                    address: "db.internal:5432".to_owned(),
                    database: Some("payments".to_owned()),
                    tls: true,
                    tls_ca_file: None,
                    credentials: BTreeMap::from([
                        (
                            "read".to_owned(),
                            credential("reader", SecretRef::Env("READ_PW".to_owned())),
                        ),
                        (
                            "write".to_owned(),
                            Credential {
                                username: "writer".to_owned(),
                                password: SecretRef::File(PathBuf::from(
                                    "/etc/latch/secrets/write",
                                )),
                                access: RoleAccess::Write,
                                enforcement: Enforcement::Audit,
                            },
                        ),
                    ]),
                    recording: RecordingMode::Strict,
                },
            ),
        ]),
        resource_labels: BTreeMap::from([
            ("ledger".to_owned(), default_labels()),
            (
                "payments-db".to_owned(),
                ResourceLabels {
                    sensitivity: "high".to_owned(),
                    environment: "staging".to_owned(),
                    ticket_pattern: Some(TicketPattern::new(r"[A-Z]+-\d+").unwrap()),
                    scope: Vec::new(),
                },
            ),
        ]),
        service_accounts: BTreeSet::new(),
        gateway: None,
        notify: None,
        slack_ids: BTreeMap::new(),
    };
    assert_eq!(config, expected);
    let pattern = config.resource_labels["payments-db"]
        .ticket_pattern
        .as_ref()
        .unwrap();
    assert!(pattern.matches("PAY-42"));
    assert!(!pattern.matches("see PAY-42"));
}

#[test]
fn the_quickstart_example_loads() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/quickstart/latch.toml"
    ));
    let config = crate::load(path).unwrap_or_else(|error| panic!("{error}"));
    let catalog = &config.catalog;
    assert_eq!(
        catalog.users.keys().collect::<Vec<_>>(),
        ["alice", "bob", "carol", "dave", "erin"]
    );
    assert!(catalog.may_approve("bob", "alice", "payments-db"));
    assert!(catalog.may_approve("carol", "alice", "payments-db"));
    assert!(!catalog.may_approve("alice", "alice", "payments-db"));
    assert!(catalog.has_role("erin", UserRole::Admin));
    assert!(catalog.has_role("dave", UserRole::Auditor));
    assert_eq!(catalog.teams["payments"].parent.as_deref(), Some("eng"));
    assert_eq!(catalog.pending_timeout, Some(duration("24h")));
    let roles = &catalog.resources["payments-db"].roles;
    assert_eq!(roles["read"].max_duration, duration("4h"));
    assert_eq!(roles["write"].max_duration, duration("1h"));
    let upstream = &config.upstreams["payments-db"];
    assert_eq!(upstream.address, "127.0.0.1:5432");
    assert_eq!(upstream.database.as_deref(), Some("postgres"));
    let read = credential("postgres", SecretRef::None);
    let write = Credential {
        access: RoleAccess::Write,
        ..read.clone()
    };
    assert_eq!(
        upstream.credentials,
        BTreeMap::from([("read".to_owned(), read), ("write".to_owned(), write)])
    );
    assert_eq!(upstream.recording, RecordingMode::Buffered);
    // The README's walkthrough requests without a ticket: the quickstart must not demand one.
    assert_eq!(config.resource_labels["payments-db"], default_labels());
    assert!(config.service_accounts.is_empty());
    let dir = path.parent().unwrap();
    assert_eq!(
        config.gateway,
        Some(GatewaySettings {
            listen: crate::DEFAULT_GATEWAY_LISTEN,
            tls: GatewayTls::SelfSigned {
                cert: dir.join("data/gateway.crt"),
                key: dir.join("data/gateway.key"),
            },
            allow_plaintext: false,
            client_auth: ClientAuth::ScramSha256,
            redact_literals: false,
            credential_ttl: crate::DEFAULT_CREDENTIAL_TTL,
            max_message_bytes: crate::DEFAULT_MAX_MESSAGE_BYTES,
            recording_buffer: crate::DEFAULT_RECORDING_BUFFER,
            relay_threads: crate::DEFAULT_RELAY_THREADS,
            scram_iterations: crate::DEFAULT_SCRAM_ITERATIONS,
        })
    );
    assert_eq!(config.server.data_dir, dir.join("data"));
    assert_eq!(
        config.server.database,
        Database::Sqlite {
            path: dir.join("data/latch.db")
        }
    );
    assert_eq!(config.server.scheduler_interval, Duration::from_millis(100));
    // Notifications are documented there but commented out: the quickstart sends nothing.
    assert_eq!(config.notify, None);
    assert!(config.slack_ids.is_empty());
}

/// The commented-out `[notify]` example of the quickstart, uncommented, is a valid config.
#[test]
fn the_quickstart_notify_example_is_valid() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/quickstart/latch.toml"
    ));
    let text = std::fs::read_to_string(path).unwrap();
    let (head, example) = text.split_once("\n# [notify]\n").unwrap();
    let uncommented: String = std::iter::once("[notify]")
        .chain(example.lines().filter(|line| !line.starts_with("# #")))
        .map(|line| line.strip_prefix('#').unwrap_or(line))
        .map(|line| format!("{}\n", line.strip_prefix(' ').unwrap_or(line)))
        .collect();
    assert!(!uncommented.lines().any(|line| line.starts_with('#')));
    let config = parse_with_env(&format!("{head}\n{uncommented}"), path, env)
        .unwrap_or_else(|error| panic!("{error}\n{uncommented}"));
    let notify = config.notify.unwrap();
    let names: Vec<&str> = notify.channels.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["approvals", "payments-approvals", "siem", "security-mail"]
    );
    assert!(matches!(
        notify.channels[1].kind,
        ChannelKind::SlackBot { .. }
    ));
    assert_eq!(notify.routes.len(), 4);
    assert!(notify.slack_signing_secret.is_some());
    assert!(notify.smtp.is_some());
}

#[test]
fn the_quickstart_audit_and_export_examples_are_valid() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/quickstart/latch.toml"
    ));
    let text = std::fs::read_to_string(path).unwrap();
    let (head, rest) = text.split_once("\n# [audit]\n").unwrap();
    let (example, tail) = rest.split_once("\n# ─── notifications").unwrap();
    // The example's TOML lines, uncommented; its prose stays a comment.
    let uncommented: String = std::iter::once("[audit]")
        .chain(example.lines().map(|line| {
            let toml = line.strip_prefix("# ").unwrap_or(line);
            let is_toml = toml.starts_with('[')
                || toml.split_once(" = ").is_some_and(|(key, _)| {
                    key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                });
            if is_toml { toml } else { line }
        }))
        .map(|line| format!("{line}\n"))
        .collect();
    let config = parse_with_env(
        &format!("{head}\n{uncommented}\n# ─── notifications{tail}"),
        path,
        env,
    )
    .unwrap_or_else(|error| panic!("{error}\n{uncommented}"));
    assert!(
        config
            .audit
            .thresholds
            .disabled
            .contains(&latch_audit::Checkpoint::UsageFirstTime)
    );
    assert_eq!(
        config.nats_export.map(|nats| nats.stream),
        Some("LATCH".to_owned())
    );
    assert_eq!(
        config.reviews,
        Some(crate::ReviewSettings {
            schedule: crate::ReviewSchedule::Quarterly,
            out_dir: path.parent().unwrap().join("reviews"),
        })
    );
}

#[test]
fn server_settings_have_defaults() {
    let config = parse_with_env(BASE, Path::new("latch.toml"), env).unwrap();
    assert_eq!(
        config.server,
        ServerSettings {
            listen: "127.0.0.1:7070".parse().unwrap(),
            data_dir: PathBuf::from("data"),
            database: Database::Sqlite {
                path: PathBuf::from("data/latch.db")
            },
            scheduler_interval: Duration::from_millis(100),
        }
    );
    assert_eq!(config.catalog.pending_timeout, None);
    assert_eq!(config.catalog.escalate_after, None);
    assert!(config.catalog.resources.is_empty());
    assert_eq!(config.gateway, None);
}

#[test]
fn absolute_data_dir_and_database_url() {
    let text = format!(
        "{BASE}[server]\ndata_dir = \"/var/lib/latch\"\ndatabase_url = \"postgresql://db/latch\"\n"
    );
    let server = parse(&text).unwrap().server;
    assert_eq!(server.data_dir, PathBuf::from("/var/lib/latch"));
    assert_eq!(
        server.database,
        Database::Postgres {
            url: "postgresql://db/latch".to_owned()
        }
    );
    assert_eq!(
        format!("{:?}", server.database),
        r#"Postgres { url: "<redacted>" }"#
    );
}

#[test]
fn database_url_env_is_read_at_load_time() {
    let text = format!("{BASE}[server]\ndatabase_url_env = \"LATCH_TEST_DB\"\n");
    assert_eq!(
        parse(&text).unwrap().server.database,
        Database::Postgres {
            url: "postgres://latch:pw@db:5432/latch".to_owned()
        }
    );
}

#[test]
fn load_names_a_file_it_cannot_read() {
    let error = crate::load(Path::new("/nonexistent/latch.toml")).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/latch.toml: cannot read the config file: "),
        "{error}"
    );
    assert!(error.problems().is_empty());
}

#[test]
fn a_syntax_error_has_its_line_and_column() {
    check_err(
        "[users.bob\nemail = 1\n",
        expect!["/etc/latch/latch.toml:7:11: invalid table header; expected `.`, `]`"],
    );
}

#[test]
fn an_unknown_key_is_refused_with_its_line_and_the_allowed_keys() {
    check_err(
        "[users.bob]\nemail = \"bob@example.com\"\nmanger = \"erin\"\n",
        expect![
            "/etc/latch/latch.toml:9:1: users.bob.manger: unknown key `manger`, expected one of `email`, `teams`, `manager`, `roles`, `service_account`, `slack_id`"
        ],
    );
}

#[test]
fn an_unknown_section_is_refused() {
    check_err(
        "[user.bob]\nemail = \"bob@example.com\"\n",
        expect![
            "/etc/latch/latch.toml:7:2: user: unknown key `user`, expected one of `server`, `ledger`, `policy`, `gateway`, `notify`, `audit`, `export`, `reviews`, `teams`, `users`, `resources`"
        ],
    );
}

#[test]
fn type_errors_and_missing_keys_are_reported_for_every_table() {
    check_err(
        r#"[users.bob]
email = 3
[users.carol]
teams = ["eng"]
[teams.ops]
leads = "erin"
[resources.db]
kind = "postgres"
owner_team = "eng"
upstream = { address = "db:5432", tls = "yes" }
[resources.db.roles.read]
max_duration = 4
username = "r"
"#,
        expect![[r#"
            /etc/latch/latch.toml:8:9: users.bob.email: invalid type: integer `3`, expected a string
            /etc/latch/latch.toml:9:8: users.carol: missing key `email`
            /etc/latch/latch.toml:12:9: teams.ops.leads: invalid type: string "erin", expected an array
            /etc/latch/latch.toml:16:41: resources.db.upstream.tls: invalid type: string "yes", expected a boolean
            /etc/latch/latch.toml:18:16: resources.db.roles.read.max_duration: invalid type: integer `4`, expected a string"#]],
    );
}

#[test]
fn tables_must_be_tables() {
    let text = "server = 1\nresources = [1]\n[teams]\nops = \"x\"\n[users.erin]\nemail = \"erin@example.com\"\nroles = [\"admin\"]\n";
    expect![[r#"
        /etc/latch/latch.toml:1:10: server: expected a table, found an integer
        /etc/latch/latch.toml:2:13: resources: expected a table of named tables, e.g. `[resources.NAME]`, found an array
        /etc/latch/latch.toml:4:7: teams.ops: expected a table, found a string"#]].assert_eq(&parse(text).unwrap_err().to_string());
}

#[test]
fn listen_must_be_a_socket_address() {
    check_err(
        "[server]\nlisten = \"localhost:7070\"\n",
        expect![
            "/etc/latch/latch.toml:8:10: server.listen: invalid socket address `localhost:7070` (expected an IP address and a port, e.g. `127.0.0.1:7070` or `[::1]:7070`)"
        ],
    );
}

#[test]
fn durations_and_intervals_must_parse() {
    check_err(
        r#"[server]
pending_timeout = "1w"
scheduler_interval = "1m"
[resources.db]
kind = "postgres"
owner_team = "eng"
upstream.address = "db:5432"
roles.read = { max_duration = "0m", username = "r" }
"#,
        expect![[r#"
            /etc/latch/latch.toml:8:19: server.pending_timeout: invalid duration `1w`: unknown unit (expected a number and a unit s, m, h or d, e.g. `30m`, `2h`, `1h30m`)
            /etc/latch/latch.toml:9:22: server.scheduler_interval: invalid interval `1m`: unknown or missing unit (expected a whole number of `ms` or `s` from `1ms` to `10s`, e.g. `100ms` or `1s`)
            /etc/latch/latch.toml:14:31: resources.db.roles.read.max_duration: invalid duration `0m`: it must be longer than zero (expected a number and a unit s, m, h or d, e.g. `30m`, `2h`, `1h30m`)"#]],
    );
}

#[test]
fn database_settings_are_checked_without_echoing_urls() {
    check_err(
        "[server]\ndatabase_url = \"mysql://root:hunter2@db\"\n",
        expect![
            "/etc/latch/latch.toml:8:16: server.database_url: expected a PostgreSQL URL starting with `postgres://` or `postgresql://` (leave the key out to use the embedded SQLite database)"
        ],
    );
    check_err(
        "[server]\ndatabase_url = \"postgres://db\"\ndatabase_url_env = \"LATCH_TEST_DB\"\n",
        expect![
            "/etc/latch/latch.toml:9:20: server.database_url_env: `database_url` and `database_url_env` are mutually exclusive (keep `database_url_env` so that the password stays out of the file)"
        ],
    );
    check_err(
        "[server]\ndatabase_url_env = \"LATCH_TEST_UNSET\"\n",
        expect![
            "/etc/latch/latch.toml:8:20: server.database_url_env: environment variable `LATCH_TEST_UNSET` is not set (expected it to hold the PostgreSQL URL, e.g. `postgres://latch@db:5432/latch`)"
        ],
    );
    check_err(
        "[server]\ndatabase_url_env = \"LATCH_TEST_NOT_A_URL\"\n",
        expect![
            "/etc/latch/latch.toml:8:20: server.database_url_env: environment variable `LATCH_TEST_NOT_A_URL` does not hold a PostgreSQL URL (expected one starting with `postgres://` or `postgresql://`)"
        ],
    );
    check_err(
        "[server]\ndata_dir = \"\"\n",
        expect![
            "/etc/latch/latch.toml:8:12: server.data_dir: expected a directory path, e.g. `data` (leave the key out for the default)"
        ],
    );
}

#[test]
fn referenced_teams_must_exist() {
    check_err(
        r#"[teams.payments]
parent = "engineering"
[users.alice]
email = "alice@example.com"
teams = ["eng", "paymnts"]
[resources.db]
kind = "postgres"
owner_team = "pay"
upstream.address = "db:5432"
roles.read = { max_duration = "1h", username = "r" }
"#,
        expect![[r#"
            /etc/latch/latch.toml:8:10: teams.payments.parent: unknown team `engineering` (teams: eng, payments)
            /etc/latch/latch.toml:11:17: users.alice.teams: unknown team `paymnts` (teams: eng, payments)
            /etc/latch/latch.toml:14:14: resources.db.owner_team: unknown team `pay` (teams: eng, payments)"#]],
    );
}

#[test]
fn managers_and_leads_must_be_known_users() {
    check_err(
        r#"[teams.ops]
leads = ["erin", "zoe"]
[users.alice]
email = "alice@example.com"
manager = "carl"
"#,
        expect![[r#"
            /etc/latch/latch.toml:8:18: teams.ops.leads: unknown user `zoe` (users: alice, erin)
            /etc/latch/latch.toml:11:11: users.alice.manager: unknown user `carl` (users: alice, erin)"#]],
    );
}

#[test]
fn a_user_is_not_their_own_manager() {
    check_err(
        "[users.alice]\nemail = \"alice@example.com\"\nmanager = \"alice\"\n",
        expect![
            "/etc/latch/latch.toml:9:11: users.alice.manager: user `alice` cannot be their own manager (expected another user, or no `manager` key)"
        ],
    );
}

#[test]
fn team_parents_do_not_form_a_cycle() {
    check_err(
        r#"[teams.a]
parent = "c"
[teams.b]
parent = "a"
[teams.c]
parent = "b"
[teams.d]
parent = "a"
[teams.self]
parent = "self"
"#,
        expect![[r#"
            /etc/latch/latch.toml:8:10: teams.a.parent: team parents form a cycle: `a` → `c` → `b` → `a` (expected a tree: no team may be its own ancestor)
            /etc/latch/latch.toml:16:10: teams.self.parent: team parents form a cycle: `self` → `self` (expected a tree: no team may be its own ancestor)"#]],
    );
}

#[test]
fn managers_do_not_form_a_cycle() {
    check_err(
        r#"[users.alice]
email = "alice@example.com"
manager = "bob"
[users.bob]
email = "bob@example.com"
manager = "alice"
"#,
        expect![
            "/etc/latch/latch.toml:9:11: users.alice.manager: managers form a cycle: `alice` → `bob` → `alice` (expected a chain that ends with someone who has no manager)"
        ],
    );
}

#[test]
fn org_roles_are_admin_or_auditor() {
    check_err(
        "[users.alice]\nemail = \"alice@example.com\"\nroles = [\"auditor\", \"superuser\"]\n",
        expect![
            "/etc/latch/latch.toml:9:21: users.alice.roles: unknown role `superuser` (expected `admin` or `auditor`; roles on a resource go under `[resources.NAME.roles.ROLE]`)"
        ],
    );
}

#[test]
fn someone_must_be_admin() {
    let text = "[users.alice]\nemail = \"alice@example.com\"\nroles = [\"auditor\"]\n";
    expect![[r#"/etc/latch/latch.toml:1:2: users: no user has the role `admin` (expected at least one, e.g. `roles = ["admin"]` under `[users.NAME]`, so that someone can revoke any grant)"#]].assert_eq(&parse(text).unwrap_err().to_string());
    expect![[r#"/etc/latch/latch.toml:1:1: users: no user has the role `admin` (expected at least one, e.g. `roles = ["admin"]` under `[users.NAME]`, so that someone can revoke any grant)"#]].assert_eq(&parse("").unwrap_err().to_string());
}

#[test]
fn a_resource_has_at_least_one_role() {
    check_err(
        r#"[resources.db]
kind = "postgres"
owner_team = "eng"
upstream.address = "db:5432"
[resources.other]
kind = "postgres"
owner_team = "eng"
upstream.address = "db:5432"
roles = {}
[resources.third]
kind = "postgres"
owner_team = "eng"
upstream.address = "db:5432"
roles = "read"
"#,
        expect![[r#"
            /etc/latch/latch.toml:7:12: resources.db: resource `db` has no roles (expected at least one `[resources.db.roles.ROLE]` table)
            /etc/latch/latch.toml:11:12: resources.other: resource `other` has no roles (expected at least one `[resources.other.roles.ROLE]` table)
            /etc/latch/latch.toml:20:9: resources.third.roles: expected a table of named tables, e.g. `[resources.third.roles.NAME]`, found a string"#]],
    );
}

#[test]
fn resource_kind_and_upstream_are_checked() {
    check_err(
        r#"[resources.db]
kind = "oracle"
owner_team = "eng"
upstream = { address = "db", database = "" }
roles.read = { max_duration = "1h", username = "" }
"#,
        expect![[r#"
            /etc/latch/latch.toml:8:8: resources.db.kind: unknown resource kind `oracle` (expected `postgres` or `mysql`)
            /etc/latch/latch.toml:10:24: resources.db.upstream.address: invalid address `db` (expected `host:port`, e.g. `127.0.0.1:5432`, `db.internal:5432` or `[::1]:5432`, or the path of PostgreSQL's Unix-domain socket, e.g. `/var/run/postgresql/.s.PGSQL.5432`)
            /etc/latch/latch.toml:10:41: resources.db.upstream.database: expected a database name (leave the key out for the upstream's default)
            /etc/latch/latch.toml:11:48: resources.db.roles.read.username: expected the upstream user name this role logs in as"#]],
    );
}

#[test]
fn a_postgres_upstream_may_be_a_unix_domain_socket() {
    let text = format!(
        r#"{BASE}[resources.db]
kind = "postgres"
owner_team = "eng"
upstream.address = "/var/run/postgresql/.s.PGSQL.5432"
roles.read = {{ max_duration = "1h", username = "r" }}
"#
    );
    let config = parse(&text).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        config.upstreams["db"].address,
        "/var/run/postgresql/.s.PGSQL.5432"
    );
}

#[test]
fn a_unix_domain_socket_takes_neither_tls_nor_mysql_nor_a_relative_path() {
    check_err(
        r#"[resources.db]
kind = "postgres"
owner_team = "eng"
upstream = { address = "/var/run/postgresql/.s.PGSQL.5432", tls = true }
roles.read = { max_duration = "1h", username = "r" }
[resources.maria]
kind = "mysql"
owner_team = "eng"
upstream.address = "/run/mysqld/mysqld.sock"
roles.read = { max_duration = "1h", username = "r" }
[resources.rel]
kind = "postgres"
owner_team = "eng"
upstream.address = "run/postgresql/.s.PGSQL.5432"
roles.read = { max_duration = "1h", username = "r" }
"#,
        expect![[r#"
            /etc/latch/latch.toml:10:24: resources.db.upstream.address: `tls = true` needs a TCP address: PostgreSQL does not offer TLS on its Unix-domain socket `/var/run/postgresql/.s.PGSQL.5432` (remove `tls`, or give `host:port`)
            /etc/latch/latch.toml:15:20: resources.maria.upstream.address: a Unix-domain socket (`/run/mysqld/mysqld.sock`) is supported for `postgres` resources only (expected `host:port`)
            /etc/latch/latch.toml:20:20: resources.rel.upstream.address: invalid address `run/postgresql/.s.PGSQL.5432` (expected `host:port`, e.g. `127.0.0.1:5432`, `db.internal:5432` or `[::1]:5432`, or the path of PostgreSQL's Unix-domain socket, e.g. `/var/run/postgresql/.s.PGSQL.5432`)"#]],
    );
}

#[test]
fn password_env_and_password_file_are_mutually_exclusive() {
    check_err(
        r#"[resources.db]
kind = "postgres"
owner_team = "eng"
upstream.address = "db:5432"
[resources.db.roles.read]
max_duration = "1h"
username = "r"
password_env = "READ_PW"
password_file = "/run/secrets/read"
"#,
        expect![
            "/etc/latch/latch.toml:15:17: resources.db.roles.read.password_file: `password_env` and `password_file` are mutually exclusive (expected one of them, or neither for an upstream that trusts the user without a password)"
        ],
    );
}

#[test]
fn an_inline_password_is_refused_and_never_echoed() {
    let text = r#"[resources.db]
kind = "postgres"
owner_team = "eng"
upstream.address = "db:5432"
[resources.db.roles.read]
max_duration = "1h"
username = "r"
password = 12345
"#;
    check_err(
        text,
        expect![
            "/etc/latch/latch.toml:14:1: resources.db.roles.read.password: secrets are never written inline in the config: use `password_env` (the name of an environment variable) or `password_file` (the path of a file) to say where the password is"
        ],
    );
    let error = parse(&format!("{BASE}{text}")).unwrap_err().to_string();
    assert!(!error.contains("12345"), "{error}");
}

#[test]
fn names_are_lowercase_identifiers() {
    check_err(
        r#"[teams.Ops]
[users."alice smith"]
email = "alice@example.com"
[resources.payments_DB]
kind = "postgres"
owner_team = "eng"
upstream.address = "db:5432"
roles.Read = { max_duration = "1h", username = "r" }
"#,
        expect![[r#"
            /etc/latch/latch.toml:7:8: teams.Ops: invalid team name `Ops` (expected a lowercase letter, then up to 62 lowercase letters, digits, `_` or `-`)
            /etc/latch/latch.toml:8:8: users."alice smith": invalid user name `alice smith` (expected a lowercase letter, then up to 62 lowercase letters, digits, `_` or `-`)
            /etc/latch/latch.toml:10:12: resources.payments_DB: invalid resource name `payments_DB` (expected a lowercase letter, then up to 62 lowercase letters, digits, `_` or `-`)
            /etc/latch/latch.toml:14:7: resources.payments_DB.roles.Read: invalid role name `Read` (expected a lowercase letter, then up to 62 lowercase letters, digits, `_` or `-`)"#]],
    );
}

#[test]
fn an_email_must_look_like_one() {
    check_err(
        "[users.bob]\nemail = \"bob\"\n",
        expect![
            "/etc/latch/latch.toml:8:9: users.bob.email: invalid email address `bob` (expected one like `alice@example.com`)"
        ],
    );
}

/// The problems of one file, all at once, in file order.
#[test]
fn every_problem_in_a_file_is_reported_at_once() {
    let text = r#"[server]
listen = "127.0.0.1"
pending_timeout = "1 day"

[teams.eng]
leads = ["carol"]
parent = "payments"

[teams.payments]
leads = ["bobby"]
parent = "eng"

[users.alice]
email = "alice@example.com"
teams = ["paymnts"]
manager = "alice"
roles = ["root"]

[users.carol]
email = "carol@example.com"
tems = ["eng"]

[resources.payments-db]
kind = "postgres"
owner_team = "paymnts"

[resources.payments-db.upstream]
address = "127.0.0.1"

[resources.payments-db.roles.read]
max_duration = "4hours"
username = "postgres"
password = "hunter2"

[resources.payments-db.roles.write]
max_duration = "1h"
username = "postgres"
password_env = "PW"
password_file = "pw.txt"
"#;
    let error = parse_with_env(text, Path::new("examples/quickstart/latch.toml"), env)
        .unwrap_err()
        .to_string();
    assert!(!error.contains("hunter2"), "{error}");
    expect![[r#"
        examples/quickstart/latch.toml:2:10: server.listen: invalid socket address `127.0.0.1` (expected an IP address and a port, e.g. `127.0.0.1:7070` or `[::1]:7070`)
        examples/quickstart/latch.toml:3:19: server.pending_timeout: invalid duration `1 day`: unknown unit (expected a number and a unit s, m, h or d, e.g. `30m`, `2h`, `1h30m`)
        examples/quickstart/latch.toml:7:10: teams.eng.parent: team parents form a cycle: `eng` → `payments` → `eng` (expected a tree: no team may be its own ancestor)
        examples/quickstart/latch.toml:10:10: teams.payments.leads: unknown user `bobby` (users: alice, carol)
        examples/quickstart/latch.toml:15:10: users.alice.teams: unknown team `paymnts` (teams: eng, payments)
        examples/quickstart/latch.toml:16:11: users.alice.manager: user `alice` cannot be their own manager (expected another user, or no `manager` key)
        examples/quickstart/latch.toml:17:10: users.alice.roles: unknown role `root` (expected `admin` or `auditor`; roles on a resource go under `[resources.NAME.roles.ROLE]`)
        examples/quickstart/latch.toml:21:1: users.carol.tems: unknown key `tems`, expected one of `email`, `teams`, `manager`, `roles`, `service_account`, `slack_id`
        examples/quickstart/latch.toml:25:14: resources.payments-db.owner_team: unknown team `paymnts` (teams: eng, payments)
        examples/quickstart/latch.toml:28:11: resources.payments-db.upstream.address: invalid address `127.0.0.1` (expected `host:port`, e.g. `127.0.0.1:5432`, `db.internal:5432` or `[::1]:5432`, or the path of PostgreSQL's Unix-domain socket, e.g. `/var/run/postgresql/.s.PGSQL.5432`)
        examples/quickstart/latch.toml:31:16: resources.payments-db.roles.read.max_duration: invalid duration `4hours`: unknown unit (expected a number and a unit s, m, h or d, e.g. `30m`, `2h`, `1h30m`)
        examples/quickstart/latch.toml:33:1: resources.payments-db.roles.read.password: secrets are never written inline in the config: use `password_env` (the name of an environment variable) or `password_file` (the path of a file) to say where the password is
        examples/quickstart/latch.toml:39:17: resources.payments-db.roles.write.password_file: `password_env` and `password_file` are mutually exclusive (expected one of them, or neither for an upstream that trusts the user without a password)"#]].assert_eq(&error);
}

#[test]
fn the_ledger_section_sets_origin_key_and_interval() {
    let text = format!(
        "{}\n[ledger]\norigin = \"acme.example/latch\"\nsigning_key_file = \"keys/ledger.key\"\ncheckpoint_interval = \"5s\"\n",
        BASE
    );
    let config = parse(&text).unwrap();
    assert_eq!(config.ledger.origin, "acme.example/latch");
    assert_eq!(
        config.ledger.signing_key_file,
        PathBuf::from("/etc/latch/keys/ledger.key")
    );
    assert_eq!(config.ledger.checkpoint_interval, Duration::from_secs(5));

    let bad = format!(
        "{}\n[ledger]\norigin = \"has space\"\ncheckpoint_interval = \"1h\"\n",
        BASE
    );
    let problems: Vec<String> = parse(&bad)
        .unwrap_err()
        .problems()
        .iter()
        .map(|p| format!("{}: {}", p.key, p.message))
        .collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].starts_with("ledger.origin: invalid origin `has space`"),
        "{problems:?}"
    );
    assert!(
        problems[1].starts_with("ledger.checkpoint_interval: invalid interval `1h`"),
        "{problems:?}"
    );
}

#[test]
fn the_policy_section_names_files_and_an_on_call_list_of_known_users() {
    let text = format!(
        "{}\n[policy]\nfiles = [\"policies/default.cedar\"]\non_call = [\"erin\"]\n",
        BASE
    );
    let config = parse(&text).unwrap();
    assert_eq!(
        config.policy.files,
        vec![PathBuf::from("/etc/latch/policies/default.cedar")]
    );
    assert!(config.policy.on_call.contains("erin"));
    let bad = format!("{}\n[policy]\non_call = [\"zed\"]\n", BASE);
    let problems: Vec<String> = parse(&bad)
        .unwrap_err()
        .problems()
        .iter()
        .map(|p| format!("{}: {}", p.key, p.message))
        .collect();
    assert_eq!(
        problems,
        ["policy.on_call[0]: unknown user `zed` (users: erin)"]
    );
}

#[test]
fn escalate_after_is_shorter_than_pending_timeout() {
    let text = format!("{BASE}[server]\nescalate_after = \"4h\"\n");
    let catalog = parse(&text).unwrap().catalog;
    assert_eq!(catalog.escalate_after, Some(duration("4h")));
    assert_eq!(catalog.pending_timeout, None);
    check_err(
        "[server]\npending_timeout = \"1d\"\nescalate_after = \"24h\"\n",
        expect![
            "/etc/latch/latch.toml:9:18: server.escalate_after: `escalate_after` (`24h`) must be shorter than `pending_timeout` (`1d`): requests time out before they could be escalated (expected a shorter duration, or no `escalate_after`)"
        ],
    );
    check_err(
        "[server]\nescalate_after = \"4 hours\"\n",
        expect![
            "/etc/latch/latch.toml:8:18: server.escalate_after: invalid duration `4 hours`: unknown unit (expected a number and a unit s, m, h or d, e.g. `30m`, `2h`, `1h30m`)"
        ],
    );
}

/// A resource with one role, for the label and role-setting cases.
const DB: &str = r#"[resources.db]
kind = "postgres"
owner_team = "eng"
upstream.address = "db:5432"
"#;

#[test]
fn resource_labels_and_role_settings_are_checked() {
    check_err(
        &format!(
            "{DB}sensitivity = \"secret\"\nenvironment = \"Prod\"\nticket_pattern = \"[A-Z\"\nrecording = \"async\"\n{}",
            "roles.read = { max_duration = \"1h\", username = \"r\", access = \"admin\", enforcement = \"warn\" }\n"
        ),
        expect![[r#"
            /etc/latch/latch.toml:11:15: resources.db.sensitivity: unknown sensitivity `secret` (expected `low`, `normal`, `high` or `critical`)
            /etc/latch/latch.toml:12:15: resources.db.environment: invalid environment name `Prod` (expected a lowercase letter, then up to 62 lowercase letters, digits, `_` or `-`, e.g. `production` or `staging`)
            /etc/latch/latch.toml:13:18: resources.db.ticket_pattern: invalid ticket pattern `[A-Z`: unclosed character class (expected a regular expression that a whole ticket reference must match, e.g. `^PAY-[0-9]+$`)
            /etc/latch/latch.toml:14:13: resources.db.recording: unknown recording mode `async` (expected `buffered` or `strict`)
            /etc/latch/latch.toml:15:62: resources.db.roles.read.access: unknown access `admin` (expected `read` or `write`)
            /etc/latch/latch.toml:15:85: resources.db.roles.read.enforcement: unknown enforcement `warn` (expected `enforce` or `audit`)"#]],
    );
    check_err(
        &format!(
            "{DB}ticket_pattern = \"\"\nroles.read = {{ max_duration = \"1h\", username = \"r\" }}\n"
        ),
        expect![
            "/etc/latch/latch.toml:11:18: resources.db.ticket_pattern: invalid ticket pattern ``: it is empty (expected a regular expression that a whole ticket reference must match, e.g. `^PAY-[0-9]+$`)"
        ],
    );
}

#[test]
fn resource_labels_are_read_and_every_resource_has_them() {
    let text = format!(
        "{BASE}{DB}sensitivity = \"critical\"\nenvironment = \"development\"\nticket_pattern = '^INC-\\d+$'\nroles.read = {{ max_duration = \"1h\", username = \"r\" }}\n[resources.other]\nkind = \"mysql\"\nowner_team = \"eng\"\nupstream.address = \"db:3306\"\nroles.read = {{ max_duration = \"1h\", username = \"r\" }}\n"
    );
    let labels = parse(&text).unwrap().resource_labels;
    assert_eq!(labels["other"], default_labels());
    let db = &labels["db"];
    assert_eq!(db.sensitivity, "critical");
    assert_eq!(db.environment, "development");
    let pattern = db.ticket_pattern.as_ref().unwrap();
    assert_eq!(pattern.as_str(), r"^INC-\d+$");
    assert!(pattern.matches("INC-4211"));
    assert!(!pattern.matches("INC-"));
    assert!(!pattern.matches("INC-1 PAY-2"));
}

#[test]
fn service_accounts_request_but_never_approve() {
    let text = format!(
        "{BASE}[users.ci-bot]\nemail = \"ci@example.com\"\nservice_account = true\nroles = [\"auditor\"]\n"
    );
    let config = parse(&text).unwrap();
    assert_eq!(
        config.service_accounts,
        BTreeSet::from(["ci-bot".to_owned()])
    );
    assert!(config.catalog.has_role("ci-bot", UserRole::Auditor));
    check_err(
        r#"[teams.ops]
leads = ["agent"]
[users.agent]
email = "agent@example.com"
service_account = true
roles = ["admin"]
[users.alice]
email = "alice@example.com"
manager = "agent"
[policy]
on_call = ["agent"]
"#,
        expect![[r#"
            /etc/latch/latch.toml:8:10: teams.ops.leads: user `agent` is a service account and cannot lead a team (service accounts never approve; expected a person, or `service_account = false` under `[users.agent]`)
            /etc/latch/latch.toml:12:10: users.agent.roles: user `agent` is a service account and cannot have the role `admin` (admins revoke grants and manage tokens; expected `auditor` or no role, or `service_account = false`)
            /etc/latch/latch.toml:15:11: users.alice.manager: user `agent` is a service account and cannot be a manager (service accounts never approve; expected a person, or `service_account = false` under `[users.agent]`)
            /etc/latch/latch.toml:17:12: policy.on_call[0]: user `agent` is a service account and cannot be on call (service accounts never approve; expected a person, or `service_account = false` under `[users.agent]`)"#]],
    );
}

#[test]
fn a_service_account_does_not_count_as_the_admin() {
    let text =
        "[users.bot]\nemail = \"bot@example.com\"\nservice_account = true\nroles = [\"admin\"]\n";
    expect![[r#"
        /etc/latch/latch.toml:1:2: users: no user has the role `admin` (expected at least one, e.g. `roles = ["admin"]` under `[users.NAME]`, so that someone can revoke any grant)
        /etc/latch/latch.toml:4:10: users.bot.roles: user `bot` is a service account and cannot have the role `admin` (admins revoke grants and manage tokens; expected `auditor` or no role, or `service_account = false`)"#]]
    .assert_eq(&parse(text).unwrap_err().to_string());
}

#[test]
fn the_gateway_is_off_without_its_table_and_has_defaults_with_it() {
    let config = parse(&format!("{BASE}[gateway]\n")).unwrap();
    assert_eq!(
        config.gateway,
        Some(GatewaySettings {
            listen: "127.0.0.1:6432".parse().unwrap(),
            tls: GatewayTls::SelfSigned {
                cert: PathBuf::from("/etc/latch/data/gateway.crt"),
                key: PathBuf::from("/etc/latch/data/gateway.key"),
            },
            allow_plaintext: false,
            client_auth: ClientAuth::ScramSha256,
            redact_literals: false,
            credential_ttl: Duration::from_secs(600),
            max_message_bytes: 16_777_216,
            recording_buffer: 10_000,
            relay_threads: 1,
            scram_iterations: 4096,
        })
    );
    let text = format!(
        r#"{BASE}[gateway]
listen = "0.0.0.0:5433"
tls_cert_file = "tls/gateway.pem"
tls_key_file = "/etc/ssl/private/gateway.key"
allow_plaintext = true
client_auth = "password"
redact_literals = true
credential_ttl = "1h30m"
max_message_bytes = 1024
recording_buffer = 1
relay_threads = 0
scram_iterations = 1
"#
    );
    assert_eq!(
        parse(&text).unwrap().gateway,
        Some(GatewaySettings {
            listen: "0.0.0.0:5433".parse().unwrap(),
            tls: GatewayTls::Files {
                cert: PathBuf::from("/etc/latch/tls/gateway.pem"),
                key: PathBuf::from("/etc/ssl/private/gateway.key"),
            },
            allow_plaintext: true,
            client_auth: ClientAuth::Password,
            redact_literals: true,
            credential_ttl: Duration::from_secs(5400),
            max_message_bytes: 1024,
            recording_buffer: 1,
            relay_threads: 0,
            scram_iterations: 1,
        })
    );
}

#[test]
fn gateway_settings_are_checked() {
    check_err(
        r#"[gateway]
listen = "localhost:6432"
tls_cert_file = "gateway.pem"
allow_plaintext = "yes"
"#,
        expect![[
            r#"/etc/latch/latch.toml:10:19: gateway.allow_plaintext: invalid type: string "yes", expected a boolean"#
        ]],
    );
    check_err(
        r#"[gateway]
listen = "localhost:6432"
tls_key_file = "gateway.key"
credential_ttl = "30s"
max_message_bytes = 512
recording_buffer = 0
relay_threads = 65
"#,
        expect![[r#"
            /etc/latch/latch.toml:8:10: gateway.listen: invalid socket address `localhost:6432` (expected an IP address and a port, e.g. `127.0.0.1:6432` or `[::1]:6432`)
            /etc/latch/latch.toml:9:16: gateway.tls_key_file: `tls_key_file` is given without `tls_cert_file` (expected both, or neither for a self-signed certificate that latch creates in `data_dir`)
            /etc/latch/latch.toml:10:18: gateway.credential_ttl: invalid credential ttl `30s`: it is shorter than `1m` (expected a duration from `1m` to `24h`, e.g. `10m`)
            /etc/latch/latch.toml:11:21: gateway.max_message_bytes: `512` is out of range (expected a number of bytes from `1024` to `1073741824`, i.e. 1 KiB to 1 GiB; the default is `16777216`, 16 MiB)
            /etc/latch/latch.toml:12:20: gateway.recording_buffer: `0` is out of range (expected a number of statements from `1` to `1000000`; the default is `10000`)
            /etc/latch/latch.toml:13:17: gateway.relay_threads: `65` is out of range (expected a number of threads from `0` to `64`; `0` relays on the server's shared threads; the default is `1`)"#]],
    );
    check_err(
        r#"[gateway]
tls_cert_file = "gateway.pem"
credential_ttl = "2d"
max_message_bytes = -1
recording_buffer = 99999999999
scram_iterations = 0
"#,
        expect![[r#"
            /etc/latch/latch.toml:8:17: gateway.tls_cert_file: `tls_cert_file` is given without `tls_key_file` (expected both, or neither for a self-signed certificate that latch creates in `data_dir`)
            /etc/latch/latch.toml:9:18: gateway.credential_ttl: invalid credential ttl `2d`: it is longer than `24h` (expected a duration from `1m` to `24h`, e.g. `10m`)
            /etc/latch/latch.toml:10:21: gateway.max_message_bytes: `-1` is out of range (expected a number of bytes from `1024` to `1073741824`, i.e. 1 KiB to 1 GiB; the default is `16777216`, 16 MiB)
            /etc/latch/latch.toml:11:20: gateway.recording_buffer: `99999999999` is out of range (expected a number of statements from `1` to `1000000`; the default is `10000`)
            /etc/latch/latch.toml:12:20: gateway.scram_iterations: `0` is out of range (expected an iteration count from `1` to `1000000`; the default is `4096`)"#]],
    );
    check_err(
        "[gateway]\nclient_auth = \"md5\"\n",
        expect![[
            r#"/etc/latch/latch.toml:8:15: gateway.client_auth: unknown client authentication `md5` (expected `scram-sha-256`, the default, or `password`)"#
        ]],
    );
    check_err(
        "[gateway]\ntls_cert_file = \"\"\ntls_key_file = \"k.pem\"\ncredential_ttl = \"10\"\n",
        expect![[r#"
            /etc/latch/latch.toml:8:17: gateway.tls_cert_file: expected a PEM file path (leave both `tls_cert_file` and `tls_key_file` out for a self-signed certificate)
            /etc/latch/latch.toml:10:18: gateway.credential_ttl: invalid duration `10`: a number without a unit (expected a number and a unit s, m, h or d, e.g. `30m`, `2h`, `1h30m`)"#]],
    );
    let text = format!("gateway = true\n{BASE}");
    expect!["/etc/latch/latch.toml:1:11: gateway: expected a table, found a boolean"]
        .assert_eq(&parse(&text).unwrap_err().to_string());
}

/// Two teams, two resources and a Slack id for a route to refer to.
const NOTIFY_BASE: &str = r#"
[teams.payments]
[resources.payments-db]
kind = "postgres"
owner_team = "payments"
upstream.address = "db:5432"
roles.read = { max_duration = "1h", username = "r" }
[resources.ledger]
kind = "postgres"
owner_team = "eng"
upstream.address = "db:5432"
roles.read = { max_duration = "1h", username = "r" }
"#;

#[test]
fn notify_is_off_without_its_table_and_has_defaults_with_it() {
    let config = parse(BASE).unwrap();
    assert_eq!(config.notify, None);
    assert!(config.slack_ids.is_empty());
    let config = parse(&format!("{BASE}[notify]\n")).unwrap();
    assert_eq!(
        config.notify,
        Some(NotifySettings {
            base_url: None,
            digest_minutes: 0,
            expiry_warning: Duration::from_secs(600),
            reminder_after: None,
            slack_signing_secret: None,
            smtp: None,
            channels: Vec::new(),
            routes: Vec::new(),
        })
    );
}

#[test]
fn notify_channels_and_routes_become_typed_values() {
    let text = format!(
        r#"{BASE}{NOTIFY_BASE}
[users.alice]
email = "alice@example.com"
slack_id = "U012AB3CD"
[users.bob]
email = "bob@example.com"
slack_id = "W0G9QF9C6"

[notify]
base_url = "https://latch.example.com/"
digest_minutes = 10
expiry_warning = "15m"
reminder_after = "1h"
slack_signing_secret_file = "secrets/slack-signing"

[[notify.channels]]
name = "approvals"
kind = "slack"
url_env = "LATCH_SLACK_URL"

[[notify.channels]]
name = "payments-teams"
kind = "teams"
url_file = "/run/secrets/teams-url"

[[notify.channels]]
name = "siem"
kind = "webhook"
url = "https://siem.example.com/latch"
secret_env = "LATCH_HOOK_SECRET"

[[notify.channels]]
name = "hidden-hook"
kind = "webhook"
url_file = "secrets/hook-url"
secret_file = "secrets/hook-key"

[[notify.channels]]
name = "security-mail"
kind = "email"
to = ["security@example.com", "oncall@example.com"]

[[notify.channels]]
name = "unused"
kind = "email"
to = ["nobody@example.com"]

[[notify.routes]]
events = ["request.*", "finding.opened"]
min_severity = "high"
resources = ["payments-*", "ledger"]
teams = ["payments"]
channel = "approvals"

[[notify.routes]]
channel = "siem"
"#
    );
    let config = parse(&text).unwrap();
    let strings = |items: &[&str]| items.iter().map(|item| (*item).to_owned()).collect();
    assert_eq!(
        config.notify,
        Some(NotifySettings {
            base_url: Some("https://latch.example.com".to_owned()),
            digest_minutes: 10,
            expiry_warning: Duration::from_secs(15 * 60),
            reminder_after: Some(Duration::from_secs(3600)),
            slack_signing_secret: Some(SecretRef::File(PathBuf::from(
                "/etc/latch/secrets/slack-signing"
            ))),
            smtp: None,
            channels: vec![
                ChannelSettings {
                    name: "approvals".to_owned(),
                    kind: ChannelKind::Slack {
                        url: SecretRef::Env("LATCH_SLACK_URL".to_owned()),
                    },
                },
                ChannelSettings {
                    name: "payments-teams".to_owned(),
                    kind: ChannelKind::Teams {
                        url: SecretRef::File(PathBuf::from("/run/secrets/teams-url")),
                    },
                },
                ChannelSettings {
                    name: "siem".to_owned(),
                    kind: ChannelKind::Webhook {
                        url: UrlRef::Plain("https://siem.example.com/latch".to_owned()),
                        secret: SecretRef::Env("LATCH_HOOK_SECRET".to_owned()),
                    },
                },
                ChannelSettings {
                    name: "hidden-hook".to_owned(),
                    kind: ChannelKind::Webhook {
                        url: UrlRef::Secret(SecretRef::File(PathBuf::from(
                            "/etc/latch/secrets/hook-url"
                        ))),
                        secret: SecretRef::File(PathBuf::from("/etc/latch/secrets/hook-key")),
                    },
                },
                ChannelSettings {
                    name: "security-mail".to_owned(),
                    kind: ChannelKind::Email {
                        to: strings(&["security@example.com", "oncall@example.com"]),
                    },
                },
                ChannelSettings {
                    name: "unused".to_owned(),
                    kind: ChannelKind::Email {
                        to: strings(&["nobody@example.com"]),
                    },
                },
            ],
            routes: vec![
                RouteSettings {
                    events: strings(&["request.*", "finding.opened"]),
                    min_severity: Some("high".to_owned()),
                    resources: strings(&["payments-*", "ledger"]),
                    teams: strings(&["payments"]),
                    channel: "approvals".to_owned(),
                },
                RouteSettings {
                    events: Vec::new(),
                    min_severity: None,
                    resources: Vec::new(),
                    teams: Vec::new(),
                    channel: "siem".to_owned(),
                },
            ],
        })
    );
    assert_eq!(
        config.slack_ids,
        BTreeMap::from([
            ("U012AB3CD".to_owned(), "alice".to_owned()),
            ("W0G9QF9C6".to_owned(), "bob".to_owned()),
        ])
    );
}

#[test]
fn inline_channels_and_routes_are_read_too() {
    let text = format!(
        r#"notify.channels = [{{ name = "mail", kind = "email", to = ["a@example.com"] }}]
notify.routes = [{{ channel = "mail", min_severity = "critical" }}]
{BASE}"#
    );
    let notify = parse(&text).unwrap().notify.unwrap();
    assert_eq!(notify.channels.len(), 1);
    assert_eq!(notify.routes[0].min_severity.as_deref(), Some("critical"));
    // `[[notify.channels]]` alone makes `[notify]` with its defaults.
    let text = format!(
        "{BASE}[[notify.channels]]\nname = \"mail\"\nkind = \"email\"\nto = [\"a@example.com\"]\n"
    );
    let notify = parse(&text).unwrap().notify.unwrap();
    assert_eq!(notify.channels.len(), 1);
    assert_eq!(notify.expiry_warning, crate::DEFAULT_EXPIRY_WARNING);
}

#[test]
fn the_smtp_relay_is_read_and_checked() {
    let config = parse(&format!(
        "{BASE}[notify]\nsmtp_url = \"smtp://mail.example.com:587?tls=required\"\nsmtp_from = \"latch <latch@example.com>\"\nsmtp_username = \"latch\"\nsmtp_password_env = \"LATCH_SMTP_PASSWORD\"\n"
    ))
    .unwrap();
    assert_eq!(
        config.notify.unwrap().smtp,
        Some(crate::SmtpSettings {
            url: "smtp://mail.example.com:587?tls=required".to_owned(),
            from: "latch <latch@example.com>".to_owned(),
            username: Some("latch".to_owned()),
            password: Some(SecretRef::Env("LATCH_SMTP_PASSWORD".to_owned())),
        })
    );
    check_err(
        "[notify]\nsmtp_url = \"smtp://u:pw@mail.example.com\"\nsmtp_from = \"latch\"\nsmtp_username = \"latch\"\n",
        expect![[r#"
            /etc/latch/latch.toml:8:12: notify.smtp_url: the relay's URL carries a login (expected it without: put the user in `smtp_username` and the password in `smtp_password_env` or `smtp_password_file`)
            /etc/latch/latch.toml:9:13: notify.smtp_from: invalid sender `latch` (expected an address like `latch@example.com` or `latch <latch@example.com>`)
            /etc/latch/latch.toml:10:17: notify.smtp_username: a login without a password (expected `smtp_password_env` or `smtp_password_file`)"#]],
    );
    check_err(
        "[notify]\nsmtp_url = \"mail.example.com\"\nsmtp_password = \"hunter2\"\n",
        expect![[r#"
            /etc/latch/latch.toml:8:12: notify.smtp_url: a relay without a sender (expected `smtp_from` too, e.g. `smtp_from = "latch <latch@example.com>"`)
            /etc/latch/latch.toml:9:1: notify.smtp_password: secrets are never written inline in the config: use `smtp_password_env` (the name of an environment variable) or `smtp_password_file` (the path of a file) to say where the SMTP relay's password is"#]],
    );
}

#[test]
fn notify_settings_are_checked() {
    check_err(
        r#"[notify]
base_url = "latch.example.com"
digest_minutes = 1441
expiry_warning = "10"
reminder_after = "0m"
slack_signing_secret_env = "LATCH_SLACK_SIGNING_SECRET"
slack_signing_secret_file = "slack-signing"
"#,
        expect![[r#"
            /etc/latch/latch.toml:8:12: notify.base_url: invalid URL `latch.example.com` (expected latch's address as people reach it, starting with `https://` or `http://`, e.g. `https://latch.example.com`)
            /etc/latch/latch.toml:9:18: notify.digest_minutes: `1441` is out of range (expected a number of minutes from `0` to `1440`; `0`, the default, sends each notification at once)
            /etc/latch/latch.toml:10:18: notify.expiry_warning: invalid duration `10`: a number without a unit (expected a number and a unit s, m, h or d, e.g. `30m`, `2h`, `1h30m`)
            /etc/latch/latch.toml:11:18: notify.reminder_after: invalid duration `0m`: it must be longer than zero (expected a number and a unit s, m, h or d, e.g. `30m`, `2h`, `1h30m`)
            /etc/latch/latch.toml:13:29: notify.slack_signing_secret_file: `slack_signing_secret_env` and `slack_signing_secret_file` are mutually exclusive (expected one of them, or neither to leave Slack's buttons off)"#]],
    );
    check_err(
        "[notify]\ndigest_minutes = -1\nslack_signing_secret_env = \"\"\n",
        expect![[r#"
            /etc/latch/latch.toml:8:18: notify.digest_minutes: `-1` is out of range (expected a number of minutes from `0` to `1440`; `0`, the default, sends each notification at once)
            /etc/latch/latch.toml:9:28: notify.slack_signing_secret_env: expected the name of an environment variable"#]],
    );
    check_err(
        "[notify]\nsend = true\n",
        expect![
            "/etc/latch/latch.toml:8:1: notify.send: unknown key `send`, expected one of `base_url`, `digest_minutes`, `expiry_warning`, `reminder_after`, `slack_signing_secret_env`, `slack_signing_secret_file`, `smtp_url`, `smtp_from`, `smtp_username`, `smtp_password_env`, `smtp_password_file`, `channels`, `routes`"
        ],
    );
    let text = format!("notify = 1\n{BASE}");
    expect!["/etc/latch/latch.toml:1:10: notify: expected a table, found an integer"]
        .assert_eq(&parse(&text).unwrap_err().to_string());
    check_err(
        "[notify]\nchannels = \"approvals\"\n",
        expect![
            "/etc/latch/latch.toml:8:12: notify.channels: expected an array of tables, e.g. `[[notify.channels]]`, found a string"
        ],
    );
}

#[test]
fn channel_keys_depend_on_their_kind() {
    let text = r#"[[notify.channels]]
name = "slack"
kind = "slack"
url = "https://hooks.slack.com/services/T0/B0/SECRETTOKEN"
to = ["a@example.com"]

[[notify.channels]]
name = "teams"
kind = "teams"
secret_env = "X"

[[notify.channels]]
name = "hook"
kind = "webhook"
url = "ftp://hooks.example.com/SECRETTOKEN"
secret_env = "HOOK_SECRET"

[[notify.channels]]
name = "hook1"
kind = "webhook"
url = "https://hooks.example.com/latch"
url_env = "HOOK_URL"

[[notify.channels]]
name = "hook2"
kind = "webhook"
secret_env = "HOOK_SECRET"
secret_file = "hook-secret"

[[notify.channels]]
name = "mail"
kind = "email"
url_env = "MAIL_URL"

[[notify.channels]]
name = "mail2"
kind = "email"
to = []

[[notify.channels]]
name = "mail3"
kind = "email"
to = ["security@example.com", "security"]

[[notify.channels]]
name = "pager"
kind = "pagerduty"
"#;
    check_err(
        text,
        expect![[r#"
            /etc/latch/latch.toml:10:7: notify.channels[0].url: the URL of a slack channel is a secret (whoever has it may post to the channel) and is never written inline in the config: use `url_env` (the name of an environment variable) or `url_file` (the path of a file) to say where it is
            /etc/latch/latch.toml:11:6: notify.channels[0].to: `to` does not apply to a slack channel (expected `url_env` or `url_file`, or `bot_token_env` or `bot_token_file` with `channel_id`)
            /etc/latch/latch.toml:13:1: notify.channels[1]: a teams channel needs `url_env` or `url_file` (where its webhook URL is found; the URL is a secret, never written in the config)
            /etc/latch/latch.toml:16:14: notify.channels[1].secret_env: `secret_env` does not apply to a teams channel (expected `url_env` or `url_file`)
            /etc/latch/latch.toml:21:7: notify.channels[2].url: invalid URL (expected one starting with `https://` or `http://`, e.g. `https://hooks.example.com/latch`)
            /etc/latch/latch.toml:24:1: notify.channels[3]: a webhook channel needs `secret_env` or `secret_file` (where the key that signs its requests with HMAC-SHA256 is found)
            /etc/latch/latch.toml:28:11: notify.channels[3].url_env: `url` and `url_env` are mutually exclusive (expected one of `url`, `url_env` or `url_file`)
            /etc/latch/latch.toml:30:1: notify.channels[4]: a webhook channel needs `url`, `url_env` or `url_file` (where its requests are sent)
            /etc/latch/latch.toml:34:15: notify.channels[4].secret_file: `secret_env` and `secret_file` are mutually exclusive (expected one of them)
            /etc/latch/latch.toml:36:1: notify.channels[5]: an email channel needs `to` (expected a list of addresses, e.g. `to = ["security@example.com"]`)
            /etc/latch/latch.toml:39:11: notify.channels[5].url_env: `url_env` does not apply to an email channel (expected `to`)
            /etc/latch/latch.toml:44:6: notify.channels[6].to: expected at least one address, e.g. `to = ["security@example.com"]`
            /etc/latch/latch.toml:49:31: notify.channels[7].to: invalid email address `security` (expected one like `alice@example.com`)
            /etc/latch/latch.toml:53:8: notify.channels[8].kind: unknown channel kind `pagerduty` (expected `slack`, `teams`, `webhook` or `email`)"#]],
    );
    let error = parse(&format!("{BASE}{text}")).unwrap_err().to_string();
    assert!(!error.contains("SECRETTOKEN"), "{error}");
}

#[test]
fn a_slack_channel_may_use_a_bot_token_instead_of_a_webhook() {
    let text = format!(
        r#"{BASE}
[[notify.channels]]
name = "approvals"
kind = "slack"
bot_token_env = "LATCH_SLACK_BOT_TOKEN"
channel_id = "C0123ABCD"

[[notify.channels]]
name = "proxied"
kind = "slack"
bot_token_file = "secrets/slack-bot"
channel_id = "G01ABC"
api_base = "http://127.0.0.1:9000/api/"
"#
    );
    let notify = parse(&text).unwrap().notify.unwrap();
    assert_eq!(
        notify.channels,
        [
            ChannelSettings {
                name: "approvals".to_owned(),
                kind: ChannelKind::SlackBot {
                    token: SecretRef::Env("LATCH_SLACK_BOT_TOKEN".to_owned()),
                    channel_id: "C0123ABCD".to_owned(),
                    api_base: "https://slack.com/api".to_owned(),
                },
            },
            ChannelSettings {
                name: "proxied".to_owned(),
                kind: ChannelKind::SlackBot {
                    token: SecretRef::File(PathBuf::from("/etc/latch/secrets/slack-bot")),
                    channel_id: "G01ABC".to_owned(),
                    api_base: "http://127.0.0.1:9000/api".to_owned(),
                },
            },
        ]
    );
}

#[test]
fn a_slack_channel_takes_a_webhook_or_a_bot_token_and_never_a_token_inline() {
    let text = r##"[[notify.channels]]
name = "both"
kind = "slack"
url_env = "LATCH_SLACK_URL"
bot_token_env = "LATCH_SLACK_BOT_TOKEN"
channel_id = "C0123ABCD"

[[notify.channels]]
name = "neither"
kind = "slack"

[[notify.channels]]
name = "inline"
kind = "slack"
bot_token = "xoxb-1-SECRETTOKEN"
channel_id = "C0123ABCD"

[[notify.channels]]
name = "by-name"
kind = "slack"
bot_token_env = "LATCH_SLACK_BOT_TOKEN"
channel_id = "#payments-approvals"

[[notify.channels]]
name = "no-channel"
kind = "slack"
bot_token_file = "slack-bot"

[[notify.channels]]
name = "no-token"
kind = "slack"
channel_id = "C0123ABCD"
api_base = "slack.com/api"

[[notify.channels]]
name = "teams"
kind = "teams"
url_env = "LATCH_TEAMS_URL"
bot_token_env = "LATCH_SLACK_BOT_TOKEN"
"##;
    check_err(
        text,
        expect![[r#"
            /etc/latch/latch.toml:11:17: notify.channels[0].bot_token_env: a slack channel posts through an incoming webhook (`url_env` or `url_file`) or with a bot token (`bot_token_env` or `bot_token_file`, with `channel_id`), not both (expected the keys of one of them)
            /etc/latch/latch.toml:14:1: notify.channels[1]: a slack channel needs `url_env` or `url_file` (where its incoming-webhook URL is found), or `bot_token_env` or `bot_token_file` with `channel_id` (a bot token, which also lets latch update a request's messages once it is decided)
            /etc/latch/latch.toml:21:1: notify.channels[2].bot_token: secrets are never written inline in the config: use `bot_token_env` (the name of an environment variable) or `bot_token_file` (the path of a file) to say where the Slack bot token is
            /etc/latch/latch.toml:28:14: notify.channels[3].channel_id: invalid Slack channel id `#payments-approvals` (expected `C`, `G` or `D` followed by uppercase letters and digits, e.g. `C0123ABCD`: the id at the bottom of the channel's details in Slack, not its name)
            /etc/latch/latch.toml:30:1: notify.channels[4]: a slack channel with a bot token needs `channel_id` (Slack's id of the channel to post to, e.g. `C0123ABCD`)
            /etc/latch/latch.toml:35:1: notify.channels[5]: a slack channel with a `channel_id` needs `bot_token_env` or `bot_token_file` (where its bot token is found; the token is a secret, never written in the config)
            /etc/latch/latch.toml:39:12: notify.channels[5].api_base: invalid URL `slack.com/api` (expected Slack's Web API starting with `https://` or `http://`; leave it out for `https://slack.com/api`, and set it only for tests or a proxy)
            /etc/latch/latch.toml:45:17: notify.channels[6].bot_token_env: `bot_token_env` does not apply to a teams channel (expected `url_env` or `url_file`)"#]],
    );
    let error = parse(&format!("{BASE}{text}")).unwrap_err().to_string();
    assert!(!error.contains("SECRETTOKEN"), "{error}");
}

#[test]
fn channel_names_are_unique_identifiers_and_secrets_are_never_inline() {
    let text = r#"[notify]
slack_signing_secret = "8f14e45fceea167a5a36dedd4bea2543"
[[notify.channels]]
name = "alerts"
kind = "slack"
url_env = "A"
[[notify.channels]]
name = "alerts"
kind = "teams"
url_env = "B"
[[notify.channels]]
name = "Alerts"
kind = "webhook"
url = "https://hooks.example.com"
secret = "hunter2"
[[notify.channels]]
kind = "slack"
url_env = "C"
"#;
    check_err(
        text,
        expect![[r#"
            /etc/latch/latch.toml:8:1: notify.slack_signing_secret: secrets are never written inline in the config: use `slack_signing_secret_env` (the name of an environment variable) or `slack_signing_secret_file` (the path of a file) to say where Slack's signing secret is
            /etc/latch/latch.toml:14:8: notify.channels[1].name: channel `alerts` is already defined by `notify.channels[0]` (expected each channel to have its own name)
            /etc/latch/latch.toml:18:8: notify.channels[2].name: invalid channel name `Alerts` (expected a lowercase letter, then up to 62 lowercase letters, digits, `_` or `-`)
            /etc/latch/latch.toml:21:1: notify.channels[2].secret: secrets are never written inline in the config: use `secret_env` (the name of an environment variable) or `secret_file` (the path of a file) to say where the webhook's signing key is
            /etc/latch/latch.toml:22:1: notify.channels[3]: missing key `name`"#]],
    );
    let error = parse(&format!("{BASE}{text}")).unwrap_err().to_string();
    assert!(!error.contains("hunter2"), "{error}");
    assert!(!error.contains("8f14e45f"), "{error}");
}

#[test]
fn routes_refer_to_known_channels_teams_and_resources() {
    let text = r#"
[[notify.channels]]
name = "approvals"
kind = "slack"
url_env = "LATCH_SLACK_URL"

[[notify.routes]]
events = ["request.*", "Request Created", ""]
min_severity = "urgent"
resources = ["payments-*", "paymnets-db", "billing db"]
teams = ["payments", "finance"]
channel = "aprovals"

[[notify.routes]]
events = []
resources = []
teams = []
channel = "approvals"

[[notify.routes]]
events = "request.*"
"#;
    check_err(
        &format!("{NOTIFY_BASE}{text}"),
        expect![[r#"
        /etc/latch/latch.toml:26:24: notify.routes[0].events: invalid event pattern `Request Created` (expected an event type such as `request.created` or `finding.opened`, `*` standing for any run of characters, e.g. `request.*`)
        /etc/latch/latch.toml:26:43: notify.routes[0].events: invalid event pattern `` (expected an event type such as `request.created` or `finding.opened`, `*` standing for any run of characters, e.g. `request.*`)
        /etc/latch/latch.toml:27:16: notify.routes[0].min_severity: unknown severity `urgent` (expected `info`, `warning`, `high` or `critical`)
        /etc/latch/latch.toml:28:28: notify.routes[0].resources: unknown resource `paymnets-db` (resources: ledger, payments-db)
        /etc/latch/latch.toml:28:43: notify.routes[0].resources: invalid resource pattern `billing db` (expected a resource name, `*` standing for any run of characters, e.g. `payments-*`)
        /etc/latch/latch.toml:29:22: notify.routes[0].teams: unknown team `finance` (teams: eng, payments)
        /etc/latch/latch.toml:30:11: notify.routes[0].channel: unknown channel `aprovals` (channels: approvals)
        /etc/latch/latch.toml:33:10: notify.routes[1].events: expected at least one event pattern (leave `events` out for every event)
        /etc/latch/latch.toml:34:13: notify.routes[1].resources: expected at least one resource pattern (leave `resources` out for any resource)
        /etc/latch/latch.toml:35:9: notify.routes[1].teams: expected at least one team (leave `teams` out for no team filter)
        /etc/latch/latch.toml:39:10: notify.routes[2].events: invalid type: string "request.*", expected an array"#]],
    );
    check_err(
        "[[notify.routes]]\nchannel = \"approvals\"\n",
        expect![
            "/etc/latch/latch.toml:8:11: notify.routes[0].channel: unknown channel `approvals` (no channels are defined)"
        ],
    );
}

#[test]
fn slack_ids_look_like_slack_ids_and_are_unique() {
    check_err(
        r#"[users.alice]
email = "alice@example.com"
slack_id = "U012AB3CD"
[users.bob]
email = "bob@example.com"
slack_id = "U012AB3CD"
[users.carol]
email = "carol@example.com"
slack_id = "@carol"
[users.dave]
email = "dave@example.com"
slack_id = "u012ab3cd"
"#,
        expect![[r#"
            /etc/latch/latch.toml:12:12: users.bob.slack_id: Slack user id `U012AB3CD` is already the one of user `alice` (expected each Slack user to be one latch user)
            /etc/latch/latch.toml:15:12: users.carol.slack_id: invalid Slack user id `@carol` (expected `U` or `W` followed by uppercase letters and digits, e.g. `U012AB3CD`: the member id Slack shows in the user's profile)
            /etc/latch/latch.toml:18:12: users.dave.slack_id: invalid Slack user id `u012ab3cd` (expected `U` or `W` followed by uppercase letters and digits, e.g. `U012AB3CD`: the member id Slack shows in the user's profile)"#]],
    );
}

#[test]
fn audit_thresholds_override_the_documented_defaults() {
    let text = format!(
        "{BASE}{}",
        r#"
[audit]
disabled = ["usage.first_time"]
severity = { "approval.self" = "critical" }
min_reason_chars = 20
rubber_stamp_within = "2m"
bulk_read_rows = 500
revocation_tolerance = "5s"
[audit.business_hours]
days = ["mon", "tue", "wed", "thu"]
start = "07:30"
end = "18:00"
utc_offset = "+01:00"
[resources.db]
kind = "postgres"
owner_team = "eng"
scope = ["public.accounts", "reporting.*"]
upstream = { address = "db:5432", database = "db" }
roles.read = { max_duration = "1h", username = "reader", password_env = "READ_PW" }
"#
    );
    let config = parse(&text).unwrap();
    let audit = &config.audit.thresholds;
    let defaults = latch_audit::AuditSettings::default();
    assert!(
        audit
            .disabled
            .contains(&latch_audit::Checkpoint::UsageFirstTime)
    );
    assert_eq!(
        audit.severities.get(&latch_audit::Checkpoint::ApprovalSelf),
        Some(&latch_audit::Severity::Critical)
    );
    assert_eq!(audit.min_reason_chars, 20);
    assert_eq!(audit.rubber_stamp_within, Duration::from_secs(120));
    assert_eq!(audit.bulk_read_rows, 500);
    assert_eq!(audit.revocation_tolerance, Duration::from_secs(5));
    assert_eq!(
        audit.business_hours,
        Some(latch_audit::BusinessHours {
            weekdays: vec![1, 2, 3, 4],
            start_minute: 450,
            end_minute: 1080,
            utc_offset_minutes: 60,
        })
    );
    // What the file leaves out keeps its default.
    assert_eq!(audit.burst_requests, defaults.burst_requests);
    assert_eq!(audit.boilerplate_reasons, defaults.boilerplate_reasons);
    assert_eq!(
        config.resource_labels["db"].scope,
        vec!["public.accounts".to_owned(), "reporting.*".to_owned()]
    );
}

#[test]
fn bad_audit_thresholds_are_named_with_their_place() {
    check_err(
        r#"
[audit]
disabled = ["usage.offhours"]
severity = { "approval.self" = "urgent" }
approver_approval_percent = 150
burst_window = "soon"
[audit.business_hours]
days = ["monday"]
start = "9am"
end = "06:00"
utc_offset = "CET"
"#,
        expect![[r#"
            /etc/latch/latch.toml:9:13: audit.disabled: unknown checkpoint `usage.offhours` (expected one of justification.missing, justification.weak, approval.self, approval.unauthorized, approval.rubber_stamp, approval.break_glass, usage.scope, usage.outside_window, usage.off_hours, usage.first_time, usage.bulk_read, revocation.late, grant.unused, grant.idle_tail, grant.excessive, requests.burst, requests.standing_candidate; see docs/CHECKPOINTS.md)
            /etc/latch/latch.toml:10:32: audit.severity."approval.self": unknown severity `urgent` (expected `info`, `low`, `medium`, `high` or `critical`)
            /etc/latch/latch.toml:11:29: audit.approver_approval_percent: `150` is out of range (expected a whole number from `0` to `100`)
            /etc/latch/latch.toml:12:16: audit.burst_window: invalid duration `soon`: a unit without a number (expected a number and a unit s, m, h or d, e.g. `30m`, `2h`, `1h30m`)
            /etc/latch/latch.toml:14:9: audit.business_hours.days: unknown day `monday` (expected `mon`, `tue`, `wed`, `thu`, `fri`, `sat` or `sun`)
            /etc/latch/latch.toml:15:9: audit.business_hours.start: invalid time of day `9am` (expected `HH:MM` from `00:00` to `24:00`, e.g. `08:30`)
            /etc/latch/latch.toml:16:7: audit.business_hours.end: the working day must end after it starts (expected `end` later than `start`)
            /etc/latch/latch.toml:17:14: audit.business_hours.utc_offset: invalid UTC offset `CET` (expected `+HH:MM` or `-HH:MM` within 14 hours, e.g. `+01:00`)"#]],
    );
}

#[test]
fn a_scope_pattern_must_be_schema_dot_name() {
    check_err(
        r#"
[resources.db]
kind = "postgres"
owner_team = "eng"
scope = ["accounts", "public.*"]
upstream = { address = "db:5432", database = "db" }
roles.read = { max_duration = "1h", username = "reader", password_env = "READ_PW" }
"#,
        expect![
            "/etc/latch/latch.toml:11:10: resources.db.scope: invalid scope pattern `accounts` (expected `schema.name`, where `*` matches any run of characters within one part, e.g. `public.accounts` or `public.*`)"
        ],
    );
}

#[test]
fn the_nats_export_is_read_and_checked() {
    let text = format!(
        "{BASE}{}",
        r#"
[export.nats]
server = "nats://127.0.0.1:4222"
subject = "siem.latch"
stream = "LATCH"
format = "ocsf"
"#
    );
    let config = parse(&text).unwrap();
    assert_eq!(
        config.nats_export,
        Some(crate::NatsExport {
            server: "nats://127.0.0.1:4222".to_owned(),
            subject: "siem.latch".to_owned(),
            stream: "LATCH".to_owned(),
            format: crate::ExportFormat::Ocsf,
        })
    );
    check_err(
        r#"
[export.nats]
server = "127.0.0.1:4222"
subject = "siem.*"
stream = "latch.events"
format = "xml"
"#,
        expect![[r#"
            /etc/latch/latch.toml:9:10: export.nats.server: invalid NATS server `127.0.0.1:4222` (expected `nats://host:port` or `tls://host:port`, e.g. `nats://127.0.0.1:4222`)
            /etc/latch/latch.toml:10:11: export.nats.subject: invalid subject `siem.*` (expected dot-separated tokens of letters, digits, `-` and `_`, without wildcards, e.g. `latch.events`)
            /etc/latch/latch.toml:11:10: export.nats.stream: invalid stream name `latch.events` (expected letters, digits, `-` and `_`, at most 64 characters, e.g. `LATCH`)
            /etc/latch/latch.toml:12:10: export.nats.format: unknown format `xml` (expected `ledger` or `ocsf`)"#]],
    );
}

#[test]
fn scheduled_reviews_are_read_and_checked() {
    let config = parse(&format!(
        "{BASE}\n[reviews]\nschedule = \"monthly\"\nout_dir = \"/srv/latch-reviews\"\n"
    ))
    .unwrap();
    assert_eq!(
        config.reviews,
        Some(crate::ReviewSettings {
            schedule: crate::ReviewSchedule::Monthly,
            out_dir: PathBuf::from("/srv/latch-reviews"),
        })
    );
    // The directory defaults to `reviews` beside the config file.
    let config = parse(&format!("{BASE}\n[reviews]\nschedule = \"quarterly\"\n")).unwrap();
    assert_eq!(
        config.reviews.map(|r| r.out_dir),
        Some(PathBuf::from("/etc/latch/reviews"))
    );
    assert_eq!(parse(BASE).unwrap().reviews, None);
    check_err(
        r#"
[reviews]
schedule = "weekly"
out_dir = ""
"#,
        expect![[r#"
            /etc/latch/latch.toml:9:12: reviews.schedule: unknown schedule `weekly` (expected `quarterly` or `monthly`)
            /etc/latch/latch.toml:10:11: reviews.out_dir: `out_dir` is empty: name the directory the packs go into, e.g. `reviews`"#]],
    );
    check_err(
        r#"
[reviews]
out_dir = "reviews"
every = "quarter"
"#,
        expect![
            "/etc/latch/latch.toml:10:1: reviews.every: unknown key `every`, expected `schedule` or `out_dir`"
        ],
    );
    check_err(
        r#"
[reviews]
out_dir = "reviews"
"#,
        expect![[
            r#"/etc/latch/latch.toml:8:2: reviews: missing `schedule`: say how often owners review their access, `schedule = "quarterly"` or `schedule = "monthly"` (or remove [reviews])"#
        ]],
    );
}

#[test]
fn an_upstream_ca_file_is_resolved_and_needs_tls() {
    let resource = |tls: bool| {
        format!(
            "{BASE}[resources.db]\nkind = \"postgres\"\nowner_team = \"eng\"\n\
             upstream = {{ address = \"db:5432\", tls = {tls}, tls_ca_file = \"certs/db-ca.pem\" }}\n\
             roles.read = {{ max_duration = \"1h\", username = \"reader\" }}\n"
        )
    };
    let config = parse(&resource(true)).unwrap();
    assert_eq!(
        config.upstreams["db"].tls_ca_file,
        Some(PathBuf::from("/etc/latch/certs/db-ca.pem"))
    );
    let problems = parse(&resource(false)).unwrap_err().to_string();
    assert!(
        problems.contains("resources.db.upstream.tls_ca_file: `tls_ca_file` is only used with TLS"),
        "{problems}"
    );
}
