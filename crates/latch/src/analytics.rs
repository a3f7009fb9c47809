//! `latch analytics`: the dashboard's figures and recommendations for a period and filter, read
//! offline from the store the config names, as text or JSON.

use std::collections::BTreeMap;
use std::path::Path;

use clap::{Args, ValueEnum};
use latch_core::Timestamp;

use crate::exit::Failed;
use crate::report::{Period, team_members, time, write_out};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum AnalyticsFormat {
    /// A summary for a person, with the recommendations and their evidence.
    Text,
    /// Everything, as `GET /api/v1/analytics` returns it.
    Json,
}

/// Which requests to analyse, beyond the period.
#[derive(Args, Debug)]
pub struct Filters {
    /// Only requests by members of this team.
    #[arg(long)]
    team: Option<String>,
    /// Only requests for this resource.
    #[arg(long)]
    resource: Option<String>,
    /// Only requests by this user.
    #[arg(long)]
    principal: Option<String>,
    /// Only requests this user approved or denied.
    #[arg(long)]
    approver: Option<String>,
}

pub async fn analytics(
    config: &Path,
    period: &Period,
    filters: Filters,
    format: AnalyticsFormat,
) -> anyhow::Result<()> {
    let loaded = latch_config::load(config).map_err(|err| Failed(err.to_string()))?;
    let now = latch_core::time::Clock::now(&latch_core::time::SystemClock);
    let from = time("from", period.from.as_deref(), Timestamp::from_millis(0))?;
    let to = time("to", period.to.as_deref(), now)?;
    let team = filters
        .team
        .map(|name| team_members(&loaded.catalog, name))
        .transpose()?;
    if let Some(resource) = &filters.resource
        && !loaded.catalog.resources.contains_key(resource)
    {
        let known: Vec<&str> = loaded
            .catalog
            .resources
            .keys()
            .map(String::as_str)
            .collect();
        return Err(Failed(format!(
            "unknown resource `{resource}` (resources: {})",
            known.join(", ")
        ))
        .into());
    }
    let patterns: BTreeMap<String, latch_core::TicketPattern> = loaded
        .resource_labels
        .iter()
        .filter_map(|(name, labels)| Some((name.clone(), labels.ticket_pattern.clone()?)))
        .collect();
    let filter = latch_analytics::AnalyticsFilter {
        from,
        to,
        team,
        resource: filters.resource,
        principal: filters.principal,
        approver: filters.approver,
    };
    let store = crate::admin::open_store(&loaded, latch_store::OpenMode::Existing).await?;
    let range = latch_accesses::range(
        from,
        to,
        filter.resource.as_deref(),
        filter.team.as_ref().map(|(_, members)| members),
        filter.principal.as_deref(),
    );
    let analytics = latch_accesses::analytics(
        &store,
        &range,
        std::sync::Arc::new(loaded.catalog.clone()),
        patterns,
        filter,
        latch_analytics::Settings::default(),
    )
    .await?;
    let text = match format {
        AnalyticsFormat::Text => latch_analytics::summary_text(&analytics),
        AnalyticsFormat::Json => serde_json::to_string_pretty(&analytics)? + "\n",
    };
    write_out(period.out.as_deref(), &text)
}
