//! The gateway's side of latch: the [`Authority`] that checks a connection's credential and
//! grant against the store, and turns the gateway's session records into ledger events. The
//! gateway relays and records; whether a session may exist is decided here, from the ledger's
//! projections (**the gateway asks and never decides**).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use latch_core::lifecycle::{grant_id_for, request_id_for};
use latch_core::time::Clock;
use latch_core::{Actor, Command, Event, EventKind, GrantState, RequestState, Timestamp};
use latch_gateway::{
    Authority, ConnectAttempt, EndReason, Outcome, PresentedCredential, Protocol, RecordError,
    Refusal, ScramCandidate, ScramVerifiers, SessionGrant, SessionRecord,
};
use latch_store::{SessionFilter, Store};

use crate::LiveCatalog;
use crate::auth::hash_secret;

/// SQLSTATE 28000: no grant covers the connection.
const NO_GRANT: &str = "28000";
/// SQLSTATE 28P01: the credential is wrong or expired.
const BAD_CREDENTIAL: &str = "28P01";
/// SQLSTATE 3D000: no such resource ("database").
const UNKNOWN_RESOURCE: &str = "3D000";
/// The most live credentials of one user on one resource a SCRAM proof is tried against (the
/// newest): each costs two hashes, and `latch connect` makes one per call.
const MAX_SCRAM_CANDIDATES: u32 = 256;

/// The SCRAM iteration count of a user's credentials on a resource, for `latch connect` to make
/// the next one with and for the gateway to name in the exchange: one exchange names one count
/// before the client says which credential it holds, so all of them share the count of the
/// newest live one, and `configured` (`gateway.scram_iterations`) applies once none is live.
/// A changed setting thus never stops a live credential from logging in.
pub(crate) fn credential_iterations(
    newest_live: Option<&latch_store::ScramSecret>,
    configured: u32,
) -> u32 {
    newest_live.map_or(configured, |secret| secret.iterations)
}

/// The running gateway, as the API and the scheduler reach it.
#[derive(Clone)]
pub struct GatewayHandle {
    pub gateway: Arc<latch_gateway::Gateway>,
    /// Where clients connect (printed in connection URIs).
    pub address: SocketAddr,
    pub tls: bool,
    /// How long a credential from `latch connect` opens new sessions.
    pub credential_ttl: Duration,
    /// The SCRAM iteration count of the credentials `latch connect` makes.
    pub scram_iterations: u32,
}

/// Checks connections against the store and records sessions in the ledger.
pub struct LatchAuthority {
    store: Arc<dyn Store>,
    catalog: Arc<LiveCatalog>,
    clock: Arc<dyn Clock>,
    /// Single-use grants whose session is open: their end consumes the grant.
    once_grants: Mutex<HashSet<String>>,
    /// The user of each open session, to name them as the actor of its statements.
    session_users: Mutex<HashMap<String, String>>,
    /// `gateway.scram_iterations`, for users with no live credential ([`credential_iterations`]).
    scram_iterations: u32,
}

