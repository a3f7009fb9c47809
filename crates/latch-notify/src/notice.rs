//! Notices: what happened, in the words people read, built from one ledger event (with the
//! request it is about) or from an audit finding. Pure: no clock, no IO; time is passed in.

use latch_core::lifecycle::request_id_for;
use latch_core::{
    AccessDuration, AccessRequest, Actor, EventKind, RequestState, StoredEvent, Timestamp,
};

/// How urgently people should hear about a notice; routes filter on it and the digest batches
/// only [`Severity::Info`].
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Self::Info, Self::Warning, Self::High, Self::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|severity| severity.as_str() == text)
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the caller knows beyond the event itself.
#[derive(Clone, Debug, Default)]
pub struct NoticeContext {
    /// The request the event is about, as it stands after the event (the store's projection).
    /// Without it, notices about approvals, grants and sessions name ids instead of people and
    /// resources, and routes that filter on resources or teams do not match them.
    pub request: Option<AccessRequest>,
    /// Who may decide a new request (named in its notice so that they know it is theirs).
    pub approvers: Vec<String>,
    /// The server's public address, e.g. `https://latch.example.com`; notices link to
    /// `{base_url}/requests/{id}` when it is set.
    pub base_url: Option<String>,
}

/// An audit finding as notifications need it (the audit crate maps its own type to this one).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FindingNotice {
    pub id: String,
    /// The audit checkpoint (detector) that reported it, e.g. `justification.weak`
    /// (docs/CHECKPOINTS.md).
    pub checkpoint: String,
    pub severity: Severity,
    /// What the finding is about, e.g. a user, a grant or a session id.
    pub subject: String,
    pub summary: String,
    /// Ledger sequence numbers of the events that support the finding.
    pub evidence: Vec<u64>,
}

/// The request a notice is about, in the words people read.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RequestFacts {
    pub id: String,
    pub requester: String,
    pub resource: String,
    pub role: String,
    /// As people write it, e.g. `30m`.
    pub duration: String,
    pub reason: String,
    pub ticket: Option<String>,
}

impl RequestFacts {
    fn from_request(request: &AccessRequest) -> Self {
        Self {
            id: request.id.clone(),
            requester: request.requester.clone(),
            resource: request.resource.clone(),
            role: request.role.clone(),
            duration: request.duration.to_string(),
            reason: request.reason.clone(),
            ticket: request.ticket.clone(),
        }
    }
}

/// What happened: the facts particular to each kind of notice.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum What {
    RequestCreated {
        approvers: Vec<String>,
        required_approvals: u32,
        pending_until: Option<Timestamp>,
        once: bool,
        /// Still pending when the notice was built: only then does it offer Approve and Deny.
        needs_decision: bool,
    },
    Approved {
        /// `None`: latch approved it because a policy auto-approves such requests.
        by: Option<String>,
        comment: Option<String>,
        /// Approvals so far and approvals required, when this one does not yet reach the count.
        partial: Option<(u32, u32)>,
    },
    Denied {
        by: String,
        reason: String,
    },
    Cancelled {
        by: String,
    },
    TimedOut,
    /// The requester granted their own request in an emergency.
    BreakGlass {
        by: String,
        reason: String,
    },
    Escalated {
        level: u32,
        to: Vec<String>,
    },
    /// Built by the notifier's timer for a request still pending after `notify.reminder_after`
    /// (there is no ledger event for it).
    Reminder {
        approvers: Vec<String>,
        pending_secs: u64,
    },
    GrantIssued {
        grant_id: String,
        grantee: String,
        resource: String,
        role: String,
        expires_at: Timestamp,
    },
    /// Built by the scheduler before a grant ends (there is no ledger event for it).
    GrantExpiring {
        grant_id: String,
        expires_at: Timestamp,
        remaining_secs: u64,
    },
    GrantExpired {
        grant_id: String,
    },
    GrantRevoked {
        grant_id: String,
        by: String,
        reason: String,
    },
    /// A gateway session closed because its grant was revoked.
    SessionCut {
        session_id: String,
        grant_id: String,
        delay_ms: Option<i64>,
        statements: u64,
    },
    FindingOpened(FindingNotice),
    /// A review period closed: the leads of `resource`'s owner team are asked to review its
    /// access over the period and record the outcome (`review.due`, one notice per resource).
    ReviewDue {
        period: String,
        /// Where the period's evidence pack was written, on the server.
        pack_dir: String,
        /// Who should review: the leads of the resource's owner team.
        reviewers: Vec<String>,
        /// The resource's section of the period's report.
        section: ReviewSection,
    },
}

