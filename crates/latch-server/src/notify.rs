//! Notifications: one task reads the ledger as it grows (from a cursor kept in the store),
//! turns events into notices (`latch-notify`), routes and renders them, and queues them in the
//! outbox; its own timer adds what no event announces (expiry warnings, reminders, digests);
//! another task delivers what is due, in order per channel, retrying with backoff and
//! dead-lettering after the last attempt. Delivery never blocks the lifecycle, and a channel
//! that is down loses nothing.
//!
//! Delivery is at least once: a message is marked sent after the receiver accepted it, so a
//! crash between the two sends it again after the restart (the webhook body's `id` lets a
//! receiver drop the duplicate). Everything the timer sends is keyed in the outbox
//! (`exp_{grant}`, `rem_{request}_{round}`, `dig_{notice}`), so a restart never repeats it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use latch_core::{AccessRequest, Catalog, RequestState, Timestamp};
use latch_notify::{Channel, Digest, Notice, NoticeContext, Rendered, Route};
use latch_store::{OutboxItem, OutboxRow, RequestFilter, StoreError};
use tokio_util::sync::CancellationToken;

use crate::AppState;

/// Channels, routes and timing, from the config's `[notify]`.
#[derive(Clone, Default)]
pub struct NotifyConfig {
    pub channels: HashMap<String, Channel>,
    pub routes: Vec<Route>,
    /// Links in messages point here (`{base_url}/requests/{id}`).
    pub base_url: Option<String>,
    /// Grantees are warned this long before their grant ends.
    pub expiry_warning: Duration,
    /// Approvers are reminded of a request pending this long, and again every such interval;
    /// `None`: no reminders.
    pub reminder_after: Option<Duration>,
    /// Informational notices wait and go out together, one message per channel at most every
    /// this many minutes; 0: each at once.
    pub digest_minutes: u32,
    /// Slack's signing secret: without it, the interactivity endpoint refuses everything.
    pub slack_signing_secret: Option<String>,
    /// Slack user id → latch user, for approvals from Slack buttons.
    pub slack_users: HashMap<String, String>,
    /// The SMTP relay email channels send through; without it, email messages are
    /// dead-lettered with a message saying so.
    pub mailer: Option<latch_notify::Mailer>,
}

/// Events read per store call.
const PAGE: u32 = 1000;
/// How often the ledger is polled for new events.
const POLL: Duration = Duration::from_millis(100);
/// How often the timer looks for expiry warnings, reminders and digests to send.
const TIMER: Duration = Duration::from_secs(1);
/// Messages delivered per pass (over all channels).
const DELIVERY_BATCH: u32 = 200;
/// The outbox channel of Slack message replacements: not a configured channel (names cannot
/// hold `:`); each message carries its own `response_url`.
pub const SLACK_RESPONSE_CHANNEL: &str = "slack:response_url";
/// How long Slack accepts posts to an interaction's `response_url`.
const RESPONSE_URL_LIFETIME_MS: i64 = 30 * 60 * 1000;

/// Who may decide `request` under the built-in rule (named in its notice so that they know it
/// is theirs): the owner team's leads, the requester's manager, and whoever an escalation
/// brought in. Under Cedar policies this is the organisation's first guess, not the decision.
fn approvers(catalog: &Catalog, request: &AccessRequest) -> Vec<String> {
    let mut names: Vec<String> = catalog
        .users
        .keys()
        .filter(|user| catalog.may_approve(user, &request.requester, &request.resource))
        .cloned()
        .collect();
    for user in &request.escalated_to {
        if !names.contains(user) {
            names.push(user.clone());
        }
    }
    names.retain(|user| user != &request.requester);
    names
}

