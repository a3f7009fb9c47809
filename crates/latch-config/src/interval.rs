//! The scheduler's polling interval, written `100ms` or `1s`: shorter than any access duration,
//! so it has its own tiny syntax.

use std::time::Duration;

/// The longest interval accepted: expiries and revocations wait up to one interval for the
/// scheduler, so a longer one would let access outlive its grant noticeably.
pub(crate) const MAX_INTERVAL: Duration = Duration::from_secs(10);

/// Parses `<whole number>ms` or `<whole number>s`, between 1ms and [`MAX_INTERVAL`].
pub(crate) fn parse_interval(input: &str) -> Result<Duration, String> {
    let error = |problem: &str| {
        format!(
            "invalid interval `{input}`: {problem} (expected a whole number of `ms` or `s` \
             from `1ms` to `10s`, e.g. `100ms` or `1s`)"
        )
    };
    let text = input.trim();
    let (digits, millis_per_unit) = if let Some(digits) = text.strip_suffix("ms") {
        (digits, 1)
    } else if let Some(digits) = text.strip_suffix('s') {
        (digits, 1000)
    } else {
        return Err(error("unknown or missing unit"));
    };
    if digits.is_empty() || !digits.chars().all(|ch| ch.is_ascii_digit()) {
        return Err(error("not a whole number"));
    }
    let millis = digits
        .parse::<u64>()
        .ok()
        .and_then(|amount| amount.checked_mul(millis_per_unit))
        .map(Duration::from_millis)
        .filter(|interval| *interval <= MAX_INTERVAL)
        .ok_or_else(|| error("it is longer than 10s"))?;
    if millis.is_zero() {
        return Err(error("it must be longer than zero"));
    }
    Ok(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_milliseconds_and_seconds() {
        assert_eq!(parse_interval("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_interval("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_interval(" 1s "), Ok(Duration::from_secs(1)));
        assert_eq!(parse_interval("10s"), Ok(MAX_INTERVAL));
    }

    #[test]
    fn refuses_everything_else_with_the_reason() {
        let problem = |input: &str| {
            parse_interval(input)
                .unwrap_err()
                .split(": ")
                .nth(1)
                .unwrap()
                .split(" (")
                .next()
                .unwrap()
                .to_owned()
        };
        assert_eq!(problem("100"), "unknown or missing unit");
        assert_eq!(problem("1m"), "unknown or missing unit");
        assert_eq!(problem("ms"), "not a whole number");
        assert_eq!(problem("1.5s"), "not a whole number");
        assert_eq!(problem("-1s"), "not a whole number");
        assert_eq!(problem("0ms"), "it must be longer than zero");
        assert_eq!(problem("11s"), "it is longer than 10s");
        assert_eq!(problem("99999999999999999999ms"), "it is longer than 10s");
        assert_eq!(
            parse_interval("2x").unwrap_err(),
            "invalid interval `2x`: unknown or missing unit (expected a whole number of `ms` or \
             `s` from `1ms` to `10s`, e.g. `100ms` or `1s`)"
        );
    }
}
