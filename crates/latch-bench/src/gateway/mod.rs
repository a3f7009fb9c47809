//! `latch-bench gateway`: the PostgreSQL gateway against PostgreSQL itself and against
//! pgbouncer, side by side in one run (issue #5): read-only pgbench throughput, latency added at
//! a fixed rate, connection set-up rate, memory per idle session, and how soon sessions are
//! cut when their grants expire together.
//!
//! One run sets up everything and tears it down, also on failure: a `latch_bench_<ulid>`
//! database filled by `pgbench -i`, a pgbouncer (`-d`, its own session) with a session pool and
//! a transaction pool over it, and one `setsid latch serve` whose gateway fronts the database
//! as `bench-buffered` and `bench-strict` (the two recording modes, one process) and pgbouncer's
//! transaction pool as `bench-pooled` (to hold more idle sessions than PostgreSQL's
//! `max_connections`). Targets are interleaved within each round so that a slow minute on the
//! machine hurts all of them.

mod pgbench;
mod sessions;
mod setup;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, ensure};
use serde::Serialize;

use crate::lifecycle::{DEFAULT_TEMPLATE, find_latch};
use crate::stats::{median, percentile};
use pgbench::{Summary, Target};
use sessions::{Activity, Memory, Revocation, Scenario};
use setup::{BenchDatabase, Latch, Pgbouncer, Tokens, Upstream};

#[derive(clap::Args)]
pub struct Options {
    /// Seconds per throughput run (`pgbench -T`).
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Throughput rounds; in each, every target runs once per protocol, interleaved. Medians
    /// are reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// pgbench clients (`-c`).
    #[arg(long, default_value_t = 8)]
    clients: u32,
    /// pgbench threads (`-j`).
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// `pgbench -i -s` scale of the bench database.
    #[arg(long, default_value_t = 10)]
    scale: u32,
    /// Seconds per connection set-up run (`pgbench -C`), once per target per round.
    #[arg(long, default_value_t = 10)]
    connect_seconds: u64,
    /// Seconds per fixed-rate latency run, once per target after the rounds.
    #[arg(long, default_value_t = 30)]
    latency_seconds: u64,
    /// Transactions per second of the latency runs. Default: half the median throughput of
    /// `direct` with `-M prepared`.
    #[arg(long)]
    rate: Option<f64>,
    /// Idle sessions opened through latch to measure its memory per session.
    #[arg(long, default_value_t = 500)]
    memory_sessions: usize,
    /// Idle sessions cut by grant expiry (through pgbouncer's transaction pool).
    #[arg(long, default_value_t = 1000)]
    revocation_sessions: usize,
    /// Grants of the many-grants revocation scenario (at most 10), sharing
    /// `--revocation-sessions`.
    #[arg(long, default_value_t = 10)]
    revocation_grants: usize,
    /// Sessions running `pg_sleep` when their grant expires (one PostgreSQL backend each, so
    /// limited by `max_connections`: fewer are used if fewer connections are free, keeping 20).
    #[arg(long, default_value_t = 50)]
    running_sessions: usize,
    /// Sessions running `select 1` back to back as their grant ends (via pgbouncer's
    /// transaction pool), in each of `--busy-trials` trials: does a statement start after the
    /// end?
    #[arg(long, default_value_t = 200)]
    busy_sessions: usize,
    #[arg(long, default_value_t = 3)]
    busy_trials: usize,
    /// Duration of the revocation scenarios' grants: time to open their sessions.
    #[arg(long, default_value_t = 30)]
    revocation_secs: u64,
    /// Skip the TLS line (latch buffered with `sslmode=require`).
    #[arg(long)]
    no_tls: bool,
    /// How clients prove their credential to the gateway (`gateway.client_auth`):
    /// `scram-sha-256` (latch's default; each connection costs the client 4,096 HMAC rounds)
    /// or `password`.
    #[arg(long, default_value = "scram-sha-256")]
    client_auth: String,
    /// The SCRAM rounds of the credentials latch makes (`gateway.scram_iterations`); latch's
    /// default, 4,096, when not given.
    #[arg(long)]
    scram_iterations: Option<u32>,
    /// Write the raw figures here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The upstream PostgreSQL (trust authentication).
    #[arg(long, default_value = "127.0.0.1")]
    pg_host: String,
    #[arg(long, default_value_t = 5432)]
    pg_port: u16,
    #[arg(long, default_value = "postgres")]
    pg_user: String,
    /// The proxies (pgbouncer and latch) reach PostgreSQL through its Unix-domain socket in
    /// this directory (e.g. `/var/run/postgresql`) instead of TCP; pgbench still connects to
    /// each over TCP.
    #[arg(long)]
    upstream_socket_dir: Option<String>,
    #[arg(long, default_value = "/usr/sbin/pgbouncer")]
    pgbouncer: PathBuf,
    /// The `latch` binary, a release build. Default: the `latch` next to this binary.
    #[arg(long)]
    latch: Option<PathBuf>,
    /// The config whose organisation and policies latch uses; the rest is the bench's.
    #[arg(long, default_value = DEFAULT_TEMPLATE)]
    template: PathBuf,
}

