//! Events: one per lifecycle transition (and per audit-relevant refusal), and their canonical
//! encoding, which is what the ledger hashes.
//!
//! Encoding, version 1: a JSON object with the keys `v`, `seq`, `at`, `actor`, `subject`, `type`
//! and `data`, canonicalised as RFC 8785 (JCS) prescribes: keys sorted, no insignificant
//! whitespace, strings escaped minimally. latch events hold no floating-point numbers, so JCS's
//! number rules reduce to plain integers. The same event encodes to the same bytes on every store.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::Timestamp;

/// The version written into every encoded event; bump it when the encoding changes.
pub const ENCODING_VERSION: u32 = 1;

/// Who caused an event.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Actor {
    User(String),
    /// latch itself: the scheduler expiring grants and timing out requests.
    System,
}

impl Actor {
    pub fn user(name: impl Into<String>) -> Self {
        Self::User(name.into())
    }

    pub fn user_name(&self) -> Option<&str> {
        match self {
            Self::User(name) => Some(name),
            Self::System => None,
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(name) => write!(f, "user:{name}"),
            Self::System => f.write_str("system"),
        }
    }
}

impl Actor {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "system" => Some(Self::System),
            _ => text.strip_prefix("user:").map(Self::user),
        }
    }
}

impl Serialize for Actor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid actor `{text}`")))
    }
}

/// What happened. The serde names are the encoded `type` values: never rename one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", deny_unknown_fields)]
pub enum EventKind {
    #[serde(rename = "request.created")]
    RequestCreated {
        requester: String,
        resource: String,
        role: String,
        duration_secs: u64,
        reason: String,
        ticket: Option<String>,
        required_approvals: u32,
        /// When the request times out if undecided; `None` when requests never time out.
        pending_until: Option<Timestamp>,
        /// The policies that allowed it and set its requirements (absent under the built-in rule).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        policies: Vec<String>,
        /// Teams that must each count an approver among the approvals.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        approver_groups: Vec<String>,
        /// A single-use grant: it ends with its first gateway session.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        once: bool,
    },
    /// An approval that does not yet reach the required count.
    #[serde(rename = "request.approval_recorded")]
    ApprovalRecorded {
        comment: Option<String>,
        /// The policies that entitled the approver (absent under the built-in rule).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        policies: Vec<String>,
    },
    /// The approval that reaches the required count.
    #[serde(rename = "request.approved")]
    RequestApproved {
        comment: Option<String>,
        /// The policies that entitled the approver (absent under the built-in rule).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        policies: Vec<String>,
        /// The requester approved their own request in an emergency (`self_approve`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        break_glass: bool,
    },
    #[serde(rename = "request.denied")]
    RequestDenied { reason: String },
    #[serde(rename = "request.cancelled")]
    RequestCancelled {},
    #[serde(rename = "request.timed_out")]
    RequestTimedOut {},
    /// Nobody approved in time: the next level of approvers (`to`, possibly nobody new) may
    /// now approve, and are notified.
    #[serde(rename = "request.escalated")]
    RequestEscalated { level: u32, to: Vec<String> },
    #[serde(rename = "grant.issued")]
    GrantIssued {
        grant_id: String,
        grantee: String,
        resource: String,
        role: String,
        starts_at: Timestamp,
        expires_at: Timestamp,
    },
    #[serde(rename = "grant.expired")]
    GrantExpired { grant_id: String },
    #[serde(rename = "grant.revoked")]
    GrantRevoked { grant_id: String, reason: String },
    /// A refused attempt (403): recorded because attempts are evidence too.
    #[serde(rename = "access.refused")]
    AccessRefused { action: String, reason: String },
    /// The policy set in force changed (or was first loaded): its hash and files.
    #[serde(rename = "policy.loaded")]
    PolicyLoaded {
        hash: String,
        files: Vec<String>,
        policies: u64,
    },
    #[serde(rename = "token.created")]
    TokenCreated {
        token_id: String,
        user: String,
        label: Option<String>,
    },
    #[serde(rename = "token.revoked")]
    TokenRevoked { token_id: String, user: String },
    /// `latch connect` issued a short-lived gateway credential bound to a grant (never the
    /// secret itself). Subject: the grant id.
    #[serde(rename = "credential.issued")]
    CredentialIssued {
        credential_id: String,
        user: String,
        expires_at: Timestamp,
    },
    /// A gateway session opened under a grant. Subject: the session id.
    #[serde(rename = "session.started")]
    SessionStarted {
        grant_id: String,
        user: String,
        resource: String,
        role: String,
        client_addr: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        application_name: Option<String>,
        /// How the client proved its credential: `scram-sha-256-plus` (bound to the gateway's
        /// TLS certificate), `scram-sha-256` or `password`; absent in sessions recorded before
        /// latch recorded it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auth: Option<String>,
        tls: bool,
    },
    /// One statement of a session: a simple-protocol query (all its statements) or one
    /// extended-protocol execution. `outcome` is `rows`, `error`, `refused`, `pending` (strict
    /// recording: recorded before it ran; a `session.statement_outcome` follows), `not_run` or
    /// `interrupted`. Subject: the session id.
    #[serde(rename = "session.statement")]
    SessionStatement {
        grant_id: String,
        seq: u64,
        text: String,
        protocol: String,
        class: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        objects: Vec<String>,
        outcome: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rows: Option<u64>,
        /// The SQLSTATE of an error, or the reason latch refused it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        duration_us: u64,
    },
    /// The outcome of a statement recorded as `pending` (strict recording).
    #[serde(rename = "session.statement_outcome")]
    SessionStatementOutcome {
        grant_id: String,
        seq: u64,
        outcome: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rows: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        duration_us: u64,
    },
    /// An audit checkpoint found something (subject: the finding id, derived from `key`, so
    /// that re-evaluating history never opens the same finding twice).
    #[serde(rename = "finding.opened")]
    FindingOpened {
        key: String,
        checkpoint: String,
        severity: String,
        /// The request, grant or session it is about.
        about: String,
        summary: String,
        /// Sequence numbers of the events that triggered it.
        evidence: Vec<u64>,
    },
    /// Someone looked at a finding (`acknowledged`) or closed it (`resolved`), saying why.
    #[serde(rename = "finding.status_changed")]
    FindingStatusChanged { status: String, comment: String },
    /// A review period closed (`[reviews]`): its evidence pack was written to `pack_dir` and
    /// the owners of `resources` were asked to review their access. Recorded once per period.
    /// Subject: `review/{period}`.
    #[serde(rename = "review.due")]
    ReviewDue {
        period: String,
        pack_dir: String,
        resources: Vec<String>,
    },
    /// An owner's review of a resource's access over a period: `outcome` is `approved` or
    /// `changes_needed`. The actor is the reviewer. Subject: `review/{period}/{resource}`.
    #[serde(rename = "review.recorded")]
    ReviewRecorded {
        period: String,
        resource: String,
        outcome: String,
        comment: String,
    },
    /// A gateway session closed. `reason`: `client_closed`, `grant_expired`, `grant_revoked`,
    /// `upstream_closed`, `protocol_error`, `shutdown`, `recording_failed`. For grant ends,
    /// `revocation_delay_ms` is how long after the grant ended the session was closed.
    #[serde(rename = "session.ended")]
    SessionEnded {
        grant_id: String,
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        bytes_in: u64,
        bytes_out: u64,
        statements: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        revocation_delay_ms: Option<i64>,
    },
}

