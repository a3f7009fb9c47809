//! Where a secret comes from: an upstream password, a Slack or Teams webhook URL, a webhook's
//! signing key. The config names an environment variable or a file and never holds the secret
//! itself; the secret is read only when it is needed.

use std::path::PathBuf;

/// Where to find a secret: named in the config, read at use time by [`SecretRef::resolve`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretRef {
    /// `*_env` (`password_env`, `url_env`, …): the name of an environment variable holding the
    /// secret.
    Env(String),
    /// `*_file` (`password_file`, `url_file`, …): a file holding the secret (relative paths are
    /// already resolved against the config file's directory). One trailing newline is not part
    /// of the secret.
    File(PathBuf),
    /// Neither key: for a role, the upstream authenticates the user without a password (trust
    /// auth). Never the value of a key the config requires (a channel's URL or secret).
    None,
}

/// A URL that may be written in the config or be a secret: a webhook channel's `url`, or its
/// `url_env` / `url_file`.
#[derive(Clone, PartialEq, Eq)]
pub enum UrlRef {
    /// `url`: written in the config, checked to be an `http://` or `https://` URL.
    Plain(String),
    /// `url_env` or `url_file`: read at use time; never [`SecretRef::None`].
    Secret(SecretRef),
}

impl UrlRef {
    /// The URL: as written, or read now from its variable or file.
    pub fn resolve(&self) -> Result<String, SecretError> {
        match self {
            Self::Plain(url) => Ok(url.clone()),
            Self::Secret(secret) => secret.resolve_required(),
        }
    }
}

impl std::fmt::Debug for UrlRef {
    /// A plain URL may still carry a token in its path or query: only its scheme and host are
    /// shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Plain(url) => {
                let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
                let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
                write!(f, "Plain(\"{scheme}://{host}/…\")")
            }
            Self::Secret(secret) => f.debug_tuple("Secret").field(secret).finish(),
        }
    }
}

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable `{name}` is not set (it should hold the secret)")]
    EnvMissing { name: String },
    #[error("environment variable `{name}` is not valid unicode (expected a secret in UTF-8)")]
    EnvNotUnicode { name: String },
    /// [`SecretRef::None`] where a secret is required; the config never produces this.
    #[error("no secret is configured (expected a `*_env` or `*_file` key)")]
    NotConfigured,
    #[error("cannot read secret file `{}`: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SecretRef {
    /// Reads the secret now: `Ok(None)` for [`SecretRef::None`].
    pub fn resolve(&self) -> Result<Option<String>, SecretError> {
        match self {
            Self::Env(name) => match std::env::var(name) {
                Ok(value) => Ok(Some(value)),
                Err(std::env::VarError::NotPresent) => {
                    Err(SecretError::EnvMissing { name: name.clone() })
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    Err(SecretError::EnvNotUnicode { name: name.clone() })
                }
            },
            Self::File(path) => match std::fs::read_to_string(path) {
                Ok(mut value) => {
                    // Files written by `echo` or secret managers end with a newline.
                    if value.ends_with('\n') {
                        value.pop();
                        if value.ends_with('\r') {
                            value.pop();
                        }
                    }
                    Ok(Some(value))
                }
                Err(source) => Err(SecretError::File {
                    path: path.clone(),
                    source,
                }),
            },
            Self::None => Ok(None),
        }
    }

    /// Reads a secret that must exist, such as a channel's URL: [`SecretRef::None`] is an error.
    pub fn resolve_required(&self) -> Result<String, SecretError> {
        self.resolve()?.ok_or(SecretError::NotConfigured)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_is_no_password() {
        assert_eq!(SecretRef::None.resolve().unwrap(), None);
    }

    #[test]
    fn env_reads_the_variable_at_use_time() {
        // Cargo sets this for every test run; tests cannot set variables (`set_var` is unsafe).
        let secret = SecretRef::Env("CARGO_PKG_NAME".to_owned());
        assert_eq!(secret.resolve().unwrap().as_deref(), Some("latch-config"));
    }

    #[test]
    fn a_missing_variable_is_named() {
        let secret = SecretRef::Env("LATCH_CONFIG_TEST_NEVER_SET".to_owned());
        assert_eq!(
            secret.resolve().unwrap_err().to_string(),
            "environment variable `LATCH_CONFIG_TEST_NEVER_SET` is not set (it should hold the \
             secret)"
        );
        assert_eq!(
            SecretRef::None.resolve_required().unwrap_err().to_string(),
            "no secret is configured (expected a `*_env` or `*_file` key)"
        );
    }

    #[test]
    fn file_drops_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "s3cret \n").unwrap();
        let value = SecretRef::File(path).resolve().unwrap();
        assert_eq!(value.as_deref(), Some("s3cret "));
    }

    #[test]
    fn a_missing_file_is_named() {
        let error = SecretRef::File(PathBuf::from("/nonexistent/latch/password"))
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("cannot read secret file `/nonexistent/latch/password`: "),
            "{error}"
        );
    }

    #[test]
    fn a_url_is_plain_or_a_secret_and_debug_hides_its_path() {
        let plain = UrlRef::Plain("https://hooks.example.com/T0/B0/token?x=1".to_owned());
        assert_eq!(
            plain.resolve().unwrap(),
            "https://hooks.example.com/T0/B0/token?x=1"
        );
        assert_eq!(
            format!("{plain:?}"),
            r#"Plain("https://hooks.example.com/…")"#
        );
        let secret = UrlRef::Secret(SecretRef::Env("CARGO_PKG_NAME".to_owned()));
        assert_eq!(secret.resolve().unwrap(), "latch-config");
        assert_eq!(format!("{secret:?}"), r#"Secret(Env("CARGO_PKG_NAME"))"#);
    }
}
