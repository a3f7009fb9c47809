//! Slack Block Kit messages (for incoming webhooks and `chat.postMessage` alike), and the
//! replacement message posted to an interaction's `response_url` or sent with `chat.update` once
//! a request is decided.
//!
//! Everything people typed (reasons, comments, names) is escaped for mrkdwn (`&`, `<`, `>`), so a
//! reason cannot mention `@channel` or disguise a link. Slack's limits are respected by
//! truncation: header 150 characters, section text 3000, a field 2000, ten fields per section.

use serde_json::{Value, json};

use super::{DIGEST_LISTED, truncate};
use crate::notice::What;
use crate::{Notice, Severity};

/// The `action_id` prefix of the Approve button; the request id follows.
pub const APPROVE_ACTION: &str = "latch_approve:";
/// The `action_id` prefix of the Deny button; the request id follows.
pub const DENY_ACTION: &str = "latch_deny:";

const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
const FIELD_MAX: usize = 2000;
const FIELDS_PER_SECTION: usize = 10;

/// Escapes `text` for mrkdwn, cut so that the escaped text has at most `max` characters.
fn escape(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len());
    let mut count = 0;
    for ch in text.chars() {
        let piece = match ch {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            _ => "",
        };
        let width = if piece.is_empty() { 1 } else { piece.len() };
        // Keep one character for the ellipsis.
        if count + width > max.saturating_sub(1) {
            out.push('…');
            return out;
        }
        if piece.is_empty() {
            out.push(ch);
        } else {
            out.push_str(piece);
        }
        count += width;
    }
    out
}

fn mrkdwn(text: String) -> Value {
    json!({ "type": "mrkdwn", "text": text })
}

fn plain(text: &str) -> Value {
    json!({ "type": "plain_text", "text": text, "emoji": true })
}

fn header(notice: &Notice, headline: &str) -> Value {
    let mark = match notice.severity {
        Severity::Info => "",
        Severity::Warning => ":warning: ",
        Severity::High | Severity::Critical => ":rotating_light: ",
    };
    json!({
        "type": "header",
        "text": plain(&truncate(&format!("{mark}{headline}"), HEADER_MAX)),
    })
}

fn section(text: String) -> Value {
    json!({ "type": "section", "text": mrkdwn(text) })
}

