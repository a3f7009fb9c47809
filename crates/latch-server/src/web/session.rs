//! Signing in and out of the web UI, the session cookie, and CSRF tokens.
//!
//! The session cookie holds the user's API token itself (HttpOnly, SameSite=Strict, Path=/), so
//! every page authenticates exactly as the API does (`auth::authenticate`): revoking the token
//! with `latch admin token revoke` ends the browser session at its next click. Every
//! state-changing form carries a CSRF field derived from that token (a hash under its own
//! domain), compared in constant time; the sign-in form, which has no session yet, is protected
//! by a double-submit nonce instead.

use axum::extract::{Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::page::{self, Nav};
use crate::AppState;
use crate::auth::{self, Caller};
use crate::error::ApiError;

/// The session cookie: the API token.
pub(crate) const SESSION_COOKIE: &str = "latch_session";
/// The sign-in form's double-submit nonce.
pub(crate) const SIGNIN_COOKIE: &str = "latch_signin";
/// A browser session lasts at most this long (seconds); the token may live on.
const SESSION_MAX_AGE: u32 = 8 * 3600;

/// The signed-in user of a UI page.
pub(crate) struct Viewer {
    pub caller: Caller,
    /// What every form of this session must carry back.
    pub csrf: String,
    /// Leads a resource's owner team, so reviews its access (shows the Reviews page).
    pub leads_owner_team: bool,
}

impl Viewer {
    /// Auditors and admins read the ledger, findings, the dashboard and reports.
    pub fn sees_everything(&self, state: &AppState) -> bool {
        state.catalog.get().sees_everything(&self.caller.user)
    }

    /// The refusal of a form whose CSRF field is not this session's; `None` when it is.
    pub fn refuse_bad_csrf(&self, sent: &str) -> Option<Response> {
        (!same(sent, &self.csrf)).then(csrf_refused)
    }
}

fn csrf_refused() -> Response {
    page::message(
        None,
        StatusCode::FORBIDDEN,
        "Form expired",
        "this form does not belong to your session (it is stale or came from another site): reload the page and try again",
    )
}

/// Constant-time equality of two secrets (their lengths are not secret).
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The CSRF token of the session whose API token is `secret`: unguessable without the token,
/// which the page's scripts (there are none) and other sites cannot read.
pub(crate) fn csrf_for(secret: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"latch web csrf v1\n");
    hash.update(secret.as_bytes());
    hex::encode(hash.finalize())
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// Whether cookies must be `Secure`: always, except for a browser talking plain HTTP to a
/// loopback address (`latch serve` on a laptop), where a `Secure` cookie would never come
/// back. Behind a TLS proxy the `Host` is the public name (or `X-Forwarded-Proto: https` says
/// so), so the cookie is `Secure` there even though latch itself listens on loopback.
pub(crate) fn secure_cookies(headers: &HeaderMap) -> bool {
    let forwarded_https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    if forwarded_https {
        return true;
    }
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    let loopback = name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    !loopback
}

fn set_cookie(name: &str, value: &str, path: &str, max_age: u32, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; HttpOnly; SameSite=Strict; Path={path}; Max-Age={max_age}{secure}"
    );
    // Names are constants and values hex or empty: always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Where to go after signing in: a UI page of ours, never another site.
fn safe_next(next: Option<&str>) -> &str {
    next.filter(|n| {
        n.starts_with("/ui/")
            && !n.starts_with("/ui/signin")
            && !n.contains("//")
            && !n.contains('\\')
            && n.len() < 512
    })
    .unwrap_or("/ui/inbox")
}

fn to_signin(parts: &Parts, expired: bool) -> Response {
    let mut target = String::from("/ui/signin");
    let mut query = Vec::new();
    if parts.method == Method::GET
        && let Some(path) = parts.uri.path_and_query()
    {
        query.push(format!("next={}", super::url_encode(path.as_str())));
    }
    if expired {
        query.push("expired=1".to_owned());
    }
    if !query.is_empty() {
        target.push('?');
        target.push_str(&query.join("&"));
    }
    let mut response = Redirect::to(&target).into_response();
    if expired {
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(SESSION_COOKIE, "", "/", 0, secure_cookies(&parts.headers)),
        );
    }
    response
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(secret) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_signin(parts, false));
        };
        match auth::authenticate(state, &secret).await {
            Ok(caller) => {
                let catalog = state.catalog.get();
                let leads_owner_team = catalog
                    .resources
                    .values()
                    .any(|r| catalog.leads_team(&caller.user, &r.owner_team));
                Ok(Viewer {
                    csrf: csrf_for(&secret),
                    caller,
                    leads_owner_team,
                })
            }
            // Revoked, or the user left the organisation: sign in again.
            Err(ApiError::Unauthorized(_)) => Err(to_signin(parts, true)),
            Err(other) => Err(page::error(None, other)),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SigninQuery {
    next: Option<String>,
    expired: Option<String>,
}

pub(crate) async fn signin_page(
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<SigninQuery>,
) -> Response {
    let problem = query
        .expired
        .is_some()
        .then_some("your session has ended (the token was revoked, or you left the organisation): sign in again");
    signin_form(
        &headers,
        StatusCode::OK,
        safe_next(query.next.as_deref()),
        problem,
    )
}

fn signin_form(
    headers: &HeaderMap,
    status: StatusCode,
    next: &str,
    problem: Option<&str>,
) -> Response {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let nonce = hex::encode(bytes);
    let body = html! {
        h1 { "Sign in to latch" }
        @if let Some(problem) = problem {
            div.alert.error role="alert" { (problem) }
        }
        form.card.signin method="post" action="/ui/signin" {
            input type="hidden" name="nonce" value=(nonce);
            input type="hidden" name="next" value=(next);
            p {
                label for="token" { "API token" }
                input #token type="password" name="token" required autocomplete="current-password"
                    aria-describedby="token-help";
            }
            p #token-help .help {
                "Paste the token an admin made for you with "
                code { "latch admin token create --user YOU" }
                ". It is kept in an HttpOnly cookie for this browser session only."
            }
            p { button type="submit" { "Sign in" } }
        }
    };
    let mut response = (status, page::layout(None, Nav::None, "Sign in", body)).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            SIGNIN_COOKIE,
            &nonce,
            "/ui/signin",
            600,
            secure_cookies(headers),
        ),
    );
    response
}