/// Routes `notice` and queues one message per channel: rendered, or held for the channel's
/// digest when digests are on and the notice can wait.
fn queue(notice: &Notice, config: &NotifyConfig, catalog: &Catalog, items: &mut Vec<OutboxItem>) {
    let held = config.digest_minutes > 0 && Digest::batches(notice);
    for name in latch_notify::route(notice, &config.routes, catalog) {
        let Some(channel) = config.channels.get(&name) else {
            continue;
        };
        let payload = if held {
            serde_json::to_string(notice)
        } else {
            serde_json::to_string(&latch_notify::render(notice, channel))
        };
        match payload {
            Ok(payload) => items.push(OutboxItem {
                notice_id: notice.id.clone(),
                channel: name,
                payload,
                held,
            }),
            Err(err) => tracing::warn!(%err, notice = %notice.id, "cannot render a notice"),
        }
    }
}

/// The replacement of a request's Slack messages once it is decided, wherever it was decided,
/// so that nobody clicks a stale button: on every bot-token channel, one `chat.update` of each
/// message with buttons it posted about the request (which ones is looked up at delivery,
/// after the channel's earlier messages); and once per `response_url` a click left (Slack
/// accepts them for 30 minutes), which is all an incoming webhook allows.
async fn queue_slack_updates(
    state: &AppState,
    config: &NotifyConfig,
    notice: &Notice,
    now: Timestamp,
    items: &mut Vec<OutboxItem>,
) -> Result<(), StoreError> {
    let Some(request) = &notice.request else {
        return Ok(());
    };
    let Some(body) = latch_notify::slack_update(notice) else {
        return Ok(());
    };
    let mut bots: Vec<&String> = config
        .channels
        .iter()
        .filter(|(_, channel)| matches!(channel, Channel::SlackBot { .. }))
        .map(|(name, _)| name)
        .collect();
    bots.sort();
    for name in bots {
        let rendered = Rendered::SlackUpdate {
            request_id: request.id.clone(),
            body: body.clone(),
        };
        match serde_json::to_string(&rendered) {
            Ok(payload) => items.push(OutboxItem {
                notice_id: format!("upd_{}", notice.id),
                channel: name.clone(),
                payload,
                held: false,
            }),
            Err(err) => tracing::warn!(%err, notice = %notice.id, "cannot render a Slack update"),
        }
    }
    let since = Timestamp::from_millis(now.as_millis().saturating_sub(RESPONSE_URL_LIFETIME_MS));
    for (index, response_url) in state
        .store
        .slack_responses(&request.id, since)
        .await?
        .into_iter()
        .enumerate()
    {
        let rendered = Rendered::SlackResponse {
            response_url,
            body: body.clone(),
        };
        match serde_json::to_string(&rendered) {
            Ok(payload) => items.push(OutboxItem {
                notice_id: format!("upd_{}_{index}", notice.id),
                channel: SLACK_RESPONSE_CHANNEL.to_owned(),
                payload,
                held: false,
            }),
            Err(err) => tracing::warn!(%err, notice = %notice.id, "cannot render a Slack update"),
        }
    }
    Ok(())
}

/// Reads new events into the outbox; returns how many were read.
async fn enqueue_events(
    state: &AppState,
    config: &NotifyConfig,
    cursor: &mut u64,
) -> Result<usize, StoreError> {
    let catalog = state.catalog.get();
    let mut read = 0;
    loop {
        let page = state.store.events(*cursor, PAGE).await?;
        let Some(last) = page.last() else {
            break;
        };
        let last_seq = last.event.seq;
        let now = state.clock.now();
        let mut items = Vec::new();
        let mut requests: HashMap<String, Option<AccessRequest>> = HashMap::new();
        for entry in &page {
            let event = &entry.event;
            let subject = &event.event.subject;
            let request = if subject.starts_with("req_") {
                if !requests.contains_key(subject) {
                    let found = state.store.request(subject).await?;
                    requests.insert(subject.clone(), found);
                }
                requests.get(subject).cloned().flatten()
            } else {
                None
            };
            let context = NoticeContext {
                approvers: request
                    .as_ref()
                    .map(|r| approvers(&catalog, r))
                    .unwrap_or_default(),
                request,
                base_url: config.base_url.clone(),
            };
            if let Some(notice) = Notice::from_event(event, &context) {
                queue(&notice, config, &catalog, &mut items);
                queue_slack_updates(state, config, &notice, now, &mut items).await?;
            }
            // A review period closed: each resource's owners hear about their section.
            for notice in crate::review::due_notices(event, &catalog).await {
                queue(&notice, config, &catalog, &mut items);
            }
        }
        state
            .store
            .enqueue_notifications(items, last_seq, now)
            .await?;
        *cursor = last_seq;
        read += page.len();
        if page.len() < PAGE as usize {
            break;
        }
    }
    Ok(read)
}