/// The facts as sections of at most ten two-column fields.
fn fields(facts: &[(&'static str, String)]) -> Vec<Value> {
    facts
        .chunks(FIELDS_PER_SECTION)
        .map(|chunk| {
            let fields: Vec<Value> = chunk
                .iter()
                .map(|(label, value)| {
                    mrkdwn(format!(
                        "*{label}*\n{}",
                        escape(value, FIELD_MAX - label.len() - 3)
                    ))
                })
                .collect();
            json!({ "type": "section", "fields": fields })
        })
        .collect()
}

/// `*Reason*` and the text quoted below it.
fn quoted(label: &str, text: &str) -> Value {
    let escaped = escape(text, SECTION_MAX - label.len() - 200);
    let quoted: Vec<String> = escaped.lines().map(|line| format!(">{line}")).collect();
    section(format!("*{label}*\n{}", quoted.join("\n")))
}

fn context(notice: &Notice) -> Value {
    let mut parts = vec![format!("latch · {} · {}", notice.severity, notice.id)];
    if let Some(url) = &notice.url {
        parts.push(format!("<{}|Open in latch>", escape(url, 1000)));
    }
    json!({ "type": "context", "elements": [mrkdwn(parts.join(" · "))] })
}

fn decision_buttons(request_id: &str) -> Value {
    let confirm = |title: &str, text: String, button: &str| {
        json!({
            "title": plain(title),
            "text": mrkdwn(text),
            "confirm": plain(button),
            "deny": plain("Cancel"),
        })
    };
    json!({
        "type": "actions",
        "block_id": "latch_decision",
        "elements": [
            {
                "type": "button",
                "text": plain("Approve"),
                "style": "primary",
                "action_id": format!("{APPROVE_ACTION}{request_id}"),
                "value": request_id,
                "confirm": confirm(
                    "Approve this request?",
                    format!("latch records your approval of `{}` in its ledger.", escape(request_id, 200)),
                    "Approve",
                ),
            },
            {
                "type": "button",
                "text": plain("Deny"),
                "style": "danger",
                "action_id": format!("{DENY_ACTION}{request_id}"),
                "value": request_id,
                "confirm": confirm(
                    "Deny this request?",
                    format!("latch records your denial of `{}` in its ledger.", escape(request_id, 200)),
                    "Deny",
                ),
            },
        ],
    })
}

/// The incoming-webhook payload for `notice`: a `text` fallback (notifications, screen readers)
/// and the blocks; Approve and Deny buttons when the request awaits a decision.
pub fn message(notice: &Notice) -> Value {
    let summary = notice.summary();
    let mut blocks = vec![
        header(notice, &notice.headline()),
        section(escape(&summary, SECTION_MAX)),
    ];
    blocks.extend(fields(&notice.facts()));
    if let Some((label, text)) = notice.detail() {
        blocks.push(quoted(label, &text));
    }
    if let Some(request_id) = notice.decision_request_id() {
        blocks.push(decision_buttons(request_id));
    }
    blocks.push(context(notice));
    json!({ "text": escape(&summary, SECTION_MAX), "blocks": blocks })
}

/// The message that replaces a request's Slack message (posted to the interaction's
/// `response_url`, or sent with `chat.update` by a bot-token channel) once `decision` happened
/// to it: the request as before, what became of it,
/// and no buttons, unless the request still awaits approvals (a partial approval or an
/// escalation). `None` for notices that are not about a request's decision.
pub fn update(decision: &Notice) -> Option<Value> {
    let facts = decision.request.as_ref()?;
    let status = match &decision.what {
        What::Approved {
            by,
            comment,
            partial,
        } => {
            let by = by.as_deref().unwrap_or("latch (policy)");
            let mut line = match partial {
                Some((have, need)) => format!(
                    ":ballot_box_with_check: Approved by *{}* ({have} of {need} approvals)",
                    escape(by, 200)
                ),
                None => format!(":white_check_mark: Approved by *{}*", escape(by, 200)),
            };
            if let Some(comment) = comment {
                line.push_str(&format!(
                    "\n>{}",
                    escape(comment, 2000).replace('\n', "\n>")
                ));
            }
            line
        }
        What::Denied { by, reason } => format!(
            ":no_entry: Denied by *{}*\n>{}",
            escape(by, 200),
            escape(reason, 2000).replace('\n', "\n>")
        ),
        What::Cancelled { by } => format!(":heavy_minus_sign: Cancelled by *{}*", escape(by, 200)),
        What::TimedOut => ":hourglass: Timed out: nobody decided in time".to_owned(),
        What::BreakGlass { by, reason } => format!(
            ":rotating_light: *{}* broke glass and granted it without approval\n>{}",
            escape(by, 200),
            escape(reason, 2000).replace('\n', "\n>")
        ),
        What::Escalated { level, to } if to.is_empty() => {
            format!(":arrow_up: Escalated to level {level} (no new approvers)")
        }
        What::Escalated { level, to } => format!(
            ":arrow_up: Escalated to {} (level {level})",
            escape(&to.join(", "), 1000)
        ),
        _ => return None,
    };
    let still_open = matches!(
        decision.what,
        What::Approved {
            partial: Some(_),
            ..
        } | What::Escalated { .. }
    );
    let headline = format!("Access request: {} ({})", facts.resource, facts.role);
    let request_line = format!(
        "{} requests {} on {} for {}",
        facts.requester, facts.role, facts.resource, facts.duration
    );
    let mut request_facts = vec![
        ("Requester", facts.requester.clone()),
        ("Resource", facts.resource.clone()),
        ("Role", facts.role.clone()),
        ("Duration", facts.duration.clone()),
    ];
    if let Some(ticket) = &facts.ticket {
        request_facts.push(("Ticket", ticket.clone()));
    }
    request_facts.push(("Request", facts.id.clone()));
    let mut blocks = vec![
        header(decision, &headline),
        section(escape(&request_line, SECTION_MAX)),
    ];
    blocks.extend(fields(&request_facts));
    blocks.push(quoted("Reason", &facts.reason));
    blocks.push(section(status));
    if still_open {
        blocks.push(decision_buttons(&facts.id));
    }
    blocks.push(context(decision));
    Some(json!({
        "replace_original": true,
        "text": escape(&decision.summary(), SECTION_MAX),
        "blocks": blocks,
    }))
}

/// Several notices in one message: a bulleted list, the first [`DIGEST_LISTED`] in full.
pub fn digest(notices: &[Notice]) -> Value {
    let title = format!("latch: {} notifications", notices.len());
    let mut lines: Vec<String> = notices
        .iter()
        .take(DIGEST_LISTED)
        .map(|notice| {
            format!(
                "• *{}*: {}",
                escape(&notice.headline(), 200),
                escape(&notice.summary(), 300)
            )
        })
        .collect();
    if notices.len() > DIGEST_LISTED {
        lines.push(format!("…and {} more", notices.len() - DIGEST_LISTED));
    }
    // 20 lines of at most ~510 characters: split into sections of at most 3000.
    let mut blocks = vec![json!({ "type": "header", "text": plain(&title) })];
    let mut current = String::new();
    for line in lines {
        if !current.is_empty() && current.len() + line.len() + 1 > SECTION_MAX {
            blocks.push(section(std::mem::take(&mut current)));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&line);
    }
    if !current.is_empty() {
        blocks.push(section(current));
    }
    json!({ "text": title, "blocks": blocks })
}
