//! Unit and property tests of the lifecycle.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::{Resource, ResourceKind, ResourceRole, Team, User, UserRole};

fn user(name: &str, teams: &[&str], manager: Option<&str>, roles: &[UserRole]) -> (String, User) {
    (
        name.to_owned(),
        User {
            name: name.to_owned(),
            email: format!("{name}@example.com"),
            teams: teams.iter().map(|t| t.to_string()).collect(),
            manager: manager.map(str::to_owned),
            roles: roles.iter().copied().collect(),
        },
    )
}

/// alice (requester, manager carol), bob (lead of payments), carol, dave (auditor), erin (admin).
fn catalog() -> Catalog {
    let max = |secs| AccessDuration::from_secs(secs).unwrap();
    Catalog {
        users: BTreeMap::from([
            user("alice", &["payments"], Some("carol"), &[]),
            user("bob", &["payments"], None, &[]),
            user("carol", &["eng"], None, &[]),
            user("dave", &["audit"], None, &[UserRole::Auditor]),
            user("erin", &["platform"], None, &[UserRole::Admin]),
        ]),
        teams: BTreeMap::from([
            (
                "payments".into(),
                Team {
                    name: "payments".into(),
                    leads: BTreeSet::from(["bob".into()]),
                    parent: Some("eng".into()),
                },
            ),
            (
                "eng".into(),
                Team {
                    name: "eng".into(),
                    leads: BTreeSet::from(["carol".into()]),
                    parent: None,
                },
            ),
        ]),
        resources: BTreeMap::from([(
            "payments-db".into(),
            Resource {
                name: "payments-db".into(),
                kind: ResourceKind::Postgres,
                owner_team: "payments".into(),
                roles: BTreeMap::from([
                    (
                        "read".into(),
                        ResourceRole {
                            name: "read".into(),
                            max_duration: max(4 * 3600),
                        },
                    ),
                    (
                        "write".into(),
                        ResourceRole {
                            name: "write".into(),
                            max_duration: max(3600),
                        },
                    ),
                ]),
            },
        )]),
        pending_timeout: Some(max(24 * 3600)),
        escalate_after: None,
        policy: None,
    }
}

const T0: Timestamp = Timestamp::from_millis(1_795_000_000_000);

fn at(secs: i64) -> Timestamp {
    Timestamp::from_millis(T0.as_millis() + secs * 1000)
}

fn create(requester: &str, role: &str, duration: &str) -> Command {
    Command::Create {
        requester: requester.into(),
        resource: "payments-db".into(),
        role: role.into(),
        duration: duration.parse().unwrap(),
        reason: "INC-1: stuck job".into(),
        ticket: Some("INC-1".into()),
        once: false,
        history: Default::default(),
    }
}

/// Runs commands in order, returning the state and every event, panicking on a refusal.
fn run(commands: &[(i64, Command)]) -> (Option<AccessRequest>, Vec<Event>) {
    let catalog = catalog();
    let mut state = None;
    let mut log = Vec::new();
    for (secs, command) in commands {
        let events = decide("req_1", state.as_ref(), command, &catalog, at(*secs)).unwrap();
        for event in &events {
            state = Some(apply(state, event).unwrap());
        }
        log.extend(events);
    }
    (state, log)
}

fn refusal(commands: &[(i64, Command)], last: (i64, Command)) -> Refusal {
    let (state, _) = run(commands);
    decide("req_1", state.as_ref(), &last.1, &catalog(), at(last.0)).unwrap_err()
}

#[test]
fn approval_by_the_owner_team_lead_grants_for_the_requested_duration() {
    let (state, events) = run(&[
        (0, create("alice", "read", "30m")),
        (
            60,
            Command::Approve {
                approver: "bob".into(),
                comment: Some("ok".into()),
            },
        ),
    ]);
    let request = state.unwrap();
    assert_eq!(request.state, RequestState::Granted);
    let grant = request.grant.unwrap();
    assert_eq!(grant.id, "grt_1");
    assert_eq!((grant.starts_at, grant.expires_at), (at(60), at(60 + 1800)));
    let types: Vec<_> = events.iter().map(|e| e.kind.type_name()).collect();
    assert_eq!(
        types,
        ["request.created", "request.approved", "grant.issued"]
    );
    assert_eq!(events[1].actor, Actor::user("bob"));
}

