//! Scheduled reviews: the review task writes a closed period's pack and records `review.due`
//! once, across restarts; `POST /api/v1/reviews` records owners' outcomes (owner leads and
//! admins only, refusals recorded); `GET /api/v1/reviews` lists them for those who may see them.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use axum::http::StatusCode;
use latch_core::{EventKind, Timestamp};
use latch_server::review::{ReviewPass, ReviewSettings, review_pass};
use latch_store::Store;
use latch_testkit::Backend;
use serde_json::{Value, json};

use crate::TestApi;

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn settings(out_dir: &Path) -> ReviewSettings {
    ReviewSettings {
        schedule: latch_evidence::Schedule::Quarterly,
        out_dir: out_dir.to_owned(),
        policy_files: Vec::new(),
        poll: Duration::from_secs(60),
    }
}

async fn record(api: &TestApi, user: &str, body: Value) -> crate::Reply {
    api.call("POST", "/api/v1/reviews", Some(user), Some(body))
        .await
}

fn review(period: &str, outcome: &str, comment: &str) -> Value {
    json!({"period": period, "resource": "payments-db", "outcome": outcome, "comment": comment})
}

/// Every file under `dir`, by its `/`-separated relative path.
fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(relative, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[tokio::test]
async fn a_closed_period_gets_one_pack_and_one_review_due_across_restarts() {
    let api = TestApi::new(Backend::Sqlite).await;
    let out = tempfile::tempdir().unwrap();
    let settings = settings(out.path());
    // In Q3: alice asks for access, bob approves.
    api.clock.set(at("2026-09-15T10:00:00Z"));
    let id = api.request_read("1h").await;
    let reply = api
        .call(
            "POST",
            &format!("/api/v1/requests/{id}/approve"),
            Some("bob"),
            Some(json!({"comment": "ok"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    // Q2 has closed: its review falls due at once.
    let pass = review_pass(&api.state, &settings).await.unwrap();
    assert!(
        matches!(&pass, ReviewPass::Due { period, wrote_pack: true, .. } if period == "2026-Q2"),
        "{pass:?}"
    );
    assert_eq!(
        review_pass(&api.state, &settings).await.unwrap(),
        ReviewPass::Nothing
    );

    // Q3 closes.
    api.clock.set(at("2026-10-01T00:00:05Z"));
    let pass = review_pass(&api.state, &settings).await.unwrap();
    let q3 = out.path().join("2026-Q3");
    assert_eq!(
        pass,
        ReviewPass::Due {
            period: "2026-Q3".into(),
            pack_dir: q3.clone(),
            wrote_pack: true
        }
    );
    // The pack holds alice's access and verifies offline.
    let files = read_tree(&q3);
    let report: Value = serde_json::from_slice(&files["report.json"]).unwrap();
    assert_eq!(report["accesses"][0]["request_id"], id.as_str());
    assert_eq!(report["accesses"][0]["resource"], "payments-db");
    latch_evidence::verify(&files, &api.state.ledger.verifier_key()).unwrap();
    assert!(
        !out.path().join(".2026-Q3.partial").exists(),
        "nothing half-written is left"
    );
    // The event says which period, where its pack is, and whose review it is.
    let due = api.store.events_of_type("review.due", 0, 10).await.unwrap();
    assert_eq!(due.len(), 2);
    let last = &due[1].event;
    assert_eq!(last.subject, "review/2026-Q3");
    assert_eq!(last.actor, latch_core::Actor::System);
    assert_eq!(
        last.kind,
        EventKind::ReviewDue {
            period: "2026-Q3".into(),
            pack_dir: q3.display().to_string(),
            resources: vec!["payments-db".into()],
        }
    );

    // A restart (a new server state over the same store, later in the quarter) repeats nothing,
    // and never rewrites the pack.
    let before = read_tree(&q3);
    let restarted = latch_server::AppState::new(
        api.state.store.clone(),
        api.state.catalog.get(),
        api.clock.clone(),
        latch_ledger::SigningKey::from_seed("latch.test/audit", [7; 32]).unwrap(),
    );
    api.clock.set(at("2026-11-20T00:00:00Z"));
    assert_eq!(
        review_pass(&restarted, &settings).await.unwrap(),
        ReviewPass::Nothing
    );
    assert_eq!(
        api.store
            .events_of_type("review.due", 0, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(read_tree(&q3), before);
}

#[tokio::test]
async fn a_pack_written_before_a_crash_is_kept_and_its_review_recorded() {
    let api = TestApi::new(Backend::Sqlite).await;
    let out = tempfile::tempdir().unwrap();
    // The pack of Q3 is there (written by a pass that stopped before recording the event).
    let q3 = out.path().join("2026-Q3");
    std::fs::create_dir_all(&q3).unwrap();
    std::fs::write(q3.join("manifest.json"), "{}").unwrap();
    api.clock.set(at("2026-10-02T00:00:00Z"));
    let pass = review_pass(&api.state, &settings(out.path()))
        .await
        .unwrap();
    assert_eq!(
        pass,
        ReviewPass::Due {
            period: "2026-Q3".into(),
            pack_dir: q3.clone(),
            wrote_pack: false
        }
    );
    assert_eq!(
        std::fs::read_to_string(q3.join("manifest.json")).unwrap(),
        "{}"
    );
    assert_eq!(
        review_pass(&api.state, &settings(out.path()))
            .await
            .unwrap(),
        ReviewPass::Nothing
    );
}

#[tokio::test]
async fn owner_leads_and_admins_record_reviews_and_others_are_refused() {
    let api = TestApi::new(Backend::Sqlite).await;
    // bob leads payments, which owns payments-db.
    let reply = record(
        &api,
        "bob",
        review("2026-Q3", "approved", "every access had a ticket"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(reply.body["reviewer"], "user:bob");
    assert_eq!(reply.body["outcome"], "approved");
    let events = api.store.events(0, 1000).await.unwrap();
    let last = &events.last().unwrap().event;
    assert_eq!(last.event.actor, latch_core::Actor::user("bob"));
    assert_eq!(last.event.subject, "review/2026-Q3/payments-db");
    assert_eq!(
        last.event.kind,
        EventKind::ReviewRecorded {
            period: "2026-Q3".into(),
            resource: "payments-db".into(),
            outcome: "approved".into(),
            comment: "every access had a ticket".into(),
        }
    );

    // alice is in the team but does not lead it; carol leads its parent team.
    for user in ["alice", "carol"] {
        let before = api.event_types().await.len();
        let reply = record(&api, user, review("2026-Q3", "approved", "fine")).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{user}: {:?}",
            reply.body
        );
        assert_eq!(
            reply.body["message"],
            format!(
                "`{user}` may not record the review of `payments-db`: leads of its owner team `payments` and admins may"
            )
        );
        let types = api.event_types().await;
        assert_eq!(types.len(), before + 1);
        assert_eq!(types.last().unwrap(), "access.refused");
    }
    let events = api.store.events(0, 1000).await.unwrap();
    let refused = &events.last().unwrap().event;
    assert_eq!(refused.event.subject, "review/2026-Q3/payments-db");
    assert!(matches!(
        &refused.event.kind,
        EventKind::AccessRefused { action, .. } if action == "record review"
    ));

    // erin is an admin; `changes-needed` as the CLI writes it.
    let reply = record(
        &api,
        "erin",
        review("2026-Q3", "changes-needed", "alice no longer needs write"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(reply.body["outcome"], "changes_needed");
}

#[tokio::test]
async fn bad_reviews_are_refused_with_what_was_expected() {
    let api = TestApi::new(Backend::Sqlite).await;
    let cases = [
        (
            review("2026-Q5", "approved", "ok"),
            "`2026-Q5` is not a period: expected a quarter `2026-Q3`, a month `2026-07` or a year `2026`",
        ),
        (
            review("2026-Q4", "approved", "ok"),
            "period `2026-Q4` has not closed yet (it ends 2027-01-01T00:00:00.000Z): review a period that is over",
        ),
        (
            review("2026-Q3", "maybe", "ok"),
            "unknown outcome `maybe` (expected `approved` or `changes_needed`)",
        ),
        (
            review("2026-Q3", "approved", "  "),
            "comment is empty: say what was reviewed, or what must change",
        ),
        (
            json!({"period": "2026-Q3", "resource": "billing-db", "outcome": "approved", "comment": "ok"}),
            "unknown resource `billing-db` (resources: payments-db)",
        ),
    ];
    let before = api.event_types().await.len();
    for (body, message) in cases {
        let reply = record(&api, "bob", body.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.body["message"], message, "{body}");
    }
    assert_eq!(api.event_types().await.len(), before, "nothing recorded");
}

#[tokio::test]
async fn reviews_are_listed_for_auditors_admins_and_owner_leads() {
    let api = TestApi::new(Backend::Sqlite).await;
    let out = tempfile::tempdir().unwrap();
    api.clock.set(at("2026-10-01T00:00:05Z"));
    review_pass(&api.state, &settings(out.path()))
        .await
        .unwrap();
    api.clock.advance_secs(3600);
    let reply = record(
        &api,
        "bob",
        review("2026-Q3", "changes_needed", "revoke alice's write"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    // A review of an earlier period, recorded without one falling due.
    record(&api, "bob", review("2026-Q1", "approved", "late, but fine")).await;

    for user in ["dave", "erin", "bob"] {
        let reply = api.call("GET", "/api/v1/reviews", Some(user), None).await;
        assert_eq!(reply.status, StatusCode::OK, "{user}: {:?}", reply.body);
        let reviews = reply.body["reviews"].as_array().unwrap();
        let periods: Vec<&str> = reviews
            .iter()
            .map(|r| r["period"].as_str().unwrap())
            .collect();
        assert_eq!(periods, ["2026-Q3", "2026-Q1"], "{user}");
        let q3 = &reviews[0];
        assert_eq!(q3["resource"], "payments-db");
        assert_eq!(q3["owner_team"], "payments");
        assert_eq!(q3["status"], "changes_needed");
        assert_eq!(q3["due_at"], "2026-10-01T00:00:05.000Z");
        assert_eq!(
            q3["pack_dir"],
            out.path().join("2026-Q3").display().to_string()
        );
        assert_eq!(q3["outcomes"][0]["reviewer"], "user:bob");
        assert_eq!(q3["outcomes"][0]["comment"], "revoke alice's write");
        assert_eq!(q3["outcomes"][0]["at"], "2026-10-01T01:00:05.000Z");
        assert_eq!(reviews[1]["due_at"], Value::Null);
    }
    let reply = api
        .call("GET", "/api/v1/reviews?period=2026-Q1", Some("dave"), None)
        .await;
    assert_eq!(reply.body["reviews"].as_array().unwrap().len(), 1);
    let reply = api
        .call("GET", "/api/v1/reviews?period=Q1", Some("dave"), None)
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    // Q4 closes: its review shows as pending until an owner records an outcome.
    api.clock.set(at("2027-01-01T00:00:01Z"));
    review_pass(&api.state, &settings(out.path()))
        .await
        .unwrap();
    let reply = api
        .call("GET", "/api/v1/reviews?period=2026-Q4", Some("bob"), None)
        .await;
    assert_eq!(reply.body["reviews"][0]["status"], "pending");

    // carol leads no owner team; alice leads nothing.
    for user in ["carol", "alice"] {
        let reply = api.call("GET", "/api/v1/reviews", Some(user), None).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{user}");
        assert_eq!(api.event_types().await.last().unwrap(), "access.refused");
    }
}

#[tokio::test]
async fn each_owner_team_hears_about_its_own_section() {
    let api = TestApi::new(Backend::Sqlite).await;
    let out = tempfile::tempdir().unwrap();
    api.clock.set(at("2026-09-15T10:00:00Z"));
    api.request_read("1h").await;
    api.clock.set(at("2026-10-01T00:00:05Z"));
    review_pass(&api.state, &settings(out.path()))
        .await
        .unwrap();
    let due = api.store.events_of_type("review.due", 0, 10).await.unwrap();
    let notices = latch_server::review::due_notices(&due[0], &api.state.catalog.get()).await;
    assert_eq!(notices.len(), 1);
    let notice = &notices[0];
    assert_eq!(notice.id, "rev_2026-Q3_payments-db");
    assert_eq!(notice.event_type, "review.due");
    assert_eq!(notice.resource.as_deref(), Some("payments-db"));
    // bob leads payments, which owns payments-db.
    assert_eq!(notice.people(), ["bob"]);
    assert!(notice.needs_action(), "never held back in a digest");
    assert_eq!(
        notice.headline(),
        "Access review due: payments-db (2026-Q3)"
    );
    let facts: BTreeMap<&str, String> = notice.facts().into_iter().collect();
    assert_eq!(facts["Requests"], "1");
    assert_eq!(facts["Granted"], "0");
    assert_eq!(facts["Requesters"], "alice");
    assert_eq!(
        facts["Evidence pack"],
        out.path().join("2026-Q3").display().to_string()
    );
}
