//! Periods an auditor names (`2026-Q3`, `2026-07`, `2026`, or two dates) and the review
//! schedules that close them.

use chrono::{Datelike, NaiveDate, NaiveTime, TimeZone, Utc};
use latch_core::Timestamp;

/// A half-open span of time `[from, to)` with the name it is filed under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    /// `2026-Q3`, `2026-07`, `2026`, or `FROM..TO` for explicit bounds: also the directory name
    /// a scheduled review writes the pack into, so it holds no `/`.
    pub label: String,
    pub from: Timestamp,
    pub to: Timestamp,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PeriodError {
    #[error(
        "`{0}` is not a period: expected a quarter `2026-Q3`, a month `2026-07` or a year `2026`"
    )]
    Unknown(String),
    #[error("`{0}` is not a date: expected `2026-07-01` or RFC 3339 `2026-07-01T00:00:00Z`")]
    Date(String),
    #[error("the period is empty: `--from {from}` is not before `--to {to}`")]
    Empty { from: String, to: String },
}

fn midnight(date: NaiveDate) -> Timestamp {
    Timestamp::from_millis(
        Utc.from_utc_datetime(&date.and_time(NaiveTime::MIN))
            .timestamp_millis(),
    )
}

fn first_of(year: i32, month: u32) -> Option<NaiveDate> {
    // Month 13 is January of the next year: the end of December, of Q4, of a year.
    if month == 13 {
        NaiveDate::from_ymd_opt(year.checked_add(1)?, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month, 1)
    }
}

fn months(label: String, year: i32, first: u32, count: u32) -> Option<Period> {
    Some(Period {
        label,
        from: midnight(first_of(year, first)?),
        to: midnight(first_of(year, first + count)?),
    })
}

impl Period {
    /// `2026-Q3` (July to September), `2026-07` (a month) or `2026` (a year), in UTC.
    pub fn parse(text: &str) -> Result<Self, PeriodError> {
        let unknown = || PeriodError::Unknown(text.to_owned());
        let (year, rest) = match text.split_once('-') {
            Some((year, rest)) => (year, Some(rest)),
            None => (text, None),
        };
        if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
            return Err(unknown());
        }
        let year: i32 = year.parse().map_err(|_| unknown())?;
        let period = match rest {
            None => months(format!("{year:04}"), year, 1, 12),
            Some(quarter) if quarter.len() == 2 && quarter.starts_with('Q') => {
                let q: u32 = quarter
                    .strip_prefix('Q')
                    .and_then(|q| q.parse().ok())
                    .ok_or_else(unknown)?;
                if !(1..=4).contains(&q) {
                    return Err(unknown());
                }
                months(format!("{year:04}-Q{q}"), year, 3 * q - 2, 3)
            }
            Some(month) if month.len() == 2 && month.bytes().all(|b| b.is_ascii_digit()) => {
                let m: u32 = month.parse().map_err(|_| unknown())?;
                if !(1..=12).contains(&m) {
                    return Err(unknown());
                }
                months(format!("{year:04}-{m:02}"), year, m, 1)
            }
            Some(_) => None,
        };
        period.ok_or_else(unknown)
    }

    /// Explicit bounds: each a date (`2026-07-01`, midnight UTC) or an RFC 3339 time; `to` is
    /// excluded.
    pub fn between(from: &str, to: &str) -> Result<Self, PeriodError> {
        let start = parse_date(from)?;
        let end = parse_date(to)?;
        if start >= end {
            return Err(PeriodError::Empty {
                from: from.to_owned(),
                to: to.to_owned(),
            });
        }
        Ok(Self {
            label: format!("{}..{}", short(start), short(end)),
            from: start,
            to: end,
        })
    }

    /// Whether `at` falls in the period.
    pub fn contains(&self, at: Timestamp) -> bool {
        at >= self.from && at < self.to
    }
}

/// A date when the time is midnight, the full RFC 3339 time otherwise (with `:` replaced, so
/// the label can name a directory on every system).
fn short(at: Timestamp) -> String {
    let text = at.to_string();
    match text.strip_suffix("T00:00:00.000Z") {
        Some(date) => date.to_owned(),
        None => text.replace(':', ""),
    }
}

