//! Event scripts: a small organisation and a builder that writes ledger events the way latch
//! does (ids, grant events, session records), with time advanced explicitly.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use latch_audit::{AuditSettings, Auditor, Checkpoint, Finding, ResourceRules};
use latch_core::lifecycle::grant_id_for;
use latch_core::{
    AccessDuration, Actor, Catalog, Event, EventKind, Resource, ResourceKind, ResourceRole,
    StoredEvent, Team, TicketPattern, Timestamp, User,
};

pub use crate::synth::START;

/// payments (lead carol, manager of bob, mallory and alice) under platform (lead dave);
/// `payments-db` owned by payments, `ledger-db` by platform; erin is in platform.
pub fn catalog() -> Catalog {
    let user = |name: &str, team: &str, manager: Option<&str>| {
        (
            name.to_owned(),
            User {
                name: name.to_owned(),
                email: format!("{name}@example.com"),
                teams: BTreeSet::from([team.to_owned()]),
                manager: manager.map(str::to_owned),
                roles: BTreeSet::new(),
            },
        )
    };
    let team = |name: &str, lead: &str, parent: Option<&str>| {
        (
            name.to_owned(),
            Team {
                name: name.to_owned(),
                leads: BTreeSet::from([lead.to_owned()]),
                parent: parent.map(str::to_owned),
            },
        )
    };
    let resource = |name: &str, owner: &str| {
        let roles = ["read", "write"]
            .into_iter()
            .map(|role| {
                (
                    role.to_owned(),
                    ResourceRole {
                        name: role.to_owned(),
                        max_duration: AccessDuration::from_secs(8 * 3600).unwrap(),
                    },
                )
            })
            .collect();
        (
            name.to_owned(),
            Resource {
                name: name.to_owned(),
                kind: ResourceKind::Postgres,
                owner_team: owner.to_owned(),
                roles,
            },
        )
    };
    Catalog {
        users: BTreeMap::from([
            user("alice", "payments", Some("carol")),
            user("bob", "payments", Some("carol")),
            user("mallory", "payments", Some("carol")),
            user("carol", "payments", Some("dave")),
            user("dave", "platform", None),
            user("erin", "platform", Some("dave")),
        ]),
        teams: BTreeMap::from([
            team("payments", "carol", Some("platform")),
            team("platform", "dave", None),
        ]),
        resources: BTreeMap::from([
            resource("payments-db", "payments"),
            resource("ledger-db", "platform"),
        ]),
        ..Catalog::default()
    }
}

/// `payments-db` wants `PAY-` tickets and declares its scope; `ledger-db` declares nothing.
pub fn rules() -> HashMap<String, ResourceRules> {
    HashMap::from([(
        "payments-db".to_owned(),
        ResourceRules {
            ticket_pattern: Some(TicketPattern::new("PAY-[0-9]+").unwrap()),
            scope: vec!["public.accounts".to_owned(), "public.payments_*".to_owned()],
        },
    )])
}

/// What a request asks for; the defaults are a good request.
#[derive(Clone, Debug)]
pub struct Ask {
    pub requester: &'static str,
    pub resource: &'static str,
    pub role: &'static str,
    pub duration: &'static str,
    pub reason: &'static str,
    pub ticket: Option<&'static str>,
}

impl Default for Ask {
    fn default() -> Self {
        Self {
            requester: "bob",
            resource: "payments-db",
            role: "write",
            duration: "1h",
            reason: "PAY-17: reconcile the stuck payout batch",
            ticket: Some("PAY-17"),
        }
    }
}

pub struct Script {
    pub events: Vec<StoredEvent>,
    pub now: i64,
    asks: HashMap<String, Ask>,
    /// Per session: (grant id, user, next statement number).
    sessions: HashMap<String, (String, String, u64)>,
}

fn secs(text: &str) -> i64 {
    i64::try_from(text.parse::<AccessDuration>().unwrap().as_secs()).unwrap()
}

impl Script {
    pub fn new() -> Self {
        Self {
            events: Vec::new(),
            now: START,
            asks: HashMap::new(),
            sessions: HashMap::new(),
        }
    }

