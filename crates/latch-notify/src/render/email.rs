//! Email: a subject line and a plain-text body. Sending is not this crate's job: the server hands
//! both to its mail relay.

use super::{DIGEST_LISTED, truncate};
use crate::Notice;

/// `[latch] <headline>` and the body: summary, facts, the quoted reason, what to do, a link.
pub fn render(notice: &Notice) -> (String, String) {
    // A subject is one line: whatever people typed must not add headers.
    let subject = one_line(&format!("[latch] {}", notice.headline()));
    let summary = notice.summary();
    let stop = if summary.ends_with(['.', '!', '?']) {
        ""
    } else {
        "."
    };
    let mut text = format!("{summary}{stop}\n");
    let facts = notice.facts();
    if !facts.is_empty() {
        text.push('\n');
        let width = facts
            .iter()
            .map(|(label, _)| label.len())
            .max()
            .unwrap_or(0)
            + 1;
        for (label, value) in facts {
            text.push_str(&format!(
                "{:<width$} {}\n",
                format!("{label}:"),
                one_line(&value)
            ));
        }
    }
    if let Some((label, detail)) = notice.detail() {
        text.push_str(&format!("\n{label}:\n"));
        for line in detail.lines() {
            text.push_str(&format!("  {line}\n"));
        }
    }
    if let Some(id) = notice.decision_request_id() {
        text.push_str(&format!(
            "\nTo decide:\n  latch approve {id} --comment \"…\"\n  latch deny {id} --reason \"…\"\n"
        ));
    }
    if let Some(url) = &notice.url {
        text.push_str(&format!("\n{url}\n"));
    }
    text.push_str(&format!(
        "\n-- \nlatch · {} · {} · {}\n",
        notice.severity, notice.id, notice.at
    ));
    (subject, text)
}

/// One email for several notices.
pub fn digest(notices: &[Notice]) -> (String, String) {
    let subject = format!("[latch] {} notifications", notices.len());
    let mut text = String::new();
    for notice in notices.iter().take(DIGEST_LISTED) {
        text.push_str(&format!(
            "* {}: {}\n  {} · {}\n",
            one_line(&notice.headline()),
            one_line(&truncate(&notice.summary(), 300)),
            notice.at,
            notice.id
        ));
    }
    if notices.len() > DIGEST_LISTED {
        text.push_str(&format!("…and {} more\n", notices.len() - DIGEST_LISTED));
    }
    (subject, text)
}

fn one_line(text: &str) -> String {
    text.split(['\r', '\n'])
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
