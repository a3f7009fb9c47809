//! `latch-bench ledger …`: the ledger's benchmarks.
//!
//! - `append`: events per second appended through `Store::execute` (group commit, durable
//!   commits), with 1 and 64 concurrent writers, SQLite and PostgreSQL side by side.
//! - `generate`: builds a large SQLite ledger of real canonical events with signed checkpoints,
//!   kept in a directory with its config so that `verify` and `proof` can reuse it.
//! - `verify`: times the real `latch ledger verify` over such a ledger (events/s, peak RSS),
//!   beside the machine's SHA-256 throughput over the same event bytes.
//! - `proof`: the time of `Ledger::inclusion_proof` for random events of the latest checkpoint.

mod append;
mod generate;
mod proof;
mod verify;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;

pub use generate::Generated;

#[derive(Subcommand)]
pub enum LedgerBench {
    /// Events per second appended through `Store::execute` (group commit, fsync), by writer
    /// count, SQLite and PostgreSQL side by side.
    Append(append::Options),
    /// Build a large SQLite ledger (real canonical events, signed checkpoints) into a directory,
    /// for `verify` and `proof`.
    Generate(generate::Options),
    /// Time `latch ledger verify` over a large ledger, beside SHA-256 over the same bytes.
    Verify(verify::Options),
    /// Time inclusion proofs (`Ledger::inclusion_proof`) of random events in a large ledger.
    Proof(proof::Options),
}

pub async fn run(bench: LedgerBench) -> anyhow::Result<()> {
    match bench {
        LedgerBench::Append(options) => append::run(options).await,
        LedgerBench::Generate(options) => generate::run(options).await,
        LedgerBench::Verify(options) => verify::run(options).await,
        LedgerBench::Proof(options) => proof::run(options).await,
    }
}

/// Where `verify` and `proof` find their ledger: one made earlier by `generate`, or a fresh one
/// made now in a temporary directory.
#[derive(clap::Args)]
pub struct Source {
    /// A directory written by `latch-bench ledger generate --out DIR` (reused as is).
    #[arg(long)]
    ledger: Option<PathBuf>,
    /// Without `--ledger`: generate a ledger of this many events first, in a temporary
    /// directory removed afterwards.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Without `--ledger`: the share of lifecycle events (percent), as `generate`'s option.
    #[arg(long, default_value_t = 0)]
    lifecycle_percent: u8,
}

/// A ledger directory, and the temporary directory to remove when it was made for this run.
pub struct Opened {
    pub ledger: Generated,
    _temp: Option<tempfile::TempDir>,
}

impl Source {
    pub async fn open(&self) -> anyhow::Result<Opened> {
        match &self.ledger {
            Some(dir) => Ok(Opened {
                ledger: Generated::at(dir)?,
                _temp: None,
            }),
            None => {
                let temp = tempfile::tempdir()?;
                let options = generate::Options::defaults(
                    self.events,
                    temp.path().join("ledger"),
                    self.lifecycle_percent,
                );
                let ledger = generate::generate(&options).await?;
                Ok(Opened {
                    ledger,
                    _temp: Some(temp),
                })
            }
        }
    }
}

/// The commit this binary's tree is at (`git rev-parse --short HEAD` in the workspace), for
/// the reports; with `+dirty` when the tree has changes.
pub fn commit() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let head = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(changes) if !changes.is_empty() => format!("{head}+dirty"),
        _ => head,
    }
}

/// Bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

/// A directory's total size in bytes (not following links). Files that vanish meanwhile (SQLite
/// removes its `-wal` and `-shm` files when the last connection closes) count as empty.
pub fn dir_size(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("cannot read `{}`", dir.display()))?
    {
        let found = entry.and_then(|entry| entry.metadata().map(|meta| (entry.path(), meta)));
        total += match found {
            Ok((path, meta)) if meta.is_dir() => dir_size(&path)?,
            Ok((_, meta)) => meta.len(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => 0,
            Err(err) => return Err(err.into()),
        };
    }
    Ok(total)
}
