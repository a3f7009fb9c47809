//! Snapshots of what people (and Slack, and Teams) read, for every kind of notice, and routing.

use std::collections::{BTreeMap, BTreeSet};

use expect_test::{Expect, expect};
use latch_core::lifecycle::apply;
use latch_core::{
    AccessDuration, AccessRequest, Actor, Catalog, Event, EventKind, Resource, ResourceKind,
    StoredEvent, Team, Timestamp, User,
};
use serde_json::Value;

use crate::*;

const T0: i64 = 1_795_000_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_millis(T0 + secs * 1000)
}

fn user(name: &str) -> Actor {
    Actor::user(name)
}

fn created(id: &str, required_approvals: u32) -> Event {
    Event {
        at: at(0),
        actor: user("alice"),
        subject: id.into(),
        kind: EventKind::RequestCreated {
            requester: "alice".into(),
            resource: "payments-db".into(),
            role: "read".into(),
            duration_secs: 1800,
            reason: "INC-4211: stuck <job> & retries\nsee <!channel> runbook".into(),
            ticket: Some("INC-4211".into()),
            required_approvals,
            pending_until: Some(at(3600)),
            policies: Vec::new(),
            approver_groups: Vec::new(),
            once: false,
        },
    }
}

fn grant_issued(id: &str, secs: i64) -> Event {
    Event {
        at: at(secs),
        actor: user("carol"),
        subject: id.into(),
        kind: EventKind::GrantIssued {
            grant_id: id.replace("req_", "grt_"),
            grantee: "alice".into(),
            resource: "payments-db".into(),
            role: "read".into(),
            starts_at: at(secs),
            expires_at: at(secs + 1800),
        },
    }
}

fn event(secs: i64, actor: Actor, subject: &str, kind: EventKind) -> Event {
    Event {
        at: at(secs),
        actor,
        subject: subject.into(),
        kind,
    }
}

/// The notice for the last of `events` (seq = their count), with the request folded from all
/// the events about it, as the server would pass it.
fn notice_of(events: &[Event]) -> Option<Notice> {
    let last = events.last()?;
    let mut request: Option<AccessRequest> = None;
    for event in events {
        if event.subject.starts_with("req_") {
            request = apply(request, event).ok();
        }
    }
    let ctx = NoticeContext {
        request,
        approvers: vec!["bob".into(), "carol".into()],
        base_url: Some("https://latch.example.com/".into()),
    };
    let stored = StoredEvent {
        seq: u64::try_from(events.len()).unwrap(),
        event: last.clone(),
    };
    Notice::from_event(&stored, &ctx)
}

fn approved_story() -> Vec<Event> {
    vec![
        created("req_01", 2),
        event(
            60,
            user("bob"),
            "req_01",
            EventKind::ApprovalRecorded {
                comment: Some("ok from me".into()),
                policies: Vec::new(),
            },
        ),
        event(
            120,
            user("carol"),
            "req_01",
            EventKind::RequestApproved {
                comment: None,
                policies: Vec::new(),
                break_glass: false,
            },
        ),
        grant_issued("req_01", 120),
    ]
}

/// Every kind of notice, by name, built from a realistic history.
fn every_notice() -> Vec<(&'static str, Notice)> {
    let mut stories: Vec<(&'static str, Vec<Event>)> = Vec::new();
    let story = approved_story();
    stories.push(("created", story[..1].to_vec()));
    stories.push(("approval recorded", story[..2].to_vec()));
    stories.push(("approved", story[..3].to_vec()));
    stories.push(("grant issued", story.clone()));
    let mut revoked = story.clone();
    revoked.push(event(
        600,
        user("bob"),
        "req_01",
        EventKind::GrantRevoked {
            grant_id: "grt_01".into(),
            reason: "incident closed".into(),
        },
    ));
    stories.push(("revoked", revoked.clone()));
    revoked.push(event(
        601,
        Actor::System,
        "ses_01",
        EventKind::SessionEnded {
            grant_id: "grt_01".into(),
            reason: "grant_revoked".into(),
            detail: None,
            bytes_in: 1200,
            bytes_out: 56000,
            statements: 14,
            revocation_delay_ms: Some(120),
        },
    ));
    stories.push(("session cut", revoked));
    let mut expired = story.clone();
    expired.push(event(
        1920,
        Actor::System,
        "req_01",
        EventKind::GrantExpired {
            grant_id: "grt_01".into(),
        },
    ));
    stories.push(("expired", expired));
    stories.push((
        "denied",
        vec![
            created("req_02", 1),
            event(
                60,
                user("bob"),
                "req_02",
                EventKind::RequestDenied {
                    reason: "use the replica".into(),
                },
            ),
        ],
    ));
    stories.push((
        "cancelled",
        vec![
            created("req_03", 1),
            event(60, user("alice"), "req_03", EventKind::RequestCancelled {}),
        ],
    ));
    stories.push((
        "timed out",
        vec![
            created("req_04", 1),
            event(3600, Actor::System, "req_04", EventKind::RequestTimedOut {}),
        ],
    ));
    stories.push((
        "escalated",
        vec![
            created("req_05", 1),
            event(
                900,
                Actor::System,
                "req_05",
                EventKind::RequestEscalated {
                    level: 1,
                    to: vec!["dave".into(), "erin".into()],
                },
            ),
        ],
    ));
    stories.push((
        "break glass",
        vec![
            created("req_06", 1),
            event(
                30,
                user("alice"),
                "req_06",
                EventKind::RequestApproved {
                    comment: Some("break-glass: payments down, on-call unreachable".into()),
                    policies: vec!["oncall-self-approve".into()],
                    break_glass: true,
                },
            ),
        ],
    ));
    let mut notices: Vec<(&'static str, Notice)> = stories
        .into_iter()
        .map(|(name, events)| (name, notice_of(&events).unwrap()))
        .collect();
    let mut granted = None;
    for event in &story {
        granted = apply(granted, event).ok();
    }
    notices.push((
        "expiring",
        Notice::grant_expiring(
            &granted.unwrap(),
            at(1320),
            Some("https://latch.example.com"),
        )
        .unwrap(),
    ));
    notices.push(("finding", finding()));
    notices
}

fn finding() -> Notice {
    Notice::finding(
        FindingNotice {
            id: "fnd_01".into(),
            checkpoint: "usage.scope".to_owned(),
            severity: Severity::High,
            subject: "alice".into(),
            summary: "alice ran DDL on payments-db under a read grant".into(),
            evidence: vec![4001, 4007],
        },
        at(7200),
    )
}

fn notice(name: &str) -> Notice {
    every_notice()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, notice)| notice)
        .unwrap()
}

