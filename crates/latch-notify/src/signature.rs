//! Request signatures: verifying Slack's (`v0`), signing and verifying latch's webhooks (`v1`),
//! and remembering recent signatures so that a captured request cannot be replayed.
//!
//! Both schemes are HMAC-SHA256 over the timestamp and the raw body, with the timestamp checked
//! against the receiver's clock (passed in) and the MAC compared in constant time.

use std::collections::BTreeSet;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a signed timestamp may be from the receiver's clock, either way.
pub const MAX_SKEW_SECS: i64 = 5 * 60;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("invalid timestamp `{0}` (expected Unix seconds)")]
    MalformedTimestamp(String),
    #[error(
        "timestamp {timestamp} is {skew} s away from now ({now}), more than the {MAX_SKEW_SECS} s allowed: check the clocks or this is a replay"
    )]
    Stale { timestamp: i64, now: i64, skew: i64 },
    #[error("invalid signature header `{0}` (expected `{1}` and 64 hex digits)")]
    MalformedSignature(String, &'static str),
    #[error("signature does not match the body: check the signing secret")]
    Mismatch,
    #[error("this signed request was already received (replay)")]
    Replayed,
    #[error("too many signed requests in the last {MAX_SKEW_SECS} s to remember; refused")]
    ReplayGuardFull,
}

/// What Slack's `verify_slack_request` returns when it refuses.
pub type SlackAuthError = SignatureError;

