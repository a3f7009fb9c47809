//! Recommendations: patterns in the history that suggest a change, each with its figures and
//! the ids that show it. Thresholds come from [`Settings`]; the groupings are the fold's
//! ([`crate::Analyzer`]), by interned name.

use std::collections::HashMap;

use crate::fold::{ApproverTally, Names, RoleGrants, TeamResource, Waits};
use crate::stats::percentile;
use crate::{Recommendation, Settings};

const QUARTER_HOUR: u64 = 900;

/// Stable sort on the figure, largest first; the input order (by name) breaks ties.
fn strongest_first(mut items: Vec<(u64, Recommendation)>) -> Vec<Recommendation> {
    items.sort_by_key(|item| std::cmp::Reverse(item.0));
    items.into_iter().map(|(_, rec)| rec).collect()
}

/// The groups of `table` with their names, ordered by those names.
fn by_names<G>(table: HashMap<(u32, u32), G>, names: &Names) -> Vec<((&str, &str), G)> {
    let mut groups: Vec<((&str, &str), G)> = table
        .into_iter()
        .map(|((a, b), group)| ((names.name(a), names.name(b)), group))
        .collect();
    groups.sort_by(|x, y| x.0.cmp(&y.0));
    groups
}

/// A team asked for a resource at least `standing_min_requests` times.
pub(crate) fn standing_access(
    groups: HashMap<(u32, u32), TeamResource>,
    names: &Names,
    settings: &Settings,
) -> Vec<Recommendation> {
    let out = by_names(groups, names)
        .into_iter()
        .filter(|(_, group)| group.requests >= settings.standing_min_requests)
        .map(|((team, resource), group)| {
            let mut roles: Vec<String> = group
                .roles
                .iter()
                .map(|&role| names.name(role).to_owned())
                .collect();
            roles.sort();
            (
                group.requests,
                Recommendation::StandingAccess {
                    team: team.to_owned(),
                    resource: resource.to_owned(),
                    requests: group.requests,
                    approved: group.approved,
                    requesters: group.requesters.len() as u64,
                    roles,
                    request_ids: group.ids,
                },
            )
        })
        .collect();
    strongest_first(out)
}

/// A role on a resource whose grants use a small share of the time they are granted for.
pub(crate) fn overlong_durations(
    groups: HashMap<(u32, u32), RoleGrants>,
    names: &Names,
    settings: &Settings,
) -> Vec<Recommendation> {
    let mut out = Vec::new();
    for ((resource, role), mut group) in by_names(groups, names) {
        let grants = group.granted.len() as u64;
        if grants < settings.overlong_min_grants {
            continue;
        }
        group.granted.sort_unstable();
        group.used.sort_unstable();
        let (Some(median_granted), Some(median_used), Some(p95_used)) = (
            percentile(&group.granted, 50),
            percentile(&group.used, 50),
            percentile(&group.used, 95),
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
                grant_ids: group.ids,
            },
        ));
    }
    strongest_first(out)
}

/// Teams and resources whose requests wait long for a decision. Each group's waits are sorted
/// already (the fold's latency figures sorted them).
pub(crate) fn slow_approvals(
    teams: Vec<Option<Waits>>,
    resources: Vec<Option<Waits>>,
    names: &Names,
    settings: &Settings,
) -> Vec<Recommendation> {
    let mut out = Vec::new();
    for (scope, table) in [("team", teams), ("resource", resources)] {
        let mut groups: Vec<(&str, Waits)> = table
            .into_iter()
            .enumerate()
            .filter_map(|(id, waits)| Some((names.name(id as u32), waits?)))
            .collect();
        groups.sort_by(|a, b| a.0.cmp(b.0));
        for (name, waits) in groups {
            let decisions = waits.values.len() as u64;
            if decisions < settings.slow_min_decisions {
                continue;
            }
            let (Some(median), Some(p95)) =
                (percentile(&waits.values, 50), percentile(&waits.values, 95))
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
                    // Slowest first; the request id breaks ties so the evidence is
                    // deterministic.
                    request_ids: waits.slowest.into_ids(),
                },
            ));
        }
    }
    strongest_first(out)
}

/// Approvers with many decisions and not one denial. Each tally's waits are sorted already.
pub(crate) fn never_denies(
    approvers: Vec<Option<ApproverTally>>,
    names: &Names,
    settings: &Settings,
) -> Vec<Recommendation> {
    let mut tallies: Vec<(&str, ApproverTally)> = approvers
        .into_iter()
        .enumerate()
        .filter_map(|(id, tally)| Some((names.name(id as u32), tally?)))
        .collect();
    tallies.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::new();
    for (approver, tally) in tallies {
        let decisions = tally.waits.len() as u64 + tally.before_request;
        if tally.denials > 0 || decisions < settings.never_denies_min_decisions {
            continue;
        }
        // A decision dated before its request counts as no wait: it sorts first.
        let median = percentile_with_zeros(&tally.waits, tally.before_request, 50);
        out.push((
            decisions,
            Recommendation::NeverDenies {
                approver: approver.to_owned(),
                decisions,
                median_secs: median,
                request_ids: tally.approved_ids,
            },
        ));
    }
    strongest_first(out)
}

/// The percentile `p` of `zeros` zeros followed by `sorted`.
fn percentile_with_zeros(sorted: &[u64], zeros: u64, p: u32) -> u64 {
    let n = sorted.len() as u64 + zeros;
    if n == 0 {
        return 0;
    }
    let rank = (u64::from(p.min(100)) * n).div_ceil(100).clamp(1, n);
    if rank <= zeros {
        0
    } else {
        usize::try_from(rank - zeros - 1)
            .ok()
            .and_then(|index| sorted.get(index).copied())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_percentile_counts_the_zeros_first() {
        assert_eq!(percentile_with_zeros(&[], 0, 50), 0);
        assert_eq!(
            percentile_with_zeros(&[5, 7, 9], 0, 50),
            percentile(&[5, 7, 9], 50).unwrap()
        );
        assert_eq!(percentile_with_zeros(&[5, 7, 9], 2, 50), 5);
        assert_eq!(percentile_with_zeros(&[5, 7, 9], 3, 50), 0);
        assert_eq!(percentile_with_zeros(&[5, 7, 9], 3, 95), 9);
    }
}
