//! A seeded history of eight requests over three days, with every figure worked out by hand in
//! the comments, each filter, each recommendation just over and just under its threshold, and
//! the charts' escaping and scale.

use std::collections::{BTreeMap, BTreeSet};

use expect_test::expect;
use latch_core::{Actor, Catalog, Event, EventKind, StoredEvent, TicketPattern, Timestamp, User};
use serde_json::json;

use crate::svg::{Bar, bar_chart, time_series};
use crate::{
    Analytics, AnalyticsFilter, ApproverStats, Count, DayVolume, FindingCount, LatencyStats,
    NamedLatency, Recommendation, Settings, analyze, analyze_with, dashboard_html, summary_text,
};

const MIN: i64 = 60_000;

/// 2026-11-01T09:00:00Z: minute 0 of the history.
fn base() -> Timestamp {
    Timestamp::parse("2026-11-01T09:00:00Z").unwrap()
}

fn at(minutes: i64) -> Timestamp {
    Timestamp::from_millis(base().as_millis() + minutes * MIN)
}

fn day(text: &str) -> Timestamp {
    Timestamp::parse(&format!("{text}T00:00:00Z")).unwrap()
}

#[derive(Default)]
struct Script(Vec<StoredEvent>);

impl Script {
    fn push(&mut self, minutes: i64, actor: Actor, subject: &str, kind: EventKind) {
        let seq = self.0.len() as u64 + 1;
        self.0.push(StoredEvent {
            seq,
            event: Event {
                at: at(minutes),
                actor,
                subject: subject.to_owned(),
                kind,
            },
        });
    }

    fn created(&mut self, minutes: i64, id: &str, who: &str, resource: &str, ticket: Option<&str>) {
        self.push(
            minutes,
            Actor::user(who),
            id,
            EventKind::RequestCreated {
                requester: who.into(),
                resource: resource.into(),
                role: "read".into(),
                duration_secs: 3600,
                reason: "work".into(),
                ticket: ticket.map(str::to_owned),
                required_approvals: 1,
                pending_until: None,
                policies: Vec::new(),
                approver_groups: Vec::new(),
                once: false,
            },
        );
    }

    fn approved(&mut self, minutes: i64, id: &str, by: &str) {
        self.push(
            minutes,
            Actor::user(by),
            id,
            EventKind::RequestApproved {
                comment: None,
                policies: Vec::new(),
                break_glass: false,
            },
        );
    }

    /// A one-hour grant from `minutes`.
    fn granted(&mut self, minutes: i64, id: &str, who: &str, resource: &str) {
        self.push(
            minutes,
            Actor::System,
            id,
            EventKind::GrantIssued {
                grant_id: id.replacen("req_", "grt_", 1),
                grantee: who.into(),
                resource: resource.into(),
                role: "read".into(),
                starts_at: at(minutes),
                expires_at: at(minutes + 60),
            },
        );
    }

    fn expired(&mut self, minutes: i64, id: &str) {
        self.push(
            minutes,
            Actor::System,
            id,
            EventKind::GrantExpired {
                grant_id: id.replacen("req_", "grt_", 1),
            },
        );
    }

    fn session(
        &mut self,
        start: i64,
        end: i64,
        session: &str,
        id: &str,
        statements: &[(&str, &str)],
    ) {
        let grant = id.replacen("req_", "grt_", 1);
        self.push(
            start,
            Actor::user("x"),
            session,
            EventKind::SessionStarted {
                grant_id: grant.clone(),
                user: "x".into(),
                resource: "payments-db".into(),
                role: "read".into(),
                client_addr: "10.0.0.7:5000".into(),
                application_name: None,
                auth: None,
                tls: true,
            },
        );
        for (i, (class, object)) in statements.iter().enumerate() {
            self.push(
                start + 1,
                Actor::user("x"),
                session,
                EventKind::SessionStatement {
                    grant_id: grant.clone(),
                    seq: i as u64 + 1,
                    text: "SELECT 1".into(),
                    protocol: "simple".into(),
                    class: (*class).into(),
                    objects: vec![(*object).into()],
                    outcome: "rows".into(),
                    rows: Some(1),
                    detail: None,
                    duration_us: 100,
                },
            );
        }
        self.push(
            end,
            Actor::user("x"),
            session,
            EventKind::SessionEnded {
                grant_id: grant,
                reason: "client_closed".into(),
                detail: None,
                bytes_in: 1,
                bytes_out: 1,
                statements: statements.len() as u64,
                revocation_delay_ms: None,
            },
        );
    }
}

