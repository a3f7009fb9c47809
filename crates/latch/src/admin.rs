//! `latch serve`, `latch check` and `latch admin …`: the commands that read the config and open
//! the store themselves (the first token has no token to create it).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use latch_config::{Config, Database};
use latch_core::Actor;
use latch_core::time::SystemClock;
use latch_server::AppState;
use latch_store::{OpenMode, SqlStore, Store, TokenRecord};
use tokio_util::sync::CancellationToken;

use crate::client::{GlobalOptions, Output, print_table};
use crate::exit::{Failed, Usage};

#[derive(Subcommand)]
pub enum AdminCommand {
    /// API tokens: create, list, revoke.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Upgrade the store to this latch's schema (stop an older `latch serve` first). The next
    /// `latch serve` does it too; the offline commands never do.
    Migrate,
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token for a user and print it once.
    Create {
        /// The user (a key of `[users]` in the config).
        #[arg(long)]
        user: String,
        /// A note to recognise it by, e.g. `laptop`.
        #[arg(long)]
        label: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id (`tok_…`).
    Revoke { id: String },
}

fn load_config(path: &Path) -> anyhow::Result<Config> {
    latch_config::load(path).map_err(|err| Failed(err.to_string()).into())
}

/// Opens the store the config names as `mode` says; to migrate is also to create it (and, for
/// SQLite, its data directory).
pub async fn open_store(config: &Config, mode: OpenMode) -> anyhow::Result<SqlStore> {
    let open = async {
        match &config.server.database {
            Database::Sqlite { path } => {
                if mode == OpenMode::Migrate
                    && let Some(dir) = path.parent()
                {
                    create_private_dir(dir)?;
                }
                Ok(SqlStore::open_sqlite_with(path, mode).await?)
            }
            Database::Postgres { url } => Ok(SqlStore::open_postgres_with(url, mode).await?),
        }
    };
    if tracing::dispatcher::has_been_set() {
        return open.await;
    }
    // `latch admin` keeps no log, but opening an older store migrates it first, and a migration
    // may copy the whole ledger (minutes for tens of millions of events): the store's lines
    // about it reach stderr rather than a silent wait.
    use tracing::instrument::WithSubscriber as _;
    let migrations = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("latch_store=info"))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .finish();
    open.with_subscriber(migrations).await
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        // The data directory holds the ledger and, later, signing keys: owner only.
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("cannot create data directory `{}`", dir.display()))
}

pub fn check(path: &Path) -> anyhow::Result<()> {
    let config = load_config(path)?;
    crate::policy::engine(&config)?;
    let catalog = &config.catalog;
    println!(
        "{}: ok ({} users, {} teams, {} resources; store: {})",
        path.display(),
        catalog.users.len(),
        catalog.teams.len(),
        catalog.resources.len(),
        match &config.server.database {
            Database::Sqlite { path } => format!("sqlite at {}", path.display()),
            Database::Postgres { .. } => "postgres".to_owned(),
        }
    );
    Ok(())
}

