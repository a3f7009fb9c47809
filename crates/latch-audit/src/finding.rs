//! What a checkpoint reports: a [`Finding`] with its [`Checkpoint`], [`Severity`] and the
//! deterministic key that lets a replay recognise what was already reported.

use std::fmt;

use latch_core::Timestamp;

/// One detector over the event stream. The ids ([`Checkpoint::as_str`]) are recorded in the
/// ledger: never rename one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Checkpoint {
    /// No ticket where the resource requires one, or a ticket that does not match its pattern.
    JustificationMissing,
    /// A boilerplate, too short, repetitive or copy-pasted reason.
    JustificationWeak,
    /// An approval by the requester (outside break-glass).
    ApprovalSelf,
    /// An approval by someone the rules do not entitle.
    ApprovalUnauthorized,
    /// An approval given too fast without a comment, or an approver who approves nearly all.
    ApprovalRubberStamp,
    /// A break-glass self-approval.
    ApprovalBreakGlass,
    /// A write under a read role, or a statement on an object outside the declared scope.
    UsageScope,
    /// A session or statement before its grant started or after it ended.
    UsageOutsideWindow,
    /// A session used outside business hours.
    UsageOffHours,
    /// A principal's first session on a resource.
    UsageFirstTime,
    /// A read returning many rows, or a session reading many rows in total.
    UsageBulkRead,
    /// A session closed too long after its grant ended, or still open.
    RevocationLate,
    /// A grant that ended without a session.
    GrantUnused,
    /// A grant whose last part went unused.
    GrantIdleTail,
    /// A grant much longer than the grantee usually uses on the resource.
    GrantExcessive,
    /// Many requests by one requester in a short time.
    RequestsBurst,
    /// A team requesting the same resource so often that standing access may fit better.
    RequestsStandingCandidate,
}

impl Checkpoint {
    pub const ALL: [Checkpoint; 17] = [
        Self::JustificationMissing,
        Self::JustificationWeak,
        Self::ApprovalSelf,
        Self::ApprovalUnauthorized,
        Self::ApprovalRubberStamp,
        Self::ApprovalBreakGlass,
        Self::UsageScope,
        Self::UsageOutsideWindow,
        Self::UsageOffHours,
        Self::UsageFirstTime,
        Self::UsageBulkRead,
        Self::RevocationLate,
        Self::GrantUnused,
        Self::GrantIdleTail,
        Self::GrantExcessive,
        Self::RequestsBurst,
        Self::RequestsStandingCandidate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::JustificationMissing => "justification.missing",
            Self::JustificationWeak => "justification.weak",
            Self::ApprovalSelf => "approval.self",
            Self::ApprovalUnauthorized => "approval.unauthorized",
            Self::ApprovalRubberStamp => "approval.rubber_stamp",
            Self::ApprovalBreakGlass => "approval.break_glass",
            Self::UsageScope => "usage.scope",
            Self::UsageOutsideWindow => "usage.outside_window",
            Self::UsageOffHours => "usage.off_hours",
            Self::UsageFirstTime => "usage.first_time",
            Self::UsageBulkRead => "usage.bulk_read",
            Self::RevocationLate => "revocation.late",
            Self::GrantUnused => "grant.unused",
            Self::GrantIdleTail => "grant.idle_tail",
            Self::GrantExcessive => "grant.excessive",
            Self::RequestsBurst => "requests.burst",
            Self::RequestsStandingCandidate => "requests.standing_candidate",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// The severity of a finding of this checkpoint unless the finding says otherwise (a write
    /// that was executed weighs more than one that was refused) or the settings override it.
    pub fn default_severity(self) -> Severity {
        match self {
            Self::ApprovalSelf
            | Self::ApprovalUnauthorized
            | Self::ApprovalBreakGlass
            | Self::UsageOutsideWindow => Severity::High,
            Self::JustificationMissing
            | Self::UsageScope
            | Self::UsageBulkRead
            | Self::RevocationLate
            | Self::RequestsBurst => Severity::Medium,
            Self::JustificationWeak
            | Self::ApprovalRubberStamp
            | Self::UsageOffHours
            | Self::GrantUnused
            | Self::GrantIdleTail
            | Self::GrantExcessive => Severity::Low,
            Self::UsageFirstTime | Self::RequestsStandingCandidate => Severity::Info,
        }
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much a finding matters, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Self::Info,
        Self::Low,
        Self::Medium,
        Self::High,
        Self::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a checkpoint found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Deterministic: the same events yield the same key on every replay, so the store can
    /// refuse a finding it already holds. Always starts with the checkpoint id, e.g.
    /// `approval.self:req_X` or `usage.scope:ses_Y:3`.
    pub key: String,
    pub checkpoint: Checkpoint,
    pub severity: Severity,
    /// The request, grant or session id the finding is about (or the approver, requester or
    /// team for findings about a pattern of behaviour).
    pub subject: String,
    /// One sentence for people.
    pub summary: String,
    /// The ledger seqs of the events that triggered it, ascending.
    pub evidence: Vec<u64>,
    /// When the finding became true: the triggering event's time, or for time-based checks the
    /// instant the check fell due (e.g. the grant's end), never the wall clock of the tick that
    /// noticed it, so that a replay yields the same finding.
    pub at: Timestamp,
}
