//! Gateway sessions: their events, appended in groups (the gateway records every statement and,
//! in strict mode, waits for each), the `sessions` projection those events keep, and the
//! short-lived credentials `latch connect` hands out.

use latch_core::catalog::Visibility;
use latch_core::{Event, EventKind, Timestamp};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use tokio::sync::{mpsc, oneshot};

use crate::StoreError;
use crate::batch::Val;
use crate::sql::{Dialect, clamp_i64};

/// Which sessions to list.
#[derive(Clone, Debug)]
pub struct SessionFilter {
    /// Only sessions still open.
    pub active_only: bool,
    pub grant_id: Option<String>,
    pub visibility: Visibility,
    pub limit: u32,
}

impl Default for SessionFilter {
    fn default() -> Self {
        Self {
            active_only: false,
            grant_id: None,
            visibility: Visibility::All,
            limit: 100,
        }
    }
}

/// A gateway session as projected from its `session.started` and `session.ended` events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    pub id: String,
    pub grant_id: String,
    pub user: String,
    pub resource: String,
    pub role: String,
    pub client_addr: String,
    pub application_name: Option<String>,
    pub tls: bool,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub end_reason: Option<String>,
    pub end_detail: Option<String>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Recorded statements, known when the session has ended.
    pub statements: u64,
    pub revocation_delay_ms: Option<i64>,
}

/// A gateway credential as stored: only the hash of its secret is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialRecord {
    pub id: String,
    pub user: String,
    pub grant_id: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Session events waiting for the group committer.
pub(crate) struct AppendJob {
    pub events: Vec<Event>,
    pub reply: oneshot::Sender<Result<(), StoreError>>,
}

/// The most queued appends one transaction takes.
const MAX_APPENDS: usize = 1024;

/// Commits queued session events in groups until every sender is gone: while one group
/// commits, the next accumulates, so a thousand sessions waiting on their statements share one
/// fsync. On SQLite (`sqlite_path`), each group is one call to a writer thread of its own
/// ([`SqliteWriter`]).
pub(crate) async fn append_commit(
    pool: sqlx::AnyPool,
    dialect: Dialect,
    write_queue: std::sync::Arc<tokio::sync::Mutex<()>>,
    mut queue: mpsc::Receiver<AppendJob>,
    sqlite_path: Option<std::path::PathBuf>,
) {
    let writer = sqlite_path.map(SqliteWriter::start);
    let mut group = Vec::with_capacity(MAX_APPENDS);
    while queue.recv_many(&mut group, MAX_APPENDS).await > 0 {
        let events: Vec<Event> = group
            .iter_mut()
            .flat_map(|job| std::mem::take(&mut job.events))
            .collect();
        let result = match &writer {
            Some(writer) => {
                let _turn = write_queue.lock().await;
                writer.commit(events).await
            }
            None => commit_events(&pool, dialect, &write_queue, events).await,
        };
        match result {
            Ok(()) => {
                for job in group.drain(..) {
                    let _ = job.reply.send(Ok(()));
                }
            }
            Err(err) => {
                let message = err.to_string();
                for job in group.drain(..) {
                    let _ = job.reply.send(Err(StoreError::Database(message.clone())));
                }
            }
        }
    }
}

/// A group of session events for the SQLite writer thread, with where its result goes.
type WriterJob = (Vec<Event>, oneshot::Sender<Result<(), StoreError>>);

/// The gateway's session events on SQLite, written by a thread with its own connection: the
/// whole transaction (ledger head, sessions projection, events, commit) is one hand-off to it.
/// Through sqlx each of those statements was a round trip to its SQLite worker thread, a wake-up
/// and a context switch each way, and strict recording waits for every one of them.
struct SqliteWriter {
    jobs: std::sync::mpsc::Sender<WriterJob>,
}

