//! End to end: the real `latch` binary serving the quickstart organisation on port 0, driven
//! through its CLI the way the README's walkthrough drives it. Every client runs with a clean
//! environment (no `LATCH_*` variables, a private `HOME`), so nothing of the developer's leaks in.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use latch_api::{EventView, GrantView, RequestView, WhoAmI};

mod analytics;
mod browser;
mod evidence;
mod notify;
mod replicas;
mod reviews;

const LATCH: &str = env!("CARGO_BIN_EXE_latch");
const QUICKSTART: &str = include_str!("../../../../examples/quickstart/latch.toml");

/// What one `latch` run did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn success(self) -> Self {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self
    }

    /// Exits with `code` and says `needle` on stderr.
    fn fails(self, code: i32, needle: &str) -> Self {
        assert_eq!(self.code, code, "expected exit {code}: {self:#?}");
        assert!(self.stderr.starts_with("error: "), "{self:#?}");
        assert!(
            self.stderr.contains(needle),
            "expected `{needle}` on stderr: {self:#?}"
        );
        self
    }

    fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("not the expected JSON ({err}): {self:#?}"))
    }
}

/// Runs `latch ARGS` with only `env` set of latch's variables, `HOME` and `XDG_CONFIG_HOME`
/// pointing into `home`.
fn latch(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut command = Command::new(LATCH);
    command
        .args(args)
        .env_remove("LATCH_SERVER")
        .env_remove("LATCH_TOKEN")
        .env_remove("LATCH_CONFIG")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("xdg"))
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    let output = command.output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Polls `condition` until it holds; fails after `limit`.
fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The quickstart config with its data in `data`, a faster scheduler and, when given, its store
/// in the PostgreSQL database at `database_url`.
fn config_text(data: &Path, database_url: Option<&str>) -> String {
    let mut text = QUICKSTART.to_owned();
    let mut edits = vec![
        (
            "data_dir = \"data\"".to_owned(),
            format!("data_dir = {:?}", data.to_str().unwrap()),
        ),
        (
            "scheduler_interval = \"100ms\"".to_owned(),
            "scheduler_interval = \"50ms\"".to_owned(),
        ),
        // Every test server has its own gateway port.
        (
            "listen = \"127.0.0.1:6432\"".to_owned(),
            "listen = \"127.0.0.1:0\"".to_owned(),
        ),
        // The server decides on the quickstart's own Cedar policies.
        (
            "files = [\"policies/default.cedar\"]".to_owned(),
            format!(
                "files = [{:?}]",
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../examples/quickstart/policies/default.cedar"
                )
            ),
        ),
    ];
    if let Some(url) = database_url {
        edits.push((
            "[server]\n".to_owned(),
            format!("[server]\ndatabase_url = {url:?}\n"),
        ));
    }
    for (from, to) in edits {
        assert!(
            text.contains(&from),
            "the quickstart config no longer has `{from}`"
        );
        text = text.replacen(&from, &to, 1);
    }
    text
}

