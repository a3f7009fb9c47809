//! Live sessions: for `end_grant`, `sessions()` and client CancelRequests. Touched when a
//! session starts or ends and by those three calls, never per statement.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

use crate::authority::{EndReason, LiveSession};

/// Where to send a CancelRequest for a session's upstream backend.
#[derive(Debug, Clone)]
pub(crate) struct CancelTarget {
    pub(crate) address: String,
    pub(crate) process_id: i32,
    pub(crate) secret_key: i32,
}

/// What the registry and the session task share.
pub(crate) struct SessionShared {
    pub(crate) session_id: String,
    pub(crate) grant_id: String,
    pub(crate) user: String,
    pub(crate) resource: String,
    pub(crate) role: String,
    pub(crate) client_addr: SocketAddr,
    pub(crate) started_at_ms: i64,
    pub(crate) ends_at_ms: i64,
    /// The key data given to the client (ours, not the upstream's).
    pub(crate) process_id: i32,
    pub(crate) secret_key: i32,
    pub(crate) cancel: CancelTarget,
    /// Statements recorded so far; written only by the session task.
    pub(crate) statements: AtomicU64,
    /// Cancelled to end the session; the reason is set first.
    pub(crate) end: CancellationToken,
    /// Why the session was told to end, and when (unix ms).
    pub(crate) end_reason: Mutex<Option<(EndReason, i64)>>,
}

impl SessionShared {
    pub(crate) fn request_end(&self, reason: EndReason, at_ms: i64) {
        let mut slot = self
            .end_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some((reason, at_ms));
        }
        drop(slot);
        self.end.cancel();
    }

    pub(crate) fn end_reason(&self) -> Option<(EndReason, i64)> {
        self.end_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[derive(Default)]
pub(crate) struct Registry {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// By the process id given to the client (unique among live sessions).
    sessions: HashMap<i32, Arc<SessionShared>>,
    /// Grants ended with `end_grant`, so that a session whose setup raced with the call is
    /// ended too when it registers. Entries older than [`ENDED_GRANT_MEMORY_MS`] are pruned.
    ended: HashMap<String, (EndReason, i64)>,
}

/// How long an ended grant is remembered: longer than any session setup takes.
const ENDED_GRANT_MEMORY_MS: i64 = 10 * 60 * 1000;

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Picks a process id not in use and registers the session built with it.
    pub(crate) fn insert(&self, build: impl FnOnce(i32) -> SessionShared) -> Arc<SessionShared> {
        let mut inner = self.lock();
        let mut pid: i32 = rand::random::<i32>() & 0x3fff_ffff;
        while pid == 0 || inner.sessions.contains_key(&pid) {
            pid = rand::random::<i32>() & 0x3fff_ffff;
        }
        let shared = Arc::new(build(pid));
        inner.sessions.insert(pid, Arc::clone(&shared));
        shared
    }

    pub(crate) fn remove(&self, process_id: i32) {
        self.lock().sessions.remove(&process_id);
    }

    /// The upstream cancel target of the session with this key data.
    pub(crate) fn cancel_target(&self, process_id: i32, secret_key: i32) -> Option<CancelTarget> {
        let inner = self.lock();
        let s = inner.sessions.get(&process_id)?;
        let ok: bool = subtle::ConstantTimeEq::ct_eq(
            &s.secret_key.to_be_bytes()[..],
            &secret_key.to_be_bytes()[..],
        )
        .into();
        ok.then(|| s.cancel.clone())
    }

    pub(crate) fn ended_grant(&self, grant_id: &str) -> Option<(EndReason, i64)> {
        self.lock().ended.get(grant_id).cloned()
    }

    pub(crate) fn end_grant(&self, grant_id: &str, reason: &EndReason, at_ms: i64) -> usize {
        let matching: Vec<Arc<SessionShared>> = {
            let mut inner = self.lock();
            inner
                .ended
                .retain(|_, (_, t)| at_ms - *t < ENDED_GRANT_MEMORY_MS);
            inner
                .ended
                .insert(grant_id.to_owned(), (reason.clone(), at_ms));
            inner
                .sessions
                .values()
                .filter(|s| s.grant_id == grant_id)
                .cloned()
                .collect()
        };
        for s in &matching {
            s.request_end(reason.clone(), at_ms);
        }
        matching.len()
    }

    pub(crate) fn live(&self) -> Vec<LiveSession> {
        let mut out: Vec<LiveSession> = self
            .lock()
            .sessions
            .values()
            .map(|s| LiveSession {
                session_id: s.session_id.clone(),
                grant_id: s.grant_id.clone(),
                user: s.user.clone(),
                resource: s.resource.clone(),
                role: s.role.clone(),
                client_addr: s.client_addr,
                started_at_ms: s.started_at_ms,
                ends_at_ms: s.ends_at_ms,
                statements: s.statements.load(Ordering::Relaxed),
            })
            .collect();
        out.sort_by(|a, b| a.session_id.cmp(&b.session_id));
        out
    }
}
