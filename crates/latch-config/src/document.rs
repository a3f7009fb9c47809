//! From TOML text to raw tables: the syntax is parsed once, then the server table and each team,
//! user, resource, role, notification channel and route table are decoded on their own, so that
//! one bad table does not hide the problems of the others.

use std::cmp::Reverse;
use std::ops::Range;

use serde::de::{DeserializeOwned, IntoDeserializer};
use toml_edit::{ImDocument, Item, Key, TableLike};

use crate::error::Diagnostics;
use crate::raw::{
    RawAudit, RawChannel, RawGateway, RawLedger, RawNotify, RawPolicy, RawResource, RawRole,
    RawRoute, RawServer, RawTeam, RawUser,
};

/// The top-level tables a config may have.
const SECTIONS: &str = "`server`, `ledger`, `policy`, `gateway`, `notify`, `audit`, `export`, \
     `reviews`, `teams`, `users`, `resources`";

/// A named table under a section, such as `[users.alice]`.
pub(crate) struct Entry<T> {
    /// The key under the section: `alice` in `[users.alice]`.
    pub name: String,
    /// Where the name is written, for problems about the name or the whole table.
    pub span: Option<Range<usize>>,
    /// Dotted key path, e.g. `users.alice`, prefixed to problems found inside.
    pub path: String,
    /// `None` when the table could not be decoded; its problem is already reported.
    pub raw: Option<T>,
}

/// A resource with its roles, decoded separately from it.
pub(crate) struct ResourceEntry {
    pub entry: Entry<RawResource>,
    /// No `roles` key, or an empty table: refused, pointing at the resource.
    pub no_roles: bool,
    pub roles: Vec<Entry<RawRole>>,
}

/// `[notify]` with its channels and routes, each decoded on its own.
pub(crate) struct NotifyEntry {
    /// `None` when the table could not be decoded; its problem is already reported.
    pub raw: Option<RawNotify>,
    /// Each `[[notify.channels]]`: `name` is the table's `name` when it is a string (so that a
    /// channel that failed to decode still counts as defined), `path` is
    /// `notify.channels[INDEX]`.
    pub channels: Vec<Entry<RawChannel>>,
    /// Each `[[notify.routes]]`, `path` being `notify.routes[INDEX]` and `name` empty.
    pub routes: Vec<Entry<RawRoute>>,
}

/// The whole file, decoded as far as its types allow.
#[derive(Default)]
pub(crate) struct RawConfig {
    /// Defaults when `[server]` is absent (or could not be decoded, which is already reported).
    pub server: RawServer,
    /// Defaults when `[ledger]` is absent.
    pub ledger: RawLedger,
    /// Defaults when `[policy]` is absent.
    pub policy: RawPolicy,
    pub audit: RawAudit,
    /// `None` when `[export]` is absent (no live sink).
    pub export: Option<crate::raw::RawExport>,
    /// `None` when `[reviews]` is absent (no scheduled reviews).
    pub reviews: Option<crate::raw::RawReviews>,
    /// Where `reviews` is written, for problems about the whole table.
    pub reviews_span: Option<Range<usize>>,
    /// `None` when `[gateway]` is absent (the gateway is off) or could not be decoded.
    pub gateway: Option<RawGateway>,
    /// `None` when `[notify]` is absent (nothing is sent).
    pub notify: Option<NotifyEntry>,
    pub teams: Vec<Entry<RawTeam>>,
    pub users: Vec<Entry<RawUser>>,
    pub resources: Vec<ResourceEntry>,
    /// Where `users` is first written, for the "no admin" problem.
    pub users_span: Option<Range<usize>>,
}

