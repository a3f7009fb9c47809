//! RFC 4180 CSV of access rows, safe to open in a spreadsheet.

use latch_core::Timestamp;
use std::borrow::Cow;

use crate::AccessRow;

const HEADER: [&str; 18] = [
    "request_id",
    "requester",
    "resource",
    "role",
    "reason",
    "ticket",
    "approvers",
    "requested_at",
    "decided_at",
    "granted_at",
    "ended_at",
    "duration_granted_secs",
    "duration_used_secs",
    "outcome",
    "break_glass",
    "sessions",
    "statements_by_class",
    "findings",
];

/// One CSV record: the fields, each quoted and formula-guarded as [`push_field`] does,
/// joined by commas and ended with CRLF. Every CSV latch writes goes through here.
pub fn csv_line<S: AsRef<str>>(out: &mut String, fields: &[S]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_field(out, field.as_ref());
    }
    out.push_str("\r\n");
}

/// Writes one field: a text a spreadsheet would run as a formula (starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return) gets a leading apostrophe, then a field holding a comma, a
/// quote, CR or LF is quoted with its quotes doubled.
fn push_field(out: &mut String, text: &str) {
    let guarded;
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        guarded = format!("'{text}");
        guarded.as_str()
    } else {
        text
    };
    if text.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

fn opt_time(at: Option<Timestamp>) -> String {
    at.map(|at| at.to_string()).unwrap_or_default()
}

fn opt_num(value: Option<u64>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

/// How approvers read in one cell: `bob (looks fine); carol`.
pub(crate) fn approvers_text(approvers: &[(String, Option<String>)]) -> String {
    approvers
        .iter()
        .map(|(who, comment)| match comment {
            Some(comment) => format!("{who} ({comment})"),
            None => who.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Statement counts in one cell: `read=3; write=1`.
pub(crate) fn statements_text(row: &AccessRow) -> String {
    row.statements_by_class
        .iter()
        .map(|(class, count)| format!("{class}={count}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The rows as CSV: one header row, CRLF line ends, UTF-8, times in RFC 3339 UTC, lists
/// joined with `; `.
pub fn to_csv(rows: &[AccessRow]) -> String {
    let mut out = String::with_capacity(rows.len() * 256);
    csv_header(&mut out);
    for row in rows {
        csv_row(&mut out, row);
    }
    out
}

/// The header line of [`to_csv`], for a writer that streams the rows with [`csv_row`].
pub fn csv_header(out: &mut String) {
    csv_line(out, &HEADER);
}

/// One row of [`to_csv`].
pub fn csv_row(out: &mut String, row: &AccessRow) {
    // Borrowed where the row already holds the text: this runs once per access.
    let fields: [Cow<'_, str>; 18] = [
        Cow::Borrowed(&row.request_id),
        Cow::Borrowed(&row.requester),
        Cow::Borrowed(&row.resource),
        Cow::Borrowed(&row.role),
        Cow::Borrowed(&row.reason),
        Cow::Borrowed(row.ticket.as_deref().unwrap_or_default()),
        Cow::Owned(approvers_text(&row.approvers)),
        Cow::Owned(row.requested_at.to_string()),
        Cow::Owned(opt_time(row.decided_at)),
        Cow::Owned(opt_time(row.granted_at)),
        Cow::Owned(opt_time(row.ended_at)),
        Cow::Owned(opt_num(row.duration_granted_secs)),
        Cow::Owned(opt_num(row.duration_used_secs)),
        Cow::Borrowed(&row.outcome),
        Cow::Borrowed(if row.break_glass { "true" } else { "false" }),
        Cow::Owned(row.sessions.to_string()),
        Cow::Owned(statements_text(row)),
        Cow::Owned(row.findings.join("; ")),
    ];
    csv_line(out, &fields);
}
