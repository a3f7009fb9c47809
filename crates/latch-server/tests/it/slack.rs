//! Slack's Approve and Deny buttons: only a correctly signed, fresh, first-seen request from a
//! linked Slack user decides, and only as policy allows that user.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use latch_core::RequestState;
use latch_server::notify::NotifyConfig;
use latch_store::Store;
use latch_testkit::{Backend, T0};

use crate::TestApi;

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

fn click(request_id: &str, slack_user: &str, action: &str) -> String {
    let payload = serde_json::json!({
        "type": "block_actions",
        "user": { "id": slack_user },
        "response_url": "https://hooks.slack.com/actions/T/1/x",
        "actions": [{ "action_id": format!("latch_{action}:{request_id}"), "value": request_id }],
    });
    format!(
        "payload={}",
        form_urlencoded::byte_serialize(payload.to_string().as_bytes()).collect::<String>()
    )
}

fn signed(body: &str, timestamp: i64, secret: &str) -> Request<Body> {
    let signature = latch_notify::sign_slack(secret, &timestamp.to_string(), body.as_bytes());
    Request::builder()
        .method("POST")
        .uri("/slack/interactions")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", timestamp.to_string())
        .header("x-slack-signature", signature)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

async fn api() -> TestApi {
    let mut api = TestApi::new(Backend::Sqlite).await;
    api.state.notify = Some(Arc::new(NotifyConfig {
        slack_signing_secret: Some(SECRET.to_owned()),
        slack_users: HashMap::from([
            ("UBOB".to_owned(), "bob".to_owned()),
            ("UDAVE".to_owned(), "dave".to_owned()),
        ]),
        ..Default::default()
    }));
    api
}

#[tokio::test]
async fn a_signed_click_by_a_linked_approver_approves_and_everything_else_is_refused() {
    let api = api().await;
    let id = api.request_read("30m").await;
    let now = T0.as_millis() / 1000;

    // A wrong secret, a stale timestamp: 401, nothing decided.
    let body = click(&id, "UBOB", "approve");
    let forged = api.send(signed(&body, now, "not-the-secret")).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{:?}", forged.body);
    let stale = api.send(signed(&body, now - 301, SECRET)).await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED, "{:?}", stale.body);

    // dave is linked but policy does not let an auditor approve: latch says so, nothing changes.
    let refused = api
        .send(signed(&click(&id, "UDAVE", "approve"), now, SECRET))
        .await;
    assert_eq!(refused.status, StatusCode::OK);
    assert!(
        refused.body["text"]
            .as_str()
            .unwrap()
            .starts_with("latch refused"),
        "{:?}",
        refused.body
    );
    // An unlinked Slack user is told so.
    let unknown = api
        .send(signed(&click(&id, "UNOBODY", "approve"), now, SECRET))
        .await;
    assert!(
        unknown.body["text"]
            .as_str()
            .unwrap()
            .contains("not linked")
    );
    let still = api.store.request(&id).await.unwrap().unwrap();
    assert_eq!(still.state, RequestState::Pending);

    // bob's click approves, as bob.
    let approved = api.send(signed(&body, now, SECRET)).await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    let request = api.store.request(&id).await.unwrap().unwrap();
    assert_eq!(request.state, RequestState::Granted);
    assert_eq!(request.approvals[0].approver, "bob");

    // The same signed request again is a replay.
    let replay = api.send(signed(&body, now, SECRET)).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{:?}", replay.body);
}