/// Starts `latch serve --config CONFIG` on port 0, its stderr appended to `log`; the receiver
/// gets its stdout lines.
fn spawn_serve(config: &Path, log: &Path) -> (Child, mpsc::Receiver<String>) {
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut child = Command::new(LATCH)
        .args([
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env_remove("LATCH_CONFIG")
        .env("LATCH_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    // Keeps reading so that the server never writes into a closed pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    (child, received)
}

/// The API URL and the gateway address (`host:port`, when enabled) a starting server prints.
fn wait_for_addresses(received: &mpsc::Receiver<String>, log: &Path) -> (String, Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut gateway = None;
    let url = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok(line) => {
                if let Some(address) = line.strip_prefix("latch gateway listening on postgresql://")
                {
                    gateway = Some(address.to_owned());
                }
                match line.strip_prefix("latch listening on ") {
                    Some(url) => break url.to_owned(),
                    None => continue,
                }
            }
            Err(err) => panic!(
                "latch serve did not say where it listens ({err}); its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            ),
        }
    };
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    (url, gateway)
}

/// A `latch serve` child on a free port with its own data directory; killed on drop.
struct Server {
    child: Child,
    url: String,
    /// The gateway's `host:port`.
    gateway: String,
    config: PathBuf,
    dir: tempfile::TempDir,
    /// The PostgreSQL database the server keeps its store in (SQLite in `dir` when `None`);
    /// dropped after the server is killed, since fields drop after `Drop::drop`.
    database: Option<PgDatabase>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> Self {
        Self::start_with(None)
    }

    /// A server whose store is `database` (a fresh PostgreSQL database), or SQLite in its data
    /// directory.
    /// Audit checkpoints off: their findings would join the ledger at moments of their own, and
    /// most tests count events.
    fn start_with(database: Option<PgDatabase>) -> Self {
        Self::start_configured(database, |_| "\n[audit]\nenabled = false\n".to_owned())
    }

    /// A server whose config is the quickstart's plus what `extra` returns for its directory.
    fn start_configured(database: Option<PgDatabase>, extra: impl FnOnce(&Path) -> String) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let url = database.as_ref().map(|db| db.url.as_str());
        let text = config_text(&data, url) + &extra(dir.path());
        Self::spawn(dir, text, database)
    }

    /// `latch serve` with config `text`, written into `dir` (which also gets the CLI's home).
    fn spawn(dir: tempfile::TempDir, text: String, database: Option<PgDatabase>) -> Self {
        let config = dir.path().join("latch.toml");
        std::fs::write(&config, text).unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();

        let log = dir.path().join("serve.log");
        let (child, received) = spawn_serve(&config, &log);
        // The guard exists before the wait, so a server that fails to start is still killed.
        let mut server = Self {
            child,
            url: String::new(),
            gateway: String::new(),
            config,
            dir,
            database,
        };
        let (url, gateway) = wait_for_addresses(&received, &log);
        server.url = url;
        server.gateway = gateway.unwrap_or_default();
        server
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// A new token for `user`, made the README's way.
    fn token(&self, user: &str) -> String {
        let run = self.admin(&["token", "create", "--user", user]).success();
        let token = run.stdout.trim().to_owned();
        assert!(token.starts_with("latch_"), "{run:#?}");
        token
    }

    fn admin(&self, args: &[&str]) -> Run {
        let config = self.config.to_str().unwrap();
        let args: Vec<&str> = ["admin"]
            .iter()
            .chain(args)
            .chain(&["--config", config])
            .copied()
            .collect();
        latch(&self.home(), &[], &args)
    }

    /// `latch ARGS` with `LATCH_SERVER` and `LATCH_TOKEN` set. Whatever happens, the token is
    /// never printed.
    fn run_as(&self, token: &str, args: &[&str]) -> Run {
        let run = latch(
            &self.home(),
            &[("LATCH_SERVER", &self.url), ("LATCH_TOKEN", token)],
            args,
        );
        assert!(
            !run.stdout.contains(token) && !run.stderr.contains(token),
            "the token was printed: {run:#?}"
        );
        run
    }

    fn pending_request(&self, token: &str, reason: &str) -> RequestView {
        let run = self
            .run_as(
                token,
                &[
                    "request",
                    "payments-db",
                    "--role",
                    "read",
                    "--for",
                    "30m",
                    "--reason",
                    reason,
                    "--output",
                    "json",
                ],
            )
            .success();
        let request: RequestView = run.json();
        assert_eq!(
            (request.state.as_str(), request.reason.as_str()),
            ("pending", reason)
        );
        request
    }
}

#[test]
fn walkthrough_request_approve_then_expire() {
    let server = Server::start();
    let (alice, bob) = (server.token("alice"), server.token("bob"));

    let run = server
        .run_as(
            &alice,
            &[
                "request",
                "payments-db",
                "--role",
                "read",
                "--for",
                "3s",
                "--reason",
                "INC-1: stuck job",
            ],
        )
        .success();
    assert!(run.stdout.starts_with("request req_"), "{run:#?}");
    assert!(
        run.stdout
            .contains(" created (pending): read on payments-db for 3s"),
        "{run:#?}"
    );

    // bob, a lead of the owner team, sees it waiting.
    let pending: Vec<RequestView> = server
        .run_as(&bob, &["requests", "--pending", "--output", "json"])
        .success()
        .json();
    let [request] = pending.as_slice() else {
        panic!("expected one pending request: {pending:#?}")
    };
    assert_eq!(
        (
            request.requester.as_str(),
            request.role.as_str(),
            request.reason.as_str(),
            request.duration_secs
        ),
        ("alice", "read", "INC-1: stuck job", 3)
    );
    let table = server.run_as(&bob, &["requests", "--pending"]).success();
    assert!(table.stdout.starts_with("ID "), "{table:#?}");
    assert!(
        table.stdout.contains(&request.id) && table.stdout.contains("INC-1: stuck job"),
        "{table:#?}"
    );

    server
        .run_as(&alice, &["approve", &request.id])
        .fails(1, "cannot approve or deny their own request");

    let run = server
        .run_as(&bob, &["approve", &request.id, "--comment", "go ahead"])
        .success();
    assert!(
        run.stdout.contains(" approved: grant grt_") && run.stdout.contains(" active until "),
        "{run:#?}"
    );

    let active = server.run_as(&alice, &["grants", "--active"]).success();
    let grant_id = request.id.replacen("req_", "grt_", 1);
    assert!(
        active.stdout.contains(&grant_id) && active.stdout.contains("active"),
        "{active:#?}"
    );

    // The scheduler ends it on time, with nobody asking.
    wait_until("the grant is expired", Duration::from_secs(20), || {
        let grants: Vec<GrantView> = server
            .run_as(&bob, &["grants", "--output", "json"])
            .success()
            .json();
        grants
            .iter()
            .any(|g| g.id == grant_id && g.state == "expired")
    });
    let active: Vec<GrantView> = server
        .run_as(&alice, &["grants", "--active", "--output", "json"])
        .success()
        .json();
    assert!(active.is_empty(), "{active:#?}");
    server
        .run_as(&bob, &["revoke", &grant_id, "--reason", "done"])
        .fails(1, "already expired");
}

#[test]
fn deny_cancel_revoke_and_the_ledger() {
    let server = Server::start();
    let (alice, bob, dave) = (
        server.token("alice"),
        server.token("bob"),
        server.token("dave"),
    );

    let first = server.pending_request(&alice, "INC-2: look at the queue");
    let run = server
        .run_as(&bob, &["deny", &first.id, "--reason", "use the replica"])
        .success();
    assert_eq!(run.stdout, format!("request {} denied\n", first.id));
    server
        .run_as(&bob, &["approve", &first.id])
        .fails(1, "is denied");

    let second = server.pending_request(&alice, "INC-3: changed my mind");
    server
        .run_as(&bob, &["cancel", &second.id])
        .fails(1, "only the requester (`alice`) or an admin may cancel");
    let cancelled: RequestView = server
        .run_as(&alice, &["cancel", &second.id, "--output", "json"])
        .success()
        .json();
    assert_eq!(cancelled.state, "cancelled");

    let third = server.pending_request(&alice, "INC-4: fix the job");
    server
        .run_as(&dave, &["approve", &third.id])
        .fails(1, "may not decide on request");
    server.run_as(&bob, &["approve", &third.id]).success();
    let grant_id = third.id.replacen("req_", "grt_", 1);
    let run = server
        .run_as(&bob, &["revoke", &grant_id, "--reason", "fixed"])
        .success();
    assert!(
        run.stdout.starts_with(&format!(
            "grant {grant_id} revoked: alice no longer has read on payments-db"
        )),
        "{run:#?}"
    );

    let mine: Vec<RequestView> = server
        .run_as(&alice, &["requests", "--mine", "--output", "json"])
        .success()
        .json();
    let states: Vec<&str> = mine.iter().map(|r| r.state.as_str()).collect();
    assert_eq!(states, ["revoked", "cancelled", "denied"], "newest first");

    // dave the auditor reads the ledger; alice may not.
    let events: Vec<EventView> = server
        .run_as(&dave, &["events", "--output", "json"])
        .success()
        .json();
    for expected in [
        "request.created",
        "request.denied",
        "request.cancelled",
        "grant.issued",
        "grant.revoked",
        "access.refused",
    ] {
        assert!(
            events.iter().any(|e| e.event_type == expected),
            "no `{expected}` in {events:#?}"
        );
    }
    let after: Vec<EventView> = server
        .run_as(
            &dave,
            &["events", "--after", "2", "--limit", "1", "--output", "json"],
        )
        .success()
        .json();
    assert_eq!(after.iter().map(|e| e.seq).collect::<Vec<_>>(), [3]);
    let table = server.run_as(&dave, &["events"]).success();
    assert!(
        table.stdout.starts_with("SEQ ") && table.stdout.contains("grant.revoked"),
        "{table:#?}"
    );
    server
        .run_as(&alice, &["events"])
        .fails(1, "may not read the ledger");
}

#[test]
fn refusals_exit_1_with_the_servers_reason() {
    let server = Server::start();
    let alice = server.token("alice");
    let request = |role: &str, duration: &str| {
        server.run_as(
            &alice,
            &[
                "request",
                "payments-db",
                "--role",
                role,
                "--for",
                duration,
                "--reason",
                "INC-5",
            ],
        )
    };

    request("wirte", "30m").fails(
        1,
        "unknown role `wirte` for resource `payments-db` (roles: read, write)",
    );
    // Durations are checked by the server, like every other field of a request.
    request("read", "3x").fails(1, "invalid duration `3x`: unknown unit");
    request("write", "2h").fails(
        1,
        "duration `2h` is above the maximum `1h` for role `write`",
    );
    server
        .run_as(&alice, &["approve", "req_01doesnotexist"])
        .fails(1, "no request `req_01doesnotexist`");
    server
        .run_as(&alice, &["approve", "../whoami"])
        .fails(1, "no request `../whoami`");

    // A revoked token stops working at once.
    let me: WhoAmI = server
        .run_as(&alice, &["whoami", "--output", "json"])
        .success()
        .json();
    assert_eq!(me.user, "alice");
    server.admin(&["token", "revoke", &me.token_id]).success();
    server
        .run_as(&alice, &["whoami"])
        .fails(1, "unknown or revoked token");
}

#[test]
fn usage_mistakes_exit_2() {
    let home = tempfile::tempdir().unwrap();
    latch(home.path(), &[("LATCH_TOKEN", "latch_x")], &["whoami"]).fails(2, "set LATCH_SERVER");
    latch(
        home.path(),
        &[("LATCH_SERVER", "http://127.0.0.1:9")],
        &["grants"],
    )
    .fails(2, "set LATCH_TOKEN");
    latch(
        home.path(),
        &[],
        &["whoami", "--server", "127.0.0.1:7070", "--token", "latch_x"],
    )
    .fails(2, "invalid server URL");
    // clap's own checks.
    assert_eq!(
        latch(
            home.path(),
            &[],
            &["request", "payments-db", "--role", "read"]
        )
        .code,
        2
    );
    assert_eq!(
        latch(home.path(), &[], &["requests", "--limit", "0"]).code,
        2
    );
    assert_eq!(
        latch(home.path(), &[], &["grants", "--output", "yaml"]).code,
        2
    );
}

#[test]
fn an_unreachable_server_is_named_with_a_hint() {
    let home = tempfile::tempdir().unwrap();
    // A port that was free a moment ago: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let run = latch(
        home.path(),
        &[("LATCH_SERVER", &url), ("LATCH_TOKEN", "latch_secret")],
        &["requests"],
    );
    run.fails(1, &format!("cannot connect to the latch server at `{url}` (connection refused): start one with `latch serve"));
}

#[test]
fn login_saves_a_private_profile_then_commands_need_no_flags() {
    let server = Server::start();
    let alice = server.token("alice");
    let home = tempfile::tempdir().unwrap();
    let profile = home.path().join("xdg").join("latch").join("profile.toml");

    // A token the server refuses is not saved.
    latch(
        home.path(),
        &[],
        &["login", "--server", &server.url, "--token", "latch_0000"],
    )
    .fails(1, "unknown or revoked token");
    assert!(!profile.exists());
    latch(home.path(), &[], &["login", "--server", &server.url]).fails(2, "`latch login` needs");

    let run = latch(
        home.path(),
        &[],
        &["login", "--server", &server.url, "--token", &alice],
    )
    .success();
    assert_eq!(
        run.stdout,
        format!(
            "logged in to {} as alice; profile saved to {}\n",
            server.url,
            profile.display()
        )
    );
    assert!(
        !run.stdout.contains(&alice) && !run.stderr.contains(&alice),
        "{run:#?}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&profile).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }

    let me: WhoAmI = latch(home.path(), &[], &["whoami", "--output", "json"])
        .success()
        .json();
    assert_eq!(me.user, "alice");
    let request: RequestView = latch(
        home.path(),
        &[],
        &[
            "request",
            "payments-db",
            "--role",
            "read",
            "--for",
            "1h",
            "--reason",
            "INC-6",
            "--ticket",
            "INC-6",
            "--output",
            "json",
        ],
    )
    .success()
    .json();
    assert_eq!(
        (request.requester.as_str(), request.ticket.as_deref()),
        ("alice", Some("INC-6"))
    );
    // A flag beats the profile; the profile's token is not sent to another server.
    latch(
        home.path(),
        &[],
        &["whoami", "--server", "http://localhost:9"],
    )
    .fails(2, "the profile saved by `latch login` is for");

    let run = latch(home.path(), &[], &["logout"]).success();
    assert_eq!(
        run.stdout,
        format!("removed profile {}\n", profile.display())
    );
    assert!(!profile.exists());
    latch(home.path(), &[], &["whoami"]).fails(2, "no latch server given");
}

impl Server {
    /// Stops the server (as on SIGKILL: nothing gets to flush), leaving its data behind.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn config_arg(&self) -> String {
        self.config.to_str().unwrap().to_owned()
    }
}

/// Proofs from the server check out locally; after the server is gone the ledger verifies
/// offline, from the store and from an exported bundle; and every kind of tampering is named.
#[test]
fn the_ledger_proves_verifies_offline_and_names_tampering() {
    // Event 1 is the policy set loaded at start, 2 and 3 the tokens, 4 to 6 the requests.
    let mut server = Server::start();
    let alice = server.token("alice");
    let dave = server.token("dave");
    for reason in ["INC-1", "INC-2", "INC-3"] {
        server.pending_request(&alice, reason);
    }
    let checkpoint = server.run_as(&dave, &["ledger", "checkpoint"]).success();
    assert!(
        checkpoint.stdout.starts_with("latch.local/audit\n6\n"),
        "{checkpoint:#?}"
    );
    let proved = server.run_as(&dave, &["ledger", "prove", "5"]).success();
    assert!(
        proved
            .stdout
            .starts_with("event 5 is in the checkpoint of size 6"),
        "{proved:#?}"
    );
    server.pending_request(&alice, "INC-4");
    server.run_as(&dave, &["ledger", "checkpoint"]).success();
    let consistent = server
        .run_as(&dave, &["ledger", "consistency", "--from", "6"])
        .success();
    assert!(
        consistent
            .stdout
            .starts_with("the checkpoint of size 7 extends the one of size 6"),
        "{consistent:#?}"
    );
    server
        .run_as(&alice, &["ledger", "checkpoint"])
        .fails(1, "may not read the ledger");
    server.kill();

    let config = server.config_arg();
    let home = server.home();
    let verified = latch(&home, &[], &["ledger", "verify", "--config", &config]).success();
    assert!(
        verified
            .stdout
            .starts_with("ledger ok: 8 events, tree size 8"),
        "{verified:#?}"
    );
    assert!(
        verified.stdout.contains(
            "requests and their grants, 0 gateway sessions and their statements) match a replay"
        ),
        "{verified:#?}"
    );

    let bundle = server.dir.path().join("bundle");
    let bundle_arg = bundle.to_str().unwrap().to_owned();
    latch(
        &home,
        &[],
        &[
            "ledger",
            "export",
            "--config",
            &config,
            "--out",
            &bundle_arg,
        ],
    )
    .success();
    let key = latch(&home, &[], &["ledger", "public-key", "--config", &config])
        .success()
        .stdout
        .trim()
        .to_owned();
    latch(
        &home,
        &[],
        &["ledger", "verify", "--bundle", &bundle_arg, "--key", &key],
    )
    .success();
    latch(
        &home,
        &[],
        &[
            "ledger",
            "export",
            "--config",
            &config,
            "--out",
            &bundle_arg,
        ],
    )
    .fails(1, "is not empty");

    let events = std::fs::read_to_string(bundle.join("events.jsonl")).unwrap();
    let lines: Vec<&str> = events.lines().collect();
    let tampered = |name: &str, lines: Vec<String>| {
        let dir = server.dir.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        for file in ["checkpoints.jsonl", "public-key.txt"] {
            std::fs::copy(bundle.join(file), dir.join(file)).unwrap();
        }
        std::fs::write(dir.join("events.jsonl"), lines.join("\n") + "\n").unwrap();
        latch(
            &home,
            &[],
            &[
                "ledger",
                "verify",
                "--bundle",
                dir.to_str().unwrap(),
                "--key",
                &key,
            ],
        )
    };
    let owned = || lines.iter().map(|l| l.to_string()).collect::<Vec<_>>();

    let mut edited = owned();
    edited[3] = edited[3].replace("INC-1", "INC-9");
    tampered("edited", edited).fails(1, "index 0..5: hash mismatch");
    let mut deleted = owned();
    deleted.remove(2);
    tampered("deleted", deleted)
        .fails(1, "index 2: missing event: expected event 3, found event 4");
    let mut swapped = owned();
    swapped.swap(4, 5);
    tampered("swapped", swapped)
        .fails(1, "index 4: missing event: expected event 5, found event 6");
    let mut inserted = owned();
    inserted.insert(1, lines[1].to_owned());
    tampered("inserted", inserted).fails(1, "index 2: event 2 is out of place");
    tampered("truncated", owned()[..5].to_vec()).fails(1, "index 5: missing events");
    // Someone else's key of the same name: the checkpoints were not signed by it.
    let wrong_key = latch_ledger::SigningKey::from_seed("latch.local/audit", [9; 32])
        .unwrap()
        .verifier_key()
        .to_string();
    latch(
        &home,
        &[],
        &[
            "ledger",
            "verify",
            "--bundle",
            &bundle_arg,
            "--key",
            &wrong_key,
        ],
    )
    .fails(1, "bad signature");
}

/// schemathesis (from PyPI; CI installs it) fuzzes every documented operation with a valid
/// admin token, for a bounded time: no response may be a 5xx or break the OpenAPI schema.
#[test]
fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let server = Server::start();
    let erin = server.token("erin");
    let alice = server.token("alice");
    server.pending_request(&alice, "INC-1: seed data for the fuzzer");
    let schema = format!("{}/api/v1/openapi.json", server.url);
    let output = Command::new("st")
        .args([
            "run",
            &schema,
            "--header",
            &format!("Authorization: Bearer {erin}"),
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-time",
            "60",
            "--workers",
            "2",
            "--request-timeout",
            "10",
        ])
        // Its reports and cache go to the test's own directory, not the source tree.
        .current_dir(server.dir.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| {
            panic!("cannot run schemathesis (`st`): {err}; install it with `pip install 'schemathesis>=4,<5'`")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("passed"), "{stdout}");
}

// ─── tampering and crashes, on both stores ───────────────────────────────────────────────────

use latch_testkit::Backend;

/// Runs `future` to completion on a runtime of its own (the tests themselves are synchronous).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// A uniquely named database on the test PostgreSQL server (`LATCH_TEST_DATABASE_URL`, by
/// default the local one), dropped on drop. Creating one fails the test when the server is
/// unreachable: a PostgreSQL test never passes without PostgreSQL.
struct PgDatabase {
    name: String,
    url: String,
}

impl PgDatabase {
    fn create() -> Self {
        let (name, url) = block_on(latch_testkit::create_postgres_database());
        Self { name, url }
    }

    /// A copy of this database, made by PostgreSQL itself (`CREATE DATABASE … TEMPLATE`).
    fn clone_as(&self, suffix: &str) -> Self {
        use sqlx::Connection;
        let name = format!("{}_{suffix}", self.name);
        let admin = latch_testkit::postgres_admin_url();
        block_on(async {
            let mut conn = sqlx::AnyConnection::connect(&admin).await.unwrap();
            // The template must have no other session; a killed server's sessions end shortly.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let create = format!("CREATE DATABASE {name} TEMPLATE {}", self.name);
                match sqlx::query(&create).execute(&mut conn).await {
                    Ok(_) => break,
                    Err(err) if Instant::now() < deadline => {
                        assert!(
                            err.to_string().contains("being accessed by other users"),
                            "{err}"
                        );
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(err) => panic!("cannot clone database `{}`: {err}", self.name),
                }
            }
            let _ = conn.close().await;
        });
        let url = latch_testkit::with_database(&admin, &name);
        Self { name, url }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        latch_testkit::drop_postgres_database(&self.name);
    }
}

/// Connects sqlx to the store at `url` (`sqlite://…` or `postgres://…`).
async fn connect(url: &str) -> sqlx::AnyConnection {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(url)
        .await
        .unwrap_or_else(|err| panic!("cannot open the store at `{url}`: {err}"))
}

/// Runs one plain SQL statement.
async fn exec(db: &mut sqlx::AnyConnection, sql: &str) {
    sqlx::query(sql)
        .execute(&mut *db)
        .await
        .unwrap_or_else(|err| panic!("`{sql}`: {err}"));
}

/// One row of `events`, every column.
#[derive(Clone, Debug, sqlx::FromRow)]
struct EventRow {
    seq: i64,
    r#type: String,
    actor: String,
    subject: String,
    at_ms: i64,
    body: String,
    leaf_hash: String,
}

async fn event_rows(db: &mut sqlx::AnyConnection) -> Vec<EventRow> {
    sqlx::query_as(
        "SELECT seq, type, actor, subject, at_ms, body, leaf_hash FROM events ORDER BY seq",
    )
    .fetch_all(&mut *db)
    .await
    .unwrap()
}

/// Writes `row` at its `seq`, every column, as an attacker with write access to the table can.
async fn insert_event(db: &mut sqlx::AnyConnection, row: &EventRow) {
    sqlx::query(
        "INSERT INTO events (seq, type, actor, subject, at_ms, body, leaf_hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(row.seq)
    .bind(&row.r#type)
    .bind(&row.actor)
    .bind(&row.subject)
    .bind(row.at_ms)
    .bind(&row.body)
    .bind(&row.leaf_hash)
    .execute(&mut *db)
    .await
    .unwrap();
}

/// Overwrites every column but `seq` of the row at `row.seq`.
async fn overwrite_event(db: &mut sqlx::AnyConnection, row: &EventRow) {
    sqlx::query(
        "UPDATE events SET type = $1, actor = $2, subject = $3, at_ms = $4, body = $5, leaf_hash = $6 WHERE seq = $7",
    )
    .bind(&row.r#type)
    .bind(&row.actor)
    .bind(&row.subject)
    .bind(row.at_ms)
    .bind(&row.body)
    .bind(&row.leaf_hash)
    .bind(row.seq)
    .execute(&mut *db)
    .await
    .unwrap();
}

/// The leaf hash as the store keeps it: lowercase hex of SHA-256(0x00 || body).
fn leaf_hex(body: &str) -> String {
    latch_ledger::leaf_hash(body.as_bytes()).to_string()
}

/// `body` (a canonical event) claiming to be event `seq` instead of the one it says.
fn renumbered(body: &str, from: i64, to: i64) -> String {
    let (old, new) = (format!("\"seq\":{from},"), format!("\"seq\":{to},"));
    assert_eq!(body.matches(&old).count(), 1, "no `{old}` in {body}");
    body.replacen(&old, &new, 1)
}

/// A copy of a stopped server's store (SQLite: its data directory; PostgreSQL: a clone of its
/// database, plus the data directory with the signing key) and a config naming the copy.
struct StoreCopy {
    config: PathBuf,
    data: PathBuf,
    store_url: String,
    _database: Option<PgDatabase>,
}

impl StoreCopy {
    /// Applies `edit` to the copy with plain SQL.
    fn tamper(&self, edit: impl AsyncFnOnce(&mut sqlx::AnyConnection)) {
        block_on(async {
            use sqlx::Connection;
            let mut db = connect(&self.store_url).await;
            edit(&mut db).await;
            db.close().await.unwrap();
        });
    }

    /// `latch ledger verify --config` over the copy.
    fn verify(&self, home: &Path) -> Run {
        latch(
            home,
            &[],
            &[
                "ledger",
                "verify",
                "--config",
                self.config.to_str().unwrap(),
            ],
        )
    }
}

impl Server {
    /// A server on a fresh PostgreSQL database or on SQLite.
    fn start_on(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self::start(),
            Backend::Postgres => Self::start_with(Some(PgDatabase::create())),
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Where sqlx finds this server's store.
    fn store_url(&self) -> String {
        match &self.database {
            Some(db) => db.url.clone(),
            None => sqlite_url(&self.data_dir()),
        }
    }

    /// Starts `latch serve` again on the same config and data, after [`Server::kill`].
    fn restart(&mut self) {
        self.kill();
        let log = self.dir.path().join("serve.log");
        let (child, received) = spawn_serve(&self.config, &log);
        self.child = child;
        let (url, gateway) = wait_for_addresses(&received, &log);
        self.url = url;
        self.gateway = gateway.unwrap_or_default();
    }

    /// Copies the (stopped) server's store for one attack named `name`.
    fn copy_store(&self, name: &str) -> StoreCopy {
        let root = self.dir.path().join(format!("copy-{name}"));
        let data = root.join("data");
        std::fs::create_dir_all(&data).unwrap();
        // The database file (with any -wal/-shm beside it) and the signing key; `copy` keeps
        // the key's mode 0600.
        for entry in std::fs::read_dir(self.data_dir()).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), data.join(entry.file_name())).unwrap();
        }
        let database = self.database.as_ref().map(|db| db.clone_as(name));
        let store_url = match &database {
            Some(db) => db.url.clone(),
            None => sqlite_url(&data),
        };
        let config = root.join("latch.toml");
        let text = config_text(&data, database.as_ref().map(|db| db.url.as_str()));
        std::fs::write(&config, text).unwrap();
        StoreCopy {
            config,
            data,
            store_url,
            _database: database,
        }
    }
}

fn sqlite_url(data: &Path) -> String {
    format!("sqlite://{}", data.join("latch.db").display())
}

/// `latch serve --config CONFIG`, expected to refuse to start: its exit and output, or a
/// failed test if it starts listening.
fn serve_refusing(config: &Path) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = Command::new(LATCH)
        .args([
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env_remove("LATCH_CONFIG")
        .env("LATCH_LOG", "off")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        let listening = std::fs::read_to_string(&out)
            .unwrap_or_default()
            .contains("latch listening on");
        if listening || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let run = Run {
        code: status.and_then(|s| s.code()).unwrap_or(-1),
        stdout: std::fs::read_to_string(&out).unwrap(),
        stderr: std::fs::read_to_string(&err).unwrap(),
    };
    assert!(
        status.is_some(),
        "latch serve started (or hung) instead of refusing: {run:#?}"
    );
    run
}

/// The verifier's message for a change in ledger index `index` that only the checkpoints can
/// see: the range from the last checkpoint that still matches to the first that does not.
fn root_mismatch(sizes: &[u64], index: u64) -> String {
    let first = sizes
        .iter()
        .copied()
        .filter(|&s| s <= index)
        .max()
        .unwrap_or(0);
    let size = sizes.iter().copied().find(|&s| s > index).unwrap();
    format!(
        "index {first}..{}: hash mismatch: the events do not match the checkpoint of size {size} signed at ",
        size - 1
    )
}

/// A SQLite ledger written before migration 16 (when `seq` was not the rowid): the offline
/// verifier refuses it without changing a byte of it (evidence is read, never rewritten), names
/// the schema and the command that upgrades it; `latch admin migrate` upgrades it, saying so on
/// stderr, and it then verifies whole.
#[test]
fn a_ledger_from_before_seq_became_the_rowid_is_refused_by_verify_and_upgraded_by_migrate() {
    let mut server = Server::start();
    let (alice, bob, dave) = (
        server.token("alice"),
        server.token("bob"),
        server.token("dave"),
    );
    for i in 1..=6 {
        let request = server.pending_request(&alice, &format!("INC-{}: rotate the keys", 300 + i));
        if i % 2 == 0 {
            server
                .run_as(&bob, &["approve", &request.id, "--comment", "ok"])
                .success();
        }
        server.run_as(&dave, &["ledger", "checkpoint"]).success();
    }
    server.kill();
    let home = server.home();
    let copy = server.copy_store("before-16");
    let before = copy.verify(&home).success();
    copy.tamper(async |db| {
        for sql in [
            "CREATE TABLE old_events (seq BIGINT PRIMARY KEY, type TEXT NOT NULL, \
               actor TEXT NOT NULL, subject TEXT NOT NULL, at_ms BIGINT NOT NULL, \
               body TEXT NOT NULL, leaf_hash TEXT NOT NULL)",
            "INSERT INTO old_events SELECT * FROM events",
            "DROP TABLE events",
            "ALTER TABLE old_events RENAME TO events",
            "CREATE INDEX events_subject ON events (subject, seq) \
               WHERE type NOT IN ('session.statement', 'session.statement_outcome')",
            "CREATE INDEX events_type ON events (type, seq) \
               WHERE type NOT IN ('session.statement', 'session.statement_outcome')",
            "DELETE FROM schema_migrations WHERE version = 16",
            "PRAGMA wal_checkpoint(TRUNCATE)",
        ] {
            exec(db, sql).await;
        }
    });
    let db = copy.data.join("latch.db");
    let old_bytes = std::fs::read(&db).unwrap();
    copy.verify(&home)
        .fails(1, "written by an older latch (schema version 15")
        .fails(1, "latch admin migrate");
    assert!(
        std::fs::read(&db).unwrap() == old_bytes,
        "the refused verify changed the store"
    );
    let config = copy.config.to_str().unwrap();
    let migrated = latch(&home, &[], &["admin", "migrate", "--config", config]).success();
    assert!(
        migrated.stderr.contains("applying migration version=16"),
        "{migrated:#?}"
    );
    assert!(
        migrated.stdout.contains("schema version 16"),
        "{migrated:#?}"
    );
    // The migration's copy went through the WAL, which is cut back rather than kept at its size.
    let wal = std::fs::metadata(copy.data.join("latch.db-wal")).map_or(0, |m| m.len());
    assert_eq!(wal, 0, "the WAL kept {wal} bytes");
    let upgraded = copy.verify(&home).success();
    assert!(!upgraded.stderr.contains("migration"), "{upgraded:#?}");
    assert_eq!(upgraded.stdout, before.stdout);
    // Once: the next migrate finds nothing to do.
    let again = latch(&home, &[], &["admin", "migrate", "--config", config]).success();
    assert!(!again.stderr.contains("migration"), "{again:#?}");
}

/// One `latch serve` per SQLite store: a second server on the same file is refused (each would
/// sign checkpoints from its own memory of the newest events), and so is an upgrade while a
/// server runs on it; once it has stopped, the upgrade goes through.
#[test]
fn a_sqlite_store_has_one_server_and_is_not_upgraded_under_it() {
    let mut server = Server::start();
    server.token("alice");
    let config = server.config_arg();
    serve_refusing(Path::new(&config)).fails(1, "a `latch serve` is running on this store");
    // The store as a newer latch would find it: migration 16 not applied yet.
    block_on(async {
        let mut db = connect(&server.store_url()).await;
        exec(&mut db, "DELETE FROM schema_migrations WHERE version = 16").await;
    });
    let home = server.home();
    latch(&home, &[], &["admin", "migrate", "--config", &config])
        .fails(1, "a `latch serve` is running on this store");
    server.kill();
    let migrated = latch(&home, &[], &["admin", "migrate", "--config", &config]).success();
    assert!(
        migrated.stderr.contains("applying migration version=16"),
        "{migrated:#?}"
    );
}

/// The offline commands read a store as it is: one that does not exist is named, not created
/// empty (which would verify as a ledger of no events), and one from a newer latch is refused.
#[test]
fn offline_commands_neither_create_nor_downgrade_a_store() {
    let mut server = Server::start();
    server.token("alice");
    server.kill();
    let home = server.home();
    let copy = server.copy_store("missing");
    std::fs::remove_file(copy.data.join("latch.db")).unwrap();
    for extra in ["latch.db-wal", "latch.db-shm"] {
        let _ = std::fs::remove_file(copy.data.join(extra));
    }
    copy.verify(&home).fails(1, "no store at");
    assert!(
        !copy.data.join("latch.db").exists(),
        "verify created a store"
    );

    let newer = server.copy_store("newer");
    newer.tamper(async |db| {
        exec(
            db,
            "INSERT INTO schema_migrations (version, name) VALUES (9999, 'from the future')",
        )
        .await;
    });
    newer
        .verify(&home)
        .fails(1, "written by a newer latch (schema version 9999");
    let config = newer.config.to_str().unwrap();
    latch(&home, &[], &["admin", "migrate", "--config", config])
        .fails(1, "written by a newer latch (schema version 9999");
}

/// A few dozen events with several signed checkpoints, then, on copies of the stopped server's
/// store, each attack a person with write access to the database can make in plain SQL: every
/// one fails `latch ledger verify` (exit 1) with the index and the kind of damage named.
fn tampering_is_caught_and_named(backend: Backend) {
    let mut server = Server::start_on(backend);
    let (alice, bob, dave) = (
        server.token("alice"),
        server.token("bob"),
        server.token("dave"),
    );
    let mut pending = Vec::new();
    for i in 1..=20 {
        let request = server.pending_request(&alice, &format!("INC-{}: replay the job", 100 + i));
        if i % 3 == 0 {
            server
                .run_as(&bob, &["approve", &request.id, "--comment", "ok"])
                .success();
        } else {
            pending.push(request.id);
        }
        if i % 5 == 0 {
            server.run_as(&dave, &["ledger", "checkpoint"]).success();
        }
    }
    server.kill();
    let home = server.home();
    let config = server.config_arg();

    // The untouched ledger, as the attacker finds it.
    let (rows, sizes) = block_on(async {
        let mut db = connect(&server.store_url()).await;
        if backend == Backend::Sqlite {
            // Everything into the main file, so that a copy of the directory is complete.
            exec(&mut db, "PRAGMA wal_checkpoint(TRUNCATE)").await;
        }
        let rows = event_rows(&mut db).await;
        let sizes: Vec<i64> = sqlx::query_scalar("SELECT size FROM checkpoints ORDER BY size")
            .fetch_all(&mut db)
            .await
            .unwrap();
        use sqlx::Connection;
        db.close().await.unwrap();
        let sizes: Vec<u64> = sizes.into_iter().map(|s| s as u64).collect();
        (rows, sizes)
    });
    let n = rows.len() as i64;
    assert!(n >= 30, "a few dozen events: {rows:#?}");
    assert!(
        rows.iter().zip(1..).all(|(row, seq)| row.seq == seq),
        "{rows:#?}"
    );
    assert!(sizes.len() >= 4, "several checkpoints: {sizes:?}");
    assert_eq!(
        sizes.last(),
        Some(&(n as u64)),
        "the last checkpoint covers every event"
    );
    let verified = latch(&home, &[], &["ledger", "verify", "--config", &config]).success();
    assert!(
        verified
            .stdout
            .starts_with(&format!("ledger ok: {n} events, tree size {n}")),
        "{verified:#?}"
    );
    let created = |reason: &str| -> EventRow {
        rows.iter()
            .find(|r| r.r#type == "request.created" && r.body.contains(reason))
            .unwrap_or_else(|| panic!("no request.created for `{reason}`"))
            .clone()
    };
    let caught = |copy: &StoreCopy, what: &str, expected: &str| {
        let run = copy
            .verify(&home)
            .fails(1, &format!("ledger verification failed: {expected}"));
        eprintln!("{backend:?} {what}: {}", run.stderr.trim_end());
    };

    // (a) One byte of one event, its stored leaf hash left alone: named exactly.
    let edited = created("INC-107");
    let copy = server.copy_store("edit");
    copy.tamper(async |db| {
        let sql = format!(
            "UPDATE events SET body = REPLACE(body, 'INC-107', 'INC-907') WHERE seq = {}",
            edited.seq
        );
        exec(db, &sql).await;
        let body: String = sqlx::query_scalar("SELECT body FROM events WHERE seq = $1")
            .bind(edited.seq)
            .fetch_one(&mut *db)
            .await
            .unwrap();
        let changed = body
            .bytes()
            .zip(edited.body.bytes())
            .filter(|(a, b)| a != b);
        assert_eq!((body.len(), changed.count()), (edited.body.len(), 1));
    });
    caught(
        &copy,
        "one byte changed",
        &format!(
            "index {}: hash mismatch: the stored leaf hash is not the hash of the stored event",
            edited.seq - 1
        ),
    );

    // (a2) The same with the leaf hash recomputed: only a signed checkpoint can tell, so the
    // event is named by the range between the last matching checkpoint and the first failing.
    let edited = created("INC-112");
    let copy = server.copy_store("rehash");
    copy.tamper(async |db| {
        let mut forged = edited.clone();
        forged.body = forged.body.replacen("INC-112", "INC-912", 1);
        forged.leaf_hash = leaf_hex(&forged.body);
        overwrite_event(db, &forged).await;
    });
    caught(
        &copy,
        "one byte changed, leaf hash recomputed",
        &root_mismatch(&sizes, edited.seq as u64 - 1),
    );

    // (b) A row deleted.
    let deleted = created("INC-104");
    let copy = server.copy_store("delete");
    copy.tamper(async |db| {
        exec(
            db,
            &format!("DELETE FROM events WHERE seq = {}", deleted.seq),
        )
        .await;
    });
    caught(
        &copy,
        "row deleted",
        &format!(
            "index {}: missing event: expected event {}, found event {} (events were deleted or reordered)",
            deleted.seq - 1,
            deleted.seq,
            deleted.seq + 1
        ),
    );

    // (c) Two rows swapped: every column but the position.
    let (first, second) = (created("INC-105"), created("INC-108"));
    let copy = server.copy_store("swap");
    copy.tamper(async |db| {
        let mut moved_up = second.clone();
        moved_up.seq = first.seq;
        let mut moved_down = first.clone();
        moved_down.seq = second.seq;
        overwrite_event(db, &moved_up).await;
        overwrite_event(db, &moved_down).await;
    });
    caught(
        &copy,
        "two rows swapped",
        &format!(
            "index {}: the event's bytes say it is event {}, which belongs further on",
            first.seq - 1,
            second.seq
        ),
    );

    // (d) A forged row inserted in the middle, the rows after it renumbered to make room.
    let displaced = created("INC-109");
    let k = displaced.seq;
    let make_room = async |db: &mut sqlx::AnyConnection| {
        // Through an offset: the primary key is checked row by row.
        exec(
            db,
            &format!("UPDATE events SET seq = seq + 1000000 WHERE seq >= {k}"),
        )
        .await;
        exec(
            db,
            "UPDATE events SET seq = seq - 999999 WHERE seq > 1000000",
        )
        .await;
        exec(db, "UPDATE ledger_head SET next_seq = next_seq + 1").await;
        let mut forged = displaced.clone();
        forged.body = forged.body.replacen("INC-109", "INC-666", 1);
        forged.leaf_hash = leaf_hex(&forged.body);
        insert_event(db, &forged).await;
    };
    let copy = server.copy_store("insert");
    copy.tamper(async |db| make_room(db).await);
    // The forged row (index k - 1) is well formed and correctly hashed, so the first thing
    // wrong is either a checkpoint ending at it, or the displaced event at index k, whose bytes
    // still say it is event k.
    let inserted = if sizes.contains(&(k as u64)) {
        root_mismatch(&sizes, k as u64 - 1)
    } else {
        format!(
            "index {k}: the event's bytes say it is event {k}, whose place has passed (an event was inserted before it"
        )
    };
    caught(&copy, "row inserted", &inserted);

    // (d2) The same, with every later event rewritten to its new position and rehashed: the
    // rows are self-consistent, and the checkpoints still catch it.
    let copy = server.copy_store("rewrite");
    copy.tamper(async |db| {
        make_room(db).await;
        for old in rows.iter().filter(|r| r.seq >= k) {
            let mut moved = old.clone();
            moved.seq = old.seq + 1;
            moved.body = renumbered(&old.body, old.seq, moved.seq);
            moved.leaf_hash = leaf_hex(&moved.body);
            overwrite_event(db, &moved).await;
        }
    });
    caught(
        &copy,
        "row inserted, later rows renumbered and rehashed",
        &root_mismatch(&sizes, k as u64 - 1),
    );

    // (e) The tail truncated, the head pointer moved back to match.
    let copy = server.copy_store("truncate");
    copy.tamper(async |db| {
        exec(db, &format!("DELETE FROM events WHERE seq > {}", n - 3)).await;
        let sql = format!("UPDATE ledger_head SET next_seq = {}", n - 2);
        exec(db, &sql).await;
    });
    caught(
        &copy,
        "tail truncated",
        &format!(
            "index {}: missing events: the checkpoint of size {n} covers {n} events but the ledger ends after {} (events were deleted)",
            n - 3,
            n - 3
        ),
    );

    // (f) The signing key replaced by a new one of the same name: no checkpoint verifies, and
    // the server refuses to start (it would sign checkpoints no earlier one agrees with).
    let copy = server.copy_store("key");
    let key_file = copy.data.join("ledger.key");
    let original_key = std::fs::read_to_string(&key_file).unwrap();
    let mut seed = [0u8; 32];
    for (i, chunk) in seed.chunks_mut(8).enumerate() {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_usize(i);
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    let impostor = latch_ledger::SigningKey::from_seed("latch.local/audit", seed).unwrap();
    std::fs::write(
        &key_file,
        format!("{}\n", impostor.to_private_text().as_str()),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    assert_ne!(std::fs::read_to_string(&key_file).unwrap(), original_key);
    caught(
        &copy,
        "signing key replaced",
        &format!("checkpoint of size {}: bad signature", sizes[0]),
    );
    let refused = serve_refusing(&copy.config).fails(
        1,
        &format!(
            "the signing key `{}` did not sign this ledger's checkpoints",
            key_file.display()
        ),
    );
    eprintln!(
        "{backend:?} serve with the replaced key: {}",
        refused.stderr.trim_end()
    );

    // (g) A projection changed without its event: a pending request made granted.
    let drifted = &pending[0];
    let copy = server.copy_store("drift");
    copy.tamper(async |db| {
        let sql = format!("UPDATE requests SET state = 'granted' WHERE id = '{drifted}'");
        exec(db, &sql).await;
    });
    caught(
        &copy,
        "projection changed",
        &format!("projection drift: request `{drifted}`: "),
    );

    // The original was never touched.
    latch(&home, &[], &["ledger", "verify", "--config", &config]).success();
}

#[test]
fn tampering_is_caught_and_named_on_sqlite() {
    tampering_is_caught_and_named(Backend::Sqlite);
}

#[test]
fn tampering_is_caught_and_named_on_postgres() {
    tampering_is_caught_and_named(Backend::Postgres);
}

/// What the clients of a burst saw.
#[derive(Default)]
struct Burst {
    /// Ids answered with 201 and a body: the server promised these are in the ledger.
    acknowledged: std::sync::Mutex<Vec<String>>,
    /// Requests sent and not yet answered.
    in_flight: std::sync::atomic::AtomicUsize,
    /// Answers other than 201 (status and body), and transport errors.
    refused: std::sync::Mutex<Vec<String>>,
    errors: std::sync::atomic::AtomicUsize,
}

/// Creates requests as `token` in a loop until the server stops answering.
async fn hammer(client: reqwest::Client, url: String, token: String, burst: Arc<Burst>, n: usize) {
    use std::sync::atomic::Ordering::SeqCst;
    for i in 0.. {
        let body = serde_json::json!({
            "resource": "payments-db",
            "role": "read",
            "duration": "30m",
            "reason": format!("burst {n}.{i}"),
        });
        burst.in_flight.fetch_add(1, SeqCst);
        let sent = client
            .post(format!("{url}/api/v1/requests"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await;
        let answer = match sent {
            Ok(response) if response.status() == reqwest::StatusCode::CREATED => {
                response.json::<RequestView>().await.map(|request| {
                    burst.acknowledged.lock().unwrap().push(request.id);
                })
            }
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                burst
                    .refused
                    .lock()
                    .unwrap()
                    .push(format!("{status}: {text}"));
                Ok(())
            }
            Err(err) => Err(err),
        };
        burst.in_flight.fetch_sub(1, SeqCst);
        if answer.is_err() {
            burst.errors.fetch_add(1, SeqCst);
            return;
        }
    }
}

/// kill -9 in the middle of thousands of concurrent appends: after a restart the ledger verifies
/// and every request the server acknowledged (201) is there, event and projection.
fn a_kill_9_during_a_burst_loses_no_acknowledged_event(backend: Backend) {
    use std::sync::atomic::Ordering::SeqCst;
    const CLIENTS: usize = 16;
    const TARGET: usize = 2000;
    let mut server = Server::start_on(backend);
    let (alice, dave) = (server.token("alice"), server.token("dave"));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let burst = Arc::new(Burst::default());
    let client = reqwest::Client::new();
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|n| {
            runtime.spawn(hammer(
                client.clone(),
                server.url.clone(),
                alice.clone(),
                burst.clone(),
                n,
            ))
        })
        .collect();
    let acknowledged = || burst.acknowledged.lock().unwrap().len();
    wait_until(
        &format!("{TARGET} requests are acknowledged"),
        Duration::from_secs(120),
        || acknowledged() >= TARGET,
    );
    let (acked_before, in_flight) = (acknowledged(), burst.in_flight.load(SeqCst));
    server.kill();
    let elapsed = started.elapsed();
    runtime.block_on(async {
        for task in tasks {
            task.await.unwrap();
        }
    });
    let acked = burst.acknowledged.lock().unwrap().clone();
    let refused = burst.refused.lock().unwrap().clone();
    eprintln!(
        "{backend:?}: SIGKILL after {elapsed:.2?} with {acked_before} acknowledged and {in_flight} in flight; \
         {} acknowledged in all ({} while dying), {} transport errors, {} other answers",
        acked.len(),
        acked.len() - acked_before,
        burst.errors.load(SeqCst),
        refused.len()
    );
    assert!(refused.is_empty(), "answers other than 201: {refused:#?}");
    assert_eq!(
        burst.errors.load(SeqCst),
        CLIENTS,
        "every client stopped at the kill"
    );

    server.restart();
    let (stored, created) = block_on(async {
        let mut db = connect(&server.store_url()).await;
        let stored: Vec<String> = sqlx::query_scalar("SELECT id FROM requests")
            .fetch_all(&mut db)
            .await
            .unwrap();
        let created: Vec<String> =
            sqlx::query_scalar("SELECT subject FROM events WHERE type = 'request.created'")
                .fetch_all(&mut db)
                .await
                .unwrap();
        use sqlx::Connection;
        db.close().await.unwrap();
        (stored, created)
    });
    let stored: std::collections::HashSet<String> = stored.into_iter().collect();
    let created: std::collections::HashSet<String> = created.into_iter().collect();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|id| !stored.contains(*id) || !created.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged requests are gone: {lost:?}",
        lost.len()
    );
    eprintln!(
        "{backend:?}: after the restart {} requests are stored, {} of them never acknowledged",
        stored.len(),
        stored.len() - acked.len()
    );
    // The restarted server serves every one of them.
    runtime.block_on(async {
        for id in &acked {
            let response = client
                .get(format!("{}/api/v1/requests/{id}", server.url))
                .bearer_auth(&alice)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), reqwest::StatusCode::OK, "{id}");
            let request: RequestView = response.json().await.unwrap();
            assert_eq!(
                (request.id.as_str(), request.state.as_str()),
                (id.as_str(), "pending")
            );
        }
    });

    // The restarted server appends after the last event that survived, and signs over it.
    server.pending_request(&alice, "INC-7: after the crash");
    server.run_as(&dave, &["ledger", "checkpoint"]).success();
    // Two tokens, the policy set loaded at first start, the requests, and the one after.
    let events = 3 + stored.len() + 1;
    let verified = latch(
        &server.home(),
        &[],
        &["ledger", "verify", "--config", &server.config_arg()],
    )
    .success();
    assert!(
        verified
            .stdout
            .starts_with(&format!("ledger ok: {events} events, tree size {events}")),
        "{verified:#?}"
    );
}

#[test]
fn a_kill_9_during_a_burst_loses_no_acknowledged_event_on_sqlite() {
    a_kill_9_during_a_burst_loses_no_acknowledged_event(Backend::Sqlite);
}

#[test]
fn a_kill_9_during_a_burst_loses_no_acknowledged_event_on_postgres() {
    a_kill_9_during_a_burst_loses_no_acknowledged_event(Backend::Postgres);
}

/// `latch policy`: the quickstart's policies validate and pass their table of expected
/// decisions; explain names the determining policy; a broken policy is refused with its place.
#[test]
fn policy_commands_validate_explain_and_test_the_quickstart_policies() {
    let home = tempfile::tempdir().unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart");
    let config = format!("{root}/latch.toml");
    let validated = latch(
        home.path(),
        &[],
        &["policy", "validate", "--config", &config],
    )
    .success();
    assert!(
        validated.stdout.starts_with("policies ok: "),
        "{validated:#?}"
    );
    let tested = latch(
        home.path(),
        &[],
        &[
            "policy",
            "test",
            &format!("{root}/policies/tests.toml"),
            "--config",
            &config,
        ],
    )
    .success();
    assert!(tested.stdout.contains("test result: ok."), "{tested:#?}");
    let explained = latch(
        home.path(),
        &[],
        &[
            "policy",
            "explain",
            "--principal",
            "bob",
            "--action",
            "approve",
            "--resource",
            "payments-db",
            "--role",
            "read",
            "--requester",
            "bob",
            "--config",
            &config,
        ],
    )
    .success();
    assert!(explained.stdout.starts_with("DENY"), "{explained:#?}");

    // A copy of the quickstart whose policy file has a typo.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::copy(format!("{root}/latch.toml"), dir.path().join("latch.toml")).unwrap();
    let policy = std::fs::read_to_string(format!("{root}/policies/default.cedar")).unwrap();
    std::fs::write(
        dir.path().join("policies/default.cedar"),
        policy.replacen("permit", "permitt", 1),
    )
    .unwrap();
    let broken = dir.path().join("latch.toml");
    let refused = latch(
        home.path(),
        &[],
        &["policy", "validate", "--config", broken.to_str().unwrap()],
    );
    let refused = refused.fails(1, "policies/default.cedar:");
    assert!(
        refused.stderr.lines().next().unwrap().matches(':').count() >= 3,
        "{refused:#?}"
    );
}

/// The server decides on the quickstart's Cedar policies, and the ledger names the policies
/// behind each request and approval, so an auditor sees why access was given.
#[test]
fn decisions_in_the_ledger_name_their_policies() {
    let mut server = Server::start();
    let alice = server.token("alice");
    let bob = server.token("bob");
    let dave = server.token("dave");
    let request = server.pending_request(&alice, "INC-7: policy names");
    server.run_as(&bob, &["approve", &request.id]).success();
    let events: Vec<EventView> = server
        .run_as(&dave, &["events", "--output", "json"])
        .success()
        .json();
    let body = |kind: &str| {
        events
            .iter()
            .find(|e| e.event_type == kind && e.subject == request.id)
            .map(|e| e.body.clone())
            .unwrap_or_else(|| panic!("no {kind} event: {events:#?}"))
    };
    assert!(
        body("request.created").contains(r#""policies":["request-any-role"]"#),
        "{}",
        body("request.created")
    );
    assert!(
        body("request.approved").contains(r#""policies":["approve-owner-lead-or-manager"]"#),
        "{}",
        body("request.approved")
    );
    // The policy set in force is in the ledger once, and again only when it changes.
    let loaded = |events: &[EventView]| {
        events
            .iter()
            .filter(|e| e.event_type == "policy.loaded")
            .count()
    };
    assert_eq!(loaded(&events), 1, "{events:#?}");
    server.restart();
    let events: Vec<EventView> = server
        .run_as(&dave, &["events", "--output", "json"])
        .success()
        .json();
    assert_eq!(
        loaded(&events),
        1,
        "a restart with the same policies records nothing new"
    );
    // And a refusal by policy says so: dave audits, he does not approve.
    let other = server.pending_request(&alice, "INC-8: not dave's to approve");
    server.run_as(&dave, &["approve", &other.id]).fails(
        1,
        &format!("`dave` may not decide on request `{}`: ", other.id),
    );
}

/// Break-glass goes through policy: the quickstart's policies grant nobody `self_approve`, so
/// the requester is refused with the reason, and the refusal is in the ledger.
#[test]
fn break_glass_is_refused_where_no_policy_permits_it() {
    let server = Server::start();
    let alice = server.token("alice");
    let bob = server.token("bob");
    let request = server.pending_request(&alice, "INC-9: prod down");
    server
        .run_as(
            &alice,
            &["break-glass", &request.id, "--reason", "prod down"],
        )
        .fails(
            1,
            &format!("`alice` may not break glass on request `{}`", request.id),
        );
    server
        .run_as(&bob, &["break-glass", &request.id, "--reason", "prod down"])
        .fails(1, "only the requester");
    let dave = server.token("dave");
    let events: Vec<EventView> = server
        .run_as(&dave, &["events", "--output", "json"])
        .success()
        .json();
    let refused = events
        .iter()
        .filter(|e| e.event_type == "access.refused" && e.subject == request.id)
        .count();
    assert_eq!(refused, 2, "{events:#?}");
}

/// Policies change without a restart: SIGHUP or `latch reload` loads the files again, records
/// the new set in the ledger before it decides anything, and a set that does not load is
/// refused with its problems while the one in force stays.
#[test]
fn policies_reload_without_a_restart_and_a_bad_set_changes_nothing() {
    let mut server = Server::start();
    // The server's own copy of the default policies, to edit.
    let policy = server.dir.path().join("policies.cedar");
    std::fs::write(
        &policy,
        include_str!("../../../../examples/quickstart/policies/default.cedar"),
    )
    .unwrap();
    let text = std::fs::read_to_string(&server.config).unwrap();
    let start = text.find("files = [").unwrap();
    let end = start + text[start..].find(']').unwrap() + 1;
    let text = format!(
        "{}files = [{:?}]{}",
        &text[..start],
        policy.to_str().unwrap(),
        &text[end..]
    );
    std::fs::write(&server.config, text).unwrap();
    server.restart();
    let alice = server.token("alice");
    let dave = server.token("dave");
    let erin = server.token("erin");
    let loaded = |server: &Server| -> Vec<EventView> {
        let events: Vec<EventView> = server
            .run_as(&dave, &["events", "--output", "json"])
            .success()
            .json();
        events
            .into_iter()
            .filter(|e| e.event_type == "policy.loaded")
            .collect()
    };
    // The restart loaded the rules from another file: the hash covers paths, so that is new.
    let base = loaded(&server).len();
    assert_eq!(base, 2);
    let request_write = |reason: &str| {
        server.run_as(
            &alice,
            &[
                "request",
                "payments-db",
                "--role",
                "write",
                "--for",
                "30m",
                "--reason",
                reason,
            ],
        )
    };
    request_write("INC-1: before the change").success();

    // A new rule, loaded on SIGHUP.
    let mut rules = std::fs::read_to_string(&policy).unwrap();
    rules.push_str(
        "\n@id(\"no-writes-this-week\")\n@reason(\"writes are frozen this week\")\nforbid (principal, action == Latch::Action::\"request\", resource)\nwhen { resource.name == \"write\" };\n",
    );
    std::fs::write(&policy, &rules).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_until(
        "the new policy set is recorded",
        Duration::from_secs(10),
        || loaded(&server).len() == base + 1,
    );
    request_write("INC-2: after the change").fails(1, "writes are frozen this week");

    // A broken file: refused with its position; the rules in force stay, nothing recorded.
    std::fs::write(
        &policy,
        format!("{rules}\npermit (principal, action, resource) when {{ nonsense }};\n"),
    )
    .unwrap();
    let refused = server
        .run_as(&erin, &["reload"])
        .fails(1, "nothing was changed");
    assert!(refused.stderr.contains("policies.cedar:"), "{refused:#?}");
    assert_eq!(loaded(&server).len(), base + 1);
    request_write("INC-3: still frozen").fails(1, "writes are frozen this week");

    // Only admins reload; the refusal is recorded like any other.
    server.run_as(&alice, &["reload"]).fails(1, "admins may");

    // The gateway asks policy too: a `connect` rule (an access window, say) refuses a session
    // that the grant alone would allow.
    std::fs::write(
        &policy,
        format!(
            "{}\n@id(\"no-sessions-now\")\n@reason(\"sessions are closed for maintenance\")\nforbid (principal, action == Latch::Action::\"connect\", resource);\n",
            include_str!("../../../../examples/quickstart/policies/default.cedar")
        ),
    )
    .unwrap();
    server.run_as(&erin, &["reload"]).success();
    let bob = server.token("bob");
    granted(&server, &alice, &bob, "read", "30m");
    let uri = connect_uri(&server, &alice);
    let refused = psql(&uri, "select 1");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("sessions are closed for maintenance"),
        "{stderr}"
    );
    std::fs::write(
        &policy,
        include_str!("../../../../examples/quickstart/policies/default.cedar"),
    )
    .unwrap();
    let back = server.run_as(&erin, &["reload"]).success();
    assert!(
        back.stdout.contains("new policy set is in force"),
        "{back:#?}"
    );
    assert_eq!(loaded(&server).len(), base + 3);
    request_write("INC-4: thawed").success();
}

/// The advanced example is a runnable config: it checks, and its expected decisions hold on the
/// organisation its latch.toml describes (not only on the test fixture).
#[test]
fn the_advanced_example_config_checks_and_its_policy_tests_pass() {
    let home = tempfile::tempdir().unwrap();
    let root = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/advanced-policies"
    );
    let config = format!("{root}/latch.toml");
    latch(home.path(), &[], &["check", "--config", &config]).success();
    let tested = latch(
        home.path(),
        &[],
        &[
            "policy",
            "test",
            &format!("{root}/tests.toml"),
            "--config",
            &config,
        ],
    )
    .success();
    assert!(tested.stdout.contains("test result: ok."), "{tested:#?}");
}

/// A granted request for `role` on payments-db lasting `length`, approved by bob.
fn granted(
    server: &Server,
    requester: &str,
    approver: &str,
    role: &str,
    length: &str,
) -> RequestView {
    let run = server
        .run_as(
            requester,
            &[
                "request",
                "payments-db",
                "--role",
                role,
                "--for",
                length,
                "--reason",
                "INC-9: gateway test",
                "--output",
                "json",
            ],
        )
        .success();
    let request: RequestView = run.json();
    server.run_as(approver, &["approve", &request.id]).success();
    request
}

/// `latch connect payments-db -- ARGS` (psql through the gateway), started in the background.
fn spawn_connect(server: &Server, token: &str, psql_args: &[&str]) -> Child {
    Command::new(LATCH)
        .args(["connect", "payments-db", "--"])
        .args(psql_args)
        .env_remove("LATCH_CONFIG")
        .env("HOME", server.home())
        .env("LATCH_SERVER", &server.url)
        .env("LATCH_TOKEN", token)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn sessions_json(server: &Server, token: &str) -> Vec<latch_api::SessionView> {
    server
        .run_as(token, &["sessions", "--output", "json"])
        .success()
        .json()
}

/// The README's "Connect through the gateway": psql through `latch connect`, the statements in
/// `latch sessions show`, a read role refusing a write, and the session cut when the grant
/// expires while a long query runs.
#[test]
fn gateway_records_psql_statements_and_cuts_the_session_at_expiry() {
    let server = Server::start();
    let alice = server.token("alice");
    let bob = server.token("bob");
    let dave = server.token("dave");

    // No grant yet: the API says how to get one.
    server
        .run_as(&alice, &["connect", "payments-db", "--print"])
        .fails(1, "latch request payments-db");

    granted(&server, &alice, &bob, "read", "6s");
    let uri = connect_uri(&server, &alice);
    assert!(uri.starts_with("postgresql://alice:lcc_"), "{uri}");
    assert!(
        uri.contains(&format!("@{}/payments-db?sslmode=require", server.gateway)),
        "{uri}"
    );

    let child = spawn_connect(
        &server,
        &alice,
        &[
            "-v",
            "ON_ERROR_STOP=0",
            "-c",
            "select 40 + 2 as answer",
            "-c",
            "insert into pg_class values (1)",
        ],
    );
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("42"), "{stdout}\n{stderr}");
    assert!(stderr.contains("permission denied by latch"), "{stderr}");
    assert!(stderr.contains("read-only"), "{stderr}");

    // A long query when the grant ends: cancelled, the client told why, the session closed.
    let long = spawn_connect(&server, &alice, &["-c", "select pg_sleep(30)"]);
    let started = Instant::now();
    let out = long.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains("grt_"),
        "the client is told which grant ended: {stderr}"
    );

    wait_until(
        "both sessions are recorded as ended",
        Duration::from_secs(10),
        || {
            sessions_json(&server, &dave)
                .iter()
                .filter(|s| s.ended_at.is_some())
                .count()
                == 2
        },
    );
    let sessions = sessions_json(&server, &dave);
    let cut = sessions
        .iter()
        .find(|s| s.end_reason.as_deref() == Some("grant_expired"))
        .unwrap_or_else(|| panic!("{sessions:#?}"));
    let delay = cut.revocation_delay_ms.unwrap();
    assert!((0..1000).contains(&delay), "closed {delay} ms after expiry");

    // Every statement, in order, with its class and outcome.
    let first = sessions
        .iter()
        .find(|s| s.end_reason.as_deref() == Some("client_closed"))
        .unwrap();
    let shown = server
        .run_as(&alice, &["sessions", "show", &first.id])
        .success();
    // Lower case like latch's other ids; a ULID is the same in either case, and so is the id.
    assert_eq!(first.id, first.id.to_lowercase());
    let upper = format!("ses_{}", first.id.trim_start_matches("ses_").to_uppercase());
    assert_eq!(
        server
            .run_as(&alice, &["sessions", "show", &upper])
            .success()
            .stdout,
        shown.stdout
    );
    assert!(
        shown.stdout.contains("select 40 + 2 as answer"),
        "{shown:#?}"
    );
    assert!(shown.stdout.contains("refused"), "{shown:#?}");
    // psql proved the credential with SCRAM bound to the gateway's certificate.
    assert!(
        shown
            .stdout
            .contains("over TLS (scram-sha-256-plus), started"),
        "{shown:#?}"
    );
    let detail: latch_api::SessionDetail = server
        .run_as(&alice, &["sessions", "show", &first.id, "--output", "json"])
        .success()
        .json();
    let classes: Vec<(&str, &str)> = detail
        .statements
        .iter()
        .map(|s| (s.class.as_str(), s.outcome.as_str()))
        .collect();
    assert_eq!(classes, [("read", "rows"), ("write", "refused")]);
    // bob (no relation to alice's sessions beyond leading payments) sees them as owner lead.
    assert_eq!(sessions_json(&server, &bob).len(), 2);

    // The grant is over: a new connection is refused with how to get access again.
    server
        .run_as(&alice, &["connect", "payments-db", "--print"])
        .fails(1, "no active grant");
    let direct = psql(&uri, "select 1");
    let stderr = String::from_utf8_lossy(&direct.stderr);
    assert!(!direct.status.success());
    assert!(stderr.contains("latch request payments-db"), "{stderr}");

    // The sessions are part of what the offline verifier checks: their projection agrees with
    // the session events, and a session edited in the table is named.
    let home = server.dir.path().join("verifier");
    std::fs::create_dir_all(&home).unwrap();
    let verified = latch(
        &home,
        &[],
        &["ledger", "verify", "--config", &server.config_arg()],
    )
    .success();
    assert!(
        verified
            .stdout
            .contains("2 gateway sessions and their statements) match a replay"),
        "{verified:#?}"
    );
    block_on(async {
        let mut db = connect(&sqlite_url(&server.dir.path().join("data"))).await;
        exec(
            &mut db,
            &format!(
                "UPDATE sessions SET statements = 0 WHERE id = '{}'",
                first.id
            ),
        )
        .await;
    });
    latch(
        &home,
        &[],
        &["ledger", "verify", "--config", &server.config_arg()],
    )
    .fails(1, &format!("projection drift: session `{}`", first.id));
}

/// `latch revoke` ends the grant's live sessions at once; another grant's session goes on.
#[test]
fn revoking_a_grant_ends_its_live_sessions_only() {
    let server = Server::start();
    let alice = server.token("alice");
    let bob = server.token("bob");
    let carol = server.token("carol");
    let request = granted(&server, &alice, &bob, "read", "30m");
    let other = granted(&server, &bob, &carol, "read", "30m");
    let cut = spawn_connect(&server, &alice, &["-c", "select pg_sleep(30)"]);
    let survivor = spawn_connect(
        &server,
        &bob,
        &["-c", "select pg_sleep(3)", "-c", "select 'still here'"],
    );
    wait_until("both sessions are open", Duration::from_secs(10), || {
        sessions_json(&server, &carol)
            .iter()
            .filter(|s| s.ended_at.is_none())
            .count()
            == 2
    });
    let grant = request.id.replacen("req_", "grt_", 1);
    let revoked = Instant::now();
    server
        .run_as(&bob, &["revoke", &grant, "--reason", "done early"])
        .success();
    let out = cut.wait_with_output().unwrap();
    assert!(
        revoked.elapsed() < Duration::from_secs(2),
        "{:?}",
        revoked.elapsed()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("revoked"), "{stderr}");
    let out = survivor.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("still here"));
    wait_until(
        "the revoked session is recorded",
        Duration::from_secs(10),
        || {
            sessions_json(&server, &carol)
                .iter()
                .any(|s| s.end_reason.as_deref() == Some("grant_revoked"))
        },
    );
    let _ = other;
}

/// `latch request --once`: the grant ends when its first session does, and a second connection
/// is refused; an ordinary grant on the same resource is untouched.
#[test]
fn a_single_use_grant_ends_with_its_first_session() {
    let server = Server::start();
    let alice = server.token("alice");
    let bob = server.token("bob");
    let run = server
        .run_as(
            &alice,
            &[
                "request",
                "payments-db",
                "--role",
                "read",
                "--for",
                "30m",
                "--reason",
                "INC-10: one look",
                "--once",
                "--output",
                "json",
            ],
        )
        .success();
    let request: RequestView = run.json();
    assert!(request.once);
    server.run_as(&bob, &["approve", &request.id]).success();
    let uri = connect_uri(&server, &alice);
    let first = psql(&uri, "select 'used'");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    wait_until(
        "the single-use grant is consumed",
        Duration::from_secs(10),
        || {
            let grants: Vec<GrantView> = server
                .run_as(&alice, &["grants", "--output", "json"])
                .success()
                .json();
            grants.iter().any(|g| g.state == "expired")
        },
    );
    let second = psql(&uri, "select 'used'");
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("latch request payments-db"), "{stderr}");
}

