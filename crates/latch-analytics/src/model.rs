//! What the analytics say: plain data, serialisable, with its OpenAPI schema.

use std::collections::BTreeMap;

use latch_core::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Everything the dashboard shows for one period and filter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Analytics {
    /// Requests created at or after this instant (RFC 3339 UTC)…
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    /// …and before this one.
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
    /// The filters applied, as given.
    pub team: Option<String>,
    pub resource: Option<String>,
    pub principal: Option<String>,
    pub approver: Option<String>,
    /// Requests covered.
    pub requests: u64,
    pub outcomes: Outcomes,
    /// Requests per UTC day, days without any included.
    pub volume: Vec<DayVolume>,
    /// Time from request to its decision (approved or denied; break-glass self-approvals
    /// excluded) over all requests covered; `None` without decisions.
    pub latency: Option<LatencyStats>,
    /// The same per team of the requester (a requester in two teams counts in both).
    pub latency_by_team: Vec<NamedLatency>,
    /// The same per resource.
    pub latency_by_resource: Vec<NamedLatency>,
    /// Each approver's decisions and the time from request to their decision.
    pub approvers: Vec<ApproverStats>,
    pub durations: Durations,
    pub usage: Usage,
    /// Findings about the requests covered, their grants or sessions.
    pub findings: Vec<FindingCount>,
    pub top_requesters: Vec<Count>,
    /// By decisions (approvals and denials).
    pub top_approvers: Vec<Count>,
    pub top_resources: Vec<Count>,
    /// Requests on a resource with a ticket pattern whose ticket is missing or does not match.
    pub ticket_mismatches: Vec<TicketMismatch>,
    /// Grants issued, all of them (`grants` lists at most a configured number).
    pub grants_total: u64,
    /// What each grant was used for, newest first.
    pub grants: Vec<GrantUsage>,
    pub recommendations: Vec<Recommendation>,
}

/// How the requests covered ended (or stand). The rates are shares of all requests covered,
/// pending ones included, from 0 to 1.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Outcomes {
    /// Approved (a grant was issued), break-glass included.
    pub approved: u64,
    pub denied: u64,
    pub timed_out: u64,
    pub cancelled: u64,
    /// Still waiting for a decision at the end of the history.
    pub pending: u64,
    /// Approved by the requester themselves in an emergency.
    pub break_glass: u64,
    pub approval_rate: f64,
    pub denial_rate: f64,
    pub timeout_rate: f64,
    pub cancel_rate: f64,
}

/// Requests created on one UTC day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DayVolume {
    /// `YYYY-MM-DD`.
    pub date: String,
    pub requests: u64,
    /// Of which approved.
    pub approved: u64,
    /// Of which denied.
    pub denied: u64,
}

/// A distribution of waiting times. Percentiles are nearest-rank: the median of an even
/// count is the lower of the two middle values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LatencyStats {
    pub decisions: u64,
    pub median_secs: u64,
    pub p95_secs: u64,
    pub max_secs: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NamedLatency {
    /// The team or resource.
    pub name: String,
    #[serde(flatten)]
    pub stats: LatencyStats,
}

/// One approver's decisions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApproverStats {
    pub approver: String,
    /// Approvals (counted or final) and denials.
    pub approvals: u64,
    pub denials: u64,
    /// Time from request to this approver's decision.
    #[serde(flatten)]
    pub stats: LatencyStats,
}

/// Granted against used time, over the grants that ended (expired or revoked): an active
/// grant's use is not known yet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Durations {
    /// Grants issued.
    pub grants: u64,
    /// Of which ended.
    pub ended_grants: u64,
    /// Ended grants under which no session was opened.
    pub unused_grants: u64,
    /// `unused_grants / ended_grants` (0 without ended grants).
    pub unused_rate: f64,
    pub granted_total_secs: u64,
    /// From each grant's first session start to its last session end.
    pub used_total_secs: u64,
    pub granted_median_secs: u64,
    pub used_median_secs: u64,
}

/// Gateway sessions and their statements.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Usage {
    pub sessions: u64,
    pub statements: u64,
    /// Statements by class (`read`, `write`, `ddl`, `privilege`, `other`, `unparsed`).
    pub statements_by_class: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FindingCount {
    pub checkpoint: String,
    pub severity: String,
    pub count: u64,
}

/// A name and how often it appears.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Count {
    pub name: String,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TicketMismatch {
    pub request_id: String,
    pub requester: String,
    pub resource: String,
    /// `None`: no ticket given.
    pub ticket: Option<String>,
    /// The resource's pattern, as configured.
    pub pattern: String,
}

