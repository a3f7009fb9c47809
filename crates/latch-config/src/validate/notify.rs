//! `[notify]` and the users' `slack_id`: where notifications go, checked like the rest of the
//! file. Channel URLs and secrets are named (`*_env`, `*_file`), never read here, and a URL is
//! never echoed in a problem: Slack's and Teams' are secrets, and a webhook's may hold a token.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::Duration;

use latch_core::AccessDuration;
use toml::Spanned;

use super::{Checker, Names, is_email, listed, valid_name};
use crate::document::{Entry, NotifyEntry, key_path};
use crate::raw::{RawChannel, RawRoute, RawUser};
use crate::{
    ChannelKind, ChannelSettings, DEFAULT_EXPIRY_WARNING, MAX_DIGEST_MINUTES, NotifySettings,
    RouteSettings, SEVERITIES, SecretRef, SmtpSettings, UrlRef,
};

/// A problem already reported; the value it was about is left out.
struct Reported;

/// An optional list of patterns or names, as a route writes it.
type RawList = Option<Spanned<Vec<Spanned<String>>>>;

impl Checker<'_, '_> {
    /// `slack_id` of each user, by Slack id; each Slack id belongs to one user.
    pub(super) fn slack_ids(&mut self, entries: &[Entry<RawUser>]) -> BTreeMap<String, String> {
        let mut ids: BTreeMap<String, String> = BTreeMap::new();
        for entry in entries {
            let Some(id) = entry.raw.as_ref().and_then(|raw| raw.slack_id.as_ref()) else {
                continue;
            };
            let key = key_path(&entry.path, "slack_id");
            let text = id.get_ref();
            if !is_slack_user_id(text) {
                self.report(
                    id,
                    &key,
                    format!(
                        "invalid Slack user id `{text}` (expected `U` or `W` followed by \
                         uppercase letters and digits, e.g. `U012AB3CD`: the member id Slack \
                         shows in the user's profile)"
                    ),
                );
            } else if let Some(other) = ids.get(text) {
                self.report(
                    id,
                    &key,
                    format!(
                        "Slack user id `{text}` is already the one of user `{other}` (expected \
                         each Slack user to be one latch user)"
                    ),
                );
            } else {
                ids.insert(text.clone(), entry.name.clone());
            }
        }
        ids
    }

    /// `[notify]`; `None` when its own keys could not be decoded (already reported).
    pub(super) fn notify(&mut self, entry: &NotifyEntry, names: &Names) -> Option<NotifySettings> {
        let channels = self.channels(&entry.channels);
        // Channels that failed to decode still count as defined, like teams and users.
        let channel_names: BTreeSet<String> = entry
            .channels
            .iter()
            .filter(|channel| !channel.name.is_empty())
            .map(|channel| channel.name.clone())
            .collect();
        let routes = entry
            .routes
            .iter()
            .filter_map(|route| self.route(route, names, &channel_names))
            .collect();
        let raw = entry.raw.as_ref()?;
        let base_url = raw.base_url.as_ref().map(|url| {
            let text = url.get_ref();
            if !is_http_url(text) {
                self.report(
                    url,
                    "notify.base_url",
                    format!(
                        "invalid URL `{text}` (expected latch's address as people reach it, \
                         starting with `https://` or `http://`, e.g. `https://latch.example.com`)"
                    ),
                );
            }
            text.strip_suffix('/').unwrap_or(text).to_owned()
        });
        let digest_minutes = self
            .bounded(
                &raw.digest_minutes,
                "notify.digest_minutes",
                0..=i64::from(MAX_DIGEST_MINUTES),
                "a number of minutes",
                "; `0`, the default, sends each notification at once",
            )
            .and_then(|minutes| u32::try_from(minutes).ok())
            .unwrap_or(0);
        let expiry_warning = self
            .duration(&raw.expiry_warning, "notify.expiry_warning")
            .unwrap_or(DEFAULT_EXPIRY_WARNING);
        let reminder_after = self.duration(&raw.reminder_after, "notify.reminder_after");
        let slack_signing_secret = self
            .secret(
                &raw.slack_signing_secret_env,
                &raw.slack_signing_secret_file,
                "notify",
                "slack_signing_secret",
                "expected one of them, or neither to leave Slack's buttons off",
            )
            .ok()
            .flatten();
        let smtp = self.smtp(raw);
        Some(NotifySettings {
            base_url,
            digest_minutes,
            expiry_warning,
            reminder_after,
            slack_signing_secret,
            smtp,
            channels,
            routes,
        })
    }

