//! Policy tests: a TOML table of questions and the answers expected, run like a test runner
//! (`latch policy test FILE`).
//!
//! ```toml
//! # Optional: values every case starts from (any case key but `name`).
//! [defaults]
//! now = "2026-01-07T10:00:00Z"       # RFC 3339; default: this instant, a Wednesday 10:00 UTC
//!
//! [[case]]
//! name = "alice may read payments-db"  # required, unique
//! principal = "alice"                  # required: who asks
//! action = "request"                   # required: request | approve | self_approve | revoke |
//!                                      #   connect | view_audit | administer
//! resource = "payments-db"             # required
//! role = "read"                        # required but for view_audit and administer
//! duration = "1h"                      # default: the role's maximum
//! ticket = "INC-42"                    # default: none
//! open_requests = 0                    # request: the requester's open requests (default 0)
//! recent_requests = 0                  # request: their requests in the last 24 h (default 0)
//! requester = "bob"                    # approve, revoke: whose request (default: principal)
//! approvals_so_far = 0                 # approve: approvals already given (default 0)
//! pending = "5h"                       # approve: how long the request has waited (default 0)
//!
//! expect = "allow"                     # required: "allow" or "deny"
//! # Checked only when present:
//! approvals = 1                        # request: approvals needed
//! approver_groups = []                 # request: teams that must each approve
//! max_duration = "4h"                  # request: the policy maximum ("none" for none)
//! auto_approve = false                 # request
//! break_glass = false                  # request: self_approve would be allowed
//! determining = ["request-any-role"]   # ids of the determining policies, in any order
//! reason_contains = "open requests"    # a text one of the reasons contains
//! ```
//!
//! Unknown keys are refused, so that a misspelt expectation cannot pass silently.

use std::collections::BTreeSet;
use std::fmt;

use latch_core::{AccessDuration, Timestamp};
use serde::Deserialize;

use crate::decide::Action;
use crate::engine::PolicyEngine;
use crate::explain::Query;

/// The instant a case is decided at when neither it nor `[defaults]` says: Wednesday
/// 2026-01-07 10:00 UTC, inside business hours.
pub const DEFAULT_NOW: &str = "2026-01-07T10:00:00Z";

/// A test file that cannot be run: bad TOML, or cases that do not make sense.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct TestFileError {
    /// One line per problem, naming the case.
    pub problems: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    defaults: RawCase,
    #[serde(default)]
    case: Vec<RawCase>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: Option<String>,
    principal: Option<String>,
    action: Option<String>,
    resource: Option<String>,
    role: Option<String>,
    duration: Option<String>,
    ticket: Option<String>,
    now: Option<String>,
    open_requests: Option<u32>,
    recent_requests: Option<u32>,
    requester: Option<String>,
    approvals_so_far: Option<u32>,
    pending: Option<String>,
    expect: Option<String>,
    approvals: Option<u32>,
    approver_groups: Option<Vec<String>>,
    max_duration: Option<String>,
    auto_approve: Option<bool>,
    break_glass: Option<bool>,
    determining: Option<Vec<String>>,
    reason_contains: Option<String>,
}

impl RawCase {
    /// This case with the defaults filled in where it is silent.
    fn over(self, defaults: &RawCase) -> RawCase {
        let d = defaults.clone();
        RawCase {
            name: self.name,
            principal: self.principal.or(d.principal),
            action: self.action.or(d.action),
            resource: self.resource.or(d.resource),
            role: self.role.or(d.role),
            duration: self.duration.or(d.duration),
            ticket: self.ticket.or(d.ticket),
            now: self.now.or(d.now),
            open_requests: self.open_requests.or(d.open_requests),
            recent_requests: self.recent_requests.or(d.recent_requests),
            requester: self.requester.or(d.requester),
            approvals_so_far: self.approvals_so_far.or(d.approvals_so_far),
            pending: self.pending.or(d.pending),
            expect: self.expect.or(d.expect),
            approvals: self.approvals.or(d.approvals),
            approver_groups: self.approver_groups.or(d.approver_groups),
            max_duration: self.max_duration.or(d.max_duration),
            auto_approve: self.auto_approve.or(d.auto_approve),
            break_glass: self.break_glass.or(d.break_glass),
            determining: self.determining.or(d.determining),
            reason_contains: self.reason_contains.or(d.reason_contains),
        }
    }
}

/// One case, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestCase {
    pub name: String,
    pub query: Query,
    pub expect: Expectation,
}

