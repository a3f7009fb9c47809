//! The live sink: every ledger event, in order, published to a NATS JetStream stream for a SIEM.
//!
//! Nothing is lost and nothing is published twice, across restarts and outages, without a cursor
//! of our own: the stream is the record of what was delivered. At start (and after any failure)
//! the sink reads the last message of its stream, whose `Latch-Seq` header names the ledger
//! event it carries, and goes on after it. Each message carries `Nats-Msg-Id` (JetStream drops a
//! repeat within its duplicate window) and `Nats-Expected-Last-Msg-Id` (JetStream refuses a
//! message whose predecessor is not the stream's last), so a publish that fails in the middle of
//! a pipelined batch can neither leave a gap nor reorder the stream: the rest of the batch is
//! refused too, and the sink starts again from what the stream holds.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use latch_core::StoredEvent;
use latch_store::Store;
use tokio_util::sync::CancellationToken;

/// Where and what the sink publishes (`[export.nats]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsSink {
    /// `nats://host:port`.
    pub server: String,
    pub subject: String,
    /// The stream latch publishes into; created (bound to `subject`) when missing.
    pub stream: String,
    pub format: SinkFormat,
    /// The ledger's origin: message ids are `origin/seq`, unique across deployments.
    pub origin: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkFormat {
    /// The ledger's canonical JSON, byte for byte the Merkle leaf.
    Ledger,
    /// One OCSF record per event.
    Ocsf,
}

/// The header naming the ledger event (its `seq`) a message carries.
pub const SEQ_HEADER: &str = "Latch-Seq";

/// Events published per round trip.
const BATCH: u32 = 256;
/// How long an idle sink waits before looking for new events.
const POLL: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
enum SinkError {
    #[error("cannot reach NATS at {server}: {message}")]
    Connect { server: String, message: String },
    #[error("JetStream: {0}")]
    JetStream(String),
    #[error("the store: {0}")]
    Store(#[from] latch_store::StoreError),
    #[error(
        "stream `{0}` holds a message that latch did not publish (no `Latch-Seq` header): give latch a stream of its own"
    )]
    Foreign(String),
    #[error(
        "stream `{0}` is empty but has held messages (purged, or its messages expired): latch cannot tell where to resume; keep at least the last message (e.g. `max_msgs_per_subject`), or delete the stream to publish the whole ledger again"
    )]
    Emptied(String),
}

fn js_error(error: impl std::fmt::Display) -> SinkError {
    SinkError::JetStream(error.to_string())
}

/// Publishes the ledger until `shutdown`; retries with backoff whatever fails, logging it.
pub async fn run(store: Arc<dyn Store>, sink: NatsSink, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(500);
    loop {
        let outcome = tokio::select! {
            () = shutdown.cancelled() => return,
            outcome = publish_all(&*store, &sink, &shutdown) => outcome,
        };
        match outcome {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, retry_in = ?backoff, "the NATS sink stopped; retrying");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection's life: resume after the stream's last event, then follow the ledger.
async fn publish_all(
    store: &dyn Store,
    sink: &NatsSink,
    shutdown: &CancellationToken,
) -> Result<(), SinkError> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(sink.server.as_str())
        .await
        .map_err(|error| SinkError::Connect {
            server: sink.server.clone(),
            message: error.to_string(),
        })?;
    let js = jetstream::new(client);
    let mut stream = js
        .get_or_create_stream(stream::Config {
            name: sink.stream.clone(),
            subjects: vec![sink.subject.clone()],
            ..Default::default()
        })
        .await
        .map_err(js_error)?;
    let mut after = last_published(&mut stream, sink).await?;
    tracing::info!(stream = %sink.stream, after, "the NATS sink resumes");
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let page = store.events(after, BATCH).await?;
        if page.is_empty() {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(POLL) => continue,
            }
        }
        // Pipelined: every publish of the batch is sent, then the acknowledgements are awaited
        // in order; the expected-last-id header keeps a failure from reordering the stream.
        let mut pending = Vec::with_capacity(page.len());
        for entry in &page {
            let event = &entry.event;
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", message_id(sink, event.seq).as_str());
            if event.seq > 1 {
                let previous = message_id(sink, event.seq - 1);
                headers.insert("Nats-Expected-Last-Msg-Id", previous.as_str());
            }
            headers.insert(SEQ_HEADER, event.seq.to_string().as_str());
            let ack = js
                .publish_with_headers(sink.subject.clone(), headers, payload(sink, event)?.into())
                .await
                .map_err(js_error)?;
            pending.push((event.seq, ack));
        }
        for (seq, ack) in pending {
            ack.await.map_err(js_error)?;
            after = seq;
        }
    }
}

fn message_id(sink: &NatsSink, seq: u64) -> String {
    format!("{}/{seq}", sink.origin)
}

fn payload(sink: &NatsSink, event: &StoredEvent) -> Result<Vec<u8>, SinkError> {
    Ok(match sink.format {
        SinkFormat::Ledger => event.canonical_json().into_bytes(),
        SinkFormat::Ocsf => serde_json::to_vec(&latch_report::ocsf(event))
            .map_err(|error| SinkError::JetStream(format!("cannot encode OCSF: {error}")))?,
    })
}

/// The `seq` of the last event in the stream, 0 when it is empty.
async fn last_published(stream: &mut stream::Stream, sink: &NatsSink) -> Result<u64, SinkError> {
    let info = stream.info().await.map_err(js_error)?;
    if info.state.messages == 0 {
        if info.state.last_sequence > 0 {
            return Err(SinkError::Emptied(sink.stream.clone()));
        }
        return Ok(0);
    }
    let last = stream
        .get_last_raw_message_by_subject(&sink.subject)
        .await
        .map_err(js_error)?;
    last.headers
        .get(SEQ_HEADER)
        .and_then(|value| value.as_str().parse::<u64>().ok())
        .ok_or_else(|| SinkError::Foreign(sink.stream.clone()))
}
