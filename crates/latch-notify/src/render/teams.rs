//! Microsoft Teams messages: one Adaptive Card (schema 1.4, what Teams renders) per message.

use serde_json::{Value, json};

use super::{DIGEST_LISTED, truncate};
use crate::{Notice, Severity};

const CARD_SCHEMA: &str = "http://adaptivecards.io/schemas/adaptive-card.json";

fn wrap_card(body: Vec<Value>, actions: Vec<Value>) -> Value {
    let mut content = json!({
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    });
    if !actions.is_empty()
        && let Some(map) = content.as_object_mut()
    {
        map.insert("actions".to_owned(), Value::Array(actions));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": content,
        }],
    })
}

fn text(text: &str) -> Value {
    json!({ "type": "TextBlock", "text": text, "wrap": true })
}

/// The card for `notice`: headline (coloured by severity), summary, facts, the quoted reason or
/// comment, and a link to the request when the server's address is known.
pub fn card(notice: &Notice) -> Value {
    let color = match notice.severity {
        Severity::Info => "Default",
        Severity::Warning => "Warning",
        Severity::High | Severity::Critical => "Attention",
    };
    let mut body = vec![
        json!({
            "type": "TextBlock",
            "text": notice.headline(),
            "size": "Large",
            "weight": "Bolder",
            "color": color,
            "wrap": true,
        }),
        text(&notice.summary()),
    ];
    let facts: Vec<Value> = notice
        .facts()
        .into_iter()
        .map(|(title, value)| json!({ "title": title, "value": truncate(&value, 2000) }))
        .collect();
    if !facts.is_empty() {
        body.push(json!({ "type": "FactSet", "facts": facts }));
    }
    if let Some((label, detail)) = notice.detail() {
        body.push(json!({ "type": "TextBlock", "text": label, "weight": "Bolder", "wrap": true }));
        body.push(text(&truncate(&detail, 4000)));
    }
    body.push(json!({
        "type": "TextBlock",
        "text": format!("latch · {} · {}", notice.severity, notice.id),
        "isSubtle": true,
        "size": "Small",
        "wrap": true,
    }));
    let actions = match &notice.url {
        Some(url) => {
            let title = if notice.decision_request_id().is_some() {
                "Review in latch"
            } else {
                "Open in latch"
            };
            vec![json!({ "type": "Action.OpenUrl", "title": title, "url": url })]
        }
        None => Vec::new(),
    };
    wrap_card(body, actions)
}

/// Several notices in one card: a headline and one line each.
pub fn digest(notices: &[Notice]) -> Value {
    let mut body = vec![json!({
        "type": "TextBlock",
        "text": format!("latch: {} notifications", notices.len()),
        "size": "Large",
        "weight": "Bolder",
        "wrap": true,
    })];
    for notice in notices.iter().take(DIGEST_LISTED) {
        body.push(text(&format!(
            "**{}**: {}",
            notice.headline(),
            truncate(&notice.summary(), 300)
        )));
    }
    if notices.len() > DIGEST_LISTED {
        body.push(text(&format!(
            "…and {} more",
            notices.len() - DIGEST_LISTED
        )));
    }
    wrap_card(body, Vec::new())
}
