//! The fold: ledger events → one `AccessRow` per request created in the period.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use latch_core::{Actor, EventKind, StoredEvent, Timestamp};
use serde_json::{Value, json};

/// One access request and everything that followed from it, as a reviewer reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRow {
    pub request_id: String,
    pub requester: String,
    pub resource: String,
    pub role: String,
    pub reason: String,
    pub ticket: Option<String>,
    /// Who approved, with their comment, in the order they approved.
    pub approvers: Vec<(String, Option<String>)>,
    pub requested_at: Timestamp,
    /// When the request was approved or denied.
    pub decided_at: Option<Timestamp>,
    pub granted_at: Option<Timestamp>,
    /// When the grant expired or was revoked, or the request was cancelled or timed out.
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
    fn admits(&self, at: Timestamp, requester: &str, resource: &str) -> bool {
        at >= self.from
            && at < self.to
            && self
                .team
                .as_ref()
                .is_none_or(|(_, members)| members.contains(requester))
            && self.resource.as_deref().is_none_or(|only| only == resource)
    }
}

/// The row under construction, with what the fold needs but the row does not show.
struct Building {
    row: AccessRow,
    first_session_start: Option<Timestamp>,
    last_session_end: Option<Timestamp>,
}

/// The row key of a request id: what follows `req_` (or the whole id).
fn row_key(request_id: &str) -> &str {
    request_id.strip_prefix("req_").unwrap_or(request_id)
}

/// The row key of a grant id (`grt_X` → `X`); `None` for what is not a grant id.
fn grant_key(grant_id: &str) -> Option<&str> {
    grant_id.strip_prefix("grt_")
}

fn actor_name(actor: &Actor) -> String {
    match actor {
        Actor::User(name) => name.clone(),
        Actor::System => "system".to_owned(),
    }
}

fn secs_between(start: Timestamp, end: Timestamp) -> Option<u64> {
    u64::try_from(end.millis_since(start) / 1000).ok()
}

/// Folds `events` (in `seq` order) into one row per request created in `[from, to)` that
/// passes the filter, in the order the requests were created. Events about other requests
/// (created before the period, or filtered out) are ignored.
pub fn access_rows(events: &[StoredEvent], filter: &ReportFilter) -> Vec<AccessRow> {
    // Rows are keyed by what a request id and its grant id share (`req_X` / `grt_X` → `X`), so
    // the events of a grant and its sessions find their row without building an id each time:
    // this fold runs over every statement of a period.
    let mut order: Vec<String> = Vec::new();
    let mut rows: HashMap<String, Building> = HashMap::new();
    // Session id → row key, learnt from `session.started`.
    let mut sessions: HashMap<String, String> = HashMap::new();

    for stored in events {
        let event = &stored.event;
        let at = event.at;
        let subject = event.subject.as_str();
        if let EventKind::RequestCreated {
            requester,
            resource,
            role,
            duration_secs: _,
            reason,
            ticket,
            ..
        } = &event.kind
        {
            let key = row_key(subject);
            if filter.admits(at, requester, resource) && !rows.contains_key(key) {
                order.push(key.to_owned());
                rows.insert(
                    key.to_owned(),
                    Building {
                        row: AccessRow {
                            request_id: subject.to_owned(),
                            requester: requester.clone(),
                            resource: resource.clone(),
                            role: role.clone(),
                            reason: reason.clone(),
                            ticket: ticket.clone(),
                            approvers: Vec::new(),
                            requested_at: at,
                            decided_at: None,
                            granted_at: None,
                            ended_at: None,
                            duration_granted_secs: None,
                            duration_used_secs: None,
                            outcome: "pending".to_owned(),
                            break_glass: false,
                            sessions: 0,
                            statements_by_class: BTreeMap::new(),
                            findings: Vec::new(),
                        },
                        first_session_start: None,
                        last_session_end: None,
                    },
                );
            }
            continue;
        }

        let key: &str = match &event.kind {
            EventKind::GrantIssued { grant_id, .. }
            | EventKind::GrantExpired { grant_id }
            | EventKind::GrantRevoked { grant_id, .. } => grant_key(grant_id).unwrap_or(subject),
            EventKind::SessionStarted { grant_id, .. } => {
                let Some(key) = grant_key(grant_id) else {
                    continue;
                };
                if rows.contains_key(key) {
                    sessions.insert(subject.to_owned(), key.to_owned());
                }
                key
            }
            EventKind::SessionStatement { grant_id, .. }
            | EventKind::SessionEnded { grant_id, .. } => match grant_key(grant_id) {
                Some(key) => key,
                None => continue,
            },
            EventKind::FindingOpened { about, .. } => {
                if about.starts_with("req_") {
                    row_key(about)
                } else if let Some(key) = grant_key(about) {
                    key
                } else if let Some(key) = sessions.get(about.as_str()) {
                    key.as_str()
                } else {
                    continue;
                }
            }
            _ => subject,
        };
        let Some(building) = rows.get_mut(row_key(key)) else {
            continue;
        };
        let row = &mut building.row;
        match &event.kind {
            EventKind::ApprovalRecorded { comment, .. } => {
                row.approvers
                    .push((actor_name(&event.actor), comment.clone()));
            }
            EventKind::RequestApproved {
                comment,
                break_glass,
                ..
            } => {
                row.approvers
                    .push((actor_name(&event.actor), comment.clone()));
                row.decided_at = Some(at);
                row.break_glass |= *break_glass;
            }
            EventKind::RequestDenied { .. } => {
                row.decided_at = Some(at);
                row.outcome = format!("denied by {}", actor_name(&event.actor));
            }
            EventKind::RequestCancelled {} => {
                row.ended_at = Some(at);
                row.outcome = "cancelled".to_owned();
            }
            EventKind::RequestTimedOut {} => {
                row.ended_at = Some(at);
                row.outcome = "timed out".to_owned();
            }
            EventKind::GrantIssued {
                starts_at,
                expires_at,
                ..
            } => {
                row.granted_at = Some(*starts_at);
                row.duration_granted_secs = secs_between(*starts_at, *expires_at);
                row.outcome = "active".to_owned();
            }
            EventKind::GrantExpired { .. } => {
                row.ended_at = Some(at);
                row.outcome = "expired".to_owned();
            }
            EventKind::GrantRevoked { .. } => {
                row.ended_at = Some(at);
                row.outcome = format!("revoked by {}", actor_name(&event.actor));
            }
            EventKind::SessionStarted { .. } => {
                row.sessions += 1;
                building.first_session_start = Some(
                    building
                        .first_session_start
                        .map_or(at, |first| first.min(at)),
                );
            }
            EventKind::SessionEnded { .. } => {
                building.last_session_end =
                    Some(building.last_session_end.map_or(at, |last| last.max(at)));
            }
            EventKind::SessionStatement { class, .. } => {
                match row.statements_by_class.get_mut(class.as_str()) {
                    Some(count) => *count += 1,
                    None => {
                        row.statements_by_class.insert(class.clone(), 1);
                    }
                }
            }
            EventKind::FindingOpened { .. } if !row.findings.iter().any(|id| id == subject) => {
                row.findings.push(subject.to_owned());
            }
            _ => {}
        }
    }

    order
        .into_iter()
        .filter_map(|id| rows.remove(&id))
        .map(|mut building| {
            if let (Some(start), Some(end)) =
                (building.first_session_start, building.last_session_end)
            {
                building.row.duration_used_secs = secs_between(start, end);
            }
            building.row
        })
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
