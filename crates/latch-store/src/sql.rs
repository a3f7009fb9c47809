//! The SQL store. One implementation for SQLite and PostgreSQL over sqlx's `Any` driver: the
//! schema and queries use only what both accept (`BIGINT`, `TEXT`, `$n` parameters, `ON CONFLICT`,
//! `RETURNING`), so the two cannot drift apart.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use latch_core::catalog::Visibility;
use latch_core::lifecycle::{self, Approval, Grant};
use latch_core::time::Clock;
use latch_core::{
    AccessDuration, AccessRequest, Actor, Catalog, Command, Event, EventKind, GrantState, Refusal,
    RefusalKind, RequestState, StoredEvent, Timestamp, UnplacedEncoding,
};
use sqlx::AnyConnection;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Connection, Executor, Row};
use std::borrow::Cow;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::batch;
use crate::findings::{FindingFilter, FindingRow, NewFinding, finding_id, severity_rank};
use crate::migrations::{MIGRATIONS, statements};
use crate::outbox::{OutboxItem, OutboxRow};
use crate::recent::{Appended, RecentEvents};
use crate::sessions::{CredentialRecord, SessionFilter, SessionRow};
use crate::statement_index::STATEMENT_TYPES;
use crate::summaries::{BulkReads, SummaryPosition, SummaryRange, SummaryRecord};
use crate::writer::SqliteWriter;
use crate::writer::{Demand, Durability, Pending};
use crate::{
    Counts, Drift, Executed, LedgerEntry, RawEvent, RequestFilter, Store, StoreError,
    StoredCheckpoint, TokenRecord,
};
use latch_pgwire::scram::ScramSecret;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The `n`th (1-based) bind parameter of a statement whose parameters are bound in order.
    /// SQLite gets anonymous `?`: it looks a named (`$n`) parameter up by scanning all of
    /// them, which makes a statement of thousands of parameters quadratic.
    pub(crate) fn placeholder(self, n: usize) -> String {
        match self {
            Self::Sqlite => "?".to_owned(),
            Self::Postgres => format!("${n}"),
        }
    }
}

/// A store on SQLite or PostgreSQL.
pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
    /// SQLite has one writer at a time; queueing writers here instead of in SQLite's busy
    /// handler keeps latency fair under concurrency. PostgreSQL queues on the ledger row lock.
    write_queue: Arc<Mutex<()>>,
    /// Commands waiting for the group committer, which runs everything queued while the
    /// previous transaction was committing as one transaction: one fsync for many appends.
    jobs: mpsc::Sender<QueuedJob>,
    /// Gateway session events waiting for their own group committer.
    appends: mpsc::Sender<crate::sessions::AppendJob>,
    /// Where reports and the dashboard read around sqlx's `Any` layer (see `summaries`).
    bulk: BulkReads,
    /// The newest events the SQLite writer committed, for the ledger's followers.
    recent: Arc<RecentEvents>,
    /// On SQLite, how far the writer thread's commits are on disk: every read waits for what
    /// it may have seen ([`Self::settled`]).
    durability: Option<Arc<Durability>>,
    /// Commands queued for the committers, which the SQLite writer counts (see [`Demand`]).
    demand: Demand,
    /// Indexes recorded statements by session, off the append path.
    indexer: Arc<crate::statement_index::StatementIndexer>,
    /// Dropped with the store, which stops the indexer's follower.
    _stop_indexer: mpsc::Sender<()>,
}

/// Events [`RecentEvents`] keeps: a few seconds of the gateway's busiest recording, about
/// 1 KiB each.
const RECENT_EVENTS: usize = 16_384;

/// Leaf hashes [`RecentEvents`] keeps (32 bytes each, 8 MiB): more than the checkpointer's
/// interval of a second brings at 100,000 events a second, so it never reads them back.
const RECENT_LEAF_HASHES: usize = 262_144;

/// How every SQLite connection of the store is set up, the pool's and the writer thread's.
pub(crate) const SQLITE_PRAGMAS: [&str; 4] = [
    "PRAGMA journal_mode = WAL",
    // FULL: a write through the pool is acknowledged only once it is on disk. The writer
    // thread's connection then sets NORMAL and syncs the WAL itself (`writer`).
    "PRAGMA synchronous = FULL",
    "PRAGMA busy_timeout = 10000",
    // Checkpoints run in whichever connection commits past this many WAL pages, on the
    // writer's serial path. SQLite's default, 1,000 pages, copied the same few hot pages back
    // every few dozen group commits; 8,192 (32 MiB) copies each once per 8,192 and halves the
    // p99 of an append (docs/BENCHMARKS.md, `ledger append`).
    "PRAGMA wal_autocheckpoint = 8192",
];

/// A command waiting for group commit.
struct QueuedJob {
    id: String,
    command: Command,
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
    reply: oneshot::Sender<Result<Executed, StoreError>>,
}

/// The most commands one group commit takes.
const MAX_GROUP: usize = 512;

const REQUEST_COLUMNS: &str = "r.id, r.requester, r.resource, r.role, r.duration_secs, r.reason, \
     r.ticket, r.required_approvals, r.approver_groups, r.created_at_ms, r.pending_until_ms, r.state, r.decided_at_ms, \
     r.closed_by, r.deny_reason, r.escalation_level, r.escalated_to, r.once_only, g.id AS grant_id, g.state AS grant_state, g.starts_at_ms, \
     g.expires_at_ms, g.ended_at_ms, g.revoked_by, g.revoke_reason";

impl SqlStore {
    /// The credential whose `column` (a unique one: `id` or `secret_hash`) is `value`.
    async fn credential_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let sql = format!(
            "SELECT id, user_name, grant_id, created_at_ms, expires_at_ms FROM connect_credentials WHERE {column} = $1"
        );
        let row = sqlx::query(&sql)
            .bind(value)
            .fetch_optional(&mut *conn)
            .await?;
        row.as_ref()
            .map(crate::sessions::credential_from_row)
            .transpose()
    }

    /// Opens (creating if needed) the SQLite database at `path`, in WAL mode, and migrates it.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        Self::open_sqlite_with(path, OpenMode::Migrate).await
    }

    /// Opens the SQLite database at `path` as `mode` says.
    pub async fn open_sqlite_with(path: &Path, mode: OpenMode) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        if mode != OpenMode::Migrate && !path.exists() {
            return Err(StoreError::Schema(format!(
                "no store at `{}` (the first `latch serve` creates it)",
                path.display()
            )));
        }
        let url = format!(
            "sqlite://{}?mode={}",
            path.display(),
            match mode {
                OpenMode::Migrate => "rwc",
                OpenMode::Existing => "rw",
                OpenMode::ReadOnly => "ro",
            }
        );
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            // A ping is a round trip to the connection's worker thread on every query, and a
            // SQLite file opened in this process has no server to lose.
            .test_before_acquire(false)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if mode == OpenMode::ReadOnly {
                        // Neither the journal mode nor the checkpoints are this reader's to set.
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA query_only = 1").await?;
                    } else {
                        for pragma in SQLITE_PRAGMAS {
                            conn.execute(pragma).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|err| {
                StoreError::Unavailable(format!("cannot open `{}`: {err}", path.display()))
            })?;
        Self::migrated(
            pool,
            Dialect::Sqlite,
            BulkReads::SqliteFile(path.to_path_buf()),
            mode,
        )
        .await
    }

    /// Connects to PostgreSQL at `url` and migrates the database.
    pub async fn open_postgres(url: &str) -> Result<Self, StoreError> {
        Self::open_postgres_with(url, OpenMode::Migrate).await
    }

    /// Connects to PostgreSQL at `url`, opening the store there as `mode` says.
    pub async fn open_postgres_with(url: &str, mode: OpenMode) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let mut options = AnyPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10));
        // Connected when first used: only reports and the dashboard read through it.
        let mut native = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10));
        if mode == OpenMode::ReadOnly {
            options = options.after_connect(|conn, _| {
                Box::pin(async { conn.execute(PG_READ_ONLY).await.map(drop) })
            });
            native = native.after_connect(|conn, _| {
                Box::pin(async { conn.execute(PG_READ_ONLY).await.map(drop) })
            });
        }
        let pool = options
            .connect(url)
            .await
            .map_err(|err| StoreError::Unavailable(redact_url(&err.to_string(), url)))?;
        let native = native
            .connect_lazy(url)
            .map_err(|err| StoreError::Unavailable(redact_url(&err.to_string(), url)))?;
        Self::migrated(pool, Dialect::Postgres, BulkReads::Postgres(native), mode).await
    }

    /// On SQLite, claims the store for this process until the lock is dropped, or says that a
    /// `latch serve` already runs on it. `None` on PostgreSQL, which replicas share.
    pub fn claim(&self) -> Result<Option<ServerLock>, StoreError> {
        server_lock_path(&self.bulk)
            .map(|lock| ServerLock::take(&lock))
            .transpose()
    }

    /// The newest schema version applied to the store.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(applied_versions(&mut conn)
            .await?
            .into_iter()
            .max()
            .unwrap_or(0))
    }

    /// Indexes every recorded statement not yet indexed by session, as the store's follower
    /// does on its own every 250 ms (`statement_index`). Readers never need this: what is not
    /// indexed is read from the events themselves. Returns how many events it read past.
    pub async fn index_statements(&self) -> Result<u64, StoreError> {
        self.indexer.catch_up().await
    }

    /// Before a clean stop: on SQLite, copies the WAL into the database file and empties it, so
    /// that `latch.db` alone holds the whole store (a copy or backup of the one file is complete).
    /// Call once nothing writes any more. A no-op on PostgreSQL.
    pub async fn checkpoint_wal(&self) -> Result<(), StoreError> {
        if self.dialect != Dialect::Sqlite {
            return Ok(());
        }
        self.settled().await?;
        let mut conn = self.pool.acquire().await?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Closes every connection; later calls fail as if the database were down.
    pub async fn close(&self) {
        self.pool.close().await;
        if let BulkReads::Postgres(native) = &self.bulk {
            native.close().await;
        }
    }

    async fn migrated(
        pool: AnyPool,
        dialect: Dialect,
        bulk: BulkReads,
        mode: OpenMode,
    ) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel(4 * MAX_GROUP);
        let (appends, append_queue) = mpsc::channel(4096);
        let (stop_indexer, indexer_stopped) = mpsc::channel(1);
        let write_queue = Arc::new(Mutex::new(()));
        let recent = Arc::new(RecentEvents::new(RECENT_EVENTS, RECENT_LEAF_HASHES));
        match mode {
            OpenMode::Migrate => {
                migrate(&pool, dialect, server_lock_path(&bulk).as_deref()).await?;
            }
            OpenMode::Existing | OpenMode::ReadOnly => check_schema(&pool).await?,
        }
        // One writer thread for the committers and the indexer: they take the write turn anyway.
        // A read-only store has none: a write through the pool then fails, as it should.
        let writer = match &bulk {
            BulkReads::SqliteFile(_) if mode == OpenMode::ReadOnly => None,
            BulkReads::SqliteFile(path) => Some(Arc::new(SqliteWriter::start(
                path.clone(),
                write_queue.clone(),
                recent.clone(),
            ))),
            BulkReads::Postgres(_) => None,
        };
        let indexer = Arc::new(crate::statement_index::StatementIndexer {
            pool: pool.clone(),
            dialect,
            writer: writer.clone(),
            recent: recent.clone(),
        });
        let store = Self {
            pool,
            dialect,
            write_queue,
            jobs,
            appends,
            bulk,
            recent,
            durability: writer.as_ref().map(|writer| writer.durability()),
            demand: writer
                .as_ref()
                .map(|writer| writer.demand())
                .unwrap_or_default(),
            indexer,
            _stop_indexer: stop_indexer,
        };
        if mode == OpenMode::ReadOnly {
            drop(indexer_stopped);
        } else {
            tokio::spawn(store.indexer.clone().follow(indexer_stopped));
        }
        tokio::spawn(crate::sessions::append_commit(
            store.demand.clone(),
            store.pool.clone(),
            store.dialect,
            store.write_queue.clone(),
            append_queue,
            writer.clone(),
        ));
        tokio::spawn(group_commit(
            store.demand.clone(),
            store.pool.clone(),
            store.dialect,
            store.write_queue.clone(),
            queue,
            writer,
        ));
        Ok(store)
    }
}

