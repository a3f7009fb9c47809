//! The bulk read of the whole ledger for the verifier and the export: every event row in
//! order, in pages, read ahead of the caller so that reading overlaps checking.
//!
//! On SQLite the rows come straight from the file, with rusqlite on a thread of its own: sqlx
//! hands each row from its worker thread to the caller through a channel, which costs more than
//! everything else a 10,000,000-row scan does. Elsewhere (PostgreSQL) pages come from
//! [`Store::raw_events`], the next one requested while the caller checks the current one.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::{RawEvent, Store, StoreError};

/// Pages read ahead of the one the caller holds: enough to ride out a slow page, few enough
/// that memory stays flat (a page of 5000 events is about 2 MiB).
const READ_AHEAD: usize = 2;

/// A page of event rows exactly as stored, their text in one buffer (two allocations a page
/// rather than two a row).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawPage {
    /// Every row's body then leaf hash, one after the other.
    text: String,
    rows: Vec<RowAt>,
}

/// Where a row's text lies in [`RawPage::text`].
#[derive(Clone, Debug, PartialEq, Eq)]
struct RowAt {
    seq: u64,
    body: Range<usize>,
    leaf_hash: Range<usize>,
}

/// One row of a [`RawPage`]: [`RawEvent`], borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawRow<'a> {
    pub seq: u64,
    pub body: &'a str,
    /// The stored leaf hash, hex (it should be SHA-256(0x00 || body)).
    pub leaf_hash: &'a str,
}

impl RawPage {
    fn with_capacity(rows: usize) -> Self {
        Self {
            text: String::with_capacity(rows * 512),
            rows: Vec::with_capacity(rows),
        }
    }

    fn push(&mut self, seq: u64, body: &str, leaf_hash: &str) {
        let start = self.text.len();
        self.text.push_str(body);
        let middle = self.text.len();
        self.text.push_str(leaf_hash);
        self.rows.push(RowAt {
            seq,
            body: start..middle,
            leaf_hash: middle..self.text.len(),
        });
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = RawRow<'_>> {
        self.rows.iter().map(|row| RawRow {
            seq: row.seq,
            body: self.text.get(row.body.clone()).unwrap_or_default(),
            leaf_hash: self.text.get(row.leaf_hash.clone()).unwrap_or_default(),
        })
    }

    /// The `seq` of the last row.
    pub fn last_seq(&self) -> Option<u64> {
        self.rows.last().map(|row| row.seq)
    }
}

impl From<Vec<RawEvent>> for RawPage {
    fn from(rows: Vec<RawEvent>) -> Self {
        let mut page = Self::with_capacity(rows.len());
        for row in &rows {
            page.push(row.seq, &row.body, &row.leaf_hash);
        }
        page
    }
}

/// Where [`raw_event_pages`] reads.
pub enum PageSource {
    /// The SQLite database file (as `SqlStore::open_sqlite` opened it, so in WAL mode and
    /// migrated), opened read-only.
    SqliteFile(PathBuf),
    /// Any store, through [`Store::raw_events`].
    Store(Arc<dyn Store>),
}

/// The pages of event rows `seq > after`, in order, each of at most `page` rows (`page` 0 means
/// 1), read ahead on a thread (SQLite) or a task (any store) of their own; they are what
/// [`Store::raw_events`] returns, undecoded and unchecked. Call it within a tokio runtime.
///
/// From SQLite the rows come from one statement, so from one snapshot of the database; from a
/// store, each page is read as `raw_events` reads it.
pub fn raw_event_pages(source: PageSource, after: u64, page: usize) -> EventPages {
    let page = page.max(1);
    let (sender, receiver) = mpsc::channel(READ_AHEAD);
    let reader = match source {
        PageSource::SqliteFile(path) => {
            let failed = sender.clone();
            let spawned = std::thread::Builder::new()
                .name("latch-event-scan".into())
                .spawn(move || {
                    let mut pages = Pager {
                        current: RawPage::with_capacity(page),
                        page,
                        sender: &sender,
                    };
                    let scanned = scan_sqlite(&path, after, &mut pages);
                    // The rows before a bad one, then the error: it comes in its place.
                    pages.finish();
                    if let Err(err) = scanned {
                        // The caller may be gone already; then nobody needs the error.
                        let _ = sender.blocking_send(Err(err));
                    }
                });
            if let Err(err) = spawned {
                let _ = failed.try_send(Err(StoreError::Unavailable(format!(
                    "cannot start the thread that reads the ledger: {err}"
                ))));
            }
            None
        }
        PageSource::Store(store) => Some(tokio::spawn(read_ahead(store, after, page, sender))),
    };
    EventPages { receiver, reader }
}

