//! The write path for many commands at once: one read of every aggregate involved, decisions in
//! memory, then multi-row inserts of the events and multi-row upserts of the projections. Both
//! the scheduler's batches and group commit go through here, so a thousand expiries cost a few
//! statements rather than a few thousand.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use latch_core::lifecycle;
use latch_core::{AccessRequest, Catalog, Command, EventKind, StoredEvent, Timestamp};
use sqlx::{AnyConnection, Row};

use crate::sql::{Dialect, Ledger, clamp_i64, corrupt, to_i64};
use crate::{Executed, StoreError};

/// One command to run, with what it is decided against.
pub(crate) struct Job<'a> {
    pub id: &'a str,
    pub command: &'a Command,
    pub catalog: &'a Catalog,
    pub now: Timestamp,
}

/// A bind value: the handful of column types latch uses.
pub(crate) enum Val {
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
    Bytes(Vec<u8>),
}

/// A query of sqlx's `Any` driver, to bind values to.
pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

impl Val {
    /// `query` with this value bound as its next parameter.
    pub(crate) fn bind_to(self, query: AnyQuery<'_>) -> AnyQuery<'_> {
        match self {
            Self::Int(v) => query.bind(v),
            Self::OptInt(v) => query.bind(v),
            Self::Text(v) => query.bind(v),
            Self::OptText(v) => query.bind(v),
            Self::Bytes(v) => query.bind(v),
        }
    }

    /// The value as rusqlite binds it (for the writers that go around sqlx).
    pub(crate) fn into_sqlite(self) -> rusqlite::types::Value {
        use rusqlite::types::Value;
        match self {
            Self::Int(v) | Self::OptInt(Some(v)) => Value::Integer(v),
            Self::Text(v) | Self::OptText(Some(v)) => Value::Text(v),
            Self::OptInt(None) | Self::OptText(None) => Value::Null,
            Self::Bytes(v) => Value::Blob(v),
        }
    }
}

/// Rows per statement stay under both databases' parameter limits (SQLite's is 32766).
const MAX_PARAMS: usize = 30_000;

/// A column value both drivers read (text and integers).
pub(crate) trait Column:
    for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any> + rusqlite::types::FromSql
{
}

impl<T> Column for T where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any> + rusqlite::types::FromSql
{
}

/// The statements of the write path, run through sqlx (`AnyConnection`) or, on SQLite's
/// writer thread, through rusqlite (`rusqlite::Transaction`, whose futures are ready at once).
pub(crate) trait Exec {
    /// Runs a statement that returns nothing.
    async fn run(&mut self, sql: &str, values: Vec<Val>) -> Result<(), StoreError>;
    /// The rows of a query of two columns.
    async fn pairs<A: Column, B: Column>(
        &mut self,
        sql: &str,
        values: Vec<Val>,
    ) -> Result<Vec<(A, B)>, StoreError>;
    /// The one row of a query of integer columns.
    async fn int_row(&mut self, sql: &str, values: Vec<Val>) -> Result<Vec<i64>, StoreError>;
    /// Rows one `INSERT` of [`insert_rows`] carries: as many as the parameter limit allows where
    /// each statement is a round trip.
    fn rows_per_insert(&self, width: usize) -> usize {
        (MAX_PARAMS / width.max(1)).max(1)
    }

    /// Appends rows to the ledger's table: through sqlx, as many to a statement as the parameter
    /// limit allows.
    async fn insert_events(
        &mut self,
        dialect: Dialect,
        rows: Vec<EventRow<'_>>,
    ) -> Result<(), StoreError> {
        let values = rows.into_iter().map(EventRow::into_values).collect();
        insert_rows(self, dialect, "events", &EVENT_COLUMNS, "", values).await
    }

    /// Adds `(session, seq)` rows to the index of statements by session, skipping rows it has.
    async fn insert_session_statements(
        &mut self,
        dialect: Dialect,
        rows: Vec<(&str, i64)>,
    ) -> Result<(), StoreError> {
        let values = rows
            .into_iter()
            .map(|(session, seq)| vec![Val::Text(session.to_owned()), Val::Int(seq)])
            .collect();
        insert_rows(
            self,
            dialect,
            "session_statements",
            &["session", "seq"],
            "ON CONFLICT (session, seq) DO NOTHING",
            values,
        )
        .await
    }
}

impl Exec for AnyConnection {
    async fn run(&mut self, sql: &str, values: Vec<Val>) -> Result<(), StoreError> {
        let mut query = sqlx::query(sql);
        for value in values {
            query = value.bind_to(query);
        }
        query.execute(&mut *self).await?;
        Ok(())
    }

