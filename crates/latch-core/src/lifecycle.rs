//! The access-request lifecycle as a pure state machine.
//!
//! `decide` turns a command and the current state into events or a refusal; `apply` folds an
//! event into the state. Stores call `decide` inside a transaction and persist the events with
//! the state `apply` produces, so the projections are always a replay of the events.
//!
//! ```text
//! request ──► pending ──approve(s)──► approved ──► granted ──► expired | revoked
//!                └──deny / cancel / timeout──► denied | cancelled | timed_out
//! ```

use std::fmt;

use crate::event::{Actor, Event, EventKind};
use crate::{AccessDuration, Catalog, Timestamp};

/// Longest reason accepted; a reason is a sentence or two, not a document.
pub const MAX_REASON_CHARS: usize = 2000;
/// Longest ticket reference accepted.
pub const MAX_TICKET_CHARS: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestState {
    Pending,
    Denied,
    Cancelled,
    TimedOut,
    /// Approved, with an active grant.
    Granted,
    /// Its grant ran out.
    Expired,
    /// Its grant was ended early.
    Revoked,
}

impl RequestState {
    pub const ALL: [RequestState; 7] = [
        Self::Pending,
        Self::Denied,
        Self::Cancelled,
        Self::TimedOut,
        Self::Granted,
        Self::Expired,
        Self::Revoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Denied => "denied",
            Self::Cancelled => "cancelled",
            Self::TimedOut => "timed_out",
            Self::Granted => "granted",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == text)
    }
}

impl fmt::Display for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GrantState {
    Active,
    Expired,
    Revoked,
}

impl GrantState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Active, Self::Expired, Self::Revoked]
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    pub approver: String,
    pub comment: Option<String>,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub starts_at: Timestamp,
    pub expires_at: Timestamp,
    pub state: GrantState,
    /// When it expired or was revoked.
    pub ended_at: Option<Timestamp>,
    /// Who revoked it (`None` while active or when it expired).
    pub revoked_by: Option<String>,
    pub revoke_reason: Option<String>,
}

/// One request and, once approved, its grant: the aggregate the lifecycle decides on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRequest {
    pub id: String,
    pub requester: String,
    pub resource: String,
    pub role: String,
    pub duration: AccessDuration,
    pub reason: String,
    pub ticket: Option<String>,
    pub required_approvals: u32,
    /// Teams that must each count an approver among the approvals (empty: any entitled
    /// approvers will do).
    pub approver_groups: Vec<String>,
    /// A single-use grant: it ends when its first gateway session ends.
    pub once: bool,
    pub created_at: Timestamp,
    pub pending_until: Option<Timestamp>,
    pub approvals: Vec<Approval>,
    pub state: RequestState,
    /// When it left `pending` (approved, denied, cancelled or timed out).
    pub decided_at: Option<Timestamp>,
    /// Who denied or cancelled it, with the denial reason.
    pub closed_by: Option<String>,
    pub deny_reason: Option<String>,
    pub grant: Option<Grant>,
    /// How many times the request was escalated for want of an approval.
    pub escalation_level: u32,
    /// Who the escalations brought in as approvers (beyond those the rules name anyway).
    pub escalated_to: Vec<String>,
}

/// The requester's other requests when they make a new one, as policies see them
/// (`context.open_requests`, `context.recent_requests`). The store counts them inside the write
/// transaction that creates the request, so concurrent requests cannot slip past a cap; callers
/// pass [`RequesterHistory::default`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequesterHistory {
    /// Requests now pending or granted, counted up to [`HISTORY_COUNT_CAP`].
    pub open_requests: u32,
    /// Requests created in the last [`RECENT_REQUESTS_WINDOW_MS`], counted up to
    /// [`HISTORY_COUNT_CAP`].
    pub recent_requests: u32,
}

/// The store counts a requester's history up to this many requests (then the count stays
/// there, plus the group's own): enough for any cap a policy sets, and it keeps what each new
/// request costs from growing with a busy requester's history.
pub const HISTORY_COUNT_CAP: u32 = 1000;

/// The window of [`RequesterHistory::recent_requests`]: a day, in milliseconds.
pub const RECENT_REQUESTS_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// At most this many escalations per request (an organisation is rarely deeper).
pub const MAX_ESCALATIONS: u32 = 3;

