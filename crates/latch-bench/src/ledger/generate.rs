//! `latch-bench ledger generate`: a large SQLite ledger for `verify` and `proof`, built quickly
//! but only from the store's and the ledger service's own code, so that every event is real:
//!
//! - `access.refused` events (an API refusal, about 330 bytes each) appended with
//!   `Store::record` in large transactions: the store gives them their `seq`, encodes them
//!   canonically and stores their leaf hashes, as for a refusal the API records;
//! - optionally (`--lifecycle-percent`) a share of lifecycle events: requests created and
//!   approved with `Store::execute_batch` (three events each: `request.created`,
//!   `request.approved`, `grant.issued`), so that the projections have rows to check;
//! - `--checkpoints` signed checkpoints at evenly spaced sizes, the last at the full size, each
//!   signed by `latch_server::ledger::Ledger::checkpoint` (which also stores the tree's nodes),
//!   with a key created as `latch serve` creates it.
//!
//! The directory gets a `latch.toml` (the quickstart's organisation, `data_dir` = `DIR/data`)
//! that `latch ledger verify --config` accepts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use latch_core::time::{Clock, SystemClock};
use latch_core::{AccessDuration, Actor, Command, Event, EventKind};
use latch_server::ledger::{Ledger, load_or_create_key};
use latch_store::{Executed, SqlStore, Store};

use crate::lifecycle::{DEFAULT_TEMPLATE, write_config};

/// The ledger's name in the generated config and key.
pub const ORIGIN: &str = "latch-bench.local/audit";

/// Lifecycle commands per `execute_batch` call.
const LIFECYCLE_BATCH: usize = 2000;

#[derive(clap::Args)]
pub struct Options {
    /// Events in the ledger.
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// The directory to create (it must not exist, or be empty).
    #[arg(long)]
    out: PathBuf,
    /// Signed checkpoints, at evenly spaced sizes; the last covers every event.
    #[arg(long, default_value_t = 4)]
    checkpoints: u64,
    /// Events per `Store::record` transaction.
    #[arg(long, default_value_t = 50_000)]
    batch: u64,
    /// The share of lifecycle events (created and approved requests), in percent; the rest are
    /// `access.refused`.
    #[arg(long, default_value_t = 0)]
    lifecycle_percent: u8,
    /// The config whose organisation the generated `latch.toml` copies.
    #[arg(long, default_value = DEFAULT_TEMPLATE)]
    template: PathBuf,
}

impl Options {
    pub fn defaults(events: u64, out: PathBuf, lifecycle_percent: u8) -> Self {
        Self {
            events,
            out,
            checkpoints: 4,
            batch: 50_000,
            lifecycle_percent,
            template: PathBuf::from(DEFAULT_TEMPLATE),
        }
    }
}

/// A generated ledger: its directory, config, database and signing key.
pub struct Generated {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub database: PathBuf,
    pub key_file: PathBuf,
}

impl Generated {
    fn paths(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            config: dir.join("latch.toml"),
            database: dir.join("data").join("latch.db"),
            key_file: dir.join("data").join("ledger.key"),
        }
    }

    /// A directory written by `generate` earlier.
    pub fn at(dir: &Path) -> anyhow::Result<Self> {
        let generated = Self::paths(dir);
        for file in [&generated.config, &generated.database, &generated.key_file] {
            ensure!(
                file.is_file(),
                "`{}` is missing: is `{}` a directory from `latch-bench ledger generate`?",
                file.display(),
                dir.display()
            );
        }
        Ok(generated)
    }

    pub async fn open_store(&self) -> anyhow::Result<Arc<SqlStore>> {
        Ok(Arc::new(SqlStore::open_sqlite(&self.database).await?))
    }

    /// The ledger service over `store`, with the generated key.
    pub fn ledger(&self, store: Arc<SqlStore>, checkpoints: usize) -> anyhow::Result<Ledger> {
        let key = load_or_create_key(&self.key_file, ORIGIN, checkpoints)?;
        Ok(Ledger::new(
            store as Arc<dyn Store>,
            key,
            Arc::new(SystemClock),
        ))
    }
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let generated = generate(&options).await?;
    println!(
        "ledger of {} events written to {} in {:.0} s; verify it with `latch ledger verify --config {}`",
        options.events,
        generated.dir.display(),
        started.elapsed().as_secs_f64(),
        generated.config.display()
    );
    Ok(())
}

/// A refusal as the API records it: who, what, where, and the lifecycle's reason.
fn refusal(n: u64, clock: &dyn Clock) -> Event {
    const USERS: [&str; 4] = ["frank", "dave", "alice", "carol"];
    let user = USERS
        .get(usize::try_from(n % 4).unwrap_or(0))
        .copied()
        .unwrap_or("frank");
    let request = format!("req_{}", ulid::Ulid::new().to_string().to_lowercase());
    Event {
        at: clock.now(),
        actor: Actor::user(user),
        subject: request.clone(),
        kind: EventKind::AccessRefused {
            action: "approve".into(),
            reason: format!(
                "`{user}` may not approve request `{request}`: approvers of `payments-db` are the leads of team `payments` and the requester's manager"
            ),
        },
    }
}

fn done(results: Vec<Executed>, what: &str) -> anyhow::Result<usize> {
    let mut events = 0;
    for result in results {
        match result {
            Executed::Done { events: e, .. } => events += e.len(),
            Executed::Refused(refusal) => bail!("{what} refused: {}", refusal.message),
        }
    }
    Ok(events)
}

