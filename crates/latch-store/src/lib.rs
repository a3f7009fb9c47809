//! latch's storage: the [`Store`] trait, and one SQL implementation that serves both SQLite (the
//! embedded default) and PostgreSQL. This is the only crate that writes SQL.
//!
//! Every change goes through [`Store::execute`]: in one transaction it takes the ledger's write
//! lock, replays the request's events, lets `latch_core::lifecycle::decide` turn the command into
//! events, appends them with the next sequence numbers, and writes the projections that
//! `latch_core::lifecycle::apply` derives from them.

mod batch;
mod bulk;
mod findings;
mod migrations;
mod outbox;
mod recent;
mod sessions;
mod sql;
mod statement_index;
mod summaries;
mod writer;

use std::sync::Arc;

use async_trait::async_trait;
use latch_core::catalog::Visibility;
use latch_core::time::Clock;
use latch_core::{
    AccessRequest, Catalog, Command, Event, Refusal, RequestState, StoredEvent, Timestamp,
};

pub use bulk::{EventPages, PageSource, RawPage, RawRow, raw_event_pages};
pub use findings::{FindingFilter, FindingRow, NewFinding, SEVERITIES, finding_id, severity_rank};
pub use latch_pgwire::scram::ScramSecret;
pub use outbox::{OutboxItem, OutboxRow};
pub use sessions::{CredentialRecord, SessionFilter, SessionRow};
pub use sql::{OpenMode, ServerLock, SqlStore, describe_drift};
pub use summaries::{ReportLines, SummaryPosition, SummaryRange, SummaryRecord};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot reach the database: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(String),
    /// The stored events do not decode or do not replay: someone edited the store.
    #[error("the event log is corrupt: {0}")]
    Corrupt(String),
    /// The store is missing, or its schema is not this latch's (older or newer).
    #[error("{0}")]
    Schema(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(err.to_string()),
            other => Self::Database(other.to_string()),
        }
    }
}

/// The result of a command: the request as it now is with the events that made it so, or a
/// refusal that changed nothing.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "short-lived return value; boxing buys nothing"
)]
pub enum Executed {
    Done {
        request: AccessRequest,
        events: Vec<StoredEvent>,
    },
    Refused(Refusal),
}

/// Which requests to list.
#[derive(Clone, Debug)]
pub struct RequestFilter {
    /// Only these states (all when empty).
    pub states: Vec<RequestState>,
    pub requester: Option<String>,
    /// Only requests that have (or had) a grant.
    pub with_grant: bool,
    pub visibility: Visibility,
    pub limit: u32,
}

impl Default for RequestFilter {
    fn default() -> Self {
        Self {
            states: Vec::new(),
            requester: None,
            with_grant: false,
            visibility: Visibility::All,
            limit: 100,
        }
    }
}

/// An API token as stored: only the hash of its secret is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: String,
    pub user: String,
    pub label: Option<String>,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// Counts for `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests_by_state: Vec<(RequestState, u64)>,
    pub active_grants: u64,
    pub events: u64,
}

/// A signed checkpoint as kept by the store: the tree `size`, its `root`, and the signed note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub root: latch_ledger::Hash,
    pub at: Timestamp,
    /// The C2SP signed note, exactly as signed.
    pub note: String,
}

/// An event as the ledger holds it: decoded, with its canonical encoding (the bytes of its leaf).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    pub event: StoredEvent,
    pub body: String,
}

/// An event row exactly as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEvent {
    pub seq: u64,
    pub body: String,
    /// The stored leaf hash, hex (it should be SHA-256(0x00 || body)).
    pub leaf_hash: String,
}

