//! The access-summary projection: one row per request with everything reports and analytics say
//! about it (the summary itself is `latch_report::AccessSummary`, stored here as opaque bytes),
//! and how far into the ledger it has been folded. It is derived state, kept up to date by a
//! follower of the ledger rather than in the append's transaction, so that statements (nearly
//! every event) cost the gateway nothing more; a reader catches it up before reading.

use std::path::Path;

use latch_core::Timestamp;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::StoreError;
use crate::batch::{self, Val};
use crate::sql::{Dialect, clamp_i64, corrupt, to_i64};

/// One stored summary with the columns a period is selected by. Read by
/// `Store::summaries_csv_page`, only the position (`created_seq`, `requested_at`) and `csv` are
/// filled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryRecord {
    /// The request id's key (what follows `req_`).
    pub key: String,
    /// `seq` of the request's `request.created`.
    pub created_seq: u64,
    pub requested_at: Timestamp,
    pub requester: String,
    pub resource: String,
    /// The summary, encoded by its owner (empty when read by `summaries_csv_page`).
    pub body: Vec<u8>,
    /// Its line of the CSV report, rendered by its owner (empty when read by
    /// `summaries_page`): a report of a million accesses is then a read, not a million
    /// renderings.
    pub csv: String,
}

/// Which summaries to read: requests created in `[from, to)`, optionally on one resource or by
/// some people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryRange {
    pub from: Timestamp,
    pub to: Timestamp,
    pub resource: Option<String>,
    /// Only requests by one of these people (a team, or one person).
    pub requesters: Option<Vec<String>>,
}

/// Where a page of summaries ended: the next page starts after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SummaryPosition {
    pub requested_at: Timestamp,
    pub created_seq: u64,
}

impl SummaryRecord {
    pub fn position(&self) -> SummaryPosition {
        SummaryPosition {
            requested_at: self.requested_at,
            created_seq: self.created_seq,
        }
    }
}

/// The columns a page reads: the summary, or its report line.
#[derive(Clone, Copy)]
enum Text {
    Body,
    Csv,
}

impl Text {
    fn columns(self) -> &'static str {
        match self {
            Self::Body => "key, created_seq, requested_at_ms, requester, resource, body",
            // A report needs the line and the page position only: empty texts cost no allocation,
            // three strings per row do at a million rows.
            Self::Csv => "'', created_seq, requested_at_ms, '', '', csv",
        }
    }
}

fn record(
    key: String,
    created_seq: i64,
    requested_at_ms: i64,
    requester: String,
    resource: String,
    text: Column,
) -> Result<SummaryRecord, StoreError> {
    let (body, csv) = match text {
        Column::Body(body) => (body, String::new()),
        Column::Csv(csv) => (Vec::new(), csv),
    };
    Ok(SummaryRecord {
        key,
        created_seq: u64::try_from(created_seq)
            .map_err(|_| corrupt(format!("negative sequence number {created_seq}")))?,
        requested_at: Timestamp::from_millis(requested_at_ms),
        requester,
        resource,
        body,
        csv,
    })
}

/// The last column a page read.
enum Column {
    Body(Vec<u8>),
    Csv(String),
}

fn from_row(row: &AnyRow, which: Text) -> Result<SummaryRecord, StoreError> {
    record(
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
        row.try_get(4)?,
        match which {
            Text::Body => Column::Body(row.try_get(5)?),
            Text::Csv => Column::Csv(row.try_get(5)?),
        },
    )
}

pub(crate) async fn cursor(pool: &AnyPool) -> Result<u64, StoreError> {
    let after: i64 = sqlx::query("SELECT after_seq FROM access_summary_cursor WHERE id = 1")
        .fetch_one(pool)
        .await?
        .try_get(0)?;
    u64::try_from(after).map_err(|_| corrupt("negative access-summary cursor"))
}