impl EventKind {
    /// Whether the event moves a request through its lifecycle (as opposed to recording an
    /// attempt or a token change about it); only these are folded by `lifecycle::apply`.
    pub fn is_request_transition(&self) -> bool {
        !matches!(
            self,
            Self::AccessRefused { .. }
                | Self::PolicyLoaded { .. }
                | Self::TokenCreated { .. }
                | Self::TokenRevoked { .. }
                | Self::CredentialIssued { .. }
                | Self::SessionStarted { .. }
                | Self::SessionStatement { .. }
                | Self::SessionStatementOutcome { .. }
                | Self::SessionEnded { .. }
                | Self::FindingOpened { .. }
                | Self::FindingStatusChanged { .. }
                | Self::ReviewDue { .. }
                | Self::ReviewRecorded { .. }
        )
    }

    /// The encoded `type`, e.g. `request.created`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::RequestCreated { .. } => "request.created",
            Self::ApprovalRecorded { .. } => "request.approval_recorded",
            Self::RequestApproved { .. } => "request.approved",
            Self::RequestDenied { .. } => "request.denied",
            Self::RequestCancelled {} => "request.cancelled",
            Self::RequestTimedOut {} => "request.timed_out",
            Self::RequestEscalated { .. } => "request.escalated",
            Self::GrantIssued { .. } => "grant.issued",
            Self::GrantExpired { .. } => "grant.expired",
            Self::GrantRevoked { .. } => "grant.revoked",
            Self::AccessRefused { .. } => "access.refused",
            Self::PolicyLoaded { .. } => "policy.loaded",
            Self::TokenCreated { .. } => "token.created",
            Self::TokenRevoked { .. } => "token.revoked",
            Self::CredentialIssued { .. } => "credential.issued",
            Self::SessionStarted { .. } => "session.started",
            Self::SessionStatement { .. } => "session.statement",
            Self::SessionStatementOutcome { .. } => "session.statement_outcome",
            Self::SessionEnded { .. } => "session.ended",
            Self::FindingOpened { .. } => "finding.opened",
            Self::FindingStatusChanged { .. } => "finding.status_changed",
            Self::ReviewDue { .. } => "review.due",
            Self::ReviewRecorded { .. } => "review.recorded",
        }
    }
}