impl LatchAuthority {
    pub fn new(store: Arc<dyn Store>, catalog: Arc<LiveCatalog>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            catalog,
            clock,
            once_grants: Mutex::new(HashSet::new()),
            session_users: Mutex::new(HashMap::new()),
            scram_iterations: latch_pgwire::scram::DEFAULT_ITERATIONS,
        }
    }

    /// The SCRAM iteration count `latch connect` makes credentials with.
    pub fn with_scram_iterations(mut self, iterations: u32) -> Self {
        self.scram_iterations = iterations;
        self
    }

    fn unavailable(err: impl std::fmt::Display) -> Refusal {
        tracing::warn!(%err, "cannot check a gateway connection");
        Refusal::new(
            "08006",
            "latch cannot check your grant right now (its store is unavailable); try again shortly",
        )
    }

    /// The message for a connection no grant covers: it says how to get one.
    fn no_grant(user: &str, resource: &str, role: Option<&str>, why: &str) -> Refusal {
        let role = role.unwrap_or("read");
        Refusal::new(
            NO_GRANT,
            format!(
                "{why}: request access with `latch request {resource} --role {role} --for 1h --reason \"…\"`, \
                 then `latch connect {resource}` once it is approved (user `{user}`)"
            ),
        )
    }

    async fn authorize_inner(&self, attempt: &ConnectAttempt) -> Result<SessionGrant, Refusal> {
        let catalog = self.catalog.get();
        let Some(resource) = catalog.resources.get(&attempt.resource) else {
            let known: Vec<&str> = catalog.resources.keys().map(String::as_str).collect();
            return Err(Refusal::new(
                UNKNOWN_RESOURCE,
                format!(
                    "unknown resource `{}` (resources: {}): connect with the resource name as the database",
                    attempt.resource,
                    known.join(", ")
                ),
            ));
        };
        if let Some(role) = &attempt.role
            && !resource.roles.contains_key(role)
        {
            let known: Vec<&str> = resource.roles.keys().map(String::as_str).collect();
            return Err(Refusal::new(
                UNKNOWN_RESOURCE,
                format!(
                    "unknown role `{role}` for resource `{}` (roles: {})",
                    attempt.resource,
                    known.join(", ")
                ),
            ));
        }
        let now = self.clock.now();
        let credential = match &attempt.credential {
            PresentedCredential::Secret(secret) => {
                self.store.credential_by_hash(&hash_secret(secret)).await
            }
            PresentedCredential::ScramProven { credential_id, .. } => {
                self.store.credential(credential_id).await
            }
            PresentedCredential::ScramFailed => Ok(None),
        }
        .map_err(Self::unavailable)?;
        // A wrong credential says nothing about whose it is.
        let Some(credential) = credential.filter(|c| c.user == attempt.user) else {
            return Err(
                match self
                    .active_grant(&attempt.user, &attempt.resource, now)
                    .await?
                {
                    Some(_) => Refusal::new(
                        BAD_CREDENTIAL,
                        format!(
                            "wrong credential for `{}`: get one with `latch connect {}`",
                            attempt.user, attempt.resource
                        ),
                    ),
                    None => Self::no_grant(
                        &attempt.user,
                        &attempt.resource,
                        attempt.role.as_deref(),
                        &format!(
                            "`{}` has no active grant on `{}`",
                            attempt.user, attempt.resource
                        ),
                    ),
                },
            );
        };
        let request_id = request_id_for(&credential.grant_id).unwrap_or_default();
        let request = self
            .store
            .request(&request_id)
            .await
            .map_err(Self::unavailable)?;
        let Some(request) = request else {
            return Err(Refusal::new(
                BAD_CREDENTIAL,
                "the credential names no grant",
            ));
        };
        if request.resource != attempt.resource {
            return Err(Refusal::new(
                BAD_CREDENTIAL,
                format!(
                    "this credential is for `{}`, not `{}`",
                    request.resource, attempt.resource
                ),
            ));
        }
        if let Some(role) = &attempt.role
            && role != &request.role
        {
            return Err(Refusal::new(
                NO_GRANT,
                format!(
                    "this credential is for role `{}` on `{}`, not `{role}`: run `latch connect {} --role {role}`",
                    request.role, request.resource, request.resource
                ),
            ));
        }
        let grant = match &request.grant {
            Some(grant)
                if request.state == RequestState::Granted
                    && grant.state == GrantState::Active
                    && grant.expires_at > now =>
            {
                grant
            }
            Some(grant) => {
                let how = match grant.state {
                    GrantState::Revoked => format!(
                        "was revoked by `{}`",
                        grant.revoked_by.as_deref().unwrap_or("?")
                    ),
                    _ => format!("expired at {}", grant.expires_at),
                };
                return Err(Self::no_grant(
                    &attempt.user,
                    &attempt.resource,
                    Some(&request.role),
                    &format!("grant `{}` {how}", grant.id),
                ));
            }
            None => {
                return Err(Self::no_grant(
                    &attempt.user,
                    &attempt.resource,
                    Some(&request.role),
                    "the request behind this credential was never granted",
                ));
            }
        };
        // The grant is not everything: policy may limit when sessions open (access windows).
        if let Some(policy) = &catalog.policy {
            let verdict =
                policy
                    .0
                    .connect(&request.requester, &request.resource, &request.role, now);
            if !verdict.allowed {
                return Err(Refusal::new(
                    NO_GRANT,
                    format!(
                        "policy does not let `{}` connect to `{}` now: {}",
                        request.requester, request.resource, verdict.reason
                    ),
                ));
            }
        }
        // Checked after the grant, so that an ended grant is what the user hears about.
        if credential.expires_at <= now {
            return Err(Refusal::new(
                BAD_CREDENTIAL,
                format!(
                    "the credential expired at {}: get a new one with `latch connect {}`",
                    credential.expires_at, attempt.resource
                ),
            ));
        }
        if request.once {
            let used = self
                .store
                .sessions(&SessionFilter {
                    grant_id: Some(grant.id.clone()),
                    limit: 1,
                    ..Default::default()
                })
                .await
                .map_err(Self::unavailable)?;
            let mut open = self.once_grants.lock().unwrap_or_else(|e| e.into_inner());
            if !used.is_empty() || !open.insert(grant.id.clone()) {
                return Err(Self::no_grant(
                    &attempt.user,
                    &attempt.resource,
                    Some(&request.role),
                    &format!("single-use grant `{}` was already used", grant.id),
                ));
            }
        }
        Ok(SessionGrant {
            grant_id: grant.id.clone(),
            user: request.requester.clone(),
            resource: request.resource.clone(),
            role: request.role.clone(),
            ends_at_ms: grant.expires_at.as_millis(),
            once: request.once,
        })
    }

    /// The user's active grant on `resource`, if any (to tell a wrong credential from no grant).
    async fn active_grant(
        &self,
        user: &str,
        resource: &str,
        now: Timestamp,
    ) -> Result<Option<String>, Refusal> {
        let granted = active_grants(&*self.store, user, resource, now)
            .await
            .map_err(Self::unavailable)?;
        Ok(granted.first().map(|r| grant_id_for(&r.id)))
    }
}

