//! The SQLite writer thread: the store's writes on SQLite (the lifecycle's group commit, the
//! gateway's session events) run there, on a rusqlite connection of its own, a whole transaction
//! per hand-off. Through sqlx each statement of a transaction was a round trip to sqlx's SQLite
//! worker thread, a wake-up and a context switch each way, and a group waited for all of them
//! in series. The statements are the same as through sqlx: `batch`'s functions take any
//! [`crate::batch::Exec`], and rusqlite's futures are ready when first polled ([`ready`]).
//!
//! A commit is made durable by latch, not by SQLite: the writer's connection runs at
//! `synchronous = NORMAL` (SQLite writes the WAL frames but does not fsync them at commit), and
//! latch `fdatasync`s the WAL file before anything waiting on the commit hears of it. Under load
//! a second thread, the syncer, does that while the writer builds the next group, and one fsync
//! covers every commit made while the one before it ran; when no other job waits, the writer
//! syncs its commit itself, which saves an idle commit a hand-off. Nothing is acknowledged,
//! handed to the ledger's followers or answered to a reader of the store before it is on disk
//! ([`Durability`]).

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar};

use futures_util::FutureExt;
use tokio::sync::{Mutex, oneshot};

use crate::StoreError;
use crate::batch::sqlite_error;
use crate::recent::{Appended, RecentEvents};
use crate::sql::{Dialect, Ledger, SQLITE_PRAGMAS, corrupt, to_i64};

/// Work for the thread: given its connection (or why there is none) and where commits go, it
/// says whether the connection is still good.
type Job =
    Box<dyn FnOnce(Result<&mut rusqlite::Connection, StoreError>, &mut Commits) -> bool + Send>;

/// How far the writer thread's commits are durable: commits are numbered in order (their
/// generation), and a generation is durable once the syncer has synced the WAL after it.
pub(crate) struct Durability {
    /// The newest generation the writer thread committed.
    committed: AtomicU64,
    /// How far the commits are synced, and the replies waiting for more: one lock, so that a
    /// reply is either answered at once or seen by the sync that reaches it.
    state: std::sync::Mutex<SyncState>,
}

#[derive(Default)]
struct SyncState {
    /// Every generation up to this one is on disk.
    up_to: u64,
    /// Why no later generation ever will be: after a failed fsync the kernel may have dropped
    /// the pages it could not write, so nothing after it can be trusted (PostgreSQL stops too).
    failed: Option<Arc<str>>,
    /// Replies waiting for their generation, answered by whoever syncs it: from the syncer
    /// thread straight to the waiting tasks, without a task of their own in between.
    waiters: Vec<Waiter>,
}

impl SyncState {
    /// The answer for `generation` if there is one yet.
    fn answer(&self, generation: u64) -> Option<Result<(), StoreError>> {
        if self.up_to >= generation {
            return Some(Ok(()));
        }
        self.failed
            .as_ref()
            .map(|why| Err(StoreError::Unavailable(why.to_string())))
    }
}

/// What to do once a generation is on disk, or never will be.
type Answer = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// A reply waiting for a generation to be on disk.
struct Waiter {
    generation: u64,
    answer: Answer,
}

