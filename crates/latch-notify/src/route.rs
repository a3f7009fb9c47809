//! Routing: which channels hear about a notice, decided by the configured routes alone.

use std::fmt;

use latch_core::Catalog;

use crate::{Notice, Severity};

/// Where notices go. Webhook URLs of Slack and Teams are secrets too (whoever has one may post),
/// so `Debug` shows only the host.
#[derive(Clone, PartialEq, Eq)]
pub enum Channel {
    /// A Slack incoming webhook.
    Slack { webhook_url: String },
    /// A Slack channel posted to with a bot token (`chat.postMessage`), so that latch learns
    /// each message's `ts` and can replace it (`chat.update`) once the request is decided.
    SlackBot {
        /// The bot token (`xoxb-…`), a secret: sent only in the `Authorization` header, never
        /// shown by `Debug`, never written to the outbox.
        token: String,
        /// Slack's id of the channel (`C0123ABCD`).
        channel_id: String,
        /// Slack's Web API, without a trailing `/`: `https://slack.com/api`, or a proxy's.
        api_base: String,
    },
    /// A Microsoft Teams incoming webhook (or Workflows "post to a channel when a webhook request
    /// is received") that takes Adaptive Cards.
    Teams { webhook_url: String },
    /// Any HTTPS endpoint: JSON signed with HMAC-SHA256 under `secret`.
    Webhook { url: String, secret: String },
    /// Email to `to`. latch renders the text; sending it is out of scope for this crate (the
    /// server hands the rendered subject and body to whatever relay it is configured with).
    Email { to: Vec<String> },
}

impl Channel {
    /// `slack`, `teams`, `webhook` or `email`: the config's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Slack { .. } | Self::SlackBot { .. } => "slack",
            Self::Teams { .. } => "teams",
            Self::Webhook { .. } => "webhook",
            Self::Email { .. } => "email",
        }
    }
}

/// `https://hooks.slack.com/…`: enough to tell channels apart in logs, not enough to post.
fn host_only(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = after_scheme.split('/').next().unwrap_or_default();
    format!("{host}/…")
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Slack { webhook_url } => write!(f, "Slack({})", host_only(webhook_url)),
            Self::SlackBot {
                channel_id,
                api_base,
                ..
            } => write!(
                f,
                "SlackBot({channel_id} via {}, token: …)",
                host_only(api_base)
            ),
            Self::Teams { webhook_url } => write!(f, "Teams({})", host_only(webhook_url)),
            Self::Webhook { url, .. } => write!(f, "Webhook({}, secret: …)", host_only(url)),
            Self::Email { to } => write!(f, "Email({})", to.join(", ")),
        }
    }
}

/// One routing rule: notices that match every filter go to `channel`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Event type globs (`*` matches any run of characters): `request.*`, `grant.revoked`,
    /// `finding.opened`, `*`. Empty: every event.
    pub events: Vec<String>,
    /// Only notices at least this severe.
    pub min_severity: Option<Severity>,
    /// Resource name globs (`payments-*`). Empty: any resource, and notices without one
    /// (findings). Non-empty: only notices about a matching resource.
    pub resources: Vec<String>,
    /// Teams: the notice's resource is owned by one of them, or its user (requester, grantee)
    /// belongs to one of them. Empty: no team filter.
    pub teams: Vec<String>,
    /// The name of a configured channel.
    pub channel: String,
}

impl Route {
    pub fn matches(&self, notice: &Notice, catalog: &Catalog) -> bool {
        let event_ok = self.events.is_empty()
            || self
                .events
                .iter()
                .any(|pattern| glob_match(pattern, &notice.event_type));
        let severity_ok = self.min_severity.is_none_or(|min| notice.severity >= min);
        let resource_ok = self.resources.is_empty()
            || notice.resource.as_deref().is_some_and(|resource| {
                self.resources
                    .iter()
                    .any(|pattern| glob_match(pattern, resource))
            });
        let team_ok =
            self.teams.is_empty() || self.teams.iter().any(|team| in_team(notice, catalog, team));
        event_ok && severity_ok && resource_ok && team_ok
    }
}

fn in_team(notice: &Notice, catalog: &Catalog, team: &str) -> bool {
    let owns = notice
        .resource
        .as_deref()
        .and_then(|resource| catalog.resources.get(resource))
        .is_some_and(|resource| resource.owner_team == team);
    let member = notice
        .user
        .as_deref()
        .and_then(|user| catalog.user(user))
        .is_some_and(|user| user.teams.contains(team));
    owns || member
}

/// The channels `notice` goes to: those of every matching route, each once, in route order.
pub fn route(notice: &Notice, routes: &[Route], catalog: &Catalog) -> Vec<String> {
    let mut channels: Vec<String> = Vec::new();
    for route in routes {
        if route.matches(notice, catalog) && !channels.contains(&route.channel) {
            channels.push(route.channel.clone());
        }
    }
    channels
}

/// Matches `text` against `pattern`, where `*` stands for any run of characters (none
/// included) and every other character for itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was and which text position it is currently made to cover up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(c) if Some(c) == text.get(t) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (pattern, text, want) in [
            ("request.*", "request.created", true),
            ("request.*", "request.", true),
            ("request.*", "grant.issued", false),
            ("*", "anything", true),
            ("*", "", true),
            ("grant.revoked", "grant.revoked", true),
            ("grant.revoked", "grant.revoked2", false),
            ("*.revoked", "grant.revoked", true),
            ("payments-*-db", "payments-eu-db", true),
            ("payments-*-db", "payments-eu-db-replica", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("", "", true),
            ("", "x", false),
        ] {
            assert_eq!(glob_match(pattern, text), want, "{pattern} ~ {text}");
        }
    }

    #[test]
    fn debug_hides_webhook_paths_and_secrets() {
        let channel = Channel::Webhook {
            url: "https://hooks.example.com/T0/B0/XYZsecret".into(),
            secret: "s3cret".into(),
        };
        assert_eq!(
            format!("{channel:?}"),
            "Webhook(hooks.example.com/…, secret: …)"
        );
        let bot = Channel::SlackBot {
            token: "xoxb-1-secret".into(),
            channel_id: "C0123ABCD".into(),
            api_base: "https://slack.com/api".into(),
        };
        assert_eq!(
            format!("{bot:?}"),
            "SlackBot(C0123ABCD via slack.com/…, token: …)"
        );
    }
}
