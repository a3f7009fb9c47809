//! A self-contained, printable HTML page of access rows for a reviewer who is not an engineer.

use std::fmt::Write as _;

use crate::AccessRow;
use crate::csv::{approvers_text, statements_text};

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `1h 30m`, `45m`, `20s`: how long, as a person says it.
pub(crate) fn human_duration(secs: Option<u64>) -> String {
    let Some(secs) = secs else {
        return "—".to_owned();
    };
    let (hours, minutes, seconds) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{minutes}m"),
        (_, 0) => format!("{hours}h"),
        _ => format!("{hours}h {minutes}m"),
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#111}\
h1{font-size:1.4em}p.summary{color:#444}\
table{border-collapse:collapse;width:100%;font-size:0.85em}\
th,td{border:1px solid #bbb;padding:4px 6px;text-align:left;vertical-align:top}\
th{background:#eee}tr.flagged td{background:#fff4e5}\
@media print{body{margin:0}tr{page-break-inside:avoid}}";

/// The rows as one HTML page: inline CSS, a summary line and a table; every text is escaped.
pub fn to_html(rows: &[AccessRow], title: &str) -> String {
    let title = escape(title);
    let flagged = rows
        .iter()
        .filter(|row| row.break_glass || !row.findings.is_empty())
        .count();
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n<p class=\"summary\">{} access requests, {flagged} needing attention (emergency access or audit findings, highlighted). Times are UTC.</p>\n<table>\n<thead><tr><th>Request</th><th>Who</th><th>What</th><th>Why</th><th>Approved by</th><th>Requested</th><th>Granted</th><th>Ended</th><th>Granted for</th><th>Used for</th><th>Outcome</th><th>Sessions</th><th>Statements</th><th>Findings</th></tr></thead>\n<tbody>\n",
        rows.len()
    );
    for row in rows {
        let class = if row.break_glass || !row.findings.is_empty() {
            " class=\"flagged\""
        } else {
            ""
        };
        let why = match &row.ticket {
            Some(ticket) => format!("{} (ticket {})", row.reason, ticket),
            None => row.reason.clone(),
        };
        let approvers = if row.break_glass {
            format!(
                "{} — emergency self-approval",
                approvers_text(&row.approvers)
            )
        } else {
            approvers_text(&row.approvers)
        };
        let cells = [
            row.request_id.clone(),
            row.requester.clone(),
            format!("{} on {}", row.role, row.resource),
            why,
            approvers,
            row.requested_at.to_string(),
            row.granted_at.map(|at| at.to_string()).unwrap_or_default(),
            row.ended_at.map(|at| at.to_string()).unwrap_or_default(),
            human_duration(row.duration_granted_secs),
            human_duration(row.duration_used_secs),
            row.outcome.clone(),
            row.sessions.to_string(),
            statements_text(row),
            row.findings.join("; "),
        ];
        let _ = write!(out, "<tr{class}>");
        for cell in cells {
            let _ = write!(out, "<td>{}</td>", escape(&cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</body>\n</html>\n");
    out
}
