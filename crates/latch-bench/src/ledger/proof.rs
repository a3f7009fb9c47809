//! `latch-bench ledger proof`: inclusion proofs of random events in the tree of the latest
//! checkpoint of a large SQLite ledger, timed around `Ledger::inclusion_proof` (what the
//! `/api/v1/ledger/inclusion` endpoint calls), in process. Every proof is checked against the
//! checkpoint's root, so a fast wrong answer cannot pass.
//!
//! `--prover all-leaves` times instead what `Ledger::inclusion_proof` did before proofs were
//! made from stored subtree roots: read every leaf hash of the tree (`Store::leaf_hashes`) and
//! compute the proof from them (`latch_ledger::inclusion_proof`), for comparison.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use latch_store::Store;
use rand::{Rng, SeedableRng};

use super::Source;
use crate::stats::percentile;

/// The target for the median.
const TARGET_MEDIAN_MICROS: i64 = 1000;

/// How a proof is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Prover {
    /// `Ledger::inclusion_proof`, as the server makes them.
    Ledger,
    /// Every leaf hash read, the proof computed from them: the O(n) prover of before.
    AllLeaves,
}

#[derive(clap::Args)]
pub struct Options {
    #[command(flatten)]
    source: Source,
    /// Proofs to time, each of a random event.
    #[arg(long, default_value_t = 100)]
    samples: usize,
    /// Untimed proofs first (they warm the caches).
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Stop timing after this many seconds even if fewer proofs were made (a slow prover).
    #[arg(long, default_value_t = 600)]
    budget_secs: u64,
    #[arg(long, value_enum, default_value_t = Prover::Ledger)]
    prover: Prover,
    /// Seed of the random event indexes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Microseconds as milliseconds with three decimals: proofs may take well under one.
fn ms(micros: i64) -> String {
    format!("{:.3}", micros as f64 / 1000.0)
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    ensure!(options.samples > 0, "--samples must be at least 1");
    let opened = options.source.open().await?;
    let generated = &opened.ledger;
    let store = generated.open_store().await?;
    let checkpoints = store.checkpoints().await?;
    let checkpoint = checkpoints
        .last()
        .context("the ledger has no checkpoint")?
        .clone();
    let ledger = generated.ledger(store.clone(), checkpoints.len())?;
    let size = checkpoint.size;
    eprintln!(
        "ledger proof: {} random events of the checkpoint of size {size}, {} warm-up, prover {:?}",
        options.samples, options.warmup, options.prover
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(options.seed);
    let mut latencies = Vec::with_capacity(options.samples);
    let mut path_len = 0;
    let budget = Duration::from_secs(options.budget_secs);
    let started = Instant::now();
    for i in 0..options.warmup + options.samples {
        let index = rng.gen_range(0..size);
        let t = Instant::now();
        let (leaf, path) = match options.prover {
            Prover::Ledger => ledger.inclusion_proof(index, size).await?,
            Prover::AllLeaves => {
                let leaves = store.leaf_hashes(0, size).await?;
                let path = latch_ledger::inclusion_proof(&leaves, index)?;
                let leaf = leaves
                    .get(usize::try_from(index)?)
                    .copied()
                    .context("no such leaf")?;
                (leaf, path)
            }
        };
        let took = t.elapsed();
        latch_ledger::verify_inclusion(index, size, &leaf, &path, &checkpoint.root)
            .map_err(|err| anyhow::anyhow!("the proof of index {index} does not verify: {err}"))?;
        path_len = path_len.max(path.len());
        if i >= options.warmup {
            latencies.push(i64::try_from(took.as_micros()).unwrap_or(i64::MAX));
        }
        if started.elapsed() > budget {
            eprintln!(
                "  stopped after {} timed proofs: --budget-secs {} spent",
                latencies.len(),
                options.budget_secs
            );
            break;
        }
    }
    store.close().await;
    latencies.sort_unstable();
    let p = |q| percentile(&latencies, q).map_or_else(|| "-".into(), ms);
    println!();
    println!(
        "ledger proof: inclusion proofs in the tree of {size} events ({}, SQLite, in process), workspace at {}",
        match options.prover {
            Prover::Ledger => "`Ledger::inclusion_proof`",
            Prover::AllLeaves => "all leaves read, `latch_ledger::inclusion_proof`",
        },
        super::commit()
    );
    println!();
    println!("| proofs | median ms | p99 ms | min ms | max ms | hashes per proof |");
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {} | {} | {} | {path_len} |",
        latencies.len(),
        p(50.0),
        p(99.0),
        latencies.first().map_or_else(|| "-".into(), |&v| ms(v)),
        latencies.last().map_or_else(|| "-".into(), |&v| ms(v)),
    );
    println!();
    match percentile(&latencies, 50.0) {
        Some(median) if median < TARGET_MEDIAN_MICROS => {
            println!("target met: median under 1 ms");
        }
        Some(median) => println!(
            "target NOT met: median {} ms against 1 ms ({:.0}× too slow)",
            ms(median),
            median as f64 / TARGET_MEDIAN_MICROS as f64
        ),
        None => println!("no proof was timed"),
    }
    Ok(())
}
