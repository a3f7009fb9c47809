//! Slack's Web API with a bot token: `chat.postMessage` for a channel's messages (its answer
//! gives the message's `ts`) and `chat.update` to replace a message once its request is decided.
//! The request bodies are pure ([`post_message_body`], [`update_body`]); [`post_message`] and
//! [`update_message`] send them.
//!
//! Slack answers a call HTTP 200 with `{"ok": true, …}` or `{"ok": false, "error": "…"}`: an
//! `ok: false` is a failure like an HTTP error ([`DeliveryError::Slack`]). The token travels
//! only in the `Authorization` header and is never part of an error.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use serde_json::{Value, json};

use crate::deliver::{DeliveryError, answer};
use crate::render::truncate;

/// Where a message was posted, as `chat.postMessage` answered: what `chat.update` needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlackPosted {
    /// Slack's channel id (`C0123ABCD`).
    pub channel: String,
    /// The message's timestamp, Slack's id of a message within its channel.
    pub ts: String,
}

/// Slack's errors worth trying again: rate limiting and Slack's own trouble.
const TRANSIENT: [&str; 5] = [
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

/// Whether an `ok: false` error may go away by itself.
pub(crate) fn transient(error: &str) -> bool {
    TRANSIENT.contains(&error)
}

/// What to do about an `ok: false` error, for the dead-letter record.
pub(crate) fn hint(error: &str) -> &'static str {
    match error {
        "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive" => {
            " (the bot token is not valid: check the channel's `bot_token_env` or `bot_token_file`)"
        }
        "channel_not_found" => {
            " (the bot sees no channel with the configured `channel_id`: check the id, and invite \
             the bot to a private channel)"
        }
        "not_in_channel" => {
            " (the bot is not a member of the channel: invite it, e.g. `/invite @latch`)"
        }
        "missing_scope" => " (the bot token lacks the `chat:write` scope)",
        "is_archived" => " (the channel is archived)",
        "message_not_found" | "cant_update_message" => {
            " (the message is gone, or was not posted by this bot)"
        }
        "ratelimited" => " (rate limited; latch tries again later)",
        _ => "",
    }
}

/// The `chat.postMessage` body: `rendered` (a [`crate::render::slack::message`] or digest, with
/// `text` and `blocks`) for `channel_id`.
pub fn post_message_body(channel_id: &str, rendered: &Value) -> Value {
    json!({
        "channel": channel_id,
        "text": rendered.get("text").cloned().unwrap_or(Value::Null),
        "blocks": rendered.get("blocks").cloned().unwrap_or_else(|| json!([])),
        "unfurl_links": false,
    })
}

/// The `chat.update` body: the message `ts` of `channel` replaced by `rendered` (a
/// [`crate::render::slack::update`]; its `replace_original`, meant for a `response_url`, is
/// left out).
pub fn update_body(channel: &str, ts: &str, rendered: &Value) -> Value {
    json!({
        "channel": channel,
        "ts": ts,
        "text": rendered.get("text").cloned().unwrap_or(Value::Null),
        "blocks": rendered.get("blocks").cloned().unwrap_or_else(|| json!([])),
    })
}

/// Calls `method` of the Web API at `api_base` with `body` and `token`; the answer when Slack
/// said `ok: true`.
async fn call(
    client: &reqwest::Client,
    api_base: &str,
    token: &str,
    method: &str,
    body: &Value,
) -> Result<Value, DeliveryError> {
    let body = serde_json::to_vec(body).map_err(|err| DeliveryError::Invalid(err.to_string()))?;
    let request = client
        .post(format!("{api_base}/{method}"))
        .header(CONTENT_TYPE, "application/json; charset=utf-8")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(body);
    let response = answer(request).await?;
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = response
        .text()
        .await
        .map_err(|err| DeliveryError::Transport(err.without_url().to_string()))?;
    let answer: Value = serde_json::from_str(&text).map_err(|_| DeliveryError::Slack {
        error: format!("unreadable answer `{}`", truncate(text.trim(), 200)),
        retry_after: None,
    })?;
    if answer.get("ok").and_then(Value::as_bool) == Some(true) {
        return Ok(answer);
    }
    let error = answer
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("no error given");
    Err(DeliveryError::Slack {
        error: truncate(error, 100),
        retry_after,
    })
}

/// Posts `rendered` to `channel_id` with `chat.postMessage`; where Slack put it.
pub async fn post_message(
    client: &reqwest::Client,
    api_base: &str,
    token: &str,
    channel_id: &str,
    rendered: &Value,
) -> Result<SlackPosted, DeliveryError> {
    let body = post_message_body(channel_id, rendered);
    let answer = call(client, api_base, token, "chat.postMessage", &body).await?;
    let field = |name: &str| answer.get(name).and_then(Value::as_str).map(str::to_owned);
    match (field("channel"), field("ts")) {
        (Some(channel), Some(ts)) => Ok(SlackPosted { channel, ts }),
        _ => Err(DeliveryError::Slack {
            error: "an answer without `channel` and `ts`".to_owned(),
            retry_after: None,
        }),
    }
}

/// Replaces the message `ts` of `channel` by `rendered` with `chat.update`.
pub async fn update_message(
    client: &reqwest::Client,
    api_base: &str,
    token: &str,
    channel: &str,
    ts: &str,
    rendered: &Value,
) -> Result<(), DeliveryError> {
    let body = update_body(channel, ts, rendered);
    call(client, api_base, token, "chat.update", &body)
        .await
        .map(|_| ())
}