    /// `smtp_url`, `smtp_from`, `smtp_username`, `smtp_password_*`: all or none of the first
    /// two, and a password exactly with a username.
    fn smtp(&mut self, raw: &crate::raw::RawNotify) -> Option<SmtpSettings> {
        let password = self
            .secret(
                &raw.smtp_password_env,
                &raw.smtp_password_file,
                "notify",
                "smtp_password",
                "expected one of them, with `smtp_username`",
            )
            .ok()
            .flatten();
        let (url, from) = match (&raw.smtp_url, &raw.smtp_from) {
            (None, None) => {
                if let Some(user) = &raw.smtp_username {
                    self.report(
                        user,
                        "notify.smtp_username",
                        "a login without a relay (expected `smtp_url` and `smtp_from` too)",
                    );
                }
                return None;
            }
            (Some(url), None) => {
                self.report(
                    url,
                    "notify.smtp_url",
                    "a relay without a sender (expected `smtp_from` too, e.g. \
                     `smtp_from = \"latch <latch@example.com>\"`)",
                );
                return None;
            }
            (None, Some(from)) => {
                self.report(
                    from,
                    "notify.smtp_from",
                    "a sender without a relay (expected `smtp_url` too, e.g. \
                     `smtp_url = \"smtp://mail.example.com:587?tls=required\"`)",
                );
                return None;
            }
            (Some(url), Some(from)) => (url, from),
        };
        let text = url.get_ref();
        let authority = text
            .strip_prefix("smtp://")
            .or_else(|| text.strip_prefix("smtps://"))
            .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default());
        match authority {
            Some(authority) if authority.contains('@') => self.report(
                url,
                "notify.smtp_url",
                "the relay's URL carries a login (expected it without: put the user in \
                 `smtp_username` and the password in `smtp_password_env` or `smtp_password_file`)",
            ),
            Some(authority) if !authority.is_empty() => {}
            _ => self.report(
                url,
                "notify.smtp_url",
                format!(
                    "invalid SMTP relay `{text}` (expected `smtp://host:port`, \
                     `smtp://host:587?tls=required` for STARTTLS or `smtps://host:465`)"
                ),
            ),
        }
        let sender = from.get_ref();
        let address = sender
            .rsplit_once('<')
            .and_then(|(_, rest)| rest.strip_suffix('>'))
            .unwrap_or(sender);
        if !is_email(address.trim()) {
            self.report(
                from,
                "notify.smtp_from",
                format!(
                    "invalid sender `{sender}` (expected an address like `latch@example.com` or \
                     `latch <latch@example.com>`)"
                ),
            );
        }
        match (&raw.smtp_username, &password) {
            (Some(user), None) => self.report(
                user,
                "notify.smtp_username",
                "a login without a password (expected `smtp_password_env` or `smtp_password_file`)",
            ),
            (None, Some(_)) => {
                if let Some(span) = raw
                    .smtp_password_env
                    .as_ref()
                    .or(raw.smtp_password_file.as_ref())
                {
                    self.report(
                        span,
                        "notify.smtp_password",
                        "a password without a login (expected `smtp_username` too)",
                    );
                }
            }
            _ => {}
        }
        Some(SmtpSettings {
            url: text.clone(),
            from: sender.clone(),
            username: raw
                .smtp_username
                .as_ref()
                .map(|user| user.get_ref().clone()),
            password,
        })
    }

    /// An optional duration written like `pending_timeout`; `None` when absent or bad (reported).
    fn duration(&mut self, value: &Option<Spanned<String>>, key: &str) -> Option<Duration> {
        self.access_duration(value, key)
            .map(|duration| Duration::from_secs(AccessDuration::as_secs(duration)))
    }

    /// `KEY_env` or `KEY_file` of the table at `path`: `Ok(None)` when neither is given, `Err`
    /// when both are (reported, with `hint` saying what is expected).
    fn secret(
        &mut self,
        env: &Option<Spanned<String>>,
        file: &Option<Spanned<String>>,
        path: &str,
        key: &str,
        hint: &str,
    ) -> Result<Option<SecretRef>, Reported> {
        let env_key = format!("{key}_env");
        let file_key = format!("{key}_file");
        match (env, file) {
            (None, None) => Ok(None),
            (Some(_), Some(file)) => {
                self.report(
                    file,
                    &key_path(path, &file_key),
                    format!("`{env_key}` and `{file_key}` are mutually exclusive ({hint})"),
                );
                Err(Reported)
            }
            (Some(var), None) => {
                if var.get_ref().trim().is_empty() {
                    self.report(
                        var,
                        &key_path(path, &env_key),
                        "expected the name of an environment variable",
                    );
                }
                Ok(Some(SecretRef::Env(var.get_ref().clone())))
            }
            (None, Some(file)) => {
                if file.get_ref().trim().is_empty() {
                    self.report(
                        file,
                        &key_path(path, &file_key),
                        "expected the path of a file holding the secret",
                    );
                }
                Ok(Some(SecretRef::File(self.resolve(file.get_ref()))))
            }
        }
    }

    /// Reports that the channel at `entry` lacks what its kind needs.
    fn missing(&mut self, entry: &Entry<RawChannel>, raw: &RawChannel, message: String) {
        let span = entry.span.clone().or_else(|| Some(raw.kind.span()));
        self.diagnostics.report(span, &entry.path, message);
    }

    fn channels(&mut self, entries: &[Entry<RawChannel>]) -> Vec<ChannelSettings> {
        let mut first_of: BTreeMap<&str, &str> = BTreeMap::new();
        let mut channels = Vec::new();
        for entry in entries {
            let Some(raw) = &entry.raw else { continue };
            let name = raw.name.get_ref();
            if !valid_name(name) {
                self.report(
                    &raw.name,
                    &key_path(&entry.path, "name"),
                    format!(
                        "invalid channel name `{name}` (expected a lowercase letter, then up to \
                         62 lowercase letters, digits, `_` or `-`)"
                    ),
                );
            } else if let Some(first) = first_of.get(name.as_str()) {
                self.report(
                    &raw.name,
                    &key_path(&entry.path, "name"),
                    format!(
                        "channel `{name}` is already defined by `{first}` (expected each \
                         channel to have its own name)"
                    ),
                );
            } else {
                first_of.insert(name, &entry.path);
            }
            if let Some(kind) = self.channel_kind(entry, raw) {
                channels.push(ChannelSettings {
                    name: name.clone(),
                    kind,
                });
            }
        }
        channels
    }

    /// The channel's kind with the keys it needs; every key it does not take is refused.
    fn channel_kind(&mut self, entry: &Entry<RawChannel>, raw: &RawChannel) -> Option<ChannelKind> {
        let kind = raw.kind.get_ref().as_str();
        let (takes, expected): (&[&str], &str) = match kind {
            "slack" => (
                &[
                    "url_env",
                    "url_file",
                    "bot_token_env",
                    "bot_token_file",
                    "channel_id",
                    "api_base",
                ],
                "`url_env` or `url_file`, or `bot_token_env` or `bot_token_file` with \
                 `channel_id`",
            ),
            "teams" => (&["url_env", "url_file"], "`url_env` or `url_file`"),
            "webhook" => (
                &["url", "url_env", "url_file", "secret_env", "secret_file"],
                "`url`, `url_env` or `url_file`, and `secret_env` or `secret_file`",
            ),
            "email" => (&["to"], "`to`"),
            other => {
                self.report(
                    &raw.kind,
                    &key_path(&entry.path, "kind"),
                    format!(
                        "unknown channel kind `{other}` (expected `slack`, `teams`, `webhook` or \
                         `email`)"
                    ),
                );
                return None;
            }
        };
        let given: [(&str, Option<Range<usize>>); 10] = [
            ("url", raw.url.as_ref().map(Spanned::span)),
            ("url_env", raw.url_env.as_ref().map(Spanned::span)),
            ("url_file", raw.url_file.as_ref().map(Spanned::span)),
            ("secret_env", raw.secret_env.as_ref().map(Spanned::span)),
            ("secret_file", raw.secret_file.as_ref().map(Spanned::span)),
            ("to", raw.to.as_ref().map(Spanned::span)),
            (
                "bot_token_env",
                raw.bot_token_env.as_ref().map(Spanned::span),
            ),
            (
                "bot_token_file",
                raw.bot_token_file.as_ref().map(Spanned::span),
            ),
            ("channel_id", raw.channel_id.as_ref().map(Spanned::span)),
            ("api_base", raw.api_base.as_ref().map(Spanned::span)),
        ];
        let mut refused = false;
        for (key, span) in given {
            let Some(span) = span else { continue };
            if takes.contains(&key) {
                continue;
            }
            refused = true;
            // The value is never echoed: a Slack or Teams URL is a secret.
            let message = if key == "url" {
                format!(
                    "the URL of a {kind} channel is a secret (whoever has it may post to the \
                     channel) and is never written inline in the config: use `url_env` (the \
                     name of an environment variable) or `url_file` (the path of a file) to say \
                     where it is"
                )
            } else {
                let article = if kind == "email" { "an" } else { "a" };
                format!("`{key}` does not apply to {article} {kind} channel (expected {expected})")
            };
            self.diagnostics
                .report(Some(span), key_path(&entry.path, key), message);
        }
        let channel = match kind {
            "slack" => self.slack_channel(entry, raw).ok()?,
            "teams" => ChannelKind::Teams {
                url: self.channel_url_secret(entry, raw, kind).ok()?,
            },
            "webhook" => {
                let url = self.webhook_url(entry, raw);
                let secret = self.secret(
                    &raw.secret_env,
                    &raw.secret_file,
                    &entry.path,
                    "secret",
                    "expected one of them",
                );
                let secret = match secret {
                    Ok(Some(secret)) => Some(secret),
                    Ok(None) if raw.inline_secret => None,
                    Ok(None) => {
                        self.missing(
                            entry,
                            raw,
                            "a webhook channel needs `secret_env` or `secret_file` (where the key \
                             that signs its requests with HMAC-SHA256 is found)"
                                .to_owned(),
                        );
                        None
                    }
                    Err(Reported) => None,
                };
                ChannelKind::Webhook {
                    url: url.ok()?,
                    secret: secret?,
                }
            }
            _ => ChannelKind::Email {
                to: self.email_to(entry, raw).ok()?,
            },
        };
        (!refused).then_some(channel)
    }

    /// `url_env` or `url_file`, required.
    fn channel_url_secret(
        &mut self,
        entry: &Entry<RawChannel>,
        raw: &RawChannel,
        kind: &str,
    ) -> Result<SecretRef, Reported> {
        match self.secret(
            &raw.url_env,
            &raw.url_file,
            &entry.path,
            "url",
            "expected one of them",
        )? {
            Some(url) => Ok(url),
            // A plain `url` is refused with its own message, which says what to write instead.
            None if raw.url.is_some() => Err(Reported),
            None => {
                let message = if kind == "slack" {
                    "a slack channel needs `url_env` or `url_file` (where its incoming-webhook \
                     URL is found), or `bot_token_env` or `bot_token_file` with `channel_id` (a \
                     bot token, which also lets latch update a request's messages once it is \
                     decided)"
                        .to_owned()
                } else {
                    format!(
                        "a {kind} channel needs `url_env` or `url_file` (where its webhook URL is \
                         found; the URL is a secret, never written in the config)"
                    )
                };
                self.missing(entry, raw, message);
                Err(Reported)
            }
        }
    }

    /// A Slack channel: an incoming webhook (`url_env`, `url_file`) or a bot token
    /// (`bot_token_env`, `bot_token_file`, `channel_id`, `api_base`), not both.
    fn slack_channel(
        &mut self,
        entry: &Entry<RawChannel>,
        raw: &RawChannel,
    ) -> Result<ChannelKind, Reported> {
        let bot_keys = [
            ("bot_token_env", &raw.bot_token_env),
            ("bot_token_file", &raw.bot_token_file),
            ("channel_id", &raw.channel_id),
            ("api_base", &raw.api_base),
        ];
        let first_bot_key = bot_keys
            .iter()
            .find_map(|(key, value)| value.as_ref().map(|value| (*key, value.span())));
        let bot = first_bot_key.is_some() || raw.inline_bot_token;
        if !bot {
            let url = self.channel_url_secret(entry, raw, "slack")?;
            return Ok(ChannelKind::Slack { url });
        }
        if raw.url_env.is_some() || raw.url_file.is_some() {
            let message = "a slack channel posts through an incoming webhook (`url_env` or \
                           `url_file`) or with a bot token (`bot_token_env` or `bot_token_file`, \
                           with `channel_id`), not both (expected the keys of one of them)";
            match first_bot_key {
                Some((key, span)) => {
                    self.diagnostics
                        .report(Some(span), key_path(&entry.path, key), message)
                }
                None => self.missing(entry, raw, message.to_owned()),
            }
            return Err(Reported);
        }
        let token = self.secret(
            &raw.bot_token_env,
            &raw.bot_token_file,
            &entry.path,
            "bot_token",
            "expected one of them",
        );
        let token = match token {
            Ok(Some(token)) => Some(token),
            // An inline token was refused with a message saying what to write instead.
            Ok(None) if raw.inline_bot_token => None,
            Ok(None) => {
                self.missing(
                    entry,
                    raw,
                    "a slack channel with a `channel_id` needs `bot_token_env` or \
                     `bot_token_file` (where its bot token is found; the token is a secret, never \
                     written in the config)"
                        .to_owned(),
                );
                None
            }
            Err(Reported) => None,
        };
        let channel_id = match &raw.channel_id {
            None => {
                self.missing(
                    entry,
                    raw,
                    "a slack channel with a bot token needs `channel_id` (Slack's id of the \
                     channel to post to, e.g. `C0123ABCD`)"
                        .to_owned(),
                );
                None
            }
            Some(id) if !is_slack_channel_id(id.get_ref()) => {
                self.report(
                    id,
                    &key_path(&entry.path, "channel_id"),
                    format!(
                        "invalid Slack channel id `{}` (expected `C`, `G` or `D` followed by \
                         uppercase letters and digits, e.g. `C0123ABCD`: the id at the bottom of \
                         the channel's details in Slack, not its name)",
                        id.get_ref()
                    ),
                );
                None
            }
            Some(id) => Some(id.get_ref().clone()),
        };
        let api_base = match &raw.api_base {
            None => Some(crate::DEFAULT_SLACK_API_BASE.to_owned()),
            Some(url) if is_http_url(url.get_ref()) => {
                let text = url.get_ref();
                Some(text.strip_suffix('/').unwrap_or(text).to_owned())
            }
            Some(url) => {
                self.report(
                    url,
                    &key_path(&entry.path, "api_base"),
                    format!(
                        "invalid URL `{}` (expected Slack's Web API starting with `https://` or \
                         `http://`; leave it out for `{}`, and set it only for tests or a proxy)",
                        url.get_ref(),
                        crate::DEFAULT_SLACK_API_BASE
                    ),
                );
                None
            }
        };
        match (token, channel_id, api_base) {
            (Some(token), Some(channel_id), Some(api_base)) => Ok(ChannelKind::SlackBot {
                token,
                channel_id,
                api_base,
            }),
            _ => Err(Reported),
        }
    }

    /// A webhook's `url`, `url_env` or `url_file`: exactly one.
    fn webhook_url(
        &mut self,
        entry: &Entry<RawChannel>,
        raw: &RawChannel,
    ) -> Result<UrlRef, Reported> {
        let secret = self.secret(
            &raw.url_env,
            &raw.url_file,
            &entry.path,
            "url",
            "expected one of `url`, `url_env` or `url_file`",
        )?;
        match (&raw.url, secret) {
            (Some(_), Some(_)) => {
                let (key, span) = match (&raw.url_env, &raw.url_file) {
                    (Some(var), _) => ("url_env", var.span()),
                    (None, Some(file)) => ("url_file", file.span()),
                    (None, None) => return Err(Reported),
                };
                self.diagnostics.report(
                    Some(span),
                    key_path(&entry.path, key),
                    format!(
                        "`url` and `{key}` are mutually exclusive (expected one of `url`, \
                         `url_env` or `url_file`)"
                    ),
                );
                Err(Reported)
            }
            (Some(url), None) => {
                if is_http_url(url.get_ref()) {
                    Ok(UrlRef::Plain(url.get_ref().clone()))
                } else {
                    self.report(
                        url,
                        &key_path(&entry.path, "url"),
                        "invalid URL (expected one starting with `https://` or `http://`, e.g. \
                         `https://hooks.example.com/latch`)",
                    );
                    Err(Reported)
                }
            }
            (None, Some(secret)) => Ok(UrlRef::Secret(secret)),
            (None, None) => {
                self.missing(
                    entry,
                    raw,
                    "a webhook channel needs `url`, `url_env` or `url_file` (where its requests \
                     are sent)"
                        .to_owned(),
                );
                Err(Reported)
            }
        }
    }

    /// An email channel's `to`: required, not empty, each an address.
    fn email_to(
        &mut self,
        entry: &Entry<RawChannel>,
        raw: &RawChannel,
    ) -> Result<Vec<String>, Reported> {
        let Some(to) = &raw.to else {
            self.missing(
                entry,
                raw,
                "an email channel needs `to` (expected a list of addresses, e.g. \
                 `to = [\"security@example.com\"]`)"
                    .to_owned(),
            );
            return Err(Reported);
        };
        let key = key_path(&entry.path, "to");
        if to.get_ref().is_empty() {
            self.report(
                to,
                &key,
                "expected at least one address, e.g. `to = [\"security@example.com\"]`",
            );
            return Err(Reported);
        }
        let mut ok = true;
        for address in to.get_ref() {
            if !is_email(address.get_ref()) {
                ok = false;
                self.report(
                    address,
                    &key,
                    format!(
                        "invalid email address `{}` (expected one like `alice@example.com`)",
                        address.get_ref()
                    ),
                );
            }
        }
        if !ok {
            return Err(Reported);
        }
        Ok(to
            .get_ref()
            .iter()
            .map(|address| address.get_ref().clone())
            .collect())
    }

    fn route(
        &mut self,
        entry: &Entry<RawRoute>,
        names: &Names,
        channels: &BTreeSet<String>,
    ) -> Option<RouteSettings> {
        let raw = entry.raw.as_ref()?;
        let key = |name: &str| key_path(&entry.path, name);
        let events = self.list(&raw.events, &key("events"), "event pattern", "every event");
        for pattern in events {
            if !is_event_pattern(pattern.get_ref()) {
                self.report(
                    pattern,
                    &key("events"),
                    format!(
                        "invalid event pattern `{}` (expected an event type such as \
                         `request.created` or `finding.opened`, `*` standing for any run of \
                         characters, e.g. `request.*`)",
                        pattern.get_ref()
                    ),
                );
            }
        }
        if let Some(severity) = &raw.min_severity
            && !SEVERITIES.contains(&severity.get_ref().as_str())
        {
            self.report(
                severity,
                &key("min_severity"),
                format!(
                    "unknown severity `{}` (expected `info`, `warning`, `high` or `critical`)",
                    severity.get_ref()
                ),
            );
        }
        let resources = self.list(
            &raw.resources,
            &key("resources"),
            "resource pattern",
            "any resource",
        );
        for pattern in resources {
            let text = pattern.get_ref();
            if !is_resource_pattern(text) {
                self.report(
                    pattern,
                    &key("resources"),
                    format!(
                        "invalid resource pattern `{text}` (expected a resource name, `*` \
                         standing for any run of characters, e.g. `payments-*`)"
                    ),
                );
            } else if !text.contains('*') && !names.resources.contains(text) {
                // A pattern may match no resource yet; a plain name is a reference.
                self.report(
                    pattern,
                    &key("resources"),
                    format!(
                        "unknown resource `{text}` ({})",
                        listed("resources", &names.resources)
                    ),
                );
            }
        }
        let teams = self.list(&raw.teams, &key("teams"), "team", "no team filter");
        for team in teams {
            names.team(self, team, &key("teams"));
        }
        if !channels.contains(raw.channel.get_ref()) {
            self.report(
                &raw.channel,
                &key("channel"),
                format!(
                    "unknown channel `{}` ({})",
                    raw.channel.get_ref(),
                    listed("channels", channels)
                ),
            );
        }
        let strings = |list: &RawList| -> Vec<String> {
            list.as_ref()
                .map(|list| {
                    list.get_ref()
                        .iter()
                        .map(|item| item.get_ref().clone())
                        .collect()
                })
                .unwrap_or_default()
        };
        Some(RouteSettings {
            events: strings(&raw.events),
            min_severity: raw
                .min_severity
                .as_ref()
                .map(|severity| severity.get_ref().clone()),
            resources: strings(&raw.resources),
            teams: strings(&raw.teams),
            channel: raw.channel.get_ref().clone(),
        })
    }

    /// The items of an optional list; an empty one is refused, since it would mean the same as
    /// no list (`without`) while reading like "none".
    fn list<'l>(
        &mut self,
        list: &'l RawList,
        key: &str,
        what: &str,
        without: &str,
    ) -> &'l [Spanned<String>] {
        let Some(list) = list else { return &[] };
        if list.get_ref().is_empty() {
            let name = key.rsplit('.').next().unwrap_or(key);
            self.report(
                list,
                key,
                format!("expected at least one {what} (leave `{name}` out for {without})"),
            );
        }
        list.get_ref()
    }
}

