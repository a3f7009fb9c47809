//! The organisation as Cedar entities: users, service accounts, teams, resources and roles built
//! from a [`Catalog`] plus the facts the catalog does not carry ([`OrgFacts`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;

use cedar_policy::{
    Entities, Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression, Schema,
};
use latch_core::Catalog;

/// What the policy engine knows about the organisation beyond the [`Catalog`]: who is on call,
/// which users are machines, and the labels of resources. Every field defaults to empty, and a
/// resource without labels gets [`ResourceLabels::default`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrgFacts {
    /// Users on the on-call list (`User.on_call`, `context.requester_on_call`).
    pub on_call: BTreeSet<String>,
    /// Catalog users that are machines or AI agents: they become `Latch::ServiceAccount`
    /// entities, may request and connect, and never approve.
    pub service_accounts: BTreeSet<String>,
    /// Labels per resource name.
    pub resources: BTreeMap<String, ResourceLabels>,
}

impl OrgFacts {
    /// Facts with only an on-call list.
    pub fn with_on_call<I, S>(on_call: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            on_call: on_call.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    fn labels(&self, resource: &str) -> ResourceLabels {
        self.resources.get(resource).cloned().unwrap_or_default()
    }
}

/// Labels of a resource that policies may test.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResourceLabels {
    /// `Resource.sensitivity`; default `normal`.
    pub sensitivity: String,
    /// `Resource.environment`; default `production` (assume the worst).
    pub environment: String,
    /// The regular expression a whole ticket reference for this resource must match, e.g.
    /// `^INC-[0-9]+$` (`Resource.requires_ticket`); `context.ticket_matches` tells whether the
    /// request's ticket does. Without a pattern any ticket matches.
    pub ticket_pattern: Option<latch_core::TicketPattern>,
}

impl Default for ResourceLabels {
    fn default() -> Self {
        Self {
            sensitivity: "normal".to_owned(),
            environment: "production".to_owned(),
            ticket_pattern: None,
        }
    }
}

/// The entity type names of the schema, parsed once.
#[derive(Clone, Debug)]
pub(crate) struct Types {
    pub user: EntityTypeName,
    pub service_account: EntityTypeName,
    pub team: EntityTypeName,
    pub resource: EntityTypeName,
    pub role: EntityTypeName,
    pub action: EntityTypeName,
}

impl Types {
    pub fn new() -> Result<Self, String> {
        let name = |text: &str| {
            EntityTypeName::from_str(text).map_err(|err| format!("entity type `{text}`: {err}"))
        };
        Ok(Self {
            user: name("Latch::User")?,
            service_account: name("Latch::ServiceAccount")?,
            team: name("Latch::Team")?,
            resource: name("Latch::Resource")?,
            role: name("Latch::Role")?,
            action: name("Latch::Action")?,
        })
    }

    pub fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    }
}

/// The id of the entity of role `role` on `resource`.
pub(crate) fn role_id(resource: &str, role: &str) -> String {
    format!("{resource}/{role}")
}

/// The organisation as the engine uses it: the Cedar entities and quick lookups for building
/// requests.
#[derive(Debug)]
pub(crate) struct Org {
    pub catalog: Catalog,
    pub facts: OrgFacts,
    pub types: Types,
    pub entities: Entities,
    /// Principal uid (User or ServiceAccount) by user name.
    pub principals: HashMap<String, EntityUid>,
    /// Role uid by resource then role name.
    pub roles: HashMap<String, HashMap<String, EntityUid>>,
    /// Resource uid by name.
    pub resources: HashMap<String, EntityUid>,
    /// Resource name by role entity id, to index policies scoped to a role.
    pub resource_of_role: HashMap<String, String>,
    /// Members of each team, its sub-teams included.
    pub members: HashMap<String, BTreeSet<String>>,
    /// The uid of each action, in `Action::ALL` order.
    pub actions: Vec<EntityUid>,
}

