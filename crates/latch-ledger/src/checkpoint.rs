//! Checkpoints: a tree size and root, signed, in the C2SP tlog-checkpoint format with one
//! extension line for the time.
//!
//! A checkpoint is the signed text of a signed note, with exactly four lines:
//!
//! ```text
//! <origin>
//! <tree size in decimal, no leading zeros>
//! <root hash in padded standard base64>
//! time <UTC time as RFC 3339 with milliseconds: YYYY-MM-DDTHH:MM:SS.mmmZ>
//! ```
//!
//! Every value has exactly one accepted spelling, so one checkpoint has one text and one
//! signature per key. Other extension lines are refused rather than skipped: a verifier that
//! accepted lines it does not understand would vouch for statements it never checked.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::note::{open_text, sign_text};
use crate::{Error, Hash, SigningKey, VerifierKey};

/// The last instant a checkpoint can carry, 9999-12-31T23:59:59.999Z: RFC 3339 has four-digit
/// years.
const MAX_TIME_MILLIS: i64 = 253_402_300_799_999;

/// A signed statement that the ledger named `origin` had `size` entries with tree root `root`
/// at `time_millis`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The ledger's name: non-empty, no whitespace or control characters. By convention it is
    /// also the signing key's name. Verifiers must check it is the ledger they expect.
    pub origin: String,
    /// The number of entries in the ledger.
    pub size: u64,
    /// The root of the Merkle tree of the first `size` entries.
    pub root: Hash,
    /// When the checkpoint was made, in milliseconds since the Unix epoch (UTC), from 1970 to
    /// the end of 9999; the same unit as `latch_core::Timestamp`.
    pub time_millis: i64,
}

/// Signs `checkpoint` with `key` and returns the signed note text.
///
/// Fails when the origin is empty or holds whitespace or control characters, or when the time
/// is outside 1970 to 9999.
pub fn sign(checkpoint: &Checkpoint, key: &SigningKey) -> Result<String, Error> {
    let unsignable = |reason: String| Error::UnsignableCheckpoint { reason };
    check_origin(&checkpoint.origin).map_err(unsignable)?;
    let time = format_time(checkpoint.time_millis).ok_or_else(|| {
        unsignable(format!(
            "time {} ms since the Unix epoch is outside 1970-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z",
            checkpoint.time_millis
        ))
    })?;
    let body = format!(
        "{}\n{}\n{}\ntime {time}\n",
        checkpoint.origin,
        checkpoint.size,
        STANDARD.encode(checkpoint.root.as_bytes())
    );
    Ok(sign_text(&body, key))
}

/// Checks that `note` is signed by `key` and reads the checkpoint it carries.
///
/// Signatures by other keys (cosignatures) are ignored. The caller still has to check that the
/// origin is the ledger it expects, and that the checkpoint is consistent with the last one it
/// trusted.
pub fn open(note: &str, key: &VerifierKey) -> Result<Checkpoint, Error> {
    parse_body(open_text(note, key)?)
}

/// Reads the four lines of a checkpoint text, which ends with a newline.
fn parse_body(text: &str) -> Result<Checkpoint, Error> {
    let mut lines = text.split_terminator('\n');
    let mut next = |line: usize, expected: &str| {
        lines.next().ok_or_else(|| Error::MalformedCheckpoint {
            line,
            reason: format!("the checkpoint ends before it, expected {expected}"),
        })
    };
    let malformed = |line: usize| move |reason: String| Error::MalformedCheckpoint { line, reason };

    let origin = next(1, "the origin")?;
    check_origin(origin).map_err(malformed(1))?;

    let size_text = next(2, "the tree size")?;
    let size = parse_size(size_text).map_err(malformed(2))?;

    let root_text = next(3, "the root hash")?;
    let root = STANDARD
        .decode(root_text)
        .map_err(|_| format!("root hash `{root_text}` is not padded standard base64"))
        .and_then(|bytes| {
            Hash::from_slice(&bytes)
                .map_err(|_| format!("root hash is {} bytes, expected 32", bytes.len()))
        })
        .map_err(malformed(3))?;

    let time_line = next(4, "`time <YYYY-MM-DDTHH:MM:SS.mmmZ>`")?;
    let time_millis = time_line
        .strip_prefix("time ")
        .ok_or_else(|| format!("expected `time <YYYY-MM-DDTHH:MM:SS.mmmZ>`, found `{time_line}`"))
        .and_then(parse_time)
        .map_err(malformed(4))?;

    if let Some(extra) = lines.next() {
        return Err(Error::MalformedCheckpoint {
            line: 5,
            reason: format!(
                "unexpected line `{extra}`: a latch checkpoint ends with its time line"
            ),
        });
    }
    Ok(Checkpoint {
        origin: origin.to_owned(),
        size,
        root,
        time_millis,
    })
}

fn check_origin(origin: &str) -> Result<(), String> {
    if origin.is_empty() {
        return Err("origin is empty".to_owned());
    }
    if origin.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "origin `{}` holds whitespace or control characters",
            origin.escape_debug()
        ));
    }
    Ok(())
}

/// Reads a tree size: decimal digits only, without leading zeros, so each size has one spelling.
fn parse_size(text: &str) -> Result<u64, String> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !canonical {
        return Err(format!(
            "tree size `{text}` is not a decimal number without leading zeros"
        ));
    }
    text.parse()
        .map_err(|_| format!("tree size `{text}` does not fit in 64 bits"))
}

