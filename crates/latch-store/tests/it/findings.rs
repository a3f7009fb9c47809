//! Findings through the store: a key opens one finding, ever; status changes are events.

use latch_core::time::Clock;
use latch_core::{EventKind, RefusalKind};
use latch_store::{FindingFilter, NewFinding, Store, finding_id};
use latch_testkit::{Backend, FakeClock, T0, TestStore};

crate::on_both_stores!(a_finding_key_opens_once_and_status_changes_are_recorded);

fn finding(key: &str, severity: &str) -> NewFinding {
    NewFinding {
        key: key.to_owned(),
        checkpoint: "justification.weak".to_owned(),
        severity: severity.to_owned(),
        about: "req_1".to_owned(),
        summary: format!("summary of {key}"),
        evidence: vec![1, 2],
        at: T0,
    }
}

async fn a_finding_key_opens_once_and_status_changes_are_recorded(backend: Backend) {
    let store = TestStore::new(backend).await;
    let clock = FakeClock::new(T0);
    let opened = store
        .open_findings(vec![
            finding("a", "low"),
            finding("b", "high"),
            finding("a", "low"),
        ])
        .await
        .unwrap();
    assert_eq!(opened.len(), 2, "a key repeated in one batch opens once");
    // Re-evaluating history reports the same keys again: nothing new.
    let again = store
        .open_findings(vec![finding("a", "low"), finding("b", "high")])
        .await
        .unwrap();
    assert!(again.is_empty());
    let high = store
        .findings(&FindingFilter {
            min_severity: Some("medium".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(high.len(), 1);
    assert_eq!(high[0].id, finding_id("b"));
    assert_eq!(high[0].evidence, [1, 2]);

    let id = finding_id("a");
    let acked = store
        .set_finding_status(&id, "acknowledged", "dave", "looking", &*clock)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(acked.status, "acknowledged");
    store
        .set_finding_status(&id, "resolved", "dave", "talked to alice", &*clock)
        .await
        .unwrap()
        .unwrap();
    let refused = store
        .set_finding_status(&id, "resolved", "erin", "again", &*clock)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.kind, RefusalKind::Conflict);
    let missing = store
        .set_finding_status("fnd_nope", "resolved", "erin", "x", &*clock)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(missing.kind, RefusalKind::NotFound);
    let open = store
        .findings(&FindingFilter {
            open_only: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(open.len(), 1);
    let events = store.subject_events(&id, 0, 10).await.unwrap();
    let kinds: Vec<&str> = events
        .iter()
        .map(|(e, _)| e.event.kind.type_name())
        .collect();
    assert_eq!(
        kinds,
        [
            "finding.opened",
            "finding.status_changed",
            "finding.status_changed"
        ]
    );
    assert!(matches!(
        &events[2].0.event.kind,
        EventKind::FindingStatusChanged { status, .. } if status == "resolved"
    ));
    let _ = clock.now();
}
