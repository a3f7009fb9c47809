//! The relay: one task per session owns both sockets and moves bytes between them unchanged,
//! parsing message headers in place to find statement boundaries and results.
//!
//! Each direction has a read buffer (`rx`, parsed in place) and a write buffer (`tx`); when `tx`
//! has been written, the parsed part of `rx` becomes the next `tx` by swapping the two vectors,
//! so relayed bytes are not copied and buffers are reused. One future per socket polls its write
//! (or flush) and its read together, so a session keeps reading the upstream while a write to it
//! waits, and no lock or split is needed.
//!
//! **Architecture Invariant:** a statement is forwarded only after its record can be kept:
//! strict recording awaits [`Authority::record`] before the bytes leave, buffered recording
//! checks that the recording channel has room (or refuses the statement after waiting).
//! **Architecture Invariant:** the relay never writes to the client in the middle of an
//! upstream message; injected messages (refusals, ReadyForQuery) go in at message boundaries.

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use latch_pgwire::{FrontendMessage, Target, encode, frame_header};
use latch_sqlclass::{Classified, Classifier};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::authority::{
    Authority, Clock, EndReason, Outcome, Protocol, SessionRecord, StatementRecord,
};
use crate::error::{SessionError, StatementRefusal};
use crate::registry::SessionShared;
use crate::settings::{Enforcement, RecordingMode};
use crate::stream::Stream;

/// Read size; also the initial capacity of each buffer.
const READ_CHUNK: usize = 8 * 1024;
/// Stop reading a side while this many bytes wait to be forwarded.
const HIGH_WATER: usize = 256 * 1024;
/// Buffers grown above this are given back once drained.
const SHRINK_ABOVE: usize = 64 * 1024;
/// Upstream messages the relay buffers whole (all but DataRow and CopyData) are capped here.
const MAX_UPSTREAM_MESSAGE: usize = 1 << 30;
/// Texts of statements classified per session are cached (per session: no shared lock).
const CLASSIFIER_CAPACITY: usize = 64;
const SYNC: [u8; 5] = [b'S', 0, 0, 0, 4];

/// What a session's relay needs to know; fixed for the session.
pub(crate) struct SessionCtx {
    pub(crate) shared: Arc<SessionShared>,
    pub(crate) authority: Arc<dyn Authority>,
    pub(crate) tx: mpsc::Sender<SessionRecord>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) enforcement: Enforcement,
    pub(crate) recording: RecordingMode,
    pub(crate) redact: bool,
    pub(crate) max_message: usize,
    pub(crate) record_wait: Duration,
    pub(crate) deadline: tokio::time::Instant,
}

/// Why the relay stopped.
pub(crate) enum Exit {
    /// The client sent Terminate.
    ClientTerminated,
    Failed(SessionError),
    /// The grant's end passed.
    Expired,
    /// `end_grant` or shutdown.
    Told,
}

impl From<SessionError> for Exit {
    fn from(e: SessionError) -> Self {
        Exit::Failed(e)
    }
}

/// One direction's buffers.
struct Dir {
    /// Read, not yet handed to `tx`: `[..parsed]` is processed, `[parsed..]` an incomplete
    /// message.
    rx: Vec<u8>,
    parsed: usize,
    /// Bytes of a streamed message (DataRow, CopyData) still to pass without parsing.
    skip: usize,
    /// Being written; `[..sent]` is gone.
    tx: Vec<u8>,
    sent: usize,
    /// A TLS stream holds written data until flushed.
    flush: bool,
}

impl Dir {
    fn new(leftover: Vec<u8>) -> Self {
        let mut rx = leftover;
        rx.reserve(READ_CHUNK);
        Dir {
            rx,
            parsed: 0,
            skip: 0,
            tx: Vec::new(),
            sent: 0,
            flush: false,
        }
    }

    /// Reads stop while much waits to be forwarded, unless an incomplete message needs more
    /// bytes (bounded by the message size limit).
    fn can_read(&self) -> bool {
        self.rx.len() < HIGH_WATER || self.parsed < self.rx.len()
    }

    /// Hands the processed part of `rx` to `tx` once `tx` is written.
    fn stage(&mut self) {
        if self.sent < self.tx.len() || self.parsed == 0 {
            return;
        }
        self.tx.clear();
        self.sent = 0;
        if self.tx.capacity() > SHRINK_ABOVE {
            self.tx = Vec::with_capacity(READ_CHUNK);
        }
        std::mem::swap(&mut self.rx, &mut self.tx);
        if let Some(tail) = self.tx.get(self.parsed..) {
            self.rx.extend_from_slice(tail);
        }
        self.tx.truncate(self.parsed);
        self.parsed = 0;
    }

    fn wrote(&mut self, n: usize, needs_flush: bool) {
        self.sent += n;
        if self.sent >= self.tx.len() {
            self.flush = needs_flush;
            self.stage();
        }
    }

    /// Inserts whole messages at the processed boundary.
    fn inject(&mut self, bytes: &[u8]) {
        let at = self.parsed;
        self.rx.splice(at..at, bytes.iter().copied());
        self.parsed += bytes.len();
    }
}

