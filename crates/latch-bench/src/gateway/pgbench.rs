//! Running `pgbench` against one target and reading what it says: the summary on stdout, and
//! the per-transaction log (`--log`) for latency percentiles.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;

use anyhow::{Context, ensure};
use serde::Serialize;
use tokio::process::Command;

use crate::host::MachineTicks;

/// Where pgbench connects: PostgreSQL itself, pgbouncer, or latch's gateway.
#[derive(Clone, Debug)]
pub struct Target {
    /// As shown in the report, e.g. `latch buffered`.
    pub name: String,
    pub port: u16,
    pub user: String,
    /// latch's credential; none for trust auth.
    pub password: Option<String>,
    pub database: String,
    /// libpq `sslmode`: `disable` everywhere except the TLS line.
    pub sslmode: &'static str,
    /// The proxy between pgbench and PostgreSQL (pgbouncer, latch), whose CPU time is counted.
    pub proxy_pid: Option<u32>,
}

impl Target {
    fn command(&self, host: &str) -> Command {
        let mut command = Command::new("pgbench");
        command
            .args(["-h", host, "-p"])
            .arg(self.port.to_string())
            .args(["-U", &self.user])
            .env("PGSSLMODE", self.sslmode)
            .env_remove("PGPASSWORD")
            .stdin(Stdio::null());
        if let Some(password) = &self.password {
            command.env("PGPASSWORD", password);
        }
        command
    }
}

/// What one pgbench run reported.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub tps: f64,
    pub latency_avg_ms: Option<f64>,
    pub transactions: u64,
    pub failed: u64,
    /// Why the run is not valid (pgbench failed or clients aborted); its figures are then
    /// partial.
    pub error: Option<String>,
    /// CPU time of the proxy per transaction (user + system, µs): what the proxy costs,
    /// steadier than throughput on a machine whose speed varies from hour to hour.
    pub proxy_cpu_us_per_tx: Option<f64>,
    /// CPU time of the whole machine per transaction (µs): pgbench, PostgreSQL and the proxy.
    /// Time the host took (steal) is not counted.
    pub machine_cpu_us_per_tx: Option<f64>,
    /// The share of the machine's time the host took during the run (%): a run at 30 % is
    /// not comparable with one at 0 %.
    pub host_steal_pct: Option<f64>,
    /// How long the proxy's busiest thread (latch's relay, pgbouncer's one thread) waited,
    /// runnable, for a CPU at each of its turns on one (µs): the queueing a proxy adds to every
    /// transaction at each of its wake-ups, on a machine it shares with pgbench and PostgreSQL.
    pub proxy_wait_us_per_turn: Option<f64>,
    /// Turns on a CPU of that thread per transaction: its wake-ups and preemptions.
    pub proxy_turns_per_tx: Option<f64>,
}

/// `pgbench ARGS… DATABASE` against `target`; a failed run is a [`Summary`] with `error` set,
/// not an `Err` (which is kept for not being able to run pgbench at all).
pub async fn run(host: &str, target: &Target, args: &[String]) -> anyhow::Result<Summary> {
    let proxy_before = target.proxy_pid.and_then(process_cpu_ticks);
    let threads_before = target.proxy_pid.and_then(thread_schedstats);
    let machine_before = MachineTicks::read();
    let output = target
        .command(host)
        .args(args)
        .arg(&target.database)
        .output()
        .await
        .context("cannot run `pgbench`")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut summary = parse_summary(&stdout);
    let per_tx = |before: Option<u64>, after: Option<u64>| match (before, after) {
        (Some(b), Some(a)) if summary.transactions > 0 && a >= b => {
            Some((a - b) as f64 * 1e6 / USER_HZ / summary.transactions as f64)
        }
        _ => None,
    };
    summary.proxy_cpu_us_per_tx =
        per_tx(proxy_before, target.proxy_pid.and_then(process_cpu_ticks));
    let machine_after = MachineTicks::read();
    summary.machine_cpu_us_per_tx = per_tx(
        machine_before.map(|t| t.busy),
        machine_after.map(|t| t.busy),
    );
    summary.host_steal_pct = MachineTicks::steal_pct_between(machine_before, machine_after);
    if let (Some(before), Some(after)) =
        (threads_before, target.proxy_pid.and_then(thread_schedstats))
        && let Some(busiest) = busiest_thread(&before, &after)
        && busiest.turns > 0
    {
        summary.proxy_wait_us_per_turn = Some(busiest.wait_ns as f64 / 1e3 / busiest.turns as f64);
        if summary.transactions > 0 {
            summary.proxy_turns_per_tx = Some(busiest.turns as f64 / summary.transactions as f64);
        }
    }
    let aborted = stderr
        .lines()
        .filter(|line| line.contains("aborted") || line.contains("error"))
        .take(3)
        .collect::<Vec<_>>()
        .join(" | ");
    if !output.status.success() || summary.tps <= 0.0 {
        summary.error = Some(format!(
            "pgbench exited with {}: {}",
            output.status,
            if aborted.is_empty() {
                stderr.trim().chars().take(400).collect::<String>()
            } else {
                aborted
            }
        ));
    }
    Ok(summary)
}

