//! The harness: a test Authority that collects records, a throwaway database, a gateway on
//! port 0, and raw-protocol helpers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use latch_gateway::{
    Authority, ConnectAttempt, Enforcement, Gateway, GatewaySettings, PresentedCredential,
    RecordError, RecordingMode, Refusal, ScramCandidate, ScramVerifiers, SessionGrant,
    SessionRecord, SystemClock, UpstreamRole, UpstreamTarget,
};
use latch_pgwire::scram::ScramSecret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

pub const CREDENTIAL: &str = "cred";
/// The id the test authority gives [`CREDENTIAL`] among its SCRAM candidates.
pub const CREDENTIAL_ID: &str = "cred_test";
pub const GRANT: &str = "grt_test";

pub fn now_ms() -> i64 {
    latch_gateway::Clock::now_ms(&SystemClock)
}

/// Grants every user with the right credential `GRANT` until `ends_at_ms`; `bob` has no grant.
pub struct TestAuthority {
    pub ends_at_ms: AtomicI64,
    pub records: Mutex<Vec<SessionRecord>>,
    pub fail_record: AtomicBool,
    pub record_calls: AtomicUsize,
    /// The thread each connection was authorized on, by name.
    pub authorized_on: Mutex<Vec<String>>,
}

impl TestAuthority {
    pub fn new() -> Arc<Self> {
        Arc::new(TestAuthority {
            ends_at_ms: AtomicI64::new(now_ms() + 3_600_000),
            records: Mutex::new(Vec::new()),
            fail_record: AtomicBool::new(false),
            record_calls: AtomicUsize::new(0),
            authorized_on: Mutex::new(Vec::new()),
        })
    }

    pub fn records(&self) -> Vec<SessionRecord> {
        self.records.lock().unwrap().clone()
    }

