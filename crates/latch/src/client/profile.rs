//! The profile `latch login` saves: a server and a token, in
//! `$XDG_CONFIG_HOME/latch/profile.toml` (else `~/.config/latch/profile.toml`), readable by its
//! owner only.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::exit::Failed;

/// No `Debug`: it holds a secret.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub server: String,
    pub token: String,
}

const HEADER: &str = "# Written by `latch login`; `latch logout` removes it. It holds an API token: keep it private.\n";

pub fn default_path() -> Option<PathBuf> {
    path_from(
        std::env::var_os("XDG_CONFIG_HOME"),
        std::env::var_os("HOME"),
    )
}

/// The XDG base directory rule: `XDG_CONFIG_HOME` if set to an absolute path, else
/// `$HOME/.config`.
fn path_from(xdg_config_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let config_home = xdg_config_home
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| {
            home.filter(|home| !home.is_empty())
                .map(|home| PathBuf::from(home).join(".config"))
        })?;
    Some(config_home.join("latch").join("profile.toml"))
}

/// The saved profile, or `None` when there is none.
pub fn load(path: &Path) -> anyhow::Result<Option<Profile>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(Failed(format!("cannot read profile `{}`: {err}", path.display())).into());
        }
    };
    warn_if_shared(path);
    // Only the parser's message, not its excerpt of the file: the excerpt could be the token.
    let profile = toml::from_str(&text).map_err(|err| {
        Failed(format!(
            "profile `{}` is malformed: {}: run `latch login` again or delete it",
            path.display(),
            err.message().trim_end()
        ))
    })?;
    Ok(Some(profile))
}

#[cfg(unix)]
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "warning: profile `{}` holds a token and others can read it: run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_path: &Path) {}

/// Writes the profile readable by its owner only (mode 0600, directory 0700), replacing any
/// previous one atomically.
pub fn save(path: &Path, profile: &Profile) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .with_context(|| format!("profile path `{}` has no directory", path.display()))?;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("cannot create directory `{}`", dir.display()))?;
    let text = format!("{HEADER}{}", toml::to_string(profile)?);
    let temp = dir.join(format!(".profile.toml.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    let renamed = written.and_then(|()| std::fs::rename(&temp, path));
    if let Err(err) = renamed {
        let _ = std::fs::remove_file(&temp);
        return Err(err).with_context(|| format!("cannot write profile `{}`", path.display()));
    }
    Ok(())
}

/// Removes the profile; `false` if there was none.
pub fn remove(path: &Path) -> anyhow::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err).with_context(|| format!("cannot remove profile `{}`", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdg_config_home_first_then_home() {
        let path = |xdg: Option<&str>, home: Option<&str>| {
            path_from(xdg.map(OsString::from), home.map(OsString::from))
        };
        assert_eq!(
            path(Some("/x"), Some("/home/a")),
            Some(PathBuf::from("/x/latch/profile.toml"))
        );
        assert_eq!(
            path(None, Some("/home/a")),
            Some(PathBuf::from("/home/a/.config/latch/profile.toml"))
        );
        // The XDG spec: a relative XDG_CONFIG_HOME is ignored.
        assert_eq!(
            path(Some("rel"), Some("/home/a")),
            Some(PathBuf::from("/home/a/.config/latch/profile.toml"))
        );
        assert_eq!(path(None, None), None);
    }

    #[test]
    fn saves_privately_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latch").join("profile.toml");
        assert!(load(&path).unwrap().is_none());
        let profile = Profile {
            server: "http://127.0.0.1:7070".into(),
            token: "latch_abc".into(),
        };
        save(&path, &profile).unwrap();
        save(&path, &profile).unwrap();
        let loaded = load(&path).unwrap().unwrap();
        assert_eq!(
            (loaded.server.as_str(), loaded.token.as_str()),
            ("http://127.0.0.1:7070", "latch_abc")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(remove(&path).unwrap());
        assert!(!remove(&path).unwrap());
    }

    #[test]
    fn a_malformed_profile_is_reported_without_its_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.toml");
        std::fs::write(&path, "server = \"http://h:1\"\ntoken = latch_secret\n").unwrap();
        let message = match load(&path) {
            Ok(_) => String::new(),
            Err(err) => err.to_string(),
        };
        assert!(message.contains("is malformed"), "{message}");
        assert!(!message.contains("latch_secret"), "{message}");
    }
}