    /// Advances time by `duration` (`30s`, `2h`, `1d`).
    pub fn wait(&mut self, duration: &str) -> &mut Self {
        self.now += secs(duration) * 1000;
        self
    }

    pub fn wait_ms(&mut self, millis: i64) -> &mut Self {
        self.now += millis;
        self
    }

    pub fn push(&mut self, actor: Actor, subject: &str, kind: EventKind) -> &mut Self {
        self.push_at(self.now, actor, subject, kind)
    }

    pub fn push_at(&mut self, at: i64, actor: Actor, subject: &str, kind: EventKind) -> &mut Self {
        let seq = self.events.len() as u64 + 1;
        self.events.push(StoredEvent {
            seq,
            event: Event {
                at: Timestamp::from_millis(at),
                actor,
                subject: subject.to_owned(),
                kind,
            },
        });
        self
    }

    pub fn request(&mut self, id: &str, ask: Ask) -> &mut Self {
        self.asks.insert(id.to_owned(), ask.clone());
        self.push(
            Actor::user(ask.requester),
            id,
            EventKind::RequestCreated {
                requester: ask.requester.to_owned(),
                resource: ask.resource.to_owned(),
                role: ask.role.to_owned(),
                duration_secs: u64::try_from(secs(ask.duration)).unwrap(),
                reason: ask.reason.to_owned(),
                ticket: ask.ticket.map(str::to_owned),
                required_approvals: 1,
                pending_until: None,
                policies: Vec::new(),
                approver_groups: Vec::new(),
                once: false,
            },
        )
    }

    /// A request with the defaults.
    pub fn ask(&mut self, id: &str) -> &mut Self {
        self.request(id, Ask::default())
    }

    /// The approval that reaches the count, and the grant it issues.
    pub fn approve(&mut self, id: &str, approver: &str, comment: Option<&str>) -> &mut Self {
        self.approved(id, approver, comment, false)
    }

    pub fn break_glass(&mut self, id: &str) -> &mut Self {
        let requester = self.asks[id].requester;
        self.approved(id, requester, Some("break-glass: payouts are down"), true)
    }

    fn approved(
        &mut self,
        id: &str,
        approver: &str,
        comment: Option<&str>,
        glass: bool,
    ) -> &mut Self {
        let ask = self.asks[id].clone();
        self.push(
            Actor::user(approver),
            id,
            EventKind::RequestApproved {
                comment: comment.map(str::to_owned),
                policies: Vec::new(),
                break_glass: glass,
            },
        );
        self.push(
            Actor::System,
            id,
            EventKind::GrantIssued {
                grant_id: grant_id_for(id),
                grantee: ask.requester.to_owned(),
                resource: ask.resource.to_owned(),
                role: ask.role.to_owned(),
                starts_at: Timestamp::from_millis(self.now),
                expires_at: Timestamp::from_millis(self.now + secs(ask.duration) * 1000),
            },
        )
    }

    pub fn record_approval(&mut self, id: &str, approver: &str) -> &mut Self {
        self.push(
            Actor::user(approver),
            id,
            EventKind::ApprovalRecorded {
                comment: None,
                policies: Vec::new(),
            },
        )
    }

    pub fn deny(&mut self, id: &str, approver: &str) -> &mut Self {
        self.push(
            Actor::user(approver),
            id,
            EventKind::RequestDenied {
                reason: "use the replica".to_owned(),
            },
        )
    }

    pub fn expire(&mut self, id: &str) -> &mut Self {
        self.push(
            Actor::System,
            id,
            EventKind::GrantExpired {
                grant_id: grant_id_for(id),
            },
        )
    }

    pub fn revoke(&mut self, id: &str, by: &str) -> &mut Self {
        self.push(
            Actor::user(by),
            id,
            EventKind::GrantRevoked {
                grant_id: grant_id_for(id),
                reason: "done".to_owned(),
            },
        )
    }

