//! The access-summary projection: one row per request with everything reports and analytics say
//! about it (the summary itself is `latch_report::AccessSummary`, stored here as opaque bytes),
//! and how far into the ledger it has been folded. It is derived state, kept up to date by a
//! follower of the ledger rather than in the append's transaction, so that statements (nearly
//! every event) cost the gateway nothing more; a reader catches it up before reading.

use std::path::Path;

use latch_core::Timestamp;
use sqlx::{AnyPool, Row};

use crate::StoreError;
use crate::batch::{self, Val, sqlite_error};
use crate::sql::{Dialect, clamp_i64, corrupt, to_i64};

/// One stored summary with the columns a period is selected by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryRecord {
    /// The request id's key (what follows `req_`).
    pub key: String,
    /// `seq` of the request's `request.created`.
    pub created_seq: u64,
    pub requested_at: Timestamp,
    pub requester: String,
    pub resource: String,
    /// The summary, encoded by its owner.
    pub body: Vec<u8>,
    /// Its line of the CSV report, rendered by its owner, written with the summary and read
    /// back only by `Store::summary_lines` (empty in what `summaries_page` returns): a report
    /// of a million accesses is then a read, not a million renderings.
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

/// The columns a page reads.
const PAGE_COLUMNS: &str = "key, created_seq, requested_at_ms, requester, resource, body";

/// A stored summary from a row of `PAGE_COLUMNS`, of either sqlx driver (`Any`, or
/// PostgreSQL's own). The report line is not read back: reports read the lines alone.
fn from_row<R>(row: &R) -> Result<SummaryRecord, StoreError>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    record(
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
        row.try_get(4)?,
        row.try_get(5)?,
    )
}

