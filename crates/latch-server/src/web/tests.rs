//! The web UI through the real router and a real store: sign-in, CSRF, escaping, and actions
//! that must leave exactly what the API's would.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests fail loudly"
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use latch_core::{Actor, Event, EventKind};
use latch_store::{Store, TokenRecord};
use latch_testkit::{Backend, FakeClock, T0, TestStore, sample_catalog};
use tower::ServiceExt;

use super::CONTENT_SECURITY_POLICY;
use super::session::{SESSION_COOKIE, SIGNIN_COOKIE, csrf_for};
use crate::AppState;

struct Ui {
    store: Arc<TestStore>,
    state: AppState,
    /// Each sample user's token id and secret.
    tokens: BTreeMap<String, (String, String)>,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
    }
}

impl Ui {
    async fn new() -> Self {
        let store = Arc::new(TestStore::new(Backend::Sqlite).await);
        let clock = FakeClock::new(T0);
        let catalog = Arc::new(sample_catalog());
        let mut tokens = BTreeMap::new();
        for user in catalog.users.keys() {
            let token = crate::auth::new_token();
            let record = TokenRecord {
                id: token.id.clone(),
                user: user.clone(),
                label: None,
                created_at: T0,
                revoked_at: None,
            };
            store
                .create_token(&record, &token.secret_hash, Actor::System, &*clock)
                .await
                .unwrap();
            tokens.insert(user.clone(), (token.id, token.secret));
        }
        let key = latch_ledger::SigningKey::from_seed("latch.test/audit", [7; 32]).unwrap();
        let state = AppState::new(store.store.clone(), catalog, clock, key);
        Self {
            store,
            state,
            tokens,
        }
    }

    fn secret(&self, user: &str) -> &str {
        &self.tokens[user].1
    }

    async fn send(&self, request: Request<Body>) -> Page {
        let response = crate::router(self.state.clone())
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// GET `path` signed in as `user` (`None`: no cookie).
    async fn get(&self, user: Option<&str>, path: &str) -> Page {
        let mut request = Request::get(path).header(header::HOST, "127.0.0.1:7070");
        if let Some(user) = user {
            request = request.header(
                header::COOKIE,
                format!("{SESSION_COOKIE}={}", self.secret(user)),
            );
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    /// POST a form to `path` as `user`, with the session's CSRF field unless `csrf` overrides it.
    async fn post(
        &self,
        user: &str,
        path: &str,
        fields: &[(&str, &str)],
        csrf: Option<&str>,
    ) -> Page {
        let token = csrf_for(self.secret(user));
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("csrf", csrf.unwrap_or(&token));
        for (key, value) in fields {
            form.append_pair(key, value);
        }
        let request = Request::post(path)
            .header(header::HOST, "127.0.0.1:7070")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(
                header::COOKIE,
                format!("{SESSION_COOKIE}={}", self.secret(user)),
            )
            .body(Body::from(form.finish()))
            .unwrap();
        self.send(request).await
    }

    /// Signs in through the form with `token`, the browser's way; returns the answer.
    async fn sign_in(&self, token: &str, host: &str) -> Page {
        let page = self.get(None, "/ui/signin").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let nonce = page
            .cookie(SIGNIN_COOKIE)
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .trim_start_matches(&format!("{SIGNIN_COOKIE}="))
            .to_owned();
        assert!(page.body.contains(&nonce), "the form carries its nonce");
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("nonce", &nonce)
            .append_pair("next", "/ui/grants")
            .finish();
        let request = Request::post("/ui/signin")
            .header(header::HOST, host)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, format!("{SIGNIN_COOKIE}={nonce}"))
            .body(Body::from(body))
            .unwrap();
        self.send(request).await
    }

    /// A pending request by alice with `reason`, through the API.
    async fn request(&self, reason: &str) -> String {
        let body = serde_json::json!({
            "resource": "payments-db", "role": "read", "duration": "30m", "reason": reason,
        });
        let request = Request::post("/api/v1/requests")
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.secret("alice")),
            )
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let page = self.send(request).await;
        assert_eq!(page.status, StatusCode::CREATED, "{}", page.body);
        let view: serde_json::Value = serde_json::from_str(&page.body).unwrap();
        view["id"].as_str().unwrap().to_owned()
    }

    async fn events(&self) -> Vec<Event> {
        self.store
            .events(0, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|entry| entry.event.event.clone())
            .collect()
    }
}

/// What an event says, with its request's id (and grant id) replaced by `X`.
fn gist(event: &Event, id: &str) -> (String, String, String) {
    let suffix = id.trim_start_matches("req_");
    let body = format!("{:?}", event.kind).replace(suffix, "X");
    (
        event.kind.type_name().to_owned(),
        event.actor.to_string(),
        body,
    )
}