    pub fn session(&mut self, session: &str, id: &str) -> &mut Self {
        let ask = self.asks[id].clone();
        self.sessions.insert(
            session.to_owned(),
            (grant_id_for(id), ask.requester.to_owned(), 1),
        );
        self.push(
            Actor::user(ask.requester),
            session,
            EventKind::SessionStarted {
                grant_id: grant_id_for(id),
                user: ask.requester.to_owned(),
                resource: ask.resource.to_owned(),
                role: ask.role.to_owned(),
                client_addr: "10.0.0.7:51234".to_owned(),
                application_name: Some("psql".to_owned()),
                auth: None,
                tls: true,
            },
        )
    }

    /// A statement: `class` (`read`, `write`, …), the objects it names, its outcome and rows.
    pub fn statement(
        &mut self,
        session: &str,
        class: &str,
        objects: &[&str],
        outcome: &str,
        rows: Option<u64>,
    ) -> &mut Self {
        let (grant_id, user, number) = self.sessions[session].clone();
        self.sessions.get_mut(session).unwrap().2 += 1;
        self.push(
            Actor::user(user),
            session,
            EventKind::SessionStatement {
                grant_id,
                seq: number,
                text: "SELECT 1".to_owned(),
                protocol: "simple".to_owned(),
                class: class.to_owned(),
                objects: objects.iter().map(|o| (*o).to_owned()).collect(),
                outcome: outcome.to_owned(),
                rows,
                detail: None,
                duration_us: 120,
            },
        )
    }

    /// A read of `public.accounts` returning `rows`.
    pub fn read(&mut self, session: &str, rows: u64) -> &mut Self {
        self.statement(session, "read", &["public.accounts"], "rows", Some(rows))
    }

    pub fn outcome(&mut self, session: &str, number: u64, rows: u64) -> &mut Self {
        let (grant_id, user, _) = self.sessions[session].clone();
        self.push(
            Actor::user(user),
            session,
            EventKind::SessionStatementOutcome {
                grant_id,
                seq: number,
                outcome: "rows".to_owned(),
                rows: Some(rows),
                detail: None,
                duration_us: 100,
            },
        )
    }

    pub fn end(&mut self, session: &str, reason: &str, delay_ms: Option<i64>) -> &mut Self {
        let (grant_id, user, number) = self.sessions[session].clone();
        self.push(
            Actor::user(user),
            session,
            EventKind::SessionEnded {
                grant_id,
                reason: reason.to_owned(),
                detail: None,
                bytes_in: 10,
                bytes_out: 10,
                statements: number - 1,
                revocation_delay_ms: delay_ms,
            },
        )
    }

    pub fn close(&mut self, session: &str) -> &mut Self {
        self.end(session, "client_closed", None)
    }
}

/// Replays the script through a fresh auditor (ticking at each event) and a day beyond.
pub fn run_with(
    settings: AuditSettings,
    catalog: Catalog,
    rules: HashMap<String, ResourceRules>,
    script: &Script,
) -> Vec<Finding> {
    let mut auditor = Auditor::new(settings, Arc::new(catalog), rules);
    let findings = auditor.replay(
        &script.events,
        Timestamp::from_millis(script.now + 86_400_000),
    );
    let mut keys: Vec<&str> = findings.iter().map(|f| f.key.as_str()).collect();
    keys.sort_unstable();
    let before = keys.len();
    keys.dedup();
    assert_eq!(before, keys.len(), "duplicate keys: {findings:#?}");
    findings
}

pub fn run(script: &Script) -> Vec<Finding> {
    run_with(AuditSettings::default(), catalog(), rules(), script)
}

/// One line per finding: key, severity, time after START, evidence, summary.
pub fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        out.push_str(&format!(
            "{} {} +{}s {:?}\n  {}\n",
            f.key,
            f.severity,
            (f.at.as_millis() - START) / 1000,
            f.evidence,
            f.summary
        ));
    }
    out
}

/// The findings of one checkpoint, rendered.
pub fn only(checkpoint: Checkpoint, findings: &[Finding]) -> String {
    let mine: Vec<Finding> = findings
        .iter()
        .filter(|f| f.checkpoint == checkpoint)
        .cloned()
        .collect();
    render(&mine)
}