/// What the timer queued before, so that it does not render the same warning every second
/// (the outbox's key is what makes it once; this only saves work).
#[derive(Default)]
struct Timed {
    queued: HashSet<String>,
}

/// The timer's work: expiry warnings, reminders, and digests that fell due. Idempotent: each
/// message has a stable id, and the outbox keeps one message per id and channel.
async fn enqueue_timed(
    state: &AppState,
    config: &NotifyConfig,
    cursor: u64,
    timed: &mut Timed,
) -> Result<(), StoreError> {
    let catalog = state.catalog.get();
    let now = state.clock.now();
    let mut items = Vec::new();
    // Grants ending within the warning period: each warned once.
    let warn_ms = i64::try_from(config.expiry_warning.as_millis()).unwrap_or(i64::MAX);
    let granted = state
        .store
        .requests(&RequestFilter {
            states: vec![RequestState::Granted],
            with_grant: true,
            limit: 1000,
            ..Default::default()
        })
        .await?;
    for request in &granted {
        let ending_soon = request
            .grant
            .as_ref()
            .is_some_and(|g| g.expires_at.millis_since(now) <= warn_ms);
        if ending_soon
            && let Some(notice) = Notice::grant_expiring(request, now, config.base_url.as_deref())
            && timed.queued.insert(notice.id.clone())
        {
            queue(&notice, config, &catalog, &mut items);
        }
    }
    // Requests pending for another whole `reminder_after`: one reminder per round.
    if let Some(after) = config.reminder_after {
        let after_ms = i64::try_from(after.as_millis()).unwrap_or(i64::MAX).max(1);
        let pending = state
            .store
            .requests(&RequestFilter {
                states: vec![RequestState::Pending],
                limit: 1000,
                ..Default::default()
            })
            .await?;
        for request in &pending {
            let round = now.millis_since(request.created_at) / after_ms;
            let Ok(round) = u64::try_from(round) else {
                continue;
            };
            if round == 0 {
                continue;
            }
            if let Some(notice) = Notice::reminder(
                request,
                approvers(&catalog, request),
                round,
                now,
                config.base_url.as_deref(),
            ) && timed.queued.insert(notice.id.clone())
            {
                queue(&notice, config, &catalog, &mut items);
            }
        }
    }
    if !items.is_empty() {
        state
            .store
            .enqueue_notifications(items, cursor, now)
            .await?;
    }
    if config.digest_minutes > 0 {
        send_digests(state, config, now).await?;
    }
    Ok(())
}