/// What someone (or the scheduler) asks the lifecycle to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Create {
        requester: String,
        resource: String,
        role: String,
        duration: AccessDuration,
        reason: String,
        ticket: Option<String>,
        /// A single-use grant (`latch request --once`).
        once: bool,
        /// Filled in by the store (see [`RequesterHistory`]).
        history: RequesterHistory,
    },
    Approve {
        approver: String,
        comment: Option<String>,
    },
    Deny {
        approver: String,
        reason: String,
    },
    Cancel {
        by: String,
    },
    /// The requester grants their own pending request in an emergency, where policy allows it
    /// (`self_approve`); the approval is flagged as break-glass in the ledger.
    BreakGlass {
        by: String,
        reason: String,
    },
    Revoke {
        by: String,
        reason: String,
    },
    /// The scheduler ends a grant whose time is up.
    Expire,
    /// The scheduler closes a request nobody decided on in time.
    TimeOut,
    /// The scheduler brings the next level of approvers to a request nobody approved in time.
    Escalate,
    /// The gateway ends a single-use grant when its session ends.
    Consume,
}

impl Command {
    pub fn actor(&self) -> Actor {
        match self {
            Self::Create {
                requester: user, ..
            }
            | Self::Approve { approver: user, .. }
            | Self::Deny { approver: user, .. }
            | Self::Cancel { by: user }
            | Self::BreakGlass { by: user, .. }
            | Self::Revoke { by: user, .. } => Actor::user(user.clone()),
            Self::Expire | Self::TimeOut | Self::Escalate | Self::Consume => Actor::System,
        }
    }

    /// A short verb for messages and refusal events.
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Create { .. } => "request",
            Self::Approve { .. } => "approve",
            Self::Deny { .. } => "deny",
            Self::Cancel { .. } => "cancel",
            Self::BreakGlass { .. } => "break glass",
            Self::Revoke { .. } => "revoke",
            Self::Expire => "expire",
            Self::TimeOut => "time out",
            Self::Escalate => "escalate",
            Self::Consume => "end single-use grant",
        }
    }
}

/// Why a command was refused; maps to an HTTP status in one place (the API).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalKind {
    /// 404: no such request or grant.
    NotFound,
    /// 403: the actor may not do this.
    Forbidden,
    /// 409: the object is not in a state that allows it.
    Conflict,
    /// 422: the command itself is wrong (unknown role, duration above the maximum, …).
    Invalid,
}

/// A refusal is an answer, not a failure: it says what was wrong and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub message: String,
}

