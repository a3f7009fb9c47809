//! The seam between the lifecycle and a policy engine: who may request what, with how many
//! approvals, who may approve and revoke. The lifecycle asks; it never needs to know how the
//! answer is reached. Without an engine, the built-in rule of [`Catalog`](crate::Catalog)
//! applies.

use std::fmt;
use std::sync::Arc;

use crate::{AccessDuration, AccessRequest, Timestamp};

/// A policy's answer, with the ids of the policies that determined it (recorded in the ledger).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// Why, for the person refused (or the auditor reading an allowed decision).
    pub reason: String,
    pub policies: Vec<String>,
}

/// The answer to a request, with what it requires when allowed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestVerdict {
    pub verdict: Verdict,
    /// Distinct approvals needed (at least 1).
    pub approvals: u32,
    /// A policy's maximum, when stricter than the role's.
    pub max_duration: Option<AccessDuration>,
    /// Teams that must each count an approver among the approvals (multi-party approval).
    pub approver_groups: Vec<String>,
    /// Granted at once, without an approver (e.g. a low-risk read in business hours).
    pub auto_approve: bool,
}

/// What a request asks for, as a policy sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestFacts<'a> {
    pub requester: &'a str,
    pub resource: &'a str,
    pub role: &'a str,
    pub duration: AccessDuration,
    pub ticket: Option<&'a str>,
    /// The requester's other requests.
    pub history: crate::lifecycle::RequesterHistory,
    pub now: Timestamp,
}

/// A policy engine. Implementations must be pure and fail closed: an error is a refusal that
/// says why.
pub trait AccessPolicy: Send + Sync {
    fn request(&self, facts: &RequestFacts<'_>) -> RequestVerdict;
    fn approve(&self, approver: &str, request: &AccessRequest, now: Timestamp) -> Verdict;
    fn revoke(&self, actor: &str, request: &AccessRequest, now: Timestamp) -> Verdict;
    /// May the requester approve their own `request` (break-glass)?
    fn self_approve(&self, request: &AccessRequest, now: Timestamp) -> Verdict;
    /// The teams of `groups` that none of `approvers` belongs to (sub-teams count).
    fn missing_groups(&self, approvers: &[String], groups: &[String]) -> Vec<String>;
    /// May `user` read the audit trail (requests, grants, sessions) of `resource`? Without an
    /// override (`None`): the leads of its owner team, as the built-in rule says.
    fn view_audit(&self, user: &str, resource: &str) -> Option<bool> {
        let _ = (user, resource);
        None
    }
    /// May `user` open a gateway session under an active grant for `role` on `resource` now
    /// (access windows, say)? Without an override, the grant is enough.
    fn connect(&self, user: &str, resource: &str, role: &str, now: Timestamp) -> Verdict {
        let _ = (user, resource, role, now);
        Verdict {
            allowed: true,
            reason: "an active grant is enough".to_owned(),
            policies: Vec::new(),
        }
    }
}

/// A shared engine inside the [`Catalog`](crate::Catalog). Two catalogs are equal only if they
/// share the same engine.
#[derive(Clone)]
pub struct SharedPolicy(pub Arc<dyn AccessPolicy>);

impl fmt::Debug for SharedPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedPolicy(..)")
    }
}

impl PartialEq for SharedPolicy {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedPolicy {}
