//! Ledger events as OCSF records (schema 1.9.0-dev) for security data lakes and SIEMs.
//!
//! | latch event | OCSF class | activity |
//! | --- | --- | --- |
//! | `request.*` | Entity Management (3004) | Create, Update (decisions), Delete (cancel) |
//! | `grant.issued` | User Access Management (3005) | Assign Privileges |
//! | `grant.expired`, `grant.revoked` | User Access Management (3005) | Revoke Privileges |
//! | `session.started`, `session.ended` | Authentication (3002) | Logon, Logoff |
//! | `session.statement`, `session.statement_outcome` | Datastore Activity (6005) | Query |
//! | `review.recorded` | Entity Management (3004) | Update (the access review's outcome) |
//! | everything else | API Activity (6003) | Create, Update, Delete |
//!
//! Some events do not name everything their class requires (a `grant.expired` does not name
//! the grantee, a `session.statement` not the client address); `ocsf_all` carries those from
//! earlier events of the same grant or session, `ocsf` alone writes `unknown`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use latch_core::{Actor, EventKind, StoredEvent};
use serde_json::{Map, Value, json};

/// The OCSF schema version the records follow (that of `shared/testdata/ocsf`).
pub const OCSF_VERSION: &str = "1.9.0-dev";

const UNKNOWN: &str = "unknown";

/// What earlier events tell about later ones.
#[derive(Default)]
struct Context {
    /// Grant id → grantee.
    grantees: BTreeMap<String, String>,
    /// Session id → (client address, resource).
    sessions: BTreeMap<String, (String, String)>,
}

impl Context {
    fn learn(&mut self, stored: &StoredEvent) {
        match &stored.event.kind {
            EventKind::GrantIssued {
                grant_id, grantee, ..
            } => {
                self.grantees.insert(grant_id.clone(), grantee.clone());
            }
            EventKind::SessionStarted {
                grant_id,
                user,
                resource,
                client_addr,
                ..
            } => {
                self.grantees.insert(grant_id.clone(), user.clone());
                self.sessions.insert(
                    stored.event.subject.clone(),
                    (client_addr.clone(), resource.clone()),
                );
            }
            _ => {}
        }
    }

    fn grantee(&self, grant_id: &str) -> &str {
        self.grantees.get(grant_id).map_or(UNKNOWN, String::as_str)
    }

    fn client(&self, session_id: &str) -> &str {
        self.sessions
            .get(session_id)
            .map_or(UNKNOWN, |(client, _)| client.as_str())
    }

    fn resource(&self, session_id: &str) -> &str {
        self.sessions
            .get(session_id)
            .map_or(UNKNOWN, |(_, resource)| resource.as_str())
    }
}

/// One OCSF record for one event, from that event alone.
pub fn ocsf(event: &StoredEvent) -> Value {
    let mut context = Context::default();
    context.learn(event);
    map(event, &context)
}

/// OCSF records for a run of events (in `seq` order), filling what an event does not say
/// from earlier events of the same grant or session.
pub fn ocsf_all(events: &[StoredEvent]) -> Vec<Value> {
    let mut context = Context::default();
    events
        .iter()
        .map(|event| {
            context.learn(event);
            map(event, &context)
        })
        .collect()
}

