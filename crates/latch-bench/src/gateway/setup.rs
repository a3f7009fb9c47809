//! What `latch-bench gateway` runs against: a pgbench database on the upstream PostgreSQL, a
//! pgbouncer in front of it, and a `latch serve` whose gateway fronts both; each torn down when
//! dropped, also on an error.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use latch_api::{ApproveBody, ConnectBody, ConnectView, CreateRequest, RequestView};
use latch_core::Timestamp;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The upstream PostgreSQL server, reached as the superuser with trust authentication.
#[derive(Clone, Debug)]
pub struct Upstream {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Where the proxies reach it instead of `host`: its Unix-domain socket's directory.
    pub socket_dir: Option<String>,
}

impl Upstream {
    /// The `host` a proxy connects to: the socket directory when there is one (libpq's and
    /// pgbouncer's convention).
    fn proxy_host(&self) -> &str {
        self.socket_dir.as_deref().unwrap_or(&self.host)
    }

    /// The upstream address in latch's config: `host:port`, or the socket file.
    fn latch_address(&self) -> String {
        match &self.socket_dir {
            Some(dir) => format!("{}/.s.PGSQL.{}", dir.trim_end_matches('/'), self.port),
            None => format!("{}:{}", self.host, self.port),
        }
    }

    /// `psql` against `database`, one command, `-At` output.
    async fn psql(&self, database: &str, sql: &str) -> anyhow::Result<String> {
        let output = Command::new("psql")
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", &self.host, "-p"])
            .arg(self.port.to_string())
            .args(["-U", &self.user, "-d", database, "-c", sql])
            .stdin(Stdio::null())
            .output()
            .await
            .context("cannot run `psql`")?;
        ensure!(
            output.status.success(),
            "`psql -c {sql}` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// `SHOW max_connections` and how many connections are in use now.
    pub async fn connection_room(&self) -> anyhow::Result<(u32, u32)> {
        let max = self.psql("postgres", "show max_connections").await?;
        let used = self
            .psql("postgres", "select count(*) from pg_stat_activity")
            .await?;
        Ok((
            max.parse()
                .with_context(|| format!("max_connections `{max}`"))?,
            used.parse()
                .with_context(|| format!("connections `{used}`"))?,
        ))
    }
}

/// `latch_bench_<ulid>` on the upstream, filled by `pgbench -i`; dropped (`WITH (FORCE)`) when
/// this is dropped.
pub struct BenchDatabase {
    upstream: Upstream,
    pub name: String,
}

impl BenchDatabase {
    pub async fn create(upstream: &Upstream, scale: u32) -> anyhow::Result<Self> {
        let name = format!(
            "latch_bench_{}",
            ulid::Ulid::new().to_string().to_lowercase()
        );
        upstream
            .psql("postgres", &format!("create database {name}"))
            .await
            .with_context(|| {
                format!(
                    "cannot create a database on {}:{}",
                    upstream.host, upstream.port
                )
            })?;
        let db = Self {
            upstream: upstream.clone(),
            name,
        };
        let output = Command::new("pgbench")
            .args(["-i", "-q", "-s"])
            .arg(scale.to_string())
            .args(["-h", &upstream.host, "-p"])
            .arg(upstream.port.to_string())
            .args(["-U", &upstream.user, &db.name])
            .stdin(Stdio::null())
            .output()
            .await
            .context("cannot run `pgbench -i`")?;
        ensure!(
            output.status.success(),
            "`pgbench -i -s {scale}` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Ok(db)
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args(["-X", "-q", "-h", &self.upstream.host, "-p"])
            .arg(self.upstream.port.to_string())
            .args(["-U", &self.upstream.user, "-d", "postgres", "-c"])
            .arg(format!(
                "drop database if exists {} with (force)",
                self.name
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status();
    }
}

/// A free TCP port on loopback (free when this returns; good enough on one machine).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A pgbouncer started with `-d` (it daemonizes into its own session), with two databases
/// over the bench database: `bench` in session pooling (the throughput comparison) and
/// `bench_tx` in transaction pooling (many idle sessions through latch without one PostgreSQL
/// backend each). Stopped with SIGTERM (then SIGKILL) when dropped.
pub struct Pgbouncer {
    pub port: u16,
    pid: u32,
    _dir: tempfile::TempDir,
}

/// pgbouncer's name for the session-pooled database.
pub const PGBOUNCER_SESSION_DB: &str = "bench";
/// pgbouncer's name for the transaction-pooled database.
pub const PGBOUNCER_TX_DB: &str = "bench_tx";

impl Pgbouncer {
    pub async fn start(binary: &Path, upstream: &Upstream, database: &str) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("latch-bench-pgb")
            .tempdir()?;
        let port = free_port()?;
        let d = dir.path();
        let path = |name: &str| d.join(name).display().to_string();
        let ini = format!(
            "[databases]\n\
             {PGBOUNCER_SESSION_DB} = host={host} port={uport} dbname={database} user={user}\n\
             {PGBOUNCER_TX_DB} = host={host} port={uport} dbname={database} user={user} pool_mode=transaction pool_size=8\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {users}\n\
             pool_mode = session\n\
             default_pool_size = 40\n\
             max_client_conn = 4000\n\
             ignore_startup_parameters = extra_float_digits,options\n\
             logfile = {log}\n\
             pidfile = {pid}\n",
            host = upstream.proxy_host(),
            uport = upstream.port,
            user = upstream.user,
            users = path("users.txt"),
            log = path("pgbouncer.log"),
            pid = path("pgbouncer.pid"),
        );
        std::fs::write(d.join("pgbouncer.ini"), ini)?;
        std::fs::write(d.join("users.txt"), format!("\"{}\" \"\"\n", upstream.user))?;
        let mut command = Command::new(binary);
        command.arg("-d");
        // pgbouncer refuses to run as root: then it runs as `postgres`, which must own its files.
        if running_as_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(d)
                .status()
                .await?;
            ensure!(
                status.success(),
                "cannot give `{}` to the user `postgres` (pgbouncer does not run as root)",
                d.display()
            );
            command.args(["-u", "postgres"]);
        }
        let output = command
            .arg(d.join("pgbouncer.ini"))
            .stdin(Stdio::null())
            .output()
            .await
            .with_context(|| format!("cannot run `{}`", binary.display()))?;
        let log = || std::fs::read_to_string(d.join("pgbouncer.log")).unwrap_or_default();
        ensure!(
            output.status.success(),
            "pgbouncer did not start: {}{}",
            String::from_utf8_lossy(&output.stderr),
            log()
        );
        // The daemon writes its pid file once it listens.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let pid = loop {
            if let Ok(text) = std::fs::read_to_string(d.join("pgbouncer.pid"))
                && let Ok(pid) = text.trim().parse::<u32>()
                && tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
            {
                break pid;
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "pgbouncer did not start listening within 10 s; its log:\n{}",
                    log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Ok(Self {
            port,
            pid,
            _dir: dir,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }
}

impl Drop for Pgbouncer {
    fn drop(&mut self) {
        let pid = self.pid.to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .stderr(Stdio::null())
            .status();
        for _ in 0..50 {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .stderr(Stdio::null())
            .status();
    }
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|uids| uids.split_whitespace().next().map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

/// The resources of the bench config, all over the bench database.
pub const RES_BUFFERED: &str = "bench-buffered";
pub const RES_STRICT: &str = "bench-strict";
/// Through pgbouncer's transaction pool: for the memory and revocation tests, which hold more
/// idle sessions than PostgreSQL's `max_connections`.
pub const RES_POOLED: &str = "bench-pooled";
/// Roles of `bench-pooled` for the revocation test with many grants: one per grant, so that
/// each grant gets its own credential (`POST /connect` picks the longest grant of a role).
pub const MANY_GRANT_ROLES: usize = 10;

/// The template's organisation and policies with the bench's gateway and resources.
pub fn write_config(
    template_path: &Path,
    dir: &Path,
    database: &str,
    upstream: &Upstream,
    pgbouncer_port: u16,
    client_auth: &str,
    scram_iterations: Option<u32>,
) -> anyhow::Result<PathBuf> {
    let template = std::fs::read_to_string(template_path).with_context(|| {
        format!(
            "cannot read the config template `{}`",
            template_path.display()
        )
    })?;
    let config = crate::lifecycle::write_config(&template, dir, None)?;
    let mut doc: toml_edit::DocumentMut = std::fs::read_to_string(&config)?.parse()?;
    // The template's policies, named by absolute path (the config is not beside them).
    let template_dir = template_path
        .parent()
        .context("the template has no directory")?
        .canonicalize()?;
    let policies = template_dir.join("policies/default.cedar");
    if policies.is_file() {
        let mut files = toml_edit::Array::new();
        files.push(policies.display().to_string());
        let mut policy = toml_edit::Table::new();
        policy.insert("files", toml_edit::value(files));
        doc.insert("policy", toml_edit::Item::Table(policy));
    }
    if let Some(server) = doc.get_mut("server").and_then(|s| s.as_table_like_mut()) {
        server.insert("listen", toml_edit::value("127.0.0.1:0"));
    }
    let mut gateway = toml_edit::Table::new();
    gateway.insert("listen", toml_edit::value("127.0.0.1:0"));
    gateway.insert("credential_ttl", toml_edit::value("24h"));
    gateway.insert("client_auth", toml_edit::value(client_auth));
    if let Some(iterations) = scram_iterations {
        gateway.insert("scram_iterations", toml_edit::value(i64::from(iterations)));
    }
    doc.insert("gateway", toml_edit::Item::Table(gateway));
    doc.remove("resources");
    let direct = upstream.latch_address();
    let pooled = format!("127.0.0.1:{pgbouncer_port}");
    let many: Vec<String> = (0..MANY_GRANT_ROLES).map(|i| format!("g{i}")).collect();
    let mut pooled_roles = vec!["mem", "idle"];
    pooled_roles.extend(many.iter().map(String::as_str));
    let resources = [
        (
            RES_BUFFERED,
            "buffered",
            &direct,
            database,
            vec!["read", "sleep"],
        ),
        (RES_STRICT, "strict", &direct, database, vec!["read"]),
        (
            RES_POOLED,
            "buffered",
            &pooled,
            PGBOUNCER_TX_DB,
            pooled_roles,
        ),
    ];
    let mut text = doc.to_string();
    for (name, recording, address, db, roles) in resources {
        text.push_str(&format!(
            "\n[resources.{name}]\nkind = \"postgres\"\nowner_team = \"payments\"\n\
             recording = \"{recording}\"\n\n[resources.{name}.upstream]\n\
             address = \"{address}\"\ndatabase = \"{db}\"\ntls = false\n"
        ));
        for role in roles {
            // `write` so that nothing is refused or rewritten: pgbench -S only reads anyway.
            text.push_str(&format!(
                "\n[resources.{name}.roles.{role}]\nmax_duration = \"4h\"\nusername = \"{}\"\naccess = \"write\"\n",
                upstream.user
            ));
        }
    }
    std::fs::write(&config, text)?;
    Ok(config)
}

/// A `latch serve` started with `setsid` (its own session, so its own autogroup), killed if
/// dropped without [`Latch::stop`].
pub struct Latch {
    child: Child,
    pub pid: u32,
    pub api: String,
    pub gateway_port: u16,
    http: reqwest::Client,
}

impl Latch {
    pub async fn start(latch: &Path, config: &Path, log: &Path) -> anyhow::Result<Self> {
        // `setsid` execs latch in place (a spawned child is never a process-group leader), so
        // the child's pid is latch's.
        let mut child = Command::new("setsid")
            .arg(latch)
            .args(["serve", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .kill_on_drop(true)
            .spawn()
            .context("cannot run `setsid latch serve`")?;
        let pid = child.id().context("latch serve exited at once")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut api = None;
        let mut gateway = None;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while api.is_none() || gateway.is_none() {
            let line = tokio::time::timeout_at(deadline, lines.next_line()).await;
            let Ok(Ok(Some(line))) = line else {
                let _ = child.kill().await;
                let log = std::fs::read_to_string(log).unwrap_or_default();
                bail!("latch serve did not say where it listens; its log:\n{log}");
            };
            if let Some(url) = line.strip_prefix("latch listening on ") {
                api = Some(url.trim().to_owned());
            } else if let Some(address) =
                line.strip_prefix("latch gateway listening on postgresql://")
            {
                let port = address
                    .trim()
                    .rsplit_once(':')
                    .and_then(|(_, port)| port.parse::<u16>().ok())
                    .with_context(|| format!("no port in `{line}`"))?;
                gateway = Some(port);
            }
        }
        // Keep the pipe drained.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            pid,
            api: api.unwrap_or_default(),
            gateway_port: gateway.unwrap_or_default(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()?,
        })
    }

    /// SIGTERM (a graceful drain), then SIGKILL after 10 s.
    pub async fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }

    /// Resident memory (`VmRSS`) in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS in /proc/PID/status")
    }

    async fn call<B: serde::Serialize, R: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        token: &str,
        body: &B,
    ) -> anyhow::Result<R> {
        let response = self
            .http
            .post(format!("{}{path}", self.api))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            bail!("POST {path}: HTTP {status}: {text}");
        }
        Ok(response.json().await?)
    }

    /// alice requests `resource`/`role` for `duration`; returns the request id.
    pub async fn request(
        &self,
        tokens: &Tokens,
        resource: &str,
        role: &str,
        duration: &str,
    ) -> anyhow::Result<String> {
        let body = CreateRequest {
            resource: resource.to_owned(),
            role: role.to_owned(),
            duration: duration.to_owned(),
            reason: "latch-bench gateway".into(),
            ticket: None,
            once: false,
        };
        let created: RequestView = self.call("/api/v1/requests", &tokens.alice, &body).await?;
        Ok(created.id)
    }

    /// bob approves; returns the grant's id and its end (unix ms).
    pub async fn approve(&self, tokens: &Tokens, request: &str) -> anyhow::Result<(String, i64)> {
        let approved: RequestView = self
            .call(
                &format!("/api/v1/requests/{request}/approve"),
                &tokens.bob,
                &ApproveBody { comment: None },
            )
            .await?;
        let grant = approved
            .grant
            .filter(|g| g.state == "active")
            .with_context(|| format!("request `{request}` approved without an active grant"))?;
        let ends = Timestamp::parse(&grant.expires_at).map_err(anyhow::Error::msg)?;
        Ok((grant.id, ends.as_millis()))
    }

    /// alice's gateway credential for her grant on `resource`/`role` (`latch connect`).
    pub async fn connect(
        &self,
        tokens: &Tokens,
        resource: &str,
        role: &str,
    ) -> anyhow::Result<ConnectView> {
        let body = ConnectBody {
            resource: resource.to_owned(),
            role: Some(role.to_owned()),
        };
        self.call("/api/v1/connect", &tokens.alice, &body).await
    }

    /// A granted request and its credential: request, approve, connect.
    pub async fn grant(
        &self,
        tokens: &Tokens,
        resource: &str,
        role: &str,
        duration: &str,
    ) -> anyhow::Result<ConnectView> {
        let id = self.request(tokens, resource, role, duration).await?;
        self.approve(tokens, &id).await?;
        self.connect(tokens, resource, role).await
    }

    /// GET `path` with `query` as dave, an auditor (he sees every session).
    async fn read<R: serde::de::DeserializeOwned>(
        &self,
        tokens: &Tokens,
        path: &str,
        query: &[(&str, &str)],
    ) -> anyhow::Result<R> {
        let response = self
            .http
            .get(format!("{}{path}", self.api))
            .query(query)
            .bearer_auth(&tokens.dave)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            bail!("GET {path}: HTTP {status}: {text}");
        }
        Ok(response.json().await?)
    }

    /// The statements of a session as the ledger recorded them.
    pub async fn statements(
        &self,
        tokens: &Tokens,
        session: &str,
    ) -> anyhow::Result<Vec<latch_api::StatementView>> {
        let detail: latch_api::SessionDetail = self
            .read(tokens, &format!("/api/v1/sessions/{session}"), &[])
            .await?;
        Ok(detail.statements)
    }

    /// The sessions of a grant as the ledger recorded them.
    pub async fn sessions(
        &self,
        tokens: &Tokens,
        grant: &str,
    ) -> anyhow::Result<Vec<latch_api::SessionView>> {
        let list: latch_api::SessionList = self
            .read(
                tokens,
                "/api/v1/sessions",
                &[("grant", grant), ("limit", "1000")],
            )
            .await?;
        Ok(list.sessions)
    }
}

/// API tokens: alice requests and connects, bob approves, dave (auditor) reads sessions.
pub struct Tokens {
    pub alice: String,
    pub bob: String,
    pub dave: String,
}

impl Tokens {
    pub async fn create(latch: &Path, config: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            alice: create_token(latch, config, "alice").await?,
            bob: create_token(latch, config, "bob").await?,
            dave: create_token(latch, config, "dave").await?,
        })
    }
}

async fn create_token(latch: &Path, config: &Path, user: &str) -> anyhow::Result<String> {
    let output = Command::new(latch)
        .args(["admin", "token", "create", "--user", user])
        .args(["--label", "latch-bench", "--config"])
        .arg(config)
        .output()
        .await
        .context("cannot run `latch admin token create`")?;
    ensure!(
        output.status.success(),
        "`latch admin token create --user {user}` failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout)?.trim().to_owned();
    ensure!(
        !token.is_empty(),
        "`latch admin token create` printed no token"
    );
    Ok(token)
}
