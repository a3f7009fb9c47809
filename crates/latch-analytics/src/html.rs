//! The dashboard: an HTML fragment (no `<html>`, no `<body>`, no script) with the SVG charts,
//! the figures and the tables behind them, for the web UI to place in its page.

use std::fmt::Write;

use crate::model::human_secs;
use crate::svg::{Bar, bar_chart, escape, time_series};
use crate::{Analytics, LatencyStats, NamedLatency};

/// Rows shown in the grants table; the JSON has them all (up to its own limit).
const GRANT_ROWS: usize = 50;
/// Evidence ids shown per recommendation.
const EVIDENCE_IDS: usize = 10;

fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

fn stats_text(stats: Option<&LatencyStats>) -> String {
    stats.map_or_else(
        || "no decisions".to_owned(),
        |s| {
            format!(
                "median {}, p95 {} ({} decisions)",
                human_secs(s.median_secs),
                human_secs(s.p95_secs),
                s.decisions
            )
        },
    )
}

/// A table with a caption, column headers and already-escaped cells.
fn table(out: &mut String, caption: &str, headers: &[&str], rows: &[Vec<String>]) {
    let _ = write!(
        out,
        "<table><caption>{}</caption><thead><tr>",
        escape(caption)
    );
    for header in headers {
        let _ = write!(out, "<th scope=\"col\">{}</th>", escape(header));
    }
    out.push_str("</tr></thead><tbody>");
    if rows.is_empty() {
        let _ = write!(
            out,
            "<tr><td colspan=\"{}\">none in this period</td></tr>",
            headers.len()
        );
    }
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

fn latency_rows(named: &[NamedLatency]) -> Vec<Vec<String>> {
    named
        .iter()
        .map(|n| {
            vec![
                escape(&n.name),
                n.stats.decisions.to_string(),
                human_secs(n.stats.median_secs),
                human_secs(n.stats.p95_secs),
            ]
        })
        .collect()
}

fn code_list(items: &[String]) -> String {
    items
        .iter()
        .map(|item| format!("<code>{}</code>", escape(item)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The dashboard of `analytics` as an HTML fragment: every user-supplied text escaped.
pub fn dashboard_html(analytics: &Analytics) -> String {
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
            filters.push(format!("{name} <code>{}</code>", escape(value)));
        }
    }
    let _ = write!(
        out,
        "<section class=\"latch-analytics\" aria-labelledby=\"analytics-heading\">\
         <h2 id=\"analytics-heading\">Access analytics</h2>\
         <p>Requests created from <time datetime=\"{from}\">{from}</time> to \
         <time datetime=\"{to}\">{to}</time>{}.</p>",
        if filters.is_empty() {
            String::new()
        } else {
            format!(", {}", filters.join(", "))
        },
        from = a.from,
        to = a.to,
    );

    // The figures.
    let o = &a.outcomes;
    let d = &a.durations;
    let figures: [(&str, String); 10] = [
        ("Requests", a.requests.to_string()),
        (
            "Approved",
            format!("{} ({})", o.approved, percent(o.approval_rate)),
        ),
        (
            "Denied",
            format!("{} ({})", o.denied, percent(o.denial_rate)),
        ),
        (
            "Timed out",
            format!("{} ({})", o.timed_out, percent(o.timeout_rate)),
        ),
        (
            "Cancelled",
            format!("{} ({})", o.cancelled, percent(o.cancel_rate)),
        ),
        ("Pending", o.pending.to_string()),
        ("Time to decision", stats_text(a.latency.as_ref())),
        (
            "Granted vs used (median)",
            format!(
                "{} granted, {} used",
                human_secs(d.granted_median_secs),
                human_secs(d.used_median_secs)
            ),
        ),
        (
            "Unused grants",
            format!(
                "{} of {} ended ({})",
                d.unused_grants,
                d.ended_grants,
                percent(d.unused_rate)
            ),
        ),
        (
            "Sessions, statements",
            format!("{}, {}", a.usage.sessions, a.usage.statements),
        ),
    ];
    out.push_str("<dl class=\"figures\">");
    for (term, value) in figures {
        let _ = write!(out, "<div><dt>{term}</dt><dd>{}</dd></div>", escape(&value));
    }
    out.push_str("</dl>");

    // Recommendations.
    out.push_str("<h3>Recommendations</h3>");
    if a.recommendations.is_empty() {
        out.push_str("<p>None: nothing in this period crosses a threshold.</p>");
    } else {
        out.push_str("<ol class=\"recommendations\">");
        for rec in &a.recommendations {
            let ids = rec.evidence_ids();
            let shown: Vec<String> = ids.iter().take(EVIDENCE_IDS).cloned().collect();
            let more = ids.len().saturating_sub(EVIDENCE_IDS);
            let _ = write!(
                out,
                "<li data-kind=\"{}\"><p>{}</p><p>Evidence: {}{}</p></li>",
                rec.kind(),
                escape(&rec.summary()),
                code_list(&shown),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
        }
        out.push_str("</ol>");
    }

    // Charts.
    out.push_str("<h3>Charts</h3><div class=\"charts\">");
    let peak = a.volume.iter().max_by_key(|day| day.requests);
    let volume_desc = match peak {
        Some(peak) => format!(
            "{} requests over {} days; the busiest day, {}, had {}",
            a.requests,
            a.volume.len(),
            peak.date,
            peak.requests
        ),
        None => "no requests in this period".to_owned(),
    };
    let points: Vec<(String, u64)> = a
        .volume
        .iter()
        .map(|day| (day.date.clone(), day.requests))
        .collect();
    out.push_str(&time_series(
        "chart-volume",
        "Requests per day",
        &volume_desc,
        &points,
    ));
    let outcome_bars = [
        Bar::count("approved", o.approved),
        Bar::count("denied", o.denied),
        Bar::count("timed out", o.timed_out),
        Bar::count("cancelled", o.cancelled),
        Bar::count("pending", o.pending),
    ];
    out.push_str(&bar_chart(
        "chart-outcomes",
        "How requests ended",
        &describe(&outcome_bars),
        &outcome_bars,
    ));
    let team_bars: Vec<Bar> = a
        .latency_by_team
        .iter()
        .map(|n| Bar::secs(&n.name, n.stats.p95_secs))
        .collect();
    out.push_str(&bar_chart(
        "chart-latency-team",
        "Time to decision per team (95th percentile)",
        &describe(&team_bars),
        &team_bars,
    ));
    let class_bars: Vec<Bar> = a
        .usage
        .statements_by_class
        .iter()
        .map(|(class, count)| Bar::count(class, *count))
        .collect();
    out.push_str(&bar_chart(
        "chart-statements",
        "Statements by class",
        &describe(&class_bars),
        &class_bars,
    ));
    let resource_bars: Vec<Bar> = a
        .top_resources
        .iter()
        .map(|c| Bar::count(&c.name, c.count))
        .collect();
    out.push_str(&bar_chart(
        "chart-resources",
        "Most requested resources",
        &describe(&resource_bars),
        &resource_bars,
    ));
    let requester_bars: Vec<Bar> = a
        .top_requesters
        .iter()
        .map(|c| Bar::count(&c.name, c.count))
        .collect();
    out.push_str(&bar_chart(
        "chart-requesters",
        "Most frequent requesters",
        &describe(&requester_bars),
        &requester_bars,
    ));
    out.push_str("</div>");

    // Tables.
    out.push_str("<h3>Details</h3>");
    let approver_rows: Vec<Vec<String>> = a
        .approvers
        .iter()
        .map(|s| {
            vec![
                escape(&s.approver),
                s.approvals.to_string(),
                s.denials.to_string(),
                human_secs(s.stats.median_secs),
                human_secs(s.stats.p95_secs),
            ]
        })
        .collect();
    table(
        &mut out,
        "Approvers: decisions and time from request to their decision",
        &["approver", "approvals", "denials", "median", "p95"],
        &approver_rows,
    );
    table(
        &mut out,
        "Time to decision per team of the requester",
        &["team", "decisions", "median", "p95"],
        &latency_rows(&a.latency_by_team),
    );
    table(
        &mut out,
        "Time to decision per resource",
        &["resource", "decisions", "median", "p95"],
        &latency_rows(&a.latency_by_resource),
    );
    let finding_rows: Vec<Vec<String>> = a
        .findings
        .iter()
        .map(|f| {
            vec![
                escape(&f.checkpoint),
                escape(&f.severity),
                f.count.to_string(),
            ]
        })
        .collect();
    table(
        &mut out,
        "Findings by checkpoint and severity",
        &["checkpoint", "severity", "findings"],
        &finding_rows,
    );
    let ticket_rows: Vec<Vec<String>> = a
        .ticket_mismatches
        .iter()
        .map(|t| {
            vec![
                format!("<code>{}</code>", escape(&t.request_id)),
                escape(&t.requester),
                escape(&t.resource),
                t.ticket
                    .as_deref()
                    .map_or_else(|| "(none)".to_owned(), escape),
                format!("<code>{}</code>", escape(&t.pattern)),
            ]
        })
        .collect();
    table(
        &mut out,
        "Requests whose ticket does not match the resource's pattern",
        &["request", "requester", "resource", "ticket", "pattern"],
        &ticket_rows,
    );
    let grant_rows: Vec<Vec<String>> = a
        .grants
        .iter()
        .take(GRANT_ROWS)
        .map(|g| {
            let classes: Vec<String> = g
                .statements_by_class
                .iter()
                .map(|(class, n)| format!("{class}={n}"))
                .collect();
            let objects: Vec<String> = g
                .objects
                .iter()
                .map(|(object, n)| format!("{object} ({n})"))
                .collect();
            vec![
                format!("<code>{}</code>", escape(&g.grant_id)),
                escape(&g.requester),
                escape(&format!("{} on {}", g.role, g.resource)),
                format!(
                    "{} of {}",
                    human_secs(g.used_secs),
                    human_secs(g.granted_secs)
                ),
                escape(&g.outcome),
                g.sessions.to_string(),
                escape(&classes.join("; ")),
                escape(&objects.join("; ")),
            ]
        })
        .collect();
    table(
        &mut out,
        &format!(
            "What grants were used for ({} of {} grants, newest first)",
            a.grants.len().min(GRANT_ROWS),
            a.grants_total
        ),
        &[
            "grant",
            "requester",
            "access",
            "used",
            "ended",
            "sessions",
            "statements",
            "objects",
        ],
        &grant_rows,
    );
    let day_rows: Vec<Vec<String>> = a
        .volume
        .iter()
        .map(|day| {
            vec![
                escape(&day.date),
                day.requests.to_string(),
                day.approved.to_string(),
                day.denied.to_string(),
            ]
        })
        .collect();
    out.push_str("<details><summary>Requests per day, as a table</summary>");
    table(
        &mut out,
        "Requests per day",
        &["day (UTC)", "requests", "approved", "denied"],
        &day_rows,
    );
    out.push_str("</details></section>");
    out
}

/// A chart's description: every bar's label and value, for a screen reader.
fn describe(bars: &[Bar]) -> String {
    if bars.is_empty() {
        return "no data in this period".to_owned();
    }
    bars.iter()
        .map(|bar| format!("{}: {}", bar.label, bar.shown))
        .collect::<Vec<_>>()
        .join("; ")
}