#[tokio::test]
async fn a_good_token_signs_in_with_a_strict_http_only_cookie() {
    let ui = Ui::new().await;
    let page = ui.sign_in(ui.secret("bob"), "127.0.0.1:7070").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), "/ui/grants");
    let cookie = page.cookie(SESSION_COOKIE).unwrap();
    assert_eq!(
        cookie,
        format!(
            "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age=28800",
            ui.secret("bob")
        ),
        "plain HTTP on loopback: not Secure, or the browser would never send it back"
    );
    // Anywhere else (behind a TLS proxy) the cookie is Secure.
    let page = ui.sign_in(ui.secret("bob"), "latch.example.com").await;
    assert!(
        page.cookie(SESSION_COOKIE).unwrap().ends_with("; Secure"),
        "{:?}",
        page.cookies()
    );
    // The cookie opens the pages; the page names who is signed in.
    let inbox = ui.get(Some("bob"), "/ui/inbox").await;
    assert_eq!(inbox.status, StatusCode::OK);
    assert!(
        inbox.body.contains("Signed in as <strong>bob</strong>"),
        "{}",
        inbox.body
    );
    assert_eq!(
        inbox.headers[header::CONTENT_SECURITY_POLICY],
        CONTENT_SECURITY_POLICY
    );
    assert_eq!(inbox.headers[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn a_bad_or_revoked_token_does_not_sign_in() {
    let ui = Ui::new().await;
    let page = ui.sign_in("latch_0000", "127.0.0.1").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.cookie(SESSION_COOKIE).is_none());
    assert!(
        page.body.contains("unknown or revoked token"),
        "{}",
        page.body
    );

    let page = ui.sign_in("<b>not a token</b>", "127.0.0.1").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(!page.body.contains("<b>not"), "{}", page.body);

    let (id, secret) = ui.tokens["bob"].clone();
    ui.store
        .revoke_token(&id, Actor::System, &*FakeClock::new(T0))
        .await
        .unwrap()
        .unwrap();
    let page = ui.sign_in(&secret, "127.0.0.1").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.cookie(SESSION_COOKIE).is_none());
    // A session opened before the revocation ends at its next click, and its cookie is cleared.
    let page = ui.get(Some("bob"), "/ui/inbox").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/ui/signin?next=/ui/inbox&expired=1");
    assert!(page.cookie(SESSION_COOKIE).unwrap().contains("Max-Age=0"));
}

