//! The pages of everyday access: the inbox of requests to decide, "my access" with the request
//! form, and grants with their live sessions. Every button calls the API's own handler.

use axum::Json;
use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use latch_api::{ApproveBody, CreateRequest, ReasonBody};
use latch_core::lifecycle::decide;
use latch_core::{AccessRequest, Catalog, Command, RequestState, Timestamp};
use latch_store::{RequestFilter, SessionFilter, SessionRow};
use maud::{Markup, html};
use serde::Deserialize;

use super::page::{self, Nav, Shell, maybe_when, when};
use super::session::Viewer;
use crate::AppState;
use crate::extract::ApiJson;
use crate::routes;

/// `?ok=…` after an action.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Done {
    ok: Option<String>,
}

/// A form with only a comment (or reason) besides its CSRF field.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CommentForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub comment: String,
}

/// Would the lifecycle accept `command` from this user now? A dry run of the same pure decision
/// the store makes, to offer only the buttons that can work (the real call decides again).
fn would_accept(
    catalog: &Catalog,
    request: &AccessRequest,
    command: &Command,
    now: Timestamp,
) -> bool {
    decide(&request.id, Some(request), command, catalog, now).is_ok()
}

/// Requests waiting for a decision the signed-in user may make.
pub(crate) async fn inbox(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(done): Query<Done>,
) -> Response {
    let shell = Shell::of(&viewer, &state);
    let catalog = state.catalog.get();
    let user = viewer.caller.user.clone();
    let filter = RequestFilter {
        states: vec![RequestState::Pending],
        requester: None,
        with_grant: false,
        visibility: catalog.visibility(&user),
        limit: 1000,
    };
    let pending = match state.store.requests(&filter).await {
        Ok(pending) => pending,
        Err(err) => return page::error(Some(&shell), err.into()),
    };
    let now = state.clock.now();
    let approve = Command::Approve {
        approver: user.clone(),
        comment: None,
    };
    let mine: Vec<&AccessRequest> = pending
        .iter()
        .filter(|request| would_accept(&catalog, request, &approve, now))
        .collect();
    let body = html! {
        h1 { "Inbox" }
        (page::notice(done.ok.as_deref()))
        p.lead { "Requests waiting for your decision. Approving or denying is recorded in the ledger under your name." }
        @if mine.is_empty() {
            p.empty { "Nothing is waiting for you." }
        }
        @for request in &mine {
            (request_card(request, &viewer.csrf))
        }
    };
    page::layout(Some(&shell), Nav::Inbox, "Inbox", body).into_response()
}

fn request_card(request: &AccessRequest, csrf: &str) -> Markup {
    let id = &request.id;
    let heading = format!("heading-{id}");
    let comment = format!("comment-{id}");
    html! {
        article.card aria-labelledby=(heading) {
            h2 #(heading) {
                (request.requester) " asks for " strong { (request.role) } " on "
                strong { (request.resource) } " for " (request.duration)
            }
            dl.facts {
                dt { "Reason" } dd { (request.reason) }
                dt { "Ticket" } dd { (request.ticket.as_deref().unwrap_or("–")) }
                dt { "Requested" } dd { (when(request.created_at)) }
                dt { "Approvals" } dd { (request.approvals.len()) " of " (request.required_approvals) }
                @if let Some(until) = request.pending_until {
                    dt { "Times out" } dd { (when(until)) }
                }
                @if request.once {
                    dt { "Single use" } dd { "ends with its first session" }
                }
                dt { "Request" } dd { code { (id) } }
            }
            form.decide method="post" action={ "/ui/requests/" (id) "/approve" } {
                input type="hidden" name="csrf" value=(csrf);
                label for=(comment) { "Comment (required to deny)" }
                textarea #(comment) name="comment" rows="2" maxlength="2000" {}
                div.actions {
                    button type="submit" { "Approve" }
                    button.danger type="submit" formaction={ "/ui/requests/" (id) "/deny" } { "Deny" }
                }
            }
        }
    }
}