#[derive(Debug, Deserialize)]
pub(crate) struct SigninForm {
    token: String,
    nonce: String,
    next: Option<String>,
}

pub(crate) async fn signin(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SigninForm>,
) -> Response {
    let next = safe_next(form.next.as_deref()).to_owned();
    let nonce_ok = cookie(&headers, SIGNIN_COOKIE).is_some_and(|nonce| same(&nonce, &form.nonce));
    if !nonce_ok {
        return signin_form(
            &headers,
            StatusCode::FORBIDDEN,
            &next,
            Some("this sign-in form expired or came from another site: try again"),
        );
    }
    let secret = form.token.trim();
    // A token is its prefix and hex: anything else is not one (and could not be a cookie value).
    if secret.is_empty()
        || !secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return signin_form(
            &headers,
            StatusCode::UNAUTHORIZED,
            &next,
            Some("that is not a latch token: they look like `latch_` followed by 64 hex digits"),
        );
    }
    let caller = match auth::authenticate(&state, secret).await {
        Ok(caller) => caller,
        Err(ApiError::Unauthorized(message)) => {
            tracing::info!("web sign-in refused: {message}");
            return signin_form(&headers, StatusCode::UNAUTHORIZED, &next, Some(&message));
        }
        Err(other) => return page::error(None, other),
    };
    tracing::info!(user = %caller.user, token = %caller.token_id, "signed in to the web UI");
    let secure = secure_cookies(&headers);
    let mut response = Redirect::to(&next).into_response();
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, secret, "/", SESSION_MAX_AGE, secure),
    );
    cookies.append(
        header::SET_COOKIE,
        set_cookie(SIGNIN_COOKIE, "", "/ui/signin", 0, secure),
    );
    response
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
}

pub(crate) async fn signout(
    headers: HeaderMap,
    viewer: Result<Viewer, Response>,
    Form(form): Form<CsrfForm>,
) -> Response {
    // A session that is already invalid is simply cleared.
    if let Ok(viewer) = &viewer
        && let Some(refused) = viewer.refuse_bad_csrf(&form.csrf)
    {
        return refused;
    }
    let mut response = Redirect::to("/ui/signin").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", "/", 0, secure_cookies(&headers)),
    );
    response
}
