//! Client commands: talk to a running latch over its HTTP API, print tables for people and the
//! API's JSON for scripts. The server decides everything; the client only finds the server and
//! token ([`target`]), makes the call ([`api`]) and renders the answer ([`render`]).

pub(crate) mod api;
mod profile;
mod render;
pub(crate) mod target;

use clap::{Args, Subcommand, ValueEnum};
use latch_api::{
    ApproveBody, CreateRequest, EventList, GrantList, GrantView, ReasonBody, RequestList,
    RequestView, WhoAmI,
};
use latch_core::time::{Clock, SystemClock};
use serde::Serialize;

use crate::exit::{Failed, Usage};
use api::Api;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    #[default]
    Table,
    Json,
}

/// Where `--help` lists the options every command takes.
const GLOBAL: &str = "Global options";

#[derive(Args)]
pub struct GlobalOptions {
    /// The latch server, e.g. `http://127.0.0.1:7070` [default: the profile saved by `latch login`]
    #[arg(long, global = true, env = "LATCH_SERVER", value_name = "URL", help_heading = GLOBAL)]
    pub server: Option<String>,
    /// An API token from `latch admin token create` [default: the profile saved by `latch login`].
    /// Prefer LATCH_TOKEN or `latch login`: other users can see a flag in `ps`
    #[arg(
        long,
        global = true,
        env = "LATCH_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true,
        help_heading = GLOBAL
    )]
    pub token: Option<String>,
    /// How listing commands print: `table` for people, `json` for scripts.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table, help_heading = GLOBAL)]
    pub output: Output,
}

/// The largest `--limit` the API accepts.
const MAX_LIMIT: i64 = 1000;

#[derive(Subcommand)]
pub enum FindingsCommand {
    /// Acknowledge a finding: you are on it.
    Ack {
        /// The finding id (`fnd_…`).
        id: String,
        /// What you found or will do.
        #[arg(long)]
        comment: String,
    },
    /// Resolve a finding, saying how.
    Resolve {
        id: String,
        #[arg(long)]
        comment: String,
    },
}

/// How a review ended, as the CLI writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReviewOutcome {
    Approved,
    ChangesNeeded,
}

#[derive(Subcommand)]
pub enum ReviewCommand {
    /// Record your review of a resource's access over a closed period (leads of the resource's
    /// owner team, and admins); kept in the ledger as `review.recorded`.
    Record {
        /// The period, e.g. `2026-Q3` (a quarter), `2026-07` (a month).
        #[arg(long)]
        period: String,
        /// The resource, e.g. `payments-db`.
        #[arg(long)]
        resource: String,
        #[arg(long, value_enum)]
        outcome: ReviewOutcome,
        /// What you checked, or what must change.
        #[arg(long)]
        comment: String,
    },
}