/// `latch connect payments-db --print` as `token`: the URI any client connects with.
fn connect_uri(server: &Server, token: &str) -> String {
    server
        .run_as(token, &["connect", "payments-db", "--print"])
        .success()
        .stdout
        .trim()
        .to_owned()
}

/// `psql URI -XAtc SQL`.
fn psql(uri: &str, sql: &str) -> std::process::Output {
    Command::new("psql")
        .arg(uri)
        .args(["-XAtc", sql])
        .output()
        .unwrap()
}

/// The first authentication request a client gets from the gateway at `address` (e.g.
/// `127.0.0.1:6432`) for a plaintext loopback startup: PostgreSQL's AuthenticationRequest code,
/// 10 for SASL (SCRAM), 3 for a cleartext password.
fn gateway_auth_request(address: &str, user: &str, resource: &str) -> u32 {
    use std::io::{Read, Write};
    let mut body = 196_608u32.to_be_bytes().to_vec();
    for part in ["user", user, "database", resource] {
        body.extend_from_slice(part.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut packet = u32::try_from(body.len() + 4)
        .unwrap()
        .to_be_bytes()
        .to_vec();
    packet.extend_from_slice(&body);
    let mut socket = std::net::TcpStream::connect(address).unwrap();
    socket.write_all(&packet).unwrap();
    let mut head = [0u8; 9];
    socket.read_exact(&mut head).unwrap();
    assert_eq!(head[0], b'R', "{head:?}");
    u32::from_be_bytes(head[5..9].try_into().unwrap())
}

/// Clients prove their credential with SCRAM-SHA-256 (bound to the TLS certificate when the
/// client asks) unless `gateway.client_auth = "password"`; either way psql connects with what
/// `latch connect --print` gives, a wrong credential is refused with 28P01, and the refusal is
/// in the ledger.
#[test]
fn gateway_clients_use_scram_by_default_and_a_cleartext_password_when_configured() {
    for (client_auth, code) in [(None, 10), (Some("password"), 3)] {
        let dir = tempfile::tempdir().unwrap();
        let mut text = config_text(&dir.path().join("data"), None);
        if let Some(method) = client_auth {
            let listen = "listen = \"127.0.0.1:0\"\n";
            assert!(text.contains(listen));
            text = text.replace(listen, &format!("{listen}client_auth = {method:?}\n"));
        }
        let server = Server::spawn(dir, text, None);
        assert_eq!(
            gateway_auth_request(&server.gateway, "alice", "payments-db"),
            code,
            "{client_auth:?}"
        );
        let alice = server.token("alice");
        let bob = server.token("bob");
        granted(&server, &alice, &bob, "read", "30m");
        let uri = connect_uri(&server, &alice);
        let ok = psql(&uri, "select 'through latch'");
        assert!(
            ok.status.success(),
            "{client_auth:?}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "through latch");
        // With SCRAM over TLS the login is bound to the gateway's certificate: libpq can insist.
        let bound = psql(&format!("{uri}&channel_binding=require"), "select 1");
        assert_eq!(
            bound.status.success(),
            client_auth.is_none(),
            "{client_auth:?}: {}",
            String::from_utf8_lossy(&bound.stderr)
        );

        let credential = uri.split(':').nth(2).unwrap().split('@').next().unwrap();
        let wrong = uri.replace(credential, "lcc_wrong");
        let refused = psql(&wrong, "select 'through latch'");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success());
        assert!(
            stderr.contains("wrong credential for `alice`"),
            "{client_auth:?}: {stderr}"
        );
        let read_events = || {
            block_on(async {
                let mut db = connect(&sqlite_url(&server.dir.path().join("data"))).await;
                event_rows(&mut db).await
            })
        };
        // Session records arrive through the buffered recorder, a moment after psql exits.
        wait_until("the sessions are recorded", Duration::from_secs(10), || {
            read_events().iter().any(|e| e.r#type == "session.ended")
        });
        let events = read_events();
        assert!(
            events
                .iter()
                .any(|e| e.r#type == "access.refused" && e.body.contains("wrong credential")),
            "{client_auth:?}: the refusal is not in the ledger"
        );
        // Each session records how its credential was proved.
        let methods: std::collections::BTreeSet<&str> = events
            .iter()
            .filter(|e| e.r#type == "session.started")
            .filter_map(|e| e.body.split("\"auth\":\"").nth(1)?.split('"').next())
            .collect();
        let expected: &[&str] = match client_auth {
            None => &["scram-sha-256-plus"],
            Some(_) => &["password"],
        };
        assert_eq!(methods.into_iter().collect::<Vec<_>>(), expected);
    }
}

/// `latch connect` credentials are made with `gateway.scram_iterations` rounds (4,096 unless
/// configured; psql takes 1). One SCRAM exchange names one count for all of a user's
/// credentials on a resource, so after the setting changes the count of the live ones holds,
/// and every one of them keeps logging in, until they have expired.
#[test]
fn credentials_keep_logging_in_across_a_change_of_scram_iterations() {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(&dir.path().join("data"), None);
    let listen = "listen = \"127.0.0.1:0\"\n";
    assert!(text.contains(listen));
    let one_round = text.replace(listen, &format!("{listen}scram_iterations = 1\n"));
    let mut server = Server::spawn(dir, text, None);
    let alice = server.token("alice");
    let bob = server.token("bob");
    granted(&server, &alice, &bob, "read", "30m");
    // A credential from before a restart, at the gateway's new port.
    let logs_in = |server: &Server, uri: &(String, String)| {
        let uri = uri.0.replace(&uri.1, &server.gateway);
        let out = psql(&format!("{uri}&channel_binding=require"), "select 'in'");
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "in"
    };
    let made = |server: &Server| (connect_uri(server, &alice), server.gateway.clone());
    let before = made(&server);
    std::fs::write(&server.config, &one_round).unwrap();
    server.restart();
    let after = made(&server);
    assert!(
        logs_in(&server, &before),
        "the credential made with 4,096 rounds"
    );
    assert!(
        logs_in(&server, &after),
        "the credential made after the change"
    );

    let store = sqlite_url(&server.data_dir());
    let counts = || -> Vec<i64> {
        block_on(async {
            let mut db = connect(&store).await;
            sqlx::query_scalar(
                "SELECT scram_iterations FROM connect_credentials ORDER BY created_at_ms",
            )
            .fetch_all(&mut db)
            .await
            .unwrap()
        })
    };
    assert_eq!(counts(), [4096, 4096]);

    server.kill();
    block_on(async {
        let mut db = connect(&store).await;
        sqlx::query("UPDATE connect_credentials SET expires_at_ms = 0")
            .execute(&mut db)
            .await
            .unwrap();
    });
    server.restart();
    let fresh = made(&server);
    assert!(
        logs_in(&server, &fresh),
        "a credential made once the old ones expired"
    );
    assert!(!logs_in(&server, &before), "an expired credential");
    assert_eq!(counts().last(), Some(&1));

    // A client that refuses so few rounds hangs up after the server names them (pgjdbc does,
    // saying only "Something unusual has occurred"): latch's log says why.
    abandon_scram_login(&server.gateway, "alice", "payments-db");
    let log = server.dir.path().join("serve.log");
    wait_until("the warning is logged", Duration::from_secs(10), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("some clients (pgjdbc) refuse fewer than 4096")
    });
}

/// Starts a SCRAM login at the gateway at `address` as a plaintext loopback client and hangs
/// up once the server has named its salt and iteration count.
fn abandon_scram_login(address: &str, user: &str, resource: &str) {
    use std::io::{Read, Write};
    let message = |tag: u8, body: &[u8]| {
        let mut out = vec![tag];
        out.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
        out.extend_from_slice(body);
        out
    };
    let mut startup = 196_608u32.to_be_bytes().to_vec();
    for part in ["user", user, "database", resource] {
        startup.extend_from_slice(part.as_bytes());
        startup.push(0);
    }
    startup.push(0);
    let mut socket = std::net::TcpStream::connect(address).unwrap();
    let startup = message(0, &startup);
    // A startup packet has no tag byte.
    socket.write_all(&startup[1..]).unwrap();
    // An authentication request, checked to be of the `expected` kind.
    fn read_auth(socket: &mut std::net::TcpStream, expected: u32) {
        let mut head = [0u8; 5];
        socket.read_exact(&mut head).unwrap();
        assert_eq!(head[0], b'R', "{head:?}");
        let len = u32::from_be_bytes(head[1..5].try_into().unwrap()) as usize;
        let mut body = vec![0u8; len - 4];
        socket.read_exact(&mut body).unwrap();
        assert_eq!(u32::from_be_bytes(body[..4].try_into().unwrap()), expected);
    }
    read_auth(&mut socket, 10);
    let client_first = b"n,,n=,r=abandonedlogin0123";
    let mut initial = b"SCRAM-SHA-256\0".to_vec();
    initial.extend_from_slice(&u32::try_from(client_first.len()).unwrap().to_be_bytes());
    initial.extend_from_slice(client_first);
    let initial = message(b'p', &initial);
    socket.write_all(&initial).unwrap();
    read_auth(&mut socket, 11);
}

/// The README's findings walkthrough: a weak reason and a write under a read grant become
/// findings within seconds; re-evaluating history opens nothing twice; an auditor resolves one.
#[test]
fn weak_reasons_and_writes_under_read_grants_become_findings() {
    let server = Server::start_configured(None, |_| String::new());
    let alice = server.token("alice");
    let bob = server.token("bob");
    let dave = server.token("dave");
    let request = server.pending_request(&alice, "test");
    server.run_as(&bob, &["approve", &request.id]).success();
    let out = spawn_connect(&server, &alice, &["-c", "delete from pg_class where false"])
        .wait_with_output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("read-only"));
    let findings = || -> Vec<latch_api::FindingView> {
        server
            .run_as(&dave, &["findings", "--output", "json"])
            .success()
            .json()
    };
    wait_until("the findings are opened", Duration::from_secs(10), || {
        let found = findings();
        ["justification.weak", "usage.scope"]
            .iter()
            .all(|c| found.iter().any(|f| f.checkpoint == *c))
    });
    let before = findings();
    let weak = before
        .iter()
        .find(|f| f.checkpoint == "justification.weak")
        .unwrap();
    assert_eq!(weak.about, request.id);
    assert!(weak.summary.contains("`test`"), "{}", weak.summary);
    let scope = before
        .iter()
        .find(|f| f.checkpoint == "usage.scope")
        .unwrap();
    assert!(!scope.evidence.is_empty());

    // Re-evaluating history finds the same, opens nothing new.
    let ran = server.run_as(&dave, &["audit", "run"]).success();
    assert!(ran.stdout.contains(", 0 new"), "{ran:#?}");
    assert_eq!(findings().len(), before.len());

    // Only auditors and admins read and change findings.
    server.run_as(&alice, &["findings"]).fails(1, "auditor");
    server
        .run_as(
            &dave,
            &[
                "findings",
                "resolve",
                &weak.id,
                "--comment",
                "ticket was in chat",
            ],
        )
        .success();
    server
        .run_as(
            &dave,
            &["findings", "resolve", &weak.id, "--comment", "again"],
        )
        .fails(1, "already resolved");
    let open: Vec<latch_api::FindingView> = server
        .run_as(&dave, &["findings", "--open", "--output", "json"])
        .success()
        .json();
    assert!(open.iter().all(|f| f.id != weak.id));
    let medium: Vec<latch_api::FindingView> = server
        .run_as(
            &dave,
            &["findings", "--severity", "medium", "--output", "json"],
        )
        .success()
        .json();
    assert!(
        medium
            .iter()
            .all(|f| ["medium", "high", "critical"].contains(&f.severity.as_str()))
    );
}

/// One HTTP request a [`Receiver`] got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// A tiny HTTP server on port 0 that answers 200 to every POST and keeps what it got.
struct Receiver {
    address: String,
    received: Arc<std::sync::Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start() -> Self {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let received = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                let (head, body_start) = loop {
                    let n = stream.read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        break (String::new(), 0);
                    }
                    data.extend_from_slice(&buf[..n]);
                    if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                        break (String::from_utf8_lossy(&data[..i]).into_owned(), i + 4);
                    }
                };
                let mut lines = head.lines();
                let path = lines
                    .next()
                    .and_then(|l| l.split_whitespace().nth(1))
                    .unwrap_or_default()
                    .to_owned();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
                    .collect();
                let length: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                while data.len() < body_start + length {
                    let n = stream.read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    data.extend_from_slice(&buf[..n]);
                }
                let body =
                    String::from_utf8_lossy(&data[body_start.min(data.len())..]).into_owned();
                let reject = path.starts_with("/reject");
                sink.lock().unwrap().push(Received {
                    path,
                    headers,
                    body,
                });
                let answer: &[u8] = if reject {
                    b"HTTP/1.1 400 Bad Request\r\ncontent-length: 15\r\nconnection: close\r\n\r\ninvalid_payload"
                } else {
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                };
                let _ = stream.write_all(answer);
            }
        });
        Self { address, received }
    }

    fn on(&self, path: &str) -> Vec<Received> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

