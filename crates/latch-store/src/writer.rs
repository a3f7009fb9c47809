//! The SQLite writer thread: the store's writes on SQLite (the lifecycle's group commit, the
//! gateway's session events) run there, on a rusqlite connection of its own, a whole transaction
//! per hand-off. Through sqlx each statement of a transaction was a round trip to sqlx's SQLite
//! worker thread, a wake-up and a context switch each way, and a group waited for all of them
//! in series. The statements are the same as through sqlx: `batch`'s functions take any
//! [`crate::batch::Exec`], and rusqlite's futures are ready when first polled ([`ready`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::FutureExt;
use tokio::sync::{Mutex, oneshot};

use crate::StoreError;
use crate::batch::sqlite_error;
use crate::recent::RecentEvents;
use crate::sql::{Dialect, Ledger, SQLITE_PRAGMAS, TAKE_LEDGER_HEAD, corrupt, to_i64};

/// Work for the thread: given its connection (or why there is none), it says whether the
/// connection is still good.
type Job = Box<dyn FnOnce(Result<&mut rusqlite::Connection, StoreError>) -> bool + Send>;

pub(crate) struct SqliteWriter {
    jobs: std::sync::mpsc::Sender<Job>,
    /// The store's write turn: every writer, this one included, takes it first.
    write_queue: Arc<Mutex<()>>,
    /// Where committed events go for the ledger's followers.
    recent: Arc<RecentEvents>,
}

impl SqliteWriter {
    pub(crate) fn start(
        path: PathBuf,
        write_queue: Arc<Mutex<()>>,
        recent: Arc<RecentEvents>,
    ) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("latch-sqlite-writer".into())
            .spawn(move || {
                let mut connection = None;
                for job in queue {
                    let opened = match connection.take() {
                        Some(connection) => Ok(connection),
                        None => open(&path),
                    };
                    match opened {
                        // A connection that failed is opened again for the next job.
                        Ok(mut opened) => {
                            if job(Ok(&mut opened)) {
                                connection = Some(opened);
                            }
                        }
                        Err(err) => {
                            job(Err(err));
                        }
                    }
                }
            });
        if let Err(err) = spawned {
            tracing::error!(%err, "cannot start the SQLite writer thread");
        }
        Self {
            jobs,
            write_queue,
            recent,
        }
    }

    /// Runs `work` in one write transaction, in the store's write turn, with the ledger's head
    /// taken: committed when `work` appended to the ledger, rolled back otherwise.
    pub(crate) async fn transaction<T, W>(&self, work: W) -> Result<T, StoreError>
    where
        T: Send + 'static,
        W: FnOnce(&mut rusqlite::Transaction<'_>, &mut Ledger) -> Result<T, StoreError>
            + Send
            + 'static,
    {
        let recent = self.recent.clone();
        self.run(move |connection| in_transaction(connection, recent, work))
            .await
    }

    /// Runs `work` in one write transaction that does not append to the ledger, in the store's
    /// write turn: committed when `work` succeeds.
    pub(crate) async fn write<T, W>(&self, work: W) -> Result<T, StoreError>
    where
        T: Send + 'static,
        W: FnOnce(&mut rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.run(move |connection| {
            let mut tx = connection
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sqlite_error)?;
            let out = work(&mut tx)?;
            tx.commit().map_err(sqlite_error)?;
            Ok(out)
        })
        .await
    }

    /// Runs `work` on the thread's connection, in the store's write turn.
    async fn run<T, W>(&self, work: W) -> Result<T, StoreError>
    where
        T: Send + 'static,
        W: FnOnce(&mut rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let _turn = self.write_queue.lock().await;
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |connection| {
            let result = connection.and_then(work);
            let good = !matches!(result, Err(StoreError::Unavailable(_)));
            let _ = reply.send(result);
            good
        });
        let gone = || StoreError::Unavailable("the SQLite writer thread stopped".into());
        self.jobs.send(job).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

fn in_transaction<T>(
    connection: &mut rusqlite::Connection,
    recent: Arc<RecentEvents>,
    work: impl FnOnce(&mut rusqlite::Transaction<'_>, &mut Ledger) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut tx = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sqlite_error)?;
    // Prepared once: every group runs these two statements.
    let head: i64 = tx
        .prepare_cached(TAKE_LEDGER_HEAD)
        .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
        .map_err(sqlite_error)?;
    let mut ledger = Ledger {
        next_seq: u64::try_from(head).map_err(|_| corrupt("negative ledger head"))?,
        dialect: Dialect::Sqlite,
        recent: Some(recent),
        appended: Vec::new(),
    };
    let before = ledger.next_seq;
    let out = work(&mut tx, &mut ledger)?;
    if ledger.next_seq != before {
        let next = to_i64(ledger.next_seq)?;
        tx.prepare_cached("UPDATE ledger_head SET next_seq = ?1 WHERE id = 1")
            .and_then(|mut statement| statement.execute([next]))
            .map_err(sqlite_error)?;
        tx.commit().map_err(sqlite_error)?;
        ledger.committed();
    }
    Ok(out)
}

/// The output of the write path's future on the writer thread, where rusqlite's calls make it
/// ready when first polled.
pub(crate) fn ready<T>(
    future: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    future
        .now_or_never()
        .ok_or_else(|| StoreError::Database("a SQLite write did not complete at once".into()))?
}

/// The writer's connection, set up as the pool's: an event is acknowledged only once it is on
/// disk.
fn open(path: &Path) -> Result<rusqlite::Connection, StoreError> {
    let connection = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|err| StoreError::Unavailable(format!("cannot open `{}`: {err}", path.display())))?;
    for pragma in SQLITE_PRAGMAS {
        connection.execute_batch(pragma).map_err(|err| {
            StoreError::Unavailable(format!("cannot set up `{}`: {err}", path.display()))
        })?;
    }
    // Room for every statement of the write path, so that none is parsed twice.
    connection.set_prepared_statement_cache_capacity(64);
    Ok(connection)
}