/// `IN (…)` placeholders for `n` values starting at parameter `first`.
fn list(dialect: Dialect, first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| dialect.placeholder(i))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) async fn by_key(
    pool: &AnyPool,
    dialect: Dialect,
    keys: &[String],
) -> Result<Vec<SummaryRecord>, StoreError> {
    let mut found = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        let sql = format!(
            "SELECT {} FROM access_summaries WHERE key IN ({})",
            Text::Body.columns(),
            list(dialect, 1, chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for key in chunk {
            query = query.bind(key.as_str());
        }
        for row in query.fetch_all(pool).await? {
            found.push(from_row(&row, Text::Body)?);
        }
    }
    Ok(found)
}

pub(crate) async fn sessions(
    pool: &AnyPool,
    dialect: Dialect,
    session_ids: &[String],
) -> Result<Vec<(String, String)>, StoreError> {
    let mut found = Vec::with_capacity(session_ids.len());
    for chunk in session_ids.chunks(500) {
        let sql = format!(
            "SELECT session_id, key FROM access_summary_sessions WHERE session_id IN ({})",
            list(dialect, 1, chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(id.as_str());
        }
        for row in query.fetch_all(pool).await? {
            found.push((row.try_get(0)?, row.try_get(1)?));
        }
    }
    Ok(found)
}

/// Saves folded summaries and the sessions learnt, and moves the cursor from `from` to `to`,
/// in one transaction; `false` (nothing saved) when another follower moved the cursor first.
pub(crate) async fn save(
    pool: &AnyPool,
    dialect: Dialect,
    from: u64,
    to: u64,
    summaries: &[SummaryRecord],
    learnt_sessions: &[(String, String)],
) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    let moved = sqlx::query(
        "UPDATE access_summary_cursor SET after_seq = $1 WHERE id = 1 AND after_seq = $2",
    )
    .bind(to_i64(to)?)
    .bind(to_i64(from)?)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if moved != 1 {
        return Ok(false);
    }
    let rows = summaries
        .iter()
        .map(|summary| {
            vec![
                Val::Text(summary.key.clone()),
                Val::Int(clamp_i64(summary.created_seq)),
                Val::Int(summary.requested_at.as_millis()),
                Val::Text(summary.requester.clone()),
                Val::Text(summary.resource.clone()),
                Val::Bytes(summary.body.clone()),
                Val::Text(summary.csv.clone()),
            ]
        })
        .collect();
    batch::insert_rows(
        &mut tx,
        dialect,
        "access_summaries",
        &[
            "key",
            "created_seq",
            "requested_at_ms",
            "requester",
            "resource",
            "body",
            "csv",
        ],
        "ON CONFLICT (key) DO UPDATE SET body = excluded.body, csv = excluded.csv",
        rows,
    )
    .await?;
    let rows = learnt_sessions
        .iter()
        .map(|(session, key)| vec![Val::Text(session.clone()), Val::Text(key.clone())])
        .collect();
    batch::insert_rows(
        &mut tx,
        dialect,
        "access_summary_sessions",
        &["session_id", "key"],
        "ON CONFLICT (session_id) DO NOTHING",
        rows,
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// A bind value of a page's query.
enum Bind {
    Int(i64),
    Text(String),
}

/// The query of a page of the summaries `range` selects, in the order of their requests' times
/// (then of their `request.created`), after `after`; `None` when it selects nothing.
fn page_query(
    dialect: Dialect,
    range: &SummaryRange,
    after: Option<SummaryPosition>,
    limit: u32,
    which: Text,
) -> Option<(String, Vec<Bind>)> {
    let mut sql = format!(
        "SELECT {} FROM access_summaries WHERE requested_at_ms < {}",
        which.columns(),
        dialect.placeholder(1)
    );
    let mut binds = vec![Bind::Int(range.to.as_millis())];
    match after {
        // A row value, not `a > x OR (a = x AND b > y)`: both databases then seek the index
        // instead of scanning it from the start for every page.
        Some(position) => {
            sql.push_str(&format!(
                " AND (requested_at_ms, created_seq) > ({}, {})",
                dialect.placeholder(binds.len() + 1),
                dialect.placeholder(binds.len() + 2),
            ));
            binds.push(Bind::Int(position.requested_at.as_millis()));
            binds.push(Bind::Int(clamp_i64(position.created_seq)));
        }
        None => {
            sql.push_str(&format!(
                " AND requested_at_ms >= {}",
                dialect.placeholder(binds.len() + 1)
            ));
            binds.push(Bind::Int(range.from.as_millis()));
        }
    }
    if let Some(resource) = &range.resource {
        sql.push_str(&format!(
            " AND resource = {}",
            dialect.placeholder(binds.len() + 1)
        ));
        binds.push(Bind::Text(resource.clone()));
    }
    if let Some(requesters) = &range.requesters {
        if requesters.is_empty() {
            return None;
        }
        sql.push_str(&format!(
            " AND requester IN ({})",
            list(dialect, binds.len() + 1, requesters.len())
        ));
        binds.extend(requesters.iter().cloned().map(Bind::Text));
    }
    sql.push_str(&format!(
        " ORDER BY requested_at_ms, created_seq LIMIT {limit}"
    ));
    Some((sql, binds))
}

async fn sqlx_page(
    pool: &AnyPool,
    dialect: Dialect,
    range: &SummaryRange,
    after: Option<SummaryPosition>,
    limit: u32,
    which: Text,
) -> Result<Vec<SummaryRecord>, StoreError> {
    let Some((sql, binds)) = page_query(dialect, range, after, limit, which) else {
        return Ok(Vec::new());
    };
    let mut query = sqlx::query(&sql);
    for bind in binds {
        query = match bind {
            Bind::Int(value) => query.bind(value),
            Bind::Text(value) => query.bind(value),
        };
    }
    query
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| from_row(row, which))
        .collect()
}

/// A page of summaries (`csv`: of report lines instead), from the SQLite file when there is
/// one, through sqlx otherwise.
pub(crate) async fn page(
    pool: &AnyPool,
    dialect: Dialect,
    sqlite_path: Option<&Path>,
    range: &SummaryRange,
    after: Option<SummaryPosition>,
    limit: u32,
    csv: bool,
) -> Result<Vec<SummaryRecord>, StoreError> {
    let which = if csv { Text::Csv } else { Text::Body };
    match sqlite_path {
        Some(path) => sqlite_page(path, range, after, limit, which).await,
        None => sqlx_page(pool, dialect, range, after, limit, which).await,
    }
}

/// A page read from the SQLite file with rusqlite, on a blocking thread: sqlx hands each row
/// from its worker thread through a channel and converts it twice, which costs several times
/// the read itself when a report reads a million rows.
async fn sqlite_page(
    path: &Path,
    range: &SummaryRange,
    after: Option<SummaryPosition>,
    limit: u32,
    which: Text,
) -> Result<Vec<SummaryRecord>, StoreError> {
    let Some((sql, binds)) = page_query(Dialect::Sqlite, range, after, limit, which) else {
        return Ok(Vec::new());
    };
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || read_sqlite(&path, &sql, binds, which))
        .await
        .map_err(|err| StoreError::Database(format!("the summary reader failed: {err}")))?
}

fn read_sqlite(
    path: &Path,
    sql: &str,
    binds: Vec<Bind>,
    which: Text,
) -> Result<Vec<SummaryRecord>, StoreError> {
    use rusqlite::{OpenFlags, params_from_iter, types::Value};

    let database = |err: rusqlite::Error| StoreError::Database(err.to_string());
    let connection = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|err| StoreError::Unavailable(format!("cannot open `{}`: {err}", path.display())))?;
    connection
        .busy_timeout(std::time::Duration::from_secs(10))
        .map_err(database)?;
    let mut statement = connection.prepare(sql).map_err(database)?;
    let values = binds.into_iter().map(|bind| match bind {
        Bind::Int(value) => Value::Integer(value),
        Bind::Text(value) => Value::Text(value),
    });
    let mut rows = statement
        .query(params_from_iter(values))
        .map_err(database)?;
    let mut found = Vec::new();
    while let Some(row) = rows.next().map_err(database)? {
        found.push(record(
            row.get(0).map_err(database)?,
            row.get(1).map_err(database)?,
            row.get(2).map_err(database)?,
            row.get(3).map_err(database)?,
            row.get(4).map_err(database)?,
            match which {
                Text::Body => Column::Body(row.get(5).map_err(database)?),
                Text::Csv => Column::Csv(row.get(5).map_err(database)?),
            },
        )?);
    }
    Ok(found)
}
