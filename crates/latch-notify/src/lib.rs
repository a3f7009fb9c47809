//! latch notifications (issue #6): what to say about ledger events and audit findings, to which
//! channel, in which format; verifying Slack's interactive requests; and delivering with
//! retries.
//!
//! Everything but [`deliver`] and [`slack_api`]'s calls is pure: notices are built from events the caller passes
//! ([`Notice::from_event`]), routed by the configured [`Route`]s ([`route`]), rendered per
//! [`Channel`] ([`render()`]), and batched by a [`Digest`]; time is always passed in. The server
//! keeps the outbox (what was rendered, attempts, dead letters); this crate never touches the
//! store.
//!
//! **Architecture Invariant:** notifications are a consequence of the ledger, never a cause: no
//! function here changes state, and a Slack click becomes a lifecycle command in the server,
//! decided like any other.

mod deliver;
mod digest;
mod notice;
pub mod render;
pub mod retry;
mod route;
mod signature;
mod slack_action;
pub mod slack_api;
mod smtp;

pub use deliver::{
    DELIVERY_TIMEOUT, DeliveryError, DeliveryFailure, client, deliver, deliver_at,
    deliver_with_retries,
};
pub use digest::Digest;
pub use notice::{
    FindingNotice, Notice, NoticeContext, RequestFacts, ReviewSection, Severity, What,
};
pub use render::slack::update as slack_update;
pub use render::{Rendered, render, render_digest};
pub use retry::{MAX_ATTEMPTS, backoff};
pub use route::{Channel, Route, glob_match, route};
pub use signature::{
    MAX_SKEW_SECS, ReplayGuard, SignatureError, SlackAuthError, sign_slack, sign_webhook,
    verify_slack_request, verify_webhook,
};
pub use slack_action::{Decision, InteractionError, SlackAction, parse_slack_action};
pub use slack_api::SlackPosted;
pub use smtp::{Mailer, SmtpSettings};

#[cfg(test)]
mod tests;