/// One resource's part of a period's access report, as a review notice summarises it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReviewSection {
    /// Requests for the resource created in the period.
    pub accesses: u64,
    /// Of those, how many were granted.
    pub granted: u64,
    /// Of those, how many were break-glass grants.
    pub break_glass: u64,
    /// Who asked, sorted.
    pub requesters: Vec<String>,
    /// Audit findings about those accesses.
    pub findings: u64,
}

/// One thing to tell people about. Serializable so that the outbox can hold it for a digest
/// (operational state, never a wire format: its shape may change between versions).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Notice {
    /// Stable and unique per notice: `evt_{seq}` for ledger events, `exp_{grant}` for expiry
    /// warnings, the finding id for findings. The outbox's key (with the channel), and the
    /// webhook's `id` so that receivers can drop duplicates of a retried delivery.
    pub id: String,
    /// The ledger type (`request.created`, …), or `grant.expiring` / `finding.opened`; what
    /// routes' `events` globs match.
    pub event_type: String,
    pub at: Timestamp,
    pub severity: Severity,
    /// The request, when known (from the event itself or the context).
    pub request: Option<RequestFacts>,
    /// The resource, for routing; `None` for findings and unknown requests.
    pub resource: Option<String>,
    /// The person whose access it is (requester, grantee, session user), for routing by team.
    pub user: Option<String>,
    /// A link for people to follow.
    pub url: Option<String>,
    pub what: What,
    /// The ledger event's canonical encoding, when the notice comes from one.
    pub event: Option<String>,
}

fn actor_name(actor: &Actor) -> String {
    actor.user_name().unwrap_or("latch").to_owned()
}

fn request_url(base_url: Option<&str>, request_id: &str) -> Option<String> {
    base_url.map(|base| format!("{}/requests/{request_id}", base.trim_end_matches('/')))
}

