//! Evidence packs from the store: the events up to the latest signed checkpoint, the pack
//! `latch-evidence` plans and renders from them, and an inclusion proof per cited event read the
//! way the API's `/ledger/inclusion` reads it. `latch evidence` and the scheduled reviews of
//! `latch serve` both make their packs here.

use std::collections::BTreeMap;
use std::path::Path;

use latch_core::{StoredEvent, Timestamp};
use latch_evidence::{Period, PolicyFile};
use latch_ledger::Hash;
use latch_store::Store;

use crate::ledger::{Ledger, LedgerError};

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Store(#[from] latch_store::StoreError),
    #[error(
        "the ledger has no signed checkpoint yet: run `latch ledger checkpoint` against the server (or start `latch serve`, which signs one within a second), then make the pack again"
    )]
    NoCheckpoint,
    #[error(
        "the latest signed checkpoint (size {size}, {signed}) does not cover the period's last event (event {seq} at {at}): run `latch ledger checkpoint` against the server, then make the pack again"
    )]
    Uncovered {
        size: u64,
        signed: Timestamp,
        seq: u64,
        at: Timestamp,
    },
    #[error("{0}")]
    Build(#[from] latch_evidence::BuildError),
    #[error(
        "the store's leaf of event {0} differs from the hash of its canonical text: run `latch ledger verify`"
    )]
    Leaf(u64),
}

/// A pack made, with its summary line.
pub struct Pack {
    pub files: BTreeMap<String, Vec<u8>>,
    pub summary: String,
    pub checkpoint_size: u64,
}

/// Makes the pack of `period` from the store, as of its latest signed checkpoint.
pub async fn make_pack(
    store: &dyn Store,
    ledger: &Ledger,
    period: &Period,
    policy_files: &[PolicyFile],
    now: Timestamp,
) -> Result<Pack, PackError> {
    let checkpoint = ledger
        .find_checkpoint(None)
        .await?
        .ok_or(PackError::NoCheckpoint)?;
    let mut events: Vec<StoredEvent> = Vec::new();
    let mut bodies: BTreeMap<u64, String> = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = store.events(after, 5000).await?;
        let Some((last, _)) = page.last() else { break };
        after = last.seq;
        for (event, body) in page {
            if event.seq > checkpoint.size {
                if period.contains(event.event.at) {
                    return Err(PackError::Uncovered {
                        size: checkpoint.size,
                        signed: checkpoint.at,
                        seq: event.seq,
                        at: event.event.at,
                    });
                }
                // Later events outside the period are simply not in this pack.
                continue;
            }
            bodies.insert(event.seq, body);
            events.push(event);
        }
    }
    let plan = latch_evidence::plan(&events, period);
    let mut proofs: BTreeMap<u64, Vec<Hash>> = BTreeMap::new();
    for &seq in &plan.cited {
        let index = seq - 1;
        let (leaf, proof) = ledger.inclusion_proof(index, checkpoint.size).await?;
        let body = bodies.get(&seq).map(String::as_bytes).unwrap_or_default();
        if latch_ledger::leaf_hash(body) != leaf {
            return Err(PackError::Leaf(seq));
        }
        proofs.insert(index, proof);
    }
    let files = latch_evidence::build(&latch_evidence::PackInput {
        plan: &plan,
        events: &bodies,
        checkpoint_note: &checkpoint.note,
        checkpoint_size: checkpoint.size,
        proofs: &proofs,
        public_key: &ledger.verifier_key().to_string(),
        generated_at: now,
        policy_files,
    })?;
    Ok(Pack {
        files,
        summary: plan.summary(),
        checkpoint_size: checkpoint.size,
    })
}

/// Writes `files` under `dir` (which must be new or empty), creating subdirectories.
pub fn write_pack(dir: &Path, files: &BTreeMap<String, Vec<u8>>) -> std::io::Result<()> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!(
                "`{}` exists and is not empty: write the pack into a new directory",
                dir.display()
            ),
        ));
    }
    for (name, bytes) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, bytes)?;
    }
    Ok(())
}
