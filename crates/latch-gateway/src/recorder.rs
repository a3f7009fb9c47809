//! The batching recorder: one task drains the bounded channel that every session sends its
//! records to, and hands them to [`Authority::record`] in batches. A failed batch is retried
//! (with backoff) until it succeeds: records are never dropped while the gateway runs; while
//! the authority is failing the channel fills and sessions hold new statements back.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::authority::{Authority, SessionRecord};

/// Most records handed to one `record` call.
const MAX_BATCH: usize = 512;

/// Runs until `stop` is cancelled and the channel is empty, or every sender is gone.
pub(crate) async fn run(
    mut rx: mpsc::Receiver<SessionRecord>,
    authority: Arc<dyn Authority>,
    stop: CancellationToken,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let n = tokio::select! {
            n = rx.recv_many(&mut batch, MAX_BATCH) => n,
            () = stop.cancelled() => {
                while let Ok(r) = rx.try_recv() {
                    batch.push(r);
                }
                if !batch.is_empty() {
                    deliver(&*authority, std::mem::take(&mut batch), None).await;
                }
                return;
            }
        };
        if n == 0 {
            return;
        }
        deliver(
            &*authority,
            std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH)),
            Some(&stop),
        )
        .await;
    }
}

/// Retries until the authority accepts the batch. After `stop`, gives up after a few tries so
/// shutdown ends (the loss is logged).
async fn deliver(
    authority: &dyn Authority,
    batch: Vec<SessionRecord>,
    stop: Option<&CancellationToken>,
) {
    let mut delay = Duration::from_millis(20);
    let mut tries_after_stop = 0;
    loop {
        match authority.record(&batch).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, records = batch.len(), "recording failed; retrying");
                if stop.is_none_or(CancellationToken::is_cancelled) {
                    tries_after_stop += 1;
                    if tries_after_stop >= 3 {
                        tracing::error!(records = batch.len(), "records lost at shutdown: {e}");
                        return;
                    }
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}