/// What one grant was used for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GrantUsage {
    pub grant_id: String,
    pub request_id: String,
    pub requester: String,
    pub resource: String,
    pub role: String,
    #[schema(value_type = String, format = DateTime)]
    pub granted_at: Timestamp,
    pub granted_secs: u64,
    /// 0 when no session was opened.
    pub used_secs: u64,
    /// `expired`, `revoked by X` or `active`.
    pub outcome: String,
    pub sessions: u64,
    pub statements_by_class: BTreeMap<String, u64>,
    /// Each object (`schema.table`, as the classifier names it) and the statements touching it.
    pub objects: BTreeMap<String, u64>,
}

/// A change the history suggests, with the figures and ids that support it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Recommendation {
    /// One team keeps asking for the same resource: consider a base permission.
    StandingAccess {
        team: String,
        resource: String,
        /// Requests by the team's members for the resource in the period.
        requests: u64,
        /// Of which approved.
        approved: u64,
        /// Distinct requesters.
        requesters: u64,
        /// Roles asked for.
        roles: Vec<String>,
        /// The requests (at most the configured number, oldest first).
        request_ids: Vec<String>,
    },
    /// Grants of a role last far longer than they are used: consider a shorter duration.
    OverlongDuration {
        resource: String,
        role: String,
        /// Ended grants judged.
        grants: u64,
        median_granted_secs: u64,
        median_used_secs: u64,
        /// `median_used_secs / median_granted_secs`.
        used_ratio: f64,
        /// The 95th percentile of use, rounded up to a quarter hour.
        suggested_secs: u64,
        grant_ids: Vec<String>,
    },
    /// Requests of a team, or for a resource, wait long for a decision.
    SlowApproval {
        /// `team` or `resource`.
        scope: String,
        name: String,
        decisions: u64,
        median_secs: u64,
        p95_secs: u64,
        /// The slowest requests first.
        request_ids: Vec<String>,
    },
    /// An approver who approved everything they decided.
    NeverDenies {
        approver: String,
        decisions: u64,
        median_secs: u64,
        /// The requests they approved.
        request_ids: Vec<String>,
    },
}

impl Recommendation {
    /// One sentence for a person, with the figures.
    pub fn summary(&self) -> String {
        match self {
            Self::StandingAccess {
                team,
                resource,
                requests,
                approved,
                requesters,
                ..
            } => format!(
                "team `{team}` asked for `{resource}` {requests} times ({approved} approved, \
                 {requesters} requesters): consider standing access"
            ),
            Self::OverlongDuration {
                resource,
                role,
                grants,
                median_granted_secs,
                median_used_secs,
                suggested_secs,
                ..
            } => format!(
                "`{role}` on `{resource}`: {grants} grants used a median {} of {} granted: \
                 consider {} by default",
                human_secs(*median_used_secs),
                human_secs(*median_granted_secs),
                human_secs(*suggested_secs)
            ),
            Self::SlowApproval {
                scope,
                name,
                decisions,
                median_secs,
                p95_secs,
                ..
            } => format!(
                "requests of {scope} `{name}` wait {} for a decision at p95 (median {}, \
                 {decisions} decisions): add approvers or escalate sooner",
                human_secs(*p95_secs),
                human_secs(*median_secs)
            ),
            Self::NeverDenies {
                approver,
                decisions,
                median_secs,
                ..
            } => format!(
                "`{approver}` approved all {decisions} requests they decided (median {} to \
                 decide): check that approvals are reviewed",
                human_secs(*median_secs)
            ),
        }
    }

    /// The kind as serialised, e.g. `standing_access`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::StandingAccess { .. } => "standing_access",
            Self::OverlongDuration { .. } => "overlong_duration",
            Self::SlowApproval { .. } => "slow_approval",
            Self::NeverDenies { .. } => "never_denies",
        }
    }

    /// The ids cited as evidence.
    pub fn evidence_ids(&self) -> &[String] {
        match self {
            Self::StandingAccess { request_ids, .. }
            | Self::SlowApproval { request_ids, .. }
            | Self::NeverDenies { request_ids, .. } => request_ids,
            Self::OverlongDuration { grant_ids, .. } => grant_ids,
        }
    }
}

/// A duration the way a person says it: `45s`, `12m`, `1h30m`, `2d4h`.
pub fn human_secs(secs: u64) -> String {
    let (days, hours, minutes) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h{m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d{h}h"),
    }
}