#[test]
fn the_requesters_manager_may_approve() {
    let (state, _) = run(&[
        (0, create("alice", "read", "30m")),
        (
            1,
            Command::Approve {
                approver: "carol".into(),
                comment: None,
            },
        ),
    ]);
    assert_eq!(state.unwrap().state, RequestState::Granted);
}

#[test]
fn refusals_say_what_was_wrong() {
    let catalog = catalog();
    let message = |command: Command| {
        decide("req_1", None, &command, &catalog, T0)
            .unwrap_err()
            .message
    };
    assert_eq!(
        message(create("alice", "wirte", "30m")),
        "unknown role `wirte` for resource `payments-db` (roles: read, write)"
    );
    assert_eq!(
        message(create("alice", "write", "2h")),
        "duration `2h` is above the maximum `1h` for role `write` on `payments-db`: ask for `1h` or less"
    );
    assert_eq!(
        message(Command::Create {
            requester: "alice".into(),
            resource: "payments".into(),
            role: "read".into(),
            duration: "1h".parse().unwrap(),
            reason: "x".into(),
            ticket: None,
            once: false,
            history: Default::default(),
        }),
        "unknown resource `payments` (resources: payments-db)"
    );
    assert_eq!(
        message(Command::Create {
            requester: "alice".into(),
            resource: "payments-db".into(),
            role: "read".into(),
            duration: "1h".parse().unwrap(),
            reason: "   ".into(),
            ticket: None,
            once: false,
            history: Default::default(),
        }),
        "reason is empty: say why you need access, e.g. `INC-4211: stuck job`"
    );
    let with_reason = |reason: &str| Command::Create {
        requester: "alice".into(),
        resource: "payments-db".into(),
        role: "read".into(),
        duration: "1h".parse().unwrap(),
        reason: reason.into(),
        ticket: None,
        once: false,
        history: Default::default(),
    };
    assert_eq!(
        message(with_reason("stuck\u{0}job")),
        "reason contains control characters: use plain text"
    );
    assert_eq!(
        message(with_reason(&"x".repeat(MAX_REASON_CHARS + 1))),
        "reason is longer than 2000 characters"
    );
    assert!(
        decide(
            "req_1",
            None,
            &with_reason("line one\nline two\t."),
            &catalog,
            T0
        )
        .is_ok()
    );
    assert_eq!(
        message(create("mallory", "read", "1h")).split(':').next(),
        Some("unknown user `mallory`")
    );
}

#[test]
fn nobody_approves_their_own_request_or_someone_elses_without_standing() {
    let created = [(0, create("bob", "read", "30m"))];
    let own = refusal(
        &created,
        (
            1,
            Command::Approve {
                approver: "bob".into(),
                comment: None,
            },
        ),
    );
    assert_eq!(own.kind, RefusalKind::Forbidden);
    assert_eq!(
        own.message,
        "`bob` cannot approve or deny their own request `req_1`"
    );

    let created = [(0, create("alice", "read", "30m"))];
    let stranger = refusal(
        &created,
        (
            1,
            Command::Approve {
                approver: "dave".into(),
                comment: None,
            },
        ),
    );
    assert_eq!(stranger.kind, RefusalKind::Forbidden);
    assert_eq!(
        stranger.message,
        "`dave` may not decide on request `req_1`: it needs a lead of team `payments` (owner of `payments-db`) or `carol`, the requester's manager"
    );
}

#[test]
fn only_pending_requests_are_decided_and_only_active_grants_revoked() {
    let granted = [
        (0, create("alice", "read", "30m")),
        (
            1,
            Command::Approve {
                approver: "bob".into(),
                comment: None,
            },
        ),
    ];
    let again = refusal(
        &granted,
        (
            2,
            Command::Approve {
                approver: "carol".into(),
                comment: None,
            },
        ),
    );
    assert_eq!(again.kind, RefusalKind::Conflict);
    assert_eq!(
        again.message,
        "request `req_1` is granted: only a pending request can be approved"
    );

    let expired = [
        (0, create("alice", "read", "30m")),
        (
            1,
            Command::Approve {
                approver: "bob".into(),
                comment: None,
            },
        ),
        (1801, Command::Expire),
    ];
    let late = refusal(
        &expired,
        (
            2000,
            Command::Revoke {
                by: "bob".into(),
                reason: "done".into(),
            },
        ),
    );
    assert_eq!(late.kind, RefusalKind::Conflict);
    assert_eq!(
        late.message,
        format!("grant `grt_1` already expired at {}", at(1801))
    );
}