/// Writes a time as `YYYY-MM-DDTHH:MM:SS.mmmZ`, or `None` outside 1970 to 9999.
fn format_time(millis: i64) -> Option<String> {
    if !(0..=MAX_TIME_MILLIS).contains(&millis) {
        return None;
    }
    DateTime::<Utc>::from_timestamp_millis(millis)
        .map(|time| time.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Reads a time written exactly as [`format_time`] writes it.
fn parse_time(text: &str) -> Result<i64, String> {
    let millis = DateTime::parse_from_rfc3339(text)
        .map(|time| time.timestamp_millis())
        .ok();
    match millis {
        Some(millis) if format_time(millis).as_deref() == Some(text) => Ok(millis),
        _ => Err(format!(
            "time `{text}` is not a UTC time in the form YYYY-MM-DDTHH:MM:SS.mmmZ between 1970 and 9999"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_have_one_spelling() {
        assert_eq!(
            format_time(1_795_620_043_000).as_deref(),
            Some("2026-11-25T15:20:43.000Z")
        );
        assert_eq!(
            format_time(1_795_000_000_123).as_deref(),
            Some("2026-11-18T11:06:40.123Z")
        );
        assert_eq!(format_time(0).as_deref(), Some("1970-01-01T00:00:00.000Z"));
        assert_eq!(
            format_time(MAX_TIME_MILLIS).as_deref(),
            Some("9999-12-31T23:59:59.999Z")
        );
        assert_eq!(format_time(-1), None);
        assert_eq!(format_time(MAX_TIME_MILLIS + 1), None);
        assert_eq!(
            parse_time("2026-11-18T11:06:40.123Z"),
            Ok(1_795_000_000_123)
        );
        for other_spelling in [
            "2026-11-18T11:06:40.12Z",
            "2026-11-18T11:06:40.1230Z",
            "2026-11-18T11:06:40Z",
            "2026-11-18t11:06:40.123z",
            "2026-11-18T12:06:40.123+01:00",
            "2026-11-18T11:06:40.123+00:00",
            "2026-11-18 11:06:40.123Z",
            " 2026-11-18T11:06:40.123Z",
            "1969-12-31T23:59:59.999Z",
        ] {
            assert!(parse_time(other_spelling).is_err(), "{other_spelling}");
        }
    }

    /// Signs any text, so that malformed checkpoints reach the parser with a valid signature.
    fn open_signed(text: &str) -> Result<Checkpoint, Error> {
        let key = SigningKey::from_seed("log", [9; 32]).unwrap();
        open(&sign_text(text, &key), &key.verifier_key())
    }

    const ROOT: &str = "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=";

    #[test]
    fn signed_text_that_is_no_checkpoint_is_refused_with_its_line() {
        let good = format!("log\n8\n{ROOT}\ntime 2026-11-25T15:20:43.000Z\n");
        assert!(open_signed(&good).is_ok());
        let cases = [
            (
                "log\n8\n".to_owned(),
                3,
                "the checkpoint ends before it, expected the root hash",
            ),
            (
                format!("log\n8\n{ROOT}\n"),
                4,
                "the checkpoint ends before it, expected `time <YYYY-MM-DDTHH:MM:SS.mmmZ>`",
            ),
            (
                format!("log\n8\n{ROOT}\ntime 2026-11-25T15:20:43.000Z\nextra line\n"),
                5,
                "unexpected line `extra line`: a latch checkpoint ends with its time line",
            ),
            (
                format!("log\n08\n{ROOT}\ntime 2026-11-25T15:20:43.000Z\n"),
                2,
                "tree size `08` is not a decimal number without leading zeros",
            ),
            (
                "log\n8\nXcna\ntime 2026-11-25T15:20:43.000Z\n".to_owned(),
                3,
                "root hash is 3 bytes, expected 32",
            ),
            (
                "log\n8\nXcna!\ntime 2026-11-25T15:20:43.000Z\n".to_owned(),
                3,
                "root hash `Xcna!` is not padded standard base64",
            ),
            (
                format!("log\n8\n{ROOT}\ntimestamp 2026-11-25T15:20:43.000Z\n"),
                4,
                "expected `time <YYYY-MM-DDTHH:MM:SS.mmmZ>`, found `timestamp 2026-11-25T15:20:43.000Z`",
            ),
            (
                format!("log\n8\n{ROOT}\ntime 2026-11-25T15:20:43Z\n"),
                4,
                "time `2026-11-25T15:20:43Z` is not a UTC time in the form YYYY-MM-DDTHH:MM:SS.mmmZ between 1970 and 9999",
            ),
            (
                format!("two words\n8\n{ROOT}\ntime 2026-11-25T15:20:43.000Z\n"),
                1,
                "origin `two words` holds whitespace or control characters",
            ),
            (
                format!("\n8\n{ROOT}\ntime 2026-11-25T15:20:43.000Z\n"),
                1,
                "origin is empty",
            ),
        ];
        for (text, line, reason) in cases {
            assert_eq!(
                open_signed(&text),
                Err(Error::MalformedCheckpoint {
                    line,
                    reason: reason.to_owned()
                }),
                "{text:?}"
            );
        }
    }

    #[test]
    fn sizes_have_one_spelling() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
        for bad in [
            "",
            "00",
            "012",
            "+12",
            "-1",
            "1_000",
            "1e3",
            "18446744073709551616",
            "１",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_size("012"),
            Err("tree size `012` is not a decimal number without leading zeros".to_owned())
        );
    }
}