/// A process's exclusive hold on a SQLite store: `latch serve` holds it while it runs, and an
/// upgrade takes it for its duration. Two servers on one SQLite file would each trust their own
/// memory of the newest events (the checkpointer signs from it), and an upgrade under a running
/// older server would leave it writing the old schema's statements. The operating system drops
/// the lock with its process, however that ends.
#[derive(Debug)]
pub struct ServerLock {
    _file: std::fs::File,
}

/// The lock file beside a SQLite store; none for PostgreSQL, which replicas share.
fn server_lock_path(bulk: &BulkReads) -> Option<std::path::PathBuf> {
    match bulk {
        BulkReads::SqliteFile(db) => {
            let mut name = db.as_os_str().to_owned();
            name.push(".lock");
            Some(std::path::PathBuf::from(name))
        }
        BulkReads::Postgres(_) => None,
    }
}

impl ServerLock {
    fn take(path: &Path) -> Result<Self, StoreError> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(path).map_err(|err| {
            StoreError::Unavailable(format!("cannot open `{}`: {err}", path.display()))
        })?;
        match file.try_lock() {
            Ok(()) => Ok(ServerLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Schema(format!(
                "a `latch serve` is running on this store (it holds `{}`): stop it first",
                path.display()
            ))),
            Err(std::fs::TryLockError::Error(err)) => Err(StoreError::Unavailable(format!(
                "cannot lock `{}`: {err}",
                path.display()
            ))),
        }
    }
}

/// Every transaction of a read-only store's PostgreSQL sessions refuses to write.
const PG_READ_ONLY: &str = "SET default_transaction_read_only = on";

/// How a store is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the store if there is none and apply the migrations it lacks: `latch serve`, and
    /// the commands that may come before it (`latch admin`).
    Migrate,
    /// The store must exist with this latch's schema; it is never upgraded (an upgrade may copy
    /// the whole ledger): reports, which may bring their projections up to date.
    Existing,
    /// As `Existing`, and nothing in the store is changed, not even a derived table: the
    /// offline verifier and exports, which must not touch the evidence they read.
    ReadOnly,
}

/// The schema this latch writes.
fn latest_version() -> i64 {
    MIGRATIONS.iter().map(|(v, _, _)| *v).max().unwrap_or(0)
}

/// A store that has migrations this latch does not know was written by a newer latch.
fn newer_than_known(applied: &[i64]) -> Option<StoreError> {
    let latest = latest_version();
    let newest = applied.iter().copied().max()?;
    (newest > latest).then(|| {
        StoreError::Schema(format!(
            "the store was written by a newer latch (schema version {newest}; this latch knows up \
             to {latest}): use that latch or a newer one"
        ))
    })
}

/// The migrations applied to the store (an error if it has no `schema_migrations`).
async fn applied_versions(conn: &mut AnyConnection) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| row.try_get::<i64, _>(0))
        .collect()
}

/// Whether this latch has migrations that `applied` lacks.
fn pending(applied: &[i64]) -> bool {
    MIGRATIONS.iter().any(|(v, _, _)| !applied.contains(v))
}

/// Checks, without changing anything, that the store has exactly this latch's schema.
async fn check_schema(pool: &AnyPool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    let applied = match applied_versions(&mut conn).await {
        Ok(applied) => applied,
        Err(sqlx::Error::Database(_)) => {
            return Err(StoreError::Schema(
                "no latch store here: it has no `schema_migrations` table (the first `latch \
                 serve` creates the store)"
                    .to_owned(),
            ));
        }
        Err(err) => return Err(err.into()),
    };
    if let Some(newer) = newer_than_known(&applied) {
        return Err(newer);
    }
    if !pending(&applied) {
        return Ok(());
    }
    let at = applied.iter().copied().max().unwrap_or(0);
    Err(StoreError::Schema(format!(
        "the store was written by an older latch (schema version {at}; this latch's is {}): this \
         command does not upgrade it. `latch admin migrate` (or the next `latch serve`) upgrades \
         it in place, with the older `latch serve` stopped; keep a copy first if it is evidence",
        latest_version()
    )))
}

/// Applies the migrations not applied yet, in one transaction.
///
/// Upgrading an existing SQLite store needs its server lock ([`SqlStore::claim`]): a running
/// `latch serve` of an older latch would go on writing with the old schema's statements.
async fn migrate(
    pool: &AnyPool,
    dialect: Dialect,
    sqlite_lock: Option<&Path>,
) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    if dialect == Dialect::Postgres {
        // Replicas starting together migrate one at a time.
        tx.execute("SELECT pg_advisory_xact_lock(7411730)").await?;
    }
    tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL)",
        )
        .await?;
    let applied = applied_versions(&mut tx).await?;
    if let Some(newer) = newer_than_known(&applied) {
        return Err(newer);
    }
    let fresh = applied.is_empty();
    let _claimed = match sqlite_lock {
        Some(lock) if pending(&applied) && !fresh => Some(ServerLock::take(lock)?),
        _ => None,
    };
    let mut upgraded = false;
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        upgraded = !fresh;
        // Upgrading an existing store, some copy a whole table (16 rewrites the ledger's: about
        // 12 s per million events measured): say so before, not only after. Creating one is
        // not news.
        if fresh {
            tracing::debug!(version, name, "applying migration");
        } else {
            tracing::info!(version, name, "applying migration");
        }
        for statement in statements(sql, dialect) {
            tx.execute(statement.as_str()).await?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)")
            .bind(*version)
            .bind(*name)
            .execute(&mut *tx)
            .await?;
        if fresh {
            tracing::debug!(version, name, "applied migration");
        } else {
            tracing::info!(version, name, "applied migration");
        }
    }
    tx.commit().await?;
    if upgraded && dialect == Dialect::Sqlite {
        // A migration is one transaction, so the WAL held all of it (16's copy of the ledger:
        // 590 MB for a million events), and SQLite reuses a WAL file without shrinking it.
        // Copied into the database and cut back now, that space is not held for good.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

impl SqlStore {
    /// Waits until whatever a read may have seen is on disk. On SQLite the writer thread's
    /// commits are visible to other connections a moment before the syncer has made them
    /// durable; a read that answered with one could tell a client of an event that a crash then
    /// undoes, or let the checkpointer sign it. PostgreSQL shows a commit only once it is durable.
    async fn settled(&self) -> Result<(), StoreError> {
        match &self.durability {
            Some(durability) => durability.settled().await,
            None => Ok(()),
        }
    }

    /// [`row_by_id`] through the pool, as a [`Self::read`].
    async fn read_row_by_id<T>(
        &self,
        table: &str,
        columns: &str,
        id: &str,
        from_row: fn(&AnyRow) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            row_by_id(&mut conn, table, columns, id, from_row).await
        })
        .await
    }

    /// `read`'s answer, once everything it may have seen is on disk ([`Self::settled`]).
    async fn read<T>(
        &self,
        read: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let value = read.await?;
        self.settled().await?;
        Ok(value)
    }

    /// Opens a write transaction holding the ledger's lock. Dropping it rolls back.
    async fn begin_write(&self) -> Result<WriteTx<'_>, StoreError> {
        let mut w = begin_write(&self.pool, self.dialect, &self.write_queue).await?;
        // On SQLite every ledger write is this process's, in the write turn, so the followers'
        // cache sees every event, whichever path wrote it.
        if let Some(durability) = &self.durability {
            w.ledger.keep_appended = true;
            w.followers = Some((self.recent.clone(), durability.clone()));
        }
        Ok(w)
    }

    /// The turn of a write that does not touch the ledger (the outbox): on SQLite it waits in
    /// the same queue as the ledger's writers instead of in SQLite's busy handler, whose
    /// sleeps would stall the notifier behind a burst of appends.
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.dialect {
            Dialect::Sqlite => Some(self.write_queue.lock().await),
            Dialect::Postgres => None,
        }
    }
}

pub(crate) async fn begin_write_tx<'a>(
    pool: &AnyPool,
    dialect: Dialect,
    write_queue: &'a Mutex<()>,
) -> Result<WriteTx<'a>, StoreError> {
    begin_write(pool, dialect, write_queue).await
}

async fn begin_write<'a>(
    pool: &AnyPool,
    dialect: Dialect,
    write_queue: &'a Mutex<()>,
) -> Result<WriteTx<'a>, StoreError> {
    let queued = match dialect {
        Dialect::Sqlite => Some(write_queue.lock().await),
        Dialect::Postgres => None,
    };
    let mut tx = pool.begin().await?;
    // Taking the ledger row first serialises writers and, on SQLite, makes this the one
    // write transaction before anything is read.
    let next_seq: i64 = sqlx::query(TAKE_LEDGER_HEAD)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    let ledger = Ledger {
        next_seq: u64::try_from(next_seq).map_err(|_| corrupt("negative ledger head"))?,
        dialect,
        keep_appended: false,
        appended: Vec::new(),
    };
    Ok(WriteTx {
        tx,
        ledger,
        followers: None,
        _queued: queued,
    })
}