    async fn pairs<A: Column, B: Column>(
        &mut self,
        sql: &str,
        values: Vec<Val>,
    ) -> Result<Vec<(A, B)>, StoreError> {
        let mut query = sqlx::query(sql);
        for value in values {
            query = value.bind_to(query);
        }
        query
            .fetch_all(&mut *self)
            .await?
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }

    async fn int_row(&mut self, sql: &str, values: Vec<Val>) -> Result<Vec<i64>, StoreError> {
        let mut query = sqlx::query(sql);
        for value in values {
            query = value.bind_to(query);
        }
        let row = query.fetch_one(&mut *self).await?;
        (0..row.len())
            .map(|i| Ok(row.try_get::<i64, _>(i)?))
            .collect()
    }
}

impl Exec for rusqlite::Transaction<'_> {
    async fn run(&mut self, sql: &str, values: Vec<Val>) -> Result<(), StoreError> {
        self.prepare_cached(sql)
            .and_then(|mut statement| statement.execute(sqlite_params(values)))
            .map(|_| ())
            .map_err(sqlite_error)
    }

    async fn pairs<A: Column, B: Column>(
        &mut self,
        sql: &str,
        values: Vec<Val>,
    ) -> Result<Vec<(A, B)>, StoreError> {
        let mut statement = self.prepare_cached(sql).map_err(sqlite_error)?;
        let rows = statement
            .query_map(sqlite_params(values), |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(sqlite_error)?;
        rows.collect::<Result<_, _>>().map_err(sqlite_error)
    }

    async fn int_row(&mut self, sql: &str, values: Vec<Val>) -> Result<Vec<i64>, StoreError> {
        let mut statement = self.prepare_cached(sql).map_err(sqlite_error)?;
        let columns = statement.column_count();
        statement
            .query_row(sqlite_params(values), |row| {
                (0..columns).map(|i| row.get::<_, i64>(i)).collect()
            })
            .map_err(sqlite_error)
    }

    /// One: in-process, a row costs no round trip, and a one-row `INSERT` is the same text every
    /// time, so it is prepared once (a many-row text differs with the group's size and was
    /// parsed again for nearly every group), and it needs no statement journal.
    fn rows_per_insert(&self, _width: usize) -> usize {
        1
    }

    /// One statement prepared once, bound to the borrowed values: a row per statement through
    /// the gateway, on the writer's serial path.
    async fn insert_session_statements(
        &mut self,
        _dialect: Dialect,
        rows: Vec<(&str, i64)>,
    ) -> Result<(), StoreError> {
        let mut statement = self
            .prepare_cached(
                "INSERT INTO session_statements (session, seq) VALUES (?1, ?2) \
                 ON CONFLICT (session, seq) DO NOTHING",
            )
            .map_err(sqlite_error)?;
        for (session, seq) in rows {
            statement
                .execute(rusqlite::params![session, seq])
                .map_err(sqlite_error)?;
        }
        Ok(())
    }

    /// One statement prepared once, bound to the borrowed values: the ledger's volume path
    /// (an event per statement through the gateway) builds no SQL text and copies no value
    /// before SQLite does.
    async fn insert_events(
        &mut self,
        _dialect: Dialect,
        rows: Vec<EventRow<'_>>,
    ) -> Result<(), StoreError> {
        let mut statement = self
            .prepare_cached(
                "INSERT INTO events (seq, type, actor, subject, at_ms, body, leaf_hash) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(sqlite_error)?;
        // One buffer for every row's actor (`user:NAME`).
        let mut actor = String::new();
        for row in rows {
            actor.clear();
            write!(actor, "{}", row.actor).map_err(|err| StoreError::Database(err.to_string()))?;
            statement
                .execute(rusqlite::params![
                    row.seq,
                    row.kind,
                    actor,
                    row.subject,
                    row.at_ms,
                    row.body,
                    row.leaf_hash.as_str(),
                ])
                .map_err(sqlite_error)?;
        }
        Ok(())
    }
}

fn sqlite_params(values: Vec<Val>) -> impl rusqlite::Params {
    rusqlite::params_from_iter(values.into_iter().map(Val::into_sqlite))
}

pub(crate) fn sqlite_error(err: rusqlite::Error) -> StoreError {
    StoreError::Database(err.to_string())
}

/// `INSERT INTO {table} ({columns}) VALUES (…), (…) {tail}`, in as few statements as the
/// parameter limit allows.
pub(crate) async fn insert_rows<C: Exec + ?Sized>(
    conn: &mut C,
    dialect: Dialect,
    table: &str,
    columns: &[&str],
    tail: &str,
    rows: Vec<Vec<Val>>,
) -> Result<(), StoreError> {
    let width = columns.len();
    let per_statement = conn.rows_per_insert(width);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Val>> = rows.by_ref().take(per_statement).collect();
        let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
        for r in 0..chunk.len() {
            if r > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for c in 0..width {
                if c > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&dialect.placeholder(r * width + c + 1));
            }
            sql.push(')');
        }
        sql.push(' ');
        sql.push_str(tail);
        conn.run(&sql, chunk.into_iter().flatten().collect())
            .await?;
    }
    Ok(())
}

