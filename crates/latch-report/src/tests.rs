//! A scripted ledger (one expired, one denied, one revoked break-glass access, one pending, one
//! from before the period) checked through every rendering, and OCSF records checked against
//! the OCSF schema files in `shared/testdata/ocsf`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;

use expect_test::expect;
use latch_core::{Actor, Event, EventKind, StoredEvent, Timestamp};
use serde_json::{Map, Value};

use crate::{ReportFilter, access_rows, ocsf, ocsf_all, to_csv, to_html, to_json, to_pdf};

const MIN: i64 = 60_000;

fn base() -> Timestamp {
    Timestamp::parse("2026-11-25T09:00:00Z").unwrap()
}

fn at(minutes: i64) -> Timestamp {
    Timestamp::from_millis(base().as_millis() + minutes * MIN)
}

/// Builds a ledger one event at a time, numbering them.
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

    fn created(&mut self, minutes: i64, id: &str, who: &str, resource: &str, reason: &str) {
        self.push(
            minutes,
            Actor::user(who),
            id,
            EventKind::RequestCreated {
                requester: who.into(),
                resource: resource.into(),
                role: "read".into(),
                duration_secs: 1800,
                reason: reason.into(),
                ticket: reason.starts_with("INC").then(|| "INC-4211".into()),
                required_approvals: 1,
                pending_until: None,
                policies: Vec::new(),
                approver_groups: Vec::new(),
                once: false,
            },
        );
    }

    fn granted(&mut self, minutes: i64, id: &str, who: &str) {
        let grant_id = id.replacen("req_", "grt_", 1);
        self.push(
            minutes,
            Actor::System,
            id,
            EventKind::GrantIssued {
                grant_id,
                grantee: who.into(),
                resource: "payments-db".into(),
                role: "read".into(),
                starts_at: at(minutes),
                expires_at: at(minutes + 30),
            },
        );
    }

    fn session(&mut self, start: i64, end: i64, session: &str, grant: &str, classes: &[&str]) {
        self.push(
            start,
            Actor::user("alice"),
            session,
            EventKind::SessionStarted {
                grant_id: grant.into(),
                user: "alice".into(),
                resource: "payments-db".into(),
                role: "read".into(),
                client_addr: "10.0.0.7:51234".into(),
                application_name: Some("psql".into()),
                auth: Some("scram-sha-256-plus".into()),
                tls: true,
            },
        );
        for (i, class) in classes.iter().enumerate() {
            self.push(
                start + 1,
                Actor::user("alice"),
                session,
                EventKind::SessionStatement {
                    grant_id: grant.into(),
                    seq: i as u64 + 1,
                    text: format!("-- {class}\nSELECT 1"),
                    protocol: "simple".into(),
                    class: (*class).into(),
                    objects: vec!["jobs".into()],
                    outcome: "rows".into(),
                    rows: Some(1),
                    detail: None,
                    duration_us: 250,
                },
            );
        }
        self.push(
            end,
            Actor::user("alice"),
            session,
            EventKind::SessionEnded {
                grant_id: grant.into(),
                reason: "client_closed".into(),
                detail: None,
                bytes_in: 100,
                bytes_out: 200,
                statements: classes.len() as u64,
                revocation_delay_ms: None,
            },
        );
    }

    fn finding(&mut self, minutes: i64, id: &str, about: &str) {
        self.push(
            minutes,
            Actor::System,
            id,
            EventKind::FindingOpened {
                key: format!("key-{id}"),
                checkpoint: "writes_under_read".into(),
                severity: "high".into(),
                about: about.into(),
                summary: "a write under a read grant".into(),
                evidence: vec![1],
            },
        );
    }
}