fn mac(secret: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail; an empty key would only
    // make every signature mismatch.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return [0; 32];
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn check_timestamp(header: &str, now_unix: i64) -> Result<i64, SignatureError> {
    let timestamp: i64 = header
        .trim()
        .parse()
        .map_err(|_| SignatureError::MalformedTimestamp(header.to_owned()))?;
    let skew = now_unix.saturating_sub(timestamp).saturating_abs();
    if skew > MAX_SKEW_SECS {
        return Err(SignatureError::Stale {
            timestamp,
            now: now_unix,
            skew,
        });
    }
    Ok(timestamp)
}

fn check_mac(
    header: &str,
    prefix: &'static str,
    expected: &[u8; 32],
) -> Result<(), SignatureError> {
    let malformed = || SignatureError::MalformedSignature(header.to_owned(), prefix);
    let given = header.trim().strip_prefix(prefix).ok_or_else(malformed)?;
    let given = hex::decode(given).map_err(|_| malformed())?;
    if given.len() != expected.len() {
        return Err(malformed());
    }
    if bool::from(given.as_slice().ct_eq(expected.as_slice())) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Slack's signature of a request: `v0=` and the hex HMAC-SHA256 of `v0:{timestamp}:{body}`.
pub fn sign_slack(signing_secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mac = mac(
        signing_secret.as_bytes(),
        &[b"v0:", timestamp.as_bytes(), b":", body],
    );
    format!("v0={}", hex::encode(mac))
}

/// Verifies a request from Slack (interactivity, slash commands): the `X-Slack-Request-Timestamp`
/// and `X-Slack-Signature` headers against the raw body, as in Slack's "Verifying requests from
/// Slack". Refuses timestamps more than five minutes from `now_unix`. Pair it with a
/// [`ReplayGuard`] to refuse the same request twice within those five minutes.
pub fn verify_slack_request(
    signing_secret: &str,
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SlackAuthError> {
    check_timestamp(timestamp_header, now_unix)?;
    let expected = mac(
        signing_secret.as_bytes(),
        &[b"v0:", timestamp_header.trim().as_bytes(), b":", body],
    );
    check_mac(signature_header, "v0=", &expected)
}

/// The `X-Latch-Signature` of a webhook body: `v1=` and the hex HMAC-SHA256 of
/// `{timestamp}.{body}` under `secret`.
pub fn sign_webhook(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    let mac = mac(secret.as_bytes(), &[timestamp.as_bytes(), b".", body]);
    format!("v1={}", hex::encode(mac))
}

/// What a webhook receiver does with latch's headers: checks the timestamp against `now_unix`
/// and the signature against the raw body, in constant time.
pub fn verify_webhook(
    secret: &str,
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    check_timestamp(timestamp_header, now_unix)?;
    let expected = mac(
        secret.as_bytes(),
        &[timestamp_header.trim().as_bytes(), b".", body],
    );
    check_mac(signature_header, "v1=", &expected)
}

/// Remembers the (timestamp, signature) of each verified request for the skew window, so that a
/// captured request replayed within it is refused. One per process: behind several server
/// replicas, a replay to another replica is caught by latch's lifecycle instead (a request can
/// be decided once).
#[derive(Debug)]
pub struct ReplayGuard {
    /// Ordered by timestamp so that forgetting expired entries is a split.
    seen: BTreeSet<(i64, String)>,
    /// Bound on memory. Only requests with valid signatures are remembered, so only Slack (or
    /// whoever holds the secret) can fill it; when full, requests are refused (fail closed).
    capacity: usize,
}

impl Default for ReplayGuard {
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl ReplayGuard {
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: BTreeSet::new(),
            capacity,
        }
    }

    /// Call after the signature verified: refuses a (timestamp, signature) pair seen before,
    /// and remembers this one.
    pub fn check(
        &mut self,
        timestamp: i64,
        signature: &str,
        now_unix: i64,
    ) -> Result<(), SignatureError> {
        let oldest = now_unix.saturating_sub(MAX_SKEW_SECS);
        self.seen = self.seen.split_off(&(oldest, String::new()));
        let key = (timestamp, signature.trim().to_owned());
        if self.seen.contains(&key) {
            return Err(SignatureError::Replayed);
        }
        if self.seen.len() >= self.capacity {
            return Err(SignatureError::ReplayGuardFull);
        }
        self.seen.insert(key);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const SLACK_TS: &str = "1531420618";
    const SLACK_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    /// From Slack's "Verifying requests from Slack".
    const SLACK_SIGNATURE: &str =
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn slack_worked_example_signs_to_the_documented_value() {
        assert_eq!(
            sign_slack(SLACK_SECRET, SLACK_TS, SLACK_BODY.as_bytes()),
            SLACK_SIGNATURE
        );
    }

    #[test]
    fn slack_worked_example_verifies_within_five_minutes() {
        let ts = 1_531_420_618;
        for now in [ts, ts + 300, ts - 300] {
            assert_eq!(
                verify_slack_request(
                    SLACK_SECRET,
                    SLACK_TS,
                    SLACK_SIGNATURE,
                    SLACK_BODY.as_bytes(),
                    now
                ),
                Ok(())
            );
        }
    }

    #[test]
    fn slack_refusals() {
        let ts = 1_531_420_618;
        let verify = |secret: &str, stamp: &str, sig: &str, body: &str, now: i64| {
            verify_slack_request(secret, stamp, sig, body.as_bytes(), now)
                .map_err(|e| e.to_string())
        };
        let cases = [
            verify(
                SLACK_SECRET,
                SLACK_TS,
                SLACK_SIGNATURE,
                SLACK_BODY,
                ts + 301,
            ),
            verify(
                SLACK_SECRET,
                SLACK_TS,
                SLACK_SIGNATURE,
                SLACK_BODY,
                ts - 301,
            ),
            verify(SLACK_SECRET, "yesterday", SLACK_SIGNATURE, SLACK_BODY, ts),
            verify("another secret", SLACK_TS, SLACK_SIGNATURE, SLACK_BODY, ts),
            verify(
                SLACK_SECRET,
                SLACK_TS,
                SLACK_SIGNATURE,
                &SLACK_BODY.replace("roadrunner", "coyote"),
                ts,
            ),
            verify(SLACK_SECRET, "1531420619", SLACK_SIGNATURE, SLACK_BODY, ts),
            verify(
                SLACK_SECRET,
                SLACK_TS,
                &SLACK_SIGNATURE.replace("v0=", "v1="),
                SLACK_BODY,
                ts,
            ),
            verify(SLACK_SECRET, SLACK_TS, "v0=abcd", SLACK_BODY, ts),
        ];
        let text: Vec<String> = cases
            .into_iter()
            .map(|result| format!("{result:?}"))
            .collect();
        expect_test::expect![[r#"
            Err("timestamp 1531420618 is 301 s away from now (1531420919), more than the 300 s allowed: check the clocks or this is a replay")
            Err("timestamp 1531420618 is 301 s away from now (1531420317), more than the 300 s allowed: check the clocks or this is a replay")
            Err("invalid timestamp `yesterday` (expected Unix seconds)")
            Err("signature does not match the body: check the signing secret")
            Err("signature does not match the body: check the signing secret")
            Err("signature does not match the body: check the signing secret")
            Err("invalid signature header `v1=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503` (expected `v0=` and 64 hex digits)")
            Err("invalid signature header `v0=abcd` (expected `v0=` and 64 hex digits)")"#]].assert_eq(&text.join("\n"));
    }

    #[test]
    fn webhook_signatures_round_trip_and_refuse_tampering() {
        let body = br#"{"type":"grant.revoked"}"#;
        let signature = sign_webhook("whsec", 1_800_000_000, body);
        assert!(signature.starts_with("v1=") && signature.len() == 67);
        assert_eq!(
            verify_webhook("whsec", "1800000000", &signature, body, 1_800_000_100),
            Ok(())
        );
        assert_eq!(
            verify_webhook("whsec", "1800000001", &signature, body, 1_800_000_100),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_webhook("other", "1800000000", &signature, body, 1_800_000_100),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify_webhook("whsec", "1800000000", &signature, body, 1_800_000_301),
            Err(SignatureError::Stale { .. })
        ));
    }

    #[test]
    fn replay_guard_refuses_a_pair_twice_and_forgets_after_the_window() {
        let mut guard = ReplayGuard::new(2);
        assert_eq!(guard.check(1000, "v0=aa", 1000), Ok(()));
        assert_eq!(
            guard.check(1000, "v0=aa", 1010),
            Err(SignatureError::Replayed)
        );
        assert_eq!(guard.check(1000, "v0=bb", 1010), Ok(()));
        assert_eq!(
            guard.check(1001, "v0=cc", 1010),
            Err(SignatureError::ReplayGuardFull)
        );
        // Past the window the old entries are dropped (and their timestamps would be stale).
        assert_eq!(guard.check(1400, "v0=dd", 1400), Ok(()));
        assert_eq!(guard.len(), 1);
    }
}
