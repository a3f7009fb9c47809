//! The generic webhook: a JSON body carrying the ledger event itself, signed with HMAC-SHA256.
//!
//! Headers: `X-Latch-Timestamp: <unix seconds>` and
//! `X-Latch-Signature: v1=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>`. A receiver recomputes
//! the signature over the raw body, compares in constant time, and refuses timestamps more than
//! five minutes away from its clock ([`crate::verify_webhook`] does all three); the body's `id` is
//! stable across retries, so receivers can drop duplicates.

use serde_json::{Value, json};

use crate::Notice;
use crate::notice::What;

/// The header with the signing time.
pub const TIMESTAMP_HEADER: &str = "X-Latch-Timestamp";
/// The header with the signature.
pub const SIGNATURE_HEADER: &str = "X-Latch-Signature";

/// The body for `notice`. `subject` and `summary` are the words people read; `event` is the
/// ledger event's canonical encoding as JSON (`null` for notices without one: expiry warnings
/// and findings, which carry a `finding` object instead).
pub fn body(notice: &Notice) -> Value {
    let event = notice
        .event
        .as_deref()
        .and_then(|canonical| serde_json::from_str::<Value>(canonical).ok())
        .unwrap_or(Value::Null);
    let mut body = json!({
        "type": notice.event_type,
        "id": notice.id,
        "at": notice.at.to_string(),
        "severity": notice.severity.as_str(),
        "subject": notice.headline(),
        "summary": notice.summary(),
        "event": event,
    });
    if let Some(map) = body.as_object_mut() {
        if let Some(url) = &notice.url {
            map.insert("url".to_owned(), json!(url));
        }
        if let What::FindingOpened(finding) = &notice.what {
            map.insert(
                "finding".to_owned(),
                json!({
                    "id": finding.id,
                    "checkpoint": finding.checkpoint,
                    "severity": finding.severity.as_str(),
                    "subject": finding.subject,
                    "summary": finding.summary,
                    "evidence": finding.evidence,
                }),
            );
        }
    }
    body
}

/// Several notices in one body: `{"type": "digest", "notices": [<body>, …]}`, every notice
/// included (machines read this one, so nothing is cut).
pub fn digest(notices: &[Notice]) -> Value {
    json!({
        "type": "digest",
        "id": format!(
            "dig_{}",
            notices.first().map(|n| n.id.as_str()).unwrap_or_default()
        ),
        "at": notices.last().map(|n| n.at.to_string()),
        "notices": notices.iter().map(body).collect::<Vec<_>>(),
    })
}