/// The ledger of the report tests; the period is 09:00 to 12:00.
fn ledger() -> Vec<StoredEvent> {
    let mut s = Script::default();
    // Before the period: neither it nor its later events appear.
    s.created(-30, "req_old", "alice", "payments-db", "old");
    // Expired, used twice.
    s.created(
        0,
        "req_a",
        "alice",
        "payments-db",
        "INC-4211: stuck job, \"urgent\"",
    );
    s.push(
        2,
        Actor::user("bob"),
        "req_a",
        EventKind::RequestApproved {
            comment: Some("ok, go".into()),
            policies: Vec::new(),
            break_glass: false,
        },
    );
    s.granted(2, "req_a", "alice");
    s.push(
        3,
        Actor::System,
        "req_old",
        EventKind::GrantExpired {
            grant_id: "grt_old".into(),
        },
    );
    s.session(5, 15, "ses_1", "grt_a", &["read", "read", "write"]);
    s.finding(16, "fnd_1", "ses_1");
    s.session(20, 25, "ses_2", "grt_a", &["read"]);
    s.push(
        32,
        Actor::System,
        "req_a",
        EventKind::GrantExpired {
            grant_id: "grt_a".into(),
        },
    );
    // Denied, with a spreadsheet formula for a reason.
    s.created(
        40,
        "req_b",
        "@mallory",
        "payments-db",
        "=HYPERLINK(\"http://x\")",
    );
    s.push(
        41,
        Actor::user("bob"),
        "req_b",
        EventKind::RequestDenied {
            reason: "no ticket".into(),
        },
    );
    // Break-glass, revoked, with a finding about its grant.
    s.created(
        50,
        "req_c",
        "carol",
        "payments-db",
        "-1 outage\r\nall hands",
    );
    s.push(
        50,
        Actor::user("carol"),
        "req_c",
        EventKind::RequestApproved {
            comment: None,
            policies: Vec::new(),
            break_glass: true,
        },
    );
    s.granted(50, "req_c", "carol");
    s.finding(51, "fnd_2", "grt_c");
    s.push(
        60,
        Actor::user("bob"),
        "req_c",
        EventKind::GrantRevoked {
            grant_id: "grt_c".into(),
            reason: "outage over".into(),
        },
    );
    // Pending, another resource, HTML in its reason.
    s.created(
        70,
        "req_d",
        "dave",
        "orders-db",
        "+<script>alert('x')</script> & co",
    );
    s.push(
        71,
        Actor::user("bob"),
        "req_d",
        EventKind::ApprovalRecorded {
            comment: Some("@carol please second".into()),
            policies: Vec::new(),
        },
    );
    // After the period.
    s.created(200, "req_late", "alice", "payments-db", "late");
    s.0
}

fn period() -> ReportFilter {
    ReportFilter {
        from: at(0),
        to: at(180),
        team: None,
        resource: None,
    }
}

#[test]
fn folds_each_request_of_the_period_into_one_row() {
    let rows = access_rows(&ledger(), &period());
    let ids: Vec<&str> = rows.iter().map(|row| row.request_id.as_str()).collect();
    assert_eq!(ids, ["req_a", "req_b", "req_c", "req_d"]);

    let [a, b, c, d] = rows.as_slice() else {
        unreachable!()
    };
    assert_eq!(a.outcome, "expired");
    assert_eq!(a.approvers, [("bob".to_owned(), Some("ok, go".to_owned()))]);
    assert_eq!(a.ticket.as_deref(), Some("INC-4211"));
    assert_eq!(
        (a.requested_at, a.decided_at, a.granted_at, a.ended_at),
        (at(0), Some(at(2)), Some(at(2)), Some(at(32)))
    );
    assert_eq!(a.duration_granted_secs, Some(1800));
    assert_eq!(a.duration_used_secs, Some(20 * 60), "from 09:05 to 09:25");
    assert_eq!(a.sessions, 2);
    assert_eq!(
        a.statements_by_class,
        BTreeMap::from([("read".to_owned(), 3), ("write".to_owned(), 1)])
    );
    assert_eq!(a.findings, ["fnd_1"]);
    assert!(!a.break_glass);

    assert_eq!(b.outcome, "denied by bob");
    assert_eq!((b.decided_at, b.granted_at), (Some(at(41)), None));
    assert_eq!(b.duration_used_secs, None);

    assert_eq!(c.outcome, "revoked by bob");
    assert!(c.break_glass);
    assert_eq!(c.approvers, [("carol".to_owned(), None)]);
    assert_eq!(c.findings, ["fnd_2"]);
    assert_eq!((c.sessions, c.duration_used_secs), (0, None));

    assert_eq!(d.outcome, "pending");
    assert_eq!(d.decided_at, None, "one approval of one is not a decision");
    assert_eq!(d.approvers.len(), 1);
}

