//! Recommendations: patterns in the history that suggest a change, each with its figures and
//! the ids that show it. Thresholds come from [`Settings`].

use std::collections::{BTreeMap, BTreeSet};

use latch_core::Catalog;
use latch_core::lifecycle::grant_id_for;

use crate::fold::{Access, Ending, ending};
use crate::stats::percentile;
use crate::{Recommendation, Settings};

const QUARTER_HOUR: u64 = 900;

/// Every recommendation, grouped by kind (standing access, over-long durations, slow approval
/// paths, approvers who never deny), the strongest first within a kind.
pub(crate) fn recommend(
    accesses: &[Access<'_>],
    catalog: &Catalog,
    settings: &Settings,
) -> Vec<Recommendation> {
    let mut out = standing_access(accesses, catalog, settings);
    out.extend(overlong_durations(accesses, settings));
    out.extend(slow_approvals(accesses, catalog, settings));
    out.extend(never_denies(accesses, settings));
    out
}

fn capped(ids: Vec<String>, settings: &Settings) -> Vec<String> {
    ids.into_iter().take(settings.max_evidence_ids).collect()
}

#[derive(Default)]
struct TeamResource {
    requests: u64,
    approved: u64,
    requesters: BTreeSet<String>,
    roles: BTreeSet<String>,
    ids: Vec<String>,
}

fn standing_access(
    accesses: &[Access<'_>],
    catalog: &Catalog,
    settings: &Settings,
) -> Vec<Recommendation> {
    let mut groups: BTreeMap<(&str, &str), TeamResource> = BTreeMap::new();
    for access in accesses {
        let row = access.row();
        let Some(user) = catalog.users.get(&row.requester) else {
            continue;
        };
        for team in &user.teams {
            let group = groups
                .entry((team.as_str(), row.resource.as_str()))
                .or_default();
            group.requests += 1;
            group.approved += u64::from(ending(row) == Ending::Approved);
            if !group.requesters.contains(&row.requester) {
                group.requesters.insert(row.requester.clone());
            }
            if !group.roles.contains(&row.role) {
                group.roles.insert(row.role.clone());
            }
            if group.ids.len() < settings.max_evidence_ids {
                group.ids.push(row.request_id.clone());
            }
        }
    }
    let mut out: Vec<(u64, Recommendation)> = groups
        .into_iter()
        .filter(|(_, group)| group.requests >= settings.standing_min_requests)
        .map(|((team, resource), group)| {
            (
                group.requests,
                Recommendation::StandingAccess {
                    team: team.to_owned(),
                    resource: resource.to_owned(),
                    requests: group.requests,
                    approved: group.approved,
                    requesters: group.requesters.len() as u64,
                    roles: group.roles.into_iter().collect(),
                    request_ids: group.ids,
                },
            )
        })
        .collect();
    strongest_first(&mut out)
}

/// Stable sort on the figure, largest first; the input order (by name) breaks ties.
fn strongest_first(items: &mut Vec<(u64, Recommendation)>) -> Vec<Recommendation> {
    items.sort_by_key(|item| std::cmp::Reverse(item.0));
    items.drain(..).map(|(_, rec)| rec).collect()
}

fn overlong_durations(accesses: &[Access<'_>], settings: &Settings) -> Vec<Recommendation> {
    // (resource, role) → (granted, used, grant ids)
    type Group = (Vec<u64>, Vec<u64>, Vec<String>);
    let mut groups: BTreeMap<(&str, &str), Group> = BTreeMap::new();
    for access in accesses.iter().filter(|access| access.ended_grant()) {
        let row = access.row();
        let group = groups
            .entry((row.resource.as_str(), row.role.as_str()))
            .or_default();
        group.0.push(row.duration_granted_secs.unwrap_or(0));
        group.1.push(access.used_secs());
        // Only the cited ids are kept (an id is built per grant otherwise).
        if group.2.len() < settings.max_evidence_ids {
            group.2.push(grant_id_for(&row.request_id));
        }
    }
    let mut out = Vec::new();
    for ((resource, role), (mut granted, mut used, ids)) in groups {
        let grants = granted.len() as u64;
        if grants < settings.overlong_min_grants {
            continue;
        }
        granted.sort_unstable();
        used.sort_unstable();
        let (Some(median_granted), Some(median_used), Some(p95_used)) = (
            percentile(&granted, 50),
            percentile(&used, 50),
            percentile(&used, 95),
        ) else {
            continue;
        };
        if median_granted == 0 {
            continue;
        }
        let used_ratio = median_used as f64 / median_granted as f64;
        if used_ratio > settings.overlong_max_used_ratio {
            continue;
        }
        let suggested = p95_used.div_ceil(QUARTER_HOUR).max(1) * QUARTER_HOUR;
        // Nothing to suggest when the 95th percentile already needs the whole duration.
        if suggested >= median_granted {
            continue;
        }
        out.push((
            median_granted - median_used,
            Recommendation::OverlongDuration {
                resource: resource.to_owned(),
                role: role.to_owned(),
                grants,
                median_granted_secs: median_granted,
                median_used_secs: median_used,
                used_ratio,
                suggested_secs: suggested,
                grant_ids: ids,
            },
        ));
    }
    strongest_first(&mut out)
}

fn slow_approvals(
    accesses: &[Access<'_>],
    catalog: &Catalog,
    settings: &Settings,
) -> Vec<Recommendation> {
    let mut teams: BTreeMap<&str, Vec<(u64, &str)>> = BTreeMap::new();
    let mut resources: BTreeMap<&str, Vec<(u64, &str)>> = BTreeMap::new();
    for access in accesses {
        let Some(wait) = access.wait_secs() else {
            continue;
        };
        let row = access.row();
        let id = row.request_id.as_str();
        if let Some(user) = catalog.users.get(&row.requester) {
            for team in &user.teams {
                teams.entry(team).or_default().push((wait, id));
            }
        }
        resources
            .entry(row.resource.as_str())
            .or_default()
            .push((wait, id));
    }
    let mut out = Vec::new();
    for (scope, groups) in [("team", teams), ("resource", resources)] {
        for (name, mut waits) in groups {
            let decisions = waits.len() as u64;
            if decisions < settings.slow_min_decisions {
                continue;
            }
            // Slowest first; the request id breaks ties so the evidence is deterministic.
            waits.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
            let mut sorted: Vec<u64> = waits.iter().map(|(wait, _)| *wait).collect();
            sorted.reverse();
            let (Some(median), Some(p95)) = (percentile(&sorted, 50), percentile(&sorted, 95))
            else {
                continue;
            };
            if p95 <= settings.slow_p95_secs {
                continue;
            }
            out.push((
                p95,
                Recommendation::SlowApproval {
                    scope: scope.to_owned(),
                    name: name.to_owned(),
                    decisions,
                    median_secs: median,
                    p95_secs: p95,
                    request_ids: capped(
                        waits.into_iter().map(|(_, id)| id.to_owned()).collect(),
                        settings,
                    ),
                },
            ));
        }
    }
    strongest_first(&mut out)
}

fn never_denies(accesses: &[Access<'_>], settings: &Settings) -> Vec<Recommendation> {
    // approver → (denials, waits, approved request ids)
    type Group<'a> = (u64, Vec<u64>, Vec<&'a str>);
    let mut approvers: BTreeMap<&str, Group<'_>> = BTreeMap::new();
    for access in accesses.iter().filter(|access| !access.row().break_glass) {
        let row = access.row();
        for decision in &access.summary.decisions {
            let group = approvers.entry(decision.approver.as_str()).or_default();
            let wait = u64::try_from(decision.at.millis_since(row.requested_at) / 1000);
            group.1.push(wait.unwrap_or(0));
            if decision.approved {
                group.2.push(row.request_id.as_str());
            } else {
                group.0 += 1;
            }
        }
    }
    let mut out = Vec::new();
    for (approver, (denials, mut waits, ids)) in approvers {
        let decisions = waits.len() as u64;
        if denials > 0 || decisions < settings.never_denies_min_decisions {
            continue;
        }
        waits.sort_unstable();
        out.push((
            decisions,
            Recommendation::NeverDenies {
                approver: approver.to_owned(),
                decisions,
                median_secs: percentile(&waits, 50).unwrap_or(0),
                request_ids: capped(ids.into_iter().map(str::to_owned).collect(), settings),
            },
        ));
    }
    strongest_first(&mut out)
}