enum Io {
    Wrote(usize),
    Flushed,
    Read(usize),
}

/// Polls a socket's pending write (or flush) and its read together; ready with the first that
/// completes. Cancel-safe: a pending poll transferred nothing.
fn poll_io(
    cx: &mut Context<'_>,
    stream: &mut Stream,
    out: &[u8],
    flush: bool,
    inbuf: Option<&mut Vec<u8>>,
) -> Poll<std::io::Result<Io>> {
    if !out.is_empty() {
        if let Poll::Ready(r) = Pin::new(&mut *stream).poll_write(cx, out) {
            return Poll::Ready(r.map(Io::Wrote));
        }
    } else if flush && let Poll::Ready(r) = Pin::new(&mut *stream).poll_flush(cx) {
        return Poll::Ready(r.map(|()| Io::Flushed));
    }
    if let Some(buf) = inbuf {
        if buf.capacity() - buf.len() < READ_CHUNK / 2 {
            buf.reserve(READ_CHUNK);
        }
        if let Poll::Ready(r) = tokio_util::io::poll_read_buf(Pin::new(&mut *stream), cx, buf) {
            return Poll::Ready(r.map(Io::Read));
        }
    }
    Poll::Pending
}

/// A prepared statement (or portal) the client made: its recorded text and classification.
struct Prepared {
    text: String,
    classified: Arc<Classified>,
}

/// A statement forwarded and not yet complete.
struct Pending {
    seq: u64,
    started: Instant,
    /// DataRows seen (for PortalSuspended, which has no tag).
    data_rows: u64,
    /// Rows from CommandComplete tags (summed over a multi-statement Query).
    rows: u64,
    error: Option<String>,
    /// Buffered recording: the record to complete and send. Strict: already recorded.
    record: Option<Box<StatementRecord>>,
}

/// What the upstream owes, in order.
enum Unit {
    /// A simple Query (or FunctionCall): complete at ReadyForQuery.
    Query(Pending),
    /// An Execute: complete at CommandComplete, EmptyQueryResponse, PortalSuspended or
    /// ErrorResponse.
    Execute(Pending),
    /// A Sync (or a Sync standing in for a refused statement): complete at ReadyForQuery,
    /// before which `inject` goes to the client.
    Sync { inject: Option<Vec<u8>> },
}

enum Action {
    Forward,
    Drop,
    /// Forward a Sync instead, so that an injected error lands after the upstream's answers
    /// to what was forwarded before.
    ReplaceWithSync,
    Terminate,
    /// The recording channel is full: wait for room, then look at the message again.
    NeedCapacity,
}

/// Statement tracking: no IO here.
struct State {
    units: VecDeque<Unit>,
    /// Extended-protocol messages forwarded since the last Sync.
    unsynced: usize,
    /// After a refused Parse: drop messages until Sync. Holds the error when it must wait for
    /// the upstream's ReadyForQuery.
    refusing: Option<Option<Vec<u8>>>,
    unnamed_statement: Option<Arc<Prepared>>,
    statements: HashMap<String, Arc<Prepared>>,
    unnamed_portal: Option<Arc<Prepared>>,
    portals: HashMap<String, Arc<Prepared>>,
    /// Transaction status of the last ReadyForQuery.
    status: u8,
    seq: u64,
    classifier: Option<Classifier>,
    /// Messages for the client now (refusals while the upstream owes nothing).
    inject: Vec<u8>,
    /// Records for the recording channel.
    outbox: Vec<SessionRecord>,
    /// Records to make durable before forwarding (strict).
    strict: Vec<SessionRecord>,
    /// The recording channel stayed full: refuse the next statement.
    recorder_busy: bool,
    /// When the client's bytes being processed were read (wall clock): the start of their
    /// statements, checked against the grant's end before any of them is forwarded.
    received_at_ms: i64,
    /// The upstream is in COPY FROM STDIN, where it ignores Sync and Flush: no Sync unit is
    /// expected for them. Set at CopyInResponse, cleared at the client's CopyDone or CopyFail.
    copy_in: bool,
}

/// The first keyword of a statement, as written (no allocation: only a refusal shows it).
fn verb(sql: &str) -> Option<&str> {
    let sql = sql.trim_start();
    let end = sql
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(sql.len());
    sql.get(..end).filter(|w| !w.is_empty())
}

impl State {
    fn new(status: u8) -> Self {
        State {
            units: VecDeque::new(),
            unsynced: 0,
            refusing: None,
            unnamed_statement: None,
            statements: HashMap::new(),
            unnamed_portal: None,
            portals: HashMap::new(),
            status,
            seq: 0,
            classifier: None,
            inject: Vec::new(),
            outbox: Vec::new(),
            strict: Vec::new(),
            recorder_busy: false,
            received_at_ms: 0,
            copy_in: false,
        }
    }

    fn classify(&mut self, sql: &str) -> Arc<Classified> {
        self.classifier
            .get_or_insert_with(|| Classifier::new(CLASSIFIER_CAPACITY))
            .classify(sql)
    }

