//! One script per checkpoint that triggers it and one that does not, with the findings as
//! people read them.

use std::sync::Arc;

use expect_test::{Expect, expect};
use latch_audit::{AuditSettings, Auditor, Checkpoint, Severity};
use latch_core::policy::{AccessPolicy, RequestFacts, RequestVerdict, SharedPolicy, Verdict};
use latch_core::{AccessRequest, Timestamp};

use crate::script::{Ask, Script, catalog, only, rules, run, run_with};

fn check(checkpoint: Checkpoint, script: &Script, expected: Expect) {
    expected.assert_eq(&only(checkpoint, &run(script)));
}

fn check_findings(checkpoint: Checkpoint, findings: &[latch_audit::Finding], expected: Expect) {
    expected.assert_eq(&only(checkpoint, findings));
}

fn none(checkpoint: Checkpoint, script: &Script) {
    assert_eq!(only(checkpoint, &run(script)), "");
}

// ---- justification ----------------------------------------------------------------------------

#[test]
fn justification_missing() {
    let mut s = Script::new();
    s.request(
        "req_a",
        Ask {
            ticket: None,
            ..Ask::default()
        },
    );
    s.request(
        "req_b",
        Ask {
            ticket: Some("JIRA-9"),
            ..Ask::default()
        },
    );
    check(
        Checkpoint::JustificationMissing,
        &s,
        expect![[r#"
        justification.missing:req_a medium +0s [1]
          bob's request for write on payments-db has no ticket (payments-db requires one matching `PAY-[0-9]+`)
        justification.missing:req_b medium +0s [2]
          bob's ticket `JIRA-9` for write on payments-db does not match `PAY-[0-9]+`
    "#]],
    );
}

#[test]
fn justification_present() {
    let mut s = Script::new();
    s.ask("req_a");
    // ledger-db asks for no ticket.
    s.request(
        "req_b",
        Ask {
            ticket: None,
            resource: "ledger-db",
            ..Ask::default()
        },
    );
    none(Checkpoint::JustificationMissing, &s);
}

#[test]
fn justification_weak() {
    let mut s = Script::new();
    for (id, reason) in [
        ("req_a", "Test"),
        ("req_b", "need access."),
        ("req_c", "aaaaaaaaaaaa"),
        ("req_d", "fix fix fix"),
        ("req_e", "PAY-17"),
    ] {
        s.request(
            id,
            Ask {
                reason,
                requester: "alice",
                ..Ask::default()
            },
        );
        s.wait("1h");
    }
    // The fourth identical reason in a row is copy-pasted.
    for id in ["req_f", "req_g", "req_h", "req_i"] {
        s.ask(id).wait("1h");
    }
    check(
        Checkpoint::JustificationWeak,
        &s,
        expect![[r#"
        justification.weak:req_a low +0s [1]
          alice's reason `Test` for write on payments-db is boilerplate
        justification.weak:req_b low +3600s [2]
          alice's reason `need access.` for write on payments-db is boilerplate
        justification.weak:req_c low +7200s [3]
          alice's reason `aaaaaaaaaaaa` for write on payments-db is repetitive
        justification.weak:req_d low +10800s [4]
          alice's reason `fix fix fix` for write on payments-db is repetitive
        justification.weak:req_e low +14400s [5]
          alice's reason `PAY-17` for write on payments-db is too short (6 characters, fewer than 10)
        justification.weak:req_i low +28800s [9]
          bob's reason `PAY-17: reconcile the stuck payout batch` for write on payments-db repeats their previous 3 reasons
    "#]],
    );
}

#[test]
fn justification_strong() {
    let mut s = Script::new();
    for (id, reason) in [
        ("req_a", "PAY-17: reconcile the stuck payout batch"),
        ("req_b", "PAY-18: refund for order 5521 went missing"),
        ("req_c", "PAY-17: reconcile the stuck payout batch"),
    ] {
        s.request(
            id,
            Ask {
                reason,
                ..Ask::default()
            },
        );
        s.wait("1h");
    }
    none(Checkpoint::JustificationWeak, &s);
}

// ---- approvals ----------------------------------------------------------------------------------

#[test]
fn approval_self() {
    let mut s = Script::new();
    s.ask("req_a")
        .wait("5m")
        .approve("req_a", "bob", Some("imported"));
    check(
        Checkpoint::ApprovalSelf,
        &s,
        expect![[r#"
        approval.self:req_a high +300s [1, 2]
          bob approved their own request for write on payments-db outside break-glass
    "#]],
    );
}

#[test]
fn approval_by_another() {
    let mut s = Script::new();
    s.ask("req_a")
        .wait("5m")
        .approve("req_a", "carol", Some("ok"));
    none(Checkpoint::ApprovalSelf, &s);
}

#[test]
fn approval_unauthorized_under_the_built_in_rule() {
    let mut s = Script::new();
    s.ask("req_a")
        .wait("5m")
        .approve("req_a", "mallory", Some("sure"));
    s.ask("req_b").wait("5m").record_approval("req_b", "erin");
    check(
        Checkpoint::ApprovalUnauthorized,
        &s,
        expect![[r#"
        approval.unauthorized:req_a:mallory high +300s [1, 2]
          mallory approved bob's request for write on payments-db but is neither a lead of payments (owner of payments-db) nor bob's manager
        approval.unauthorized:req_b:erin high +600s [4, 5]
          erin approved bob's request for write on payments-db but is neither a lead of payments (owner of payments-db) nor bob's manager
    "#]],
    );
}

#[test]
fn approval_entitled_under_the_built_in_rule() {
    let mut s = Script::new();
    // carol leads the owner team and manages bob; dave was brought in by escalation.
    s.ask("req_a")
        .wait("5m")
        .approve("req_a", "carol", Some("ok"));
    s.request(
        "req_b",
        Ask {
            requester: "carol",
            ..Ask::default()
        },
    )
    .wait("5m");
    s.approve("req_b", "dave", Some("ok"));
    s.ask("req_c").wait("1h");
    s.push(
        latch_core::Actor::System,
        "req_c",
        latch_core::EventKind::RequestEscalated {
            level: 1,
            to: vec!["erin".to_owned()],
        },
    );
    s.approve("req_c", "erin", Some("covering for carol"));
    none(Checkpoint::ApprovalUnauthorized, &s);
}

/// Entitles only erin to approve.
struct OnlyErin;

impl AccessPolicy for OnlyErin {
    fn request(&self, _: &RequestFacts<'_>) -> RequestVerdict {
        RequestVerdict::default()
    }

    fn approve(&self, approver: &str, request: &AccessRequest, _: Timestamp) -> Verdict {
        assert_eq!(request.state, latch_core::RequestState::Pending);
        Verdict {
            allowed: approver == "erin",
            reason: format!("only erin approves on `{}`", request.resource),
            policies: Vec::new(),
        }
    }

    fn revoke(&self, _: &str, _: &AccessRequest, _: Timestamp) -> Verdict {
        Verdict::default()
    }

    fn self_approve(&self, _: &AccessRequest, _: Timestamp) -> Verdict {
        Verdict::default()
    }

    fn missing_groups(&self, _: &[String], _: &[String]) -> Vec<String> {
        Vec::new()
    }
}

#[test]
fn approval_unauthorized_under_a_policy() {
    let mut org = catalog();
    org.policy = Some(SharedPolicy(Arc::new(OnlyErin)));
    let mut s = Script::new();
    s.ask("req_a")
        .wait("5m")
        .approve("req_a", "carol", Some("ok"));
    s.ask("req_b")
        .wait("5m")
        .approve("req_b", "erin", Some("ok"));
    let findings = run_with(AuditSettings::default(), org, rules(), &s);
    expect![[r#"
        approval.unauthorized:req_a:carol high +300s [1, 2]
          carol approved bob's request for write on payments-db but policy does not entitle them: only erin approves on `payments-db`
    "#]].assert_eq(&only(Checkpoint::ApprovalUnauthorized, &findings));
}

#[test]
fn approval_rubber_stamp_fast_and_silent() {
    let mut s = Script::new();
    s.ask("req_a").wait("4s").approve("req_a", "carol", None);
    check(
        Checkpoint::ApprovalRubberStamp,
        &s,
        expect![[r#"
        approval.rubber_stamp:req_a:carol low +4s [1, 2]
          carol approved bob's request for write on payments-db 4s after it was made, without a comment
    "#]],
    );
}

#[test]
fn approval_considered() {
    let mut s = Script::new();
    s.ask("req_a")
        .wait("4s")
        .approve("req_a", "carol", Some("checked PAY-17"));
    s.ask("req_b").wait("5m").approve("req_b", "carol", None);
    none(Checkpoint::ApprovalRubberStamp, &s);
}

#[test]
fn approval_rubber_stamp_approver_who_approves_everything() {
    let mut s = Script::new();
    for i in 0..25 {
        let id = format!("req_{i}");
        s.ask(&id)
            .wait("5m")
            .approve(&id, "carol", Some("ok"))
            .wait("1h");
    }
    check(
        Checkpoint::ApprovalRubberStamp,
        &s,
        expect![[r#"
        approval.rubber_stamp:approver:carol:2026-11-03T00:00:00.000Z low +74400s [2, 5, 8, 11, 14, 17, 20, 23, 26, 29, 32, 35, 38, 41, 44, 47, 50, 53, 56, 59]
          carol approved 20 of 20 decisions (100%) within 30d
    "#]],
    );
}

#[test]
fn approval_by_an_approver_who_also_denies() {
    let mut s = Script::new();
    for i in 0..40 {
        let id = format!("req_{i}");
        s.ask(&id).wait("5m");
        if i % 5 == 0 {
            s.deny(&id, "carol");
        } else {
            s.approve(&id, "carol", Some("ok"));
        }
        s.wait("1h");
    }
    none(Checkpoint::ApprovalRubberStamp, &s);
}

#[test]
fn approval_break_glass() {
    let mut s = Script::new();
    s.ask("req_a").wait("10s").break_glass("req_a");
    let findings = run(&s);
    expect![[r#"
        approval.break_glass:req_a high +10s [1, 2]
          bob broke glass on their own request for write on payments-db: `break-glass: payouts are down`
    "#]].assert_eq(&only(Checkpoint::ApprovalBreakGlass, &findings));
    // Break-glass is a self-approval by design: reported as such, not as approval.self.
    assert_eq!(only(Checkpoint::ApprovalSelf, &findings), "");
}

#[test]
fn approval_without_break_glass() {
    let mut s = Script::new();
    s.ask("req_a")
        .wait("10m")
        .approve("req_a", "carol", Some("ok"));
    none(Checkpoint::ApprovalBreakGlass, &s);
}

// ---- usage --------------------------------------------------------------------------------------

#[test]
fn usage_scope() {
    let mut s = Script::new();
    s.request(
        "req_r",
        Ask {
            role: "read",
            ..Ask::default()
        },
    );
    s.wait("5m")
        .approve("req_r", "carol", Some("ok"))
        .wait("1m");
    s.session("ses_r", "req_r");
    s.statement("ses_r", "write", &["public.accounts"], "refused", None);
    s.statement("ses_r", "ddl", &["public.accounts"], "rows", None);
    s.statement(
        "ses_r",
        "read",
        &["accounts", "pg_catalog.pg_class", "pg_class"],
        "rows",
        Some(1),
    );
    s.statement(
        "ses_r",
        "read",
        &["public.secrets", "public.payments_2026"],
        "rows",
        Some(1),
    );
    s.close("ses_r");
    check(
        Checkpoint::UsageScope,
        &s,
        expect![[r#"
        usage.scope:ses_r:1 medium +360s [4, 5]
          bob's write statement 1 under read role `read` on payments-db was refused
        usage.scope:ses_r:2 high +360s [4, 6]
          bob's ddl statement 2 under read role `read` on payments-db was executed
        usage.scope:ses_r:4 medium +360s [4, 8]
          bob's statement 4 on payments-db touched `public.secrets`, outside the declared scope
    "#]],
    );
}

#[test]
fn usage_in_scope() {
    let mut s = Script::new();
    s.ask("req_w")
        .wait("5m")
        .approve("req_w", "carol", Some("ok"))
        .wait("1m");
    s.session("ses_w", "req_w");
    s.statement("ses_w", "write", &["public.accounts"], "rows", Some(1));
    s.statement(
        "ses_w",
        "read",
        &["public.payments_2026", "accounts"],
        "rows",
        Some(10),
    );
    s.close("ses_w");
    // No declared scope on ledger-db: anything goes.
    s.request(
        "req_l",
        Ask {
            resource: "ledger-db",
            ..Ask::default()
        },
    );
    s.wait("5m").approve("req_l", "dave", Some("ok")).wait("1m");
    s.session("ses_l", "req_l");
    s.statement("ses_l", "read", &["internal.everything"], "rows", Some(1));
    none(Checkpoint::UsageScope, &s);
}

#[test]
fn usage_scope_is_capped_per_session() {
    let mut s = Script::new();
    s.request(
        "req_r",
        Ask {
            role: "read",
            ..Ask::default()
        },
    );
    s.wait("5m")
        .approve("req_r", "carol", Some("ok"))
        .session("ses_r", "req_r");
    for _ in 0..30 {
        s.statement("ses_r", "write", &["public.accounts"], "refused", None);
    }
    let findings = run(&s);
    let scope = findings
        .iter()
        .filter(|f| f.checkpoint == Checkpoint::UsageScope)
        .count();
    assert_eq!(scope, 20);
    assert!(
        findings
            .iter()
            .all(|f| f.checkpoint != Checkpoint::UsageScope || f.severity == Severity::Medium)
    );
}

#[test]
fn usage_outside_window() {
    let mut s = Script::new();
    s.request(
        "req_a",
        Ask {
            duration: "30m",
            ..Ask::default()
        },
    );
    s.wait("1m").approve("req_a", "carol", Some("ok"));
    s.session("ses_a", "req_a").read("ses_a", 1);
    s.wait("30m")
        .expire("req_a")
        .wait("3s")
        .read("ses_a", 1)
        .read("ses_a", 1);
    s.end("ses_a", "grant_expired", Some(3_500));
    check(
        Checkpoint::UsageOutsideWindow,
        &s,
        expect![[r#"
        usage.outside_window:ses_a high +1863s [3, 7]
          bob's statement 2 on payments-db ran 3s after its grant ended
    "#]],
    );
}

#[test]
fn usage_inside_window() {
    let mut s = Script::new();
    s.request(
        "req_a",
        Ask {
            duration: "30m",
            ..Ask::default()
        },
    );
    s.wait("1m").approve("req_a", "carol", Some("ok"));
    s.session("ses_a", "req_a").read("ses_a", 1);
    // Within the revocation tolerance of the end, and refused after it: fine.
    s.wait("30m").expire("req_a").wait_ms(400).read("ses_a", 1);
    s.wait("5s")
        .statement("ses_a", "read", &["public.accounts"], "refused", None);
    s.end("ses_a", "grant_expired", Some(400));
    none(Checkpoint::UsageOutsideWindow, &s);
}

#[test]
fn usage_off_hours() {
    let mut s = Script::new();
    // Wednesday 10:00 + 10h = 20:00.
    s.wait("10h")
        .ask("req_a")
        .wait("5m")
        .approve("req_a", "carol", Some("ok"));
    s.session("ses_a", "req_a")
        .read("ses_a", 1)
        .read("ses_a", 1)
        .close("ses_a");
    // Saturday 11:00.
    s.wait("2d15h")
        .ask("req_b")
        .wait("5m")
        .approve("req_b", "carol", Some("ok"));
    s.session("ses_b", "req_b").read("ses_b", 1).close("ses_b");
    check(
        Checkpoint::UsageOffHours,
        &s,
        expect![[r#"
        usage.off_hours:ses_a low +36300s [4, 5]
          bob used payments-db on Wednesday at 20:05 UTC, outside business hours
        usage.off_hours:ses_b low +263400s [11, 12]
          bob used payments-db on Saturday at 11:10 UTC, outside business hours
    "#]],
    );
}

#[test]
fn usage_in_business_hours_or_unchecked() {
    let mut s = Script::new();
    s.ask("req_a")
        .wait("5m")
        .approve("req_a", "carol", Some("ok"));
    s.session("ses_a", "req_a").read("ses_a", 1).close("ses_a");
    none(Checkpoint::UsageOffHours, &s);
    let mut late = Script::new();
    late.wait("12h")
        .ask("req_a")
        .wait("5m")
        .approve("req_a", "carol", Some("ok"));
    late.session("ses_a", "req_a").read("ses_a", 1);
    let settings = AuditSettings {
        business_hours: None,
        ..AuditSettings::default()
    };
    let findings = run_with(settings, catalog(), rules(), &late);
    assert_eq!(only(Checkpoint::UsageOffHours, &findings), "");
}

#[test]
fn usage_first_time() {
    let mut s = Script::new();
    s.ask("req_a")
        .wait("5m")
        .approve("req_a", "carol", Some("ok"));
    s.session("ses_a", "req_a")
        .close("ses_a")
        .session("ses_b", "req_a")
        .close("ses_b");
    s.ask("req_b")
        .wait("5m")
        .approve("req_b", "carol", Some("ok"));
    s.session("ses_c", "req_b").close("ses_c");
    check(
        Checkpoint::UsageFirstTime,
        &s,
        expect![[r#"
        usage.first_time:bob:payments-db info +300s [4]
          bob opened their first session on payments-db (as write)
    "#]],
    );
}

#[test]
fn usage_bulk_read() {
    let mut s = Script::new();
    s.ask("req_a")
        .wait("5m")
        .approve("req_a", "carol", Some("ok"));
    s.session("ses_a", "req_a").read("ses_a", 50_000);
    for _ in 0..6 {
        s.read("ses_a", 9_000);
    }
    // Strict recording: the rows come with the outcome.
    s.statement("ses_a", "read", &["public.accounts"], "pending", None);
    s.outcome("ses_a", 8, 12_000);
    check(
        Checkpoint::UsageBulkRead,
        &s,
        expect![[r#"
            usage.bulk_read:ses_a:1 medium +300s [4, 5]
              bob's read (statement 1) on payments-db returned 50,000 rows (threshold 10,000)
            usage.bulk_read:ses_a:total medium +300s [4, 11]
              bob's session ses_a on payments-db read 104,000 rows in total (threshold 100,000)
            usage.bulk_read:ses_a:8 medium +300s [4, 13]
              bob's read (statement 8) on payments-db returned 12,000 rows (threshold 10,000)
        "#]],
    );
}

#[test]
fn usage_modest_reads() {
    let mut s = Script::new();
    s.ask("req_a")
        .wait("5m")
        .approve("req_a", "carol", Some("ok"));
    s.session("ses_a", "req_a")
        .read("ses_a", 9_999)
        .read("ses_a", 5_000);
    // Rows written are not rows read.
    s.statement(
        "ses_a",
        "write",
        &["public.accounts"],
        "rows",
        Some(200_000),
    );
    none(Checkpoint::UsageBulkRead, &s);
}

// ---- revocation -----------------------------------------------------------------------------

#[test]
fn revocation_late() {
    let mut s = Script::new();
    for (id, session, delay) in [("req_a", "ses_a", 2_500), ("req_b", "ses_b", 120_000)] {
        s.request(
            id,
            Ask {
                duration: "30m",
                ..Ask::default()
            },
        );
        s.wait("1m")
            .approve(id, "carol", Some("ok"))
            .session(session, id)
            .read(session, 1);
        s.wait("30m")
            .expire(id)
            .wait_ms(delay)
            .end(session, "grant_expired", Some(delay));
        s.wait("1h");
    }
    // Never closed: the tick after the grant's end (plus tolerance and settle) reports it, and
    // the late session end does not report it again.
    s.request(
        "req_c",
        Ask {
            duration: "30m",
            ..Ask::default()
        },
    );
    s.wait("1m")
        .approve("req_c", "carol", Some("ok"))
        .session("ses_c", "req_c");
    s.wait("30m")
        .expire("req_c")
        .wait("1m")
        .end("ses_c", "grant_expired", Some(60_000));
    let late = run(&s);
    // A session closed long after the end, seen before the tick that would call it open.
    let mut t = Script::new();
    t.request(
        "req_d",
        Ask {
            duration: "30m",
            ..Ask::default()
        },
    );
    t.wait("1m")
        .approve("req_d", "carol", Some("ok"))
        .session("ses_d", "req_d");
    t.wait("30m")
        .expire("req_d")
        .wait("2m")
        .end("ses_d", "grant_expired", Some(120_000));
    let settings = AuditSettings {
        settle: std::time::Duration::from_secs(600),
        ..AuditSettings::default()
    };
    let mut findings = late;
    findings.extend(run_with(settings, catalog(), rules(), &t));
    check_findings(
        Checkpoint::RevocationLate,
        &findings,
        expect![[r#"
            revocation.late:ses_a medium +1862s [3, 4, 6, 7]
              bob's session ses_a on payments-db was closed 2.5s after grant grt_a ended (tolerance 1s)
            revocation.late:ses_b medium +7323s [10, 11, 13]
              bob's session ses_b on payments-db was still open 1s after grant grt_b ended
            revocation.late:ses_c medium +12903s [17, 18, 19]
              bob's session ses_c on payments-db was still open 1s after grant grt_c ended
            revocation.late:ses_d high +1980s [3, 4, 5, 6]
              bob's session ses_d on payments-db was closed 2m after grant grt_d ended (tolerance 1s)
        "#]],
    );
}

#[test]
fn revocation_on_time() {
    let mut s = Script::new();
    s.request(
        "req_a",
        Ask {
            duration: "30m",
            ..Ask::default()
        },
    );
    s.wait("1m")
        .approve("req_a", "carol", Some("ok"))
        .session("ses_a", "req_a");
    s.wait("30m")
        .expire("req_a")
        .wait_ms(300)
        .end("ses_a", "grant_expired", Some(300));
    s.request(
        "req_b",
        Ask {
            duration: "30m",
            ..Ask::default()
        },
    );
    s.wait("1m")
        .approve("req_b", "carol", Some("ok"))
        .session("ses_b", "req_b");
    s.wait("10m").close("ses_b").wait("20m").expire("req_b");
    none(Checkpoint::RevocationLate, &s);
}

// ---- grants -------------------------------------------------------------------------------------

#[test]
fn grant_unused() {
    let mut s = Script::new();
    s.ask("req_a")
        .wait("5m")
        .approve("req_a", "carol", Some("ok"))
        .wait("1h")
        .expire("req_a");
    // Revoked before any session: unused too.
    s.ask("req_b")
        .wait("5m")
        .approve("req_b", "carol", Some("ok"))
        .wait("5m")
        .revoke("req_b", "bob");
    // Neither expired nor revoked by an event: the tick past its end checks it.
    s.ask("req_c")
        .wait("5m")
        .approve("req_c", "carol", Some("ok"));
    check(
        Checkpoint::GrantUnused,
        &s,
        expect![[r#"
        grant.unused:grt_a low +3900s [3, 4]
          bob's grant for write on payments-db (1h) ended without a session
        grant.unused:grt_b low +4500s [7, 8]
          bob's grant for write on payments-db (1h) ended without a session
        grant.unused:grt_c low +8400s [11]
          bob's grant for write on payments-db (1h) ended without a session
    "#]],
    );
}

#[test]
fn grant_used() {
    let mut s = Script::new();
    s.ask("req_a")
        .wait("5m")
        .approve("req_a", "carol", Some("ok"));
    s.session("ses_a", "req_a")
        .close("ses_a")
        .wait("1h")
        .expire("req_a");
    none(Checkpoint::GrantUnused, &s);
}

#[test]
fn grant_idle_tail() {
    let mut s = Script::new();
    s.request(
        "req_a",
        Ask {
            duration: "4h",
            ..Ask::default()
        },
    );
    s.wait("5m").approve("req_a", "carol", Some("ok"));
    s.session("ses_a", "req_a")
        .wait("10m")
        .read("ses_a", 1)
        .close("ses_a");
    s.wait("3h50m").expire("req_a");
    check(
        Checkpoint::GrantIdleTail,
        &s,
        expect![[r#"
        grant.idle_tail:grt_a low +14700s [3, 6, 7]
          bob's grant for write on payments-db was idle for the last 3h50m of 4h
    "#]],
    );
}

#[test]
fn grant_used_to_the_end() {
    let mut s = Script::new();
    s.request(
        "req_a",
        Ask {
            duration: "4h",
            ..Ask::default()
        },
    );
    s.wait("5m").approve("req_a", "carol", Some("ok"));
    s.session("ses_a", "req_a")
        .wait("3h40m")
        .read("ses_a", 1)
        .close("ses_a");
    s.wait("20m").expire("req_a");
    // Idle for most of a short grant, but not for 30 minutes.
    s.request(
        "req_b",
        Ask {
            duration: "30m",
            ..Ask::default()
        },
    );
    s.wait("5m").approve("req_b", "carol", Some("ok"));
    s.session("ses_b", "req_b")
        .close("ses_b")
        .wait("30m")
        .expire("req_b");
    none(Checkpoint::GrantIdleTail, &s);
}

/// Five grants of an hour, each used for about ten minutes.
fn modest_history(s: &mut Script, requester: &'static str) {
    for i in 0..5 {
        let id = format!("req_{requester}_{i}");
        let session = format!("ses_{requester}_{i}");
        s.request(
            &id,
            Ask {
                requester,
                ..Ask::default()
            },
        );
        s.wait("5m")
            .approve(&id, "carol", Some("ok"))
            .session(&session, &id);
        s.wait("10m")
            .read(&session, 1)
            .close(&session)
            .wait("50m")
            .expire(&id)
            .wait("1h");
    }
}

#[test]
fn grant_excessive() {
    let mut s = Script::new();
    modest_history(&mut s, "bob");
    s.request(
        "req_big",
        Ask {
            duration: "8h",
            ..Ask::default()
        },
    );
    s.wait("5m").approve("req_big", "carol", Some("ok"));
    // alice has no history of her own: her team's is used.
    s.request(
        "req_alice",
        Ask {
            requester: "alice",
            duration: "2h",
            ..Ask::default()
        },
    );
    s.wait("5m").approve("req_alice", "carol", Some("ok"));
    check(
        Checkpoint::GrantExcessive,
        &s,
        expect![[r#"
            grant.excessive:grt_big low +37800s [38]
              bob was granted write on payments-db for 8h; their last 5 grants there were used for a median 10m
            grant.excessive:grt_alice low +38100s [41]
              alice was granted write on payments-db for 2h; the last 5 grants of team payments there were used for a median 10m
        "#]],
    );
}

#[test]
fn grant_in_proportion() {
    let mut s = Script::new();
    // Too little history to judge.
    for i in 0..4 {
        let id = format!("req_{i}");
        s.ask(&id).wait("5m").approve(&id, "carol", Some("ok"));
        s.session(&format!("ses_{i}"), &id)
            .wait("10m")
            .close(&format!("ses_{i}"));
        s.wait("50m").expire(&id).wait("1h");
    }
    s.request(
        "req_big",
        Ask {
            duration: "8h",
            ..Ask::default()
        },
    );
    s.wait("5m").approve("req_big", "carol", Some("ok"));
    none(Checkpoint::GrantExcessive, &s);
    // Enough history, asking for what is usually used.
    let mut t = Script::new();
    modest_history(&mut t, "bob");
    t.request(
        "req_fit",
        Ask {
            duration: "30m",
            ..Ask::default()
        },
    );
    t.wait("5m").approve("req_fit", "carol", Some("ok"));
    none(Checkpoint::GrantExcessive, &t);
}

// ---- requests -----------------------------------------------------------------------------------

#[test]
fn requests_burst() {
    let mut s = Script::new();
    for i in 0..7 {
        s.ask(&format!("req_{i}")).wait("1m");
    }
    check(
        Checkpoint::RequestsBurst,
        &s,
        expect![[r#"
        requests.burst:bob:2026-11-18T10:00:00.000Z medium +240s [1, 2, 3, 4, 5]
          bob made 5 requests within 10m
    "#]],
    );
}

#[test]
fn requests_spread_out() {
    let mut s = Script::new();
    for i in 0..10 {
        s.ask(&format!("req_{i}")).wait("3m");
    }
    none(Checkpoint::RequestsBurst, &s);
}

#[test]
fn requests_standing_candidate() {
    let mut s = Script::new();
    let team = ["alice", "bob", "mallory", "carol"];
    for i in 0..22 {
        s.request(
            &format!("req_{i}"),
            Ask {
                requester: team[i % 4],
                ..Ask::default()
            },
        );
        s.wait("1d");
    }
    check(
        Checkpoint::RequestsStandingCandidate,
        &s,
        expect![[r#"
        requests.standing_candidate:payments:payments-db:2026-12-03T00:00:00.000Z info +1641600s [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]
          team payments requested payments-db 20 times within 30d: a candidate for standing access
    "#]],
    );
}

#[test]
fn requests_now_and_then() {
    let mut s = Script::new();
    for i in 0..19 {
        s.ask(&format!("req_{i}")).wait("1d");
    }
    // And the twentieth a month later.
    s.wait("30d").ask("req_last");
    none(Checkpoint::RequestsStandingCandidate, &s);
}

// ---- the auditor as a whole ---------------------------------------------------------------------

#[test]
fn disabled_checkpoints_and_severity_overrides() {
    let mut s = Script::new();
    s.request(
        "req_a",
        Ask {
            reason: "test",
            ticket: None,
            ..Ask::default()
        },
    );
    let settings = AuditSettings {
        disabled: [Checkpoint::JustificationWeak].into(),
        severities: [(Checkpoint::JustificationMissing, Severity::Critical)].into(),
        ..AuditSettings::default()
    };
    let findings = run_with(settings, catalog(), rules(), &s);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].checkpoint, Checkpoint::JustificationMissing);
    assert_eq!(findings[0].severity, Severity::Critical);
}

#[test]
fn unknown_references_are_ignored() {
    let mut s = Script::new();
    // Approvals, grant ends and session records about things never created.
    s.ask("req_real");
    let mut ghost = Script::new();
    ghost
        .ask("req_ghost")
        .wait("5m")
        .approve("req_ghost", "mallory", None);
    ghost
        .session("ses_ghost", "req_ghost")
        .read("ses_ghost", 1_000_000)
        .close("ses_ghost");
    ghost.expire("req_ghost");
    let mut auditor = Auditor::new(AuditSettings::default(), Arc::new(catalog()), rules());
    // Skip the ghost's request.created and grant.issued.
    let mut findings = Vec::new();
    for event in ghost.events.iter().filter(|e| {
        !matches!(
            e.event.kind,
            latch_core::EventKind::RequestCreated { .. }
                | latch_core::EventKind::GrantIssued { .. }
        )
    }) {
        findings.extend(auditor.observe(event));
    }
    findings.extend(auditor.tick(Timestamp::from_millis(ghost.now + 86_400_000)));
    let checkpoints: Vec<&str> = findings.iter().map(|f| f.checkpoint.as_str()).collect();
    // The session is known from its own start; the grant and request are not.
    assert_eq!(
        checkpoints,
        ["usage.first_time", "usage.bulk_read", "usage.bulk_read"]
    );
}

#[test]
fn state_is_dropped_once_it_cannot_matter() {
    let mut s = Script::new();
    for i in 0..50 {
        let id = format!("req_{i}");
        let session = format!("ses_{i}");
        s.ask(&id).wait("5m").approve(&id, "carol", Some("ok"));
        s.session(&session, &id).read(&session, 10).close(&session);
        s.wait("1h").expire(&id);
    }
    s.ask("req_denied").wait("1m").deny("req_denied", "carol");
    s.ask("req_pending");
    let mut auditor = Auditor::new(AuditSettings::default(), Arc::new(catalog()), rules());
    auditor.replay(&s.events, Timestamp::from_millis(s.now));
    let stats = auditor.stats();
    assert!(stats.grants <= 2 && stats.sessions == 0, "{stats:?}");
    assert_eq!(stats.requests, 1, "only the pending request is kept");
    // A day later every grant's state is gone; the pending request goes after 30 days.
    auditor.tick(Timestamp::from_millis(s.now + 86_400_000));
    let stats = auditor.stats();
    assert_eq!(
        (stats.grants, stats.sessions, stats.timers, stats.requests),
        (0, 0, 0, 1)
    );
    auditor.tick(Timestamp::from_millis(s.now + 31 * 86_400_000));
    let stats = auditor.stats();
    assert_eq!((stats.requests, stats.windows), (0, 0), "{stats:?}");
    assert!(stats.history > 0, "first uses and used durations stay");
}

#[test]
fn a_day_in_the_life() {
    let mut s = Script::new();
    s.request(
        "req_1",
        Ask {
            reason: "test",
            ticket: None,
            role: "read",
            ..Ask::default()
        },
    );
    s.wait("3s").approve("req_1", "carol", None).wait("1m");
    s.session("ses_1", "req_1");
    s.statement("ses_1", "write", &["public.secrets"], "refused", None);
    s.read("ses_1", 20_000).close("ses_1");
    s.wait("2h").expire("req_1");
    s.request(
        "req_2",
        Ask {
            requester: "alice",
            ..Ask::default()
        },
    );
    s.wait("1m")
        .break_glass("req_2")
        .wait("5m")
        .revoke("req_2", "alice");
    expect![[r#"
        justification.missing:req_1 medium +0s [1]
          bob's request for read on payments-db has no ticket (payments-db requires one matching `PAY-[0-9]+`)
        justification.weak:req_1 low +0s [1]
          bob's reason `test` for read on payments-db is boilerplate
        approval.rubber_stamp:req_1:carol low +3s [1, 2]
          carol approved bob's request for read on payments-db 3s after it was made, without a comment
        usage.first_time:bob:payments-db info +63s [4]
          bob opened their first session on payments-db (as read)
        usage.scope:ses_1:1 medium +63s [4, 5]
          bob's write statement 1 under read role `read` on payments-db was refused and touched `public.secrets`, outside the declared scope
        usage.bulk_read:ses_1:2 medium +63s [4, 6]
          bob's read (statement 2) on payments-db returned 20,000 rows (threshold 10,000)
        grant.idle_tail:grt_1 low +3603s [3, 7]
          bob's grant for read on payments-db was idle for the last 59m of 1h
        approval.break_glass:req_2 high +7323s [9, 10]
          alice broke glass on their own request for write on payments-db: `break-glass: payouts are down`
        grant.unused:grt_2 low +7623s [11, 12]
          alice's grant for write on payments-db (1h) ended without a session
    "#]].assert_eq(&crate::script::render(&run(&s)));
}