/// Takes the ledger's row (serialising writers) and reads the next sequence number.
pub(crate) const TAKE_LEDGER_HEAD: &str =
    "UPDATE ledger_head SET next_seq = next_seq WHERE id = 1 RETURNING next_seq";

/// A write transaction with the ledger's lock held.
pub(crate) struct WriteTx<'a> {
    pub(crate) tx: sqlx::Transaction<'static, sqlx::Any>,
    pub(crate) ledger: Ledger,
    /// On SQLite: where the events go once committed, after the writer thread's commits before
    /// them are on disk (so that the followers see them in order).
    followers: Option<(Arc<RecentEvents>, Arc<Durability>)>,
    _queued: Option<tokio::sync::MutexGuard<'a, ()>>,
}

impl WriteTx<'_> {
    pub(crate) async fn append(
        &mut self,
        events: Vec<Event>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.ledger.append(&mut *self.tx, events).await
    }

    pub(crate) async fn commit(mut self) -> Result<(), StoreError> {
        sqlx::query("UPDATE ledger_head SET next_seq = $1 WHERE id = 1")
            .bind(to_i64(self.ledger.next_seq)?)
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await?;
        if let Some((recent, durability)) = &self.followers {
            // This connection synced its own commit, and with it the writer thread's before it;
            // the syncer hands those to the followers first. The write turn is still held.
            durability.settled().await?;
            recent.publish(std::mem::take(&mut self.ledger.appended));
        }
        Ok(())
    }
}

/// The ledger's head inside a write transaction: the next sequence number to hand out.
pub(crate) struct Ledger {
    pub(crate) next_seq: u64,
    pub(crate) dialect: Dialect,
    /// Whether to keep the events written for the ledger's followers.
    pub(crate) keep_appended: bool,
    /// The events written, if kept, to hand to the followers once committed.
    pub(crate) appended: Vec<Appended>,
}

impl Ledger {
    /// Gives `event` the next place in the ledger.
    pub(crate) fn assign(&mut self, event: Event) -> StoredEvent {
        let stored = StoredEvent {
            seq: self.next_seq,
            event,
        };
        self.next_seq += 1;
        stored
    }

    /// Appends `events` at the next places in the ledger.
    pub(crate) async fn append<C: batch::Exec + ?Sized>(
        &mut self,
        conn: &mut C,
        events: Vec<Event>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let stored: Vec<StoredEvent> = events.into_iter().map(|e| self.assign(e)).collect();
        self.write(conn, &stored).await?;
        Ok(stored)
    }

    /// [`Self::append`] for a caller that needs nothing back (the gateway's session events),
    /// each event encoded beforehand but for its place ([`Event::encode_unplaced`], off the
    /// serial path); each moves into its ledger entry rather than being copied for the
    /// followers.
    pub(crate) async fn append_unplaced<C: batch::Exec + ?Sized>(
        &mut self,
        conn: &mut C,
        events: Vec<(Event, UnplacedEncoding)>,
    ) -> Result<(), StoreError> {
        let encoded = events
            .into_iter()
            .map(|(event, unplaced)| {
                let stored = self.assign(event);
                let body = unplaced.at(stored.seq);
                (Cow::Owned(stored), body)
            })
            .collect();
        self.write_encoded(conn, encoded).await
    }

    /// Writes events already given their places: each row holds the event's canonical
    /// encoding (the leaf) and the leaf's hash.
    pub(crate) async fn write<C: batch::Exec + ?Sized>(
        &mut self,
        conn: &mut C,
        events: &[StoredEvent],
    ) -> Result<(), StoreError> {
        let encoded = events
            .iter()
            .map(|event| (Cow::Borrowed(event), event.canonical_json()))
            .collect();
        self.write_encoded(conn, encoded).await
    }

    /// [`Self::write`] of events with their canonical bodies: an event the ledger is given is
    /// kept for `recent` as it is, one it borrows is copied (only when they are kept).
    async fn write_encoded<C: batch::Exec + ?Sized>(
        &mut self,
        conn: &mut C,
        encoded: Vec<(Cow<'_, StoredEvent>, String)>,
    ) -> Result<(), StoreError> {
        let encoded: Vec<(Cow<'_, StoredEvent>, String, latch_ledger::Hash)> = encoded
            .into_iter()
            .map(|(event, body)| {
                let leaf_hash = latch_ledger::leaf_hash(body.as_bytes());
                (event, body, leaf_hash)
            })
            .collect();
        let rows = encoded
            .iter()
            .map(|(event, body, hash)| batch::EventRow::new(event, body, hash))
            .collect::<Result<Vec<_>, _>>()?;
        conn.insert_events(self.dialect, rows).await?;
        if self.keep_appended {
            self.appended.extend(
                encoded
                    .into_iter()
                    .map(|(event, body, leaf_hash)| Appended {
                        entry: Arc::new(LedgerEntry {
                            event: event.into_owned(),
                            body,
                        }),
                        leaf_hash,
                    }),
            );
        }
        Ok(())
    }
}

/// Runs queued commands in groups until every sender is gone. While one group commits, the
/// next accumulates, so under load each fsync carries many appends and when idle a command
/// waits for no one. On SQLite each group is run by the writer thread ([`SqliteWriter`]).
async fn group_commit(
    demand: Demand,
    pool: AnyPool,
    dialect: Dialect,
    write_queue: Arc<Mutex<()>>,
    mut queue: mpsc::Receiver<QueuedJob>,
    writer: Option<Arc<SqliteWriter>>,
) {
    let writer = writer.as_deref();
    let mut group = Vec::with_capacity(MAX_GROUP);
    while queue.recv_many(&mut group, MAX_GROUP).await > 0 {
        demand.taken(group.len());
        match run_either(&pool, dialect, &write_queue, writer, &group).await {
            Ok(pending) => {
                // Answered once on disk, by the thread that synced it, while the next group runs.
                let replies: Vec<_> = group.drain(..).map(|job| job.reply).collect();
                pending.answer_when_durable(move |results| match results {
                    Ok(results) => {
                        for (reply, result) in replies.into_iter().zip(results) {
                            let _ = reply.send(Ok(result));
                        }
                    }
                    Err(err) => {
                        for reply in replies {
                            let _ = reply.send(Err(StoreError::Unavailable(err.to_string())));
                        }
                    }
                });
            }
            // One bad command must not fail the others: run each alone to find it.
            Err(_) if group.len() > 1 => {
                for job in group.drain(..) {
                    let alone = std::slice::from_ref(&job);
                    let result = match run_either(&pool, dialect, &write_queue, writer, alone).await
                    {
                        Ok(pending) => pending.durable().await,
                        Err(err) => Err(err),
                    };
                    let result = result
                        .and_then(|mut results| results.pop().ok_or_else(|| corrupt("no result")));
                    let _ = job.reply.send(result);
                }
            }
            Err(err) => {
                for job in group.drain(..) {
                    let _ = job.reply.send(Err(StoreError::Database(err.to_string())));
                }
            }
        }
    }
}

/// A group run by the SQLite writer thread if there is one, through sqlx otherwise. Each
/// command is decided at the time it is run.
async fn run_either(
    pool: &AnyPool,
    dialect: Dialect,
    write_queue: &Mutex<()>,
    writer: Option<&SqliteWriter>,
    group: &[QueuedJob],
) -> Result<Pending<Vec<Executed>>, StoreError> {
    let Some(writer) = writer else {
        return run_group(pool, dialect, write_queue, group)
            .await
            .map(Pending::done);
    };
    /// A queued command, owned, for the writer thread.
    struct Work {
        id: String,
        command: Command,
        catalog: Arc<Catalog>,
        clock: Arc<dyn Clock>,
    }
    let work: Vec<Work> = group
        .iter()
        .map(|job| Work {
            id: job.id.clone(),
            command: job.command.clone(),
            catalog: job.catalog.clone(),
            clock: job.clock.clone(),
        })
        .collect();
    writer
        .transaction(move |tx, ledger| {
            let jobs: Vec<batch::Job<'_>> = work
                .iter()
                .map(|work| batch::Job {
                    id: &work.id,
                    command: &work.command,
                    catalog: &work.catalog,
                    now: work.clock.now(),
                })
                .collect();
            crate::writer::ready(batch::execute_jobs(tx, Dialect::Sqlite, ledger, &jobs))
        })
        .await
}

async fn run_group(
    pool: &AnyPool,
    dialect: Dialect,
    write_queue: &Mutex<()>,
    group: &[QueuedJob],
) -> Result<Vec<Executed>, StoreError> {
    let mut w = begin_write(pool, dialect, write_queue).await?;
    let jobs: Vec<batch::Job<'_>> = group
        .iter()
        .map(|job| batch::Job {
            id: &job.id,
            command: &job.command,
            catalog: &job.catalog,
            now: job.clock.now(),
        })
        .collect();
    let results = batch::execute_jobs(&mut *w.tx, dialect, &mut w.ledger, &jobs).await?;
    if results.iter().any(|r| matches!(r, Executed::Done { .. })) {
        w.commit().await?;
    }
    Ok(results)
}

/// Names the first field where a projected request differs from its replay.
pub fn describe_drift(projected: &AccessRequest, replayed: &AccessRequest) -> String {
    let grant_field = |r: &AccessRequest, f: fn(&Grant) -> String| {
        r.grant.as_ref().map_or_else(|| "none".to_owned(), f)
    };
    let fields: [(&str, String, String); 10] = [
        (
            "state",
            projected.state.to_string(),
            replayed.state.to_string(),
        ),
        (
            "requester",
            projected.requester.clone(),
            replayed.requester.clone(),
        ),
        (
            "resource",
            projected.resource.clone(),
            replayed.resource.clone(),
        ),
        ("role", projected.role.clone(), replayed.role.clone()),
        (
            "duration",
            projected.duration.to_string(),
            replayed.duration.to_string(),
        ),
        ("reason", projected.reason.clone(), replayed.reason.clone()),
        (
            "approvals",
            format!(
                "{:?}",
                projected
                    .approvals
                    .iter()
                    .map(|a| &a.approver)
                    .collect::<Vec<_>>()
            ),
            format!(
                "{:?}",
                replayed
                    .approvals
                    .iter()
                    .map(|a| &a.approver)
                    .collect::<Vec<_>>()
            ),
        ),
        (
            "grant.state",
            grant_field(projected, |g| g.state.as_str().to_owned()),
            grant_field(replayed, |g| g.state.as_str().to_owned()),
        ),
        (
            "grant.expires_at",
            grant_field(projected, |g| g.expires_at.to_string()),
            grant_field(replayed, |g| g.expires_at.to_string()),
        ),
        (
            "grant.starts_at",
            grant_field(projected, |g| g.starts_at.to_string()),
            grant_field(replayed, |g| g.starts_at.to_string()),
        ),
    ];
    fields.iter().find(|(_, p, r)| p != r).map_or_else(
        || "projection differs from the replay of its events".to_owned(),
        |(field, p, r)| {
            format!("`{field}` is `{p}` in the projection but `{r}` in the replay of its events")
        },
    )
}

fn parse_hash(hex: &str) -> Option<latch_ledger::Hash> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(latch_ledger::Hash::from_bytes(bytes))
}

/// Subtree roots are stored from this level up (a sixteenth of the tree's nodes); the levels
/// below are folded from their leaves when a proof needs them. Storing every level cost a row
/// written per event, as many as the ledger itself, for nodes of at most eight leaves.
const STORED_LEVEL: u32 = 4;

/// The leaves of `id` if it is below the stored levels (a leaf is itself).
fn leaves_under(id: latch_ledger::NodeId) -> Option<impl Iterator<Item = latch_ledger::NodeId>> {
    if id.level == 0 || id.level >= STORED_LEVEL {
        return None;
    }
    let first = id.index.checked_mul(1 << id.level)?;
    let end = first.checked_add(1 << id.level)?;
    Some((first..end).map(|index| latch_ledger::NodeId { level: 0, index }))
}

/// One BIGINT key per subtree: the level in the top bits, the index below (trees of up to
/// 2^56 leaves).
fn node_key(id: latch_ledger::NodeId) -> Result<i64, StoreError> {
    if id.level >= 64 || id.index >= 1 << 56 {
        return Err(StoreError::Database(format!(
            "tree node {id:?} is out of range"
        )));
    }
    to_i64((u64::from(id.level) << 56) | id.index)
}

fn node_id(key: i64) -> latch_ledger::NodeId {
    let key = key as u64;
    latch_ledger::NodeId {
        level: (key >> 56) as u32,
        index: key & ((1 << 56) - 1),
    }
}

/// `SELECT body FROM events WHERE type = $1 {rest}`, in a form that can use `events_type`,
/// which leaves out the statement types: those are read by sequence instead.
fn by_type(event_type: &str, rest: &str) -> String {
    if crate::statement_index::is_statement_type(event_type) {
        format!("SELECT body FROM events WHERE type = $1 {rest}")
    } else {
        format!("SELECT body FROM events WHERE type = $1 AND type NOT IN {STATEMENT_TYPES} {rest}")
    }
}

pub(crate) fn corrupt(message: impl Into<String>) -> StoreError {
    StoreError::Corrupt(message.into())
}

/// For read bounds: a position past any a store can hold means "after everything".
/// Inserts outbox messages after every one already queued (`position`), in the order given;
/// a message already there stays as it is.
async fn insert_outbox(
    conn: &mut AnyConnection,
    dialect: Dialect,
    items: &[OutboxItem],
    now: Timestamp,
) -> Result<(), StoreError> {
    if items.is_empty() {
        return Ok(());
    }
    let last: i64 = sqlx::query("SELECT COALESCE(MAX(position), 0) FROM outbox")
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    let rows = items
        .iter()
        .zip(1i64..)
        .map(|(item, offset)| {
            vec![
                batch::Val::Text(crate::outbox::outbox_id(item)),
                batch::Val::Text(item.notice_id.clone()),
                batch::Val::Text(item.channel.clone()),
                batch::Val::Text(item.payload.clone()),
                batch::Val::Int(now.as_millis()),
                batch::Val::Int(now.as_millis()),
                batch::Val::Text(if item.held { "held" } else { "pending" }.to_owned()),
                batch::Val::Int(last.saturating_add(offset)),
            ]
        })
        .collect();
    batch::insert_rows(
        conn,
        dialect,
        "outbox",
        &[
            "id",
            "notice_id",
            "channel",
            "payload",
            "created_at_ms",
            "next_attempt_ms",
            "status",
            "position",
        ],
        "ON CONFLICT (id) DO NOTHING",
        rows,
    )
    .await
}

pub(crate) fn clamp_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Database(format!("{value} is out of range")))
}

