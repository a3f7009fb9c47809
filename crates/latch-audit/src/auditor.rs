//! The [`Auditor`]: every checkpoint over the event stream, in ledger order, with the state each
//! needs kept only while it can still matter.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;

use latch_core::lifecycle::{self, AccessRequest};
use latch_core::{Catalog, Event, EventKind, RequestState, StoredEvent, Timestamp};

use crate::hash::{FastMap, FastSet};
use crate::settings::millis;
use crate::text::{self, Weakness};
use crate::window::{ApproverStats, Recent};
use crate::{AuditSettings, Checkpoint, Finding, ResourceRules, Severity};

/// How often (in event time, through `tick`) idle windows and stale requests are swept.
const SWEEP_EVERY_MS: i64 = 15 * 60_000;

/// Runs the checkpoints over a ledger's events. See the crate docs for how the server and the
/// replay use it.
pub struct Auditor {
    settings: AuditSettings,
    /// The settings' durations in milliseconds, converted once.
    limits: Limits,
    catalog: Arc<Catalog>,
    /// Per resource; shared with the sessions that check their scope.
    rules: FastMap<String, Arc<ResourceRules>>,
    /// Pending requests by id: the lifecycle state the approval checks judge against.
    requests: FastMap<String, RequestTrack>,
    /// Grants by id, from `grant.issued` until `retention` after they ended.
    grants: FastMap<String, GrantTrack>,
    /// Open sessions by id.
    sessions: FastMap<String, SessionTrack>,
    /// The grants' end checks and drops, earliest first; entries made stale by a revocation
    /// are skipped when they come up.
    timers: BinaryHeap<Reverse<Timer>>,
    /// Per requester, the fingerprints of their last `repeated_reasons` reasons.
    reasons: FastMap<String, VecDeque<u64>>,
    /// Per requester, their latest requests (`requests.burst`).
    bursts: FastMap<String, Recent>,
    /// Per team, then resource, their latest requests (`requests.standing_candidate`).
    standing: FastMap<String, FastMap<String, Recent>>,
    /// Per approver, their decisions (`approval.rubber_stamp`).
    approvers: FastMap<String, ApproverStats>,
    /// Per resource, the users who ever opened a session on it (`usage.first_time`).
    seen: FastMap<String, FastSet<String>>,
    /// Per resource, then user, the used durations (seconds) of their last grants.
    used_by_user: FastMap<String, FastMap<String, VecDeque<u32>>>,
    /// Per resource, then team, the same for the team's members.
    used_by_team: FastMap<String, FastMap<String, VecDeque<u32>>>,
    /// The latest `tick`.
    now: i64,
    next_sweep: i64,
}

/// How much state an auditor holds: for metrics and the benchmark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditorStats {
    pub requests: usize,
    pub grants: usize,
    pub sessions: usize,
    pub timers: usize,
    /// Burst, standing-candidate and approver windows.
    pub windows: usize,
    /// Remembered reasons, first-use pairs and used durations: bounded by the organisation.
    pub history: usize,
}

impl AuditorStats {
    pub fn total(&self) -> usize {
        self.requests + self.grants + self.sessions + self.timers + self.windows + self.history
    }
}

struct Limits {
    rubber_stamp_within: i64,
    approver_window: i64,
    revocation_tolerance: i64,
    revocation_high_after: i64,
    idle_tail_min: i64,
    burst_window: i64,
    standing_window: i64,
    settle: i64,
    retention: i64,
    max_pending_age: i64,
}

struct RequestTrack {
    request: AccessRequest,
    created_seq: u64,
    self_reported: bool,
}

struct GrantTrack {
    grantee: String,
    resource: String,
    role: String,
    issued_seq: u64,
    starts_at: i64,
    expires_at: i64,
    /// When and by which event it expired or was revoked.
    ended: Option<(i64, u64)>,
    sessions_started: u32,
    open_sessions: Vec<String>,
    /// The latest session start, statement or session end: (time, seq).
    last_activity: Option<(i64, u64)>,
    /// The end checks ran.
    checked: bool,
}

impl GrantTrack {
    /// When the grant ended or will end, as far as the events tell.
    fn end(&self) -> i64 {
        match self.ended {
            Some((at, _)) => at.min(self.expires_at),
            None => self.expires_at,
        }
    }

    fn check_at(&self, limits: &Limits) -> i64 {
        self.end()
            .saturating_add(limits.revocation_tolerance)
            .saturating_add(limits.settle)
    }

    fn drop_at(&self, limits: &Limits) -> i64 {
        self.end()
            .saturating_add(limits.retention)
            .max(self.check_at(limits))
    }

    fn touch(&mut self, at: i64, seq: u64) {
        if self.last_activity.is_none_or(|(last, _)| at >= last) {
            self.last_activity = Some((at, seq));
        }
    }

    fn granted_ms(&self) -> i64 {
        self.expires_at.saturating_sub(self.starts_at).max(0)
    }
}

struct SessionTrack {
    grant_id: String,
    user: String,
    resource: String,
    role: String,
    started_seq: u64,
    read_role: bool,
    /// The resource's rules when they declare a scope.
    scope: Option<Arc<ResourceRules>>,
    last_at: i64,
    /// Rows returned by the session's reads so far.
    rows: u64,
    /// Reads recorded as `pending` (strict recording): statement seq, awaiting their outcome.
    pending_reads: Vec<u64>,
    scope_findings: u32,
    bulk_findings: u32,
    off_hours_reported: bool,
    outside_reported: bool,
    bulk_total_reported: bool,
    late_reported: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// The end checks: late sessions, unused grant, idle tail, used-duration history.
    Check,
    /// Forget the grant and its sessions.
    Drop,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    fire_at: i64,
    phase: Phase,
    grant_id: String,
}

