//! Cost of classifying pgbench's statements: `classify` uncached (parse and walk), and a hit in
//! the `Classifier` cache (hash, one shard lock, an `Arc` clone), plus `redact_literals`.
//! Prints the median and p99 of batches, in nanoseconds per operation.
//!
//! Run: `cargo bench -p latch-sqlclass --bench classify`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark: a broken setup should stop it loudly"
)]

use std::hint::black_box;
use std::time::Instant;

use latch_sqlclass::{Classifier, StatementClass, classify, redact_literals};

const SELECT: &str = "SELECT abalance FROM pgbench_accounts WHERE aid = $1;";
const UPDATE: &str = "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;";
const INSERT: &str = "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP);";

/// Batches per measurement, and operations per batch.
const BATCHES: usize = 200;

/// Median and p99 in ns/op of `BATCHES` batches of `per_batch` calls of `op`.
fn measure(per_batch: usize, mut op: impl FnMut()) -> (f64, f64) {
    for _ in 0..per_batch {
        op();
    }
    let mut samples: Vec<f64> = (0..BATCHES)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..per_batch {
                op();
            }
            start.elapsed().as_nanos() as f64 / per_batch as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    (samples[BATCHES / 2], samples[BATCHES * 99 / 100])
}

fn report(name: &str, (median, p99): (f64, f64)) {
    println!("{name:<40} median {median:>9.0} ns/op   p99 {p99:>9.0} ns/op");
}

fn main() {
    assert_eq!(classify(SELECT).class, StatementClass::Read);
    let cache = Classifier::new(1024);
    for sql in [SELECT, UPDATE, INSERT] {
        cache.classify(sql);
    }

    report(
        "classify (uncached), pgbench select",
        measure(200, || {
            black_box(classify(black_box(SELECT)));
        }),
    );
    report(
        "classify (uncached), pgbench update",
        measure(200, || {
            black_box(classify(black_box(UPDATE)));
        }),
    );
    report(
        "classify (uncached), pgbench insert",
        measure(200, || {
            black_box(classify(black_box(INSERT)));
        }),
    );
    report(
        "Classifier hit, pgbench select",
        measure(20_000, || {
            black_box(cache.classify(black_box(SELECT)));
        }),
    );
    report(
        "Classifier hit, pgbench insert",
        measure(20_000, || {
            black_box(cache.classify(black_box(INSERT)));
        }),
    );
    report(
        "redact_literals, pgbench insert",
        measure(2_000, || {
            black_box(redact_literals(black_box(INSERT)));
        }),
    );
}