impl Durability {
    fn new() -> Self {
        Self {
            committed: AtomicU64::new(0),
            state: std::sync::Mutex::new(SyncState::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Calls `answer` once `generation` is on disk (at once if it is), or with why it never
    /// will be.
    fn when(&self, generation: u64, answer: Answer) {
        let mut state = self.state();
        match state.answer(generation) {
            Some(result) => {
                drop(state);
                answer(result);
            }
            None => state.waiters.push(Waiter { generation, answer }),
        }
    }

    /// Moves on to `up_to`, or fails, and answers the replies that waited for it.
    fn advance(&self, change: impl FnOnce(&mut SyncState)) {
        let due: Vec<(Waiter, Result<(), StoreError>)> = {
            let mut state = self.state();
            change(&mut state);
            let mut due = Vec::new();
            for waiter in std::mem::take(&mut state.waiters) {
                match state.answer(waiter.generation) {
                    Some(result) => due.push((waiter, result)),
                    None => state.waiters.push(waiter),
                }
            }
            due
        };
        for (waiter, result) in due {
            (waiter.answer)(result);
        }
    }

    /// Waits until `generation` is on disk.
    pub(crate) async fn until(&self, generation: u64) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.when(
            generation,
            Box::new(move |result| {
                let _ = reply.send(result);
            }),
        );
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite syncer stopped".into()))?
    }

    /// Waits until everything committed so far is on disk. A read of the store calls this after
    /// it has read, so that it never answers with a commit that a crash could still undo.
    pub(crate) async fn settled(&self) -> Result<(), StoreError> {
        let generation = self.committed.load(Ordering::Acquire);
        // Most reads find nothing being synced: answered without a channel.
        if let Some(result) = self.state().answer(generation) {
            return result;
        }
        self.until(generation).await
    }

    /// Whether some commit is not known to be on disk yet.
    pub(crate) fn syncing(&self) -> bool {
        let state = self.state();
        state.failed.is_none() && state.up_to < self.committed.load(Ordering::Acquire)
    }

    fn failed(&self) -> Option<Arc<str>> {
        self.state().failed.clone()
    }
}

/// What a job committed, for the syncer.
struct Committed {
    generation: u64,
    /// The ledger's events, for its followers once they are on disk.
    appended: Vec<Appended>,
}

/// The writer thread's side of committing: numbers each commit and has it synced.
pub(crate) struct Commits {
    generation: u64,
    durability: Arc<Durability>,
    sync: Arc<WalSync>,
    demand: Demand,
}

/// Work queued for the writer and not yet taken: commands queued for the store's committers,
/// jobs waiting for the write turn. While there is some, a commit is synced by the syncer so
/// that the writer can go on with it; without, the writer syncs the commit itself.
#[derive(Clone, Debug, Default)]
pub(crate) struct Demand(Arc<AtomicUsize>);

impl Demand {
    pub(crate) fn add(&self, count: usize) {
        self.0.fetch_add(count, Ordering::AcqRel);
    }

    pub(crate) fn taken(&self, count: usize) {
        // Never below zero, whatever the order of the counts.
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(count))
            });
    }

    fn waiting(&self) -> bool {
        self.0.load(Ordering::Acquire) > 0
    }
}

impl Commits {
    fn commit(
        &mut self,
        tx: rusqlite::Transaction<'_>,
        appended: Vec<Appended>,
    ) -> Result<(), StoreError> {
        tx.commit().map_err(sqlite_error)?;
        self.generation += 1;
        self.durability
            .committed
            .store(self.generation, Ordering::Release);
        let committed = Committed {
            generation: self.generation,
            appended,
        };
        if let Some(batch) = self.sync.hand_over(committed, !self.demand.waiting()) {
            self.sync.sync(batch);
        }
        Ok(())
    }
}

impl Drop for Commits {
    fn drop(&mut self) {
        self.sync.stop();
    }
}

/// Commits waiting for the WAL's fsync.
#[derive(Default)]
struct SyncQueue {
    waiting: Vec<Committed>,
    /// A sync is running (on the syncer or the writer thread): the next waits for it.
    syncing: bool,
    /// The writer thread is gone: the syncer ends once nothing waits.
    stopped: bool,
}

/// The fsync of the WAL after commits, and what follows it: the followers get the commits'
/// events and [`Durability`] moves on, in commit order.
struct WalSync {
    wal: PathBuf,
    file: std::sync::Mutex<Option<WalFile>>,
    queue: std::sync::Mutex<SyncQueue>,
    wake: Condvar,
    durability: Arc<Durability>,
    recent: Arc<RecentEvents>,
}

impl WalSync {
    fn queue(&self) -> std::sync::MutexGuard<'_, SyncQueue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `committed`; returns what to sync at once on the caller's thread when `idle` (no
    /// other job waits for the writer) and no sync is running, so the syncer is not woken.
    fn hand_over(&self, committed: Committed, idle: bool) -> Option<Vec<Committed>> {
        let mut queue = self.queue();
        queue.waiting.push(committed);
        if idle && !queue.syncing {
            queue.syncing = true;
            return Some(std::mem::take(&mut queue.waiting));
        }
        self.wake.notify_one();
        None
    }

    fn stop(&self) {
        self.queue().stopped = true;
        self.wake.notify_one();
    }

    /// The syncer's loop: syncs the WAL once for every commit that arrived while the last sync
    /// ran.
    fn run(&self) {
        loop {
            let batch = {
                let mut queue = self.queue();
                while queue.syncing || (queue.waiting.is_empty() && !queue.stopped) {
                    queue = self.wake.wait(queue).unwrap_or_else(|e| e.into_inner());
                }
                if queue.waiting.is_empty() {
                    return;
                }
                queue.syncing = true;
                std::mem::take(&mut queue.waiting)
            };
            self.sync(batch);
        }
    }

    /// Syncs the WAL, then hands the commits' events to the followers and says they are
    /// durable; the queue's `syncing` must be set.
    fn sync(&self, batch: Vec<Committed>) {
        if self.durability.failed().is_none() {
            let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
            match sync_wal(&self.wal, &mut file) {
                Ok(()) => {
                    let mut up_to = 0;
                    for committed in batch {
                        up_to = committed.generation;
                        self.recent.publish(committed.appended);
                    }
                    self.durability.advance(|s| s.up_to = up_to);
                }
                Err(err) => {
                    let why = format!(
                        "cannot sync the SQLite write-ahead log `{}`: {err}; restart latch once \
                         the disk is healthy (every write since is refused, and none was \
                         acknowledged)",
                        self.wal.display()
                    );
                    tracing::error!("{why}");
                    self.durability.advance(|s| s.failed = Some(why.into()));
                }
            }
        }
        let mut queue = self.queue();
        queue.syncing = false;
        if !queue.waiting.is_empty() {
            self.wake.notify_one();
        }
    }
}

/// A transaction the writer thread committed, with its value: [`Self::durable`] gives the value
/// once the commit is on disk.
pub(crate) struct Pending<T> {
    value: T,
    generation: u64,
    durability: Option<Arc<Durability>>,
}

impl<T> Pending<T> {
    /// A value that is durable already (written by a connection that syncs its own commits).
    pub(crate) fn done(value: T) -> Self {
        Self {
            value,
            generation: 0,
            durability: None,
        }
    }