    fn idle(&self, upstream_skip: usize) -> bool {
        self.units.is_empty() && self.unsynced == 0 && upstream_skip == 0
    }

    fn text(ctx: &SessionCtx, sql: &str) -> String {
        if ctx.redact {
            latch_sqlclass::redact_literals(sql)
        } else {
            sql.to_owned()
        }
    }

    fn needs_capacity(&self, ctx: &SessionCtx) -> bool {
        ctx.recording == RecordingMode::Buffered && ctx.tx.capacity() <= self.outbox.len()
    }

    fn next_seq(&mut self, ctx: &SessionCtx) -> u64 {
        self.seq += 1;
        ctx.shared.statements.fetch_add(1, Ordering::Relaxed);
        self.seq
    }

    fn record(
        &mut self,
        ctx: &SessionCtx,
        text: String,
        c: &Classified,
        protocol: Protocol,
        outcome: Outcome,
    ) -> StatementRecord {
        StatementRecord {
            session_id: ctx.shared.session_id.clone(),
            grant_id: ctx.shared.grant_id.clone(),
            seq: self.next_seq(ctx),
            text,
            protocol,
            class: c.class.as_str(),
            read_only: c.is_read_only(),
            objects: c.objects.clone(),
            outcome,
            started_at_ms: self.received_at_ms,
            duration_us: 0,
        }
    }

    /// Starts a statement being forwarded.
    fn begin(
        &mut self,
        ctx: &SessionCtx,
        text: String,
        c: &Classified,
        protocol: Protocol,
    ) -> Pending {
        let rec = self.record(ctx, text, c, protocol, Outcome::Pending);
        let seq = rec.seq;
        let record = match ctx.recording {
            RecordingMode::Strict => {
                self.strict.push(SessionRecord::Statement(rec));
                None
            }
            RecordingMode::Buffered => Some(Box::new(rec)),
        };
        Pending {
            seq,
            started: Instant::now(),
            data_rows: 0,
            rows: 0,
            error: None,
            record,
        }
    }

