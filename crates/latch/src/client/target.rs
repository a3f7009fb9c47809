//! Which server to call, with which token. Each comes from its flag, else its environment
//! variable (clap merges those two), else the profile saved by `latch login`. Both are checked
//! here, once, so that the rest of the client holds only valid values.

use crate::client::GlobalOptions;
use crate::client::profile::{self, Profile};
use crate::exit::Usage;

/// A server URL and a token, both checked. No `Debug`: it holds a secret.
pub struct Target {
    /// Without a trailing `/`, so paths append with one.
    server: String,
    token: String,
}

const NO_SERVER: &str = "no latch server given: pass `--server URL`, set LATCH_SERVER, or save a profile with `latch login --server URL --token TOKEN`";
const NO_TOKEN: &str = "no token given: pass `--token TOKEN`, set LATCH_TOKEN, or save a profile with `latch login --server URL --token TOKEN` (an admin creates tokens with `latch admin token create`)";

impl Target {
    pub fn new(server: &str, token: &str) -> Result<Self, Usage> {
        Ok(Self {
            server: normalise_server(server)?,
            token: check_token(token)?.to_owned(),
        })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn to_profile(&self) -> Profile {
        Profile {
            server: self.server.clone(),
            token: self.token.clone(),
        }
    }
}

/// A flag or variable that is set and not blank.
pub fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|value| !value.is_empty())
}

pub fn resolve(options: &GlobalOptions) -> anyhow::Result<Target> {
    let server = given(options.server.as_deref());
    let token = given(options.token.as_deref());
    // The profile is read only when needed: a broken one does not get in the way of flags.
    let profile = match (server, token, profile::default_path()) {
        (Some(_), Some(_), _) | (_, _, None) => None,
        (_, _, Some(path)) => profile::load(&path)?,
    };
    Ok(choose(server, token, profile.as_ref())?)
}

/// Flag or environment first, then the profile. The profile's token goes only to the
/// profile's server: a token for one server is never sent to another.
fn choose(
    server: Option<&str>,
    token: Option<&str>,
    profile: Option<&Profile>,
) -> Result<Target, Usage> {
    let server = match (server, profile) {
        (Some(server), _) => normalise_server(server)?,
        (None, Some(profile)) => normalise_server(&profile.server)?,
        (None, None) => return Err(Usage(NO_SERVER.into())),
    };
    let token = match (token, profile) {
        (Some(token), _) => token,
        (None, Some(profile))
            if normalise_server(&profile.server).ok().as_ref() == Some(&server) =>
        {
            &profile.token
        }
        (None, Some(profile)) => {
            return Err(Usage(format!(
                "no token for `{server}`: the profile saved by `latch login` is for `{}`; pass `--token TOKEN` or set LATCH_TOKEN",
                profile.server
            )));
        }
        (None, None) => return Err(Usage(NO_TOKEN.into())),
    };
    Ok(Target {
        server,
        token: check_token(token)?.to_owned(),
    })
}

fn normalise_server(text: &str) -> Result<String, Usage> {
    let text = text.trim();
    let invalid = |problem: &str| {
        Usage(format!(
            "invalid server URL `{}`: {problem} (expected e.g. `http://127.0.0.1:7070`)",
            text.chars().take(200).collect::<String>()
        ))
    };
    let url = reqwest::Url::parse(text).map_err(|err| invalid(&err.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be `http` or `https`"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "it must not hold credentials: pass the token with `--token`",
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// A token goes into an HTTP header: printable ASCII only. The message never repeats it.
fn check_token(token: &str) -> Result<&str, Usage> {
    let token = token.trim();
    if !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(token)
    } else {
        Err(Usage(
            "the token is malformed: a latch token looks like `latch_…` (from `latch admin token create`)"
                .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(server: &str) -> Profile {
        Profile {
            server: server.to_owned(),
            token: "latch_profile".to_owned(),
        }
    }

    /// `(server, token)` chosen, or the usage message.
    fn check(
        server: Option<&str>,
        token: Option<&str>,
        profile: Option<&Profile>,
    ) -> Result<(String, String), String> {
        choose(server, token, profile)
            .map(|t| (t.server, t.token))
            .map_err(|err| err.0)
    }

    fn ok(server: &str, token: &str) -> Result<(String, String), String> {
        Ok((server.to_owned(), token.to_owned()))
    }

    #[test]
    fn flags_and_environment_come_before_the_profile() {
        let saved = profile("http://saved:7070");
        assert_eq!(
            check(Some("http://flag:1/"), Some("latch_flag"), Some(&saved)),
            ok("http://flag:1", "latch_flag")
        );
        assert_eq!(
            check(None, None, Some(&saved)),
            ok("http://saved:7070", "latch_profile")
        );
        assert_eq!(
            check(None, Some("latch_env"), Some(&saved)),
            ok("http://saved:7070", "latch_env")
        );
        assert_eq!(
            check(Some("http://saved:7070/"), None, Some(&saved)),
            ok("http://saved:7070", "latch_profile")
        );
    }

    #[test]
    fn the_profile_token_never_goes_to_another_server() {
        let saved = profile("http://saved:7070");
        assert_eq!(
            check(Some("http://other:7070"), None, Some(&saved)),
            Err("no token for `http://other:7070`: the profile saved by `latch login` is for `http://saved:7070`; pass `--token TOKEN` or set LATCH_TOKEN".to_owned())
        );
    }

    #[test]
    fn nothing_configured_says_how_to_configure() {
        assert_eq!(
            check(None, Some("latch_x"), None),
            Err(NO_SERVER.to_owned())
        );
        assert_eq!(
            check(Some("http://h:1"), None, None),
            Err(NO_TOKEN.to_owned())
        );
    }

    #[test]
    fn bad_urls_and_tokens_are_usage_errors_that_never_echo_the_token() {
        let err = |server: &str| check(Some(server), Some("latch_x"), None).unwrap_err();
        assert_eq!(
            err("127.0.0.1:7070"),
            "invalid server URL `127.0.0.1:7070`: relative URL without a base (expected e.g. `http://127.0.0.1:7070`)"
        );
        assert_eq!(
            err("localhost:7070"),
            "invalid server URL `localhost:7070`: the scheme must be `http` or `https` (expected e.g. `http://127.0.0.1:7070`)"
        );
        assert_eq!(
            err("http://u:p@h:1"),
            "invalid server URL `http://u:p@h:1`: it must not hold credentials: pass the token with `--token` (expected e.g. `http://127.0.0.1:7070`)"
        );
        let message = check(Some("http://h:1"), Some("latch_sec ret"), None).unwrap_err();
        assert!(!message.contains("sec"), "{message}");
    }
}
