//! The notification outbox: what is to be sent where, kept until it is delivered, so that a
//! channel that is down delays its messages and loses none. Deliveries are not ledger events
//! (the events they announce are); the outbox is operational state.

use latch_core::Timestamp;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::StoreError;

/// A message to send: `notice_id` and `channel` together identify it, so queueing the same
/// notice twice (a restart re-reading events) sends it once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxItem {
    pub notice_id: String,
    pub channel: String,
    /// The rendered message (JSON).
    pub payload: String,
    /// Held for the channel's digest (status `held`) rather than queued for delivery: the
    /// payload is then the notice itself, rendered with others when the digest falls due.
    pub held: bool,
}

/// A queued message with its delivery state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: String,
    pub notice_id: String,
    pub channel: String,
    pub payload: String,
    pub created_at: Timestamp,
    pub attempts: u32,
    pub next_attempt: Timestamp,
    /// `pending`, `sent` or `dead` (gave up after the last attempt).
    pub status: String,
    pub last_error: Option<String>,
    pub sent_at: Option<Timestamp>,
}

pub(crate) fn outbox_id(item: &OutboxItem) -> String {
    format!("{}/{}", item.notice_id, item.channel)
}

pub(crate) const OUTBOX_COLUMNS: &str = "id, notice_id, channel, payload, created_at_ms, attempts, next_attempt_ms, status, \
     last_error, sent_at_ms";

pub(crate) fn outbox_from_row(row: &AnyRow) -> Result<OutboxRow, StoreError> {
    Ok(OutboxRow {
        id: row.try_get("id")?,
        notice_id: row.try_get("notice_id")?,
        channel: row.try_get("channel")?,
        payload: row.try_get("payload")?,
        created_at: Timestamp::from_millis(row.try_get("created_at_ms")?),
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
        next_attempt: Timestamp::from_millis(row.try_get("next_attempt_ms")?),
        status: row.try_get("status")?,
        last_error: row.try_get("last_error")?,
        sent_at: row
            .try_get::<Option<i64>, _>("sent_at_ms")?
            .map(Timestamp::from_millis),
    })
}
