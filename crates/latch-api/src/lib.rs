//! The HTTP API's request and response bodies (`/api/v1`), with their OpenAPI schemas. The
//! server and the CLI both use these types, so the two cannot disagree about the wire. Domain
//! types stay in `latch-core`; the `From` conversions here are the only place they meet JSON.

use latch_core::lifecycle::{Approval, Grant};
use latch_core::{AccessRequest, StoredEvent};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Body of `POST /api/v1/requests`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// The resource to access, e.g. `payments-db`.
    #[schema(example = "payments-db")]
    pub resource: String,
    /// A role of that resource, e.g. `read`.
    #[schema(example = "read")]
    pub role: String,
    /// How long, e.g. `30m`, `2h`, `1h30m`; at most the role's maximum.
    #[schema(example = "30m")]
    pub duration: String,
    /// Why: shown to approvers and auditors.
    #[schema(example = "INC-4211: stuck job")]
    pub reason: String,
    /// A ticket or incident reference, e.g. `INC-4211`.
    #[serde(default)]
    #[schema(example = "INC-4211")]
    pub ticket: Option<String>,
    /// A single-use grant: it ends when its first gateway session ends.
    #[serde(default)]
    pub once: bool,
}

/// Body of `POST /api/v1/requests/{id}/approve`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    #[serde(default)]
    pub comment: Option<String>,
}

/// Body of `POST /api/v1/requests/{id}/deny` and `POST /api/v1/grants/{id}/revoke`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalView {
    pub approver: String,
    pub comment: Option<String>,
    /// RFC 3339 UTC.
    #[schema(format = DateTime)]
    pub at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GrantView {
    pub id: String,
    pub request_id: String,
    pub grantee: String,
    pub resource: String,
    pub role: String,
    /// `active`, `expired` or `revoked`.
    pub state: String,
    #[schema(format = DateTime)]
    pub starts_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    #[schema(format = DateTime)]
    pub ended_at: Option<String>,
    pub revoked_by: Option<String>,
    pub revoke_reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RequestView {
    pub id: String,
    pub requester: String,
    pub resource: String,
    pub role: String,
    /// As requested, e.g. `30m`.
    pub duration: String,
    pub duration_secs: u64,
    pub reason: String,
    pub ticket: Option<String>,
    /// `pending`, `denied`, `cancelled`, `timed_out`, `granted`, `expired` or `revoked`.
    pub state: String,
    pub required_approvals: u32,
    pub approvals: Vec<ApprovalView>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When an undecided request times out.
    #[schema(format = DateTime)]
    pub pending_until: Option<String>,
    #[schema(format = DateTime)]
    pub decided_at: Option<String>,
    /// Who denied or cancelled it.
    pub closed_by: Option<String>,
    pub deny_reason: Option<String>,
    pub grant: Option<GrantView>,
    /// A single-use grant: it ends when its first gateway session ends.
    #[serde(default)]
    pub once: bool,
    /// How many times nobody approved in time and latch escalated it (0: never).
    #[serde(default)]
    pub escalation_level: u32,
    /// The approvers the escalations brought in.
    #[serde(default)]
    pub escalated_to: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RequestList {
    pub requests: Vec<RequestView>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct GrantList {
    pub grants: Vec<GrantView>,
}

/// `POST /api/v1/admin/reload`: what is in force after a reload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReloadView {
    /// The policy set's hash, as recorded in the ledger; absent under the built-in rule.
    pub policy_hash: Option<String>,
    pub policies: u64,
    /// The policy set differs from the previous one (a `policy.loaded` event was recorded).
    pub policy_changed: bool,
    /// Settings that changed in the file but apply only after a restart.
    pub needs_restart: Vec<String>,
}

/// `GET /api/v1/whoami`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub user: String,
    pub email: String,
    pub teams: Vec<String>,
    pub manager: Option<String>,
    /// Organisation roles: `admin`, `auditor`.
    pub roles: Vec<String>,
    pub token_id: String,
}

/// One ledger event, as stored: `body` is its canonical encoding (the ledger leaf).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    pub seq: u64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub actor: String,
    pub subject: String,
    #[schema(format = DateTime)]
    pub at: String,
    pub body: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct EventList {
    pub events: Vec<EventView>,
}

/// `GET /api/v1/ledger/public-key`: what a verifier needs to check checkpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LedgerKey {
    /// The ledger's name, the first line of each checkpoint.
    pub origin: String,
    /// The Ed25519 verifier key in the signed-note format `<name>+<hash>+<base64 key>`.
    pub verifier_key: String,
}

/// A signed checkpoint of the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointView {
    /// Number of events covered.
    pub size: u64,
    /// Root hash of the Merkle tree over those events (hex).
    pub root: String,
    #[schema(format = DateTime)]
    pub time: String,
    /// The C2SP signed note, exactly as signed.
    pub note: String,
}