fn redact_url(message: &str, url: &str) -> String {
    // A URL may carry a password: never echo it.
    let shown = match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    };
    format!(
        "cannot connect to `{shown}`: {}",
        message.replace(url, &shown)
    )
}

fn opt_ms(row: &AnyRow, column: &str) -> Result<Option<Timestamp>, StoreError> {
    Ok(row
        .try_get::<Option<i64>, _>(column)?
        .map(Timestamp::from_millis))
}

fn request_from_row(row: &AnyRow) -> Result<AccessRequest, StoreError> {
    let id: String = row.try_get("id")?;
    let bad = |what: &str| corrupt(format!("request `{id}` has an invalid {what}"));
    let state: String = row.try_get("state")?;
    let duration_secs: i64 = row.try_get("duration_secs")?;
    let grant = match row.try_get::<Option<String>, _>("grant_id")? {
        None => None,
        Some(grant_id) => {
            let grant_state: String = row.try_get("grant_state")?;
            Some(Grant {
                id: grant_id,
                starts_at: Timestamp::from_millis(row.try_get("starts_at_ms")?),
                expires_at: Timestamp::from_millis(row.try_get("expires_at_ms")?),
                state: GrantState::parse(&grant_state).ok_or_else(|| bad("grant state"))?,
                ended_at: opt_ms(row, "ended_at_ms")?,
                revoked_by: row.try_get("revoked_by")?,
                revoke_reason: row.try_get("revoke_reason")?,
            })
        }
    };
    Ok(AccessRequest {
        requester: row.try_get("requester")?,
        resource: row.try_get("resource")?,
        role: row.try_get("role")?,
        duration: u64::try_from(duration_secs)
            .ok()
            .and_then(AccessDuration::from_secs)
            .ok_or_else(|| bad("duration"))?,
        reason: row.try_get("reason")?,
        ticket: row.try_get("ticket")?,
        required_approvals: u32::try_from(row.try_get::<i64, _>("required_approvals")?)
            .map_err(|_| bad("approval count"))?,
        approver_groups: row
            .try_get::<String, _>("approver_groups")?
            .split(',')
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect(),
        created_at: Timestamp::from_millis(row.try_get("created_at_ms")?),
        pending_until: opt_ms(row, "pending_until_ms")?,
        approvals: Vec::new(),
        state: RequestState::parse(&state).ok_or_else(|| bad("state"))?,
        decided_at: opt_ms(row, "decided_at_ms")?,
        closed_by: row.try_get("closed_by")?,
        deny_reason: row.try_get("deny_reason")?,
        grant,
        once: row.try_get::<i64, _>("once_only")? != 0,
        escalation_level: u32::try_from(row.try_get::<i64, _>("escalation_level")?)
            .map_err(|_| bad("escalation level"))?,
        escalated_to: row
            .try_get::<String, _>("escalated_to")?
            .split(',')
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect(),
        id,
    })
}

/// The row of `table` whose `id` is `id`, read by `from_row`, if there is one.
async fn row_by_id<T>(
    conn: &mut AnyConnection,
    table: &str,
    columns: &str,
    id: &str,
    from_row: fn(&AnyRow) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    sqlx::query(&format!("SELECT {columns} FROM {table} WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Builds SQL with `$n` placeholders and their values, for the filters that vary.
#[derive(Default)]
struct Params {
    values: Vec<String>,
}

impl Params {
    /// `sql` with every value bound, in order.
    fn query<'q>(&'q self, sql: &'q str) -> batch::AnyQuery<'q> {
        self.values
            .iter()
            .fold(sqlx::query(sql), |query, value| query.bind(value.as_str()))
    }

    /// The rows of `sql`, with every value bound, read by `from_row`.
    async fn rows<T>(
        &self,
        conn: &mut AnyConnection,
        sql: &str,
        from_row: fn(&AnyRow) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.query(sql)
            .fetch_all(conn)
            .await?
            .iter()
            .map(from_row)
            .collect()
    }

    fn push(&mut self, value: impl Into<String>) -> String {
        self.values.push(value.into());
        format!("${}", self.values.len())
    }

    fn list<'a>(&mut self, values: impl IntoIterator<Item = &'a String>) -> String {
        let placeholders: Vec<String> = values.into_iter().map(|v| self.push(v.clone())).collect();
        placeholders.join(", ")
    }

    /// ` AND (...)` limiting rows to what `visibility` allows: those by one of its requesters
    /// (in `person_column`) or on one of its resources; nothing when it allows neither.
    fn visibility(
        &mut self,
        visibility: &Visibility,
        person_column: &str,
        resource_column: &str,
    ) -> String {
        let Visibility::Some {
            requesters,
            resources,
        } = visibility
        else {
            return String::new();
        };
        let mut any = Vec::new();
        if !requesters.is_empty() {
            any.push(format!("{person_column} IN ({})", self.list(requesters)));
        }
        if !resources.is_empty() {
            any.push(format!("{resource_column} IN ({})", self.list(resources)));
        }
        if any.is_empty() {
            " AND 1 = 0".to_owned()
        } else {
            format!(" AND ({})", any.join(" OR "))
        }
    }
}

async fn load_requests(
    conn: &mut AnyConnection,
    filter: &RequestFilter,
    limit: Option<u32>,
) -> Result<Vec<AccessRequest>, StoreError> {
    let mut params = Params::default();
    let mut sql = format!(
        "SELECT {REQUEST_COLUMNS} FROM requests r LEFT JOIN grants g ON g.request_id = r.id WHERE 1 = 1"
    );
    if !filter.states.is_empty() {
        let states: Vec<String> = filter
            .states
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect();
        sql.push_str(&format!(" AND r.state IN ({})", params.list(&states)));
    }
    if let Some(requester) = &filter.requester {
        sql.push_str(&format!(
            " AND r.requester = {}",
            params.push(requester.clone())
        ));
    }
    if filter.with_grant {
        sql.push_str(" AND g.id IS NOT NULL");
    }
    sql.push_str(&params.visibility(&filter.visibility, "r.requester", "r.resource"));
    sql.push_str(" ORDER BY r.created_at_ms DESC, r.id DESC");
    if let Some(limit) = limit {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    let mut requests = params.rows(&mut *conn, &sql, request_from_row).await?;
    attach_approvals(conn, &mut requests).await?;
    Ok(requests)
}

async fn attach_approvals(
    conn: &mut AnyConnection,
    requests: &mut [AccessRequest],
) -> Result<(), StoreError> {
    // In chunks: both databases cap the number of parameters in one statement.
    for chunk in requests.chunks_mut(500) {
        let mut params = Params::default();
        let ids: Vec<String> = chunk.iter().map(|r| r.id.clone()).collect();
        let sql = format!(
            "SELECT request_id, approver, comment, at_ms FROM approvals WHERE request_id IN ({}) ORDER BY request_id, seq",
            params.list(&ids)
        );
        let query = params.query(&sql);
        for row in query.fetch_all(&mut *conn).await? {
            let request_id: String = row.try_get(0)?;
            if let Some(request) = chunk.iter_mut().find(|r| r.id == request_id) {
                request.approvals.push(Approval {
                    approver: row.try_get(1)?,
                    comment: row.try_get(2)?,
                    at: Timestamp::from_millis(row.try_get(3)?),
                });
            }
        }
    }
    Ok(())
}

fn token_from_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        id: row.try_get("id")?,
        user: row.try_get("user_name")?,
        label: row.try_get("label")?,
        created_at: Timestamp::from_millis(row.try_get("created_at_ms")?),
        revoked_at: opt_ms(row, "revoked_at_ms")?,
    })
}