/// A projection row that disagrees with the replay of the events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift {
    pub request_id: String,
    pub problem: String,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies `command` to request `id` atomically (see the crate docs). Concurrent calls are
    /// committed in groups: one transaction, and one fsync, for all the commands that arrived
    /// while the previous group was committing.
    async fn execute(
        &self,
        id: &str,
        command: &Command,
        catalog: std::sync::Arc<Catalog>,
        clock: std::sync::Arc<dyn Clock>,
    ) -> Result<Executed, StoreError>;

    /// Applies many commands in one transaction: the scheduler's batches. A refused command
    /// changes nothing and does not stop the others.
    async fn execute_batch(
        &self,
        work: &[(String, Command)],
        catalog: &Catalog,
        clock: &dyn Clock,
    ) -> Result<Vec<Executed>, StoreError>;

    /// Appends events that change no projection: refusals worth keeping as evidence.
    async fn record(&self, events: Vec<Event>) -> Result<Vec<StoredEvent>, StoreError>;

    /// Appends `event` unless the ledger already holds an event of its type and subject; the
    /// check runs under the ledger's write lock, so replicas sharing the store cannot both
    /// append it. `None` when it was already there.
    async fn record_once(&self, event: Event) -> Result<Option<StoredEvent>, StoreError>;

    /// Appends gateway session events (`session.*`) and updates the sessions they open and
    /// close. Concurrent calls are committed in groups, one fsync for all of them: the
    /// gateway's strict recording waits on this for every statement.
    async fn append_session_events(&self, events: Vec<Event>) -> Result<(), StoreError>;

    /// Newest first.
    async fn sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionRow>, StoreError>;

    async fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError>;

    /// The events about `subject` (a session's statements, say), in order, with their
    /// canonical bytes; `seq > after`, at most `limit`.
    async fn subject_events(
        &self,
        subject: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<(StoredEvent, String)>, StoreError>;

    /// Stores a gateway credential (its hash and its SCRAM secret only, never the credential)
    /// with its `credential.issued` event.
    async fn create_credential(
        &self,
        credential: &CredentialRecord,
        secret_hash: &str,
        scram: &ScramSecret,
        clock: &dyn Clock,
    ) -> Result<StoredEvent, StoreError>;

    /// Opens the findings whose key is new, each with its `finding.opened` event, in one
    /// transaction; returns those opened (a key seen before opens nothing: re-evaluating
    /// history is idempotent).
    async fn open_findings(&self, findings: Vec<NewFinding>)
    -> Result<Vec<FindingRow>, StoreError>;

    /// Newest first.
    async fn findings(&self, filter: &FindingFilter) -> Result<Vec<FindingRow>, StoreError>;

    async fn finding(&self, id: &str) -> Result<Option<FindingRow>, StoreError>;

    /// Acknowledges or resolves a finding with its `finding.status_changed` event; refused when
    /// unknown or already resolved.
    async fn set_finding_status(
        &self,
        id: &str,
        status: &str,
        by: &str,
        comment: &str,
        clock: &dyn Clock,
    ) -> Result<Result<FindingRow, Refusal>, StoreError>;

    /// Where the notifier stopped reading the ledger; `None` before it ever ran.
    async fn notify_cursor(&self) -> Result<Option<u64>, StoreError>;

    /// Queues messages (a message already queued stays as it is) and moves the notifier's
    /// cursor to `after_seq`, in one transaction.
    async fn enqueue_notifications(
        &self,
        items: Vec<OutboxItem>,
        after_seq: u64,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Pending messages whose next attempt is due, in queue order. A message is due only when
    /// no earlier pending message of its channel waits for a later attempt: a channel is
    /// delivered in order, and one that is down holds its queue behind its first message.
    async fn due_notifications(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError>;

    /// Records a delivery attempt: `Ok` sent; `Err((error, Some(next)))` to retry at `next`;
    /// `Err((error, None))` gave up (dead letter).
    async fn notification_attempted(
        &self,
        id: &str,
        now: Timestamp,
        outcome: Result<(), (String, Option<Timestamp>)>,
    ) -> Result<(), StoreError>;

    /// [`Store::notification_attempted`] for several messages, in one transaction.
    async fn notifications_attempted(
        &self,
        outcomes: Vec<(String, Result<(), (String, Option<Timestamp>)>)>,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Messages held for a digest, in queue order.
    async fn held_notifications(&self) -> Result<Vec<OutboxRow>, StoreError>;

    /// Replaces the held messages `held` (status `digested`) by `digest`, queued for delivery,
    /// in one transaction.
    async fn digest_notifications(
        &self,
        held: &[String],
        digest: OutboxItem,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Remembers where Slack accepts a replacement for a request's message (the `response_url`
    /// of a click on it).
    async fn record_slack_response(
        &self,
        request_id: &str,
        response_url: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// The `response_url`s recorded for `request_id` since `since`, oldest first.
    async fn slack_responses(
        &self,
        request_id: &str,
        since: Timestamp,
    ) -> Result<Vec<String>, StoreError>;

    /// Remembers a message with Approve and Deny buttons that the bot-token channel `channel`
    /// posted about `request_id`: Slack's channel id and the message's `ts`, which
    /// `chat.update` needs to replace it.
    async fn record_slack_message(
        &self,
        request_id: &str,
        channel: &str,
        slack_channel: &str,
        ts: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// The messages `channel` posted about `request_id`, `(slack_channel, ts)`, oldest first.
    async fn slack_messages(
        &self,
        request_id: &str,
        channel: &str,
    ) -> Result<Vec<(String, String)>, StoreError>;

    /// Messages in `status` (`pending`, `sent`, `dead`), newest first.
    async fn notifications(&self, status: &str, limit: u32) -> Result<Vec<OutboxRow>, StoreError>;

    /// Puts a dead message back in the queue, due now; `false` when there is no such dead one.
    async fn retry_notification(&self, id: &str, now: Timestamp) -> Result<bool, StoreError>;

    /// The credential with this hash, expired or not (the caller checks and says which).
    async fn credential_by_hash(
        &self,
        secret_hash: &str,
    ) -> Result<Option<CredentialRecord>, StoreError>;

    /// The credential with this id, expired or not.
    async fn credential(&self, id: &str) -> Result<Option<CredentialRecord>, StoreError>;

    /// Deletes up to `limit` credentials that expired before `expired_before` (their hashes and
    /// SCRAM secrets: nothing can use them any more; their `credential.issued` events stay in the
    /// ledger); returns how many.
    async fn purge_credentials(
        &self,
        expired_before: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// `user`'s credentials for grants on `resource` that have a SCRAM secret and expire after
    /// `now`, newest first, at most `limit`.
    async fn scram_credentials(
        &self,
        user: &str,
        resource: &str,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<(CredentialRecord, ScramSecret)>, StoreError>;

    async fn request(&self, id: &str) -> Result<Option<AccessRequest>, StoreError>;

    /// Newest first.
    async fn requests(&self, filter: &RequestFilter) -> Result<Vec<AccessRequest>, StoreError>;

    /// Work the scheduler owes at `now`: grants to expire and requests to time out.
    async fn due(
        &self,
        now: Timestamp,
        limit: u32,
        escalate_after: Option<latch_core::AccessDuration>,
    ) -> Result<Vec<(String, Command)>, StoreError>;

    /// Events with `seq > after`, in order, with their canonical bytes. The newest are shared
    /// with the other followers that read them, not copied for each.
    async fn events(&self, after: u64, limit: u32) -> Result<Vec<Arc<LedgerEntry>>, StoreError>;

    async fn counts(&self) -> Result<Counts, StoreError>;

    /// The number of events in the ledger (its tree's size), from the ledger's head: one row,
    /// however long the ledger.
    async fn ledger_size(&self) -> Result<u64, StoreError>;

    /// Stores a token (its hash only) with its `token.created` event.
    async fn create_token(
        &self,
        token: &TokenRecord,
        secret_hash: &str,
        actor: latch_core::Actor,
        clock: &dyn Clock,
    ) -> Result<StoredEvent, StoreError>;

    /// The live (not revoked) token with this hash.
    async fn token_by_hash(&self, secret_hash: &str) -> Result<Option<TokenRecord>, StoreError>;

    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;

    /// Revokes a token with its `token.revoked` event; refused when unknown or already revoked.
    async fn revoke_token(
        &self,
        id: &str,
        actor: latch_core::Actor,
        clock: &dyn Clock,
    ) -> Result<Result<TokenRecord, Refusal>, StoreError>;

    /// Events with `seq > after` as stored, undecoded and unchecked: for the verifier, which must
    /// see a corrupt row to name it.
    async fn raw_events(&self, after: u64, limit: u32) -> Result<Vec<RawEvent>, StoreError>;

    /// The newest event of `event_type` (e.g. `policy.loaded`), if any.
    async fn last_event_of_type(&self, event_type: &str)
    -> Result<Option<StoredEvent>, StoreError>;

    /// Events of `event_type` with `seq > after`, in order, at most `limit`: for a follower
    /// that waits for one kind of event without reading every statement.
    async fn events_of_type(
        &self,
        event_type: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// Leaf hashes of the events at ledger indexes `from..to` (index = seq - 1), in order.
    async fn leaf_hashes(&self, from: u64, to: u64) -> Result<Vec<latch_ledger::Hash>, StoreError>;

    /// Keeps the roots of perfect subtrees of the ledger's tree, so that proofs need O(log² n)
    /// hashes rather than every leaf. Only levels 4 and up are written (a sixteenth of the
    /// nodes); [`Store::tree_nodes`] folds the lower ones from their leaves. Storing one twice
    /// is harmless.
    async fn add_tree_nodes(
        &self,
        nodes: &[(latch_ledger::NodeId, latch_ledger::Hash)],
    ) -> Result<(), StoreError>;

    /// The stored roots of `nodes` (level 0 is an event's leaf hash), in order; an error names
    /// the first that is missing.
    async fn tree_nodes(
        &self,
        nodes: &[latch_ledger::NodeId],
    ) -> Result<Vec<latch_ledger::Hash>, StoreError>;

    /// Keeps a signed checkpoint; one per tree size (a second one for a size is ignored).
    async fn add_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError>;

    /// Every checkpoint, smallest first (for the verifier and the export, which read them all).
    async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>, StoreError>;

    /// The checkpoint of tree size `size`, or the latest with `None`: one row, however many
    /// checkpoints are kept (one a second adds 86,400 a day).
    async fn checkpoint(&self, size: Option<u64>) -> Result<Option<StoredCheckpoint>, StoreError>;

    /// The projected requests with these ids (absent ones are left out), in no particular order.
    async fn requests_by_id(&self, ids: &[String]) -> Result<Vec<AccessRequest>, StoreError>;

    /// The projected requests whose last event has `seq` in `after + 1 ..= upto`, with it: a
    /// verifier compares each with its replay when the log reaches that event.
    async fn requests_finished_between(
        &self,
        after: u64,
        upto: u64,
    ) -> Result<Vec<(u64, AccessRequest)>, StoreError>;

    /// Projected requests that no `request.created` event made, at most `limit`.
    async fn orphan_requests(&self, limit: u32) -> Result<Vec<String>, StoreError>;

    /// The first disagreement between the index of statements by session and the statement
    /// events it indexes, as (session, what is wrong): a statement indexed under the wrong
    /// session or not at all would be missing from `latch sessions show`.
    async fn statement_index_drift(&self) -> Result<Option<(String, String)>, StoreError>;

    /// Replays every event and compares the result with the projections.
    async fn verify_projections(&self) -> Result<Vec<Drift>, StoreError>;

    /// Whether the database answers (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;

    /// How far the access-summary projection has folded the ledger (the last `seq` folded).
    async fn summary_cursor(&self) -> Result<u64, StoreError>;

    /// The stored summaries with these keys (absent ones are left out), in no order.
    async fn summaries_by_key(&self, keys: &[String]) -> Result<Vec<SummaryRecord>, StoreError>;

    /// `(session id, key)` of the sessions among `session_ids` the projection has learnt.
    async fn summary_sessions(
        &self,
        session_ids: &[String],
    ) -> Result<Vec<(String, String)>, StoreError>;

    /// Saves folded summaries (replacing stored ones) and sessions learnt, and moves the cursor
    /// from `from` to `to`, in one transaction; `false`, with nothing saved, when the cursor
    /// was not at `from` (another follower folded those events first).
    async fn save_summaries(
        &self,
        from: u64,
        to: u64,
        summaries: &[SummaryRecord],
        sessions: &[(String, String)],
    ) -> Result<bool, StoreError>;

    /// At most `limit` of the summaries `range` selects, ordered by request time then
    /// `created_seq`, after `after` (keyset paging: every page costs the same).
    async fn summaries_page(
        &self,
        range: &SummaryRange,
        after: Option<SummaryPosition>,
        limit: u32,
    ) -> Result<Vec<SummaryRecord>, StoreError>;

    /// The rendered report lines (`SummaryRecord::csv`) of the summaries `range` selects, in
    /// the order of [`Store::summaries_page`], sent to `lines` in runs of whole lines as they
    /// are read: a report's memory does not grow with its period. Returns once every line is
    /// sent, or early, without error, when the receiver is dropped.
    async fn summary_lines(
        &self,
        range: &SummaryRange,
        lines: tokio::sync::mpsc::Sender<ReportLines>,
    ) -> Result<(), StoreError>;
}
