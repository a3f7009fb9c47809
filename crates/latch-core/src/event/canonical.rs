//! RFC 8785 (JCS) for latch's events, written by hand: the encoder behind
//! [`super::StoredEvent::canonical_json`] and the verifier's canonical check.
//!
//! Every event has the same top-level keys, and each kind the same `data` keys, so the sorted
//! order JCS asks for is written out here, kind by kind (the `kinds!` list), with what serde
//! would skip (an empty list, a `false`, a `None` marked `skip_serializing_if`) left out. The
//! result must be byte for byte what `serde_json::to_value` followed by the reference writer
//! (`super::write_canonical`) makes of the serde derive: the tests hold the two side by side over
//! every kind. Every kind is destructured and built without `..`, so a new field does not
//! compile until it is in the list too.
//!
//! The [`Reader`] reads the same list back, positionally: the verifier's fast decoder.

use super::{Actor, Event, EventKind, StoredEvent};
use crate::Timestamp;

/// Writes the canonical bytes of events into one reused buffer.
#[derive(Default)]
pub(crate) struct Encoder {
    out: Vec<u8>,
}

impl Encoder {
    /// An encoder whose buffer starts with room for `bytes` (most events are a few hundred).
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Encoder {
            out: Vec::with_capacity(bytes),
        }
    }

    /// The buffer, holding the last event encoded.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.out
    }

    /// The canonical bytes of `event`, valid until the next call.
    pub(crate) fn encode(&mut self, event: &StoredEvent, version: u32) -> &[u8] {
        self.encode_at(&event.event, Some(event.seq), version);
        &self.out
    }

    /// The canonical bytes of `event` at `seq`, or with `seq`'s digits left out when `None`;
    /// returns where they go.
    pub(crate) fn encode_at(&mut self, event: &Event, seq: Option<u64>, version: u32) -> usize {
        let out = &mut self.out;
        out.clear();
        out.extend_from_slice(b"{\"actor\":\"");
        match &event.actor {
            Actor::User(name) => {
                out.extend_from_slice(b"user:");
                write_string_body(out, name);
            }
            Actor::System => out.extend_from_slice(b"system"),
        }
        out.extend_from_slice(b"\",\"at\":\"");
        write_timestamp(out, event.at);
        out.extend_from_slice(b"\",\"data\":");
        write_data(out, &event.kind);
        out.extend_from_slice(b",\"seq\":");
        let seq_at = out.len();
        if let Some(seq) = seq {
            out.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
        }
        out.extend_from_slice(b",\"subject\":");
        write_string(out, &event.subject);
        out.extend_from_slice(b",\"type\":");
        write_string(out, event.kind.type_name());
        out.extend_from_slice(b",\"v\":");
        out.extend_from_slice(itoa::Buffer::new().format(version).as_bytes());
        out.push(b'}');
        seq_at
    }
}