fn user(name: &str, teams: &[&str]) -> (String, User) {
    (
        name.to_owned(),
        User {
            name: name.to_owned(),
            email: format!("{name}@example.com"),
            teams: teams.iter().map(|t| (*t).to_owned()).collect(),
            manager: None,
            roles: BTreeSet::new(),
        },
    )
}

/// alice and bob in `payments`, dana in `data`; carol and erin approve.
fn catalog() -> Catalog {
    Catalog {
        users: [
            user("alice", &["payments"]),
            user("bob", &["payments"]),
            user("dana", &["data"]),
            user("carol", &["payments"]),
            user("erin", &["security"]),
        ]
        .into_iter()
        .collect(),
        ..Catalog::default()
    }
}

fn patterns() -> BTreeMap<String, TicketPattern> {
    [(
        "payments-db".to_owned(),
        TicketPattern::new("PAY-[0-9]+").unwrap(),
    )]
    .into_iter()
    .collect()
}

/// Day 0 is 2026-11-01; every grant lasts an hour (3600 s).
fn history() -> Vec<StoredEvent> {
    let mut s = Script::default();
    // Before the period: never counted.
    s.created(-600, "req_00", "alice", "payments-db", Some("PAY-0"));
    s.approved(-590, "req_00", "carol");
    // r1: approved after 10 min (600 s), used 30 min (1800 s), expired.
    s.created(0, "req_01", "alice", "payments-db", Some("PAY-1"));
    s.approved(10, "req_01", "carol");
    s.granted(10, "req_01", "alice", "payments-db");
    s.session(
        20,
        50,
        "ses_1",
        "req_01",
        &[
            ("read", "public.accounts"),
            ("read", "public.accounts"),
            ("write", "public.ledger"),
        ],
    );
    s.expired(70, "req_01");
    // r2: no ticket; approved after 30 min (1800 s), never used, expired.
    s.created(100, "req_02", "alice", "payments-db", None);
    s.approved(130, "req_02", "carol");
    s.granted(130, "req_02", "alice", "payments-db");
    s.expired(190, "req_02");
    // r3: denied by erin after an hour (3600 s); reports-db has no ticket pattern.
    s.created(200, "req_03", "dana", "reports-db", Some("anything"));
    s.push(
        260,
        Actor::user("erin"),
        "req_03",
        EventKind::RequestDenied {
            reason: "no".into(),
        },
    );
    // Day 1. r4: carol's approval counted after 5 min (300 s), erin's completes it after 20
    // (1200 s); used 10 min (600 s), a finding, revoked by erin.
    s.created(1440, "req_04", "bob", "payments-db", Some("PAY-2"));
    s.push(
        1445,
        Actor::user("carol"),
        "req_04",
        EventKind::ApprovalRecorded {
            comment: None,
            policies: Vec::new(),
        },
    );
    s.approved(1460, "req_04", "erin");
    s.granted(1460, "req_04", "bob", "payments-db");
    s.session(
        1470,
        1480,
        "ses_4",
        "req_04",
        &[("read", "public.accounts")],
    );
    s.push(
        1481,
        Actor::System,
        "fnd_1",
        EventKind::FindingOpened {
            key: "k1".into(),
            checkpoint: "usage.scope".into(),
            severity: "medium".into(),
            about: "ses_4".into(),
            summary: "outside scope".into(),
            evidence: vec![1],
        },
    );
    s.push(
        1490,
        Actor::user("erin"),
        "req_04",
        EventKind::GrantRevoked {
            grant_id: "grt_04".into(),
            reason: "done".into(),
        },
    );
    // r5: a ticket in the wrong case; times out.
    s.created(1500, "req_05", "bob", "payments-db", Some("pay-3"));
    s.push(1740, Actor::System, "req_05", EventKind::RequestTimedOut {});
    // Day 2. r6: cancelled.
    s.created(2880, "req_06", "alice", "payments-db", Some("PAY-4"));
    s.push(
        2890,
        Actor::user("alice"),
        "req_06",
        EventKind::RequestCancelled {},
    );
    // r7: dana's break-glass self-approval on reports-db; still active.
    s.created(2900, "req_07", "dana", "reports-db", None);
    s.push(
        2901,
        Actor::user("dana"),
        "req_07",
        EventKind::RequestApproved {
            comment: Some("outage".into()),
            policies: Vec::new(),
            break_glass: true,
        },
    );
    s.granted(2901, "req_07", "dana", "reports-db");
    // r8: still pending.
    s.created(2950, "req_08", "alice", "payments-db", Some("PAY-5"));
    s.0
}