/// One throughput or connection-rate run.
#[derive(Clone, Debug, Serialize)]
struct Run {
    round: usize,
    /// `simple`, `prepared` or `connect` (`-C`, simple protocol).
    mode: &'static str,
    target: String,
    #[serde(flatten)]
    summary: Summary,
}

/// One fixed-rate run.
#[derive(Clone, Debug, Serialize)]
struct LatencyRun {
    target: String,
    rate: f64,
    transactions: u64,
    /// Transactions done per second: below `rate` when the target cannot sustain it.
    achieved_tps: f64,
    error: Option<String>,
    /// From the actual start of each transaction (µs).
    p50_us: Option<i64>,
    p99_us: Option<i64>,
    /// From its scheduled start, as `pgbench -R` counts latency (µs).
    p50_from_schedule_us: Option<i64>,
    p99_from_schedule_us: Option<i64>,
    /// The proxy's busiest thread's wait for a CPU per turn (µs): see [`Summary`].
    proxy_wait_us_per_turn: Option<f64>,
}

#[derive(Serialize)]
struct Report {
    clients: u32,
    threads: u32,
    seconds: u64,
    rounds: usize,
    scale: u32,
    max_connections: u32,
    runs: Vec<Run>,
    latency: Vec<LatencyRun>,
    memory: Option<Memory>,
    revocation: Vec<Revocation>,
    /// Scenarios that could not run, with why.
    skipped: Vec<String>,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    ensure!(options.rounds > 0, "--rounds must be at least 1");
    ensure!(options.seconds > 0, "--seconds must be at least 1");
    ensure!(
        (1..=setup::MANY_GRANT_ROLES).contains(&options.revocation_grants),
        "--revocation-grants must be 1 to {}",
        setup::MANY_GRANT_ROLES
    );
    let latch_bin = find_latch(options.latch.as_deref())?;
    ensure!(
        options.pgbouncer.is_file(),
        "no pgbouncer at `{}` (pass --pgbouncer PATH)",
        options.pgbouncer.display()
    );
    let upstream = Upstream {
        host: options.pg_host.clone(),
        port: options.pg_port,
        user: options.pg_user.clone(),
        socket_dir: options.upstream_socket_dir.clone(),
    };
    let (max_connections, used) = upstream.connection_room().await?;
    eprintln!(
        "gateway: pgbench -S -c {} -j {}, {} s × {} round(s); PostgreSQL max_connections {max_connections} ({used} in use); latch at {}",
        options.clients,
        options.threads,
        options.seconds,
        options.rounds,
        latch_bin.display()
    );