    fn finish(&mut self, ctx: &SessionCtx, p: Pending, outcome: Outcome) {
        let duration_us = u64::try_from(p.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        match p.record {
            Some(mut rec) => {
                rec.outcome = outcome;
                rec.duration_us = duration_us;
                self.outbox.push(SessionRecord::Statement(*rec));
            }
            None => self.outbox.push(SessionRecord::StatementOutcome {
                session_id: ctx.shared.session_id.clone(),
                grant_id: ctx.shared.grant_id.clone(),
                seq: p.seq,
                outcome,
                duration_us,
            }),
        }
    }

    /// Records a refusal and returns the ErrorResponse for it.
    fn refuse(
        &mut self,
        ctx: &SessionCtx,
        refusal: &StatementRefusal<'_>,
        text: String,
        c: &Classified,
        protocol: Protocol,
    ) -> Vec<u8> {
        let message = refusal.message();
        let rec = self.record(ctx, text, c, protocol, Outcome::Refused(message.clone()));
        self.outbox.push(SessionRecord::Statement(rec));
        let mut err = Vec::new();
        refusal.encode(&message, &mut err);
        err
    }

    /// Why a statement must be refused, if it must.
    fn refusal<'a>(
        &self,
        ctx: &'a SessionCtx,
        c: &'a Classified,
        verb: Option<&'a str>,
    ) -> Option<StatementRefusal<'a>> {
        if self.recorder_busy {
            return Some(StatementRefusal::RecorderBusy);
        }
        if ctx.enforcement == Enforcement::EnforceReadOnly && !c.is_read_only() {
            return Some(StatementRefusal::ReadOnly {
                role: &ctx.shared.role,
                resource: &ctx.shared.resource,
                verb: if c.statements == 1 { verb } else { None },
                class: c.class.as_str(),
                grant_id: &ctx.shared.grant_id,
            });
        }
        None
    }

    /// A refused self-synchronizing message (Query, FunctionCall): answer it with the error and
    /// a ReadyForQuery, now when the upstream owes nothing, else after the upstream's answers.
    fn refuse_simple(&mut self, err: Vec<u8>, upstream_skip: usize) -> Action {
        if self.idle(upstream_skip) {
            self.inject.extend_from_slice(&err);
            encode::ready_for_query(&mut self.inject, self.status);
            Action::Drop
        } else {
            self.units.push_back(Unit::Sync { inject: Some(err) });
            Action::ReplaceWithSync
        }
    }

    /// A refused Parse or Execute: the error now (or at the batch's ReadyForQuery), then
    /// everything up to Sync is dropped, as PostgreSQL does after an error.
    fn refuse_extended(&mut self, err: Vec<u8>, upstream_skip: usize) -> Action {
        if self.idle(upstream_skip) {
            self.inject.extend_from_slice(&err);
            self.refusing = Some(None);
        } else {
            self.refusing = Some(Some(err));
        }
        Action::Drop
    }

    fn on_client(
        &mut self,
        ctx: &SessionCtx,
        tag: u8,
        body: &[u8],
        upstream_skip: usize,
    ) -> Result<Action, SessionError> {
        if matches!(tag, b'c' | b'f') {
            self.copy_in = false;
        }
        if tag == b'S' && self.copy_in {
            return Ok(Action::Forward);
        }
        if tag == b'S' {
            self.unsynced = 0;
            return Ok(match self.refusing.take() {
                None => {
                    self.units.push_back(Unit::Sync { inject: None });
                    Action::Forward
                }
                Some(Some(err)) => {
                    self.units.push_back(Unit::Sync { inject: Some(err) });
                    Action::Forward
                }
                Some(None) => {
                    encode::ready_for_query(&mut self.inject, self.status);
                    Action::Drop
                }
            });
        }
        if self.refusing.is_some() && !matches!(tag, b'X' | b'd' | b'c' | b'f') {
            return Ok(Action::Drop);
        }
        let msg = latch_pgwire::frontend::decode_body(tag, body)?;
        Ok(match msg {
            FrontendMessage::Query { sql } => {
                let c = self.classify(sql);
                let v = verb(sql);
                if let Some(r) = self.refusal(ctx, &c, v) {
                    self.recorder_busy = false;
                    let err = self.refuse(ctx, &r, Self::text(ctx, sql), &c, Protocol::Simple);
                    return Ok(self.refuse_simple(err, upstream_skip));
                }
                if self.needs_capacity(ctx) {
                    return Ok(Action::NeedCapacity);
                }
                let p = self.begin(ctx, Self::text(ctx, sql), &c, Protocol::Simple);
                self.units.push_back(Unit::Query(p));
                Action::Forward
            }
            FrontendMessage::Parse { name, sql, .. } => {
                let c = self.classify(sql);
                let v = verb(sql);
                if ctx.enforcement == Enforcement::EnforceReadOnly && !c.is_read_only() {
                    let r = StatementRefusal::ReadOnly {
                        role: &ctx.shared.role,
                        resource: &ctx.shared.resource,
                        verb: if c.statements == 1 { v } else { None },
                        class: c.class.as_str(),
                        grant_id: &ctx.shared.grant_id,
                    };
                    let err = self.refuse(ctx, &r, Self::text(ctx, sql), &c, Protocol::Extended);
                    return Ok(self.refuse_extended(err, upstream_skip));
                }
                let prepared = Arc::new(Prepared {
                    text: Self::text(ctx, sql),
                    classified: c,
                });
                if name.is_empty() {
                    self.unnamed_statement = Some(prepared);
                } else {
                    self.statements.insert(name.to_owned(), prepared);
                }
                self.unsynced += 1;
                Action::Forward
            }
            FrontendMessage::Bind {
                portal, statement, ..
            } => {
                let prepared = if statement.is_empty() {
                    self.unnamed_statement.clone()
                } else {
                    self.statements.get(statement).cloned()
                };
                if portal.is_empty() {
                    self.unnamed_portal = prepared;
                } else if let Some(p) = prepared {
                    self.portals.insert(portal.to_owned(), p);
                }
                self.unsynced += 1;
                Action::Forward
            }
            FrontendMessage::Execute { portal, .. } => {
                let prepared = if portal.is_empty() {
                    self.unnamed_portal.clone()
                } else {
                    self.portals.get(portal).cloned()
                };
                let prepared = prepared.unwrap_or_else(|| {
                    Arc::new(Prepared {
                        text: String::new(),
                        classified: Arc::new(latch_sqlclass::classify("")),
                    })
                });
                if self.recorder_busy {
                    self.recorder_busy = false;
                    let err = self.refuse(
                        ctx,
                        &StatementRefusal::RecorderBusy,
                        prepared.text.clone(),
                        &prepared.classified,
                        Protocol::Extended,
                    );
                    return Ok(self.refuse_extended(err, upstream_skip));
                }
                if self.needs_capacity(ctx) {
                    return Ok(Action::NeedCapacity);
                }
                let p = self.begin(
                    ctx,
                    prepared.text.clone(),
                    &prepared.classified,
                    Protocol::Extended,
                );
                self.units.push_back(Unit::Execute(p));
                self.unsynced += 1;
                Action::Forward
            }
            FrontendMessage::Close { target, name } => {
                match (target, name.is_empty()) {
                    (Target::Statement, true) => self.unnamed_statement = None,
                    (Target::Statement, false) => {
                        self.statements.remove(name);
                    }
                    (Target::Portal, true) => self.unnamed_portal = None,
                    (Target::Portal, false) => {
                        self.portals.remove(name);
                    }
                }
                self.unsynced += 1;
                Action::Forward
            }
            FrontendMessage::Describe { .. } => {
                self.unsynced += 1;
                Action::Forward
            }
            FrontendMessage::FunctionCall { function, .. } => {
                let text = format!("-- fast-path function call, oid {function}");
                let c = Arc::new(latch_sqlclass::classify("DO $$ $$"));
                if let Some(r) = self.refusal(ctx, &c, None) {
                    self.recorder_busy = false;
                    let err = self.refuse(ctx, &r, text, &c, Protocol::FunctionCall);
                    return Ok(self.refuse_simple(err, upstream_skip));
                }
                if self.needs_capacity(ctx) {
                    return Ok(Action::NeedCapacity);
                }
                let p = self.begin(ctx, text, &c, Protocol::FunctionCall);
                self.units.push_back(Unit::Query(p));
                Action::Forward
            }
            FrontendMessage::Terminate => Action::Terminate,
            FrontendMessage::Sync
            | FrontendMessage::Flush
            | FrontendMessage::CopyData(_)
            | FrontendMessage::CopyDone
            | FrontendMessage::CopyFail { .. }
            | FrontendMessage::AuthResponse(_)
            | FrontendMessage::Unknown { .. } => Action::Forward,
        })
    }

    /// Reads an upstream message; returns bytes to insert before it.
    fn on_upstream(&mut self, ctx: &SessionCtx, tag: u8, body: Option<&[u8]>) -> Option<Vec<u8>> {
        match tag {
            b'D' => {
                if let Some(Unit::Query(p) | Unit::Execute(p)) = self.units.front_mut() {
                    p.data_rows += 1;
                }
                None
            }
            b'C' => {
                let rows = body
                    .and_then(|b| latch_pgwire::backend::decode_body(tag, b).ok())
                    .and_then(|m| match m {
                        latch_pgwire::BackendMessage::CommandComplete { tag } => {
                            latch_pgwire::rows_from_tag(tag)
                        }
                        _ => None,
                    });
                match self.units.front_mut() {
                    Some(Unit::Query(p)) => p.rows = p.rows.saturating_add(rows.unwrap_or(0)),
                    Some(Unit::Execute(_)) => {
                        if let Some(Unit::Execute(p)) = self.units.pop_front() {
                            let n = rows.unwrap_or(p.data_rows);
                            self.finish(ctx, p, Outcome::Rows(n));
                        }
                    }
                    _ => {}
                }
                None
            }
            b'I' | b's' => {
                if matches!(self.units.front(), Some(Unit::Execute(_)))
                    && let Some(Unit::Execute(p)) = self.units.pop_front()
                {
                    let n = if tag == b'I' { 0 } else { p.data_rows };
                    self.finish(ctx, p, Outcome::Rows(n));
                }
                None
            }
            b'E' => {
                let code = body
                    .and_then(|b| latch_pgwire::backend::decode_body(tag, b).ok())
                    .and_then(|m| match m {
                        latch_pgwire::BackendMessage::ErrorResponse(f) => Some(f.code.to_owned()),
                        _ => None,
                    })
                    .unwrap_or_default();
                match self.units.front_mut() {
                    Some(Unit::Query(p)) => {
                        p.error.get_or_insert(code);
                    }
                    Some(Unit::Execute(_)) => {
                        if let Some(Unit::Execute(p)) = self.units.pop_front() {
                            self.finish(ctx, p, Outcome::Error(code));
                        }
                    }
                    _ => {}
                }
                None
            }
            b'G' => {
                // Syncs the client sent after this Execute and before its copy data are
                // ignored by the upstream.
                if matches!(self.units.front(), Some(Unit::Execute(_))) {
                    while matches!(self.units.get(1), Some(Unit::Sync { inject: None })) {
                        self.units.remove(1);
                    }
                }
                self.copy_in = true;
                None
            }
            b'Z' => {
                if let Some(&status) = body.and_then(|b| b.first()) {
                    self.status = status;
                }
                while let Some(unit) = self.units.pop_front() {
                    match unit {
                        Unit::Execute(p) => self.finish(ctx, p, Outcome::NotRun),
                        Unit::Query(mut p) => {
                            let outcome = match p.error.take() {
                                Some(code) => Outcome::Error(code),
                                None => Outcome::Rows(p.rows),
                            };
                            self.finish(ctx, p, outcome);
                            return None;
                        }
                        Unit::Sync { inject } => return inject,
                    }
                }
                None
            }
            _ => None,
        }
    }
}