fn filter() -> AnalyticsFilter {
    AnalyticsFilter {
        from: day("2026-11-01"),
        to: day("2026-11-04"),
        team: None,
        resource: None,
        principal: None,
        approver: None,
    }
}

fn run(filter: &AnalyticsFilter) -> Analytics {
    analyze(&history(), &catalog(), &patterns(), filter)
}

fn run_with(settings: &Settings) -> Analytics {
    analyze_with(&history(), &catalog(), &patterns(), &filter(), settings)
}

fn ids(analytics: &Analytics) -> Vec<String> {
    let mut ids: Vec<String> = analytics
        .grants
        .iter()
        .map(|g| g.request_id.clone())
        .collect();
    ids.sort();
    ids
}

fn stats(decisions: u64, median: u64, p95: u64, max: u64) -> LatencyStats {
    LatencyStats {
        decisions,
        median_secs: median,
        p95_secs: p95,
        max_secs: max,
    }
}

fn count(name: &str, count: u64) -> Count {
    Count {
        name: name.into(),
        count,
    }
}

#[test]
fn the_seeded_history_adds_up_to_the_hand_computed_figures() {
    let a = run(&filter());
    assert_eq!(a.requests, 8);

    // r1, r2, r4, r7 approved; r3 denied; r5 timed out; r6 cancelled; r8 pending.
    let o = &a.outcomes;
    assert_eq!(
        (o.approved, o.denied, o.timed_out, o.cancelled, o.pending),
        (4, 1, 1, 1, 1)
    );
    assert_eq!(o.break_glass, 1);
    assert_eq!(
        (
            o.approval_rate,
            o.denial_rate,
            o.timeout_rate,
            o.cancel_rate
        ),
        (0.5, 0.125, 0.125, 0.125)
    );

    let volume = |date: &str, requests, approved, denied| DayVolume {
        date: date.into(),
        requests,
        approved,
        denied,
    };
    assert_eq!(
        a.volume,
        [
            volume("2026-11-01", 3, 2, 1),
            volume("2026-11-02", 2, 1, 0),
            volume("2026-11-03", 3, 1, 0),
        ]
    );

    // Waits 600, 1800, 3600, 1200 (r7's break glass is no decision): sorted 600 1200 1800
    // 3600, nearest-rank median the 2nd, p95 the 4th.
    assert_eq!(a.latency, Some(stats(4, 1200, 3600, 3600)));
    assert_eq!(
        a.latency_by_team,
        [
            NamedLatency {
                name: "data".into(),
                stats: stats(1, 3600, 3600, 3600)
            },
            NamedLatency {
                name: "payments".into(),
                stats: stats(3, 1200, 1800, 1800)
            },
        ]
    );
    assert_eq!(
        a.latency_by_resource
            .iter()
            .map(|n| (n.name.as_str(), n.stats.decisions, n.stats.p95_secs))
            .collect::<Vec<_>>(),
        [("payments-db", 3, 1800), ("reports-db", 1, 3600)]
    );
    // carol: r1 600, r2 1800, r4 300 (the counted approval); erin: r4 1200, r3 3600 denied.
    assert_eq!(
        a.approvers,
        [
            ApproverStats {
                approver: "carol".into(),
                approvals: 3,
                denials: 0,
                stats: stats(3, 600, 1800, 1800)
            },
            ApproverStats {
                approver: "erin".into(),
                approvals: 1,
                denials: 1,
                stats: stats(2, 1200, 3600, 3600)
            },
        ]
    );

    // Ended grants r1 (used 1800), r2 (unused), r4 (used 600), each 3600 granted; r7 active.
    let d = &a.durations;
    assert_eq!((d.grants, d.ended_grants, d.unused_grants), (4, 3, 1));
    assert_eq!(d.unused_rate, 1.0 / 3.0);
    assert_eq!((d.granted_total_secs, d.used_total_secs), (10_800, 2400));
    assert_eq!((d.granted_median_secs, d.used_median_secs), (3600, 600));

    assert_eq!(a.usage.sessions, 2);
    assert_eq!(a.usage.statements, 4);
    assert_eq!(
        a.usage.statements_by_class,
        BTreeMap::from([("read".to_owned(), 3), ("write".to_owned(), 1)])
    );
    assert_eq!(
        a.findings,
        [FindingCount {
            checkpoint: "usage.scope".into(),
            severity: "medium".into(),
            count: 1
        }]
    );
    assert_eq!(
        a.top_requesters,
        [count("alice", 4), count("bob", 2), count("dana", 2)]
    );
    assert_eq!(a.top_approvers, [count("carol", 3), count("erin", 2)]);
    assert_eq!(
        a.top_resources,
        [count("payments-db", 6), count("reports-db", 2)]
    );

    // r2 has no ticket, r5's `pay-3` is the wrong case; reports-db has no pattern.
    assert_eq!(
        a.ticket_mismatches
            .iter()
            .map(|t| (
                t.request_id.as_str(),
                t.ticket.as_deref(),
                t.pattern.as_str()
            ))
            .collect::<Vec<_>>(),
        [
            ("req_02", None, "PAY-[0-9]+"),
            ("req_05", Some("pay-3"), "PAY-[0-9]+")
        ]
    );

    // Newest grant first; what each was used for.
    assert_eq!(a.grants_total, 4);
    assert_eq!(
        a.grants
            .iter()
            .map(|g| g.grant_id.as_str())
            .collect::<Vec<_>>(),
        ["grt_07", "grt_04", "grt_02", "grt_01"]
    );
    let r1 = a.grants.iter().find(|g| g.grant_id == "grt_01").unwrap();
    assert_eq!(
        (r1.granted_secs, r1.used_secs, r1.sessions),
        (3600, 1800, 1)
    );
    assert_eq!(
        r1.objects,
        BTreeMap::from([
            ("public.accounts".to_owned(), 2),
            ("public.ledger".to_owned(), 1)
        ])
    );
    assert_eq!(
        r1.statements_by_class,
        BTreeMap::from([("read".to_owned(), 2), ("write".to_owned(), 1)])
    );
    let r2 = a.grants.iter().find(|g| g.grant_id == "grt_02").unwrap();
    assert_eq!((r2.used_secs, r2.sessions, r2.objects.len()), (0, 0, 0));
    assert_eq!(
        a.grants
            .iter()
            .find(|g| g.grant_id == "grt_04")
            .unwrap()
            .outcome,
        "revoked by erin"
    );

    // Under the default thresholds this small history recommends nothing.
    assert_eq!(a.recommendations, []);
}

