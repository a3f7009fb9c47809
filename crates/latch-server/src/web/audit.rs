//! The audit pages: the event explorer (auditors and admins, like `GET /api/v1/events`), one
//! session with its statements (whoever the API shows it to), and findings with Acknowledge and
//! Resolve (auditors and admins).

use axum::Json;
use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use latch_api::{CommentBody, EventView};
use maud::html;
use serde::Deserialize;

use super::access::CommentForm;
use super::page::{self, Nav, Shell};
use super::session::Viewer;
use super::{parse_when, url_encode};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};

/// Events shown per page of the explorer.
const PER_PAGE: usize = 50;
/// Events read per store call while filtering.
const SCAN_BATCH: u32 = 1000;
/// At most this many events are scanned for one page; the next page goes on from there.
const SCAN_LIMIT: usize = 100_000;

/// The explorer's filters, as typed (empty fields mean "any").
#[derive(Debug, Default, Deserialize)]
pub(crate) struct EventQuery {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    after: Option<u64>,
}

impl EventQuery {
    /// The query string of the page after `after`, keeping the filters.
    fn next_page(&self, after: u64) -> String {
        format!(
            "/ui/audit?type={}&actor={}&subject={}&from={}&to={}&after={after}",
            url_encode(&self.kind),
            url_encode(&self.actor),
            url_encode(&self.subject),
            url_encode(&self.from),
            url_encode(&self.to),
        )
    }
}

const EVENT_TYPES: &[&str] = &[
    "request.",
    "request.created",
    "request.approved",
    "request.denied",
    "grant.",
    "grant.issued",
    "grant.expired",
    "grant.revoked",
    "access.refused",
    "session.",
    "session.started",
    "session.statement",
    "session.ended",
    "finding.",
    "token.",
    "policy.loaded",
];

pub(crate) async fn explorer(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<EventQuery>,
) -> Response {
    let shell = Shell::of(&viewer, &state);
    if let Err(err) = crate::routes::require_auditor(
        &state,
        &viewer.caller,
        "read events",
        "read the ledger",
        "/api/v1/events",
    )
    .await
    {
        return page::error(Some(&shell), err);
    }
    let (from, to) = match (
        parse_when("from", Some(&query.from)),
        parse_when("to", Some(&query.to)),
    ) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(message), _) | (_, Err(message)) => {
            return page::error(Some(&shell), ApiError::BadRequest(message));
        }
    };
    let (kind, actor, subject) = (query.kind.trim(), query.actor.trim(), query.subject.trim());
    let mut found: Vec<EventView> = Vec::new();
    let mut after = query.after.unwrap_or(0);
    let mut scanned = 0;
    let mut more = false;
    'scan: loop {
        let batch = match state.store.events(after, SCAN_BATCH).await {
            Ok(batch) => batch,
            Err(err) => return page::error(Some(&shell), err.into()),
        };
        let full = batch.len() == SCAN_BATCH as usize;
        scanned += batch.len();
        for entry in batch {
            let latch_store::LedgerEntry { event, body } = std::sync::Arc::unwrap_or_clone(entry);
            after = event.seq;
            let e = &event.event;
            let admitted = (kind.is_empty() || e.kind.type_name().starts_with(kind))
                && (actor.is_empty() || e.actor.to_string() == actor)
                && (subject.is_empty() || e.subject.contains(subject))
                && from.is_none_or(|from| e.at >= from)
                && to.is_none_or(|to| e.at < to);
            if admitted {
                found.push(EventView::new(&event, body));
                if found.len() == PER_PAGE {
                    more = true;
                    break 'scan;
                }
            }
        }
        if !full {
            break;
        }
        if scanned >= SCAN_LIMIT {
            more = true;
            break;
        }
    }
    let body = html! {
        h1 { "Audit explorer" }
        p.lead { "Every event of the ledger, in order. Filter, then open a session to read its statements." }
        form.filters method="get" action="/ui/audit" {
            div.field {
                label for="f-type" { "Type (or prefix)" }
                input #f-type name="type" value=(query.kind) list="event-types" size="18" placeholder="request.";
                datalist #event-types { @for t in EVENT_TYPES { option value=(t) {} } }
            }
            div.field {
                label for="f-actor" { "Actor" }
                input #f-actor name="actor" value=(query.actor) size="10" placeholder="alice";
            }
            div.field {
                label for="f-subject" { "Subject contains" }
                input #f-subject name="subject" value=(query.subject) size="18" placeholder="req_…";
            }
            div.field {
                label for="f-from" { "From" }
                input #f-from name="from" value=(query.from) size="12" placeholder="2026-07-01";
            }
            div.field {
                label for="f-to" { "Until" }
                input #f-to name="to" value=(query.to) size="12" placeholder="2026-08-01";
            }
            div.actions { button type="submit" { "Search" } a.button.secondary href="/ui/audit" { "Clear" } }
        }
        @if found.is_empty() {
            p.empty { "No event matches." }
        } @else {
            div.scroll {
                table.events {
                    caption.sr-only { "Matching events in ledger order" }
                    thead { tr {
                        th scope="col" { "#" } th scope="col" { "Time" } th scope="col" { "Type" }
                        th scope="col" { "Actor" } th scope="col" { "Subject" } th scope="col" { "Event" }
                    } }
                    tbody {
                        @for event in &found {
                            tr {
                                td.num { (event.seq) }
                                td { time datetime=(event.at) { (event.at.get(..19).unwrap_or(&event.at).replacen('T', " ", 1)) } }
                                td { code { (event.event_type) } }
                                td { (event.actor) }
                                td {
                                    @if event.subject.starts_with("ses_") {
                                        a href={ "/ui/sessions/" (url_encode(&event.subject)) } { code { (event.subject) } }
                                    } @else {
                                        code { (event.subject) }
                                    }
                                }
                                td { details { summary { "Body" span.sr-only { " of event " (event.seq) } } pre { (event.body) } } }
                            }
                        }
                    }
                }
            }
        }
        @if more {
            p { a.button href=(query.next_page(after)) { "Next events" } }
        }
    };
    page::layout(Some(&shell), Nav::Audit, "Audit explorer", body).into_response()
}

