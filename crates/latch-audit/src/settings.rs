//! The thresholds of every checkpoint ([`AuditSettings`], with the documented defaults) and what
//! a resource declares about itself ([`ResourceRules`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use latch_core::TicketPattern;

use crate::{Checkpoint, Severity};

/// What the organisation declared about one resource, beyond the catalog.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceRules {
    /// Requests on the resource must name a ticket matching this (`justification.missing`).
    pub ticket_pattern: Option<TicketPattern>,
    /// The objects sessions are expected to touch, as `schema.name` patterns where `*` matches
    /// any run of characters within one part (`public.accounts`, `public.*`, `*.audit_*`);
    /// empty: no scope check (`usage.scope`).
    pub scope: Vec<String>,
}

/// When people are expected to work (`usage.off_hours`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusinessHours {
    /// Working days, ISO numbering: 1 = Monday … 7 = Sunday.
    pub weekdays: Vec<u8>,
    /// Start of the working day in minutes after local midnight (480 = 08:00), inclusive.
    pub start_minute: u32,
    /// End of the working day in minutes after local midnight (1140 = 19:00), exclusive.
    pub end_minute: u32,
    /// Local time minus UTC in minutes (0 = UTC, 60 = CET); one offset, no daylight saving.
    pub utc_offset_minutes: i32,
}

impl Default for BusinessHours {
    fn default() -> Self {
        Self {
            weekdays: vec![1, 2, 3, 4, 5],
            start_minute: 8 * 60,
            end_minute: 19 * 60,
            utc_offset_minutes: 0,
        }
    }
}

/// Every threshold, with `Default` giving the defaults documented in `docs/CHECKPOINTS.md`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditSettings {
    /// Checkpoints that never report.
    pub disabled: BTreeSet<Checkpoint>,
    /// Replaces the severity of every finding of a checkpoint.
    pub severities: BTreeMap<Checkpoint, Severity>,

    /// `justification.weak`: reasons that say nothing, compared case-insensitively with spaces
    /// collapsed and trailing `.`, `!`, `?` ignored.
    pub boilerplate_reasons: Vec<String>,
    /// `justification.weak`: fewer non-space characters than this is too short.
    pub min_reason_chars: usize,
    /// `justification.weak`: a reason identical to each of the requester's previous this many
    /// reasons is copy-pasted; 0 turns the check off.
    pub repeated_reasons: usize,

    /// `approval.rubber_stamp`: an approval this soon after the request, without a comment.
    pub rubber_stamp_within: Duration,
    /// `approval.rubber_stamp`: an approver deciding at least this many requests in
    /// `approver_window` …
    pub approver_min_decisions: u32,
    /// … and approving at least this percentage of them.
    pub approver_approval_percent: u32,
    /// The rolling window of the approver statistics (hourly buckets).
    pub approver_window: Duration,

    /// `usage.scope`: roles whose sessions should only read (role names, exactly).
    pub read_roles: Vec<String>,
    /// `usage.scope`: statement classes that are not reads.
    pub write_classes: Vec<String>,
    /// `usage.scope`: schemas an unqualified object name may live in (`accounts` is checked
    /// as `public.accounts`).
    pub search_path: Vec<String>,
    /// `usage.scope`: patterns in every resource's scope (the system catalogs clients read).
    pub always_in_scope: Vec<String>,
    /// `usage.scope` and `usage.bulk_read`: at most this many per-statement findings per
    /// session and checkpoint; later statements are still counted, not reported.
    pub max_statement_findings_per_session: u32,
    /// `usage.off_hours`; `None` turns it off.
    pub business_hours: Option<BusinessHours>,
    /// `usage.bulk_read`: rows returned by one read.
    pub bulk_read_rows: u64,
    /// `usage.bulk_read`: rows returned by the reads of one session in total.
    pub bulk_session_rows: u64,

    /// `revocation.late` and `usage.outside_window`: how long after its grant ends a session
    /// may still run (the gateway cuts sessions asynchronously).
    pub revocation_tolerance: Duration,
    /// `revocation.late` is high rather than medium beyond this delay.
    pub revocation_high_after: Duration,

    /// `grant.idle_tail`: the idle tail must exceed this percentage of the granted duration …
    pub idle_tail_percent: u32,
    /// … and this much.
    pub idle_tail_min: Duration,
    /// `grant.excessive`: granted at least this many times the median used duration.
    pub excessive_factor: u32,
    /// `grant.excessive`: the used durations remembered per (user, resource) and
    /// (team, resource).
    pub excessive_history: usize,
    /// `grant.excessive`: the fewest used grants to compare with.
    pub excessive_min_sample: usize,

    /// `requests.burst`: this many requests by one requester …
    pub burst_requests: usize,
    /// … within this window.
    pub burst_window: Duration,
    /// `requests.standing_candidate`: this many requests on one resource by one team …
    pub standing_requests: usize,
    /// … within this window.
    pub standing_window: Duration,

    /// Time-based checks run this long after they fall due, so that session records written
    /// late (the gateway batches them) are seen first.
    pub settle: Duration,
    /// How long a grant's state (and its sessions') is kept after the grant ended, for
    /// statements and session ends recorded late.
    pub retention: Duration,
    /// A request still pending after this long is forgotten (it will never be approved in
    /// practice; requests without a timeout would otherwise be kept for ever).
    pub max_pending_age: Duration,
}

