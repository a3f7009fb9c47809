//! Which recorded statements belong to which session, kept off the append path.
//!
//! An index on `events (subject, seq)` puts each session's entries together, so a group commit
//! of statements from 64 sessions wrote 64 leaf pages of it: 32 of the 37 pages an average
//! group wrote, and so most of the append path's time (docs/BENCHMARKS.md, `ledger append`).
//! The statement types (`session.statement`, `session.statement_outcome`, nearly every event of
//! a busy gateway) are therefore left out of that index (a partial index, migration 11), and a
//! follower indexes them here in large batches, where one session's many new entries share a
//! page. The index is derived: it can always be rebuilt from the events, and the ledger's proofs
//! do not depend on it. Readers see every statement: what the follower has not yet indexed is
//! read from the events after its cursor (see `SqlStore::subject_events`).

use std::sync::Arc;
use std::time::Duration;

use latch_core::EventKind;
use sqlx::AnyPool;
use tokio::sync::mpsc;

use crate::StoreError;
use crate::batch::{Exec, Val};
use crate::recent::RecentEvents;
use crate::sql::{Dialect, clamp_i64, corrupt};
use crate::writer::{SqliteWriter, ready};

/// The event types indexed here instead of by `events_subject` and `events_type`, as SQL. Every
/// query that looks events up by subject or type says `type NOT IN` this list, or SQLite and
/// PostgreSQL cannot use those partial indexes.
pub(crate) const STATEMENT_TYPES: &str = "('session.statement', 'session.statement_outcome')";

/// The most events one indexing transaction reads past.
const BATCH: u64 = 50_000;

/// How long the follower waits between rounds: long enough that a session's new entries share
/// pages, short enough that the unindexed tail readers scan stays small and that the newest
/// events are still in [`RecentEvents`].
const INTERVAL: Duration = Duration::from_millis(250);

/// Where the index is written: on SQLite by the writer thread, on its connection (another
/// connection's commit would empty the writer's page cache), from the events it keeps in
/// memory where it still has them; on PostgreSQL through the pool.
pub(crate) struct StatementIndexer {
    pub pool: AnyPool,
    pub dialect: Dialect,
    pub writer: Option<Arc<SqliteWriter>>,
    pub recent: Arc<RecentEvents>,
}

impl StatementIndexer {
    /// Indexes new statements every [`INTERVAL`] until `stop`'s sender is dropped (with the
    /// store).
    pub(crate) async fn follow(self: Arc<Self>, mut stop: mpsc::Receiver<()>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(INTERVAL) => {}
                _ = stop.recv() => return,
            }
            if let Err(err) = self.catch_up().await {
                // A closed store or a database that is down: the next round tries again, and
                // readers scan the unindexed tail meanwhile.
                tracing::debug!(%err, "cannot index recorded statements now");
            }
        }
    }

    /// Indexes batch after batch until one finds fewer events than it could take: every
    /// statement committed before it started is indexed. Returns how many events it read past.
    pub(crate) async fn catch_up(&self) -> Result<u64, StoreError> {
        let mut read = 0;
        loop {
            let batch = self.batch().await?;
            read += batch;
            if batch < BATCH {
                return Ok(read);
            }
        }
    }

    /// Indexes the statements among the next [`BATCH`] committed events after the cursor, in
    /// one transaction; returns how many events it read past.
    async fn batch(&self) -> Result<u64, StoreError> {
        if let Some(writer) = &self.writer {
            let recent = self.recent.clone();
            return writer
                .write(move |tx| ready(index_batch(tx, Dialect::Sqlite, Some(&recent))))
                .await;
        }
        // Only PostgreSQL has no writer thread.
        let mut tx = self.pool.begin().await?;
        let read = index_batch(&mut *tx, self.dialect, None).await?;
        tx.commit().await?;
        Ok(read)
    }
}

/// One batch of [`StatementIndexer::batch`], in the caller's transaction.
async fn index_batch<C: Exec + ?Sized>(
    conn: &mut C,
    dialect: Dialect,
    recent: Option<&RecentEvents>,
) -> Result<u64, StoreError> {
    // On PostgreSQL replicas sharing the store index one at a time.
    let lock = match dialect {
        Dialect::Sqlite => "",
        Dialect::Postgres => " FOR UPDATE",
    };
    let cursor = first(
        conn.int_row(
            &format!("SELECT after_seq FROM session_statements_cursor WHERE id = 1{lock}"),
            Vec::new(),
        )
        .await?,
    )?;
    // Every event below the head is committed: appends commit in sequence order (they hold the
    // ledger's row), so this never skips one that commits later.
    let head = first(
        conn.int_row("SELECT next_seq FROM ledger_head WHERE id = 1", Vec::new())
            .await?,
    )?;
    let upto = (head - 1).min(cursor.saturating_add(clamp_i64(BATCH)));
    if upto <= cursor {
        return Ok(0);
    }
    let read = u64::try_from(upto - cursor).map_err(|_| corrupt("negative ledger cursor"))?;
    let cached = recent
        .and_then(|recent| recent.after(u64::try_from(cursor).ok()?, usize::try_from(read).ok()?))
        .filter(|events| events.len() as u64 == read);
    let read_back: Vec<(String, i64)>;
    let entries: Vec<(&str, i64)> = match &cached {
        Some(events) => events
            .iter()
            .filter(|a| is_statement(&a.event.event.kind))
            .map(|a| (a.event.event.subject.as_str(), clamp_i64(a.event.seq)))
            .collect(),
        None => {
            read_back = conn
                .pairs(
                    &format!(
                        "SELECT subject, seq FROM events WHERE type IN {STATEMENT_TYPES} \
                         AND seq > {p1} AND seq <= {p2}",
                        p1 = dialect.placeholder(1),
                        p2 = dialect.placeholder(2),
                    ),
                    vec![Val::Int(cursor), Val::Int(upto)],
                )
                .await?;
            read_back
                .iter()
                .map(|(session, seq)| (session.as_str(), *seq))
                .collect()
        }
    };
    conn.insert_session_statements(dialect, entries).await?;
    conn.run(
        &format!(
            "UPDATE session_statements_cursor SET after_seq = {} WHERE id = 1",
            dialect.placeholder(1)
        ),
        vec![Val::Int(upto)],
    )
    .await?;
    Ok(read)
}

