//! The scheduler: expires grants and times out requests when they are due, in batches, so that
//! many grants ending in the same second all end within it.

use std::sync::Arc;
use std::time::Duration;

use latch_core::Catalog;

use crate::LiveCatalog;
use latch_core::time::Clock;
use latch_store::{Executed, Store};
use tokio_util::sync::CancellationToken;

/// How many due items one transaction handles.
const BATCH: u32 = 2000;

/// Runs until `shutdown`, looking for due work every `interval` (and at once again after a full
/// batch). Store errors are logged and retried: a database blip must not stop expiry.
pub async fn run(
    store: Arc<dyn Store>,
    catalog: Arc<LiveCatalog>,
    clock: Arc<dyn Clock>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    loop {
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