/// Replays the events of every request in `ids` (absent ones map to `None`).
async fn load_aggregates<C: Exec + ?Sized>(
    conn: &mut C,
    dialect: Dialect,
    ids: &BTreeSet<&str>,
) -> Result<BTreeMap<String, Option<AccessRequest>>, StoreError> {
    let mut states: BTreeMap<String, Option<AccessRequest>> =
        ids.iter().map(|id| ((*id).to_owned(), None)).collect();
    let ids: Vec<&str> = ids.iter().copied().collect();
    for chunk in ids.chunks(500) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| dialect.placeholder(i)).collect();
        let sql = format!(
            "SELECT subject, body FROM events WHERE subject IN ({}) AND type NOT IN {} ORDER BY seq",
            placeholders.join(", "),
            crate::statement_index::STATEMENT_TYPES
        );
        let ids = chunk.iter().map(|id| Val::Text((*id).to_owned())).collect();
        for (subject, body) in conn.pairs::<String, String>(&sql, ids).await? {
            let event = StoredEvent::decode(&body)
                .map_err(|err| corrupt(format!("request `{subject}`: {err}")))?;
            if !event.event.kind.is_request_transition() {
                continue;
            }
            let slot = states.entry(subject).or_default();
            let current = slot.take();
            *slot = Some(
                lifecycle::apply(current, &event.event).map_err(|err| corrupt(err.to_string()))?,
            );
        }
    }
    Ok(states)
}