#[test]
fn each_filter_narrows_the_requests() {
    let requests = |a: &Analytics| a.requests;
    let members: BTreeSet<String> = ["alice".to_owned(), "bob".to_owned()].into();
    let payments = run(&AnalyticsFilter {
        team: Some(("payments".into(), members)),
        ..filter()
    });
    assert_eq!(requests(&payments), 6);
    assert_eq!(payments.team.as_deref(), Some("payments"));
    assert_eq!(ids(&payments), ["req_01", "req_02", "req_04"]);

    let reports = run(&AnalyticsFilter {
        resource: Some("reports-db".into()),
        ..filter()
    });
    assert_eq!(requests(&reports), 2);
    assert_eq!(reports.outcomes.denied, 1);
    assert_eq!(reports.top_requesters, [count("dana", 2)]);

    let bob = run(&AnalyticsFilter {
        principal: Some("bob".into()),
        ..filter()
    });
    assert_eq!(requests(&bob), 2);
    assert_eq!(bob.outcomes.timed_out, 1);
    assert_eq!(ids(&bob), ["req_04"]);

    // erin decided r3 (denied) and r4 (approved); carol r1, r2 and r4.
    let erin = run(&AnalyticsFilter {
        approver: Some("erin".into()),
        ..filter()
    });
    assert_eq!(requests(&erin), 2);
    assert_eq!((erin.outcomes.approved, erin.outcomes.denied), (1, 1));
    let carol = run(&AnalyticsFilter {
        approver: Some("carol".into()),
        ..filter()
    });
    assert_eq!(ids(&carol), ["req_01", "req_02", "req_04"]);

    // Day 1 only: r4 and r5; the volume covers that one day.
    let day1 = run(&AnalyticsFilter {
        from: day("2026-11-02"),
        to: day("2026-11-03"),
        ..filter()
    });
    assert_eq!(requests(&day1), 2);
    assert_eq!(day1.volume.len(), 1);
    assert_eq!(day1.volume[0].date, "2026-11-02");

    // Nobody matches: zeros, not a failure; the empty days are still shown.
    let nobody = run(&AnalyticsFilter {
        principal: Some("mallory".into()),
        ..filter()
    });
    assert_eq!(requests(&nobody), 0);
    assert_eq!(nobody.outcomes.approval_rate, 0.0);
    assert_eq!(nobody.latency, None);
    assert_eq!(nobody.volume.len(), 3);
    assert!(nobody.volume.iter().all(|d| d.requests == 0));
}

