//! Instants in milliseconds since the Unix epoch, shown and encoded as RFC 3339 UTC.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::AccessDuration;

/// An instant, truncated to the millisecond so that it round-trips exactly through every store
/// and through the canonical event encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    pub fn from_datetime(at: DateTime<Utc>) -> Self {
        Self(at.timestamp_millis())
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0).unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// Parses RFC 3339 (any offset), e.g. `2026-11-25T15:20:43.123Z`.
    pub fn parse(text: &str) -> Result<Self, String> {
        DateTime::parse_from_rfc3339(text)
            .map(|at| Self(at.timestamp_millis()))
            .map_err(|err| {
                format!(
                    "invalid time `{text}`: {err} (expected RFC 3339, e.g. `2026-11-25T15:20:43Z`)"
                )
            })
    }

    pub fn saturating_add(self, duration: AccessDuration) -> Self {
        let millis = i64::try_from(duration.as_secs())
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        Self(self.0.saturating_add(millis))
    }

    /// Milliseconds from `earlier` to `self` (negative when `self` is earlier).
    pub fn millis_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            &self
                .to_datetime()
                .to_rfc3339_opts(SecondsFormat::Millis, true),
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Where "now" comes from: the server passes the system clock, tests a fake one.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_datetime(Utc::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_rfc3339_utc_with_millis_and_parses_back() {
        let at = Timestamp::from_millis(1_795_000_000_123);
        assert_eq!(at.to_string(), "2026-11-18T11:06:40.123Z");
        assert_eq!(Timestamp::parse(&at.to_string()), Ok(at));
        assert_eq!(Timestamp::parse("2026-11-18T12:06:40.123+01:00"), Ok(at));
        assert!(Timestamp::parse("yesterday").is_err());
    }
}
