//! `latch-bench lifecycle`: request→approve→grant cycles per second through the HTTP API of a
//! real `latch serve`, on SQLite and on PostgreSQL, interleaved in one run.
//!
//! Every run starts a fresh server the same way (`setsid latch serve --config … --listen
//! 127.0.0.1:0`, each in its own session so that autogroup scheduling treats them alike) on a
//! fresh database, creates tokens for alice and bob with `latch admin token create`, and lets
//! `--clients` tasks, each with its own keep-alive connection, loop: alice requests
//! `payments-db`/`read`, bob approves, the response must carry the active grant.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use latch_api::{ApproveBody, CreateRequest, RequestView};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinSet;

use crate::backend::{Backend, BackendChoice, PgDatabase};
use crate::stats::{median, ms, percentile};

pub(crate) const DEFAULT_TEMPLATE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/quickstart/latch.toml"
);

#[derive(clap::Args)]
pub struct Options {
    /// Concurrent clients, each with its own keep-alive connection.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Seconds of load before measuring, in every run.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Runs per backend, interleaved (SQLite, PostgreSQL, SQLite, …); medians are reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The `latch` binary, a release build. Default: the `latch` next to this binary.
    #[arg(long)]
    latch: Option<PathBuf>,
    /// The config whose organisation the servers use; `[server]` is rewritten per run.
    #[arg(long, default_value = DEFAULT_TEMPLATE)]
    template: PathBuf,
    #[arg(long, value_enum, default_value_t = BackendChoice::Both)]
    backend: BackendChoice,
}

/// What one run measured.
struct RunResult {
    round: usize,
    backend: Backend,
    /// Cycles started after the warm-up.
    cycles: u64,
    cycles_per_sec: f64,
    /// Cycle latencies in microseconds, sorted.
    latencies: Vec<i64>,
    /// Failed cycles by kind, warm-up included, with one example each.
    errors: BTreeMap<String, (u64, String)>,
}

impl RunResult {
    fn error_count(&self) -> u64 {
        self.errors.values().map(|(n, _)| n).sum()
    }
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    ensure!(options.clients > 0, "--clients must be at least 1");
    ensure!(options.seconds > 0, "--seconds must be at least 1");
    ensure!(options.rounds > 0, "--rounds must be at least 1");
    let latch = find_latch(options.latch.as_deref())?;
    let template = std::fs::read_to_string(&options.template).with_context(|| {
        format!(
            "cannot read the config template `{}`",
            options.template.display()
        )
    })?;
    let backends = options.backend.backends();
    eprintln!(
        "lifecycle: {} clients, {} s measured after {} s warm-up, {} round(s) of {}; latch at {}",
        options.clients,
        options.seconds,
        options.warmup,
        options.rounds,
        backends
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        latch.display()
    );
    let mut results = Vec::new();
    for round in 1..=options.rounds {
        for &backend in &backends {
            let result = run_once(round, backend, &latch, &template, &options)
                .await
                .with_context(|| format!("round {round} on {backend}"))?;
            eprintln!(
                "  round {round} {backend}: {:.1} cycles/s, p50 {} ms, p99 {} ms, {} errors",
                result.cycles_per_sec,
                percentile(&result.latencies, 50.0).map_or_else(|| "-".into(), ms),
                percentile(&result.latencies, 99.0).map_or_else(|| "-".into(), ms),
                result.error_count()
            );
            results.push(result);
        }
    }
    report(&results, &backends, &options);
    let errors: u64 = results.iter().map(RunResult::error_count).sum();
    if errors > 0 {
        bail!("{errors} cycles failed (see the errors above): the figures are not valid");
    }
    Ok(())
}

/// `--latch PATH`, or the `latch` next to this binary; it must exist.
pub(crate) fn find_latch(chosen: Option<&Path>) -> anyhow::Result<PathBuf> {
    let latch = match chosen {
        Some(path) => path.to_owned(),
        None => std::env::current_exe()?
            .parent()
            .context("this binary has no directory")?
            .join("latch"),
    };
    ensure!(
        latch.is_file(),
        "no `latch` binary at `{}`: build it with `cargo build --release -p latch` or pass `--latch PATH`",
        latch.display()
    );
    Ok(latch)
}

async fn run_once(
    round: usize,
    backend: Backend,
    latch: &Path,
    template: &str,
    options: &Options,
) -> anyhow::Result<RunResult> {
    let dir = tempfile::tempdir()?;
    let pg = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(PgDatabase::create().await),
    };
    let config = write_config(template, dir.path(), pg.as_ref().map(|db| db.url.as_str()))?;
    // Declared after `pg`, so dropped (killed) before the database is dropped.
    let mut server = Server::start(latch, &config, &dir.path().join("latch.log")).await?;
    let alice = create_token(latch, &config, "alice").await?;
    let bob = create_token(latch, &config, "bob").await?;
    let load = drive(&server.base, &alice, &bob, options).await;
    server.stop().await;
    drop(pg);
    let (cycles, elapsed, latencies, errors) = load?;
    Ok(RunResult {
        round,
        backend,
        cycles,
        cycles_per_sec: cycles as f64 / elapsed.as_secs_f64(),
        latencies,
        errors,
    })
}