#[test]
fn grants_expire_only_when_due_and_requests_time_out_only_when_due() {
    let granted = [
        (0, create("alice", "read", "30m")),
        (
            1,
            Command::Approve {
                approver: "bob".into(),
                comment: None,
            },
        ),
    ];
    assert_eq!(
        refusal(&granted, (1800, Command::Expire)).kind,
        RefusalKind::Conflict
    );
    let (state, _) = run(&[
        granted[0].clone(),
        granted[1].clone(),
        (1801, Command::Expire),
    ]);
    let grant = state.unwrap().grant.unwrap();
    assert_eq!(
        (grant.state, grant.ended_at),
        (GrantState::Expired, Some(at(1801)))
    );

    let pending = [(0, create("alice", "read", "30m"))];
    assert_eq!(
        refusal(&pending, (3600, Command::TimeOut)).kind,
        RefusalKind::Conflict
    );
    let late_approval = refusal(
        &pending,
        (
            86_400,
            Command::Approve {
                approver: "bob".into(),
                comment: None,
            },
        ),
    );
    assert_eq!(
        late_approval.message,
        format!(
            "request `req_1` timed out at {}: ask for access again",
            at(86_400)
        )
    );
    let (state, _) = run(&[pending[0].clone(), (86_400, Command::TimeOut)]);
    assert_eq!(state.unwrap().state, RequestState::TimedOut);
}

#[test]
fn cancel_is_for_the_requester_or_an_admin() {
    let pending = [(0, create("alice", "read", "30m"))];
    assert_eq!(
        refusal(&pending, (1, Command::Cancel { by: "bob".into() })).kind,
        RefusalKind::Forbidden
    );
    let (state, _) = run(&[
        pending[0].clone(),
        (1, Command::Cancel { by: "erin".into() }),
    ]);
    let request = state.unwrap();
    assert_eq!(
        (request.state, request.closed_by.as_deref()),
        (RequestState::Cancelled, Some("erin"))
    );
}

// ---- properties over random sequences of operations ----

const PEOPLE: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "mallory"];

fn any_command() -> impl Strategy<Value = Command> {
    let person = prop::sample::select(PEOPLE.to_vec()).prop_map(str::to_owned);
    let text = prop::sample::select(vec!["", " ", "done", "INC-9"]).prop_map(str::to_owned);
    prop_oneof![
        (
            person.clone(),
            prop::sample::select(vec!["read", "write", "admin"]),
            1u64..20_000,
            text.clone()
        )
            .prop_map(|(requester, role, secs, reason)| Command::Create {
                requester,
                resource: "payments-db".into(),
                role: role.into(),
                duration: AccessDuration::from_secs(secs).unwrap(),
                reason,
                ticket: None,
                once: false,
                history: Default::default(),
            }),
        (person.clone(), prop::option::of(text.clone()))
            .prop_map(|(approver, comment)| Command::Approve { approver, comment }),
        (person.clone(), text.clone())
            .prop_map(|(approver, reason)| Command::Deny { approver, reason }),
        person.clone().prop_map(|by| Command::Cancel { by }),
        (person, text).prop_map(|(by, reason)| Command::Revoke { by, reason }),
        Just(Command::Expire),
        Just(Command::TimeOut),
    ]
}