#[derive(Subcommand)]
pub enum NotificationsCommand {
    /// Put a dead-lettered notification back in the queue.
    Retry {
        /// The notification id (`NOTICE/CHANNEL`).
        id: String,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Run the checkpoints over the ledger's history.
    Run {
        /// Only findings from this time on (RFC 3339, e.g. `2026-07-01T00:00:00Z`).
        #[arg(long)]
        from: Option<String>,
        /// Only findings before this time (RFC 3339).
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum SessionsCommand {
    /// One session and every statement recorded in it.
    Show {
        /// The session id (`ses_…`).
        id: String,
    },
}

/// Starts psql on the gateway with the credential in its environment (not its arguments, which
/// other users can read in `ps`).
fn run_psql(view: &latch_api::ConnectView, extra: &[String]) -> anyhow::Result<()> {
    let mut command = std::process::Command::new("psql");
    command
        .env("PGPASSWORD", &view.credential)
        .env("PGSSLMODE", &view.sslmode)
        .env("PGAPPNAME", "psql")
        .args(["-h", &view.host, "-p", &view.port.to_string()])
        .args([
            "-U",
            &view.user,
            "-d",
            &format!("{}:{}", view.resource, view.role),
        ])
        .args(extra);
    eprintln!(
        "connecting to `{}` as `{}` (role `{}`, grant {}, ends {})",
        view.resource, view.user, view.role, view.grant_id, view.grant_expires_at
    );
    let status = command.status().map_err(|err| {
        Failed(format!(
            "cannot start psql ({err}): install the PostgreSQL client, or use `latch connect {} --print` with another client",
            view.resource
        ))
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(crate::exit::Silent(status.code().unwrap_or(1)).into())
    }
}

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Ask for access to a resource's role for a while, saying why.
    Request {
        /// The resource, e.g. `payments-db`.
        resource: String,
        /// A role of the resource, e.g. `read`.
        #[arg(long)]
        role: String,
        /// How long, e.g. `30m`, `2h`, `1h30m` (at most the role's maximum).
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
        /// Why: approvers and auditors read it.
        #[arg(long)]
        reason: String,
        /// A ticket or incident reference, e.g. `INC-4211`.
        #[arg(long)]
        ticket: Option<String>,
        /// A single-use grant: it ends when your first gateway session ends.
        #[arg(long)]
        once: bool,
    },
    /// List the requests you may see, newest first.
    Requests {
        /// Only requests waiting for a decision.
        #[arg(long)]
        pending: bool,
        /// Only your own requests.
        #[arg(long)]
        mine: bool,
        /// At most this many (1 to 1000) [default: 100]
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=MAX_LIMIT))]
        limit: Option<u32>,
    },
    /// Approve a pending request (a lead of the owner team or the requester's manager).
    Approve {
        /// The request id, `req_…`.
        id: String,
        /// A note for the requester and auditors.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Deny a pending request, saying why.
    Deny {
        /// The request id, `req_…`.
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Withdraw your own pending request.
    Cancel {
        /// The request id, `req_…`.
        id: String,
    },
    /// Break glass: grant your own pending request in an emergency, where a policy permits it
    /// (`self_approve`). Flagged in the ledger.
    BreakGlass {
        /// The request id, `req_…`.
        id: String,
        /// What the emergency is.
        #[arg(long)]
        reason: String,
    },
    /// List the grants you may see, newest first.
    Grants {
        /// Only grants active now.
        #[arg(long)]
        active: bool,
        /// Only your own grants.
        #[arg(long)]
        mine: bool,
        /// At most this many (1 to 1000) [default: 100]
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=MAX_LIMIT))]
        limit: Option<u32>,
    },
    /// End an active grant early, saying why.
    Revoke {
        /// The grant id, `grt_…`.
        grant_id: String,
        #[arg(long)]
        reason: String,
    },
    /// Show who the token belongs to.
    Whoami,
    /// Audit findings (auditors and admins): list, acknowledge, resolve.
    Findings {
        #[command(subcommand)]
        command: Option<FindingsCommand>,
        /// Only findings not resolved.
        #[arg(long)]
        open: bool,
        /// Only this severity or worse: info, low, medium, high, critical.
        #[arg(long)]
        severity: Option<String>,
        /// Only this checkpoint, e.g. `usage.scope`.
        #[arg(long)]
        checkpoint: Option<String>,
        /// At most this many (1 to 1000) [default: 100]
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=MAX_LIMIT))]
        limit: Option<u32>,
    },
    /// Re-evaluate the ledger with the checkpoints (after a threshold change): findings already
    /// opened are not opened again (auditors and admins).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Notifications latch queued for Slack, Teams, webhooks and email (auditors and admins):
    /// by default the dead-lettered ones, which need attention.
    Notifications {
        #[command(subcommand)]
        command: Option<NotificationsCommand>,
        /// `pending`, `sent` or `dead`.
        #[arg(long, default_value = "dead")]
        status: String,
    },
    /// Access reviews of closed periods (`[reviews]`): record an outcome.
    Review {
        #[command(subcommand)]
        command: ReviewCommand,
    },
    /// Reviews due and the outcomes recorded (auditors and admins; owner-team leads see their
    /// resources').
    Reviews {
        /// Only this period, e.g. `2026-Q3`.
        #[arg(long)]
        period: Option<String>,
    },
    /// Make the server re-read its organisation and policy files (admins); the same as sending
    /// it SIGHUP. A policy set that does not load is refused and the one in force stays.
    Reload,
    /// Connect to a resource through latch's gateway under your active grant: gets a
    /// short-lived credential and starts `psql` with it (or prints a connection URI).
    Connect {
        /// The resource, e.g. `payments-db`.
        resource: String,
        /// The role, when you hold active grants for several.
        #[arg(long)]
        role: Option<String>,
        /// Print a libpq connection URI (with the credential) instead of starting psql.
        #[arg(long)]
        print: bool,
        /// Arguments passed on to psql, after `--`, e.g. `-- -c 'select 1'`.
        #[arg(last = true)]
        psql_args: Vec<String>,
    },
    /// Gateway sessions: who connected under which grant, and when and why they ended.
    Sessions {
        #[command(subcommand)]
        command: Option<SessionsCommand>,
        /// Only sessions still open.
        #[arg(long)]
        active: bool,
        /// At most this many (1 to 1000) [default: 100]
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=MAX_LIMIT))]
        limit: Option<u32>,
    },
    /// Read the ledger's events in order (auditors and admins).
    Events {
        /// Only events after this sequence number [default: 0, from the start]
        #[arg(long, value_name = "SEQ")]
        after: Option<u64>,
        /// At most this many (1 to 1000) [default: 100]
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=MAX_LIMIT))]
        limit: Option<u32>,
    },
    /// Save `--server URL` and `--token TOKEN` as your profile, after checking them.
    ///
    /// Other commands then need neither. The profile is `$XDG_CONFIG_HOME/latch/profile.toml`
    /// (else `~/.config/latch/profile.toml`), readable by you only.
    Login,
    /// Remove the profile saved by `latch login`.
    Logout,
}