/// One gateway session and its statements, through the API's own handler (visibility included).
pub(crate) async fn session(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let shell = Shell::of(&viewer, &state);
    let detail =
        match crate::sessions::get_session(State(state.clone()), viewer.caller.clone(), Path(id))
            .await
        {
            Ok(Json(detail)) => detail,
            Err(err) => return page::error(Some(&shell), err),
        };
    let s = &detail.session;
    let body = html! {
        h1 { "Session " code { (s.id) } }
        dl.facts.card {
            dt { "Who" } dd { (s.user) }
            dt { "Resource" } dd { (s.resource) " · " (s.role) }
            dt { "Grant" } dd { code { (s.grant_id) } }
            dt { "Client" } dd { (s.client_addr) @if let Some(app) = &s.application_name { " (" (app) ")" } }
            dt { "TLS" } dd { @if s.tls { "yes" } @else { "no" } }
            dt { "Started" } dd { (s.started_at) }
            dt { "Ended" } dd {
                (s.ended_at.as_deref().unwrap_or("still open"))
                @if let Some(reason) = &s.end_reason { " (" (reason) ")" }
            }
            dt { "Statements" } dd { (s.statements) }
        }
        h2 { "Statements" }
        @if detail.statements.is_empty() {
            p.empty { "No statement recorded." }
        } @else {
            div.scroll {
                table.statements {
                    caption.sr-only { "Statements in the order they ran" }
                    thead { tr {
                        th scope="col" { "#" } th scope="col" { "Time" } th scope="col" { "Class" }
                        th scope="col" { "Statement" } th scope="col" { "Objects" } th scope="col" { "Outcome" }
                        th scope="col" { "Rows" } th scope="col" { "Duration" }
                    } }
                    tbody {
                        @for statement in &detail.statements {
                            tr {
                                td.num { (statement.seq) }
                                td { (statement.at.get(11..19).unwrap_or(&statement.at)) }
                                td { span class={ "class " (statement.class) } { (statement.class) } }
                                td { code.sql { (statement.text) } }
                                td { (statement.objects.join(", ")) }
                                td {
                                    (statement.outcome)
                                    @if let Some(detail) = &statement.detail { br; small { (detail) } }
                                }
                                td.num { (statement.rows.map(|r| r.to_string()).unwrap_or_default()) }
                                td.num { (format!("{:.1} ms", statement.duration_us as f64 / 1000.0)) }
                            }
                        }
                    }
                }
            }
        }
    };
    page::layout(Some(&shell), Nav::Grants, "Session", body).into_response()
}

/// The findings filters, as typed.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct FindingsQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    checkpoint: String,
    ok: Option<String>,
}