const TOKEN_COLUMNS: &str = "id, user_name, label, created_at_ms, revoked_at_ms";

#[async_trait]
impl Store for SqlStore {
    async fn execute(
        &self,
        id: &str,
        command: &Command,
        catalog: Arc<Catalog>,
        clock: Arc<dyn Clock>,
    ) -> Result<Executed, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = QueuedJob {
            id: id.to_owned(),
            command: command.clone(),
            catalog,
            clock,
            reply,
        };
        self.demand.add(1);
        if self.jobs.send(job).await.is_err() {
            self.demand.taken(1);
            return Err(StoreError::Unavailable("the store is shutting down".into()));
        }
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the store is shutting down".into()))?
    }

    async fn execute_batch(
        &self,
        work: &[(String, Command)],
        catalog: &Catalog,
        clock: &dyn Clock,
    ) -> Result<Vec<Executed>, StoreError> {
        let mut w = self.begin_write().await?;
        let now = clock.now();
        let jobs: Vec<batch::Job<'_>> = work
            .iter()
            .map(|(id, command)| batch::Job {
                id,
                command,
                catalog,
                now,
            })
            .collect();
        let results = batch::execute_jobs(&mut *w.tx, self.dialect, &mut w.ledger, &jobs).await?;
        w.commit().await?;
        Ok(results)
    }

    async fn record(&self, events: Vec<Event>) -> Result<Vec<StoredEvent>, StoreError> {
        let mut w = self.begin_write().await?;
        let stored = w.append(events).await?;
        w.commit().await?;
        Ok(stored)
    }

    async fn record_once(&self, event: Event) -> Result<Option<StoredEvent>, StoreError> {
        let mut w = self.begin_write().await?;
        let present = sqlx::query(&format!(
            "SELECT 1 FROM events WHERE type = $1 AND subject = $2 AND type NOT IN {STATEMENT_TYPES} LIMIT 1"
        ))
            .bind(event.kind.type_name())
            .bind(event.subject.as_str())
            .fetch_optional(&mut *w.tx)
            .await?
            .is_some();
        if present {
            // Dropping the transaction rolls it back: nothing was written.
            return Ok(None);
        }
        let stored = w.append(vec![event]).await?.pop();
        w.commit().await?;
        Ok(stored)
    }

    async fn append_session_events(&self, events: Vec<Event>) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        // Encoded here, on the caller's task: only the places are given on the serial path.
        let events = events
            .into_iter()
            .map(|event| {
                let unplaced = event.encode_unplaced();
                (event, unplaced)
            })
            .collect();
        let (reply, answer) = oneshot::channel();
        self.demand.add(1);
        let job = crate::sessions::AppendJob { events, reply };
        if self.appends.send(job).await.is_err() {
            self.demand.taken(1);
            return Err(StoreError::Unavailable("the store is shutting down".into()));
        }
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the store is shutting down".into()))?
    }

    async fn sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionRow>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            let mut params = Params::default();
            let mut sql = format!(
                "SELECT {} FROM sessions WHERE 1 = 1",
                crate::sessions::SESSION_COLUMNS
            );
            if filter.active_only {
                sql.push_str(" AND ended_at_ms IS NULL");
            }
            if let Some(grant) = &filter.grant_id {
                sql.push_str(&format!(" AND grant_id = {}", params.push(grant.clone())));
            }
            sql.push_str(&params.visibility(&filter.visibility, "user_name", "resource"));
            sql.push_str(&format!(
                " ORDER BY started_at_ms DESC, id DESC LIMIT {}",
                filter.limit
            ));
            params
                .rows(&mut conn, &sql, crate::sessions::session_from_row)
                .await
        })
        .await
    }

    async fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        self.read_row_by_id(
            "sessions",
            crate::sessions::SESSION_COLUMNS,
            id,
            crate::sessions::session_from_row,
        )
        .await
    }

    async fn subject_events(
        &self,
        subject: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<(StoredEvent, String)>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            let rows = sqlx::query(&format!(
                "SELECT seq, body FROM events WHERE seq IN ({}) ORDER BY seq LIMIT {limit}",
                crate::statement_index::subject_seqs(limit)
            ))
            .bind(subject)
            .bind(clamp_i64(after))
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|row| {
                    let body: String = row.try_get("body")?;
                    let event = StoredEvent::decode(&body)
                        .map_err(|err| corrupt(format!("event of `{subject}`: {err}")))?;
                    Ok((event, body))
                })
                .collect()
        })
        .await
    }

    async fn create_credential(
        &self,
        credential: &CredentialRecord,
        secret_hash: &str,
        scram: &ScramSecret,
        clock: &dyn Clock,
    ) -> Result<StoredEvent, StoreError> {
        let mut w = self.begin_write().await?;
        let now = clock.now();
        sqlx::query(
            "INSERT INTO connect_credentials (id, secret_hash, user_name, grant_id, created_at_ms, expires_at_ms, \
             scram_salt, scram_iterations, scram_stored_key, scram_server_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&credential.id)
        .bind(secret_hash)
        .bind(&credential.user)
        .bind(&credential.grant_id)
        .bind(credential.created_at.as_millis())
        .bind(credential.expires_at.as_millis())
        .bind(hex::encode(&scram.salt))
        .bind(i64::from(scram.iterations))
        .bind(hex::encode(scram.stored_key))
        .bind(hex::encode(scram.server_key))
        .execute(&mut *w.tx)
        .await?;
        let event = Event {
            at: now,
            actor: Actor::user(credential.user.clone()),
            subject: credential.grant_id.clone(),
            kind: EventKind::CredentialIssued {
                credential_id: credential.id.clone(),
                user: credential.user.clone(),
                expires_at: credential.expires_at,
            },
        };
        let mut stored = w.append(vec![event]).await?;
        w.commit().await?;
        stored.pop().ok_or_else(|| corrupt("no credential event"))
    }

    async fn open_findings(
        &self,
        findings: Vec<NewFinding>,
    ) -> Result<Vec<FindingRow>, StoreError> {
        use std::collections::BTreeSet;
        if findings.is_empty() {
            return Ok(Vec::new());
        }
        let mut w = self.begin_write().await?;
        let mut known: BTreeSet<String> = BTreeSet::new();
        let keys: Vec<&String> = findings.iter().map(|f| &f.key).collect();
        for chunk in keys.chunks(500) {
            let mut params = Params::default();
            let list = params.list(chunk.iter().copied());
            let sql = format!("SELECT finding_key FROM findings WHERE finding_key IN ({list})");
            let query = params.query(&sql);
            for row in query.fetch_all(&mut *w.tx).await? {
                known.insert(row.try_get(0)?);
            }
        }
        let fresh: Vec<NewFinding> = findings
            .into_iter()
            .filter(|f| known.insert(f.key.clone()))
            .collect();
        if fresh.is_empty() {
            return Ok(Vec::new());
        }
        let events = fresh.iter().map(crate::findings::opened_event).collect();
        let stored = w.append(events).await?;
        let rows = fresh
            .iter()
            .zip(&stored)
            .map(|(f, e)| crate::findings::row_values(f, e))
            .collect();
        batch::insert_rows(
            &mut *w.tx,
            self.dialect,
            "findings",
            &crate::findings::ROW_COLUMNS,
            "",
            rows,
        )
        .await?;
        w.commit().await?;
        Ok(fresh
            .iter()
            .zip(&stored)
            .map(|(f, e)| FindingRow {
                id: finding_id(&f.key),
                key: f.key.clone(),
                checkpoint: f.checkpoint.clone(),
                severity: f.severity.clone(),
                about: f.about.clone(),
                summary: f.summary.clone(),
                evidence: f.evidence.clone(),
                first_seen: f.at,
                opened_seq: e.seq,
                status: "open".to_owned(),
                status_by: None,
                status_comment: None,
                status_at: None,
            })
            .collect())
    }

    async fn findings(&self, filter: &FindingFilter) -> Result<Vec<FindingRow>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            let mut params = Params::default();
            let mut sql = format!(
                "SELECT {} FROM findings WHERE 1 = 1",
                crate::findings::FINDING_COLUMNS
            );
            if filter.open_only {
                sql.push_str(" AND status <> 'resolved'");
            }
            if let Some(rank) = filter.min_severity.as_deref().and_then(severity_rank) {
                sql.push_str(&format!(" AND severity_rank >= {rank}"));
            }
            if let Some(checkpoint) = &filter.checkpoint {
                sql.push_str(&format!(
                    " AND checkpoint = {}",
                    params.push(checkpoint.clone())
                ));
            }
            sql.push_str(&format!(
                " ORDER BY first_seen_ms DESC, id DESC LIMIT {}",
                filter.limit
            ));
            params
                .rows(&mut conn, &sql, crate::findings::finding_from_row)
                .await
        })
        .await
    }

    async fn finding(&self, id: &str) -> Result<Option<FindingRow>, StoreError> {
        self.read_row_by_id(
            "findings",
            crate::findings::FINDING_COLUMNS,
            id,
            crate::findings::finding_from_row,
        )
        .await
    }

    async fn set_finding_status(
        &self,
        id: &str,
        status: &str,
        by: &str,
        comment: &str,
        clock: &dyn Clock,
    ) -> Result<Result<FindingRow, Refusal>, StoreError> {
        let mut w = self.begin_write().await?;
        let Some(mut finding) = row_by_id(
            &mut w.tx,
            "findings",
            crate::findings::FINDING_COLUMNS,
            id,
            crate::findings::finding_from_row,
        )
        .await?
        else {
            return Ok(Err(Refusal {
                kind: RefusalKind::NotFound,
                message: format!("no finding `{id}`"),
            }));
        };
        if finding.status == "resolved" {
            return Ok(Err(Refusal {
                kind: RefusalKind::Conflict,
                message: format!(
                    "finding `{id}` was already resolved by `{}`",
                    finding.status_by.as_deref().unwrap_or("?")
                ),
            }));
        }
        let now = clock.now();
        sqlx::query(
            "UPDATE findings SET status = $1, status_by = $2, status_comment = $3, status_at_ms = $4 WHERE id = $5",
        )
        .bind(status)
        .bind(by)
        .bind(comment)
        .bind(now.as_millis())
        .bind(id)
        .execute(&mut *w.tx)
        .await?;
        w.append(vec![Event {
            at: now,
            actor: Actor::user(by.to_owned()),
            subject: id.to_owned(),
            kind: EventKind::FindingStatusChanged {
                status: status.to_owned(),
                comment: comment.to_owned(),
            },
        }])
        .await?;
        w.commit().await?;
        finding.status = status.to_owned();
        finding.status_by = Some(by.to_owned());
        finding.status_comment = Some(comment.to_owned());
        finding.status_at = Some(now);
        Ok(Ok(finding))
    }

    async fn notify_cursor(&self) -> Result<Option<u64>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            let row = sqlx::query("SELECT after_seq FROM notify_cursor WHERE id = 1")
                .fetch_optional(&mut *conn)
                .await?;
            Ok(row
                .map(|row| row.try_get::<i64, _>(0))
                .transpose()?
                .map(|seq| u64::try_from(seq).unwrap_or(0)))
        })
        .await
    }

    async fn enqueue_notifications(
        &self,
        items: Vec<OutboxItem>,
        after_seq: u64,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        insert_outbox(&mut tx, self.dialect, &items, now).await?;
        sqlx::query(
            "INSERT INTO notify_cursor (id, after_seq) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET after_seq = excluded.after_seq",
        )
        .bind(clamp_i64(after_seq))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn due_notifications(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            // INVARIANT: a message never overtakes an earlier pending one of its channel.
            sqlx::query(&format!(
                "SELECT {} FROM outbox o WHERE status = 'pending' AND next_attempt_ms <= $1 \
                 AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.channel = o.channel \
                   AND e.status = 'pending' AND e.next_attempt_ms > $1 \
                   AND (e.position < o.position OR (e.position = o.position AND e.id < o.id))) \
                 ORDER BY position, id LIMIT {limit}",
                crate::outbox::OUTBOX_COLUMNS
            ))
            .bind(now.as_millis())
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(crate::outbox::outbox_from_row)
            .collect()
        })
        .await
    }

    async fn notification_attempted(
        &self,
        id: &str,
        now: Timestamp,
        outcome: Result<(), (String, Option<Timestamp>)>,
    ) -> Result<(), StoreError> {
        self.notifications_attempted(vec![(id.to_owned(), outcome)], now)
            .await
    }

    async fn notifications(&self, status: &str, limit: u32) -> Result<Vec<OutboxRow>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            sqlx::query(&format!(
                "SELECT {} FROM outbox WHERE status = $1 ORDER BY created_at_ms DESC, id DESC LIMIT {limit}",
                crate::outbox::OUTBOX_COLUMNS
            ))
            .bind(status)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(crate::outbox::outbox_from_row)
            .collect()
        })
        .await
    }

    async fn notifications_attempted(
        &self,
        outcomes: Vec<(String, Result<(), (String, Option<Timestamp>)>)>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let _turn = self.write_turn().await;
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        for (id, outcome) in outcomes {
            match outcome {
                Ok(()) => {
                    sqlx::query(
                        "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at_ms = $1, last_error = NULL WHERE id = $2",
                    )
                    .bind(now.as_millis())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                Err((error, next)) => {
                    sqlx::query(
                        "UPDATE outbox SET status = $1, attempts = attempts + 1, next_attempt_ms = $2, last_error = $3 WHERE id = $4",
                    )
                    .bind(if next.is_some() { "pending" } else { "dead" })
                    .bind(next.unwrap_or(now).as_millis())
                    .bind(error)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn held_notifications(&self) -> Result<Vec<OutboxRow>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            sqlx::query(&format!(
                "SELECT {} FROM outbox WHERE status = 'held' ORDER BY position, id",
                crate::outbox::OUTBOX_COLUMNS
            ))
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(crate::outbox::outbox_from_row)
            .collect()
        })
        .await
    }

    async fn digest_notifications(
        &self,
        held: &[String],
        digest: OutboxItem,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        for id in held {
            sqlx::query("UPDATE outbox SET status = 'digested' WHERE id = $1 AND status = 'held'")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        insert_outbox(&mut tx, self.dialect, std::slice::from_ref(&digest), now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_slack_response(
        &self,
        request_id: &str,
        response_url: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut conn = self.pool.acquire().await?;
        sqlx::query(
            "INSERT INTO slack_responses (request_id, response_url, created_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (request_id, response_url) DO NOTHING",
        )
        .bind(request_id)
        .bind(response_url)
        .bind(now.as_millis())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn slack_responses(
        &self,
        request_id: &str,
        since: Timestamp,
    ) -> Result<Vec<String>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            let rows = sqlx::query(
                "SELECT response_url FROM slack_responses WHERE request_id = $1 AND created_at_ms >= $2 \
                 ORDER BY created_at_ms, response_url",
            )
            .bind(request_id)
            .bind(since.as_millis())
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|row| row.try_get::<String, _>(0).map_err(StoreError::from))
                .collect()
        })
        .await
    }

    async fn record_slack_message(
        &self,
        request_id: &str,
        channel: &str,
        slack_channel: &str,
        ts: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut conn = self.pool.acquire().await?;
        sqlx::query(
            "INSERT INTO slack_messages (request_id, channel, slack_channel, ts, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (slack_channel, ts) DO NOTHING",
        )
        .bind(request_id)
        .bind(channel)
        .bind(slack_channel)
        .bind(ts)
        .bind(now.as_millis())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn slack_messages(
        &self,
        request_id: &str,
        channel: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            let rows = sqlx::query(
                "SELECT slack_channel, ts FROM slack_messages WHERE request_id = $1 AND channel = $2 \
                 ORDER BY created_at_ms, ts",
            )
            .bind(request_id)
            .bind(channel)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|row| Ok((row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?)))
                .collect()
        })
        .await
    }

    async fn retry_notification(&self, id: &str, now: Timestamp) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut conn = self.pool.acquire().await?;
        let done = sqlx::query(
            "UPDATE outbox SET status = 'pending', next_attempt_ms = $1 WHERE id = $2 AND status = 'dead'",
        )
        .bind(now.as_millis())
        .bind(id)
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn credential_by_hash(
        &self,
        secret_hash: &str,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        self.read(self.credential_where("secret_hash", secret_hash))
            .await
    }

    async fn credential(&self, id: &str) -> Result<Option<CredentialRecord>, StoreError> {
        self.read(self.credential_where("id", id)).await
    }

    async fn purge_credentials(
        &self,
        expired_before: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        let mut conn = self.pool.acquire().await?;
        let done = sqlx::query(&format!(
            "DELETE FROM connect_credentials WHERE id IN \
             (SELECT id FROM connect_credentials WHERE expires_at_ms < $1 LIMIT {limit})"
        ))
        .bind(expired_before.as_millis())
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected())
    }

    async fn scram_credentials(
        &self,
        user: &str,
        resource: &str,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<(CredentialRecord, ScramSecret)>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            let rows = sqlx::query(
                "SELECT c.id, c.user_name, c.grant_id, c.created_at_ms, c.expires_at_ms, \
                 c.scram_salt, c.scram_iterations, c.scram_stored_key, c.scram_server_key \
                 FROM connect_credentials c \
                 JOIN grants g ON g.id = c.grant_id \
                 JOIN requests r ON r.id = g.request_id \
                 WHERE c.user_name = $1 AND c.expires_at_ms > $2 AND c.scram_stored_key IS NOT NULL \
                 AND r.resource = $3 \
                 ORDER BY c.created_at_ms DESC, c.id DESC LIMIT $4",
            )
            .bind(user)
            .bind(now.as_millis())
            .bind(resource)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok((
                        crate::sessions::credential_from_row(row)?,
                        crate::sessions::scram_from_row(row)?,
                    ))
                })
                .collect()
        })
        .await
    }

    async fn request(&self, id: &str) -> Result<Option<AccessRequest>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            let sql = format!(
                "SELECT {REQUEST_COLUMNS} FROM requests r LEFT JOIN grants g ON g.request_id = r.id WHERE r.id = $1"
            );
            let Some(row) = sqlx::query(&sql)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
            else {
                return Ok(None);
            };
            let mut requests = vec![request_from_row(&row)?];
            attach_approvals(&mut conn, &mut requests).await?;
            Ok(requests.pop())
        })
        .await
    }

    async fn requests(&self, filter: &RequestFilter) -> Result<Vec<AccessRequest>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            load_requests(&mut conn, filter, Some(filter.limit)).await
        })
        .await
    }

    async fn due(
        &self,
        now: Timestamp,
        limit: u32,
        escalate_after: Option<AccessDuration>,
    ) -> Result<Vec<(String, Command)>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            let mut due = Vec::new();
            let expiring = sqlx::query(&format!(
                "SELECT request_id FROM grants WHERE state = 'active' AND expires_at_ms <= $1 ORDER BY expires_at_ms LIMIT {limit}"
            ))
            .bind(now.as_millis())
            .fetch_all(&mut *conn)
            .await?;
            for row in expiring {
                due.push((row.try_get::<String, _>(0)?, Command::Expire));
            }
            let timing_out = sqlx::query(&format!(
                "SELECT id FROM requests WHERE state = 'pending' AND pending_until_ms <= $1 ORDER BY pending_until_ms LIMIT {limit}"
            ))
            .bind(now.as_millis())
            .fetch_all(&mut *conn)
            .await?;
            for row in timing_out {
                due.push((row.try_get::<String, _>(0)?, Command::TimeOut));
            }
            if let Some(after) = escalate_after {
                let escalating = sqlx::query(&format!(
                    "SELECT id FROM requests WHERE state = 'pending' AND escalation_level < {max} \
                     AND created_at_ms + $1 * (escalation_level + 1) <= $2 ORDER BY created_at_ms LIMIT {limit}",
                    max = latch_core::lifecycle::MAX_ESCALATIONS,
                ))
                .bind(to_i64(after.as_secs())?.saturating_mul(1000))
                .bind(now.as_millis())
                .fetch_all(&mut *conn)
                .await?;
                for row in escalating {
                    due.push((row.try_get::<String, _>(0)?, Command::Escalate));
                }
            }
            Ok(due)
        })
        .await
    }

    async fn events(&self, after: u64, limit: u32) -> Result<Vec<Arc<LedgerEntry>>, StoreError> {
        let from_cache = || {
            self.recent
                .after(after, usize::try_from(limit).unwrap_or(0))
        };
        if let Some(recent) = from_cache() {
            return Ok(recent);
        }
        // A follower caught up with the cache while the writer's newest commits are being
        // synced: they reach the cache once on disk, in a moment. Read through SQL instead, they
        // would cost every follower a decode per event.
        if let Some(durability) = &self.durability
            && durability.syncing()
            && self.recent.caught_up(after)
        {
            durability.settled().await?;
            if let Some(recent) = from_cache() {
                return Ok(recent);
            }
        }
        self.raw_events(after, limit)
            .await?
            .into_iter()
            .map(|raw| {
                let seq = raw.seq;
                let event = StoredEvent::decode(&raw.body)
                    .map_err(|err| corrupt(format!("event {seq}: {err}")))?;
                if event.seq != seq {
                    return Err(corrupt(format!(
                        "event {seq} says it is event {}",
                        event.seq
                    )));
                }
                Ok(Arc::new(LedgerEntry {
                    event,
                    body: raw.body,
                }))
            })
            .collect()
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            let mut counts = Counts::default();
            for row in sqlx::query("SELECT state, COUNT(*) FROM requests GROUP BY state")
                .fetch_all(&mut *conn)
                .await?
            {
                let state: String = row.try_get(0)?;
                let count: i64 = row.try_get(1)?;
                if let Some(state) = RequestState::parse(&state) {
                    counts
                        .requests_by_state
                        .push((state, u64::try_from(count).unwrap_or(0)));
                }
            }
            let active: i64 = sqlx::query("SELECT COUNT(*) FROM grants WHERE state = 'active'")
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?;
            counts.active_grants = u64::try_from(active).unwrap_or(0);
            drop(conn);
            counts.events = self.ledger_size().await?;
            Ok(counts)
        })
        .await
    }

    async fn ledger_size(&self) -> Result<u64, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            let next: i64 = sqlx::query("SELECT next_seq FROM ledger_head WHERE id = 1")
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?;
            Ok(u64::try_from(next - 1).unwrap_or(0))
        })
        .await
    }

    async fn create_token(
        &self,
        token: &TokenRecord,
        secret_hash: &str,
        actor: Actor,
        clock: &dyn Clock,
    ) -> Result<StoredEvent, StoreError> {
        let mut w = self.begin_write().await?;
        let now = clock.now();
        sqlx::query(
            "INSERT INTO tokens (id, user_name, label, secret_hash, created_at_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&token.id)
        .bind(&token.user)
        .bind(token.label.as_deref())
        .bind(secret_hash)
        .bind(now.as_millis())
        .execute(&mut *w.tx)
        .await?;
        let event = Event {
            at: now,
            actor,
            subject: token.id.clone(),
            kind: EventKind::TokenCreated {
                token_id: token.id.clone(),
                user: token.user.clone(),
                label: token.label.clone(),
            },
        };
        let mut stored = w.append(vec![event]).await?;
        w.commit().await?;
        stored.pop().ok_or_else(|| corrupt("no token event"))
    }

    async fn token_by_hash(&self, secret_hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            let row = sqlx::query(&format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens WHERE secret_hash = $1 AND revoked_at_ms IS NULL"
            ))
            .bind(secret_hash)
            .fetch_optional(&mut *conn)
            .await?;
            row.as_ref().map(token_from_row).transpose()
        })
        .await
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            sqlx::query(&format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created_at_ms, id"
            ))
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(token_from_row)
            .collect()
        })
        .await
    }

    async fn revoke_token(
        &self,
        id: &str,
        actor: Actor,
        clock: &dyn Clock,
    ) -> Result<Result<TokenRecord, Refusal>, StoreError> {
        let mut w = self.begin_write().await?;
        let Some(mut token) =
            row_by_id(&mut w.tx, "tokens", TOKEN_COLUMNS, id, token_from_row).await?
        else {
            return Ok(Err(Refusal {
                kind: RefusalKind::NotFound,
                message: format!("no token `{id}` (see `latch admin token list`)"),
            }));
        };
        if let Some(at) = token.revoked_at {
            return Ok(Err(Refusal {
                kind: RefusalKind::Conflict,
                message: format!("token `{id}` was already revoked at {at}"),
            }));
        }
        let now = clock.now();
        sqlx::query("UPDATE tokens SET revoked_at_ms = $1 WHERE id = $2")
            .bind(now.as_millis())
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        let event = Event {
            at: now,
            actor,
            subject: id.to_owned(),
            kind: EventKind::TokenRevoked {
                token_id: id.to_owned(),
                user: token.user.clone(),
            },
        };
        w.append(vec![event]).await?;
        w.commit().await?;
        token.revoked_at = Some(now);
        Ok(Ok(token))
    }

    async fn last_event_of_type(
        &self,
        event_type: &str,
    ) -> Result<Option<StoredEvent>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            let row = sqlx::query(&by_type(event_type, "ORDER BY seq DESC LIMIT 1"))
                .bind(event_type)
                .fetch_optional(&mut *conn)
                .await?;
            row.map(|row| {
                let body: String = row.try_get(0)?;
                StoredEvent::decode(&body).map_err(|err| corrupt(err.to_string()))
            })
            .transpose()
        })
        .await
    }

    async fn events_of_type(
        &self,
        event_type: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            let rows = sqlx::query(&by_type(
                event_type,
                &format!("AND seq > $2 ORDER BY seq LIMIT {limit}"),
            ))
            .bind(event_type)
            .bind(clamp_i64(after))
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|row| {
                    let body: String = row.try_get(0)?;
                    StoredEvent::decode(&body).map_err(|err| corrupt(err.to_string()))
                })
                .collect()
        })
        .await
    }

    async fn raw_events(&self, after: u64, limit: u32) -> Result<Vec<RawEvent>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            let rows = sqlx::query(&format!(
                "SELECT seq, body, leaf_hash FROM events WHERE seq > $1 ORDER BY seq LIMIT {limit}"
            ))
            .bind(clamp_i64(after))
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|row| {
                    let seq: i64 = row.try_get(0)?;
                    Ok(RawEvent {
                        seq: u64::try_from(seq)
                            .map_err(|_| corrupt(format!("negative sequence number {seq}")))?,
                        body: row.try_get(1)?,
                        leaf_hash: row.try_get(2)?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn leaf_hashes(&self, from: u64, to: u64) -> Result<Vec<latch_ledger::Hash>, StoreError> {
        if let Some(recent) = self.recent.leaf_hashes(from, to) {
            return Ok(recent);
        }
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query(
            "SELECT seq, leaf_hash FROM events WHERE seq > $1 AND seq <= $2 ORDER BY seq",
        )
        .bind(to_i64(from)?)
        .bind(to_i64(to)?)
        .fetch_all(&mut *conn)
        .await?;
        drop(conn);
        // The cache holds only what is on disk; the table may hold more.
        self.settled().await?;
        let mut hashes = Vec::with_capacity(rows.len());
        for (expected, row) in (from + 1..).zip(&rows) {
            let seq: i64 = row.try_get(0)?;
            if i64::try_from(expected).ok() != Some(seq) {
                return Err(corrupt(format!(
                    "event {expected} is missing from the ledger"
                )));
            }
            let hex: String = row.try_get(1)?;
            hashes.push(
                parse_hash(&hex)
                    .ok_or_else(|| corrupt(format!("event {seq} has a malformed leaf hash")))?,
            );
        }
        if u64::try_from(hashes.len()).ok() != Some(to.saturating_sub(from)) {
            return Err(corrupt(format!("the ledger holds fewer than {to} events")));
        }
        Ok(hashes)
    }

    async fn add_tree_nodes(
        &self,
        nodes: &[(latch_ledger::NodeId, latch_ledger::Hash)],
    ) -> Result<(), StoreError> {
        let mut rows = Vec::with_capacity(nodes.len() / 8);
        for (id, hash) in nodes.iter().filter(|(id, _)| id.level >= STORED_LEVEL) {
            rows.push(vec![
                batch::Val::Int(node_key(*id)?),
                batch::Val::Text(hash.to_string()),
            ]);
        }
        if rows.is_empty() {
            return Ok(());
        }
        let _turn = self.write_turn().await;
        let mut conn = self.pool.acquire().await?;
        batch::insert_rows(
            &mut *conn,
            self.dialect,
            "tree_nodes",
            &["node", "hash"],
            "ON CONFLICT (node) DO NOTHING",
            rows,
        )
        .await
    }

    async fn tree_nodes(
        &self,
        nodes: &[latch_ledger::NodeId],
    ) -> Result<Vec<latch_ledger::Hash>, StoreError> {
        self.read(async {
            use std::collections::HashMap;
            let mut conn = self.pool.acquire().await?;
            let mut found: HashMap<latch_ledger::NodeId, latch_ledger::Hash> = HashMap::new();
            // A node below the stored levels is read as its leaves (at most eight of them).
            let mut wanted = std::collections::BTreeSet::new();
            for id in nodes {
                match leaves_under(*id) {
                    Some(leaves) => wanted.extend(leaves),
                    None => {
                        wanted.insert(*id);
                    }
                }
            }
            let (leaves, inner): (Vec<latch_ledger::NodeId>, Vec<latch_ledger::NodeId>) =
                wanted.into_iter().partition(|id| id.level == 0);
            for (table, key, ids) in [("events", "seq", leaves), ("tree_nodes", "node", inner)] {
                if ids.is_empty() {
                    continue;
                }
                let keys: Vec<i64> = ids
                    .iter()
                    .map(|id| {
                        if id.level == 0 {
                            to_i64(id.index + 1)
                        } else {
                            node_key(*id)
                        }
                    })
                    .collect::<Result<_, _>>()?;
                let placeholders: Vec<String> = (1..=keys.len())
                    .map(|i| self.dialect.placeholder(i))
                    .collect();
                let column = if table == "events" {
                    "leaf_hash"
                } else {
                    "hash"
                };
                let sql = format!(
                    "SELECT {key}, {column} FROM {table} WHERE {key} IN ({})",
                    placeholders.join(", ")
                );
                let mut query = sqlx::query(&sql);
                for k in &keys {
                    query = query.bind(*k);
                }
                for row in query.fetch_all(&mut *conn).await? {
                    let k: i64 = row.try_get(0)?;
                    let hex: String = row.try_get(1)?;
                    let hash = parse_hash(&hex)
                        .ok_or_else(|| corrupt(format!("malformed hash in {table} {k}")))?;
                    let id = if table == "events" {
                        latch_ledger::NodeId {
                            level: 0,
                            index: u64::try_from(k - 1).unwrap_or(u64::MAX),
                        }
                    } else {
                        node_id(k)
                    };
                    found.insert(id, hash);
                }
            }
            let missing = |id: &latch_ledger::NodeId| {
                corrupt(format!(
                    "tree node at level {} index {} is not stored",
                    id.level, id.index
                ))
            };
            nodes
                .iter()
                .map(|id| match leaves_under(*id) {
                    Some(leaves) => {
                        let hashes = leaves
                            .map(|leaf| found.get(&leaf).copied().ok_or_else(|| missing(&leaf)))
                            .collect::<Result<Vec<_>, _>>()?;
                        Ok(latch_ledger::root(&hashes))
                    }
                    None => found.get(id).copied().ok_or_else(|| missing(id)),
                })
                .collect()
        })
        .await
    }

    async fn add_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut conn = self.pool.acquire().await?;
        sqlx::query("INSERT INTO checkpoints (size, root, at_ms, note) VALUES ($1, $2, $3, $4) ON CONFLICT (size) DO NOTHING")
            .bind(to_i64(checkpoint.size)?)
            .bind(checkpoint.root.to_string())
            .bind(checkpoint.at.as_millis())
            .bind(&checkpoint.note)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            let rows = sqlx::query(&format!(
                "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY size"
            ))
            .fetch_all(&mut *conn)
            .await?;
            rows.iter().map(checkpoint_from_row).collect()
        })
        .await
    }

    async fn checkpoint(&self, size: Option<u64>) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            let row =
                match size {
                    Some(size) => {
                        // No ledger reaches a size past i64: there is no such checkpoint.
                        let Ok(size) = i64::try_from(size) else {
                            return Ok(None);
                        };
                        sqlx::query(&format!(
                            "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE size = $1"
                        ))
                        .bind(size)
                        .fetch_optional(&mut *conn)
                        .await?
                    }
                    None => sqlx::query(&format!(
                        "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY size DESC LIMIT 1"
                    ))
                    .fetch_optional(&mut *conn)
                    .await?,
                };
            row.as_ref().map(checkpoint_from_row).transpose()
        })
        .await
    }

    async fn requests_by_id(&self, ids: &[String]) -> Result<Vec<AccessRequest>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            let mut found = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(500) {
                let placeholders: Vec<String> = (1..=chunk.len())
                    .map(|i| self.dialect.placeholder(i))
                    .collect();
                let sql = format!(
                    "SELECT {REQUEST_COLUMNS} FROM requests r LEFT JOIN grants g ON g.request_id = r.id WHERE r.id IN ({})",
                    placeholders.join(", ")
                );
                let mut query = sqlx::query(&sql);
                for id in chunk {
                    query = query.bind(id.as_str());
                }
                let rows = query.fetch_all(&mut *conn).await?;
                let mut requests = rows
                    .iter()
                    .map(request_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                attach_approvals(&mut conn, &mut requests).await?;
                found.extend(requests);
            }
            Ok(found)
        })
        .await
    }

    async fn requests_finished_between(
        &self,
        after: u64,
        upto: u64,
    ) -> Result<Vec<(u64, AccessRequest)>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            let sql = format!(
                "SELECT {REQUEST_COLUMNS}, r.last_seq FROM requests r LEFT JOIN grants g ON g.request_id = r.id \
                 WHERE r.last_seq > $1 AND r.last_seq <= $2"
            );
            let rows = sqlx::query(&sql)
                .bind(clamp_i64(after))
                .bind(clamp_i64(upto))
                .fetch_all(&mut *conn)
                .await?;
            let mut requests = rows
                .iter()
                .map(request_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            attach_approvals(&mut conn, &mut requests).await?;
            rows.iter()
                .zip(requests)
                .map(|(row, request)| {
                    let last: i64 = row.try_get("last_seq")?;
                    Ok((u64::try_from(last).unwrap_or(0), request))
                })
                .collect()
        })
        .await
    }

    async fn statement_index_drift(&self) -> Result<Option<(String, String)>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            crate::statement_index::drift(&mut conn).await
        })
        .await
    }

    async fn orphan_requests(&self, limit: u32) -> Result<Vec<String>, StoreError> {
        self.read(async {
            let mut conn = self.pool.acquire().await?;
            // `e.type || ''`: without statistics SQLite would answer through `events_type` and scan
            // every `request.created` for every request (quadratic: minutes at a million requests);
            // an expression is not indexed, so it seeks `events_subject` instead, as PostgreSQL does.
            sqlx::query(&format!(
                "SELECT r.id FROM requests r WHERE NOT EXISTS \
                 (SELECT 1 FROM events e WHERE e.subject = r.id AND e.type || '' = 'request.created' \
                   AND e.type NOT IN {STATEMENT_TYPES}) \
                 ORDER BY r.id LIMIT {limit}"
            ))
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| Ok(row.try_get::<String, _>(0)?))
            .collect()
        })
        .await
    }

    async fn verify_projections(&self) -> Result<Vec<Drift>, StoreError> {
        self.read(async {
            use std::collections::BTreeMap;
            let mut conn = self.pool.acquire().await?;
            let mut replayed: BTreeMap<String, AccessRequest> = BTreeMap::new();
            let mut after = 0u64;
            loop {
                let page = sqlx::query(
                    "SELECT seq, body FROM events WHERE seq > $1 ORDER BY seq LIMIT 5000",
                )
                .bind(clamp_i64(after))
                .fetch_all(&mut *conn)
                .await?;
                let Some(last) = page.last() else { break };
                after = u64::try_from(last.try_get::<i64, _>(0)?).unwrap_or(u64::MAX);
                for row in &page {
                    let body: String = row.try_get(1)?;
                    let event =
                        StoredEvent::decode(&body).map_err(|err| corrupt(err.to_string()))?;
                    if !event.event.kind.is_request_transition() {
                        continue;
                    }
                    let subject = event.event.subject.clone();
                    let current = replayed.remove(&subject);
                    let next = lifecycle::apply(current, &event.event)
                        .map_err(|err| corrupt(format!("event {}: {err}", event.seq)))?;
                    replayed.insert(subject, next);
                }
            }
            let mut drift = Vec::new();
            let projected = load_requests(&mut conn, &RequestFilter::default(), None).await?;
            for row in projected {
                match replayed.remove(&row.id) {
                    None => drift.push(Drift {
                        request_id: row.id.clone(),
                        problem: "projected but no event created it".into(),
                    }),
                    Some(expected) if expected != row => drift.push(Drift {
                        request_id: row.id.clone(),
                        problem: describe_drift(&row, &expected),
                    }),
                    Some(_) => {}
                }
            }
            for id in replayed.into_keys() {
                drift.push(Drift {
                    request_id: id,
                    problem: "created by events but missing from the projection".into(),
                });
            }
            Ok(drift)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        conn.execute("SELECT 1").await?;
        Ok(())
    }

    async fn summary_cursor(&self) -> Result<u64, StoreError> {
        self.read(crate::summaries::cursor(&self.pool)).await
    }

    async fn summaries_by_key(&self, keys: &[String]) -> Result<Vec<SummaryRecord>, StoreError> {
        self.read(crate::summaries::by_key(&self.pool, self.dialect, keys))
            .await
    }

    async fn summary_sessions(
        &self,
        session_ids: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.read(crate::summaries::sessions(
            &self.pool,
            self.dialect,
            session_ids,
        ))
        .await
    }

    async fn save_summaries(
        &self,
        from: u64,
        to: u64,
        summaries: &[SummaryRecord],
        sessions: &[(String, String)],
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        crate::summaries::save(&self.pool, self.dialect, from, to, summaries, sessions).await
    }

    async fn summaries_page(
        &self,
        range: &SummaryRange,
        after: Option<SummaryPosition>,
        limit: u32,
    ) -> Result<Vec<SummaryRecord>, StoreError> {
        self.read(crate::summaries::page(&self.bulk, range, after, limit))
            .await
    }

    async fn summary_lines(
        &self,
        range: &SummaryRange,
        lines: tokio::sync::mpsc::Sender<crate::ReportLines>,
    ) -> Result<(), StoreError> {
        self.read(crate::summaries::lines(&self.bulk, range, lines))
            .await
    }
}

const CHECKPOINT_COLUMNS: &str = "size, root, at_ms, note";

fn checkpoint_from_row(row: &AnyRow) -> Result<StoredCheckpoint, StoreError> {
    let size: i64 = row.try_get(0)?;
    let root: String = row.try_get(1)?;
    Ok(StoredCheckpoint {
        size: u64::try_from(size).map_err(|_| corrupt("negative checkpoint size"))?,
        root: parse_hash(&root)
            .ok_or_else(|| corrupt(format!("checkpoint {size} has a malformed root")))?,
        at: Timestamp::from_millis(row.try_get(2)?),
        note: row.try_get(3)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan SQLite makes for `sql` over the ledger's schema as the migrations leave it.
    fn plan(sql: &str) -> String {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        for (_, _, migration) in MIGRATIONS {
            for statement in statements(migration, Dialect::Sqlite) {
                db.execute_batch(&statement).unwrap();
            }
        }
        let mut explain = db.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        // Unbound parameters are NULL: a plan is made without their values either way.
        let unbound = vec![rusqlite::types::Value::Null; explain.parameter_count()];
        let rows = explain
            .query_map(rusqlite::params_from_iter(unbound), |row| {
                row.get::<_, String>(3)
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        rows.join("; ")
    }

    #[test]
    fn events_by_type_are_read_through_the_index_and_statements_by_sequence() {
        let revoked = plan(&by_type(
            "grant.revoked",
            "AND seq > $2 ORDER BY seq LIMIT 10",
        ));
        assert!(revoked.contains("INDEX events_type"), "{revoked}");
        let statements = plan(&by_type("session.statement", "ORDER BY seq DESC LIMIT 1"));
        assert!(!statements.contains("events_type"), "{statements}");
    }
}
