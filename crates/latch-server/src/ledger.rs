//! The ledger service: the signing key, the checkpointer that signs the tree as it grows, and
//! the proofs the API serves. The Merkle math and note format are `latch-ledger`'s; this module
//! only feeds it from the store.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use latch_core::time::Clock;
use latch_ledger::{Checkpoint, CompactRange, Hash, LeafRange, NodeId, SigningKey, VerifierKey};
use latch_store::{Store, StoreError, StoredCheckpoint};
use rand::RngCore;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("signing key `{path}`: {message}")]
    Key { path: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot sign checkpoint: {0}")]
    Sign(latch_ledger::Error),
    #[error("{0}")]
    Proof(latch_ledger::Error),
}

/// Reads the signing key at `path`, or creates one (mode 0600) when the file does not exist and
/// the ledger has no signed checkpoint yet. A key whose name is not `origin` is refused:
/// checkpoints would name another ledger. A missing key over existing checkpoints is refused:
/// a new key would make every earlier checkpoint unverifiable.
pub fn load_or_create_key(
    path: &Path,
    origin: &str,
    existing_checkpoints: usize,
) -> Result<SigningKey, LedgerError> {
    let fail = |message: String| LedgerError::Key {
        path: path.display().to_string(),
        message,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            check_private_mode(path).map_err(fail)?;
            let key = SigningKey::parse(text.trim())
                .map_err(|err| fail(format!("not a latch signing key: {err}")))?;
            if key.name() != origin {
                return Err(fail(format!(
                    "the key is named `{}` but `ledger.origin` is `{origin}`: use the matching key or origin",
                    key.name()
                )));
            }
            Ok(key)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && existing_checkpoints > 0 => {
            Err(fail(format!(
                "it is missing, but the ledger has {existing_checkpoints} checkpoints signed with it: restore the key \
             file (latch never makes a new key over existing checkpoints)"
            )))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut seed);
            let key = SigningKey::from_seed(origin, seed)
                .map_err(|err| fail(format!("invalid origin: {err}")))?;
            if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|err| fail(format!("cannot create its directory: {err}")))?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options
                .open(path)
                .map_err(|err| fail(format!("cannot create it: {err}")))?;
            file.write_all(key.to_private_text().as_bytes())
                .and_then(|()| file.write_all(b"\n"))
                .and_then(|()| file.sync_all())
                .map_err(|err| fail(format!("cannot write it: {err}")))?;
            tracing::info!(path = %path.display(), verifier_key = %key.verifier_key(), "created the ledger signing key");
            Ok(key)
        }
        Err(err) => Err(fail(format!("cannot read it: {err}"))),
    }
}

#[cfg(unix)]
fn check_private_mode(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|err| err.to_string())?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "is readable by others (mode {:o}): run `chmod 600` on it",
            mode & 0o777
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_mode(_path: &Path) -> Result<(), String> {
    Ok(())
}

/// Signs checkpoints of the ledger as it grows. The compact range holds the tree's right
/// border, so each checkpoint reads only the leaves added since the last one.
pub struct Ledger {
    store: Arc<dyn Store>,
    key: SigningKey,
    clock: Arc<dyn Clock>,
    range: Mutex<Option<CompactRange>>,
}