/// Turns each channel's held notices into one digest message once the oldest has waited
/// `digest_minutes` (or enough have piled up), in the transaction that releases them.
async fn send_digests(
    state: &AppState,
    config: &NotifyConfig,
    now: Timestamp,
) -> Result<(), StoreError> {
    let interval_ms = i64::from(config.digest_minutes).saturating_mul(60_000);
    let mut by_channel: BTreeMap<String, Vec<OutboxRow>> = BTreeMap::new();
    for row in state.store.held_notifications().await? {
        by_channel.entry(row.channel.clone()).or_default().push(row);
    }
    for (name, rows) in by_channel {
        let Some(first) = rows.first() else { continue };
        let due = now.millis_since(first.created_at) >= interval_ms || rows.len() >= 200;
        if !due {
            continue;
        }
        let ids: Vec<String> = rows.iter().map(|row| row.id.clone()).collect();
        let notices: Vec<Notice> = rows
            .iter()
            .filter_map(|row| match serde_json::from_str::<Notice>(&row.payload) {
                Ok(notice) => Some(notice),
                Err(err) => {
                    tracing::warn!(%err, id = %row.id, "a held notice is unreadable; dropped from the digest");
                    None
                }
            })
            .collect();
        let payload = match config.channels.get(&name) {
            Some(channel) if !notices.is_empty() => {
                serde_json::to_string(&latch_notify::render_digest(&notices, channel))
            }
            // A channel removed by a reload, or nothing readable: release the held rows.
            _ => Ok(String::new()),
        };
        let payload = match payload {
            Ok(payload) => payload,
            Err(err) => {
                tracing::warn!(%err, channel = %name, "cannot render a digest");
                continue;
            }
        };
        let item = OutboxItem {
            notice_id: format!("dig_{}", first.notice_id),
            channel: name,
            payload,
            held: false,
        };
        state.store.digest_notifications(&ids, item, now).await?;
    }
    Ok(())
}

/// How long to wait before trying a message again when the store could not be read.
const STORE_RETRY_MS: i64 = 5_000;

/// Sends one message; `Err((error, next))` as [`latch_store::Store::notification_attempted`]
/// takes it.
async fn deliver_row(
    state: &AppState,
    config: &NotifyConfig,
    client: &reqwest::Client,
    row: &OutboxRow,
    now: Timestamp,
) -> Result<(), (String, Option<Timestamp>)> {
    let rendered = serde_json::from_str::<Rendered>(&row.payload)
        .map_err(|err| (format!("unreadable message: {err}"), None))?;
    let result = match (config.channels.get(&row.channel), &rendered) {
        (
            Some(Channel::SlackBot {
                token,
                channel_id,
                api_base,
            }),
            Rendered::SlackPost { request_id, body },
        ) => {
            match latch_notify::slack_api::post_message(client, api_base, token, channel_id, body)
                .await
            {
                Ok(posted) => {
                    if let Some(request_id) = request_id
                        && let Err(err) = state
                            .store
                            .record_slack_message(
                                request_id,
                                &row.channel,
                                &posted.channel,
                                &posted.ts,
                                now,
                            )
                            .await
                    {
                        // Posting again would leave a second message: this one stays as it is.
                        tracing::warn!(%err, id = %row.id, "cannot remember a Slack message; it will not be updated");
                    }
                    Ok(())
                }
                Err(err) => Err(err),
            }
        }
        (
            Some(Channel::SlackBot {
                token, api_base, ..
            }),
            Rendered::SlackUpdate { request_id, body },
        ) => {
            let messages = state
                .store
                .slack_messages(request_id, &row.channel)
                .await
                .map_err(|err| {
                    (
                        format!("cannot read the Slack messages to update: {err}"),
                        Some(Timestamp::from_millis(
                            now.as_millis().saturating_add(STORE_RETRY_MS),
                        )),
                    )
                })?;
            let mut result = Ok(());
            for (slack_channel, ts) in &messages {
                let updated = latch_notify::slack_api::update_message(
                    client,
                    api_base,
                    token,
                    slack_channel,
                    ts,
                    body,
                )
                .await;
                match updated {
                    // Someone deleted the message: nothing is left to update.
                    Err(latch_notify::DeliveryError::Slack { error, .. })
                        if error == "message_not_found" => {}
                    Err(err) => {
                        result = Err(err);
                        break;
                    }
                    Ok(()) => {}
                }
            }
            result
        }
        (_, Rendered::SlackResponse { .. }) => {
            // The URL travels with the message; any channel will do for the call.
            let any = Channel::Email { to: Vec::new() };
            latch_notify::deliver(client, &any, &rendered).await
        }
        (None, _) => {
            return Err((
                format!("channel `{}` is no longer configured", row.channel),
                None,
            ));
        }
        (Some(Channel::Email { to }), Rendered::Email { subject, text }) => match &config.mailer {
            Some(mailer) => mailer.send(to, subject, text).await,
            None => Err(latch_notify::DeliveryError::NoMailer),
        },
        (Some(channel), _) => latch_notify::deliver(client, channel, &rendered).await,
    };
    result.map_err(|err| {
        let attempt = row.attempts.saturating_add(1);
        let next = (err.is_retryable() && attempt < latch_notify::MAX_ATTEMPTS).then(|| {
            let delay =
                latch_notify::retry::next_delay(attempt, rand::random::<f64>(), err.retry_after());
            Timestamp::from_millis(
                now.as_millis()
                    .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
            )
        });
        if next.is_none() {
            tracing::warn!(id = %row.id, %err, "notification dead-lettered");
        }
        (err.to_string(), next)
    })
}

