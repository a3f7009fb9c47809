//! When to try a failed delivery again: exponential backoff with a cap and jitter, and the
//! number of attempts after which the server dead-letters it.

use std::time::Duration;

/// Attempts (the first included) before a delivery is dead-lettered: with [`backoff`], 18 to 36
/// minutes of trying (the waits double from 5 s to the 15-minute cap).
pub const MAX_ATTEMPTS: u32 = 10;
/// The wait after the first failed attempt, before jitter.
pub const BASE_DELAY: Duration = Duration::from_secs(5);
/// The longest wait between attempts, before jitter.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// The longest `Retry-After` honoured: a receiver asking for more is waited on for this long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60 * 60);

/// How long to wait after failed attempt number `attempt` (1 for the first) before the next:
/// `BASE_DELAY · 2^(attempt-1)`, capped at [`MAX_DELAY`], then "equal jitter": half of it fixed
/// and the other half scaled by `jitter` (a random number in `[0, 1]`, passed in so that tests
/// are deterministic; out-of-range values are clamped).
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let delay = BASE_DELAY.saturating_mul(1u32 << exponent).min(MAX_DELAY);
    let jitter = if jitter.is_nan() {
        0.0
    } else {
        jitter.clamp(0.0, 1.0)
    };
    let half = delay / 2;
    half + half.mul_f64(jitter)
}

/// The wait before the next attempt, honouring a receiver's `Retry-After` when it asks for
/// longer than the backoff.
pub fn next_delay(attempt: u32, jitter: f64, retry_after: Option<Duration>) -> Duration {
    let delay = backoff(attempt, jitter);
    match retry_after {
        Some(asked) => delay.max(asked.min(MAX_RETRY_AFTER)),
        None => delay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule() {
        let table: Vec<String> = (1..=MAX_ATTEMPTS)
            .map(|attempt| {
                format!(
                    "{attempt}: {:?} .. {:?}",
                    backoff(attempt, 0.0),
                    backoff(attempt, 1.0)
                )
            })
            .collect();
        expect_test::expect![[r#"
            1: 2.5s .. 5s
            2: 5s .. 10s
            3: 10s .. 20s
            4: 20s .. 40s
            5: 40s .. 80s
            6: 80s .. 160s
            7: 160s .. 320s
            8: 320s .. 640s
            9: 450s .. 900s
            10: 450s .. 900s"#]]
        .assert_eq(&table.join("\n"));
        assert_eq!(backoff(u32::MAX, 1.0), MAX_DELAY);
        assert_eq!(backoff(0, 1.0), BASE_DELAY);
        assert_eq!(backoff(1, f64::NAN), BASE_DELAY / 2);
        assert_eq!(backoff(1, 7.0), BASE_DELAY);
    }

    #[test]
    fn retry_after_lengthens_but_never_beyond_an_hour() {
        assert_eq!(next_delay(1, 1.0, Some(Duration::from_secs(2))), BASE_DELAY);
        assert_eq!(
            next_delay(1, 1.0, Some(Duration::from_secs(120))),
            Duration::from_secs(120)
        );
        assert_eq!(
            next_delay(1, 1.0, Some(Duration::from_secs(86_400))),
            MAX_RETRY_AFTER
        );
    }
}