/// `user`'s requests whose grant on `resource` is active at `now`.
pub(crate) async fn active_grants(
    store: &dyn Store,
    user: &str,
    resource: &str,
    now: Timestamp,
) -> Result<Vec<latch_core::AccessRequest>, latch_store::StoreError> {
    let requests = store
        .requests(&latch_store::RequestFilter {
            states: vec![RequestState::Granted],
            requester: Some(user.to_owned()),
            with_grant: true,
            limit: 1000,
            ..Default::default()
        })
        .await?;
    Ok(requests
        .into_iter()
        .filter(|r| r.resource == resource)
        .filter(|r| {
            r.grant
                .as_ref()
                .is_some_and(|g| g.state == GrantState::Active && g.expires_at > now)
        })
        .collect())
}

#[async_trait::async_trait]
impl Authority for LatchAuthority {
    async fn authorize(&self, attempt: ConnectAttempt) -> Result<SessionGrant, Refusal> {
        let result = self.authorize_inner(&attempt).await;
        if let Err(refusal) = &result {
            // A refused connection is evidence too.
            let event = Event {
                at: self.clock.now(),
                actor: Actor::user(attempt.user.clone()),
                subject: format!("gateway/{}", attempt.resource),
                kind: EventKind::AccessRefused {
                    action: "connect".to_owned(),
                    reason: format!("{} ({})", refusal.message, refusal.code),
                },
            };
            if let Err(err) = self.store.record(vec![event]).await {
                tracing::warn!(%err, "cannot record a refused connection");
            }
        }
        result
    }