fn finding(
    checkpoint: Checkpoint,
    severity: Severity,
    key_tail: &str,
    subject: &str,
    summary: String,
    mut evidence: Vec<u64>,
    at: i64,
) -> Finding {
    evidence.sort_unstable();
    evidence.dedup();
    Finding {
        key: format!("{}:{key_tail}", checkpoint.as_str()),
        checkpoint,
        severity,
        subject: subject.to_owned(),
        summary,
        evidence,
        at: Timestamp::from_millis(at),
    }
}

fn push(settings: &AuditSettings, out: &mut Vec<Finding>, mut finding: Finding) {
    finding.severity = settings.severity(finding.checkpoint, finding.severity);
    out.push(finding);
}

/// The start of a tumbling period, as it appears in keys.
fn period_start(period: i64, window: i64) -> Timestamp {
    Timestamp::from_millis(period.saturating_mul(window.max(1)))
}

/// Statement outcomes where the statement did not run.
fn did_not_run(outcome: &str) -> bool {
    matches!(outcome, "refused" | "not_run")
}

impl Auditor {
    pub fn new(
        settings: AuditSettings,
        catalog: Arc<Catalog>,
        rules: HashMap<String, ResourceRules>,
    ) -> Self {
        let limits = Limits {
            rubber_stamp_within: millis(settings.rubber_stamp_within),
            approver_window: millis(settings.approver_window).max(1),
            revocation_tolerance: millis(settings.revocation_tolerance),
            revocation_high_after: millis(settings.revocation_high_after),
            idle_tail_min: millis(settings.idle_tail_min),
            burst_window: millis(settings.burst_window).max(1),
            standing_window: millis(settings.standing_window).max(1),
            settle: millis(settings.settle),
            retention: millis(settings.retention),
            max_pending_age: millis(settings.max_pending_age),
        };
        Self {
            settings,
            limits,
            catalog,
            rules: rules
                .into_iter()
                .map(|(name, rules)| (name, Arc::new(rules)))
                .collect(),
            requests: FastMap::default(),
            grants: FastMap::default(),
            sessions: FastMap::default(),
            timers: BinaryHeap::new(),
            reasons: FastMap::default(),
            bursts: FastMap::default(),
            standing: FastMap::default(),
            approvers: FastMap::default(),
            seen: FastMap::default(),
            used_by_user: FastMap::default(),
            used_by_team: FastMap::default(),
            now: i64::MIN,
            next_sweep: i64::MIN,
        }
    }

    pub fn settings(&self) -> &AuditSettings {
        &self.settings
    }

    /// Feeds one ledger event (in seq order); returns the findings it completes. Events about
    /// requests, grants or sessions the auditor does not know (or no longer keeps) are ignored.
    pub fn observe(&mut self, stored: &StoredEvent) -> Vec<Finding> {
        let mut out = Vec::new();
        let event = &stored.event;
        match &event.kind {
            EventKind::SessionStatement {
                seq: statement,
                class,
                objects,
                outcome,
                rows,
                ..
            } => self.statement(
                stored,
                &Statement {
                    number: *statement,
                    class,
                    objects,
                    outcome,
                    rows: *rows,
                },
                &mut out,
            ),
            EventKind::SessionStatementOutcome {
                seq: statement,
                rows,
                ..
            } => self.statement_outcome(stored, *statement, *rows, &mut out),
            EventKind::SessionStarted {
                grant_id,
                user,
                resource,
                role,
                ..
            } => self.session_started(stored, grant_id, user, resource, role, &mut out),
            EventKind::SessionEnded {
                revocation_delay_ms,
                ..
            } => self.session_ended(stored, *revocation_delay_ms, &mut out),
            EventKind::RequestCreated { .. } => self.request_created(stored, &mut out),
            EventKind::ApprovalRecorded { comment, .. } => {
                self.approval(stored, comment.as_deref(), false, &mut out);
            }
            EventKind::RequestApproved {
                comment,
                break_glass,
                ..
            } => self.approval(stored, comment.as_deref(), *break_glass, &mut out),
            EventKind::RequestDenied { .. } => {
                if let Some(approver) = event.actor.user_name() {
                    let requester = self
                        .requests
                        .get(&event.subject)
                        .map(|track| track.request.requester.as_str());
                    if requester != Some(approver) {
                        self.record_decision(stored, approver, false, &mut out);
                    }
                }
                self.transition(event);
            }
            EventKind::RequestCancelled {}
            | EventKind::RequestTimedOut {}
            | EventKind::RequestEscalated { .. } => self.transition(event),
            EventKind::GrantIssued { .. } => self.grant_issued(stored, &mut out),
            EventKind::GrantExpired { grant_id } | EventKind::GrantRevoked { grant_id, .. } => {
                self.transition(event);
                self.grant_ended(stored, grant_id);
            }
            // Refusals, policy loads, tokens, credentials, and findings themselves: nothing the
            // checkpoints read (a wildcard, so that a new kind of event is ignored until a
            // checkpoint needs it).
            _ => {}
        }
        out
    }

