//! Each test starts a receiver on port 0 that records what it gets and answers as told.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use latch_core::{Actor, Event, EventKind, StoredEvent, Timestamp};
use latch_notify::{
    Channel, DeliveryError, Notice, NoticeContext, Rendered, deliver, deliver_with_retries, render,
    verify_webhook,
};
use serde_json::Value;

const WEBHOOK_SECRET: &str = "whsec_test";

#[derive(Clone, Debug)]
struct Received {
    path: String,
    content_type: Option<String>,
    body: Bytes,
}

#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
    calls: Arc<AtomicU32>,
}

impl Receiver {
    fn record(&self, path: &str, headers: &HeaderMap, body: &Bytes) -> u32 {
        self.received.lock().unwrap().push(Received {
            path: path.to_owned(),
            content_type: headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: body.clone(),
        });
        self.calls.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

fn now_unix() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

async fn ok(State(rx): State<Receiver>, headers: HeaderMap, body: Bytes) -> &'static str {
    rx.record("/ok", &headers, &body);
    "ok"
}

/// Verifies latch's signature the way a receiver would: 401 when it does not hold.
async fn signed(State(rx): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    rx.record("/signed", &headers, &body);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    match verify_webhook(
        WEBHOOK_SECRET,
        &header("x-latch-timestamp"),
        &header("x-latch-signature"),
        &body,
        now_unix(),
    ) {
        Ok(()) => (StatusCode::OK, "verified").into_response(),
        Err(err) => (StatusCode::UNAUTHORIZED, err.to_string()).into_response(),
    }
}

async fn flaky(State(rx): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    match rx.record("/flaky", &headers, &body) {
        1 | 2 => (StatusCode::SERVICE_UNAVAILABLE, "try later").into_response(),
        _ => (StatusCode::OK, "ok").into_response(),
    }
}

async fn limited(State(rx): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    match rx.record("/limited", &headers, &body) {
        1 => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "42")],
            "rate_limited",
        )
            .into_response(),
        _ => (StatusCode::OK, "ok").into_response(),
    }
}

async fn archived(State(rx): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    rx.record("/archived", &headers, &body);
    (StatusCode::GONE, "channel_is_archived").into_response()
}

async fn slow(State(rx): State<Receiver>, headers: HeaderMap, body: Bytes) -> &'static str {
    rx.record("/slow", &headers, &body);
    tokio::time::sleep(Duration::from_secs(5)).await;
    "ok"
}

async fn start() -> (SocketAddr, Receiver) {
    let receiver = Receiver::default();
    let app = Router::new()
        .route("/ok", post(ok))
        .route("/signed", post(signed))
        .route("/flaky", post(flaky))
        .route("/limited", post(limited))
        .route("/archived", post(archived))
        .route("/slow", post(slow))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, receiver)
}

fn request_created() -> Notice {
    let stored = StoredEvent {
        seq: 1,
        event: Event {
            at: Timestamp::from_millis(1_795_000_000_000),
            actor: Actor::user("alice"),
            subject: "req_01".into(),
            kind: EventKind::RequestCreated {
                requester: "alice".into(),
                resource: "payments-db".into(),
                role: "read".into(),
                duration_secs: 1800,
                reason: "INC-4211: stuck job".into(),
                ticket: Some("INC-4211".into()),
                required_approvals: 1,
                pending_until: None,
                policies: Vec::new(),
                approver_groups: Vec::new(),
                once: false,
            },
        },
    };
    let ctx = NoticeContext {
        request: None,
        approvers: vec!["bob".into()],
        base_url: Some("https://latch.example.com".into()),
    };
    Notice::from_event(&stored, &ctx).unwrap()
}

fn json(received: &Received) -> Value {
    serde_json::from_slice(&received.body).unwrap()
}

/// A sleep that returns at once and remembers how long it was asked to wait.
fn recording_sleep(
    waits: &Arc<Mutex<Vec<Duration>>>,
) -> impl Fn(Duration) -> std::future::Ready<()> + use<> {
    let waits = Arc::clone(waits);
    move |duration| {
        waits.lock().unwrap().push(duration);
        std::future::ready(())
    }
}

fn client() -> reqwest::Client {
    latch_notify::client().unwrap()
}

#[tokio::test]
async fn slack_receives_the_block_kit_payload() {
    let (addr, rx) = start().await;
    let channel = Channel::Slack {
        webhook_url: format!("http://{addr}/ok"),
    };
    let rendered = render(&request_created(), &channel);
    deliver(&client(), &channel, &rendered).await.unwrap();
    let received = rx.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/ok");
    assert_eq!(
        received[0].content_type.as_deref(),
        Some("application/json")
    );
    let body = json(&received[0]);
    let Rendered::Json { body: sent } = rendered else {
        panic!("expected JSON");
    };
    assert_eq!(body, sent);
    assert_eq!(body["text"], "alice requests read on payments-db for 30m");
    let actions = body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|block| block["type"] == "actions")
        .unwrap();
    assert_eq!(actions["elements"][0]["action_id"], "latch_approve:req_01");
    assert_eq!(actions["elements"][0]["style"], "primary");
    assert_eq!(actions["elements"][1]["action_id"], "latch_deny:req_01");
    assert_eq!(actions["elements"][1]["style"], "danger");
}