/// Pages from [`raw_event_pages`]; dropping it stops the reading.
pub struct EventPages {
    receiver: mpsc::Receiver<Result<RawPage, StoreError>>,
    /// The task reading a store, stopped when the pages are dropped. (The SQLite thread stops
    /// by itself when it next finds nobody to send to.)
    reader: Option<tokio::task::JoinHandle<()>>,
}

impl EventPages {
    /// The next page; `None` after the last event (or after an error, which comes once).
    pub async fn next(&mut self) -> Option<Result<RawPage, StoreError>> {
        self.receiver.recv().await
    }

    /// [`EventPages::next`] for a caller outside the async runtime.
    pub fn blocking_next(&mut self) -> Option<Result<RawPage, StoreError>> {
        self.receiver.blocking_recv()
    }
}

impl Drop for EventPages {
    fn drop(&mut self) {
        if let Some(reader) = &self.reader {
            reader.abort();
        }
    }
}

async fn read_ahead(
    store: Arc<dyn Store>,
    mut after: u64,
    page: usize,
    sender: mpsc::Sender<Result<RawPage, StoreError>>,
) {
    let limit = u32::try_from(page).unwrap_or(u32::MAX);
    loop {
        match store.raw_events(after, limit).await {
            Ok(rows) => {
                let Some(last) = rows.last().map(|row| row.seq) else {
                    return;
                };
                if sender.send(Ok(RawPage::from(rows))).await.is_err() {
                    return;
                }
                after = last;
            }
            Err(err) => {
                let _ = sender.send(Err(err)).await;
                return;
            }
        }
    }
}

fn database(err: rusqlite::Error) -> StoreError {
    StoreError::Database(err.to_string())
}

/// Reads every row after `after` in `seq` order, in one read transaction (one snapshot),
/// sending full pages as they fill. `seq` is SQLite's rowid (migration 16), so this walks the
/// table itself; a table someone rebuilt with another key is still read in `seq` order, more
/// slowly.
fn scan_sqlite(
    path: &std::path::Path,
    after: u64,
    pages: &mut Pager<'_>,
) -> Result<(), StoreError> {
    use rusqlite::OpenFlags;

    let connection = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|err| StoreError::Unavailable(format!("cannot open `{}`: {err}", path.display())))?;
    // As the store's own connections wait for a writer's lock.
    connection
        .busy_timeout(Duration::from_secs(10))
        .map_err(database)?;
    let snapshot = connection.unchecked_transaction().map_err(database)?;
    let mut statement = snapshot
        .prepare("SELECT seq, body, leaf_hash FROM events WHERE seq > ?1 ORDER BY seq")
        .map_err(database)?;
    let mut rows = statement
        .query([i64::try_from(after).unwrap_or(i64::MAX)])
        .map_err(database)?;
    while let Some(row) = rows.next().map_err(database)? {
        let seq = row
            .get_ref(0)
            .and_then(|v| Ok(v.as_i64()?))
            .map_err(database)?;
        if !pages.push(seq, row)? {
            return Ok(());
        }
    }
    Ok(())
}

/// Fills pages and sends each when full.
struct Pager<'a> {
    current: RawPage,
    page: usize,
    sender: &'a mpsc::Sender<Result<RawPage, StoreError>>,
}

impl Pager<'_> {
    /// Adds `row` (its `seq` already read); `false` when the caller is gone.
    fn push(&mut self, seq: i64, row: &rusqlite::Row<'_>) -> Result<bool, StoreError> {
        self.current.push(
            u64::try_from(seq)
                .map_err(|_| StoreError::Corrupt(format!("negative sequence number {seq}")))?,
            text(row.get_ref(1).map_err(database)?, seq, "body")?,
            text(row.get_ref(2).map_err(database)?, seq, "leaf hash")?,
        );
        if self.current.len() < self.page {
            return Ok(true);
        }
        let full = std::mem::replace(&mut self.current, RawPage::with_capacity(self.page));
        Ok(self.sender.blocking_send(Ok(full)).is_ok())
    }

    /// Sends the last, partial page.
    fn finish(&mut self) {
        if !self.current.is_empty() {
            let last = std::mem::take(&mut self.current);
            let _ = self.sender.blocking_send(Ok(last));
        }
    }
}