pub async fn serve(path: &Path, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LATCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = load_config(path)?;
    let store = open_store(&config, OpenMode::Migrate).await?;
    // Held until the process ends: a second server on the same SQLite file is refused.
    let _claimed = store.claim()?;
    let address = listen.unwrap_or(config.server.listen);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| {
            format!("cannot listen on `{address}`: is another latch running there?")
        })?;
    let bound = listener.local_addr()?;
    let checkpoints = latch_store::Store::checkpoints(&store).await?;
    let key = latch_server::ledger::load_or_create_key(
        &config.ledger.signing_key_file,
        &config.ledger.origin,
        checkpoints.len(),
    )?;
    // A replaced key would sign checkpoints no earlier one is consistent with: refuse to start.
    if let Some(latest) = checkpoints.last()
        && let Err(err) = latch_ledger::open(&latest.note, &key.verifier_key())
    {
        return Err(Failed(format!(
            "the signing key `{}` did not sign this ledger's checkpoints ({err}): restore the original key \
             (`latch ledger verify` shows which checkpoints fail)",
            config.ledger.signing_key_file.display()
        ))
        .into());
    }
    let loaded = load_catalog(&config)?;
    if let Some(policy) = &loaded.policy {
        latch_server::record_policy_set(&store, &SystemClock, policy).await?;
        tracing::info!(
            policies = policy.policies,
            hash = policy.hash,
            "decisions follow the Cedar policies"
        );
    }
    let store = Arc::new(store);
    let mut state = AppState::new(
        store.clone(),
        Arc::new(loaded.catalog),
        Arc::new(SystemClock),
        key,
    );
    state.reloader = Some(Arc::new(ConfigReloader {
        started: config.clone(),
    }));
    let shutdown = CancellationToken::new();
    let mut gateway_task = None;
    if let (Some(settings), Some(gateway_config)) =
        (crate::gateway::settings(&config)?, &config.gateway)
    {
        let (settings, tls) = settings;
        let listener = tokio::net::TcpListener::bind(gateway_config.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen for PostgreSQL clients on `{}` (gateway.listen): is another server there?",
                    gateway_config.listen
                )
            })?;
        let address = listener.local_addr()?;
        let authority = Arc::new(
            latch_server::gateway::LatchAuthority::new(
                state.store.clone(),
                state.catalog.clone(),
                state.clock.clone(),
            )
            .with_scram_iterations(gateway_config.scram_iterations),
        );
        let gateway = Arc::new(latch_gateway::Gateway::new(
            settings,
            authority,
            latch_gateway::SystemClock,
        ));
        state.gateway = Some(latch_server::gateway::GatewayHandle {
            gateway: gateway.clone(),
            address,
            tls,
            credential_ttl: gateway_config.credential_ttl,
            scram_iterations: gateway_config.scram_iterations,
        });
        // Tests and scripts read this line to learn the port.
        println!("latch gateway listening on postgresql://{address}");
        tracing::info!(%address, "gateway serving PostgreSQL clients");
        // Revocations recorded by another replica end this one's sessions too.
        tokio::spawn(latch_server::gateway::follow_revocations(
            state.store.clone(),
            gateway.clone(),
            config.server.scheduler_interval,
            shutdown.clone(),
        ));
        let stop = shutdown.clone();
        gateway_task = Some(tokio::spawn(async move {
            if let Err(err) = gateway.run(listener, stop).await {
                tracing::error!(%err, "the gateway stopped");
            }
        }));
    }
    let audit = latch_server::audit::AuditConfig {
        settings: config.audit.thresholds.clone(),
        rules: config
            .resource_labels
            .iter()
            .map(|(name, labels)| {
                (
                    name.clone(),
                    latch_audit::ResourceRules {
                        ticket_pattern: labels.ticket_pattern.clone(),
                        scope: labels.scope.clone(),
                    },
                )
            })
            .collect(),
    };
    // `latch audit run` works either way; `[audit] enabled` turns the live checkpoints on.
    state.audit = Some(audit.clone());
    state.policy_files = Arc::new(config.policy.files.clone());
    let mut audit_task = None;
    if config.audit.enabled {
        audit_task = Some(tokio::spawn(latch_server::audit::run(
            state.clone(),
            audit,
            shutdown.clone(),
        )));
    }
    let mut notify_task = None;
    if let Some(notify) = crate::notify::config(&config)? {
        let notify = Arc::new(notify);
        state.notify = Some(notify.clone());
        notify_task = Some(tokio::spawn(latch_server::notify::run(
            state.clone(),
            notify,
            shutdown.clone(),
        )));
    }
    let mut review_task = None;
    if let Some(reviews) = &config.reviews {
        let settings = latch_server::review::ReviewSettings {
            schedule: match reviews.schedule {
                latch_config::ReviewSchedule::Monthly => latch_evidence::Schedule::Monthly,
                latch_config::ReviewSchedule::Quarterly => latch_evidence::Schedule::Quarterly,
            },
            out_dir: reviews.out_dir.clone(),
            policy_files: config.policy.files.clone(),
            poll: std::time::Duration::from_secs(60),
        };
        review_task = Some(tokio::spawn(latch_server::review::run(
            state.clone(),
            settings,
            shutdown.clone(),
        )));
    }
    let mut sink_task = None;
    if let Some(nats) = &config.nats_export {
        let sink = latch_server::sink::NatsSink {
            server: nats.server.clone(),
            subject: nats.subject.clone(),
            stream: nats.stream.clone(),
            format: match nats.format {
                latch_config::ExportFormat::Ledger => latch_server::sink::SinkFormat::Ledger,
                latch_config::ExportFormat::Ocsf => latch_server::sink::SinkFormat::Ocsf,
            },
            origin: config.ledger.origin.clone(),
        };
        sink_task = Some(tokio::spawn(latch_server::sink::run(
            state.store.clone(),
            sink,
            shutdown.clone(),
        )));
    }
    tokio::spawn(stop_on_signal(shutdown.clone()));
    tokio::spawn(reload_on_hangup(state.clone(), shutdown.clone()));
    // Tests and scripts read this line to learn the port.
    println!("latch listening on http://{bound}");
    tracing::info!(%bound, config = %path.display(), "latch serving");
    let intervals = latch_server::Intervals {
        scheduler: config.server.scheduler_interval,
        checkpoint: config.ledger.checkpoint_interval,
    };
    let served = latch_server::run(listener, state, intervals, shutdown.clone()).await;
    shutdown.cancel();
    if let Some(task) = gateway_task {
        let _ = task.await;
    }
    if let Some(task) = audit_task {
        let _ = task.await;
    }
    if let Some(task) = notify_task {
        let _ = task.await;
    }
    if let Some(task) = sink_task {
        let _ = task.await;
    }
    if let Some(task) = review_task {
        let _ = task.await;
    }
    served?;
    // Everything that writes has stopped: leave a database file that is whole on its own.
    if let Err(err) = store.checkpoint_wal().await {
        tracing::warn!(%err, "cannot fold the WAL into the database file at stop");
    }
    tracing::info!("latch stopped");
    Ok(())
}