    async fn scram_verifiers(&self, user: &str, resource: &str) -> Result<ScramVerifiers, Refusal> {
        let mut verifiers = ScramVerifiers::none(user);
        let live = self
            .store
            .scram_credentials(user, resource, self.clock.now(), MAX_SCRAM_CANDIDATES)
            .await
            .map_err(Self::unavailable)?;
        verifiers.iterations =
            credential_iterations(live.first().map(|(_, s)| s), self.scram_iterations);
        // All of a user's credentials are made with the salt `none` names; one made otherwise
        // could not match a proof computed with it.
        verifiers.candidates = live
            .into_iter()
            .filter(|(_, s)| s.salt == verifiers.salt && s.iterations == verifiers.iterations)
            .map(|(c, s)| ScramCandidate {
                credential_id: c.id,
                stored_key: s.stored_key,
                server_key: s.server_key,
            })
            .collect();
        Ok(verifiers)
    }

    async fn record(&self, records: &[SessionRecord]) -> Result<(), RecordError> {
        let events: Vec<Event> = {
            let mut users = self.session_users.lock().unwrap_or_else(|e| e.into_inner());
            let now = self.clock.now();
            records
                .iter()
                .map(|record| {
                    let user = match record {
                        SessionRecord::Started {
                            session_id, user, ..
                        } => {
                            users.insert(session_id.clone(), user.clone());
                            user.clone()
                        }
                        SessionRecord::Statement(statement) => users
                            .get(&statement.session_id)
                            .cloned()
                            .unwrap_or_else(|| "unknown".to_owned()),
                        SessionRecord::StatementOutcome { .. } => String::new(),
                        SessionRecord::Ended { session_id, .. } => {
                            users.remove(session_id).unwrap_or_default()
                        }
                    };
                    to_event(record, &user, now)
                })
                .collect()
        };
        self.store
            .append_session_events(events)
            .await
            .map_err(|err| RecordError {
                message: err.to_string(),
            })?;
        // A single-use grant ends with its session.
        for record in records {
            if let SessionRecord::Ended { grant_id, .. } = record {
                let consumed = self
                    .once_grants
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(grant_id);
                if consumed && let Some(request_id) = request_id_for(grant_id) {
                    let result = self
                        .store
                        .execute(
                            &request_id,
                            &Command::Consume,
                            self.catalog.get(),
                            self.clock.clone(),
                        )
                        .await;
                    if let Err(err) = result {
                        tracing::warn!(%err, grant_id, "cannot end a single-use grant");
                    }
                }
            }
        }
        Ok(())
    }
}

/// Ends this replica's sessions of grants revoked on any replica. The replica that revokes ends
/// its own sessions at once (`revoke_grant`); with several replicas on one PostgreSQL store a
/// session may run on another, which learns of the revocation here, from the ledger, within
/// `interval`. Ending a session already ended is a no-op, so the local case costs nothing.
pub async fn follow_revocations(
    store: Arc<dyn Store>,
    gateway: Arc<latch_gateway::Gateway>,
    interval: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    // Sessions start after this replica does; revocations before it refuse their connections.
    let mut after = loop {
        match store.ledger_size().await {
            Ok(size) => break size,
            Err(err) => tracing::warn!(%err, "cannot read the ledger's head; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    };
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        loop {
            let page = match store.events_of_type("grant.revoked", after, 500).await {
                Ok(page) => page,
                Err(err) => {
                    tracing::warn!(%err, "cannot follow revocations; retrying");
                    break;
                }
            };
            let Some(last) = page.last() else { break };
            after = last.seq;
            for event in &page {
                if let EventKind::GrantRevoked { grant_id, .. } = &event.event.kind {
                    let by = match &event.event.actor {
                        Actor::User(user) => user.clone(),
                        Actor::System => "latch".to_owned(),
                    };
                    let ended = gateway.end_grant(grant_id, EndReason::GrantRevoked { by });
                    if ended > 0 {
                        tracing::info!(grant = %grant_id, sessions = ended, "a revocation recorded elsewhere ended live sessions");
                    }
                }
            }
        }
    }
}

fn ms(at_ms: i64) -> Timestamp {
    Timestamp::from_millis(at_ms)
}

/// `(outcome, rows, detail)` as the ledger writes them.
fn outcome_fields(outcome: &Outcome) -> (&'static str, Option<u64>, Option<String>) {
    match outcome {
        Outcome::Pending => ("pending", None, None),
        Outcome::Rows(rows) => ("rows", Some(*rows), None),
        Outcome::Error(code) => ("error", None, Some(code.clone())),
        Outcome::Refused(reason) => ("refused", None, Some(reason.clone())),
        Outcome::NotRun => ("not_run", None, None),
        Outcome::Interrupted => ("interrupted", None, None),
    }
}

fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Simple => "simple",
        Protocol::Extended => "extended",
        Protocol::FunctionCall => "function_call",
    }
}