impl Org {
    pub fn build(
        catalog: &Catalog,
        facts: &OrgFacts,
        schema: &Schema,
    ) -> Result<Self, Vec<String>> {
        let types = Types::new().map_err(|err| vec![err])?;
        let mut problems = Vec::new();
        let is_machine = |name: &str| facts.service_accounts.contains(name);
        for name in &facts.service_accounts {
            if !catalog.users.contains_key(name) {
                problems.push(format!(
                    "service account `{name}` is not a user of the organisation"
                ));
            }
        }
        for name in &facts.on_call {
            if !catalog.users.contains_key(name) {
                problems.push(format!(
                    "on-call user `{name}` is not a user of the organisation"
                ));
            }
        }
        for name in facts.resources.keys() {
            if !catalog.resources.contains_key(name) {
                problems.push(format!(
                    "labels for unknown resource `{name}` (resources: {})",
                    list(catalog.resources.keys())
                ));
            }
        }
        let user_uid = |name: &str| Types::uid(&types.user, name);
        let team_uid = |name: &str| Types::uid(&types.team, name);
        let mut entities = Vec::new();
        for team in catalog.teams.values() {
            let mut leads = Vec::new();
            for lead in &team.leads {
                if is_machine(lead) {
                    problems.push(format!(
                        "team `{}`: lead `{lead}` is a service account; leads are people",
                        team.name
                    ));
                } else if !catalog.users.contains_key(lead) {
                    problems.push(format!("team `{}`: unknown lead `{lead}`", team.name));
                }
                leads.push(RestrictedExpression::new_entity_uid(user_uid(lead)));
            }
            let mut attrs =
                HashMap::from([("leads".to_owned(), RestrictedExpression::new_set(leads))]);
            let mut parents = std::collections::HashSet::new();
            if let Some(parent) = &team.parent {
                if !catalog.teams.contains_key(parent) {
                    problems.push(format!("team `{}`: unknown parent `{parent}`", team.name));
                }
                attrs.insert(
                    "parent".to_owned(),
                    RestrictedExpression::new_entity_uid(team_uid(parent)),
                );
                parents.insert(team_uid(parent));
            }
            push_entity(
                &mut entities,
                &mut problems,
                team_uid(&team.name),
                attrs,
                parents,
            );
        }
        let mut principals = HashMap::new();
        for user in catalog.users.values() {
            let ty = if is_machine(&user.name) {
                &types.service_account
            } else {
                &types.user
            };
            let uid = Types::uid(ty, &user.name);
            let roles = user
                .roles
                .iter()
                .map(|role| RestrictedExpression::new_string(role.as_str().to_owned()));
            let mut attrs = HashMap::from([
                (
                    "email".to_owned(),
                    RestrictedExpression::new_string(user.email.clone()),
                ),
                ("roles".to_owned(), RestrictedExpression::new_set(roles)),
                (
                    "on_call".to_owned(),
                    RestrictedExpression::new_bool(facts.on_call.contains(&user.name)),
                ),
            ]);
            if let Some(manager) = &user.manager {
                if is_machine(manager) {
                    problems.push(format!(
                        "user `{}`: manager `{manager}` is a service account; managers are people",
                        user.name
                    ));
                } else if !catalog.users.contains_key(manager) {
                    problems.push(format!("user `{}`: unknown manager `{manager}`", user.name));
                }
                attrs.insert(
                    "manager".to_owned(),
                    RestrictedExpression::new_entity_uid(user_uid(manager)),
                );
            }
            let mut parents = std::collections::HashSet::new();
            for team in &user.teams {
                if !catalog.teams.contains_key(team) {
                    problems.push(format!("user `{}`: unknown team `{team}`", user.name));
                }
                parents.insert(team_uid(team));
            }
            principals.insert(user.name.clone(), uid.clone());
            push_entity(&mut entities, &mut problems, uid, attrs, parents);
        }
        let mut resources = HashMap::new();
        let mut roles = HashMap::new();
        let mut resource_of_role = HashMap::new();
        for resource in catalog.resources.values() {
            let labels = facts.labels(&resource.name);
            if !catalog.teams.contains_key(&resource.owner_team) {
                problems.push(format!(
                    "resource `{}`: unknown owner team `{}`",
                    resource.name, resource.owner_team
                ));
            }
            let uid = Types::uid(&types.resource, &resource.name);
            let attrs = HashMap::from([
                (
                    "kind".to_owned(),
                    RestrictedExpression::new_string(resource.kind.as_str().to_owned()),
                ),
                (
                    "owner".to_owned(),
                    RestrictedExpression::new_entity_uid(team_uid(&resource.owner_team)),
                ),
                (
                    "sensitivity".to_owned(),
                    RestrictedExpression::new_string(labels.sensitivity),
                ),
                (
                    "requires_ticket".to_owned(),
                    RestrictedExpression::new_bool(labels.ticket_pattern.is_some()),
                ),
                (
                    "environment".to_owned(),
                    RestrictedExpression::new_string(labels.environment),
                ),
            ]);
            push_entity(
                &mut entities,
                &mut problems,
                uid.clone(),
                attrs,
                std::collections::HashSet::new(),
            );
            let mut by_name = HashMap::new();
            for role in resource.roles.values() {
                let id = role_id(&resource.name, &role.name);
                let role_uid = Types::uid(&types.role, &id);
                let attrs = HashMap::from([
                    (
                        "name".to_owned(),
                        RestrictedExpression::new_string(role.name.clone()),
                    ),
                    (
                        "max_duration_secs".to_owned(),
                        RestrictedExpression::new_long(clamp_long(role.max_duration.as_secs())),
                    ),
                    (
                        "resource".to_owned(),
                        RestrictedExpression::new_entity_uid(uid.clone()),
                    ),
                ]);
                push_entity(
                    &mut entities,
                    &mut problems,
                    role_uid.clone(),
                    attrs,
                    std::collections::HashSet::from([uid.clone()]),
                );
                resource_of_role.insert(id, resource.name.clone());
                by_name.insert(role.name.clone(), role_uid);
            }
            roles.insert(resource.name.clone(), by_name);
            resources.insert(resource.name.clone(), uid);
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let entities = Entities::from_entities(entities, Some(schema))
            .map_err(|err| vec![format!("the organisation does not fit the schema: {err}")])?;
        let members = team_members(catalog);
        let actions = crate::decide::Action::ALL
            .iter()
            .map(|action| Types::uid(&types.action, action.as_str()))
            .collect();
        Ok(Self {
            actions,
            catalog: catalog.clone(),
            facts: facts.clone(),
            types,
            entities,
            principals,
            roles,
            resources,
            resource_of_role,
            members,
        })
    }

    pub fn is_service_account(&self, name: &str) -> bool {
        self.facts.service_accounts.contains(name)
    }

    pub fn on_call(&self, name: &str) -> bool {
        self.facts.on_call.contains(name)
    }

    pub fn role_uid(&self, resource: &str, role: &str) -> Option<&EntityUid> {
        self.roles.get(resource).and_then(|roles| roles.get(role))
    }

    /// Whether `ancestor` is somewhere up the manager chain of `user`.
    pub fn manages(&self, ancestor: &str, user: &str) -> bool {
        let mut current = user;
        // The chain is at most as long as the organisation; a cycle (refused by the config)
        // cannot loop forever.
        for _ in 0..self.catalog.users.len() {
            match self
                .catalog
                .users
                .get(current)
                .and_then(|u| u.manager.as_deref())
            {
                Some(manager) if manager == ancestor => return true,
                Some(manager) => current = manager,
                None => return false,
            }
        }
        false
    }

    pub fn leads_owner(&self, user: &str, resource: &str) -> bool {
        self.catalog
            .resources
            .get(resource)
            .is_some_and(|r| self.catalog.leads_team(user, &r.owner_team))
    }

    /// Whether `user` belongs to `team` or to one of its sub-teams.
    pub fn is_member(&self, user: &str, team: &str) -> bool {
        self.members
            .get(team)
            .is_some_and(|members| members.contains(user))
    }

    pub fn ticket_matches(&self, resource: &str, ticket: Option<&str>) -> bool {
        let Some(ticket) = ticket else {
            return false;
        };
        match self
            .facts
            .resources
            .get(resource)
            .and_then(|labels| labels.ticket_pattern.as_ref())
        {
            Some(pattern) => pattern.matches(ticket),
            None => true,
        }
    }
}

fn push_entity(
    entities: &mut Vec<Entity>,
    problems: &mut Vec<String>,
    uid: EntityUid,
    attrs: HashMap<String, RestrictedExpression>,
    parents: std::collections::HashSet<EntityUid>,
) {
    match Entity::new(uid.clone(), attrs, parents) {
        Ok(entity) => entities.push(entity),
        Err(err) => problems.push(format!("entity `{uid}`: {err}")),
    }
}

/// Seconds as a Cedar `Long` (durations are at most a year, far below `i64::MAX`).
pub(crate) fn clamp_long(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Every team's members, including those of its sub-teams.
fn team_members(catalog: &Catalog) -> HashMap<String, BTreeSet<String>> {
    let mut members: HashMap<String, BTreeSet<String>> = HashMap::new();
    for user in catalog.users.values() {
        for team in &user.teams {
            let mut current = Some(team.as_str());
            // Bounded by the number of teams: a parent cycle (refused by the config) ends here.
            for _ in 0..=catalog.teams.len() {
                let Some(name) = current else { break };
                members
                    .entry(name.to_owned())
                    .or_default()
                    .insert(user.name.clone());
                current = catalog.teams.get(name).and_then(|t| t.parent.as_deref());
            }
        }
    }
    members
}

/// `*` matches any run of characters (possibly empty); everything else matches itself.
/// A comma-separated list of names, at most ten of them.
pub(crate) fn list<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    let mut names = names.into_iter();
    let shown: Vec<&str> = names.by_ref().take(10).map(String::as_str).collect();
    let more = names.count();
    if shown.is_empty() {
        return "none".to_owned();
    }
    if more > 0 {
        format!("{}, … ({more} more)", shown.join(", "))
    } else {
        shown.join(", ")
    }
}