fn non_empty(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

pub(crate) async fn approve(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CommentForm>,
) -> Response {
    if let Some(refused) = viewer.refuse_bad_csrf(&form.csrf) {
        return refused;
    }
    let body = ApproveBody {
        comment: non_empty(&form.comment),
    };
    let outcome = routes::approve_request(
        State(state.clone()),
        viewer.caller.clone(),
        Path(id),
        ApiJson(body),
    )
    .await;
    page::after(
        outcome,
        &Shell::of(&viewer, &state),
        "/ui/inbox?ok=approved",
    )
}

pub(crate) async fn deny(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CommentForm>,
) -> Response {
    if let Some(refused) = viewer.refuse_bad_csrf(&form.csrf) {
        return refused;
    }
    let body = ReasonBody {
        reason: form.comment.trim().to_owned(),
    };
    let outcome = routes::deny_request(
        State(state.clone()),
        viewer.caller.clone(),
        Path(id),
        ApiJson(body),
    )
    .await;
    page::after(outcome, &Shell::of(&viewer, &state), "/ui/inbox?ok=denied")
}

pub(crate) async fn cancel(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CommentForm>,
) -> Response {
    if let Some(refused) = viewer.refuse_bad_csrf(&form.csrf) {
        return refused;
    }
    match routes::cancel_request(State(state.clone()), viewer.caller.clone(), Path(id)).await {
        Ok(_) => Redirect::to("/ui/access?ok=cancelled").into_response(),
        Err(err) => page::error(Some(&Shell::of(&viewer, &state)), err),
    }
}

/// The request form and the user's own requests and grants.
pub(crate) async fn my_access(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(done): Query<Done>,
) -> Response {
    let shell = Shell::of(&viewer, &state);
    let catalog = state.catalog.get();
    let user = viewer.caller.user.clone();
    let limit = match routes::check_limit(None) {
        Ok(limit) => limit,
        Err(err) => return page::error(Some(&shell), err),
    };
    let filter = RequestFilter {
        states: Vec::new(),
        requester: Some(user.clone()),
        with_grant: false,
        visibility: catalog.visibility(&user),
        limit,
    };
    let requests = match state.store.requests(&filter).await {
        Ok(requests) => requests,
        Err(err) => return page::error(Some(&shell), err.into()),
    };
    let csrf = viewer.csrf.as_str();
    let body = html! {
        h1 { "My access" }
        (page::notice(done.ok.as_deref()))
        section.card aria-labelledby="new-request" {
            h2 #new-request { "Request access" }
            form.request method="post" action="/ui/requests" {
                input type="hidden" name="csrf" value=(csrf);
                div.field {
                    label for="target" { "Resource and role" }
                    select #target name="target" required {
                        @for resource in catalog.resources.values() {
                            optgroup label=(resource.name) {
                                @for role in resource.roles.values() {
                                    option value={ (resource.name) "/" (role.name) } {
                                        (resource.name) " · " (role.name) " (at most " (role.max_duration) ")"
                                    }
                                }
                            }
                        }
                    }
                }
                div.field {
                    label for="duration" { "For how long" }
                    input #duration name="duration" required value="1h" size="8"
                        aria-describedby="duration-help";
                    span #duration-help .help { "e.g. 30m, 2h, 1h30m; at most the role's maximum" }
                }
                div.field.wide {
                    label for="reason" { "Why" }
                    textarea #reason name="reason" rows="2" required maxlength="2000"
                        aria-describedby="reason-help" {}
                    span #reason-help .help { "Approvers and auditors read this: say what you will do and why." }
                }
                div.field {
                    label for="ticket" { "Ticket (optional)" }
                    input #ticket name="ticket" size="16" placeholder="INC-1234";
                }
                div.field.check {
                    input #once type="checkbox" name="once" value="true";
                    label for="once" { "Single use: end with my first session" }
                }
                div.actions { button type="submit" { "Send request" } }
            }
        }
        section aria-labelledby="my-requests" {
            h2 #my-requests { "My requests" }
            @if requests.is_empty() {
                p.empty { "You have not asked for access yet." }
            } @else {
                div.scroll {
                    table {
                        caption.sr-only { "My requests, newest first" }
                        thead { tr {
                            th scope="col" { "Request" } th scope="col" { "Resource" } th scope="col" { "Role" }
                            th scope="col" { "For" } th scope="col" { "State" } th scope="col" { "Requested" }
                            th scope="col" { "Access until" } th scope="col" { "Action" }
                        } }
                        tbody {
                            @for request in &requests {
                                tr {
                                    td { code { (request.id) } }
                                    td { (request.resource) }
                                    td { (request.role) }
                                    td { (request.duration) }
                                    td { span class={ "state " (request.state) } { (request.state) } }
                                    td { (when(request.created_at)) }
                                    td { (maybe_when(request.grant.as_ref().map(|g| g.ended_at.unwrap_or(g.expires_at)))) }
                                    td {
                                        @if request.state == RequestState::Pending {
                                            form method="post" action={ "/ui/requests/" (request.id) "/cancel" } {
                                                input type="hidden" name="csrf" value=(csrf);
                                                button.small type="submit" aria-label={ "Cancel request " (request.id) } { "Cancel" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page::layout(Some(&shell), Nav::Access, "My access", body).into_response()
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RequestForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    ticket: String,
    once: Option<String>,
}

pub(crate) async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<RequestForm>,
) -> Response {
    if let Some(refused) = viewer.refuse_bad_csrf(&form.csrf) {
        return refused;
    }
    let shell = Shell::of(&viewer, &state);
    let Some((resource, role)) = form.target.split_once('/') else {
        return page::error(
            Some(&shell),
            crate::error::ApiError::BadRequest(
                "choose a resource and role from the list".to_owned(),
            ),
        );
    };
    let body = CreateRequest {
        resource: resource.to_owned(),
        role: role.to_owned(),
        duration: form.duration.trim().to_owned(),
        reason: form.reason.trim().to_owned(),
        ticket: non_empty(&form.ticket),
        once: form.once.is_some(),
    };
    match routes::create_request(State(state.clone()), viewer.caller.clone(), ApiJson(body)).await {
        Ok((_, Json(_))) => Redirect::to("/ui/access?ok=requested").into_response(),
        Err(err) => page::error(Some(&shell), err),
    }
}

/// Active grants the user may see, with Revoke where they may revoke, and gateway sessions.
pub(crate) async fn grants(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(done): Query<Done>,
) -> Response {
    let shell = Shell::of(&viewer, &state);
    let catalog = state.catalog.get();
    let user = viewer.caller.user.clone();
    let visibility = catalog.visibility(&user);
    let active = RequestFilter {
        states: vec![RequestState::Granted],
        requester: None,
        with_grant: true,
        visibility: visibility.clone(),
        limit: 1000,
    };
    let live = SessionFilter {
        active_only: true,
        grant_id: None,
        visibility: visibility.clone(),
        limit: 100,
    };
    let recent = SessionFilter {
        active_only: false,
        grant_id: None,
        visibility,
        limit: 20,
    };
    let loaded = async {
        Ok::<_, latch_store::StoreError>((
            state.store.requests(&active).await?,
            state.store.sessions(&live).await?,
            state.store.sessions(&recent).await?,
        ))
    }
    .await;
    let (granted, live, recent) = match loaded {
        Ok(loaded) => loaded,
        Err(err) => return page::error(Some(&shell), err.into()),
    };
    let now = state.clock.now();
    let revoke = Command::Revoke {
        by: user.clone(),
        reason: "offered in the web UI".to_owned(),
    };
    let csrf = viewer.csrf.as_str();
    let body = html! {
        h1 { "Grants and sessions" }
        (page::notice(done.ok.as_deref()))
        section aria-labelledby="active-grants" {
            h2 #active-grants { "Active grants" }
            @if granted.is_empty() {
                p.empty { "No active grants you can see." }
            } @else {
                div.scroll {
                    table {
                        caption.sr-only { "Active grants" }
                        thead { tr {
                            th scope="col" { "Grant" } th scope="col" { "Who" } th scope="col" { "Resource" }
                            th scope="col" { "Role" } th scope="col" { "Reason" } th scope="col" { "Until" }
                            th scope="col" { "Revoke" }
                        } }
                        tbody {
                            @for request in &granted {
                                @if let Some(grant) = &request.grant {
                                    tr {
                                        td { code { (grant.id) } }
                                        td { (request.requester) }
                                        td { (request.resource) }
                                        td { (request.role) }
                                        td.reason { (request.reason) }
                                        td { (when(grant.expires_at)) }
                                        td {
                                            @if would_accept(&catalog, request, &revoke, now) {
                                                form.inline method="post" action={ "/ui/grants/" (grant.id) "/revoke" } {
                                                    input type="hidden" name="csrf" value=(csrf);
                                                    label.sr-only for={ "reason-" (grant.id) } { "Reason to revoke " (grant.id) }
                                                    input id={ "reason-" (grant.id) } name="comment" required placeholder="reason" size="14";
                                                    button.danger.small type="submit" { "Revoke" }
                                                }
                                            } @else {
                                                span.muted { "not yours to revoke" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="live-sessions" {
            h2 #live-sessions { "Live sessions" }
            (sessions_table(&live, "Gateway sessions open now", "No live sessions."))
        }
        section aria-labelledby="recent-sessions" {
            h2 #recent-sessions { "Recent sessions" }
            (sessions_table(&recent, "The latest gateway sessions", "No sessions recorded yet."))
        }
    };
    page::layout(Some(&shell), Nav::Grants, "Grants and sessions", body).into_response()
}

pub(crate) fn sessions_table(rows: &[SessionRow], caption: &str, empty: &str) -> Markup {
    html! {
        @if rows.is_empty() {
            p.empty { (empty) }
        } @else {
            div.scroll {
                table {
                    caption.sr-only { (caption) }
                    thead { tr {
                        th scope="col" { "Session" } th scope="col" { "Who" } th scope="col" { "Resource" }
                        th scope="col" { "Role" } th scope="col" { "Started" } th scope="col" { "Ended" }
                        th scope="col" { "Statements" } th scope="col" { "Client" }
                    } }
                    tbody {
                        @for row in rows {
                            tr {
                                td { a href={ "/ui/sessions/" (row.id) } { code { (row.id) } } }
                                td { (row.user) }
                                td { (row.resource) }
                                td { (row.role) }
                                td { (when(row.started_at)) }
                                td {
                                    (maybe_when(row.ended_at))
                                    @if let Some(reason) = &row.end_reason { " (" (reason) ")" }
                                }
                                td.num { (row.statements) }
                                td { (row.client_addr) }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(crate) async fn revoke(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CommentForm>,
) -> Response {
    if let Some(refused) = viewer.refuse_bad_csrf(&form.csrf) {
        return refused;
    }
    let body = ReasonBody {
        reason: form.comment.trim().to_owned(),
    };
    let outcome = routes::revoke_grant(
        State(state.clone()),
        viewer.caller.clone(),
        Path(id),
        ApiJson(body),
    )
    .await;
    page::after(
        outcome,
        &Shell::of(&viewer, &state),
        "/ui/grants?ok=revoked",
    )
}