/// An object's entries, written in the order given (which must be the sorted one). Each
/// method writes one kind of field, as serde writes it.
struct Writer<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Writer<'a> {
    fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, first: true }
    }

    fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_string(self.out, key);
        self.out.push(b':');
        self.out
    }

    fn string(&mut self, key: &str, value: &str) {
        write_string(self.key(key), value);
    }

    /// `null` when `None`.
    fn option(&mut self, key: &str, value: &Option<String>) {
        match value {
            Some(value) => self.string(key, value),
            None => self.key(key).extend_from_slice(b"null"),
        }
    }

    /// Left out when `None` (`skip_serializing_if = "Option::is_none"`).
    fn some(&mut self, key: &str, value: &Option<String>) {
        if let Some(value) = value {
            self.string(key, value);
        }
    }

    fn integer<T: itoa::Integer + Copy>(&mut self, key: &str, value: &T) {
        let out = self.key(key);
        out.extend_from_slice(itoa::Buffer::new().format(*value).as_bytes());
    }

    /// Left out when `None`.
    fn some_integer<T: itoa::Integer + Copy>(&mut self, key: &str, value: &Option<T>) {
        if let Some(value) = value {
            self.integer(key, value);
        }
    }

    fn boolean(&mut self, key: &str, value: &bool) {
        let text: &[u8] = if *value { b"true" } else { b"false" };
        self.key(key).extend_from_slice(text);
    }

    /// Left out when `false` (`skip_serializing_if = "std::ops::Not::not"`).
    fn flag(&mut self, key: &str, value: &bool) {
        if *value {
            self.boolean(key, value);
        }
    }

    fn timestamp(&mut self, key: &str, value: &Timestamp) {
        let out = self.key(key);
        out.push(b'"');
        write_timestamp(out, *value);
        out.push(b'"');
    }

    /// `null` when `None`.
    fn option_timestamp(&mut self, key: &str, value: &Option<Timestamp>) {
        match value {
            Some(value) => self.timestamp(key, value),
            None => self.key(key).extend_from_slice(b"null"),
        }
    }

    fn strings(&mut self, key: &str, values: &[String]) {
        let out = self.key(key);
        out.push(b'[');
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_string(out, value);
        }
        out.push(b']');
    }

    /// Left out when empty (`skip_serializing_if = "Vec::is_empty"`).
    fn some_strings(&mut self, key: &str, values: &[String]) {
        if !values.is_empty() {
            self.strings(key, values);
        }
    }

    fn integers(&mut self, key: &str, values: &[u64]) {
        let out = self.key(key);
        out.push(b'[');
        let mut buffer = itoa::Buffer::new();
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(buffer.format(*value).as_bytes());
        }
        out.push(b']');
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