/// The first disagreement between `session_statements` and the statement events up to the
/// follower's cursor (see `Store::statement_index_drift`): each side is read by an index
/// that holds it whole, so this streams on both databases.
pub(crate) async fn drift(
    conn: &mut sqlx::AnyConnection,
) -> Result<Option<(String, String)>, StoreError> {
    use sqlx::Row;
    let missing = sqlx::query(&format!(
        "SELECT e.subject, e.seq FROM events e \
         WHERE e.type IN {STATEMENT_TYPES} \
           AND e.seq <= (SELECT after_seq FROM session_statements_cursor WHERE id = 1) \
           AND NOT EXISTS (SELECT 1 FROM session_statements s \
                           WHERE s.session = e.subject AND s.seq = e.seq) \
         ORDER BY e.seq LIMIT 1"
    ))
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = missing {
        let seq: i64 = row.try_get(1)?;
        return Ok(Some((
            row.try_get(0)?,
            format!("its statement event {seq} is missing from the index of statements by session"),
        )));
    }
    let invented = sqlx::query(&format!(
        "SELECT s.session, s.seq FROM session_statements s \
         WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.seq = s.seq \
                           AND e.subject = s.session AND e.type IN {STATEMENT_TYPES}) \
         ORDER BY s.seq LIMIT 1"
    ))
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match invented {
        Some(row) => {
            let seq: i64 = row.try_get(1)?;
            Some((
                row.try_get(0)?,
                format!(
                    "the index of statements by session lists event {seq}, which is not a statement of it"
                ),
            ))
        }
        None => None,
    })
}

/// Whether [`STATEMENT_TYPES`] lists the event type `name`.
pub(crate) fn is_statement_type(name: &str) -> bool {
    matches!(name, "session.statement" | "session.statement_outcome")
}

/// The kinds whose types [`STATEMENT_TYPES`] lists.
fn is_statement(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::SessionStatement { .. } | EventKind::SessionStatementOutcome { .. }
    )
}

fn first(row: Vec<i64>) -> Result<i64, StoreError> {
    row.first()
        .copied()
        .ok_or_else(|| corrupt("a one-value query returned no value"))
}

/// The sequence numbers of `subject`'s events after `after`, first `limit` of them, as a
/// subquery with `$1` the subject and `$2` `after`: the events `events_subject` holds, the
/// statements indexed here, and the statements after the cursor, which are not indexed yet.
pub(crate) fn subject_seqs(limit: u32) -> String {
    format!(
        "SELECT seq FROM (SELECT seq FROM events WHERE subject = $1 AND seq > $2 \
           AND type NOT IN {STATEMENT_TYPES} ORDER BY seq LIMIT {limit}) AS described \
         UNION ALL SELECT seq FROM (SELECT seq FROM session_statements WHERE session = $1 \
           AND seq > $2 ORDER BY seq LIMIT {limit}) AS indexed \
         UNION ALL SELECT seq FROM (SELECT seq FROM events WHERE type IN {STATEMENT_TYPES} \
           AND seq > (SELECT after_seq FROM session_statements_cursor WHERE id = 1) \
           AND subject = $1 AND seq > $2 ORDER BY seq LIMIT {limit}) AS unindexed"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_list_names_exactly_the_statement_kinds() {
        let statement = EventKind::SessionStatement {
            grant_id: "grt_1".into(),
            seq: 1,
            text: "select 1".into(),
            protocol: "simple".into(),
            class: "read".into(),
            objects: Vec::new(),
            outcome: "pending".into(),
            rows: None,
            detail: None,
            duration_us: 0,
        };
        let outcome = EventKind::SessionStatementOutcome {
            grant_id: "grt_1".into(),
            seq: 1,
            outcome: "rows".into(),
            rows: Some(1),
            detail: None,
            duration_us: 5,
        };
        let ended = EventKind::SessionEnded {
            grant_id: "grt_1".into(),
            reason: "client_closed".into(),
            detail: None,
            bytes_in: 0,
            bytes_out: 0,
            statements: 1,
            revocation_delay_ms: None,
        };
        let listed: Vec<&str> = STATEMENT_TYPES
            .trim_matches(|c| c == '(' || c == ')')
            .split(", ")
            .map(|t| t.trim_matches('\''))
            .collect();
        assert_eq!(listed, [statement.type_name(), outcome.type_name()]);
        assert!(is_statement(&statement) && is_statement(&outcome));
        assert!(!is_statement(&ended));
        assert!(!listed.contains(&ended.type_name()));
        assert!(listed.iter().all(|t| is_statement_type(t)));
        assert!(!is_statement_type(ended.type_name()));
    }
}