/// An event before the store has given it its place in the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub at: Timestamp,
    pub actor: Actor,
    /// The id of the object the event is about: a request id (for request and grant events),
    /// a token id, or the API path of a refused call.
    pub subject: String,
    pub kind: EventKind,
}

/// An event with its sequence number: its position in the ledger, starting at 1 and gapless.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: u64,
    pub event: Event,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Encoded {
    v: u32,
    seq: u64,
    at: Timestamp,
    actor: Actor,
    subject: String,
    #[serde(flatten)]
    kind: EventKind,
}

/// [`Encoded`] borrowing the event: what [`StoredEvent::canonical_json`] serialises.
#[derive(Serialize)]
struct EncodedRef<'a> {
    v: u32,
    seq: u64,
    at: Timestamp,
    actor: &'a Actor,
    subject: &'a str,
    #[serde(flatten)]
    kind: &'a EventKind,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("event is not valid JSON for version {ENCODING_VERSION}: {0}")]
    Malformed(String),
    #[error("event has encoding version {0}, this latch reads version {ENCODING_VERSION}")]
    UnknownVersion(u32),
    #[error("event bytes are not in canonical form")]
    NotCanonical,
}

/// An event's canonical bytes before its place in the ledger is known: those of
/// [`StoredEvent::canonical_json`] with the digits of `seq` still to write. Encoding is most of
/// an append's own CPU, and places are given on the store's one serial path: an event encoded
/// beforehand, on any thread, leaves only the digits to that path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnplacedEncoding {
    bytes: String,
    /// Where the digits of `seq` go.
    seq_at: usize,
}

impl Event {
    /// This event's canonical bytes but for its place ([`UnplacedEncoding::at`]).
    pub fn encode_unplaced(&self) -> UnplacedEncoding {
        let mut encoder = canonical::Encoder::with_capacity(768);
        let seq_at = encoder.encode_at(self, None, ENCODING_VERSION);
        UnplacedEncoding {
            // As in `canonical_json`: the encoder writes ASCII and whole `str`s only.
            bytes: String::from_utf8(encoder.into_bytes())
                .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned()),
            seq_at,
        }
    }
}

impl UnplacedEncoding {
    /// The canonical bytes of the event at `seq`: exactly
    /// `StoredEvent { seq, event }.canonical_json()`.
    pub fn at(&self, seq: u64) -> String {
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(seq);
        let (head, tail) = self
            .bytes
            .split_at_checked(self.seq_at)
            .unwrap_or((self.bytes.as_str(), ""));
        let mut out = String::with_capacity(self.bytes.len() + digits.len());
        out.push_str(head);
        out.push_str(digits);
        out.push_str(tail);
        out
    }
}