    /// Runs the time-based checks due at `now` (a grant's end checks run once `settle` has
    /// passed after their due time); returns what they found. Time never goes back: an earlier
    /// `now` than a previous tick's is ignored.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Finding> {
        let mut out = Vec::new();
        self.now = self.now.max(now.as_millis());
        while let Some(Reverse(next)) = self.timers.peek()
            && next.fire_at <= self.now
        {
            let Some(Reverse(timer)) = self.timers.pop() else {
                break;
            };
            match timer.phase {
                Phase::Check => self.grant_checks(&timer, &mut out),
                Phase::Drop => self.grant_drop(&timer),
            }
        }
        if self.now >= self.next_sweep {
            self.sweep();
            self.next_sweep = self.now.saturating_add(SWEEP_EVERY_MS);
        }
        out
    }

    /// Replays stored events as the live server sees them: ticks at each event's time before
    /// observing it, then at `until`.
    pub fn replay<'a>(
        &mut self,
        events: impl IntoIterator<Item = &'a StoredEvent>,
        until: Timestamp,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        for event in events {
            out.extend(self.tick(event.event.at));
            out.extend(self.observe(event));
        }
        out.extend(self.tick(until));
        out
    }

    pub fn stats(&self) -> AuditorStats {
        let nested = |map: &FastMap<String, FastMap<String, VecDeque<u32>>>| -> usize {
            map.values()
                .flat_map(FastMap::values)
                .map(VecDeque::len)
                .sum()
        };
        AuditorStats {
            requests: self.requests.len(),
            grants: self.grants.len(),
            sessions: self.sessions.len(),
            timers: self.timers.len(),
            windows: self.bursts.len()
                + self.standing.values().map(FastMap::len).sum::<usize>()
                + self.approvers.len(),
            history: self.reasons.values().map(VecDeque::len).sum::<usize>()
                + self.seen.values().map(FastSet::len).sum::<usize>()
                + nested(&self.used_by_user)
                + nested(&self.used_by_team),
        }
    }

    // ---- requests -------------------------------------------------------------------------

    fn request_created(&mut self, stored: &StoredEvent, out: &mut Vec<Finding>) {
        let event = &stored.event;
        let EventKind::RequestCreated {
            requester,
            resource,
            role,
            reason,
            ticket,
            ..
        } = &event.kind
        else {
            return;
        };
        if self.requests.contains_key(&event.subject) {
            return;
        }
        let at = event.at.as_millis();
        let settings = &self.settings;
        let id = event.subject.as_str();
        let what = format!("{role} on {resource}");
        if settings.enabled(Checkpoint::JustificationMissing)
            && let Some(pattern) = self
                .rules
                .get(resource)
                .and_then(|rules| rules.ticket_pattern.as_ref())
        {
            let problem = match ticket {
                None => Some(format!(
                    "{requester}'s request for {what} has no ticket ({resource} requires one matching `{}`)",
                    pattern.as_str()
                )),
                Some(ticket) if !pattern.matches(ticket) => Some(format!(
                    "{requester}'s ticket {} for {what} does not match `{}`",
                    text::quote(ticket),
                    pattern.as_str()
                )),
                Some(_) => None,
            };
            if let Some(summary) = problem {
                push(
                    settings,
                    out,
                    finding(
                        Checkpoint::JustificationMissing,
                        Checkpoint::JustificationMissing.default_severity(),
                        id,
                        id,
                        summary,
                        vec![stored.seq],
                        at,
                    ),
                );
            }
        }
        if settings.enabled(Checkpoint::JustificationWeak) {
            let normalized = text::normalize(reason);
            let fingerprint = text::fingerprint(&normalized);
            let keep = settings.repeated_reasons;
            let copied = keep > 0
                && self.reasons.get(requester).is_some_and(|previous| {
                    previous.len() >= keep && previous.iter().all(|p| *p == fingerprint)
                });
            let why = match text::weakness(
                &normalized,
                &settings.boilerplate_reasons,
                settings.min_reason_chars,
            ) {
                Some(Weakness::Boilerplate) => Some("is boilerplate".to_owned()),
                Some(Weakness::Repetitive) => Some("is repetitive".to_owned()),
                Some(Weakness::TooShort { chars }) => Some(format!(
                    "is too short ({chars} characters, fewer than {})",
                    settings.min_reason_chars
                )),
                None if copied => Some(format!("repeats their previous {keep} reasons")),
                None => None,
            };
            if let Some(why) = why {
                push(
                    settings,
                    out,
                    finding(
                        Checkpoint::JustificationWeak,
                        Checkpoint::JustificationWeak.default_severity(),
                        id,
                        id,
                        format!(
                            "{requester}'s reason {} for {what} {why}",
                            text::quote(reason)
                        ),
                        vec![stored.seq],
                        at,
                    ),
                );
            }
            if keep > 0 {
                let previous = match self.reasons.get_mut(requester) {
                    Some(previous) => previous,
                    None => self.reasons.entry(requester.clone()).or_default(),
                };
                previous.push_back(fingerprint);
                while previous.len() > keep {
                    previous.pop_front();
                }
            }
        }
        // A window's state may have been swept once the ticks moved past it: an event that old
        // (recorded very late, or replayed out of order) no longer counts towards one.
        let counts = |window: i64| at > self.now.saturating_sub(window);
        if settings.enabled(Checkpoint::RequestsBurst) && counts(self.limits.burst_window) {
            let window = self.limits.burst_window;
            let recent = match self.bursts.get_mut(requester) {
                Some(recent) => recent,
                None => self.bursts.entry(requester.clone()).or_default(),
            };
            if let Some((period, evidence)) =
                recent.push(at, stored.seq, settings.burst_requests, window)
            {
                push(
                    settings,
                    out,
                    finding(
                        Checkpoint::RequestsBurst,
                        Checkpoint::RequestsBurst.default_severity(),
                        &format!("{requester}:{}", period_start(period, window)),
                        requester,
                        format!(
                            "{requester} made {} requests within {}",
                            evidence.len(),
                            text::human(window)
                        ),
                        evidence,
                        at,
                    ),
                );
            }
        }
        if settings.enabled(Checkpoint::RequestsStandingCandidate)
            && counts(self.limits.standing_window)
            && let Some(user) = self.catalog.user(requester)
        {
            let window = self.limits.standing_window;
            for team in &user.teams {
                let recent = self
                    .standing
                    .entry(team.clone())
                    .or_default()
                    .entry(resource.clone())
                    .or_default();
                if let Some((period, evidence)) =
                    recent.push(at, stored.seq, settings.standing_requests, window)
                {
                    push(
                        settings,
                        out,
                        finding(
                            Checkpoint::RequestsStandingCandidate,
                            Checkpoint::RequestsStandingCandidate.default_severity(),
                            &format!("{team}:{resource}:{}", period_start(period, window)),
                            team,
                            format!(
                                "team {team} requested {resource} {} times within {}: a candidate for standing access",
                                evidence.len(),
                                text::human(window)
                            ),
                            evidence,
                            at,
                        ),
                    );
                }
            }
        }
        if let Ok(request) = lifecycle::apply(None, event) {
            self.requests.insert(
                event.subject.clone(),
                RequestTrack {
                    request,
                    created_seq: stored.seq,
                    self_reported: false,
                },
            );
        }
    }

    /// Folds a lifecycle event into its pending request; forgets the request once it is no
    /// longer pending (nothing after its decision needs it).
    fn transition(&mut self, event: &Event) {
        let Some(track) = self.requests.get_mut(&event.subject) else {
            return;
        };
        if let Ok(next) = lifecycle::apply(Some(track.request.clone()), event) {
            track.request = next;
        }
        if track.request.state != RequestState::Pending {
            self.requests.remove(&event.subject);
        }
    }

    fn approval(
        &mut self,
        stored: &StoredEvent,
        comment: Option<&str>,
        break_glass: bool,
        out: &mut Vec<Finding>,
    ) {
        let event = &stored.event;
        let at = event.at.as_millis();
        let id = event.subject.as_str();
        // latch itself approves only what policy auto-approves: nobody to judge.
        let Some(approver) = event.actor.user_name() else {
            self.transition(event);
            return;
        };
        let settings = &self.settings;
        if break_glass {
            if settings.enabled(Checkpoint::ApprovalBreakGlass) {
                let why = comment
                    .map(|c| format!(": {}", text::quote(c)))
                    .unwrap_or_default();
                let summary = match self.requests.get(id) {
                    Some(track) => format!(
                        "{approver} broke glass on their own request for {} on {}{why}",
                        track.request.role, track.request.resource
                    ),
                    None => format!("{approver} broke glass on request {id}{why}"),
                };
                let mut evidence = vec![stored.seq];
                evidence.extend(self.requests.get(id).map(|t| t.created_seq));
                push(
                    settings,
                    out,
                    finding(
                        Checkpoint::ApprovalBreakGlass,
                        Checkpoint::ApprovalBreakGlass.default_severity(),
                        id,
                        id,
                        summary,
                        evidence,
                        at,
                    ),
                );
            }
            self.transition(event);
            return;
        }
        let requester = self
            .requests
            .get(id)
            .map(|track| track.request.requester.clone());
        if requester.as_deref() != Some(approver) {
            self.record_decision(stored, approver, true, out);
        }
        let settings = &self.settings;
        let Some(track) = self.requests.get_mut(id) else {
            return;
        };
        let request = &track.request;
        let what = format!(
            "{}'s request for {} on {}",
            request.requester, request.role, request.resource
        );
        let evidence = vec![track.created_seq, stored.seq];
        if approver == request.requester {
            if !track.self_reported && settings.enabled(Checkpoint::ApprovalSelf) {
                track.self_reported = true;
                push(
                    settings,
                    out,
                    finding(
                        Checkpoint::ApprovalSelf,
                        Checkpoint::ApprovalSelf.default_severity(),
                        id,
                        id,
                        format!(
                            "{approver} approved their own request for {} on {} outside break-glass",
                            request.role, request.resource
                        ),
                        evidence,
                        at,
                    ),
                );
            }
        } else if !request.approvals.iter().any(|a| a.approver == approver) {
            if settings.enabled(Checkpoint::ApprovalUnauthorized)
                && let Some(why) = unauthorized(&self.catalog, approver, request, event.at)
            {
                push(
                    settings,
                    out,
                    finding(
                        Checkpoint::ApprovalUnauthorized,
                        Checkpoint::ApprovalUnauthorized.default_severity(),
                        &format!("{id}:{approver}"),
                        id,
                        format!("{approver} approved {what} but {why}"),
                        evidence.clone(),
                        at,
                    ),
                );
            }
            let after = at.saturating_sub(request.created_at.as_millis());
            let silent = comment.is_none_or(|c| c.trim().is_empty());
            if settings.enabled(Checkpoint::ApprovalRubberStamp)
                && silent
                && after <= self.limits.rubber_stamp_within
            {
                push(
                    settings,
                    out,
                    finding(
                        Checkpoint::ApprovalRubberStamp,
                        Checkpoint::ApprovalRubberStamp.default_severity(),
                        &format!("{id}:{approver}"),
                        id,
                        format!(
                            "{approver} approved {what} {} after it was made, without a comment",
                            text::human(after)
                        ),
                        evidence,
                        at,
                    ),
                );
            }
        }
        self.transition(event);
    }

    /// Counts an approver's decision; reports an approver who approves nearly everything.
    fn record_decision(
        &mut self,
        stored: &StoredEvent,
        approver: &str,
        approved: bool,
        out: &mut Vec<Finding>,
    ) {
        let settings = &self.settings;
        if !settings.enabled(Checkpoint::ApprovalRubberStamp) {
            return;
        }
        let window = self.limits.approver_window;
        let at = stored.event.at.as_millis();
        if at <= self.now.saturating_sub(window) {
            return;
        }
        let stats = match self.approvers.get_mut(approver) {
            Some(stats) => stats,
            None => self.approvers.entry(approver.to_owned()).or_default(),
        };
        let Some(streak) = stats.record(
            at,
            stored.seq,
            approved,
            window,
            settings.approver_min_decisions,
            settings.approver_approval_percent,
        ) else {
            return;
        };
        let percent = u64::from(streak.approved) * 100 / u64::from(streak.decisions.max(1));
        push(
            settings,
            out,
            finding(
                Checkpoint::ApprovalRubberStamp,
                Checkpoint::ApprovalRubberStamp.default_severity(),
                &format!(
                    "approver:{approver}:{}",
                    period_start(streak.period, window)
                ),
                approver,
                format!(
                    "{approver} approved {} of {} decisions ({percent}%) within {}",
                    streak.approved,
                    streak.decisions,
                    text::human(window)
                ),
                streak.evidence,
                at,
            ),
        );
    }

    // ---- grants ---------------------------------------------------------------------------

    fn grant_issued(&mut self, stored: &StoredEvent, out: &mut Vec<Finding>) {
        let event = &stored.event;
        let EventKind::GrantIssued {
            grant_id,
            grantee,
            resource,
            role,
            starts_at,
            expires_at,
        } = &event.kind
        else {
            return;
        };
        self.transition(event);
        if self.grants.contains_key(grant_id) {
            return;
        }
        let grant = GrantTrack {
            grantee: grantee.clone(),
            resource: resource.clone(),
            role: role.clone(),
            issued_seq: stored.seq,
            starts_at: starts_at.as_millis(),
            expires_at: expires_at.as_millis(),
            ended: None,
            sessions_started: 0,
            open_sessions: Vec::new(),
            last_activity: None,
            checked: false,
        };
        if self.settings.enabled(Checkpoint::GrantExcessive)
            && let Some((median_secs, whose)) = self.usual_use(grantee, resource)
        {
            let granted_secs = grant.granted_ms() / 1_000;
            let factor = i64::from(self.settings.excessive_factor);
            if median_secs > 0 && granted_secs >= factor.saturating_mul(median_secs) {
                push(
                    &self.settings,
                    out,
                    finding(
                        Checkpoint::GrantExcessive,
                        Checkpoint::GrantExcessive.default_severity(),
                        grant_id,
                        grant_id,
                        format!(
                            "{grantee} was granted {role} on {resource} for {}; {whose} were used for a median {}",
                            text::human(granted_secs.saturating_mul(1_000)),
                            text::human(median_secs.saturating_mul(1_000))
                        ),
                        vec![stored.seq],
                        event.at.as_millis(),
                    ),
                );
            }
        }
        self.timers.push(Reverse(Timer {
            fire_at: grant.check_at(&self.limits),
            phase: Phase::Check,
            grant_id: grant_id.clone(),
        }));
        self.grants.insert(grant_id.clone(), grant);
    }

    /// The median used duration (seconds) of the grantee's recent grants on the resource, or
    /// else of one of their teams', with which grants those are (for the summary).
    fn usual_use(&self, grantee: &str, resource: &str) -> Option<(i64, String)> {
        let min = self.settings.excessive_min_sample.max(1);
        if let Some(history) = self
            .used_by_user
            .get(resource)
            .and_then(|users| users.get(grantee))
            .filter(|h| h.len() >= min)
        {
            return Some((
                median(history),
                format!("their last {} grants there", history.len()),
            ));
        }
        let teams = self.used_by_team.get(resource)?;
        let user = self.catalog.user(grantee)?;
        user.teams.iter().find_map(|team| {
            teams.get(team).filter(|h| h.len() >= min).map(|h| {
                (
                    median(h),
                    format!("the last {} grants of team {team} there", h.len()),
                )
            })
        })
    }

    fn grant_ended(&mut self, stored: &StoredEvent, grant_id: &str) {
        let Some(grant) = self.grants.get_mut(grant_id) else {
            return;
        };
        // Once its end checks ran, the grant's timeline is settled: an end recorded later
        // (e.g. a revocation seen after a tick ran ahead) changes nothing.
        if grant.ended.is_some() || grant.checked {
            return;
        }
        let before = grant.check_at(&self.limits);
        grant.ended = Some((stored.event.at.as_millis(), stored.seq));
        let after = grant.check_at(&self.limits);
        if after != before {
            self.timers.push(Reverse(Timer {
                fire_at: after,
                phase: Phase::Check,
                grant_id: grant_id.to_owned(),
            }));
        }
    }

    fn grant_checks(&mut self, timer: &Timer, out: &mut Vec<Finding>) {
        let Self {
            settings,
            limits,
            catalog,
            grants,
            sessions,
            timers,
            used_by_user,
            used_by_team,
            ..
        } = self;
        let Some(grant) = grants.get_mut(&timer.grant_id) else {
            return;
        };
        if grant.checked || grant.check_at(limits) != timer.fire_at {
            return;
        }
        grant.checked = true;
        let id = timer.grant_id.as_str();
        let end = grant.end();
        let what = format!(
            "{}'s grant for {} on {}",
            grant.grantee, grant.role, grant.resource
        );
        let mut base_evidence = vec![grant.issued_seq];
        base_evidence.extend(grant.ended.map(|(_, seq)| seq));
        for session_id in &grant.open_sessions {
            let Some(session) = sessions.get_mut(session_id) else {
                continue;
            };
            if session.late_reported || !settings.enabled(Checkpoint::RevocationLate) {
                continue;
            }
            session.late_reported = true;
            let mut evidence = base_evidence.clone();
            evidence.push(session.started_seq);
            push(
                settings,
                out,
                finding(
                    Checkpoint::RevocationLate,
                    Checkpoint::RevocationLate.default_severity(),
                    session_id,
                    session_id,
                    format!(
                        "{}'s session {session_id} on {} was still open {} after grant {id} ended",
                        session.user,
                        session.resource,
                        text::human(limits.revocation_tolerance)
                    ),
                    evidence,
                    end.saturating_add(limits.revocation_tolerance),
                ),
            );
        }
        if grant.sessions_started == 0 {
            if settings.enabled(Checkpoint::GrantUnused) {
                push(
                    settings,
                    out,
                    finding(
                        Checkpoint::GrantUnused,
                        Checkpoint::GrantUnused.default_severity(),
                        id,
                        id,
                        format!(
                            "{what} ({}) ended without a session",
                            text::human(grant.granted_ms())
                        ),
                        base_evidence.clone(),
                        end,
                    ),
                );
            }
        } else {
            // Still open at the end: used to the end.
            let last = if grant.open_sessions.is_empty() {
                grant.last_activity
            } else {
                None
            };
            let used_until = last.map_or(end, |(at, _)| at.min(end));
            let granted = grant.granted_ms();
            if let Some((last_at, last_seq)) = last {
                let tail = end.saturating_sub(last_at);
                let share = i64::from(settings.idle_tail_percent);
                if settings.enabled(Checkpoint::GrantIdleTail)
                    && tail > limits.idle_tail_min
                    && tail.saturating_mul(100) > granted.saturating_mul(share)
                {
                    let mut evidence = base_evidence.clone();
                    evidence.push(last_seq);
                    push(
                        settings,
                        out,
                        finding(
                            Checkpoint::GrantIdleTail,
                            Checkpoint::GrantIdleTail.default_severity(),
                            id,
                            id,
                            format!(
                                "{what} was idle for the last {} of {}",
                                text::human(tail),
                                text::human(end.saturating_sub(grant.starts_at))
                            ),
                            evidence,
                            end,
                        ),
                    );
                }
            }
            let used_secs = u32::try_from(
                (used_until.saturating_sub(grant.starts_at) / 1_000)
                    .clamp(1, granted.max(1_000) / 1_000),
            )
            .unwrap_or(u32::MAX);
            let keep = settings.excessive_history;
            if keep > 0 {
                let remember = |history: &mut VecDeque<u32>| {
                    history.push_back(used_secs);
                    while history.len() > keep {
                        history.pop_front();
                    }
                };
                remember(
                    used_by_user
                        .entry(grant.resource.clone())
                        .or_default()
                        .entry(grant.grantee.clone())
                        .or_default(),
                );
                if let Some(user) = catalog.user(&grant.grantee) {
                    let teams = used_by_team.entry(grant.resource.clone()).or_default();
                    for team in &user.teams {
                        remember(teams.entry(team.clone()).or_default());
                    }
                }
            }
        }
        timers.push(Reverse(Timer {
            fire_at: grant.drop_at(limits),
            phase: Phase::Drop,
            grant_id: timer.grant_id.clone(),
        }));
    }

    fn grant_drop(&mut self, timer: &Timer) {
        let due = self
            .grants
            .get(&timer.grant_id)
            .is_some_and(|grant| grant.checked && grant.drop_at(&self.limits) == timer.fire_at);
        if !due {
            return;
        }
        if let Some(grant) = self.grants.remove(&timer.grant_id) {
            for session in &grant.open_sessions {
                self.sessions.remove(session);
            }
        }
    }

    // ---- sessions -------------------------------------------------------------------------

    fn session_started(
        &mut self,
        stored: &StoredEvent,
        grant_id: &str,
        user: &str,
        resource: &str,
        role: &str,
        out: &mut Vec<Finding>,
    ) {
        let event = &stored.event;
        let id = event.subject.as_str();
        if self.sessions.contains_key(id) {
            return;
        }
        let at = event.at.as_millis();
        let settings = &self.settings;
        let known = self
            .seen
            .get(resource)
            .is_some_and(|users| users.contains(user));
        if !known {
            self.seen
                .entry(resource.to_owned())
                .or_default()
                .insert(user.to_owned());
            if settings.enabled(Checkpoint::UsageFirstTime) {
                push(
                    settings,
                    out,
                    finding(
                        Checkpoint::UsageFirstTime,
                        Checkpoint::UsageFirstTime.default_severity(),
                        &format!("{user}:{resource}"),
                        id,
                        format!("{user} opened their first session on {resource} (as {role})"),
                        vec![stored.seq],
                        at,
                    ),
                );
            }
        }
        let mut session = SessionTrack {
            grant_id: grant_id.to_owned(),
            user: user.to_owned(),
            resource: resource.to_owned(),
            role: role.to_owned(),
            started_seq: stored.seq,
            read_role: settings.read_roles.iter().any(|r| r == role),
            scope: self
                .rules
                .get(resource)
                .filter(|rules| !rules.scope.is_empty())
                .cloned(),
            last_at: at,
            rows: 0,
            pending_reads: Vec::new(),
            scope_findings: 0,
            bulk_findings: 0,
            off_hours_reported: false,
            outside_reported: false,
            bulk_total_reported: false,
            late_reported: false,
        };
        if let Some(grant) = self.grants.get_mut(grant_id) {
            grant.sessions_started = grant.sessions_started.saturating_add(1);
            grant.open_sessions.push(id.to_owned());
            grant.touch(at, stored.seq);
            if settings.enabled(Checkpoint::UsageOutsideWindow)
                && let Some(off) = outside(grant, at, self.limits.revocation_tolerance)
            {
                session.outside_reported = true;
                push(
                    settings,
                    out,
                    finding(
                        Checkpoint::UsageOutsideWindow,
                        Checkpoint::UsageOutsideWindow.default_severity(),
                        id,
                        id,
                        format!("{user} opened session {id} on {resource} {off}"),
                        vec![grant.issued_seq, stored.seq],
                        at,
                    ),
                );
            }
        }
        self.sessions.insert(id.to_owned(), session);
    }

    /// The hot path: most events are statements.
    fn statement(
        &mut self,
        stored: &StoredEvent,
        statement: &Statement<'_>,
        out: &mut Vec<Finding>,
    ) {
        let Self {
            settings,
            limits,
            grants,
            sessions,
            ..
        } = self;
        let event = &stored.event;
        let Some(session) = sessions.get_mut(&event.subject) else {
            return;
        };
        let id = event.subject.as_str();
        let at = event.at.as_millis();
        session.last_at = session.last_at.max(at);
        let ran = !did_not_run(statement.outcome);
        if let Some(grant) = grants.get_mut(&session.grant_id) {
            grant.touch(at, stored.seq);
            if ran
                && !session.outside_reported
                && settings.enabled(Checkpoint::UsageOutsideWindow)
                && let Some(off) = outside(grant, at, limits.revocation_tolerance)
            {
                session.outside_reported = true;
                push(
                    settings,
                    out,
                    finding(
                        Checkpoint::UsageOutsideWindow,
                        Checkpoint::UsageOutsideWindow.default_severity(),
                        id,
                        id,
                        format!(
                            "{}'s statement {} on {} ran {off}",
                            session.user, statement.number, session.resource
                        ),
                        vec![grant.issued_seq, stored.seq],
                        at,
                    ),
                );
            }
        }
        if !session.off_hours_reported
            && let Some(hours) = &settings.business_hours
        {
            let (weekday, minute) = text::local_clock(at, hours.utc_offset_minutes);
            let working = hours.weekdays.contains(&weekday)
                && minute >= hours.start_minute
                && minute < hours.end_minute;
            if !working && settings.enabled(Checkpoint::UsageOffHours) {
                session.off_hours_reported = true;
                push(
                    settings,
                    out,
                    finding(
                        Checkpoint::UsageOffHours,
                        Checkpoint::UsageOffHours.default_severity(),
                        id,
                        id,
                        format!(
                            "{} used {} on {} at {:02}:{:02} {}, outside business hours",
                            session.user,
                            session.resource,
                            text::weekday_name(weekday),
                            minute / 60,
                            minute % 60,
                            text::zone(hours.utc_offset_minutes)
                        ),
                        vec![session.started_seq, stored.seq],
                        at,
                    ),
                );
            }
        }
        let write_under_read =
            session.read_role && settings.write_classes.iter().any(|c| c == statement.class);
        let outside_scope: Vec<&str> = match &session.scope {
            Some(rules) => statement
                .objects
                .iter()
                .map(String::as_str)
                .filter(|object| !in_scope(object, rules, settings))
                .collect(),
            None => Vec::new(),
        };
        if (write_under_read || !outside_scope.is_empty())
            && session.scope_findings < settings.max_statement_findings_per_session
            && settings.enabled(Checkpoint::UsageScope)
        {
            session.scope_findings += 1;
            let objects = outside_scope
                .iter()
                .map(|o| format!("`{o}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let (severity, summary) = if write_under_read {
                let fate = if ran { "executed" } else { "refused" };
                let also = if outside_scope.is_empty() {
                    String::new()
                } else {
                    format!(" and touched {objects}, outside the declared scope")
                };
                (
                    if ran {
                        Severity::High
                    } else {
                        Severity::Medium
                    },
                    format!(
                        "{}'s {} statement {} under read role `{}` on {} was {fate}{also}",
                        session.user,
                        statement.class,
                        statement.number,
                        session.role,
                        session.resource
                    ),
                )
            } else {
                (
                    Severity::Medium,
                    format!(
                        "{}'s statement {} on {} touched {objects}, outside the declared scope",
                        session.user, statement.number, session.resource
                    ),
                )
            };
            push(
                settings,
                out,
                finding(
                    Checkpoint::UsageScope,
                    severity,
                    &format!("{id}:{}", statement.number),
                    id,
                    summary,
                    vec![session.started_seq, stored.seq],
                    at,
                ),
            );
        }
        if statement.class == "read" {
            if statement.outcome == "pending" {
                session.pending_reads.push(statement.number);
            }
            if let Some(rows) = statement.rows {
                bulk_read(settings, session, id, statement.number, rows, stored, out);
            }
        }
    }

    fn statement_outcome(
        &mut self,
        stored: &StoredEvent,
        number: u64,
        rows: Option<u64>,
        out: &mut Vec<Finding>,
    ) {
        let Some(session) = self.sessions.get_mut(&stored.event.subject) else {
            return;
        };
        session.last_at = session.last_at.max(stored.event.at.as_millis());
        let Some(index) = session.pending_reads.iter().position(|n| *n == number) else {
            return;
        };
        session.pending_reads.swap_remove(index);
        if let Some(rows) = rows {
            let id = stored.event.subject.as_str();
            bulk_read(&self.settings, session, id, number, rows, stored, out);
        }
    }

    fn session_ended(
        &mut self,
        stored: &StoredEvent,
        delay_ms: Option<i64>,
        out: &mut Vec<Finding>,
    ) {
        let event = &stored.event;
        let id = event.subject.as_str();
        let Some(session) = self.sessions.remove(id) else {
            return;
        };
        let at = event.at.as_millis();
        let mut overrun = delay_ms;
        let mut evidence = vec![session.started_seq, stored.seq];
        if let Some(grant) = self.grants.get_mut(&session.grant_id) {
            grant.open_sessions.retain(|s| s != id);
            grant.touch(at, stored.seq);
            // Closed by the client after the grant ended counts too.
            let end = grant.end();
            if at > end {
                overrun = Some(overrun.unwrap_or(i64::MIN).max(at.saturating_sub(end)));
                evidence.push(grant.issued_seq);
                evidence.extend(grant.ended.map(|(_, seq)| seq));
            }
        }
        let settings = &self.settings;
        let Some(delay) = overrun.filter(|d| *d > self.limits.revocation_tolerance) else {
            return;
        };
        if session.late_reported || !settings.enabled(Checkpoint::RevocationLate) {
            return;
        }
        let severity = if delay > self.limits.revocation_high_after {
            Severity::High
        } else {
            Severity::Medium
        };
        push(
            settings,
            out,
            finding(
                Checkpoint::RevocationLate,
                severity,
                id,
                id,
                format!(
                    "{}'s session {id} on {} was closed {} after grant {} ended (tolerance {})",
                    session.user,
                    session.resource,
                    text::human(delay),
                    session.grant_id,
                    text::human(self.limits.revocation_tolerance)
                ),
                evidence,
                at,
            ),
        );
    }

    // ---- bounds ---------------------------------------------------------------------------

    /// Forgets what can no longer matter: requests pending for too long, windows with nothing
    /// recent, and sessions whose grant the auditor never knew or no longer keeps once idle.
    fn sweep(&mut self) {
        let now = self.now;
        let limits = &self.limits;
        self.requests.retain(|_, track| {
            now.saturating_sub(track.request.created_at.as_millis()) < limits.max_pending_age
        });
        self.bursts
            .retain(|_, recent| !recent.is_stale(now, limits.burst_window));
        self.standing.retain(|_, resources| {
            resources.retain(|_, recent| !recent.is_stale(now, limits.standing_window));
            !resources.is_empty()
        });
        self.approvers.retain(|_, stats| {
            stats.prune(now, limits.approver_window);
            !stats.is_empty()
        });
        let grants = &self.grants;
        self.sessions.retain(|_, session| {
            grants.contains_key(&session.grant_id)
                || now.saturating_sub(session.last_at) < limits.retention
        });
    }
}