/// Reads what [`Writer`] writes, method for method, from the start of `text`. It need only
/// read canonical bytes right: whatever it reads is encoded again and compared with `text`.
pub(crate) struct Reader<'a> {
    text: &'a str,
    at: usize,
    /// No entry of the current object read yet (the next key has no comma before it).
    first: bool,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self {
            text,
            at: 0,
            first: true,
        }
    }

    fn rest(&self) -> &'a [u8] {
        self.text.as_bytes().get(self.at..).unwrap_or_default()
    }

    fn literal(&mut self, literal: &[u8]) -> Option<()> {
        self.rest().starts_with(literal).then(|| {
            self.at += literal.len();
        })
    }

    /// At the end of the text.
    pub(crate) fn end(&self) -> Option<()> {
        (self.at == self.text.len()).then_some(())
    }

    /// `{`, and the entries that follow are the object's.
    pub(crate) fn open(&mut self) -> Option<bool> {
        self.literal(b"{")?;
        Some(std::mem::replace(&mut self.first, true))
    }

    /// `}`, back in the object `outer` (as [`Reader::open`] gave it).
    pub(crate) fn close(&mut self, outer: bool) -> Option<()> {
        self.literal(b"}")?;
        self.first = outer;
        Some(())
    }

    /// The next entry's key, which must be `key`.
    pub(crate) fn key(&mut self, key: &str) -> Option<()> {
        if !self.first {
            self.literal(b",")?;
        }
        self.literal(b"\"")?;
        self.literal(key.as_bytes())?;
        self.literal(b"\":")?;
        self.first = false;
        Some(())
    }

    /// Whether the next entry's key is `key` (read if so): a field serde may leave out.
    fn has(&mut self, key: &str) -> bool {
        let (at, first) = (self.at, self.first);
        if self.key(key).is_some() {
            return true;
        }
        (self.at, self.first) = (at, first);
        false
    }

    /// A string, borrowed when it has no escapes.
    pub(crate) fn text(&mut self) -> Option<std::borrow::Cow<'a, str>> {
        self.literal(b"\"")?;
        let start = self.at;
        let clean = clean_prefix(self.rest());
        self.at += clean;
        match self.rest().first()? {
            b'"' => {
                self.at += 1;
                return self
                    .text
                    .get(start..start + clean)
                    .map(std::borrow::Cow::Borrowed);
            }
            b'\\' => {}
            _ => return None,
        }
        let mut owned = self.text.get(start..self.at)?.to_owned();
        loop {
            let clean = clean_prefix(self.rest());
            owned.push_str(self.text.get(self.at..self.at + clean)?);
            self.at += clean;
            match self.rest().first()? {
                b'"' => {
                    self.at += 1;
                    return Some(std::borrow::Cow::Owned(owned));
                }
                b'\\' => self.at += 1,
                _ => return None,
            }
            let escaped = match *self.rest().first()? {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let hex = self.text.get(self.at + 1..self.at + 5)?;
                    self.at += 4;
                    char::from_u32(u32::from_str_radix(hex, 16).ok()?)?
                }
                _ => return None,
            };
            self.at += 1;
            owned.push(escaped);
        }
    }

    fn null(&mut self) -> bool {
        self.literal(b"null").is_some()
    }

    pub(crate) fn string_value(&mut self) -> Option<String> {
        self.text().map(std::borrow::Cow::into_owned)
    }

    pub(crate) fn integer_value<T: TryFrom<i128>>(&mut self) -> Option<T> {
        let negative = self.literal(b"-").is_some();
        let digits = self
            .rest()
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 || digits > 20 {
            return None;
        }
        let mut value: i128 = 0;
        for digit in self.rest().get(..digits)? {
            value = value * 10 + i128::from(digit - b'0');
        }
        self.at += digits;
        T::try_from(if negative { -value } else { value }).ok()
    }

    pub(crate) fn timestamp_value(&mut self) -> Option<Timestamp> {
        let text = self.text()?;
        parse_timestamp(&text).or_else(|| Timestamp::parse(&text).ok())
    }

    fn boolean_value(&mut self) -> Option<bool> {
        if self.literal(b"true").is_some() {
            Some(true)
        } else {
            self.literal(b"false").map(|()| false)
        }
    }

    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        self.literal(b"[")?;
        let mut items = Vec::new();
        if self.literal(b"]").is_some() {
            return Some(items);
        }
        loop {
            items.push(item(self)?);
            if self.literal(b"]").is_some() {
                return Some(items);
            }
            self.literal(b",")?;
        }
    }

    fn string(&mut self, key: &str) -> Option<String> {
        self.key(key)?;
        self.string_value()
    }

    fn option(&mut self, key: &str) -> Option<Option<String>> {
        self.key(key)?;
        if self.null() {
            return Some(None);
        }
        self.string_value().map(Some)
    }

    fn some(&mut self, key: &str) -> Option<Option<String>> {
        if !self.has(key) {
            return Some(None);
        }
        self.string_value().map(Some)
    }

    fn integer<T: TryFrom<i128>>(&mut self, key: &str) -> Option<T> {
        self.key(key)?;
        self.integer_value()
    }

    fn some_integer<T: TryFrom<i128>>(&mut self, key: &str) -> Option<Option<T>> {
        if !self.has(key) {
            return Some(None);
        }
        self.integer_value().map(Some)
    }

    fn boolean(&mut self, key: &str) -> Option<bool> {
        self.key(key)?;
        self.boolean_value()
    }

    fn flag(&mut self, key: &str) -> Option<bool> {
        if !self.has(key) {
            return Some(false);
        }
        self.boolean_value()
    }

    fn timestamp(&mut self, key: &str) -> Option<Timestamp> {
        self.key(key)?;
        self.timestamp_value()
    }

    fn option_timestamp(&mut self, key: &str) -> Option<Option<Timestamp>> {
        self.key(key)?;
        if self.null() {
            return Some(None);
        }
        self.timestamp_value().map(Some)
    }

    fn strings(&mut self, key: &str) -> Option<Vec<String>> {
        self.key(key)?;
        self.list(Self::string_value)
    }

    fn some_strings(&mut self, key: &str) -> Option<Vec<String>> {
        if !self.has(key) {
            return Some(Vec::new());
        }
        self.list(Self::string_value)
    }

    fn integers(&mut self, key: &str) -> Option<Vec<u64>> {
        self.key(key)?;
        self.list(Self::integer_value)
    }
}