/// `U` or `W`, then uppercase ASCII letters and digits: Slack's user (member) ids.
fn is_slack_user_id(id: &str) -> bool {
    id.strip_prefix(['U', 'W']).is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .chars()
                .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit())
    })
}

/// `C` (public), `G` (private) or `D` (direct message), then uppercase ASCII letters and
/// digits: Slack's conversation ids.
fn is_slack_channel_id(id: &str) -> bool {
    id.strip_prefix(['C', 'G', 'D']).is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .chars()
                .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit())
    })
}

/// `http://` or `https://`, a host, and no whitespace.
fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !url.chars().any(|ch| ch.is_whitespace() || ch.is_control())
    })
}

/// Event types are lowercase words joined by `.`; `*` stands for any run of characters.
fn is_event_pattern(pattern: &str) -> bool {
    !pattern.is_empty()
        && pattern.chars().all(|ch| {
            ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '*')
        })
}

/// Resource names, with `*` standing for any run of characters.
fn is_resource_pattern(pattern: &str) -> bool {
    !pattern.is_empty()
        && pattern.len() <= 63
        && pattern.chars().all(|ch| {
            ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '_' | '-' | '*')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_user_ids_start_with_u_or_w() {
        for good in ["U012AB3CD", "W0G9QF9C6", "U1"] {
            assert!(is_slack_user_id(good), "{good}");
        }
        for bad in [
            "",
            "U",
            "u012AB3CD",
            "C012AB3CD",
            "U012ab3cd",
            "U012 AB",
            "@alice",
        ] {
            assert!(!is_slack_user_id(bad), "{bad}");
        }
    }

    #[test]
    fn slack_channel_ids_start_with_c_g_or_d() {
        for good in ["C0123ABCD", "G01ABC", "D024BE91L"] {
            assert!(is_slack_channel_id(good), "{good}");
        }
        for bad in [
            "",
            "C",
            "#general",
            "general",
            "c0123abcd",
            "U012AB3CD",
            "C01 23",
        ] {
            assert!(!is_slack_channel_id(bad), "{bad}");
        }
    }

    #[test]
    fn urls_are_http_or_https_with_a_host() {
        for good in [
            "https://latch.example.com",
            "http://127.0.0.1:7070/",
            "https://hooks.slack.com/services/T0/B0/x?y=1",
        ] {
            assert!(is_http_url(good), "{good}");
        }
        for bad in [
            "",
            "latch.example.com",
            "https://",
            "https:///path",
            "ftp://example.com",
            "https://exa mple.com",
            "HTTPS://example.com",
        ] {
            assert!(!is_http_url(bad), "{bad}");
        }
    }

    #[test]
    fn patterns_are_names_with_stars() {
        for good in [
            "*",
            "request.*",
            "finding.opened",
            "session.statement_outcome",
        ] {
            assert!(is_event_pattern(good), "{good}");
        }
        for bad in ["", "Request.*", "request created", "request.?"] {
            assert!(!is_event_pattern(bad), "{bad}");
        }
        for good in ["*", "payments-*", "*-db", "ledger"] {
            assert!(is_resource_pattern(good), "{good}");
        }
        for bad in ["", "Payments", "payments.db", "a b"] {
            assert!(!is_resource_pattern(bad), "{bad}");
        }
    }
}