proptest! {
    #[test]
    fn lifecycle_invariants_hold(steps in prop::collection::vec((0i64..30_000, any_command()), 1..40)) {
        let catalog = catalog();
        let mut now = T0;
        let mut state: Option<AccessRequest> = None;
        let mut log: Vec<Event> = Vec::new();
        for (advance_secs, command) in steps {
            now = Timestamp::from_millis(now.as_millis() + advance_secs * 100);
            match decide("req_1", state.as_ref(), &command, &catalog, now) {
                Err(_) => {}
                Ok(events) => {
                    // Exactly one event per transition: approving to the required count is two
                    // transitions (approved, granted); every other accepted command is one.
                    let expected = match (&command, &state) {
                        (Command::Approve { .. }, Some(r)) if r.approvals.len() + 1 >= r.required_approvals as usize => 2,
                        _ => 1,
                    };
                    prop_assert_eq!(events.len(), expected);
                    let before = state.clone();
                    for event in &events {
                        prop_assert_eq!(event.at, now);
                        prop_assert_eq!(&event.actor, &command.actor());
                        state = Some(apply(state, event).unwrap());
                    }
                    prop_assert_ne!(before, state.clone(), "an accepted command changed nothing");
                    log.extend(events);
                }
            }
            if let Some(request) = &state {
                // No grant without a valid approval; nobody approves their own request.
                if let Some(grant) = &request.grant {
                    prop_assert!(request.approvals.len() >= request.required_approvals as usize);
                    for approval in &request.approvals {
                        prop_assert_ne!(&approval.approver, &request.requester);
                        prop_assert!(catalog.may_approve(&approval.approver, &request.requester, &request.resource));
                    }
                    // Expiry no later than start + the role's max.
                    let max = catalog.resources[&request.resource].roles[&request.role].max_duration;
                    prop_assert!(grant.expires_at <= grant.starts_at.saturating_add(max));
                    prop_assert!(grant.state == GrantState::Active || grant.ended_at.is_some());
                    if grant.state == GrantState::Expired {
                        prop_assert!(grant.ended_at >= Some(grant.expires_at));
                    }
                }
                // Replaying the events rebuilds the state exactly.
                let replayed = replay(&log).unwrap();
                prop_assert_eq!(replayed.as_ref(), Some(request));
            }
        }
    }
}

/// A policy that asks for two approvals, one of them from team `audit`, and lets anyone but
/// the requester approve.
struct TwoPartyPolicy;

impl crate::policy::AccessPolicy for TwoPartyPolicy {
    fn request(&self, _: &crate::policy::RequestFacts<'_>) -> crate::policy::RequestVerdict {
        crate::policy::RequestVerdict {
            verdict: crate::policy::Verdict {
                allowed: true,
                reason: String::new(),
                policies: vec!["two-party".into()],
            },
            approvals: 2,
            max_duration: None,
            approver_groups: vec!["audit".into()],
            auto_approve: false,
        }
    }
    fn approve(
        &self,
        approver: &str,
        request: &AccessRequest,
        _: Timestamp,
    ) -> crate::policy::Verdict {
        crate::policy::Verdict {
            allowed: approver != request.requester,
            reason: "not the requester".into(),
            policies: vec!["anyone-else".into()],
        }
    }
    fn revoke(&self, _: &str, _: &AccessRequest, _: Timestamp) -> crate::policy::Verdict {
        crate::policy::Verdict::default()
    }
    fn self_approve(&self, request: &AccessRequest, _: Timestamp) -> crate::policy::Verdict {
        crate::policy::Verdict {
            allowed: request.role == "read",
            reason: "break-glass is for reads only".into(),
            policies: vec!["on-call-break-glass".into()],
        }
    }
    fn missing_groups(&self, approvers: &[String], groups: &[String]) -> Vec<String> {
        let catalog = catalog();
        groups
            .iter()
            .filter(|g| {
                !approvers
                    .iter()
                    .any(|a| catalog.users[a].teams.contains(*g))
            })
            .cloned()
            .collect()
    }
}

#[test]
fn multi_party_approval_waits_for_every_required_group() {
    let mut catalog = catalog();
    catalog.policy = Some(crate::policy::SharedPolicy(std::sync::Arc::new(
        TwoPartyPolicy,
    )));
    let mut state = None;
    let mut step = |command: Command| {
        let events = decide("req_1", state.as_ref(), &command, &catalog, T0).unwrap();
        for event in &events {
            state = Some(apply(state.clone(), event).unwrap());
        }
        events
            .iter()
            .map(|e| e.kind.type_name())
            .collect::<Vec<_>>()
    };
    assert_eq!(step(create("alice", "read", "30m")), ["request.created"]);
    assert_eq!(
        step(Command::Approve {
            approver: "bob".into(),
            comment: None
        }),
        ["request.approval_recorded"]
    );
    // Two approvals, but nobody from `audit` yet: still pending.
    assert_eq!(
        step(Command::Approve {
            approver: "carol".into(),
            comment: None
        }),
        ["request.approval_recorded"]
    );
    assert_eq!(
        step(Command::Approve {
            approver: "dave".into(),
            comment: None
        }),
        ["request.approved", "grant.issued"]
    );
    let request = state.unwrap();
    assert_eq!(
        (request.required_approvals, request.approver_groups.clone()),
        (2, vec!["audit".to_owned()])
    );
    assert_eq!(request.state, RequestState::Granted);
}

/// A policy that grants every request at once.
struct AutoApprove;