#[tokio::test]
async fn pages_without_a_session_redirect_to_sign_in() {
    let ui = Ui::new().await;
    for path in [
        "/ui/inbox",
        "/ui/access",
        "/ui/audit?type=grant.",
        "/ui/dashboard",
    ] {
        let page = ui.get(None, path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert!(
            page.location().starts_with("/ui/signin?next=/ui/"),
            "{path}: {}",
            page.location()
        );
    }
    assert_eq!(ui.get(None, "/").await.location(), "/ui/inbox");
    // Only our own pages are a place to go after signing in.
    let page = ui.get(None, "/ui/signin?next=//evil.example/x").await;
    assert!(
        page.body.contains("name=\"next\" value=\"/ui/inbox\""),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn a_form_without_the_sessions_csrf_token_changes_nothing() {
    let ui = Ui::new().await;
    let id = ui.request("INC-1: stuck job").await;
    let before = ui.events().await.len();
    for csrf in ["", "00", &csrf_for(ui.secret("carol"))] {
        let page = ui
            .post(
                "bob",
                &format!("/ui/requests/{id}/approve"),
                &[("comment", "ok")],
                Some(csrf),
            )
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
        assert!(
            page.body.contains("does not belong to your session"),
            "{}",
            page.body
        );
    }
    assert_eq!(ui.events().await.len(), before, "nothing was recorded");

    // The sign-in form needs its own nonce back, as a cookie and as a field.
    let body = format!("token={}&nonce=abc", ui.secret("bob"));
    let request = Request::post("/ui/signin")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, format!("{SIGNIN_COOKIE}=abd"))
        .body(Body::from(body))
        .unwrap();
    let page = ui.send(request).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.cookie(SESSION_COOKIE).is_none());
}

#[tokio::test]
async fn a_hostile_reason_is_shown_as_text() {
    let ui = Ui::new().await;
    let hostile = "<script>alert('x')</script> & <img src=x onerror=alert(1)> \"quoted\"";
    ui.request(hostile).await;
    for (user, path) in [
        ("bob", "/ui/inbox"),
        ("alice", "/ui/access"),
        ("dave", "/ui/audit"),
    ] {
        let page = ui.get(Some(user), path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert!(!page.body.contains("<script>"), "{path}: {}", page.body);
        assert!(!page.body.contains("<img"), "{path}: {}", page.body);
    }
    let inbox = ui.get(Some("bob"), "/ui/inbox").await;
    assert!(
        inbox
            .body
            .contains("&lt;script&gt;alert('x')&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt; &quot;quoted&quot;"),
        "{}",
        inbox.body
    );
}

#[tokio::test]
async fn approving_in_the_page_records_what_the_api_records() {
    let ui = Ui::new().await;
    let by_api = ui.request("INC-1: stuck job").await;
    let by_page = ui.request("INC-1: stuck job").await;

    // bob's inbox offers both; alice's (the requester's) offers neither.
    let inbox = ui.get(Some("bob"), "/ui/inbox").await;
    assert!(inbox.body.contains(&by_api) && inbox.body.contains(&by_page));
    let inbox = ui.get(Some("alice"), "/ui/inbox").await;
    assert!(
        inbox.body.contains("Nothing is waiting for you."),
        "{}",
        inbox.body
    );

    let start = ui.events().await.len();
    let request = Request::post(format!("/api/v1/requests/{by_api}/approve"))
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", ui.secret("bob")),
        )
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"comment":"go ahead"}"#))
        .unwrap();
    assert_eq!(ui.send(request).await.status, StatusCode::OK);
    let middle = ui.events().await.len();
    let page = ui
        .post(
            "bob",
            &format!("/ui/requests/{by_page}/approve"),
            &[("comment", "go ahead")],
            None,
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), "/ui/inbox?ok=approved");
    let events = ui.events().await;
    let api: Vec<_> = events[start..middle]
        .iter()
        .map(|e| gist(e, &by_api))
        .collect();
    let web: Vec<_> = events[middle..].iter().map(|e| gist(e, &by_page)).collect();
    assert_eq!(api, web);
    assert!(
        web.iter()
            .any(|(t, actor, _)| t == "request.approved" && actor == "user:bob"),
        "{web:?}"
    );
    assert!(events[middle..].iter().all(|e| e.subject == by_page));

    let confirmed = ui.get(Some("bob"), "/ui/inbox?ok=approved").await;
    assert!(confirmed.body.contains("Approved."), "{}", confirmed.body);
}

#[tokio::test]
async fn a_refusal_is_a_page_with_the_reason_and_is_recorded() {
    let ui = Ui::new().await;
    let id = ui.request("INC-1: stuck job").await;
    let page = ui
        .post(
            "alice",
            &format!("/ui/requests/{id}/approve"),
            &[("comment", "")],
            None,
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        page.body
            .contains("cannot approve or deny their own request"),
        "{}",
        page.body
    );
    assert!(page.body.contains("role=\"alert\""));
    let last = ui.events().await.pop().unwrap();
    assert!(
        matches!(&last.kind, EventKind::AccessRefused { action, .. } if action == "approve"),
        "{last:?}"
    );
    // Denying needs a reason, as in the API.
    let page = ui
        .post(
            "bob",
            &format!("/ui/requests/{id}/deny"),
            &[("comment", " ")],
            None,
        )
        .await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
}

#[tokio::test]
async fn request_then_revoke_through_the_pages() {
    let ui = Ui::new().await;
    let access = ui.get(Some("alice"), "/ui/access").await;
    assert!(
        access.body.contains("<option value=\"payments-db/read\">"),
        "{}",
        access.body
    );
    let fields = [
        ("target", "payments-db/read"),
        ("duration", "45m"),
        ("reason", "INC-7: look at the ledger"),
        ("ticket", "INC-7"),
    ];
    let page = ui.post("alice", "/ui/requests", &fields, None).await;
    assert_eq!(page.location(), "/ui/access?ok=requested", "{}", page.body);
    let too_long = [
        ("target", "payments-db/write"),
        ("duration", "9h"),
        ("reason", "x"),
    ];
    let page = ui.post("alice", "/ui/requests", &too_long, None).await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );

    let id = ui
        .events()
        .await
        .iter()
        .find(|e| e.kind.type_name() == "request.created")
        .map(|e| e.subject.clone())
        .unwrap();
    ui.post("bob", &format!("/ui/requests/{id}/approve"), &[], None)
        .await;
    let grant = id.replacen("req_", "grt_", 1);
    let grants = ui.get(Some("bob"), "/ui/grants").await;
    assert!(
        grants.body.contains(&format!("/ui/grants/{grant}/revoke")),
        "{}",
        grants.body
    );
    // frank has no standing over alice's grant: he sees no Revoke, and a forged form is refused.
    let page = ui
        .post(
            "frank",
            &format!("/ui/grants/{grant}/revoke"),
            &[("comment", "no")],
            None,
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);

    let page = ui
        .post(
            "bob",
            &format!("/ui/grants/{grant}/revoke"),
            &[("comment", "done early")],
            None,
        )
        .await;
    assert_eq!(page.location(), "/ui/grants?ok=revoked", "{}", page.body);
    let last = ui.events().await.pop().unwrap();
    assert_eq!(last.kind.type_name(), "grant.revoked");
    assert_eq!(last.actor, Actor::user("bob"));
}

