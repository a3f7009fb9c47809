//! `GET /api/v1/analytics`: figures from the real lifecycle, the auditor-only guard, each
//! filter, and bad input.

use std::collections::HashMap;

use axum::http::StatusCode;
use latch_testkit::Backend;
use serde_json::json;

use crate::TestApi;

/// alice's request approved by bob after 10 minutes, a second one denied by carol after 20,
/// with `payments-db` requiring `PAY-…` tickets (alice gives `INC-1`).
async fn seeded() -> TestApi {
    let mut api = TestApi::new(Backend::Sqlite).await;
    api.state.audit = Some(latch_server::audit::AuditConfig {
        settings: Default::default(),
        rules: HashMap::from([(
            "payments-db".to_owned(),
            latch_audit::ResourceRules {
                ticket_pattern: Some(latch_core::TicketPattern::new("PAY-[0-9]+").unwrap()),
                scope: Vec::new(),
            },
        )]),
    });
    let approved = api.request_read("1h").await;
    let denied = api.request_read("1h").await;
    api.clock.advance_secs(600);
    let reply = api
        .call(
            "POST",
            &format!("/api/v1/requests/{approved}/approve"),
            Some("bob"),
            Some(json!({"comment": "ok"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    api.clock.advance_secs(600);
    let reply = api
        .call(
            "POST",
            &format!("/api/v1/requests/{denied}/deny"),
            Some("carol"),
            Some(json!({"reason": "not now"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    api
}

#[tokio::test]
async fn auditors_get_the_figures_of_the_period() {
    let api = seeded().await;
    let reply = api
        .call("GET", "/api/v1/analytics", Some("dave"), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let a = &reply.body;
    assert_eq!(a["requests"], 2);
    assert_eq!(a["outcomes"]["approved"], 1);
    assert_eq!(a["outcomes"]["denied"], 1);
    assert_eq!(a["outcomes"]["approval_rate"], 0.5);
    // Waits of 600 s and 1200 s: nearest-rank median 600, p95 1200.
    assert_eq!(a["latency"]["decisions"], 2);
    assert_eq!(a["latency"]["median_secs"], 600);
    assert_eq!(a["latency"]["p95_secs"], 1200);
    assert_eq!(a["latency_by_team"][0]["name"], "payments");
    let approvers: Vec<(&str, u64, u64)> = a["approvers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["approver"].as_str().unwrap(),
                s["approvals"].as_u64().unwrap(),
                s["denials"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(approvers, [("bob", 1, 0), ("carol", 0, 1)]);
    assert_eq!(a["durations"]["grants"], 1);
    assert_eq!(a["top_requesters"], json!([{"name": "alice", "count": 2}]));
    // Both tickets are `INC-1`, not `PAY-…`.
    assert_eq!(a["ticket_mismatches"].as_array().unwrap().len(), 2);
    assert_eq!(a["ticket_mismatches"][0]["ticket"], "INC-1");
    assert_eq!(a["grants"][0]["requester"], "alice");
    // 30 days back from now, which is mid-day: 31 UTC days, the first and last partly.
    assert_eq!(a["volume"].as_array().unwrap().len(), 31);

    // Admins too.
    let admin = api
        .call("GET", "/api/v1/analytics", Some("erin"), None)
        .await;
    assert_eq!(admin.status, StatusCode::OK);
}

#[tokio::test]
async fn others_are_refused_and_the_refusal_is_recorded() {
    let api = seeded().await;
    let reply = api
        .call("GET", "/api/v1/analytics", Some("alice"), None)
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.body["message"],
        "`alice` may not read analytics: it needs the `auditor` or `admin` role"
    );
    assert_eq!(
        api.event_types().await.last().map(String::as_str),
        Some("access.refused")
    );
    let anonymous = api.call("GET", "/api/v1/analytics", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn filters_narrow_the_requests() {
    let api = seeded().await;
    let requests = |path: String| {
        let api = &api;
        async move {
            let reply = api.call("GET", &path, Some("dave"), None).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}: {:?}", reply.body);
            reply.body["requests"].as_u64().unwrap()
        }
    };
    let q = "/api/v1/analytics?";
    assert_eq!(requests(format!("{q}team=payments")).await, 2);
    assert_eq!(requests(format!("{q}team=platform")).await, 0);
    assert_eq!(requests(format!("{q}resource=payments-db")).await, 2);
    assert_eq!(requests(format!("{q}principal=alice")).await, 2);
    assert_eq!(requests(format!("{q}principal=bob")).await, 0);
    assert_eq!(requests(format!("{q}approver=bob")).await, 1);
    assert_eq!(requests(format!("{q}approver=carol")).await, 1);
    // A period that ends before the requests were made.
    assert_eq!(
        requests(format!(
            "{q}from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z"
        ))
        .await,
        0
    );
}

#[tokio::test]
async fn bad_times_and_unknown_teams_are_bad_requests() {
    let api = seeded().await;
    let message = |path: &'static str| {
        let api = &api;
        async move {
            let reply = api.call("GET", path, Some("dave"), None).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
            reply.body["message"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(
        message("/api/v1/analytics?from=yesterday").await,
        "`from` is not a time: `yesterday` (expected RFC 3339, e.g. `2026-07-01T00:00:00Z`)"
    );
    assert_eq!(
        message("/api/v1/analytics?team=nope").await,
        "unknown team `nope` (teams: eng, payments, platform, security)"
    );
    assert_eq!(
        message("/api/v1/analytics?resource=nope").await,
        "unknown resource `nope` (resources: payments-db)"
    );
    assert_eq!(
        message("/api/v1/analytics?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z").await,
        "empty period: `from` (2026-02-01T00:00:00.000Z) must be before `to` (2026-01-01T00:00:00.000Z)"
    );
}
