//! Loading a policy set: every file parsed and validated against the schema, annotations and
//! entity references checked, policies indexed by action and resource, and a set that would let
//! someone approve their own request refused. Every problem is reported with file, line and
//! column.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use cedar_policy::{
    ActionConstraint, Authorizer, Effect, EntityUid, Policy, PolicyId, PolicySet,
    PrincipalConstraint, ResourceConstraint, Schema, ValidationMode, Validator,
};
use latch_core::{AccessDuration, Catalog};
use miette::Diagnostic;
use sha2::{Digest, Sha256};

use crate::decide::Action;
use crate::org::{Org, OrgFacts, list};

/// The schema every policy is validated against (`schema/latch.cedarschema`).
pub const SCHEMA: &str = include_str!("../schema/latch.cedarschema");

/// Policy ids starting with this are latch's own (the built-in guards); `@id` may not use it.
pub const RESERVED_ID_PREFIX: &str = "latch:";

/// Annotations latch understands; any other is refused, so that a typo such as `@aprovals`
/// cannot silently drop a requirement.
pub const KNOWN_ANNOTATIONS: [&str; 7] = [
    "id",
    "description",
    "reason",
    "max_duration",
    "approvals",
    "approver_groups",
    "auto_approve",
];

/// Most approvals a policy may require: more is a typo, not a process.
pub const MAX_APPROVALS: u32 = 10;

/// Why a policy set was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Something in the policy files is wrong.
    ///
    /// INVARIANT: `problems` is not empty and is sorted by file (in the order given) and position.
    #[error("{}", render(.problems))]
    Invalid { problems: Vec<Problem> },
    /// The organisation cannot be turned into entities (a name the catalog refers to is missing);
    /// the config normally refuses this first.
    #[error("the organisation cannot be used by the policy engine: {}", .0.join("; "))]
    Organisation(Vec<String>),
    /// The schema shipped in this crate does not parse: a bug in latch.
    #[error("the built-in policy schema is invalid: {0}")]
    Schema(String),
}

impl PolicyError {
    /// Every problem in the policy files (empty for the other kinds of error).
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Invalid { problems } => problems,
            Self::Organisation(_) | Self::Schema(_) => &[],
        }
    }
}

