//! The NATS sink against the real JetStream server at 127.0.0.1:4222 (started before tests, as
//! PostgreSQL is): every event once, in order, across a restart of the sink.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use latch_core::{Actor, Event, EventKind};
use latch_server::sink::{NatsSink, SEQ_HEADER, SinkFormat};
use latch_store::Store;
use latch_testkit::{Backend, T0, TestStore};
use tokio_util::sync::CancellationToken;

const NATS: &str = "nats://127.0.0.1:4222";

fn policy_event(n: u64) -> Event {
    Event {
        at: T0,
        actor: Actor::System,
        subject: "policy".to_owned(),
        kind: EventKind::PolicyLoaded {
            hash: format!("hash-{n}"),
            files: vec!["a.cedar".to_owned()],
            policies: n,
        },
    }
}

/// Every message of the stream, as (Latch-Seq, payload), in stream order.
async fn messages(js: &jetstream::Context, stream: &str) -> Vec<(u64, String)> {
    let stream = js.get_stream(stream).await.unwrap();
    let last = stream.cached_info().state.last_sequence;
    let mut out = Vec::new();
    for sequence in 1..=last {
        let message = stream.get_raw_message(sequence).await.unwrap();
        let seq = message
            .headers
            .get(SEQ_HEADER)
            .unwrap()
            .as_str()
            .parse()
            .unwrap();
        out.push((seq, String::from_utf8(message.payload.to_vec()).unwrap()));
    }
    out
}

async fn wait_for(js: &jetstream::Context, stream: &str, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut found) = js.get_stream(stream).await
            && found.info().await.unwrap().state.messages >= count
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the sink did not publish {count} messages into {stream} in 20s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A JetStream context, and a sink into a stream and subject of the test's own.
async fn connect(format: SinkFormat) -> (jetstream::Context, NatsSink) {
    let client = async_nats::connect(NATS)
        .await
        .unwrap_or_else(|err| panic!("NATS must run at {NATS} for this test: {err}"));
    let id = ulid::Ulid::new().to_string();
    let sink = NatsSink {
        server: NATS.to_owned(),
        subject: format!("latch.it.{}", id.to_lowercase()),
        stream: format!("LATCH_IT_{id}"),
        format,
        origin: "latch.test/audit".to_owned(),
    };
    (jetstream::new(client), sink)
}

fn start(
    store: Arc<dyn Store>,
    sink: NatsSink,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let stop = CancellationToken::new();
    let task = tokio::spawn(latch_server::sink::run(store, sink, stop.clone()));
    (stop, task)
}

#[tokio::test]
async fn the_ledger_reaches_jetstream_once_in_order_across_restarts() {
    let (js, sink) = connect(SinkFormat::Ledger).await;
    let test_store = TestStore::new(Backend::Sqlite).await;
    let store: Arc<dyn Store> = test_store.store.clone();
    for n in 1..=3 {
        store.record(vec![policy_event(n)]).await.unwrap();
    }

    let (stop, task) = start(store.clone(), sink.clone());
    wait_for(&js, &sink.stream, 3).await;
    stop.cancel();
    task.await.unwrap();

    // Events appended while the sink is down are published when it comes back, after the last
    // one the stream holds: none twice, none skipped.
    store
        .record((4..=700).map(policy_event).collect())
        .await
        .unwrap();
    let (stop, task) = start(store.clone(), sink.clone());
    wait_for(&js, &sink.stream, 700).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    task.await.unwrap();

    let published = messages(&js, &sink.stream).await;
    let ledger = store.events(0, 1000).await.unwrap();
    assert_eq!(published.len(), 700, "each event exactly once");
    for ((seq, body), entry) in published.iter().zip(&ledger) {
        let event = &entry.event;
        assert_eq!(*seq, event.seq);
        assert_eq!(*body, event.canonical_json(), "the leaf, byte for byte");
    }
    js.delete_stream(&sink.stream).await.unwrap();
}

#[tokio::test]
async fn a_stream_with_foreign_messages_is_not_written_to() {
    let (js, sink) = connect(SinkFormat::Ocsf).await;
    js.create_stream(jetstream::stream::Config {
        name: sink.stream.clone(),
        subjects: vec![sink.subject.clone()],
        ..Default::default()
    })
    .await
    .unwrap();
    js.publish(sink.subject.clone(), "not latch".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let test_store = TestStore::new(Backend::Sqlite).await;
    let store: Arc<dyn Store> = test_store.store.clone();
    store.record(vec![policy_event(1)]).await.unwrap();

    let (stop, task) = start(store, sink.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    task.await.unwrap();
    let mut stream = js.get_stream(&sink.stream).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
    js.delete_stream(&sink.stream).await.unwrap();
}