impl Notice {
    /// The notice for a ledger event, or `None` for events nobody needs to hear about (token and
    /// policy changes, refused attempts, credentials, statements, sessions ending normally).
    pub fn from_event(stored: &StoredEvent, ctx: &NoticeContext) -> Option<Notice> {
        let event = &stored.event;
        if let EventKind::FindingOpened {
            checkpoint,
            severity,
            about,
            summary,
            evidence,
            ..
        } = &event.kind
        {
            // The audit's five severities onto notification's four.
            let severity = match severity.as_str() {
                "critical" => Severity::Critical,
                "high" => Severity::High,
                "medium" | "low" => Severity::Warning,
                _ => Severity::Info,
            };
            let mut notice = Notice::finding(
                FindingNotice {
                    id: event.subject.clone(),
                    checkpoint: checkpoint.clone(),
                    severity,
                    subject: about.clone(),
                    summary: summary.clone(),
                    evidence: evidence.clone(),
                },
                event.at,
            );
            notice.id = format!("evt_{}", stored.seq);
            return Some(notice);
        }
        let by = actor_name(&event.actor);
        let mut request = ctx
            .request
            .as_ref()
            .filter(|r| r.id == event.subject)
            .map(RequestFacts::from_request);
        let (severity, what) = match &event.kind {
            EventKind::RequestCreated {
                requester,
                resource,
                role,
                duration_secs,
                reason,
                ticket,
                required_approvals,
                pending_until,
                once,
                ..
            } => {
                request = Some(RequestFacts {
                    id: event.subject.clone(),
                    requester: requester.clone(),
                    resource: resource.clone(),
                    role: role.clone(),
                    duration: AccessDuration::from_secs(*duration_secs)
                        .map_or_else(|| format!("{duration_secs}s"), |d| d.to_string()),
                    reason: reason.clone(),
                    ticket: ticket.clone(),
                });
                let needs_decision = ctx
                    .request
                    .as_ref()
                    .is_none_or(|r| r.state == RequestState::Pending);
                (
                    Severity::Info,
                    What::RequestCreated {
                        approvers: ctx.approvers.clone(),
                        required_approvals: *required_approvals,
                        pending_until: *pending_until,
                        once: *once,
                        needs_decision,
                    },
                )
            }
            EventKind::ApprovalRecorded { comment, .. } => {
                let partial = ctx.request.as_ref().map(|r| {
                    let have = u32::try_from(r.approvals.len()).unwrap_or(u32::MAX);
                    (have, r.required_approvals)
                });
                (
                    Severity::Info,
                    What::Approved {
                        by: Some(by),
                        comment: comment.clone(),
                        partial: Some(partial.unwrap_or((0, 0))),
                    },
                )
            }
            EventKind::RequestApproved {
                comment,
                break_glass: true,
                ..
            } => {
                let reason = comment.as_deref().unwrap_or_default();
                let reason = reason.strip_prefix("break-glass: ").unwrap_or(reason);
                (
                    Severity::High,
                    What::BreakGlass {
                        by,
                        reason: reason.to_owned(),
                    },
                )
            }
            EventKind::RequestApproved { comment, .. } => (
                Severity::Info,
                What::Approved {
                    by: event.actor.user_name().map(str::to_owned),
                    comment: comment.clone(),
                    partial: None,
                },
            ),
            EventKind::RequestDenied { reason } => (
                Severity::Info,
                What::Denied {
                    by,
                    reason: reason.clone(),
                },
            ),
            EventKind::RequestCancelled {} => (Severity::Info, What::Cancelled { by }),
            EventKind::RequestTimedOut {} => (Severity::Info, What::TimedOut),
            EventKind::RequestEscalated { level, to } => (
                Severity::Warning,
                What::Escalated {
                    level: *level,
                    to: to.clone(),
                },
            ),
            EventKind::GrantIssued {
                grant_id,
                grantee,
                resource,
                role,
                expires_at,
                ..
            } => (
                Severity::Info,
                What::GrantIssued {
                    grant_id: grant_id.clone(),
                    grantee: grantee.clone(),
                    resource: resource.clone(),
                    role: role.clone(),
                    expires_at: *expires_at,
                },
            ),
            EventKind::GrantExpired { grant_id } => (
                Severity::Info,
                What::GrantExpired {
                    grant_id: grant_id.clone(),
                },
            ),
            EventKind::GrantRevoked { grant_id, reason } => (
                Severity::Warning,
                What::GrantRevoked {
                    grant_id: grant_id.clone(),
                    by,
                    reason: reason.clone(),
                },
            ),
            EventKind::SessionEnded {
                grant_id,
                reason,
                statements,
                revocation_delay_ms,
                ..
            } if reason == "grant_revoked" => {
                // The session's subject is the session id; the request is the grant's.
                request = ctx
                    .request
                    .as_ref()
                    .filter(|r| Some(&r.id) == request_id_for(grant_id).as_ref())
                    .map(RequestFacts::from_request);
                (
                    Severity::Warning,
                    What::SessionCut {
                        session_id: event.subject.clone(),
                        grant_id: grant_id.clone(),
                        delay_ms: *revocation_delay_ms,
                        statements: *statements,
                    },
                )
            }
            EventKind::SessionEnded { .. }
            | EventKind::AccessRefused { .. }
            | EventKind::PolicyLoaded { .. }
            | EventKind::TokenCreated { .. }
            | EventKind::TokenRevoked { .. }
            | EventKind::CredentialIssued { .. }
            | EventKind::SessionStarted { .. }
            | EventKind::SessionStatement { .. }
            | EventKind::SessionStatementOutcome { .. }
            | EventKind::FindingOpened { .. }
            | EventKind::FindingStatusChanged { .. }
            // One `review.due` becomes a notice per resource: see [`Notice::review_due`].
            | EventKind::ReviewDue { .. }
            | EventKind::ReviewRecorded { .. } => return None,
        };
        let (resource, user) = match (&what, &request) {
            (_, Some(facts)) => (Some(facts.resource.clone()), Some(facts.requester.clone())),
            (
                What::GrantIssued {
                    grantee, resource, ..
                },
                None,
            ) => (Some(resource.clone()), Some(grantee.clone())),
            _ => (None, None),
        };
        let url = request
            .as_ref()
            .and_then(|facts| request_url(ctx.base_url.as_deref(), &facts.id));
        Some(Notice {
            id: format!("evt_{}", stored.seq),
            event_type: event.kind.type_name().to_owned(),
            at: event.at,
            severity,
            request,
            resource,
            user,
            url,
            what,
            event: Some(stored.canonical_json()),
        })
    }

