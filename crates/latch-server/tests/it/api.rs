//! Each endpoint: success, refusal, bad input.

use axum::http::{StatusCode, header};
use latch_store::Store;
use latch_testkit::Backend;
use serde_json::json;

use crate::TestApi;

fn body(resource: &str, role: &str, duration: &str, reason: &str) -> Option<serde_json::Value> {
    Some(json!({"resource": resource, "role": role, "duration": duration, "reason": reason}))
}

#[tokio::test]
async fn lifecycle_walk_on_sqlite() {
    lifecycle_walk(Backend::Sqlite).await;
}

#[tokio::test]
async fn lifecycle_walk_on_postgres() {
    lifecycle_walk(Backend::Postgres).await;
}

/// request → approve → grant → expire, with the reads each role may do along the way.
async fn lifecycle_walk(backend: Backend) {
    let api = TestApi::new(backend).await;
    let id = api.request_read("30m").await;

    let mine = api
        .call("GET", "/api/v1/requests?mine=true", Some("alice"), None)
        .await;
    assert_eq!(mine.status, StatusCode::OK);
    assert_eq!(mine.body["requests"][0]["state"], "pending");
    assert_eq!(mine.body["requests"][0]["duration"], "30m");
    let pending = api
        .call("GET", "/api/v1/requests?state=pending", Some("bob"), None)
        .await;
    assert_eq!(
        pending.body["requests"].as_array().unwrap().len(),
        1,
        "bob leads the owner team"
    );
    let stranger = api
        .call("GET", "/api/v1/requests", Some("frank"), None)
        .await;
    assert_eq!(
        stranger.body["requests"],
        json!([]),
        "frank has no standing over alice's request"
    );

    let approved = api
        .call(
            "POST",
            &format!("/api/v1/requests/{id}/approve"),
            Some("bob"),
            Some(json!({"comment": "go"})),
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    assert_eq!(approved.body["state"], "granted");
    assert_eq!(approved.body["approvals"][0]["approver"], "bob");
    let grant_id = approved.body["grant"]["id"].as_str().unwrap().to_owned();
    assert!(grant_id.starts_with("grt_"));

    let active = api
        .call("GET", "/api/v1/grants?active=true", Some("alice"), None)
        .await;
    assert_eq!(active.body["grants"][0]["id"], grant_id.as_str());
    let grant = api
        .call(
            "GET",
            &format!("/api/v1/grants/{grant_id}"),
            Some("carol"),
            None,
        )
        .await;
    assert_eq!(
        (grant.status, grant.body["state"].as_str()),
        (StatusCode::OK, Some("active"))
    );

    api.clock.advance_secs(30 * 60);
    latch_server::scheduler::tick(&*api.state.store, &api.state.catalog.get(), &*api.clock)
        .await
        .unwrap();
    let grant = api
        .call(
            "GET",
            &format!("/api/v1/grants/{grant_id}"),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(grant.body["state"], "expired");
    let late = api
        .call(
            "POST",
            &format!("/api/v1/grants/{grant_id}/revoke"),
            Some("erin"),
            Some(json!({"reason": "done"})),
        )
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT);
    assert!(
        late.body["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("grant `{grant_id}` already expired at"))
    );

    let types = api.event_types().await;
    let lifecycle: Vec<&str> = types
        .iter()
        .map(String::as_str)
        .filter(|t| !t.starts_with("token."))
        .collect();
    assert_eq!(
        lifecycle,
        [
            "request.created",
            "request.approved",
            "grant.issued",
            "grant.expired"
        ]
    );
    assert!(api.store.verify_projections().await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let api = TestApi::new(Backend::Sqlite).await;
    let cases = [
        (
            body("payments-db", "wirte", "30m", "x"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown role `wirte` for resource `payments-db` (roles: read, write)",
        ),
        (
            body("payments", "read", "30m", "x"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown resource `payments` (resources: payments-db)",
        ),
        (
            body("payments-db", "read", "30x", "x"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid duration `30x`: unknown unit (expected a number and a unit s, m, h or d, e.g. `30m`, `2h`, `1h30m`)",
        ),
        (
            body("payments-db", "write", "2h", "x"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "duration `2h` is above the maximum `1h` for role `write` on `payments-db`: ask for `1h` or less",
        ),
        (
            body("payments-db", "read", "1h", "  "),
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason is empty: say why you need access, e.g. `INC-4211: stuck job`",
        ),
        (
            Some(json!({"resource": "payments-db"})),
            StatusCode::BAD_REQUEST,
            "invalid JSON body: Failed to deserialize the JSON body into the target type: missing field `role` at line 1 column 26",
        ),
        (
            Some(
                json!({"resource": "payments-db", "role": "read", "duration": "1h", "reason": "x", "extra": 1}),
            ),
            StatusCode::BAD_REQUEST,
            "",
        ),
    ];
    for (body, status, message) in cases {
        let reply = api
            .call("POST", "/api/v1/requests", Some("alice"), body.clone())
            .await;
        assert_eq!(reply.status, status, "{body:?} → {:?}", reply.body);
        if !message.is_empty() {
            assert_eq!(reply.body["message"], message);
        }
        assert!(reply.body["error"].is_string());
    }
    let no_json = api
        .call("POST", "/api/v1/requests", Some("alice"), None)
        .await;
    assert_eq!(no_json.status, StatusCode::BAD_REQUEST);
    let bad_state = api
        .call("GET", "/api/v1/requests?state=done", Some("alice"), None)
        .await;
    assert_eq!(bad_state.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad_state.body["message"],
        "unknown state `done` (states: pending, denied, cancelled, timed_out, granted, expired, revoked)"
    );
    let bad_limit = api
        .call("GET", "/api/v1/grants?limit=0", Some("alice"), None)
        .await;
    assert_eq!(bad_limit.status, StatusCode::BAD_REQUEST);
    let bad_id = api
        .call("GET", "/api/v1/requests/req_%00", Some("alice"), None)
        .await;
    assert_eq!(bad_id.status, StatusCode::NOT_FOUND);
    let missing = api
        .call(
            "POST",
            "/api/v1/requests/req_nothere/approve",
            Some("bob"),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (missing.status, missing.body["message"].as_str()),
        (StatusCode::NOT_FOUND, Some("no request `req_nothere`"))
    );
    assert!(
        api.event_types()
            .await
            .iter()
            .all(|t| t.starts_with("token.")),
        "nothing but the tokens was written"
    );
}

#[tokio::test]
async fn authentication_is_required_and_tokens_can_be_revoked() {
    let api = TestApi::new(Backend::Sqlite).await;
    let none = api.call("GET", "/api/v1/whoami", None, None).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers[header::WWW_AUTHENTICATE], "Bearer");
    assert_eq!(none.body["error"], "unauthorized");

    let request = axum::http::Request::builder()
        .uri("/api/v1/whoami")
        .header(header::AUTHORIZATION, "Bearer latch_0000")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(api.send(request).await.status, StatusCode::UNAUTHORIZED);

    let me = api.call("GET", "/api/v1/whoami", Some("dave"), None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(
        (me.body["user"].as_str(), me.body["roles"].clone()),
        (Some("dave"), json!(["auditor"]))
    );

    let token_id = me.body["token_id"].as_str().unwrap().to_owned();
    api.store
        .revoke_token(&token_id, latch_core::Actor::System, &*api.clock)
        .await
        .unwrap()
        .unwrap();
    let revoked = api.call("GET", "/api/v1/whoami", Some("dave"), None).await;
    assert_eq!(revoked.status, StatusCode::UNAUTHORIZED);
    assert!(
        revoked.body["message"]
            .as_str()
            .unwrap()
            .contains("unknown or revoked token")
    );
}

#[tokio::test]
async fn forbidden_calls_are_refused_with_a_reason_and_recorded() {
    let api = TestApi::new(Backend::Sqlite).await;
    let id = api.request_read("1h").await;

    let own = api
        .call(
            "POST",
            &format!("/api/v1/requests/{id}/approve"),
            Some("alice"),
            Some(json!({})),
        )
        .await;
    assert_eq!(own.status, StatusCode::FORBIDDEN);
    assert_eq!(
        own.body["message"],
        format!("`alice` cannot approve or deny their own request `{id}`")
    );
    let stranger = api
        .call(
            "POST",
            &format!("/api/v1/requests/{id}/deny"),
            Some("frank"),
            Some(json!({"reason": "no"})),
        )
        .await;
    assert_eq!(stranger.status, StatusCode::FORBIDDEN);
    let peek = api
        .call(
            "GET",
            &format!("/api/v1/requests/{id}"),
            Some("frank"),
            None,
        )
        .await;
    assert_eq!(
        (peek.status, peek.body["message"].as_str()),
        (
            StatusCode::FORBIDDEN,
            Some(format!("`frank` may not view request `{id}`").as_str())
        )
    );
    let cancel = api
        .call(
            "POST",
            &format!("/api/v1/requests/{id}/cancel"),
            Some("bob"),
            None,
        )
        .await;
    assert_eq!(cancel.status, StatusCode::FORBIDDEN);
    let ledger = api.call("GET", "/api/v1/events", Some("alice"), None).await;
    assert_eq!(ledger.status, StatusCode::FORBIDDEN);

    let refused: Vec<_> = api
        .event_types()
        .await
        .into_iter()
        .filter(|t| t == "access.refused")
        .collect();
    assert_eq!(refused.len(), 5, "each 403 is a ledger event");
    let events = api
        .call("GET", "/api/v1/events?limit=1000", Some("dave"), None)
        .await;
    assert_eq!(events.status, StatusCode::OK);
    let last = events.body["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["type"].as_str(), last["actor"].as_str()),
        (Some("access.refused"), Some("user:alice"))
    );
    assert!(
        last["body"]
            .as_str()
            .unwrap()
            .contains("\"action\":\"read events\"")
    );
    assert_eq!(
        api.store.request(&id).await.unwrap().unwrap().state,
        latch_core::RequestState::Pending
    );
}

#[tokio::test]
async fn decisions_only_on_pending_requests_and_revocation_only_of_active_grants() {
    let api = TestApi::new(Backend::Sqlite).await;
    let id = api.request_read("1h").await;
    let empty_reason = api
        .call(
            "POST",
            &format!("/api/v1/requests/{id}/deny"),
            Some("bob"),
            Some(json!({"reason": ""})),
        )
        .await;
    assert_eq!(empty_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    let denied = api
        .call(
            "POST",
            &format!("/api/v1/requests/{id}/deny"),
            Some("bob"),
            Some(json!({"reason": "use the replica"})),
        )
        .await;
    assert_eq!(
        (denied.status, denied.body["state"].as_str()),
        (StatusCode::OK, Some("denied"))
    );
    assert_eq!(denied.body["deny_reason"], "use the replica");
    let approve_denied = api
        .call(
            "POST",
            &format!("/api/v1/requests/{id}/approve"),
            Some("carol"),
            Some(json!({})),
        )
        .await;
    assert_eq!(approve_denied.status, StatusCode::CONFLICT);
    assert_eq!(
        approve_denied.body["message"],
        format!("request `{id}` is denied: only a pending request can be approved")
    );

    let id = api.request_read("1h").await;
    let cancelled = api
        .call(
            "POST",
            &format!("/api/v1/requests/{id}/cancel"),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(cancelled.body["state"], "cancelled");
    let no_grant = api
        .call(
            "POST",
            &format!("/api/v1/grants/{}/revoke", id.replacen("req_", "grt_", 1)),
            Some("erin"),
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_eq!(no_grant.status, StatusCode::NOT_FOUND);

    let id = api.request_read("1h").await;
    let granted = api
        .call(
            "POST",
            &format!("/api/v1/requests/{id}/approve"),
            Some("carol"),
            Some(json!({})),
        )
        .await;
    let grant_id = granted.body["grant"]["id"].as_str().unwrap().to_owned();
    let twice = api
        .call(
            "POST",
            &format!("/api/v1/requests/{id}/approve"),
            Some("bob"),
            Some(json!({})),
        )
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    let by_stranger = api
        .call(
            "POST",
            &format!("/api/v1/grants/{grant_id}/revoke"),
            Some("frank"),
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_eq!(by_stranger.status, StatusCode::FORBIDDEN);
    let revoked = api
        .call(
            "POST",
            &format!("/api/v1/grants/{grant_id}/revoke"),
            Some("alice"),
            Some(json!({"reason": "done early"})),
        )
        .await;
    assert_eq!(
        (revoked.status, revoked.body["state"].as_str()),
        (StatusCode::OK, Some("revoked"))
    );
    assert_eq!(revoked.body["revoked_by"], "alice");
    let again = api
        .call(
            "POST",
            &format!("/api/v1/grants/{grant_id}/revoke"),
            Some("erin"),
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let unknown = api
        .call("GET", "/api/v1/grants/grt_zzz", Some("erin"), None)
        .await;
    assert_eq!(
        (unknown.status, unknown.body["message"].as_str()),
        (StatusCode::NOT_FOUND, Some("no grant `grt_zzz`"))
    );
}

#[tokio::test]
async fn racing_approvals_through_the_api_grant_once() {
    let api = TestApi::new(Backend::Sqlite).await;
    let id = api.request_read("1h").await;
    let path = format!("/api/v1/requests/{id}/approve");
    let (a, b) = tokio::join!(
        api.call("POST", &path, Some("bob"), Some(json!({}))),
        api.call("POST", &path, Some("carol"), Some(json!({}))),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT]);
    assert_eq!(
        api.event_types()
            .await
            .iter()
            .filter(|t| *t == "grant.issued")
            .count(),
        1
    );
}

#[tokio::test]
async fn openapi_health_readiness_and_metrics() {
    let api = TestApi::new(Backend::Sqlite).await;
    let doc = api.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(doc.status, StatusCode::OK);
    let paths: Vec<&String> = doc.body["paths"].as_object().unwrap().keys().collect();
    assert_eq!(
        paths,
        [
            "/api/v1/admin/reload",
            "/api/v1/analytics",
            "/api/v1/audit/run",
            "/api/v1/connect",
            "/api/v1/events",
            "/api/v1/findings",
            "/api/v1/findings/{id}/ack",
            "/api/v1/findings/{id}/resolve",
            "/api/v1/grants",
            "/api/v1/grants/{id}",
            "/api/v1/grants/{id}/revoke",
            "/api/v1/ledger/checkpoint",
            "/api/v1/ledger/consistency",
            "/api/v1/ledger/inclusion",
            "/api/v1/ledger/public-key",
            "/api/v1/notifications",
            "/api/v1/notifications/retry",
            "/api/v1/requests",
            "/api/v1/requests/{id}",
            "/api/v1/requests/{id}/approve",
            "/api/v1/requests/{id}/break-glass",
            "/api/v1/requests/{id}/cancel",
            "/api/v1/requests/{id}/deny",
            "/api/v1/reviews",
            "/api/v1/sessions",
            "/api/v1/sessions/{id}",
            "/api/v1/whoami",
        ]
    );
    assert!(doc.body["components"]["securitySchemes"]["bearer"].is_object());
    assert_eq!(
        api.call("GET", "/healthz", None, None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        api.call("GET", "/readyz", None, None).await.status,
        StatusCode::OK
    );

    api.request_read("1h").await;
    let metrics = api.call("GET", "/metrics", None, None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    let text = metrics.body.as_str().unwrap();
    assert!(
        text.contains("latch_requests{state=\"pending\"} 1"),
        "{text}"
    );
    assert!(text.contains("latch_grants_active 0"), "{text}");
    assert!(text.contains("latch_api_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/requests\",status=\"201\"} 1"), "{text}");
    let nowhere = api.call("GET", "/nowhere", None, None).await;
    assert_eq!(
        (nowhere.status, nowhere.body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

#[tokio::test]
async fn a_database_that_is_down_gets_503_and_not_ready() {
    let api = TestApi::new(Backend::Sqlite).await;
    api.store.store.close().await;
    let reply = api.call("GET", "/api/v1/whoami", Some("alice"), None).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.body["message"],
        "the database is unavailable: try again shortly"
    );
    assert_eq!(
        api.call("GET", "/readyz", None, None).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        api.call("GET", "/healthz", None, None).await.status,
        StatusCode::OK
    );
}

/// Expired gateway credentials are deleted a day after they expire, not before: until then a
/// client presenting one is told it expired.
#[tokio::test]
async fn the_scheduler_purges_credentials_a_day_after_they_expire() {
    use latch_core::Timestamp;
    use latch_core::time::Clock;
    use latch_pgwire::scram::ScramSecret;
    use latch_store::CredentialRecord;
    let api = TestApi::new(Backend::Sqlite).await;
    let grant_id = api.granted_read("1h").await;
    let now = api.clock.now().as_millis();
    let scram = ScramSecret {
        salt: b"salt".to_vec(),
        iterations: 4096,
        stored_key: [1; 32],
        server_key: [2; 32],
    };
    for (credential, expires_in_ms) in [("lcc_old", 1_000), ("lcc_new", 3_600_000)] {
        let record = CredentialRecord {
            id: credential.into(),
            user: "alice".into(),
            grant_id: grant_id.clone(),
            created_at: api.clock.now(),
            expires_at: Timestamp::from_millis(now + expires_in_ms),
        };
        api.store
            .create_credential(&record, &format!("hash-{credential}"), &scram, &*api.clock)
            .await
            .unwrap();
    }
    let purge = || latch_server::scheduler::purge_credentials(&*api.state.store, &*api.clock);

    // Both have expired, but neither a day ago.
    api.clock.advance_secs(2 * 3600);
    assert_eq!(purge().await.unwrap(), 0);
    assert!(api.store.credential("lcc_old").await.unwrap().is_some());

    api.clock.advance_secs(23 * 3600);
    assert_eq!(purge().await.unwrap(), 1);
    assert_eq!(api.store.credential("lcc_old").await.unwrap(), None);
    assert!(api.store.credential("lcc_new").await.unwrap().is_some());
}
