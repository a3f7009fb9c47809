//! `[notify]` of the config as the server's notifier needs it: secrets read once at start.

use std::collections::HashMap;

use latch_config::{ChannelKind, Config, SecretRef};
use latch_notify::{Channel, Mailer, Route, Severity, SmtpSettings};
use latch_server::notify::NotifyConfig;

use crate::exit::Failed;

fn secret(what: &str, reference: &SecretRef) -> anyhow::Result<String> {
    match reference.resolve() {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err(Failed(format!("{what}: no secret configured")).into()),
        Err(err) => Err(Failed(format!("{what}: {err}")).into()),
    }
}

/// The notifier's configuration, or `None` without a `[notify]` section.
pub fn config(config: &Config) -> anyhow::Result<Option<NotifyConfig>> {
    let Some(notify) = &config.notify else {
        return Ok(None);
    };
    let mut channels = HashMap::new();
    for channel in &notify.channels {
        let what = format!("notify channel `{}`", channel.name);
        let built = match &channel.kind {
            ChannelKind::Slack { url } => Channel::Slack {
                webhook_url: secret(&what, url)?,
            },
            ChannelKind::SlackBot {
                token,
                channel_id,
                api_base,
            } => Channel::SlackBot {
                token: secret(&what, token)?,
                channel_id: channel_id.clone(),
                api_base: api_base.clone(),
            },
            ChannelKind::Teams { url } => Channel::Teams {
                webhook_url: secret(&what, url)?,
            },
            ChannelKind::Webhook { url, secret: key } => Channel::Webhook {
                url: url
                    .resolve()
                    .map_err(|err| Failed(format!("{what}: {err}")))?,
                secret: secret(&what, key)?,
            },
            ChannelKind::Email { to } => Channel::Email { to: to.clone() },
        };
        channels.insert(channel.name.clone(), built);
    }
    let routes = notify
        .routes
        .iter()
        .map(|route| Route {
            events: route.events.clone(),
            min_severity: route.min_severity.as_deref().and_then(Severity::parse),
            resources: route.resources.clone(),
            teams: route.teams.clone(),
            channel: route.channel.clone(),
        })
        .collect();
    let slack_signing_secret = notify
        .slack_signing_secret
        .as_ref()
        .map(|reference| secret("notify.slack_signing_secret", reference))
        .transpose()?;
    let mailer = match &notify.smtp {
        Some(smtp) => {
            let password = smtp
                .password
                .as_ref()
                .map(|reference| secret("notify.smtp_password", reference))
                .transpose()?;
            let settings = SmtpSettings {
                url: smtp.url.clone(),
                from: smtp.from.clone(),
                username: smtp.username.clone(),
                password,
            };
            Some(Mailer::new(&settings).map_err(|err| Failed(format!("notify.smtp_url: {err}")))?)
        }
        None => None,
    };
    Ok(Some(NotifyConfig {
        channels,
        routes,
        base_url: notify.base_url.clone(),
        expiry_warning: notify.expiry_warning,
        reminder_after: notify.reminder_after,
        digest_minutes: notify.digest_minutes,
        mailer,
        slack_signing_secret,
        slack_users: config
            .slack_ids
            .iter()
            .map(|(slack, user)| (slack.clone(), user.clone()))
            .collect(),
    }))
}
