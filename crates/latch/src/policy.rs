//! `latch policy …`: validate the Cedar policy set the config names, explain one decision, and
//! run a table of expected decisions. All offline: they read the config and the policy files.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use latch_core::AccessDuration;
use latch_core::time::{Clock, SystemClock};
use latch_policy::{Action, OrgFacts, PolicyEngine, Query};

use crate::exit::{Failed, Usage};

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Parse and validate the policy files against latch's schema; print every problem.
    Validate,
    /// Show how the policies decide one question: the decision, the determining policies and
    /// the requirements they set.
    Explain {
        #[arg(long)]
        principal: String,
        /// request, approve, self_approve, revoke, connect, view_audit or administer.
        #[arg(long)]
        action: String,
        #[arg(long)]
        resource: String,
        #[arg(long)]
        role: Option<String>,
        /// e.g. `30m` (default: the role's maximum).
        #[arg(long = "for", value_name = "DURATION")]
        duration: Option<String>,
        /// For approve and revoke: whose request (default: the principal).
        #[arg(long)]
        requester: Option<String>,
        #[arg(long)]
        ticket: Option<String>,
        /// The time to decide at, RFC 3339 (default: now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Run a table of expected decisions (TOML, see examples/quickstart/policies/tests.toml)
    /// and report failures like a test runner; exit 1 when any case fails.
    Test { file: PathBuf },
}

fn load(config_path: &Path) -> anyhow::Result<PolicyEngine> {
    let config = latch_config::load(config_path).map_err(|err| Failed(err.to_string()))?;
    engine(&config)?.ok_or_else(|| {
        Usage(format!(
            "`{}` names no policy files: add `[policy] files = [\"policies/default.cedar\"]`",
            config_path.display()
        ))
        .into()
    })
}

/// The policy engine the config names, or `None` when it names no policy files (the built-in
/// rule then applies).
pub fn engine(config: &latch_config::Config) -> anyhow::Result<Option<PolicyEngine>> {
    if config.policy.files.is_empty() {
        return Ok(None);
    }
    let mut files = Vec::new();
    for path in &config.policy.files {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read policy file `{}`", path.display()))?;
        files.push((path.clone(), text));
    }
    let facts = OrgFacts {
        on_call: config.policy.on_call.clone(),
        service_accounts: config.service_accounts.clone(),
        resources: config
            .resource_labels
            .iter()
            .map(|(name, labels)| {
                (
                    name.clone(),
                    latch_policy::ResourceLabels {
                        sensitivity: labels.sensitivity.clone(),
                        environment: labels.environment.clone(),
                        ticket_pattern: labels.ticket_pattern.clone(),
                    },
                )
            })
            .collect(),
    };
    PolicyEngine::load(&files, &config.catalog, &facts)
        .map(Some)
        .map_err(|err| Failed(err.to_string()).into())
}

fn parse_action(text: &str) -> anyhow::Result<Action> {
    Action::ALL
        .into_iter()
        .find(|a| a.as_str() == text)
        .ok_or_else(|| {
            let known: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
            Usage(format!(
                "unknown action `{text}` (actions: {})",
                known.join(", ")
            ))
            .into()
        })
}

pub fn run(config: Option<&Path>, command: PolicyCommand) -> anyhow::Result<()> {
    let config = config.ok_or_else(|| {
        Usage("`latch policy` needs the config: pass `--config FILE` or set LATCH_CONFIG".into())
    })?;
    let engine = load(config)?;
    match command {
        PolicyCommand::Validate => {
            println!(
                "policies ok: {} policies in {} files, hash {}",
                engine.policy_count(),
                engine.files().len(),
                engine.hash()
            );
            Ok(())
        }
        PolicyCommand::Explain {
            principal,
            action,
            resource,
            role,
            duration,
            requester,
            ticket,
            at,
        } => {
            let now = match at {
                Some(text) => latch_core::Timestamp::parse(&text).map_err(Usage)?,
                None => SystemClock.now(),
            };
            let mut query = Query::new(
                &principal,
                parse_action(&action)?,
                &resource,
                role.as_deref(),
                now,
            );
            query.duration = duration
                .map(|d| d.parse::<AccessDuration>())
                .transpose()
                .map_err(|err| Usage(err.to_string()))?;
            query.requester = requester;
            query.ticket = ticket;
            print!("{}", engine.explain(&query));
            Ok(())
        }
        PolicyCommand::Test { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read `{}`", file.display()))?;
            let report = latch_policy::run_tests(&engine, &text)
                .map_err(|err| Failed(format!("{}: {err}", file.display())))?;
            print!("{report}");
            if report.ok() {
                Ok(())
            } else {
                Err(Failed(format!(
                    "{} of {} policy tests failed",
                    report.failed(),
                    report.cases.len()
                ))
                .into())
            }
        }
    }
}