pub(crate) struct Relay {
    client: Stream,
    upstream: Stream,
    c2u: Dir,
    u2c: Dir,
    st: State,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// The session's end being called for (`latch revoke`, shutdown), made once: a fresh
    /// `cancelled()` future at every turn of the loop joined and left the token's waiter list,
    /// two lock round trips per transaction on the relay's thread.
    told: Pin<Box<WaitForCancellationFutureOwned>>,
}

enum Event {
    Client(std::io::Result<Io>),
    Upstream(std::io::Result<Io>),
}

impl Relay {
    pub(crate) fn new(
        ctx: &SessionCtx,
        client: Stream,
        upstream: Stream,
        client_leftover: Vec<u8>,
        upstream_leftover: Vec<u8>,
        status: u8,
    ) -> Self {
        Relay {
            client,
            upstream,
            c2u: Dir::new(client_leftover),
            u2c: Dir::new(upstream_leftover),
            st: State::new(status),
            bytes_in: 0,
            bytes_out: 0,
            deadline: Box::pin(tokio::time::sleep_until(ctx.deadline)),
            told: Box::pin(ctx.shared.end.clone().cancelled_owned()),
        }
    }

    /// Queues the gateway's own greeting (AuthenticationOk … ReadyForQuery) for the client.
    pub(crate) fn greet(&mut self, bytes: &[u8]) {
        self.u2c.tx.extend_from_slice(bytes);
    }