/// The class and activity for an event: (category uid, class uid, class name, activity id,
/// activity name).
fn classify(kind: &EventKind) -> (u32, u32, &'static str, u32, &'static str) {
    const ENTITY: (u32, u32, &str) = (3, 3004, "Entity Management");
    const ACCESS: (u32, u32, &str) = (3, 3005, "User Access Management");
    const AUTH: (u32, u32, &str) = (3, 3002, "Authentication");
    const DATASTORE: (u32, u32, &str) = (6, 6005, "Datastore Activity");
    const API: (u32, u32, &str) = (6, 6003, "API Activity");
    let ((category, class, name), activity, activity_name) = match kind {
        EventKind::RequestCreated { .. } => (ENTITY, 1, "Create"),
        EventKind::ApprovalRecorded { .. }
        | EventKind::RequestApproved { .. }
        | EventKind::RequestDenied { .. }
        | EventKind::RequestTimedOut {}
        | EventKind::RequestEscalated { .. } => (ENTITY, 3, "Update"),
        EventKind::RequestCancelled {} => (ENTITY, 4, "Delete"),
        EventKind::ReviewRecorded { .. } => (ENTITY, 3, "Update"),
        EventKind::GrantIssued { .. } => (ACCESS, 1, "Assign Privileges"),
        EventKind::GrantExpired { .. } | EventKind::GrantRevoked { .. } => {
            (ACCESS, 2, "Revoke Privileges")
        }
        EventKind::SessionStarted { .. } => (AUTH, 1, "Logon"),
        EventKind::SessionEnded { .. } => (AUTH, 2, "Logoff"),
        EventKind::SessionStatement { .. } | EventKind::SessionStatementOutcome { .. } => {
            (DATASTORE, 4, "Query")
        }
        EventKind::TokenCreated { .. }
        | EventKind::CredentialIssued { .. }
        | EventKind::FindingOpened { .. }
        | EventKind::ReviewDue { .. } => (API, 1, "Create"),
        EventKind::PolicyLoaded { .. } | EventKind::FindingStatusChanged { .. } => {
            (API, 3, "Update")
        }
        EventKind::TokenRevoked { .. } => (API, 4, "Delete"),
        // A refused call: OCSF has no "refused" activity, so Other with a failure status.
        EventKind::AccessRefused { .. } => (API, 99, "Other"),
    };
    (category, class, name, activity, activity_name)
}

/// OCSF severity: 1 informational; refusals, revocations and break-glass approvals are worth
/// a look (3, medium); findings carry their own.
fn severity_id(kind: &EventKind) -> u32 {
    match kind {
        EventKind::AccessRefused { .. } | EventKind::GrantRevoked { .. } => 3,
        EventKind::RequestApproved {
            break_glass: true, ..
        } => 3,
        EventKind::FindingOpened { severity, .. } => match severity.as_str() {
            "low" => 2,
            "medium" => 3,
            "high" => 4,
            "critical" => 5,
            _ => 1,
        },
        _ => 1,
    }
}

fn user(name: &str) -> Value {
    json!({ "name": name })
}

fn actor(actor: &Actor) -> Value {
    match actor {
        Actor::User(name) => json!({ "user": { "name": name, "type_id": 1 } }),
        Actor::System => json!({ "app_name": "latch", "user": { "name": "system", "type_id": 3 } }),
    }
}