#[test]
fn standing_access_when_a_team_asks_for_a_resource_often_enough() {
    // payments asked for payments-db 6 times (r1 r2 r4 r5 r6 r8), 3 approved, by 2 people;
    // data asked for reports-db twice.
    let at_six = run_with(&Settings {
        standing_min_requests: 6,
        ..Settings::default()
    });
    let standing: Vec<&Recommendation> = at_six
        .recommendations
        .iter()
        .filter(|r| r.kind() == "standing_access")
        .collect();
    assert_eq!(
        standing,
        [&Recommendation::StandingAccess {
            team: "payments".into(),
            resource: "payments-db".into(),
            requests: 6,
            approved: 3,
            requesters: 2,
            roles: vec!["read".into()],
            request_ids: ["req_01", "req_02", "req_04", "req_05", "req_06", "req_08"]
                .map(String::from)
                .to_vec(),
        }]
    );
    let at_seven = run_with(&Settings {
        standing_min_requests: 7,
        ..Settings::default()
    });
    assert!(
        at_seven
            .recommendations
            .iter()
            .all(|r| r.kind() != "standing_access")
    );
}

#[test]
fn overlong_duration_when_use_is_far_below_the_grant() {
    // payments-db read: used 1800, 0, 600 of 3600 each; median used 600 of 3600 (ratio 1/6);
    // p95 of use 1800, already a multiple of a quarter hour.
    let triggered = run_with(&Settings {
        overlong_min_grants: 3,
        ..Settings::default()
    });
    assert_eq!(
        triggered.recommendations,
        [Recommendation::OverlongDuration {
            resource: "payments-db".into(),
            role: "read".into(),
            grants: 3,
            median_granted_secs: 3600,
            median_used_secs: 600,
            used_ratio: 600.0 / 3600.0,
            suggested_secs: 1800,
            grant_ids: ["grt_01", "grt_02", "grt_04"].map(String::from).to_vec(),
        }]
    );
    assert_eq!(
        triggered.recommendations[0].summary(),
        "`read` on `payments-db`: 3 grants used a median 10m of 1h granted: consider 30m by default"
    );
    // A stricter ratio, or more grants required: nothing.
    for settings in [
        Settings {
            overlong_min_grants: 3,
            overlong_max_used_ratio: 0.1,
            ..Settings::default()
        },
        Settings {
            overlong_min_grants: 4,
            ..Settings::default()
        },
    ] {
        assert_eq!(run_with(&settings).recommendations, []);
    }
}

