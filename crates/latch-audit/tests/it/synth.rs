//! A synthetic ledger: an organisation, and a stream of lifecycle events for many overlapping
//! requests with gateway sessions full of statements (most events are statements), in time
//! order, generated lazily so that only the events of live requests are held.
//!
//! Shared by the property tests and `benches/stream.rs` (included there with `#[path]`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use latch_audit::ResourceRules;
use latch_core::{
    AccessDuration, Actor, Catalog, Event, EventKind, Resource, ResourceKind, ResourceRole,
    StoredEvent, Team, TicketPattern, Timestamp, User,
};

/// A small deterministic generator (xorshift64*), so runs are comparable.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn range(&mut self, low: i64, high: i64) -> i64 {
        let span = u64::try_from(high.saturating_sub(low).max(1)).unwrap_or(1);
        low.saturating_add(i64::try_from(self.below(span)).unwrap_or(0))
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        let n = u64::try_from(items.len()).ok()?;
        items.get(usize::try_from(self.below(n)).ok()?)
    }
}

/// How big the organisation and how dense the stream.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub users: usize,
    pub teams: usize,
    pub resources: usize,
    /// Mean gap between two new requests, ms.
    pub request_gap_ms: i64,
    /// Most statements in one session.
    pub max_statements: i64,
    /// Also emit what a healthy ledger never holds: self-approvals outside break-glass,
    /// approvals by strangers, statements long after the grant ended.
    pub chaos: bool,
}

impl Scale {
    pub const BENCH: Scale = Scale {
        users: 2_000,
        teams: 40,
        resources: 30,
        request_gap_ms: 100_000,
        max_statements: 300,
        chaos: false,
    };

    pub const SMALL: Scale = Scale {
        users: 30,
        teams: 4,
        resources: 4,
        request_gap_ms: 120_000,
        max_statements: 12,
        chaos: true,
    };
}

/// Wednesday 2026-11-18T10:00:00Z.
pub const START: i64 = 1_794_996_000_000;

fn user_name(i: usize) -> String {
    format!("u{i:04}")
}

fn team_name(i: usize) -> String {
    format!("t{i:02}")
}

fn resource_name(i: usize) -> String {
    format!("db{i:02}")
}

/// Users in teams (each team's first member leads it and manages the others), resources owned
/// by teams, each with a `read` and a `write` role.
pub fn organisation(scale: Scale) -> Catalog {
    let per_team = (scale.users / scale.teams.max(1)).max(1);
    let lead_of = |team: usize| user_name(team * per_team);
    let mut users = BTreeMap::new();
    for i in 0..scale.users {
        let team = (i / per_team).min(scale.teams.saturating_sub(1));
        let manager = (i % per_team != 0).then(|| lead_of(team));
        users.insert(
            user_name(i),
            User {
                name: user_name(i),
                email: format!("{}@example.com", user_name(i)),
                teams: BTreeSet::from([team_name(team)]),
                manager,
                roles: BTreeSet::new(),
            },
        );
    }
    let teams = (0..scale.teams)
        .map(|t| {
            (
                team_name(t),
                Team {
                    name: team_name(t),
                    leads: BTreeSet::from([lead_of(t)]),
                    parent: None,
                },
            )
        })
        .collect();
    let max = |secs| AccessDuration::from_secs(secs).unwrap_or_else(|| unreachable!());
    let resources = (0..scale.resources)
        .map(|r| {
            let roles = [("read", 14_400), ("write", 7_200)]
                .into_iter()
                .map(|(name, secs)| {
                    (
                        name.to_owned(),
                        ResourceRole {
                            name: name.to_owned(),
                            max_duration: max(secs),
                        },
                    )
                })
                .collect();
            (
                resource_name(r),
                Resource {
                    name: resource_name(r),
                    kind: ResourceKind::Postgres,
                    owner_team: team_name(r % scale.teams.max(1)),
                    roles,
                },
            )
        })
        .collect();
    Catalog {
        users,
        teams,
        resources,
        ..Catalog::default()
    }
}

/// Every third resource wants `PAY-` tickets; every second declares a scope.
pub fn rules(scale: Scale) -> HashMap<String, ResourceRules> {
    (0..scale.resources)
        .map(|r| {
            let rules = ResourceRules {
                ticket_pattern: (r % 3 == 0)
                    .then(|| TicketPattern::new("PAY-[0-9]+").ok())
                    .flatten(),
                scope: if r % 2 == 0 {
                    vec!["public.accounts".to_owned(), "public.payments_*".to_owned()]
                } else {
                    Vec::new()
                },
            };
            (resource_name(r), rules)
        })
        .collect()
}

const REASONS: &[&str] = &[
    "PAY-1123: reconcile the stuck payout batch from last night",
    "INC-4211: customer reports a missing refund, need to inspect the ledger rows",
    "quarterly audit sample for finance",
    "backfill the settlement dates after the migration",
    "test",
    "need access",
    "asdf",
];

const OBJECTS: &[&str] = &[
    "public.accounts",
    "public.payments_2026",
    "accounts",
    "pg_catalog.pg_class",
    "public.secrets",
];