#[test]
fn filters_by_team_and_resource() {
    let ledger = ledger();
    let team = ReportFilter {
        team: Some((
            "payments".to_owned(),
            BTreeSet::from(["carol".to_owned(), "dave".to_owned()]),
        )),
        ..period()
    };
    let ids = |filter: &ReportFilter| {
        access_rows(&ledger, filter)
            .into_iter()
            .map(|row| row.request_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&team), ["req_c", "req_d"]);
    let orders = ReportFilter {
        resource: Some("orders-db".to_owned()),
        ..period()
    };
    assert_eq!(ids(&orders), ["req_d"]);
    let empty = ReportFilter {
        to: at(0),
        ..period()
    };
    assert!(ids(&empty).is_empty(), "`to` is exclusive");
}

#[test]
fn csv_quotes_and_guards_against_formulas() {
    let csv = to_csv(&access_rows(&ledger(), &period()));
    assert!(csv.ends_with("\r\n"));
    assert_eq!(
        csv.matches("\r\n").count(),
        6,
        "header, 4 rows, one CRLF in a reason"
    );
    expect![[r#"
        request_id,requester,resource,role,reason,ticket,approvers,requested_at,decided_at,granted_at,ended_at,duration_granted_secs,duration_used_secs,outcome,break_glass,sessions,statements_by_class,findings
        req_a,alice,payments-db,read,"INC-4211: stuck job, ""urgent""",INC-4211,"bob (ok, go)",2026-11-25T09:00:00.000Z,2026-11-25T09:02:00.000Z,2026-11-25T09:02:00.000Z,2026-11-25T09:32:00.000Z,1800,1200,expired,false,2,read=3; write=1,fnd_1
        req_b,'@mallory,payments-db,read,"'=HYPERLINK(""http://x"")",,,2026-11-25T09:40:00.000Z,2026-11-25T09:41:00.000Z,,,,,denied by bob,false,0,,
        req_c,carol,payments-db,read,"'-1 outage
        all hands",,carol,2026-11-25T09:50:00.000Z,2026-11-25T09:50:00.000Z,2026-11-25T09:50:00.000Z,2026-11-25T10:00:00.000Z,1800,,revoked by bob,true,0,,fnd_2
        req_d,dave,orders-db,read,'+<script>alert('x')</script> & co,,bob (@carol please second),2026-11-25T10:10:00.000Z,,,,,,pending,false,0,,
    "#]]
    .assert_eq(&csv.replace("\r\n", "\n"));
}

#[test]
fn html_escapes_every_text() {
    let html = to_html(
        &access_rows(&ledger(), &period()),
        "Access <review> & \"Q4\"",
    );
    assert!(html.contains("<title>Access &lt;review&gt; &amp; &quot;Q4&quot;</title>"));
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"));
    assert!(!html.contains("<script"));
    assert!(html.contains("<tr class=\"flagged\">"));
    assert!(html.contains("<td>30m</td><td>20m</td><td>expired</td>"));
    assert!(html.contains("4 access requests, 2 needing attention"));
}

#[test]
fn json_keeps_absent_values_as_null() {
    let json = to_json(&access_rows(&ledger(), &period()));
    let b = &json[1];
    assert_eq!(b["outcome"], "denied by bob");
    assert_eq!(b["granted_at"], Value::Null);
    assert_eq!(json[0]["approvers"][0]["comment"], "ok, go");
    assert_eq!(json[0]["statements_by_class"]["read"], 3);
    assert_eq!(json[0]["requested_at"], "2026-11-25T09:00:00.000Z");
}

// ---- OCSF ---------------------------------------------------------------------------------

/// One event of every kind, in a plausible order.
fn every_kind() -> Vec<StoredEvent> {
    let mut s = Script::default();
    let mut events = ledger();
    s.push(
        0,
        Actor::System,
        "policies",
        EventKind::PolicyLoaded {
            hash: "ab".into(),
            files: vec!["p.cedar".into()],
            policies: 2,
        },
    );
    s.push(
        0,
        Actor::user("alice"),
        "tok_1",
        EventKind::TokenCreated {
            token_id: "tok_1".into(),
            user: "alice".into(),
            label: None,
        },
    );
    s.push(
        0,
        Actor::user("alice"),
        "tok_1",
        EventKind::TokenRevoked {
            token_id: "tok_1".into(),
            user: "alice".into(),
        },
    );
    s.push(
        1,
        Actor::user("eve"),
        "/v1/requests/req_a/approve",
        EventKind::AccessRefused {
            action: "approve".into(),
            reason: "not an approver".into(),
        },
    );
    s.push(
        1,
        Actor::System,
        "req_e",
        EventKind::RequestEscalated {
            level: 1,
            to: vec!["ops".into()],
        },
    );
    s.push(
        1,
        Actor::user("alice"),
        "req_e",
        EventKind::RequestCancelled {},
    );
    s.push(1, Actor::System, "req_f", EventKind::RequestTimedOut {});
    s.push(
        2,
        Actor::user("alice"),
        "grt_a",
        EventKind::CredentialIssued {
            credential_id: "cred_1".into(),
            user: "alice".into(),
            expires_at: at(30),
        },
    );
    s.push(
        6,
        Actor::user("alice"),
        "ses_1",
        EventKind::SessionStatementOutcome {
            grant_id: "grt_a".into(),
            seq: 1,
            outcome: "rows".into(),
            rows: Some(1),
            detail: None,
            duration_us: 10,
        },
    );
    s.push(
        17,
        Actor::user("bob"),
        "fnd_1",
        EventKind::FindingStatusChanged {
            status: "resolved".into(),
            comment: "expected".into(),
        },
    );
    s.push(
        18,
        Actor::System,
        "review/2026-Q3",
        EventKind::ReviewDue {
            period: "2026-Q3".into(),
            pack_dir: "/var/lib/latch/reviews/2026-Q3".into(),
            resources: vec!["payments-db".into()],
        },
    );
    s.push(
        19,
        Actor::user("carol"),
        "review/2026-Q3/payments-db",
        EventKind::ReviewRecorded {
            period: "2026-Q3".into(),
            resource: "payments-db".into(),
            outcome: "approved".into(),
            comment: "every access had a ticket".into(),
        },
    );
    events.extend(s.0);
    events
}

fn ocsf_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/ocsf")
}

/// The OCSF schema files, read as the README in `shared/testdata/ocsf` describes them.
struct Schema {
    dictionary: Map<String, Value>,
}

fn read(relative: &str) -> Value {
    let path = ocsf_dir().join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Merges `from` into `into` attribute by attribute, field by field (enums entry by entry):
/// how a class or object refines what it extends.
fn merge_attributes(into: &mut Map<String, Value>, from: &Map<String, Value>, only_new: bool) {
    for (name, spec) in from {
        if name == "$include" {
            continue;
        }
        let entry = into
            .entry(name.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        let (Some(entry), Some(spec)) = (entry.as_object_mut(), spec.as_object()) else {
            continue;
        };
        for (field, value) in spec {
            if field == "enum"
                && let (Some(Value::Object(have)), Some(add)) =
                    (entry.get_mut("enum"), value.as_object())
            {
                for (k, v) in add {
                    have.insert(k.clone(), v.clone());
                }
            } else if !(only_new && entry.contains_key(field)) {
                entry.insert(field.clone(), value.clone());
            }
        }
    }
}

/// A class or object definition with everything it extends and includes: its attributes and
/// its constraints, and the category it belongs to.
struct Definition {
    attributes: Map<String, Value>,
    constraints: Map<String, Value>,
    category: Option<String>,
}

fn resolve(relative: &str) -> Definition {
    let file = read(relative);
    let parent = match file["extends"].as_str() {
        None | Some("object") => None,
        Some("base_event") => Some("events/base_event.json".to_owned()),
        Some(name @ ("iam" | "application")) => Some(format!("events/{name}/{name}.json")),
        Some(name) => Some(format!("objects/{name}.json")),
    };
    let mut definition = match parent {
        Some(parent) => resolve(&parent),
        None => Definition {
            attributes: Map::new(),
            constraints: Map::new(),
            category: None,
        },
    };
    let attributes = file["attributes"].as_object().cloned().unwrap_or_default();
    merge_attributes(&mut definition.attributes, &attributes, false);
    // Profiles add optional attributes: allowed, never required.
    for include in attributes
        .get("$include")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let profile = read(include.as_str().unwrap());
        let mut added = profile["attributes"].as_object().cloned().unwrap();
        for spec in added.values_mut() {
            if let Some(spec) = spec.as_object_mut() {
                spec.insert("requirement".into(), "optional".into());
            }
        }
        merge_attributes(&mut definition.attributes, &added, true);
    }
    if let Some(constraints) = file["constraints"].as_object() {
        definition.constraints = constraints.clone();
    }
    if let Some(category) = file["category"].as_str() {
        definition.category = Some(category.to_owned());
    }
    definition
}

impl Schema {
    fn load() -> Self {
        Self {
            dictionary: read("dictionary.json")["attributes"]
                .as_object()
                .cloned()
                .unwrap(),
        }
    }

    /// Every problem with `record` as an instance of the class in `relative`.
    fn check_class(&self, relative: &str, record: &Value) -> Vec<String> {
        let class = resolve(relative);
        let mut problems = Vec::new();
        let categories = read("categories.json");
        let category = class.category.as_deref().unwrap();
        let category_uid = categories["attributes"][category]["uid"].as_u64().unwrap();
        let class_uid = category_uid * 1000 + read(relative)["uid"].as_u64().unwrap();
        if record["class_uid"] != class_uid || record["category_uid"] != category_uid {
            problems.push(format!("class_uid should be {class_uid}"));
        }
        let activity = record["activity_id"].as_u64().unwrap_or(0);
        if record["type_uid"] != class_uid * 100 + activity {
            problems.push("type_uid is not class_uid * 100 + activity_id".into());
        }
        self.check_object("", record, &class, &mut problems);
        problems
    }

    fn check_object(
        &self,
        path: &str,
        value: &Value,
        definition: &Definition,
        problems: &mut Vec<String>,
    ) {
        let Some(object) = value.as_object() else {
            problems.push(format!("`{path}` is not an object"));
            return;
        };
        for (name, spec) in &definition.attributes {
            if spec["requirement"] == "required" && object.get(name).is_none_or(Value::is_null) {
                problems.push(format!("`{path}{name}` is required"));
            }
        }
        if let Some(names) = definition.constraints.get("at_least_one") {
            let names = names.as_array().unwrap();
            if !names
                .iter()
                .any(|name| object.contains_key(name.as_str().unwrap()))
            {
                problems.push(format!("`{path}` needs at least one of {names:?}"));
            }
        }
        for (name, item) in object {
            let Some(spec) = definition.attributes.get(name) else {
                problems.push(format!("`{path}{name}` is not an attribute here"));
                continue;
            };
            let known = self.dictionary.get(name).cloned().unwrap_or(Value::Null);
            let kind = spec["type"]
                .as_str()
                .or(known["type"].as_str())
                .unwrap_or("");
            let is_array = spec["is_array"].as_bool().or(known["is_array"].as_bool());
            let items: Vec<&Value> = match (is_array, item) {
                (Some(true), Value::Array(items)) => items.iter().collect(),
                (Some(true), _) => {
                    problems.push(format!("`{path}{name}` should be an array"));
                    continue;
                }
                _ => vec![item],
            };
            let values = spec.get("enum").or(known.get("enum"));
            for item in items {
                let here = format!("{path}{name}");
                let fits = match kind {
                    "integer_t" | "long_t" | "timestamp_t" | "port_t" => {
                        item.is_i64() || item.is_u64()
                    }
                    "boolean_t" => item.is_boolean(),
                    "ip_t" => item.as_str().is_some_and(|ip| ip.parse::<IpAddr>().is_ok()),
                    "json_t" => true,
                    // `unmapped` and its kind: free-form.
                    "object" => item.is_object(),
                    kind if kind.ends_with("_t") => item.is_string(),
                    "" => {
                        problems.push(format!("`{here}` has no type in the dictionary"));
                        true
                    }
                    object_name => {
                        let nested = resolve(&format!("objects/{object_name}.json"));
                        self.check_object(&format!("{here}."), item, &nested, problems);
                        true
                    }
                };
                if !fits {
                    problems.push(format!("`{here}` is not a {kind}: {item}"));
                }
                // The uids are checked against the class files above.
                let uid = matches!(name.as_str(), "class_uid" | "category_uid" | "type_uid");
                if let Some(Value::Object(values)) = values
                    && !uid
                    && (item.is_u64() || item.is_i64())
                    && !values.contains_key(&item.to_string())
                {
                    problems.push(format!("`{here}` = {item} is not one of its enum values"));
                }
            }
        }
    }
}

fn class_file(class_uid: u64) -> &'static str {
    match class_uid {
        3002 => "events/iam/authentication.json",
        3004 => "events/iam/entity_management.json",
        3005 => "events/iam/user_access.json",
        6003 => "events/application/api_activity.json",
        6005 => "events/application/datastore_activity.json",
        other => panic!("latch maps to no class {other}"),
    }
}

#[test]
fn every_ocsf_record_satisfies_its_class_in_the_schema() {
    let schema = Schema::load();
    let events = every_kind();
    let kinds: BTreeSet<&str> = events.iter().map(|e| e.event.kind.type_name()).collect();
    assert_eq!(kinds.len(), 23, "every event kind is exercised");
    assert_eq!(read("version.json")["version"], crate::OCSF_VERSION);

    let mut problems = Vec::new();
    // With context and alone: both must be valid records.
    let alone: Vec<Value> = events.iter().map(ocsf).collect();
    for (event, record) in events.iter().zip(ocsf_all(&events).iter().chain(&alone)) {
        let class = class_file(record["class_uid"].as_u64().unwrap());
        for problem in schema.check_class(class, record) {
            problems.push(format!("{}: {problem}", event.event.kind.type_name()));
        }
        assert_eq!(record["unmapped"]["latch_seq"], event.seq);
        assert_eq!(record["time"], event.event.at.as_millis());
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_schema_check_catches_a_missing_required_attribute() {
    let schema = Schema::load();
    let events = ledger();
    let issued = events
        .iter()
        .find(|e| matches!(e.event.kind, EventKind::GrantIssued { .. }))
        .unwrap();
    let mut record = ocsf(issued);
    record.as_object_mut().unwrap().remove("user");
    record["metadata"]["product"] = serde_json::json!({});
    record["severity_id"] = 42.into();
    record["bogus"] = 1.into();
    let mut problems = schema.check_class("events/iam/user_access.json", &record);
    // Sorted: the order of a JSON object's keys depends on serde_json's features in the build.
    problems.sort();
    expect![[r#"
        [
            "`bogus` is not an attribute here",
            "`metadata.product.` needs at least one of [String(\"name\"), String(\"uid\")]",
            "`severity_id` = 42 is not one of its enum values",
            "`user` is required",
        ]
    "#]]
    .assert_debug_eq(&problems);
}

#[test]
fn ocsf_carries_the_grantee_and_client_from_earlier_events() {
    let events = ledger();
    let records = ocsf_all(&events);
    let expired = records
        .iter()
        .find(|r| r["unmapped"]["latch_subject"] == "req_a" && r["activity_id"] == 2)
        .unwrap();
    assert_eq!(expired["class_uid"], 3005);
    assert_eq!(expired["user"]["name"], "alice");
    assert_eq!(expired["actor"]["user"]["name"], "system");
    let statement = records.iter().find(|r| r["class_uid"] == 6005).unwrap();
    assert_eq!(statement["src_endpoint"]["ip"], "10.0.0.7");
    assert_eq!(statement["type_uid"], 600504);
    let started = records.iter().find(|r| r["class_uid"] == 3002).unwrap();
    assert_eq!(started["src_endpoint"]["port"], 51234);
    assert_eq!(started["auth_protocol"], "scram-sha-256-plus");
    assert_eq!(started["auth_protocol_id"], 99);
}

fn pdf_text(pdf: &[u8]) -> (usize, String) {
    let doc = lopdf::Document::load_mem(pdf).expect("a valid PDF");
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    let text = doc.extract_text(&pages).unwrap();
    (pages.len(), text)
}

#[test]
fn pdf_is_a_document_any_reader_opens_with_every_access() {
    let rows = access_rows(&ledger(), &period());
    let pdf = to_pdf(&rows, "Access (review) \\ Q4");
    assert!(pdf.starts_with(b"%PDF-"));
    let (pages, text) = pdf_text(&pdf);
    assert_eq!(pages, 1);
    for needle in [
        "Access (review) \\ Q4",
        "4 access requests, 2 needing attention",
        "req_a  alice on payments-db (read)",
        "Why: INC-4211: stuck job, \"urgent\" (ticket INC-4211)",
        "Approved by: bob (ok, go)",
        "Granted for 30m, used for 20m; outcome: expired",
        "statements: read=3; write=1; findings: fnd_1",
        "req_c  carol on payments-db (read)  EMERGENCY SELF-APPROVAL",
        "Why: -1 outage all hands",
        "Why: +<script>alert('x')</script> & co",
        "page 1 of 1",
    ] {
        assert!(text.contains(needle), "`{needle}` in {text}");
    }
    assert!(!text.contains("Characters outside Latin-1"), "{text}");
}

#[test]
fn pdf_pages_are_numbered_and_no_access_is_split_or_lost() {
    let one = access_rows(&ledger(), &period());
    let mut rows = Vec::new();
    for copy in 0..60 {
        for row in &one {
            let mut row = row.clone();
            row.request_id = format!("{}_{copy:02}", row.request_id);
            rows.push(row);
        }
    }
    let (pages, text) = pdf_text(&to_pdf(&rows, "Q4"));
    assert!(pages > 1, "{pages}");
    for page in 1..=pages {
        assert!(text.contains(&format!("page {page} of {pages}")), "{text}");
    }
    for row in &rows {
        assert_eq!(
            text.matches(&format!("{}  ", row.request_id)).count(),
            1,
            "{}",
            row.request_id
        );
    }
}

#[test]
fn pdf_says_when_a_character_cannot_be_shown() {
    let mut rows = access_rows(&ledger(), &period());
    rows[0].reason = "café outage ✓".to_owned();
    let (_, text) = pdf_text(&to_pdf(&rows, "Q4"));
    assert!(text.contains("Why: café outage ?"), "{text}");
    assert!(
        text.contains("Characters outside Latin-1 are shown as ?"),
        "{text}"
    );
}