    eprintln!("setup: pgbench -i -s {} …", options.scale);
    let db = BenchDatabase::create(&upstream, options.scale).await?;
    let pgbouncer = Pgbouncer::start(&options.pgbouncer, &upstream, &db.name).await?;
    let dir = tempfile::Builder::new()
        .prefix("latch-bench-gw")
        .tempdir()?;
    let config = setup::write_config(
        &options.template,
        dir.path(),
        &db.name,
        &upstream,
        pgbouncer.port,
        &options.client_auth,
        options.scram_iterations,
    )?;
    let log = dir.path().join("latch.log");
    let mut latch = Latch::start(&latch_bin, &config, &log).await?;
    eprintln!(
        "setup: database {}, pgbouncer :{} (pid {}), latch {} gateway :{} (pid {}), config {}",
        db.name,
        pgbouncer.port,
        pgbouncer.pid(),
        latch.api,
        latch.gateway_port,
        latch.pid,
        config.display()
    );
    let outcome = bench(
        &options,
        &upstream,
        &db,
        &pgbouncer,
        &latch,
        &config,
        &latch_bin,
        max_connections,
    )
    .await;
    latch.stop().await;
    drop(pgbouncer);
    drop(db);
    let report = outcome.with_context(|| format!("latch's log: {}", log.display()))?;
    // Keep latch's log when something went wrong.
    let failed = report.runs.iter().any(|r| r.summary.error.is_some())
        || report.latency.iter().any(|r| r.error.is_some());
    if failed {
        let kept = std::env::temp_dir().join(format!("latch-bench-gateway-{}.log", latch.pid));
        let _ = std::fs::copy(&log, &kept);
        eprintln!("some runs failed; latch's log kept at {}", kept.display());
    }
    print_report(&report, &options);
    if let Some(path) = &options.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        eprintln!("raw figures written to {}", path.display());
    }
    Ok(())
}