/// The event whose `type` is `tag` (read beforehand from the end of `text`), read from the
/// canonical bytes `text`.
pub(crate) fn read_event(text: &str, tag: &str) -> Option<StoredEvent> {
    let mut reader = Reader::new(text);
    reader.open()?;
    reader.key("actor")?;
    let actor = Actor::parse(&reader.text()?)?;
    reader.key("at")?;
    let at = reader.timestamp_value()?;
    reader.key("data")?;
    let kind = read_data(&mut reader, tag)?;
    reader.key("seq")?;
    let seq = reader.integer_value()?;
    reader.key("subject")?;
    let subject = reader.string_value()?;
    reader.key("type")?;
    if reader.text()? != tag {
        return None;
    }
    reader.key("v")?;
    let _version: u32 = reader.integer_value()?;
    reader.close(true)?;
    reader.end()?;
    Some(StoredEvent {
        seq,
        event: super::Event {
            at,
            actor,
            subject,
            kind,
        },
    })
}

/// Every kind's `type` and `data` fields, sorted, each with the [`Writer`] and [`Reader`]
/// method that writes and reads it as serde does. Generates [`write_data`] and [`read_data`].
macro_rules! kinds {
    ($($variant:ident $type:literal { $($field:ident: $method:ident),* $(,)? })*) => {
        /// The `data` object of `kind`: its fields in sorted order.
        fn write_data(out: &mut Vec<u8>, kind: &EventKind) {
            let mut writer = Writer::open(out);
            match kind {
                $(EventKind::$variant { $($field),* } => {
                    $(writer.$method(stringify!($field), $field);)*
                })*
            }
            writer.close();
        }

        /// The `data` object of the kind whose `type` is `tag`, read at the reader's place.
        pub(crate) fn read_data(reader: &mut Reader<'_>, tag: &str) -> Option<EventKind> {
            let outer = reader.open()?;
            let kind = match tag {
                $($type => EventKind::$variant {
                    $($field: reader.$method(stringify!($field))?,)*
                },)*
                _ => return None,
            };
            reader.close(outer)?;
            Some(kind)
        }
    };
}

kinds! {
    RequestCreated "request.created" {
        approver_groups: some_strings,
        duration_secs: integer,
        once: flag,
        pending_until: option_timestamp,
        policies: some_strings,
        reason: string,
        requester: string,
        required_approvals: integer,
        resource: string,
        role: string,
        ticket: option,
    }
    ApprovalRecorded "request.approval_recorded" { comment: option, policies: some_strings }
    RequestApproved "request.approved" {
        break_glass: flag,
        comment: option,
        policies: some_strings,
    }
    RequestDenied "request.denied" { reason: string }
    RequestCancelled "request.cancelled" {}
    RequestTimedOut "request.timed_out" {}
    RequestEscalated "request.escalated" { level: integer, to: strings }
    GrantIssued "grant.issued" {
        expires_at: timestamp,
        grant_id: string,
        grantee: string,
        resource: string,
        role: string,
        starts_at: timestamp,
    }
    GrantExpired "grant.expired" { grant_id: string }
    GrantRevoked "grant.revoked" { grant_id: string, reason: string }
    AccessRefused "access.refused" { action: string, reason: string }
    PolicyLoaded "policy.loaded" { files: strings, hash: string, policies: integer }
    TokenCreated "token.created" { label: option, token_id: string, user: string }
    TokenRevoked "token.revoked" { token_id: string, user: string }
    CredentialIssued "credential.issued" {
        credential_id: string,
        expires_at: timestamp,
        user: string,
    }
    SessionStarted "session.started" {
        application_name: some,
        auth: some,
        client_addr: string,
        grant_id: string,
        resource: string,
        role: string,
        tls: boolean,
        user: string,
    }
    SessionStatement "session.statement" {
        class: string,
        detail: some,
        duration_us: integer,
        grant_id: string,
        objects: some_strings,
        outcome: string,
        protocol: string,
        rows: some_integer,
        seq: integer,
        text: string,
    }
    SessionStatementOutcome "session.statement_outcome" {
        detail: some,
        duration_us: integer,
        grant_id: string,
        outcome: string,
        rows: some_integer,
        seq: integer,
    }
    FindingOpened "finding.opened" {
        about: string,
        checkpoint: string,
        evidence: integers,
        key: string,
        severity: string,
        summary: string,
    }
    FindingStatusChanged "finding.status_changed" { comment: string, status: string }
    ReviewDue "review.due" { pack_dir: string, period: string, resources: strings }
    ReviewRecorded "review.recorded" {
        comment: string,
        outcome: string,
        period: string,
        resource: string,
    }
    SessionEnded "session.ended" {
        bytes_in: integer,
        bytes_out: integer,
        detail: some,
        grant_id: string,
        reason: string,
        revocation_delay_ms: some_integer,
        statements: integer,
    }
}