    /// The warning that `request`'s grant ends soon, or `None` when it has no active grant or
    /// the grant has already ended at `now`. The scheduler builds it (there is no ledger event);
    /// its id, `exp_{grant}`, lets the outbox send it once.
    pub fn grant_expiring(
        request: &AccessRequest,
        now: Timestamp,
        base_url: Option<&str>,
    ) -> Option<Notice> {
        let grant = request.grant.as_ref()?;
        if grant.state != latch_core::GrantState::Active || grant.expires_at <= now {
            return None;
        }
        let remaining_ms = u64::try_from(grant.expires_at.millis_since(now)).unwrap_or(0);
        Some(Notice {
            id: format!("exp_{}", grant.id),
            event_type: "grant.expiring".to_owned(),
            at: now,
            severity: Severity::Warning,
            request: Some(RequestFacts::from_request(request)),
            resource: Some(request.resource.clone()),
            user: Some(request.requester.clone()),
            url: request_url(base_url, &request.id),
            what: What::GrantExpiring {
                grant_id: grant.id.clone(),
                expires_at: grant.expires_at,
                remaining_secs: remaining_ms.div_ceil(1000),
            },
            event: None,
        })
    }

    /// The reminder that `request` still waits for a decision, or `None` when it no longer
    /// does. `round` counts the reminders (1 for the first): its id, `rem_{request}_{round}`,
    /// lets the outbox send each round once, across restarts.
    pub fn reminder(
        request: &AccessRequest,
        approvers: Vec<String>,
        round: u64,
        now: Timestamp,
        base_url: Option<&str>,
    ) -> Option<Notice> {
        if request.state != RequestState::Pending {
            return None;
        }
        let pending_ms = u64::try_from(now.millis_since(request.created_at)).unwrap_or(0);
        Some(Notice {
            id: format!("rem_{}_{round}", request.id),
            event_type: "request.reminder".to_owned(),
            at: now,
            severity: Severity::Warning,
            request: Some(RequestFacts::from_request(request)),
            resource: Some(request.resource.clone()),
            user: Some(request.requester.clone()),
            url: request_url(base_url, &request.id),
            what: What::Reminder {
                approvers,
                pending_secs: pending_ms / 1000,
            },
            event: None,
        })
    }

    /// The notice asking the leads of `resource`'s owner team (`reviewers`) to review its access
    /// over `period`, from a `review.due` event (its canonical text in `event`). Its id,
    /// `rev_{period}_{resource}`, lets the outbox send it once.
    pub fn review_due(
        at: Timestamp,
        period: &str,
        pack_dir: &str,
        resource: &str,
        reviewers: Vec<String>,
        section: ReviewSection,
        event: Option<String>,
    ) -> Notice {
        Notice {
            id: format!("rev_{period}_{resource}"),
            event_type: "review.due".to_owned(),
            at,
            severity: Severity::Warning,
            request: None,
            resource: Some(resource.to_owned()),
            user: None,
            url: None,
            what: What::ReviewDue {
                period: period.to_owned(),
                pack_dir: pack_dir.to_owned(),
                reviewers,
                section,
            },
            event,
        }
    }

    /// The notice that the auditor opened `finding` at `at`.
    pub fn finding(finding: FindingNotice, at: Timestamp) -> Notice {
        Notice {
            id: finding.id.clone(),
            event_type: "finding.opened".to_owned(),
            at,
            severity: finding.severity,
            request: None,
            resource: None,
            user: None,
            url: None,
            what: What::FindingOpened(finding),
            event: None,
        }
    }

    /// Someone must act on it (approve, deny): never held back in a digest.
    pub fn needs_action(&self) -> bool {
        matches!(
            self.what,
            What::RequestCreated {
                needs_decision: true,
                ..
            } | What::Escalated { .. }
                | What::Reminder { .. }
                | What::ReviewDue { .. }
        )
    }

    /// The request id Approve and Deny buttons carry, for a request that awaits a decision.
    pub fn decision_request_id(&self) -> Option<&str> {
        match (&self.what, &self.request) {
            (
                What::RequestCreated {
                    needs_decision: true,
                    ..
                }
                | What::Escalated { .. }
                | What::Reminder { .. },
                Some(facts),
            ) => Some(&facts.id),
            _ => None,
        }
    }