/// The fields of a `session.statement` the checks read.
struct Statement<'a> {
    number: u64,
    class: &'a str,
    objects: &'a [String],
    outcome: &'a str,
    rows: Option<u64>,
}

/// `before grant grt_X started` / `3.5s after grant grt_X ended` when `at` is outside the
/// grant's window (with `tolerance` after its end).
fn outside(grant: &GrantTrack, at: i64, tolerance: i64) -> Option<String> {
    if at < grant.starts_at {
        return Some(format!(
            "{} before its grant started",
            text::human(grant.starts_at.saturating_sub(at))
        ));
    }
    let end = grant.end();
    let after = at.saturating_sub(end);
    (after > tolerance).then(|| format!("{} after its grant ended", text::human(after)))
}

fn in_scope(object: &str, rules: &ResourceRules, settings: &AuditSettings) -> bool {
    let patterns = || rules.scope.iter().chain(&settings.always_in_scope);
    if patterns().any(|pattern| text::glob(pattern, object)) {
        return true;
    }
    // `schema.object` for each schema of the search path, matched part by part (no allocation:
    // `*` never crosses a `.`).
    !object.contains('.')
        && settings.search_path.iter().any(|schema| {
            patterns().any(|pattern| {
                pattern.split_once('.').is_some_and(|(in_schema, in_name)| {
                    text::glob(in_schema, schema) && text::glob(in_name, object)
                })
            })
        })
}