fn parse_date(text: &str) -> Result<Timestamp, PeriodError> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(midnight(date));
    }
    Timestamp::parse(text).map_err(|_| PeriodError::Date(text.to_owned()))
}

/// How often the owners review their resources' access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    Monthly,
    Quarterly,
}

impl Schedule {
    /// The period of this schedule that contains `at`.
    pub fn period_containing(self, at: Timestamp) -> Option<Period> {
        let date = at.to_datetime().date_naive();
        let year = date.year();
        match self {
            Self::Monthly => {
                let month = date.month();
                months(format!("{year:04}-{month:02}"), year, month, 1)
            }
            Self::Quarterly => {
                let q = (date.month() - 1) / 3 + 1;
                months(format!("{year:04}-Q{q}"), year, 3 * q - 2, 3)
            }
        }
    }

    /// The latest period that has closed by `now`: the one before the period containing `now`.
    pub fn last_closed(self, now: Timestamp) -> Option<Period> {
        let current = self.period_containing(now)?;
        self.period_containing(Timestamp::from_millis(current.from.as_millis() - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    #[test]
    fn quarters_months_and_years_are_utc_half_open_spans() {
        let cases = [
            ("2026-Q1", "2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z"),
            ("2026-Q3", "2026-07-01T00:00:00Z", "2026-10-01T00:00:00Z"),
            ("2026-Q4", "2026-10-01T00:00:00Z", "2027-01-01T00:00:00Z"),
            ("2026-02", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"),
            ("2026-12", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"),
            ("2026", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        ];
        for (text, from, to) in cases {
            let period = Period::parse(text).unwrap();
            assert_eq!(
                (period.label.as_str(), period.from, period.to),
                (text, at(from), at(to)),
                "{text}"
            );
        }
        let q3 = Period::parse("2026-Q3").unwrap();
        assert!(q3.contains(at("2026-09-30T23:59:59.999Z")));
        assert!(!q3.contains(at("2026-10-01T00:00:00Z")));
        assert!(!q3.contains(at("2026-06-30T23:59:59.999Z")));
    }

    #[test]
    fn a_mistyped_period_is_refused_with_the_forms_accepted() {
        for text in [
            "2026-Q5", "2026-Q0", "2026-13", "2026-00", "26-Q3", "2026-q3", "Q3", "", "2026-7",
            "2026-Q3x",
        ] {
            assert_eq!(
                Period::parse(text),
                Err(PeriodError::Unknown(text.to_owned())),
                "{text}"
            );
        }
        assert_eq!(
            Period::parse("2026-Q5").unwrap_err().to_string(),
            "`2026-Q5` is not a period: expected a quarter `2026-Q3`, a month `2026-07` or a year `2026`"
        );
    }

    #[test]
    fn explicit_bounds_take_dates_or_times_and_must_not_be_empty() {
        let period = Period::between("2026-07-01", "2026-07-15T12:00:00Z").unwrap();
        assert_eq!(period.from, at("2026-07-01T00:00:00Z"));
        assert_eq!(period.to, at("2026-07-15T12:00:00Z"));
        assert_eq!(period.label, "2026-07-01..2026-07-15T120000.000Z");
        assert_eq!(
            Period::between("2026-07-01", "2026-07-01").unwrap_err(),
            PeriodError::Empty {
                from: "2026-07-01".into(),
                to: "2026-07-01".into()
            }
        );
        assert_eq!(
            Period::between("yesterday", "2026-07-01").unwrap_err(),
            PeriodError::Date("yesterday".into())
        );
    }

    #[test]
    fn a_schedule_closes_the_period_before_the_current_one() {
        let now = at("2026-10-01T00:00:05Z");
        assert_eq!(
            Schedule::Quarterly.last_closed(now).unwrap(),
            Period::parse("2026-Q3").unwrap()
        );
        assert_eq!(
            Schedule::Monthly.last_closed(now).unwrap(),
            Period::parse("2026-09").unwrap()
        );
        assert_eq!(
            Schedule::Monthly
                .last_closed(at("2026-01-15T00:00:00Z"))
                .unwrap(),
            Period::parse("2025-12").unwrap()
        );
        assert_eq!(
            Schedule::Quarterly
                .period_containing(at("2026-03-31T23:59:59.999Z"))
                .unwrap()
                .label,
            "2026-Q1"
        );
    }
}