    /// The people a notice concerns, for direct messages: the approvers of a new or escalated
    /// request, the requester of a decided one, the holder of a grant.
    pub fn people(&self) -> Vec<String> {
        let mut people = match &self.what {
            What::RequestCreated { approvers, .. } => approvers.clone(),
            What::Escalated { to, .. } => to.clone(),
            What::Reminder { approvers, .. } => approvers.clone(),
            What::GrantIssued { grantee, .. } => vec![grantee.clone()],
            What::FindingOpened(_) => Vec::new(),
            What::ReviewDue { reviewers, .. } => reviewers.clone(),
            _ => self.user.iter().cloned().collect(),
        };
        people.sort();
        people.dedup();
        people
    }

    /// `payments-db (read)`, or the subject id when the request is unknown.
    fn target(&self) -> String {
        match (&self.request, &self.what) {
            (Some(facts), _) => format!("{} ({})", facts.resource, facts.role),
            (None, What::GrantIssued { resource, role, .. }) => format!("{resource} ({role})"),
            (None, What::FindingOpened(finding)) => finding.subject.clone(),
            (None, What::SessionCut { session_id, .. }) => format!("session {session_id}"),
            (None, What::ReviewDue { .. }) => self.resource.clone().unwrap_or_default(),
            (None, _) => self.subject_id(),
        }
    }

    /// The id of the object the notice is about.
    pub fn subject_id(&self) -> String {
        match (&self.request, &self.what) {
            (_, What::SessionCut { session_id, .. }) => session_id.clone(),
            (_, What::FindingOpened(finding)) => finding.id.clone(),
            (
                None,
                What::GrantIssued { grant_id, .. }
                | What::GrantExpiring { grant_id, .. }
                | What::GrantExpired { grant_id }
                | What::GrantRevoked { grant_id, .. },
            ) => grant_id.clone(),
            (Some(facts), _) => facts.id.clone(),
            (None, _) => self.id.clone(),
        }
    }

    /// `alice's request for read on payments-db`, or `request req_…` when unknown.
    fn request_phrase(&self) -> String {
        match &self.request {
            Some(f) => format!("{}'s request for {} on {}", f.requester, f.role, f.resource),
            None => format!("request {}", self.subject_id()),
        }
    }

    /// `alice's read on payments-db`, or `grant grt_…` when unknown.
    fn grant_phrase(&self, grant_id: &str) -> String {
        match &self.request {
            Some(f) => format!("{}'s {} on {}", f.requester, f.role, f.resource),
            None => format!("grant {grant_id}"),
        }
    }

    /// One line: the header of a message, the subject of an email.
    pub fn headline(&self) -> String {
        let target = self.target();
        match &self.what {
            What::RequestCreated { .. } => format!("Access request: {target}"),
            What::Approved {
                partial: Some(_), ..
            } => format!("Approval recorded: {target}"),
            What::Approved { .. } => format!("Approved: {target}"),
            What::Denied { .. } => format!("Denied: {target}"),
            What::Cancelled { .. } => format!("Cancelled: {target}"),
            What::TimedOut => format!("Timed out: {target}"),
            What::BreakGlass { .. } => format!("Break-glass access: {target}"),
            What::Escalated { .. } => format!("Escalated: {target}"),
            What::Reminder { .. } => format!("Still waiting for a decision: {target}"),
            What::GrantIssued { .. } => format!("Access granted: {target}"),
            What::GrantExpiring { .. } => format!("Access ends soon: {target}"),
            What::GrantExpired { .. } => format!("Access ended: {target}"),
            What::GrantRevoked { .. } => format!("Access revoked: {target}"),
            What::SessionCut { .. } => format!("Session cut: {target}"),
            What::FindingOpened(finding) => {
                format!("Audit finding ({}): {}", finding.severity, finding.subject)
            }
            What::ReviewDue { period, .. } => format!("Access review due: {target} ({period})"),
        }
    }

