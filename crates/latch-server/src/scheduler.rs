//! The scheduler: expires grants and times out requests when they are due, in batches, so that
//! many grants ending in the same second all end within it.

use std::sync::Arc;
use std::time::Duration;

use latch_core::{Catalog, Timestamp};

use crate::LiveCatalog;
use latch_core::time::Clock;
use latch_store::{Executed, Store};
use tokio_util::sync::CancellationToken;

/// How many due items one transaction handles.
const BATCH: u32 = 2000;

/// How long an expired gateway credential is kept, so that a client presenting it is told it
/// expired rather than that it is wrong.
pub const CREDENTIAL_GRACE_MS: i64 = 24 * 60 * 60 * 1000;

/// How often expired credentials are purged.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// Runs until `shutdown`, looking for due work every `interval` (and at once again after a full
/// batch). Store errors are logged and retried: a database blip must not stop expiry.
pub async fn run(
    store: Arc<dyn Store>,
    catalog: Arc<LiveCatalog>,
    clock: Arc<dyn Clock>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut next_purge = tokio::time::Instant::now();
    loop {
        if tokio::time::Instant::now() >= next_purge {
            next_purge = tokio::time::Instant::now() + PURGE_EVERY;
            if let Err(err) = purge_credentials(&*store, &*clock).await {
                tracing::warn!(%err, "expired gateway credentials could not be purged; retrying later");
            }
        }
        let full = match tick(&*store, &catalog.get(), &*clock).await {
            Ok(done) => done >= BATCH as usize,
            Err(err) => {
                tracing::warn!(%err, "scheduler could not run; retrying");
                false
            }
        };
        if full {
            continue;
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Does the work due now; returns how many items were due.
pub async fn tick(
    store: &dyn Store,
    catalog: &Catalog,
    clock: &dyn Clock,
) -> Result<usize, latch_store::StoreError> {
    let due = store
        .due(clock.now(), BATCH, catalog.escalate_after)
        .await?;
    if due.is_empty() {
        return Ok(0);
    }
    let results = store.execute_batch(&due, catalog, clock).await?;
    let done = results
        .iter()
        .filter(|r| matches!(r, Executed::Done { .. }))
        .count();
    tracing::info!(
        due = due.len(),
        done,
        "scheduler ended due grants and requests"
    );
    Ok(due.len())
}

/// Deletes the gateway credentials that expired more than [`CREDENTIAL_GRACE_MS`] ago (their
/// hashes and SCRAM secrets), in batches; returns how many.
pub async fn purge_credentials(
    store: &dyn Store,
    clock: &dyn Clock,
) -> Result<u64, latch_store::StoreError> {
    let bound = Timestamp::from_millis(clock.now().as_millis().saturating_sub(CREDENTIAL_GRACE_MS));
    let mut purged = 0;
    loop {
        let done = store.purge_credentials(bound, BATCH).await?;
        purged += done;
        if done < u64::from(BATCH) {
            break;
        }
    }
    if purged > 0 {
        tracing::info!(purged, "purged gateway credentials expired for over a day");
    }
    Ok(purged)
}