/// The README's alert: a request with a weak reason and a write under a read grant become
/// findings, which reach a Slack channel as Block Kit messages; the request itself reaches a
/// signed webhook.
#[test]
fn findings_and_requests_reach_slack_and_a_signed_webhook() {
    let receiver = Receiver::start();
    let slack_url = format!("http://{}/slack", receiver.address);
    let hook_url = format!("http://{}/hook", receiver.address);
    let reject_url = format!("http://{}/reject", receiver.address);
    let server = Server::start_configured(None, |dir| {
        std::fs::write(dir.join("slack.url"), &slack_url).unwrap();
        std::fs::write(dir.join("hook.secret"), "s3cret").unwrap();
        format!(
            r#"
[notify]
base_url = "http://latch.example"

[[notify.channels]]
name = "security"
kind = "slack"
url_file = "{}"

[[notify.channels]]
name = "siem"
kind = "webhook"
url = "{hook_url}"
secret_file = "{}"

[[notify.routes]]
events = ["finding.opened"]
channel = "security"

[[notify.routes]]
events = ["request.*"]
channel = "siem"

[[notify.channels]]
name = "broken"
kind = "webhook"
url = "{reject_url}"
secret_file = "{}"

[[notify.routes]]
events = ["request.created"]
channel = "broken"
"#,
            dir.join("slack.url").display(),
            dir.join("hook.secret").display(),
            dir.join("hook.secret").display(),
        )
    });
    let alice = server.token("alice");
    let bob = server.token("bob");
    let run = server
        .run_as(
            &alice,
            &[
                "request",
                "payments-db",
                "--role",
                "read",
                "--for",
                "30m",
                "--reason",
                "asdf",
                "--output",
                "json",
            ],
        )
        .success();
    let request: RequestView = run.json();
    server.run_as(&bob, &["approve", &request.id]).success();
    let out = spawn_connect(
        &server,
        &alice,
        &["-c", "update pg_class set relname = relname where false"],
    )
    .wait_with_output()
    .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("read-only"));

    wait_until("Slack gets the findings", Duration::from_secs(15), || {
        let bodies: Vec<String> = receiver.on("/slack").into_iter().map(|r| r.body).collect();
        bodies.iter().any(|b| b.contains("justification.weak"))
            && bodies.iter().any(|b| b.contains("usage.scope"))
    });
    let slack = receiver.on("/slack");
    let message: serde_json::Value = serde_json::from_str(&slack[0].body).unwrap();
    assert!(message["blocks"].is_array(), "{message}");
    assert!(message["text"].is_string(), "{message}");

    wait_until(
        "the webhook gets the request",
        Duration::from_secs(15),
        || {
            receiver
                .on("/hook")
                .iter()
                .any(|r| r.body.contains("request.created"))
        },
    );
    let hook = receiver
        .on("/hook")
        .into_iter()
        .find(|r| r.body.contains("request.created"))
        .unwrap();
    let header = |name: &str| {
        hook.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (timestamp, signature) = (header("x-latch-timestamp"), header("x-latch-signature"));
    assert!(signature.starts_with("v1="), "{:?}", hook.headers);
    // The receiver checks the signature with the shared secret: HMAC-SHA256 of `{ts}.{body}`.
    let expected =
        latch_notify::sign_webhook("s3cret", timestamp.parse().unwrap(), hook.body.as_bytes());
    assert_eq!(signature, expected);
    // Each notice is delivered once per channel.
    let created = receiver
        .on("/hook")
        .iter()
        .filter(|r| r.body.contains("\"request.created\""))
        .count();
    assert_eq!(created, 1);

    // A receiver that refuses the message for good: dead-lettered, listed, and retried on demand.
    let dave = server.token("dave");
    let dead_listed = || {
        server
            .run_as(&dave, &["notifications"])
            .success()
            .stdout
            .contains("/broken")
    };
    if !(0..75).any(|_| {
        std::thread::sleep(Duration::from_millis(200));
        dead_listed()
    }) {
        for status in ["pending", "sent", "dead"] {
            let run = server.run_as(&dave, &["notifications", "--status", status]);
            eprintln!("{status}: {run:#?}");
        }
        eprintln!(
            "{}",
            std::fs::read_to_string(server.dir.path().join("serve.log")).unwrap_or_default()
        );
        panic!("not dead-lettered");
    }
    let dead: Vec<latch_api::NotificationView> = server
        .run_as(&dave, &["notifications", "--output", "json"])
        .success()
        .json();
    assert_eq!(dead.len(), 1, "{dead:#?}");
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("400")
    );
    server
        .run_as(&dave, &["notifications", "retry", &dead[0].id])
        .success();
    wait_until(
        "the retried message is attempted again",
        Duration::from_secs(15),
        || receiver.on("/reject").len() >= 2,
    );
    server
        .run_as(&alice, &["notifications"])
        .fails(1, "auditor");
}