#[tokio::test]
async fn auditor_pages_are_for_auditors_and_reports_download() {
    let ui = Ui::new().await;
    ui.request("INC-1: stuck job").await;
    let page = ui.get(Some("alice"), "/ui/audit").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        page.body.contains("needs the `auditor` or `admin` role"),
        "{}",
        page.body
    );
    let nav = ui.get(Some("alice"), "/ui/inbox").await;
    assert!(
        !nav.body.contains("/ui/dashboard"),
        "no link to what she may not open"
    );

    let page = ui
        .get(Some("dave"), "/ui/audit?type=request.&actor=alice")
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("request.created"), "{}", page.body);
    assert!(!page.body.contains("token.created"), "{}", page.body);

    let page = ui
        .get(Some("dave"), "/ui/dashboard?from=2026-11-01&to=2026-12-01")
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Dashboard"));
    let page = ui.get(Some("dave"), "/ui/dashboard?from=yesterday").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.body.contains("`yesterday` is not a time"),
        "{}",
        page.body
    );

    let csv = ui
        .get(
            Some("dave"),
            "/ui/reports/access.csv?from=2026-11-01&to=2026-12-01",
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert_eq!(
        csv.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"latch-access-2026-11-01-2026-12-01.csv\""
    );
    assert_eq!(
        csv.body.lines().count(),
        2,
        "a header and alice's request: {}",
        csv.body
    );
    let html = ui
        .get(
            Some("dave"),
            "/ui/reports/access.html?from=2026-11-01&to=2026-12-01",
        )
        .await;
    assert!(html.body.contains("INC-1: stuck job"));
    let pdf = ui
        .get(
            Some("dave"),
            "/ui/reports/access.pdf?from=2026-11-01&to=2026-12-01",
        )
        .await;
    assert_eq!(pdf.status, StatusCode::OK);
    assert_eq!(pdf.headers[header::CONTENT_TYPE], "application/pdf");
    assert!(pdf.body.starts_with("%PDF-"), "{}", pdf.body);

    // The dashboard filters as the API does, and its report links follow team and resource.
    let filtered = ui
        .get(
            Some("dave"),
            "/ui/dashboard?from=2026-11-01&to=2026-12-01&team=payments&principal=alice",
        )
        .await;
    assert_eq!(filtered.status, StatusCode::OK, "{}", filtered.body);
    assert!(
        filtered
            .body
            .contains("<option value=\"payments\" selected>payments</option>"),
        "{}",
        filtered.body
    );
    assert!(
        filtered.body.contains("access.csv?from="),
        "{}",
        filtered.body
    );
    assert!(
        filtered.body.contains("&amp;team=payments"),
        "{}",
        filtered.body
    );
    let unknown = ui
        .get(
            Some("dave"),
            "/ui/dashboard?from=2026-11-01&to=2026-12-01&team=nobody",
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.body.contains("nobody"), "{}", unknown.body);
    let nobody = ui
        .get(
            Some("dave"),
            "/ui/reports/access.csv?from=2026-11-01&to=2026-12-01&resource=nope",
        )
        .await;
    assert_eq!(nobody.status, StatusCode::BAD_REQUEST);

    // The evidence pack of the year, as an archive that verifies offline.
    let tar = ui.get(Some("dave"), "/ui/evidence.tar?period=2026").await;
    assert_eq!(tar.status, StatusCode::OK, "{}", tar.body);
    assert_eq!(tar.headers[header::CONTENT_TYPE], "application/x-tar");
    assert_eq!(
        tar.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"latch-evidence-2026.tar\""
    );
    let mut files = BTreeMap::new();
    let mut archive = tar::Archive::new(tar.body.as_bytes());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        let inside = path
            .strip_prefix("latch-evidence-2026/")
            .unwrap()
            .to_owned();
        files.insert(inside, bytes);
    }
    assert!(files.contains_key("report.csv"), "{:?}", files.keys());
    latch_evidence::verify(&files, &ui.state.ledger.verifier_key()).unwrap();
    let refused = ui.get(Some("alice"), "/ui/evidence.tar?period=2026").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let bad = ui
        .get(Some("dave"), "/ui/evidence.tar?period=2026-Q5")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
}