/// Runs `jobs` in order inside the caller's write transaction. A refused job changes nothing;
/// later jobs on the same request see the effect of earlier ones.
pub(crate) async fn execute_jobs<C: Exec + ?Sized>(
    conn: &mut C,
    dialect: Dialect,
    ledger: &mut Ledger,
    jobs: &[Job<'_>],
) -> Result<Vec<Executed>, StoreError> {
    let ids: BTreeSet<&str> = jobs.iter().map(|job| job.id).collect();
    let mut states = load_aggregates(conn, dialect, &ids).await?;
    let mut histories = load_histories(conn, dialect, jobs).await?;
    let mut results = Vec::with_capacity(jobs.len());
    let mut appended: Vec<StoredEvent> = Vec::new();
    // Requests whose projection must be written, with their last event, and whether an
    // approval was added.
    let mut dirty: BTreeMap<String, (u64, bool)> = BTreeMap::new();
    for job in jobs {
        let current = states.get(job.id).cloned().flatten();
        let filled;
        let command = match job.command {
            Command::Create {
                requester,
                resource,
                role,
                duration,
                reason,
                ticket,
                once,
                history: _,
            } => {
                filled = Command::Create {
                    requester: requester.clone(),
                    resource: resource.clone(),
                    role: role.clone(),
                    duration: *duration,
                    reason: reason.clone(),
                    ticket: ticket.clone(),
                    once: *once,
                    history: histories.get(requester).copied().unwrap_or_default(),
                };
                &filled
            }
            other => other,
        };
        let events =
            match lifecycle::decide(job.id, current.as_ref(), command, job.catalog, job.now) {
                Ok(events) => events,
                Err(refusal) => {
                    results.push(Executed::Refused(refusal));
                    continue;
                }
            };
        let was_new = current.is_none();
        let was_open = current.as_ref().is_some_and(is_open);
        let mut state = current;
        let mut approved = false;
        let mut stored = Vec::with_capacity(events.len());
        for event in events {
            state = Some(lifecycle::apply(state, &event).map_err(|err| corrupt(err.to_string()))?);
            approved |= matches!(
                event.kind,
                EventKind::ApprovalRecorded { .. } | EventKind::RequestApproved { .. }
            );
            stored.push(ledger.assign(event));
        }
        let Some(request) = state else {
            return Err(corrupt(format!(
                "command on `{}` produced no state",
                job.id
            )));
        };
        if let Some(history) = histories.get_mut(&request.requester) {
            // Later requests in this batch count this one as the database would.
            if was_new {
                history.recent_requests = history.recent_requests.saturating_add(1);
            }
            match (was_open, is_open(&request)) {
                (false, true) => history.open_requests = history.open_requests.saturating_add(1),
                (true, false) => history.open_requests = history.open_requests.saturating_sub(1),
                _ => {}
            }
        }
        let last_seq = stored.last().map_or(0, |e| e.seq);
        let entry = dirty.entry(job.id.to_owned()).or_insert((0, false));
        *entry = (last_seq, entry.1 || approved);
        states.insert(job.id.to_owned(), Some(request.clone()));
        appended.extend(stored.iter().cloned());
        results.push(Executed::Done {
            request,
            events: stored,
        });
    }
    if appended.is_empty() {
        return Ok(results);
    }
    ledger.write(conn, &appended).await?;
    let changed: Vec<(&AccessRequest, u64, bool)> = dirty
        .iter()
        .filter_map(|(id, (seq, approved))| {
            states
                .get(id)
                .and_then(Option::as_ref)
                .map(|r| (r, *seq, *approved))
        })
        .collect();
    write_projections(conn, dialect, &changed).await?;
    Ok(results)
}

fn is_open(request: &AccessRequest) -> bool {
    matches!(
        request.state,
        latch_core::RequestState::Pending | latch_core::RequestState::Granted
    )
}

/// The history of every requester creating a request in `jobs`, counted in the write
/// transaction (so that a cap in policy holds under concurrent requests).
async fn load_histories<C: Exec + ?Sized>(
    conn: &mut C,
    dialect: Dialect,
    jobs: &[Job<'_>],
) -> Result<BTreeMap<String, lifecycle::RequesterHistory>, StoreError> {
    let mut histories = BTreeMap::new();
    for job in jobs {
        let Command::Create { requester, .. } = job.command else {
            continue;
        };
        if histories.contains_key(requester) {
            continue;
        }
        let since = job.now.as_millis() - lifecycle::RECENT_REQUESTS_WINDOW_MS;
        // Two counts, each over an index range and stopped at the cap: the requester's open
        // requests (a partial index, migration 10) and their recent ones. One scan with an `OR`
        // read every request the requester ever made, and an uncapped count reads every open
        // one: either way each new request cost more as a busy requester's history grew.
        let sql = format!(
            "SELECT \
               (SELECT COUNT(*) FROM (SELECT 1 FROM requests WHERE requester = {} \
                  AND state IN ('pending', 'granted') LIMIT {cap}) AS open_requests), \
               (SELECT COUNT(*) FROM (SELECT 1 FROM requests WHERE requester = {} \
                  AND created_at_ms > {} LIMIT {cap}) AS recent_requests)",
            dialect.placeholder(1),
            dialect.placeholder(2),
            dialect.placeholder(3),
            cap = lifecycle::HISTORY_COUNT_CAP,
        );
        let counts = conn
            .int_row(
                &sql,
                vec![
                    Val::Text(requester.clone()),
                    Val::Text(requester.clone()),
                    Val::Int(since),
                ],
            )
            .await?;
        let count = |i: usize| -> u32 {
            let n = counts.get(i).copied().unwrap_or(0);
            u32::try_from(n).unwrap_or(u32::MAX)
        };
        histories.insert(
            requester.clone(),
            lifecycle::RequesterHistory {
                open_requests: count(0),
                recent_requests: count(1),
            },
        );
    }
    Ok(histories)
}

/// The `events` columns, in the order of [`event_row`].
pub(crate) const EVENT_COLUMNS: [&str; 7] = [
    "seq",
    "type",
    "actor",
    "subject",
    "at_ms",
    "body",
    "leaf_hash",
];

/// The row of an event in the ledger: its canonical encoding (the leaf) and the leaf's hash,
/// with the columns it is looked up by. Borrowed, and nothing allocated for it: every event of
/// the ledger passes here, on SQLite on the writer's serial path.
pub(crate) struct EventRow<'a> {
    seq: i64,
    kind: &'static str,
    actor: &'a latch_core::Actor,
    subject: &'a str,
    at_ms: i64,
    body: &'a str,
    leaf_hash: latch_ledger::HashHex,
}

impl<'a> EventRow<'a> {
    pub(crate) fn new(
        event: &'a StoredEvent,
        body: &'a str,
        leaf_hash: &latch_ledger::Hash,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            seq: to_i64(event.seq)?,
            kind: event.event.kind.type_name(),
            actor: &event.event.actor,
            subject: &event.event.subject,
            at_ms: event.event.at.as_millis(),
            body,
            leaf_hash: leaf_hash.hex(),
        })
    }

    fn into_values(self) -> Vec<Val> {
        vec![
            Val::Int(self.seq),
            Val::Text(self.kind.to_owned()),
            Val::Text(self.actor.to_string()),
            Val::Text(self.subject.to_owned()),
            Val::Int(self.at_ms),
            Val::Text(self.body.to_owned()),
            Val::Text(self.leaf_hash.as_str().to_owned()),
        ]
    }
}

