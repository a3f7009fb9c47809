//! Small pure helpers the checkpoints share: judging a reason, matching object names against
//! scope patterns, and writing durations and instants for people.

use std::fmt::Write as _;

/// Why a reason says too little (`justification.weak`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Weakness {
    Boilerplate,
    Repetitive,
    TooShort { chars: usize },
}

/// The reason as compared: lowercase, runs of whitespace collapsed to one space, trimmed.
pub(crate) fn normalize(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    for word in reason.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// Judges a normalised reason on its own (the copy-paste check needs history: see the auditor).
pub(crate) fn weakness(
    normalized: &str,
    boilerplate: &[String],
    min_chars: usize,
) -> Option<Weakness> {
    let unpunctuated = normalized.trim_end_matches(['.', '!', '?']);
    let is_boilerplate = boilerplate.iter().any(|item| {
        let item = normalize(item);
        item == normalized || (!unpunctuated.is_empty() && item == unpunctuated)
    });
    if is_boilerplate {
        return Some(Weakness::Boilerplate);
    }
    if is_repetitive(normalized) {
        return Some(Weakness::Repetitive);
    }
    let chars = normalized.chars().filter(|c| !c.is_whitespace()).count();
    if chars < min_chars {
        return Some(Weakness::TooShort { chars });
    }
    None
}

/// `aaaa`, `fix fix fix`, `asdasdasd`: one character, one word or one short unit repeated.
fn is_repetitive(normalized: &str) -> bool {
    let compact: Vec<char> = normalized.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(first) = compact.first() else {
        return false;
    };
    if compact.len() >= 3 && compact.iter().all(|c| c == first) {
        return true;
    }
    let mut words = normalized.split(' ');
    if let Some(word) = words.next() {
        let rest: Vec<&str> = words.collect();
        if !rest.is_empty() && rest.iter().all(|w| *w == word) {
            return true;
        }
    }
    // A unit of at most 4 characters repeated at least 3 times fills the whole text.
    let len = compact.len();
    (1..=4).any(|unit| {
        len >= unit * 3
            && len.is_multiple_of(unit)
            && compact
                .chunks(unit)
                .zip(compact.chunks(unit).skip(1))
                .all(|(a, b)| a == b)
    })
}

/// A stable 64-bit hash (FNV-1a): remembered reasons cost 8 bytes each, and the same on every
/// run (unlike the standard library's seeded hasher).
pub(crate) fn fingerprint(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Whether `name` matches `pattern`, where `*` matches any run of characters except `.` (so
/// `public.*` matches `public.accounts` but not `public.a.b`, and `*.*` any qualified name).
pub(crate) fn glob(pattern: &str, name: &str) -> bool {
    glob_bytes(pattern.as_bytes(), name.as_bytes())
}

fn glob_bytes(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => {
            // Try every split of the part before the next `.` (names are short).
            let mut candidate = name;
            loop {
                if glob_bytes(rest, candidate) {
                    return true;
                }
                match candidate.split_first() {
                    Some((byte, tail)) if *byte != b'.' => candidate = tail,
                    _ => return false,
                }
            }
        }
        Some((byte, rest)) => match name.split_first() {
            Some((first, tail)) if first == byte => glob_bytes(rest, tail),
            _ => false,
        },
    }
}

/// A length of time for people: `850ms`, `2.5s`, `45s`, `20m`, `1h30m`, `2d3h`.
pub(crate) fn human(millis: i64) -> String {
    let millis = millis.max(0);
    if millis < 1_000 {
        return format!("{millis}ms");
    }
    if millis < 10_000 && millis % 1_000 != 0 {
        return format!("{}.{}s", millis / 1_000, (millis % 1_000) / 100);
    }
    let secs = millis / 1_000;
    let units = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let Some(first) = units.iter().position(|(_, size)| secs >= *size) else {
        return "0s".to_owned();
    };
    // Two units are enough for people: `2d3h`, not `2d3h4m5s`.
    let mut out = String::new();
    let mut rest = secs;
    for (unit, size) in units.iter().skip(first).take(2) {
        let count = rest / size;
        rest %= size;
        if count > 0 {
            let _ = write!(out, "{count}{unit}");
        }
    }
    out
}

/// `12,345`.
pub(crate) fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The ISO weekday (1 = Monday) and the minute of the day of `millis` shifted by `offset_minutes`.
pub(crate) fn local_clock(millis: i64, offset_minutes: i32) -> (u8, u32) {
    const DAY: i64 = 86_400_000;
    let local = millis.saturating_add(i64::from(offset_minutes) * 60_000);
    let days = local.div_euclid(DAY);
    // 1970-01-01 was a Thursday (4).
    let weekday = u8::try_from((days + 3).rem_euclid(7) + 1).unwrap_or(1);
    let minute = u32::try_from(local.rem_euclid(DAY) / 60_000).unwrap_or(0);
    (weekday, minute)
}

pub(crate) fn weekday_name(weekday: u8) -> &'static str {
    match weekday {
        1 => "Monday",
        2 => "Tuesday",
        3 => "Wednesday",
        4 => "Thursday",
        5 => "Friday",
        6 => "Saturday",
        _ => "Sunday",
    }
}

/// `UTC`, `UTC+01:00`, `UTC-05:30`.
pub(crate) fn zone(offset_minutes: i32) -> String {
    if offset_minutes == 0 {
        return "UTC".to_owned();
    }
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let abs = offset_minutes.unsigned_abs();
    format!("UTC{sign}{:02}:{:02}", abs / 60, abs % 60)
}

/// A reason quoted in a summary: at most 60 characters, on one line.
pub(crate) fn quote(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut chars = one_line.chars();
    let head: String = chars.by_ref().take(60).collect();
    if chars.next().is_some() {
        format!("`{head}…`")
    } else {
        format!("`{head}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weak(reason: &str) -> Option<Weakness> {
        let list = crate::AuditSettings::default().boilerplate_reasons;
        weakness(&normalize(reason), &list, 10)
    }

    #[test]
    fn reasons() {
        assert_eq!(weak("Test"), Some(Weakness::Boilerplate));
        assert_eq!(weak("  need   ACCESS. "), Some(Weakness::Boilerplate));
        assert_eq!(weak("..."), Some(Weakness::Boilerplate));
        assert_eq!(weak("-"), Some(Weakness::Boilerplate));
        assert_eq!(weak("aaaa"), Some(Weakness::Repetitive));
        assert_eq!(weak("fix fix fix"), Some(Weakness::Repetitive));
        assert_eq!(weak("asdasdasdasd"), Some(Weakness::Repetitive));
        assert_eq!(weak("INC-42"), Some(Weakness::TooShort { chars: 6 }));
        assert_eq!(weak("INC-4211: stuck payout job"), None);
        assert_eq!(weak("restore the ledger row deleted by job 7"), None);
        assert_eq!(weak("fix the fix in job 7"), None);
    }

    #[test]
    fn globs() {
        assert!(glob("public.*", "public.accounts"));
        assert!(!glob("public.*", "public.a.b"));
        assert!(!glob("public.*", "private.accounts"));
        assert!(glob("*.audit_*", "billing.audit_log"));
        assert!(glob("pg_*", "pg_class"));
        assert!(!glob("pg_*", "pg_catalog.pg_class"));
        assert!(glob("*.*", "a.b"));
        assert!(glob("public.accounts", "public.accounts"));
        assert!(!glob("public.accounts", "public.accounts2"));
        assert!(glob("\"Weird\".*", "\"Weird\".x"));
    }

    #[test]
    fn durations_numbers_and_clocks() {
        let shown: Vec<String> = [
            850,
            2_500,
            45_000,
            1_200_000,
            5_400_000,
            183_600_000,
            3_600_000,
        ]
        .into_iter()
        .map(human)
        .collect();
        assert_eq!(
            shown,
            ["850ms", "2.5s", "45s", "20m", "1h30m", "2d3h", "1h"]
        );
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        // 2026-11-18T11:06:40Z is a Wednesday.
        assert_eq!(local_clock(1_795_000_000_123, 0), (3, 11 * 60 + 6));
        assert_eq!(local_clock(1_795_000_000_123, -12 * 60), (2, 23 * 60 + 6));
        assert_eq!(zone(90), "UTC+01:30");
        assert_eq!(zone(-300), "UTC-05:00");
        assert_eq!(quote("a\nb"), "`a b`");
    }
}
