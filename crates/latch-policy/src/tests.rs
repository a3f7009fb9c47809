//! Unit tests of the engine: loading and its diagnostics, every decision path, the self-approval
//! check, fail-closed evaluation, and the example policy sets with their test tables.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use expect_test::{Expect, expect};
use latch_core::{
    AccessDuration, AccessRequest, Catalog, RequestState, Resource, ResourceKind, ResourceRole,
    Team, Timestamp, User, UserRole,
};

use crate::*;

const QUICKSTART_POLICY: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/quickstart/policies/default.cedar"
));
const QUICKSTART_TESTS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/quickstart/policies/tests.toml"
));
const ADVANCED_POLICY: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/advanced-policies/policies.cedar"
));
const ADVANCED_TESTS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/advanced-policies/tests.toml"
));

// ─── fixtures ───────────────────────────────────────────────────────────────────────────────────

fn duration(text: &str) -> AccessDuration {
    text.parse().unwrap()
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

/// Wednesday 10:00 UTC.
fn wednesday() -> Timestamp {
    at("2026-01-07T10:00:00Z")
}

fn user(name: &str, teams: &[&str], manager: Option<&str>, roles: &[UserRole]) -> User {
    User {
        name: name.to_owned(),
        email: format!("{name}@example.com"),
        teams: teams.iter().map(|t| (*t).to_owned()).collect(),
        manager: manager.map(str::to_owned),
        roles: roles.iter().copied().collect(),
    }
}

fn team(name: &str, leads: &[&str], parent: Option<&str>) -> Team {
    Team {
        name: name.to_owned(),
        leads: leads.iter().map(|l| (*l).to_owned()).collect(),
        parent: parent.map(str::to_owned),
    }
}

fn resource(name: &str, owner: &str, roles: &[(&str, &str)]) -> Resource {
    Resource {
        name: name.to_owned(),
        kind: ResourceKind::Postgres,
        owner_team: owner.to_owned(),
        roles: roles
            .iter()
            .map(|(role, max)| {
                (
                    (*role).to_owned(),
                    ResourceRole {
                        name: (*role).to_owned(),
                        max_duration: duration(max),
                    },
                )
            })
            .collect(),
    }
}

fn catalog(users: Vec<User>, teams: Vec<Team>, resources: Vec<Resource>) -> Catalog {
    Catalog {
        users: users.into_iter().map(|u| (u.name.clone(), u)).collect(),
        teams: teams.into_iter().map(|t| (t.name.clone(), t)).collect(),
        resources: resources.into_iter().map(|r| (r.name.clone(), r)).collect(),
        pending_timeout: None,
        escalate_after: None,
        policy: None,
    }
}

/// The organisation of examples/quickstart/latch.toml.
fn quickstart_catalog() -> Catalog {
    catalog(
        vec![
            user("alice", &["payments"], Some("carol"), &[]),
            user("bob", &["payments"], Some("carol"), &[]),
            user("carol", &["eng"], None, &[]),
            user("dave", &["security"], None, &[UserRole::Auditor]),
            user("erin", &["platform"], None, &[UserRole::Admin]),
        ],
        vec![
            team("eng", &["carol"], None),
            team("payments", &["bob"], Some("eng")),
            team("security", &[], None),
            team("platform", &[], None),
        ],
        vec![resource(
            "payments-db",
            "payments",
            &[("read", "4h"), ("write", "1h")],
        )],
    )
}

/// The organisation examples/advanced-policies/README.md describes.
fn advanced_org() -> (Catalog, OrgFacts) {
    let catalog = catalog(
        vec![
            user("alice", &["payments"], Some("bob"), &[]),
            user("bob", &["payments"], Some("carol"), &[]),
            user("carol", &["eng"], None, &[]),
            user("sam", &["security"], Some("carol"), &[]),
            user("sid", &["appsec"], Some("sam"), &[]),
            user("oscar", &["platform"], Some("pat"), &[]),
            user("pat", &["platform"], Some("carol"), &[]),
            user("erin", &["platform"], None, &[UserRole::Admin]),
            user("reporter", &["platform"], Some("pat"), &[]),
        ],
        vec![
            team("eng", &["carol"], None),
            team("payments", &["bob"], Some("eng")),
            team("security", &["sam"], None),
            team("appsec", &["sam"], Some("security")),
            team("platform", &["pat"], Some("eng")),
        ],
        vec![
            resource(
                "payments-db",
                "payments",
                &[("read", "4h"), ("write", "4h")],
            ),
            resource("metrics-db", "platform", &[("read", "8h"), ("write", "2h")]),
        ],
    );
    let facts = OrgFacts {
        on_call: BTreeSet::from(["oscar".to_owned()]),
        service_accounts: BTreeSet::from(["reporter".to_owned()]),
        resources: BTreeMap::from([
            (
                "payments-db".to_owned(),
                ResourceLabels {
                    sensitivity: "high".to_owned(),
                    environment: "production".to_owned(),
                    ticket_pattern: Some(latch_core::TicketPattern::new("INC-[0-9]+").unwrap()),
                },
            ),
            (
                "metrics-db".to_owned(),
                ResourceLabels {
                    sensitivity: "low".to_owned(),
                    environment: "production".to_owned(),
                    ticket_pattern: None,
                },
            ),
        ]),
    };
    (catalog, facts)
}

fn files(list: &[(&str, &str)]) -> Vec<(PathBuf, String)> {
    list.iter()
        .map(|(path, text)| (PathBuf::from(path), (*text).to_owned()))
        .collect()
}

fn quickstart() -> PolicyEngine {
    PolicyEngine::load(
        &files(&[("policies/default.cedar", QUICKSTART_POLICY)]),
        &quickstart_catalog(),
        &OrgFacts::default(),
    )
    .unwrap()
}

fn advanced() -> PolicyEngine {
    let (catalog, facts) = advanced_org();
    PolicyEngine::load(
        &files(&[("policies.cedar", ADVANCED_POLICY)]),
        &catalog,
        &facts,
    )
    .unwrap()
}

/// Loads `text` as `test.cedar` over the quickstart organisation, expecting refusal.
fn refused(text: &str) -> String {
    match PolicyEngine::load(
        &files(&[("test.cedar", text)]),
        &quickstart_catalog(),
        &OrgFacts::default(),
    ) {
        Ok(_) => panic!("the policy set was accepted"),
        Err(err) => err.to_string(),
    }
}

fn check_refused(text: &str, expected: Expect) {
    expected.assert_eq(&refused(text));
}

fn request(requester: &str, resource: &str, role: &str, length: &str) -> RequestInput {
    RequestInput {
        requester: requester.to_owned(),
        resource: resource.to_owned(),
        role: role.to_owned(),
        duration: duration(length),
        ticket: None,
        now: wednesday(),
        open_requests: 0,
        recent_requests: 0,
    }
}

fn pending(requester: &str, resource: &str, role: &str, length: &str) -> AccessRequest {
    AccessRequest {
        id: "req_1".to_owned(),
        requester: requester.to_owned(),
        resource: resource.to_owned(),
        role: role.to_owned(),
        duration: duration(length),
        reason: "INC-1: stuck job".to_owned(),
        ticket: None,
        required_approvals: 1,
        approver_groups: Vec::new(),
        created_at: wednesday(),
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

fn ids(decision: &Decision) -> Vec<&str> {
    decision.determining.iter().map(|p| p.id.as_str()).collect()
}

// ─── the examples ───────────────────────────────────────────────────────────────────────────────

#[test]
fn quickstart_tests_pass() {
    let report = run_tests(&quickstart(), QUICKSTART_TESTS).unwrap();
    assert!(report.ok(), "{report}");
    assert!(report.cases.len() >= 15, "{report}");
}

#[test]
fn advanced_tests_pass() {
    let report = run_tests(&advanced(), ADVANCED_TESTS).unwrap();
    assert!(report.ok(), "{report}");
    assert!(report.cases.len() >= 15, "{report}");
}

// ─── diagnostics ────────────────────────────────────────────────────────────────────────────────

#[test]
fn a_syntax_error_is_reported_with_file_line_and_column() {
    check_refused(
        r#"// a comment
permit (principal, action == Latch::Action::"request", resource);

@id("broken")
permit (principal, action == Latch::Action::"request", resource)
when { context.duration_secs <= };
"#,
        expect!["test.cedar:6:33: unexpected token `}`"],
    );
}

#[test]
fn a_validation_error_is_reported_with_file_line_and_column() {
    check_refused(
        r#"permit (principal, action == Latch::Action::"request", resource);

@id("typo")
permit (principal, action == Latch::Action::"request", resource)
when { context.duraton_secs <= 3600 };

@id("no-has")
permit (principal, action == Latch::Action::"request", resource)
when { context.ticket like "INC-*" };

@id("wrong-type")
permit (principal, action == Latch::Action::"approve", resource)
when { principal.roles.contains(1) };
"#,
        expect![[r#"
            test.cedar:5:8: for policy `typo`, attribute `duraton_secs` in context for Latch::Action::"request" not found: did you mean `duration_secs`?
            test.cedar:9:8: for policy `no-has`, unable to guarantee safety of access to optional attribute `ticket` in context for Latch::Action::"request": try testing for the attribute's presence with `context has ticket && ..`
            test.cedar:13:8: the types Long and String are not compatible: for policy `wrong-type`, elements of the first operand and the second operand to a `contains` expression must have compatible types. Types must be exactly equal to be compatible"#]],
    );
}

#[test]
fn every_problem_of_every_file_is_reported_at_once() {
    let error = PolicyEngine::load(
        &files(&[
            (
                "policies/a.cedar",
                "permit (principal, action == Latch::Action::\"request\", resource)\nwhen { true && };\n",
            ),
            (
                "policies/b.cedar",
                "\n\n@id(\"b\")\npermit (principal, action == Latch::Action::\"request\", resource)\n  when { resource.sensitivity == \"high\" };\n",
            ),
            (
                "policies/c.cedar",
                "@id(\"c\")\npermit (principal, action == Latch::Action::\"request\", resource);\n@id(\"c\")\nforbid (principal, action == Latch::Action::\"request\", resource);\n",
            ),
        ]),
        &quickstart_catalog(),
        &OrgFacts::default(),
    )
    .unwrap_err();
    expect![[r#"
        policies/a.cedar:2:16: unexpected token `}`
        policies/b.cedar:5:10: for policy `b`, attribute `sensitivity` on entity type `Latch::Role` not found: did you mean `resource`?
        policies/c.cedar:3:1: duplicate policy id `c` (also at policies/c.cedar:1:1): ids name policies in decisions and the ledger, so each must be unique"#]].assert_eq(&error.to_string());
    assert_eq!(error.problems().len(), error.to_string().lines().count());
}

#[test]
fn annotations_are_checked() {
    check_refused(
        r#"@id("typo")
@aprovals("2")
permit (principal, action == Latch::Action::"request", resource);

@id("values")
@approvals("two")
@max_duration("2 hours")
@auto_approve("yes")
@approver_groups("secrity, , eng")
permit (principal, action == Latch::Action::"request", resource);

@id("on-a-forbid")
@approvals("2")
forbid (principal, action == Latch::Action::"request", resource) when { context.open_requests > 5 };

@id("wrong-action")
@max_duration("1h")
permit (principal, action == Latch::Action::"connect", resource);

@id("latch:mine")
permit (principal, action == Latch::Action::"connect", resource);

@id("auto-and-approvals")
@auto_approve("true")
@approvals("2")
permit (principal, action == Latch::Action::"request", resource);
"#,
        expect![[r#"
            test.cedar:2:1: unknown annotation `@aprovals` (latch knows: @id, @description, @reason, @max_duration, @approvals, @approver_groups, @auto_approve)
            test.cedar:6:1: `@approvals("two")`: expected a whole number from 1 to 10 (for no approval at all, use `@auto_approve("true")`)
            test.cedar:7:1: `@max_duration`: invalid duration `2 hours`: unknown unit (expected a number and a unit s, m, h or d, e.g. `30m`, `2h`, `1h30m`)
            test.cedar:8:1: `@auto_approve("yes")`: expected `true` or `false`
            test.cedar:9:1: `@approver_groups("secrity, , eng")`: expected team names separated by commas, e.g. `security, dba`
            test.cedar:9:1: `@approver_groups`: unknown team `secrity` (teams: eng, payments, platform, security)
            test.cedar:14:1: requirement annotations (`@max_duration`, `@approvals`, `@approver_groups`, `@auto_approve`) belong on a `permit` of the `request` action, not on a `forbid`
            test.cedar:18:1: requirement annotations (`@max_duration`, `@approvals`, `@approver_groups`, `@auto_approve`) only apply to the `request` action, which this policy cannot match
            test.cedar:20:1: policy id `latch:mine` starts with `latch:`, which is reserved for latch's built-in rules: choose another
            test.cedar:24:1: `@auto_approve("true")` grants without approval, so `@approvals` and `@approver_groups` on the same policy contradict it: keep one or the other"#]],
    );
}

#[test]
fn unknown_users_teams_resources_and_roles_are_refused() {
    check_refused(
        r#"@id("unknown-team")
permit (principal in Latch::Team::"secrity", action == Latch::Action::"approve", resource);

@id("unknown-user")
permit (principal == Latch::User::"mallory", action == Latch::Action::"request", resource);

@id("unknown-resource")
permit (principal, action == Latch::Action::"request", resource in Latch::Resource::"paymnts-db");

@id("unknown-role")
permit (principal, action == Latch::Action::"request", resource)
when { resource == Latch::Role::"payments-db/admin" };
"#,
        expect![[r#"
            test.cedar:2:35: unknown team `secrity` (teams: eng, payments, platform, security)
            test.cedar:5:35: unknown user `mallory` (users: alice, bob, carol, dave, erin)
            test.cedar:8:85: unknown resource `paymnts-db` (resources: payments-db)
            test.cedar:12:33: unknown role `payments-db/admin` (roles: payments-db/read, payments-db/write)"#]],
    );
}

#[test]
fn an_empty_policy_set_denies_everything() {
    let engine = PolicyEngine::load(&[], &quickstart_catalog(), &OrgFacts::default()).unwrap();
    let decision = engine.decide_request(&request("alice", "payments-db", "read", "1h"));
    assert!(!decision.allowed);
    assert_eq!(
        decision.reasons,
        ["no policy permits `alice` to request role `read` on `payments-db`"]
    );
    assert_eq!(engine.policy_count(), 0);
}

// ─── policy ids and the hash ────────────────────────────────────────────────────────────────────

#[test]
fn ids_are_the_id_annotation_or_file_and_line() {
    let engine = PolicyEngine::load(
        &files(&[(
            "p/a.cedar",
            "// first\n\npermit (principal, action == Latch::Action::\"request\", resource);\n@id(\"named\")\npermit (principal, action == Latch::Action::\"connect\", resource);\n",
        )]),
        &quickstart_catalog(),
        &OrgFacts::default(),
    )
    .unwrap();
    assert_eq!(engine.policy_ids(), ["named", "p/a.cedar:3"]);
    let decision = engine.decide_request(&request("alice", "payments-db", "read", "1h"));
    assert_eq!(
        decision.determining,
        [PolicyRef {
            id: "p/a.cedar:3".to_owned(),
            file: "p/a.cedar".to_owned(),
            line: 3
        }]
    );
    assert_eq!(
        decision.reasons,
        ["permitted by policy `p/a.cedar:3` (p/a.cedar:3)"]
    );
}

#[test]
fn the_hash_covers_sorted_paths_and_texts() {
    let load = |list: &[(&str, &str)]| {
        PolicyEngine::load(&files(list), &quickstart_catalog(), &OrgFacts::default())
            .unwrap()
            .hash()
            .to_owned()
    };
    let a = (
        "a.cedar",
        "permit (principal, action == Latch::Action::\"connect\", resource);",
    );
    let b = (
        "b.cedar",
        "permit (principal, action == Latch::Action::\"request\", resource);",
    );
    let both = load(&[a, b]);
    assert_eq!(both.len(), 64);
    assert_eq!(both, load(&[b, a]), "file order does not matter");
    assert_ne!(both, load(&[a]));
    assert_ne!(
        both,
        load(&[("a.cedar", b.1), ("b.cedar", a.1)]),
        "paths matter"
    );
    assert_ne!(
        load(&[a]),
        load(&[(
            "a.cedar",
            "permit (principal, action == Latch::Action::\"connect\", resource); "
        )])
    );
    // Empty set: the hash of nothing.
    assert_eq!(
        load(&[]),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

// ─── request ────────────────────────────────────────────────────────────────────────────────────

#[test]
fn the_default_set_allows_requests_up_to_the_role_maximum() {
    let engine = quickstart();
    let decision = engine.decide_request(&request("alice", "payments-db", "write", "1h"));
    assert!(decision.allowed, "{decision:?}");
    assert_eq!(ids_of(&decision.determining), ["request-any-role"]);
    assert_eq!(decision.requirements, Requirements::default());
    let longer = engine.decide_request(&request("alice", "payments-db", "write", "61m"));
    assert!(!longer.allowed);
    assert!(longer.determining.is_empty());
}

#[test]
fn requests_naming_unknown_things_are_denied_with_what_exists() {
    let engine = quickstart();
    let reasons = |input: RequestInput| engine.decide_request(&input).reasons;
    assert_eq!(
        reasons(request("zed", "payments-db", "read", "1h")),
        ["unknown user `zed`: add them to the organisation in the config"]
    );
    assert_eq!(
        reasons(request("alice", "paymnts-db", "read", "1h")),
        ["unknown resource `paymnts-db` (resources: payments-db)"]
    );
    assert_eq!(
        reasons(request("alice", "payments-db", "wirte", "1h")),
        ["unknown role `wirte` for resource `payments-db` (roles: read, write)"]
    );
}

const ANNOTATED: &str = r#"
@id("base")
permit (principal, action == Latch::Action::"request", resource);

@id("two-with-security")
@approvals("2")
@approver_groups("security")
@max_duration("3h")
permit (principal, action == Latch::Action::"request", resource) when { resource.name == "write" };

@id("eng-and-two-hours")
@approver_groups("eng")
@max_duration("2h")
permit (principal, action == Latch::Action::"request", resource) when { context.duration_secs > 60 };

@id("auto-reads")
@auto_approve("true")
permit (principal, action == Latch::Action::"request", resource) when { resource.name == "read" };

@id("auto-short")
@auto_approve("true")
permit (principal, action == Latch::Action::"request", resource) when { context.duration_secs <= 60 };

@id("cap")
@reason("too many open requests")
forbid (principal, action == Latch::Action::"request", resource) when { context.open_requests >= 3 };

@id("quiet")
forbid (principal, action == Latch::Action::"request", resource) when { context.recent_requests >= 10 };
"#;

fn annotated(catalog: Catalog) -> PolicyEngine {
    PolicyEngine::load(
        &files(&[("a.cedar", ANNOTATED)]),
        &catalog,
        &OrgFacts::default(),
    )
    .unwrap()
}

#[test]
fn requirements_combine_conservatively() {
    let mut org = quickstart_catalog();
    org.users
        .get_mut("dave")
        .unwrap()
        .teams
        .insert("security".to_owned());
    let engine = annotated(org);
    // base + two-with-security + eng-and-two-hours
    let decision = engine.decide_request(&request("alice", "payments-db", "write", "1h"));
    assert!(decision.allowed, "{decision:?}");
    assert_eq!(
        ids_of(&decision.determining),
        ["base", "two-with-security", "eng-and-two-hours"]
    );
    assert_eq!(
        decision.requirements,
        Requirements {
            max_duration: Some(duration("2h")),
            approvals: 2,
            approver_groups: vec!["eng".to_owned(), "security".to_owned()],
            auto_approve: false,
            break_glass_allowed: false,
        }
    );
    // Auto-approve only when every determining permit says so: `base` does not.
    let read = engine.decide_request(&request("alice", "payments-db", "read", "1m"));
    assert!(read.allowed);
    assert!(!read.requirements.auto_approve);
    // The number of approvals is at least the number of groups.
    let mut input = request("alice", "payments-db", "read", "1h");
    input.duration = duration("30m");
    let decision = engine.decide_request(&input);
    assert_eq!(decision.requirements.approver_groups, ["eng"]);
    assert_eq!(decision.requirements.approvals, 1);
}

#[test]
fn auto_approve_needs_every_determining_permit() {
    let engine = PolicyEngine::load(
        &files(&[(
            "a.cedar",
            r#"
@id("auto-reads")
@auto_approve("true")
permit (principal, action == Latch::Action::"request", resource) when { resource.name == "read" };
@id("auto-short")
@auto_approve("true")
permit (principal, action == Latch::Action::"request", resource) when { context.duration_secs <= 60 };
@id("short-not-auto")
@auto_approve("false")
permit (principal, action == Latch::Action::"request", resource) when { context.duration_secs <= 30 };
"#,
        )]),
        &quickstart_catalog(),
        &OrgFacts::default(),
    )
    .unwrap();
    let decide = |role: &str, length: &str| {
        engine.decide_request(&request("alice", "payments-db", role, length))
    };
    let both = decide("read", "1m");
    assert_eq!(ids_of(&both.determining), ["auto-reads", "auto-short"]);
    assert!(both.requirements.auto_approve);
    assert!(decide("write", "1m").requirements.auto_approve);
    assert!(
        !decide("read", "30s").requirements.auto_approve,
        "one says false"
    );
    assert!(!decide("write", "2m").allowed);
}

#[test]
fn a_request_longer_than_the_policy_maximum_is_denied_naming_the_cap() {
    let engine = annotated(quickstart_catalog());
    let mut input = request("alice", "payments-db", "write", "1h");
    input.duration = duration("150m");
    let decision = engine.decide_request(&input);
    assert!(!decision.allowed);
    assert_eq!(
        decision.reasons,
        [
            "duration `2h30m` is above the maximum `2h` set by policy `eng-and-two-hours` (a.cedar:11): ask for `2h` or less"
        ]
    );
    assert_eq!(ids_of(&decision.determining), ["eng-and-two-hours"]);
    assert_eq!(decision.requirements.max_duration, Some(duration("2h")));
}

#[test]
fn an_approver_group_without_another_member_refuses_the_request() {
    // Without dave, `security` has no members.
    let mut org = quickstart_catalog();
    org.users.get_mut("dave").unwrap().teams.clear();
    let engine = annotated(org);
    let decision = engine.decide_request(&request("alice", "payments-db", "write", "1h"));
    assert!(!decision.allowed);
    assert_eq!(
        decision.reasons,
        [
            "team `security` must approve this request but has no member other than `alice`: add someone to `security` or change the policy"
        ]
    );
    // dave alone in security may not request then either: nobody else could approve.
    let mut org = quickstart_catalog();
    org.users.get_mut("dave").unwrap().teams = BTreeSet::from(["security".to_owned()]);
    let engine = annotated(org);
    assert!(
        !engine
            .decide_request(&request("dave", "payments-db", "write", "1h"))
            .allowed
    );
    assert!(
        engine
            .decide_request(&request("alice", "payments-db", "write", "1h"))
            .allowed
    );
}

#[test]
fn forbids_deny_with_their_reason_or_their_id() {
    let engine = annotated(quickstart_catalog());
    let mut input = request("alice", "payments-db", "read", "1h");
    input.open_requests = 3;
    input.recent_requests = 10;
    let decision = engine.decide_request(&input);
    assert!(!decision.allowed);
    assert_eq!(ids_of(&decision.determining), ["cap", "quiet"]);
    assert_eq!(
        decision.reasons,
        [
            "too many open requests (policy `cap` (a.cedar:24))",
            "forbidden by policy `quiet` (a.cedar:28)"
        ]
    );
    assert_eq!(decision.requirements, Requirements::default());
}

#[test]
fn ticket_context_follows_the_resource_pattern() {
    let (catalog, facts) = advanced_org();
    let engine = PolicyEngine::load(
        &files(&[(
            "t.cedar",
            r#"
@id("matching")
permit (principal, action == Latch::Action::"request", resource)
when { context.ticket_matches && context has ticket && context.ticket like "INC-*" };
"#,
        )]),
        &catalog,
        &facts,
    )
    .unwrap();
    let decide = |resource: &str, ticket: Option<&str>| {
        let mut input = request("alice", resource, "read", "1h");
        input.ticket = ticket.map(str::to_owned);
        engine.decide_request(&input).allowed
    };
    assert!(decide("payments-db", Some("INC-1")));
    assert!(!decide("payments-db", Some("CHG-1")), "pattern INC-*");
    assert!(!decide("payments-db", None));
    assert!(
        decide("metrics-db", Some("INC-2")),
        "no pattern: any ticket matches"
    );
    assert!(!decide("metrics-db", None));
}

// ─── approve ────────────────────────────────────────────────────────────────────────────────────

#[test]
fn approve_follows_the_built_in_rule_under_the_default_set() {
    let engine = quickstart();
    let catalog = quickstart_catalog();
    let now = wednesday();
    for requester in catalog.users.keys() {
        for approver in catalog.users.keys() {
            for role in ["read", "write"] {
                let request = pending(requester, "payments-db", role, "30m");
                let decision = engine.decide_approve(approver, &request, now);
                assert_eq!(
                    decision.allowed,
                    catalog.may_approve(approver, requester, "payments-db"),
                    "{approver} approving {requester}: {decision:?}"
                );
                let revoke = engine.decide_revoke(approver, &request, now);
                assert_eq!(
                    revoke.allowed,
                    catalog.may_revoke(approver, requester, "payments-db"),
                    "{approver} revoking {requester}'s grant: {revoke:?}"
                );
            }
        }
    }
}

#[test]
fn nobody_approves_their_own_request_whatever_the_policies() {
    // The policy only lets bob approve at 04:00, which the load-time probes do not try: the
    // set loads, and the guard still denies.
    let engine = PolicyEngine::load(
        &files(&[(
            "sneaky.cedar",
            r#"permit (principal, action == Latch::Action::"approve", resource)
when { context.hour_utc == 4 && context.weekday == 2 };"#,
        )]),
        &quickstart_catalog(),
        &OrgFacts::default(),
    )
    .unwrap();
    let request = pending("bob", "payments-db", "read", "1h");
    let tuesday_4am = at("2026-01-06T04:00:00Z");
    let decision = engine.decide_approve("bob", &request, tuesday_4am);
    assert_eq!(
        decision,
        Decision {
            allowed: false,
            reasons: vec!["`bob` cannot approve their own request: only `self_approve` (break-glass) allows that".to_owned()],
            determining: vec![PolicyRef {
                id: NO_SELF_APPROVAL.to_owned(),
                file: "(built-in)".to_owned(),
                line: 0
            }],
        }
    );
    assert!(
        engine
            .decide_approve("alice", &request, tuesday_4am)
            .allowed
    );
}

#[test]
fn approve_context_names_the_requester_and_the_relations() {
    let (catalog, facts) = advanced_org();
    let engine = PolicyEngine::load(
        &files(&[(
            "a.cedar",
            r#"
@id("chain")
permit (principal, action == Latch::Action::"approve", resource)
when {
  context.manages_requester && !context.is_requester_manager &&
  context has requester && context.requester has manager &&
  context.requester.manager has manager && context.requester.manager.manager == principal
};

@id("machines")
permit (principal, action == Latch::Action::"approve", resource)
when {
  context has requester_account && context.requester_account has manager &&
  context.requester_account.manager == principal
};

@id("second")
permit (principal, action == Latch::Action::"approve", resource)
when { context.approvals_so_far >= 1 && principal in Latch::Team::"security" };

forbid (principal, action == Latch::Action::"approve", resource) when { context.is_own_request };
"#,
        )]),
        &catalog,
        &facts,
    )
    .unwrap();
    let now = wednesday();
    // alice → bob → carol: carol manages alice but is not her direct manager.
    assert!(
        engine
            .decide_approve("carol", &pending("alice", "payments-db", "read", "1h"), now)
            .allowed
    );
    assert!(
        !engine
            .decide_approve("bob", &pending("alice", "payments-db", "read", "1h"), now)
            .allowed
    );
    // reporter is a service account managed by pat.
    let by_machine = pending("reporter", "metrics-db", "read", "1h");
    assert!(engine.decide_approve("pat", &by_machine, now).allowed);
    let mut second = pending("alice", "payments-db", "read", "1h");
    assert!(!engine.decide_approve("sid", &second, now).allowed);
    second.approvals.push(latch_core::lifecycle::Approval {
        approver: "bob".to_owned(),
        comment: None,
        at: now,
    });
    assert!(engine.decide_approve("sid", &second, now).allowed);
}

#[test]
fn service_accounts_and_strangers_never_approve() {
    let engine = advanced();
    let request = pending("alice", "metrics-db", "read", "1h");
    let decision = engine.decide_approve("reporter", &request, wednesday());
    assert!(!decision.allowed);
    assert_eq!(ids(&decision), [PEOPLE_APPROVE]);
    assert_eq!(
        decision.reasons,
        ["`reporter` is a service account: only people may approve"]
    );
    let decision = engine.decide_approve("zed", &request, wednesday());
    assert_eq!(
        decision.reasons,
        ["unknown user `zed`: add them to the organisation in the config"]
    );
    let gone = pending("alice", "old-db", "read", "1h");
    assert_eq!(
        engine.decide_approve("bob", &gone, wednesday()).reasons,
        ["unknown resource `old-db` (resources: metrics-db, payments-db)"]
    );
}

#[test]
fn approver_groups_count_members_of_sub_teams() {
    let engine = advanced();
    assert!(engine.is_member("sid", "appsec"));
    assert!(
        engine.is_member("sid", "security"),
        "appsec is below security"
    );
    assert!(!engine.is_member("bob", "security"));
    assert!(engine.is_member("bob", "eng"));
    let groups = vec!["security".to_owned(), "payments".to_owned()];
    assert_eq!(
        engine.missing_groups(&["bob".to_owned()], &groups),
        ["security"]
    );
    assert!(
        engine
            .missing_groups(&["bob".to_owned(), "sid".to_owned()], &groups)
            .is_empty()
    );
}

// ─── self_approve (break-glass) ─────────────────────────────────────────────────────────────────

#[test]
fn break_glass_is_self_approve() {
    let engine = advanced();
    let now = wednesday();
    let mut request = pending("oscar", "metrics-db", "read", "30m");
    let decision = engine.decide_self_approve(&request, now);
    assert!(decision.allowed, "{decision:?}");
    assert_eq!(ids(&decision), ["break-glass-on-call-read"]);
    request.duration = duration("31m");
    assert!(!engine.decide_self_approve(&request, now).allowed);
    assert!(
        !engine
            .decide_self_approve(&pending("alice", "metrics-db", "read", "30m"), now)
            .allowed
    );
    let machine =
        engine.decide_self_approve(&pending("reporter", "metrics-db", "read", "30m"), now);
    assert_eq!(ids(&machine), [PEOPLE_APPROVE]);
}

// ─── revoke, connect, audit, administer ─────────────────────────────────────────────────────────

#[test]
fn revoke_connect_audit_and_administer_follow_the_default_set() {
    let engine = quickstart();
    let now = wednesday();
    let grant = pending("alice", "payments-db", "write", "1h");
    assert!(engine.decide_revoke("alice", &grant, now).allowed);
    assert!(engine.decide_revoke("erin", &grant, now).allowed);
    assert!(!engine.decide_revoke("dave", &grant, now).allowed);
    assert!(
        engine
            .decide_connect("alice", "payments-db", "write", now)
            .allowed
    );
    assert!(
        !engine
            .decide_connect("alice", "payments-db", "admin", now)
            .allowed
    );
    assert!(engine.decide_view_audit("dave", "payments-db").allowed);
    assert!(engine.decide_view_audit("bob", "payments-db").allowed);
    assert!(!engine.decide_view_audit("alice", "payments-db").allowed);
    assert!(engine.decide_administer("erin", "payments-db").allowed);
    let denied = engine.decide_administer("alice", "payments-db");
    assert_eq!(
        denied.reasons,
        ["no policy permits `alice` to administer `payments-db`"]
    );
}

// ─── fail closed ────────────────────────────────────────────────────────────────────────────────

#[test]
fn an_evaluation_error_denies_with_its_cause() {
    let engine = PolicyEngine::load(
        &files(&[(
            "overflow.cedar",
            r#"@id("allow-all")
permit (principal, action == Latch::Action::"request", resource);

@id("overflowing-forbid")
forbid (principal, action == Latch::Action::"request", resource)
when { context.duration_secs * 9223372036854775807 > 0 && context.duration_secs > 3600 };
"#,
        )]),
        &quickstart_catalog(),
        &OrgFacts::default(),
    )
    .unwrap();
    // Cedar skips a failing forbid, which would allow; latch denies.
    let decision = engine.decide_request(&request("alice", "payments-db", "read", "2h"));
    assert!(!decision.allowed);
    assert_eq!(ids_of(&decision.determining), ["overflowing-forbid"]);
    expect!["denied because policy `overflowing-forbid` (overflow.cedar:4) could not be evaluated (decisions fail closed): error while evaluating policy `overflowing-forbid`: integer overflow while attempting to multiply the values `7200` and `9223372036854775807`"].assert_eq(&decision.reasons.join("\n"));
}

// ─── the self-approval check ────────────────────────────────────────────────────────────────────

#[test]
fn a_set_letting_someone_approve_their_own_request_is_refused() {
    check_refused(
        r#"
@id("anyone-approves")
permit (principal, action == Latch::Action::"approve", resource);
"#,
        expect![
            "test.cedar:2:1: policy `anyone-approves` lets `alice` approve their own request for role `read` on `payments-db` through `approve`: self-approval is break-glass and goes through `self_approve`; add `unless { context.is_own_request }` to this policy, or a `forbid` for `context.is_own_request`"
        ],
    );
    check_refused(
        r#"
@id("leads-approve")
permit (principal, action == Latch::Action::"approve", resource)
when { context.approver_leads_owner };

@id("only-bob")
permit (principal == Latch::User::"bob", action == Latch::Action::"approve", resource)
unless { context.is_own_request && context.hour_utc > 12 };

@id("ok")
permit (principal, action == Latch::Action::"approve", resource)
when { context.is_requester_manager };
"#,
        expect![[r#"
            test.cedar:2:1: policy `leads-approve` lets `bob` approve their own request for role `read` on `payments-db` through `approve`: self-approval is break-glass and goes through `self_approve`; add `unless { context.is_own_request }` to this policy, or a `forbid` for `context.is_own_request`
            test.cedar:6:1: policy `only-bob` lets `bob` approve their own request for role `read` on `payments-db` through `approve`: self-approval is break-glass and goes through `self_approve`; add `unless { context.is_own_request }` to this policy, or a `forbid` for `context.is_own_request`"#]],
    );
}

#[test]
fn the_self_approval_check_probes_a_long_pending_request_at_night() {
    check_refused(
        r#"@id("escalation-without-forbid")
permit (principal, action == Latch::Action::"approve", resource)
when { context.pending_secs >= 14400 && context.hour_utc < 6 && principal in Latch::Team::"eng" };
"#,
        expect![
            "test.cedar:1:1: policy `escalation-without-forbid` lets `alice` approve their own request for role `read` on `payments-db` through `approve`: self-approval is break-glass and goes through `self_approve`; add `unless { context.is_own_request }` to this policy, or a `forbid` for `context.is_own_request`"
        ],
    );
}

#[test]
fn a_forbid_for_own_requests_makes_the_set_acceptable() {
    let engine = PolicyEngine::load(
        &files(&[(
            "a.cedar",
            r#"
permit (principal, action == Latch::Action::"approve", resource);
forbid (principal, action == Latch::Action::"approve", resource)
when { context has requester && principal == context.requester };
"#,
        )]),
        &quickstart_catalog(),
        &OrgFacts::default(),
    );
    assert!(engine.is_ok(), "{:?}", engine.err());
}

#[test]
fn the_self_approval_check_tells_users_apart_by_what_policies_can_see() {
    // Only the on-call user (one of many otherwise identical users) could approve their own
    // request: the check must find them, not a merged representative.
    let mut users = vec![user("lead", &["ops"], None, &[UserRole::Admin])];
    for n in 0..50 {
        users.push(user(&format!("u{n:02}"), &["ops"], Some("lead"), &[]));
    }
    let org = catalog(
        users,
        vec![team("ops", &["lead"], None)],
        vec![resource("db", "ops", &[("read", "1h")])],
    );
    let facts = OrgFacts::with_on_call(["u37"]);
    let error = PolicyEngine::load(
        &files(&[(
            "a.cedar",
            r#"@id("on-call-approves")
permit (principal, action == Latch::Action::"approve", resource) when { principal.on_call };"#,
        )]),
        &org,
        &facts,
    )
    .unwrap_err();
    expect!["a.cedar:1:1: policy `on-call-approves` lets `u37` approve their own request for role `read` on `db` through `approve`: self-approval is break-glass and goes through `self_approve`; add `unless { context.is_own_request }` to this policy, or a `forbid` for `context.is_own_request`"].assert_eq(&error.to_string());
}

fn ids_of(policies: &[PolicyRef]) -> Vec<&str> {
    policies.iter().map(|p| p.id.as_str()).collect()
}

// ─── explain and the test runner ────────────────────────────────────────────────────────────────

#[test]
fn explain_shows_decision_policies_and_requirements() {
    let engine = advanced();
    let mut query = Query::new(
        "alice",
        Action::Request,
        "payments-db",
        Some("write"),
        wednesday(),
    );
    query.duration = Some(duration("1h"));
    query.ticket = Some("INC-4211".to_owned());
    let hash = engine.hash().get(..12).unwrap().to_owned();
    expect![[r#"
        ALLOW: `alice` request role `write` on `payments-db`
          at 2026-01-07T10:00:00.000Z (policy set HASH)
        determining policies:
          high-sensitivity-write at policies.cedar:14
        reasons:
          permitted by policy `high-sensitivity-write` (policies.cedar:14)
        requirements:
          max duration:     2h (role maximum 4h)
          approvals:        2
          approver groups:  `security`
          auto-approve:     no
          break-glass:      no
    "#]]
    .assert_eq(&engine.explain(&query).replace(&hash, "HASH"));
    let mut query = Query::new(
        "carol",
        Action::Approve,
        "payments-db",
        Some("read"),
        wednesday(),
    );
    query.requester = Some("alice".to_owned());
    expect![[r#"
        DENY: `carol` approve role `read` on `payments-db`
          request by `alice`
          at 2026-01-07T10:00:00.000Z (policy set HASH)
        determining policies:
          none
        reasons:
          no policy permits `carol` to approve `alice`'s request for role `read` on `payments-db`
    "#]]
    .assert_eq(&engine.explain(&query).replace(&hash, "HASH"));
}

#[test]
fn failing_cases_are_reported_like_a_test_runner() {
    let report = run_tests(
        &quickstart(),
        r#"
[defaults]
principal = "alice"
resource = "payments-db"

[[case]]
name = "passes"
action = "request"
role = "read"
expect = "allow"

[[case]]
name = "wrong decision and approvals"
action = "request"
role = "write"
duration = "30m"
expect = "deny"
approvals = 2
determining = ["nope"]
"#,
    )
    .unwrap();
    assert_eq!((report.passed(), report.failed()), (1, 1));
    let hash = quickstart().hash().get(..12).unwrap().to_owned();
    expect![[r#"
        running 2 policy tests
        test passes ... ok
        test wrong decision and approvals ... FAILED

        failures:

        ---- wrong decision and approvals ----
        expected deny, got allow
        approvals: expected 2, got 1
        determining: expected ["nope"], got ["request-any-role"]
          | ALLOW: `alice` request role `write` on `payments-db`
          |   at 2026-01-07T10:00:00.000Z (policy set HASH)
          | determining policies:
          |   request-any-role at policies/default.cedar:20
          | reasons:
          |   permitted by policy `request-any-role` (policies/default.cedar:20)
          | requirements:
          |   max duration:     1h (the role's maximum)
          |   approvals:        1
          |   approver groups:  none
          |   auto-approve:     no
          |   break-glass:      no

        test result: FAILED. 1 passed; 1 failed
    "#]]
    .assert_eq(&report.to_string().replace(&hash, "HASH"));
}

#[test]
fn a_malformed_test_file_is_refused_with_every_problem() {
    let error = run_tests(
        &quickstart(),
        r#"
[[case]]
name = "a"
principal = "alice"
action = "requets"
resource = "payments-db"
role = "read"
expect = "allow"

[[case]]
name = "a"
action = "approve"
resource = "payments-db"
duration = "2 hours"
expect = "maybe"

[[case]]
principal = "alice"
"#,
    )
    .unwrap_err();
    expect![[r#"
        case `a`: unknown action `requets` (actions: request, approve, self_approve, revoke, connect, view_audit, administer)
        case `a`: another case has the same name: names must be unique
        case `a`: `principal` is missing
        case `a`: `role` is missing: action `approve` is on a role
        case `a`: `expect = "maybe"`: expected `allow` or `deny`
        case `a`: `duration`: invalid duration `2 hours`: unknown unit (expected a number and a unit s, m, h or d, e.g. `30m`, `2h`, `1h30m`)
        case 3: `name` is missing: give every case a name"#]].assert_eq(&error.to_string());
    let error = run_tests(
        &quickstart(),
        "[[case]]\nname = \"x\"\nexpectt = \"allow\"\n",
    )
    .unwrap_err();
    expect![[r#"
        TOML parse error at line 3, column 1
          |
        3 | expectt = "allow"
          | ^^^^^^^
        unknown field `expectt`, expected one of `name`, `principal`, `action`, `resource`, `role`, `duration`, `ticket`, `now`, `open_requests`, `recent_requests`, `requester`, `approvals_so_far`, `pending`, `expect`, `approvals`, `approver_groups`, `max_duration`, `auto_approve`, `break_glass`, `determining`, `reason_contains`"#]].assert_eq(&error.to_string());
}

#[test]
fn organisation_facts_must_name_known_users_and_resources() {
    let facts = OrgFacts {
        on_call: BTreeSet::from(["zed".to_owned()]),
        service_accounts: BTreeSet::from(["bob".to_owned()]),
        resources: BTreeMap::from([("nope".to_owned(), ResourceLabels::default())]),
    };
    let error = PolicyEngine::load(&[], &quickstart_catalog(), &facts).unwrap_err();
    expect!["the organisation cannot be used by the policy engine: on-call user `zed` is not a user of the organisation; labels for unknown resource `nope` (resources: payments-db); team `payments`: lead `bob` is a service account; leads are people"].assert_eq(&error.to_string());
}

#[test]
fn the_schema_parses_and_documents_every_action() {
    let schema = schema().unwrap();
    let mut actions: Vec<String> = schema
        .actions()
        .map(|a| a.id().unescaped().to_owned())
        .collect();
    actions.sort();
    let mut expected: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
    expected.sort();
    assert_eq!(actions, expected);
    for annotation in [
        "@max_duration",
        "@approvals",
        "@approver_groups",
        "@auto_approve",
        "@reason",
        "@id",
    ] {
        assert!(
            SCHEMA.contains(annotation),
            "the schema documents {annotation}"
        );
    }
}

// ─── the index ──────────────────────────────────────────────────────────────────────────────────

/// Policies of every scope shape the index distinguishes.
const SCOPES: &str = r#"
permit (principal, action == Latch::Action::"request", resource) when { resource.name == "read" };
permit (principal in Latch::Team::"eng", action == Latch::Action::"request", resource in Latch::Resource::"payments-db");
permit (principal == Latch::User::"dave", action, resource == Latch::Role::"payments-db/write");
forbid (principal is Latch::User in Latch::Team::"security", action == Latch::Action::"request", resource) when { context.duration_secs > 1800 };
permit (principal in Latch::Team::"payments", action in [Latch::Action::"approve", Latch::Action::"revoke"], resource is Latch::Role in Latch::Resource::"payments-db");
permit (principal is Latch::User, action == Latch::Action::"approve", resource in Latch::Role::"payments-db/read") when { context.is_requester_manager };
forbid (principal, action == Latch::Action::"approve", resource) when { context.is_own_request };
permit (principal in Latch::Team::"platform", action == Latch::Action::"connect", resource);
permit (principal, action == Latch::Action::"view_audit", resource == Latch::Resource::"payments-db") when { principal in Latch::Team::"security" };
forbid (principal == Latch::User::"alice", action, resource);
"#;

#[test]
fn the_index_decides_like_the_whole_set() {
    use cedar_policy::{Authorizer, Context, Decision as Cedar, EntityUid, Request};
    let org = quickstart_catalog();
    let engine =
        PolicyEngine::load(&files(&[("s.cedar", SCOPES)]), &org, &OrgFacts::default()).unwrap();
    let mut whole = cedar_policy::PolicySet::new();
    for index in &engine.index {
        for set in index.sets() {
            for policy in set.policies() {
                let _ = whole.add(policy.clone());
            }
        }
    }
    assert_eq!(whole.num_of_policies(), engine.policy_count());
    let now = wednesday();
    let mut checked = 0;
    for action in Action::ALL {
        for principal in org.users.keys() {
            for role in ["read", "write"] {
                for length in ["30m", "1h"] {
                    let existing = crate::decide::Existing {
                        requester: "bob",
                        resource: "payments-db",
                        role,
                        duration: duration(length),
                        ticket: None,
                        approvals_so_far: 0,
                        created_at: now,
                        escalation_level: 0,
                        escalated_to: &[],
                    };
                    let pairs = match action {
                        Action::Approve => engine.approve_context(principal, &existing, now),
                        _ => continue,
                    };
                    let principal_uid = engine.org.principals[principal].clone();
                    let role_uid: EntityUid =
                        engine.org.role_uid("payments-db", role).unwrap().clone();
                    let direct = Authorizer::new().is_authorized(
                        &Request::new(
                            principal_uid.clone(),
                            crate::org::Types::uid(&engine.org.types.action, action.as_str()),
                            role_uid.clone(),
                            Context::from_pairs(pairs.clone()).unwrap(),
                            None,
                        )
                        .unwrap(),
                        &whole,
                        &engine.org.entities,
                    );
                    let indexed =
                        engine.run(action, &principal_uid, &role_uid, "payments-db", pairs);
                    assert_eq!(
                        indexed.allowed,
                        direct.decision() == Cedar::Allow,
                        "{action} by {principal} on {role}"
                    );
                    let mut direct_ids: Vec<String> = direct
                        .diagnostics()
                        .reason()
                        .map(ToString::to_string)
                        .collect();
                    let mut indexed_ids: Vec<String> = indexed
                        .determining
                        .iter()
                        .map(ToString::to_string)
                        .collect();
                    direct_ids.sort();
                    indexed_ids.sort();
                    assert_eq!(indexed_ids, direct_ids, "{action} by {principal} on {role}");
                    checked += 1;
                }
            }
        }
    }
    // The other actions go through the public API; compare against Cedar on the whole set.
    for principal in org.users.keys() {
        for role in ["read", "write"] {
            for length in ["30m", "1h"] {
                let input = RequestInput {
                    requester: principal.clone(),
                    ..request("x", "payments-db", role, length)
                };
                let decision = engine.decide_request(&input);
                let direct = direct_decision(
                    &engine,
                    &whole,
                    Action::Request,
                    principal,
                    Some(role),
                    engine_facts(&engine, principal, length, now, true),
                );
                assert_eq!(
                    decision.allowed, direct,
                    "request by {principal} on {role} for {length}"
                );
                let connect = engine.decide_connect(principal, "payments-db", role, now);
                let pairs = vec![
                    (
                        "hour_utc".to_owned(),
                        cedar_policy::RestrictedExpression::new_long(10),
                    ),
                    (
                        "weekday".to_owned(),
                        cedar_policy::RestrictedExpression::new_long(3),
                    ),
                ];
                assert_eq!(
                    connect.allowed,
                    direct_decision(
                        &engine,
                        &whole,
                        Action::Connect,
                        principal,
                        Some(role),
                        pairs
                    ),
                    "connect by {principal}"
                );
                checked += 2;
            }
        }
        let audit = engine.decide_view_audit(principal, "payments-db");
        assert_eq!(
            audit.allowed,
            direct_decision(
                &engine,
                &whole,
                Action::ViewAudit,
                principal,
                None,
                Vec::new()
            ),
            "view_audit by {principal}"
        );
    }
    assert_eq!(checked, 60);
}

fn engine_facts(
    engine: &PolicyEngine,
    requester: &str,
    length: &str,
    now: Timestamp,
    with_counts: bool,
) -> Vec<(String, cedar_policy::RestrictedExpression)> {
    use cedar_policy::RestrictedExpression as R;
    let mut pairs = vec![
        (
            "duration_secs".to_owned(),
            R::new_long(i64::try_from(duration(length).as_secs()).unwrap()),
        ),
        (
            "hour_utc".to_owned(),
            R::new_long(crate::calendar::hour_utc(now)),
        ),
        (
            "weekday".to_owned(),
            R::new_long(crate::calendar::weekday(now)),
        ),
        ("ticket_matches".to_owned(), R::new_bool(false)),
        (
            "requester_on_call".to_owned(),
            R::new_bool(engine.org.on_call(requester)),
        ),
    ];
    if with_counts {
        pairs.push(("open_requests".to_owned(), R::new_long(0)));
        pairs.push(("recent_requests".to_owned(), R::new_long(0)));
    }
    pairs
}

fn direct_decision(
    engine: &PolicyEngine,
    whole: &cedar_policy::PolicySet,
    action: Action,
    principal: &str,
    role: Option<&str>,
    pairs: Vec<(String, cedar_policy::RestrictedExpression)>,
) -> bool {
    use cedar_policy::{Authorizer, Context, Decision as Cedar, Request};
    let resource = match role {
        Some(role) => engine.org.role_uid("payments-db", role).unwrap().clone(),
        None => engine.org.resources["payments-db"].clone(),
    };
    let request = Request::new(
        engine.org.principals[principal].clone(),
        crate::org::Types::uid(&engine.org.types.action, action.as_str()),
        resource,
        Context::from_pairs(pairs).unwrap(),
        Some(&engine.schema),
    )
    .unwrap();
    Authorizer::new()
        .is_authorized(&request, whole, &engine.org.entities)
        .decision()
        == Cedar::Allow
}

#[test]
fn the_default_set_lets_whoever_an_escalation_brought_in_approve() {
    let mut catalog = quickstart_catalog();
    catalog
        .users
        .insert("gina".into(), user("gina", &["security"], None, &[]));
    let engine = PolicyEngine::load(
        &files(&[("policies/default.cedar", QUICKSTART_POLICY)]),
        &catalog,
        &OrgFacts::default(),
    )
    .unwrap();
    let mut request = pending("alice", "payments-db", "read", "30m");
    let before = engine.decide_approve("gina", &request, wednesday());
    assert!(!before.allowed);
    request.escalation_level = 1;
    request.escalated_to = vec!["gina".into()];
    let after = engine.decide_approve("gina", &request, wednesday());
    assert!(after.allowed, "{:?}", after.reasons);
    assert_eq!(ids(&after), ["approve-after-escalation"]);
    // Escalation never lets the requester approve.
    request.escalated_to = vec!["alice".into()];
    assert!(
        !engine
            .decide_approve("alice", &request, wednesday())
            .allowed
    );
}

#[test]
fn a_cap_on_open_requests_sees_the_history_the_lifecycle_passes() {
    use latch_core::policy::AccessPolicy as _;
    let engine = PolicyEngine::load(
        &files(&[
            ("policies/default.cedar", QUICKSTART_POLICY),
            (
                "cap.cedar",
                "@id(\"cap-open\")\n@reason(\"finish or cancel an open request first\")\nforbid (principal, action == Latch::Action::\"request\", resource)\nwhen { context.open_requests >= 2 || context.recent_requests >= 10 };\n",
            ),
        ]),
        &quickstart_catalog(),
        &OrgFacts::default(),
    )
    .unwrap();
    let facts = |open, recent| latch_core::policy::RequestFacts {
        requester: "alice",
        resource: "payments-db",
        role: "read",
        duration: duration("30m"),
        ticket: None,
        history: latch_core::lifecycle::RequesterHistory {
            open_requests: open,
            recent_requests: recent,
        },
        now: wednesday(),
    };
    assert!(engine.request(&facts(1, 9)).verdict.allowed);
    let capped = engine.request(&facts(2, 2)).verdict;
    assert!(!capped.allowed);
    assert!(
        capped.reason.contains("finish or cancel"),
        "{}",
        capped.reason
    );
    assert!(!engine.request(&facts(0, 10)).verdict.allowed);
}

#[test]
fn the_default_set_refuses_a_request_whose_ticket_does_not_match_the_resource_pattern() {
    let (catalog, facts) = advanced_org();
    let engine = PolicyEngine::load(
        &files(&[("policies/default.cedar", QUICKSTART_POLICY)]),
        &catalog,
        &facts,
    )
    .unwrap();
    let requester = catalog.users.keys().next().unwrap().clone();
    let mut input = request(&requester, "payments-db", "read", "30m");
    input.ticket = None;
    let missing = engine.decide_request(&input);
    assert!(!missing.allowed);
    let determining: Vec<&str> = missing.determining.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(determining, ["ticket-required"]);
    input.ticket = Some("see slack".into());
    assert!(!engine.decide_request(&input).allowed);
    input.ticket = Some("INC-4211".into());
    assert!(engine.decide_request(&input).allowed);
    // metrics-db has no pattern: no ticket needed.
    let mut free = request(&requester, "metrics-db", "read", "30m");
    free.ticket = None;
    assert!(engine.decide_request(&free).allowed);
}

#[test]
fn view_audit_policies_decide_whose_audit_trail_a_user_reads() {
    use latch_core::catalog::Visibility;
    let rules = "@id(\"security-reads-payments\")\npermit (principal in Latch::Team::\"security\", action == Latch::Action::\"view_audit\", resource == Latch::Resource::\"payments-db\");\n";
    let mut catalog = quickstart_catalog();
    // dave is in security; take away his auditor role so only policy can let him read.
    if let Some(dave) = catalog.users.get_mut("dave") {
        dave.roles.clear();
    }
    let engine = PolicyEngine::load(
        &files(&[("audit.cedar", rules)]),
        &catalog,
        &OrgFacts::default(),
    )
    .unwrap();
    catalog.policy = Some(latch_core::policy::SharedPolicy(std::sync::Arc::new(
        engine,
    )));
    let Visibility::Some { resources, .. } = catalog.visibility("dave") else {
        panic!("dave is not an auditor any more");
    };
    assert!(resources.contains("payments-db"));
    // bob leads payments, but this policy set gives leads nothing: policy decides, not the
    // built-in rule.
    let Visibility::Some { resources, .. } = catalog.visibility("bob") else {
        panic!("bob sees everything?");
    };
    assert!(resources.is_empty());
}