#[test]
fn slow_approval_when_the_p95_wait_exceeds_the_threshold() {
    // payments (team) and payments-db (resource): waits 600 1200 1800, p95 1800; data and
    // reports-db have one decision only.
    let triggered = run_with(&Settings {
        slow_min_decisions: 3,
        slow_p95_secs: 1500,
        ..Settings::default()
    });
    let slow = |scope: &str, name: &str| Recommendation::SlowApproval {
        scope: scope.into(),
        name: name.into(),
        decisions: 3,
        median_secs: 1200,
        p95_secs: 1800,
        request_ids: ["req_02", "req_04", "req_01"].map(String::from).to_vec(),
    };
    assert_eq!(
        triggered.recommendations,
        [slow("team", "payments"), slow("resource", "payments-db")]
    );
    // At the threshold is not over it.
    let at = run_with(&Settings {
        slow_min_decisions: 3,
        slow_p95_secs: 1800,
        ..Settings::default()
    });
    assert_eq!(at.recommendations, []);
    // One decision is not a path: reports-db's 3600 s wait alone never counts at 3.
    let one = run_with(&Settings {
        slow_min_decisions: 1,
        slow_p95_secs: 2000,
        ..Settings::default()
    });
    assert_eq!(
        one.recommendations
            .iter()
            .map(|r| match r {
                Recommendation::SlowApproval { name, .. } => name.as_str(),
                _ => "",
            })
            .collect::<Vec<_>>(),
        ["data", "reports-db"]
    );
}

#[test]
fn approvers_who_never_deny_with_enough_decisions() {
    // carol approved all 3 of her decisions; erin denied one of 2.
    let triggered = run_with(&Settings {
        never_denies_min_decisions: 2,
        ..Settings::default()
    });
    assert_eq!(
        triggered.recommendations,
        [Recommendation::NeverDenies {
            approver: "carol".into(),
            decisions: 3,
            median_secs: 600,
            request_ids: ["req_01", "req_02", "req_04"].map(String::from).to_vec(),
        }]
    );
    let fewer = run_with(&Settings {
        never_denies_min_decisions: 4,
        ..Settings::default()
    });
    assert_eq!(fewer.recommendations, []);
}

#[test]
fn evidence_is_capped_but_counts_stay_exact() {
    let a = run_with(&Settings {
        standing_min_requests: 6,
        max_evidence_ids: 2,
        max_grants_listed: 1,
        ..Settings::default()
    });
    let Recommendation::StandingAccess {
        requests,
        request_ids,
        ..
    } = &a.recommendations[0]
    else {
        panic!("{:?}", a.recommendations);
    };
    assert_eq!((*requests, request_ids.len()), (6, 2));
    assert_eq!((a.grants_total, a.grants.len()), (4, 1));
    assert_eq!(a.grants[0].grant_id, "grt_07");
}

#[test]
fn analytics_round_trip_through_json() {
    let a = run_with(&Settings {
        standing_min_requests: 6,
        never_denies_min_decisions: 2,
        ..Settings::default()
    });
    let value = serde_json::to_value(&a).unwrap();
    assert_eq!(
        value["recommendations"][0]["kind"],
        json!("standing_access")
    );
    assert_eq!(value["from"], json!("2026-11-01T00:00:00.000Z"));
    assert_eq!(value["latency"]["p95_secs"], json!(3600));
    assert_eq!(value["approvers"][0]["median_secs"], json!(600));
    let back: Analytics = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(serde_json::to_value(&back).unwrap(), value);
}