impl StoredEvent {
    fn encoded(&self) -> EncodedRef<'_> {
        EncodedRef {
            v: ENCODING_VERSION,
            seq: self.seq,
            at: self.event.at,
            actor: &self.event.actor,
            subject: &self.event.subject,
            kind: &self.event.kind,
        }
    }

    /// The canonical bytes of this event: the ledger leaf.
    pub fn canonical_json(&self) -> String {
        let mut encoder = canonical::Encoder::with_capacity(768);
        encoder.encode(self, ENCODING_VERSION);
        // The encoder writes ASCII and whole `str`s only, so the check passes; it is the fast
        // one (`from_utf8_lossy` cost the ledger's writer 2 %), and nothing is copied.
        String::from_utf8(encoder.into_bytes())
            .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned())
    }

    /// The reference encoding: `serde_json::Value`, then [`write_canonical`]. The encoder
    /// above must write exactly these bytes (see the tests); the reference decoder compares
    /// with these.
    fn canonical_json_via_value(&self) -> String {
        // Serialising these types to a Value cannot fail: every map key is a string and there
        // are no floats; an empty object would only ever hide a bug, so fall back to it visibly.
        let value = serde_json::to_value(self.encoded()).unwrap_or(Value::Null);
        let mut out = String::with_capacity(256);
        write_canonical(&value, &mut out);
        out
    }

    /// Decodes canonical bytes; refuses anything that does not re-encode to the same bytes.
    /// (For many events, [`Decoder`] keeps its buffers from one to the next.)
    pub fn decode(bytes: &str) -> Result<Self, DecodeError> {
        Decoder::default().decode(bytes)
    }

    /// The reference decoder: a `serde_json::Value`, the version check, the typed event, and
    /// its canonical bytes compared with `bytes`. [`Decoder::decode`] answers exactly as this.
    fn decode_via_value(bytes: &str) -> Result<Self, DecodeError> {
        let value: Value =
            serde_json::from_str(bytes).map_err(|err| DecodeError::Malformed(err.to_string()))?;
        if let Some(version) = value.get("v").and_then(Value::as_u64)
            && version != u64::from(ENCODING_VERSION)
        {
            return Err(DecodeError::UnknownVersion(
                u32::try_from(version).unwrap_or(u32::MAX),
            ));
        }
        let encoded: Encoded =
            serde_json::from_value(value).map_err(|err| DecodeError::Malformed(err.to_string()))?;
        let event = Self {
            seq: encoded.seq,
            event: Event {
                at: encoded.at,
                actor: encoded.actor,
                subject: encoded.subject,
                kind: encoded.kind,
            },
        };
        if event.canonical_json_via_value() != bytes {
            return Err(DecodeError::NotCanonical);
        }
        Ok(event)
    }
}

/// Decodes events one after another, reusing its buffers: the verifier's decoder.
///
/// The fast path reads the event straight from the bytes, in the canonical order of its keys
/// (no `serde_json`), encodes it canonically into a reused buffer and compares bytes. It accepts only bytes that
/// are the canonical encoding of the event it read, which are exactly the bytes the reference
/// decoder accepts, with the same event. Anything else (not canonical, not an event, a newer
/// version) goes to the reference decoder, so that the error says what it always said.
#[derive(Default)]
pub struct Decoder {
    encoder: canonical::Encoder,
}

impl Decoder {
    pub fn decode(&mut self, bytes: &str) -> Result<StoredEvent, DecodeError> {
        match self.decode_canonical(bytes) {
            Some(event) => Ok(event),
            None => StoredEvent::decode_via_value(bytes),
        }
    }

    /// The event whose canonical encoding is exactly `bytes`, if `bytes` is one.
    // INVARIANT: `Some` only when the canonical encoding of the event equals `bytes`.
    fn decode_canonical(&mut self, bytes: &str) -> Option<StoredEvent> {
        let event = canonical::read_event(bytes, canonical_type(bytes)?)?;
        let encoded = self.encoder.encode(&event, ENCODING_VERSION);
        (encoded == bytes.as_bytes()).then_some(event)
    }
}

/// The `type` of an event in canonical form, read from its end: `type` and `v` are the last
/// keys. `data`, which comes before `type`, is then read straight into its kind.
fn canonical_type(bytes: &str) -> Option<&str> {
    const KEY: &[u8] = b",\"type\":\"";
    let start = bytes
        .as_bytes()
        .windows(KEY.len())
        .rposition(|w| w == KEY)?
        + KEY.len();
    let rest = bytes.get(start..)?;
    let end = rest.find('"')?;
    rest.get(..end)
}

mod canonical;

/// Writes `value` as RFC 8785 canonical JSON. Key order is enforced here rather than trusted to
/// `serde_json::Map`, whose order depends on a cargo feature any crate in the build may turn on.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            // JCS sorts by UTF-16 code units; for the ASCII keys latch writes that is byte order.
            entries.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::String(text) => write_string(text, out),
        // Integers print the same in JCS and serde_json; latch never encodes floats.
        Value::Number(number) => out.push_str(&number.to_string()),
        Value::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Value::Null => out.push_str("null"),
    }
}

