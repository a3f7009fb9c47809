//! The page shell (skip link, navigation, who is signed in), messages, and the one mapping from
//! an [`ApiError`] to a page: a refusal is shown with its reason and its status, never as a 500.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use latch_core::Timestamp;
use maud::{DOCTYPE, Markup, html};

use super::session::Viewer;
use crate::error::ApiError;

/// Which navigation entry a page belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Nav {
    None,
    Inbox,
    Access,
    Grants,
    Audit,
    Findings,
    Dashboard,
    Reviews,
}

/// Who sees a navigation entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Audience {
    Everyone,
    /// Auditors and admins.
    Auditors,
    /// Auditors, admins and the leads of a resource's owner team (`GET /api/v1/reviews`).
    Reviewers,
}

/// Who is signed in, as the shell shows it.
pub(crate) struct Shell<'a> {
    pub user: &'a str,
    pub csrf: &'a str,
    /// Shows the auditor-only entries.
    pub sees_everything: bool,
    /// Shows the reviews entry: auditors, admins and owner teams' leads.
    pub reviews: bool,
}

impl<'a> Shell<'a> {
    pub fn of(viewer: &'a Viewer, state: &crate::AppState) -> Self {
        let sees_everything = viewer.sees_everything(state);
        Self {
            user: &viewer.caller.user,
            csrf: &viewer.csrf,
            sees_everything,
            reviews: sees_everything || viewer.leads_owner_team,
        }
    }
}

/// The whole page around `body`.
pub(crate) fn layout(shell: Option<&Shell<'_>>, current: Nav, title: &str, body: Markup) -> Markup {
    let entries: &[(Nav, &str, &str, Audience)] = &[
        (Nav::Inbox, "/ui/inbox", "Inbox", Audience::Everyone),
        (Nav::Access, "/ui/access", "My access", Audience::Everyone),
        (
            Nav::Grants,
            "/ui/grants",
            "Grants & sessions",
            Audience::Everyone,
        ),
        (Nav::Audit, "/ui/audit", "Audit", Audience::Auditors),
        (
            Nav::Findings,
            "/ui/findings",
            "Findings",
            Audience::Auditors,
        ),
        (Nav::Reviews, "/ui/reviews", "Reviews", Audience::Reviewers),
        (
            Nav::Dashboard,
            "/ui/dashboard",
            "Dashboard",
            Audience::Auditors,
        ),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · latch" }
                link rel="stylesheet" href="/ui/assets/latch.css";
            }
            body {
                a.skip href="#main" { "Skip to main content" }
                header.top {
                    a.brand href="/ui/inbox" { "latch" }
                    @if let Some(shell) = shell {
                        nav aria-label="Main" {
                            ul {
                                @for (nav, href, label, audience) in entries {
                                    @if match audience {
                                        Audience::Everyone => true,
                                        Audience::Auditors => shell.sees_everything,
                                        Audience::Reviewers => shell.reviews,
                                    } {
                                        li {
                                            a href=(href) aria-current=[(*nav == current).then_some("page")] { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        form.signout method="post" action="/ui/signout" {
                            input type="hidden" name="csrf" value=(shell.csrf);
                            span.who { "Signed in as " strong { (shell.user) } }
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main #main tabindex="-1" {
                    (body)
                }
            }
        }
    }
}

/// A page that only says something: a refusal, a stale form.
pub(crate) fn message(
    shell: Option<&Shell<'_>>,
    status: StatusCode,
    title: &str,
    text: &str,
) -> Response {
    let body = html! {
        h1 { (title) }
        div.alert.error role="alert" { (text) }
        p { "Use your browser's Back button to return to the form, or go to the " a href="/ui/inbox" { "inbox" } "." }
    };
    (status, layout(shell, Nav::None, title, body)).into_response()
}

/// What a failed read or action shows: the API's own status and message. Internal details go
/// to the log, as in the API.
/// Where a form lands after the API handler it called: the page `done` on success, the
/// refusal's page (with the API's status and reason) otherwise.
pub(crate) fn after<T>(outcome: Result<T, ApiError>, shell: &Shell<'_>, done: &str) -> Response {
    match outcome {
        Ok(_) => Redirect::to(done).into_response(),
        Err(err) => error(Some(shell), err),
    }
}

pub(crate) fn error(shell: Option<&Shell<'_>>, err: ApiError) -> Response {
    let (status, _) = err.status_and_code();
    let (title, text) = match &err {
        ApiError::Unauthorized(_) => return Redirect::to("/ui/signin?expired=1").into_response(),
        ApiError::Refused(refusal) => {
            let title = match refusal.kind {
                latch_core::RefusalKind::Forbidden => "Not allowed",
                latch_core::RefusalKind::NotFound => "Not found",
                latch_core::RefusalKind::Conflict => "Not possible now",
                latch_core::RefusalKind::Invalid => "Please check the form",
            };
            (title, refusal.message.clone())
        }
        ApiError::BadRequest(message) => ("Please check the form", message.clone()),
        ApiError::Unavailable(detail) => {
            tracing::error!(%status, detail, "web request failed");
            (
                "Unavailable",
                "the database is unavailable: try again shortly".to_owned(),
            )
        }
        ApiError::Internal(detail) => {
            tracing::error!(%status, detail, "web request failed");
            (
                "Something went wrong",
                "internal error: see the server log".to_owned(),
            )
        }
    };
    message(shell, status, title, &text)
}

/// A confirmation after an action (Post/Redirect/Get): the code in `?ok=` names a fixed text, so
/// nothing a link carries is echoed onto the page.
pub(crate) fn notice(code: Option<&str>) -> Markup {
    let text = match code {
        Some("approved") => "Approved. Your approval is in the ledger.",
        Some("denied") => "Denied. The requester sees your reason.",
        Some("requested") => "Request sent: it waits for an approver.",
        Some("cancelled") => "Request cancelled.",
        Some("revoked") => "Grant revoked: its live sessions were ended.",
        Some("acknowledged") => "Finding acknowledged.",
        Some("resolved") => "Finding resolved.",
        Some("reviewed") => "Review recorded in the ledger.",
        _ => return html! {},
    };
    html! { div.alert.ok role="status" { (text) } }
}

/// An instant as people read it, with the exact one for machines.
pub(crate) fn when(at: Timestamp) -> Markup {
    let exact = at.to_string();
    let shown = format!(
        "{} UTC",
        exact.get(..16).unwrap_or(&exact).replacen('T', " ", 1)
    );
    html! { time datetime=(exact) { (shown) } }
}

/// An optional instant, or a dash.
pub(crate) fn maybe_when(at: Option<Timestamp>) -> Markup {
    match at {
        Some(at) => when(at),
        None => html! { span.muted { "–" } },
    }
}
