//! One `AccessRow` per request created in the period, and its JSON.

use std::collections::{BTreeMap, BTreeSet};

use latch_core::{StoredEvent, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::summary::{millis, opt_millis};

/// One access request and everything that followed from it, as a reviewer reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRow {
    pub request_id: String,
    pub requester: String,
    pub resource: String,
    pub role: String,
    pub reason: String,
    pub ticket: Option<String>,
    /// Who approved, with their comment, in the order they approved.
    pub approvers: Vec<(String, Option<String>)>,
    #[serde(with = "millis")]
    pub requested_at: Timestamp,
    /// When the request was approved or denied.
    #[serde(with = "opt_millis")]
    pub decided_at: Option<Timestamp>,
    #[serde(with = "opt_millis")]
    pub granted_at: Option<Timestamp>,
    /// When the grant expired or was revoked, or the request was cancelled or timed out.
    #[serde(with = "opt_millis")]
    pub ended_at: Option<Timestamp>,
    /// How long the grant was issued for.
    pub duration_granted_secs: Option<u64>,
    /// From the first session's start to the last session's end: how much of it was used.
    pub duration_used_secs: Option<u64>,
    /// `expired`, `revoked by X`, `cancelled`, `denied by X`, `timed out`, `pending` or `active`.
    pub outcome: String,
    /// The requester approved their own request in an emergency.
    pub break_glass: bool,
    pub sessions: u64,
    /// Statements run through the gateway, counted by their class (`read`, `write`, `ddl`, …).
    pub statements_by_class: BTreeMap<String, u64>,
    /// Ids of the audit findings about the request, its grant or its sessions.
    pub findings: Vec<String>,
}

/// Which requests a report covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportFilter {
    /// Requests created at or after this instant…
    pub from: Timestamp,
    /// …and strictly before this one.
    pub to: Timestamp,
    /// Only requests by members of this team (its name, its members).
    pub team: Option<(String, BTreeSet<String>)>,
    /// Only requests for this resource.
    pub resource: Option<String>,
}

impl ReportFilter {
    /// Whether the report covers this access.
    pub fn admits_row(&self, row: &AccessRow) -> bool {
        row.in_scope(
            self.from,
            self.to,
            self.team.as_ref(),
            self.resource.as_deref(),
        )
    }
}

impl AccessRow {
    /// Whether the request was created in `[from, to)`, by a member of `team` and for
    /// `resource` when they are given: the filters every report and the analytics share.
    pub fn in_scope(
        &self,
        from: Timestamp,
        to: Timestamp,
        team: Option<&(String, BTreeSet<String>)>,
        resource: Option<&str>,
    ) -> bool {
        self.requested_at >= from
            && self.requested_at < to
            && team.is_none_or(|(_, members)| members.contains(&self.requester))
            && resource.is_none_or(|only| only == self.resource)
    }
}

/// Folds `events` (in `seq` order, from the first) into one row per request created in
/// `[from, to)` that passes the filter, in the order the requests were created.
pub fn access_rows(events: &[StoredEvent], filter: &ReportFilter) -> Vec<AccessRow> {
    crate::summarize(events)
        .into_iter()
        .filter(|summary| filter.admits_row(&summary.row))
        .map(|summary| summary.row)
        .collect()
}

fn time(at: Option<Timestamp>) -> Value {
    at.map_or(Value::Null, |at| Value::String(at.to_string()))
}

/// The rows as a JSON array; times are RFC 3339 UTC strings, absent values `null`.
pub fn to_json(rows: &[AccessRow]) -> Value {
    Value::Array(
        rows.iter()
            .map(|row| {
                json!({
                    "request_id": row.request_id,
                    "requester": row.requester,
                    "resource": row.resource,
                    "role": row.role,
                    "reason": row.reason,
                    "ticket": row.ticket,
                    "approvers": row.approvers.iter().map(|(who, comment)| json!({"who": who, "comment": comment})).collect::<Vec<_>>(),
                    "requested_at": row.requested_at.to_string(),
                    "decided_at": time(row.decided_at),
                    "granted_at": time(row.granted_at),
                    "ended_at": time(row.ended_at),
                    "duration_granted_secs": row.duration_granted_secs,
                    "duration_used_secs": row.duration_used_secs,
                    "outcome": row.outcome,
                    "break_glass": row.break_glass,
                    "sessions": row.sessions,
                    "statements_by_class": row.statements_by_class,
                    "findings": row.findings,
                })
            })
            .collect(),
    )
}
