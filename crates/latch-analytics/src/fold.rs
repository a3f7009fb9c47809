//! The fold: events → access rows (latch-report) → the figures of [`Analytics`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

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

/// An access as the figures and recommendations read it.
#[derive(Clone, Copy)]
pub(crate) struct Access<'a> {
    pub summary: &'a AccessSummary,
}

impl<'a> Access<'a> {
    /// Its report row.
    pub fn row(&self) -> &'a AccessRow {
        &self.summary.row
    }

    /// Seconds from the request to its decision, unless it had none or was a break-glass
    /// self-approval (not an approval path).
    pub fn wait_secs(&self) -> Option<u64> {
        if self.row().break_glass {
            return None;
        }
        secs(self.row().requested_at, self.row().decided_at?)
    }

    /// The grant ended (expired or revoked).
    pub fn ended_grant(&self) -> bool {
        self.row().granted_at.is_some() && self.row().ended_at.is_some()
    }

    pub fn used_secs(&self) -> u64 {
        self.row().duration_used_secs.unwrap_or(0)
    }
}

fn secs(from: Timestamp, to: Timestamp) -> Option<u64> {
    u64::try_from(to.millis_since(from) / 1000).ok()
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
    let summaries = latch_report::summarize(events);
    analyze_summaries(
        summaries.iter().filter(|summary| filter.admits(summary)),
        catalog,
        ticket_patterns,
        filter,
        settings,
    )
}