/// The stream: call [`Synth::fill`] for the next events.
pub struct Synth {
    rng: Rng,
    scale: Scale,
    catalog: Arc<Catalog>,
    users: Vec<String>,
    /// Events of live requests not yet emitted, by (time, order of creation).
    pending: BTreeMap<(i64, u64), Event>,
    order: u64,
    next_request_at: i64,
    requests: u64,
    seq: u64,
}

impl Synth {
    pub fn new(seed: u64, scale: Scale) -> Self {
        let catalog = Arc::new(organisation(scale));
        let users = catalog.users.keys().cloned().collect();
        Self {
            rng: Rng::new(seed),
            scale,
            catalog,
            users,
            pending: BTreeMap::new(),
            order: 0,
            next_request_at: START,
            requests: 0,
            seq: 0,
        }
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        Arc::clone(&self.catalog)
    }

    /// Events generated but not yet emitted (the generator's own memory).
    pub fn buffered(&self) -> usize {
        self.pending.len()
    }

    /// Appends the next `n` events to `out`.
    pub fn fill(&mut self, n: usize, out: &mut Vec<StoredEvent>) {
        for _ in 0..n {
            out.push(self.next_event());
        }
    }

    pub fn next_event(&mut self) -> StoredEvent {
        loop {
            let due = self.pending.first_key_value().map(|((at, _), _)| *at);
            if due.is_none_or(|at| at >= self.next_request_at) {
                let at = self.next_request_at;
                self.start_request(at);
                self.next_request_at = at + self.rng.range(1, 2 * self.scale.request_gap_ms);
                continue;
            }
            if let Some((_, event)) = self.pending.pop_first() {
                self.seq += 1;
                return StoredEvent {
                    seq: self.seq,
                    event,
                };
            }
        }
    }

    fn emit(&mut self, at: i64, actor: Actor, subject: &str, kind: EventKind) {
        self.order += 1;
        self.pending.insert(
            (at, self.order),
            Event {
                at: Timestamp::from_millis(at),
                actor,
                subject: subject.to_owned(),
                kind,
            },
        );
    }

    fn user(&mut self) -> String {
        self.rng.pick(&self.users).cloned().unwrap_or_default()
    }

