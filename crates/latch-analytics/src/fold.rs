//! The fold: accesses (latch-report's summaries) → the figures of [`Analytics`], one access at
//! a time. A quarter of a busy organisation is a quarter of a million accesses: the fold keeps
//! counts and the values percentiles need, keyed by interned names, never the accesses
//! themselves (only the newest grants, which the dashboard lists).

use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque};

use latch_core::lifecycle::grant_id_for;
use latch_core::{Catalog, StoredEvent, TicketPattern, Timestamp};
use latch_report::{AccessRow, AccessSummary};

use crate::model::{
    Analytics, ApproverStats, Count, DayVolume, Durations, FindingCount, GrantUsage, NamedLatency,
    Outcomes, TicketMismatch, Usage,
};
use crate::stats::{latency, percentile, rate};
use crate::{AnalyticsFilter, Settings, recommend};

const DAY_MS: i64 = 86_400_000;

/// Longest volume series zero-filled over the whole filter period; a longer period (`from`
/// the beginning of time, say) is shown from its first request's day to its last's.
const MAX_FILLED_DAYS: i64 = 1000;

/// How a request ended, as the rates count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    Approved,
    Denied,
    TimedOut,
    Cancelled,
    Pending,
}

pub(crate) fn ending(row: &AccessRow) -> Ending {
    if row.outcome.starts_with("denied") {
        Ending::Denied
    } else if row.outcome == "timed out" {
        Ending::TimedOut
    } else if row.outcome == "cancelled" {
        Ending::Cancelled
    } else if row.granted_at.is_some() {
        Ending::Approved
    } else {
        Ending::Pending
    }
}

/// Seconds from the request to its decision, unless it had none or was a break-glass
/// self-approval (not an approval path).
fn wait_secs(row: &AccessRow) -> Option<u64> {
    if row.break_glass {
        return None;
    }
    secs(row.requested_at, row.decided_at?)
}

/// The grant ended (expired or revoked).
fn ended_grant(row: &AccessRow) -> bool {
    row.granted_at.is_some() && row.ended_at.is_some()
}

fn used_secs(row: &AccessRow) -> u64 {
    row.duration_used_secs.unwrap_or(0)
}

fn secs(from: Timestamp, to: Timestamp) -> Option<u64> {
    u64::try_from(to.millis_since(from) / 1000).ok()
}

/// Names (people, teams, resources, roles, classes…) as small ids, so that the fold's groupings
/// are indexed vectors rather than maps keyed by strings.
#[derive(Default)]
pub(crate) struct Names {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Names {
    pub fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |name| name)
    }
}

/// The entry of `id` in a table indexed by ids, grown as needed.
pub(crate) fn slot<T: Default>(table: &mut Vec<T>, id: u32) -> &mut T {
    let index = id as usize;
    if table.len() <= index {
        table.resize_with(index + 1, T::default);
    }
    &mut table[index]
}

/// The `limit` slowest waits with their request ids, slowest first and ids ascending among
/// equals: the evidence of a slow approval path, kept as the waits stream by.
#[derive(Default)]
pub(crate) struct Slowest {
    /// A max-heap on "least slow": its top is the entry the next slower one replaces.
    heap: BinaryHeap<SlowEntry>,
}

#[derive(PartialEq, Eq)]
struct SlowEntry {
    wait: u64,
    id: String,
}

impl Ord for SlowEntry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Greater = less slow (a shorter wait, or the larger id of an equal wait).
        other
            .wait
            .cmp(&self.wait)
            .then_with(|| self.id.cmp(&other.id))
    }
}

impl PartialOrd for SlowEntry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Slowest {
    pub fn offer(&mut self, wait: u64, id: &str, limit: usize) {
        if self.heap.len() < limit {
            self.heap.push(SlowEntry {
                wait,
                id: id.to_owned(),
            });
            return;
        }
        let Some(top) = self.heap.peek() else {
            return;
        };
        let slower = wait > top.wait || (wait == top.wait && id < top.id.as_str());
        if slower {
            self.heap.pop();
            self.heap.push(SlowEntry {
                wait,
                id: id.to_owned(),
            });
        }
    }

    /// The request ids, slowest first.
    pub fn into_ids(self) -> Vec<String> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|entry| entry.id)
            .collect()
    }
}

/// Waits for decisions in one team or on one resource.
#[derive(Default)]
pub(crate) struct Waits {
    pub values: Vec<u64>,
    pub slowest: Slowest,
}