impl Ledger {
    pub fn new(store: Arc<dyn Store>, key: SigningKey, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            key,
            clock,
            range: Mutex::new(None),
        }
    }

    pub fn verifier_key(&self) -> VerifierKey {
        self.key.verifier_key()
    }

    pub fn origin(&self) -> &str {
        self.key.name()
    }

    /// Signs a checkpoint of the whole ledger if it grew since the last one; returns the latest
    /// checkpoint either way (`None` for an empty ledger). The roots of the subtrees the new
    /// leaves complete are stored first, so every checkpoint can be proved from stored nodes.
    pub async fn checkpoint(&self) -> Result<Option<StoredCheckpoint>, LedgerError> {
        let mut guard = self.range.lock().await;
        let range = match guard.as_mut() {
            Some(range) => range,
            None => guard.insert(self.load_range().await?),
        };
        let size = self.store.ledger_size().await?;
        let latest = self.store.checkpoint(None).await?;
        if size == 0 || latest.as_ref().is_some_and(|c| c.size >= size) {
            return Ok(latest);
        }
        const PAGE: u64 = 10_000;
        while range.size() < size {
            let to = size.min(range.size() + PAGE);
            let leaves = self.store.leaf_hashes(range.size(), to).await?;
            // A tree of n leaves has n - 1 inner nodes: sized once, not grown by doubling.
            let mut nodes = Vec::with_capacity(leaves.len());
            for leaf in leaves {
                range.append_reporting(leaf, |id, hash| nodes.push((id, hash)));
            }
            self.store.add_tree_nodes(&nodes).await?;
        }
        let at = self.clock.now();
        let checkpoint = Checkpoint {
            origin: self.key.name().to_owned(),
            size,
            root: range.root(),
            time_millis: at.as_millis(),
        };
        let note = latch_ledger::sign(&checkpoint, &self.key).map_err(LedgerError::Sign)?;
        let stored = StoredCheckpoint {
            size,
            root: checkpoint.root,
            at,
            note,
        };
        self.store.add_checkpoint(&stored).await?;
        Ok(Some(stored))
    }

    /// The tree's right border at the latest checkpoint, from stored nodes: O(log n) reads.
    /// (Events after it are appended, and their nodes stored, by the next checkpoint.)
    async fn load_range(&self) -> Result<CompactRange, LedgerError> {
        let Some(latest) = self.store.checkpoint(None).await? else {
            return Ok(CompactRange::new());
        };
        let whole = LeafRange {
            start: 0,
            end: latest.size,
        };
        let hashes = self.store.tree_nodes(&whole.nodes()).await?;
        let range = CompactRange::from_parts(latest.size, hashes).map_err(LedgerError::Proof)?;
        if range.root() != latest.root {
            return Err(LedgerError::Store(latch_store::StoreError::Corrupt(
                format!(
                    "the stored tree does not match the checkpoint of size {}: run `latch ledger verify`",
                    latest.size
                ),
            )));
        }
        Ok(range)
    }

    /// The checkpoint of `size`, or the latest.
    pub async fn find_checkpoint(
        &self,
        size: Option<u64>,
    ) -> Result<Option<StoredCheckpoint>, LedgerError> {
        Ok(self.store.checkpoint(size).await?)
    }

    /// The tree hashes of `ranges`, from one read of the stored nodes they need.
    async fn range_hashes(&self, ranges: &[LeafRange]) -> Result<Vec<Hash>, LedgerError> {
        Ok(self.nodes_and_ranges(&[], ranges).await?.1)
    }

    /// The hashes of `nodes`, and of each range folded, read in one call to the store.
    async fn nodes_and_ranges(
        &self,
        nodes: &[NodeId],
        ranges: &[LeafRange],
    ) -> Result<(Vec<Hash>, Vec<Hash>), LedgerError> {
        let per_range: Vec<Vec<NodeId>> = ranges.iter().map(|r| r.nodes()).collect();
        let all: Vec<NodeId> = nodes
            .iter()
            .chain(per_range.iter().flatten())
            .copied()
            .collect();
        let hashes = self.store.tree_nodes(&all).await?;
        let mut hashes = hashes.into_iter();
        let single: Vec<Hash> = hashes.by_ref().take(nodes.len()).collect();
        let folded = per_range
            .iter()
            .map(|nodes| {
                let mine: Vec<Hash> = hashes.by_ref().take(nodes.len()).collect();
                latch_ledger::fold_nodes(&mine).ok_or_else(|| {
                    LedgerError::Store(latch_store::StoreError::Corrupt("empty proof range".into()))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok((single, folded))
    }

    /// The leaf hash at `index` and its inclusion proof in the tree of `size` (a checkpointed
    /// size: its nodes are stored).
    pub async fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> Result<(Hash, Vec<Hash>), LedgerError> {
        let ranges = latch_ledger::inclusion_ranges(index, size).map_err(LedgerError::Proof)?;
        // The leaf and the proof in one read: one connection, one round trip per table.
        let (leaf, proof) = self
            .nodes_and_ranges(&[NodeId { level: 0, index }], &ranges)
            .await?;
        let leaf = leaf.first().copied().unwrap_or(latch_ledger::EMPTY_ROOT);
        Ok((leaf, proof))
    }

    /// The consistency proof from the tree of `from` leaves to the tree of `to` leaves.
    pub async fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<Hash>, LedgerError> {
        let ranges = latch_ledger::consistency_ranges(from, to).map_err(LedgerError::Proof)?;
        self.range_hashes(&ranges).await
    }
}

/// Signs a checkpoint every `interval` while the ledger grows, until `shutdown`; and once more
/// on the way out, so that the last events of a run are covered.
pub async fn run(ledger: Arc<Ledger>, interval: Duration, shutdown: CancellationToken) {
    loop {
        let stop = tokio::select! {
            () = shutdown.cancelled() => true,
            () = tokio::time::sleep(interval) => false,
        };
        if let Err(err) = ledger.checkpoint().await {
            tracing::warn!(%err, "could not sign a checkpoint; retrying");
        }
        if stop {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_private_then_reused_and_never_replaced_silently() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/ledger.key");
        let created = load_or_create_key(&path, "acme/audit", 0).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let loaded = load_or_create_key(&path, "acme/audit", 3).unwrap();
        assert_eq!(created.verifier_key(), loaded.verifier_key());

        let wrong_origin = load_or_create_key(&path, "other/audit", 3)
            .unwrap_err()
            .to_string();
        assert!(
            wrong_origin
                .contains("the key is named `acme/audit` but `ledger.origin` is `other/audit`"),
            "{wrong_origin}"
        );

        std::fs::write(&path, "garbage").unwrap();
        let corrupt = load_or_create_key(&path, "acme/audit", 3)
            .unwrap_err()
            .to_string();
        assert!(corrupt.contains("not a latch signing key"), "{corrupt}");

        std::fs::remove_file(&path).unwrap();
        let missing = load_or_create_key(&path, "acme/audit", 3)
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("it is missing, but the ledger has 3 checkpoints"),
            "{missing}"
        );
        assert!(!path.exists(), "no new key was made");
    }

    #[cfg(unix)]
    #[test]
    fn a_key_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.key");
        load_or_create_key(&path, "acme/audit", 0).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let open = load_or_create_key(&path, "acme/audit", 0)
            .unwrap_err()
            .to_string();
        assert!(open.contains("is readable by others (mode 644)"), "{open}");
    }
}
