//! The per-access summary: everything the reports and the analytics say about one request,
//! folded event by event. A store keeps one summary per request up to date as the ledger grows
//! (the access-summary projection), so that a period is read as its accesses rather than
//! refolded from its events: a year of a busy organisation is a million accesses but eleven
//! million events, nearly all of them statements.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use latch_core::{Actor, Event, EventKind, StoredEvent, Timestamp};
use serde::{Deserialize, Serialize};

use crate::AccessRow;

/// One approver's decision on a request (a break-glass self-approval is none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub approver: String,
    #[serde(with = "millis")]
    pub at: Timestamp,
    pub approved: bool,
}

/// A request and everything that followed from it, with what the report row does not show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessSummary {
    /// `seq` of its `request.created`: reports list accesses in this order.
    pub created_seq: u64,
    pub row: AccessRow,
    #[serde(with = "opt_millis")]
    pub first_session_start: Option<Timestamp>,
    #[serde(with = "opt_millis")]
    pub last_session_end: Option<Timestamp>,
    /// Every approval and denial, in order.
    pub decisions: Vec<Decision>,
    /// Object → statements of its grant that touched it.
    pub objects: BTreeMap<String, u64>,
    /// `(checkpoint, severity)` of each finding in `row.findings`, index for index.
    pub finding_kinds: Vec<(String, String)>,
}

impl AccessSummary {
    /// Its request id's key: what follows `req_` (or the whole id).
    pub fn key(&self) -> &str {
        row_key(&self.row.request_id)
    }
}

/// What a summary must be loaded by before an event can be folded into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup<'e> {
    /// The event starts a summary or is about no access.
    Nothing,
    /// The summary of this key (see [`AccessSummary::key`]).
    Key(&'e str),
    /// The summary of the access this gateway session ran under.
    Session(&'e str),
}

/// The key of a request id: what follows `req_` (or the whole id).
pub fn row_key(request_id: &str) -> &str {
    request_id.strip_prefix("req_").unwrap_or(request_id)
}

/// The key of a grant id (`grt_X` → `X`); `None` for what is not a grant id.
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

/// Which summary `event` belongs to. Rows are keyed by what a request id and its grant id
/// share (`req_X` / `grt_X` → `X`), so the events of a grant and of its sessions find their
/// summary without building an id each time: this runs for every statement.
pub fn lookup(event: &Event) -> Lookup<'_> {
    let subject = event.subject.as_str();
    match &event.kind {
        EventKind::RequestCreated { .. } => Lookup::Nothing,
        EventKind::GrantIssued { grant_id, .. }
        | EventKind::GrantExpired { grant_id }
        | EventKind::GrantRevoked { grant_id, .. } => {
            Lookup::Key(grant_key(grant_id).unwrap_or(row_key(subject)))
        }
        EventKind::SessionStarted { grant_id, .. }
        | EventKind::SessionStatement { grant_id, .. }
        | EventKind::SessionEnded { grant_id, .. } => match grant_key(grant_id) {
            Some(key) => Lookup::Key(key),
            None => Lookup::Nothing,
        },
        EventKind::FindingOpened { about, .. } => {
            if about.starts_with("req_") {
                Lookup::Key(row_key(about))
            } else if let Some(key) = grant_key(about) {
                Lookup::Key(key)
            } else {
                Lookup::Session(about)
            }
        }
        EventKind::ApprovalRecorded { .. }
        | EventKind::RequestApproved { .. }
        | EventKind::RequestDenied { .. }
        | EventKind::RequestCancelled {}
        | EventKind::RequestTimedOut {} => Lookup::Key(row_key(subject)),
        _ => Lookup::Nothing,
    }
}

/// Summaries under construction. Fold events in `seq` order with [`AccessFold::observe`]; a
/// fold that starts partway through the ledger is first given the summaries (and sessions)
/// its events need ([`lookup`]), as the store's projection does page by page.
#[derive(Default)]
pub struct AccessFold {
    summaries: HashMap<String, AccessSummary>,
    /// Session id → key, learnt from `session.started`.
    sessions: HashMap<String, String>,
    changed: HashSet<String>,
    new_sessions: Vec<(String, String)>,
}

impl AccessFold {
    pub fn new() -> Self {
        Self::default()
    }

    /// A summary folded earlier, to fold later events into.
    pub fn load(&mut self, summary: AccessSummary) {
        self.summaries.insert(summary.key().to_owned(), summary);
    }

    /// A session learnt earlier: `session_id` ran under the access of `key`.
    pub fn load_session(&mut self, session_id: String, key: String) {
        self.sessions.insert(session_id, key);
    }

    /// Whether the fold already holds what `lookup` names.
    pub fn holds(&self, lookup: Lookup<'_>) -> bool {
        match lookup {
            Lookup::Nothing => true,
            Lookup::Key(key) => self.summaries.contains_key(key),
            Lookup::Session(id) => self.sessions.contains_key(id),
        }
    }

