//! Keeps the access-summary projection (`latch-accesses`) close to the head of the ledger, so
//! that the dashboard and reports, which catch it up before reading, find little left to fold.

use std::sync::Arc;
use std::time::Duration;

use latch_store::Store;
use tokio_util::sync::CancellationToken;

/// How often the projection follows the ledger.
pub const INTERVAL: Duration = Duration::from_secs(1);

pub async fn run(store: Arc<dyn Store>, interval: Duration, shutdown: CancellationToken) {
    let mut failing = false;
    loop {
        match latch_accesses::catch_up(store.as_ref()).await {
            Ok(_) => failing = false,
            // Once per outage, not once a second: readers catch up (and fail) on their own.
            Err(err) if !failing => {
                failing = true;
                tracing::warn!(%err, "could not fold the ledger into the access summaries; retrying");
            }
            Err(_) => {}
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