/// Sends what is due, channels side by side and each channel in order; returns how many were
/// attempted.
async fn deliver_once(
    state: &AppState,
    config: &NotifyConfig,
    client: &reqwest::Client,
) -> Result<usize, StoreError> {
    let now = state.clock.now();
    let due = state.store.due_notifications(now, DELIVERY_BATCH).await?;
    let mut by_channel: BTreeMap<&str, Vec<&OutboxRow>> = BTreeMap::new();
    for row in &due {
        by_channel
            .entry(row.channel.as_str())
            .or_default()
            .push(row);
    }
    let lanes = by_channel.into_values().map(|rows| async move {
        let mut outcomes = Vec::new();
        for row in rows {
            let outcome = deliver_row(state, config, client, row, now).await;
            // INVARIANT: a channel's later message never overtakes one that will be retried.
            let wait = matches!(outcome, Err((_, Some(_))));
            outcomes.push((row.id.clone(), outcome));
            if wait {
                break;
            }
        }
        outcomes
    });
    let outcomes: Vec<_> = futures_util::future::join_all(lanes)
        .await
        .into_iter()
        .flatten()
        .collect();
    let attempted = outcomes.len();
    state
        .store
        .notifications_attempted(outcomes, state.clock.now())
        .await?;
    Ok(attempted)
}