impl Refusal {
    fn new(kind: RefusalKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The grant of a request has the request's id with another prefix, so either finds the other.
pub fn grant_id_for(request_id: &str) -> String {
    match request_id.strip_prefix("req_") {
        Some(rest) => format!("grt_{rest}"),
        None => format!("grt_{request_id}"),
    }
}

/// The request a grant id belongs to (see [`grant_id_for`]).
pub fn request_id_for(grant_id: &str) -> Option<String> {
    grant_id
        .strip_prefix("grt_")
        .map(|rest| format!("req_{rest}"))
}

/// Decides what `command` does to the request `id`, whose current state is `current`.
pub fn decide(
    id: &str,
    current: Option<&AccessRequest>,
    command: &Command,
    catalog: &Catalog,
    now: Timestamp,
) -> Result<Vec<Event>, Refusal> {
    use RefusalKind::*;
    let event = |kind| Event {
        at: now,
        actor: command.actor(),
        subject: id.to_owned(),
        kind,
    };
    if let Command::Create {
        requester,
        resource,
        role,
        duration,
        reason,
        ticket,
        once,
        history,
    } = command
    {
        if current.is_some() {
            return Err(Refusal::new(
                Conflict,
                format!("request `{id}` already exists"),
            ));
        }
        let (created, auto_approve) = validate_create(
            catalog,
            requester,
            resource,
            role,
            *duration,
            reason,
            ticket.as_deref(),
            *once,
            *history,
            now,
        )?;
        if !auto_approve {
            return Ok(vec![event(created)]);
        }
        // Policy grants it at once: latch itself approves, naming the policies that allowed it.
        let policies = match &created {
            EventKind::RequestCreated { policies, .. } => policies.clone(),
            _ => Vec::new(),
        };
        let system = |kind| Event {
            at: now,
            actor: Actor::System,
            subject: id.to_owned(),
            kind,
        };
        return Ok(vec![
            event(created),
            system(EventKind::RequestApproved {
                comment: Some("auto-approved by policy".to_owned()),
                policies,
                break_glass: false,
            }),
            system(EventKind::GrantIssued {
                grant_id: grant_id_for(id),
                grantee: requester.clone(),
                resource: resource.clone(),
                role: role.clone(),
                starts_at: now,
                expires_at: now.saturating_add(*duration),
            }),
        ]);
    }
    let Some(request) = current else {
        return Err(Refusal::new(NotFound, format!("no request `{id}`")));
    };
    match command {
        Command::Create { .. } => Err(Refusal::new(
            Conflict,
            format!("request `{id}` already exists"),
        )),
        Command::Approve { approver, comment } => {
            request.require_pending(command, now)?;
            let policies = request.require_approver(catalog, approver, now)?;
            if request.approvals.iter().any(|a| &a.approver == approver) {
                return Err(Refusal::new(
                    Conflict,
                    format!(
                        "`{approver}` has already approved request `{id}`; it needs {} distinct approvals",
                        request.required_approvals
                    ),
                ));
            }
            let comment = optional_text("comment", comment.as_deref())?;
            let approvals = u32::try_from(request.approvals.len())
                .unwrap_or(u32::MAX)
                .saturating_add(1);
            let missing_groups = match &catalog.policy {
                Some(policy) if !request.approver_groups.is_empty() => {
                    let mut approvers: Vec<String> = request
                        .approvals
                        .iter()
                        .map(|a| a.approver.clone())
                        .collect();
                    approvers.push(approver.clone());
                    policy
                        .0
                        .missing_groups(&approvers, &request.approver_groups)
                }
                _ => Vec::new(),
            };
            if approvals < request.required_approvals || !missing_groups.is_empty() {
                return Ok(vec![event(EventKind::ApprovalRecorded {
                    comment,
                    policies,
                })]);
            }
            Ok(vec![
                event(EventKind::RequestApproved {
                    comment,
                    policies,
                    break_glass: false,
                }),
                event(EventKind::GrantIssued {
                    grant_id: grant_id_for(id),
                    grantee: request.requester.clone(),
                    resource: request.resource.clone(),
                    role: request.role.clone(),
                    starts_at: now,
                    expires_at: now.saturating_add(request.duration),
                }),
            ])
        }
        Command::Deny { approver, reason } => {
            request.require_pending(command, now)?;
            request.require_approver(catalog, approver, now)?;
            let reason = require_text("reason", reason, "say why the request is denied")?;
            Ok(vec![event(EventKind::RequestDenied { reason })])
        }
        Command::Cancel { by } => {
            request.require_pending(command, now)?;
            if by != &request.requester && !catalog.has_role(by, crate::UserRole::Admin) {
                return Err(Refusal::new(
                    Forbidden,
                    format!(
                        "only the requester (`{}`) or an admin may cancel request `{id}`",
                        request.requester
                    ),
                ));
            }
            Ok(vec![event(EventKind::RequestCancelled {})])
        }
        Command::BreakGlass { by, reason } => {
            request.require_pending(command, now)?;
            if by != &request.requester {
                return Err(Refusal::new(
                    Forbidden,
                    format!(
                        "only the requester (`{}`) may break glass on request `{id}`",
                        request.requester
                    ),
                ));
            }
            let verdict = match &catalog.policy {
                Some(policy) => policy.0.self_approve(request, now),
                None => crate::policy::Verdict {
                    allowed: false,
                    reason: "the built-in rule never allows self-approval: a policy must grant `self_approve`".into(),
                    policies: Vec::new(),
                },
            };
            if !verdict.allowed {
                return Err(Refusal::new(
                    Forbidden,
                    format!(
                        "`{by}` may not break glass on request `{id}`: {}",
                        verdict.reason
                    ),
                ));
            }
            let reason = require_text("reason", reason, "say what the emergency is")?;
            Ok(vec![
                event(EventKind::RequestApproved {
                    comment: Some(format!("break-glass: {reason}")),
                    policies: verdict.policies,
                    break_glass: true,
                }),
                event(EventKind::GrantIssued {
                    grant_id: grant_id_for(id),
                    grantee: request.requester.clone(),
                    resource: request.resource.clone(),
                    role: request.role.clone(),
                    starts_at: now,
                    expires_at: now.saturating_add(request.duration),
                }),
            ])
        }
        Command::Revoke { by, reason } => {
            let grant = request.require_active_grant(command)?;
            let allowed = match &catalog.policy {
                Some(policy) => policy.0.revoke(by, request, now).allowed,
                None => catalog.may_revoke(by, &request.requester, &request.resource),
            };
            if !allowed {
                return Err(Refusal::new(
                    Forbidden,
                    format!(
                        "`{by}` may not revoke grant `{}`: the grantee, an admin, a lead of the owner team or the grantee's manager may",
                        grant.id
                    ),
                ));
            }
            let reason = require_text("reason", reason, "say why the grant is revoked")?;
            Ok(vec![event(EventKind::GrantRevoked {
                grant_id: grant.id.clone(),
                reason,
            })])
        }
        Command::Expire => {
            let grant = request.require_active_grant(command)?;
            if now < grant.expires_at {
                return Err(Refusal::new(
                    Conflict,
                    format!(
                        "grant `{}` expires at {}, not yet",
                        grant.id, grant.expires_at
                    ),
                ));
            }
            Ok(vec![event(EventKind::GrantExpired {
                grant_id: grant.id.clone(),
            })])
        }
        Command::Escalate => {
            if request.state != RequestState::Pending {
                return Err(request.not_in_state(command));
            }
            let Some(after) = catalog.escalate_after else {
                return Err(Refusal::new(
                    Conflict,
                    "escalation is not configured (`server.escalate_after`)",
                ));
            };
            if request.escalation_level >= MAX_ESCALATIONS {
                return Err(Refusal::new(
                    Conflict,
                    format!("request `{id}` was already escalated {MAX_ESCALATIONS} times"),
                ));
            }
            let level = request.escalation_level + 1;
            let due = escalation_due(request.created_at, after, level);
            if now < due {
                return Err(Refusal::new(
                    Conflict,
                    format!("request `{id}` escalates at {due}, not yet"),
                ));
            }
            let to: Vec<String> = catalog
                .escalation_approvers(&request.requester, &request.resource, level)
                .into_iter()
                .filter(|user| !request.escalated_to.contains(user))
                // Under the built-in rule, those who could approve already are not news.
                .filter(|user| {
                    catalog.policy.is_some()
                        || !catalog.may_approve(user, &request.requester, &request.resource)
                })
                .collect();
            Ok(vec![event(EventKind::RequestEscalated { level, to })])
        }
        Command::Consume => {
            let grant = request.require_active_grant(command)?;
            if !request.once {
                return Err(Refusal::new(
                    Conflict,
                    format!("grant `{}` is not single-use", grant.id),
                ));
            }
            Ok(vec![event(EventKind::GrantExpired {
                grant_id: grant.id.clone(),
            })])
        }
        Command::TimeOut => {
            if request.state != RequestState::Pending {
                return Err(request.not_in_state(command));
            }
            match request.pending_until {
                Some(until) if now >= until => Ok(vec![event(EventKind::RequestTimedOut {})]),
                Some(until) => Err(Refusal::new(
                    Conflict,
                    format!("request `{id}` times out at {until}, not yet"),
                )),
                None => Err(Refusal::new(
                    Conflict,
                    format!("request `{id}` has no timeout"),
                )),
            }
        }
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "one argument per field of the request being created"
)]
fn validate_create(
    catalog: &Catalog,
    requester: &str,
    resource_name: &str,
    role_name: &str,
    duration: AccessDuration,
    reason: &str,
    ticket: Option<&str>,
    once: bool,
    history: RequesterHistory,
    now: Timestamp,
) -> Result<(EventKind, bool), Refusal> {
    use RefusalKind::*;
    if catalog.user(requester).is_none() {
        return Err(Refusal::new(
            Forbidden,
            format!("unknown user `{requester}`: add them to the organisation in the config"),
        ));
    }
    let Some(resource) = catalog.resources.get(resource_name) else {
        let known: Vec<&str> = catalog.resources.keys().map(String::as_str).collect();
        return Err(Refusal::new(
            Invalid,
            format!(
                "unknown resource `{resource_name}` (resources: {})",
                known.join(", ")
            ),
        ));
    };
    let Some(role) = resource.roles.get(role_name) else {
        let known: Vec<&str> = resource.roles.keys().map(String::as_str).collect();
        return Err(Refusal::new(
            Invalid,
            format!(
                "unknown role `{role_name}` for resource `{resource_name}` (roles: {})",
                known.join(", ")
            ),
        ));
    };
    if duration > role.max_duration {
        return Err(Refusal::new(
            Invalid,
            format!(
                "duration `{duration}` is above the maximum `{}` for role `{role_name}` on `{resource_name}`: ask for `{}` or less",
                role.max_duration, role.max_duration
            ),
        ));
    }
    let reason = require_text(
        "reason",
        reason,
        "say why you need access, e.g. `INC-4211: stuck job`",
    )?;
    let ticket = clean_optional(ticket);
    if let Some(ticket) = &ticket
        && (ticket.chars().count() > MAX_TICKET_CHARS || ticket.chars().any(char::is_control))
    {
        return Err(Refusal::new(
            Invalid,
            format!("ticket reference must be at most {MAX_TICKET_CHARS} printable characters"),
        ));
    }
    let (required_approvals, policies, approver_groups, auto_approve) = match &catalog.policy {
        None => (1, Vec::new(), Vec::new(), false),
        Some(policy) => {
            let decided = policy.0.request(&crate::policy::RequestFacts {
                requester,
                resource: resource_name,
                role: role_name,
                duration,
                ticket: ticket.as_deref(),
                history,
                now,
            });
            if !decided.verdict.allowed {
                return Err(Refusal::new(
                    Forbidden,
                    format!(
                        "`{requester}` may not request `{role_name}` on `{resource_name}`: {}",
                        decided.verdict.reason
                    ),
                ));
            }
            if let Some(max) = decided.max_duration.filter(|max| duration > *max) {
                return Err(Refusal::new(
                    Invalid,
                    format!(
                        "duration `{duration}` is above the maximum `{max}` that policy allows for role `{role_name}` on `{resource_name}`: ask for `{max}` or less"
                    ),
                ));
            }
            (
                decided.approvals.max(1),
                decided.verdict.policies,
                decided.approver_groups,
                decided.auto_approve,
            )
        }
    };
    let created = EventKind::RequestCreated {
        requester: requester.to_owned(),
        resource: resource_name.to_owned(),
        role: role_name.to_owned(),
        duration_secs: duration.as_secs(),
        reason,
        ticket,
        required_approvals,
        pending_until: catalog
            .pending_timeout
            .map(|timeout| now.saturating_add(timeout)),
        policies,
        approver_groups,
        once,
    };
    Ok((created, auto_approve))
}

/// When a request created at `created_at` reaches escalation `level` (1 for the first).
pub fn escalation_due(created_at: Timestamp, after: AccessDuration, level: u32) -> Timestamp {
    let step = i64::try_from(after.as_secs())
        .unwrap_or(i64::MAX)
        .saturating_mul(1000)
        .saturating_mul(i64::from(level));
    Timestamp::from_millis(created_at.as_millis().saturating_add(step))
}

fn require_text(field: &str, text: &str, hint: &str) -> Result<String, Refusal> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(Refusal::new(
            RefusalKind::Invalid,
            format!("{field} is empty: {hint}"),
        ));
    }
    check_free_text(field, trimmed)?;
    Ok(trimmed.to_owned())
}

