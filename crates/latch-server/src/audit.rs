//! Audit checkpoints in real time: a task follows the ledger as it grows, runs every event
//! through `latch-audit`'s checkpoints (and the time-based ones every second), and opens what
//! they find. Findings are keyed, so a restart (which replays the ledger to rebuild the
//! checkpoints' state) or `latch audit run` never opens one twice. Also the findings endpoints.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use latch_api::{AuditRunBody, AuditRunView, CommentBody, ErrorBody, FindingList, FindingView};
use latch_audit::{AuditSettings, Auditor, Finding, ResourceRules};
use latch_core::Timestamp;
use latch_store::{FindingFilter, FindingRow, NewFinding, Store, StoreError};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};

/// What the checkpoints are configured with; shared by the live task and `audit/run`.
#[derive(Clone, Default)]
pub struct AuditConfig {
    pub settings: AuditSettings,
    pub rules: HashMap<String, ResourceRules>,
}

/// Events read per store call.
const PAGE: u32 = 5000;

fn new_finding(finding: Finding) -> NewFinding {
    NewFinding {
        key: finding.key,
        checkpoint: finding.checkpoint.as_str().to_owned(),
        severity: finding.severity.as_str().to_owned(),
        about: finding.subject,
        summary: finding.summary,
        evidence: finding.evidence,
        at: finding.at,
    }
}

/// Feeds the ledger from `after` (exclusive) through `auditor` up to its current end; returns
/// the new cursor, the events read and the findings reported.
async fn catch_up(
    store: &dyn Store,
    auditor: &mut Auditor,
    mut after: u64,
    until: Option<Timestamp>,
) -> Result<(u64, u64, Vec<Finding>), StoreError> {
    let mut found = Vec::new();
    let mut read = 0;
    loop {
        let page = store.events(after, PAGE).await?;
        let Some(last) = page.last() else {
            break;
        };
        let last_seq = last.event.seq;
        for entry in &page {
            let event = &entry.event;
            if until.is_some_and(|until| event.event.at >= until) {
                return Ok((after, read, found));
            }
            found.extend(auditor.observe(event));
            after = event.seq;
            read += 1;
            // Time-based checks as the history goes by: they fall due, report and let go of
            // their state, so replaying a long ledger stays within bounded memory.
            if read % 4096 == 0 {
                found.extend(auditor.tick(event.event.at));
            }
        }
        after = last_seq;
        if page.len() < PAGE as usize {
            break;
        }
    }
    Ok((after, read, found))
}

