//! The web UI at `/`: server-rendered pages (maud escapes every interpolated string) over the
//! very handlers the JSON API uses, so a click passes the same policy checks and leaves the same
//! ledger events as `latch approve`. No JavaScript: plain forms, a session cookie holding the
//! user's API token, and a CSRF field on every state-changing form.
//!
//! **Architecture Invariant:** no page decides anything. Writes call the `/api/v1` handlers
//! (`routes::approve_request`, `routes::revoke_grant`, `audit::ack_finding`,
//! `review::record_review`, …); reads apply
//! the same visibility and role checks as the API (`Catalog::visibility`,
//! `routes::require_auditor`).

mod access;
mod audit;
mod dashboard;
mod page;
mod reviews;
mod session;
#[cfg(test)]
mod tests;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use latch_core::Timestamp;

use crate::AppState;

/// What UI pages may load: only our own stylesheet, no scripts, no frames, forms only to us.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The one stylesheet, compiled into the binary.
const STYLESHEET: &str = include_str!("../../assets/latch.css");

/// The UI's routes: `/` and everything under `/ui/`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/inbox") }))
        .route("/ui", get(|| async { Redirect::to("/ui/inbox") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/inbox") }))
        .route("/ui/assets/latch.css", get(stylesheet))
        .route(
            "/ui/signin",
            get(session::signin_page).post(session::signin),
        )
        .route("/ui/signout", post(session::signout))
        .route("/ui/inbox", get(access::inbox))
        .route("/ui/requests/{id}/approve", post(access::approve))
        .route("/ui/requests/{id}/deny", post(access::deny))
        .route("/ui/requests/{id}/cancel", post(access::cancel))
        .route("/ui/access", get(access::my_access))
        .route("/ui/requests", post(access::create))
        .route("/ui/grants", get(access::grants))
        .route("/ui/grants/{id}/revoke", post(access::revoke))
        .route("/ui/sessions/{id}", get(audit::session))
        .route("/ui/audit", get(audit::explorer))
        .route("/ui/findings", get(audit::findings))
        .route("/ui/findings/{id}/ack", post(audit::ack))
        .route("/ui/findings/{id}/resolve", post(audit::resolve))
        .route("/ui/reviews", get(reviews::reviews).post(reviews::record))
        .route("/ui/dashboard", get(dashboard::dashboard))
        .route("/ui/reports/access.csv", get(dashboard::report_csv))
        .route("/ui/reports/access.html", get(dashboard::report_html))
        .route("/ui/reports/access.pdf", get(dashboard::report_pdf))
        .route("/ui/evidence.tar", get(dashboard::evidence))
        .layer(axum::middleware::map_response(security_headers))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
}

/// Headers on every UI response: the CSP (unless a handler set its own, as the downloadable
/// report does), no sniffing, no framing, no referrer, and no caching of private pages.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A time typed into a form: RFC 3339, `YYYY-MM-DDTHH:MM` (UTC) or a date `YYYY-MM-DD`
/// (midnight UTC). Empty is `None`.
fn parse_when(field: &str, text: Option<&str>) -> Result<Option<Timestamp>, String> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let candidates = [
        text.to_owned(),
        format!("{text}:00Z"),
        format!("{text}T00:00:00Z"),
    ];
    candidates
        .iter()
        .find_map(|candidate| Timestamp::parse(candidate).ok())
        .map(Some)
        .ok_or_else(|| {
            format!(
                "{field} `{}` is not a time: write a date like `2026-07-01` or a time like `2026-07-01T09:30:00Z`",
                text.chars().take(40).collect::<String>()
            )
        })
}

/// Percent-encodes everything but unreserved characters and `/`, for a query string value.
fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