#[allow(
    clippy::too_many_arguments,
    reason = "one call, from `run`, with what it set up"
)]
async fn bench(
    options: &Options,
    upstream: &Upstream,
    db: &BenchDatabase,
    pgbouncer: &Pgbouncer,
    latch: &Latch,
    config: &std::path::Path,
    latch_bin: &std::path::Path,
    max_connections: u32,
) -> anyhow::Result<Report> {
    let tokens = Tokens::create(latch_bin, config).await?;
    let buffered = latch
        .grant(&tokens, setup::RES_BUFFERED, "read", "4h")
        .await?;
    let strict = latch
        .grant(&tokens, setup::RES_STRICT, "read", "4h")
        .await?;
    let via_latch = |name: &str, credential: &latch_api::ConnectView, sslmode| Target {
        name: name.to_owned(),
        port: latch.gateway_port,
        user: credential.user.clone(),
        password: Some(credential.credential.clone()),
        database: credential.resource.clone(),
        sslmode,
        proxy_pid: Some(latch.pid),
    };
    let direct = Target {
        name: "direct".into(),
        port: upstream.port,
        user: upstream.user.clone(),
        password: None,
        database: db.name.clone(),
        sslmode: "disable",
        proxy_pid: None,
    };
    let bouncer = Target {
        name: "pgbouncer".into(),
        port: pgbouncer.port,
        database: setup::PGBOUNCER_SESSION_DB.into(),
        proxy_pid: Some(pgbouncer.pid()),
        ..direct.clone()
    };
    let targets = vec![
        direct.clone(),
        bouncer.clone(),
        via_latch("latch buffered", &buffered, "disable"),
        via_latch("latch strict", &strict, "disable"),
    ];
    let tls = via_latch("latch buffered TLS", &buffered, "require");
    let host = upstream.host.as_str();

    // Every target answers before anything is measured.
    let mut checked = targets.clone();
    if !options.no_tls {
        checked.push(tls.clone());
    }
    for target in &checked {
        let summary =
            pgbench::run(host, target, &strings(&["-S", "-n", "-c", "1", "-t", "20"])).await?;
        if let Some(error) = summary.error {
            anyhow::bail!("`{}` does not work: {error}", target.name);
        }
    }

    let mut skipped = Vec::new();
    eprintln!("memory: {} idle sessions …", options.memory_sessions);
    let memory =
        match sessions::memory(latch, &tokens, setup::RES_POOLED, options.memory_sessions).await {
            Ok(memory) => {
                eprintln!(
                    "  RSS {} → {} KiB: {}",
                    memory.rss_before_kib,
                    memory.rss_after_kib,
                    memory.per_session_text()
                );
                Some(memory)
            }
            Err(err) => {
                eprintln!("  failed: {err:#}");
                skipped.push(format!("memory: {err:#}"));
                None
            }
        };

    let common = |mode: &str, secs: u64| {
        let mut args = strings(&["-S", "-n", "-M", mode]);
        args.extend([
            "-c".into(),
            options.clients.to_string(),
            "-j".into(),
            options.threads.to_string(),
            "-T".into(),
            secs.to_string(),
        ]);
        args
    };
    let mut runs = Vec::new();
    for round in 1..=options.rounds {
        for mode in ["simple", "prepared"] {
            let mut round_targets = targets.clone();
            if mode == "simple" && !options.no_tls {
                round_targets.push(tls.clone());
            }
            for target in &round_targets {
                let summary = pgbench::run(host, target, &common(mode, options.seconds)).await?;
                log_run(round, mode, &target.name, &summary);
                runs.push(Run {
                    round,
                    mode: if mode == "simple" {
                        "simple"
                    } else {
                        "prepared"
                    },
                    target: target.name.clone(),
                    summary,
                });
            }
        }
        for target in &targets {
            let mut args = common("simple", options.connect_seconds);
            args.push("-C".into());
            let summary = pgbench::run(host, target, &args).await?;
            log_run(round, "connect", &target.name, &summary);
            runs.push(Run {
                round,
                mode: "connect",
                target: target.name.clone(),
                summary,
            });
        }
    }

    let direct_prepared = median(
        &runs
            .iter()
            .filter(|r| r.mode == "prepared" && r.target == "direct" && r.summary.error.is_none())
            .map(|r| r.summary.tps)
            .collect::<Vec<_>>(),
    );
    let buffered_prepared = median(
        &runs
            .iter()
            .filter(|r| {
                r.mode == "prepared" && r.target == "latch buffered" && r.summary.error.is_none()
            })
            .map(|r| r.summary.tps)
            .collect::<Vec<_>>(),
    );
    // Half of direct's maximum (the rate); when latch cannot sustain that, also half of
    // latch buffered's maximum, where added latency is not queueing.
    let mut rates = Vec::new();
    match options.rate {
        Some(rate) => rates.push(rate),
        None => {
            let half_direct = direct_prepared
                .map(|tps| (tps / 2.0).round())
                .context("no valid `direct -M prepared` run to take the rate from: pass --rate")?;
            rates.push(half_direct);
            if let Some(half_latch) = buffered_prepared.map(|tps| (tps / 2.0).round())
                && half_latch < 0.8 * half_direct
            {
                rates.push(half_latch);
            }
        }
    }
    let logs = tempfile::Builder::new()
        .prefix("latch-bench-log")
        .tempdir()?;
    let mut latency = Vec::new();
    for &rate in &rates {
        for (i, target) in targets.iter().enumerate() {
            let mut args = common("prepared", options.latency_seconds);
            args.extend(["-R".into(), format!("{rate}")]);
            let (summary, lat) =
                pgbench::run_logged(host, target, &args, logs.path(), &format!("t{i}")).await?;
            let run = LatencyRun {
                target: target.name.clone(),
                rate,
                transactions: lat.service.len() as u64,
                achieved_tps: lat.service.len() as f64 / options.latency_seconds.max(1) as f64,
                error: summary.error,
                proxy_wait_us_per_turn: summary.proxy_wait_us_per_turn,
                p50_us: percentile(&lat.service, 50.0),
                p99_us: percentile(&lat.service, 99.0),
                p50_from_schedule_us: percentile(&lat.from_schedule, 50.0),
                p99_from_schedule_us: percentile(&lat.from_schedule, 99.0),
            };
            eprintln!(
                "  latency at {rate} tps {}: {:.0} tps done, p50 {} µs, p99 {} µs{}{}",
                run.target,
                run.achieved_tps,
                fmt_opt(run.p50_us),
                fmt_opt(run.p99_us),
                run.proxy_wait_us_per_turn
                    .map(|w| format!(", proxy thread waits {w:.1} µs per turn"))
                    .unwrap_or_default(),
                run.error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
            latency.push(run);
        }
    }

    let mut revocation = Vec::new();
    let (_, used) = upstream.connection_room().await?;
    let room =
        usize::try_from(max_connections.saturating_sub(used).saturating_sub(20)).unwrap_or(0);
    let running = options.running_sessions.min(room);
    let per_grant = options.revocation_sessions / options.revocation_grants;
    let mut scenarios = Vec::new();
    if running > 0 {
        scenarios.push(Scenario {
            name: format!("1 grant, {running} sessions running pg_sleep (direct upstream)"),
            resource: setup::RES_BUFFERED,
            roles: vec!["sleep".into()],
            sessions_per_grant: running,
            activity: Activity::Sleeping,
            grant_secs: options.revocation_secs,
        });
    } else {
        skipped.push(format!(
            "running sessions: no room under max_connections {max_connections} ({used} in use)"
        ));
    }
    scenarios.push(Scenario {
        name: format!(
            "1 grant, {} idle sessions (via pgbouncer)",
            options.revocation_sessions
        ),
        resource: setup::RES_POOLED,
        roles: vec!["idle".into()],
        sessions_per_grant: options.revocation_sessions,
        activity: Activity::Idle,
        grant_secs: options.revocation_secs,
    });
    if options.revocation_grants > 1 {
        scenarios.push(Scenario {
            name: format!(
                "{} grants × {per_grant} idle sessions (via pgbouncer)",
                options.revocation_grants
            ),
            resource: setup::RES_POOLED,
            roles: (0..options.revocation_grants)
                .map(|i| format!("g{i}"))
                .collect(),
            sessions_per_grant: per_grant,
            activity: Activity::Idle,
            grant_secs: options.revocation_secs,
        });
    }
    if options.busy_sessions > 0 {
        for trial in 1..=options.busy_trials {
            scenarios.push(Scenario {
                name: format!(
                    "1 grant, {} busy sessions (via pgbouncer), trial {trial}",
                    options.busy_sessions
                ),
                resource: setup::RES_POOLED,
                roles: vec!["idle".into()],
                sessions_per_grant: options.busy_sessions,
                activity: Activity::Busy,
                grant_secs: options.revocation_secs,
            });
        }
    }
    for scenario in &scenarios {
        eprintln!("revocation: {} …", scenario.name);
        match sessions::revocation(latch, &tokens, scenario).await {
            Ok(r) => {
                eprintln!(
                    "  client p50 {:?} ms, p99 {:?} ms, max {:?} ms, {} not closed; latch's delays p50 {:?} max {:?} ms; statements {} ({} after the end)",
                    r.client(50.0),
                    r.client(99.0),
                    r.client(100.0),
                    r.not_closed,
                    r.server(50.0),
                    r.server(100.0),
                    r.statements_recorded,
                    r.statements_after_end
                );
                revocation.push(r);
            }
            Err(err) => {
                eprintln!("  failed: {err:#}");
                skipped.push(format!("{}: {err:#}", scenario.name));
            }
        }
    }

    Ok(Report {
        clients: options.clients,
        threads: options.threads,
        seconds: options.seconds,
        rounds: options.rounds,
        scale: options.scale,
        max_connections,
        runs,
        latency,
        memory,
        revocation,
        skipped,
    })
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|&a| a.to_owned()).collect()
}