impl SqliteWriter {
    fn start(path: std::path::PathBuf) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<WriterJob>();
        let spawned = std::thread::Builder::new()
            .name("latch-session-writer".into())
            .spawn(move || {
                let mut connection = None;
                for (events, reply) in queue {
                    let result = match &mut connection {
                        Some(connection) => commit_sqlite(connection, events),
                        None => match open_writer(&path) {
                            Ok(opened) => commit_sqlite(connection.insert(opened), events),
                            Err(err) => Err(err),
                        },
                    };
                    // A failed connection is opened again for the next group.
                    if matches!(result, Err(StoreError::Unavailable(_))) {
                        connection = None;
                    }
                    let _ = reply.send(result);
                }
            });
        if let Err(err) = spawned {
            tracing::error!(%err, "cannot start the session writer thread");
        }
        Self { jobs }
    }

    async fn commit(&self, events: Vec<Event>) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let gone = || StoreError::Unavailable("the session writer thread stopped".into());
        self.jobs.send((events, reply)).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

pub(crate) fn open_writer(path: &std::path::Path) -> Result<rusqlite::Connection, StoreError> {
    let connection = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|err| StoreError::Unavailable(format!("cannot open `{}`: {err}", path.display())))?;
    // As the pool's connections: an event is acknowledged only once it is on disk.
    connection
        .execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000;",
        )
        .map_err(|err| {
            StoreError::Unavailable(format!("cannot set up `{}`: {err}", path.display()))
        })?;
    Ok(connection)
}

/// One group of session events in one transaction: what [`commit_events`] does through sqlx.
fn commit_sqlite(
    connection: &mut rusqlite::Connection,
    events: Vec<Event>,
) -> Result<(), StoreError> {
    use rusqlite::params;

    let database = |err: rusqlite::Error| StoreError::Database(err.to_string());
    let tx = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(database)?;
    let head: i64 = tx
        .query_row(
            "UPDATE ledger_head SET next_seq = next_seq WHERE id = 1 RETURNING next_seq",
            [],
            |row| row.get(0),
        )
        .map_err(database)?;
    let mut seq = u64::try_from(head).map_err(|_| crate::sql::corrupt("negative ledger head"))?;
    let bind =
        |values: Vec<Val>| rusqlite::params_from_iter(values.into_iter().map(Val::into_sqlite));
    for (sql, values) in events.iter().filter_map(session_change) {
        tx.prepare_cached(sql)
            .and_then(|mut statement| statement.execute(bind(values)))
            .map_err(database)?;
    }
    {
        let sql = format!(
            "INSERT INTO events ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            crate::batch::EVENT_COLUMNS.join(", ")
        );
        let mut insert = tx.prepare_cached(&sql).map_err(database)?;
        for event in events {
            let row = crate::batch::event_row(&latch_core::StoredEvent { seq, event })?;
            insert.execute(bind(row)).map_err(database)?;
            seq += 1;
        }
    }
    tx.execute(
        "UPDATE ledger_head SET next_seq = ?1 WHERE id = 1",
        params![crate::sql::to_i64(seq)?],
    )
    .map_err(database)?;
    tx.commit().map_err(database)
}

async fn commit_events(
    pool: &sqlx::AnyPool,
    dialect: Dialect,
    write_queue: &tokio::sync::Mutex<()>,
    events: Vec<Event>,
) -> Result<(), StoreError> {
    let mut w = crate::sql::begin_write_tx(pool, dialect, write_queue).await?;
    project(&mut w.tx, dialect, &events).await?;
    w.append(events).await?;
    w.commit().await
}

