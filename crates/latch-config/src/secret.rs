//! Where an upstream password comes from. The config names an environment variable or a file and
//! never holds the secret itself; the secret is read only when the gateway needs it.

use std::path::PathBuf;

/// Where to find a password: named in the config, read at use time by [`SecretRef::resolve`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretRef {
    /// `password_env`: the name of an environment variable holding the password.
    Env(String),
    /// `password_file`: a file holding the password (relative paths are already resolved against
    /// the config file's directory). One trailing newline is not part of the password.
    File(PathBuf),
    /// Neither key: the upstream authenticates this user without a password (trust auth).
    None,
}

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable `{name}` is not set (it should hold the upstream password)")]
    EnvMissing { name: String },
    #[error("environment variable `{name}` is not valid unicode (expected a password in UTF-8)")]
    EnvNotUnicode { name: String },
    #[error("cannot read password file `{}`: {source}", path.display())]
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
             upstream password)"
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
            error.starts_with("cannot read password file `/nonexistent/latch/password`: "),
            "{error}"
        );
    }
}