fn record(
    key: String,
    created_seq: i64,
    requested_at_ms: i64,
    requester: String,
    resource: String,
    body: Vec<u8>,
) -> Result<SummaryRecord, StoreError> {
    Ok(SummaryRecord {
        key,
        created_seq: u64::try_from(created_seq)
            .map_err(|_| corrupt(format!("negative sequence number {created_seq}")))?,
        requested_at: Timestamp::from_millis(requested_at_ms),
        requester,
        resource,
        body,
        csv: String::new(),
    })
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
            "SELECT {PAGE_COLUMNS} FROM access_summaries WHERE key IN ({})",
            list(dialect, 1, chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for key in chunk {
            query = query.bind(key.as_str());
        }
        for row in query.fetch_all(pool).await? {
            found.push(from_row(&row)?);
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
        &mut *tx,
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
        &mut *tx,
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

/// A value of a page's query: a time, a sequence number or a name.
enum Bind {
    Int(i64),
    Text(String),
}

impl From<Bind> for Val {
    fn from(bind: Bind) -> Self {
        match bind {
            Bind::Int(value) => Val::Int(value),
            Bind::Text(value) => Val::Text(value),
        }
    }
}

/// How a query carries its values: as bound parameters, or written into its text (PostgreSQL's
/// `COPY` takes no parameters).
enum Args {
    Bound(Dialect, Vec<Bind>),
    Inline,
}

impl Args {
    /// Where `value` goes in the query's text.
    fn arg(&mut self, value: Bind) -> Result<String, StoreError> {
        match self {
            Self::Bound(dialect, binds) => {
                binds.push(value);
                Ok(dialect.placeholder(binds.len()))
            }
            Self::Inline => match value {
                Bind::Int(value) => Ok(value.to_string()),
                Bind::Text(text) => postgres_literal(&text),
            },
        }
    }
}

/// `text` as a PostgreSQL string constant: an escape string (`E'…'`, quotes and backslashes
/// doubled), read the same whatever `standard_conforming_strings` says. The filters' names can
/// come from an API caller, so this is the line between a value and SQL.
fn postgres_literal(text: &str) -> Result<String, StoreError> {
    if text.contains('\0') {
        return Err(StoreError::Database(
            "a filter value contains a NUL character, which no name can".into(),
        ));
    }
    let mut literal = String::with_capacity(text.len() + 3);
    literal.push_str("E'");
    for c in text.chars() {
        match c {
            '\'' => literal.push_str("''"),
            '\\' => literal.push_str("\\\\"),
            c => literal.push(c),
        }
    }
    literal.push('\'');
    Ok(literal)
}

/// The query of the summaries `range` selects (`columns` of them), in the order of their
/// requests' times (then of their `request.created`), after `after`, at most `limit`; `None`
/// when it selects nothing.
fn select(
    columns: &str,
    range: &SummaryRange,
    after: Option<SummaryPosition>,
    limit: Option<u32>,
    args: &mut Args,
) -> Result<Option<String>, StoreError> {
    let mut sql = format!(
        "SELECT {columns} FROM access_summaries WHERE requested_at_ms < {}",
        args.arg(Bind::Int(range.to.as_millis()))?
    );
    match after {
        // A row value, not `a > x OR (a = x AND b > y)`: both databases then seek the index
        // instead of scanning it from the start for every page.
        Some(position) => {
            let at = args.arg(Bind::Int(position.requested_at.as_millis()))?;
            let seq = args.arg(Bind::Int(clamp_i64(position.created_seq)))?;
            sql.push_str(&format!(
                " AND (requested_at_ms, created_seq) > ({at}, {seq})"
            ));
        }
        None => {
            let from = args.arg(Bind::Int(range.from.as_millis()))?;
            sql.push_str(&format!(" AND requested_at_ms >= {from}"));
        }
    }
    if let Some(resource) = &range.resource {
        let resource = args.arg(Bind::Text(resource.clone()))?;
        sql.push_str(&format!(" AND resource = {resource}"));
    }
    if let Some(requesters) = &range.requesters {
        if requesters.is_empty() {
            return Ok(None);
        }
        let list = requesters
            .iter()
            .map(|who| args.arg(Bind::Text(who.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        sql.push_str(&format!(" AND requester IN ({})", list.join(", ")));
    }
    sql.push_str(" ORDER BY requested_at_ms, created_seq");
    if let Some(limit) = limit {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    Ok(Some(sql))
}

/// The query of a page, with its bound values.
fn page_query(
    dialect: Dialect,
    range: &SummaryRange,
    after: Option<SummaryPosition>,
    limit: u32,
) -> Result<Option<(String, Vec<Bind>)>, StoreError> {
    let mut args = Args::Bound(dialect, Vec::new());
    let sql = select(PAGE_COLUMNS, range, after, Some(limit), &mut args)?;
    let Args::Bound(_, binds) = args else {
        return Ok(None);
    };
    Ok(sql.map(|sql| (sql, binds)))
}

/// Where the reads of reports and the dashboard go around sqlx's `Any` layer: the SQLite file
/// (read with rusqlite), or PostgreSQL through sqlx's own driver (pages) and `COPY` (report
/// lines).
pub(crate) enum BulkReads {
    SqliteFile(std::path::PathBuf),
    Postgres(sqlx::PgPool),
}

/// A page of summaries.
pub(crate) async fn page(
    bulk: &BulkReads,
    range: &SummaryRange,
    after: Option<SummaryPosition>,
    limit: u32,
) -> Result<Vec<SummaryRecord>, StoreError> {
    match bulk {
        BulkReads::SqliteFile(path) => sqlite_page(path, range, after, limit).await,
        BulkReads::Postgres(pool) => postgres_page(pool, range, after, limit).await,
    }
}

/// A run of whole lines of the CSV report, in report order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReportLines {
    pub text: Vec<u8>,
    /// Lines in `text`.
    pub rows: u64,
}

/// Bytes of lines sent at once.
const LINES_BYTES: usize = 1 << 20;

impl ReportLines {
    fn push(&mut self, line: &[u8]) {
        self.text.extend_from_slice(line);
        self.rows += 1;
    }

    fn full(&self) -> bool {
        self.text.len() >= LINES_BYTES
    }
}

/// Sends the report lines of `range` to `lines` as they are read, each query over the whole
/// range (one snapshot, no page boundaries); stops early, without error, when the receiver is
/// gone.
pub(crate) async fn lines(
    bulk: &BulkReads,
    range: &SummaryRange,
    lines: tokio::sync::mpsc::Sender<ReportLines>,
) -> Result<(), StoreError> {
    match bulk {
        BulkReads::SqliteFile(path) => {
            let mut args = Args::Bound(Dialect::Sqlite, Vec::new());
            let Some(sql) = select("csv", range, None, None, &mut args)? else {
                return Ok(());
            };
            let Args::Bound(_, binds) = args else {
                return Ok(());
            };
            let path = path.clone();
            tokio::task::spawn_blocking(move || sqlite_lines(&path, &sql, binds, &lines))
                .await
                .map_err(|err| StoreError::Database(format!("the report reader failed: {err}")))?
        }
        BulkReads::Postgres(pool) => postgres_lines(pool, range, &lines).await,
    }
}

fn sqlite_lines(
    path: &Path,
    sql: &str,
    binds: Vec<Bind>,
    lines: &tokio::sync::mpsc::Sender<ReportLines>,
) -> Result<(), StoreError> {
    let mut run = ReportLines::default();
    let mut receiving = true;
    sqlite_rows(path, sql, binds, |row| {
        let line = row.get_ref(0).map_err(sqlite_error)?;
        run.push(line.as_bytes().map_err(|err| sqlite_error(err.into()))?);
        if run.full() {
            receiving = lines.blocking_send(std::mem::take(&mut run)).is_ok();
        }
        Ok(receiving)
    })?;
    if receiving {
        // The receiver may be gone since: then nobody needs the rest.
        let _ = lines.blocking_send(run);
    }
    Ok(())
}

/// PostgreSQL's `COPY … TO STDOUT` in its binary form: the lines come as a stream of bytes,
/// parsed here, rather than as a message per row that the driver turns into a row of values.
/// `COPY` takes no parameters, so the filters are written into the query as literals.
async fn postgres_lines(
    pool: &sqlx::PgPool,
    range: &SummaryRange,
    lines: &tokio::sync::mpsc::Sender<ReportLines>,
) -> Result<(), StoreError> {
    use futures_util::StreamExt;

    let Some(sql) = select("csv", range, None, None, &mut Args::Inline)? else {
        return Ok(());
    };
    let mut transaction = pool.begin().await?;
    // In the index's order rather than sorted: a whole year sorted overflows the default
    // `work_mem` and merges on disk, which took longer than the read (0.5 against 0.35 s for a
    // million lines).
    sqlx::query("SET LOCAL enable_sort = off")
        .execute(&mut *transaction)
        .await?;
    let mut stream = transaction
        .copy_out_raw(&format!("COPY ({sql}) TO STDOUT (FORMAT binary)"))
        .await?;
    let mut parser = CopyBinary::default();
    let mut run = ReportLines::default();
    while let Some(chunk) = stream.next().await {
        parser.feed(&chunk?, &mut |line| run.push(line))?;
        if run.full() && lines.send(std::mem::take(&mut run)).await.is_err() {
            // Nobody reads on. The connection reads the rest of the COPY before its next use.
            return Ok(());
        }
    }
    drop(stream);
    parser.finish()?;
    transaction.commit().await?;
    let _ = lines.send(run).await;
    Ok(())
}

/// An incremental parser of PostgreSQL's binary `COPY` format for rows of one text column
/// (https://www.postgresql.org/docs/current/sql-copy.html, "Binary Format").
#[derive(Default)]
struct CopyBinary {
    pending: Vec<u8>,
    header_read: bool,
    ended: bool,
}

const COPY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

impl CopyBinary {
    /// Parses what `chunk` completes, handing each row's field to `line`.
    fn feed(&mut self, chunk: &[u8], line: &mut dyn FnMut(&[u8])) -> Result<(), StoreError> {
        self.pending.extend_from_slice(chunk);
        let mut at = 0;
        let data = &self.pending;
        let bad = |what: &str| StoreError::Database(format!("PostgreSQL's COPY data {what}"));
        if !self.header_read {
            // Signature, flags, header extension length, extension.
            if data.len() < COPY_SIGNATURE.len() + 8 {
                return Ok(());
            }
            if !data.starts_with(COPY_SIGNATURE) {
                return Err(bad("does not start with the binary signature"));
            }
            let extension = read_i32(data, COPY_SIGNATURE.len() + 4).unwrap_or(0);
            let extension = usize::try_from(extension).map_err(|_| bad("has a bad header"))?;
            let end = COPY_SIGNATURE.len() + 8 + extension;
            if data.len() < end {
                return Ok(());
            }
            at = end;
            self.header_read = true;
        }
        while !self.ended {
            let Some(fields) = read_i16(data, at) else {
                break;
            };
            if fields == -1 {
                self.ended = true;
                at += 2;
                break;
            }
            if fields != 1 {
                return Err(bad(&format!("has a row of {fields} fields, not 1")));
            }
            let Some(length) = read_i32(data, at + 2) else {
                break;
            };
            let length = usize::try_from(length).map_err(|_| bad("has a NULL report line"))?;
            let start = at + 6;
            let Some(field) = data.get(start..start + length) else {
                break;
            };
            line(field);
            at = start + length;
        }
        self.pending.drain(..at);
        Ok(())
    }

    /// Checks the data ended with the trailer and nothing after it.
    fn finish(&self) -> Result<(), StoreError> {
        if self.ended && self.pending.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Database(
                "PostgreSQL's COPY data ended without its trailer".into(),
            ))
        }
    }
}

fn read_i16(data: &[u8], at: usize) -> Option<i16> {
    Some(i16::from_be_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

fn read_i32(data: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

/// A page read with sqlx's PostgreSQL driver itself: through `Any`, every value of every row is
/// converted and copied once more.
async fn postgres_page(
    pool: &sqlx::PgPool,
    range: &SummaryRange,
    after: Option<SummaryPosition>,
    limit: u32,
) -> Result<Vec<SummaryRecord>, StoreError> {
    let Some((sql, binds)) = page_query(Dialect::Postgres, range, after, limit)? else {
        return Ok(Vec::new());
    };
    let mut query = sqlx::query(&sql);
    for bind in binds {
        query = match bind {
            Bind::Int(value) => query.bind(value),
            Bind::Text(value) => query.bind(value),
        };
    }
    let rows = query.fetch_all(pool).await?;
    rows.iter().map(from_row).collect()
}

/// A page read from the SQLite file with rusqlite, on a blocking thread: sqlx hands each row
/// from its worker thread through a channel and converts it twice, which costs several times
/// the read itself when a report reads a million rows.
async fn sqlite_page(
    path: &Path,
    range: &SummaryRange,
    after: Option<SummaryPosition>,
    limit: u32,
) -> Result<Vec<SummaryRecord>, StoreError> {
    let Some((sql, binds)) = page_query(Dialect::Sqlite, range, after, limit)? else {
        return Ok(Vec::new());
    };
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut found = Vec::new();
        sqlite_rows(&path, &sql, binds, |row| {
            found.push(record(
                row.get(0).map_err(sqlite_error)?,
                row.get(1).map_err(sqlite_error)?,
                row.get(2).map_err(sqlite_error)?,
                row.get(3).map_err(sqlite_error)?,
                row.get(4).map_err(sqlite_error)?,
                row.get(5).map_err(sqlite_error)?,
            )?);
            Ok(true)
        })?;
        Ok(found)
    })
    .await
    .map_err(|err| StoreError::Database(format!("the summary reader failed: {err}")))?
}

/// Runs `sql` on the SQLite file, opened read-only for this one read, handing each row to
/// `each` until it says to stop.
fn sqlite_rows(
    path: &Path,
    sql: &str,
    binds: Vec<Bind>,
    mut each: impl FnMut(&rusqlite::Row<'_>) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let connection = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|err| StoreError::Unavailable(format!("cannot open `{}`: {err}", path.display())))?;
    connection
        .busy_timeout(std::time::Duration::from_secs(10))
        .map_err(sqlite_error)?;
    let mut statement = connection.prepare(sql).map_err(sqlite_error)?;
    let values = binds.into_iter().map(|bind| Val::from(bind).into_sqlite());
    let mut rows = statement
        .query(rusqlite::params_from_iter(values))
        .map_err(sqlite_error)?;
    while let Some(row) = rows.next().map_err(sqlite_error)? {
        if !each(row)? {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What PostgreSQL sends for `COPY (SELECT csv …) TO STDOUT (FORMAT binary)`.
    fn copy_data(lines: &[&str]) -> Vec<u8> {
        let mut data = COPY_SIGNATURE.to_vec();
        data.extend_from_slice(&0i32.to_be_bytes());
        data.extend_from_slice(&4i32.to_be_bytes());
        data.extend_from_slice(b"ext!");
        for line in lines {
            data.extend_from_slice(&1i16.to_be_bytes());
            data.extend_from_slice(&i32::try_from(line.len()).unwrap().to_be_bytes());
            data.extend_from_slice(line.as_bytes());
        }
        data.extend_from_slice(&(-1i16).to_be_bytes());
        data
    }

    fn parse(chunks: &[&[u8]]) -> Result<Vec<String>, StoreError> {
        let mut parser = CopyBinary::default();
        let mut lines = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut |line| {
                lines.push(String::from_utf8(line.to_vec()).unwrap())
            })?;
        }
        parser.finish()?;
        Ok(lines)
    }

    #[test]
    fn copy_rows_are_read_however_the_bytes_are_cut() {
        let lines = ["a,b\r\n", "", "\"x\ny\",é\r\n"];
        let data = copy_data(&lines);
        assert_eq!(parse(&[&data]).unwrap(), lines);
        for cut in 0..data.len() {
            let (first, second) = data.split_at(cut);
            assert_eq!(parse(&[first, second]).unwrap(), lines, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(parse(&bytes).unwrap(), lines);
    }

    #[test]
    fn bad_copy_data_is_an_error() {
        let data = copy_data(&["a\r\n"]);
        // No trailer.
        let err = parse(&[&data[..data.len() - 2]]).unwrap_err();
        assert!(err.to_string().contains("trailer"), "{err}");
        // Not the binary format.
        let err = parse(&[b"a,b\nc,d\n and more than a header"]).unwrap_err();
        assert!(err.to_string().contains("signature"), "{err}");
        // Two columns.
        let mut two = copy_data(&[]);
        two.truncate(two.len() - 2);
        two.extend_from_slice(&2i16.to_be_bytes());
        let err = parse(&[&two]).unwrap_err();
        assert!(err.to_string().contains("2 fields"), "{err}");
    }

    #[test]
    fn literals_double_quotes_and_backslashes() {
        assert_eq!(postgres_literal("alice").unwrap(), "E'alice'");
        assert_eq!(
            postgres_literal(r"o'brien\'); drop table x; --").unwrap(),
            r"E'o''brien\\''); drop table x; --'"
        );
        assert!(postgres_literal("a\0b").is_err());
    }
}