/// One gateway record as a ledger event (subject: the session id); `user` is the session's.
fn to_event(record: &SessionRecord, user_of_session: &str, now: Timestamp) -> Event {
    match record {
        SessionRecord::Started {
            session_id,
            grant_id,
            user,
            resource,
            role,
            client_addr,
            application_name,
            at_ms,
            tls,
            auth,
        } => Event {
            at: ms(*at_ms),
            actor: Actor::user(user.clone()),
            subject: session_id.clone(),
            kind: EventKind::SessionStarted {
                grant_id: grant_id.clone(),
                user: user.clone(),
                resource: resource.clone(),
                role: role.clone(),
                client_addr: client_addr.to_string(),
                application_name: application_name.clone(),
                auth: Some((*auth).to_owned()),
                tls: *tls,
            },
        },
        SessionRecord::Statement(statement) => {
            let (outcome, rows, detail) = outcome_fields(&statement.outcome);
            Event {
                at: ms(statement.started_at_ms),
                actor: Actor::user(user_of_session.to_owned()),
                subject: statement.session_id.clone(),
                kind: EventKind::SessionStatement {
                    grant_id: statement.grant_id.clone(),
                    seq: statement.seq,
                    text: statement.text.clone(),
                    protocol: protocol_name(statement.protocol).to_owned(),
                    class: statement.class.to_owned(),
                    objects: statement.objects.clone(),
                    outcome: outcome.to_owned(),
                    rows,
                    detail,
                    duration_us: statement.duration_us,
                },
            }
        }
        SessionRecord::StatementOutcome {
            session_id,
            grant_id,
            seq,
            outcome,
            duration_us,
        } => {
            let (outcome, rows, detail) = outcome_fields(outcome);
            Event {
                at: now,
                actor: Actor::System,
                subject: session_id.clone(),
                kind: EventKind::SessionStatementOutcome {
                    grant_id: grant_id.clone(),
                    seq: *seq,
                    outcome: outcome.to_owned(),
                    rows,
                    detail,
                    duration_us: *duration_us,
                },
            }
        }
        SessionRecord::Ended {
            session_id,
            grant_id,
            at_ms,
            reason,
            bytes_in,
            bytes_out,
            statements,
            revocation_delay_ms,
        } => {
            let (reason, actor, detail) = match reason {
                EndReason::ClientClosed => (
                    "client_closed",
                    Actor::user(user_of_session.to_owned()),
                    None,
                ),
                EndReason::GrantExpired => ("grant_expired", Actor::System, None),
                EndReason::GrantRevoked { by } => ("grant_revoked", Actor::user(by.clone()), None),
                EndReason::UpstreamClosed => ("upstream_closed", Actor::System, None),
                EndReason::ProtocolError(what) => {
                    ("protocol_error", Actor::System, Some(what.clone()))
                }
                EndReason::Shutdown => ("shutdown", Actor::System, None),
                EndReason::RecordingFailed => ("recording_failed", Actor::System, None),
            };
            Event {
                at: ms(*at_ms),
                actor,
                subject: session_id.clone(),
                kind: EventKind::SessionEnded {
                    grant_id: grant_id.clone(),
                    reason: reason.to_owned(),
                    detail,
                    bytes_in: *bytes_in,
                    bytes_out: *bytes_out,
                    statements: *statements,
                    revocation_delay_ms: *revocation_delay_ms,
                },
            }
        }
    }
}