    /// One sentence saying what happened.
    pub fn summary(&self) -> String {
        match &self.what {
            What::RequestCreated { needs_decision, .. } => {
                let base = match &self.request {
                    Some(f) => format!(
                        "{} requests {} on {} for {}",
                        f.requester, f.role, f.resource, f.duration
                    ),
                    None => format!("New {}", self.request_phrase()),
                };
                if *needs_decision {
                    base
                } else {
                    format!("{base} (already decided)")
                }
            }
            What::Approved {
                by: Some(by),
                partial: Some((have, need)),
                ..
            } => format!(
                "{by} approved {} ({have} of {need} approvals)",
                self.request_phrase()
            ),
            What::Approved { by: Some(by), .. } => {
                format!("{by} approved {}", self.request_phrase())
            }
            What::Approved { by: None, .. } => {
                format!("latch approved {} by policy", self.request_phrase())
            }
            What::Denied { by, .. } => format!("{by} denied {}", self.request_phrase()),
            What::Cancelled { by } => match &self.request {
                Some(f) if &f.requester == by => format!(
                    "{by} cancelled their request for {} on {}",
                    f.role, f.resource
                ),
                _ => format!("{by} cancelled {}", self.request_phrase()),
            },
            What::TimedOut => format!(
                "{} timed out: nobody decided on it in time",
                self.request_phrase()
            ),
            What::BreakGlass { by, .. } => match &self.request {
                Some(f) => format!(
                    "{by} broke glass: granted themselves {} on {} for {} without approval",
                    f.role, f.resource, f.duration
                ),
                None => format!(
                    "{by} broke glass: granted {} without approval",
                    self.request_phrase()
                ),
            },
            What::Escalated { level, to } if to.is_empty() => format!(
                "Nobody approved {} in time: escalated to level {level}, which names no new approvers",
                self.request_phrase()
            ),
            What::Escalated { level, to } => format!(
                "Nobody approved {} in time: escalated to {} (level {level})",
                self.request_phrase(),
                to.join(", ")
            ),
            What::Reminder { pending_secs, .. } => format!(
                "{} has been waiting for a decision for {}",
                self.request_phrase(),
                human_secs(*pending_secs)
            ),
            What::GrantIssued {
                grantee,
                resource,
                role,
                expires_at,
                ..
            } => format!("{grantee} now has {role} on {resource} until {expires_at}"),
            What::GrantExpiring {
                grant_id,
                expires_at,
                remaining_secs,
            } => format!(
                "{} ends in {} (at {expires_at})",
                self.grant_phrase(grant_id),
                human_secs(*remaining_secs)
            ),
            What::GrantExpired { grant_id } => {
                format!("{} has ended: its time is up", self.grant_phrase(grant_id))
            }
            What::GrantRevoked { grant_id, by, .. } => {
                format!("{by} revoked {}", self.grant_phrase(grant_id))
            }
            What::SessionCut {
                session_id,
                grant_id,
                ..
            } => match &self.request {
                Some(f) => format!(
                    "The gateway closed {}'s session {session_id} on {} because the grant was revoked",
                    f.requester, f.resource
                ),
                None => format!(
                    "The gateway closed session {session_id} because grant {grant_id} was revoked"
                ),
            },
            What::FindingOpened(finding) => finding.summary.clone(),
            What::ReviewDue {
                period, section, ..
            } => format!(
                "{period} has closed: review who had access to {} ({} {}, {} granted) and record \
                 the outcome with `latch review record --period {period} --resource {} \
                 --outcome approved|changes-needed --comment …`",
                self.target(),
                section.accesses,
                if section.accesses == 1 {
                    "request"
                } else {
                    "requests"
                },
                section.granted,
                self.target(),
            ),
        }
    }

