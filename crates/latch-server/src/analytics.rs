//! `GET /api/v1/analytics`: the dashboard's figures and recommendations for a period and
//! filter (auditors and admins), computed by `latch-analytics` over the ledger.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::State;
use latch_analytics::{Analytics, AnalyticsFilter};
use latch_api::ErrorBody;
use latch_core::{Catalog, TicketPattern, Timestamp};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiQuery;

/// The period when `from` is not given: the 30 days before `to`.
const DEFAULT_DAYS: i64 = 30;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AnalyticsQuery {
    /// Requests created at or after this time (RFC 3339) [default: 30 days before `to`].
    from: Option<String>,
    /// Requests created before this time (RFC 3339) [default: now].
    to: Option<String>,
    /// Only requests by members of this team.
    team: Option<String>,
    /// Only requests for this resource.
    resource: Option<String>,
    /// Only requests by this user.
    principal: Option<String>,
    /// Only requests this user approved or denied.
    approver: Option<String>,
}

fn time(field: &str, text: &str) -> Result<Timestamp, ApiError> {
    Timestamp::parse(text).map_err(|_| {
        ApiError::BadRequest(format!(
            "`{field}` is not a time: `{}` (expected RFC 3339, e.g. `2026-07-01T00:00:00Z`)",
            text.chars().take(60).collect::<String>()
        ))
    })
}

/// A team name into its members; an unknown team is a bad request naming the known ones.
fn team_filter(catalog: &Catalog, name: &str) -> Result<(String, BTreeSet<String>), ApiError> {
    if !catalog.teams.contains_key(name) {
        let known: Vec<&str> = catalog.teams.keys().map(String::as_str).collect();
        return Err(ApiError::BadRequest(format!(
            "unknown team `{}` (teams: {})",
            name.chars().take(60).collect::<String>(),
            known.join(", ")
        )));
    }
    let members = catalog
        .users
        .values()
        .filter(|user| user.teams.contains(name))
        .map(|user| user.name.clone())
        .collect();
    Ok((name.to_owned(), members))
}

/// The access summaries a filter reads (the approver filter is applied to what they hold).
fn access_range(filter: &AnalyticsFilter) -> latch_store::SummaryRange {
    latch_accesses::range(
        filter.from,
        filter.to,
        filter.resource.as_deref(),
        filter.team.as_ref().map(|(_, members)| members),
        filter.principal.as_deref(),
    )
}

/// The resources' ticket patterns, as the audit checkpoints have them from the config.
fn ticket_patterns(state: &AppState) -> BTreeMap<String, TicketPattern> {
    state
        .audit
        .as_ref()
        .map(|audit| {
            audit
                .rules
                .iter()
                .filter_map(|(name, rules)| {
                    Some((name.clone(), rules.ticket_pattern.as_ref()?.clone()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Analytics of the requests created in a period: volume per day, time to decision per team
/// and approver, outcomes, granted against used time, what grants were used for, findings,
/// tickets that do not match their resource's pattern, and recommendations with their
/// evidence (auditors and admins).
#[utoipa::path(get, path = "/api/v1/analytics", tag = "audit", params(AnalyticsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the analytics of the period", body = Analytics),
        (status = 400, description = "a bad time, an empty period, or an unknown team or resource", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not an auditor or admin", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
pub(crate) async fn get_analytics(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AnalyticsQuery>,
) -> Result<Json<Analytics>, ApiError> {
    crate::routes::require_auditor(
        &state,
        &caller,
        "read analytics",
        "read analytics",
        "/api/v1/analytics",
    )
    .await?;
    let catalog = state.catalog.get();
    let to = match &query.to {
        Some(text) => time("to", text)?,
        None => state.clock.now(),
    };
    let from = match &query.from {
        Some(text) => time("from", text)?,
        None => Timestamp::from_millis(to.as_millis().saturating_sub(DEFAULT_DAYS * 86_400_000)),
    };
    if from >= to {
        return Err(ApiError::BadRequest(format!(
            "empty period: `from` ({from}) must be before `to` ({to})"
        )));
    }
    let team = match &query.team {
        Some(name) => Some(team_filter(&catalog, name)?),
        None => None,
    };
    if let Some(resource) = &query.resource
        && !catalog.resources.contains_key(resource)
    {
        let known: Vec<&str> = catalog.resources.keys().map(String::as_str).collect();
        return Err(ApiError::BadRequest(format!(
            "unknown resource `{}` (resources: {})",
            resource.chars().take(60).collect::<String>(),
            known.join(", ")
        )));
    }
    let filter = AnalyticsFilter {
        from,
        to,
        team,
        resource: query.resource,
        principal: query.principal,
        approver: query.approver,
    };
    let range = access_range(&filter);
    let patterns = ticket_patterns(&state);
    let analytics = latch_accesses::analytics(
        &*state.store,
        &range,
        catalog,
        patterns,
        filter,
        latch_analytics::Settings::default(),
    )
    .await?;
    Ok(Json(analytics))
}