/// The catalog the config describes, with its policy engine when it names policy files.
fn load_catalog(config: &Config) -> anyhow::Result<latch_server::Loaded> {
    let mut catalog = config.catalog.clone();
    let mut policy = None;
    if let Some(engine) = crate::policy::engine(config)? {
        policy = Some(latch_server::PolicySetId {
            hash: engine.hash().to_owned(),
            files: engine.files().to_vec(),
            policies: engine.policy_count() as u64,
        });
        catalog.policy = Some(latch_core::policy::SharedPolicy(Arc::new(engine)));
    }
    Ok(latch_server::Loaded {
        catalog,
        policy,
        needs_restart: Vec::new(),
    })
}

/// Reloads the organisation and policies from the config file `latch serve` started with.
struct ConfigReloader {
    started: Config,
}

impl latch_server::Reloader for ConfigReloader {
    fn load(&self) -> Result<latch_server::Loaded, String> {
        let config = latch_config::load(&self.started.path).map_err(|err| err.to_string())?;
        let mut loaded = load_catalog(&config).map_err(|err| format!("{err:#}"))?;
        let old = &self.started;
        let changed = [
            ("[server]", config.server != old.server),
            ("[ledger]", config.ledger != old.ledger),
            ("resource upstreams", config.upstreams != old.upstreams),
        ];
        loaded.needs_restart = changed
            .into_iter()
            .filter(|(_, changed)| *changed)
            .map(|(name, _)| name.to_owned())
            .collect();
        Ok(loaded)
    }
}

/// SIGHUP reloads the organisation and policies, as `POST /api/v1/admin/reload` does.
async fn reload_on_hangup(state: AppState, shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(hangup) => hangup,
            Err(err) => {
                tracing::warn!(%err, "cannot watch SIGHUP: reload with the API instead");
                return;
            }
        };
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                received = hangup.recv() => {
                    if received.is_none() {
                        return;
                    }
                }
            }
            tracing::info!("SIGHUP: reloading the configuration");
            // The outcome is logged by `reload`; a refused reload keeps what is in force.
            if let Err(err) = latch_server::reload(&state).await {
                tracing::warn!(%err, "reload failed");
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (state, shutdown);
    }
}

async fn stop_on_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = match signal(SignalKind::terminate()) {
            Ok(terminate) => terminate,
            Err(err) => {
                tracing::warn!(%err, "cannot watch SIGTERM");
                let _ = tokio::signal::ctrl_c().await;
                shutdown.cancel();
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("stopping");
    shutdown.cancel();
}

pub async fn run(
    config: Option<&Path>,
    command: AdminCommand,
    options: &GlobalOptions,
) -> anyhow::Result<()> {
    let path: PathBuf = config.map(Path::to_owned).ok_or_else(|| {
        Usage("`latch admin` needs the config: pass `--config FILE` or set LATCH_CONFIG".into())
    })?;
    let config = load_config(&path)?;
    let store = open_store(&config, OpenMode::Migrate).await?;
    let command = match command {
        AdminCommand::Token { command } => command,
        AdminCommand::Migrate => {
            let version = store.schema_version().await?;
            println!(
                "{}: the store is at schema version {version}, the newest this latch knows",
                path.display()
            );
            return Ok(());
        }
    };
    match command {
        TokenCommand::Create { user, label } => {
            if config.catalog.user(&user).is_none() {
                let known: Vec<&str> = config.catalog.users.keys().map(String::as_str).collect();
                return Err(Failed(format!(
                    "unknown user `{user}` (users: {})",
                    known.join(", ")
                ))
                .into());
            }
            let token = latch_server::auth::new_token();
            let record = TokenRecord {
                id: token.id.clone(),
                user: user.clone(),
                label: label.filter(|l| !l.trim().is_empty()),
                created_at: latch_core::time::Clock::now(&SystemClock),
                revoked_at: None,
            };
            store
                .create_token(&record, &token.secret_hash, Actor::System, &SystemClock)
                .await?;
            eprintln!(
                "created token {} for {user}; it is shown only once:",
                token.id
            );
            println!("{}", token.secret);
        }
        TokenCommand::List => {
            let tokens = store.tokens().await?;
            match options.output {
                Output::Json => {
                    let rows: Vec<serde_json::Value> = tokens
                        .iter()
                        .map(|t| {
                            serde_json::json!({
                                "id": t.id, "user": t.user, "label": t.label,
                                "created_at": t.created_at.to_string(),
                                "revoked_at": t.revoked_at.map(|at| at.to_string()),
                            })
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                }
                Output::Table => print_table(
                    &["ID", "USER", "LABEL", "CREATED", "REVOKED"],
                    tokens.iter().map(|t| {
                        vec![
                            t.id.clone(),
                            t.user.clone(),
                            t.label.clone().unwrap_or_default(),
                            t.created_at.to_string(),
                            t.revoked_at.map(|at| at.to_string()).unwrap_or_default(),
                        ]
                    }),
                ),
            }
        }
        TokenCommand::Revoke { id } => {
            match store.revoke_token(&id, Actor::System, &SystemClock).await? {
                Ok(token) => println!("revoked token {} of {}", token.id, token.user),
                Err(refusal) => return Err(Failed(refusal.message).into()),
            }
        }
    }
    Ok(())
}
