//! The web UI in a real browser: headless Chromium, driven over WebDriver by chromedriver, against
//! a real `latch serve`. A person's path: sign in with a token, approve a request from the inbox,
//! revoke the grant, sign out, and open the dashboard as an admin. Screenshots of each step are
//! saved under `target/browser-artifacts/`; with `LATCH_UPDATE_DOCS=1` the dashboard's also
//! replaces `docs/dashboard.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them): without them the
//! test fails and says so; it never skips.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use latch_api::GrantView;

use super::{Server, block_on};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free loopback port; killed on drop.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start() -> Self {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(path).exists(),
                "the browser test needs `{path}`: install it with `apt-get install -y {package}` (.ci/run does)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start `{CHROMEDRIVER}`: {err}"));
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _profile: tempfile::tempdir().unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {port} within 30s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    async fn browser(&self) -> Client {
        let profile = format!("--user-data-dir={}", self._profile.path().display());
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1366,768", profile,
                ],
            },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|err| panic!("chromium did not start under chromedriver: {err}"))
    }
}

/// Where screenshots go: `target/browser-artifacts/`.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("browser-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(browser: &Client, name: &str) -> PathBuf {
    let png = browser.screenshot().await.unwrap();
    let path = artifacts().join(name);
    std::fs::write(&path, png).unwrap();
    path
}

/// The page's text, for assertions that name what was there instead.
async fn text(browser: &Client) -> String {
    browser
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits until the page's `h1` says `want` (a click navigates on its own time), or fails with
/// what the page says instead.
async fn expect_heading(browser: &Client, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = match browser.find(Locator::Css("h1")).await {
            Ok(h1) => h1.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if found == want {
            return;
        }
        if Instant::now() > deadline {
            let page = browser.source().await.unwrap_or_default();
            panic!("expected the page `{want}`, found `{found}`:\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for the confirmation an action leads to (`role=status`).
async fn expect_notice(browser: &Client, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(notice) = browser.find(Locator::Css("[role=status]")).await
            && notice.text().await.unwrap_or_default().contains(want)
        {
            return;
        }
        if Instant::now() > deadline {
            let page = browser.source().await.unwrap_or_default();
            panic!("expected the confirmation `{want}`:\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn sign_in(browser: &Client, base: &str, token: &str) {
    browser.goto(&format!("{base}/")).await.unwrap();
    expect_heading(browser, "Sign in to latch").await;
    let field = browser.find(Locator::Id("token")).await.unwrap();
    field.send_keys(token).await.unwrap();
    browser
        .find(Locator::Css("form.signin button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    expect_heading(browser, "Inbox").await;
}

#[test]
fn a_person_signs_in_approves_revokes_and_reads_the_dashboard() {
    let driver = Driver::start();
    let server = Server::start();
    let (alice, bob, erin) = (
        server.token("alice"),
        server.token("bob"),
        server.token("erin"),
    );
    let request = server.pending_request(&alice, "INC-42: reconcile <yesterday's> payouts");
    // Some history for the dashboard.
    let denied = server.pending_request(&alice, "INC-43: check a refund");
    server
        .run_as(&bob, &["deny", &denied.id, "--reason", "use the replica"])
        .success();
    server.pending_request(&alice, "INC-44: stuck settlement job");
    let grant_id = request.id.replacen("req_", "grt_", 1);

    block_on(async {
        let browser = driver.browser().await;
        browser.set_window_size(1366, 768).await.unwrap();
        let base = server.url.as_str();

        // The first Tab lands on the skip link: the page works from the keyboard.
        browser.goto(&format!("{base}/")).await.unwrap();
        expect_heading(&browser, "Sign in to latch").await;
        browser
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .send_keys("\u{E004}")
            .await
            .unwrap();
        let focused = browser.active_element().await.unwrap();
        assert_eq!(focused.text().await.unwrap(), "Skip to main content");
        screenshot(&browser, "01-sign-in.png").await;

        // bob signs in and finds alice's request in his inbox, her reason shown as she wrote it.
        sign_in(&browser, base, &bob).await;
        let inbox = text(&browser).await;
        assert!(
            inbox.contains("INC-42: reconcile <yesterday's> payouts")
                && inbox.contains(&request.id),
            "{inbox}"
        );
        screenshot(&browser, "02-inbox.png").await;
        browser
            .find(Locator::Id(&format!("comment-{}", request.id)))
            .await
            .unwrap()
            .send_keys("checked the ticket")
            .await
            .unwrap();
        browser
            .find(Locator::Css(&format!(
                "form[action='/ui/requests/{}/approve'] button:not(.danger)",
                request.id
            )))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        expect_notice(&browser, "Approved.").await;
        let after = text(&browser).await;
        assert!(
            !after.contains(&request.id),
            "decided requests leave the inbox: {after}"
        );

        // The grant is active; bob revokes it with a reason.
        browser.goto(&format!("{base}/ui/grants")).await.unwrap();
        expect_heading(&browser, "Grants and sessions").await;
        assert!(text(&browser).await.contains(&grant_id));
        screenshot(&browser, "03-grants.png").await;
        browser
            .find(Locator::Id(&format!("reason-{grant_id}")))
            .await
            .unwrap()
            .send_keys("done early")
            .await
            .unwrap();
        browser
            .find(Locator::Css(&format!(
                "form[action='/ui/grants/{grant_id}/revoke'] button"
            )))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        expect_notice(&browser, "Grant revoked").await;
        let after = text(&browser).await;
        assert!(!after.contains(&grant_id), "{after}");

        // Signing out ends the session: the pages ask to sign in again.
        browser
            .find(Locator::Css("form.signout button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        expect_heading(&browser, "Sign in to latch").await;
        browser.goto(&format!("{base}/ui/grants")).await.unwrap();
        expect_heading(&browser, "Sign in to latch").await;

        // erin, an admin, reads the dashboard.
        sign_in(&browser, base, &erin).await;
        browser
            .find(Locator::LinkText("Dashboard"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        expect_heading(&browser, "Dashboard").await;
        let dashboard = text(&browser).await;
        assert!(dashboard.contains("Requests"), "{dashboard}");
        screenshot(&browser, "04-dashboard.png").await;
        // The whole dashboard in one picture, for the README.
        browser.set_window_size(1366, 1400).await.unwrap();
        let shot = screenshot(&browser, "05-dashboard-full.png").await;
        if std::env::var_os("LATCH_UPDATE_DOCS").is_some() {
            let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/dashboard.png");
            std::fs::copy(&shot, docs).unwrap();
        }
        browser.close().await.unwrap();
    });

    // What the browser did is what the API shows.
    let grants: Vec<GrantView> = server
        .run_as(&bob, &["grants", "--output", "json"])
        .success()
        .json();
    let grant = grants.iter().find(|g| g.id == grant_id).unwrap();
    assert_eq!(
        (
            grant.state.as_str(),
            grant.revoked_by.as_deref(),
            grant.revoke_reason.as_deref()
        ),
        ("revoked", Some("bob"), Some("done early"))
    );
}