impl Default for AuditSettings {
    fn default() -> Self {
        let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        Self {
            disabled: BTreeSet::new(),
            severities: BTreeMap::new(),
            boilerplate_reasons: strings(&[
                "test",
                "testing",
                "access",
                "asdf",
                "need access",
                "needs access",
                "access needed",
                "n/a",
                "na",
                "none",
                "-",
                "...",
                ".",
                "x",
                "todo",
                "tbd",
                "work",
                "stuff",
                "debug",
                "debugging",
                "check",
                "investigation",
                "investigate",
                "please",
                "pls",
                "as discussed",
                "see ticket",
                "misc",
            ]),
            min_reason_chars: 10,
            repeated_reasons: 3,
            rubber_stamp_within: Duration::from_secs(30),
            approver_min_decisions: 20,
            approver_approval_percent: 95,
            approver_window: Duration::from_secs(30 * 86_400),
            read_roles: strings(&["read", "readonly", "read-only"]),
            write_classes: strings(&["write", "ddl", "privilege"]),
            search_path: strings(&["public"]),
            always_in_scope: strings(&["pg_catalog.*", "information_schema.*", "pg_*"]),
            max_statement_findings_per_session: 20,
            business_hours: Some(BusinessHours::default()),
            bulk_read_rows: 10_000,
            bulk_session_rows: 100_000,
            revocation_tolerance: Duration::from_millis(1_000),
            revocation_high_after: Duration::from_secs(60),
            idle_tail_percent: 50,
            idle_tail_min: Duration::from_secs(30 * 60),
            excessive_factor: 4,
            excessive_history: 10,
            excessive_min_sample: 5,
            burst_requests: 5,
            burst_window: Duration::from_secs(10 * 60),
            standing_requests: 20,
            standing_window: Duration::from_secs(30 * 86_400),
            settle: Duration::from_secs(5),
            retention: Duration::from_secs(3_600),
            max_pending_age: Duration::from_secs(30 * 86_400),
        }
    }
}

impl AuditSettings {
    pub(crate) fn enabled(&self, checkpoint: Checkpoint) -> bool {
        !self.disabled.contains(&checkpoint)
    }

    pub(crate) fn severity(&self, checkpoint: Checkpoint, computed: Severity) -> Severity {
        self.severities
            .get(&checkpoint)
            .copied()
            .unwrap_or(computed)
    }
}

/// A duration in milliseconds as the auditor computes with them (saturating, at least 1 where a
/// window must not be empty).
pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
