//! Any decision from plain values ([`Query`]), and its explanation for `latch policy explain`:
//! the decision, the policies that determined it, and the requirements derived from them.

use std::fmt::Write as _;

use latch_core::{AccessDuration, Timestamp};

use crate::decide::{Action, Decision, Existing, RequestInput, Requirements};
use crate::engine::PolicyEngine;

/// One question to the engine, as a person or a test table asks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub principal: String,
    pub action: Action,
    pub resource: String,
    /// The role; required for every action but `view_audit` and `administer`.
    pub role: Option<String>,
    /// How long; default: the role's maximum duration.
    pub duration: Option<AccessDuration>,
    pub ticket: Option<String>,
    pub now: Timestamp,
    pub open_requests: u32,
    pub recent_requests: u32,
    /// For `approve` and `revoke`: whose request or grant (for `self_approve` and `request` it
    /// is the principal). Default: the principal.
    pub requester: Option<String>,
    /// For `approve`: approvals the request already has.
    pub approvals_so_far: u32,
    /// For `approve`: how long the request has been pending.
    pub pending_secs: u64,
}

impl Query {
    /// A query with every optional field at its default, at `now`.
    pub fn new(
        principal: &str,
        action: Action,
        resource: &str,
        role: Option<&str>,
        now: Timestamp,
    ) -> Self {
        Self {
            principal: principal.to_owned(),
            action,
            resource: resource.to_owned(),
            role: role.map(str::to_owned),
            duration: None,
            ticket: None,
            now,
            open_requests: 0,
            recent_requests: 0,
            requester: None,
            approvals_so_far: 0,
            pending_secs: 0,
        }
    }
}

/// The answer to a [`Query`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    pub decision: Decision,
    /// For `request`: the requirements (see [`Requirements`]).
    pub requirements: Option<Requirements>,
}

impl PolicyEngine {
    /// Decides `query` exactly as the matching `decide_*` call would.
    pub fn evaluate(&self, query: &Query) -> Evaluation {
        let plain = |decision| Evaluation {
            decision,
            requirements: None,
        };
        let role = query.role.as_deref().unwrap_or("");
        if query.action.takes_role() && query.role.is_none() {
            return plain(Decision {
                allowed: false,
                reasons: vec![format!("action `{}` needs a role", query.action)],
                determining: Vec::new(),
            });
        }
        let duration = query.duration.or_else(|| {
            self.org
                .catalog
                .resources
                .get(&query.resource)
                .and_then(|r| r.roles.get(role))
                .map(|r| r.max_duration)
        });
        // An unknown resource or role has no maximum; any duration does to reach the refusal.
        let duration = duration.or(AccessDuration::from_secs(3600));
        let Some(duration) = duration else {
            return plain(Decision {
                allowed: false,
                reasons: vec!["no duration".to_owned()],
                determining: Vec::new(),
            });
        };
        let requester = query.requester.as_deref().unwrap_or(&query.principal);
        let pending = i64::try_from(query.pending_secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        let existing = Existing {
            requester,
            resource: &query.resource,
            role,
            duration,
            ticket: query.ticket.as_deref(),
            approvals_so_far: query.approvals_so_far,
            created_at: Timestamp::from_millis(query.now.as_millis().saturating_sub(pending)),
            escalation_level: 0,
            escalated_to: &[],
        };
        match query.action {
            Action::Request => {
                let decision = self.decide_request(&RequestInput {
                    requester: query.principal.clone(),
                    resource: query.resource.clone(),
                    role: role.to_owned(),
                    duration,
                    ticket: query.ticket.clone(),
                    now: query.now,
                    open_requests: query.open_requests,
                    recent_requests: query.recent_requests,
                });
                Evaluation {
                    decision: Decision {
                        allowed: decision.allowed,
                        reasons: decision.reasons,
                        determining: decision.determining,
                    },
                    requirements: Some(decision.requirements),
                }
            }
            Action::Approve => plain(self.approve(&query.principal, &existing, query.now)),
            Action::SelfApprove => plain(self.self_approve(
                &Existing {
                    requester: &query.principal,
                    ..existing
                },
                query.now,
            )),
            Action::Revoke => plain(self.revoke(&query.principal, &existing, query.now)),
            Action::Connect => {
                plain(self.decide_connect(&query.principal, &query.resource, role, query.now))
            }
            Action::ViewAudit => plain(self.decide_view_audit(&query.principal, &query.resource)),
            Action::Administer => plain(self.decide_administer(&query.principal, &query.resource)),
        }
    }

    /// A human-readable account of the decision on `query`, for `latch policy explain`.
    pub fn explain(&self, query: &Query) -> String {
        let evaluation = self.evaluate(query);
        let mut out = String::new();
        let target = match &query.role {
            Some(role) if query.action.takes_role() => {
                format!("role `{role}` on `{}`", query.resource)
            }
            _ => format!("`{}`", query.resource),
        };
        let verdict = if evaluation.decision.allowed {
            "ALLOW"
        } else {
            "DENY"
        };
        let _ = writeln!(
            out,
            "{verdict}: `{}` {} {target}",
            query.principal, query.action
        );
        if let Some(requester) = &query.requester
            && matches!(query.action, Action::Approve | Action::Revoke)
        {
            let _ = writeln!(out, "  request by `{requester}`");
        }
        let _ = writeln!(
            out,
            "  at {} (policy set {})",
            query.now,
            short(self.hash())
        );
        let _ = writeln!(out, "determining policies:");
        if evaluation.decision.determining.is_empty() {
            let _ = writeln!(out, "  none");
        }
        for policy in &evaluation.decision.determining {
            let _ = writeln!(out, "  {} at {}:{}", policy.id, policy.file, policy.line);
        }
        let _ = writeln!(out, "reasons:");
        for reason in &evaluation.decision.reasons {
            let _ = writeln!(out, "  {reason}");
        }
        if let Some(requirements) = &evaluation.requirements
            && (evaluation.decision.allowed || requirements.max_duration.is_some())
        {
            let _ = writeln!(out, "requirements:");
            let role_max = self
                .org
                .catalog
                .resources
                .get(&query.resource)
                .and_then(|r| r.roles.get(query.role.as_deref().unwrap_or("")))
                .map(|r| r.max_duration);
            let max = match (requirements.max_duration, role_max) {
                (Some(policy), Some(role)) => format!("{} (role maximum {role})", policy.min(role)),
                (Some(policy), None) => policy.to_string(),
                (None, Some(role)) => format!("{role} (the role's maximum)"),
                (None, None) => "none".to_owned(),
            };
            let _ = writeln!(out, "  max duration:     {max}");
            if evaluation.decision.allowed {
                let groups = if requirements.approver_groups.is_empty() {
                    "none".to_owned()
                } else {
                    requirements
                        .approver_groups
                        .iter()
                        .map(|g| format!("`{g}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let yes_no = |b: bool| if b { "yes" } else { "no" };
                let _ = writeln!(out, "  approvals:        {}", requirements.approvals);
                let _ = writeln!(out, "  approver groups:  {groups}");
                let _ = writeln!(
                    out,
                    "  auto-approve:     {}",
                    yes_no(requirements.auto_approve)
                );
                let _ = writeln!(
                    out,
                    "  break-glass:      {}",
                    if requirements.break_glass_allowed {
                        "allowed (self_approve; flagged)"
                    } else {
                        "no"
                    }
                );
            }
        }
        out
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