/// Runs the notifier until `shutdown`: the queueing side (events and timer) and the delivery
/// side.
pub async fn run(state: AppState, config: Arc<NotifyConfig>, shutdown: CancellationToken) {
    let client = match latch_notify::client() {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(%err, "notifications are off: cannot build an HTTP client");
            return;
        }
    };
    // A first start does not announce the past: it begins at the ledger's end.
    let mut cursor = loop {
        let start = async {
            match state.store.notify_cursor().await? {
                Some(cursor) => Ok::<u64, StoreError>(cursor),
                None => {
                    let head = state.store.ledger_size().await?;
                    state
                        .store
                        .enqueue_notifications(Vec::new(), head, state.clock.now())
                        .await?;
                    Ok(head)
                }
            }
        };
        match start.await {
            Ok(cursor) => break cursor,
            Err(err) => {
                tracing::warn!(%err, "notifier cannot start; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    let wake = Arc::new(tokio::sync::Notify::new());
    let delivery = {
        let (state, config, shutdown, wake) = (
            state.clone(),
            config.clone(),
            shutdown.clone(),
            wake.clone(),
        );
        tokio::spawn(async move {
            loop {
                let sent = match deliver_once(&state, &config, &client).await {
                    Ok(sent) => sent,
                    Err(err) => {
                        tracing::warn!(%err, "notifications could not be delivered; retrying");
                        0
                    }
                };
                if sent > 0 {
                    continue;
                }
                // Woken by new messages; otherwise retries come due with time.
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = wake.notified() => {}
                    () = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            }
        })
    };
    let mut timed = Timed::default();
    let mut next_timer = tokio::time::Instant::now();
    loop {
        match enqueue_events(&state, &config, &mut cursor).await {
            Ok(0) => {}
            Ok(_) => wake.notify_one(),
            Err(err) => tracing::warn!(%err, "notifications could not be queued; retrying"),
        }
        if tokio::time::Instant::now() >= next_timer {
            next_timer = tokio::time::Instant::now() + TIMER;
            match enqueue_timed(&state, &config, cursor, &mut timed).await {
                Ok(()) => wake.notify_one(),
                Err(err) => tracing::warn!(%err, "timed notifications could not be queued"),
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(POLL) => {}
        }
    }
    let _ = delivery.await;
}

/// Slack's answer body: an ephemeral message to the person who clicked.
fn slack_reply(text: impl Into<String>) -> axum::response::Response {
    use axum::response::IntoResponse;
    axum::Json(serde_json::json!({
        "response_type": "ephemeral",
        "replace_original": false,
        "text": text.into(),
    }))
    .into_response()
}

/// `POST /slack/interactions`: an Approve or Deny button clicked in Slack. The request must
/// carry Slack's signature (v0, within five minutes, never replayed); the clicking Slack user
/// must be linked to a latch user (`slack_id` in the config); the decision is then made as that
/// user, under the same policy as any other approval.
pub async fn slack_interactions(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let Some(config) = state.notify.clone() else {
        return (StatusCode::NOT_FOUND, "notifications are not configured\n").into_response();
    };
    let Some(secret) = config.slack_signing_secret.as_deref() else {
        return (
            StatusCode::NOT_FOUND,
            "Slack interactivity is off: set `notify.slack_signing_secret_env`\n",
        )
            .into_response();
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (timestamp, signature) = (
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
    );
    let now_unix = state.clock.now().as_millis() / 1000;
    if let Err(err) =
        latch_notify::verify_slack_request(secret, &timestamp, &signature, &body, now_unix)
    {
        tracing::warn!(%err, "refused a Slack interaction");
        return (StatusCode::UNAUTHORIZED, format!("{err}\n")).into_response();
    }
    let replayed = {
        let mut guard = state
            .slack_replays
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        guard.check(timestamp.parse().unwrap_or(0), &signature, now_unix)
    };
    if let Err(err) = replayed {
        return (StatusCode::UNAUTHORIZED, format!("{err}\n")).into_response();
    }
    let action = match latch_notify::parse_slack_action(&body) {
        Ok(action) => action,
        Err(err) => return (StatusCode::BAD_REQUEST, format!("{err}\n")).into_response(),
    };
    let Some(user) = config.slack_users.get(&action.slack_user).cloned() else {
        return slack_reply(
            "Your Slack account is not linked to a latch user (`slack_id` in latch's config), so latch cannot act for you.",
        );
    };
    let command = match action.action {
        latch_notify::Decision::Approve => latch_core::Command::Approve {
            approver: user.clone(),
            comment: Some("approved from Slack".to_owned()),
        },
        latch_notify::Decision::Deny => latch_core::Command::Deny {
            approver: user.clone(),
            reason: format!("denied from Slack by {user}"),
        },
    };
    // Remembered before deciding, so that the notifier, which announces the decision, finds
    // where to replace the message that was clicked.
    if !action.response_url.is_empty()
        && let Err(err) = state
            .store
            .record_slack_response(&action.request_id, &action.response_url, state.clock.now())
            .await
    {
        tracing::warn!(%err, "cannot remember a Slack response_url; the message will not be updated");
    }
    let verb = command.verb();
    let caller = crate::auth::Caller {
        user: user.clone(),
        token_id: "slack".to_owned(),
    };
    match crate::routes::execute_command(&state, &caller, &action.request_id, command).await {
        Ok(request) => slack_reply(format!(
            "Done: request {} is now {} ({verb} by {user}).",
            request.id,
            request.state.as_str()
        )),
        Err(err) => slack_reply(format!("latch refused: {err}")),
    }
}

fn notification_view(row: &latch_store::OutboxRow) -> latch_api::NotificationView {
    latch_api::NotificationView {
        id: row.id.clone(),
        notice_id: row.notice_id.clone(),
        channel: row.channel.clone(),
        status: row.status.clone(),
        attempts: row.attempts,
        created_at: row.created_at.to_string(),
        next_attempt: row.next_attempt.to_string(),
        last_error: row.last_error.clone(),
        sent_at: row.sent_at.map(|t| t.to_string()),
    }
}

async fn require_admin(
    state: &AppState,
    caller: &crate::auth::Caller,
    action: &str,
) -> Result<(), crate::error::ApiError> {
    crate::routes::require_auditor(state, caller, action, action, "/api/v1/notifications").await
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListNotificationsQuery {
    /// `pending`, `sent` or `dead` (default `dead`: the ones that need attention).
    status: Option<String>,
    /// At most this many, newest first (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Queued, sent or dead-lettered notifications (auditors and admins).
#[utoipa::path(get, path = "/api/v1/notifications", tag = "audit", params(ListNotificationsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "notifications, newest first", body = latch_api::NotificationList),
        (status = 400, description = "bad query", body = latch_api::ErrorBody),
        (status = 401, description = "no valid token", body = latch_api::ErrorBody),
        (status = 403, description = "not an auditor or admin", body = latch_api::ErrorBody),
        (status = 503, description = "database unavailable", body = latch_api::ErrorBody),
    ))]
pub(crate) async fn list_notifications(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: crate::auth::Caller,
    crate::extract::ApiQuery(query): crate::extract::ApiQuery<ListNotificationsQuery>,
) -> Result<axum::Json<latch_api::NotificationList>, crate::error::ApiError> {
    require_admin(&state, &caller, "read notifications").await?;
    let status = query.status.unwrap_or_else(|| "dead".to_owned());
    if !["pending", "sent", "dead"].contains(&status.as_str()) {
        return Err(crate::error::ApiError::BadRequest(format!(
            "unknown status `{}` (statuses: pending, sent, dead)",
            status.chars().take(40).collect::<String>()
        )));
    }
    let limit = crate::routes::check_limit(query.limit)?;
    let rows = state.store.notifications(&status, limit).await?;
    Ok(axum::Json(latch_api::NotificationList {
        notifications: rows.iter().map(notification_view).collect(),
    }))
}

/// Puts a dead-lettered notification back in the queue (auditors and admins).
#[utoipa::path(post, path = "/api/v1/notifications/retry", tag = "audit", request_body = latch_api::RetryBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "queued again", body = latch_api::RetryBody),
        (status = 400, description = "malformed body", body = latch_api::ErrorBody),
        (status = 401, description = "no valid token", body = latch_api::ErrorBody),
        (status = 403, description = "not an auditor or admin", body = latch_api::ErrorBody),
        (status = 404, description = "no such dead-lettered notification", body = latch_api::ErrorBody),
        (status = 503, description = "database unavailable", body = latch_api::ErrorBody),
    ))]
pub(crate) async fn retry_notification(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: crate::auth::Caller,
    crate::extract::ApiJson(body): crate::extract::ApiJson<latch_api::RetryBody>,
) -> Result<axum::Json<latch_api::RetryBody>, crate::error::ApiError> {
    require_admin(&state, &caller, "retry notifications").await?;
    if state
        .store
        .retry_notification(&body.id, state.clock.now())
        .await?
    {
        Ok(axum::Json(body))
    } else {
        Err(crate::error::ApiError::not_found(format!(
            "no dead-lettered notification `{}`",
            body.id.chars().take(120).collect::<String>()
        )))
    }
}
