//! `latch evidence`: the SOC 2 / ISO 27001 evidence pack of a period, made offline from the
//! store the config names; and the pack side of `latch ledger verify --bundle`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use latch_core::time::{Clock, SystemClock};
use latch_evidence::{Period, PolicyFile};
use latch_ledger::VerifierKey;

use crate::exit::{Failed, Usage};

/// Which period: a named one or explicit bounds.
#[derive(Args, Debug)]
pub struct PeriodArgs {
    /// A quarter (`2026-Q3`), a month (`2026-07`) or a year (`2026`), in UTC.
    #[arg(long, conflicts_with_all = ["from", "to"], required_unless_present = "from")]
    period: Option<String>,
    /// From this date (`2026-07-01`, midnight UTC) or RFC 3339 time.
    #[arg(long, requires = "to")]
    from: Option<String>,
    /// Until this date or time, excluded.
    #[arg(long, requires = "from")]
    to: Option<String>,
}

impl PeriodArgs {
    pub fn period(&self) -> anyhow::Result<Period> {
        let parsed = match (&self.period, &self.from, &self.to) {
            (Some(period), _, _) => Period::parse(period),
            (None, Some(from), Some(to)) => Period::between(from, to),
            _ => {
                return Err(Usage(
                    "name the period: `--period 2026-Q3` or `--from … --to …`".into(),
                )
                .into());
            }
        };
        parsed.map_err(|err| Usage(err.to_string()).into())
    }
}

/// The config's policy files as they are now, paths as the policy engine records them.
pub fn policy_files(config: &latch_config::Config) -> anyhow::Result<Vec<PolicyFile>> {
    config
        .policy
        .files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read policy file `{}`", path.display()))?;
            Ok(PolicyFile {
                path: path.display().to_string(),
                text,
            })
        })
        .collect()
}

fn signing_key(config: &latch_config::Config) -> anyhow::Result<latch_ledger::SigningKey> {
    let path = &config.ledger.signing_key_file;
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the signing key `{}` (it is created by the first `latch serve`)",
            path.display()
        )
    })?;
    latch_ledger::SigningKey::parse(text.trim()).map_err(|err| {
        Failed(format!(
            "`{}` is not a latch signing key: {err}",
            path.display()
        ))
        .into()
    })
}

pub async fn evidence(config_path: &Path, period: &PeriodArgs, out: &Path) -> anyhow::Result<()> {
    let period = period.period()?;
    if out.exists()
        && std::fs::read_dir(out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(Failed(format!(
            "`{}` exists and is not empty: write the pack into a new directory",
            out.display()
        ))
        .into());
    }
    let config = latch_config::load(config_path).map_err(|err| Failed(err.to_string()))?;
    let key = signing_key(&config)?;
    let policy = policy_files(&config)?;
    let store: Arc<dyn latch_store::Store> =
        Arc::new(crate::admin::open_store(&config, latch_store::OpenMode::Existing).await?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now();
    // Only read: the ledger service is used for its proofs, never to sign.
    let ledger = latch_server::ledger::Ledger::new(store.clone(), key, clock);
    let pack = latch_server::review::make_pack(store.as_ref(), &ledger, &period, &policy, now)
        .await
        .map_err(|err| Failed(err.to_string()))?;
    latch_server::review::write_pack(out, &pack.files)
        .with_context(|| format!("cannot write the pack into `{}`", out.display()))?;
    println!(
        "evidence pack for {} ({} to {}) written to {}: {}, proved against the checkpoint of size {}",
        period.label,
        period.from,
        period.to,
        out.display(),
        pack.summary,
        pack.checkpoint_size
    );
    println!(
        "verify it offline: latch ledger verify --bundle {} --key '{}'",
        out.display(),
        ledger.verifier_key()
    );
    Ok(())
}

/// Whether `dir` is an evidence pack (rather than a ledger export).
pub fn is_pack(dir: &Path) -> bool {
    dir.join(latch_evidence::files::MANIFEST).is_file()
}

/// Every file under `dir`, by its `/`-separated path relative to `dir`.
fn read_tree(dir: &Path) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut pending: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current)
            .with_context(|| format!("cannot read `{}`", current.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path
                .strip_prefix(dir)
                .map(|p| {
                    p.components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/")
                })
                .unwrap_or_default();
            let bytes = std::fs::read(&path)
                .with_context(|| format!("cannot read `{}`", path.display()))?;
            out.insert(relative, bytes);
        }
    }
    Ok(out)
}

/// `latch ledger verify --bundle DIR` over an evidence pack.
pub fn verify_pack(dir: &Path, key: &VerifierKey) -> anyhow::Result<()> {
    let files = read_tree(dir)?;
    let checked = latch_evidence::verify(&files, key)
        .map_err(|err| Failed(format!("evidence pack verification failed: {err}")))?;
    println!("evidence pack ok: {}", dir.display());
    for line in checked {
        match line.strip_prefix("! ") {
            Some(warning) => println!("  ! {warning}"),
            None => println!("  - {line}"),
        }
    }
    Ok(())
}