/// The template with `[server]` pointed at `dir` (and at PostgreSQL when `database_url` is set).
pub(crate) fn write_config(
    template: &str,
    dir: &Path,
    database_url: Option<&str>,
) -> anyhow::Result<PathBuf> {
    let mut doc: toml_edit::DocumentMut = template
        .parse()
        .context("the config template is not valid TOML")?;
    let server = doc
        .entry("server")
        .or_insert_with(toml_edit::table)
        .as_table_like_mut()
        .context("`server` in the config template is not a table")?;
    let data_dir = dir.join("data");
    server.insert(
        "data_dir",
        toml_edit::value(
            data_dir
                .to_str()
                .context("the temporary directory is not UTF-8")?,
        ),
    );
    server.remove("database_url");
    server.remove("database_url_env");
    if let Some(url) = database_url {
        server.insert("database_url", toml_edit::value(url));
    }
    // Policy files are named relative to the template, which is not copied: the lifecycle
    // benchmark runs on the built-in rule (Cedar decisions cost microseconds; see
    // `cargo bench -p latch-policy`).
    doc.remove("policy");
    let path = dir.join("latch.toml");
    std::fs::write(&path, doc.to_string())?;
    Ok(path)
}

/// A `latch serve` started with `setsid`: its own session, so its own autogroup.
struct Server {
    /// Killed (SIGKILL) if dropped without [`Server::stop`], e.g. on an error.
    child: Child,
    base: String,
}

impl Server {
    async fn start(latch: &Path, config: &Path, log: &Path) -> anyhow::Result<Self> {
        // `setsid` execs latch in place (a spawned child is never a process-group leader, so
        // setsid does not fork): the child's pid is latch's.
        let mut child = Command::new("setsid")
            .arg(latch)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .kill_on_drop(true)
            .spawn()
            .context("cannot run `setsid latch serve`")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        // The API's address, after whatever else it says first (the gateway's, when the
        // template configures one).
        let api = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("latch listening on ") {
                    return Some(url.trim().to_owned());
                }
            }
            None
        })
        .await;
        let base = match api {
            Ok(Some(url)) => url,
            Ok(None) | Err(_) => {
                let _ = child.kill().await;
                let log = std::fs::read_to_string(log).unwrap_or_default();
                bail!("latch serve did not say where it listens; its log:\n{log}");
            }
        };
        // Keep the pipe drained.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { child, base })
    }

    /// SIGTERM (a graceful drain), then SIGKILL after 10 s.
    async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
            if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
                .await
                .is_ok()
            {
                return;
            }
        }
        let _ = self.child.kill().await;
    }
}

async fn create_token(latch: &Path, config: &Path, user: &str) -> anyhow::Result<String> {
    let output = Command::new(latch)
        .args([
            "admin",
            "token",
            "create",
            "--user",
            user,
            "--label",
            "latch-bench",
            "--config",
        ])
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

type Load = (u64, Duration, Vec<i64>, BTreeMap<String, (u64, String)>);

/// Runs the clients; returns the measured cycles, the measured span, the sorted latencies and
/// the errors.
async fn drive(base: &str, alice: &str, bob: &str, options: &Options) -> anyhow::Result<Load> {
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(options.warmup);
    let until = measure_from + Duration::from_secs(options.seconds);
    let mut clients = JoinSet::new();
    for _ in 0..options.clients {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(30))
            .build()?;
        let cycle = Cycle {
            client,
            base: base.to_owned(),
            alice: alice.to_owned(),
            bob: bob.to_owned(),
        };
        clients.spawn(cycle.repeat(measure_from, until));
    }
    let mut cycles = 0;
    let mut last_end = until;
    let mut latencies = Vec::new();
    let mut errors: BTreeMap<String, (u64, String)> = BTreeMap::new();
    while let Some(client) = clients.join_next().await {
        let client = client.context("a client task failed")?;
        cycles += client.latencies.len() as u64;
        latencies.extend(client.latencies);
        last_end = last_end.max(client.last_end);
        for (kind, (count, example)) in client.errors {
            errors.entry(kind).or_insert((0, example)).0 += count;
        }
    }
    latencies.sort_unstable();
    Ok((cycles, last_end - measure_from, latencies, errors))
}

/// One client: its own connection, alice's and bob's tokens.
struct Cycle {
    client: reqwest::Client,
    base: String,
    alice: String,
    bob: String,
}

struct ClientResult {
    /// Microseconds, of the cycles started after the warm-up.
    latencies: Vec<i64>,
    last_end: Instant,
    errors: BTreeMap<String, (u64, String)>,
}