#[tokio::test]
async fn teams_receives_an_adaptive_card() {
    let (addr, rx) = start().await;
    let channel = Channel::Teams {
        webhook_url: format!("http://{addr}/ok"),
    };
    let rendered = render(&request_created(), &channel);
    deliver(&client(), &channel, &rendered).await.unwrap();
    let body = json(&rx.received()[0]);
    assert_eq!(body["type"], "message");
    let attachment = &body["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(attachment["content"]["type"], "AdaptiveCard");
    assert_eq!(attachment["content"]["version"], "1.4");
    assert_eq!(
        attachment["content"]["actions"][0]["type"],
        "Action.OpenUrl"
    );
    assert_eq!(
        attachment["content"]["actions"][0]["url"],
        "https://latch.example.com/requests/req_01"
    );
}

#[tokio::test]
async fn webhook_signature_verifies_at_the_receiver() {
    let (addr, rx) = start().await;
    let channel = Channel::Webhook {
        url: format!("http://{addr}/signed"),
        secret: WEBHOOK_SECRET.into(),
    };
    let rendered = render(&request_created(), &channel);
    deliver(&client(), &channel, &rendered).await.unwrap();
    let body = json(&rx.received()[0]);
    assert_eq!(body["type"], "request.created");
    assert_eq!(body["id"], "evt_1");
    assert_eq!(body["event"]["data"]["resource"], "payments-db");

    // The receiver refuses a body signed with another secret, and that is not worth retrying.
    let wrong = Channel::Webhook {
        url: format!("http://{addr}/signed"),
        secret: "not the secret".into(),
    };
    let err = deliver(&client(), &wrong, &rendered).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the receiver answered 401: signature does not match the body: check the signing secret"
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn retries_through_two_503s() {
    let (addr, rx) = start().await;
    let channel = Channel::Slack {
        webhook_url: format!("http://{addr}/flaky"),
    };
    let rendered = render(&request_created(), &channel);
    let waits = Arc::new(Mutex::new(Vec::new()));
    let attempts = deliver_with_retries(
        &client(),
        &channel,
        &rendered,
        latch_notify::MAX_ATTEMPTS,
        || 0.5,
        recording_sleep(&waits),
    )
    .await
    .unwrap();
    assert_eq!(attempts, 3);
    assert_eq!(rx.received().len(), 3);
    assert_eq!(
        *waits.lock().unwrap(),
        vec![latch_notify::backoff(1, 0.5), latch_notify::backoff(2, 0.5)]
    );
    // Every attempt carried the same body.
    let bodies: Vec<Bytes> = rx.received().into_iter().map(|r| r.body).collect();
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let (addr, _rx) = start().await;
    let channel = Channel::Slack {
        webhook_url: format!("http://{addr}/limited"),
    };
    let rendered = render(&request_created(), &channel);
    let waits = Arc::new(Mutex::new(Vec::new()));
    let attempts = deliver_with_retries(
        &client(),
        &channel,
        &rendered,
        3,
        || 0.0,
        recording_sleep(&waits),
    )
    .await
    .unwrap();
    assert_eq!(attempts, 2);
    assert_eq!(*waits.lock().unwrap(), vec![Duration::from_secs(42)]);
}

#[tokio::test]
async fn a_4xx_is_not_retried() {
    let (addr, rx) = start().await;
    let channel = Channel::Slack {
        webhook_url: format!("http://{addr}/archived"),
    };
    let rendered = render(&request_created(), &channel);
    let waits = Arc::new(Mutex::new(Vec::new()));
    let failure = deliver_with_retries(
        &client(),
        &channel,
        &rendered,
        5,
        || 0.0,
        recording_sleep(&waits),
    )
    .await
    .unwrap_err();
    assert_eq!(failure.attempts, 1);
    assert_eq!(
        failure.error,
        DeliveryError::Status {
            status: 410,
            retry_after: None,
            body: "channel_is_archived".into()
        }
    );
    assert!(!failure.error.is_retryable());
    assert_eq!(rx.received().len(), 1);
    assert!(waits.lock().unwrap().is_empty());
}

#[tokio::test]
async fn connection_refused_is_retried_until_attempts_run_out_and_hides_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let channel = Channel::Slack {
        webhook_url: format!("http://{addr}/services/T0/B0/secret-token"),
    };
    let rendered = render(&request_created(), &channel);
    let waits = Arc::new(Mutex::new(Vec::new()));
    let failure = deliver_with_retries(
        &client(),
        &channel,
        &rendered,
        3,
        || 1.0,
        recording_sleep(&waits),
    )
    .await
    .unwrap_err();
    assert_eq!(failure.attempts, 3);
    assert!(
        matches!(failure.error, DeliveryError::Connect(_)),
        "{failure}"
    );
    assert!(failure.error.is_retryable());
    assert!(!failure.to_string().contains("secret-token"), "{failure}");
    assert_eq!(waits.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_slow_receiver_times_out_and_is_retryable() {
    let (addr, _rx) = start().await;
    let channel = Channel::Teams {
        webhook_url: format!("http://{addr}/slow"),
    };
    let rendered = render(&request_created(), &channel);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = deliver(&client, &channel, &rendered).await.unwrap_err();
    assert_eq!(err, DeliveryError::Timeout);
    assert!(err.is_retryable());
}

#[tokio::test]
async fn email_is_rendered_not_sent() {
    let channel = Channel::Email {
        to: vec!["security@example.com".into()],
    };
    let rendered = render(&request_created(), &channel);
    let Rendered::Email { subject, .. } = &rendered else {
        panic!("expected an email");
    };
    assert_eq!(subject, "[latch] Access request: payments-db (read)");
    let err = deliver(&client(), &channel, &rendered).await.unwrap_err();
    assert_eq!(err, DeliveryError::EmailNotSent);
    assert!(!err.is_retryable());
}