async fn write_projections<C: Exec + ?Sized>(
    conn: &mut C,
    dialect: Dialect,
    changed: &[(&AccessRequest, u64, bool)],
) -> Result<(), StoreError> {
    let mut requests = Vec::with_capacity(changed.len());
    let mut approvals = Vec::new();
    let mut grants = Vec::new();
    for (r, last_seq, approved) in changed {
        requests.push(vec![
            Val::Text(r.id.clone()),
            Val::Text(r.requester.clone()),
            Val::Text(r.resource.clone()),
            Val::Text(r.role.clone()),
            Val::Int(to_i64(r.duration.as_secs())?),
            Val::Text(r.reason.clone()),
            Val::OptText(r.ticket.clone()),
            Val::Int(i64::from(r.required_approvals)),
            // Team names cannot hold a comma (the config checks names).
            Val::Text(r.approver_groups.join(",")),
            Val::Int(r.created_at.as_millis()),
            Val::OptInt(r.pending_until.map(Timestamp::as_millis)),
            Val::Text(r.state.as_str().to_owned()),
            Val::OptInt(r.decided_at.map(Timestamp::as_millis)),
            Val::OptText(r.closed_by.clone()),
            Val::OptText(r.deny_reason.clone()),
            Val::Int(clamp_i64(*last_seq)),
            Val::Int(i64::from(r.escalation_level)),
            // User names cannot hold a comma either.
            Val::Text(r.escalated_to.join(",")),
            Val::Int(i64::from(r.once)),
        ]);
        if *approved {
            for (i, approval) in r.approvals.iter().enumerate() {
                approvals.push(vec![
                    Val::Text(r.id.clone()),
                    Val::Text(approval.approver.clone()),
                    Val::OptText(approval.comment.clone()),
                    Val::Int(approval.at.as_millis()),
                    Val::Int(to_i64(i as u64)?),
                ]);
            }
        }
        if let Some(g) = &r.grant {
            grants.push(vec![
                Val::Text(g.id.clone()),
                Val::Text(r.id.clone()),
                Val::Text(g.state.as_str().to_owned()),
                Val::Int(g.starts_at.as_millis()),
                Val::Int(g.expires_at.as_millis()),
                Val::OptInt(g.ended_at.map(Timestamp::as_millis)),
                Val::OptText(g.revoked_by.clone()),
                Val::OptText(g.revoke_reason.clone()),
            ]);
        }
    }
    insert_rows(
        conn,
        dialect,
        "requests",
        &[
            "id", "requester", "resource", "role", "duration_secs", "reason", "ticket",
            "required_approvals", "approver_groups", "created_at_ms", "pending_until_ms", "state", "decided_at_ms",
            "closed_by", "deny_reason", "last_seq", "escalation_level", "escalated_to", "once_only",
        ],
        "ON CONFLICT (id) DO UPDATE SET state = excluded.state, decided_at_ms = excluded.decided_at_ms, \
         closed_by = excluded.closed_by, deny_reason = excluded.deny_reason, last_seq = excluded.last_seq, \
         escalation_level = excluded.escalation_level, escalated_to = excluded.escalated_to",
        requests,
    )
    .await?;
    insert_rows(
        conn,
        dialect,
        "approvals",
        &["request_id", "approver", "comment", "at_ms", "seq"],
        "ON CONFLICT (request_id, approver) DO NOTHING",
        approvals,
    )
    .await?;
    insert_rows(
        conn,
        dialect,
        "grants",
        &[
            "id", "request_id", "state", "starts_at_ms", "expires_at_ms", "ended_at_ms",
            "revoked_by", "revoke_reason",
        ],
        "ON CONFLICT (id) DO UPDATE SET state = excluded.state, ended_at_ms = excluded.ended_at_ms, \
         revoked_by = excluded.revoked_by, revoke_reason = excluded.revoke_reason",
        grants,
    )
    .await
}