/// One approver's decisions (break-glass self-approvals are none).
#[derive(Default)]
pub(crate) struct ApproverTally {
    pub approvals: u64,
    pub denials: u64,
    /// Seconds from each request to this approver's decision…
    pub waits: Vec<u64>,
    /// …and the decisions dated before their request (a clock step), which the waits omit.
    pub before_request: u64,
    /// The first requests they approved, as evidence.
    pub approved_ids: Vec<String>,
}

/// Requests of one team for one resource.
#[derive(Default)]
pub(crate) struct TeamResource {
    pub requests: u64,
    pub approved: u64,
    pub requesters: HashSet<u32>,
    pub roles: BTreeSet<u32>,
    pub ids: Vec<String>,
}

/// Ended grants of one role on one resource.
#[derive(Default)]
pub(crate) struct RoleGrants {
    pub granted: Vec<u64>,
    pub used: Vec<u64>,
    pub ids: Vec<String>,
}

/// The analytics of a period as its accesses are observed one at a time, in the order their
/// requests were created; [`Analyzer::finish`] computes the figures. Accesses the filter does
/// not admit are skipped, so a caller may pass everything a coarser read selected.
pub struct Analyzer<'c> {
    catalog: &'c Catalog,
    ticket_patterns: &'c BTreeMap<String, TicketPattern>,
    filter: &'c AnalyticsFilter,
    settings: &'c Settings,
    pub(crate) names: Names,
    /// By requester id: their teams' ids, looked up in the catalog once.
    teams: Vec<Option<Vec<u32>>>,
    /// By resource id: its ticket pattern, looked up once.
    patterns: Vec<Option<Option<&'c TicketPattern>>>,
    total: u64,
    outcomes: Outcomes,
    days: BTreeMap<i64, DayVolume>,
    waits: Vec<u64>,
    pub(crate) team_waits: Vec<Option<Waits>>,
    pub(crate) resource_waits: Vec<Option<Waits>>,
    pub(crate) approvers: Vec<Option<ApproverTally>>,
    durations: Durations,
    granted_secs: Vec<u64>,
    used_secs: Vec<u64>,
    sessions: u64,
    statements: u64,
    classes: Vec<Option<u64>>,
    findings: HashMap<(u32, u32), u64>,
    requesters: Vec<u64>,
    resources: Vec<u64>,
    ticket_mismatches: Vec<TicketMismatch>,
    pub(crate) standing: HashMap<(u32, u32), TeamResource>,
    pub(crate) role_grants: HashMap<(u32, u32), RoleGrants>,
    /// The newest granted accesses, oldest first, at most `max_grants_listed`.
    newest_grants: VecDeque<AccessSummary>,
}

impl<'c> Analyzer<'c> {
    /// The teams of a requester come from `catalog`; `ticket_patterns` are the resources'
    /// configured patterns.
    pub fn new(
        catalog: &'c Catalog,
        ticket_patterns: &'c BTreeMap<String, TicketPattern>,
        filter: &'c AnalyticsFilter,
        settings: &'c Settings,
    ) -> Self {
        Self {
            catalog,
            ticket_patterns,
            filter,
            settings,
            names: Names::default(),
            teams: Vec::new(),
            patterns: Vec::new(),
            total: 0,
            outcomes: Outcomes::default(),
            days: BTreeMap::new(),
            waits: Vec::new(),
            team_waits: Vec::new(),
            resource_waits: Vec::new(),
            approvers: Vec::new(),
            durations: Durations::default(),
            granted_secs: Vec::new(),
            used_secs: Vec::new(),
            sessions: 0,
            statements: 0,
            classes: Vec::new(),
            findings: HashMap::new(),
            requesters: Vec::new(),
            resources: Vec::new(),
            ticket_mismatches: Vec::new(),
            standing: HashMap::new(),
            role_grants: HashMap::new(),
            newest_grants: VecDeque::new(),
        }
    }

    /// The ids of `requester`'s teams.
    fn teams_of(&mut self, requester: u32, name: &str) -> Vec<u32> {
        if let Some(Some(teams)) = self.teams.get(requester as usize) {
            return teams.clone();
        }
        let teams: Vec<u32> = match self.catalog.users.get(name) {
            Some(user) => user.teams.iter().map(|team| self.names.id(team)).collect(),
            None => Vec::new(),
        };
        *slot(&mut self.teams, requester) = Some(teams.clone());
        teams
    }