/// `GET /api/v1/ledger/inclusion`: proof that one event is in a signed checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct InclusionProofView {
    pub seq: u64,
    /// The event's leaf index in the tree: `seq - 1`.
    pub index: u64,
    /// The event's canonical encoding: its leaf hash is SHA-256(0x00 || body).
    pub body: String,
    /// Leaf hash (hex).
    pub leaf_hash: String,
    /// Audit path, bottom up (hex).
    pub proof: Vec<String>,
    pub checkpoint: CheckpointView,
}

/// `GET /api/v1/ledger/consistency`: proof that a later checkpoint extends an earlier one.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyProofView {
    pub from: CheckpointView,
    pub to: CheckpointView,
    /// Consistency proof nodes (hex).
    pub proof: Vec<String>,
}

/// Every error response: a stable code for scripts and a message for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// `bad_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`, `invalid`,
    /// `unavailable` or `internal`.
    pub error: String,
    pub message: String,
}

impl From<&Approval> for ApprovalView {
    fn from(approval: &Approval) -> Self {
        Self {
            approver: approval.approver.clone(),
            comment: approval.comment.clone(),
            at: approval.at.to_string(),
        }
    }
}

impl GrantView {
    pub fn new(request: &AccessRequest, grant: &Grant) -> Self {
        Self {
            id: grant.id.clone(),
            request_id: request.id.clone(),
            grantee: request.requester.clone(),
            resource: request.resource.clone(),
            role: request.role.clone(),
            state: grant.state.as_str().to_owned(),
            starts_at: grant.starts_at.to_string(),
            expires_at: grant.expires_at.to_string(),
            ended_at: grant.ended_at.map(|t| t.to_string()),
            revoked_by: grant.revoked_by.clone(),
            revoke_reason: grant.revoke_reason.clone(),
        }
    }
}

impl From<&AccessRequest> for RequestView {
    fn from(r: &AccessRequest) -> Self {
        Self {
            id: r.id.clone(),
            requester: r.requester.clone(),
            resource: r.resource.clone(),
            role: r.role.clone(),
            duration: r.duration.to_string(),
            duration_secs: r.duration.as_secs(),
            reason: r.reason.clone(),
            ticket: r.ticket.clone(),
            state: r.state.as_str().to_owned(),
            required_approvals: r.required_approvals,
            approvals: r.approvals.iter().map(ApprovalView::from).collect(),
            created_at: r.created_at.to_string(),
            pending_until: r.pending_until.map(|t| t.to_string()),
            decided_at: r.decided_at.map(|t| t.to_string()),
            closed_by: r.closed_by.clone(),
            deny_reason: r.deny_reason.clone(),
            grant: r.grant.as_ref().map(|g| GrantView::new(r, g)),
            once: r.once,
            escalation_level: r.escalation_level,
            escalated_to: r.escalated_to.clone(),
        }
    }
}

impl EventView {
    pub fn new(event: &StoredEvent, body: String) -> Self {
        Self {
            seq: event.seq,
            event_type: event.event.kind.type_name().to_owned(),
            actor: event.event.actor.to_string(),
            subject: event.event.subject.clone(),
            at: event.event.at.to_string(),
            body,
        }
    }
}

/// Body of `POST /api/v1/connect`: a credential for the gateway under one of the caller's active
/// grants.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct ConnectBody {
    #[schema(example = "payments-db")]
    pub resource: String,
    /// The role; optional when the caller holds one active grant on the resource.
    #[serde(default)]
    pub role: Option<String>,
}

/// A short-lived gateway credential. The secret is shown once and never stored.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ConnectView {
    pub user: String,
    pub resource: String,
    pub role: String,
    pub grant_id: String,
    /// The password to give the gateway; valid until `expires_at` for new sessions.
    pub credential: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// When the grant, and every session under it, ends.
    #[schema(format = DateTime)]
    pub grant_expires_at: String,
    pub host: String,
    pub port: u16,
    /// The libpq `sslmode` to use: `require` when the gateway has TLS, else `disable`.
    pub sslmode: String,
    /// `postgresql://USER:CREDENTIAL@HOST:PORT/RESOURCE?sslmode=…` for any libpq client.
    pub uri: String,
}

/// A gateway session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    pub grant_id: String,
    pub user: String,
    pub resource: String,
    pub role: String,
    pub client_addr: String,
    pub application_name: Option<String>,
    pub tls: bool,
    /// How the client proved its credential: `scram-sha-256-plus` (bound to the gateway's TLS
    /// certificate), `scram-sha-256` or `password`; absent for sessions recorded before latch
    /// recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    #[schema(format = DateTime)]
    pub started_at: String,
    #[schema(format = DateTime)]
    pub ended_at: Option<String>,
    /// `client_closed`, `grant_expired`, `grant_revoked`, `upstream_closed`, `protocol_error`,
    /// `shutdown`, `recording_failed`; absent while the session is open.
    pub end_reason: Option<String>,
    pub end_detail: Option<String>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Statements recorded so far (live sessions: as the gateway counts them).
    pub statements: u64,
    /// For sessions cut by the end of their grant: milliseconds from the grant's end to the close.
    pub revocation_delay_ms: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