/// What a case expects; `None` fields are not checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    pub allow: bool,
    pub approvals: Option<u32>,
    pub approver_groups: Option<Vec<String>>,
    /// `Some(None)`: expects no policy maximum.
    pub max_duration: Option<Option<AccessDuration>>,
    pub auto_approve: Option<bool>,
    pub break_glass: Option<bool>,
    pub determining: Option<Vec<String>>,
    pub reason_contains: Option<String>,
}

/// Parses a test file.
pub fn parse_tests(text: &str) -> Result<Vec<TestCase>, TestFileError> {
    let raw: RawFile = toml::from_str(text).map_err(|err| TestFileError {
        problems: vec![err.to_string().trim_end().to_owned()],
    })?;
    if raw.defaults.name.is_some() || raw.defaults.expect.is_some() {
        return Err(TestFileError {
            problems: vec![
                "[defaults]: `name` and `expect` belong to each case, not to the defaults"
                    .to_owned(),
            ],
        });
    }
    let mut problems = Vec::new();
    let mut cases = Vec::new();
    let mut names = BTreeSet::new();
    for (number, case) in raw.case.into_iter().enumerate() {
        let case = case.over(&raw.defaults);
        let label = match &case.name {
            Some(name) => format!("case `{name}`"),
            None => format!("case {}", number + 1),
        };
        let mut problem = |message: String| problems.push(format!("{label}: {message}"));
        let Some(name) = case.name.clone() else {
            problem("`name` is missing: give every case a name".to_owned());
            continue;
        };
        if !names.insert(name.clone()) {
            problem("another case has the same name: names must be unique".to_owned());
        }
        let mut required = |key: &str, value: &Option<String>| match value {
            Some(value) => value.clone(),
            None => {
                problem(format!("`{key}` is missing"));
                String::new()
            }
        };
        let principal = required("principal", &case.principal);
        let resource = required("resource", &case.resource);
        let action_text = required("action", &case.action);
        let expect_text = required("expect", &case.expect);
        let mut problem = |message: String| problems.push(format!("{label}: {message}"));
        let action = Action::parse(&action_text);
        if action.is_none() && !action_text.is_empty() {
            problem(format!(
                "unknown action `{action_text}` (actions: {})",
                Action::ALL.map(Action::as_str).join(", ")
            ));
        }
        if let Some(action) = action
            && action.takes_role()
            && case.role.is_none()
        {
            problem(format!("`role` is missing: action `{action}` is on a role"));
        }
        let allow = match expect_text.as_str() {
            "allow" => true,
            "deny" => false,
            "" => false,
            other => {
                problem(format!(
                    "`expect = \"{other}\"`: expected `allow` or `deny`"
                ));
                false
            }
        };
        let mut duration_of = |key: &str, value: &Option<String>| -> Option<AccessDuration> {
            let text = value.as_deref()?;
            match text.parse::<AccessDuration>() {
                Ok(duration) => Some(duration),
                Err(err) => {
                    problem(format!("`{key}`: {err}"));
                    None
                }
            }
        };
        let duration = duration_of("duration", &case.duration);
        let pending = duration_of("pending", &case.pending);
        let max_duration = match case.max_duration.as_deref() {
            None => None,
            Some("none") => Some(None),
            Some(_) => Some(duration_of("max_duration", &case.max_duration)),
        };
        let mut problem = |message: String| problems.push(format!("{label}: {message}"));
        let now_text = case.now.as_deref().unwrap_or(DEFAULT_NOW);
        let now = match Timestamp::parse(now_text) {
            Ok(now) => now,
            Err(err) => {
                problem(format!("`now`: {err}"));
                Timestamp::from_millis(0)
            }
        };
        let Some(action) = action else { continue };
        cases.push(TestCase {
            name,
            query: Query {
                principal,
                action,
                resource,
                role: case.role,
                duration,
                ticket: case.ticket,
                now,
                open_requests: case.open_requests.unwrap_or(0),
                recent_requests: case.recent_requests.unwrap_or(0),
                requester: case.requester,
                approvals_so_far: case.approvals_so_far.unwrap_or(0),
                pending_secs: pending.map_or(0, AccessDuration::as_secs),
            },
            expect: Expectation {
                allow,
                approvals: case.approvals,
                approver_groups: case.approver_groups.map(|mut groups| {
                    groups.sort();
                    groups
                }),
                max_duration,
                auto_approve: case.auto_approve,
                break_glass: case.break_glass,
                determining: case.determining.map(|mut ids| {
                    ids.sort();
                    ids
                }),
                reason_contains: case.reason_contains,
            },
        });
    }
    if problems.is_empty() {
        Ok(cases)
    } else {
        Err(TestFileError { problems })
    }
}