/// `data-value` of every bar, in order.
fn values(svg: &str) -> Vec<u64> {
    svg.split("data-value=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
        .collect()
}

/// `width` of every bar `rect`, in order.
fn widths(svg: &str) -> Vec<u64> {
    svg.split("<rect ")
        .skip(1)
        .map(|rest| {
            let width = rest.split("width=\"").nth(1).unwrap();
            width.split('"').next().unwrap().parse().unwrap()
        })
        .collect()
}

#[test]
fn bar_charts_scale_to_the_largest_value_and_escape_names() {
    let svg = bar_chart(
        "c1",
        "Top <requesters>",
        "alice: 4; <script>alert(1)</script>: 2",
        &[
            Bar::count("alice", 4),
            Bar::count("<script>alert(1)</script>", 2),
            Bar::count("nobody", 0),
        ],
    );
    assert!(!svg.contains("<script"), "{svg}");
    assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(svg.contains("<title id=\"c1-title\">Top &lt;requesters&gt;</title>"));
    assert!(svg.contains("role=\"img\""));
    assert!(svg.contains("aria-labelledby=\"c1-title c1-desc\""));
    assert_eq!(values(&svg), [4, 2, 0]);
    // 300 px for the largest, half for half, nothing for zero.
    assert_eq!(widths(&svg), [300, 150, 0]);
    // The values are written as text, not only drawn.
    assert!(svg.contains(">4</text>") && svg.contains(">2</text>"));
    // Durations read as durations.
    let secs = bar_chart("c2", "t", "d", &[Bar::secs("payments", 5400)]);
    assert!(secs.contains(">1h30m</text>"), "{secs}");
}

#[test]
fn time_series_has_one_column_per_day_at_scale() {
    let points = vec![
        ("2026-11-01".to_owned(), 3),
        ("2026-11-02".to_owned(), 0),
        ("2026-11-03".to_owned(), 6),
    ];
    let svg = time_series("v", "Requests per day", "9 requests", &points);
    assert_eq!(values(&svg), [3, 0, 6]);
    let heights: Vec<u64> = svg
        .split("<rect ")
        .skip(1)
        .map(|rest| {
            let h = rest.split("height=\"").nth(1).unwrap();
            h.split('"').next().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(heights, [80, 0, 160]);
    assert!(svg.contains(">2026-11-01</text>") && svg.contains(">2026-11-03</text>"));
    assert!(
        svg.contains(">6</text>"),
        "the axis shows the largest value"
    );
    let empty = time_series("e", "t", "d", &[]);
    assert!(empty.contains("no data in this period"));
}

#[test]
fn the_dashboard_escapes_user_names_and_shows_the_figures() {
    let mut a = run_with(&Settings {
        never_denies_min_decisions: 2,
        ..Settings::default()
    });
    a.top_requesters[0].name = "<script>alert('x')</script>".into();
    a.approvers[0].approver = "\"><img src=x onerror=alert(1)>".into();
    let html = dashboard_html(&a);
    assert!(!html.contains("<script"), "a name became markup");
    assert!(!html.contains("<img"), "a name became markup");
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert!(!html.contains("<html") && !html.contains("<body"));
    // The figures and the recommendation with its evidence.
    assert!(html.contains("<dt>Requests</dt><dd>8</dd>"), "{html}");
    assert!(html.contains("<dd>4 (50.0%)</dd>"));
    assert!(html.contains("median 20m, p95 1h (4 decisions)"));
    assert!(html.contains("data-kind=\"never_denies\""));
    assert!(html.contains("<code>req_01</code>, <code>req_02</code>, <code>req_04</code>"));
    // Every chart is labelled.
    assert_eq!(
        html.matches("role=\"img\"").count(),
        html.matches("<svg").count()
    );
    assert_eq!(html.matches("<svg").count(), 6);
}

#[test]
fn the_text_summary_reads_well() {
    let a = run_with(&Settings {
        never_denies_min_decisions: 2,
        ..Settings::default()
    });
    expect![[r#"
        latch analytics: requests created from 2026-11-01T00:00:00.000Z to 2026-11-04T00:00:00.000Z

        requests          8: 4 approved (50.0%), 1 denied (12.5%), 1 timed out (12.5%), 1 cancelled (12.5%), 1 pending
        break glass       1 self-approved in an emergency
        time to decision  median 20m, p95 1h, max 1h (4 decisions)
        grants            4 issued, 3 ended, 1 of them unused (33.3%); median 1h granted, 10m used
        sessions          2 sessions, 4 statements (read 3, write 1)
        findings          usage.scope medium 1
        top requesters    alice 4, bob 2, dana 2
        top approvers     carol 3, erin 2
        top resources     payments-db 6, reports-db 2

        time to decision per team:
          data            median 1h, p95 1h (1 decision)
          payments        median 20m, p95 30m (3 decisions)

        approvers:
          carol           3 approved, 0 denied, median 10m, p95 30m
          erin            1 approved, 1 denied, median 20m, p95 1h

        tickets not matching their resource's pattern (2):
          req_02 by alice on payments-db: no ticket (expected `PAY-[0-9]+`)
          req_05 by bob on payments-db: `pay-3` (expected `PAY-[0-9]+`)

        recommendations:
          1. `carol` approved all 3 requests they decided (median 10m to decide): check that approvals are reviewed
             evidence: req_01, req_02, req_04
    "#]].assert_eq(&summary_text(&a));
}