pub async fn run(options: &GlobalOptions, command: ClientCommand) -> anyhow::Result<()> {
    let output = options.output;
    let api = match command {
        ClientCommand::Login => return login(options).await,
        ClientCommand::Logout => return logout(),
        _ => Api::new(&target::resolve(options)?)?,
    };
    match command {
        ClientCommand::Request {
            resource,
            role,
            duration,
            reason,
            ticket,
            once,
        } => {
            let body = CreateRequest {
                resource,
                role,
                duration,
                reason,
                ticket,
                once,
            };
            let request: RequestView = api.post("requests", &body).await?;
            emit(output, &request, render::created)
        }
        ClientCommand::Requests {
            pending,
            mine,
            limit,
        } => {
            let mut query = Vec::new();
            if pending {
                query.push(("state", "pending".to_owned()));
            }
            if mine {
                query.push(("mine", "true".to_owned()));
            }
            push_limit(&mut query, limit);
            let list: RequestList = api.get("requests", &query).await?;
            emit(output, list.requests.as_slice(), render::requests)
        }
        ClientCommand::Approve { id, comment } => {
            let path = format!("requests/{}/approve", api::check_id(&id, "request")?);
            let request: RequestView = api.post(&path, &ApproveBody { comment }).await?;
            emit(output, &request, render::approved)
        }
        ClientCommand::Deny { id, reason } => {
            let path = format!("requests/{}/deny", api::check_id(&id, "request")?);
            let request: RequestView = api.post(&path, &ReasonBody { reason }).await?;
            emit(output, &request, render::denied)
        }
        ClientCommand::BreakGlass { id, reason } => {
            let path = format!("requests/{}/break-glass", api::check_id(&id, "request")?);
            let request: RequestView = api.post(&path, &ReasonBody { reason }).await?;
            emit(output, &request, render::approved)
        }
        ClientCommand::Cancel { id } => {
            let path = format!("requests/{}/cancel", api::check_id(&id, "request")?);
            let request: RequestView = api.post_empty(&path).await?;
            emit(output, &request, render::cancelled)
        }
        ClientCommand::Grants {
            active,
            mine,
            limit,
        } => {
            let mut query = Vec::new();
            if active {
                query.push(("active", "true".to_owned()));
            }
            if mine {
                query.push(("mine", "true".to_owned()));
            }
            push_limit(&mut query, limit);
            let list: GrantList = api.get("grants", &query).await?;
            let now = SystemClock.now();
            emit(output, list.grants.as_slice(), |grants| {
                render::grants(grants, now)
            })
        }
        ClientCommand::Revoke { grant_id, reason } => {
            let path = format!("grants/{}/revoke", api::check_id(&grant_id, "grant")?);
            let grant: GrantView = api.post(&path, &ReasonBody { reason }).await?;
            emit(output, &grant, render::revoked)
        }
        ClientCommand::Whoami => {
            let me: WhoAmI = api.get("whoami", &[]).await?;
            emit(output, &me, render::whoami)
        }
        ClientCommand::Connect {
            resource,
            role,
            print,
            psql_args,
        } => {
            let view: latch_api::ConnectView = api
                .post("connect", &latch_api::ConnectBody { resource, role })
                .await?;
            if print || output == Output::Json {
                return match output {
                    Output::Json => emit(output, &view, |_| String::new()),
                    Output::Table => Ok(print_out(&view.uri)?),
                };
            }
            run_psql(&view, &psql_args)
        }
        ClientCommand::Sessions {
            command,
            active,
            limit,
        } => match command {
            Some(SessionsCommand::Show { id }) => {
                let path = format!("sessions/{}", api::check_id(&id, "session")?);
                let detail: latch_api::SessionDetail = api.get(&path, &[]).await?;
                emit(output, &detail, render::session)
            }
            None => {
                let mut query = Vec::new();
                if active {
                    query.push(("active", "true".to_owned()));
                }
                push_limit(&mut query, limit);
                let list: latch_api::SessionList = api.get("sessions", &query).await?;
                emit(output, list.sessions.as_slice(), render::sessions)
            }
        },
        ClientCommand::Findings {
            command,
            open,
            severity,
            checkpoint,
            limit,
        } => match command {
            Some(FindingsCommand::Ack { id, comment }) => {
                let path = format!("findings/{}/ack", api::check_id(&id, "finding")?);
                let finding: latch_api::FindingView =
                    api.post(&path, &latch_api::CommentBody { comment }).await?;
                emit(output, &finding, render::finding_changed)
            }
            Some(FindingsCommand::Resolve { id, comment }) => {
                let path = format!("findings/{}/resolve", api::check_id(&id, "finding")?);
                let finding: latch_api::FindingView =
                    api.post(&path, &latch_api::CommentBody { comment }).await?;
                emit(output, &finding, render::finding_changed)
            }
            None => {
                let mut query = Vec::new();
                if open {
                    query.push(("open", "true".to_owned()));
                }
                if let Some(severity) = severity {
                    query.push(("severity", severity));
                }
                if let Some(checkpoint) = checkpoint {
                    query.push(("checkpoint", checkpoint));
                }
                push_limit(&mut query, limit);
                let list: latch_api::FindingList = api.get("findings", &query).await?;
                emit(output, list.findings.as_slice(), render::findings)
            }
        },
        ClientCommand::Audit {
            command: AuditCommand::Run { from, to },
        } => {
            let ran: latch_api::AuditRunView = api
                .post("audit/run", &latch_api::AuditRunBody { from, to })
                .await?;
            emit(output, &ran, |r| {
                format!(
                    "re-evaluated {} events: {} findings in the period, {} new",
                    r.events, r.found, r.opened
                )
            })
        }
        ClientCommand::Notifications { command, status } => match command {
            Some(NotificationsCommand::Retry { id }) => {
                let _: latch_api::RetryBody = api
                    .post(
                        "notifications/retry",
                        &latch_api::RetryBody { id: id.clone() },
                    )
                    .await?;
                Ok(print_out(&format!("notification {id} queued again"))?)
            }
            None => {
                let list: latch_api::NotificationList =
                    api.get("notifications", &[("status", status)]).await?;
                emit(output, list.notifications.as_slice(), render::notifications)
            }
        },
        ClientCommand::Review {
            command:
                ReviewCommand::Record {
                    period,
                    resource,
                    outcome,
                    comment,
                },
        } => {
            let outcome = match outcome {
                ReviewOutcome::Approved => "approved",
                ReviewOutcome::ChangesNeeded => "changes_needed",
            };
            let body = latch_api::RecordReviewBody {
                period,
                resource,
                outcome: outcome.to_owned(),
                comment,
            };
            let recorded: latch_api::ReviewOutcomeView = api.post("reviews", &body).await?;
            emit(output, &recorded, render::review_recorded)
        }
        ClientCommand::Reviews { period } => {
            let query: Vec<(&str, String)> = period.map(|p| ("period", p)).into_iter().collect();
            let list: latch_api::ReviewList = api.get("reviews", &query).await?;
            emit(output, list.reviews.as_slice(), render::reviews)
        }
        ClientCommand::Reload => {
            let outcome: latch_api::ReloadView = api.post_empty("admin/reload").await?;
            emit(output, &outcome, render::reloaded)
        }
        ClientCommand::Events { after, limit } => {
            let mut query = Vec::new();
            if let Some(after) = after {
                query.push(("after", after.to_string()));
            }
            push_limit(&mut query, limit);
            let list: EventList = api.get("events", &query).await?;
            emit(output, list.events.as_slice(), render::events)
        }
        // Handled above: they need no resolved target.
        ClientCommand::Login | ClientCommand::Logout => Ok(()),
    }
}

