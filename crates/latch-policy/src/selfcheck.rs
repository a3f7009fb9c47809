//! The load-time check that no policy lets someone approve their own request through `approve`
//! (self-approval is `self_approve`, break-glass, flagged).
//!
//! How it works, and what it guarantees:
//!
//! - At decision time the guarantee is unconditional: [`PolicyEngine::decide_approve`] denies
//!   whenever the approver is the requester, before any policy is evaluated (the built-in guard
//!   `latch:no-self-approval`). So a policy set can never actually grant self-approval through
//!   `approve`.
//! - At load time the set is *refused* when a policy would have granted it, so that a policy that
//!   says so is fixed instead of silently overridden. The check evaluates `approve` with the
//!   approver as the requester (`context.is_own_request` true) for every user of the
//!   organisation on every role of every resource, under two probe contexts (a request for the
//!   role's maximum in business hours, fresh, with a matching ticket; a one-minute request on a
//!   Sunday night, pending for a day, with one approval and no ticket). It is exhaustive over the
//!   organisation and a sample over the context: a policy that permits self-approval only, say,
//!   at 04:00 on Tuesdays is not refused, and is still denied by the guard. When no `approve`
//!   policy reads a field the probes vary (its name does not appear in any policy text), the
//!   probes are indistinguishable and one is evaluated.
//! - To stay fast with thousands of users, users (and roles) that no policy can tell apart are
//!   evaluated once. Two users are indistinguishable when neither is named by a policy (entity
//!   literal), no policy mentions `email`, and they have the same kind, teams, organisation
//!   roles, manager, on-call status, teams they lead and direct reports; everything a policy can
//!   observe about a principal is then equal, so the decision is too. Roles are merged likewise
//!   when neither they nor their resource is named and their name, maximum duration and
//!   resource labels, kind and owner are equal.

use std::collections::{BTreeSet, HashMap, HashSet};

use latch_core::{AccessDuration, Timestamp};

use crate::decide::{Action, Existing};
use crate::engine::PolicyEngine;

/// Wednesday 2026-01-07 10:00 UTC and Sunday 2026-01-11 03:00 UTC.
const PROBE_TIMES: [i64; 2] = [1_767_780_000_000, 1_768_100_400_000];

/// The context fields the two probes set differently (`ticket` covers `ticket_matches`).
const PROBED_FIELDS: [&str; 6] = [
    "duration_secs",
    "hour_utc",
    "weekday",
    "ticket",
    "approvals_so_far",
    "pending_secs",
];

/// Policies that would let someone approve their own request, as (policy id, message), one per
/// policy, with the first example found.
pub(crate) fn self_approvals(engine: &PolicyEngine) -> Vec<(String, String)> {
    let Some(approve_index) = engine.index.get(Action::Approve as usize) else {
        return Vec::new();
    };
    let any_permit = |set: &cedar_policy::PolicySet| {
        set.policies()
            .any(|p| p.effect() == cedar_policy::Effect::Permit)
    };
    let mut literal_users: HashSet<String> = HashSet::new();
    let mut literal_roles: HashSet<String> = HashSet::new();
    let mut literal_resources: HashSet<String> = HashSet::new();
    let mut mentions_email = false;
    let mut reads_probed_fields = false;
    let types = &engine.org.types;
    for set in approve_index.sets() {
        for policy in set.policies() {
            let text = policy.to_cedar().unwrap_or_default();
            mentions_email |= text.contains("email");
            reads_probed_fields |= PROBED_FIELDS.iter().any(|field| text.contains(field));
            for uid in policy.entity_literals() {
                let id = uid.id().unescaped().to_owned();
                let ty = uid.type_name();
                if ty == &types.user || ty == &types.service_account {
                    literal_users.insert(id);
                } else if ty == &types.role {
                    literal_roles.insert(id);
                } else if ty == &types.resource {
                    literal_resources.insert(id);
                }
            }
        }
    }
    let users = user_classes(engine, &literal_users, mentions_email);
    let roles = role_classes(engine, &literal_roles, &literal_resources);
    let mut found: HashMap<String, String> = HashMap::new();
    for (resource, role, max) in &roles {
        let ticket = sample_ticket(engine, resource);
        for user in &users {
            let Some(principal) = engine.org.principals.get(user.as_str()) else {
                continue;
            };
            // Skip the pair when no permit can match it by its scope: the answer is deny.
            let ancestors: Vec<&cedar_policy::EntityUid> = engine
                .org
                .entities
                .ancestors(principal)
                .map(Iterator::collect)
                .unwrap_or_default();
            let buckets = [
                Some(&approve_index.generic),
                approve_index.by_resource.get(resource.as_str()),
            ];
            let may_permit = buckets
                .into_iter()
                .flatten()
                .flat_map(|bucket| bucket.matching(principal, &ancestors))
                .any(any_permit);
            if !may_permit {
                continue;
            }
            // When no policy reads a field the probes vary, one probe answers for both.
            let probes = if reads_probed_fields {
                PROBE_TIMES.len()
            } else {
                1
            };
            for (probe, at) in PROBE_TIMES.iter().take(probes).enumerate() {
                let now = Timestamp::from_millis(*at);
                let (duration, ticket) = if probe == 0 {
                    (*max, Some(ticket.as_str()))
                } else {
                    (
                        AccessDuration::from_secs(60).unwrap_or(*max).min(*max),
                        None,
                    )
                };
                let existing = Existing {
                    requester: user,
                    resource,
                    role,
                    duration,
                    ticket,
                    approvals_so_far: u32::try_from(probe).unwrap_or(0),
                    // The second probe has waited a day, for escalation rules.
                    created_at: Timestamp::from_millis(
                        now.as_millis() - 86_400_000 * i64::try_from(probe).unwrap_or(0),
                    ),
                    escalation_level: 0,
                    escalated_to: &[],
                };
                let Some(role_uid) = engine.org.role_uid(resource, role) else {
                    continue;
                };
                let pairs = engine.approve_context(user, &existing, now);
                let outcome = engine.run(Action::Approve, principal, role_uid, resource, pairs);
                if !outcome.allowed {
                    continue;
                }
                for id in &outcome.determining {
                    let reference = engine.policy_ref(id);
                    found.entry(reference.id.clone()).or_insert_with(|| {
                        format!(
                            "policy `{}` lets `{user}` approve their own request for role `{role}` on `{resource}` through `approve`: self-approval is break-glass and goes through `self_approve`; add `unless {{ context.is_own_request }}` to this policy, or a `forbid` for `context.is_own_request`",
                            reference.id
                        )
                    });
                }
            }
        }
    }
    let mut found: Vec<(String, String)> = found.into_iter().collect();
    found.sort();
    found
}