    pub(crate) async fn run(&mut self, ctx: &SessionCtx) -> Exit {
        match self.run_inner(ctx).await {
            Ok(never) => match never {},
            Err(exit) => exit,
        }
    }

    async fn run_inner(&mut self, ctx: &SessionCtx) -> Result<std::convert::Infallible, Exit> {
        // Bytes that arrived with the startup exchange.
        if !self.c2u.rx.is_empty() && self.process_client(ctx).await? {
            return Err(self.terminate(ctx).await);
        }
        if !self.u2c.rx.is_empty() {
            self.process_upstream(ctx)?;
        }
        let client_flush = self.client.needs_flush();
        let upstream_flush = self.upstream.needs_flush();
        loop {
            if !self.st.outbox.is_empty() {
                self.flush_outbox(ctx).await?;
            }
            self.c2u.stage();
            self.u2c.stage();
            let read_client = self.c2u.can_read();
            let read_upstream = self.u2c.can_read();
            let event = {
                let (c_rx, c_tx, c_sent, c_flush) = (
                    &mut self.c2u.rx,
                    &self.c2u.tx,
                    self.c2u.sent,
                    self.c2u.flush,
                );
                let (u_rx, u_tx, u_sent, u_flush) = (
                    &mut self.u2c.rx,
                    &self.u2c.tx,
                    self.u2c.sent,
                    self.u2c.flush,
                );
                let client = &mut self.client;
                let upstream = &mut self.upstream;
                tokio::select! {
                    biased;
                    () = &mut self.deadline => return Err(Exit::Expired),
                    () = &mut self.told => return Err(Exit::Told),
                    r = poll_fn(|cx| poll_io(
                        cx,
                        client,
                        u_tx.get(u_sent..).unwrap_or_default(),
                        u_flush,
                        read_client.then_some(&mut *c_rx),
                    )) => Event::Client(r),
                    r = poll_fn(|cx| poll_io(
                        cx,
                        upstream,
                        c_tx.get(c_sent..).unwrap_or_default(),
                        c_flush,
                        read_upstream.then_some(&mut *u_rx),
                    )) => Event::Upstream(r),
                }
            };
            match event {
                Event::Client(Ok(Io::Wrote(n))) => {
                    self.bytes_out += n as u64;
                    self.u2c.wrote(n, client_flush);
                }
                Event::Client(Ok(Io::Flushed)) => self.u2c.flush = false,
                Event::Client(Ok(Io::Read(0))) => return Err(SessionError::ClientGone.into()),
                Event::Client(Ok(Io::Read(n))) => {
                    self.bytes_in += n as u64;
                    if self.process_client(ctx).await? {
                        return Err(self.terminate(ctx).await);
                    }
                }
                Event::Client(Err(e)) => return Err(SessionError::ClientIo(e).into()),
                Event::Upstream(Ok(Io::Wrote(n))) => self.c2u.wrote(n, upstream_flush),
                Event::Upstream(Ok(Io::Flushed)) => self.c2u.flush = false,
                Event::Upstream(Ok(Io::Read(0))) => {
                    // Pass on what the upstream said last (often a FATAL), then end.
                    self.u2c.parsed = self.u2c.rx.len();
                    self.drain_to_client(Duration::from_millis(500)).await;
                    return Err(SessionError::UpstreamGone.into());
                }
                Event::Upstream(Ok(Io::Read(_))) => self.process_upstream(ctx)?,
                Event::Upstream(Err(e)) => return Err(SessionError::UpstreamIo(e).into()),
            }
        }
    }

    /// Runs `fut` unless the session must end first.
    async fn or_end<F: Future>(&mut self, fut: F) -> Result<F::Output, Exit> {
        tokio::select! {
            biased;
            () = &mut self.deadline => Err(Exit::Expired),
            () = &mut self.told => Err(Exit::Told),
            out = fut => Ok(out),
        }
    }

    /// Parses what the client sent; returns true when it sent Terminate.
    ///
    /// The grant's end is checked on the wall clock when the bytes are taken and again before
    /// they are released to the upstream (a strict record or a full recording channel may
    /// have made them wait): the deadline timer may fire a little late, and no statement may
    /// start after the grant ended.
    async fn process_client(&mut self, ctx: &SessionCtx) -> Result<bool, Exit> {
        self.st.received_at_ms = ctx.clock.now_ms();
        Self::still_granted(ctx, self.st.received_at_ms)?;
        let terminated = self.parse_client(ctx).await?;
        Self::still_granted(ctx, ctx.clock.now_ms())?;
        Ok(terminated)
    }

