//! Access durations as people write them: `90s`, `30m`, `2h`, `1d`, `1h30m`.

use std::fmt;
use std::str::FromStr;

/// A length of access in whole seconds; never zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccessDuration(u64);

/// The longest duration latch accepts anywhere: a year. Longer is standing access, not JIT.
pub const MAX_SECS: u64 = 366 * 24 * 3600;

impl AccessDuration {
    pub fn from_secs(secs: u64) -> Option<Self> {
        (secs > 0 && secs <= MAX_SECS).then_some(Self(secs))
    }

    pub const fn as_secs(self) -> u64 {
        self.0
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration `{input}`: {problem} (expected a number and a unit s, m, h or d, e.g. `30m`, `2h`, `1h30m`)"
)]
pub struct DurationError {
    pub input: String,
    pub problem: &'static str,
}

impl FromStr for AccessDuration {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |problem| DurationError {
            input: input.to_owned(),
            problem,
        };
        let text = input.trim();
        if text.is_empty() {
            return Err(err("it is empty"));
        }
        let mut total: u64 = 0;
        let mut digits = String::new();
        let mut last_unit_rank = usize::MAX;
        for ch in text.chars() {
            if ch.is_ascii_digit() {
                digits.push(ch);
                continue;
            }
            let (rank, unit_secs) = match ch {
                'd' => (3, 86_400),
                'h' => (2, 3_600),
                'm' => (1, 60),
                's' => (0, 1),
                _ => return Err(err("unknown unit")),
            };
            if digits.is_empty() {
                return Err(err("a unit without a number"));
            }
            if rank >= last_unit_rank {
                return Err(err("units must go from largest to smallest, each once"));
            }
            last_unit_rank = rank;
            let amount: u64 = digits.parse().map_err(|_| err("number too large"))?;
            digits.clear();
            total = amount
                .checked_mul(unit_secs)
                .and_then(|secs| total.checked_add(secs))
                .ok_or_else(|| err("number too large"))?;
        }
        if !digits.is_empty() {
            return Err(err("a number without a unit"));
        }
        if total == 0 {
            return Err(err("it must be longer than zero"));
        }
        if total > MAX_SECS {
            return Err(err("it is longer than a year"));
        }
        Ok(Self(total))
    }
}

impl fmt::Display for AccessDuration {
    /// The shortest form that parses back to the same value: `1h30m`, `2d`, `45s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        for (unit, secs) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            let amount = rest / secs;
            if amount > 0 {
                write!(f, "{amount}{unit}")?;
                rest %= secs;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_what_people_write() {
        let secs = |s: &str| s.parse::<AccessDuration>().map(AccessDuration::as_secs);
        assert_eq!(secs("30m"), Ok(1800));
        assert_eq!(secs("2h"), Ok(7200));
        assert_eq!(secs("1d"), Ok(86_400));
        assert_eq!(secs("1h30m"), Ok(5400));
        assert_eq!(secs(" 45s "), Ok(45));
    }

    #[test]
    fn refuses_malformed_input_with_the_reason() {
        let problem = |s: &str| s.parse::<AccessDuration>().map_err(|e| e.problem);
        assert_eq!(problem(""), Err("it is empty"));
        assert_eq!(problem("30"), Err("a number without a unit"));
        assert_eq!(problem("m"), Err("a unit without a number"));
        assert_eq!(problem("3w"), Err("unknown unit"));
        assert_eq!(problem("0m"), Err("it must be longer than zero"));
        assert_eq!(
            problem("30m1h"),
            Err("units must go from largest to smallest, each once")
        );
        assert_eq!(problem("400d"), Err("it is longer than a year"));
        assert_eq!(problem("99999999999999999999s"), Err("number too large"));
        assert_eq!(
            "2x".parse::<AccessDuration>().map_err(|e| e.to_string()),
            Err("invalid duration `2x`: unknown unit (expected a number and a unit s, m, h or d, e.g. `30m`, `2h`, `1h30m`)".to_owned())
        );
    }

    proptest! {
        #[test]
        fn display_parses_back(secs in 1..=MAX_SECS) {
            let duration = AccessDuration::from_secs(secs).unwrap();
            prop_assert_eq!(duration.to_string().parse::<AccessDuration>(), Ok(duration));
        }
    }
}
