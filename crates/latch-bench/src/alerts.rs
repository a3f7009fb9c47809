//! `latch-bench alerts`: event-to-alert latency. A real store and the real notifier
//! (`latch_server::notify::run`, system clock) with one webhook route to a local HTTP receiver;
//! the bench appends `request.created` and `request.cancelled` events (half each, so that open
//! requests do not pile up) at `--rate` per second for `--seconds` and the
//! receiver notes when each signed webhook arrives. Latency: arrival minus the event's `at` (the
//! time the lifecycle recorded, before its commit), so it includes the commit, the notifier's
//! poll, routing, rendering, the outbox's transaction, delivery and marking it sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use latch_core::time::{Clock, SystemClock};
use latch_core::{AccessDuration, Command, Timestamp};
use latch_notify::{Channel, Route};
use latch_server::notify::NotifyConfig;
use latch_store::{Executed, Store};
use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, BackendChoice, open};
use crate::stats::percentile;

#[derive(clap::Args)]
pub struct Options {
    /// Events per second.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// How long the load lasts.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Events per append (one transaction each); the rate is kept by spacing the batches.
    #[arg(long, default_value_t = 10)]
    batch: u32,
    /// Alerts of the first this many seconds are left out (warm-up).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    #[arg(long, value_enum, default_value_t = BackendChoice::Sqlite)]
    backend: BackendChoice,
}

/// Arrival times (ms since the epoch) by webhook `id`, and the event times they carry.
type Arrivals = Arc<Mutex<HashMap<String, (i64, i64)>>>;

async fn receiver() -> anyhow::Result<(String, Arrivals)> {
    let arrivals: Arrivals = Arc::default();
    let sink = arrivals.clone();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let sink = sink.clone();
        async move {
            let arrived = SystemClock.now().as_millis();
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body)
                && let (Some(id), Some(at)) = (value["id"].as_str(), value["at"].as_str())
                && let Ok(at) = Timestamp::parse(at)
                && let Ok(mut map) = sink.lock()
            {
                map.insert(id.to_owned(), (arrived, at.as_millis()));
            }
            axum::http::StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((format!("http://{address}/hook"), arrivals))
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    ensure!(
        options.rate > 0 && options.batch > 0,
        "--rate and --batch must be positive"
    );
    ensure!(
        options.seconds > options.warmup,
        "--seconds must exceed --warmup"
    );
    for backend in options.backend.backends() {
        run_once(backend, &options)
            .await
            .with_context(|| format!("on {backend}"))?;
    }
    Ok(())
}

async fn run_once(backend: Backend, options: &Options) -> anyhow::Result<()> {
    let opened = open(backend).await?;
    let store = opened.store.clone();
    let catalog = Arc::new(latch_testkit::sample_catalog());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let key = latch_ledger::SigningKey::from_seed("latch.bench/alerts", [9; 32])
        .context("signing key")?;
    let state = latch_server::AppState::new(store.clone(), catalog.clone(), clock.clone(), key);
    let (url, arrivals) = receiver().await?;
    let config = Arc::new(NotifyConfig {
        channels: HashMap::from([(
            "hook".to_owned(),
            Channel::Webhook {
                url,
                secret: "bench".to_owned(),
            },
        )]),
        routes: vec![Route {
            events: vec!["request.*".to_owned()],
            min_severity: None,
            resources: Vec::new(),
            teams: Vec::new(),
            channel: "hook".to_owned(),
        }],
        expiry_warning: Duration::from_secs(60),
        ..Default::default()
    });
    let shutdown = CancellationToken::new();
    let notifier = tokio::spawn(latch_server::notify::run(state, config, shutdown.clone()));
    let started = Instant::now();
    while store.notify_cursor().await?.is_none() {
        ensure!(
            started.elapsed() < Duration::from_secs(10),
            "the notifier did not start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let duration = AccessDuration::from_secs(1800).context("duration")?;
    let batches_per_sec = f64::from(options.rate) / f64::from(options.batch);
    let gap = Duration::from_secs_f64(1.0 / batches_per_sec);
    let total = u64::from(options.rate) * options.seconds;
    eprintln!(
        "alerts on {backend}: {} events/s for {} s in batches of {}, one webhook route",
        options.rate, options.seconds, options.batch
    );
    let load_started = tokio::time::Instant::now();
    // Alerts for events recorded before this are the warm-up's.
    let measured_from = clock.now().as_millis() + i64::try_from(options.warmup * 1000)?;
    let mut sent = 0u64;
    let mut tick = 0u32;
    // Half of each batch cancels the requests the previous one created, so that open requests
    // (which every create counts for policy) do not pile up over the run.
    let mut open_ids: Vec<String> = Vec::new();
    while sent < total {
        let cancels = open_ids.len().min(usize::try_from(options.batch / 2)?);
        let mut work: Vec<(String, Command)> = open_ids
            .drain(..cancels)
            .map(|id| (id, Command::Cancel { by: "alice".into() }))
            .collect();
        let creates = options.batch - u32::try_from(cancels)?;
        work.extend((0..creates).map(|_| {
            (
                format!("req_{}", ulid::Ulid::new().to_string().to_lowercase()),
                Command::Create {
                    requester: "alice".into(),
                    resource: "payments-db".into(),
                    role: "read".into(),
                    duration,
                    reason: "latch-bench alerts".into(),
                    ticket: None,
                    once: false,
                    history: Default::default(),
                },
            )
        }));
        open_ids.extend(
            work.iter()
                .filter(|(_, command)| matches!(command, Command::Create { .. }))
                .map(|(id, _)| id.clone()),
        );
        for result in store.execute_batch(&work, &catalog, &*clock).await? {
            match result {
                Executed::Done { .. } => {}
                Executed::Refused(refusal) => bail!("create refused: {}", refusal.message),
            }
        }
        sent += u64::from(options.batch);
        tick += 1;
        tokio::time::sleep_until(load_started + gap * tick).await;
    }
    let achieved = sent as f64 / load_started.elapsed().as_secs_f64();
    let drain = Instant::now();
    loop {
        let have = arrivals
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .len();
        if have as u64 >= total {
            break;
        }
        if drain.elapsed() > Duration::from_secs(60) {
            bail!("only {have} of {total} alerts arrived within a minute of the load's end");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    notifier.await.context("the notifier failed")?;

    let map = arrivals.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let mut lags: Vec<i64> = map
        .values()
        .filter(|(_, at)| *at >= measured_from)
        .map(|(arrived, at)| arrived - at)
        .collect();
    ensure!(!lags.is_empty(), "no alert measured");
    lags.sort_unstable();
    let p = |q| percentile(&lags, q).unwrap_or(0);
    println!(
        "| {backend} | {achieved:.0} events/s | {} | {} ms | {} ms | {} ms | {} ms |",
        lags.len(),
        p(50.0),
        p(90.0),
        p(99.0),
        lags.last().copied().unwrap_or(0)
    );
    drop(map);
    drop(opened);
    Ok(())
}