pub(crate) async fn findings(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<FindingsQuery>,
) -> Response {
    let shell = Shell::of(&viewer, &state);
    // The API's own query type, so that its validation (severity names, limits) applies.
    let mut api_query = serde_json::Map::new();
    if query.status != "all" {
        api_query.insert("open".into(), true.into());
    }
    if !query.severity.is_empty() {
        api_query.insert("severity".into(), query.severity.clone().into());
    }
    if !query.checkpoint.trim().is_empty() {
        api_query.insert("checkpoint".into(), query.checkpoint.trim().into());
    }
    let api_query: crate::audit::ListFindingsQuery =
        match serde_json::from_value(serde_json::Value::Object(api_query)) {
            Ok(q) => q,
            Err(err) => return page::error(Some(&shell), ApiError::BadRequest(err.to_string())),
        };
    let list = match crate::audit::list_findings(
        State(state.clone()),
        viewer.caller.clone(),
        ApiQuery(api_query),
    )
    .await
    {
        Ok(Json(list)) => list,
        Err(err) => return page::error(Some(&shell), err),
    };
    let csrf = viewer.csrf.as_str();
    let body = html! {
        h1 { "Findings" }
        (page::notice(query.ok.as_deref()))
        form.filters method="get" action="/ui/findings" {
            div.field {
                label for="f-status" { "Status" }
                select #f-status name="status" {
                    option value="open" selected[query.status != "all"] { "Not resolved" }
                    option value="all" selected[query.status == "all"] { "All" }
                }
            }
            div.field {
                label for="f-severity" { "Severity at least" }
                select #f-severity name="severity" {
                    option value="" { "any" }
                    @for severity in latch_store::SEVERITIES {
                        option value=(severity) selected[query.severity == *severity] { (severity) }
                    }
                }
            }
            div.field {
                label for="f-checkpoint" { "Checkpoint" }
                input #f-checkpoint name="checkpoint" value=(query.checkpoint) size="20" placeholder="usage.scope";
            }
            div.actions { button type="submit" { "Filter" } }
        }
        @if list.findings.is_empty() {
            p.empty { "No finding matches." }
        }
        @for finding in &list.findings {
            @let heading = format!("finding-{}", finding.id);
            @let comment = format!("comment-{}", finding.id);
            article.card aria-labelledby=(heading) {
                h2 #(heading) {
                    span class={ "severity " (finding.severity) } { (finding.severity) }
                    " " (finding.summary)
                }
                dl.facts {
                    dt { "Checkpoint" } dd { code { (finding.checkpoint) } }
                    dt { "About" } dd { code { (finding.about) } }
                    dt { "First seen" } dd { (finding.first_seen) }
                    dt { "Status" } dd {
                        (finding.status)
                        @if let Some(by) = &finding.status_by { " by " (by) }
                        @if let Some(comment) = &finding.status_comment { ": " q { (comment) } }
                    }
                    dt { "Evidence" } dd {
                        @for seq in &finding.evidence {
                            a href={ "/ui/audit?after=" (seq.saturating_sub(1)) } { "#" (seq) } " "
                        }
                    }
                }
                @if finding.status != "resolved" {
                    form.decide method="post" action={ "/ui/findings/" (finding.id) "/ack" } {
                        input type="hidden" name="csrf" value=(csrf);
                        label for=(comment) { "Comment" }
                        textarea #(comment) name="comment" rows="2" required maxlength="2000" {}
                        div.actions {
                            @if finding.status == "open" {
                                button type="submit" { "Acknowledge" }
                            }
                            button type="submit" formaction={ "/ui/findings/" (finding.id) "/resolve" } { "Resolve" }
                        }
                    }
                }
            }
        }
    };
    page::layout(Some(&shell), Nav::Findings, "Findings", body).into_response()
}

async fn set_status(
    state: AppState,
    viewer: Viewer,
    id: String,
    form: CommentForm,
    resolve: bool,
) -> Response {
    if let Some(refused) = viewer.refuse_bad_csrf(&form.csrf) {
        return refused;
    }
    let body = ApiJson(CommentBody {
        comment: form.comment,
    });
    let caller = viewer.caller.clone();
    let outcome = if resolve {
        crate::audit::resolve_finding(State(state.clone()), caller, Path(id), body).await
    } else {
        crate::audit::ack_finding(State(state.clone()), caller, Path(id), body).await
    };
    match outcome {
        Ok(_) if resolve => Redirect::to("/ui/findings?ok=resolved").into_response(),
        Ok(_) => Redirect::to("/ui/findings?ok=acknowledged").into_response(),
        Err(err) => page::error(Some(&Shell::of(&viewer, &state)), err),
    }
}

pub(crate) async fn ack(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CommentForm>,
) -> Response {
    set_status(state, viewer, id, form, false).await
}

pub(crate) async fn resolve(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CommentForm>,
) -> Response {
    set_status(state, viewer, id, form, true).await
}
