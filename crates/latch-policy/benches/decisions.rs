//! Decision latency of the policy engine against the built-in rule it replaces.
//!
//! An organisation of 10,000 users in 500 teams six levels deep (each team led by its first
//! member, who manages the others and is managed by the parent team's lead), 200 resources
//! with two roles each, and 1,000 policies: the quickstart's default set plus 993 generated ones
//! (requirements, approver teams and caps scoped to a resource, and 60 unscoped ones that every
//! decision evaluates). Measures `decide_request` and `decide_approve` (median and p99 of single
//! calls) next to `Catalog::may_approve`, then the same with every policy unscoped (the cost
//! without the engine's per-resource index), and the load time (parse, validate, entities,
//! index, self-approval check).
//!
//! Run: `cargo bench -p latch-policy --bench decisions`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark: a broken setup should stop it loudly"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use latch_core::{
    AccessDuration, AccessRequest, Catalog, RequestState, Resource, ResourceKind, ResourceRole,
    Team, Timestamp, User, UserRole,
};
use latch_policy::{OrgFacts, PolicyEngine, RequestInput, ResourceLabels};

const USERS: usize = 10_000;
const TEAMS: usize = 500;
const LEVELS: usize = 6;
const RESOURCES: usize = 200;
const POLICIES: usize = 1_000;
const SAMPLES: usize = 20_000;
const UNSCOPED: usize = 60;

const DEFAULT_POLICY: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/quickstart/policies/default.cedar"
));

/// A small deterministic generator (xorshift64*), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }
}

fn team_name(i: usize) -> String {
    format!("t{i:03}")
}

fn user_name(i: usize) -> String {
    format!("u{i:05}")
}

fn resource_name(i: usize) -> String {
    format!("db{i:03}")
}

/// Team sizes per level: 1, 3, 9, 27, 81 and the rest (379) at the sixth.
fn team_levels() -> Vec<usize> {
    let mut levels = Vec::new();
    let mut width = 1;
    let mut total = 0;
    for level in 0..LEVELS {
        let count = if level + 1 == LEVELS {
            TEAMS - total
        } else {
            width
        };
        levels.push(count);
        total += count;
        width *= 3;
    }
    levels
}

fn organisation() -> (Catalog, OrgFacts) {
    let mut teams = BTreeMap::new();
    let mut parent_of = vec![None; TEAMS];
    let mut start = 0;
    let mut previous: Vec<usize> = Vec::new();
    for count in team_levels() {
        let current: Vec<usize> = (start..start + count).collect();
        for (k, &team) in current.iter().enumerate() {
            if !previous.is_empty() {
                parent_of[team] = Some(previous[k % previous.len()]);
            }
        }
        start += count;
        previous = current;
    }
    // 20 users per team; the first is the team's lead.
    let per_team = USERS / TEAMS;
    let lead_of = |team: usize| user_name(team * per_team);
    let mut users = BTreeMap::new();
    for i in 0..USERS {
        let team = i / per_team;
        let name = user_name(i);
        let manager = if i % per_team == 0 {
            parent_of[team].map(lead_of)
        } else {
            Some(lead_of(team))
        };
        let roles = match i {
            0 => BTreeSet::from([UserRole::Admin]),
            1 => BTreeSet::from([UserRole::Auditor]),
            _ => BTreeSet::new(),
        };
        users.insert(
            name.clone(),
            User {
                name: name.clone(),
                email: format!("{name}@example.com"),
                teams: BTreeSet::from([team_name(team)]),
                manager,
                roles,
            },
        );
    }
    for (team, parent) in parent_of.iter().enumerate() {
        teams.insert(
            team_name(team),
            Team {
                name: team_name(team),
                leads: BTreeSet::from([lead_of(team)]),
                parent: parent.map(team_name),
            },
        );
    }
    let mut resources = BTreeMap::new();
    let mut labels = BTreeMap::new();
    for r in 0..RESOURCES {
        let name = resource_name(r);
        let role = |role: &str, max: &str| {
            (
                role.to_owned(),
                ResourceRole {
                    name: role.to_owned(),
                    max_duration: max.parse().unwrap(),
                },
            )
        };
        resources.insert(
            name.clone(),
            Resource {
                name: name.clone(),
                kind: ResourceKind::Postgres,
                owner_team: team_name((r * 7) % TEAMS),
                roles: BTreeMap::from([role("read", "4h"), role("write", "1h")]),
            },
        );
        labels.insert(
            name,
            ResourceLabels {
                sensitivity: ["high", "low", "normal", "normal", "normal"][r % 5].to_owned(),
                environment: if r % 4 == 0 { "staging" } else { "production" }.to_owned(),
                ticket_pattern: (r % 3 == 0)
                    .then(|| latch_core::TicketPattern::new("INC-[0-9]+").unwrap()),
            },
        );
    }
    let catalog = Catalog {
        users,
        teams,
        resources,
        pending_timeout: None,
        escalate_after: None,
        policy: None,
    };
    let facts = OrgFacts {
        on_call: (0..USERS).step_by(97).map(user_name).collect(),
        service_accounts: BTreeSet::new(),
        resources: labels,
    };
    (catalog, facts)
}