    fn still_granted(ctx: &SessionCtx, now_ms: i64) -> Result<(), Exit> {
        if ctx.shared.end.is_cancelled() {
            Err(Exit::Told)
        } else if now_ms >= ctx.shared.ends_at_ms {
            Err(Exit::Expired)
        } else {
            Ok(())
        }
    }

    async fn parse_client(&mut self, ctx: &SessionCtx) -> Result<bool, Exit> {
        let mut pos = self.c2u.parsed;
        let mut terminated = false;
        while pos < self.c2u.rx.len() {
            if self.c2u.skip > 0 {
                let n = self.c2u.skip.min(self.c2u.rx.len() - pos);
                self.c2u.skip -= n;
                pos += n;
                continue;
            }
            let rest = self.c2u.rx.get(pos..).unwrap_or_default();
            let Some((tag, total)) = frame_header(rest, usize::MAX).map_err(SessionError::from)?
            else {
                break;
            };
            if tag == b'd' && rest.len() < total {
                // CopyData is streamed and not limited.
                self.c2u.skip = total - rest.len();
                pos = self.c2u.rx.len();
                break;
            }
            if tag != b'd' && total > ctx.max_message {
                return Err(
                    SessionError::Protocol(latch_pgwire::ProtocolError::TooLarge {
                        tag: latch_pgwire::Tag(tag),
                        len: total,
                        max: ctx.max_message,
                    })
                    .into(),
                );
            }
            if rest.len() < total {
                break;
            }
            let body = rest.get(5..total).unwrap_or_default();
            match self.st.on_client(ctx, tag, body, self.u2c.skip)? {
                Action::Forward => pos += total,
                Action::Drop => {
                    self.c2u.rx.drain(pos..pos + total);
                }
                Action::ReplaceWithSync => {
                    self.c2u.rx.splice(pos..pos + total, SYNC);
                    pos += SYNC.len();
                }
                Action::Terminate => {
                    pos += total;
                    self.c2u.rx.truncate(pos);
                    terminated = true;
                    break;
                }
                Action::NeedCapacity => {
                    let tx = ctx.tx.clone();
                    let wait = ctx.record_wait;
                    match self
                        .or_end(tokio::time::timeout(wait, tx.reserve_owned()))
                        .await?
                    {
                        Ok(Ok(_permit)) => {}
                        Ok(Err(_closed)) => {
                            return Err(SessionError::RecordingFailed(
                                "the recorder stopped".to_owned(),
                            )
                            .into());
                        }
                        Err(_elapsed) => self.st.recorder_busy = true,
                    }
                }
            }
        }
        self.c2u.parsed = pos;
        if !self.st.inject.is_empty() {
            let inject = std::mem::take(&mut self.st.inject);
            self.u2c.inject(&inject);
            self.st.inject = inject;
            self.st.inject.clear();
        }
        if !self.st.strict.is_empty() {
            let batch = std::mem::take(&mut self.st.strict);
            let authority = Arc::clone(&ctx.authority);
            let result = self.or_end(authority.record(&batch)).await?;
            if let Err(e) = result {
                // Nothing of this chunk has left: drop it with the session.
                self.c2u.rx.truncate(0);
                self.c2u.parsed = 0;
                return Err(SessionError::RecordingFailed(e.message).into());
            }
        }
        Ok(terminated)
    }