/// Parses `text`, reporting syntax and type problems; `None` when the syntax itself is broken
/// (nothing more can be checked then).
pub(crate) fn read(text: &str, diagnostics: &mut Diagnostics<'_>) -> Option<RawConfig> {
    let doc = match text.parse::<ImDocument<String>>() {
        Ok(doc) => doc,
        Err(error) => {
            diagnostics.report(error.span(), "", error.message());
            return None;
        }
    };
    let mut decoder = Decoder {
        index: KeyIndex::new(doc.as_table()),
        diagnostics,
    };
    let root = doc.as_table();
    let mut raw = RawConfig::default();
    for (name, item) in root.iter() {
        let span = root.key(name).and_then(Key::span);
        match name {
            "server" => {
                raw.server = decoder
                    .decode(item.clone(), "server", span)
                    .unwrap_or_default();
            }
            "ledger" => {
                raw.ledger = decoder
                    .decode(item.clone(), "ledger", span)
                    .unwrap_or_default();
            }
            "policy" => {
                raw.policy = decoder
                    .decode(item.clone(), "policy", span)
                    .unwrap_or_default();
            }
            "gateway" => raw.gateway = decoder.decode(item.clone(), "gateway", span),
            "audit" => {
                raw.audit = decoder
                    .decode(item.clone(), "audit", span)
                    .unwrap_or_default();
            }
            "notify" => raw.notify = Some(decoder.notify(item, span)),
            "export" => raw.export = decoder.decode(item.clone(), "export", span),
            "reviews" => {
                raw.reviews_span = span.clone();
                raw.reviews = decoder.decode(item.clone(), "reviews", span);
            }
            "teams" => raw.teams = decoder.section(item, "teams", span),
            "users" => {
                raw.users_span = span.clone();
                raw.users = decoder.section(item, "users", span);
            }
            "resources" => raw.resources = decoder.resources(item, span),
            other => decoder.diagnostics.report(
                span,
                key_path("", other),
                format!("unknown key `{other}`, expected one of {SECTIONS}"),
            ),
        }
    }
    Some(raw)
}

struct Decoder<'d, 'a> {
    index: KeyIndex,
    diagnostics: &'d mut Diagnostics<'a>,
}

impl Decoder<'_, '_> {
    /// The tables under a section such as `[users]`, each decoded on its own.
    fn section<T: DeserializeOwned>(
        &mut self,
        item: &Item,
        path: &str,
        span: Option<Range<usize>>,
    ) -> Vec<Entry<T>> {
        self.named_tables(item, path, span)
            .into_iter()
            .map(|(name, span, path, item)| {
                let raw = self.decode(item, &path, span.clone());
                Entry {
                    name,
                    span,
                    path,
                    raw,
                }
            })
            .collect()
    }

    fn resources(&mut self, item: &Item, span: Option<Range<usize>>) -> Vec<ResourceEntry> {
        self.named_tables(item, "resources", span)
            .into_iter()
            .map(|(name, span, path, item)| {
                let roles_item = item.as_table_like().and_then(|table| {
                    let key_span = table.key("roles").and_then(Key::span);
                    table.get("roles").map(|roles| (roles.clone(), key_span))
                });
                // A `roles` that is not a table is reported as such, not also as empty.
                let no_roles = roles_item.as_ref().is_none_or(|(roles, _)| {
                    roles.as_table_like().is_some_and(|roles| roles.is_empty())
                });
                let roles = match roles_item {
                    Some((roles, key_span)) => {
                        let roles_path = key_path(&path, "roles");
                        self.named_tables(&roles, &roles_path, key_span)
                            .into_iter()
                            .map(|(name, span, path, item)| self.role(name, span, path, item))
                            .collect()
                    }
                    None => Vec::new(),
                };
                let raw = self.decode(item, &path, span.clone());
                ResourceEntry {
                    entry: Entry {
                        name,
                        span,
                        path,
                        raw,
                    },
                    no_roles,
                    roles,
                }
            })
            .collect()
    }

    /// A role table; an inline `password` is refused here, before serde could echo it.
    fn role(
        &mut self,
        name: String,
        span: Option<Range<usize>>,
        path: String,
        mut item: Item,
    ) -> Entry<RawRole> {
        self.refuse_inline_secret(&mut item, &path, "password", "the password");
        let raw = self.decode(item, &path, span.clone());
        Entry {
            name,
            span,
            path,
            raw,
        }
    }