/// The unit of the CPU times in `/proc` (`USER_HZ`, 100 on every Linux we run on).
const USER_HZ: f64 = 100.0;

/// User plus system time of process `pid` and its reaped children, in `USER_HZ` ticks
/// (`/proc/PID/stat` fields 14 and 15).
fn process_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it are plain.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // `after_name` starts at field 3, so field N is at index N - 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// One thread's scheduler statistics (`/proc/PID/task/TID/schedstat`), or their change over a
/// run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ThreadSched {
    /// Nanoseconds on a CPU.
    run_ns: u64,
    /// Nanoseconds runnable but waiting for a CPU.
    wait_ns: u64,
    /// Turns on a CPU.
    turns: u64,
}

/// `/proc/PID/task/TID/schedstat` of every thread of `pid`, by thread id; none where the
/// kernel keeps no scheduler statistics.
fn thread_schedstats(pid: u32) -> Option<HashMap<String, ThreadSched>> {
    let mut threads = HashMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(entry) = entry else { continue };
        let Ok(text) = std::fs::read_to_string(entry.path().join("schedstat")) else {
            // The thread ended meanwhile.
            continue;
        };
        if let Some(sched) = parse_schedstat(&text) {
            threads.insert(entry.file_name().to_string_lossy().into_owned(), sched);
        }
    }
    (!threads.is_empty()).then_some(threads)
}

/// `RUN_NS WAIT_NS TURNS`.
fn parse_schedstat(text: &str) -> Option<ThreadSched> {
    let mut fields = text.split_whitespace().map(str::parse::<u64>);
    Some(ThreadSched {
        run_ns: fields.next()?.ok()?,
        wait_ns: fields.next()?.ok()?,
        turns: fields.next()?.ok()?,
    })
}

/// The change over a run of the thread that ran longest in it (present at both ends).
fn busiest_thread(
    before: &HashMap<String, ThreadSched>,
    after: &HashMap<String, ThreadSched>,
) -> Option<ThreadSched> {
    after
        .iter()
        .filter_map(|(tid, a)| {
            let b = before.get(tid)?;
            Some(ThreadSched {
                run_ns: a.run_ns.checked_sub(b.run_ns)?,
                wait_ns: a.wait_ns.checked_sub(b.wait_ns)?,
                turns: a.turns.checked_sub(b.turns)?,
            })
        })
        .max_by_key(|change| change.run_ns)
}

/// The summary lines of pgbench 15: `tps = …`, `latency average = … ms`, `number of
/// transactions actually processed: …`, `number of failed transactions: …`.
fn parse_summary(stdout: &str) -> Summary {
    let number = |text: &str| -> Option<f64> {
        text.split_whitespace()
            .next()
            .and_then(|n| n.split('/').next())
            .and_then(|n| n.parse().ok())
    };
    let mut summary = Summary::default();
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("tps = ") {
            summary.tps = number(rest).unwrap_or(0.0);
        } else if let Some(rest) = line.strip_prefix("latency average = ") {
            summary.latency_avg_ms = number(rest);
        } else if let Some(rest) = line.strip_prefix("number of transactions actually processed: ")
        {
            summary.transactions = number(rest).map_or(0, |n| n as u64);
        } else if let Some(rest) = line.strip_prefix("number of failed transactions: ") {
            summary.failed = number(rest).map_or(0, |n| n as u64);
        }
    }
    summary
}