    /// Labelled facts, shown as fields (Slack), a fact set (Teams) or lines (email).
    pub fn facts(&self) -> Vec<(&'static str, String)> {
        let mut facts = Vec::new();
        if let Some(f) = &self.request {
            facts.push(("Requester", f.requester.clone()));
            facts.push(("Resource", f.resource.clone()));
            facts.push(("Role", f.role.clone()));
            facts.push(("Duration", f.duration.clone()));
            if let Some(ticket) = &f.ticket {
                facts.push(("Ticket", ticket.clone()));
            }
            facts.push(("Request", f.id.clone()));
        }
        match &self.what {
            What::RequestCreated {
                approvers,
                required_approvals,
                pending_until,
                once,
                ..
            } => {
                if !approvers.is_empty() {
                    facts.push(("Approvers", approvers.join(", ")));
                }
                if *required_approvals > 1 {
                    facts.push(("Approvals needed", required_approvals.to_string()));
                }
                if let Some(until) = pending_until {
                    facts.push(("Decide by", until.to_string()));
                }
                if *once {
                    facts.push(("Single use", "ends with its first session".to_owned()));
                }
            }
            What::Reminder { approvers, .. } => {
                if !approvers.is_empty() {
                    facts.push(("Approvers", approvers.join(", ")));
                }
            }
            What::Escalated { level, to } => {
                facts.push(("Escalation level", level.to_string()));
                if !to.is_empty() {
                    facts.push(("Now also approvable by", to.join(", ")));
                }
            }
            What::GrantIssued {
                grant_id,
                grantee,
                resource,
                role,
                expires_at,
            } => {
                if self.request.is_none() {
                    facts.push(("Grantee", grantee.clone()));
                    facts.push(("Resource", resource.clone()));
                    facts.push(("Role", role.clone()));
                }
                facts.push(("Grant", grant_id.clone()));
                facts.push(("Expires", expires_at.to_string()));
            }
            What::GrantExpiring {
                grant_id,
                expires_at,
                ..
            } => {
                facts.push(("Grant", grant_id.clone()));
                facts.push(("Expires", expires_at.to_string()));
            }
            What::GrantExpired { grant_id } => facts.push(("Grant", grant_id.clone())),
            What::GrantRevoked { grant_id, by, .. } => {
                facts.push(("Grant", grant_id.clone()));
                facts.push(("Revoked by", by.clone()));
            }
            What::SessionCut {
                session_id,
                grant_id,
                delay_ms,
                statements,
            } => {
                facts.push(("Session", session_id.clone()));
                facts.push(("Grant", grant_id.clone()));
                facts.push(("Statements", statements.to_string()));
                if let Some(delay) = delay_ms {
                    facts.push(("Closed after revocation", format!("{delay} ms")));
                }
            }
            What::FindingOpened(finding) => {
                facts.push(("Finding", finding.id.clone()));
                facts.push(("Severity", finding.severity.to_string()));
                facts.push(("Checkpoint", finding.checkpoint.clone()));
                if !finding.evidence.is_empty() {
                    let seqs: Vec<String> = finding.evidence.iter().map(u64::to_string).collect();
                    facts.push(("Evidence (ledger seq)", seqs.join(", ")));
                }
            }
            What::ReviewDue {
                period,
                pack_dir,
                reviewers,
                section,
            } => {
                facts.push(("Period", period.clone()));
                if let Some(resource) = &self.resource {
                    facts.push(("Resource", resource.clone()));
                }
                facts.push(("Requests", section.accesses.to_string()));
                facts.push(("Granted", section.granted.to_string()));
                if section.break_glass > 0 {
                    facts.push(("Break-glass", section.break_glass.to_string()));
                }
                if section.findings > 0 {
                    facts.push(("Findings", section.findings.to_string()));
                }
                if !section.requesters.is_empty() {
                    facts.push(("Requesters", section.requesters.join(", ")));
                }
                if !reviewers.is_empty() {
                    facts.push(("Reviewers", reviewers.join(", ")));
                }
                facts.push(("Evidence pack", pack_dir.clone()));
            }
            What::Approved { .. }
            | What::Denied { .. }
            | What::Cancelled { .. }
            | What::TimedOut
            | What::BreakGlass { .. } => {}
        }
        facts
    }

    /// Free text worth quoting in full: the request's reason, a comment, a denial or
    /// revocation reason.
    pub fn detail(&self) -> Option<(&'static str, String)> {
        match &self.what {
            What::RequestCreated { .. } | What::Escalated { .. } | What::Reminder { .. } => {
                self.request.as_ref().map(|f| ("Reason", f.reason.clone()))
            }
            What::Approved {
                comment: Some(comment),
                ..
            } => Some(("Comment", comment.clone())),
            What::Denied { reason, .. } | What::GrantRevoked { reason, .. } => {
                Some(("Reason", reason.clone()))
            }
            What::BreakGlass { reason, .. } => Some(("Emergency", reason.clone())),
            _ => None,
        }
    }
}

/// `1h5m`, `10m`, `45s`: a remaining time, to the second.
pub(crate) fn human_secs(secs: u64) -> String {
    AccessDuration::from_secs(secs).map_or_else(|| format!("{secs}s"), |d| d.to_string())
}