    /// Calls `answer` with the value once what produced it is on disk (at once if it is), on
    /// the thread that synced it.
    pub(crate) fn answer_when_durable(
        self,
        answer: impl FnOnce(Result<T, StoreError>) + Send + 'static,
    ) where
        T: Send + 'static,
    {
        match self.durability {
            Some(durability) => {
                let value = self.value;
                durability.when(
                    self.generation,
                    Box::new(move |synced| answer(synced.map(|()| value))),
                );
            }
            None => answer(Ok(self.value)),
        }
    }

    /// The value, once what produced it is on disk.
    pub(crate) async fn durable(self) -> Result<T, StoreError> {
        if let Some(durability) = &self.durability {
            durability.until(self.generation).await?;
        }
        Ok(self.value)
    }
}

pub(crate) struct SqliteWriter {
    jobs: std::sync::mpsc::Sender<Job>,
    demand: Demand,
    /// The store's write turn: every writer, this one included, takes it first.
    write_queue: Arc<Mutex<()>>,
    durability: Arc<Durability>,
}

impl SqliteWriter {
    pub(crate) fn start(
        path: PathBuf,
        write_queue: Arc<Mutex<()>>,
        recent: Arc<RecentEvents>,
    ) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let durability = Arc::new(Durability::new());
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        let sync = Arc::new(WalSync {
            wal: PathBuf::from(wal),
            file: std::sync::Mutex::new(None),
            queue: std::sync::Mutex::new(SyncQueue::default()),
            wake: Condvar::new(),
            durability: durability.clone(),
            recent,
        });
        let syncer = sync.clone();
        let synced = std::thread::Builder::new()
            .name("latch-sqlite-sync".into())
            .spawn(move || syncer.run());
        if let Err(err) = synced {
            tracing::error!(%err, "cannot start the SQLite syncer thread");
            durability.advance(|s| {
                s.failed = Some(format!("cannot start the SQLite syncer thread: {err}").into());
            });
        }
        let demand = Demand::default();
        let mut commits = Commits {
            generation: 0,
            durability: durability.clone(),
            sync,
            demand: demand.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name("latch-sqlite-writer".into())
            .spawn(move || {
                let mut connection = None;
                for job in queue {
                    commits.demand.taken(1);
                    if let Some(why) = commits.durability.failed() {
                        job(Err(StoreError::Unavailable(why.to_string())), &mut commits);
                        continue;
                    }
                    let opened = match connection.take() {
                        Some(connection) => Ok(connection),
                        None => open(&path),
                    };
                    match opened {
                        // A connection that failed is opened again for the next job.
                        Ok(mut opened) => {
                            if job(Ok(&mut opened), &mut commits) {
                                connection = Some(opened);
                            }
                        }
                        Err(err) => {
                            job(Err(err), &mut commits);
                        }
                    }
                }
            });
        if let Err(err) = spawned {
            tracing::error!(%err, "cannot start the SQLite writer thread");
        }
        Self {
            jobs,
            demand,
            write_queue,
            durability,
        }
    }

    /// The count of work waiting for the writer, for the committers to keep.
    pub(crate) fn demand(&self) -> Demand {
        self.demand.clone()
    }

    /// How far the writer's commits are on disk.
    pub(crate) fn durability(&self) -> Arc<Durability> {
        self.durability.clone()
    }