    /// `[notify]`: its own keys, then each channel and route on its own.
    fn notify(&mut self, item: &Item, span: Option<Range<usize>>) -> NotifyEntry {
        let mut settings = item.clone();
        self.refuse_inline_secret(
            &mut settings,
            "notify",
            "slack_signing_secret",
            "Slack's signing secret",
        );
        self.refuse_inline_secret(
            &mut settings,
            "notify",
            "smtp_password",
            "the SMTP relay's password",
        );
        let raw = self.decode(settings, "notify", span);
        let table = item.as_table_like();
        let mut part = |key: &str| {
            let found = table.and_then(|table| {
                let key_span = table.key(key).and_then(Key::span);
                table.get(key).map(|item| (item.clone(), key_span))
            });
            match found {
                Some((item, key_span)) => {
                    self.array_of_tables(&item, &key_path("notify", key), key_span)
                }
                None => Vec::new(),
            }
        };
        let channels = part("channels");
        let routes = part("routes");
        let channels = channels
            .into_iter()
            .map(|(span, path, mut item)| {
                let name = item
                    .get("name")
                    .and_then(Item::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let inline_secret = self.refuse_inline_secret(
                    &mut item,
                    &path,
                    "secret",
                    "the webhook's signing key",
                );
                let inline_bot_token =
                    self.refuse_inline_secret(&mut item, &path, "bot_token", "the Slack bot token");
                let raw = self
                    .decode(item, &path, span.clone())
                    .map(|raw| RawChannel {
                        inline_secret,
                        inline_bot_token,
                        ..raw
                    });
                Entry {
                    name,
                    span,
                    path,
                    raw,
                }
            })
            .collect();
        let routes = routes
            .into_iter()
            .map(|(span, path, item)| {
                let raw = self.decode(item, &path, span.clone());
                Entry {
                    name: String::new(),
                    span,
                    path,
                    raw,
                }
            })
            .collect();
        NotifyEntry {
            raw,
            channels,
            routes,
        }
    }

    /// Refuses and removes an inline `key` from a table before serde could echo its value; the
    /// config says where a secret is (`KEY_env`, `KEY_file`), never what it is. `true` when
    /// there was one.
    fn refuse_inline_secret(&mut self, item: &mut Item, path: &str, key: &str, what: &str) -> bool {
        let Some(table) = item.as_table_like_mut() else {
            return false;
        };
        let span = table.key(key).and_then(Key::span);
        let found = table.remove(key).is_some();
        if found {
            self.diagnostics.report(
                span,
                key_path(path, key),
                format!(
                    "secrets are never written inline in the config: use `{key}_env` (the name \
                     of an environment variable) or `{key}_file` (the path of a file) to say \
                     where {what} is"
                ),
            );
        }
        found
    }

    /// The tables of an array of tables (`[[notify.channels]]`, or an inline array of inline
    /// tables): `(span, path, table)`, the path ending in `[INDEX]`.
    fn array_of_tables(
        &mut self,
        item: &Item,
        path: &str,
        span: Option<Range<usize>>,
    ) -> Vec<(Option<Range<usize>>, String, Item)> {
        let items: Vec<Item> = if let Some(tables) = item.as_array_of_tables() {
            tables.iter().cloned().map(Item::Table).collect()
        } else if let Some(values) = item.as_array() {
            values.iter().cloned().map(Item::Value).collect()
        } else {
            self.diagnostics.report(
                item.span().or(span),
                path,
                format!(
                    "expected an array of tables, e.g. `[[{path}]]`, found {}",
                    with_article(item.type_name())
                ),
            );
            return Vec::new();
        };
        items
            .into_iter()
            .enumerate()
            .map(|(index, item)| (item.span(), format!("{path}[{index}]"), item))
            .collect()
    }

    /// The tables under `item`, which must itself be a table: `(name, span, path, table)`.
    fn named_tables(
        &mut self,
        item: &Item,
        path: &str,
        span: Option<Range<usize>>,
    ) -> Vec<(String, Option<Range<usize>>, String, Item)> {
        let Some(table) = item.as_table_like() else {
            self.diagnostics.report(
                item.span().or(span),
                path,
                format!(
                    "expected a table of named tables, e.g. `[{path}.NAME]`, found {}",
                    with_article(item.type_name())
                ),
            );
            return Vec::new();
        };
        table
            .iter()
            .map(|(name, item)| {
                let span = table.key(name).and_then(Key::span);
                (name.to_owned(), span, key_path(path, name), item.clone())
            })
            .collect()
    }

    /// Decodes one table; on failure reports serde's problem at its position and returns `None`.
    fn decode<T: DeserializeOwned>(
        &mut self,
        item: Item,
        path: &str,
        span: Option<Range<usize>>,
    ) -> Option<T> {
        if !item.is_table_like() {
            self.diagnostics.report(
                item.span().or(span),
                path,
                format!("expected a table, found {}", with_article(item.type_name())),
            );
            return None;
        }
        let value = item.into_value().ok()?;
        match T::deserialize(value.into_deserializer()) {
            Ok(raw) => Some(raw),
            Err(error) => {
                let span = error.span().or(span);
                let key = self.index.path_at(span.as_ref()).unwrap_or(path).to_owned();
                self.diagnostics
                    .report(span, key, serde_message(error.message()));
                None
            }
        }
    }
}

/// `an integer`, `a string`: how a problem names what it found.
fn with_article(type_name: &str) -> String {
    let article = if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {type_name}")
}

/// serde speaks of fields, sequences and maps; a TOML file has keys, arrays and tables.
fn serde_message(message: &str) -> String {
    let mut message = message.to_owned();
    for (from, to) in [
        ("unknown field", "unknown key"),
        ("missing field", "missing key"),
    ] {
        if let Some(rest) = message.strip_prefix(from) {
            message = format!("{to}{rest}");
        }
    }
    message
        .replace("expected a sequence", "expected an array")
        .replace("expected a map", "expected a table")
}

/// Every key and value position in the file with its dotted path, to name the key a parser error
/// points at.
struct KeyIndex {
    spans: Vec<(Range<usize>, String)>,
}

impl KeyIndex {
    fn new(root: &dyn TableLike) -> Self {
        let mut spans = Vec::new();
        collect(root, "", &mut spans);
        Self { spans }
    }