/// `latch report` and `latch export` read a period offline: one CSV row per access with its
/// approver, sessions and statements; the events as JSONL and as OCSF records.
#[test]
fn reports_and_exports_cover_an_access_from_request_to_statements() {
    let server = Server::start();
    let alice = server.token("alice");
    let bob = server.token("bob");
    let request = granted(&server, &alice, &bob, "read", "30m");
    let out = spawn_connect(&server, &alice, &["-c", "select 1"])
        .wait_with_output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = server.config.to_str().unwrap();
    wait_until(
        "the session is recorded as ended",
        Duration::from_secs(10),
        || {
            let csv = latch(&server.home(), &[], &["report", "--config", config])
                .success()
                .stdout;
            csv.contains("read=1")
        },
    );
    let csv = latch(&server.home(), &[], &["report", "--config", config])
        .success()
        .stdout;
    let mut lines = csv.split("\r\n");
    let header = lines.next().unwrap();
    assert!(header.contains("requester"), "{header}");
    let row = lines
        .find(|l| l.contains(&request.id))
        .unwrap_or_else(|| panic!("{csv}"));
    assert!(row.contains("alice") && row.contains("bob"), "{row}");

    let html = latch(
        &server.home(),
        &[],
        &["report", "--config", config, "--format", "html"],
    )
    .success()
    .stdout;
    assert!(html.contains("<table") && html.contains(&request.id));

    // PDF is binary: it needs a file, and is a PDF there.
    latch(
        &server.home(),
        &[],
        &["report", "--config", config, "--format", "pdf"],
    )
    .fails(2, "give `--out FILE.pdf`");
    let pdf_path = server.dir.path().join("report.pdf");
    let pdf_arg = pdf_path.to_str().unwrap();
    latch(
        &server.home(),
        &[],
        &[
            "report", "--config", config, "--format", "pdf", "--out", pdf_arg,
        ],
    )
    .success();
    let pdf = std::fs::read(&pdf_path).unwrap();
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
    assert!(
        pdf.windows(request.id.len())
            .any(|w| w == request.id.as_bytes()),
        "the access is in the PDF"
    );

    let ocsf = latch(
        &server.home(),
        &[],
        &["export", "--config", config, "--format", "ocsf"],
    )
    .success()
    .stdout;
    let records: Vec<serde_json::Value> = ocsf
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        records
            .iter()
            .all(|r| r["class_uid"].is_u64() && r["time"].is_i64())
    );
    assert!(
        records.iter().any(|r| r["class_uid"] == 6005),
        "a statement as Datastore Activity"
    );
    let jsonl = latch(&server.home(), &[], &["export", "--config", config])
        .success()
        .stdout;
    assert_eq!(jsonl.lines().count(), records.len());
    latch(
        &server.home(),
        &[],
        &["report", "--config", config, "--from", "yesterday"],
    )
    .fails(2, "not a time");
}