    /// Waits until a record matching `f` arrives.
    pub async fn wait_for(&self, what: &str, f: impl Fn(&SessionRecord) -> bool) -> SessionRecord {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(r) = self.records().into_iter().find(|r| f(r)) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "no record {what}; got {:#?}",
                self.records()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until the records so far satisfy `f` (looked at in place, not copied per poll).
    pub async fn wait_until(&self, what: &str, f: impl Fn(&[SessionRecord]) -> bool) {
        eventually(what, || f(&self.records.lock().unwrap())).await;
    }

    pub fn statements(&self) -> Vec<latch_gateway::StatementRecord> {
        self.records()
            .into_iter()
            .filter_map(|r| match r {
                SessionRecord::Statement(s) => Some(s),
                _ => None,
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl Authority for TestAuthority {
    async fn authorize(&self, attempt: ConnectAttempt) -> Result<SessionGrant, Refusal> {
        self.authorized_on
            .lock()
            .unwrap()
            .push(std::thread::current().name().unwrap_or_default().to_owned());
        if attempt.user == "bob" {
            return Err(Refusal::new(
                "28000",
                format!(
                    "no active grant for `bob` on `{}`: request one with `latch request {} --role read --for 1h --reason ...`",
                    attempt.resource, attempt.resource
                ),
            ));
        }
        let known = match &attempt.credential {
            PresentedCredential::Secret(secret) => secret.as_str() == CREDENTIAL,
            PresentedCredential::ScramProven { credential_id, .. } => {
                credential_id == CREDENTIAL_ID
            }
            PresentedCredential::ScramFailed => false,
        };
        if !known {
            return Err(Refusal::new(
                "28P01",
                format!("invalid latch credential for `{}`", attempt.user),
            ));
        }
        Ok(SessionGrant {
            grant_id: GRANT.to_owned(),
            user: attempt.user,
            resource: attempt.resource,
            role: attempt.role.unwrap_or_else(|| "write".to_owned()),
            ends_at_ms: self.ends_at_ms.load(Ordering::SeqCst),
            once: false,
        })
    }

    async fn record(&self, records: &[SessionRecord]) -> Result<(), RecordError> {
        self.record_calls.fetch_add(1, Ordering::SeqCst);
        if self.fail_record.load(Ordering::SeqCst) {
            return Err(RecordError {
                message: "ledger unavailable".to_owned(),
            });
        }
        self.records.lock().unwrap().extend_from_slice(records);
        Ok(())
    }

    async fn scram_verifiers(
        &self,
        user: &str,
        _resource: &str,
    ) -> Result<ScramVerifiers, Refusal> {
        let mut verifiers = ScramVerifiers::none(user);
        if user != "bob" {
            let secret = ScramSecret::derive(CREDENTIAL, &verifiers.salt, verifiers.iterations);
            verifiers.candidates = vec![
                ScramCandidate {
                    credential_id: "an older credential".to_owned(),
                    stored_key: [7; 32],
                    server_key: [7; 32],
                },
                ScramCandidate {
                    credential_id: CREDENTIAL_ID.to_owned(),
                    stored_key: secret.stored_key,
                    server_key: secret.server_key,
                },
            ];
        }
        Ok(verifiers)
    }
}

/// A database for one test, dropped at the end.
pub struct TestDb {
    pub name: String,
}

pub fn psql_admin(sql: &str) -> String {
    psql_admin_in("postgres", sql)
}

/// `sql` in database `db`, as the superuser, straight to PostgreSQL (not through latch).
pub fn psql_admin_in(db: &str, sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "5432",
            "-U",
            "postgres",
            "-d",
            db,
            "-XAtqc",
            sql,
        ])
        .output()
        .expect("psql must be installed");
    assert!(
        out.status.success(),
        "PostgreSQL at 127.0.0.1:5432 is required for these tests: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl TestDb {
    pub fn new() -> Self {
        let name = format!("latch_gw_{}", ulid::Ulid::new().to_string().to_lowercase());
        psql_admin(&format!("create database {name}"));
        TestDb { name }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-XAtqc",
            ])
            .arg(format!(
                "drop database if exists {} with (force)",
                self.name
            ))
            .output();
    }
}

pub fn role(enforcement: Enforcement, recording: RecordingMode) -> UpstreamRole {
    UpstreamRole {
        scram_keys: Default::default(),
        username: "postgres".to_owned(),
        password: None,
        enforcement,
        recording,
    }
}

/// Settings with resource `res` on the test database: roles `read` (enforced read-only),
/// `write` (audit) and `strict` (audit, strict recording).
pub fn settings(db: &TestDb) -> GatewaySettings {
    let mut roles = HashMap::new();
    roles.insert(
        "read".to_owned(),
        role(Enforcement::EnforceReadOnly, RecordingMode::Buffered),
    );
    roles.insert(
        "write".to_owned(),
        role(Enforcement::Audit, RecordingMode::Buffered),
    );
    roles.insert(
        "strict".to_owned(),
        role(Enforcement::Audit, RecordingMode::Strict),
    );
    let mut upstreams = HashMap::new();
    upstreams.insert(
        "res".to_owned(),
        UpstreamTarget {
            address: "127.0.0.1:5432".to_owned(),
            database: Some(db.name.clone()),
            tls: None,
            roles,
        },
    );
    GatewaySettings {
        upstreams,
        // Tests read a statement's record right after its answer; the pause between batches
        // is the recorder's own unit tests' business.
        record_interval: Duration::ZERO,
        // Sessions on relay threads of their own, as `latch serve` runs them, two so that
        // sessions of one test are on different threads.
        relay_threads: 2,
        ..GatewaySettings::default()
    }
}

pub struct Harness {
    pub addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    pub authority: Arc<TestAuthority>,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
    pub db: TestDb,
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut GatewaySettings)) -> Self {
        let db = TestDb::new();
        let mut s = settings(&db);
        tweak(&mut s);
        let authority = TestAuthority::new();
        let gateway = Arc::new(Gateway::new(s, authority.clone(), SystemClock));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let gateway = Arc::clone(&gateway);
            let shutdown = shutdown.clone();
            async move { gateway.run(listener, shutdown).await }
        });
        Harness {
            addr,
            gateway,
            authority,
            shutdown,
            task,
            db,
        }
    }

    /// `psql -XAtc SQL` as alice through the gateway, on `res:write` with `sslmode`; returns
    /// what it printed, trimmed, and fails the test if psql fails.
    pub async fn psql(&self, sslmode: &str, sql: &str) -> String {
        let out = tokio::process::Command::new("psql")
            .arg(format!(
                "postgresql://alice:{CREDENTIAL}@127.0.0.1:{}/res:write?sslmode={sslmode}",
                self.addr.port()
            ))
            .args(["-XAtc", sql])
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    pub fn conn_str(&self, role: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=alice password={CREDENTIAL} dbname=res:{role} sslmode=disable",
            self.addr.port()
        )
    }

    pub async fn connect(&self, role: &str) -> tokio_postgres::Client {
        self.try_connect(&self.conn_str(role)).await.unwrap()
    }

    pub async fn try_connect(
        &self,
        conn: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::connect(conn, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// The SQLSTATE and message of a tokio-postgres error.
pub fn db_error(e: &tokio_postgres::Error) -> (String, String) {
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {e:?}"));
    (db.code().code().to_owned(), db.message().to_owned())
}

/// A raw protocol connection, for what real clients never send.
pub struct Raw {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Self {
        Raw {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next backend message, or `None` at EOF.
    pub async fn recv(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if let Some((msg, n)) = latch_pgwire::decode_backend(&self.buf, 1 << 24).unwrap() {
                let out = (msg.tag(), self.buf[5..n].to_vec());
                self.buf.drain(..n);
                return Some(out);
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
                .await
                .expect("the gateway answers")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads until an ErrorResponse; returns (severity, code, message).
    pub async fn expect_error(&mut self) -> (String, String, String) {
        while let Some((tag, body)) = self.recv().await {
            if tag == b'E' {
                let mut framed = vec![b'E'];
                framed.extend_from_slice(&(i32::try_from(body.len()).unwrap() + 4).to_be_bytes());
                framed.extend_from_slice(&body);
                let (msg, _) = latch_pgwire::decode_backend(&framed, 1 << 24)
                    .unwrap()
                    .unwrap();
                let latch_pgwire::BackendMessage::ErrorResponse(f) = msg else {
                    unreachable!()
                };
                return (
                    f.severity.to_owned(),
                    f.code.to_owned(),
                    f.message.to_owned(),
                );
            }
        }
        panic!("connection closed without an ErrorResponse");
    }

    /// Startup + cleartext password, up to the first ReadyForQuery.
    pub async fn login(addr: SocketAddr, database: &str) -> Self {
        let mut raw = Raw::connect(addr).await;
        let mut out = Vec::new();
        latch_pgwire::encode::startup_message(
            &mut out,
            &[("user", "alice"), ("database", database)],
        );
        raw.send(&out).await;
        let (tag, _) = raw.recv().await.unwrap();
        assert_eq!(tag, b'R');
        out.clear();
        latch_pgwire::encode::password_message(&mut out, CREDENTIAL);
        raw.send(&out).await;
        loop {
            let (tag, body) = raw.recv().await.expect("login completes");
            assert_ne!(
                tag,
                b'E',
                "login failed: {}",
                String::from_utf8_lossy(&body)
            );
            if tag == b'Z' {
                return raw;
            }
        }
    }

    /// Whether the gateway closed the connection (reads EOF within 5 s).
    pub async fn closed(&mut self) -> bool {
        let mut chunk = [0u8; 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {}
                Err(_) => return false,
            }
        }
    }
}

/// Waits for `f` to hold.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Rows returned by a simple query.
pub async fn count_rows(client: &tokio_postgres::Client, sql: &str) -> usize {
    client
        .simple_query(sql)
        .await
        .unwrap()
        .iter()
        .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
        .count()
}
