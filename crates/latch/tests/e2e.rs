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
use std::sync::mpsc;
use std::time::{Duration, Instant};

use latch_api::{EventView, GrantView, RequestView, WhoAmI};

const LATCH: &str = env!("CARGO_BIN_EXE_latch");
const QUICKSTART: &str = include_str!("../../../examples/quickstart/latch.toml");

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

/// A `latch serve` child on a free port with its own data directory; killed on drop.
struct Server {
    child: Child,
    url: String,
    config: PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let config = dir.path().join("latch.toml");
        let mut text = QUICKSTART.to_owned();
        for (from, to) in [
            (
                "data_dir = \"data\"".to_owned(),
                format!("data_dir = {:?}", data.to_str().unwrap()),
            ),
            (
                "scheduler_interval = \"100ms\"".to_owned(),
                "scheduler_interval = \"50ms\"".to_owned(),
            ),
        ] {
            assert!(
                text.contains(&from),
                "the quickstart config no longer has `{from}`"
            );
            text = text.replace(&from, &to);
        }
        std::fs::write(&config, text).unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();

        let log = dir.path().join("serve.log");
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
            .stderr(std::fs::File::create(&log).unwrap())
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
        // The guard exists before the wait, so a server that fails to start is still killed.
        let mut server = Self {
            child,
            url: String::new(),
            config,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match received.recv_timeout(left) {
                Ok(line) => match line.strip_prefix("latch listening on ") {
                    Some(url) => break url.to_owned(),
                    None => continue,
                },
                Err(err) => panic!(
                    "latch serve did not say where it listens ({err}); its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ),
            }
        };
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        server.url = url;
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
    let mut server = Server::start();
    let alice = server.token("alice");
    let dave = server.token("dave");
    for reason in ["INC-1", "INC-2", "INC-3"] {
        server.pending_request(&alice, reason);
    }
    let checkpoint = server.run_as(&dave, &["ledger", "checkpoint"]).success();
    assert!(
        checkpoint.stdout.starts_with("latch.local/audit\n5\n"),
        "{checkpoint:#?}"
    );
    let proved = server.run_as(&dave, &["ledger", "prove", "4"]).success();
    assert!(
        proved
            .stdout
            .starts_with("event 4 is in the checkpoint of size 5"),
        "{proved:#?}"
    );
    server.pending_request(&alice, "INC-4");
    server.run_as(&dave, &["ledger", "checkpoint"]).success();
    let consistent = server
        .run_as(&dave, &["ledger", "consistency", "--from", "5"])
        .success();
    assert!(
        consistent
            .stdout
            .starts_with("the checkpoint of size 6 extends the one of size 5"),
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
            .starts_with("ledger ok: 7 events, tree size 7"),
        "{verified:#?}"
    );
    assert!(
        verified
            .stdout
            .contains("projections (requests, grants) match a replay"),
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
    edited[2] = edited[2].replace("INC-1", "INC-9");
    tampered("edited", edited).fails(1, "index 0..4: hash mismatch");
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