impl crate::policy::AccessPolicy for AutoApprove {
    fn request(&self, _: &crate::policy::RequestFacts<'_>) -> crate::policy::RequestVerdict {
        crate::policy::RequestVerdict {
            verdict: crate::policy::Verdict {
                allowed: true,
                reason: String::new(),
                policies: vec!["low-risk-read".into()],
            },
            approvals: 1,
            max_duration: None,
            approver_groups: Vec::new(),
            auto_approve: true,
        }
    }
    fn approve(&self, _: &str, _: &AccessRequest, _: Timestamp) -> crate::policy::Verdict {
        crate::policy::Verdict::default()
    }
    fn revoke(&self, _: &str, _: &AccessRequest, _: Timestamp) -> crate::policy::Verdict {
        crate::policy::Verdict::default()
    }
    fn missing_groups(&self, _: &[String], _: &[String]) -> Vec<String> {
        Vec::new()
    }
    fn self_approve(&self, _: &AccessRequest, _: Timestamp) -> crate::policy::Verdict {
        crate::policy::Verdict::default()
    }
}

#[test]
fn an_auto_approved_request_is_granted_by_latch_naming_the_policy() {
    let mut catalog = catalog();
    catalog.policy = Some(crate::policy::SharedPolicy(std::sync::Arc::new(
        AutoApprove,
    )));
    let events = decide("req_1", None, &create("alice", "read", "30m"), &catalog, T0).unwrap();
    let types: Vec<_> = events.iter().map(|e| e.kind.type_name()).collect();
    assert_eq!(
        types,
        ["request.created", "request.approved", "grant.issued"]
    );
    assert_eq!(events[1].actor, Actor::System);
    assert!(
        matches!(&events[1].kind, EventKind::RequestApproved { policies, .. } if policies == &vec!["low-risk-read".to_owned()])
    );
    let request = replay(&events).unwrap().unwrap();
    assert_eq!(request.state, RequestState::Granted);
    assert!(
        request.approvals.is_empty(),
        "nobody approved it: latch did, under policy"
    );
}

#[test]
fn break_glass_is_allowed_only_where_policy_says_and_is_flagged() {
    let builtin = catalog();
    let (state, _) = run(&[(0, create("alice", "read", "30m"))]);
    let glass = Command::BreakGlass {
        by: "alice".into(),
        reason: "prod down".into(),
    };
    let refused = decide("req_1", state.as_ref(), &glass, &builtin, at(1)).unwrap_err();
    assert_eq!(refused.kind, RefusalKind::Forbidden);
    assert!(
        refused
            .message
            .contains("the built-in rule never allows self-approval"),
        "{}",
        refused.message
    );

    let mut with_policy = catalog();
    with_policy.policy = Some(crate::policy::SharedPolicy(std::sync::Arc::new(
        TwoPartyPolicy,
    )));
    let pending = decide(
        "req_1",
        None,
        &create("alice", "read", "30m"),
        &with_policy,
        T0,
    )
    .unwrap();
    let pending = replay(&pending).unwrap();
    let someone_else = Command::BreakGlass {
        by: "bob".into(),
        reason: "x".into(),
    };
    assert_eq!(
        decide(
            "req_1",
            pending.as_ref(),
            &someone_else,
            &with_policy,
            at(1)
        )
        .unwrap_err()
        .kind,
        RefusalKind::Forbidden
    );
    let events = decide("req_1", pending.as_ref(), &glass, &with_policy, at(1)).unwrap();
    assert!(matches!(
        &events[0].kind,
        EventKind::RequestApproved { break_glass: true, policies, comment: Some(comment) }
            if policies == &vec!["on-call-break-glass".to_owned()] && comment == "break-glass: prod down"
    ));
    let mut state = pending;
    for event in &events {
        state = Some(apply(state, event).unwrap());
    }
    assert_eq!(state.unwrap().state, RequestState::Granted);

    let write = decide(
        "req_2",
        None,
        &create("alice", "write", "30m"),
        &with_policy,
        T0,
    )
    .unwrap();
    let write = replay(&write).unwrap();
    let refused = decide("req_2", write.as_ref(), &glass, &with_policy, at(1)).unwrap_err();
    assert_eq!(
        refused.message,
        "`alice` may not break glass on request `req_2`: break-glass is for reads only"
    );
}