    /// Schedules every event of one request's life.
    fn start_request(&mut self, t0: i64) {
        self.requests += 1;
        let n = self.requests;
        let id = format!("req_{n}");
        let grant_id = format!("grt_{n}");
        let requester = self.user();
        let resource_index = usize::try_from(
            self.rng
                .below(u64::try_from(self.scale.resources).unwrap_or(1)),
        )
        .unwrap_or(0);
        let resource = resource_name(resource_index);
        let role = if self.rng.chance(75) { "read" } else { "write" };
        let duration: i64 = *self
            .rng
            .pick(&[1_800, 3_600, 3_600, 7_200])
            .unwrap_or(&3_600);
        let reason = (*self.rng.pick(REASONS).unwrap_or(&"test")).to_owned();
        let ticket = self
            .rng
            .chance(60)
            .then(|| format!("PAY-{}", self.rng.below(10_000)));
        let user = Actor::user(requester.clone());
        self.emit(
            t0,
            user.clone(),
            &id,
            EventKind::RequestCreated {
                requester: requester.clone(),
                resource: resource.clone(),
                role: role.to_owned(),
                duration_secs: u64::try_from(duration).unwrap_or(3_600),
                reason,
                ticket,
                required_approvals: 1,
                pending_until: None,
                policies: Vec::new(),
                approver_groups: Vec::new(),
                once: false,
            },
        );
        let t1 = t0 + self.rng.range(2_000, 1_200_000);
        let owner_lead = self
            .catalog
            .resources
            .get(&resource)
            .and_then(|r| self.catalog.teams.get(&r.owner_team))
            .and_then(|t| t.leads.first().cloned())
            .unwrap_or_default();
        let manager = self
            .catalog
            .user(&requester)
            .and_then(|u| u.manager.clone())
            .unwrap_or_else(|| owner_lead.clone());
        let fate = self.rng.below(100);
        let (approver, break_glass) = match fate {
            0..=7 => {
                self.emit(
                    t1,
                    Actor::user(owner_lead),
                    &id,
                    EventKind::RequestDenied {
                        reason: "use the read replica".to_owned(),
                    },
                );
                return;
            }
            8..=11 => {
                self.emit(t1, user, &id, EventKind::RequestCancelled {});
                return;
            }
            12..=13 => (requester.clone(), true),
            14 if self.scale.chaos => (requester.clone(), false),
            15..=16 if self.scale.chaos => (self.user(), false),
            17..=60 => (owner_lead, false),
            _ => (manager, false),
        };
        let comment = if break_glass {
            Some("break-glass: outage".to_owned())
        } else {
            self.rng.chance(50).then(|| "ok, go ahead".to_owned())
        };
        self.emit(
            t1,
            Actor::user(approver),
            &id,
            EventKind::RequestApproved {
                comment,
                policies: Vec::new(),
                break_glass,
            },
        );
        let expires = t1 + duration * 1_000;
        self.emit(
            t1,
            Actor::System,
            &id,
            EventKind::GrantIssued {
                grant_id: grant_id.clone(),
                grantee: requester.clone(),
                resource: resource.clone(),
                role: role.to_owned(),
                starts_at: Timestamp::from_millis(t1),
                expires_at: Timestamp::from_millis(expires),
            },
        );
        let revoked_at = self
            .rng
            .chance(5)
            .then(|| t1 + self.rng.range(60_000, duration * 1_000));
        let end = revoked_at.unwrap_or(expires);
        let sessions = match self.rng.below(100) {
            0..=9 => 0,
            10..=69 => 1,
            70..=94 => 2,
            _ => 3,
        };
        for k in 0..sessions {
            self.session(
                &format!("ses_{n}_{k}"),
                &grant_id,
                &requester,
                &resource,
                role,
                t1,
                end,
            );
        }
        match revoked_at {
            Some(at) => self.emit(
                at,
                Actor::user(requester),
                &id,
                EventKind::GrantRevoked {
                    grant_id,
                    reason: "done early".to_owned(),
                },
            ),
            None => self.emit(
                expires,
                Actor::System,
                &id,
                EventKind::GrantExpired { grant_id },
            ),
        }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per fact the session repeats"
    )]
    fn session(
        &mut self,
        id: &str,
        grant_id: &str,
        user: &str,
        resource: &str,
        role: &str,
        start: i64,
        end: i64,
    ) {
        let span = (end - start).max(1_000);
        let overstay = self.scale.chaos && self.rng.chance(5);
        let mut at = if overstay {
            end - 30_000
        } else {
            start + self.rng.range(0, span * 8 / 10)
        };
        let actor = Actor::user(user.to_owned());
        self.emit(
            at,
            actor.clone(),
            id,
            EventKind::SessionStarted {
                grant_id: grant_id.to_owned(),
                user: user.to_owned(),
                resource: resource.to_owned(),
                role: role.to_owned(),
                client_addr: "10.0.0.7:51234".to_owned(),
                application_name: Some("psql".to_owned()),
                auth: None,
                tls: true,
            },
        );
        let statements = self.rng.range(1, self.scale.max_statements);
        let mut count: u64 = 0;
        for number in 1..=statements {
            at += self.rng.range(50, 20_000);
            if at >= end && !overstay {
                break;
            }
            count += 1;
            // Sessions under a read role mostly read; chaos makes them try writes often.
            let writes = if role == "write" || self.scale.chaos {
                10
            } else {
                1
            };
            let roll = self.rng.below(100);
            let (class, text) = if roll < writes {
                (
                    "write",
                    "UPDATE public.accounts SET note = $1 WHERE id = $2",
                )
            } else if roll == 99 && role == "write" {
                ("ddl", "CREATE INDEX ON public.payments_2026 (created_at)")
            } else if roll >= 95 {
                ("other", "BEGIN")
            } else {
                ("read", "SELECT * FROM public.accounts WHERE id = $1")
            };
            let refused = role == "read" && class != "read" && class != "other";
            // Out of scope (the last object) now and then; chaos makes it common.
            let objects = if self.scale.chaos || self.rng.chance(2) {
                OBJECTS
            } else {
                OBJECTS.split_last().map_or(OBJECTS, |(_, rest)| rest)
            };
            let object = (*self.rng.pick(objects).unwrap_or(&"public.accounts")).to_owned();
            let rows = (class == "read").then(|| {
                if self.rng.chance(1) {
                    self.rng.below(40_000)
                } else {
                    self.rng.below(200)
                }
            });
            let duration_us = u64::try_from(self.rng.range(50, 5_000)).unwrap_or(0);
            self.emit(
                at,
                actor.clone(),
                id,
                EventKind::SessionStatement {
                    grant_id: grant_id.to_owned(),
                    seq: u64::try_from(number).unwrap_or(0),
                    text: text.to_owned(),
                    protocol: "extended".to_owned(),
                    class: class.to_owned(),
                    objects: vec![object],
                    outcome: if refused { "refused" } else { "rows" }.to_owned(),
                    rows: if refused { None } else { rows },
                    detail: refused.then(|| "read-only role".to_owned()),
                    duration_us,
                },
            );
        }
        let (closed_at, reason, delay) = if at >= end {
            let delay = if self.rng.chance(2) {
                self.rng.range(1_500, 5_000)
            } else {
                self.rng.range(5, 800)
            };
            (
                if overstay { at + delay } else { end + delay },
                "grant_expired",
                Some(delay),
            )
        } else {
            (
                (at + self.rng.range(1_000, 60_000)).min(end),
                "client_closed",
                None,
            )
        };
        self.emit(
            closed_at,
            actor,
            id,
            EventKind::SessionEnded {
                grant_id: grant_id.to_owned(),
                reason: reason.to_owned(),
                detail: None,
                bytes_in: 1_024,
                bytes_out: 65_536,
                statements: count,
                revocation_delay_ms: delay,
            },
        );
    }
}