/// The analytics of `summaries`, which the caller has already chosen with
/// [`AnalyticsFilter::admits`] (the store's access-summary projection reads them by period), in
/// the order their requests were created.
pub fn analyze_summaries<'s>(
    summaries: impl IntoIterator<Item = &'s AccessSummary>,
    catalog: &Catalog,
    ticket_patterns: &BTreeMap<String, TicketPattern>,
    filter: &AnalyticsFilter,
    settings: &Settings,
) -> Analytics {
    let accesses: Vec<Access<'_>> = summaries
        .into_iter()
        .map(|summary| Access { summary })
        .collect();

    let no_teams = BTreeSet::new();
    let teams_of = |who: &str| -> &BTreeSet<String> {
        catalog.users.get(who).map_or(&no_teams, |user| &user.teams)
    };

    let mut outcomes = Outcomes::default();
    let mut days: BTreeMap<i64, DayVolume> = BTreeMap::new();
    let mut waits = Vec::new();
    let mut waits_by_team: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let mut waits_by_resource: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    // Approver → (approvals, denials, waits).
    let mut by_approver: BTreeMap<&str, (u64, u64, Vec<u64>)> = BTreeMap::new();
    let mut durations = Durations::default();
    let mut granted_secs = Vec::new();
    let mut used_secs = Vec::new();
    let mut usage = Usage::default();
    let mut findings: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    let mut requesters: HashMap<&str, u64> = HashMap::new();
    let mut resources: HashMap<&str, u64> = HashMap::new();
    let mut ticket_mismatches = Vec::new();

    for access in &accesses {
        let row = access.row();
        let ending = ending(row);
        let day = row.requested_at.as_millis().div_euclid(DAY_MS);
        let volume = days.entry(day).or_insert_with(|| day_volume(day));
        volume.requests += 1;
        match ending {
            Ending::Approved => {
                outcomes.approved += 1;
                volume.approved += 1;
            }
            Ending::Denied => {
                outcomes.denied += 1;
                volume.denied += 1;
            }
            Ending::TimedOut => outcomes.timed_out += 1,
            Ending::Cancelled => outcomes.cancelled += 1,
            Ending::Pending => outcomes.pending += 1,
        }
        outcomes.break_glass += u64::from(row.break_glass);

        if let Some(wait) = access.wait_secs() {
            waits.push(wait);
            for team in teams_of(&row.requester) {
                waits_by_team.entry(team).or_default().push(wait);
            }
            waits_by_resource
                .entry(row.resource.as_str())
                .or_default()
                .push(wait);
        }
        if !row.break_glass {
            for decision in &access.summary.decisions {
                let entry = by_approver.entry(decision.approver.as_str()).or_default();
                if decision.approved {
                    entry.0 += 1;
                } else {
                    entry.1 += 1;
                }
                if let Some(wait) = secs(row.requested_at, decision.at) {
                    entry.2.push(wait);
                }
            }
        }

        if row.granted_at.is_some() {
            durations.grants += 1;
        }
        if access.ended_grant() {
            let granted = row.duration_granted_secs.unwrap_or(0);
            let used = access.used_secs();
            durations.ended_grants += 1;
            durations.unused_grants += u64::from(row.sessions == 0);
            durations.granted_total_secs += granted;
            durations.used_total_secs += used;
            granted_secs.push(granted);
            used_secs.push(used);
        }

        usage.sessions += row.sessions;
        for (class, count) in &row.statements_by_class {
            usage.statements += count;
            match usage.statements_by_class.get_mut(class.as_str()) {
                Some(total) => *total += count,
                None => {
                    usage.statements_by_class.insert(class.clone(), *count);
                }
            }
        }
        for (checkpoint, severity) in &access.summary.finding_kinds {
            *findings
                .entry((checkpoint.as_str(), severity.as_str()))
                .or_insert(0) += 1;
        }
        *requesters.entry(row.requester.as_str()).or_insert(0) += 1;
        *resources.entry(row.resource.as_str()).or_insert(0) += 1;

        if let Some(pattern) = ticket_patterns.get(&row.resource)
            && !row.ticket.as_deref().is_some_and(|t| pattern.matches(t))
        {
            ticket_mismatches.push(TicketMismatch {
                request_id: row.request_id.clone(),
                requester: row.requester.clone(),
                resource: row.resource.clone(),
                ticket: row.ticket.clone(),
                pattern: pattern.as_str().to_owned(),
            });
        }
    }

    let total = accesses.len() as u64;
    outcomes.approval_rate = rate(outcomes.approved, total);
    outcomes.denial_rate = rate(outcomes.denied, total);
    outcomes.timeout_rate = rate(outcomes.timed_out, total);
    outcomes.cancel_rate = rate(outcomes.cancelled, total);

    durations.unused_rate = rate(durations.unused_grants, durations.ended_grants);
    granted_secs.sort_unstable();
    used_secs.sort_unstable();
    durations.granted_median_secs = percentile(&granted_secs, 50).unwrap_or(0);
    durations.used_median_secs = percentile(&used_secs, 50).unwrap_or(0);

    let named = |map: BTreeMap<&str, Vec<u64>>| -> Vec<NamedLatency> {
        map.into_iter()
            .filter_map(|(name, mut values)| {
                latency(&mut values).map(|stats| NamedLatency {
                    name: name.to_owned(),
                    stats,
                })
            })
            .collect()
    };
    let approvers: Vec<ApproverStats> = by_approver
        .into_iter()
        .filter_map(|(approver, (approvals, denials, mut values))| {
            latency(&mut values).map(|stats| ApproverStats {
                approver: approver.to_owned(),
                approvals,
                denials,
                stats,
            })
        })
        .collect();
    let top_approvers = top(
        approvers
            .iter()
            .map(|a| (a.approver.as_str(), a.approvals + a.denials)),
        settings.top,
    );

    let grants_total = durations.grants;
    let mut grants: Vec<GrantUsage> = accesses
        .iter()
        .rev()
        .filter_map(grant_usage)
        .take(settings.max_grants_listed)
        .collect();
    grants.sort_by_key(|grant| std::cmp::Reverse(grant.granted_at));

    let recommendations = recommend::recommend(&accesses, catalog, settings);

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
        latency_by_team: named(waits_by_team),
        latency_by_resource: named(waits_by_resource),
        approvers,
        durations,
        usage,
        findings: findings
            .into_iter()
            .map(|((checkpoint, severity), count)| FindingCount {
                checkpoint: checkpoint.to_owned(),
                severity: severity.to_owned(),
                count,
            })
            .collect(),
        top_requesters: top(requesters.into_iter(), settings.top),
        top_approvers,
        top_resources: top(resources.into_iter(), settings.top),
        ticket_mismatches,
        grants_total,
        grants,
        recommendations,
    }
}

fn grant_usage(access: &Access<'_>) -> Option<GrantUsage> {
    let row = access.row();
    Some(GrantUsage {
        grant_id: grant_id_for(&row.request_id),
        request_id: row.request_id.clone(),
        requester: row.requester.clone(),
        resource: row.resource.clone(),
        role: row.role.clone(),
        granted_at: row.granted_at?,
        granted_secs: row.duration_granted_secs.unwrap_or(0),
        used_secs: access.used_secs(),
        outcome: row.outcome.clone(),
        sessions: row.sessions,
        statements_by_class: row.statements_by_class.clone(),
        objects: access.summary.objects.clone(),
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