/// A text column of row `seq`, as sqlx reads one: text in UTF-8, nothing else.
fn text<'v>(
    value: rusqlite::types::ValueRef<'v>,
    seq: i64,
    column: &str,
) -> Result<&'v str, StoreError> {
    match value {
        rusqlite::types::ValueRef::Text(bytes) => std::str::from_utf8(bytes)
            .map_err(|_| StoreError::Corrupt(format!("event {seq}: the {column} is not UTF-8"))),
        other => Err(StoreError::Corrupt(format!(
            "event {seq}: the {column} is not text but {}",
            other.data_type()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use latch_core::{Actor, Event, EventKind, Timestamp};

    use super::*;
    use crate::SqlStore;

    /// A SQLite store of 30 refusals, and a plain connection to its file for tampering.
    async fn store() -> (
        tempfile::TempDir,
        PathBuf,
        Arc<SqlStore>,
        rusqlite::Connection,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latch.db");
        let store = Arc::new(SqlStore::open_sqlite(&path).await.unwrap());
        let events = (0..30)
            .map(|i| Event {
                at: Timestamp::from_millis(1_795_000_000_000 + i),
                actor: Actor::user("alice"),
                subject: format!("/api/v1/requests/{i}"),
                kind: EventKind::AccessRefused {
                    action: "approve".into(),
                    reason: format!("refusal \"{i}\""),
                },
            })
            .collect();
        store.record(events).await.unwrap();
        let tamper = rusqlite::Connection::open(&path).unwrap();
        tamper.busy_timeout(Duration::from_secs(10)).unwrap();
        (dir, path, store, tamper)
    }

    /// What the bulk read sends, flattened, with its error (if any) last.
    async fn bulk(path: &std::path::Path, after: u64) -> (Vec<RawEvent>, Option<String>) {
        let mut pages = raw_event_pages(PageSource::SqliteFile(path.to_owned()), after, 7);
        let mut rows = Vec::new();
        while let Some(page) = pages.next().await {
            match page {
                Ok(page) => rows.extend(page.iter().map(|row| RawEvent {
                    seq: row.seq,
                    body: row.body.to_owned(),
                    leaf_hash: row.leaf_hash.to_owned(),
                })),
                Err(err) => return (rows, Some(err.to_string())),
            }
        }
        (rows, None)
    }

    /// The bulk read sends exactly what `Store::raw_events` returns, from SQLite and through
    /// the store, after each way of reordering the table.
    async fn check(path: &std::path::Path, store: &Arc<SqlStore>, what: &str) {
        for after in [0, 5] {
            let reference = store.raw_events(after, 10_000).await;
            let (rows, error) = bulk(path, after).await;
            match reference {
                Ok(reference) => {
                    assert_eq!(error, None, "{what}");
                    assert_eq!(rows, reference, "{what}, after {after}");
                    // Through the store, pages are `raw_events` pages, one after the other.
                    let mut pages = raw_event_pages(PageSource::Store(store.clone()), after, 7);
                    let mut through_store = Vec::new();
                    while let Some(page) = pages.next().await {
                        through_store.extend(page.unwrap().iter().map(|row| row.seq));
                    }
                    let mut paged = Vec::new();
                    let mut last = after;
                    while let Some(next) = store.raw_events(last, 7).await.unwrap().last() {
                        paged.extend(
                            store
                                .raw_events(last, 7)
                                .await
                                .unwrap()
                                .iter()
                                .map(|r| r.seq),
                        );
                        last = next.seq;
                    }
                    assert_eq!(through_store, paged, "{what}, through the store");
                }
                Err(_) => assert!(error.is_some(), "{what}: no error after {rows:?}"),
            }
        }
    }

    #[tokio::test]
    async fn the_bulk_read_is_the_seq_order_after_every_edit() {
        let (_dir, path, store, tamper) = store().await;
        check(&path, &store, "untouched").await;
        let (rows, _) = bulk(&path, 0).await;
        assert_eq!(rows.len(), 30);
        assert_eq!(bulk(&path, 30).await, (Vec::new(), None));

        let edits = [
            (
                "two rows swapped",
                "UPDATE events SET seq = -12 WHERE seq = 12; UPDATE events SET seq = 12 WHERE seq = 13; UPDATE events SET seq = 13 WHERE seq = -12",
            ),
            ("a row deleted", "DELETE FROM events WHERE seq = 20"),
            (
                "a row inserted with a gap",
                "INSERT INTO events SELECT 1000, type, actor, subject, at_ms, body, leaf_hash FROM events WHERE seq = 3",
            ),
            (
                "rows before the first",
                "INSERT INTO events SELECT seq - 40, type, actor, subject, at_ms, body, leaf_hash FROM events WHERE seq IN (1, 2)",
            ),
            (
                "a row renumbered into the gap",
                "UPDATE events SET seq = 20 WHERE seq = 1000",
            ),
            (
                "the first row moved to the end",
                "UPDATE events SET seq = 31 WHERE seq = 1",
            ),
            (
                "a NULL position",
                "INSERT INTO events SELECT NULL, type, actor, subject, at_ms, body, leaf_hash FROM events WHERE seq = 4",
            ),
        ];
        for (what, sql) in edits {
            tamper.execute_batch(sql).unwrap();
            check(&path, &store, what).await;
        }
        // `seq` is the rowid: SQLite itself refuses a position that is not an integer.
        assert!(
            tamper
                .execute_batch("UPDATE events SET seq = 'x' WHERE seq = 25")
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_table_rebuilt_without_its_key_is_still_read_in_seq_order() {
        let (_dir, path, store, tamper) = store().await;
        // The table rebuilt without its primary key, then a duplicate appended: in table
        // order it comes after every original, in `seq` order right after its twin.
        tamper
            .execute_batch(
                "CREATE TABLE copy AS SELECT * FROM events; DROP TABLE events; \
                 ALTER TABLE copy RENAME TO events; \
                 INSERT INTO events SELECT * FROM events WHERE seq = 7;",
            )
            .unwrap();
        let (rows, error) = bulk(&path, 0).await;
        assert_eq!(error, None);
        let seqs: Vec<u64> = rows.iter().map(|row| row.seq).collect();
        assert_eq!(seqs.get(6..8), Some(&[7, 7][..]), "{seqs:?}");
        assert_eq!(rows.len(), 31);
        check(&path, &store, "duplicate").await;
        tamper
            .execute_batch("UPDATE events SET seq = 'x' WHERE seq = 25")
            .unwrap();
        check(&path, &store, "a text position").await;
    }

    /// `seq` declared as the events table's key; `true` when it is SQLite's rowid (no index
    /// of its own).
    fn seq_is_rowid(connection: &rusqlite::Connection) -> bool {
        let seq_indexes: i64 = connection
            .query_row(
                "SELECT count(*) FROM pragma_index_list('events') AS l \
                 WHERE (SELECT group_concat(i.name) FROM pragma_index_info(l.name) AS i) = 'seq'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        let declared: String = connection
            .query_row(
                "SELECT type FROM pragma_table_info('events') WHERE name = 'seq' AND pk = 1",
                [],
                |row| row.get(0),
            )
            .unwrap();
        seq_indexes == 0 && declared == "INTEGER"
    }

    #[tokio::test]
    async fn a_ledger_written_before_seq_became_the_rowid_keeps_every_event() {
        let (_dir, path, store, tamper) = store().await;
        assert!(seq_is_rowid(&tamper));
        let before = store.raw_events(0, 100).await.unwrap();
        drop(store);
        // The table as migrations 1 to 15 left it, and migration 16 not applied.
        tamper
            .execute_batch(
                "CREATE TABLE old_events (seq BIGINT PRIMARY KEY, type TEXT NOT NULL, \
                   actor TEXT NOT NULL, subject TEXT NOT NULL, at_ms BIGINT NOT NULL, \
                   body TEXT NOT NULL, leaf_hash TEXT NOT NULL); \
                 INSERT INTO old_events SELECT * FROM events; \
                 DROP TABLE events; ALTER TABLE old_events RENAME TO events; \
                 CREATE INDEX events_subject ON events (subject, seq) \
                   WHERE type NOT IN ('session.statement', 'session.statement_outcome'); \
                 CREATE INDEX events_type ON events (type, seq) \
                   WHERE type NOT IN ('session.statement', 'session.statement_outcome'); \
                 DELETE FROM schema_migrations WHERE version = 16;",
            )
            .unwrap();
        assert!(!seq_is_rowid(&tamper));
        let store = Arc::new(SqlStore::open_sqlite(&path).await.unwrap());
        assert!(seq_is_rowid(&tamper));
        assert_eq!(store.raw_events(0, 100).await.unwrap(), before);
        let (rows, error) = bulk(&path, 0).await;
        assert_eq!((rows, error), (before, None));
        let indexes: Vec<String> = tamper
            .prepare("SELECT name FROM pragma_index_list('events') ORDER BY name")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(indexes, ["events_subject", "events_type"]);
    }

    #[tokio::test]
    async fn a_body_that_is_not_text_is_an_error_in_its_place() {
        let (_dir, path, _store, tamper) = store().await;
        tamper
            .execute_batch("UPDATE events SET body = X'ff00' WHERE seq = 9")
            .unwrap();
        let (rows, error) = bulk(&path, 0).await;
        assert_eq!(rows.len(), 8);
        assert_eq!(
            error.as_deref(),
            Some("the event log is corrupt: event 9: the body is not text but Blob")
        );
    }
}
