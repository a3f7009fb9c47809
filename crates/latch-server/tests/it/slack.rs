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

// The notifier, in process: its own timer (expiry warnings, reminders, digests), Slack message
// replacement through `response_url`, and email through an SMTP relay, each against a receiver
// started by the test and a fake clock.

mod notifier {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::http::StatusCode;
    use latch_notify::{Channel, Mailer, Route, SmtpSettings};
    use latch_server::notify::NotifyConfig;
    use latch_store::Store;
    use latch_testkit::{Backend, T0};
    use serde_json::Value;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio_util::sync::CancellationToken;

    use super::{SECRET, click, signed};
    use crate::TestApi;

    /// What an HTTP receiver got: path and JSON body, in arrival order.
    type Got = Arc<Mutex<Vec<(String, Value)>>>;

    /// An HTTP server on port 0 that answers 200 and keeps every POST.
    async fn receiver() -> (String, Got) {
        let got: Got = Arc::default();
        let sink = got.clone();
        let app =
            axum::Router::new().fallback(move |uri: axum::http::Uri, body: axum::body::Bytes| {
                let sink = sink.clone();
                async move {
                    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    sink.lock().unwrap().push((uri.path().to_owned(), value));
                    StatusCode::OK
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{address}"), got)
    }

    fn hook(url: &str) -> Channel {
        Channel::Webhook {
            url: format!("{url}/hook"),
            secret: "s3cret".to_owned(),
        }
    }

    fn route(events: &[&str], channel: &str) -> Route {
        Route {
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            min_severity: None,
            resources: Vec::new(),
            teams: Vec::new(),
            channel: channel.to_owned(),
        }
    }

    /// A running notifier; `stop` ends it as `latch serve` does at shutdown.
    struct Running {
        shutdown: CancellationToken,
        task: tokio::task::JoinHandle<()>,
    }

    impl Running {
        async fn stop(self) {
            self.shutdown.cancel();
            self.task.await.unwrap();
        }
    }

    async fn start(api: &TestApi, config: NotifyConfig) -> Running {
        let config = Arc::new(config);
        let mut state = api.state.clone();
        state.notify = Some(config.clone());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(latch_server::notify::run(state, config, shutdown.clone()));
        // It starts from the ledger's end: wait until it has its cursor.
        until("the notifier starts", || async {
            api.store.notify_cursor().await.unwrap().is_some()
        })
        .await;
        Running { shutdown, task }
    }

    async fn until<F, Fut>(what: &str, mut condition: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while !condition().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting until {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The webhook bodies' `id`s received so far.
    fn ids(got: &Got) -> Vec<String> {
        got.lock()
            .unwrap()
            .iter()
            .filter(|(path, _)| path == "/hook")
            .map(|(_, body)| body["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Long enough for the notifier's timer (every second) to have run twice: used only to show
    /// that something does *not* happen.
    async fn two_ticks() {
        tokio::time::sleep(Duration::from_millis(2300)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_grantee_is_warned_once_before_the_end_even_across_a_restart() {
        let api = TestApi::new(Backend::Sqlite).await;
        let (url, got) = receiver().await;
        let config = NotifyConfig {
            channels: HashMap::from([("hook".to_owned(), hook(&url))]),
            routes: vec![route(&["grant.*"], "hook")],
            expiry_warning: Duration::from_secs(10 * 60),
            ..Default::default()
        };
        let notifier = start(&api, config.clone()).await;
        let id = api.request_read("30m").await;
        api.approve(&id).await;
        let grant = id.replacen("req_", "grt_", 1);
        until("the grant is announced", || async { ids(&got).len() == 1 }).await;

        // Twenty minutes on, the grant ends within the warning period.
        api.clock.advance_secs(20 * 60);
        until("the warning arrives", || async { ids(&got).len() == 2 }).await;
        let warning = got.lock().unwrap()[1].1.clone();
        assert_eq!(warning["id"], format!("exp_{grant}"));
        assert_eq!(warning["type"], "grant.expiring");
        assert!(
            warning["summary"].as_str().unwrap().contains("ends in 10m"),
            "{warning}"
        );

        // A restart does not warn again.
        notifier.stop().await;
        let notifier = start(&api, config).await;
        two_ticks().await;
        assert_eq!(ids(&got).len(), 2, "{:?}", ids(&got));

        // The end is announced, with its reason.
        let reply = api
            .call(
                "POST",
                &format!("/api/v1/grants/{grant}/revoke"),
                Some("bob"),
                Some(serde_json::json!({ "reason": "incident closed" })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        until("the revocation arrives", || async { ids(&got).len() == 3 }).await;
        let ended = got.lock().unwrap()[2].1.clone();
        assert_eq!(ended["type"], "grant.revoked");
        assert!(
            ended["summary"].as_str().unwrap().contains("bob revoked"),
            "{ended}"
        );
        assert!(ended.to_string().contains("incident closed"), "{ended}");
        notifier.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn approvers_are_reminded_once_per_interval_until_someone_decides() {
        let api = TestApi::new(Backend::Sqlite).await;
        let (url, got) = receiver().await;
        let config = NotifyConfig {
            channels: HashMap::from([("hook".to_owned(), hook(&url))]),
            routes: vec![route(&["request.reminder"], "hook")],
            expiry_warning: Duration::from_secs(60),
            reminder_after: Some(Duration::from_secs(3600)),
            ..Default::default()
        };
        let notifier = start(&api, config).await;
        let id = api.request_read("30m").await;

        api.clock.advance_secs(59 * 60);
        two_ticks().await;
        assert!(ids(&got).is_empty(), "{:?}", ids(&got));

        api.clock.advance_secs(2 * 60);
        until("the first reminder", || async { ids(&got).len() == 1 }).await;
        two_ticks().await;
        assert_eq!(
            ids(&got),
            [format!("rem_{id}_1")],
            "one per interval, not per tick"
        );
        let reminder = got.lock().unwrap()[0].1.clone();
        assert!(
            reminder["summary"]
                .as_str()
                .unwrap()
                .contains("has been waiting for a decision for 1h1m"),
            "{reminder}"
        );

        api.clock.advance_secs(3600);
        until("the second reminder", || async { ids(&got).len() == 2 }).await;
        assert_eq!(ids(&got)[1], format!("rem_{id}_2"));

        api.approve(&id).await;
        api.clock.advance_secs(3 * 3600);
        two_ticks().await;
        assert_eq!(ids(&got).len(), 2, "a decided request is not reminded");
        notifier.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_digest_batches_informational_messages_and_sends_the_urgent_at_once() {
        let api = TestApi::new(Backend::Sqlite).await;
        let (url, got) = receiver().await;
        let config = NotifyConfig {
            channels: HashMap::from([("hook".to_owned(), hook(&url))]),
            routes: vec![route(&["request.*", "grant.*"], "hook")],
            expiry_warning: Duration::from_secs(60),
            digest_minutes: 5,
            ..Default::default()
        };
        let notifier = start(&api, config.clone()).await;
        let id = api.request_read("30m").await;
        // A new request needs a decision: it is not held.
        until("the request arrives", || async { ids(&got).len() == 1 }).await;
        api.approve(&id).await;
        two_ticks().await;
        assert_eq!(ids(&got).len(), 1, "approval and grant wait for the digest");

        // Held in the store: a restart keeps them.
        notifier.stop().await;
        let notifier = start(&api, config).await;
        api.clock.advance_secs(5 * 60);
        until("the digest arrives", || async { ids(&got).len() == 2 }).await;
        let digest = got.lock().unwrap()[1].1.clone();
        assert_eq!(digest["type"], "digest");
        let types: Vec<&str> = digest["notices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["request.approved", "grant.issued"]);
        two_ticks().await;
        assert_eq!(ids(&got).len(), 2, "the digest is sent once");
        notifier.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_click_in_slack_replaces_the_message_so_nobody_acts_twice() {
        let api = TestApi::new(Backend::Sqlite).await;
        let (url, got) = receiver().await;
        let config = NotifyConfig {
            slack_signing_secret: Some(SECRET.to_owned()),
            slack_users: HashMap::from([("UBOB".to_owned(), "bob".to_owned())]),
            ..Default::default()
        };
        let notifier = start(&api, config.clone()).await;
        let id = api.request_read("30m").await;
        let body = click(&id, "UBOB", "approve").replace(
            "https%3A%2F%2Fhooks.slack.com%2Factions%2FT%2F1%2Fx",
            &form_urlencoded::byte_serialize(format!("{url}/response").as_bytes())
                .collect::<String>(),
        );
        let mut state = api.state.clone();
        state.notify = Some(Arc::new(config));
        let reply = latch_server::router(state)
            .oneshot_signed(&body, T0.as_millis() / 1000)
            .await;
        assert_eq!(reply, StatusCode::OK);
        until("Slack gets the replacement", || async {
            got.lock()
                .unwrap()
                .iter()
                .any(|(path, _)| path == "/response")
        })
        .await;
        let (_, replacement) = got.lock().unwrap()[0].clone();
        assert_eq!(replacement["replace_original"], true);
        let text = replacement.to_string();
        assert!(text.contains("Approved by *bob*"), "{text}");
        assert!(!text.contains("latch_approve"), "no buttons left: {text}");
        notifier.stop().await;
    }

    /// Sends a signed Slack click to the router.
    trait OneshotSigned {
        async fn oneshot_signed(self, body: &str, now: i64) -> StatusCode;
    }

    impl OneshotSigned for axum::Router {
        async fn oneshot_signed(self, body: &str, now: i64) -> StatusCode {
            use tower::ServiceExt;
            self.oneshot(signed(body, now, SECRET))
                .await
                .unwrap()
                .status()
        }
    }

    /// A call Slack's Web API got: method, `Authorization` header, JSON body.
    #[derive(Clone, Debug)]
    struct ApiCall {
        method: String,
        auth: String,
        body: Value,
    }

    /// A scripted answer: HTTP status, `Retry-After` seconds, JSON body.
    type Answer = (u16, Option<u64>, Value);

    /// Slack's Web API as a test sees it: every call kept in arrival order, answered by the
    /// scripted answers first (HTTP status, `Retry-After`, body) and then as Slack answers a
    /// success, `ok: true` with the channel and a new `ts` for each posted message.
    #[derive(Clone, Default)]
    struct SlackApi {
        calls: Arc<Mutex<Vec<ApiCall>>>,
        script: Arc<Mutex<std::collections::VecDeque<Answer>>>,
    }

    impl SlackApi {
        fn calls(&self, method: &str) -> Vec<ApiCall> {
            self.calls
                .lock()
                .unwrap()
                .iter()
                .filter(|call| call.method == method)
                .cloned()
                .collect()
        }
    }

    async fn slack_api(script: Vec<Answer>) -> (String, SlackApi) {
        let api = SlackApi {
            calls: Arc::default(),
            script: Arc::new(Mutex::new(script.into())),
        };
        let state = api.clone();
        let app = axum::Router::new().route(
            "/api/{method}",
            axum::routing::post(
                move |axum::extract::Path(method): axum::extract::Path<String>,
                      headers: axum::http::HeaderMap,
                      body: axum::body::Bytes| {
                    let state = state.clone();
                    async move {
                        use axum::response::IntoResponse;
                        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let auth = headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let count = {
                            let mut calls = state.calls.lock().unwrap();
                            calls.push(ApiCall {
                                method: method.clone(),
                                auth,
                                body: body.clone(),
                            });
                            calls.len()
                        };
                        let scripted = state.script.lock().unwrap().pop_front();
                        let (status, retry_after, answer) = scripted.unwrap_or_else(|| {
                            let ts = match method.as_str() {
                                "chat.postMessage" => format!("1795000000.{count:06}"),
                                _ => body["ts"].as_str().unwrap_or_default().to_owned(),
                            };
                            let answer = serde_json::json!({
                                "ok": true, "channel": body["channel"], "ts": ts,
                            });
                            (200, None, answer)
                        });
                        let mut response =
                            (StatusCode::from_u16(status).unwrap(), axum::Json(answer))
                                .into_response();
                        if let Some(secs) = retry_after {
                            response
                                .headers_mut()
                                .insert("retry-after", secs.to_string().parse().unwrap());
                        }
                        response
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{address}/api"), api)
    }

    const BOT_TOKEN: &str = "xoxb-1-SECRETTOKEN";

    fn bot_channel(api_base: &str) -> NotifyConfig {
        NotifyConfig {
            channels: HashMap::from([(
                "approvals".to_owned(),
                Channel::SlackBot {
                    token: BOT_TOKEN.to_owned(),
                    channel_id: "C0123ABCD".to_owned(),
                    api_base: api_base.to_owned(),
                },
            )]),
            routes: vec![route(&["request.*"], "approvals")],
            ..Default::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bot_token_channel_updates_the_request_message_when_it_is_decided_elsewhere() {
        let api = TestApi::new(Backend::Sqlite).await;
        let (api_base, slack) = slack_api(Vec::new()).await;
        let notifier = start(&api, bot_channel(&api_base)).await;
        let id = api.request_read("30m").await;
        until("the request is posted", || async {
            slack.calls("chat.postMessage").len() == 1
        })
        .await;
        let post = slack.calls("chat.postMessage")[0].clone();
        assert_eq!(post.auth, format!("Bearer {BOT_TOKEN}"));
        assert_eq!(post.body["channel"], "C0123ABCD");
        assert!(
            post.body["blocks"]
                .to_string()
                .contains(&format!("latch_approve:{id}")),
            "{}",
            post.body
        );
        until("its ts is remembered", || async {
            !api.store
                .slack_messages(&id, "approvals")
                .await
                .unwrap()
                .is_empty()
        })
        .await;
        let messages = api.store.slack_messages(&id, "approvals").await.unwrap();
        let ts = "1795000000.000001".to_owned();
        assert_eq!(messages, [("C0123ABCD".to_owned(), ts.clone())]);

        // bob approves through the API, not in Slack: the message loses its buttons all the same.
        api.approve(&id).await;
        until("Slack is asked to update the message", || async {
            !slack.calls("chat.update").is_empty()
        })
        .await;
        two_ticks().await;
        let updates = slack.calls("chat.update");
        assert_eq!(updates.len(), 1, "{updates:?}");
        let update = &updates[0];
        assert_eq!(update.auth, format!("Bearer {BOT_TOKEN}"));
        assert_eq!(update.body["channel"], "C0123ABCD");
        assert_eq!(update.body["ts"], ts);
        let text = update.body["blocks"].to_string();
        assert!(text.contains("Approved by *bob*"), "{text}");
        assert!(!text.contains("latch_approve"), "no buttons left: {text}");
        // The approval itself is announced too, as a message of its own, without buttons: only
        // the request's message was remembered.
        assert_eq!(slack.calls("chat.postMessage").len(), 2);
        assert_eq!(
            api.store.slack_messages(&id, "approvals").await.unwrap(),
            messages
        );
        // The token is in the channel's config alone, never in the outbox.
        let sent = api.store.notifications("sent", 100).await.unwrap();
        assert!(sent.len() >= 3, "{sent:?}");
        assert!(sent.iter().all(|row| !row.payload.contains("SECRETTOKEN")));
        notifier.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_bot_token_is_dead_lettered_with_slacks_error() {
        let api = TestApi::new(Backend::Sqlite).await;
        let refused = serde_json::json!({ "ok": false, "error": "invalid_auth" });
        let (api_base, slack) = slack_api(vec![(200, None, refused)]).await;
        let notifier = start(&api, bot_channel(&api_base)).await;
        api.request_read("30m").await;
        until("the message is dead-lettered", || async {
            !api.store
                .notifications("dead", 10)
                .await
                .unwrap()
                .is_empty()
        })
        .await;
        let dead = api.store.notifications("dead", 10).await.unwrap();
        let error = dead[0].last_error.clone().unwrap();
        assert!(error.contains("`invalid_auth`"), "{error}");
        assert!(
            error.contains("bot_token_env"),
            "says what to check: {error}"
        );
        assert!(!error.contains("SECRETTOKEN"), "{error}");
        assert_eq!(dead[0].attempts, 1, "a bad token is not tried again");
        assert_eq!(slack.calls("chat.postMessage").len(), 1);
        notifier.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rate_limited_post_is_retried_after_retry_after_and_its_update_follows_it() {
        let api = TestApi::new(Backend::Sqlite).await;
        let limited = serde_json::json!({ "ok": false, "error": "ratelimited" });
        let (api_base, slack) = slack_api(vec![(429, Some(30), limited)]).await;
        let notifier = start(&api, bot_channel(&api_base)).await;
        let id = api.request_read("30m").await;
        until("the first attempt is refused", || async {
            api.store
                .notifications("pending", 10)
                .await
                .unwrap()
                .iter()
                .any(|row| row.attempts == 1)
        })
        .await;
        let pending = api.store.notifications("pending", 10).await.unwrap();
        let error = pending[0].last_error.clone().unwrap();
        assert!(error.contains("429"), "{error}");
        // Decided while the message waits: its replacement queues behind it.
        api.approve(&id).await;
        // Slack asked for 30 s: nothing is sent before.
        api.clock.advance_secs(20);
        two_ticks().await;
        assert_eq!(slack.calls("chat.postMessage").len(), 1);
        assert!(slack.calls("chat.update").is_empty());
        api.clock.advance_secs(11);
        until("the update follows the retried post", || async {
            !slack.calls("chat.update").is_empty()
        })
        .await;
        let methods: Vec<String> = slack
            .calls
            .lock()
            .unwrap()
            .iter()
            .map(|call| call.method.clone())
            .collect();
        assert_eq!(
            methods,
            [
                "chat.postMessage",
                "chat.postMessage",
                "chat.postMessage",
                "chat.update"
            ],
            "in order: the refused post, its retry, the approval, the replacement"
        );
        let posted = api.store.slack_messages(&id, "approvals").await.unwrap();
        assert_eq!(
            posted,
            [("C0123ABCD".to_owned(), "1795000000.000002".to_owned())]
        );
        assert_eq!(
            slack.calls("chat.update")[0].body["ts"],
            "1795000000.000002"
        );
        notifier.stop().await;
    }

    /// What a [`smtp_receiver`] got: the envelope's recipients and the message.
    #[derive(Clone, Debug, Default)]
    struct Mail {
        rcpt: Vec<String>,
        data: String,
    }

    /// A tiny SMTP server on port 0: greets, accepts EHLO, MAIL, RCPT and DATA, keeps each
    /// message.
    async fn smtp_receiver() -> (u16, Arc<Mutex<Vec<Mail>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails: Arc<Mutex<Vec<Mail>>> = Arc::default();
        let sink = mails.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let sink = sink.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    write.write_all(b"220 test ESMTP\r\n").await.unwrap();
                    let mut mail = Mail::default();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let upper = line.to_uppercase();
                        let answer: &[u8] =
                            if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                                b"250 test\r\n"
                            } else if upper.starts_with("RCPT TO:") {
                                mail.rcpt
                                    .push(line[8..].trim().trim_matches(['<', '>']).to_owned());
                                b"250 ok\r\n"
                            } else if upper == "DATA" {
                                write.write_all(b"354 go on\r\n").await.unwrap();
                                while let Ok(Some(data)) = lines.next_line().await {
                                    if data == "." {
                                        break;
                                    }
                                    mail.data.push_str(&data);
                                    mail.data.push('\n');
                                }
                                sink.lock().unwrap().push(std::mem::take(&mut mail));
                                b"250 queued\r\n"
                            } else if upper == "QUIT" {
                                let _ = write.write_all(b"221 bye\r\n").await;
                                return;
                            } else {
                                b"250 ok\r\n"
                            };
                        write.write_all(answer).await.unwrap();
                    }
                });
            }
        });
        (port, mails)
    }

    /// Undoes quoted-printable (soft breaks and `=XX`), enough to read a rendered email.
    fn unquote(text: &str) -> String {
        let joined = text.replace("=\n", "");
        let mut out = Vec::new();
        let bytes = joined.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'='
                && let Some(hex) = joined.get(i + 1..i + 3)
                && let Ok(byte) = u8::from_str_radix(hex, 16)
            {
                out.push(byte);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn approvers_without_chat_get_the_request_by_email() {
        let api = TestApi::new(Backend::Sqlite).await;
        let (port, mails) = smtp_receiver().await;
        let mailer = Mailer::new(&SmtpSettings {
            url: format!("smtp://127.0.0.1:{port}"),
            from: "latch <latch@example.com>".to_owned(),
            username: None,
            password: None,
        })
        .unwrap();
        let config = NotifyConfig {
            channels: HashMap::from([(
                "approvers".to_owned(),
                Channel::Email {
                    to: vec!["bob@example.com".to_owned(), "carol@example.com".to_owned()],
                },
            )]),
            routes: vec![route(&["request.created"], "approvers")],
            expiry_warning: Duration::from_secs(60),
            mailer: Some(mailer),
            ..Default::default()
        };
        let notifier = start(&api, config).await;
        let id = api.request_read("30m").await;
        until("the mail arrives", || async {
            !mails.lock().unwrap().is_empty()
        })
        .await;
        let mail = mails.lock().unwrap()[0].clone();
        assert_eq!(mail.rcpt, ["bob@example.com", "carol@example.com"]);
        assert!(
            mail.data
                .contains("Subject: [latch] Access request: payments-db (read)"),
            "{}",
            mail.data
        );
        assert!(
            mail.data.contains("From: latch <latch@example.com>"),
            "{}",
            mail.data
        );
        let body = unquote(&mail.data);
        assert!(
            body.contains("alice requests read on payments-db for 30m."),
            "{body}"
        );
        assert!(body.contains(&format!("latch approve {id}")), "{body}");
        // The relay has the mail before the notifier marks it sent.
        until("the mail is marked sent", || async {
            api.store.notifications("sent", 10).await.unwrap().len() == 1
        })
        .await;
        notifier.stop().await;
    }
}
