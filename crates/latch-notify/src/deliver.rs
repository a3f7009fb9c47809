//! Delivery: one POST per rendered notice, and what to do when it fails. With `slack_api`, the
//! only module here that touches the network (and the clock, to sign webhooks at the moment
//! they are sent).

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

use crate::render::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::render::{Rendered, truncate};
use crate::retry::next_delay;
use crate::{Channel, sign_webhook};

/// How long one attempt may take, connection included.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a delivery failed, and whether trying again may help ([`DeliveryError::is_retryable`]).
/// Messages never include the URL: Slack and Teams webhook URLs are secrets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("the receiver answered {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Status {
        status: u16,
        /// The receiver's `Retry-After` (seconds form), if it sent one.
        retry_after: Option<Duration>,
        /// The start of the receiver's answer, e.g. Slack's `invalid_payload`.
        body: String,
    },
    #[error("the receiver did not answer in time")]
    Timeout,
    #[error("cannot connect to the receiver: {0}")]
    Connect(String),
    #[error("sending failed: {0}")]
    Transport(String),
    #[error("cannot build the request: {0} (check the channel's URL)")]
    Invalid(String),
    #[error("email is rendered, not sent, by latch: hand the subject and text to the mail relay")]
    EmailNotSent,
    #[error("a {channel} channel cannot send an email rendering")]
    FormatMismatch { channel: &'static str },
    #[error("the mail relay refused: {message}")]
    Smtp {
        message: String,
        /// The relay answered 5xx: trying again will not help.
        permanent: bool,
    },
    #[error("no SMTP relay is configured (set `notify.smtp_url` and `notify.smtp_from`)")]
    NoMailer,
    /// Slack's Web API answered `ok: false` (HTTP 200 nonetheless): `error` is Slack's code,
    /// e.g. `invalid_auth` or `ratelimited`.
    #[error("Slack refused: `{error}`{}", crate::slack_api::hint(error))]
    Slack {
        error: String,
        /// The answer's `Retry-After` (seconds form), if it had one.
        retry_after: Option<Duration>,
    },
    /// A replacement of a bot-token channel's messages: only the server, which remembers each
    /// message's `ts`, can deliver it.
    #[error("a Slack update needs the `ts` of the messages it replaces")]
    SlackUpdateNeedsMessages,
}

impl DeliveryError {
    /// Worth trying again: server errors, rate limiting, timeouts and network failures. Other
    /// 4xx answers (bad payload, revoked webhook) will not change by themselves.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            Self::Timeout | Self::Connect(_) | Self::Transport(_) => true,
            Self::Smtp { permanent, .. } => !permanent,
            Self::Slack { error, .. } => crate::slack_api::transient(error),
            Self::Invalid(_)
            | Self::EmailNotSent
            | Self::FormatMismatch { .. }
            | Self::NoMailer
            | Self::SlackUpdateNeedsMessages => false,
        }
    }

    /// How long the receiver asked us to wait.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } | Self::Slack { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn from_reqwest(err: reqwest::Error) -> Self {
        let err = err.without_url();
        if err.is_timeout() {
            Self::Timeout
        } else if err.is_connect() {
            Self::Connect(error_chain(&err))
        } else if err.is_builder() {
            Self::Invalid(error_chain(&err))
        } else {
            Self::Transport(error_chain(&err))
        }
    }
}