    /// The path of the innermost key or value at the start of `span`.
    fn path_at(&self, span: Option<&Range<usize>>) -> Option<&str> {
        let offset = span?.start;
        self.spans
            .iter()
            .filter(|(span, _)| span.start == offset || span.contains(&offset))
            .min_by_key(|(span, path)| (span.len(), Reverse(path.len())))
            .map(|(_, path)| path.as_str())
    }
}

fn collect(table: &dyn TableLike, prefix: &str, spans: &mut Vec<(Range<usize>, String)>) {
    for (name, item) in table.iter() {
        let path = key_path(prefix, name);
        if let Some(span) = table.key(name).and_then(Key::span) {
            spans.push((span, path.clone()));
        }
        if let Some(span) = item.span() {
            spans.push((span, path.clone()));
        }
        if let Some(inner) = item.as_table_like() {
            collect(inner, &path, spans);
        } else if let Some(tables) = item.as_array_of_tables() {
            for (index, inner) in tables.iter().enumerate() {
                let path = format!("{path}[{index}]");
                if let Some(span) = inner.span() {
                    spans.push((span, path.clone()));
                }
                collect(inner, &path, spans);
            }
        } else if let Some(values) = item.as_array() {
            for (index, value) in values.iter().enumerate() {
                if let Some(inner) = value.as_inline_table() {
                    let path = format!("{path}[{index}]");
                    if let Some(span) = inner.span() {
                        spans.push((span, path.clone()));
                    }
                    collect(inner, &path, spans);
                }
            }
        }
    }
}

/// `prefix.name`, quoting `name` as TOML would when it is not a bare key.
pub(crate) fn key_path(prefix: &str, name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
    let name = if bare {
        name.to_owned()
    } else {
        format!("{name:?}")
    };
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}.{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_quote_what_is_not_a_bare_key() {
        assert_eq!(key_path("", "users"), "users");
        assert_eq!(
            key_path("resources", "payments-db"),
            "resources.payments-db"
        );
        assert_eq!(key_path("users", "a.b"), "users.\"a.b\"");
        assert_eq!(key_path("users", ""), "users.\"\"");
    }

    #[test]
    fn the_innermost_key_names_a_position() {
        let text = "[users.alice]\nemail = 3\n";
        let doc: ImDocument<String> = text.parse().unwrap();
        let index = KeyIndex::new(doc.as_table());
        let at = |needle: &str| {
            let start = text.find(needle).unwrap();
            index.path_at(Some(&(start..start + needle.len())))
        };
        assert_eq!(at("3"), Some("users.alice.email"));
        assert_eq!(at("email"), Some("users.alice.email"));
        assert_eq!(at("alice"), Some("users.alice"));
        assert_eq!(index.path_at(None), None);
    }
}