fn map(stored: &StoredEvent, context: &Context) -> Value {
    let event = &stored.event;
    let kind = &event.kind;
    let (category_uid, class_uid, class_name, activity_id, activity_name) = classify(kind);
    let mut record = Map::new();
    let mut put = |key: &str, value: Value| {
        record.insert(key.to_owned(), value);
    };
    put("category_uid", json!(category_uid));
    put("class_uid", json!(class_uid));
    put("class_name", json!(class_name));
    put("activity_id", json!(activity_id));
    put("activity_name", json!(activity_name));
    put(
        "type_uid",
        json!(u64::from(class_uid) * 100 + u64::from(activity_id)),
    );
    put("time", json!(event.at.as_millis()));
    put("severity_id", json!(severity_id(kind)));
    put(
        "metadata",
        json!({
            "product": { "name": "latch", "vendor_name": "latch" },
            "version": OCSF_VERSION,
            "uid": stored.seq.to_string(),
            "sequence": stored.seq,
        }),
    );
    put("actor", actor(&event.actor));
    put(
        "message",
        json!(format!("{} {}", kind.type_name(), event.subject)),
    );
    let refused = matches!(kind, EventKind::AccessRefused { .. });
    put("status_id", json!(if refused { 2 } else { 1 }));
    // The latch record itself, so nothing is lost in the mapping.
    let data = serde_json::to_value(kind)
        .ok()
        .and_then(|value| value.get("data").cloned())
        .unwrap_or(Value::Null);
    put(
        "unmapped",
        json!({
            "latch_type": kind.type_name(),
            "latch_seq": stored.seq,
            "latch_subject": event.subject,
            "latch_data": data,
        }),
    );

    match kind {
        EventKind::RequestCreated { .. }
        | EventKind::ApprovalRecorded { .. }
        | EventKind::RequestApproved { .. }
        | EventKind::RequestDenied { .. }
        | EventKind::RequestCancelled {}
        | EventKind::RequestTimedOut {}
        | EventKind::RequestEscalated { .. } => {
            put(
                "entity",
                json!({ "uid": event.subject, "type": "access_request" }),
            );
            match kind {
                EventKind::ApprovalRecorded {
                    comment: Some(comment),
                    ..
                }
                | EventKind::RequestApproved {
                    comment: Some(comment),
                    ..
                } => put("comment", json!(comment)),
                EventKind::RequestDenied { reason } => put("comment", json!(reason)),
                _ => {}
            }
        }
        EventKind::ReviewRecorded {
            period,
            resource,
            outcome,
            comment,
        } => {
            put(
                "entity",
                json!({
                    "uid": event.subject,
                    "name": format!("access review of {resource} for {period}"),
                    "type": "access_review",
                }),
            );
            put("comment", json!(comment));
            put("status_detail", json!(outcome));
        }
        EventKind::GrantIssued {
            grant_id,
            grantee,
            resource,
            role,
            ..
        } => {
            put("user", user(grantee));
            put("privileges", json!([role]));
            put("resource", json!({ "name": resource, "uid": grant_id }));
        }
        EventKind::GrantExpired { grant_id } | EventKind::GrantRevoked { grant_id, .. } => {
            put("user", user(context.grantee(grant_id)));
            put("resource", json!({ "uid": grant_id }));
            if let EventKind::GrantRevoked { reason, .. } = kind {
                put("status_detail", json!(reason));
            }
        }
        EventKind::SessionStarted {
            grant_id,
            user: name,
            resource,
            client_addr,
            tls,
            auth,
            ..
        } => {
            put("user", user(name));
            put("session", json!({ "uid": event.subject }));
            put("src_endpoint", src_endpoint(client_addr));
            put("dst_endpoint", json!({ "name": resource }));
            put("is_cleartext", json!(!tls));
            if let Some(auth) = auth {
                // OCSF's protocol list has no SCRAM: 99, "Other", named in `auth_protocol`.
                put("auth_protocol_id", json!(99));
                put("auth_protocol", json!(auth));
            }
            put("is_remote", json!(true));
            put("status_detail", json!(format!("grant {grant_id}")));
        }
        EventKind::SessionEnded {
            grant_id, reason, ..
        } => {
            put("user", user(context.grantee(grant_id)));
            put("session", json!({ "uid": event.subject }));
            put(
                "dst_endpoint",
                json!({ "name": context.resource(&event.subject) }),
            );
            put("status_detail", json!(reason));
        }
        EventKind::SessionStatement { seq, .. }
        | EventKind::SessionStatementOutcome { seq, .. } => {
            put("src_endpoint", src_endpoint(context.client(&event.subject)));
            // latch fronts PostgreSQL: a relational database (type_id 1).
            put(
                "database",
                json!({ "name": context.resource(&event.subject), "type_id": 1 }),
            );
            // An outcome names its statement by `seq` in `unmapped`; only the statement itself
            // has a query text.
            if let EventKind::SessionStatement { text, .. } = kind {
                let uid = format!("{}/{seq}", event.subject);
                put("query_info", json!({ "uid": uid, "query_string": text }));
            }
        }
        EventKind::AccessRefused { action, reason } => {
            put("api", json!({ "operation": action }));
            put("src_endpoint", src_endpoint(UNKNOWN));
            put("status_detail", json!(reason));
        }
        _ => {
            put("api", json!({ "operation": kind.type_name() }));
            put("src_endpoint", src_endpoint(UNKNOWN));
        }
    }
    Value::Object(record)
}

/// The client's endpoint from its address (`ip:port` as the gateway records it): ip and port
/// when it parses, else the text as a name (OCSF requires one identifying attribute).
fn src_endpoint(client: &str) -> Value {
    if let Ok(addr) = client.parse::<SocketAddr>() {
        json!({ "ip": addr.ip().to_string(), "port": addr.port() })
    } else if let Ok(ip) = client.parse::<IpAddr>() {
        json!({ "ip": ip.to_string() })
    } else {
        json!({ "name": client })
    }
}