/// The generated policies; `scoped` puts the resource in the scope (indexable) rather than in
/// the condition.
fn generated_policies(scoped: bool) -> String {
    let mut out = String::new();
    let default_count = DEFAULT_POLICY.matches("\n@id(").count();
    let mut rng = Rng(0x5eed);
    for n in 0..POLICIES - default_count {
        let resource = resource_name(n % RESOURCES);
        let team = team_name(rng.below(TEAMS));
        let (scope, guard) = if scoped && n >= UNSCOPED {
            (
                format!("resource in Latch::Resource::\"{resource}\""),
                String::new(),
            )
        } else if n < UNSCOPED {
            ("resource".to_owned(), String::new())
        } else {
            (
                "resource".to_owned(),
                format!("resource in Latch::Resource::\"{resource}\" && "),
            )
        };
        let policy = match n % 5 {
            _ if n < UNSCOPED => format!(
                "@id(\"g{n}\")\npermit (principal in Latch::Team::\"{team}\", action == Latch::Action::\"request\", resource)\nwhen {{ resource.resource.environment == \"staging\" && context.hour_utc >= {} && context.duration_secs <= resource.max_duration_secs }};\n",
                n % 12
            ),
            0 => format!(
                "@id(\"p{n}\")\n@approvals(\"2\")\n@approver_groups(\"{team}\")\n@max_duration(\"2h\")\npermit (principal, action == Latch::Action::\"request\", {scope})\nwhen {{ {guard}resource.name == \"write\" && resource.resource.sensitivity == \"high\" && context.duration_secs <= resource.max_duration_secs }};\n"
            ),
            1 => format!(
                "@id(\"p{n}\")\npermit (principal in Latch::Team::\"{team}\", action == Latch::Action::\"approve\", {scope})\nwhen {{ {guard}resource.resource.sensitivity == \"high\" }};\n"
            ),
            2 => format!(
                "@id(\"p{n}\")\n@reason(\"too many open requests on {resource}\")\nforbid (principal, action == Latch::Action::\"request\", {scope})\nwhen {{ {guard}context.open_requests >= {} }};\n",
                3 + n % 3
            ),
            3 => format!(
                "@id(\"p{n}\")\n@auto_approve(\"true\")\npermit (principal, action == Latch::Action::\"request\", {scope})\nwhen {{ {guard}resource.name == \"read\" && resource.resource.sensitivity == \"low\" && context.weekday <= 5 && context.hour_utc >= 9 && context.hour_utc < 17 }};\n"
            ),
            _ => format!(
                "@id(\"p{n}\")\npermit (principal, action == Latch::Action::\"self_approve\", {scope})\nwhen {{ {guard}principal.on_call && resource.name == \"read\" && context.duration_secs <= 1800 }};\n"
            ),
        };
        out.push_str(&policy);
    }
    out
}

struct Stats {
    median: Duration,
    p99: Duration,
    mean: Duration,
}

fn measure(samples: usize, mut call: impl FnMut(usize)) -> Stats {
    for i in 0..samples / 10 {
        call(i);
    }
    let mut times = Vec::with_capacity(samples);
    let started = Instant::now();
    for i in 0..samples {
        let t = Instant::now();
        call(i);
        times.push(t.elapsed());
    }
    let total = started.elapsed();
    times.sort();
    Stats {
        median: times[times.len() / 2],
        p99: times[times.len() * 99 / 100],
        mean: total / u32::try_from(samples).unwrap(),
    }
}

fn show(name: &str, stats: &Stats) -> String {
    format!(
        "{name:<44} median {:>9.2?}  p99 {:>9.2?}  mean {:>9.2?}\n",
        stats.median, stats.p99, stats.mean
    )
}

