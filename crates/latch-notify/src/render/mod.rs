//! Renderers: a notice in each channel's format. Pure functions of the notice; the webhook's
//! signature is added at delivery, so that a retried delivery carries a fresh timestamp.

pub mod email;
pub mod slack;
pub mod teams;
pub mod webhook;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Channel, Notice};

/// A notice rendered for one channel: what the outbox stores and [`crate::deliver`] sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum Rendered {
    /// The JSON body of a Slack, Teams or webhook POST.
    Json { body: Value },
    /// An email's subject and plain-text body.
    Email { subject: String, text: String },
    /// A replacement for a Slack message ([`slack::update`]), posted to the `response_url` of a
    /// click on it rather than to a channel's webhook.
    SlackResponse { response_url: String, body: Value },
    /// A message for a Slack channel with a bot token, sent with `chat.postMessage` (the body
    /// is [`slack::message`]'s). `request_id` names the request when the message has Approve
    /// and Deny buttons: the server then remembers the message's `ts` to replace it later.
    SlackPost {
        request_id: Option<String>,
        body: Value,
    },
    /// The replacement ([`slack::update`]) of every message with buttons a bot-token channel
    /// posted about `request_id`, each sent with `chat.update`. Which messages those are is
    /// looked up when it is delivered, after the channel's earlier messages, so that a message
    /// posted late (its channel was down) is replaced too.
    SlackUpdate { request_id: String, body: Value },
}

/// Renders `notice` in the format `channel` takes.
pub fn render(notice: &Notice, channel: &Channel) -> Rendered {
    match channel {
        Channel::Slack { .. } => Rendered::Json {
            body: slack::message(notice),
        },
        Channel::SlackBot { .. } => Rendered::SlackPost {
            request_id: notice.decision_request_id().map(str::to_owned),
            body: slack::message(notice),
        },
        Channel::Teams { .. } => Rendered::Json {
            body: teams::card(notice),
        },
        Channel::Webhook { .. } => Rendered::Json {
            body: webhook::body(notice),
        },
        Channel::Email { .. } => {
            let (subject, text) = email::render(notice);
            Rendered::Email { subject, text }
        }
    }
}

/// Renders several notices as one message (see [`crate::Digest`]); a single notice is rendered
/// as itself.
pub fn render_digest(notices: &[Notice], channel: &Channel) -> Rendered {
    if let [notice] = notices {
        return render(notice, channel);
    }
    match channel {
        Channel::Slack { .. } => Rendered::Json {
            body: slack::digest(notices),
        },
        Channel::SlackBot { .. } => Rendered::SlackPost {
            request_id: None,
            body: slack::digest(notices),
        },
        Channel::Teams { .. } => Rendered::Json {
            body: teams::digest(notices),
        },
        Channel::Webhook { .. } => Rendered::Json {
            body: webhook::digest(notices),
        },
        Channel::Email { .. } => {
            let (subject, text) = email::digest(notices);
            Rendered::Email { subject, text }
        }
    }
}

/// At most this many notices are listed in a digest message; the rest are counted.
pub const DIGEST_LISTED: usize = 20;

/// `text` cut to at most `max` characters, ending in `…` when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}