    /// Runs `work` in one write transaction, in the store's write turn, with the ledger's head
    /// taken: committed when `work` appended to the ledger, rolled back otherwise. The turn is
    /// the next writer's as soon as the transaction has committed; the answer is
    /// [`Pending::durable`] once it is on disk.
    pub(crate) async fn transaction<T, W>(&self, work: W) -> Result<Pending<T>, StoreError>
    where
        T: Send + 'static,
        W: FnOnce(&mut rusqlite::Transaction<'_>, &mut Ledger) -> Result<T, StoreError>
            + Send
            + 'static,
    {
        self.run(move |connection, commits| in_transaction(connection, commits, work))
            .await
    }

    /// Runs `work` in one write transaction that does not append to the ledger, in the store's
    /// write turn: committed when `work` succeeds, and answered once on disk.
    pub(crate) async fn write<T, W>(&self, work: W) -> Result<T, StoreError>
    where
        T: Send + 'static,
        W: FnOnce(&mut rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.run(move |connection, commits| {
            let mut tx = connection
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sqlite_error)?;
            let out = work(&mut tx)?;
            commits.commit(tx, Vec::new())?;
            Ok(out)
        })
        .await?
        .durable()
        .await
    }

    /// Runs `work` on the thread's connection, in the store's write turn.
    async fn run<T, W>(&self, work: W) -> Result<Pending<T>, StoreError>
    where
        T: Send + 'static,
        W: FnOnce(&mut rusqlite::Connection, &mut Commits) -> Result<T, StoreError>
            + Send
            + 'static,
    {
        self.demand.add(1);
        let _turn = self.write_queue.lock().await;
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |connection, commits| {
            let result = connection.and_then(|connection| work(connection, commits));
            let good = !matches!(result, Err(StoreError::Unavailable(_)));
            // What `work` read may have been committed and not yet synced: its answer waits for
            // everything committed so far, not only for its own commit.
            let _ = reply.send(result.map(|value| (value, commits.generation)));
            good
        });
        let gone = || StoreError::Unavailable("the SQLite writer thread stopped".into());
        self.jobs.send(job).map_err(|_| gone())?;
        let (value, generation) = answer.await.map_err(|_| gone())??;
        Ok(Pending {
            value,
            generation,
            durability: Some(self.durability.clone()),
        })
    }
}

fn in_transaction<T>(
    connection: &mut rusqlite::Connection,
    commits: &mut Commits,
    work: impl FnOnce(&mut rusqlite::Transaction<'_>, &mut Ledger) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut tx = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sqlite_error)?;
    // Prepared once: every group runs these two statements. A read, not the `UPDATE … RETURNING`
    // sqlx's writers take the head with: `BEGIN IMMEDIATE` already holds SQLite's one write
    // lock, and the head is written once below.
    let head: i64 = tx
        .prepare_cached("SELECT next_seq FROM ledger_head WHERE id = 1")
        .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
        .map_err(sqlite_error)?;
    let mut ledger = Ledger {
        next_seq: u64::try_from(head).map_err(|_| corrupt("negative ledger head"))?,
        dialect: Dialect::Sqlite,
        // Keeps the events written for the followers; the syncer hands them over.
        keep_appended: true,
        appended: Vec::new(),
    };
    let before = ledger.next_seq;
    let out = work(&mut tx, &mut ledger)?;
    if ledger.next_seq != before {
        let next = to_i64(ledger.next_seq)?;
        tx.prepare_cached("UPDATE ledger_head SET next_seq = ?1 WHERE id = 1")
            .and_then(|mut statement| statement.execute([next]))
            .map_err(sqlite_error)?;
        commits.commit(tx, std::mem::take(&mut ledger.appended))?;
    }
    Ok(out)
}

/// The WAL file as the syncer holds it.
struct WalFile {
    file: File,
    /// When the file was last found to still have its name.
    checked: std::time::Instant,
}

/// How often the WAL file held is checked for a name. Not at every sync: on kernels with
/// fine-grained timestamps (Linux 6.13 and later), reading a file's times makes its next write
/// dirty the inode, and every fsync then writes the inode too: a third fewer commits a second
/// with one writer, measured.
const NAME_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// `fdatasync` of the WAL file. The file is opened once and kept. SQLite removes it only when
/// every connection to the database has closed; if someone deleted it under a running store,
/// SQLite goes on writing to a file that a restart would not find, so once the file held is
/// found to have no name left, the sync fails (and with it every later write).
fn sync_wal(wal: &Path, file: &mut Option<WalFile>) -> std::io::Result<()> {
    let held = match file.take() {
        Some(held) => held,
        None => WalFile {
            file: File::open(wal)?,
            checked: std::time::Instant::now(),
        },
    };
    held.file.sync_data()?;
    let held = if held.checked.elapsed() >= NAME_CHECK_INTERVAL {
        if held.file.metadata()?.nlink() == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the file was deleted while the database was open",
            ));
        }
        WalFile {
            checked: std::time::Instant::now(),
            ..held
        }
    } else {
        held
    };
    *file = Some(held);
    Ok(())
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