fn pretty(value: &Value) -> String {
    // Keys sorted whatever serde_json's features (another crate in the build may turn on
    // `preserve_order`), so that the snapshots do not depend on what else is compiled.
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), sorted(v)))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string_pretty(&sorted(value)).unwrap()
}

fn slack() -> Channel {
    Channel::Slack {
        webhook_url: "https://hooks.slack.com/services/T/B/x".into(),
    }
}

fn check_json(rendered: Rendered, expect: Expect) {
    match rendered {
        Rendered::Json { body } => expect.assert_eq(&pretty(&body)),
        other => panic!("expected JSON: {other:?}"),
    }
}

#[test]
fn every_notice_as_email() {
    let mut out = String::new();
    for (name, notice) in every_notice() {
        let (subject, text) = render::email::render(&notice);
        out.push_str(&format!(
            "=== {name} [{} {}]\nSubject: {subject}\n{text}\n",
            notice.event_type, notice.severity
        ));
    }
    expect![[r#"
        === created [request.created info]
        Subject: [latch] Access request: payments-db (read)
        alice requests read on payments-db for 30m.

        Requester:        alice
        Resource:         payments-db
        Role:             read
        Duration:         30m
        Ticket:           INC-4211
        Request:          req_01
        Approvers:        bob, carol
        Approvals needed: 2
        Decide by:        2026-11-18T12:06:40.000Z

        Reason:
          INC-4211: stuck <job> & retries
          see <!channel> runbook

        To decide:
          latch approve req_01 --comment "…"
          latch deny req_01 --reason "…"

        https://latch.example.com/requests/req_01

        -- 
        latch · info · evt_1 · 2026-11-18T11:06:40.000Z

        === approval recorded [request.approval_recorded info]
        Subject: [latch] Approval recorded: payments-db (read)
        bob approved alice's request for read on payments-db (1 of 2 approvals).

        Requester: alice
        Resource:  payments-db
        Role:      read
        Duration:  30m
        Ticket:    INC-4211
        Request:   req_01

        Comment:
          ok from me

        https://latch.example.com/requests/req_01

        -- 
        latch · info · evt_2 · 2026-11-18T11:07:40.000Z

        === approved [request.approved info]
        Subject: [latch] Approved: payments-db (read)
        carol approved alice's request for read on payments-db.

        Requester: alice
        Resource:  payments-db
        Role:      read
        Duration:  30m
        Ticket:    INC-4211
        Request:   req_01

        https://latch.example.com/requests/req_01

        -- 
        latch · info · evt_3 · 2026-11-18T11:08:40.000Z

        === grant issued [grant.issued info]
        Subject: [latch] Access granted: payments-db (read)
        alice now has read on payments-db until 2026-11-18T11:38:40.000Z.

        Requester: alice
        Resource:  payments-db
        Role:      read
        Duration:  30m
        Ticket:    INC-4211
        Request:   req_01
        Grant:     grt_01
        Expires:   2026-11-18T11:38:40.000Z

        https://latch.example.com/requests/req_01

        -- 
        latch · info · evt_4 · 2026-11-18T11:08:40.000Z

        === revoked [grant.revoked warning]
        Subject: [latch] Access revoked: payments-db (read)
        bob revoked alice's read on payments-db.

        Requester:  alice
        Resource:   payments-db
        Role:       read
        Duration:   30m
        Ticket:     INC-4211
        Request:    req_01
        Grant:      grt_01
        Revoked by: bob

        Reason:
          incident closed

        https://latch.example.com/requests/req_01

        -- 
        latch · warning · evt_5 · 2026-11-18T11:16:40.000Z

        === session cut [session.ended warning]
        Subject: [latch] Session cut: payments-db (read)
        The gateway closed alice's session ses_01 on payments-db because the grant was revoked.

        Requester:               alice
        Resource:                payments-db
        Role:                    read
        Duration:                30m
        Ticket:                  INC-4211
        Request:                 req_01
        Session:                 ses_01
        Grant:                   grt_01
        Statements:              14
        Closed after revocation: 120 ms

        https://latch.example.com/requests/req_01

        -- 
        latch · warning · evt_6 · 2026-11-18T11:16:41.000Z

        === expired [grant.expired info]
        Subject: [latch] Access ended: payments-db (read)
        alice's read on payments-db has ended: its time is up.

        Requester: alice
        Resource:  payments-db
        Role:      read
        Duration:  30m
        Ticket:    INC-4211
        Request:   req_01
        Grant:     grt_01

        https://latch.example.com/requests/req_01

        -- 
        latch · info · evt_5 · 2026-11-18T11:38:40.000Z

        === denied [request.denied info]
        Subject: [latch] Denied: payments-db (read)
        bob denied alice's request for read on payments-db.

        Requester: alice
        Resource:  payments-db
        Role:      read
        Duration:  30m
        Ticket:    INC-4211
        Request:   req_02

        Reason:
          use the replica

        https://latch.example.com/requests/req_02

        -- 
        latch · info · evt_2 · 2026-11-18T11:07:40.000Z

        === cancelled [request.cancelled info]
        Subject: [latch] Cancelled: payments-db (read)
        alice cancelled their request for read on payments-db.

        Requester: alice
        Resource:  payments-db
        Role:      read
        Duration:  30m
        Ticket:    INC-4211
        Request:   req_03

        https://latch.example.com/requests/req_03

        -- 
        latch · info · evt_2 · 2026-11-18T11:07:40.000Z

        === timed out [request.timed_out info]
        Subject: [latch] Timed out: payments-db (read)
        alice's request for read on payments-db timed out: nobody decided on it in time.

        Requester: alice
        Resource:  payments-db
        Role:      read
        Duration:  30m
        Ticket:    INC-4211
        Request:   req_04

        https://latch.example.com/requests/req_04

        -- 
        latch · info · evt_2 · 2026-11-18T12:06:40.000Z

        === escalated [request.escalated warning]
        Subject: [latch] Escalated: payments-db (read)
        Nobody approved alice's request for read on payments-db in time: escalated to dave, erin (level 1).

        Requester:              alice
        Resource:               payments-db
        Role:                   read
        Duration:               30m
        Ticket:                 INC-4211
        Request:                req_05
        Escalation level:       1
        Now also approvable by: dave, erin

        Reason:
          INC-4211: stuck <job> & retries
          see <!channel> runbook

        To decide:
          latch approve req_05 --comment "…"
          latch deny req_05 --reason "…"

        https://latch.example.com/requests/req_05

        -- 
        latch · warning · evt_2 · 2026-11-18T11:21:40.000Z

        === break glass [request.approved high]
        Subject: [latch] Break-glass access: payments-db (read)
        alice broke glass: granted themselves read on payments-db for 30m without approval.

        Requester: alice
        Resource:  payments-db
        Role:      read
        Duration:  30m
        Ticket:    INC-4211
        Request:   req_06

        Emergency:
          payments down, on-call unreachable

        https://latch.example.com/requests/req_06

        -- 
        latch · high · evt_2 · 2026-11-18T11:07:10.000Z

        === expiring [grant.expiring warning]
        Subject: [latch] Access ends soon: payments-db (read)
        alice's read on payments-db ends in 10m (at 2026-11-18T11:38:40.000Z).

        Requester: alice
        Resource:  payments-db
        Role:      read
        Duration:  30m
        Ticket:    INC-4211
        Request:   req_01
        Grant:     grt_01
        Expires:   2026-11-18T11:38:40.000Z

        https://latch.example.com/requests/req_01

        -- 
        latch · warning · exp_grt_01 · 2026-11-18T11:28:40.000Z

        === finding [finding.opened high]
        Subject: [latch] Audit finding (high): alice
        alice ran DDL on payments-db under a read grant.

        Finding:               fnd_01
        Severity:              high
        Checkpoint:            usage.scope
        Evidence (ledger seq): 4001, 4007

        -- 
        latch · high · fnd_01 · 2026-11-18T13:06:40.000Z

    "#]].assert_eq(&out);
}

#[test]
fn events_nobody_needs_to_hear_about() {
    let quiet = [
        EventKind::TokenCreated {
            token_id: "tok_1".into(),
            user: "alice".into(),
            label: None,
        },
        EventKind::PolicyLoaded {
            hash: "ab".into(),
            files: Vec::new(),
            policies: 3,
        },
        EventKind::AccessRefused {
            action: "approve".into(),
            reason: "no".into(),
        },
        EventKind::SessionEnded {
            grant_id: "grt_01".into(),
            reason: "client_closed".into(),
            detail: None,
            bytes_in: 1,
            bytes_out: 1,
            statements: 1,
            revocation_delay_ms: None,
        },
    ];
    for kind in quiet {
        let stored = StoredEvent {
            seq: 1,
            event: event(0, user("alice"), "x", kind),
        };
        assert_eq!(Notice::from_event(&stored, &NoticeContext::default()), None);
    }
}

#[test]
fn a_request_decided_before_its_notice_offers_no_buttons() {
    let story = approved_story();
    let mut request = None;
    for event in &story {
        request = apply(request, event).ok();
    }
    let ctx = NoticeContext {
        request,
        approvers: Vec::new(),
        base_url: None,
    };
    let stored = StoredEvent {
        seq: 1,
        event: story[0].clone(),
    };
    let notice = Notice::from_event(&stored, &ctx).unwrap();
    assert_eq!(notice.decision_request_id(), None);
    assert!(!notice.needs_action());
    assert!(notice.summary().ends_with("(already decided)"));
}

#[test]
fn without_context_notices_name_ids() {
    let stored = StoredEvent {
        seq: 9,
        event: event(
            0,
            user("bob"),
            "req_01",
            EventKind::GrantRevoked {
                grant_id: "grt_01".into(),
                reason: "done".into(),
            },
        ),
    };
    let notice = Notice::from_event(&stored, &NoticeContext::default()).unwrap();
    expect![[r#"
        Access revoked: grt_01
        bob revoked grant grt_01
        [("Grant", "grt_01"), ("Revoked by", "bob")]"#]]
    .assert_eq(&format!(
        "{}\n{}\n{:?}",
        notice.headline(),
        notice.summary(),
        notice.facts()
    ));
}

#[test]
fn slack_request_created() {
    check_json(
        render(&notice("created"), &slack()),
        expect![[r#"
        {
          "blocks": [
            {
              "text": {
                "emoji": true,
                "text": "Access request: payments-db (read)",
                "type": "plain_text"
              },
              "type": "header"
            },
            {
              "text": {
                "text": "alice requests read on payments-db for 30m",
                "type": "mrkdwn"
              },
              "type": "section"
            },
            {
              "fields": [
                {
                  "text": "*Requester*\nalice",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Resource*\npayments-db",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Role*\nread",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Duration*\n30m",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Ticket*\nINC-4211",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Request*\nreq_01",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Approvers*\nbob, carol",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Approvals needed*\n2",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Decide by*\n2026-11-18T12:06:40.000Z",
                  "type": "mrkdwn"
                }
              ],
              "type": "section"
            },
            {
              "text": {
                "text": "*Reason*\n>INC-4211: stuck &lt;job&gt; &amp; retries\n>see &lt;!channel&gt; runbook",
                "type": "mrkdwn"
              },
              "type": "section"
            },
            {
              "block_id": "latch_decision",
              "elements": [
                {
                  "action_id": "latch_approve:req_01",
                  "confirm": {
                    "confirm": {
                      "emoji": true,
                      "text": "Approve",
                      "type": "plain_text"
                    },
                    "deny": {
                      "emoji": true,
                      "text": "Cancel",
                      "type": "plain_text"
                    },
                    "text": {
                      "text": "latch records your approval of `req_01` in its ledger.",
                      "type": "mrkdwn"
                    },
                    "title": {
                      "emoji": true,
                      "text": "Approve this request?",
                      "type": "plain_text"
                    }
                  },
                  "style": "primary",
                  "text": {
                    "emoji": true,
                    "text": "Approve",
                    "type": "plain_text"
                  },
                  "type": "button",
                  "value": "req_01"
                },
                {
                  "action_id": "latch_deny:req_01",
                  "confirm": {
                    "confirm": {
                      "emoji": true,
                      "text": "Deny",
                      "type": "plain_text"
                    },
                    "deny": {
                      "emoji": true,
                      "text": "Cancel",
                      "type": "plain_text"
                    },
                    "text": {
                      "text": "latch records your denial of `req_01` in its ledger.",
                      "type": "mrkdwn"
                    },
                    "title": {
                      "emoji": true,
                      "text": "Deny this request?",
                      "type": "plain_text"
                    }
                  },
                  "style": "danger",
                  "text": {
                    "emoji": true,
                    "text": "Deny",
                    "type": "plain_text"
                  },
                  "type": "button",
                  "value": "req_01"
                }
              ],
              "type": "actions"
            },
            {
              "elements": [
                {
                  "text": "latch · info · evt_1 · <https://latch.example.com/requests/req_01|Open in latch>",
                  "type": "mrkdwn"
                }
              ],
              "type": "context"
            }
          ],
          "text": "alice requests read on payments-db for 30m"
        }"#]],
    );
}

#[test]
fn slack_break_glass() {
    check_json(
        render(&notice("break glass"), &slack()),
        expect![[r#"
        {
          "blocks": [
            {
              "text": {
                "emoji": true,
                "text": ":rotating_light: Break-glass access: payments-db (read)",
                "type": "plain_text"
              },
              "type": "header"
            },
            {
              "text": {
                "text": "alice broke glass: granted themselves read on payments-db for 30m without approval",
                "type": "mrkdwn"
              },
              "type": "section"
            },
            {
              "fields": [
                {
                  "text": "*Requester*\nalice",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Resource*\npayments-db",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Role*\nread",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Duration*\n30m",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Ticket*\nINC-4211",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Request*\nreq_06",
                  "type": "mrkdwn"
                }
              ],
              "type": "section"
            },
            {
              "text": {
                "text": "*Emergency*\n>payments down, on-call unreachable",
                "type": "mrkdwn"
              },
              "type": "section"
            },
            {
              "elements": [
                {
                  "text": "latch · high · evt_2 · <https://latch.example.com/requests/req_06|Open in latch>",
                  "type": "mrkdwn"
                }
              ],
              "type": "context"
            }
          ],
          "text": "alice broke glass: granted themselves read on payments-db for 30m without approval"
        }"#]],
    );
}

#[test]
fn slack_updates_after_decisions() {
    let mut out = String::new();
    for name in ["approval recorded", "approved", "denied", "timed out"] {
        let update = slack_update(&notice(name)).unwrap();
        out.push_str(&format!("=== {name}\n{}\n", pretty(&update)));
    }
    expect![[r#"
        === approval recorded
        {
          "blocks": [
            {
              "text": {
                "emoji": true,
                "text": "Access request: payments-db (read)",
                "type": "plain_text"
              },
              "type": "header"
            },
            {
              "text": {
                "text": "alice requests read on payments-db for 30m",
                "type": "mrkdwn"
              },
              "type": "section"
            },
            {
              "fields": [
                {
                  "text": "*Requester*\nalice",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Resource*\npayments-db",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Role*\nread",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Duration*\n30m",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Ticket*\nINC-4211",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Request*\nreq_01",
                  "type": "mrkdwn"
                }
              ],
              "type": "section"
            },
            {
              "text": {
                "text": "*Reason*\n>INC-4211: stuck &lt;job&gt; &amp; retries\n>see &lt;!channel&gt; runbook",
                "type": "mrkdwn"
              },
              "type": "section"
            },
            {
              "text": {
                "text": ":ballot_box_with_check: Approved by *bob* (1 of 2 approvals)\n>ok from me",
                "type": "mrkdwn"
              },
              "type": "section"
            },
            {
              "block_id": "latch_decision",
              "elements": [
                {
                  "action_id": "latch_approve:req_01",
                  "confirm": {
                    "confirm": {
                      "emoji": true,
                      "text": "Approve",
                      "type": "plain_text"
                    },
                    "deny": {
                      "emoji": true,
                      "text": "Cancel",
                      "type": "plain_text"
                    },
                    "text": {
                      "text": "latch records your approval of `req_01` in its ledger.",
                      "type": "mrkdwn"
                    },
                    "title": {
                      "emoji": true,
                      "text": "Approve this request?",
                      "type": "plain_text"
                    }
                  },
                  "style": "primary",
                  "text": {
                    "emoji": true,
                    "text": "Approve",
                    "type": "plain_text"
                  },
                  "type": "button",
                  "value": "req_01"
                },
                {
                  "action_id": "latch_deny:req_01",
                  "confirm": {
                    "confirm": {
                      "emoji": true,
                      "text": "Deny",
                      "type": "plain_text"
                    },
                    "deny": {
                      "emoji": true,
                      "text": "Cancel",
                      "type": "plain_text"
                    },
                    "text": {
                      "text": "latch records your denial of `req_01` in its ledger.",
                      "type": "mrkdwn"
                    },
                    "title": {
                      "emoji": true,
                      "text": "Deny this request?",
                      "type": "plain_text"
                    }
                  },
                  "style": "danger",
                  "text": {
                    "emoji": true,
                    "text": "Deny",
                    "type": "plain_text"
                  },
                  "type": "button",
                  "value": "req_01"
                }
              ],
              "type": "actions"
            },
            {
              "elements": [
                {
                  "text": "latch · info · evt_2 · <https://latch.example.com/requests/req_01|Open in latch>",
                  "type": "mrkdwn"
                }
              ],
              "type": "context"
            }
          ],
          "replace_original": true,
          "text": "bob approved alice's request for read on payments-db (1 of 2 approvals)"
        }
        === approved
        {
          "blocks": [
            {
              "text": {
                "emoji": true,
                "text": "Access request: payments-db (read)",
                "type": "plain_text"
              },
              "type": "header"
            },
            {
              "text": {
                "text": "alice requests read on payments-db for 30m",
                "type": "mrkdwn"
              },
              "type": "section"
            },
            {
              "fields": [
                {
                  "text": "*Requester*\nalice",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Resource*\npayments-db",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Role*\nread",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Duration*\n30m",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Ticket*\nINC-4211",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Request*\nreq_01",
                  "type": "mrkdwn"
                }
              ],
              "type": "section"
            },
            {
              "text": {
                "text": "*Reason*\n>INC-4211: stuck &lt;job&gt; &amp; retries\n>see &lt;!channel&gt; runbook",
                "type": "mrkdwn"
              },
              "type": "section"
            },
            {
              "text": {
                "text": ":white_check_mark: Approved by *carol*",
                "type": "mrkdwn"
              },
              "type": "section"
            },
            {
              "elements": [
                {
                  "text": "latch · info · evt_3 · <https://latch.example.com/requests/req_01|Open in latch>",
                  "type": "mrkdwn"
                }
              ],
              "type": "context"
            }
          ],
          "replace_original": true,
          "text": "carol approved alice's request for read on payments-db"
        }
        === denied
        {
          "blocks": [
            {
              "text": {
                "emoji": true,
                "text": "Access request: payments-db (read)",
                "type": "plain_text"
              },
              "type": "header"
            },
            {
              "text": {
                "text": "alice requests read on payments-db for 30m",
                "type": "mrkdwn"
              },
              "type": "section"
            },
            {
              "fields": [
                {
                  "text": "*Requester*\nalice",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Resource*\npayments-db",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Role*\nread",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Duration*\n30m",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Ticket*\nINC-4211",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Request*\nreq_02",
                  "type": "mrkdwn"
                }
              ],
              "type": "section"
            },
            {
              "text": {
                "text": "*Reason*\n>INC-4211: stuck &lt;job&gt; &amp; retries\n>see &lt;!channel&gt; runbook",
                "type": "mrkdwn"
              },
              "type": "section"
            },
            {
              "text": {
                "text": ":no_entry: Denied by *bob*\n>use the replica",
                "type": "mrkdwn"
              },
              "type": "section"
            },
            {
              "elements": [
                {
                  "text": "latch · info · evt_2 · <https://latch.example.com/requests/req_02|Open in latch>",
                  "type": "mrkdwn"
                }
              ],
              "type": "context"
            }
          ],
          "replace_original": true,
          "text": "bob denied alice's request for read on payments-db"
        }
        === timed out
        {
          "blocks": [
            {
              "text": {
                "emoji": true,
                "text": "Access request: payments-db (read)",
                "type": "plain_text"
              },
              "type": "header"
            },
            {
              "text": {
                "text": "alice requests read on payments-db for 30m",
                "type": "mrkdwn"
              },
              "type": "section"
            },
            {
              "fields": [
                {
                  "text": "*Requester*\nalice",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Resource*\npayments-db",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Role*\nread",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Duration*\n30m",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Ticket*\nINC-4211",
                  "type": "mrkdwn"
                },
                {
                  "text": "*Request*\nreq_04",
                  "type": "mrkdwn"
                }
              ],
              "type": "section"
            },
            {
              "text": {
                "text": "*Reason*\n>INC-4211: stuck &lt;job&gt; &amp; retries\n>see &lt;!channel&gt; runbook",
                "type": "mrkdwn"
              },
              "type": "section"
            },
            {
              "text": {
                "text": ":hourglass: Timed out: nobody decided in time",
                "type": "mrkdwn"
              },
              "type": "section"
            },
            {
              "elements": [
                {
                  "text": "latch · info · evt_2 · <https://latch.example.com/requests/req_04|Open in latch>",
                  "type": "mrkdwn"
                }
              ],
              "type": "context"
            }
          ],
          "replace_original": true,
          "text": "alice's request for read on payments-db timed out: nobody decided on it in time"
        }
    "#]].assert_eq(&out);
    assert_eq!(slack_update(&notice("grant issued")), None);
    assert_eq!(slack_update(&finding()), None);
}

#[test]
fn slack_escapes_and_truncates_what_people_typed() {
    let mut notice = notice("denied");
    if let What::Denied { reason, .. } = &mut notice.what {
        *reason = "<@U123> & ".repeat(400);
    }
    let message = crate::render::slack::message(&notice);
    let text = message.to_string();
    assert!(!text.contains("<@U123>"));
    for block in message["blocks"].as_array().unwrap() {
        if let Some(text) = block["text"]["text"].as_str() {
            assert!(text.chars().count() <= 3000, "{}", text.len());
        }
    }
}

#[test]
fn teams_request_created() {
    let teams = Channel::Teams {
        webhook_url: "https://example.webhook.office.com/x".into(),
    };
    check_json(
        render(&notice("created"), &teams),
        expect![[r#"
        {
          "attachments": [
            {
              "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "actions": [
                  {
                    "title": "Review in latch",
                    "type": "Action.OpenUrl",
                    "url": "https://latch.example.com/requests/req_01"
                  }
                ],
                "body": [
                  {
                    "color": "Default",
                    "size": "Large",
                    "text": "Access request: payments-db (read)",
                    "type": "TextBlock",
                    "weight": "Bolder",
                    "wrap": true
                  },
                  {
                    "text": "alice requests read on payments-db for 30m",
                    "type": "TextBlock",
                    "wrap": true
                  },
                  {
                    "facts": [
                      {
                        "title": "Requester",
                        "value": "alice"
                      },
                      {
                        "title": "Resource",
                        "value": "payments-db"
                      },
                      {
                        "title": "Role",
                        "value": "read"
                      },
                      {
                        "title": "Duration",
                        "value": "30m"
                      },
                      {
                        "title": "Ticket",
                        "value": "INC-4211"
                      },
                      {
                        "title": "Request",
                        "value": "req_01"
                      },
                      {
                        "title": "Approvers",
                        "value": "bob, carol"
                      },
                      {
                        "title": "Approvals needed",
                        "value": "2"
                      },
                      {
                        "title": "Decide by",
                        "value": "2026-11-18T12:06:40.000Z"
                      }
                    ],
                    "type": "FactSet"
                  },
                  {
                    "text": "Reason",
                    "type": "TextBlock",
                    "weight": "Bolder",
                    "wrap": true
                  },
                  {
                    "text": "INC-4211: stuck <job> & retries\nsee <!channel> runbook",
                    "type": "TextBlock",
                    "wrap": true
                  },
                  {
                    "isSubtle": true,
                    "size": "Small",
                    "text": "latch · info · evt_1",
                    "type": "TextBlock",
                    "wrap": true
                  }
                ],
                "type": "AdaptiveCard",
                "version": "1.4"
              },
              "contentType": "application/vnd.microsoft.card.adaptive",
              "contentUrl": null
            }
          ],
          "type": "message"
        }"#]],
    );
}

#[test]
fn teams_finding() {
    let teams = Channel::Teams {
        webhook_url: "https://example.webhook.office.com/x".into(),
    };
    check_json(
        render(&finding(), &teams),
        expect![[r#"
            {
              "attachments": [
                {
                  "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "body": [
                      {
                        "color": "Attention",
                        "size": "Large",
                        "text": "Audit finding (high): alice",
                        "type": "TextBlock",
                        "weight": "Bolder",
                        "wrap": true
                      },
                      {
                        "text": "alice ran DDL on payments-db under a read grant",
                        "type": "TextBlock",
                        "wrap": true
                      },
                      {
                        "facts": [
                          {
                            "title": "Finding",
                            "value": "fnd_01"
                          },
                          {
                            "title": "Severity",
                            "value": "high"
                          },
                          {
                            "title": "Checkpoint",
                            "value": "usage.scope"
                          },
                          {
                            "title": "Evidence (ledger seq)",
                            "value": "4001, 4007"
                          }
                        ],
                        "type": "FactSet"
                      },
                      {
                        "isSubtle": true,
                        "size": "Small",
                        "text": "latch · high · fnd_01",
                        "type": "TextBlock",
                        "wrap": true
                      }
                    ],
                    "type": "AdaptiveCard",
                    "version": "1.4"
                  },
                  "contentType": "application/vnd.microsoft.card.adaptive",
                  "contentUrl": null
                }
              ],
              "type": "message"
            }"#]],
    );
}

#[test]
fn webhook_bodies() {
    let webhook = Channel::Webhook {
        url: "https://hooks.example.com/latch".into(),
        secret: "whsec".into(),
    };
    check_json(
        render(&notice("revoked"), &webhook),
        expect![[r#"
        {
          "at": "2026-11-18T11:16:40.000Z",
          "event": {
            "actor": "user:bob",
            "at": "2026-11-18T11:16:40.000Z",
            "data": {
              "grant_id": "grt_01",
              "reason": "incident closed"
            },
            "seq": 5,
            "subject": "req_01",
            "type": "grant.revoked",
            "v": 1
          },
          "id": "evt_5",
          "severity": "warning",
          "subject": "Access revoked: payments-db (read)",
          "summary": "bob revoked alice's read on payments-db",
          "type": "grant.revoked",
          "url": "https://latch.example.com/requests/req_01"
        }"#]],
    );
    check_json(
        render(&finding(), &webhook),
        expect![[r#"
        {
          "at": "2026-11-18T13:06:40.000Z",
          "event": null,
          "finding": {
            "checkpoint": "usage.scope",
            "evidence": [
              4001,
              4007
            ],
            "id": "fnd_01",
            "severity": "high",
            "subject": "alice",
            "summary": "alice ran DDL on payments-db under a read grant"
          },
          "id": "fnd_01",
          "severity": "high",
          "subject": "Audit finding (high): alice",
          "summary": "alice ran DDL on payments-db under a read grant",
          "type": "finding.opened"
        }"#]],
    );
}

#[test]
fn digests() {
    let notices = vec![
        notice("grant issued"),
        notice("expired"),
        notice("cancelled"),
    ];
    let mut out = String::new();
    for channel in [
        slack(),
        Channel::Teams {
            webhook_url: "https://t".into(),
        },
        Channel::Email {
            to: vec!["sec@example.com".into()],
        },
    ] {
        out.push_str(&format!("=== {}\n", channel.kind()));
        match render_digest(&notices, &channel) {
            Rendered::Json { body } => out.push_str(&pretty(&body)),
            Rendered::Email { subject, text } => {
                out.push_str(&format!("Subject: {subject}\n{text}"));
            }
            other => panic!("a digest is a channel message: {other:?}"),
        }
        out.push('\n');
    }
    expect![[r#"
        === slack
        {
          "blocks": [
            {
              "text": {
                "emoji": true,
                "text": "latch: 3 notifications",
                "type": "plain_text"
              },
              "type": "header"
            },
            {
              "text": {
                "text": "• *Access granted: payments-db (read)*: alice now has read on payments-db until 2026-11-18T11:38:40.000Z\n• *Access ended: payments-db (read)*: alice's read on payments-db has ended: its time is up\n• *Cancelled: payments-db (read)*: alice cancelled their request for read on payments-db",
                "type": "mrkdwn"
              },
              "type": "section"
            }
          ],
          "text": "latch: 3 notifications"
        }
        === teams
        {
          "attachments": [
            {
              "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "body": [
                  {
                    "size": "Large",
                    "text": "latch: 3 notifications",
                    "type": "TextBlock",
                    "weight": "Bolder",
                    "wrap": true
                  },
                  {
                    "text": "**Access granted: payments-db (read)**: alice now has read on payments-db until 2026-11-18T11:38:40.000Z",
                    "type": "TextBlock",
                    "wrap": true
                  },
                  {
                    "text": "**Access ended: payments-db (read)**: alice's read on payments-db has ended: its time is up",
                    "type": "TextBlock",
                    "wrap": true
                  },
                  {
                    "text": "**Cancelled: payments-db (read)**: alice cancelled their request for read on payments-db",
                    "type": "TextBlock",
                    "wrap": true
                  }
                ],
                "type": "AdaptiveCard",
                "version": "1.4"
              },
              "contentType": "application/vnd.microsoft.card.adaptive",
              "contentUrl": null
            }
          ],
          "type": "message"
        }
        === email
        Subject: [latch] 3 notifications
        * Access granted: payments-db (read): alice now has read on payments-db until 2026-11-18T11:38:40.000Z
          2026-11-18T11:08:40.000Z · evt_4
        * Access ended: payments-db (read): alice's read on payments-db has ended: its time is up
          2026-11-18T11:38:40.000Z · evt_5
        * Cancelled: payments-db (read): alice cancelled their request for read on payments-db
          2026-11-18T11:07:40.000Z · evt_2

    "#]].assert_eq(&out);
    let webhook = render_digest(
        &notices,
        &Channel::Webhook {
            url: "https://w".into(),
            secret: "s".into(),
        },
    );
    let Rendered::Json { body } = webhook else {
        panic!("expected JSON");
    };
    assert_eq!(body["type"], "digest");
    assert_eq!(body["notices"].as_array().map(Vec::len), Some(3));
    assert_eq!(body["notices"][0]["type"], "grant.issued");
}

#[test]
fn digest_batches_info_per_channel_and_sends_the_rest_at_once() {
    let mut digest = Digest::new(10);
    let channel = slack();
    let now = at(0);
    assert_eq!(
        digest.push("ops", &channel, notice("grant issued"), now),
        None
    );
    assert_eq!(
        digest.push("ops", &channel, notice("expired"), at(60)),
        None
    );
    assert_eq!(
        digest.push("audit", &channel, notice("cancelled"), at(120)),
        None
    );
    // Approval requests, escalations and anything above info go out now.
    for name in ["created", "escalated", "revoked", "break glass", "finding"] {
        let notice = notice(name);
        assert_eq!(
            digest.push("ops", &channel, notice.clone(), now),
            Some(notice),
            "{name}"
        );
    }
    assert_eq!(digest.pending(), 3);
    assert_eq!(digest.next_due(), Some(at(600)));
    assert!(digest.due(at(599)).is_empty());
    let due = digest.due(at(600));
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].0, "ops");
    let Rendered::Json { body } = &due[0].1 else {
        panic!("expected JSON");
    };
    assert_eq!(body["text"], "latch: 2 notifications");
    // The audit batch of one is sent as the notice itself.
    let due = digest.due(at(720));
    assert_eq!(due.len(), 1);
    let Rendered::Json { body } = &due[0].1 else {
        panic!("expected JSON");
    };
    assert_eq!(
        body["blocks"][0]["text"]["text"],
        "Cancelled: payments-db (read)"
    );
    assert_eq!(digest.pending(), 0);
    assert!(digest.drain().is_empty());
}

fn catalog() -> Catalog {
    let mut catalog = Catalog::default();
    let person = |name: &str, team: &str| User {
        name: name.into(),
        email: format!("{name}@example.com"),
        teams: BTreeSet::from([team.to_owned()]),
        manager: None,
        roles: BTreeSet::new(),
    };
    catalog
        .users
        .insert("alice".into(), person("alice", "payments"));
    catalog.users.insert("zed".into(), person("zed", "growth"));
    catalog.teams.insert(
        "dba".into(),
        Team {
            name: "dba".into(),
            leads: BTreeSet::new(),
            parent: None,
        },
    );
    catalog.resources.insert(
        "payments-db".into(),
        Resource {
            name: "payments-db".into(),
            kind: ResourceKind::Postgres,
            owner_team: "dba".into(),
            roles: BTreeMap::from([(
                "read".into(),
                latch_core::ResourceRole {
                    name: "read".into(),
                    max_duration: AccessDuration::from_secs(3600).unwrap(),
                },
            )]),
        },
    );
    catalog
}

#[test]
fn routing() {
    let route = |events: &[&str],
                 min: Option<Severity>,
                 resources: &[&str],
                 teams: &[&str],
                 channel: &str| Route {
        events: events.iter().map(|s| (*s).to_owned()).collect(),
        min_severity: min,
        resources: resources.iter().map(|s| (*s).to_owned()).collect(),
        teams: teams.iter().map(|s| (*s).to_owned()).collect(),
        channel: channel.into(),
    };
    let routes = vec![
        route(&["request.*"], None, &["payments-*"], &[], "approvals"),
        route(&[], Some(Severity::Warning), &[], &[], "security"),
        route(&["grant.*"], None, &[], &["dba"], "dba"),
        route(&["grant.*"], None, &[], &["payments"], "payments-team"),
        route(&["grant.*"], None, &[], &["growth"], "growth-team"),
        route(
            &["finding.opened"],
            Some(Severity::High),
            &[],
            &[],
            "security",
        ),
        route(&["*"], None, &[], &[], "firehose"),
    ];
    let catalog = catalog();
    let table: Vec<String> = every_notice()
        .iter()
        .map(|(name, notice)| format!("{name}: {}", route_fn(notice, &routes, &catalog).join(", ")))
        .collect();
    expect![[r#"
        created: approvals, firehose
        approval recorded: approvals, firehose
        approved: approvals, firehose
        grant issued: dba, payments-team, firehose
        revoked: security, dba, payments-team, firehose
        session cut: security, firehose
        expired: dba, payments-team, firehose
        denied: approvals, firehose
        cancelled: approvals, firehose
        timed out: approvals, firehose
        escalated: approvals, security, firehose
        break glass: approvals, security, firehose
        expiring: security, dba, payments-team, firehose
        finding: security, firehose"#]]
    .assert_eq(&table.join("\n"));
}

use crate::route as route_fn;

#[test]
fn rendered_round_trips_through_json_for_the_outbox() {
    for channel in [
        slack(),
        Channel::Email {
            to: vec!["a@example.com".into()],
        },
    ] {
        let rendered = render(&notice("created"), &channel);
        let stored = serde_json::to_string(&rendered).unwrap();
        assert_eq!(serde_json::from_str::<Rendered>(&stored).unwrap(), rendered);
    }
}

fn slack_bot() -> Channel {
    Channel::SlackBot {
        token: "xoxb-1-SECRETTOKEN".into(),
        channel_id: "C0123ABCD".into(),
        api_base: "https://slack.com/api".into(),
    }
}

/// A bot-token channel posts what a webhook would, and names the request when the message has
/// buttons: only those messages are remembered, and replaced once the request is decided.
#[test]
fn a_bot_token_channel_names_the_request_of_messages_with_buttons() {
    let with_buttons = |name: &str| match render(&notice(name), &slack_bot()) {
        Rendered::SlackPost { request_id, body } => {
            let Rendered::Json { body: webhook } = render(&notice(name), &slack()) else {
                panic!("a Slack webhook renders JSON");
            };
            assert_eq!(body, webhook, "{name}: the same message either way");
            request_id
        }
        other => panic!("expected a Slack post: {other:?}"),
    };
    assert_eq!(with_buttons("created").as_deref(), Some("req_01"));
    assert_eq!(with_buttons("approved"), None);
    assert_eq!(with_buttons("grant issued"), None);
    let digest = render_digest(&[notice("approved"), notice("grant issued")], &slack_bot());
    assert!(
        matches!(
            digest,
            Rendered::SlackPost {
                request_id: None,
                ..
            }
        ),
        "{digest:?}"
    );
    // What the outbox stores: never the token.
    let stored = serde_json::to_string(&render(&notice("created"), &slack_bot())).unwrap();
    assert!(!stored.contains("SECRETTOKEN"), "{stored}");
    assert_eq!(
        serde_json::from_str::<Rendered>(&stored).unwrap(),
        render(&notice("created"), &slack_bot())
    );
    assert_eq!(slack_bot().kind(), "slack");
}

#[test]
fn web_api_bodies_for_posting_and_updating() {
    let message = render::slack::message(&notice("created"));
    let post = slack_api::post_message_body("C0123ABCD", &message);
    assert_eq!(post["channel"], "C0123ABCD");
    assert_eq!(post["blocks"], message["blocks"]);
    assert_eq!(post["text"], message["text"]);
    let update = slack_update(&notice("approved")).unwrap();
    let body = slack_api::update_body("C0123ABCD", "1795000000.000100", &update);
    let text = pretty(&body);
    assert!(!text.contains("replace_original"), "{text}");
    assert!(!text.contains("latch_approve"), "{text}");
    expect![[r#"
        C0123ABCD 1795000000.000100
        carol approved alice's request for read on payments-db
        :white_check_mark: Approved by *carol*"#]]
    .assert_eq(&format!(
        "{} {}\n{}\n{}",
        body["channel"].as_str().unwrap(),
        body["ts"].as_str().unwrap(),
        body["text"].as_str().unwrap(),
        body["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|block| block["text"]["text"].as_str())
            .filter(|text| text.contains("Approved"))
            .collect::<Vec<_>>()
            .join("\n"),
    ));
}

#[test]
fn slack_refusals_say_what_to_fix_and_only_transient_ones_are_retried() {
    let refused = |error: &str| DeliveryError::Slack {
        error: error.into(),
        retry_after: None,
    };
    let table: Vec<String> = [
        "invalid_auth",
        "channel_not_found",
        "not_in_channel",
        "ratelimited",
        "internal_error",
        "something_new",
    ]
    .into_iter()
    .map(|error| {
        let err = refused(error);
        format!(
            "{} {err}",
            if err.is_retryable() { "retry" } else { "dead " }
        )
    })
    .collect();
    expect![[r#"
        dead  Slack refused: `invalid_auth` (the bot token is not valid: check the channel's `bot_token_env` or `bot_token_file`)
        dead  Slack refused: `channel_not_found` (the bot sees no channel with the configured `channel_id`: check the id, and invite the bot to a private channel)
        dead  Slack refused: `not_in_channel` (the bot is not a member of the channel: invite it, e.g. `/invite @latch`)
        retry Slack refused: `ratelimited` (rate limited; latch tries again later)
        retry Slack refused: `internal_error`
        dead  Slack refused: `something_new`"#]]
    .assert_eq(&table.join("\n"));
    let limited = DeliveryError::Slack {
        error: "ratelimited".into(),
        retry_after: Some(std::time::Duration::from_secs(30)),
    };
    assert_eq!(
        limited.retry_after(),
        Some(std::time::Duration::from_secs(30))
    );
}