/// What an event changes in the `sessions` projection: a statement (`?N` parameters) and its
/// values, or nothing.
fn session_change(event: &Event) -> Option<(&'static str, Vec<Val>)> {
    match &event.kind {
        EventKind::SessionStarted {
            grant_id,
            user,
            resource,
            role,
            client_addr,
            application_name,
            tls,
        } => Some((
            "INSERT INTO sessions (id, grant_id, user_name, resource, role, client_addr, \
             application_name, tls, started_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (id) DO NOTHING",
            vec![
                Val::Text(event.subject.clone()),
                Val::Text(grant_id.clone()),
                Val::Text(user.clone()),
                Val::Text(resource.clone()),
                Val::Text(role.clone()),
                Val::Text(client_addr.clone()),
                Val::OptText(application_name.clone()),
                Val::Int(i64::from(*tls)),
                Val::Int(event.at.as_millis()),
            ],
        )),
        EventKind::SessionEnded {
            reason,
            detail,
            bytes_in,
            bytes_out,
            statements,
            revocation_delay_ms,
            ..
        } => Some((
            "UPDATE sessions SET ended_at_ms = ?1, end_reason = ?2, end_detail = ?3, \
             bytes_in = ?4, bytes_out = ?5, statements = ?6, revocation_delay_ms = ?7 \
             WHERE id = ?8",
            vec![
                Val::Int(event.at.as_millis()),
                Val::Text(reason.clone()),
                Val::OptText(detail.clone()),
                Val::Int(clamp_i64(*bytes_in)),
                Val::Int(clamp_i64(*bytes_out)),
                Val::Int(clamp_i64(*statements)),
                Val::OptInt(*revocation_delay_ms),
                Val::Text(event.subject.clone()),
            ],
        )),
        _ => None,
    }
}

/// Keeps the `sessions` rows in step with their events, in the appending transaction.
async fn project(
    conn: &mut AnyConnection,
    dialect: Dialect,
    events: &[Event],
) -> Result<(), StoreError> {
    for (sql, values) in events.iter().filter_map(session_change) {
        // SQLite reads `?N`; PostgreSQL numbers its parameters `$N`.
        let sql = match dialect {
            Dialect::Sqlite => sql.to_owned(),
            Dialect::Postgres => sql.replace('?', "$"),
        };
        let mut query = sqlx::query(&sql);
        for value in values {
            query = value.bind_to(query);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

pub(crate) const SESSION_COLUMNS: &str = "id, grant_id, user_name, resource, role, client_addr, application_name, tls, \
     started_at_ms, ended_at_ms, end_reason, end_detail, bytes_in, bytes_out, statements, revocation_delay_ms";

pub(crate) fn session_from_row(row: &AnyRow) -> Result<SessionRow, StoreError> {
    let count = |name: &str| -> Result<u64, StoreError> {
        Ok(u64::try_from(row.try_get::<i64, _>(name)?).unwrap_or(0))
    };
    Ok(SessionRow {
        id: row.try_get("id")?,
        grant_id: row.try_get("grant_id")?,
        user: row.try_get("user_name")?,
        resource: row.try_get("resource")?,
        role: row.try_get("role")?,
        client_addr: row.try_get("client_addr")?,
        application_name: row.try_get("application_name")?,
        tls: row.try_get::<i64, _>("tls")? != 0,
        started_at: Timestamp::from_millis(row.try_get("started_at_ms")?),
        ended_at: row
            .try_get::<Option<i64>, _>("ended_at_ms")?
            .map(Timestamp::from_millis),
        end_reason: row.try_get("end_reason")?,
        end_detail: row.try_get("end_detail")?,
        bytes_in: count("bytes_in")?,
        bytes_out: count("bytes_out")?,
        statements: count("statements")?,
        revocation_delay_ms: row.try_get("revocation_delay_ms")?,
    })
}

pub(crate) fn credential_from_row(row: &AnyRow) -> Result<CredentialRecord, StoreError> {
    Ok(CredentialRecord {
        id: row.try_get("id")?,
        user: row.try_get("user_name")?,
        grant_id: row.try_get("grant_id")?,
        created_at: Timestamp::from_millis(row.try_get("created_at_ms")?),
        expires_at: Timestamp::from_millis(row.try_get("expires_at_ms")?),
    })
}
