//! Audit findings: opened once per key (re-evaluating history finds the same keys and opens
//! nothing new), with their status changes, each a ledger event in the same transaction as its
//! row.

use latch_core::{Actor, Event, EventKind, StoredEvent, Timestamp};
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::StoreError;
use crate::sql::clamp_i64;

/// A finding to open, as a checkpoint reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewFinding {
    /// Deterministic: the same occurrence always has the same key.
    pub key: String,
    pub checkpoint: String,
    /// `info`, `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// The request, grant or session it is about.
    pub about: String,
    pub summary: String,
    pub evidence: Vec<u64>,
    pub at: Timestamp,
}

/// A finding as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FindingRow {
    pub id: String,
    pub key: String,
    pub checkpoint: String,
    pub severity: String,
    pub about: String,
    pub summary: String,
    pub evidence: Vec<u64>,
    pub first_seen: Timestamp,
    /// The `finding.opened` event.
    pub opened_seq: u64,
    /// `open`, `acknowledged` or `resolved`.
    pub status: String,
    pub status_by: Option<String>,
    pub status_comment: Option<String>,
    pub status_at: Option<Timestamp>,
}

/// Which findings to list.
#[derive(Clone, Debug)]
pub struct FindingFilter {
    /// Only findings not resolved.
    pub open_only: bool,
    /// Only this severity or worse.
    pub min_severity: Option<String>,
    pub checkpoint: Option<String>,
    pub limit: u32,
}

impl Default for FindingFilter {
    fn default() -> Self {
        Self {
            open_only: false,
            min_severity: None,
            checkpoint: None,
            limit: 100,
        }
    }
}

/// Severities from least to most serious.
pub const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];

pub fn severity_rank(severity: &str) -> Option<i64> {
    SEVERITIES
        .iter()
        .position(|s| *s == severity)
        .and_then(|i| i64::try_from(i).ok())
}

/// The id of the finding with `key`: derived, so the same occurrence has the same id anywhere.
pub fn finding_id(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("fnd_{}", hex::encode(digest.get(..13).unwrap_or_default()))
}

pub(crate) const FINDING_COLUMNS: &str = "id, finding_key, checkpoint, severity, about, summary, evidence, \
     first_seen_ms, opened_seq, status, status_by, status_comment, status_at_ms";

pub(crate) fn finding_from_row(row: &AnyRow) -> Result<FindingRow, StoreError> {
    let evidence: String = row.try_get("evidence")?;
    Ok(FindingRow {
        id: row.try_get("id")?,
        key: row.try_get("finding_key")?,
        checkpoint: row.try_get("checkpoint")?,
        severity: row.try_get("severity")?,
        about: row.try_get("about")?,
        summary: row.try_get("summary")?,
        evidence: evidence.split(',').filter_map(|s| s.parse().ok()).collect(),
        first_seen: Timestamp::from_millis(row.try_get("first_seen_ms")?),
        opened_seq: u64::try_from(row.try_get::<i64, _>("opened_seq")?).unwrap_or(0),
        status: row.try_get("status")?,
        status_by: row.try_get("status_by")?,
        status_comment: row.try_get("status_comment")?,
        status_at: row
            .try_get::<Option<i64>, _>("status_at_ms")?
            .map(Timestamp::from_millis),
    })
}

/// The `finding.opened` event of `finding`.
pub(crate) fn opened_event(finding: &NewFinding) -> Event {
    Event {
        at: finding.at,
        actor: Actor::System,
        subject: finding_id(&finding.key),
        kind: EventKind::FindingOpened {
            key: finding.key.clone(),
            checkpoint: finding.checkpoint.clone(),
            severity: finding.severity.clone(),
            about: finding.about.clone(),
            summary: finding.summary.clone(),
            evidence: finding.evidence.clone(),
        },
    }
}

/// The row values of an opened finding.
pub(crate) fn row_values(finding: &NewFinding, event: &StoredEvent) -> Vec<crate::batch::Val> {
    use crate::batch::Val;
    vec![
        Val::Text(finding_id(&finding.key)),
        Val::Text(finding.key.clone()),
        Val::Text(finding.checkpoint.clone()),
        Val::Text(finding.severity.clone()),
        Val::Int(severity_rank(&finding.severity).unwrap_or(0)),
        Val::Text(finding.about.clone()),
        Val::Text(finding.summary.clone()),
        Val::Text(
            finding
                .evidence
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ),
        Val::Int(finding.at.as_millis()),
        Val::Int(clamp_i64(event.seq)),
        Val::Text("open".to_owned()),
    ]
}

pub(crate) const ROW_COLUMNS: [&str; 11] = [
    "id",
    "finding_key",
    "checkpoint",
    "severity",
    "severity_rank",
    "about",
    "summary",
    "evidence",
    "first_seen_ms",
    "opened_seq",
    "status",
];
