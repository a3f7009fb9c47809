//! latch's PostgreSQL gateway: clients connect to it with their latch user and credential; it
//! asks the [`Authority`] for the grant the session runs under (**the gateway asks policy and
//! never decides**), connects to the upstream as the role's login, relays the session, records
//! every statement, refuses writes on read-only roles, and cuts the session when the grant
//! ends.
//!
//! - [`Gateway::run`]: accept loop (`run(listener, shutdown)`, mini-redis style).
//! - `session`: one connection from accept to close; `client`: startup, TLS and the password
//!   exchange; `upstream`: connecting and authenticating upstream, CancelRequests.
//! - `relay`: the hot path, one task per session owning both sockets.
//! - `recorder`: the batching writer behind the bounded recording channel.
//! - `registry`: live sessions for `end_grant`, `sessions` and client cancels.
//! - `error`: every error and refusal mapped to SQLSTATE in one place.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

mod authority;
mod client;
mod error;
mod recorder;
mod registry;
mod relay;
mod session;
mod settings;
mod stream;
mod upstream;

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use authority::{
    Authority, Clock, ConnectAttempt, EndReason, LiveSession, Outcome, PresentedCredential,
    Protocol, RecordError, Refusal, ScramCandidate, ScramVerifiers, SessionGrant, SessionRecord,
    StatementRecord, SystemClock, credential_salt,
};
pub use settings::{
    ClientAuth, Enforcement, GatewaySettings, RecordingMode, UpstreamRole, UpstreamTarget,
};

/// The gateway. Cheap to share behind an `Arc`; `end_grant` and `sessions` may be called
/// from any task while `run` serves.
pub struct Gateway {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) settings: GatewaySettings,
    pub(crate) authority: Arc<dyn Authority>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) registry: registry::Registry,
    /// Sessions' side of the recording channel.
    pub(crate) tx: mpsc::Sender<SessionRecord>,
    /// The recorder's side, taken by `run`.
    rx: Mutex<Option<mpsc::Receiver<SessionRecord>>>,
    /// The relay threads, kept once `run` has returned; they stop when the gateway is dropped.
    relays: Mutex<Option<RelayThreads>>,
}

impl Gateway {
    pub fn new(
        settings: GatewaySettings,
        authority: Arc<dyn Authority>,
        clock: impl Clock,
    ) -> Self {
        let (tx, rx) = mpsc::channel(settings.recording_buffer.max(1));
        Gateway {
            inner: Arc::new(Inner {
                settings,
                authority,
                clock: Arc::new(clock),
                registry: registry::Registry::default(),
                tx,
                rx: Mutex::new(Some(rx)),
                relays: Mutex::new(None),
            }),
        }
    }

    /// Serves connections from `listener` until `shutdown` is cancelled; then ends every
    /// session (FATAL 57P01 to its client), waits up to `shutdown_grace` for them, and drains
    /// the recorder. Can run once per gateway.
    pub async fn run(&self, listener: TcpListener, shutdown: CancellationToken) -> io::Result<()> {
        let rx = self
            .inner
            .rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or_else(|| io::Error::other("the gateway is already running"))?;
        let recorder_stop = CancellationToken::new();
        let recorder = tokio::spawn(recorder::run(
            rx,
            Arc::clone(&self.inner.authority),
            self.inner.settings.record_interval,
            recorder_stop.clone(),
        ));
        let tracker = TaskTracker::new();
        let mut relays = RelayThreads::start(self.inner.settings.relay_threads)?;
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                r = listener.accept() => r,
            };
            match accepted {
                Ok((tcp, peer)) => {
                    // The session registers the socket with the IO driver of the runtime it
                    // runs on: a relay thread's wake-ups then stay on that thread.
                    let tcp = match tcp.into_std() {
                        Ok(tcp) => tcp,
                        Err(e) => {
                            tracing::warn!(error = %e, %peer, "cannot take an accepted connection");
                            continue;
                        }
                    };
                    let session =
                        session::handle(tcp, peer, Arc::clone(&self.inner), shutdown.clone());
                    match relays.next() {
                        None => {
                            tracker.spawn(session);
                        }
                        Some(relay) => {
                            tracker.spawn_on(session, relay);
                        }
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
        tracker.close();
        if tokio::time::timeout(self.inner.settings.shutdown_grace, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("sessions still open after the shutdown grace period");
        }
        recorder_stop.cancel();
        let _ = recorder.await;
        // The relay threads outlive `run` as long as the gateway: a store connection that a
        // session opened on one (a PostgreSQL pool's socket is driven by the runtime that
        // opened it) may still serve the server's other tasks.
        *self
            .inner
            .relays
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(relays);
        Ok(())
    }

    /// Ends every live session of the grant now: cancels a running statement upstream, sends
    /// the client FATAL 57P01 naming the grant and reason, closes both sides. Returns how many
    /// sessions were told. Sessions still being set up for the grant end as soon as they
    /// register.
    pub fn end_grant(&self, grant_id: &str, reason: EndReason) -> usize {
        self.inner
            .registry
            .end_grant(grant_id, &reason, self.inner.clock.now_ms())
    }

    /// The live sessions, ordered by id.
    pub fn sessions(&self) -> Vec<LiveSession> {
        self.inner.registry.live()
    }
}

/// Threads that each run a single-threaded runtime for the sessions handed to them.
///
/// On the server's work-stealing runtime a session's task moves between worker threads, and a
/// worker with nothing to do parks and is woken again for the next read: under `pgbench`, a
/// tenth of latch's CPU per transaction (docs/BENCHMARKS.md, `gateway`, fifteenth session). A
/// session given to a relay thread stays there, with its sockets on that thread's own IO driver.
struct RelayThreads {
    handles: Vec<tokio::runtime::Handle>,
    /// The thread the next session goes to.
    turn: usize,
    stop: CancellationToken,
}

impl RelayThreads {
    fn start(n: usize) -> io::Result<Self> {
        let mut relays = RelayThreads {
            handles: Vec::with_capacity(n),
            turn: 0,
            stop: CancellationToken::new(),
        };
        for i in 0..n {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = runtime.handle().clone();
            let stop = relays.stop.clone();
            // Dropped with `relays` on an error: the threads started so far stop.
            std::thread::Builder::new()
                .name(format!("latch-relay-{i}"))
                .spawn(move || runtime.block_on(stop.cancelled()))?;
            relays.handles.push(handle);
        }
        Ok(relays)
    }

    /// The thread for the next session, in turn; `None` without relay threads.
    fn next(&mut self) -> Option<&tokio::runtime::Handle> {
        let handle = self.handles.get(self.turn % self.handles.len().max(1))?;
        self.turn = self.turn.wrapping_add(1);
        Some(handle)
    }
}

impl Drop for RelayThreads {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