/// The outcome of one case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseResult {
    pub name: String,
    /// Empty when the case passed; otherwise one `expected …, got …` line per mismatch.
    pub failures: Vec<String>,
    /// The engine's explanation, kept for failed cases.
    pub explanation: Option<String>,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Every case of a file, run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestReport {
    pub cases: Vec<CaseResult>,
}

impl TestReport {
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed()).count()
    }

    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }

    pub fn ok(&self) -> bool {
        self.failed() == 0
    }
}

impl fmt::Display for TestReport {
    /// Like `cargo test`: one line per case, then the failures in detail, then a summary.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "running {} policy tests", self.cases.len())?;
        for case in &self.cases {
            let verdict = if case.passed() { "ok" } else { "FAILED" };
            writeln!(f, "test {} ... {verdict}", case.name)?;
        }
        let failed: Vec<&CaseResult> = self.cases.iter().filter(|c| !c.passed()).collect();
        if !failed.is_empty() {
            writeln!(f, "\nfailures:")?;
            for case in &failed {
                writeln!(f, "\n---- {} ----", case.name)?;
                for failure in &case.failures {
                    writeln!(f, "{failure}")?;
                }
                if let Some(explanation) = &case.explanation {
                    for line in explanation.lines() {
                        writeln!(f, "  | {line}")?;
                    }
                }
            }
        }
        writeln!(
            f,
            "\ntest result: {}. {} passed; {} failed",
            if self.ok() { "ok" } else { "FAILED" },
            self.passed(),
            self.failed()
        )
    }
}

/// Parses `text` as a test file and runs every case against `engine`.
pub fn run_tests(engine: &PolicyEngine, text: &str) -> Result<TestReport, TestFileError> {
    let cases = parse_tests(text)?;
    Ok(TestReport {
        cases: cases.iter().map(|case| run_case(engine, case)).collect(),
    })
}

/// Runs one case.
pub fn run_case(engine: &PolicyEngine, case: &TestCase) -> CaseResult {
    let evaluation = engine.evaluate(&case.query);
    let decision = &evaluation.decision;
    let expect = &case.expect;
    let mut failures = Vec::new();
    let word = |allow: bool| if allow { "allow" } else { "deny" };
    if decision.allowed != expect.allow {
        failures.push(format!(
            "expected {}, got {}",
            word(expect.allow),
            word(decision.allowed)
        ));
    }
    let requirements = evaluation.requirements.clone().unwrap_or_default();
    let mut check = |what: &str, expected: String, got: String| {
        if expected != got {
            failures.push(format!("{what}: expected {expected}, got {got}"));
        }
    };
    if let Some(approvals) = expect.approvals {
        check(
            "approvals",
            approvals.to_string(),
            requirements.approvals.to_string(),
        );
    }
    if let Some(groups) = &expect.approver_groups {
        check(
            "approver_groups",
            format!("{groups:?}"),
            format!("{:?}", requirements.approver_groups),
        );
    }
    if let Some(max) = &expect.max_duration {
        let show =
            |d: &Option<AccessDuration>| d.map_or_else(|| "none".to_owned(), |d| d.to_string());
        check("max_duration", show(max), show(&requirements.max_duration));
    }
    if let Some(auto) = expect.auto_approve {
        check(
            "auto_approve",
            auto.to_string(),
            requirements.auto_approve.to_string(),
        );
    }
    if let Some(glass) = expect.break_glass {
        check(
            "break_glass",
            glass.to_string(),
            requirements.break_glass_allowed.to_string(),
        );
    }
    if let Some(ids) = &expect.determining {
        let mut got: Vec<String> = decision.determining.iter().map(|p| p.id.clone()).collect();
        got.sort();
        check("determining", format!("{ids:?}"), format!("{got:?}"));
    }
    if let Some(text) = &expect.reason_contains
        && !decision.reasons.iter().any(|r| r.contains(text.as_str()))
    {
        failures.push(format!(
            "reasons: expected one containing {text:?}, got {:?}",
            decision.reasons
        ));
    }
    let explanation = (!failures.is_empty()).then(|| engine.explain(&case.query));
    CaseResult {
        name: case.name.clone(),
        failures,
        explanation,
    }
}
