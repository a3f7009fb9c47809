//! `latch report` and `latch export`: the ledger of a period as one row per access (CSV, JSON,
//! HTML) or as events (JSONL, OCSF), read offline from the store the config names.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use latch_core::{StoredEvent, Timestamp};
use latch_store::Store;

use crate::exit::{Failed, Usage};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ReportFormat {
    Csv,
    Json,
    Html,
    /// Printable A4 (needs `--out`: it is binary).
    Pdf,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExportFormat {
    /// The ledger's own canonical events, one per line.
    Jsonl,
    /// Open Cybersecurity Schema Framework records, one per line.
    Ocsf,
}

/// The period and where to write, shared by both commands.
#[derive(Args, Debug)]
pub struct Period {
    /// From this time (RFC 3339, e.g. `2026-07-01T00:00:00Z`) [default: the beginning]
    #[arg(long)]
    pub(crate) from: Option<String>,
    /// Until this time, excluded (RFC 3339) [default: now]
    #[arg(long)]
    pub(crate) to: Option<String>,
    /// Write here instead of stdout.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

pub(crate) fn time(
    field: &str,
    text: Option<&str>,
    default: Timestamp,
) -> anyhow::Result<Timestamp> {
    match text {
        None => Ok(default),
        Some(text) => Timestamp::parse(text).map_err(|_| {
            Usage(format!(
                "`--{field} {text}` is not a time: expected RFC 3339, e.g. `2026-07-01T00:00:00Z`"
            ))
            .into()
        }),
    }
}

/// Every event of the store, in order (a report needs requests created before the period too).
pub(crate) async fn events(config: &Path) -> anyhow::Result<Vec<StoredEvent>> {
    let config = latch_config::load(config).map_err(|err| Failed(err.to_string()))?;
    let store = crate::admin::open_store(&config, latch_store::OpenMode::Existing).await?;
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = store.events(after, 5000).await?;
        let Some(last) = page.last() else { break };
        after = last.event.seq;
        all.extend(page.iter().map(|entry| entry.event.clone()));
    }
    Ok(all)
}

pub(crate) fn write_out(out: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("cannot write `{}`", path.display()))
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            Ok(stdout.flush()?)
        }
    }
}

/// A team's name with its members, for a filter; an unknown team fails naming the known ones.
pub(crate) fn team_members(
    catalog: &latch_core::Catalog,
    name: String,
) -> anyhow::Result<(String, std::collections::BTreeSet<String>)> {
    if !catalog.teams.contains_key(&name) {
        let known: Vec<&str> = catalog.teams.keys().map(String::as_str).collect();
        return Err(Failed(format!(
            "unknown team `{name}` (teams: {})",
            known.join(", ")
        ))
        .into());
    }
    let members = catalog
        .users
        .values()
        .filter(|u| u.teams.contains(&name))
        .map(|u| u.name.clone())
        .collect();
    Ok((name, members))
}

pub async fn report(
    config: &Path,
    period: &Period,
    format: ReportFormat,
    team: Option<String>,
    resource: Option<String>,
) -> anyhow::Result<()> {
    let loaded = latch_config::load(config).map_err(|err| Failed(err.to_string()))?;
    let now = latch_core::time::Clock::now(&latch_core::time::SystemClock);
    let from = time("from", period.from.as_deref(), Timestamp::from_millis(0))?;
    let to = time("to", period.to.as_deref(), now)?;
    let team = team
        .map(|name| team_members(&loaded.catalog, name))
        .transpose()?;
    if matches!(format, ReportFormat::Pdf) && period.out.is_none() {
        return Err(
            Usage("`--format pdf` writes a binary file: give `--out FILE.pdf`".to_owned()).into(),
        );
    }
    let store = crate::admin::open_store(&loaded, latch_store::OpenMode::Existing).await?;
    let range = latch_accesses::range(
        from,
        to,
        resource.as_deref(),
        team.as_ref().map(|(_, members)| members),
        None,
    );
    if matches!(format, ReportFormat::Csv) {
        return stream_csv(&store, &range, period.out.as_deref()).await;
    }
    let rows: Vec<latch_report::AccessRow> = latch_accesses::read_all(&store, &range)
        .await?
        .into_iter()
        .map(|summary| summary.row)
        .collect();
    let title = format!("latch access report, {from} to {to}");
    let text = match format {
        // Streamed above; kept whole here only were that to change.
        ReportFormat::Csv => latch_report::to_csv(&rows),
        ReportFormat::Json => serde_json::to_string_pretty(&latch_report::to_json(&rows))? + "\n",
        ReportFormat::Html => latch_report::to_html(&rows, &title),
        ReportFormat::Pdf => {
            let path = period.out.as_deref().unwrap_or(Path::new("report.pdf"));
            return std::fs::write(path, latch_report::to_pdf(&rows, &title))
                .with_context(|| format!("cannot write `{}`", path.display()));
        }
    };
    write_out(period.out.as_deref(), &text)
}

/// The CSV report written as its rows are read, a page at a time: memory stays flat however
/// long the period.
async fn stream_csv(
    store: &dyn Store,
    range: &latch_store::SummaryRange,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let mut sink: Box<dyn Write> = match out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write `{}`", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    latch_accesses::write_csv(store, range, &mut sink).await?;
    Ok(sink.flush()?)
}

pub async fn export(config: &Path, period: &Period, format: ExportFormat) -> anyhow::Result<()> {
    let now = latch_core::time::Clock::now(&latch_core::time::SystemClock);
    let from = time("from", period.from.as_deref(), Timestamp::from_millis(0))?;
    let to = time("to", period.to.as_deref(), now)?;
    let events = events(config).await?;
    let mut text = String::new();
    match format {
        ExportFormat::Jsonl => {
            for event in events
                .iter()
                .filter(|e| e.event.at >= from && e.event.at < to)
            {
                text.push_str(&event.canonical_json());
                text.push('\n');
            }
        }
        ExportFormat::Ocsf => {
            // Records borrow what they need (a session's user, say) from earlier events.
            let records = latch_report::ocsf_all(&events);
            for (event, record) in events.iter().zip(records) {
                if event.event.at >= from && event.event.at < to {
                    text.push_str(&serde_json::to_string(&record)?);
                    text.push('\n');
                }
            }
        }
    }
    write_out(period.out.as_deref(), &text)
}