/// Writes `text` as a JSON string, escaped as JCS prescribes: `"` and `\`, the short escapes
/// for backspace, tab, newline, form feed and carriage return, `\u00xx` (lowercase) for the
/// other control characters, everything else as it is.
pub(crate) fn write_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    write_string_body(out, text);
    out.push(b'"');
}

fn write_string_body(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut rest = text.as_bytes();
    loop {
        let clean = clean_prefix(rest);
        let (head, tail) = rest.split_at(clean);
        out.extend_from_slice(head);
        let Some((&byte, tail)) = tail.split_first() else {
            return;
        };
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]),
        }
        rest = tail;
    }
}

/// How many bytes at the start of `bytes` JSON writes as they are (none is a control
/// character, `"` or `\`): eight at a time while it can.
fn clean_prefix(bytes: &[u8]) -> usize {
    let mut clean = 0;
    for chunk in bytes.chunks_exact(8) {
        match <[u8; 8]>::try_from(chunk) {
            Ok(word) if !needs_escape(u64::from_le_bytes(word)) => clean += 8,
            _ => break,
        }
    }
    clean
        + bytes
            .get(clean..)
            .unwrap_or_default()
            .iter()
            .take_while(|&&byte| byte >= 0x20 && byte != b'"' && byte != b'\\')
            .count()
}

/// Whether one of the eight bytes of `word` is a control character, `"` or `\` (it may
/// answer yes for none; it never answers no for one).
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |limit: u8| word.wrapping_sub(ONES * u64::from(limit)) & !word & HIGH;
    let equal = |byte: u8| {
        let x = word ^ (ONES * u64::from(byte));
        x.wrapping_sub(ONES) & !x & HIGH
    };
    (below(0x20) | equal(b'"') | equal(b'\\')) != 0
}

/// `Timestamp`'s `Display` (RFC 3339 with milliseconds and `Z`, as chrono writes it) without
/// chrono for the years 0 to 9999; chrono's own text outside them.
pub(crate) fn write_timestamp(out: &mut Vec<u8>, at: Timestamp) {
    let millis = at.as_millis();
    let secs = millis.div_euclid(1000);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    if !(0..=9999).contains(&year) {
        write_string_body(out, &at.to_string());
        return;
    }
    let second_of_day = secs.rem_euclid(86_400);
    let two = |out: &mut Vec<u8>, value: i64| {
        out.push(b'0' + (value / 10 % 10) as u8);
        out.push(b'0' + (value % 10) as u8);
    };
    two(out, year / 100);
    two(out, year % 100);
    out.push(b'-');
    two(out, month);
    out.push(b'-');
    two(out, day);
    out.push(b'T');
    two(out, second_of_day / 3600);
    out.push(b':');
    two(out, second_of_day / 60 % 60);
    out.push(b':');
    two(out, second_of_day % 60);
    out.push(b'.');
    let milli = millis.rem_euclid(1000);
    out.push(b'0' + (milli / 100) as u8);
    two(out, milli % 100);
    out.push(b'Z');
}

/// Reads what [`write_timestamp`] writes for the years 0 to 9999, without checking that the
/// day exists (the caller compares the re-encoding with the text); `None` for anything else.
pub(crate) fn parse_timestamp(text: &str) -> Option<Timestamp> {
    let b = text.as_bytes();
    if b.len() != 24
        || [4, 7].iter().any(|&i| b.get(i) != Some(&b'-'))
        || b.get(10) != Some(&b'T')
        || [13, 16].iter().any(|&i| b.get(i) != Some(&b':'))
        || b.get(19) != Some(&b'.')
        || b.get(23) != Some(&b'Z')
    {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        b.get(range)?.iter().try_fold(0i64, |acc, &digit| {
            digit
                .is_ascii_digit()
                .then(|| acc * 10 + i64::from(digit - b'0'))
        })
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let milli = number(20..23)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    Some(Timestamp::from_millis(secs * 1000 + milli))
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