fn log_run(round: usize, mode: &str, target: &str, summary: &Summary) {
    eprintln!(
        "  round {round} {mode:<8} {target:<20} {:>9.1} tps, {} ms, CPU µs/tx proxy {} machine {}{}{}{}",
        summary.tps,
        summary
            .latency_avg_ms
            .map_or_else(|| "-".into(), |v| format!("{v:.3}")),
        summary
            .proxy_cpu_us_per_tx
            .map_or_else(|| "-".into(), |v| format!("{v:.1}")),
        summary
            .machine_cpu_us_per_tx
            .map_or_else(|| "-".into(), |v| format!("{v:.1}")),
        match (summary.proxy_turns_per_tx, summary.proxy_wait_us_per_turn) {
            (Some(turns), Some(wait)) =>
                format!(", proxy thread {turns:.2} turns/tx waiting {wait:.1} µs each"),
            _ => String::new(),
        },
        summary
            .host_steal_pct
            .map(|steal| format!(", host steal {}", crate::host::steal_text(steal)))
            .unwrap_or_default(),
        summary
            .error
            .as_deref()
            .map(|e| format!(" FAILED: {e}"))
            .unwrap_or_default()
    );
}

fn fmt_opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn print_report(report: &Report, options: &Options) {
    println!();
    println!(
        "gateway: pgbench -S -c {} -j {} -T {} -n, scale {}, {} round(s), targets interleaved; proxies reach PostgreSQL over {}",
        report.clients,
        report.threads,
        report.seconds,
        report.scale,
        report.rounds,
        options.upstream_socket_dir.as_deref().map_or_else(
            || "TCP".to_owned(),
            |dir| format!("its Unix-domain socket in {dir}")
        )
    );
    let mut targets: Vec<&str> = Vec::new();
    for r in &report.runs {
        if !targets.contains(&r.target.as_str()) {
            targets.push(&r.target);
        }
    }
    for (mode, title) in [
        ("simple", "throughput, -M simple"),
        ("prepared", "throughput, -M prepared"),
        (
            "connect",
            "connection set-up, -C (a new connection per transaction)",
        ),
    ] {
        println!();
        println!("{title}");
        println!();
        println!(
            "| target | tps per round | median tps | median latency ms | /direct | /pgbouncer | proxy CPU µs/tx | machine CPU µs/tx |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|");
        let median_of = |target: &str| {
            let runs: Vec<&Run> = report
                .runs
                .iter()
                .filter(|r| r.mode == mode && r.target == target)
                .collect();
            let tps = median(
                &runs
                    .iter()
                    .filter(|r| r.summary.error.is_none())
                    .map(|r| r.summary.tps)
                    .collect::<Vec<_>>(),
            );
            let lat = median(
                &runs
                    .iter()
                    .filter_map(|r| r.summary.latency_avg_ms)
                    .collect::<Vec<_>>(),
            );
            let cpu = |of: fn(&Summary) -> Option<f64>| {
                median(
                    &runs
                        .iter()
                        .filter_map(|r| of(&r.summary))
                        .collect::<Vec<_>>(),
                )
                .map_or_else(|| "-".into(), |v| format!("{v:.1}"))
            };
            let cpus = (
                cpu(|s| s.proxy_cpu_us_per_tx),
                cpu(|s| s.machine_cpu_us_per_tx),
            );
            (runs, tps, lat, cpus)
        };
        let (_, direct, _, _) = median_of("direct");
        let (_, bouncer, _, _) = median_of("pgbouncer");
        for &target in &targets {
            let (runs, tps, lat, (proxy_cpu, machine_cpu)) = median_of(target);
            if runs.is_empty() {
                continue;
            }
            let per_round: Vec<String> = runs
                .iter()
                .map(|r| match &r.summary.error {
                    None => format!("{:.0}", r.summary.tps),
                    Some(_) => format!("{:.0} (failed)", r.summary.tps),
                })
                .collect();
            let ratio = |base: Option<f64>| match (tps, base) {
                (Some(t), Some(b)) if b > 0.0 && target != "direct" => format!("{:.2}", t / b),
                _ => "-".into(),
            };
            println!(
                "| {target} | {} | {} | {} | {} | {} | {proxy_cpu} | {machine_cpu} |",
                per_round.join(", "),
                tps.map_or_else(|| "-".into(), |v| format!("{v:.0}")),
                lat.map_or_else(|| "-".into(), |v| format!("{v:.3}")),
                ratio(direct),
                if target == "pgbouncer" {
                    "-".into()
                } else {
                    ratio(bouncer)
                },
            );
        }
    }

    println!();
    let mut rates: Vec<f64> = Vec::new();
    for r in &report.latency {
        if !rates.contains(&r.rate) {
            rates.push(r.rate);
        }
    }
    for rate in rates {
        println!(
            "added latency at a fixed rate: pgbench -S -M prepared -c {} -j {} -R {rate} -T {} -n --log",
            report.clients, report.threads, options.latency_seconds
        );
        println!(
            "(µs from each transaction's actual start; in brackets from its scheduled start, as -R counts it)"
        );
        println!();
        println!(
            "| target | tps done | p50 µs | p99 µs | p50 − direct µs | p99 − direct µs | proxy thread's wait per turn µs |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
        let runs: Vec<&LatencyRun> = report.latency.iter().filter(|r| r.rate == rate).collect();
        let direct = runs.iter().find(|r| r.target == "direct");
        for r in &runs {
            let diff = |a: Option<i64>, b: Option<i64>| match (a, b) {
                (Some(a), Some(b)) if r.target != "direct" => format!("{:+}", a - b),
                _ => "-".into(),
            };
            println!(
                "| {}{} | {:.0} | {} ({}) | {} ({}) | {} ({}) | {} ({}) | {} |",
                r.target,
                if r.error.is_some() { " (failed)" } else { "" },
                r.achieved_tps,
                fmt_opt(r.p50_us),
                fmt_opt(r.p50_from_schedule_us),
                fmt_opt(r.p99_us),
                fmt_opt(r.p99_from_schedule_us),
                diff(r.p50_us, direct.and_then(|d| d.p50_us)),
                diff(
                    r.p50_from_schedule_us,
                    direct.and_then(|d| d.p50_from_schedule_us)
                ),
                diff(r.p99_us, direct.and_then(|d| d.p99_us)),
                diff(
                    r.p99_from_schedule_us,
                    direct.and_then(|d| d.p99_from_schedule_us)
                ),
                r.proxy_wait_us_per_turn
                    .map_or_else(|| "-".into(), |w| format!("{w:.1}")),
            );
        }
        println!();
        println!(
            "targets: latch − direct ≤ 50 µs at p50, ≤ 150 µs at p99 (a target below the rate is saturated: its figures are queueing)"
        );
        println!();
    }

    if let Some(m) = &report.memory {
        println!();
        println!(
            "memory: {} idle sessions through latch (via pgbouncer's transaction pool): VmRSS {} → {} KiB, {} (target < 64 KiB)",
            m.sessions,
            m.rss_before_kib,
            m.rss_after_kib,
            m.per_session_text()
        );
    }

    if !report.revocation.is_empty() {
        println!();
        println!(
            "revocation: grants expiring together, from each grant's end to its sessions' close"
        );
        println!();
        println!(
            "| scenario | expiry spread ms | closed | client p50 / p99 / max ms | latch's revocation_delay_ms p50 / p99 / max | SQLSTATEs | end reasons | statements recorded (started after the end) |"
        );
        println!("|---|---:|---:|---|---|---|---|---|");
        for r in &report.revocation {
            let counts = |m: &BTreeMap<String, usize>| {
                m.iter()
                    .map(|(k, v)| format!("{k} × {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!(
                "| {} | {} | {}/{} | {} / {} / {} | {} / {} / {} | {} | {} | {} |",
                r.name,
                r.expiry_spread_ms,
                r.client_delays_ms.len(),
                r.sessions,
                fmt_opt(r.client(50.0)),
                fmt_opt(r.client(99.0)),
                fmt_opt(r.client(100.0)),
                fmt_opt(r.server(50.0)),
                fmt_opt(r.server(99.0)),
                fmt_opt(r.server(100.0)),
                counts(&r.sqlstates),
                counts(&r.end_reasons),
                if r.activity == Activity::Busy {
                    format!("{} ({})", r.statements_recorded, r.statements_after_end)
                } else {
                    "–".to_owned()
                },
            );
        }
        println!();
        println!("target: every session closed within 1 s (1000 ms) of its grant's end");
        let busy: Vec<&Revocation> = report
            .revocation
            .iter()
            .filter(|r| r.activity == Activity::Busy)
            .collect();
        if !busy.is_empty() {
            let after: usize = busy.iter().map(|r| r.statements_after_end).sum();
            let recorded: usize = busy.iter().map(|r| r.statements_recorded).sum();
            println!(
                "target: no statement recorded as started after its grant's end: {after} in {} trials ({recorded} statements): {}",
                busy.len(),
                if after == 0 { "met" } else { "NOT met" }
            );
        }
    }
    for s in &report.skipped {
        println!("not measured: {s}");
    }
}