fn bulk_read(
    settings: &AuditSettings,
    session: &mut SessionTrack,
    id: &str,
    number: u64,
    rows: u64,
    stored: &StoredEvent,
    out: &mut Vec<Finding>,
) {
    session.rows = session.rows.saturating_add(rows);
    if !settings.enabled(Checkpoint::UsageBulkRead) {
        return;
    }
    let at = stored.event.at.as_millis();
    if rows > settings.bulk_read_rows
        && session.bulk_findings < settings.max_statement_findings_per_session
    {
        session.bulk_findings += 1;
        push(
            settings,
            out,
            finding(
                Checkpoint::UsageBulkRead,
                Checkpoint::UsageBulkRead.default_severity(),
                &format!("{id}:{number}"),
                id,
                format!(
                    "{}'s read (statement {number}) on {} returned {} rows (threshold {})",
                    session.user,
                    session.resource,
                    text::thousands(rows),
                    text::thousands(settings.bulk_read_rows)
                ),
                vec![session.started_seq, stored.seq],
                at,
            ),
        );
    }
    if session.rows > settings.bulk_session_rows && !session.bulk_total_reported {
        session.bulk_total_reported = true;
        push(
            settings,
            out,
            finding(
                Checkpoint::UsageBulkRead,
                Checkpoint::UsageBulkRead.default_severity(),
                &format!("{id}:total"),
                id,
                format!(
                    "{}'s session {id} on {} read {} rows in total (threshold {})",
                    session.user,
                    session.resource,
                    text::thousands(session.rows),
                    text::thousands(settings.bulk_session_rows)
                ),
                vec![session.started_seq, stored.seq],
                at,
            ),
        );
    }
}

/// Why `approver` was not entitled to approve `request` (in its state before the approval), or
/// `None` when they were. Judged against today's catalog and policy.
fn unauthorized(
    catalog: &Catalog,
    approver: &str,
    request: &AccessRequest,
    at: Timestamp,
) -> Option<String> {
    if let Some(policy) = &catalog.policy {
        let verdict = policy.0.approve(approver, request, at);
        return (!verdict.allowed).then(|| {
            if verdict.reason.is_empty() {
                "no policy entitles them".to_owned()
            } else {
                format!("policy does not entitle them: {}", verdict.reason)
            }
        });
    }
    if catalog.may_approve(approver, &request.requester, &request.resource)
        || request.escalated_to.iter().any(|user| user == approver)
    {
        return None;
    }
    let owner = catalog
        .resources
        .get(&request.resource)
        .map_or("?", |r| r.owner_team.as_str());
    Some(format!(
        "is neither a lead of {owner} (owner of {}) nor {}'s manager",
        request.resource, request.requester
    ))
}

/// The median of a non-empty history (the upper one of an even count).
fn median(history: &VecDeque<u32>) -> i64 {
    let mut sorted: Vec<u32> = history.iter().copied().collect();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().map_or(0, i64::from)
}