fn render(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One thing wrong with a policy file, displayed as `file:line:column: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The policy file, as it was given to [`PolicyEngine::load`].
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// The id of the policy at fault, when the problem is in one policy.
    pub policy: Option<String>,
    /// What was wrong and what to do; lowercase, user input in backticks.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// Where a policy came from and what it carries besides its effect.
#[derive(Clone, Debug)]
pub(crate) struct PolicyMeta {
    pub id: String,
    pub file: String,
    pub line: usize,
    pub effect: Effect,
    /// `@reason`: what a denying `forbid` tells the user.
    pub reason: Option<String>,
    pub requirements: Annotated,
}

/// The requirement annotations of one permit policy, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Annotated {
    pub max_duration: Option<AccessDuration>,
    pub approvals: Option<u32>,
    pub approver_groups: Vec<String>,
    pub auto_approve: Option<bool>,
}

impl Annotated {
    fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// The policies that can apply to one action, bucketed by the scope they name so that a decision
/// evaluates only those that can match it (Cedar evaluates every policy of a set it is given,
/// cloning its condition each time, so the cost of a decision is the number of policies tried).
///
/// A policy scoped to one resource (`resource in Latch::Resource::"r"`, or `==` / `in` one of
/// its roles) goes under `by_resource[r]`, any other under `generic`; within those, a policy
/// scoped to one principal or group (`principal == Latch::User::"u"`,
/// `principal in Latch::Team::"t"`) goes under `by_principal[that entity]`, any other under
/// `any`. A request by `u` on `r` is evaluated against the `any` and `by_principal[e]` sets, for
/// `e` being `u` and each of its ancestors, of `generic` and `by_resource[r]`. A policy left out
/// has a scope that cannot match the request, so the decision is the same as over the whole set.
#[derive(Debug, Default)]
pub(crate) struct ActionIndex {
    pub generic: PrincipalIndex,
    pub by_resource: HashMap<String, PrincipalIndex>,
}

/// Policies of one resource bucket, by the principal their scope names.
#[derive(Debug, Default)]
pub(crate) struct PrincipalIndex {
    pub any: PolicySet,
    pub by_principal: HashMap<EntityUid, PolicySet>,
}

impl PrincipalIndex {
    /// Every set of the bucket.
    pub fn sets(&self) -> impl Iterator<Item = &PolicySet> {
        std::iter::once(&self.any).chain(self.by_principal.values())
    }

    /// The sets that can apply to a principal with these ancestors (itself included).
    pub fn matching<'a>(
        &'a self,
        principal: &'a EntityUid,
        ancestors: &'a [&'a EntityUid],
    ) -> impl Iterator<Item = &'a PolicySet> {
        let named = std::iter::once(principal)
            .chain(ancestors.iter().copied())
            .filter_map(|uid| self.by_principal.get(uid));
        std::iter::once(&self.any)
            .chain(named)
            .filter(|set| !set.is_empty())
    }
}

impl ActionIndex {
    /// Every set of every bucket.
    pub fn sets(&self) -> impl Iterator<Item = &PolicySet> {
        self.generic
            .sets()
            .chain(self.by_resource.values().flat_map(PrincipalIndex::sets))
    }
}

/// A validated policy set with the organisation it decides about. Pure: no IO, no clock.
#[derive(Debug)]
pub struct PolicyEngine {
    pub(crate) schema: Schema,
    pub(crate) org: Org,
    pub(crate) meta: HashMap<PolicyId, PolicyMeta>,
    /// One index per [`Action`], in [`Action::ALL`] order.
    pub(crate) index: Vec<ActionIndex>,
    pub(crate) policy_count: usize,
    pub(crate) hash: String,
    pub(crate) files: Vec<String>,
    pub(crate) authorizer: Authorizer,
}

/// One parsed policy before ids are checked across files.
struct Loaded {
    policy: Policy,
    meta: PolicyMeta,
    file_index: usize,
    /// Byte offset of the policy in its file.
    offset: usize,
}

impl PolicyEngine {
    /// Parses and validates `files` (path as it should appear in messages and policy ids, text),
    /// builds the organisation's entities from `catalog` and `facts`, and refuses the set with
    /// every problem found.
    pub fn load(
        files: &[(PathBuf, String)],
        catalog: &Catalog,
        facts: &OrgFacts,
    ) -> Result<Self, PolicyError> {
        let schema = schema()?;
        let org = Org::build(catalog, facts, &schema).map_err(PolicyError::Organisation)?;
        let mut problems: Vec<(usize, usize, Problem)> = Vec::new();
        let mut loaded: Vec<Loaded> = Vec::new();
        let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
        for (file_index, (path, text)) in files.iter().enumerate() {
            let mut report = |offset: usize, policy: Option<String>, message: String| {
                let (line, column) = line_column(text, offset);
                problems.push((
                    file_index,
                    offset,
                    Problem {
                        file: path.clone(),
                        line,
                        column,
                        policy,
                        message,
                    },
                ));
            };
            let set = match PolicySet::from_str(text) {
                Ok(set) => set,
                Err(errors) => {
                    for error in errors.iter() {
                        report(first_offset(error), None, message_of(error));
                    }
                    continue;
                }
            };
            let file = path.display().to_string();
            let mut cursor = 0;
            for number in 0..set.num_of_policies() {
                let Some(policy) = set.policy(&PolicyId::new(format!("policy{number}"))) else {
                    report(
                        0,
                        None,
                        format!("policy number {number} is missing after parsing (a bug in latch)"),
                    );
                    continue;
                };
                let source = policy.to_cedar().unwrap_or_default();
                let offset = locate(text, &source, cursor);
                cursor = offset + source.len();
                let (line, _) = line_column(text, offset);
                let id = match policy.annotation("id") {
                    Some(id) => id.to_owned(),
                    None => format!("{file}:{line}"),
                };
                let at = |needle: &str| offset + find_in_policy(&source, needle);
                if id.trim().is_empty() {
                    report(
                        at("@id"),
                        None,
                        "`@id` is empty: give the policy a name".to_owned(),
                    );
                    continue;
                }
                if policy.annotation("id").is_some() && id.starts_with(RESERVED_ID_PREFIX) {
                    report(
                        at("@id"),
                        Some(id.clone()),
                        format!(
                            "policy id `{id}` starts with `{RESERVED_ID_PREFIX}`, which is reserved for latch's built-in rules: choose another"
                        ),
                    );
                    continue;
                }
                if let Some((other_file, other_offset)) = seen.get(&id) {
                    let (other_path, other_text) = files
                        .get(*other_file)
                        .map(|(p, t)| (p.display().to_string(), t.as_str()))
                        .unwrap_or_default();
                    let (other_line, other_column) = line_column(other_text, *other_offset);
                    report(
                        at("@id"),
                        Some(id.clone()),
                        format!(
                            "duplicate policy id `{id}` (also at {other_path}:{other_line}:{other_column}): ids name policies in decisions and the ledger, so each must be unique"
                        ),
                    );
                    continue;
                }
                seen.insert(id.clone(), (file_index, offset));
                let (requirements, reason) = match annotations(policy, &org) {
                    Ok(parsed) => parsed,
                    Err(found) => {
                        for (needle, message) in found {
                            report(at(&needle), Some(id.clone()), message);
                        }
                        continue;
                    }
                };
                let meta = PolicyMeta {
                    id: id.clone(),
                    file: file.clone(),
                    line,
                    effect: policy.effect(),
                    reason,
                    requirements,
                };
                loaded.push(Loaded {
                    policy: policy.new_id(PolicyId::new(&id)),
                    meta,
                    file_index,
                    offset,
                });
            }
        }
        let mut all = PolicySet::new();
        for item in &loaded {
            if let Err(err) = all.add(item.policy.clone()) {
                problems.push(problem_at(files, item, format!("{err}")));
            }
        }
        // Validate what parsed even when other files did not: every problem is reported at once.
        {
            let by_id: HashMap<&PolicyId, &Loaded> =
                loaded.iter().map(|item| (item.policy.id(), item)).collect();
            let result = Validator::new(schema.clone()).validate(&all, ValidationMode::Strict);
            let errors = result
                .validation_errors()
                .map(|e| (e.policy_id(), first_offset(e), message_of(e)));
            let warnings = result
                .validation_warnings()
                .map(|w| (w.policy_id(), first_offset(w), message_of(w)));
            for (policy_id, span, message) in errors.chain(warnings) {
                match by_id.get(policy_id) {
                    Some(item) => {
                        // A span of 0 means Cedar gave no location: point at the policy.
                        let offset = if span == 0 { item.offset } else { span };
                        problems.push(problem_at_offset(files, item, offset, message));
                    }
                    None => problems.push((
                        0,
                        0,
                        Problem {
                            file: files.first().map(|(p, _)| p.clone()).unwrap_or_default(),
                            line: 1,
                            column: 1,
                            policy: Some(policy_id.to_string()),
                            message,
                        },
                    )),
                }
            }
            for item in &loaded {
                for message in unknown_entities(&item.policy, &org) {
                    let needle = message.1.clone();
                    let offset = item.offset
                        + item
                            .policy
                            .to_cedar()
                            .and_then(|text| text.find(&needle))
                            .unwrap_or(0);
                    problems.push(problem_at_offset(files, item, offset, message.0));
                }
            }
        }
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
        let index = build_index(&loaded, &org);
        let meta = loaded
            .iter()
            .map(|item| (item.policy.id().clone(), item.meta.clone()))
            .collect();
        let engine = Self {
            schema,
            org,
            meta,
            index,
            policy_count: loaded.len(),
            hash: hash(files),
            files: files.iter().map(|(p, _)| p.display().to_string()).collect(),
            authorizer: Authorizer::new(),
        };
        let self_approvals = crate::selfcheck::self_approvals(&engine);
        if !self_approvals.is_empty() {
            let by_id: HashMap<&str, &Loaded> = loaded
                .iter()
                .map(|item| (item.meta.id.as_str(), item))
                .collect();
            let problems = self_approvals
                .into_iter()
                .filter_map(|(id, message)| {
                    by_id
                        .get(id.as_str())
                        .map(|item| problem_at_offset(files, item, item.offset, message))
                })
                .collect();
            return Err(invalid(problems));
        }
        Ok(engine)
    }

    /// SHA-256 (hex) of the policy set: for each file sorted by path, the path's length (u64
    /// big-endian), the path, the text's length and the text. The ledger records it on every
    /// change.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The files the set was loaded from, as given.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// How many policies the set holds (latch's built-in guards not counted).
    pub fn policy_count(&self) -> usize {
        self.policy_count
    }

    /// The ids of every policy, sorted.
    pub fn policy_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.meta.values().map(|m| m.id.clone()).collect();
        ids.sort();
        ids
    }

    /// Whether `user` belongs to `team` or one of its sub-teams (approver groups are counted
    /// this way).
    pub fn is_member(&self, user: &str, team: &str) -> bool {
        self.org.is_member(user, team)
    }

    /// The approver groups not yet represented among `approvers` (each group needs one member).
    pub fn missing_groups<'a>(&self, approvers: &[String], groups: &'a [String]) -> Vec<&'a str> {
        groups
            .iter()
            .filter(|group| !approvers.iter().any(|a| self.org.is_member(a, group)))
            .map(String::as_str)
            .collect()
    }
}

/// Parses the schema shipped with the crate.
pub fn schema() -> Result<Schema, PolicyError> {
    Schema::from_cedarschema_str(SCHEMA)
        .map(|(schema, _warnings)| schema)
        .map_err(|err| PolicyError::Schema(err.to_string()))
}

fn invalid(mut problems: Vec<(usize, usize, Problem)>) -> PolicyError {
    problems.sort_by(|a, b| (a.0, a.1, &a.2.message).cmp(&(b.0, b.1, &b.2.message)));
    problems.dedup_by(|a, b| a.2 == b.2);
    PolicyError::Invalid {
        problems: problems.into_iter().map(|(_, _, p)| p).collect(),
    }
}

fn problem_at(
    files: &[(PathBuf, String)],
    item: &Loaded,
    message: String,
) -> (usize, usize, Problem) {
    problem_at_offset(files, item, item.offset, message)
}

fn problem_at_offset(
    files: &[(PathBuf, String)],
    item: &Loaded,
    offset: usize,
    message: String,
) -> (usize, usize, Problem) {
    let (path, text) = files
        .get(item.file_index)
        .map(|(p, t)| (p.clone(), t.as_str()))
        .unwrap_or_default();
    let (line, column) = line_column(text, offset);
    (
        item.file_index,
        offset,
        Problem {
            file: path,
            line,
            column,
            policy: Some(item.meta.id.clone()),
            message,
        },
    )
}

/// Where `source` (the text of one policy, an exact slice of `text`) starts, searching from
/// `cursor` and skipping matches inside a `//` comment.
fn locate(text: &str, source: &str, cursor: usize) -> usize {
    let mut from = cursor;
    while let Some(found) = text.get(from..).and_then(|rest| rest.find(source)) {
        let at = from + found;
        let line_start = text
            .get(..at)
            .and_then(|t| t.rfind('\n'))
            .map_or(0, |n| n + 1);
        let prefix = text.get(line_start..at).unwrap_or("");
        if !prefix.contains("//") {
            return at;
        }
        from = at + 1;
        if source.is_empty() {
            break;
        }
    }
    cursor
}

/// Where `needle` is in the text of a policy: an annotation (`@key`), or the effect keyword
/// (`permit`, `forbid`) where it starts the policy rather than inside an annotation's value.
fn find_in_policy(source: &str, needle: &str) -> usize {
    if needle.starts_with('@') {
        return source.find(needle).unwrap_or(0);
    }
    source
        .match_indices(needle)
        .map(|(at, _)| at)
        .find(|&at| {
            let before = source.get(..at).and_then(|b| b.chars().next_back());
            let after = source.get(at + needle.len()..).map(str::trim_start);
            before.is_none_or(char::is_whitespace) && after.is_some_and(|a| a.starts_with('('))
        })
        .unwrap_or(0)
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = text.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    let column = before.get(line_start..).unwrap_or("").chars().count() + 1;
    (line, column)
}

/// The offset of a diagnostic's first labelled span (0 when it has none).
fn first_offset(diagnostic: &dyn Diagnostic) -> usize {
    diagnostic
        .labels()
        .and_then(|mut labels| labels.next())
        .map_or(0, |label| label.offset())
}

/// Cedar's message, with its help when it gives one.
fn message_of(diagnostic: &dyn Diagnostic) -> String {
    let mut message = diagnostic.to_string();
    if let Some(help) = diagnostic.help() {
        message.push_str(": ");
        message.push_str(&help.to_string());
    }
    message
}

/// A problem in one policy, with the text (`@key`, `permit`, …) to point at.
type Located = (String, String);

/// Parses the annotations of one policy; on error, each problem with the text to point at.
fn annotations(policy: &Policy, org: &Org) -> Result<(Annotated, Option<String>), Vec<Located>> {
    let mut problems = Vec::new();
    let mut found = Annotated::default();
    for (key, _) in policy.annotations() {
        if !KNOWN_ANNOTATIONS.contains(&key) {
            problems.push((
                format!("@{key}"),
                format!(
                    "unknown annotation `@{key}` (latch knows: {})",
                    KNOWN_ANNOTATIONS
                        .iter()
                        .map(|k| format!("@{k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    let at = |key: &str| format!("@{key}");
    if let Some(text) = policy.annotation("max_duration") {
        match text.parse::<AccessDuration>() {
            Ok(duration) => found.max_duration = Some(duration),
            Err(err) => problems.push((at("max_duration"), format!("`@max_duration`: {err}"))),
        }
    }
    if let Some(text) = policy.annotation("approvals") {
        match text.trim().parse::<u32>() {
            Ok(n) if (1..=MAX_APPROVALS).contains(&n) => found.approvals = Some(n),
            _ => problems.push((
                at("approvals"),
                format!(
                    "`@approvals(\"{text}\")`: expected a whole number from 1 to {MAX_APPROVALS} (for no approval at all, use `@auto_approve(\"true\")`)"
                ),
            )),
        }
    }
    if let Some(text) = policy.annotation("approver_groups") {
        let mut groups = BTreeSet::new();
        for group in text.split(',').map(str::trim) {
            if group.is_empty() {
                problems.push((
                    at("approver_groups"),
                    format!(
                        "`@approver_groups(\"{text}\")`: expected team names separated by commas, e.g. `security, dba`"
                    ),
                ));
            } else if !org.catalog.teams.contains_key(group) {
                problems.push((
                    at("approver_groups"),
                    format!(
                        "`@approver_groups`: unknown team `{group}` (teams: {})",
                        list(org.catalog.teams.keys())
                    ),
                ));
            } else {
                groups.insert(group.to_owned());
            }
        }
        found.approver_groups = groups.into_iter().collect();
    }
    if let Some(text) = policy.annotation("auto_approve") {
        match text.trim() {
            "true" => found.auto_approve = Some(true),
            "false" => found.auto_approve = Some(false),
            _ => problems.push((
                at("auto_approve"),
                format!("`@auto_approve(\"{text}\")`: expected `true` or `false`"),
            )),
        }
    }
    if found.auto_approve == Some(true)
        && (found.approvals.is_some() || !found.approver_groups.is_empty())
    {
        problems.push((
            at("auto_approve"),
            "`@auto_approve(\"true\")` grants without approval, so `@approvals` and `@approver_groups` on the same policy contradict it: keep one or the other".to_owned(),
        ));
    }
    if !found.is_empty() {
        if policy.effect() == Effect::Forbid {
            problems.push((
                "forbid".to_owned(),
                "requirement annotations (`@max_duration`, `@approvals`, `@approver_groups`, `@auto_approve`) belong on a `permit` of the `request` action, not on a `forbid`".to_owned(),
            ));
        } else if !actions_of(policy).contains(&Action::Request) {
            problems.push((
                "permit".to_owned(),
                "requirement annotations (`@max_duration`, `@approvals`, `@approver_groups`, `@auto_approve`) only apply to the `request` action, which this policy cannot match".to_owned(),
            ));
        }
    }
    let reason = policy.annotation("reason").map(str::to_owned);
    if problems.is_empty() {
        Ok((found, reason))
    } else {
        Err(problems)
    }
}

/// Entity literals naming a user, team, resource or role the organisation does not have, as
/// (message, text to point at).
fn unknown_entities(policy: &Policy, org: &Org) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    for uid in policy.entity_literals() {
        if uid.type_name() == &org.types.action || !seen.insert(uid.to_string()) {
            continue;
        }
        if org.entities.get(&uid).is_some() {
            continue;
        }
        let id = uid.id().unescaped().to_owned();
        let types = &org.types;
        let ty = uid.type_name();
        let (what, known): (&str, Vec<&String>) =
            if ty == &types.user || ty == &types.service_account {
                let wanted_machine = ty == &types.service_account;
                let known = org
                    .catalog
                    .users
                    .keys()
                    .filter(|name| org.is_service_account(name) == wanted_machine)
                    .collect();
                if wanted_machine {
                    ("service account", known)
                } else {
                    ("user", known)
                }
            } else if ty == &types.team {
                ("team", org.catalog.teams.keys().collect())
            } else if ty == &types.resource {
                ("resource", org.catalog.resources.keys().collect())
            } else {
                let ids: Vec<&String> = org.resource_of_role.keys().collect();
                ("role", ids)
            };
        let mut known = known;
        known.sort();
        let hint = if what == "user" && org.is_service_account(&id) {
            format!(" (`{id}` is a service account: write `Latch::ServiceAccount::\"{id}\"`)")
        } else if what == "service account" && org.catalog.users.contains_key(&id) {
            format!(" (`{id}` is a person: write `Latch::User::\"{id}\"`)")
        } else {
            format!(" ({what}s: {})", list(known))
        };
        found.push((format!("unknown {what} `{id}`{hint}"), format!("\"{id}\"")));
    }
    found
}

/// The actions a policy's scope can match.
pub(crate) fn actions_of(policy: &Policy) -> Vec<Action> {
    let named = |uid: &EntityUid| Action::parse(uid.id().unescaped());
    match policy.action_constraint() {
        ActionConstraint::Any => Action::ALL.to_vec(),
        ActionConstraint::Eq(uid) => named(&uid).into_iter().collect(),
        ActionConstraint::In(uids) => uids.iter().filter_map(named).collect(),
    }
}

/// The resource a policy's scope limits it to, if it names one the organisation has.
fn resource_of(policy: &Policy, org: &Org) -> Option<String> {
    let uid = match policy.resource_constraint() {
        ResourceConstraint::Any | ResourceConstraint::Is(_) => return None,
        ResourceConstraint::Eq(uid)
        | ResourceConstraint::In(uid)
        | ResourceConstraint::IsIn(_, uid) => uid,
    };
    let id = uid.id().unescaped();
    if uid.type_name() == &org.types.resource && org.resources.contains_key(id) {
        Some(id.to_owned())
    } else if uid.type_name() == &org.types.role {
        org.resource_of_role.get(id).cloned()
    } else {
        None
    }
}

/// The entity a policy's principal scope limits it to (itself or its descendants), if any.
fn principal_of(policy: &Policy) -> Option<EntityUid> {
    match policy.principal_constraint() {
        PrincipalConstraint::Any | PrincipalConstraint::Is(_) => None,
        PrincipalConstraint::Eq(uid)
        | PrincipalConstraint::In(uid)
        | PrincipalConstraint::IsIn(_, uid) => Some(uid),
    }
}

fn build_index(loaded: &[Loaded], org: &Org) -> Vec<ActionIndex> {
    let mut index: Vec<ActionIndex> = Action::ALL.iter().map(|_| ActionIndex::default()).collect();
    for item in loaded {
        let resource = resource_of(&item.policy, org);
        let principal = principal_of(&item.policy);
        for action in actions_of(&item.policy) {
            let Some(slot) = index.get_mut(action as usize) else {
                continue;
            };
            let bucket = match &resource {
                Some(name) => slot.by_resource.entry(name.clone()).or_default(),
                None => &mut slot.generic,
            };
            let set = match &principal {
                Some(uid) => bucket.by_principal.entry(uid.clone()).or_default(),
                None => &mut bucket.any,
            };
            // Ids were checked unique above, so adding cannot fail.
            let _ = set.add(item.policy.clone());
        }
    }
    index
}

fn hash(files: &[(PathBuf, String)]) -> String {
    let mut sorted: Vec<(String, &str)> = files
        .iter()
        .map(|(p, t)| (p.display().to_string(), t.as_str()))
        .collect();
    sorted.sort();
    let mut hasher = Sha256::new();
    for (path, text) in sorted {
        for part in [path.as_bytes(), text.as_bytes()] {
            hasher.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
            hasher.update(part);
        }
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_count_characters() {
        let text = "ab\nc€d\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 3), (2, 1));
        assert_eq!(line_column(text, 7), (2, 3), "after a 3-byte character");
        assert_eq!(
            line_column(text, 5),
            (2, 2),
            "inside a character: its start"
        );
        assert_eq!(line_column(text, 100), (3, 1));
    }

    #[test]
    fn locating_a_policy_skips_a_copy_in_a_comment() {
        let text = "// permit(principal, action, resource);\npermit(principal, action, resource);";
        assert_eq!(locate(text, "permit(principal, action, resource);", 0), 40);
    }
}