fn pending(requester: &str, resource: &str, role: &str) -> AccessRequest {
    AccessRequest {
        id: "req_1".to_owned(),
        requester: requester.to_owned(),
        resource: resource.to_owned(),
        role: role.to_owned(),
        duration: AccessDuration::from_secs(1800).unwrap(),
        reason: "bench".to_owned(),
        ticket: Some("INC-1".to_owned()),
        required_approvals: 1,
        approver_groups: Vec::new(),
        created_at: Timestamp::from_millis(1_767_780_000_000),
        pending_until: None,
        approvals: Vec::new(),
        state: RequestState::Pending,
        decided_at: None,
        closed_by: None,
        deny_reason: None,
        grant: None,
        once: false,
        escalation_level: 0,
        escalated_to: Vec::new(),
    }
}

fn run(label: &str, scoped: bool, catalog: &Catalog, facts: &OrgFacts, report: &mut String) {
    let files = vec![
        (PathBuf::from("default.cedar"), DEFAULT_POLICY.to_owned()),
        (PathBuf::from("generated.cedar"), generated_policies(scoped)),
    ];
    let started = Instant::now();
    let engine = PolicyEngine::load(&files, catalog, facts).unwrap_or_else(|err| panic!("{err}"));
    let load = started.elapsed();
    assert_eq!(engine.policy_count(), POLICIES);
    let _ = writeln!(
        report,
        "\n{label}: {} policies, load (parse, validate, entities, index, self-approval check) {load:.2?}",
        engine.policy_count()
    );
    let now = Timestamp::from_millis(1_767_780_000_000); // Wednesday 10:00 UTC
    let mut rng = Rng(42);
    let per_team = USERS / TEAMS;
    let inputs: Vec<RequestInput> = (0..1024)
        .map(|_| {
            let r = rng.below(RESOURCES);
            RequestInput {
                requester: user_name(rng.below(USERS)),
                resource: resource_name(r),
                role: if rng.below(2) == 0 { "read" } else { "write" }.to_owned(),
                duration: AccessDuration::from_secs(1800).unwrap(),
                ticket: Some("INC-7".to_owned()),
                now,
                open_requests: u32::try_from(rng.below(6)).unwrap(),
                recent_requests: 0,
            }
        })
        .collect();
    let requests: Vec<(String, AccessRequest)> = inputs
        .iter()
        .map(|input| {
            // Half the time the owner team's lead approves (allowed), half a random user.
            let owner = &catalog.resources[&input.resource].owner_team;
            let lead_index: usize = owner[1..].parse::<usize>().unwrap() * per_team;
            let approver = if rng.below(2) == 0 {
                user_name(lead_index)
            } else {
                user_name(rng.below(USERS))
            };
            (
                approver,
                pending(&input.requester, &input.resource, &input.role),
            )
        })
        .collect();
    let allowed = inputs
        .iter()
        .filter(|input| engine.decide_request(input).allowed)
        .count();
    let approvals = requests
        .iter()
        .filter(|(approver, request)| engine.decide_approve(approver, request, now).allowed)
        .count();
    let _ = writeln!(
        report,
        "  (of 1024 sampled: {allowed} requests allowed, {approvals} approvals allowed)"
    );
    let request = measure(SAMPLES, |i| {
        black_box(engine.decide_request(black_box(&inputs[i % inputs.len()])));
    });
    let approve = measure(SAMPLES, |i| {
        let (approver, request) = &requests[i % requests.len()];
        black_box(engine.decide_approve(black_box(approver), black_box(request), now));
    });
    let builtin = measure(SAMPLES, |i| {
        let (approver, request) = &requests[i % requests.len()];
        black_box(catalog.may_approve(
            black_box(approver),
            black_box(&request.requester),
            black_box(&request.resource),
        ));
    });
    report.push_str(&show("  decide_request", &request));
    report.push_str(&show("  decide_approve", &approve));
    report.push_str(&show("  Catalog::may_approve (built-in rule)", &builtin));
}

fn main() {
    let started = Instant::now();
    let (catalog, facts) = organisation();
    let mut report = format!(
        "organisation: {} users, {} teams in {LEVELS} levels {:?}, {} resources x 2 roles (built in {:.2?})\n",
        catalog.users.len(),
        catalog.teams.len(),
        team_levels(),
        catalog.resources.len(),
        started.elapsed()
    );
    // `cargo bench -p latch-policy --bench decisions -- indexed` runs one scenario.
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| only.as_deref().is_none_or(|only| only == name);
    if wanted("indexed") {
        run(
            "indexed (940 policies scoped to a resource, 60 + default set unscoped)",
            true,
            &catalog,
            &facts,
            &mut report,
        );
    }
    if wanted("unindexed") {
        run(
            "unindexed (the same 1,000 policies, resource tested in the condition)",
            false,
            &catalog,
            &facts,
            &mut report,
        );
    }
    print!("{report}");
}