/// Follows the ledger until `shutdown`, opening findings within about a second of the events
/// that trigger them. Store errors are logged and retried.
pub async fn run(state: AppState, config: AuditConfig, shutdown: CancellationToken) {
    let mut catalog = state.catalog.get();
    let mut auditor = Auditor::new(
        config.settings.clone(),
        catalog.clone(),
        config.rules.clone(),
    );
    let mut cursor = 0;
    let mut last_tick = Timestamp::from_millis(i64::MIN);
    loop {
        // A reloaded organisation: rebuild the checkpoints' state under it.
        let current = state.catalog.get();
        if !Arc::ptr_eq(&current, &catalog) {
            catalog = current;
            auditor = Auditor::new(
                config.settings.clone(),
                catalog.clone(),
                config.rules.clone(),
            );
            cursor = 0;
        }
        let result = async {
            let (next, _, mut found) = catch_up(&*state.store, &mut auditor, cursor, None).await?;
            cursor = next;
            let now = state.clock.now();
            if now.millis_since(last_tick) >= 1000 {
                found.extend(auditor.tick(now));
                last_tick = now;
            }
            if !found.is_empty() {
                let opened = state
                    .store
                    .open_findings(found.into_iter().map(new_finding).collect())
                    .await?;
                for finding in &opened {
                    tracing::info!(
                        id = %finding.id,
                        checkpoint = %finding.checkpoint,
                        severity = %finding.severity,
                        about = %finding.about,
                        "finding opened"
                    );
                }
            }
            Ok::<(), StoreError>(())
        }
        .await;
        if let Err(err) = result {
            tracing::warn!(%err, "audit checkpoints could not run; retrying");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

fn view(row: &FindingRow) -> FindingView {
    FindingView {
        id: row.id.clone(),
        checkpoint: row.checkpoint.clone(),
        severity: row.severity.clone(),
        about: row.about.clone(),
        summary: row.summary.clone(),
        evidence: row.evidence.clone(),
        first_seen: row.first_seen.to_string(),
        status: row.status.clone(),
        status_by: row.status_by.clone(),
        status_comment: row.status_comment.clone(),
        status_at: row.status_at.map(|t| t.to_string()),
    }
}

/// Findings are for auditors and admins.
async fn require_auditor(state: &AppState, caller: &Caller, action: &str) -> Result<(), ApiError> {
    crate::routes::require_auditor(state, caller, action, action, "/api/v1/findings").await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListFindingsQuery {
    /// Only findings not resolved.
    open: Option<bool>,
    /// Only this severity or worse: `info`, `low`, `medium`, `high`, `critical`.
    severity: Option<String>,
    /// Only this checkpoint, e.g. `usage.scope`.
    checkpoint: Option<String>,
    /// At most this many, newest first (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Audit findings, newest first (auditors and admins).
#[utoipa::path(get, path = "/api/v1/findings", tag = "audit", params(ListFindingsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "findings, newest first", body = FindingList),
        (status = 400, description = "bad query", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not an auditor or admin", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
pub(crate) async fn list_findings(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListFindingsQuery>,
) -> Result<Json<FindingList>, ApiError> {
    require_auditor(&state, &caller, "read findings").await?;
    if let Some(severity) = &query.severity
        && latch_store::severity_rank(severity).is_none()
    {
        return Err(ApiError::BadRequest(format!(
            "unknown severity `{}` (severities: {})",
            severity.chars().take(40).collect::<String>(),
            latch_store::SEVERITIES.join(", ")
        )));
    }
    let limit = crate::routes::check_limit(query.limit)?;
    let rows = state
        .store
        .findings(&FindingFilter {
            open_only: query.open.unwrap_or(false),
            min_severity: query.severity,
            checkpoint: query.checkpoint,
            limit,
        })
        .await?;
    Ok(Json(FindingList {
        findings: rows.iter().map(view).collect(),
    }))
}

async fn set_status(
    state: &AppState,
    caller: &Caller,
    id: &str,
    status: &str,
    comment: String,
) -> Result<Json<FindingView>, ApiError> {
    require_auditor(state, caller, "change findings").await?;
    let comment = comment.trim().to_owned();
    if comment.is_empty() {
        return Err(ApiError::Refused(latch_core::Refusal {
            kind: latch_core::RefusalKind::Invalid,
            message: "comment is empty: say what was found or done".into(),
        }));
    }
    if comment.chars().count() > 2000 {
        return Err(ApiError::Refused(latch_core::Refusal {
            kind: latch_core::RefusalKind::Invalid,
            message: "comment must be at most 2000 characters".into(),
        }));
    }
    let id: String = id.chars().take(80).collect();
    match state
        .store
        .set_finding_status(&id, status, &caller.user, &comment, &*state.clock)
        .await?
    {
        Ok(row) => Ok(Json(view(&row))),
        Err(refusal) => Err(ApiError::Refused(refusal)),
    }
}

/// Acknowledge a finding: someone is on it (auditors and admins).
#[utoipa::path(post, path = "/api/v1/findings/{id}/ack", tag = "audit", request_body = CommentBody,
    params(("id" = String, Path, description = "finding id, e.g. `fnd_…`")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "acknowledged", body = FindingView),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not an auditor or admin", body = ErrorBody),
        (status = 404, description = "no such finding", body = ErrorBody),
        (status = 409, description = "already resolved", body = ErrorBody),
        (status = 422, description = "empty comment", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
pub(crate) async fn ack_finding(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CommentBody>,
) -> Result<Json<FindingView>, ApiError> {
    set_status(&state, &caller, &id, "acknowledged", body.comment).await
}

/// Resolve a finding, saying how (auditors and admins).
#[utoipa::path(post, path = "/api/v1/findings/{id}/resolve", tag = "audit", request_body = CommentBody,
    params(("id" = String, Path, description = "finding id, e.g. `fnd_…`")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "resolved", body = FindingView),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not an auditor or admin", body = ErrorBody),
        (status = 404, description = "no such finding", body = ErrorBody),
        (status = 409, description = "already resolved", body = ErrorBody),
        (status = 422, description = "empty comment", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
pub(crate) async fn resolve_finding(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CommentBody>,
) -> Result<Json<FindingView>, ApiError> {
    set_status(&state, &caller, &id, "resolved", body.comment).await
}

fn parse_time(field: &str, text: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    text.map(|text| {
        Timestamp::parse(text).map_err(|_| {
            ApiError::BadRequest(format!(
                "`{field}` is not a time: expected RFC 3339, e.g. `2026-07-01T00:00:00Z`"
            ))
        })
    })
    .transpose()
}

/// Re-evaluate the ledger's history with the checkpoints as configured now (after a threshold
/// change, say): findings already opened are not opened again (auditors and admins).
#[utoipa::path(post, path = "/api/v1/audit/run", tag = "audit", request_body = AuditRunBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "what was found", body = AuditRunView),
        (status = 400, description = "malformed body or time", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not an auditor or admin", body = ErrorBody),
        (status = 503, description = "database unavailable, or the checkpoints are not running", body = ErrorBody),
    ))]
pub(crate) async fn audit_run(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<AuditRunBody>,
) -> Result<Json<AuditRunView>, ApiError> {
    require_auditor(&state, &caller, "re-evaluate the audit").await?;
    let Some(config) = state.audit.clone() else {
        return Err(ApiError::Unavailable(
            "audit checkpoints are not running on this server".into(),
        ));
    };
    let from = parse_time("from", body.from.as_deref())?;
    let to = parse_time("to", body.to.as_deref())?;
    let mut auditor = Auditor::new(
        config.settings.clone(),
        state.catalog.get(),
        config.rules.clone(),
    );
    // Every event before `to` feeds the checkpoints (a finding may need earlier context); only
    // findings in the period count.
    let (_, events, mut found) = catch_up(&*state.store, &mut auditor, 0, to).await?;
    let end = to.unwrap_or_else(|| state.clock.now());
    found.extend(auditor.tick(end));
    let in_period: Vec<NewFinding> = found
        .into_iter()
        .filter(|f| f.at <= end && from.is_none_or(|from| f.at >= from))
        .map(new_finding)
        .collect();
    let reported = in_period.len() as u64;
    let opened = state.store.open_findings(in_period).await?;
    Ok(Json(AuditRunView {
        events,
        found: reported,
        opened: opened.len() as u64,
    }))
}