/// Free text (reasons, comments) is shown in terminals and reports and stored in every
/// database: it may hold line breaks and tabs, but no other control characters.
fn check_free_text(field: &str, text: &str) -> Result<(), Refusal> {
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(Refusal::new(
            RefusalKind::Invalid,
            format!("{field} contains control characters: use plain text"),
        ));
    }
    if text.chars().count() > MAX_REASON_CHARS {
        return Err(Refusal::new(
            RefusalKind::Invalid,
            format!("{field} is longer than {MAX_REASON_CHARS} characters"),
        ));
    }
    Ok(())
}

fn clean_optional(text: Option<&str>) -> Option<String> {
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

fn optional_text(field: &str, text: Option<&str>) -> Result<Option<String>, Refusal> {
    let text = clean_optional(text);
    if let Some(text) = &text {
        check_free_text(field, text)?;
    }
    Ok(text)
}

impl AccessRequest {
    fn not_in_state(&self, command: &Command) -> Refusal {
        let what = match command {
            Command::Revoke { .. } | Command::Expire => "only an active grant can be",
            _ => "only a pending request can be",
        };
        let verb = match command.verb() {
            "approve" => "approved",
            "deny" => "denied",
            "cancel" => "cancelled",
            "revoke" => "revoked",
            "expire" => "expired",
            "time out" => "timed out",
            other => other,
        };
        Refusal::new(
            RefusalKind::Conflict,
            format!("request `{}` is {}: {what} {verb}", self.id, self.state),
        )
    }

    fn require_pending(&self, command: &Command, now: Timestamp) -> Result<(), Refusal> {
        if self.state != RequestState::Pending {
            return Err(self.not_in_state(command));
        }
        if let Some(until) = self.pending_until
            && now >= until
        {
            return Err(Refusal::new(
                RefusalKind::Conflict,
                format!(
                    "request `{}` timed out at {until}: ask for access again",
                    self.id
                ),
            ));
        }
        Ok(())
    }

    /// Checks `approver` may decide on this request; returns the policies that entitle them.
    fn require_approver(
        &self,
        catalog: &Catalog,
        approver: &str,
        now: Timestamp,
    ) -> Result<Vec<String>, Refusal> {
        if approver == self.requester {
            return Err(Refusal::new(
                RefusalKind::Forbidden,
                format!(
                    "`{approver}` cannot approve or deny their own request `{}`",
                    self.id
                ),
            ));
        }
        if let Some(policy) = &catalog.policy {
            let verdict = policy.0.approve(approver, self, now);
            if verdict.allowed {
                return Ok(verdict.policies);
            }
            return Err(Refusal::new(
                RefusalKind::Forbidden,
                format!(
                    "`{approver}` may not decide on request `{}`: {}",
                    self.id, verdict.reason
                ),
            ));
        }
        if catalog.may_approve(approver, &self.requester, &self.resource)
            || self.escalated_to.iter().any(|user| user == approver)
        {
            return Ok(Vec::new());
        }
        let owner = catalog
            .resources
            .get(&self.resource)
            .map(|r| r.owner_team.as_str())
            .unwrap_or("?");
        let manager = catalog
            .user(&self.requester)
            .and_then(|u| u.manager.as_deref())
            .map(|m| format!(" or `{m}`, the requester's manager"))
            .unwrap_or_default();
        Err(Refusal::new(
            RefusalKind::Forbidden,
            format!(
                "`{approver}` may not decide on request `{}`: it needs a lead of team `{owner}` (owner of `{}`){manager}",
                self.id, self.resource
            ),
        ))
    }

    fn require_active_grant(&self, command: &Command) -> Result<&Grant, Refusal> {
        match &self.grant {
            Some(grant) if grant.state == GrantState::Active => Ok(grant),
            Some(grant) => Err(Refusal::new(
                RefusalKind::Conflict,
                format!(
                    "grant `{}` already {} at {}",
                    grant.id,
                    if grant.state == GrantState::Expired {
                        "expired"
                    } else {
                        "was revoked"
                    },
                    grant.ended_at.unwrap_or(grant.expires_at)
                ),
            )),
            None => Err(self.not_in_state(command)),
        }
    }
}

/// An event that does not fit the state it is applied to: the event log is corrupt.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("event `{event_type}` does not apply to request `{subject}` in state {state}")]
pub struct ApplyError {
    pub event_type: &'static str,
    pub subject: String,
    pub state: String,
}

/// Folds one event into the state of its request.
pub fn apply(current: Option<AccessRequest>, event: &Event) -> Result<AccessRequest, ApplyError> {
    let unfit = |state: Option<&AccessRequest>| ApplyError {
        event_type: event.kind.type_name(),
        subject: event.subject.clone(),
        state: state.map_or_else(|| "none".to_owned(), |r| r.state.to_string()),
    };
    let actor_name = || event.actor.user_name().map(str::to_owned);
    match (current, &event.kind) {
        (
            None,
            EventKind::RequestCreated {
                requester,
                resource,
                role,
                duration_secs,
                reason,
                ticket,
                required_approvals,
                pending_until,
                approver_groups,
                once,
                ..
            },
        ) => {
            let duration = AccessDuration::from_secs(*duration_secs).ok_or_else(|| unfit(None))?;
            Ok(AccessRequest {
                id: event.subject.clone(),
                requester: requester.clone(),
                resource: resource.clone(),
                role: role.clone(),
                duration,
                reason: reason.clone(),
                ticket: ticket.clone(),
                required_approvals: *required_approvals,
                approver_groups: approver_groups.clone(),
                once: *once,
                created_at: event.at,
                pending_until: *pending_until,
                approvals: Vec::new(),
                state: RequestState::Pending,
                decided_at: None,
                closed_by: None,
                deny_reason: None,
                grant: None,
                escalation_level: 0,
                escalated_to: Vec::new(),
            })
        }
        (Some(mut request), kind) => {
            let pending = request.state == RequestState::Pending;
            match kind {
                EventKind::ApprovalRecorded { comment, .. }
                | EventKind::RequestApproved { comment, .. }
                    if pending =>
                {
                    // latch itself approves only what policy auto-approves: no approver to list.
                    match actor_name() {
                        Some(approver) => request.approvals.push(Approval {
                            approver,
                            comment: comment.clone(),
                            at: event.at,
                        }),
                        None if matches!(kind, EventKind::RequestApproved { .. }) => {}
                        None => return Err(unfit(Some(&request))),
                    }
                    if matches!(kind, EventKind::RequestApproved { .. }) {
                        request.decided_at = Some(event.at);
                    }
                }
                EventKind::RequestDenied { reason } if pending => {
                    request.state = RequestState::Denied;
                    request.decided_at = Some(event.at);
                    request.closed_by = actor_name();
                    request.deny_reason = Some(reason.clone());
                }
                EventKind::RequestCancelled {} if pending => {
                    request.state = RequestState::Cancelled;
                    request.decided_at = Some(event.at);
                    request.closed_by = actor_name();
                }
                EventKind::RequestEscalated { level, to } if pending => {
                    request.escalation_level = *level;
                    request.escalated_to.extend(to.iter().cloned());
                }
                EventKind::RequestTimedOut {} if pending => {
                    request.state = RequestState::TimedOut;
                    request.decided_at = Some(event.at);
                }
                EventKind::GrantIssued {
                    grant_id,
                    starts_at,
                    expires_at,
                    ..
                } if pending && request.decided_at.is_some() && request.grant.is_none() => {
                    request.state = RequestState::Granted;
                    request.grant = Some(Grant {
                        id: grant_id.clone(),
                        starts_at: *starts_at,
                        expires_at: *expires_at,
                        state: GrantState::Active,
                        ended_at: None,
                        revoked_by: None,
                        revoke_reason: None,
                    });
                }
                EventKind::GrantExpired { grant_id } | EventKind::GrantRevoked { grant_id, .. }
                    if request.state == RequestState::Granted
                        && request.grant.as_ref().is_some_and(|g| &g.id == grant_id) =>
                {
                    let revoked = matches!(kind, EventKind::GrantRevoked { .. });
                    request.state = if revoked {
                        RequestState::Revoked
                    } else {
                        RequestState::Expired
                    };
                    if let Some(grant) = request.grant.as_mut() {
                        grant.state = if revoked {
                            GrantState::Revoked
                        } else {
                            GrantState::Expired
                        };
                        grant.ended_at = Some(event.at);
                        if let EventKind::GrantRevoked { reason, .. } = kind {
                            grant.revoked_by = event.actor.user_name().map(str::to_owned);
                            grant.revoke_reason = Some(reason.clone());
                        }
                    }
                }
                _ => return Err(unfit(Some(&request))),
            }
            Ok(request)
        }
        (None, _) => Err(unfit(None)),
    }
}

/// Replays a request's events from nothing.
pub fn replay<'a>(
    events: impl IntoIterator<Item = &'a Event>,
) -> Result<Option<AccessRequest>, ApplyError> {
    let mut state = None;
    for event in events {
        state = Some(apply(state, event)?);
    }
    Ok(state)
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
