//! Starts a gateway for benchmarks: every user is granted resource `bench` (roles `read`,
//! enforced read-only, and `write`, audit) for a day, and records are dropped by a no-op
//! authority (the recording channel and batching recorder still run).
//!
//! ```sh
//! cargo build --release -p latch-gateway --example bench_gateway
//! setsid target/release/examples/bench_gateway 6543 127.0.0.1:5432 bench &
//! PGPASSWORD=x pgbench -S -c 8 -j 2 -T 10 -h 127.0.0.1 -p 6543 -U alice bench:write
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "example binary"
)]

use std::collections::HashMap;
use std::sync::Arc;

use latch_gateway::{
    Authority, ConnectAttempt, Enforcement, Gateway, GatewaySettings, RecordError, RecordingMode,
    Refusal, SessionGrant, SessionRecord, SystemClock, UpstreamRole, UpstreamTarget,
};

struct AllowAll;

#[async_trait::async_trait]
impl Authority for AllowAll {
    async fn authorize(&self, attempt: ConnectAttempt) -> Result<SessionGrant, Refusal> {
        Ok(SessionGrant {
            grant_id: "grt_bench".to_owned(),
            user: attempt.user,
            resource: attempt.resource,
            role: attempt.role.unwrap_or_else(|| "write".to_owned()),
            ends_at_ms: latch_gateway::Clock::now_ms(&SystemClock) + 86_400_000,
            once: false,
        })
    }

    async fn record(&self, _records: &[SessionRecord]) -> Result<(), RecordError> {
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().map_or(6543, |p| p.parse().expect("port"));
    let upstream = args.next().unwrap_or_else(|| "127.0.0.1:5432".to_owned());
    let database = args.next().unwrap_or_else(|| "bench".to_owned());
    let role = |enforcement| UpstreamRole {
        scram_keys: Default::default(),
        username: "postgres".to_owned(),
        password: None,
        enforcement,
        recording: RecordingMode::Buffered,
    };
    let roles = HashMap::from([
        ("read".to_owned(), role(Enforcement::EnforceReadOnly)),
        ("write".to_owned(), role(Enforcement::Audit)),
    ]);
    let settings = GatewaySettings {
        upstreams: HashMap::from([(
            "bench".to_owned(),
            UpstreamTarget {
                address: upstream,
                database: Some(database),
                tls: None,
                roles,
            },
        )]),
        ..GatewaySettings::default()
    };
    let gateway = Gateway::new(settings, Arc::new(AllowAll), SystemClock);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    eprintln!("bench gateway on 127.0.0.1:{port}");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    gateway.run(listener, shutdown).await.expect("gateway");
}
