//! Decisions: whether a request may be made and on what terms, who may approve, self-approve
//! (break-glass), revoke, connect, read the audit trail or administer. Pure and total: every
//! decision is a value naming the policies that determined it, and an evaluation error denies.

use std::fmt;

use cedar_policy::{
    AuthorizationError, Context, Decision as CedarDecision, Effect, EntityUid, PolicyId, PolicySet,
    Request, RestrictedExpression,
};
use latch_core::{AccessDuration, AccessRequest, Timestamp};

use crate::calendar::{hour_utc, weekday};
use crate::engine::{PolicyEngine, PrincipalIndex, RESERVED_ID_PREFIX};
use crate::org::{clamp_long, list};

/// What a principal asks to do; one Cedar action each (`Latch::Action::"request"`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Request,
    Approve,
    SelfApprove,
    Revoke,
    Connect,
    ViewAudit,
    Administer,
}

impl Action {
    /// Every action, in the order of its discriminant.
    pub const ALL: [Action; 7] = [
        Self::Request,
        Self::Approve,
        Self::SelfApprove,
        Self::Revoke,
        Self::Connect,
        Self::ViewAudit,
        Self::Administer,
    ];

    /// The Cedar action id.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Approve => "approve",
            Self::SelfApprove => "self_approve",
            Self::Revoke => "revoke",
            Self::Connect => "connect",
            Self::ViewAudit => "view_audit",
            Self::Administer => "administer",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == text)
    }

    /// Whether the action is on a role of a resource (the others are on a resource).
    pub fn takes_role(self) -> bool {
        !matches!(self, Self::ViewAudit | Self::Administer)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy that determined a decision, as the ledger records it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PolicyRef {
    /// `@id`, or `file:line` without one; `latch:…` for latch's built-in guards.
    pub id: String,
    /// The file, as given to [`PolicyEngine::load`] (`(built-in)` for the guards).
    pub file: String,
    /// 1-based line of the policy's first token (0 for the guards).
    pub line: usize,
}

impl fmt::Display for PolicyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` ({}:{})", self.id, self.file, self.line)
    }
}

/// The built-in guard that denies `approve` when the approver is the requester.
pub const NO_SELF_APPROVAL: &str = "latch:no-self-approval";
/// The built-in guard that denies approvals by service accounts.
pub const PEOPLE_APPROVE: &str = "latch:people-approve";

fn guard(id: &str) -> PolicyRef {
    PolicyRef {
        id: id.to_owned(),
        file: "(built-in)".to_owned(),
        line: 0,
    }
}

/// An answer: allowed or not, why, and which policies decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Sentences for the user: the `@reason` of a denying `forbid`, what permitted it, or the
    /// evaluation error that denied it.
    pub reasons: Vec<String>,
    /// The permits that allowed, or the forbids (or failing policies) that denied; empty when
    /// nothing permitted or the input named something unknown.
    pub determining: Vec<PolicyRef>,
}

impl Decision {
    fn deny(reason: String) -> Self {
        Self {
            allowed: false,
            reasons: vec![reason],
            determining: Vec::new(),
        }
    }
}

/// The terms of a request, derived from the annotations of the permits that allowed it.
///
/// Combination across several determining permits is conservative: the smallest
/// `@max_duration`, the largest `@approvals` (default 1, never below the number of groups), the
/// union of `@approver_groups`, and `@auto_approve` only if every one of them says `true`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirements {
    /// The longest grant allowed by policy (the role's own maximum still applies).
    pub max_duration: Option<AccessDuration>,
    /// Distinct approvals needed before the grant.
    pub approvals: u32,
    /// Teams that must each be represented among the approvers (a member of the team or of a
    /// sub-team), sorted.
    pub approver_groups: Vec<String>,
    /// Granted at once, without approval.
    pub auto_approve: bool,
    /// The requester may approve it themself under `self_approve` (break-glass, flagged).
    pub break_glass_allowed: bool,
}

impl Default for Requirements {
    fn default() -> Self {
        Self {
            max_duration: None,
            approvals: 1,
            approver_groups: Vec::new(),
            auto_approve: false,
            break_glass_allowed: false,
        }
    }
}

/// The answer to "may this request be made, and on what terms".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestDecision {
    pub allowed: bool,
    pub reasons: Vec<String>,
    pub determining: Vec<PolicyRef>,
    /// Meaningful when `allowed`; the defaults otherwise (but `max_duration` is kept when a
    /// request was denied for being longer, so the user learns what to ask for).
    pub requirements: Requirements,
}

/// A request about to be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestInput {
    pub requester: String,
    pub resource: String,
    pub role: String,
    pub duration: AccessDuration,
    pub ticket: Option<String>,
    /// When it is made (`context.hour_utc`, `context.weekday`).
    pub now: Timestamp,
    /// The requester's requests now pending or granted, this one not counted.
    pub open_requests: u32,
    /// The requester's requests made in the last 24 hours, this one not counted.
    pub recent_requests: u32,
}

/// The facts of an existing request that `approve`, `self_approve` and `revoke` decide on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Existing<'a> {
    pub requester: &'a str,
    pub resource: &'a str,
    pub role: &'a str,
    pub duration: AccessDuration,
    pub ticket: Option<&'a str>,
    pub approvals_so_far: u32,
    pub created_at: Timestamp,
    /// How many times the request was escalated, and who that brought in.
    pub escalation_level: u32,
    pub escalated_to: &'a [String],
}

impl<'a> From<&'a AccessRequest> for Existing<'a> {
    fn from(request: &'a AccessRequest) -> Self {
        Self {
            requester: &request.requester,
            resource: &request.resource,
            role: &request.role,
            duration: request.duration,
            ticket: request.ticket.as_deref(),
            approvals_so_far: u32::try_from(request.approvals.len()).unwrap_or(u32::MAX),
            created_at: request.created_at,
            escalation_level: request.escalation_level,
            escalated_to: &request.escalated_to,
        }
    }
}

/// What Cedar said, merged over the policy sets a request was evaluated against.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub allowed: bool,
    /// Satisfied permits when allowed, satisfied forbids when denied.
    pub determining: Vec<PolicyId>,
    /// Evaluation errors, with the policy that raised them when known.
    pub errors: Vec<(Option<PolicyId>, String)>,
}

type Pairs = Vec<(String, RestrictedExpression)>;

fn long(value: impl Into<i64>) -> RestrictedExpression {
    RestrictedExpression::new_long(value.into())
}

fn pair(key: &str, value: RestrictedExpression) -> (String, RestrictedExpression) {
    (key.to_owned(), value)
}

impl PolicyEngine {
    /// May `input.requester` request `input.role` on `input.resource`, and on what terms.
    pub fn decide_request(&self, input: &RequestInput) -> RequestDecision {
        let denied = |decision: Decision| RequestDecision {
            allowed: false,
            reasons: decision.reasons,
            determining: decision.determining,
            requirements: Requirements::default(),
        };
        let principal = match self.principal(&input.requester) {
            Ok(uid) => uid,
            Err(decision) => return denied(decision),
        };
        let role = match self.role(&input.resource, &input.role) {
            Ok(uid) => uid,
            Err(decision) => return denied(decision),
        };
        let mut pairs = self.facts(
            &input.requester,
            &input.resource,
            input.duration,
            input.ticket.as_deref(),
            input.now,
        );
        pairs.push(pair("open_requests", long(input.open_requests)));
        pairs.push(pair("recent_requests", long(input.recent_requests)));
        let outcome = self.run(Action::Request, principal, role, &input.resource, pairs);
        let what = format!(
            "`{}` to request role `{}` on `{}`",
            input.requester, input.role, input.resource
        );
        let decision = self.decision(outcome, &what);
        if !decision.allowed {
            return denied(decision);
        }
        let mut requirements = self.requirements(&decision.determining);
        let mut reasons = decision.reasons;
        let mut allowed = true;
        let mut determining = decision.determining;
        if let Some(max) = requirements.max_duration
            && input.duration > max
        {
            let capping: Vec<PolicyRef> = determining
                .iter()
                .filter(|p| {
                    self.meta_of(&p.id)
                        .and_then(|m| m.requirements.max_duration)
                        == Some(max)
                })
                .cloned()
                .collect();
            let by = capping
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            reasons = vec![format!(
                "duration `{}` is above the maximum `{max}` set by policy {by}: ask for `{max}` or less",
                input.duration
            )];
            determining = capping;
            allowed = false;
        }
        for group in &requirements.approver_groups {
            let others = self
                .org
                .members
                .get(group)
                .map_or(0, |m| m.len() - usize::from(m.contains(&input.requester)));
            if others == 0 && allowed {
                reasons = vec![format!(
                    "team `{group}` must approve this request but has no member other than `{}`: add someone to `{group}` or change the policy",
                    input.requester
                )];
                allowed = false;
            }
        }
        if !allowed {
            let max_duration = requirements.max_duration;
            requirements = Requirements {
                max_duration,
                ..Requirements::default()
            };
            return RequestDecision {
                allowed,
                reasons,
                determining,
                requirements,
            };
        }
        requirements.break_glass_allowed = !self.org.is_service_account(&input.requester)
            && self
                .self_approve(
                    &Existing {
                        requester: &input.requester,
                        resource: &input.resource,
                        role: &input.role,
                        duration: input.duration,
                        ticket: input.ticket.as_deref(),
                        approvals_so_far: 0,
                        created_at: input.now,
                        escalation_level: 0,
                        escalated_to: &[],
                    },
                    input.now,
                )
                .allowed;
        RequestDecision {
            allowed,
            reasons,
            determining,
            requirements,
        }
    }

    /// May `approver` approve (or deny) `request` at `now`. Never when the approver is the
    /// requester, whatever the policies say (that is `self_approve`).
    pub fn decide_approve(
        &self,
        approver: &str,
        request: &AccessRequest,
        now: Timestamp,
    ) -> Decision {
        self.approve(approver, &Existing::from(request), now)
    }

    /// May the requester approve their own `request` at `now` (break-glass; flag it).
    pub fn decide_self_approve(&self, request: &AccessRequest, now: Timestamp) -> Decision {
        self.self_approve(&Existing::from(request), now)
    }

    /// May `actor` revoke the grant of `request` at `now`.
    pub fn decide_revoke(&self, actor: &str, request: &AccessRequest, now: Timestamp) -> Decision {
        self.revoke(actor, &Existing::from(request), now)
    }

    /// May `user` open a session on `role` of `resource` at `now` (an active grant is checked
    /// by the caller; policy may narrow it, e.g. to an access window).
    pub fn decide_connect(
        &self,
        user: &str,
        resource: &str,
        role: &str,
        now: Timestamp,
    ) -> Decision {
        let principal = match self.principal(user) {
            Ok(uid) => uid,
            Err(decision) => return decision,
        };
        let role_uid = match self.role(resource, role) {
            Ok(uid) => uid,
            Err(decision) => return decision,
        };
        let pairs = vec![
            pair("hour_utc", long(hour_utc(now))),
            pair("weekday", long(weekday(now))),
        ];
        let outcome = self.run(Action::Connect, principal, role_uid, resource, pairs);
        self.decision(
            outcome,
            &format!("`{user}` to connect to `{resource}` as `{role}`"),
        )
    }

    /// May `user` read the audit trail of `resource`.
    pub fn decide_view_audit(&self, user: &str, resource: &str) -> Decision {
        self.on_resource(Action::ViewAudit, user, resource)
    }

    /// May `user` administer `resource`.
    pub fn decide_administer(&self, user: &str, resource: &str) -> Decision {
        self.on_resource(Action::Administer, user, resource)
    }

    fn on_resource(&self, action: Action, user: &str, resource: &str) -> Decision {
        let principal = match self.person(user, action) {
            Ok(uid) => uid,
            Err(decision) => return decision,
        };
        let Some(uid) = self.org.resources.get(resource) else {
            return Decision::deny(self.unknown_resource(resource));
        };
        let outcome = self.run(action, principal, uid, resource, Vec::new());
        self.decision(outcome, &format!("`{user}` to {action} `{resource}`"))
    }

    pub(crate) fn approve(
        &self,
        approver: &str,
        request: &Existing<'_>,
        now: Timestamp,
    ) -> Decision {
        if approver == request.requester {
            return Decision {
                allowed: false,
                reasons: vec![format!(
                    "`{approver}` cannot approve their own request: only `self_approve` (break-glass) allows that"
                )],
                determining: vec![guard(NO_SELF_APPROVAL)],
            };
        }
        let principal = match self.person(approver, Action::Approve) {
            Ok(uid) => uid,
            Err(decision) => return decision,
        };
        let role = match self.role(request.resource, request.role) {
            Ok(uid) => uid,
            Err(decision) => return decision,
        };
        let pairs = self.approve_context(approver, request, now);
        let outcome = self.run(Action::Approve, principal, role, request.resource, pairs);
        self.decision(
            outcome,
            &format!(
                "`{approver}` to approve `{}`'s request for role `{}` on `{}`",
                request.requester, request.role, request.resource
            ),
        )
    }

    /// The context of `approve`; also used by the self-approval check, with the approver as the
    /// requester.
    /// The context entry naming `user` as an entity: under `person_key` for a person, under
    /// `account_key` for a service account (the schema types them apart); none if unknown.
    fn person_pair(
        &self,
        user: &str,
        person_key: &str,
        account_key: &str,
    ) -> Option<(String, RestrictedExpression)> {
        let uid = self.org.principals.get(user)?;
        let key = if self.org.is_service_account(user) {
            account_key
        } else {
            person_key
        };
        Some(pair(key, RestrictedExpression::new_entity_uid(uid.clone())))
    }

    fn manager_of(&self, user: &str) -> Option<&str> {
        self.org
            .catalog
            .users
            .get(user)
            .and_then(|u| u.manager.as_deref())
    }

    pub(crate) fn approve_context(
        &self,
        approver: &str,
        request: &Existing<'_>,
        now: Timestamp,
    ) -> Pairs {
        let mut pairs = self.facts(
            request.requester,
            request.resource,
            request.duration,
            request.ticket,
            now,
        );
        pairs.extend(self.person_pair(request.requester, "requester", "requester_account"));
        let manager = self.manager_of(request.requester);
        pairs.extend([
            pair(
                "is_own_request",
                RestrictedExpression::new_bool(approver == request.requester),
            ),
            pair(
                "is_requester_manager",
                RestrictedExpression::new_bool(manager == Some(approver)),
            ),
            pair(
                "manages_requester",
                RestrictedExpression::new_bool(self.org.manages(approver, request.requester)),
            ),
            pair(
                "approver_leads_owner",
                RestrictedExpression::new_bool(self.org.leads_owner(approver, request.resource)),
            ),
            pair("approvals_so_far", long(request.approvals_so_far)),
            pair("escalation_level", long(request.escalation_level)),
            pair(
                "approver_escalated_to",
                RestrictedExpression::new_bool(
                    request.escalated_to.iter().any(|user| user == approver),
                ),
            ),
            pair(
                "pending_secs",
                long(now.millis_since(request.created_at).max(0) / 1000),
            ),
        ]);
        pairs
    }

    pub(crate) fn self_approve(&self, request: &Existing<'_>, now: Timestamp) -> Decision {
        let principal = match self.person(request.requester, Action::SelfApprove) {
            Ok(uid) => uid,
            Err(decision) => return decision,
        };
        let role = match self.role(request.resource, request.role) {
            Ok(uid) => uid,
            Err(decision) => return decision,
        };
        let pairs = self.facts(
            request.requester,
            request.resource,
            request.duration,
            request.ticket,
            now,
        );
        let outcome = self.run(
            Action::SelfApprove,
            principal,
            role,
            request.resource,
            pairs,
        );
        self.decision(
            outcome,
            &format!(
                "`{}` to approve their own request for role `{}` on `{}` (break-glass)",
                request.requester, request.role, request.resource
            ),
        )
    }

    pub(crate) fn revoke(&self, actor: &str, request: &Existing<'_>, now: Timestamp) -> Decision {
        let principal = match self.person(actor, Action::Revoke) {
            Ok(uid) => uid,
            Err(decision) => return decision,
        };
        let role = match self.role(request.resource, request.role) {
            Ok(uid) => uid,
            Err(decision) => return decision,
        };
        let mut pairs = vec![
            pair("hour_utc", long(hour_utc(now))),
            pair("weekday", long(weekday(now))),
        ];
        pairs.extend(self.person_pair(request.requester, "grantee", "grantee_account"));
        let manager = self.manager_of(request.requester);
        pairs.extend([
            pair(
                "is_grantee",
                RestrictedExpression::new_bool(actor == request.requester),
            ),
            pair(
                "is_grantee_manager",
                RestrictedExpression::new_bool(manager == Some(actor)),
            ),
            pair(
                "revoker_leads_owner",
                RestrictedExpression::new_bool(self.org.leads_owner(actor, request.resource)),
            ),
        ]);
        let outcome = self.run(Action::Revoke, principal, role, request.resource, pairs);
        self.decision(
            outcome,
            &format!(
                "`{actor}` to revoke `{}`'s grant of role `{}` on `{}`",
                request.requester, request.role, request.resource
            ),
        )
    }

    /// The fields shared by `request`, `approve` and `self_approve` (`Latch::RequestFacts`).
    fn facts(
        &self,
        requester: &str,
        resource: &str,
        duration: AccessDuration,
        ticket: Option<&str>,
        now: Timestamp,
    ) -> Pairs {
        let mut pairs = Vec::with_capacity(16);
        pairs.extend([
            pair(
                "duration_secs",
                RestrictedExpression::new_long(clamp_long(duration.as_secs())),
            ),
            pair("hour_utc", long(hour_utc(now))),
            pair("weekday", long(weekday(now))),
            pair(
                "ticket_matches",
                RestrictedExpression::new_bool(self.org.ticket_matches(resource, ticket)),
            ),
            pair(
                "requester_on_call",
                RestrictedExpression::new_bool(self.org.on_call(requester)),
            ),
        ]);
        if let Some(ticket) = ticket {
            pairs.push(pair(
                "ticket",
                RestrictedExpression::new_string(ticket.to_owned()),
            ));
        }
        pairs
    }

    fn principal(&self, name: &str) -> Result<&EntityUid, Decision> {
        self.org.principals.get(name).ok_or_else(|| {
            Decision::deny(format!(
                "unknown user `{name}`: add them to the organisation in the config"
            ))
        })
    }

    /// A principal that must be a person (approvers, revokers, auditors, administrators).
    fn person(&self, name: &str, action: Action) -> Result<&EntityUid, Decision> {
        let uid = self.principal(name)?;
        if self.org.is_service_account(name) {
            return Err(Decision {
                allowed: false,
                reasons: vec![format!(
                    "`{name}` is a service account: only people may {action}"
                )],
                determining: vec![guard(PEOPLE_APPROVE)],
            });
        }
        Ok(uid)
    }

    fn role(&self, resource: &str, role: &str) -> Result<&EntityUid, Decision> {
        let Some(roles) = self.org.roles.get(resource) else {
            return Err(Decision::deny(self.unknown_resource(resource)));
        };
        roles.get(role).ok_or_else(|| {
            let mut known: Vec<&String> = roles.keys().collect();
            known.sort();
            Decision::deny(format!(
                "unknown role `{role}` for resource `{resource}` (roles: {})",
                list(known)
            ))
        })
    }

    fn unknown_resource(&self, resource: &str) -> String {
        format!(
            "unknown resource `{resource}` (resources: {})",
            list(self.org.catalog.resources.keys())
        )
    }

    /// Evaluates one request against the policies that can apply to it.
    pub(crate) fn run(
        &self,
        action: Action,
        principal: &EntityUid,
        resource: &EntityUid,
        resource_name: &str,
        pairs: Pairs,
    ) -> Outcome {
        let failed = |message: String| Outcome {
            allowed: false,
            determining: Vec::new(),
            errors: vec![(None, message)],
        };
        let Some(index) = self.index.get(action as usize) else {
            return failed(format!(
                "no policy index for action `{action}` (a bug in latch)"
            ));
        };
        let buckets: Vec<&PrincipalIndex> =
            [Some(&index.generic), index.by_resource.get(resource_name)]
                .into_iter()
                .flatten()
                .collect();
        // The principal's ancestors matter only where policies are scoped to a principal.
        let ancestors: Vec<&EntityUid> = if buckets.iter().any(|b| !b.by_principal.is_empty()) {
            self.org
                .entities
                .ancestors(principal)
                .map(Iterator::collect)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let sets: Vec<&PolicySet> = buckets
            .iter()
            .flat_map(|bucket| bucket.matching(principal, &ancestors))
            .collect();
        if sets.is_empty() {
            // No policy can apply: Cedar would deny with no determining policy.
            return Outcome::default();
        }
        let context = match Context::from_pairs(pairs) {
            Ok(context) => context,
            Err(err) => return failed(format!("the request context is invalid: {err}")),
        };
        let Some(action_uid) = self.org.actions.get(action as usize).cloned() else {
            return failed(format!("no entity for action `{action}` (a bug in latch)"));
        };
        // Debug builds (the tests) check every request against the schema, so a context that
        // drifts from `latch.cedarschema` fails a test instead of evaluating oddly.
        let schema = cfg!(debug_assertions).then_some(&self.schema);
        let request = match Request::new(
            principal.clone(),
            action_uid,
            resource.clone(),
            context,
            schema,
        ) {
            Ok(request) => request,
            Err(err) => return failed(format!("the request is invalid: {err}")),
        };
        let mut permits = Vec::new();
        let mut forbids = Vec::new();
        let mut errors = Vec::new();
        for set in sets {
            let response = self
                .authorizer
                .is_authorized(&request, set, &self.org.entities);
            let satisfied = response.diagnostics().reason().cloned();
            match response.decision() {
                CedarDecision::Allow => permits.extend(satisfied),
                CedarDecision::Deny => forbids.extend(satisfied),
            }
            errors.extend(response.diagnostics().errors().map(|error| match error {
                AuthorizationError::PolicyEvaluationError(inner) => {
                    (Some(inner.policy_id().clone()), error.to_string())
                }
            }));
        }
        let allowed = forbids.is_empty() && !permits.is_empty();
        let mut determining = if forbids.is_empty() { permits } else { forbids };
        determining.sort_by_key(|id| self.sort_key(id));
        Outcome {
            allowed,
            determining,
            errors,
        }
    }

    fn sort_key(&self, id: &PolicyId) -> (String, usize, String) {
        match self.meta.get(id) {
            Some(meta) => (meta.file.clone(), meta.line, meta.id.clone()),
            None => (String::new(), 0, id.to_string()),
        }
    }

    pub(crate) fn policy_ref(&self, id: &PolicyId) -> PolicyRef {
        match self.meta.get(id) {
            Some(meta) => PolicyRef {
                id: meta.id.clone(),
                file: meta.file.clone(),
                line: meta.line,
            },
            None => PolicyRef {
                id: id.to_string(),
                file: "(unknown)".to_owned(),
                line: 0,
            },
        }
    }

    fn meta_of(&self, id: &str) -> Option<&crate::engine::PolicyMeta> {
        if id.starts_with(RESERVED_ID_PREFIX) {
            return None;
        }
        self.meta.get(&PolicyId::new(id))
    }

    /// Turns Cedar's outcome into a decision; any evaluation error denies (fail closed).
    fn decision(&self, outcome: Outcome, what: &str) -> Decision {
        if !outcome.errors.is_empty() {
            let mut determining: Vec<PolicyRef> = outcome
                .errors
                .iter()
                .filter_map(|(id, _)| id.as_ref().map(|id| self.policy_ref(id)))
                .collect();
            determining.dedup();
            let reasons = outcome
                .errors
                .into_iter()
                .map(|(id, message)| match id {
                    Some(id) => format!(
                        "denied because policy {} could not be evaluated (decisions fail closed): {message}",
                        self.policy_ref(&id)
                    ),
                    None => format!("denied because the decision could not be evaluated (decisions fail closed): {message}"),
                })
                .collect();
            return Decision {
                allowed: false,
                reasons,
                determining,
            };
        }
        let determining: Vec<PolicyRef> = outcome
            .determining
            .iter()
            .map(|id| self.policy_ref(id))
            .collect();
        if outcome.allowed {
            let reasons = determining
                .iter()
                .map(|p| format!("permitted by policy {p}"))
                .collect();
            return Decision {
                allowed: true,
                reasons,
                determining,
            };
        }
        if determining.is_empty() {
            return Decision::deny(format!("no policy permits {what}"));
        }
        let reasons = outcome
            .determining
            .iter()
            .map(|id| {
                let reference = self.policy_ref(id);
                match self.meta.get(id).and_then(|m| m.reason.as_deref()) {
                    Some(reason) => format!("{reason} (policy {reference})"),
                    None => format!("forbidden by policy {reference}"),
                }
            })
            .collect();
        Decision {
            allowed: false,
            reasons,
            determining,
        }
    }

    /// Combines the annotations of the determining permits (see [`Requirements`]).
    fn requirements(&self, permits: &[PolicyRef]) -> Requirements {
        let mut requirements = Requirements::default();
        let mut groups = std::collections::BTreeSet::new();
        let mut every_auto = !permits.is_empty();
        for permit in permits {
            let Some(meta) = self.meta_of(&permit.id) else {
                every_auto = false;
                continue;
            };
            if meta.effect != Effect::Permit {
                continue;
            }
            let annotated = &meta.requirements;
            if let Some(max) = annotated.max_duration {
                requirements.max_duration =
                    Some(requirements.max_duration.map_or(max, |m| m.min(max)));
            }
            if let Some(n) = annotated.approvals {
                requirements.approvals = requirements.approvals.max(n);
            }
            groups.extend(annotated.approver_groups.iter().cloned());
            every_auto &= annotated.auto_approve == Some(true);
        }
        requirements.approver_groups = groups.into_iter().collect();
        requirements.approvals = requirements
            .approvals
            .max(u32::try_from(requirements.approver_groups.len()).unwrap_or(u32::MAX));
        requirements.auto_approve = every_auto;
        requirements
    }
}