impl Cycle {
    async fn repeat(self, measure_from: Instant, until: Instant) -> ClientResult {
        let mut result = ClientResult {
            latencies: Vec::new(),
            last_end: until,
            errors: BTreeMap::new(),
        };
        loop {
            let started = Instant::now();
            if started >= until {
                break;
            }
            let outcome = self.once().await;
            let ended = Instant::now();
            match outcome {
                Ok(()) if started >= measure_from => {
                    result
                        .latencies
                        .push(i64::try_from((ended - started).as_micros()).unwrap_or(i64::MAX));
                    result.last_end = result.last_end.max(ended);
                }
                Ok(()) => {}
                Err((kind, detail)) => result.errors.entry(kind).or_insert((0, detail)).0 += 1,
            }
        }
        result
    }

    /// alice requests, bob approves, the grant must be active. An error is (kind, detail).
    async fn once(&self) -> Result<(), (String, String)> {
        let body = CreateRequest {
            resource: "payments-db".into(),
            role: "read".into(),
            duration: "30m".into(),
            reason: "latch-bench lifecycle".into(),
            ticket: None,
            once: false,
        };
        let created: RequestView = self
            .call(
                "create",
                &format!("{}/api/v1/requests", self.base),
                &self.alice,
                &body,
                201,
            )
            .await?;
        let approved: RequestView = self
            .call(
                "approve",
                &format!("{}/api/v1/requests/{}/approve", self.base, created.id),
                &self.bob,
                &ApproveBody { comment: None },
                200,
            )
            .await?;
        match &approved.grant {
            Some(grant) if approved.state == "granted" && grant.state == "active" => Ok(()),
            _ => Err((
                "approve: no active grant".into(),
                format!("state `{}`, grant {:?}", approved.state, approved.grant),
            )),
        }
    }

    async fn call<B: serde::Serialize, R: serde::de::DeserializeOwned>(
        &self,
        step: &str,
        url: &str,
        token: &str,
        body: &B,
        expected: u16,
    ) -> Result<R, (String, String)> {
        let response = self
            .client
            .post(url)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(|err| (format!("{step}: transport"), err.to_string()))?;
        let status = response.status();
        if status.as_u16() != expected {
            let text = response.text().await.unwrap_or_default();
            return Err((
                format!("{step}: HTTP {status}"),
                text.chars().take(300).collect(),
            ));
        }
        response
            .json::<R>()
            .await
            .map_err(|err| (format!("{step}: bad body"), err.to_string()))
    }
}

fn report(results: &[RunResult], backends: &[Backend], options: &Options) {
    println!();
    println!(
        "lifecycle: request→approve→grant through the API, {} clients, {} s per run",
        options.clients, options.seconds
    );
    println!();
    println!("| round | backend | cycles | cycles/s | p50 ms | p99 ms | max ms | errors |");
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    for r in results {
        println!(
            "| {} | {} | {} | {:.1} | {} | {} | {} | {} |",
            r.round,
            r.backend,
            r.cycles,
            r.cycles_per_sec,
            percentile(&r.latencies, 50.0).map_or_else(|| "-".into(), ms),
            percentile(&r.latencies, 99.0).map_or_else(|| "-".into(), ms),
            r.latencies.last().map_or_else(|| "-".into(), |&v| ms(v)),
            r.error_count()
        );
    }
    println!();
    println!("| backend | median cycles/s | median p50 ms | median p99 ms |");
    println!("|---|---:|---:|---:|");
    let mut medians = BTreeMap::new();
    for &backend in backends {
        let runs: Vec<&RunResult> = results.iter().filter(|r| r.backend == backend).collect();
        let rate = median(&runs.iter().map(|r| r.cycles_per_sec).collect::<Vec<_>>());
        let p50 = median(
            &runs
                .iter()
                .filter_map(|r| percentile(&r.latencies, 50.0))
                .map(|v| v as f64)
                .collect::<Vec<_>>(),
        );
        let p99 = median(
            &runs
                .iter()
                .filter_map(|r| percentile(&r.latencies, 99.0))
                .map(|v| v as f64)
                .collect::<Vec<_>>(),
        );
        let show = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| ms(v as i64));
        println!(
            "| {backend} | {} | {} | {} |",
            rate.map_or_else(|| "-".into(), |v| format!("{v:.1}")),
            show(p50),
            show(p99)
        );
        if let Some(rate) = rate {
            medians.insert(backend.to_string(), rate);
        }
    }
    if let (Some(sqlite), Some(pg)) = (medians.get("SQLite"), medians.get("PostgreSQL")) {
        let per_round: Vec<String> = (1..=options.rounds)
            .filter_map(|round| {
                let rate = |b: Backend| {
                    results
                        .iter()
                        .find(|r| r.round == round && r.backend == b)
                        .map(|r| r.cycles_per_sec)
                };
                Some(format!(
                    "{:.2}",
                    rate(Backend::Postgres)? / rate(Backend::Sqlite)?
                ))
            })
            .collect();
        println!();
        println!(
            "PostgreSQL/SQLite cycles/s: {:.2} (medians); per round: {}",
            pg / sqlite,
            per_round.join(", ")
        );
    }
    for r in results {
        for (kind, (count, example)) in &r.errors {
            println!(
                "errors in round {} on {}: {count} × {kind}: {example}",
                r.round, r.backend
            );
        }
    }
}
