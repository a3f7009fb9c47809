//! Gateway sessions: their events, appended in groups (the gateway records every statement and,
//! in strict mode, waits for each), the `sessions` projection those events keep, and the
//! short-lived credentials `latch connect` hands out.

use latch_core::catalog::Visibility;
use latch_core::{Event, EventKind, Timestamp, UnplacedEncoding};
use latch_pgwire::scram::ScramSecret;
use sqlx::Row;
use sqlx::any::AnyRow;
use tokio::sync::{mpsc, oneshot};

use crate::StoreError;
use crate::batch::{Exec, Val};
use crate::sql::Ledger;
use crate::sql::{Dialect, clamp_i64};
use crate::writer::SqliteWriter;

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
    /// How the credential was proved (`session.started`'s `auth`); `None` for sessions
    /// recorded before latch recorded it.
    pub auth: Option<String>,
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

/// A credential's SCRAM secret as stored: [`ScramSecret`], the type the gateway checks proofs
/// with, so that nothing is converted on the way.
pub(crate) fn scram_from_row(row: &AnyRow) -> Result<ScramSecret, StoreError> {
    let id: String = row.try_get("id")?;
    let bad = |what: &str| crate::sql::corrupt(format!("credential `{id}`: bad SCRAM {what}"));
    let hex_of = |column: &str| -> Result<Vec<u8>, StoreError> {
        let text: String = row.try_get(column)?;
        hex::decode(text).map_err(|_| bad(column))
    };
    let key = |column: &str| -> Result<[u8; 32], StoreError> {
        hex_of(column)?.try_into().map_err(|_| bad(column))
    };
    let iterations: i64 = row.try_get("scram_iterations")?;
    Ok(ScramSecret {
        salt: hex_of("scram_salt")?,
        iterations: u32::try_from(iterations).map_err(|_| bad("iterations"))?,
        stored_key: key("scram_stored_key")?,
        server_key: key("scram_server_key")?,
    })
}

/// Session events waiting for the group committer.
pub(crate) struct AppendJob {
    /// Each event with its encoding but for its place.
    pub events: Vec<(Event, UnplacedEncoding)>,
    pub reply: oneshot::Sender<Result<(), StoreError>>,
}

/// The most queued appends one transaction takes.
const MAX_APPENDS: usize = 1024;

/// Commits queued session events in groups until every sender is gone: while one group
/// commits, the next accumulates, so a thousand sessions waiting on their statements share one
/// fsync. On SQLite each group is run by the writer thread ([`SqliteWriter`]).
pub(crate) async fn append_commit(
    demand: crate::writer::Demand,
    pool: sqlx::AnyPool,
    dialect: Dialect,
    write_queue: std::sync::Arc<tokio::sync::Mutex<()>>,
    mut queue: mpsc::Receiver<AppendJob>,
    writer: Option<std::sync::Arc<SqliteWriter>>,
) {
    let mut group = Vec::with_capacity(MAX_APPENDS);
    while queue.recv_many(&mut group, MAX_APPENDS).await > 0 {
        demand.taken(group.len());
        let events: Vec<(Event, UnplacedEncoding)> = group
            .iter_mut()
            .flat_map(|job| std::mem::take(&mut job.events))
            .collect();
        let result = match &writer {
            Some(writer) => {
                writer
                    .transaction(move |tx, ledger| {
                        crate::writer::ready(write_events(tx, Dialect::Sqlite, ledger, events))
                    })
                    .await
            }
            None => commit_events(&pool, dialect, &write_queue, events)
                .await
                .map(crate::writer::Pending::done),
        };
        // Answered once on disk, by the thread that synced it, while the next group runs.
        let replies: Vec<_> = group.drain(..).map(|job| job.reply).collect();
        let answer = move |result: Result<(), StoreError>| match result {
            Ok(()) => {
                for reply in replies {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(err) => {
                let message = err.to_string();
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Database(message.clone())));
                }
            }
        };
        match result {
            Ok(pending) => pending.answer_when_durable(answer),
            Err(err) => answer(Err(err)),
        }
    }
}

async fn commit_events(
    pool: &sqlx::AnyPool,
    dialect: Dialect,
    write_queue: &tokio::sync::Mutex<()>,
    events: Vec<(Event, UnplacedEncoding)>,
) -> Result<(), StoreError> {
    let mut w = crate::sql::begin_write_tx(pool, dialect, write_queue).await?;
    write_events(&mut *w.tx, dialect, &mut w.ledger, events).await?;
    w.commit().await
}

/// Session events into the ledger, with the `sessions` rows they change, in the caller's write
/// transaction.
async fn write_events<C: Exec + ?Sized>(
    conn: &mut C,
    dialect: Dialect,
    ledger: &mut Ledger,
    events: Vec<(Event, UnplacedEncoding)>,
) -> Result<(), StoreError> {
    project(conn, dialect, events.iter().map(|(event, _)| event)).await?;
    ledger.append_unplaced(conn, events).await
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
            auth,
        } => Some((
            "INSERT INTO sessions (id, grant_id, user_name, resource, role, client_addr, \
             application_name, tls, started_at_ms, auth) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
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
                Val::OptText(auth.clone()),
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
async fn project<C: Exec + ?Sized>(
    conn: &mut C,
    dialect: Dialect,
    events: impl Iterator<Item = &Event>,
) -> Result<(), StoreError> {
    for (sql, values) in events.filter_map(session_change) {
        // SQLite reads `?N`; PostgreSQL numbers its parameters `$N`.
        let sql = match dialect {
            Dialect::Sqlite => sql.to_owned(),
            Dialect::Postgres => sql.replace('?', "$"),
        };
        conn.run(&sql, values).await?;
    }
    Ok(())
}

pub(crate) const SESSION_COLUMNS: &str = "id, grant_id, user_name, resource, role, client_addr, application_name, tls, auth, \
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
        auth: row.try_get("auth")?,
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
