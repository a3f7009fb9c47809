//! The analytics as plain text for a terminal: the figures, one line each, then the
//! recommendations with their evidence.

use std::fmt::Write;

use crate::Analytics;
use crate::model::{Count, human_secs};

/// Evidence ids shown per recommendation.
const EVIDENCE_IDS: usize = 5;

fn decisions(n: u64) -> String {
    if n == 1 {
        "1 decision".to_owned()
    } else {
        format!("{n} decisions")
    }
}

fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

fn counts(counts: &[Count]) -> String {
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts
        .iter()
        .map(|c| format!("{} {}", c.name, c.count))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A readable summary of `analytics`, ending with a newline.
pub fn summary_text(analytics: &Analytics) -> String {
    let a = analytics;
    let mut out = String::new();
    let mut filters = Vec::new();
    for (name, value) in [
        ("team", &a.team),
        ("resource", &a.resource),
        ("principal", &a.principal),
        ("approver", &a.approver),
    ] {
        if let Some(value) = value {
            filters.push(format!("{name} {value}"));
        }
    }
    let _ = writeln!(
        out,
        "latch analytics: requests created from {} to {}{}",
        a.from,
        a.to,
        if filters.is_empty() {
            String::new()
        } else {
            format!(" ({})", filters.join(", "))
        }
    );
    out.push('\n');
    let o = &a.outcomes;
    let line = |out: &mut String, label: &str, value: String| {
        let _ = writeln!(out, "{label:<18}{value}");
    };
    line(
        &mut out,
        "requests",
        format!(
            "{}: {} approved ({}), {} denied ({}), {} timed out ({}), {} cancelled ({}), {} pending",
            a.requests,
            o.approved,
            percent(o.approval_rate),
            o.denied,
            percent(o.denial_rate),
            o.timed_out,
            percent(o.timeout_rate),
            o.cancelled,
            percent(o.cancel_rate),
            o.pending
        ),
    );
    if o.break_glass > 0 {
        line(
            &mut out,
            "break glass",
            format!("{} self-approved in an emergency", o.break_glass),
        );
    }
    line(
        &mut out,
        "time to decision",
        a.latency.as_ref().map_or_else(
            || "no decisions".to_owned(),
            |s| {
                format!(
                    "median {}, p95 {}, max {} ({})",
                    human_secs(s.median_secs),
                    human_secs(s.p95_secs),
                    human_secs(s.max_secs),
                    decisions(s.decisions)
                )
            },
        ),
    );
    let d = &a.durations;
    line(
        &mut out,
        "grants",
        format!(
            "{} issued, {} ended, {} of them unused ({}); median {} granted, {} used",
            d.grants,
            d.ended_grants,
            d.unused_grants,
            percent(d.unused_rate),
            human_secs(d.granted_median_secs),
            human_secs(d.used_median_secs)
        ),
    );
    let classes: Vec<String> = a
        .usage
        .statements_by_class
        .iter()
        .map(|(class, n)| format!("{class} {n}"))
        .collect();
    line(
        &mut out,
        "sessions",
        format!(
            "{} sessions, {} statements{}",
            a.usage.sessions,
            a.usage.statements,
            if classes.is_empty() {
                String::new()
            } else {
                format!(" ({})", classes.join(", "))
            }
        ),
    );
    let findings: Vec<String> = a
        .findings
        .iter()
        .map(|f| format!("{} {} {}", f.checkpoint, f.severity, f.count))
        .collect();
    line(
        &mut out,
        "findings",
        if findings.is_empty() {
            "none".to_owned()
        } else {
            findings.join(", ")
        },
    );
    line(&mut out, "top requesters", counts(&a.top_requesters));
    line(&mut out, "top approvers", counts(&a.top_approvers));
    line(&mut out, "top resources", counts(&a.top_resources));

    if !a.latency_by_team.is_empty() {
        out.push_str("\ntime to decision per team:\n");
        for n in &a.latency_by_team {
            let _ = writeln!(
                out,
                "  {:<16}median {}, p95 {} ({})",
                n.name,
                human_secs(n.stats.median_secs),
                human_secs(n.stats.p95_secs),
                decisions(n.stats.decisions)
            );
        }
    }
    if !a.approvers.is_empty() {
        out.push_str("\napprovers:\n");
        for s in &a.approvers {
            let _ = writeln!(
                out,
                "  {:<16}{} approved, {} denied, median {}, p95 {}",
                s.approver,
                s.approvals,
                s.denials,
                human_secs(s.stats.median_secs),
                human_secs(s.stats.p95_secs)
            );
        }
    }
    if !a.ticket_mismatches.is_empty() {
        let _ = writeln!(
            out,
            "\ntickets not matching their resource's pattern ({}):",
            a.ticket_mismatches.len()
        );
        for t in &a.ticket_mismatches {
            let _ = writeln!(
                out,
                "  {} by {} on {}: {} (expected `{}`)",
                t.request_id,
                t.requester,
                t.resource,
                t.ticket
                    .as_deref()
                    .map_or_else(|| "no ticket".to_owned(), |t| format!("`{t}`")),
                t.pattern
            );
        }
    }

    out.push_str("\nrecommendations:\n");
    if a.recommendations.is_empty() {
        out.push_str("  none: nothing in this period crosses a threshold\n");
    }
    for (i, rec) in a.recommendations.iter().enumerate() {
        let ids = rec.evidence_ids();
        let more = ids.len().saturating_sub(EVIDENCE_IDS);
        let _ = writeln!(
            out,
            "  {}. {}\n     evidence: {}{}",
            i + 1,
            rec.summary(),
            ids.iter()
                .take(EVIDENCE_IDS)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
    }
    out
}
