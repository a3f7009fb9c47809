//! Notifications: one task reads the ledger as it grows (from a cursor kept in the store),
//! turns events into notices (`latch-notify`), routes and renders them, and queues them in the
//! outbox; another delivers what is due, retrying with backoff and dead-lettering after the last
//! attempt. Delivery never blocks the lifecycle, and a channel that is down loses nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use latch_core::{AccessRequest, Catalog, RequestState, Timestamp};
use latch_notify::{Channel, Notice, NoticeContext, Rendered, Route};
use latch_store::{OutboxItem, RequestFilter, StoreError};
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
    /// Slack's signing secret: without it, the interactivity endpoint refuses everything.
    pub slack_signing_secret: Option<String>,
    /// Slack user id → latch user, for approvals from Slack buttons.
    pub slack_users: HashMap<String, String>,
}

/// Events read per store call.
const PAGE: u32 = 1000;

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

fn queue(notice: &Notice, config: &NotifyConfig, catalog: &Catalog, items: &mut Vec<OutboxItem>) {
    for name in latch_notify::route(notice, &config.routes, catalog) {
        let Some(channel) = config.channels.get(&name) else {
            continue;
        };
        let rendered = latch_notify::render(notice, channel);
        match serde_json::to_string(&rendered) {
            Ok(payload) => items.push(OutboxItem {
                notice_id: notice.id.clone(),
                channel: name,
                payload,
            }),
            Err(err) => tracing::warn!(%err, notice = %notice.id, "cannot render a notice"),
        }
    }
}

/// Reads new events into the outbox; also queues expiry warnings.
async fn enqueue_once(
    state: &AppState,
    config: &NotifyConfig,
    cursor: &mut u64,
) -> Result<(), StoreError> {
    let catalog = state.catalog.get();
    loop {
        let page = state.store.events(*cursor, PAGE).await?;
        let Some((last, _)) = page.last() else {
            break;
        };
        let last_seq = last.seq;
        let mut items = Vec::new();
        let mut requests: HashMap<String, Option<AccessRequest>> = HashMap::new();
        for (event, _) in &page {
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
            }
        }
        state
            .store
            .enqueue_notifications(items, last_seq, state.clock.now())
            .await?;
        *cursor = last_seq;
        if page.len() < PAGE as usize {
            break;
        }
    }
    // Grants ending within the warning period: each warned once (the outbox keys it).
    let now = state.clock.now();
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
    let mut items = Vec::new();
    for request in &granted {
        let ending_soon = request
            .grant
            .as_ref()
            .is_some_and(|g| g.expires_at.millis_since(now) <= warn_ms);
        if ending_soon
            && let Some(notice) = Notice::grant_expiring(request, now, config.base_url.as_deref())
        {
            queue(&notice, config, &catalog, &mut items);
        }
    }
    if !items.is_empty() {
        state
            .store
            .enqueue_notifications(items, *cursor, now)
            .await?;
    }
    Ok(())
}

/// Sends what is due; returns how many were attempted.
async fn deliver_once(
    state: &AppState,
    config: &NotifyConfig,
    client: &reqwest::Client,
) -> Result<usize, StoreError> {
    let now = state.clock.now();
    let due = state.store.due_notifications(now, 50).await?;
    for row in &due {
        let outcome = match (
            config.channels.get(&row.channel),
            serde_json::from_str::<Rendered>(&row.payload),
        ) {
            (None, _) => Err((
                format!("channel `{}` is no longer configured", row.channel),
                None,
            )),
            (_, Err(err)) => Err((format!("unreadable message: {err}"), None)),
            (Some(channel), Ok(rendered)) => {
                match latch_notify::deliver(client, channel, &rendered).await {
                    Ok(()) => Ok(()),
                    Err(err) => {
                        let attempt = row.attempts.saturating_add(1);
                        let next = (err.is_retryable() && attempt < latch_notify::MAX_ATTEMPTS)
                            .then(|| {
                                let delay = latch_notify::retry::next_delay(
                                    attempt,
                                    rand::random::<f64>(),
                                    err.retry_after(),
                                );
                                Timestamp::from_millis(now.as_millis().saturating_add(
                                    i64::try_from(delay.as_millis()).unwrap_or(i64::MAX),
                                ))
                            });
                        if next.is_none() {
                            tracing::warn!(id = %row.id, %err, "notification dead-lettered");
                        }
                        Err((err.to_string(), next))
                    }
                }
            }
        };
        state
            .store
            .notification_attempted(&row.id, state.clock.now(), outcome)
            .await?;
    }
    Ok(due.len())
}

/// Runs the notifier until `shutdown`: the queueing side and the delivery side.
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
                    let head = state.store.counts().await?.events;
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
    let delivery = {
        let (state, config, shutdown) = (state.clone(), config.clone(), shutdown.clone());
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
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            }
        })
    };
    loop {
        if let Err(err) = enqueue_once(&state, &config, &mut cursor).await {
            tracing::warn!(%err, "notifications could not be queued; retrying");
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
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