    fn pattern_of(&mut self, resource: u32, name: &str) -> Option<&'c TicketPattern> {
        let patterns = self.ticket_patterns;
        *slot(&mut self.patterns, resource).get_or_insert_with(|| patterns.get(name))
    }

    /// Counts one access, if the filter admits it.
    pub fn observe(&mut self, summary: AccessSummary) {
        if !self.filter.admits(&summary) {
            return;
        }
        let limit = self.settings.max_evidence_ids;
        let row = &summary.row;
        self.total += 1;
        let requester = self.names.id(&row.requester);
        let resource = self.names.id(&row.resource);
        let role = self.names.id(&row.role);
        let teams = self.teams_of(requester, &row.requester);

        let ending = ending(row);
        let day = row.requested_at.as_millis().div_euclid(DAY_MS);
        let volume = self.days.entry(day).or_insert_with(|| day_volume(day));
        volume.requests += 1;
        match ending {
            Ending::Approved => {
                self.outcomes.approved += 1;
                volume.approved += 1;
            }
            Ending::Denied => {
                self.outcomes.denied += 1;
                volume.denied += 1;
            }
            Ending::TimedOut => self.outcomes.timed_out += 1,
            Ending::Cancelled => self.outcomes.cancelled += 1,
            Ending::Pending => self.outcomes.pending += 1,
        }
        self.outcomes.break_glass += u64::from(row.break_glass);

        if let Some(wait) = wait_secs(row) {
            self.waits.push(wait);
            for &team in &teams {
                let waits = slot(&mut self.team_waits, team).get_or_insert_with(Waits::default);
                waits.values.push(wait);
                waits.slowest.offer(wait, &row.request_id, limit);
            }
            let waits = slot(&mut self.resource_waits, resource).get_or_insert_with(Waits::default);
            waits.values.push(wait);
            waits.slowest.offer(wait, &row.request_id, limit);
        }
        if !row.break_glass {
            for decision in &summary.decisions {
                let approver = self.names.id(&decision.approver);
                let tally =
                    slot(&mut self.approvers, approver).get_or_insert_with(Default::default);
                if decision.approved {
                    tally.approvals += 1;
                    if tally.approved_ids.len() < limit {
                        tally.approved_ids.push(row.request_id.clone());
                    }
                } else {
                    tally.denials += 1;
                }
                match secs(row.requested_at, decision.at) {
                    Some(wait) => tally.waits.push(wait),
                    None => tally.before_request += 1,
                }
            }
        }

        if row.granted_at.is_some() {
            self.durations.grants += 1;
        }
        if ended_grant(row) {
            let granted = row.duration_granted_secs.unwrap_or(0);
            let used = used_secs(row);
            self.durations.ended_grants += 1;
            self.durations.unused_grants += u64::from(row.sessions == 0);
            self.durations.granted_total_secs += granted;
            self.durations.used_total_secs += used;
            self.granted_secs.push(granted);
            self.used_secs.push(used);
            let group = self.role_grants.entry((resource, role)).or_default();
            group.granted.push(granted);
            group.used.push(used);
            // Only the cited ids are kept (an id is built per grant otherwise).
            if group.ids.len() < limit {
                group.ids.push(grant_id_for(&row.request_id));
            }
        }

        self.sessions += row.sessions;
        for (class, count) in &row.statements_by_class {
            self.statements += count;
            let class = self.names.id(class);
            *slot(&mut self.classes, class).get_or_insert(0) += count;
        }
        for (checkpoint, severity) in &summary.finding_kinds {
            let key = (self.names.id(checkpoint), self.names.id(severity));
            *self.findings.entry(key).or_insert(0) += 1;
        }
        *slot(&mut self.requesters, requester) += 1;
        *slot(&mut self.resources, resource) += 1;

        if let Some(pattern) = self.pattern_of(resource, &row.resource)
            && !row.ticket.as_deref().is_some_and(|t| pattern.matches(t))
        {
            self.ticket_mismatches.push(TicketMismatch {
                request_id: row.request_id.clone(),
                requester: row.requester.clone(),
                resource: row.resource.clone(),
                ticket: row.ticket.clone(),
                pattern: pattern.as_str().to_owned(),
            });
        }

        for &team in &teams {
            let group = self.standing.entry((team, resource)).or_default();
            group.requests += 1;
            group.approved += u64::from(ending == Ending::Approved);
            group.requesters.insert(requester);
            group.roles.insert(role);
            if group.ids.len() < limit {
                group.ids.push(row.request_id.clone());
            }
        }

        if row.granted_at.is_some() && self.settings.max_grants_listed > 0 {
            if self.newest_grants.len() == self.settings.max_grants_listed {
                self.newest_grants.pop_front();
            }
            self.newest_grants.push_back(summary);
        }
    }

    /// The figures of everything observed.
    pub fn finish(self) -> Analytics {
        let Self {
            catalog: _,
            ticket_patterns: _,
            filter,
            settings,
            names,
            teams: _,
            patterns: _,
            total,
            mut outcomes,
            days,
            mut waits,
            mut team_waits,
            mut resource_waits,
            mut approvers,
            mut durations,
            mut granted_secs,
            mut used_secs,
            sessions,
            statements,
            classes,
            findings,
            requesters,
            resources,
            ticket_mismatches,
            standing,
            role_grants,
            newest_grants,
        } = self;
        outcomes.approval_rate = rate(outcomes.approved, total);
        outcomes.denial_rate = rate(outcomes.denied, total);
        outcomes.timeout_rate = rate(outcomes.timed_out, total);
        outcomes.cancel_rate = rate(outcomes.cancelled, total);

        durations.unused_rate = rate(durations.unused_grants, durations.ended_grants);
        granted_secs.sort_unstable();
        used_secs.sort_unstable();
        durations.granted_median_secs = percentile(&granted_secs, 50).unwrap_or(0);
        durations.used_median_secs = percentile(&used_secs, 50).unwrap_or(0);

        let names = &names;
        // Sorts each group's waits, which the slow-approval recommendation reads after.
        let named = |table: &mut [Option<Waits>]| -> Vec<NamedLatency> {
            let mut out: Vec<NamedLatency> = table
                .iter_mut()
                .enumerate()
                .filter_map(|(id, waits)| {
                    let waits = waits.as_mut()?;
                    latency(&mut waits.values).map(|stats| NamedLatency {
                        name: names.name(id as u32).to_owned(),
                        stats,
                    })
                })
                .collect();
            out.sort_by(|a, b| a.name.cmp(&b.name));
            out
        };
        let latency_by_team = named(&mut team_waits);
        let latency_by_resource = named(&mut resource_waits);

        let mut approver_stats: Vec<ApproverStats> = approvers
            .iter_mut()
            .enumerate()
            .filter_map(|(id, tally)| {
                let tally = tally.as_mut()?;
                latency(&mut tally.waits).map(|stats| ApproverStats {
                    approver: names.name(id as u32).to_owned(),
                    approvals: tally.approvals,
                    denials: tally.denials,
                    stats,
                })
            })
            .collect();
        approver_stats.sort_by(|a, b| a.approver.cmp(&b.approver));
        let top_approvers = top(
            approver_stats
                .iter()
                .map(|a| (a.approver.as_str(), a.approvals + a.denials)),
            settings.top,
        );

        let mut statements_by_class = BTreeMap::new();
        for (id, count) in classes.iter().enumerate() {
            if let Some(count) = count {
                statements_by_class.insert(names.name(id as u32).to_owned(), *count);
            }
        }
        let findings: BTreeMap<(&str, &str), u64> = findings
            .iter()
            .map(|(&(checkpoint, severity), &count)| {
                ((names.name(checkpoint), names.name(severity)), count)
            })
            .collect();
        let counted = |counts: &[u64]| -> Vec<(&str, u64)> {
            counts
                .iter()
                .enumerate()
                .filter(|(_, count)| **count > 0)
                .map(|(id, count)| (names.name(id as u32), *count))
                .collect()
        };

        let grants_total = durations.grants;
        let mut grants: Vec<GrantUsage> =
            newest_grants.iter().rev().filter_map(grant_usage).collect();
        grants.sort_by_key(|grant| std::cmp::Reverse(grant.granted_at));

        let mut recommendations = recommend::standing_access(standing, names, settings);
        recommendations.extend(recommend::overlong_durations(role_grants, names, settings));
        recommendations.extend(recommend::slow_approvals(
            team_waits,
            resource_waits,
            names,
            settings,
        ));
        recommendations.extend(recommend::never_denies(approvers, names, settings));

        Analytics {
            from: filter.from,
            to: filter.to,
            team: filter.team.as_ref().map(|(name, _)| name.clone()),
            resource: filter.resource.clone(),
            principal: filter.principal.clone(),
            approver: filter.approver.clone(),
            requests: total,
            outcomes,
            volume: fill_days(days, filter),
            latency: latency(&mut waits),
            latency_by_team,
            latency_by_resource,
            approvers: approver_stats,
            durations,
            usage: Usage {
                sessions,
                statements,
                statements_by_class,
            },
            findings: findings
                .into_iter()
                .map(|((checkpoint, severity), count)| FindingCount {
                    checkpoint: checkpoint.to_owned(),
                    severity: severity.to_owned(),
                    count,
                })
                .collect(),
            top_requesters: top(counted(&requesters).into_iter(), settings.top),
            top_approvers,
            top_resources: top(counted(&resources).into_iter(), settings.top),
            ticket_mismatches,
            grants_total,
            grants,
            recommendations,
        }
    }
}