    /// Folds the next event of the ledger in.
    pub fn observe(&mut self, stored: &StoredEvent) {
        let event = &stored.event;
        let at = event.at;
        let subject = event.subject.as_str();
        if let EventKind::RequestCreated {
            requester,
            resource,
            role,
            reason,
            ticket,
            ..
        } = &event.kind
        {
            let key = row_key(subject);
            if !self.summaries.contains_key(key) {
                self.summaries.insert(
                    key.to_owned(),
                    AccessSummary {
                        created_seq: stored.seq,
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
                        decisions: Vec::new(),
                        objects: BTreeMap::new(),
                        finding_kinds: Vec::new(),
                    },
                );
                self.changed.insert(key.to_owned());
            }
            return;
        }
        let key: Cow<'_, str> = match lookup(event) {
            Lookup::Nothing => return,
            Lookup::Key(key) => Cow::Borrowed(key),
            // Rare (findings about a session): the key is copied out of the session map.
            Lookup::Session(id) => match self.sessions.get(id) {
                Some(key) => Cow::Owned(key.clone()),
                None => return,
            },
        };
        let key = key.as_ref();
        let Some(summary) = self.summaries.get_mut(key) else {
            return;
        };
        if !self.changed.contains(key) {
            self.changed.insert(key.to_owned());
        }
        let row = &mut summary.row;
        match &event.kind {
            EventKind::ApprovalRecorded { comment, .. } => {
                row.approvers
                    .push((actor_name(&event.actor), comment.clone()));
                summary.decisions.push(Decision {
                    approver: actor_name(&event.actor),
                    at,
                    approved: true,
                });
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
                if !*break_glass {
                    summary.decisions.push(Decision {
                        approver: actor_name(&event.actor),
                        at,
                        approved: true,
                    });
                }
            }
            EventKind::RequestDenied { .. } => {
                row.decided_at = Some(at);
                row.outcome = format!("denied by {}", actor_name(&event.actor));
                summary.decisions.push(Decision {
                    approver: actor_name(&event.actor),
                    at,
                    approved: false,
                });
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
                summary.first_session_start = Some(
                    summary
                        .first_session_start
                        .map_or(at, |first| first.min(at)),
                );
                self.sessions.insert(subject.to_owned(), key.to_owned());
                self.new_sessions.push((subject.to_owned(), key.to_owned()));
            }
            EventKind::SessionEnded { .. } => {
                let end = Some(summary.last_session_end.map_or(at, |last| last.max(at)));
                summary.last_session_end = end;
                if let (Some(start), Some(end)) = (summary.first_session_start, end) {
                    row.duration_used_secs = secs_between(start, end);
                }
            }
            EventKind::SessionStatement { class, objects, .. } => {
                match row.statements_by_class.get_mut(class.as_str()) {
                    Some(count) => *count += 1,
                    None => {
                        row.statements_by_class.insert(class.clone(), 1);
                    }
                }
                for object in objects {
                    match summary.objects.get_mut(object.as_str()) {
                        Some(count) => *count += 1,
                        None => {
                            summary.objects.insert(object.clone(), 1);
                        }
                    }
                }
            }
            EventKind::FindingOpened {
                checkpoint,
                severity,
                ..
            } if !row.findings.iter().any(|id| id == subject) => {
                row.findings.push(subject.to_owned());
                summary
                    .finding_kinds
                    .push((checkpoint.clone(), severity.clone()));
            }
            _ => {}
        }
    }

    /// The summaries changed since the last call and the sessions learnt, which the store's
    /// projection saves; the fold then forgets them (a page at a time stays small).
    pub fn take_changed(&mut self) -> (Vec<AccessSummary>, Vec<(String, String)>) {
        let changed: Vec<AccessSummary> = self
            .changed
            .drain()
            .filter_map(|key| self.summaries.remove(&key))
            .collect();
        self.summaries.clear();
        self.sessions.clear();
        (changed, std::mem::take(&mut self.new_sessions))
    }

    /// Every summary, in the order the requests were created.
    pub fn into_summaries(self) -> Vec<AccessSummary> {
        let mut all: Vec<AccessSummary> = self.summaries.into_values().collect();
        all.sort_unstable_by_key(|summary| summary.created_seq);
        all
    }
}

/// Folds a whole ledger (`events` in `seq` order, from the first) into its summaries, in the
/// order the requests were created.
pub fn summarize(events: &[StoredEvent]) -> Vec<AccessSummary> {
    let mut fold = AccessFold::new();
    for stored in events {
        fold.observe(stored);
    }
    fold.into_summaries()
}

/// Times as milliseconds since the epoch: a summary is decoded by the hundred thousand.
pub(crate) mod millis {
    use latch_core::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(at.as_millis())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        i64::deserialize(deserializer).map(Timestamp::from_millis)
    }
}

pub(crate) mod opt_millis {
    use latch_core::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        at: &Option<Timestamp>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => serializer.serialize_some(&at.as_millis()),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Timestamp>, D::Error> {
        Option::<i64>::deserialize(deserializer).map(|at| at.map(Timestamp::from_millis))
    }
}
