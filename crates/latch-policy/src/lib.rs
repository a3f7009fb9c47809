//! latch's policy engine: Cedar policies over the organisation, decided purely.
//!
//! No IO, no clock, no async: policy texts come in with their paths, time comes in as a
//! [`latch_core::Timestamp`], and every decision is a value ([`Decision`], [`RequestDecision`])
//! that names the policies that determined it. An evaluation error is a deny with its cause.
//!
//! # The model
//!
//! The schema ([`SCHEMA`], `schema/latch.cedarschema`, namespace `Latch`) has principals
//! `User`, `ServiceAccount` and `Team` (team membership and parent teams are the entity
//! hierarchy; the manager chain is the `manager` attribute), resources `Resource` and `Role`
//! (a role's parent is its resource, id `RESOURCE/ROLE`), and the actions `request`, `approve`,
//! `self_approve`, `revoke`, `connect`, `view_audit` and `administer`. The entities are built
//! from a [`latch_core::Catalog`] plus [`OrgFacts`] (on-call list, service accounts, resource
//! labels).
//!
//! # Loading
//!
//! [`PolicyEngine::load`] parses every file, validates it against the schema in strict mode, and
//! refuses the set with *every* problem as `file:line:column: message`
//! ([`PolicyError::Invalid`]): syntax errors, type errors, validator warnings (impossible
//! policies, confusable strings), unknown annotations or bad annotation values, references to
//! users, teams, resources or roles the organisation does not have, duplicate ids, and policies
//! that would let someone approve their own request through `approve` (see [`mod@selfcheck`]).
//! A policy's id is its `@id("…")`, or `file:line` without one. [`PolicyEngine::hash`] is the
//! SHA-256 of the set for the ledger.
//!
//! # Requirements: annotations on permits
//!
//! Allow/deny is Cedar's; the terms of a request are annotations on the `permit` policies of
//! the `request` action that allowed it (the *determining* permits: every permit that was
//! satisfied):
//!
//! | annotation | meaning | several determining permits |
//! | --- | --- | --- |
//! | `@max_duration("2h")` | longest grant; a longer request is denied | the smallest |
//! | `@approvals("2")` | distinct approvals (1–10; default 1) | the largest, and at least the number of groups |
//! | `@approver_groups("security, dba")` | teams that must each be represented among the approvers (member of the team or of a sub-team) | the union |
//! | `@auto_approve("true")` | granted without approval | only if *every* one says `true` |
//!
//! Because of the last rule, a policy set that auto-approves some requests writes its permits
//! as disjoint cases (see `examples/advanced-policies/`). Requirement annotations on a `forbid`,
//! or on a policy that cannot match `request`, are refused. `@reason("…")` on a `forbid` is the
//! sentence the user sees when it denies; `@description` is free text.
//!
//! Break-glass is its own action, `self_approve`: [`Requirements::break_glass_allowed`] says
//! whether it would allow the requester to approve this request, and
//! [`PolicyEngine::decide_self_approve`] decides it when they do (the caller flags it).
//! `approve` is always denied when the approver is the requester (built-in guard
//! `latch:no-self-approval`).
//!
//! # Where the decisions go
//!
//! | decision | replaces in `latch_core::lifecycle` |
//! | --- | --- |
//! | [`PolicyEngine::decide_request`] | the unconditional acceptance in `validate_create` after the role and duration checks, and `required_approvals: 1` |
//! | [`PolicyEngine::decide_approve`] | `Catalog::may_approve` in `require_approver` (approve and deny) |
//! | [`PolicyEngine::decide_self_approve`] | nothing yet: a new break-glass command |
//! | [`PolicyEngine::decide_revoke`] | `Catalog::may_revoke` |
//! | [`PolicyEngine::decide_view_audit`] | `Catalog::sees_everything` / `visibility`, per resource |
//!
//! # Cost
//!
//! Cedar evaluates every policy of the set it is given, so the engine indexes policies by
//! action, by the resource their scope names and by the principal or team their scope names,
//! and evaluates a decision against the few sets that can match it (same answer as the whole
//! set; a test checks it). Write `resource in Latch::Resource::"payments-db"` and
//! `principal in Latch::Team::"security"` in the scope rather than in `when` to benefit.
//! `benches/decisions.rs` measures it against the built-in rule.
//!
//! [`PolicyEngine::explain`] prints a decision for `latch policy explain`; [`run_tests`] runs a
//! table of expected decisions ([`testing`] documents the format) for `latch policy test`.

