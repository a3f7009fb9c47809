//! The batching recorder: one task drains the bounded channel that every session sends its
//! records to, and hands them to [`Authority::record`] in batches. A failed batch is retried
//! (with backoff) until it succeeds: records are never dropped while the gateway runs; while
//! the authority is failing the channel fills and sessions hold new statements back.
//!
//! Batches start at most every [`BATCH_INTERVAL`] (the default of
//! `GatewaySettings::record_interval`). Taking whatever had arrived as soon as the
//! last batch was durable made a commit (and an fsync) of every ten statements or so under
//! `pgbench`: the commit's fixed cost (the fsync, the pages every commit rewrites) was then most
//! of the store's work per statement. No client waits for a buffered record, so the pause
//! costs nothing but the few milliseconds a record takes to become durable.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::authority::{Authority, SessionRecord};

/// Most records handed to one `record` call.
const MAX_BATCH: usize = 512;

/// Least time from the start of one batch to the start of the next, unless a batch was full:
/// the default of `GatewaySettings::record_interval`.
pub(crate) const BATCH_INTERVAL: Duration = Duration::from_millis(5);

/// Runs until `stop` is cancelled and the channel is empty, or every sender is gone.
pub(crate) async fn run(
    mut rx: mpsc::Receiver<SessionRecord>,
    authority: Arc<dyn Authority>,
    interval: Duration,
    stop: CancellationToken,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let started = tokio::time::Instant::now();
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
        if n < MAX_BATCH {
            tokio::select! {
                () = tokio::time::sleep_until(started + interval) => {}
                () = stop.cancelled() => {}
            }
        }
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::time::Instant;

    use super::*;
    use crate::authority::{ConnectAttempt, EndReason, RecordError, Refusal, SessionGrant};

    /// Keeps what it was handed: when, and which sessions' records.
    #[derive(Default)]
    struct Batches(Mutex<Vec<(Instant, Vec<String>)>>);

    #[async_trait::async_trait]
    impl Authority for Batches {
        async fn authorize(&self, _: ConnectAttempt) -> Result<SessionGrant, Refusal> {
            Err(Refusal::new("28000", "not in this test"))
        }

        async fn record(&self, records: &[SessionRecord]) -> Result<(), RecordError> {
            let ids = records
                .iter()
                .map(|r| match r {
                    SessionRecord::Ended { session_id, .. } => session_id.clone(),
                    _ => String::new(),
                })
                .collect();
            self.0.lock().unwrap().push((Instant::now(), ids));
            Ok(())
        }
    }

    fn ended(n: usize) -> SessionRecord {
        SessionRecord::Ended {
            session_id: format!("ses_{n}"),
            grant_id: "grt_1".into(),
            at_ms: 0,
            reason: EndReason::ClientClosed,
            bytes_in: 0,
            bytes_out: 0,
            statements: 0,
            revocation_delay_ms: None,
        }
    }

    fn delivered(batches: &Batches) -> Vec<String> {
        let calls = batches.0.lock().unwrap();
        calls.iter().flat_map(|(_, ids)| ids.clone()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_of_records_is_committed_in_batches_not_one_by_one() {
        let batches = Arc::new(Batches::default());
        let (tx, rx) = mpsc::channel(4096);
        let recorder = tokio::spawn(run(
            rx,
            batches.clone(),
            BATCH_INTERVAL,
            CancellationToken::new(),
        ));
        for n in 0..200 {
            tx.send(ended(n)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        drop(tx);
        recorder.await.unwrap();

        let expected: Vec<String> = (0..200).map(|n| format!("ses_{n}")).collect();
        assert_eq!(delivered(&batches), expected, "every record, in order");
        let calls = batches.0.lock().unwrap();
        // 200 ms of records, a batch at most every 5 ms (one per record before).
        assert!(calls.len() <= 42, "{} batches for 200 records", calls.len());
        for pair in calls.windows(2) {
            assert!(pair[1].0 - pair[0].0 >= BATCH_INTERVAL);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn full_batches_follow_each_other_without_a_pause() {
        let batches = Arc::new(Batches::default());
        let (tx, rx) = mpsc::channel(4096);
        for n in 0..1200 {
            tx.send(ended(n)).await.unwrap();
        }
        drop(tx);
        let start = Instant::now();
        run(
            rx,
            batches.clone(),
            BATCH_INTERVAL,
            CancellationToken::new(),
        )
        .await;

        assert_eq!(delivered(&batches).len(), 1200);
        let calls = batches.0.lock().unwrap();
        let sizes: Vec<usize> = calls.iter().map(|(_, ids)| ids.len()).collect();
        assert_eq!(sizes, [512, 512, 176]);
        assert_eq!(calls[1].0, start, "the second full batch did not wait");
        assert_eq!(calls[2].0, start);
    }
}