/// One recorded statement of a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatementView {
    /// The ledger event that records it.
    pub event_seq: u64,
    /// 1, 2, … within the session.
    pub seq: u64,
    #[schema(format = DateTime)]
    pub at: String,
    pub text: String,
    /// `simple`, `extended` or `function_call`.
    pub protocol: String,
    /// `read`, `write`, `ddl`, `privilege`, `other` or `unparsed`.
    pub class: String,
    pub objects: Vec<String>,
    /// `rows`, `error`, `refused`, `not_run`, `interrupted` (or `pending` until its outcome is
    /// recorded).
    pub outcome: String,
    pub rows: Option<u64>,
    /// The SQLSTATE of an error, or why latch refused it.
    pub detail: Option<String>,
    pub duration_us: u64,
}

/// `GET /api/v1/sessions/{id}`: a session with its statements.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionDetail {
    pub session: SessionView,
    pub statements: Vec<StatementView>,
}

/// An audit finding: a checkpoint's report about a request, grant or session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FindingView {
    pub id: String,
    /// The checkpoint, e.g. `justification.weak` (docs/CHECKPOINTS.md).
    pub checkpoint: String,
    /// `info`, `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// The request, grant or session (or person, team) it is about.
    pub about: String,
    pub summary: String,
    /// Sequence numbers of the ledger events that triggered it.
    pub evidence: Vec<u64>,
    #[schema(format = DateTime)]
    pub first_seen: String,
    /// `open`, `acknowledged` or `resolved`.
    pub status: String,
    pub status_by: Option<String>,
    pub status_comment: Option<String>,
    #[schema(format = DateTime)]
    pub status_at: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct FindingList {
    pub findings: Vec<FindingView>,
}

/// Body of `POST /api/v1/findings/{id}/ack` and `/resolve`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct CommentBody {
    #[schema(example = "talked to alice: the ticket was in the chat")]
    pub comment: String,
}

/// Body of `POST /api/v1/audit/run`: re-evaluate the ledger's history.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct AuditRunBody {
    /// Only findings from this time on (RFC 3339); default: the beginning.
    #[serde(default)]
    pub from: Option<String>,
    /// Only findings before this time (RFC 3339); default: now.
    #[serde(default)]
    pub to: Option<String>,
}

/// What `POST /api/v1/audit/run` did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditRunView {
    pub events: u64,
    /// Findings the checkpoints reported in the period.
    pub found: u64,
    /// Of those, findings that were new (the others were already open or resolved).
    pub opened: u64,
}

/// A queued notification and how its delivery went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotificationView {
    /// `NOTICE/CHANNEL`.
    pub id: String,
    pub notice_id: String,
    pub channel: String,
    /// `pending`, `sent` or `dead` (gave up after the last attempt).
    pub status: String,
    pub attempts: u32,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub next_attempt: String,
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub sent_at: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct NotificationList {
    pub notifications: Vec<NotificationView>,
}

/// Body of `POST /api/v1/notifications/retry`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct RetryBody {
    /// The notification (`NOTICE/CHANNEL`), as `latch notifications --status dead` lists it.
    pub id: String,
}

/// Body of `POST /api/v1/reviews`: an owner's review of a resource's access over a period.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct RecordReviewBody {
    /// A closed period: a quarter `2026-Q3`, a month `2026-07` or a year `2026`.
    #[schema(example = "2026-Q3")]
    pub period: String,
    #[schema(example = "payments-db")]
    pub resource: String,
    /// `approved` or `changes_needed` (`changes-needed` is accepted too).
    #[schema(example = "approved")]
    pub outcome: String,
    /// What was checked, or what must change.
    #[schema(example = "every access had a ticket; nothing to change")]
    pub comment: String,
}

/// A recorded review outcome: who, when, what, why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReviewOutcomeView {
    /// The `review.recorded` event's sequence number.
    pub seq: u64,
    pub period: String,
    pub resource: String,
    /// `approved` or `changes_needed`.
    pub outcome: String,
    pub reviewer: String,
    #[schema(format = DateTime)]
    pub at: String,
    pub comment: String,
}

/// One resource's review of one period: due (the period's pack was written) and what its
/// owners recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReviewView {
    pub period: String,
    pub resource: String,
    /// The resource's owner team, whose leads review it.
    pub owner_team: Option<String>,
    /// When the scheduled review fell due; `None` for a review recorded without one.
    #[schema(format = DateTime)]
    pub due_at: Option<String>,
    /// Where the period's evidence pack was written, on the server.
    pub pack_dir: Option<String>,
    /// `pending` until an outcome is recorded, then the latest outcome.
    pub status: String,
    /// Every outcome recorded, oldest first.
    pub outcomes: Vec<ReviewOutcomeView>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ReviewList {
    /// Newest period first, then by resource.
    pub reviews: Vec<ReviewView>,
}