mod calendar;
mod decide;
mod engine;
mod explain;
mod org;
pub mod selfcheck;
pub mod testing;

pub use decide::{
    Action, Decision, NO_SELF_APPROVAL, PEOPLE_APPROVE, PolicyRef, RequestDecision, RequestInput,
    Requirements,
};
pub use engine::{
    KNOWN_ANNOTATIONS, MAX_APPROVALS, PolicyEngine, PolicyError, Problem, RESERVED_ID_PREFIX,
    SCHEMA, schema,
};
pub use explain::{Evaluation, Query};
pub use org::{OrgFacts, ResourceLabels};
pub use testing::{TestFileError, TestReport, run_tests};

#[cfg(test)]
mod tests;

/// The lifecycle asks through `latch_core::policy::AccessPolicy`; this engine answers.
impl latch_core::policy::AccessPolicy for PolicyEngine {
    fn request(
        &self,
        facts: &latch_core::policy::RequestFacts<'_>,
    ) -> latch_core::policy::RequestVerdict {
        let decision = self.decide_request(&RequestInput {
            requester: facts.requester.to_owned(),
            resource: facts.resource.to_owned(),
            role: facts.role.to_owned(),
            duration: facts.duration,
            ticket: facts.ticket.map(str::to_owned),
            now: facts.now,
            open_requests: facts.history.open_requests,
            recent_requests: facts.history.recent_requests,
        });
        latch_core::policy::RequestVerdict {
            verdict: verdict(decision.allowed, decision.reasons, &decision.determining),
            approvals: decision.requirements.approvals,
            max_duration: decision.requirements.max_duration,
            approver_groups: decision.requirements.approver_groups,
            auto_approve: decision.allowed && decision.requirements.auto_approve,
        }
    }

    fn approve(
        &self,
        approver: &str,
        request: &latch_core::AccessRequest,
        now: latch_core::Timestamp,
    ) -> latch_core::policy::Verdict {
        let decision = self.decide_approve(approver, request, now);
        verdict(decision.allowed, decision.reasons, &decision.determining)
    }

    fn revoke(
        &self,
        actor: &str,
        request: &latch_core::AccessRequest,
        now: latch_core::Timestamp,
    ) -> latch_core::policy::Verdict {
        let decision = self.decide_revoke(actor, request, now);
        verdict(decision.allowed, decision.reasons, &decision.determining)
    }

    fn missing_groups(&self, approvers: &[String], groups: &[String]) -> Vec<String> {
        self.missing(approvers, groups)
    }

    fn view_audit(&self, user: &str, resource: &str) -> Option<bool> {
        Some(self.decide_view_audit(user, resource).allowed)
    }

    fn connect(
        &self,
        user: &str,
        resource: &str,
        role: &str,
        now: latch_core::Timestamp,
    ) -> latch_core::policy::Verdict {
        let decision = self.decide_connect(user, resource, role, now);
        verdict(decision.allowed, decision.reasons, &decision.determining)
    }

    fn self_approve(
        &self,
        request: &latch_core::AccessRequest,
        now: latch_core::Timestamp,
    ) -> latch_core::policy::Verdict {
        let decision = self.decide_self_approve(request, now);
        verdict(decision.allowed, decision.reasons, &decision.determining)
    }
}

impl PolicyEngine {
    fn missing(&self, approvers: &[String], groups: &[String]) -> Vec<String> {
        PolicyEngine::missing_groups(self, approvers, groups)
            .into_iter()
            .map(str::to_owned)
            .collect()
    }
}

fn verdict(
    allowed: bool,
    reasons: Vec<String>,
    determining: &[PolicyRef],
) -> latch_core::policy::Verdict {
    latch_core::policy::Verdict {
        allowed,
        reason: if reasons.is_empty() {
            "no policy permits it".to_owned()
        } else {
            reasons.join("; ")
        },
        policies: determining.iter().map(|p| p.id.clone()).collect(),
    }
}