fn write_string(text: &str, out: &mut String) {
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;
    use proptest::prelude::*;

    fn sample() -> StoredEvent {
        StoredEvent {
            seq: 7,
            event: Event {
                at: Timestamp::from_millis(1_795_000_000_123),
                actor: Actor::user("alice"),
                subject: "req_01".into(),
                kind: EventKind::RequestCreated {
                    requester: "alice".into(),
                    resource: "payments-db".into(),
                    role: "read".into(),
                    duration_secs: 1800,
                    reason: "INC-4211: stuck job \"x\"\n\u{1}é".into(),
                    ticket: Some("INC-4211".into()),
                    required_approvals: 1,
                    pending_until: None,
                    policies: Vec::new(),
                    approver_groups: Vec::new(),
                    once: false,
                },
            },
        }
    }

    #[test]
    fn encoding_is_canonical_and_stable() {
        expect![[r#"{"actor":"user:alice","at":"2026-11-18T11:06:40.123Z","data":{"duration_secs":1800,"pending_until":null,"reason":"INC-4211: stuck job \"x\"\n\u0001é","requester":"alice","required_approvals":1,"resource":"payments-db","role":"read","ticket":"INC-4211"},"seq":7,"subject":"req_01","type":"request.created","v":1}"#]]
        .assert_eq(&sample().canonical_json());
    }

    #[test]
    fn decode_round_trips_and_refuses_non_canonical_bytes() {
        let event = sample();
        let bytes = event.canonical_json();
        assert_eq!(StoredEvent::decode(&bytes), Ok(event));
        let spaced = bytes.replacen(',', ", ", 1);
        assert_eq!(StoredEvent::decode(&spaced), Err(DecodeError::NotCanonical));
        let future = bytes.replace("\"v\":1", "\"v\":2");
        assert_eq!(
            StoredEvent::decode(&future),
            Err(DecodeError::UnknownVersion(2))
        );
        assert!(matches!(
            StoredEvent::decode("{\"v\":1}"),
            Err(DecodeError::Malformed(_))
        ));
    }

    /// Every way to spoil the canonical bytes that the reference decoder refuses: the fast
    /// decoder refuses each too, with the same error.
    #[test]
    fn the_fast_decoder_refuses_what_the_reference_refuses() {
        let bytes = sample().canonical_json();
        let spoiled = [
            // Whitespace, between tokens and around the whole.
            bytes.replacen(',', ", ", 1),
            bytes.replacen(':', " :", 1),
            format!(" {bytes}"),
            format!("{bytes}\n"),
            // Key order, at the top and inside `data`.
            bytes.replacen(
                "\"actor\":\"user:alice\",\"at\":\"2026-11-18T11:06:40.123Z\"",
                "\"at\":\"2026-11-18T11:06:40.123Z\",\"actor\":\"user:alice\"",
                1,
            ),
            bytes.replacen(
                "\"requester\":\"alice\",\"required_approvals\":1",
                "\"required_approvals\":1,\"requester\":\"alice\"",
                1,
            ),
            // Escapes JCS does not write: an escaped letter or slash, upper-case hex, a raw
            // control character.
            bytes.replacen("alice", "\\u0061lice", 1),
            bytes.replacen("payments-db", "payments\\/db", 1),
            bytes.replacen("\\u0001", "\\u0001".to_uppercase().as_str(), 1),
            bytes.replacen("\\n", "\n", 1),
            bytes.replacen("\\\"x\\\"", "\\u0022x\\u0022", 1),
            // Numbers: a fraction, an exponent, a leading zero, a sign, a negative zero.
            bytes.replacen("1800", "1800.0", 1),
            bytes.replacen("1800", "1.8e3", 1),
            bytes.replacen("\"seq\":7", "\"seq\":07", 1),
            bytes.replacen("\"seq\":7", "\"seq\":+7", 1),
            bytes.replacen("\"required_approvals\":1", "\"required_approvals\":-0", 1),
            // Fields: unknown, repeated, missing, or present with the value that is left out.
            bytes.replacen("\"v\":1", "\"v\":1,\"w\":1", 1),
            bytes.replacen("\"role\":\"read\"", "\"role\":\"read\",\"rolf\":\"x\"", 1),
            bytes.replacen("\"seq\":7", "\"seq\":7,\"seq\":7", 1),
            bytes.replacen("\"pending_until\":null,", "", 1),
            bytes.replacen("\"role\":\"read\"", "\"once\":false,\"role\":\"read\"", 1),
            bytes.replacen(
                "\"pending_until\":null",
                "\"pending_until\":null,\"policies\":[]",
                1,
            ),
            // Another encoding of the same instant, another type, another version, garbage.
            bytes.replacen("40.123Z", "40.123+00:00", 1),
            bytes.replacen("request.created", "request.denied", 1),
            bytes.replacen("\"v\":1", "\"v\":2", 1),
            bytes.replacen("\"v\":1", "\"v\":1.0", 1),
            bytes.replacen("\"v\":1}", "\"v\":1}}", 1),
            bytes[..bytes.len() - 1].to_owned(),
            String::new(),
            "null".into(),
            "{\"v\":1}".into(),
        ];
        for text in spoiled {
            assert_ne!(text, bytes, "the spoiling changed nothing");
            let reference = StoredEvent::decode_via_value(&text);
            assert!(reference.is_err(), "the reference accepts {text}");
            assert_eq!(Decoder::default().decode(&text), reference, "{text}");
            assert_eq!(Decoder::default().decode_canonical(&text), None, "{text}");
        }
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[a-z_.:/-]{0,12}",
            "[\\x00-\\x7f]{0,12}",
            Just("\"\\\u{8}\t\n\u{c}\r\u{1f}\u{7f}\u{2028}é😀".to_owned()),
        ]
    }

    fn texts() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec(text(), 0..3)
    }

    /// Instants between 1970 and 2096; with `wide`, also any `i64` (most beyond chrono's
    /// range, or beyond the four-digit years RFC 3339 reads back).
    fn instant(wide: bool) -> BoxedStrategy<Timestamp> {
        let near = (0i64..4_000_000_000_000).prop_map(Timestamp::from_millis);
        if wide {
            prop_oneof![near, any::<i64>().prop_map(Timestamp::from_millis)].boxed()
        } else {
            near.boxed()
        }
    }

    fn kind(wide: bool) -> impl Strategy<Value = EventKind> {
        let at = move || instant(wide);
        prop_oneof![
            (
                (text(), text(), text(), any::<u64>(), text()),
                (
                    proptest::option::of(text()),
                    any::<u32>(),
                    proptest::option::of(at()),
                    texts(),
                    texts(),
                    any::<bool>()
                )
            )
                .prop_map(
                    |(
                        (requester, resource, role, duration_secs, reason),
                        (
                            ticket,
                            required_approvals,
                            pending_until,
                            policies,
                            approver_groups,
                            once,
                        ),
                    )| EventKind::RequestCreated {
                        requester,
                        resource,
                        role,
                        duration_secs,
                        reason,
                        ticket,
                        required_approvals,
                        pending_until,
                        policies,
                        approver_groups,
                        once,
                    }
                ),
            (proptest::option::of(text()), texts()).prop_map(|(comment, policies)| {
                EventKind::ApprovalRecorded { comment, policies }
            }),
            (proptest::option::of(text()), texts(), any::<bool>()).prop_map(
                |(comment, policies, break_glass)| EventKind::RequestApproved {
                    comment,
                    policies,
                    break_glass,
                }
            ),
            text().prop_map(|reason| EventKind::RequestDenied { reason }),
            Just(EventKind::RequestCancelled {}),
            Just(EventKind::RequestTimedOut {}),
            (any::<u32>(), texts())
                .prop_map(|(level, to)| EventKind::RequestEscalated { level, to }),
            (text(), text(), text(), text(), at(), at()).prop_map(
                |(grant_id, grantee, resource, role, starts_at, expires_at)| {
                    EventKind::GrantIssued {
                        grant_id,
                        grantee,
                        resource,
                        role,
                        starts_at,
                        expires_at,
                    }
                }
            ),
            text().prop_map(|grant_id| EventKind::GrantExpired { grant_id }),
            (text(), text())
                .prop_map(|(grant_id, reason)| EventKind::GrantRevoked { grant_id, reason }),
            (text(), text())
                .prop_map(|(action, reason)| EventKind::AccessRefused { action, reason }),
            (text(), texts(), any::<u64>()).prop_map(|(hash, files, policies)| {
                EventKind::PolicyLoaded {
                    hash,
                    files,
                    policies,
                }
            }),
            (text(), text(), proptest::option::of(text())).prop_map(|(token_id, user, label)| {
                EventKind::TokenCreated {
                    token_id,
                    user,
                    label,
                }
            }),
            (text(), text())
                .prop_map(|(token_id, user)| EventKind::TokenRevoked { token_id, user }),
            (text(), text(), at()).prop_map(|(credential_id, user, expires_at)| {
                EventKind::CredentialIssued {
                    credential_id,
                    user,
                    expires_at,
                }
            }),
            (
                (text(), text(), text(), text()),
                (
                    text(),
                    proptest::option::of(text()),
                    proptest::option::of(text()),
                    any::<bool>()
                )
            )
                .prop_map(
                    |(
                        (grant_id, user, resource, role),
                        (client_addr, application_name, auth, tls),
                    )| {
                        EventKind::SessionStarted {
                            grant_id,
                            user,
                            resource,
                            role,
                            client_addr,
                            application_name,
                            auth,
                            tls,
                        }
                    }
                ),
            (
                (text(), any::<u64>(), text(), text(), text()),
                (
                    texts(),
                    text(),
                    proptest::option::of(any::<u64>()),
                    proptest::option::of(text()),
                    any::<u64>()
                )
            )
                .prop_map(
                    |(
                        (grant_id, seq, text, protocol, class),
                        (objects, outcome, rows, detail, duration_us),
                    )| EventKind::SessionStatement {
                        grant_id,
                        seq,
                        text,
                        protocol,
                        class,
                        objects,
                        outcome,
                        rows,
                        detail,
                        duration_us,
                    }
                ),
            (
                text(),
                any::<u64>(),
                text(),
                proptest::option::of(any::<u64>()),
                proptest::option::of(text()),
                any::<u64>()
            )
                .prop_map(|(grant_id, seq, outcome, rows, detail, duration_us)| {
                    EventKind::SessionStatementOutcome {
                        grant_id,
                        seq,
                        outcome,
                        rows,
                        detail,
                        duration_us,
                    }
                }),
            (
                (text(), text(), text(), text(), text()),
                prop::collection::vec(any::<u64>(), 0..4)
            )
                .prop_map(|((key, checkpoint, severity, about, summary), evidence)| {
                    EventKind::FindingOpened {
                        key,
                        checkpoint,
                        severity,
                        about,
                        summary,
                        evidence,
                    }
                }),
            (text(), text())
                .prop_map(|(status, comment)| EventKind::FindingStatusChanged { status, comment }),
            (text(), text(), texts()).prop_map(|(period, pack_dir, resources)| {
                EventKind::ReviewDue {
                    period,
                    pack_dir,
                    resources,
                }
            }),
            (text(), text(), text(), text()).prop_map(|(period, resource, outcome, comment)| {
                EventKind::ReviewRecorded {
                    period,
                    resource,
                    outcome,
                    comment,
                }
            }),
            (
                (text(), text(), proptest::option::of(text())),
                (
                    any::<u64>(),
                    any::<u64>(),
                    any::<u64>(),
                    proptest::option::of(any::<i64>())
                )
            )
                .prop_map(
                    |(
                        (grant_id, reason, detail),
                        (bytes_in, bytes_out, statements, revocation_delay_ms),
                    )| EventKind::SessionEnded {
                        grant_id,
                        reason,
                        detail,
                        bytes_in,
                        bytes_out,
                        statements,
                        revocation_delay_ms,
                    }
                ),
        ]
    }

    fn actor() -> impl Strategy<Value = Actor> {
        prop_oneof![Just(Actor::System), text().prop_map(Actor::User)]
    }

    fn stored_event(wide: bool) -> impl Strategy<Value = StoredEvent> {
        (any::<u64>(), instant(wide), actor(), text(), kind(wide)).prop_map(
            |(seq, at, actor, subject, kind)| StoredEvent {
                seq,
                event: Event {
                    at,
                    actor,
                    subject,
                    kind,
                },
            },
        )
    }

    /// One edit of canonical bytes, of the kinds that make them non-canonical or invalid.
    fn spoil(bytes: &str, at: usize, edit: u8, with: char) -> String {
        let mut at = at % (bytes.len() + 1);
        while !bytes.is_char_boundary(at) {
            at -= 1;
        }
        let (head, tail) = bytes.split_at(at);
        let mut next = tail.chars();
        let dropped = next.next();
        match edit % 4 {
            0 => format!("{head}{with}{tail}"),
            1 => format!("{head}{}", next.as_str()),
            2 => format!("{head}{with}{}", next.as_str()),
            _ => format!(
                "{head}{}{}",
                next.as_str(),
                dropped.map(String::from).unwrap_or_default()
            ),
        }
    }

    proptest! {
        /// Strings are escaped as the reference writer escapes them.
        #[test]
        fn strings_are_escaped_as_the_reference_escapes_them(text in prop_oneof![
            any::<String>(),
            "[\\x00-\\x7f]{0,40}",
            "[a-z\"\\\\\\x00-\\x1f]{0,40}",
        ]) {
            let mut fast = Vec::new();
            canonical::write_string(&mut fast, &text);
            let mut reference = String::new();
            write_string(&text, &mut reference);
            prop_assert_eq!(String::from_utf8_lossy(&fast), reference);
        }

        /// The timestamp writer writes chrono's text for the years 0 to 9999 (and leaves the
        /// others to chrono), and the reader reads it back.
        #[test]
        fn timestamps_are_written_as_chrono_writes_them(millis in prop_oneof![
            -62_167_219_200_000i64..253_402_300_800_000,
            -62_167_219_300_000i64..-62_167_219_100_000,
            253_402_300_700_000i64..253_402_300_900_000,
            any::<i64>(),
        ]) {
            let at = Timestamp::from_millis(millis);
            let mut out = Vec::new();
            canonical::write_timestamp(&mut out, at);
            let text = at.to_string();
            prop_assert_eq!(String::from_utf8_lossy(&out), text.as_str());
            if (-62_167_219_200_000..253_402_300_800_000).contains(&millis) {
                prop_assert_eq!(canonical::parse_timestamp(&text), Some(at));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The encoder writes exactly the reference's bytes, and the fast decoder reads every
        /// event back by its fast path.
        #[test]
        fn the_encoder_agrees_with_the_reference(event in stored_event(true)) {
            let bytes = event.canonical_json();
            prop_assert_eq!(&bytes, &event.canonical_json_via_value());
            let mut decoder = Decoder::default();
            let reference = StoredEvent::decode_via_value(&bytes);
            // An instant outside chrono's range or past year 9999 does not read back, on either
            // path; every event that does reads back by the fast path.
            if reference.as_ref() == Ok(&event) {
                prop_assert_eq!(decoder.decode_canonical(&bytes), Some(event));
            }
            prop_assert_eq!(decoder.decode(&bytes), reference);
        }

        /// An event encoded before its place is known is, once placed, byte for byte the
        /// event encoded at that place.
        #[test]
        fn an_unplaced_encoding_placed_is_the_canonical_one(
            event in stored_event(true),
            seq in any::<u64>(),
        ) {
            let unplaced = event.event.encode_unplaced();
            prop_assert_eq!(unplaced.at(event.seq), event.canonical_json());
            let elsewhere = StoredEvent { seq, event: event.event.clone() };
            prop_assert_eq!(unplaced.at(seq), elsewhere.canonical_json());
        }

        #[test]
        fn a_round_trip_takes_the_fast_path(event in stored_event(false)) {
            let bytes = event.canonical_json();
            prop_assert_eq!(Decoder::default().decode_canonical(&bytes), Some(event.clone()));
            prop_assert_eq!(StoredEvent::decode_via_value(&bytes), Ok(event));
        }

        /// Whatever the bytes, the decoder answers exactly as the reference decoder.
        #[test]
        fn the_decoder_answers_as_the_reference(
            event in stored_event(false),
            edits in prop::collection::vec(
                (any::<usize>(), any::<u8>(), prop::sample::select(vec![
                    ' ', '\n', ',', ':', '"', '\\', '{', '}', '[', ']', '0', '1', '-', '.', 'e',
                    'u', 'n', 'a', 'z', '\u{1}', 'é',
                ])),
                1..3,
            ),
        ) {
            let mut bytes = event.canonical_json();
            for (at, edit, with) in edits {
                bytes = spoil(&bytes, at, edit, with);
            }
            let mut decoder = Decoder::default();
            prop_assert_eq!(decoder.decode(&bytes), StoredEvent::decode_via_value(&bytes));
        }
    }

    proptest! {
        #[test]
        fn any_text_round_trips(reason in any::<String>(), subject in "[a-z0-9_]{1,30}", seq in 1u64..u64::MAX, millis in 0i64..4_000_000_000_000) {
            let event = StoredEvent {
                seq,
                event: Event {
                    at: Timestamp::from_millis(millis),
                    actor: Actor::System,
                    subject,
                    kind: EventKind::RequestDenied { reason },
                },
            };
            let bytes = event.canonical_json();
            prop_assert_eq!(serde_json::from_str::<Value>(&bytes).is_ok(), true);
            prop_assert_eq!(StoredEvent::decode(&bytes), Ok(event));
        }
    }
}
