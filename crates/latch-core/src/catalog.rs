//! The organisation and the resources it protects, as the lifecycle sees them: validated, typed,
//! and free of anything the lifecycle does not decide on (upstream addresses and secrets live in
//! the config and the gateway).

use std::collections::{BTreeMap, BTreeSet};

use crate::AccessDuration;

/// A person or machine that can hold a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub email: String,
    pub teams: BTreeSet<String>,
    /// Approves the user's requests under the built-in rule.
    pub manager: Option<String>,
    pub roles: BTreeSet<UserRole>,
}

/// Organisation-wide roles (as opposed to a role on a resource).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UserRole {
    /// Sees everything, may revoke any grant, manages tokens.
    Admin,
    /// Sees everything, changes nothing.
    Auditor,
}

impl UserRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Auditor => "auditor",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "auditor" => Some(Self::Auditor),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Team {
    pub name: String,
    /// Approve requests on the resources the team owns.
    pub leads: BTreeSet<String>,
    pub parent: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    Postgres,
    Mysql,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceRole {
    pub name: String,
    pub max_duration: AccessDuration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    pub name: String,
    pub kind: ResourceKind,
    pub owner_team: String,
    pub roles: BTreeMap<String, ResourceRole>,
}

/// Everything the lifecycle needs to know about people and resources.
///
/// INVARIANT: every team, manager, lead and owner team named anywhere exists (the config checks
/// this before building a catalog).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    pub users: BTreeMap<String, User>,
    pub teams: BTreeMap<String, Team>,
    pub resources: BTreeMap<String, Resource>,
    /// How long a request may wait for a decision before it times out.
    pub pending_timeout: Option<AccessDuration>,
    /// How long a request may wait for an approval before it is escalated to the next level of
    /// approvers (and again after each further such period); `None`: never escalated.
    pub escalate_after: Option<AccessDuration>,
    /// The policy engine that decides requests, approvals and revocations; `None`: the built-in
    /// rule ([`Catalog::may_approve`], [`Catalog::may_revoke`], one approval, the role's max).
    pub policy: Option<crate::policy::SharedPolicy>,
}

impl Catalog {
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    pub fn has_role(&self, user: &str, role: UserRole) -> bool {
        self.users
            .get(user)
            .is_some_and(|user| user.roles.contains(&role))
    }

    /// Admins and auditors see every request, grant and event.
    pub fn sees_everything(&self, user: &str) -> bool {
        self.has_role(user, UserRole::Admin) || self.has_role(user, UserRole::Auditor)
    }

    pub fn leads_team(&self, user: &str, team: &str) -> bool {
        self.teams
            .get(team)
            .is_some_and(|team| team.leads.contains(user))
    }

    pub fn is_manager_of(&self, manager: &str, user: &str) -> bool {
        self.users
            .get(user)
            .and_then(|user| user.manager.as_deref())
            == Some(manager)
    }

    /// The built-in approval rule: a lead of the resource's owner team, or the requester's
    /// manager, and never the requester. (The policy engine will replace this.)
    pub fn may_approve(&self, approver: &str, requester: &str, resource: &str) -> bool {
        if approver == requester || !self.users.contains_key(approver) {
            return false;
        }
        let leads_owner = self
            .resources
            .get(resource)
            .is_some_and(|resource| self.leads_team(approver, &resource.owner_team));
        leads_owner || self.is_manager_of(approver, requester)
    }

    /// Who a request escalated to `level` (1 for the first escalation) brings in as approvers:
    /// the requester's manager's manager (going up one manager per level) and the leads of the
    /// owner team's parent team (one team up per level). Never the requester.
    pub fn escalation_approvers(&self, requester: &str, resource: &str, level: u32) -> Vec<String> {
        let mut found = BTreeSet::new();
        let mut manager = self.user(requester).and_then(|u| u.manager.clone());
        for _ in 0..level {
            manager = manager.and_then(|m| self.user(&m).and_then(|u| u.manager.clone()));
        }
        found.extend(manager);
        let mut team = self
            .resources
            .get(resource)
            .and_then(|r| self.teams.get(&r.owner_team));
        for _ in 0..level {
            team = team
                .and_then(|t| t.parent.as_deref())
                .and_then(|parent| self.teams.get(parent));
        }
        if let Some(team) = team {
            found.extend(team.leads.iter().cloned());
        }
        found.remove(requester);
        found.into_iter().collect()
    }

    /// Who may end a grant early: admins, whoever could have approved it, and the grantee.
    pub fn may_revoke(&self, actor: &str, grantee: &str, resource: &str) -> bool {
        actor == grantee
            || self.has_role(actor, UserRole::Admin)
            || self.may_approve(actor, grantee, resource)
    }

    /// The requests a user may see, as a filter a store can apply.
    pub fn visibility(&self, user: &str) -> Visibility {
        if self.sees_everything(user) {
            return Visibility::All;
        }
        let mut requesters: BTreeSet<String> = self
            .users
            .values()
            .filter(|other| other.manager.as_deref() == Some(user))
            .map(|other| other.name.clone())
            .collect();
        requesters.insert(user.to_owned());
        // Whose audit trail of a resource one reads is policy (`view_audit`) when there is one.
        let resources = self
            .resources
            .values()
            .filter(|resource| {
                self.policy
                    .as_ref()
                    .and_then(|policy| policy.0.view_audit(user, &resource.name))
                    .unwrap_or_else(|| self.leads_team(user, &resource.owner_team))
            })
            .map(|resource| resource.name.clone())
            .collect();
        Visibility::Some {
            requesters,
            resources,
        }
    }
}

/// Which requests a user may see: all, or those by some requesters or on some resources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Visibility {
    All,
    Some {
        requesters: BTreeSet<String>,
        resources: BTreeSet<String>,
    },
}

impl Visibility {
    pub fn allows(&self, requester: &str, resource: &str) -> bool {
        match self {
            Self::All => true,
            Self::Some {
                requesters,
                resources,
            } => requesters.contains(requester) || resources.contains(resource),
        }
    }
}