/// The writer's connection, set up as the pool's except that it does not fsync at commit: the
/// syncer does, before any commit is acknowledged.
fn open(path: &Path) -> Result<rusqlite::Connection, StoreError> {
    let connection = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|err| StoreError::Unavailable(format!("cannot open `{}`: {err}", path.display())))?;
    for pragma in SQLITE_PRAGMAS.iter().chain(&[WRITER_SYNCHRONOUS]) {
        connection.execute_batch(pragma).map_err(|err| {
            StoreError::Unavailable(format!("cannot set up `{}`: {err}", path.display()))
        })?;
    }
    // Room for every statement of the write path, so that none is parsed twice.
    connection.set_prepared_statement_cache_capacity(64);
    Ok(connection)
}

/// NORMAL in WAL mode: SQLite still syncs the WAL before a checkpoint copies it and the
/// database after, and the WAL's header when it starts over, so a crash loses at most the
/// commits the syncer had not synced yet, none of which was acknowledged.
const WRITER_SYNCHRONOUS: &str = "PRAGMA synchronous = NORMAL";

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(durability: &Durability, generation: u64) {
        durability.committed.store(generation, Ordering::Release);
    }

    fn sync(durability: &Durability, up_to: u64) {
        durability.advance(|s| s.up_to = up_to);
    }

    #[tokio::test]
    async fn a_read_waits_for_every_commit_it_may_have_seen() {
        let durability = Arc::new(Durability::new());
        durability.settled().await.unwrap();
        commit(&durability, 2);
        sync(&durability, 1);
        let waiting = tokio::spawn({
            let durability = durability.clone();
            async move { durability.settled().await }
        });
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "answered before commit 2 was on disk"
        );
        // A commit after the read began is not waited for.
        commit(&durability, 3);
        sync(&durability, 2);
        waiting.await.unwrap().unwrap();
        durability.until(2).await.unwrap();
    }

    /// What each reply was answered, by generation.
    #[derive(Clone, Default)]
    struct Seen(Arc<std::sync::Mutex<Vec<(u64, bool)>>>);

    impl Seen {
        fn answer(&self, generation: u64) -> Answer {
            let seen = self.clone();
            Box::new(move |result: Result<(), StoreError>| {
                seen.0.lock().unwrap().push((generation, result.is_ok()));
            })
        }

        fn get(&self) -> Vec<(u64, bool)> {
            self.0.lock().unwrap().clone()
        }
    }

    #[test]
    fn replies_are_answered_once_their_commit_is_synced_and_not_before() {
        let durability = Durability::new();
        let seen = Seen::default();
        durability.when(1, seen.answer(1));
        durability.when(2, seen.answer(2));
        assert!(seen.get().is_empty(), "answered before any sync");
        durability.advance(|s| s.up_to = 1);
        assert_eq!(seen.get(), [(1, true)]);
        // A reply for a generation already synced is answered at once.
        durability.when(1, seen.answer(1));
        assert_eq!(seen.get(), [(1, true), (1, true)]);
        durability.advance(|s| s.up_to = 3);
        assert_eq!(seen.get(), [(1, true), (1, true), (2, true)]);
    }

    #[test]
    fn a_failed_sync_answers_every_later_reply_with_the_failure() {
        let durability = Durability::new();
        let seen = Seen::default();
        durability.advance(|s| s.up_to = 2);
        durability.when(3, seen.answer(3));
        durability.advance(|s| s.failed = Some("disk gone".into()));
        durability.when(2, seen.answer(2));
        durability.when(4, seen.answer(4));
        assert_eq!(seen.get(), [(3, false), (2, true), (4, false)]);
    }

    #[tokio::test]
    async fn after_a_failed_sync_only_what_was_synced_is_durable() {
        let durability = Durability::new();
        commit(&durability, 5);
        sync(&durability, 3);
        durability.advance(|s| s.failed = Some("disk gone".into()));
        durability.until(3).await.unwrap();
        let err = durability.until(4).await.unwrap_err();
        assert!(err.to_string().contains("disk gone"), "{err}");
        assert!(durability.settled().await.is_err());
    }
}
