//! The UTC hour and ISO weekday of a [`Timestamp`], computed without a clock or a time zone
//! database (decisions are in UTC).

use latch_core::Timestamp;

/// Hour of the day in UTC, 0–23.
pub(crate) fn hour_utc(at: Timestamp) -> i64 {
    at.as_millis().div_euclid(1000).rem_euclid(86_400) / 3_600
}

/// ISO 8601 weekday in UTC: 1 is Monday, 7 is Sunday.
pub(crate) fn weekday(at: Timestamp) -> i64 {
    let days = at.as_millis().div_euclid(1000).div_euclid(86_400);
    // 1970-01-01 was a Thursday (4).
    (days + 3).rem_euclid(7) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    #[test]
    fn hours_and_weekdays_are_utc() {
        assert_eq!(weekday(at("1970-01-01T00:00:00Z")), 4);
        assert_eq!(weekday(at("2026-01-05T00:00:00Z")), 1, "a Monday");
        assert_eq!(weekday(at("2026-01-11T23:59:59Z")), 7, "a Sunday");
        assert_eq!(hour_utc(at("2026-01-07T09:00:00Z")), 9);
        assert_eq!(hour_utc(at("2026-01-07T10:30:00+02:00")), 8);
        assert_eq!(weekday(at("1969-12-31T23:00:00Z")), 3, "before the epoch");
        assert_eq!(hour_utc(at("1969-12-31T23:00:00Z")), 23);
    }
}
