//! `record_once`: an event of a type and subject is appended once, however many replicas try.

use std::sync::Arc;

use latch_core::{Actor, Event, EventKind, Timestamp};
use latch_store::Store;
use latch_testkit::{Backend, TestStore};

crate::on_both_stores!(concurrent_record_once_appends_one_event);

fn due(period: &str) -> Event {
    Event {
        at: Timestamp::from_millis(1_800_000_000_000),
        actor: Actor::System,
        subject: format!("review/{period}"),
        kind: EventKind::ReviewDue {
            period: period.to_owned(),
            pack_dir: format!("reviews/{period}"),
            resources: vec!["payments-db".to_owned()],
        },
    }
}

async fn concurrent_record_once_appends_one_event(backend: Backend) {
    let test = TestStore::new(backend).await;
    let store: Arc<dyn Store> = test.store.clone();
    // Eight "replicas" race to record the same period's review.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.record_once(due("2026-Q3")).await.unwrap() })
        })
        .collect();
    let mut appended = 0;
    for task in tasks {
        appended += usize::from(task.await.unwrap().is_some());
    }
    assert_eq!(appended, 1, "exactly one replica appends it");
    // Another subject of the same type is its own event.
    assert!(store.record_once(due("2026-Q4")).await.unwrap().is_some());
    assert!(store.record_once(due("2026-Q4")).await.unwrap().is_none());
    let events = store.events_of_type("review.due", 0, 100).await.unwrap();
    let subjects: Vec<&str> = events.iter().map(|e| e.event.subject.as_str()).collect();
    assert_eq!(subjects, ["review/2026-Q3", "review/2026-Q4"]);
}