/// `err` and its causes, `: `-separated (reqwest's own message alone says little).
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// The client latch should deliver with: every attempt bounded by [`DELIVERY_TIMEOUT`] (connecting
/// by 5 s), and redirects not followed, so that a signed body never goes anywhere but the
/// configured URL (a redirect is reported as a non-retryable status).
pub fn client() -> Result<reqwest::Client, DeliveryError> {
    reqwest::Client::builder()
        .timeout(DELIVERY_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("latch-notify/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| DeliveryError::Invalid(error_chain(&err)))
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}

/// Sends `rendered` to `channel` once; webhooks are signed with the current time. Timeouts are
/// the client's: build it with [`client`].
pub async fn deliver(
    client: &reqwest::Client,
    channel: &Channel,
    rendered: &Rendered,
) -> Result<(), DeliveryError> {
    deliver_at(client, channel, rendered, now_unix()).await
}

/// [`deliver`], signing webhooks with `now_unix` instead of the clock.
pub async fn deliver_at(
    client: &reqwest::Client,
    channel: &Channel,
    rendered: &Rendered,
    now_unix: i64,
) -> Result<(), DeliveryError> {
    let body = match rendered {
        Rendered::Json { body } => {
            serde_json::to_vec(body).map_err(|err| DeliveryError::Invalid(err.to_string()))?
        }
        Rendered::SlackResponse { response_url, body } => {
            let body =
                serde_json::to_vec(body).map_err(|err| DeliveryError::Invalid(err.to_string()))?;
            let request = client
                .post(response_url.as_str())
                .header(CONTENT_TYPE, "application/json")
                .body(body);
            return answer(request).await.map(|_| ());
        }
        Rendered::SlackPost { body, .. } => match channel {
            Channel::SlackBot {
                token,
                channel_id,
                api_base,
            } => {
                return crate::slack_api::post_message(client, api_base, token, channel_id, body)
                    .await
                    .map(|_| ());
            }
            // The channel became an incoming webhook since: the same blocks go there.
            _ => serde_json::to_vec(body).map_err(|err| DeliveryError::Invalid(err.to_string()))?,
        },
        Rendered::SlackUpdate { .. } => return Err(DeliveryError::SlackUpdateNeedsMessages),
        Rendered::Email { .. } => {
            return Err(match channel {
                Channel::Email { .. } => DeliveryError::EmailNotSent,
                other => DeliveryError::FormatMismatch {
                    channel: other.kind(),
                },
            });
        }
    };
    let (url, secret) = match channel {
        Channel::Slack { webhook_url } | Channel::Teams { webhook_url } => (webhook_url, None),
        Channel::Webhook { url, secret } => (url, Some(secret)),
        Channel::SlackBot {
            token,
            channel_id,
            api_base,
        } => {
            let body: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|err| DeliveryError::Invalid(err.to_string()))?;
            return crate::slack_api::post_message(client, api_base, token, channel_id, &body)
                .await
                .map(|_| ());
        }
        Channel::Email { .. } => return Err(DeliveryError::EmailNotSent),
    };
    let mut request = client
        .post(url.as_str())
        .header(CONTENT_TYPE, "application/json");
    if let Some(secret) = secret {
        request = request
            .header(TIMESTAMP_HEADER, now_unix.to_string())
            .header(SIGNATURE_HEADER, sign_webhook(secret, now_unix, &body));
    }
    answer(request.body(body)).await.map(|_| ())
}

/// Sends `request`: the receiver's answer when it is a 2xx, else the error it makes.
pub(crate) async fn answer(
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, DeliveryError> {
    let response = request.send().await.map_err(DeliveryError::from_reqwest)?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = response.text().await.unwrap_or_default();
    Err(DeliveryError::Status {
        status: status.as_u16(),
        retry_after,
        body: truncate(text.trim(), 200),
    })
}

/// A delivery given up on: the server records it as dead-lettered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("gave up after {attempts} attempt(s): {error}")]
pub struct DeliveryFailure {
    pub attempts: u32,
    /// The last attempt's error: retryable when the attempts ran out, not when the receiver
    /// refused for good.
    pub error: DeliveryError,
}

/// Delivers with up to `max_attempts` attempts (at least one), waiting between them as
/// [`crate::retry::next_delay`] says, with `jitter()` for the random part and `sleep` to wait
/// (tests pass one that returns at once). Returns how many attempts it took.
pub async fn deliver_with_retries<S, F>(
    client: &reqwest::Client,
    channel: &Channel,
    rendered: &Rendered,
    max_attempts: u32,
    mut jitter: impl FnMut() -> f64,
    sleep: S,
) -> Result<u32, DeliveryFailure>
where
    S: Fn(Duration) -> F,
    F: Future<Output = ()>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match deliver(client, channel, rendered).await {
            Ok(()) => return Ok(attempt),
            Err(error) if error.is_retryable() && attempt < max_attempts => {
                sleep(next_delay(attempt, jitter(), error.retry_after())).await;
            }
            Err(error) => {
                return Err(DeliveryFailure {
                    attempts: attempt,
                    error,
                });
            }
        }
    }
}
