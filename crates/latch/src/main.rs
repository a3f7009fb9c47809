//! The `latch` binary: `latch serve` runs the server; `latch check` and `latch admin …` work on
//! the config and store directly; every other command is a client of the HTTP API.

/// glibc's allocator serialises threads that free what another allocated, which a reader handing
/// pages to a consumer does for every row (docs/ARCHITECTURE.md, "Memory allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin;
mod analytics;
mod client;
mod evidence;
mod exit;
mod gateway;
mod ledger;
mod notify;
mod policy;
mod report;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "latch",
    version,
    about = "Just-in-time access with a tamper-evident audit ledger"
)]
struct Cli {
    #[command(flatten)]
    client: client::GlobalOptions,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (API, scheduler) with the given config.
    Serve {
        #[arg(long, short, env = "LATCH_CONFIG")]
        config: PathBuf,
        /// Override `server.listen` (e.g. `127.0.0.1:0` for a free port).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Validate a config file without starting anything.
    Check {
        #[arg(long, short, env = "LATCH_CONFIG")]
        config: PathBuf,
    },
    /// Administration that works directly on the store the config names.
    Admin {
        #[arg(long, short, env = "LATCH_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// The tamper-evident ledger: public key, verification, export.
    Ledger {
        #[arg(long, short, env = "LATCH_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: ledger::LedgerCommand,
    },
    /// Cedar policies: validate, explain a decision, run a table of expected decisions.
    Policy {
        #[arg(long, short, env = "LATCH_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: policy::PolicyCommand,
    },
    /// One row per access in a period (requester, approvers, times, how it ended, sessions and
    /// statements, findings), read offline from the store.
    Report {
        #[arg(long, short, env = "LATCH_CONFIG")]
        config: PathBuf,
        #[command(flatten)]
        period: report::Period,
        #[arg(long, value_enum, default_value = "csv")]
        format: report::ReportFormat,
        /// Only requests by members of this team.
        #[arg(long)]
        team: Option<String>,
        /// Only requests for this resource.
        #[arg(long)]
        resource: Option<String>,
    },
    /// Analytics of a period (volume, time to decision per team and approver, outcomes,
    /// granted against used time, what grants were used for, findings, tickets off pattern)
    /// and recommendations with their evidence, read offline from the store.
    Analytics {
        #[arg(long, short, env = "LATCH_CONFIG")]
        config: PathBuf,
        #[command(flatten)]
        period: report::Period,
        #[command(flatten)]
        filters: analytics::Filters,
        #[arg(long, value_enum, default_value = "text")]
        format: analytics::AnalyticsFormat,
    },
    /// The ledger's events of a period for other systems: JSONL or OCSF, read offline.
    Export {
        #[arg(long, short, env = "LATCH_CONFIG")]
        config: PathBuf,
        #[command(flatten)]
        period: report::Period,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: report::ExportFormat,
    },
    /// The SOC 2 / ISO 27001 evidence pack of a period (report, findings, policy sets, control
    /// mapping, and the cited ledger events with a signed checkpoint and their proofs), made
    /// offline from the store; verify it with `latch ledger verify --bundle DIR`.
    Evidence {
        #[arg(long, short, env = "LATCH_CONFIG")]
        config: PathBuf,
        #[command(flatten)]
        period: evidence::PeriodArgs,
        /// A new or empty directory to write the pack into.
        #[arg(long)]
        out: PathBuf,
    },
    #[command(flatten)]
    Client(client::ClientCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Serve { config, listen } => admin::serve(&config, listen).await,
            Command::Check { config } => admin::check(&config),
            Command::Admin { config, command } => {
                admin::run(config.as_deref(), command, &cli.client).await
            }
            Command::Ledger { config, command } => {
                ledger::run(config.as_deref(), command, &cli.client).await
            }
            Command::Policy { config, command } => policy::run(config.as_deref(), command),
            Command::Report {
                config,
                period,
                format,
                team,
                resource,
            } => report::report(&config, &period, format, team, resource).await,
            Command::Export {
                config,
                period,
                format,
            } => report::export(&config, &period, format).await,
            Command::Analytics {
                config,
                period,
                filters,
                format,
            } => analytics::analytics(&config, &period, filters, format).await,
            Command::Evidence {
                config,
                period,
                out,
            } => evidence::evidence(&config, &period, &out).await,
            Command::Client(command) => client::run(&cli.client, command).await,
        }
    });
    exit::report(outcome)
}