    fn process_upstream(&mut self, ctx: &SessionCtx) -> Result<(), Exit> {
        let mut pos = self.u2c.parsed;
        while pos < self.u2c.rx.len() {
            if self.u2c.skip > 0 {
                let n = self.u2c.skip.min(self.u2c.rx.len() - pos);
                self.u2c.skip -= n;
                pos += n;
                continue;
            }
            let rest = self.u2c.rx.get(pos..).unwrap_or_default();
            let header = frame_header(rest, MAX_UPSTREAM_MESSAGE).map_err(|e| {
                SessionError::UpstreamIo(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
            })?;
            let Some((tag, total)) = header else { break };
            if rest.len() < total {
                if matches!(tag, b'D' | b'd') {
                    self.st.on_upstream(ctx, tag, None);
                    self.u2c.skip = total - rest.len();
                    pos = self.u2c.rx.len();
                }
                break;
            }
            let body = rest.get(5..total);
            if let Some(insert) = self.st.on_upstream(ctx, tag, body) {
                self.u2c.rx.splice(pos..pos, insert.iter().copied());
                pos += insert.len();
            }
            pos += total;
        }
        self.u2c.parsed = pos;
        Ok(())
    }

    /// Sends the outbox to the recorder; waits when the channel is full (never drops).
    async fn flush_outbox(&mut self, ctx: &SessionCtx) -> Result<(), Exit> {
        let mut records = std::mem::take(&mut self.st.outbox).into_iter();
        while let Some(r) = records.next() {
            match ctx.tx.try_send(r) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(r)) => {
                    let sent = match self.or_end(ctx.tx.send(r)).await {
                        Ok(sent) => sent,
                        Err(exit) => {
                            // Keep the rest for the session's end.
                            self.st.outbox.extend(records);
                            return Err(exit);
                        }
                    };
                    if sent.is_err() {
                        return Err(SessionError::RecordingFailed(
                            "the recorder stopped".to_owned(),
                        )
                        .into());
                    }
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    return Err(
                        SessionError::RecordingFailed("the recorder stopped".to_owned()).into(),
                    );
                }
            }
        }
        Ok(())
    }

    /// The client sent Terminate: pass everything up to it on, then end.
    async fn terminate(&mut self, ctx: &SessionCtx) -> Exit {
        let _ = self.flush_outbox(ctx).await;
        let mut out = std::mem::take(&mut self.c2u.tx);
        out.drain(..self.c2u.sent.min(out.len()));
        out.extend_from_slice(self.c2u.rx.get(..self.c2u.parsed).unwrap_or_default());
        let write = async {
            self.upstream.write_all(&out).await?;
            self.upstream.flush().await
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
        Exit::ClientTerminated
    }

    /// Writes what is ready for the client, if the stream is at a message boundary; returns
    /// whether it is (and so whether the gateway may add a message of its own).
    async fn drain_to_client(&mut self, within: Duration) -> bool {
        if self.u2c.skip > 0 {
            return false;
        }
        let mut out = std::mem::take(&mut self.u2c.tx);
        out.drain(..self.u2c.sent.min(out.len()));
        out.extend_from_slice(self.u2c.rx.get(..self.u2c.parsed).unwrap_or_default());
        self.u2c.sent = 0;
        self.u2c.rx.drain(..self.u2c.parsed);
        self.u2c.parsed = 0;
        let write = async {
            self.client.write_all(&out).await?;
            self.client.flush().await
        };
        let ok = matches!(tokio::time::timeout(within, write).await, Ok(Ok(())));
        self.bytes_out += out.len() as u64;
        ok
    }

    /// Ends the session: cancels a running statement upstream, tells the client why (FATAL),
    /// and records statements that did not complete. Returns the end reason and, for a grant
    /// end, when it was due (unix ms).
    pub(crate) async fn close(&mut self, ctx: &SessionCtx, exit: Exit) -> (EndReason, Option<i64>) {
        let running = self
            .st
            .units
            .iter()
            .any(|u| !matches!(u, Unit::Sync { .. }));
        let (reason, due, error) = match exit {
            Exit::ClientTerminated => (EndReason::ClientClosed, None, None),
            Exit::Failed(e) => (e.end_reason(), None, Some(e)),
            Exit::Expired => {
                let message = format!(
                    "grant {} expired at {}",
                    ctx.shared.grant_id,
                    rfc3339(ctx.shared.ends_at_ms)
                );
                (
                    EndReason::GrantExpired,
                    Some(ctx.shared.ends_at_ms),
                    Some(SessionError::GrantEnded(message)),
                )
            }
            Exit::Told => match ctx.shared.end_reason() {
                None | Some((EndReason::Shutdown, _)) => {
                    (EndReason::Shutdown, None, Some(SessionError::Shutdown))
                }
                Some((reason, at_ms)) => {
                    let message = match &reason {
                        EndReason::GrantRevoked { by } => {
                            format!("grant {} was revoked by {by}", ctx.shared.grant_id)
                        }
                        EndReason::GrantExpired => format!(
                            "grant {} expired at {}",
                            ctx.shared.grant_id,
                            rfc3339(ctx.shared.ends_at_ms.min(at_ms))
                        ),
                        other => format!("grant {} ended ({other:?})", ctx.shared.grant_id),
                    };
                    (reason, Some(at_ms), Some(SessionError::GrantEnded(message)))
                }
            },
        };
        if running && !matches!(reason, EndReason::ClientClosed | EndReason::UpstreamClosed) {
            crate::upstream::send_cancel(&ctx.shared.cancel, Duration::from_millis(500)).await;
        }
        if let Some(e) = &error {
            let mut fatal = Vec::new();
            e.encode(&mut fatal);
            if !fatal.is_empty() && self.drain_to_client(Duration::from_millis(200)).await {
                let write = async {
                    self.client.write_all(&fatal).await?;
                    self.client.flush().await
                };
                let _ = tokio::time::timeout(Duration::from_millis(200), write).await;
            }
        }
        if !matches!(reason, EndReason::ClientClosed) {
            let mut bye = Vec::new();
            encode::terminate(&mut bye);
            if self.c2u.skip == 0 && self.c2u.sent >= self.c2u.tx.len() {
                let _ =
                    tokio::time::timeout(Duration::from_millis(100), self.upstream.write_all(&bye))
                        .await;
            }
        }
        let _ = tokio::time::timeout(Duration::from_millis(100), self.client.shutdown()).await;
        while let Some(unit) = self.st.units.pop_front() {
            if let Unit::Query(p) | Unit::Execute(p) = unit {
                self.st.finish(ctx, p, Outcome::Interrupted);
            }
        }
        (reason, due)
    }

    /// Records left to send at the end (the session sends them with its Ended record).
    pub(crate) fn take_outbox(&mut self) -> Vec<SessionRecord> {
        std::mem::take(&mut self.st.outbox)
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}