/// Q3 2026 closed (the clock is in November): its review is due for payments-db.
async fn review_due(ui: &Ui) {
    ui.store
        .record(vec![Event {
            at: T0,
            actor: Actor::System,
            subject: "review/2026-Q3".into(),
            kind: EventKind::ReviewDue {
                period: "2026-Q3".into(),
                pack_dir: "/var/lib/latch/reviews/2026-Q3".into(),
                resources: vec!["payments-db".into()],
            },
        }])
        .await
        .unwrap();
}

#[tokio::test]
async fn an_owner_lead_records_a_review_through_the_page() {
    let ui = Ui::new().await;
    review_due(&ui).await;
    // bob leads payments, which owns payments-db: the page offers him the form.
    let page = ui.get(Some("bob"), "/ui/reviews").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(">Reviews</a>"), "the nav names the page");
    assert!(page.body.contains("payments-db, 2026-Q3"), "{}", page.body);
    assert!(
        page.body.contains("action=\"/ui/reviews\""),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<label for=\"comment-2026-Q3-payments-db\">Comment</label>")
    );
    let sent = ui
        .post(
            "bob",
            "/ui/reviews",
            &[
                ("period", "2026-Q3"),
                ("resource", "payments-db"),
                ("outcome", "changes_needed"),
                ("comment", "alice holds write too often: <make it a role>"),
            ],
            None,
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    assert_eq!(sent.location(), "/ui/reviews?ok=reviewed");
    let last = ui.events().await.pop().unwrap();
    assert_eq!(last.actor.to_string(), "user:bob");
    assert_eq!(last.subject, "review/2026-Q3/payments-db");
    assert!(
        matches!(&last.kind, EventKind::ReviewRecorded { period, resource, outcome, comment }
            if period == "2026-Q3" && resource == "payments-db" && outcome == "changes_needed"
                && comment.starts_with("alice holds write")),
        "{last:?}"
    );
    let page = ui.get(Some("bob"), "/ui/reviews?ok=reviewed").await;
    assert!(page.body.contains("Review recorded in the ledger."));
    assert!(
        page.body
            .contains("<strong>Changes needed</strong> by user:bob"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("&lt;make it a role&gt;"),
        "the comment is shown as text"
    );
}

#[tokio::test]
async fn others_get_no_review_form_and_a_forged_one_is_refused() {
    let ui = Ui::new().await;
    review_due(&ui).await;
    // The auditor sees the review, and may download the pack, but records nothing.
    let page = ui.get(Some("dave"), "/ui/reviews").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("payments-db, 2026-Q3"), "{}", page.body);
    assert!(page.body.contains("/ui/evidence.tar?period=2026-Q3"));
    assert!(
        !page.body.contains("action=\"/ui/reviews\""),
        "{}",
        page.body
    );
    // alice is no lead: no Reviews entry, and the page is refused with the reason.
    let inbox = ui.get(Some("alice"), "/ui/inbox").await;
    assert!(!inbox.body.contains(">Reviews</a>"));
    let page = ui.get(Some("alice"), "/ui/reviews").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("may not read reviews"), "{}", page.body);
    assert!(!page.body.contains("action=\"/ui/reviews\""));
    // A form she makes up herself, with her own session's CSRF token, is refused and recorded.
    let forged = ui
        .post(
            "alice",
            "/ui/reviews",
            &[
                ("period", "2026-Q3"),
                ("resource", "payments-db"),
                ("outcome", "approved"),
                ("comment", "all fine"),
            ],
            None,
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    assert!(
        forged
            .body
            .contains("`alice` may not record the review of `payments-db`"),
        "{}",
        forged.body
    );
    let last = ui.events().await.pop().unwrap();
    assert!(
        matches!(&last.kind, EventKind::AccessRefused { action, .. } if action == "record review"),
        "{last:?}"
    );
    // Without the session's CSRF token nothing is recorded, even for bob.
    let before = ui.events().await.len();
    let stale = ui
        .post(
            "bob",
            "/ui/reviews",
            &[
                ("period", "2026-Q3"),
                ("resource", "payments-db"),
                ("outcome", "approved"),
                ("comment", "ok"),
            ],
            Some("0000"),
        )
        .await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN);
    assert_eq!(ui.events().await.len(), before);
    assert!(
        !ui.events()
            .await
            .iter()
            .any(|e| matches!(e.kind, EventKind::ReviewRecorded { .. }))
    );
}