fn push_limit(query: &mut Vec<(&'static str, String)>, limit: Option<u32>) {
    if let Some(limit) = limit {
        query.push(("limit", limit.to_string()));
    }
}

/// Prints the API's JSON (pretty, stable for scripts) or the rendering for people.
fn emit<T: Serialize + ?Sized>(
    output: Output,
    value: &T,
    render: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    let text = match output {
        Output::Json => serde_json::to_string_pretty(value)?,
        Output::Table => render(value),
    };
    Ok(print_out(&text)?)
}

/// Prints a line to stdout. A closed pipe (`latch requests | head -1`) is not an error.
fn print_out(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

async fn login(options: &GlobalOptions) -> anyhow::Result<()> {
    let (Some(server), Some(token)) = (
        target::given(options.server.as_deref()),
        target::given(options.token.as_deref()),
    ) else {
        return Err(Usage(
            "`latch login` needs `--server URL` and `--token TOKEN` (or LATCH_SERVER and LATCH_TOKEN)"
                .into(),
        )
        .into());
    };
    let target = target::Target::new(server, token)?;
    let me: WhoAmI = Api::new(&target)?.get("whoami", &[]).await?;
    let path = profile::default_path().ok_or_else(|| {
        Failed("cannot tell where to save the profile: set HOME or XDG_CONFIG_HOME".into())
    })?;
    profile::save(&path, &target.to_profile())?;
    println!(
        "logged in to {} as {}; profile saved to {}",
        target.server(),
        me.user,
        path.display()
    );
    Ok(())
}

fn logout() -> anyhow::Result<()> {
    let Some(path) = profile::default_path() else {
        println!("no profile: neither HOME nor XDG_CONFIG_HOME is set");
        return Ok(());
    };
    if profile::remove(&path)? {
        println!("removed profile {}", path.display());
    } else {
        println!("no profile at {}", path.display());
    }
    Ok(())
}

/// Prints rows as an aligned table.
pub fn print_table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    if let Err(err) = print_out(&render::table(header, rows)) {
        eprintln!("error: cannot write to stdout: {err}");
    }
}