/// The test catalog with escalation after an hour and `gina`, a second lead of `eng` (the parent
/// of the owner team `payments`), who may approve only once a request is escalated.
fn escalating_catalog() -> Catalog {
    let mut catalog = catalog();
    catalog.escalate_after = AccessDuration::from_secs(3600);
    catalog.users.extend([user("gina", &["eng"], None, &[])]);
    if let Some(eng) = catalog.teams.get_mut("eng") {
        eng.leads.insert("gina".into());
    }
    catalog
}

fn step(
    catalog: &Catalog,
    state: Option<AccessRequest>,
    command: &Command,
    secs: i64,
) -> Result<(Option<AccessRequest>, Vec<Event>), Refusal> {
    let events = decide("req_1", state.as_ref(), command, catalog, at(secs))?;
    let mut state = state;
    for event in &events {
        state = Some(apply(state, event).unwrap());
    }
    Ok((state, events))
}

#[test]
fn an_unapproved_request_escalates_to_the_parent_teams_leads_who_may_then_approve() {
    let catalog = escalating_catalog();
    let approve = Command::Approve {
        approver: "gina".into(),
        comment: None,
    };
    let (state, _) = step(&catalog, None, &create("alice", "read", "30m"), 0).unwrap();
    let early = step(&catalog, state.clone(), &approve, 60).unwrap_err();
    assert_eq!(early.kind, RefusalKind::Forbidden, "{early}");
    let not_yet = step(&catalog, state.clone(), &Command::Escalate, 3599).unwrap_err();
    assert_eq!(not_yet.kind, RefusalKind::Conflict);
    let (state, events) = step(&catalog, state, &Command::Escalate, 3600).unwrap();
    // carol could approve already (alice's manager): only gina is new.
    assert_eq!(
        events[0].kind,
        EventKind::RequestEscalated {
            level: 1,
            to: vec!["gina".into()]
        }
    );
    assert_eq!(events[0].actor, Actor::System);
    let request = state.clone().unwrap();
    assert_eq!(
        (request.escalation_level, request.state),
        (1, RequestState::Pending)
    );
    // The next level is due an hour later, not at once.
    let again = step(&catalog, state.clone(), &Command::Escalate, 3601).unwrap_err();
    assert_eq!(again.kind, RefusalKind::Conflict);
    let (state, _) = step(&catalog, state, &approve, 3700).unwrap();
    assert_eq!(state.unwrap().state, RequestState::Granted);
}

#[test]
fn escalation_stops_after_the_maximum_and_needs_configuring() {
    let plain = catalog();
    let (state, _) = step(&plain, None, &create("alice", "read", "30m"), 0).unwrap();
    let off = step(&plain, state, &Command::Escalate, 99_999).unwrap_err();
    assert!(off.message.contains("escalate_after"), "{off}");

    let catalog = escalating_catalog();
    let (mut state, _) = step(&catalog, None, &create("alice", "read", "30m"), 0).unwrap();
    for level in 1..=MAX_ESCALATIONS {
        let secs = 3600 * i64::from(level);
        state = step(&catalog, state, &Command::Escalate, secs).unwrap().0;
    }
    let over = step(&catalog, state, &Command::Escalate, 999_999).unwrap_err();
    assert_eq!(over.kind, RefusalKind::Conflict, "{over}");
}

#[test]
fn a_single_use_grant_is_consumed_once_and_an_ordinary_one_is_not() {
    let catalog = catalog();
    let mut once = create("alice", "read", "30m");
    if let Command::Create { once: flag, .. } = &mut once {
        *flag = true;
    }
    let approve = Command::Approve {
        approver: "bob".into(),
        comment: None,
    };
    let (state, _) = step(&catalog, None, &once, 0).unwrap();
    let (state, _) = step(&catalog, state, &approve, 10).unwrap();
    assert!(state.as_ref().unwrap().once);
    let (state, events) = step(&catalog, state, &Command::Consume, 20).unwrap();
    assert_eq!(events[0].kind.type_name(), "grant.expired");
    assert_eq!(state.clone().unwrap().state, RequestState::Expired);
    assert!(step(&catalog, state, &Command::Consume, 30).is_err());

    let (state, _) = step(&catalog, None, &create("alice", "read", "30m"), 0).unwrap();
    let (state, _) = step(&catalog, state, &approve, 10).unwrap();
    let refused = step(&catalog, state, &Command::Consume, 20).unwrap_err();
    assert!(refused.message.contains("not single-use"), "{refused}");
}