/// [`analyze_with`] under the default [`Settings`].
pub fn analyze(
    events: &[StoredEvent],
    catalog: &Catalog,
    ticket_patterns: &BTreeMap<String, TicketPattern>,
    filter: &AnalyticsFilter,
) -> Analytics {
    analyze_with(
        events,
        catalog,
        ticket_patterns,
        filter,
        &Settings::default(),
    )
}

/// The analytics of the requests `filter` selects among `events` (in `seq` order, from the
/// first). The teams of a requester come from `catalog`; `ticket_patterns` are the resources'
/// configured patterns.
pub fn analyze_with(
    events: &[StoredEvent],
    catalog: &Catalog,
    ticket_patterns: &BTreeMap<String, TicketPattern>,
    filter: &AnalyticsFilter,
    settings: &Settings,
) -> Analytics {
    let mut analyzer = Analyzer::new(catalog, ticket_patterns, filter, settings);
    for summary in latch_report::summarize(events) {
        analyzer.observe(summary);
    }
    analyzer.finish()
}

fn grant_usage(summary: &AccessSummary) -> Option<GrantUsage> {
    let row = &summary.row;
    Some(GrantUsage {
        grant_id: grant_id_for(&row.request_id),
        request_id: row.request_id.clone(),
        requester: row.requester.clone(),
        resource: row.resource.clone(),
        role: row.role.clone(),
        granted_at: row.granted_at?,
        granted_secs: row.duration_granted_secs.unwrap_or(0),
        used_secs: used_secs(row),
        outcome: row.outcome.clone(),
        sessions: row.sessions,
        statements_by_class: row.statements_by_class.clone(),
        objects: summary.objects.clone(),
    })
}