/// One representative user per class of users no policy can tell apart (see the module docs).
fn user_classes(
    engine: &PolicyEngine,
    literal: &HashSet<String>,
    mentions_email: bool,
) -> Vec<String> {
    let catalog = &engine.org.catalog;
    let mut leads: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for team in catalog.teams.values() {
        for lead in &team.leads {
            leads.entry(lead).or_default().insert(&team.name);
        }
    }
    let mut reports: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for user in catalog.users.values() {
        if let Some(manager) = &user.manager {
            reports.entry(manager).or_default().insert(&user.name);
        }
    }
    let mut seen = HashSet::new();
    let mut representatives = Vec::new();
    for user in catalog.users.values() {
        if mentions_email || literal.contains(&user.name) {
            representatives.push(user.name.clone());
            continue;
        }
        let key = (
            engine.org.is_service_account(&user.name),
            user.teams.clone(),
            user.roles.clone(),
            user.manager.clone(),
            engine.org.on_call(&user.name),
            leads.get(user.name.as_str()).cloned().unwrap_or_default(),
            reports.get(user.name.as_str()).cloned().unwrap_or_default(),
        );
        if seen.insert(key) {
            representatives.push(user.name.clone());
        }
    }
    representatives
}

/// One representative (resource, role, max duration) per class of roles no policy can tell
/// apart (see the module docs).
fn role_classes(
    engine: &PolicyEngine,
    literal_roles: &HashSet<String>,
    literal_resources: &HashSet<String>,
) -> Vec<(String, String, AccessDuration)> {
    let approve_index = engine.index.get(Action::Approve as usize);
    let mut seen = HashSet::new();
    let mut representatives = Vec::new();
    for resource in engine.org.catalog.resources.values() {
        let named = literal_resources.contains(&resource.name)
            || approve_index.is_some_and(|index| index.by_resource.contains_key(&resource.name));
        let labels = engine
            .org
            .facts
            .resources
            .get(&resource.name)
            .cloned()
            .unwrap_or_default();
        for role in resource.roles.values() {
            let entry = (resource.name.clone(), role.name.clone(), role.max_duration);
            let role_id = crate::org::role_id(&resource.name, &role.name);
            if named || literal_roles.contains(&role_id) {
                representatives.push(entry);
                continue;
            }
            let key = (
                resource.kind.as_str(),
                resource.owner_team.clone(),
                (
                    labels.sensitivity.clone(),
                    labels.environment.clone(),
                    labels
                        .ticket_pattern
                        .as_ref()
                        .map(|p| p.as_str().to_owned()),
                ),
                role.name.clone(),
                role.max_duration,
            );
            if seen.insert(key) {
                representatives.push(entry);
            }
        }
    }
    representatives
}

/// A ticket reference that matches the resource's pattern (`*` filled with `1`).
fn sample_ticket(engine: &PolicyEngine, resource: &str) -> String {
    engine
        .org
        .facts
        .resources
        .get(resource)
        .and_then(|labels| labels.ticket_pattern.as_ref())
        .and_then(|pattern| {
            // A ticket the pattern accepts, when a common shape does: the probe should take the
            // paths a real, well-formed request takes.
            [
                "INC-1", "TICKET-1", "CHG-1", "PAY-1", "OPS-1", "1", "ABC-123",
            ]
            .into_iter()
            .find(|candidate| pattern.matches(candidate))
        })
        .unwrap_or("TICKET-1")
        .to_owned()
}