/// Latencies of one run at a fixed rate, from pgbench's per-transaction log.
#[derive(Clone, Debug, Default)]
pub struct Latencies {
    /// From the scheduled start (what `-R` reports: includes waiting for a busy connection),
    /// microseconds, sorted.
    pub from_schedule: Vec<i64>,
    /// From the actual start (the log's time minus its schedule lag), microseconds, sorted.
    pub service: Vec<i64>,
}

/// Runs pgbench with `--log --log-prefix=DIR/PREFIX` and reads every log file it wrote (one
/// per thread: `PREFIX.PID` and `PREFIX.PID.N`).
pub async fn run_logged(
    host: &str,
    target: &Target,
    args: &[String],
    dir: &Path,
    prefix: &str,
) -> anyhow::Result<(Summary, Latencies)> {
    let mut args = args.to_vec();
    args.push("--log".into());
    args.push(format!("--log-prefix={}", dir.join(prefix).display()));
    let summary = run(host, target, &args).await?;
    let mut latencies = Latencies::default();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(&format!("{prefix}.")) {
            continue;
        }
        let text = std::fs::read_to_string(entry.path())?;
        parse_log(&text, &mut latencies);
        std::fs::remove_file(entry.path())?;
    }
    ensure!(
        summary.error.is_some() || !latencies.service.is_empty(),
        "pgbench wrote no transaction log under `{}`",
        dir.display()
    );
    latencies.from_schedule.sort_unstable();
    latencies.service.sort_unstable();
    Ok((summary, latencies))
}

/// Lines `client_id transaction_no time script_no time_epoch time_us [schedule_lag]`; `time`
/// is `skipped` or `failed` for transactions that did not run.
fn parse_log(text: &str, into: &mut Latencies) {
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(Ok(time)) = fields.get(2).map(|t| t.parse::<i64>()) else {
            continue;
        };
        let lag = fields
            .get(6)
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or(0);
        into.from_schedule.push(time);
        into.service.push(time - lag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_thread_is_the_one_that_ran_longest_over_the_run() {
        let at = |run_ns, wait_ns, turns| ThreadSched {
            run_ns,
            wait_ns,
            turns,
        };
        let before = HashMap::from([
            ("10".to_owned(), at(5_000_000_000, 1_000, 10)),
            ("11".to_owned(), at(100, 200, 3)),
        ]);
        let after = HashMap::from([
            // Ran longest in all, but only 1 ms in the run.
            ("10".to_owned(), at(5_001_000_000, 2_000, 20)),
            ("11".to_owned(), at(2_000_000_100, 3_000_200, 1_003)),
            // Started during the run: no start to measure from.
            ("12".to_owned(), at(9_000_000_000, 0, 1)),
        ]);
        assert_eq!(
            busiest_thread(&before, &after),
            Some(at(2_000_000_000, 3_000_000, 1_000))
        );
        assert_eq!(
            parse_schedstat("2276312000 3079512000 66022\n"),
            Some(at(2_276_312_000, 3_079_512_000, 66_022))
        );
        assert_eq!(parse_schedstat("12 x 3"), None);
    }

    #[test]
    fn reads_the_summary_of_pgbench_15() {
        let stdout = "pgbench (15.20 (Debian 15.20-0+deb12u1))\n\
            transaction type: <builtin: select only>\n\
            scaling factor: 10\n\
            number of transactions actually processed: 123456\n\
            number of failed transactions: 0 (0.000%)\n\
            latency average = 0.412 ms\n\
            initial connection time = 12.345 ms\n\
            tps = 19385.123456 (without initial connection time)\n";
        let summary = parse_summary(stdout);
        assert_eq!(summary.transactions, 123456);
        assert_eq!(summary.failed, 0);
        assert_eq!(summary.latency_avg_ms, Some(0.412));
        assert!((summary.tps - 19385.123456).abs() < 1e-6);
    }

    #[test]
    fn reads_the_transaction_log() {
        let mut latencies = Latencies::default();
        parse_log(
            "0 1 250 0 1764090000 123456 40\n1 1 skipped 0 1764090000 123999 900\n3 7 180 0 1764090001 5\n",
            &mut latencies,
        );
        assert_eq!(latencies.from_schedule, vec![250, 180]);
        assert_eq!(latencies.service, vec![210, 180]);
    }
}