/// Creates and approves `count` requests: `3 × count` events.
async fn lifecycle(store: &SqlStore, count: usize, clock: &dyn Clock) -> anyhow::Result<u64> {
    let catalog = latch_testkit::sample_catalog();
    let duration = AccessDuration::from_secs(3600).context("bad duration")?;
    let mut appended = 0;
    let mut left = count;
    while left > 0 {
        let n = left.min(LIFECYCLE_BATCH);
        left -= n;
        let ids: Vec<String> = (0..n)
            .map(|_| format!("req_{}", ulid::Ulid::new().to_string().to_lowercase()))
            .collect();
        let creates: Vec<(String, Command)> = ids
            .iter()
            .map(|id| {
                (
                    id.clone(),
                    Command::Create {
                        requester: "alice".into(),
                        resource: "payments-db".into(),
                        role: "read".into(),
                        duration,
                        reason: "latch-bench ledger generate: on-call investigation".into(),
                        ticket: Some("OPS-1234".into()),
                        once: false,
                        history: Default::default(),
                    },
                )
            })
            .collect();
        appended += done(
            store.execute_batch(&creates, &catalog, clock).await?,
            "create",
        )?;
        let approvals: Vec<(String, Command)> = ids
            .into_iter()
            .map(|id| {
                (
                    id,
                    Command::Approve {
                        approver: "bob".into(),
                        comment: Some("ok".into()),
                    },
                )
            })
            .collect();
        appended += done(
            store.execute_batch(&approvals, &catalog, clock).await?,
            "approve",
        )?;
    }
    Ok(u64::try_from(appended)?)
}

pub async fn generate(options: &Options) -> anyhow::Result<Generated> {
    ensure!(options.events > 0, "--events must be at least 1");
    ensure!(
        (1..=options.events).contains(&options.checkpoints),
        "--checkpoints must be 1 to --events"
    );
    ensure!(options.batch > 0, "--batch must be at least 1");
    ensure!(
        options.lifecycle_percent <= 100,
        "--lifecycle-percent must be 0 to 100"
    );
    let dir = &options.out;
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!(
            "`{}` exists and is not empty: generate into a new directory",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir.join("data"))
        .with_context(|| format!("cannot create `{}`", dir.display()))?;
    let template = std::fs::read_to_string(&options.template).with_context(|| {
        format!(
            "cannot read the config template `{}`",
            options.template.display()
        )
    })?;
    let config = write_config(&template, dir, None)?;
    set_origin(&config)?;
    let generated = Generated::paths(dir);
    let store = generated.open_store().await?;
    let ledger = generated.ledger(store.clone(), 0)?;
    let clock = SystemClock;

    let started = Instant::now();
    let mut written = 0u64;
    let mut next_report = Instant::now();
    let mut signing = std::time::Duration::ZERO;
    for k in 1..=options.checkpoints {
        let checkpoint_at = options.events * k / options.checkpoints;
        while written < checkpoint_at {
            let chunk = options.batch.min(checkpoint_at - written);
            let chunk_end = written + chunk;
            // Whole requests of three events, about the asked share of the chunk.
            let requests = chunk * u64::from(options.lifecycle_percent) / 300;
            if requests > 0 {
                written += lifecycle(&store, usize::try_from(requests)?, &clock).await?;
            }
            let refusals = chunk_end.saturating_sub(written);
            if refusals > 0 {
                let events: Vec<Event> = (written..written + refusals)
                    .map(|n| refusal(n, &clock))
                    .collect();
                written += u64::try_from(store.record(events).await?.len())?;
            }
            if next_report.elapsed().as_secs() >= 10 {
                next_report = Instant::now();
                eprintln!(
                    "  generate: {written} of {} events, {:.0} events/s",
                    options.events,
                    written as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
        let signed_at = Instant::now();
        let checkpoint = ledger
            .checkpoint()
            .await?
            .context("no checkpoint was signed")?;
        signing += signed_at.elapsed();
        ensure!(
            checkpoint.size == written,
            "signed a checkpoint of size {}, expected {written}",
            checkpoint.size
        );
    }
    let counted = store.ledger_size().await?;
    ensure!(
        counted == options.events,
        "the ledger holds {counted} events, expected {}",
        options.events
    );
    store.close().await;
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "  generate: {} events and {} checkpoints in {elapsed:.0} s ({:.0} events/s; signing checkpoints and storing tree nodes {:.0} s); {} MiB on disk",
        options.events,
        options.checkpoints,
        options.events as f64 / elapsed,
        signing.as_secs_f64(),
        super::mib(super::dir_size(&dir.join("data"))?)
    );
    Ok(generated)
}

/// Names the generated ledger (the key is created with this origin).
fn set_origin(config: &Path) -> anyhow::Result<()> {
    let mut doc: toml_edit::DocumentMut = std::fs::read_to_string(config)?.parse()?;
    let ledger = doc
        .entry("ledger")
        .or_insert_with(toml_edit::table)
        .as_table_like_mut()
        .context("`ledger` in the config template is not a table")?;
    ledger.insert("origin", toml_edit::value(ORIGIN));
    ledger.remove("signing_key_file");
    std::fs::write(config, doc.to_string())?;
    Ok(())
}