fn day_volume(day: i64) -> DayVolume {
    let date = Timestamp::from_millis(day.saturating_mul(DAY_MS)).to_string();
    DayVolume {
        date: date.get(..10).unwrap_or(&date).to_owned(),
        requests: 0,
        approved: 0,
        denied: 0,
    }
}

/// Every day of the filter's period, or, for a period too long to show day by day, every day
/// from the first request's to the last's; days without requests as zeros.
fn fill_days(mut days: BTreeMap<i64, DayVolume>, filter: &AnalyticsFilter) -> Vec<DayVolume> {
    let first = filter.from.as_millis().div_euclid(DAY_MS);
    let last = (filter.to.as_millis().saturating_sub(1)).div_euclid(DAY_MS);
    let (first, last) = if last >= first && last - first < MAX_FILLED_DAYS {
        (first, last)
    } else {
        match (days.keys().next(), days.keys().next_back()) {
            (Some(&first), Some(&last)) => (first, last),
            _ => return Vec::new(),
        }
    };
    (first..=last)
        .map(|day| days.remove(&day).unwrap_or_else(|| day_volume(day)))
        .collect()
}

/// The `n` most frequent names, most frequent first, ties by name.
fn top<'a>(counts: impl Iterator<Item = (&'a str, u64)>, n: usize) -> Vec<Count> {
    let mut all: Vec<(&str, u64)> = counts.collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    all.into_iter()
        .take(n)
        .map(|(name, count)| Count {
            name: name.to_owned(),
            count,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The streamed evidence of a slow path is what sorting every wait (slowest first,
        /// ids ascending among equals) and keeping the first `limit` gives.
        #[test]
        fn slowest_keeps_what_a_full_sort_keeps(
            waits in proptest::collection::vec((0u64..20, 0u32..40), 0..200),
            limit in 0usize..12,
        ) {
            let mut slowest = Slowest::default();
            for (wait, id) in &waits {
                slowest.offer(*wait, &format!("req_{id:02}"), limit);
            }
            let mut all: Vec<(u64, String)> =
                waits.iter().map(|(wait, id)| (*wait, format!("req_{id:02}"))).collect();
            all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let expected: Vec<String> = all.into_iter().take(limit).map(|(_, id)| id).collect();
            prop_assert_eq!(slowest.into_ids(), expected);
        }
    }

    #[test]
    fn names_intern_each_name_once() {
        let mut names = Names::default();
        let a = names.id("alice");
        let b = names.id("bob");
        assert_ne!(a, b);
        assert_eq!(names.id("alice"), a);
        assert_eq!(names.name(b), "bob");
    }
}
