//! The `/api/v1` handlers. Each authenticates the caller, turns the call into a lifecycle
//! command or a read, and maps the outcome through [`ApiError`]. Refusals with status 403 are
//! recorded in the ledger: an attempt is evidence too.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use latch_api::{
    ApproveBody, CheckpointView, ConsistencyProofView, CreateRequest, ErrorBody, EventList,
    EventView, GrantList, GrantView, InclusionProofView, LedgerKey, ReasonBody, ReloadView,
    RequestList, RequestView, WhoAmI,
};
use latch_core::lifecycle::request_id_for;
use latch_core::{
    AccessDuration, AccessRequest, Actor, Command, Event, EventKind, RefusalKind, RequestState,
};
use latch_store::StoredCheckpoint;
use latch_store::{Executed, RequestFilter};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};

/// The most items one list call returns.
const MAX_LIMIT: u32 = 1000;

pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_request, list_requests))
        .routes(routes!(get_request))
        .routes(routes!(approve_request))
        .routes(routes!(deny_request))
        .routes(routes!(cancel_request))
        .routes(routes!(break_glass))
        .routes(routes!(list_grants))
        .routes(routes!(get_grant))
        .routes(routes!(revoke_grant))
        .routes(routes!(whoami))
        .routes(routes!(list_events))
        .routes(routes!(public_key))
        .routes(routes!(get_checkpoint, make_checkpoint))
        .routes(routes!(inclusion_proof))
        .routes(routes!(consistency_proof))
        .routes(routes!(reload_config))
        .routes(routes!(crate::sessions::connect))
        .routes(routes!(crate::sessions::list_sessions))
        .routes(routes!(crate::sessions::get_session))
        .routes(routes!(crate::audit::list_findings))
        .routes(routes!(crate::audit::ack_finding))
        .routes(routes!(crate::audit::resolve_finding))
        .routes(routes!(crate::audit::audit_run))
        .routes(routes!(crate::analytics::get_analytics))
        .routes(routes!(crate::notify::list_notifications))
        .routes(routes!(
            crate::review::record_review,
            crate::review::list_reviews
        ))
        .routes(routes!(crate::notify::retry_notification))
}

/// Re-reads the organisation and the policy files (admins). A policy set that does not load is
/// refused with its problems and the one in force stays; a new one is recorded in the ledger
/// (`policy.loaded`) before it decides anything. The same happens on SIGHUP.
#[utoipa::path(post, path = "/api/v1/admin/reload", tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "what is now in force", body = ReloadView),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not an admin", body = ErrorBody),
        (status = 422, description = "the config or a policy does not load; nothing changed", body = ErrorBody),
        (status = 503, description = "reload is not available, or the database is unavailable", body = ErrorBody),
    ))]
async fn reload_config(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ReloadView>, ApiError> {
    if !caller.is_admin(&state.catalog.get()) {
        let error = ApiError::forbidden(format!(
            "`{}` may not reload the configuration: admins may",
            caller.user
        ));
        return Err(refuse(&state, &caller, "reload", "admin/reload", error).await);
    }
    let outcome = crate::reload(&state).await?;
    Ok(Json(outcome))
}

/// Ids latch hands out look like `req_01jd…`; anything else cannot exist.
fn check_id<'a>(id: &'a str, prefix: &str, what: &str) -> Result<&'a str, ApiError> {
    let valid = id.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if valid {
        Ok(id)
    } else {
        Err(ApiError::not_found(format!(
            "no {what} `{}`",
            id.chars().take(80).collect::<String>()
        )))
    }
}

pub(crate) fn check_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(100),
        Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        Some(limit) => Err(ApiError::BadRequest(format!(
            "limit `{limit}` is out of range: expected 1 to {MAX_LIMIT}"
        ))),
    }
}

/// Records a 403 in the ledger, then returns it. If recording fails, the call fails with the
/// store's error: a refusal that could not be recorded is not reported as a plain refusal.
pub(crate) async fn refuse(
    state: &AppState,
    caller: &Caller,
    action: &str,
    subject: &str,
    error: ApiError,
) -> ApiError {
    let ApiError::Refused(refusal) = &error else {
        return error;
    };
    if refusal.kind != RefusalKind::Forbidden {
        return error;
    }
    let event = Event {
        at: state.clock.now(),
        actor: Actor::user(caller.user.clone()),
        subject: subject.to_owned(),
        kind: EventKind::AccessRefused {
            action: action.to_owned(),
            reason: refusal.message.clone(),
        },
    };
    match state.store.record(vec![event]).await {
        Ok(_) => error,
        Err(err) => err.into(),
    }
}

/// [`execute`] for callers outside the HTTP API (Slack buttons).
pub(crate) async fn execute_command(
    state: &AppState,
    caller: &Caller,
    id: &str,
    command: Command,
) -> Result<AccessRequest, ApiError> {
    execute(state, caller, id, command).await
}

async fn execute(
    state: &AppState,
    caller: &Caller,
    id: &str,
    command: Command,
) -> Result<AccessRequest, ApiError> {
    match state
        .store
        .execute(id, &command, state.catalog.get(), state.clock.clone())
        .await?
    {
        Executed::Done { request, .. } => Ok(request),
        Executed::Refused(refusal) => {
            Err(refuse(state, caller, command.verb(), id, refusal.into()).await)
        }
    }
}

async fn visible_request(
    state: &AppState,
    caller: &Caller,
    id: &str,
    action: &str,
) -> Result<AccessRequest, ApiError> {
    let request = state
        .store
        .request(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no request `{id}`")))?;
    if !state
        .catalog
        .get()
        .visibility(&caller.user)
        .allows(&request.requester, &request.resource)
    {
        let error = ApiError::forbidden(format!("`{}` may not view request `{id}`", caller.user));
        return Err(refuse(state, caller, action, id, error).await);
    }
    Ok(request)
}

/// Ask for access to a resource's role for a while, saying why.
#[utoipa::path(post, path = "/api/v1/requests", tag = "requests", request_body = CreateRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "request created, waiting for approval", body = RequestView),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 422, description = "unknown resource or role, bad duration, empty reason", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
pub(crate) async fn create_request(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<RequestView>), ApiError> {
    let duration: AccessDuration =
        body.duration
            .parse()
            .map_err(|err: latch_core::duration::DurationError| {
                ApiError::Refused(latch_core::Refusal {
                    kind: RefusalKind::Invalid,
                    message: err.to_string(),
                })
            })?;
    let id = format!("req_{}", ulid::Ulid::new().to_string().to_lowercase());
    let command = Command::Create {
        requester: caller.user.clone(),
        resource: body.resource,
        role: body.role,
        duration,
        reason: body.reason,
        ticket: body.ticket,
        once: body.once,
        history: Default::default(),
    };
    let request = execute(&state, &caller, &id, command).await?;
    Ok((StatusCode::CREATED, Json(RequestView::from(&request))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListRequestsQuery {
    /// Only requests in this state: pending, denied, cancelled, timed_out, granted, expired, revoked.
    state: Option<String>,
    /// Only the caller's own requests.
    mine: Option<bool>,
    /// At most this many, newest first (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Requests the caller may see: their own, those they may approve, or all for auditors and admins.
#[utoipa::path(get, path = "/api/v1/requests", tag = "requests", params(ListRequestsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "requests, newest first", body = RequestList),
        (status = 400, description = "bad query", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn list_requests(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListRequestsQuery>,
) -> Result<Json<RequestList>, ApiError> {
    let states = match query.state.as_deref() {
        None | Some("") => Vec::new(),
        Some(text) => vec![RequestState::parse(text).ok_or_else(|| {
            let known: Vec<&str> = RequestState::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::BadRequest(format!(
                "unknown state `{text}` (states: {})",
                known.join(", ")
            ))
        })?],
    };
    let filter = RequestFilter {
        states,
        requester: query.mine.unwrap_or(false).then(|| caller.user.clone()),
        with_grant: false,
        visibility: state.catalog.get().visibility(&caller.user),
        limit: check_limit(query.limit)?,
    };
    let requests = state.store.requests(&filter).await?;
    Ok(Json(RequestList {
        requests: requests.iter().map(RequestView::from).collect(),
    }))
}

/// One request, with its approvals and grant.
#[utoipa::path(get, path = "/api/v1/requests/{id}", tag = "requests",
    params(("id" = String, Path, description = "request id, e.g. `req_01jd…`")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the request", body = RequestView),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not visible to the caller", body = ErrorBody),
        (status = 404, description = "no such request", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn get_request(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, ApiError> {
    let id = check_id(&id, "req_", "request")?;
    let request = visible_request(&state, &caller, id, "view").await?;
    Ok(Json(RequestView::from(&request)))
}

/// Approve a pending request (a lead of the owner team or the requester's manager; never the requester).
#[utoipa::path(post, path = "/api/v1/requests/{id}/approve", tag = "requests", request_body = ApproveBody,
    params(("id" = String, Path, description = "request id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "approved; `grant` is set once enough approvals are in", body = RequestView),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "the caller may not approve it", body = ErrorBody),
        (status = 404, description = "no such request", body = ErrorBody),
        (status = 409, description = "not pending, or already approved by the caller", body = ErrorBody),
        (status = 422, description = "bad comment", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
pub(crate) async fn approve_request(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ApproveBody>,
) -> Result<Json<RequestView>, ApiError> {
    let id = check_id(&id, "req_", "request")?;
    let command = Command::Approve {
        approver: caller.user.clone(),
        comment: body.comment,
    };
    Ok(Json(RequestView::from(
        &execute(&state, &caller, id, command).await?,
    )))
}

/// Deny a pending request, saying why.
#[utoipa::path(post, path = "/api/v1/requests/{id}/deny", tag = "requests", request_body = ReasonBody,
    params(("id" = String, Path, description = "request id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "denied", body = RequestView),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "the caller may not decide on it", body = ErrorBody),
        (status = 404, description = "no such request", body = ErrorBody),
        (status = 409, description = "not pending", body = ErrorBody),
        (status = 422, description = "empty reason", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
pub(crate) async fn deny_request(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<Json<RequestView>, ApiError> {
    let id = check_id(&id, "req_", "request")?;
    let command = Command::Deny {
        approver: caller.user.clone(),
        reason: body.reason,
    };
    Ok(Json(RequestView::from(
        &execute(&state, &caller, id, command).await?,
    )))
}

/// Withdraw one's own pending request (admins may cancel any).
#[utoipa::path(post, path = "/api/v1/requests/{id}/cancel", tag = "requests",
    params(("id" = String, Path, description = "request id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "cancelled", body = RequestView),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not the requester", body = ErrorBody),
        (status = 404, description = "no such request", body = ErrorBody),
        (status = 409, description = "not pending", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
pub(crate) async fn cancel_request(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, ApiError> {
    let id = check_id(&id, "req_", "request")?;
    let command = Command::Cancel {
        by: caller.user.clone(),
    };
    Ok(Json(RequestView::from(
        &execute(&state, &caller, id, command).await?,
    )))
}

/// Break glass: the requester grants their own pending request in an emergency, where a policy
/// permits `self_approve`; flagged in the ledger.
#[utoipa::path(post, path = "/api/v1/requests/{id}/break-glass", tag = "requests", request_body = ReasonBody,
    params(("id" = String, Path, description = "request id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "granted, flagged as break-glass", body = RequestView),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not the requester, or no policy permits it", body = ErrorBody),
        (status = 404, description = "no such request", body = ErrorBody),
        (status = 409, description = "not pending", body = ErrorBody),
        (status = 422, description = "empty reason", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn break_glass(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<Json<RequestView>, ApiError> {
    let id = check_id(&id, "req_", "request")?;
    let command = Command::BreakGlass {
        by: caller.user.clone(),
        reason: body.reason,
    };
    Ok(Json(RequestView::from(
        &execute(&state, &caller, id, command).await?,
    )))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListGrantsQuery {
    /// Only grants that are active now.
    active: Option<bool>,
    /// Only the caller's own grants.
    mine: Option<bool>,
    /// At most this many, newest first (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Grants the caller may see.
#[utoipa::path(get, path = "/api/v1/grants", tag = "grants", params(ListGrantsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "grants, newest first", body = GrantList),
        (status = 400, description = "bad query", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn list_grants(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListGrantsQuery>,
) -> Result<Json<GrantList>, ApiError> {
    let filter = RequestFilter {
        states: if query.active.unwrap_or(false) {
            vec![RequestState::Granted]
        } else {
            Vec::new()
        },
        requester: query.mine.unwrap_or(false).then(|| caller.user.clone()),
        with_grant: true,
        visibility: state.catalog.get().visibility(&caller.user),
        limit: check_limit(query.limit)?,
    };
    let requests = state.store.requests(&filter).await?;
    let grants = requests
        .iter()
        .filter_map(|r| r.grant.as_ref().map(|g| GrantView::new(r, g)))
        .collect();
    Ok(Json(GrantList { grants }))
}

/// One grant.
#[utoipa::path(get, path = "/api/v1/grants/{id}", tag = "grants",
    params(("id" = String, Path, description = "grant id, e.g. `grt_01jd…`")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the grant", body = GrantView),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not visible to the caller", body = ErrorBody),
        (status = 404, description = "no such grant", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn get_grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<GrantView>, ApiError> {
    let grant_id = check_id(&id, "grt_", "grant")?;
    let missing = || ApiError::not_found(format!("no grant `{grant_id}`"));
    let request_id = request_id_for(grant_id).ok_or_else(missing)?;
    let request = match visible_request(&state, &caller, &request_id, "view").await {
        Err(ApiError::Refused(refusal)) if refusal.kind == RefusalKind::NotFound => {
            return Err(missing());
        }
        other => other?,
    };
    let grant = request.grant.as_ref().ok_or_else(missing)?;
    Ok(Json(GrantView::new(&request, grant)))
}

/// End an active grant early (the grantee, an admin, an owner-team lead or the grantee's manager).
#[utoipa::path(post, path = "/api/v1/grants/{id}/revoke", tag = "grants", request_body = ReasonBody,
    params(("id" = String, Path, description = "grant id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "revoked", body = GrantView),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "the caller may not revoke it", body = ErrorBody),
        (status = 404, description = "no such grant", body = ErrorBody),
        (status = 409, description = "already expired or revoked", body = ErrorBody),
        (status = 422, description = "empty reason", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
pub(crate) async fn revoke_grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<Json<GrantView>, ApiError> {
    let grant_id = check_id(&id, "grt_", "grant")?;
    let missing = || ApiError::not_found(format!("no grant `{grant_id}`"));
    let request_id = request_id_for(grant_id).ok_or_else(missing)?;
    let command = Command::Revoke {
        by: caller.user.clone(),
        reason: body.reason,
    };
    let request = match execute(&state, &caller, &request_id, command).await {
        Err(ApiError::Refused(refusal)) if refusal.kind == RefusalKind::NotFound => {
            return Err(missing());
        }
        // A pending request has no grant yet: to the caller, the grant does not exist.
        Err(ApiError::Refused(refusal))
            if refusal.kind == RefusalKind::Conflict && !refusal.message.starts_with("grant") =>
        {
            return Err(missing());
        }
        other => other?,
    };
    let grant = request.grant.as_ref().ok_or_else(missing)?;
    // Live sessions end with the grant: their running queries are cancelled upstream first.
    if let Some(gateway) = &state.gateway {
        let ended = gateway.gateway.end_grant(
            &grant.id,
            latch_gateway::EndReason::GrantRevoked {
                by: caller.user.clone(),
            },
        );
        if ended > 0 {
            tracing::info!(grant = %grant.id, sessions = ended, "revocation ended live sessions");
        }
    }
    Ok(Json(GrantView::new(&request, grant)))
}

/// Who the token belongs to.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "identity",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the caller", body = WhoAmI),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn whoami(State(state): State<AppState>, caller: Caller) -> Result<Json<WhoAmI>, ApiError> {
    let catalog = state.catalog.get();
    let user = catalog.user(&caller.user).ok_or_else(|| {
        ApiError::Unauthorized(format!(
            "`{}` is no longer in the organisation",
            caller.user
        ))
    })?;
    Ok(Json(WhoAmI {
        user: user.name.clone(),
        email: user.email.clone(),
        teams: user.teams.iter().cloned().collect(),
        manager: user.manager.clone(),
        roles: user.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        token_id: caller.token_id,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListEventsQuery {
    /// Only events after this sequence number (default 0: from the start).
    after: Option<u64>,
    /// At most this many, in ledger order (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The ledger's events in order (auditors and admins).
#[utoipa::path(get, path = "/api/v1/events", tag = "audit", params(ListEventsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "events in ledger order", body = EventList),
        (status = 400, description = "bad query", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not an auditor or admin", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListEventsQuery>,
) -> Result<Json<EventList>, ApiError> {
    if !state.catalog.get().sees_everything(&caller.user) {
        let error = ApiError::forbidden(format!(
            "`{}` may not read the ledger: it needs the `auditor` or `admin` role",
            caller.user
        ));
        return Err(refuse(&state, &caller, "read events", "/api/v1/events", error).await);
    }
    let limit = check_limit(query.limit)?;
    let events = state.store.events(query.after.unwrap_or(0), limit).await?;
    Ok(Json(EventList {
        events: events
            .into_iter()
            .map(|entry| EventView::new(&entry.event, entry.body.clone()))
            .collect(),
    }))
}

/// The ledger's verifier key: public, so that anyone can check checkpoints and proofs.
#[utoipa::path(get, path = "/api/v1/ledger/public-key", tag = "audit",
    responses((status = 200, description = "the verifier key", body = LedgerKey)))]
pub(crate) async fn public_key(State(state): State<AppState>) -> Json<LedgerKey> {
    Json(LedgerKey {
        origin: state.ledger.origin().to_owned(),
        verifier_key: state.ledger.verifier_key().to_string(),
    })
}

fn checkpoint_view(checkpoint: &StoredCheckpoint) -> CheckpointView {
    CheckpointView {
        size: checkpoint.size,
        root: checkpoint.root.to_string(),
        time: checkpoint.at.to_string(),
        note: checkpoint.note.clone(),
    }
}

/// Auditors and admins read the ledger; every other attempt is refused and recorded.
async fn require_audit(state: &AppState, caller: &Caller, action: &str) -> Result<(), ApiError> {
    require_auditor(state, caller, action, "read the ledger", "/api/v1/ledger").await
}

/// Auditors and admins only: anyone else is refused, and the refusal recorded, as `what` on
/// `subject`.
pub(crate) async fn require_auditor(
    state: &AppState,
    caller: &Caller,
    action: &str,
    what: &str,
    subject: &str,
) -> Result<(), ApiError> {
    if state.catalog.get().sees_everything(&caller.user) {
        return Ok(());
    }
    let error = ApiError::forbidden(format!(
        "`{}` may not {what}: it needs the `auditor` or `admin` role",
        caller.user
    ));
    Err(refuse(state, caller, action, subject, error).await)
}

fn ledger_error(err: crate::ledger::LedgerError) -> ApiError {
    match err {
        crate::ledger::LedgerError::Store(err) => err.into(),
        crate::ledger::LedgerError::Proof(err) => ApiError::BadRequest(err.to_string()),
        other => ApiError::Internal(other.to_string()),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CheckpointQuery {
    /// The checkpoint of this tree size (default: the latest).
    size: Option<u64>,
}

/// A signed checkpoint (auditors and admins).
#[utoipa::path(get, path = "/api/v1/ledger/checkpoint", tag = "audit", params(CheckpointQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the checkpoint", body = CheckpointView),
        (status = 400, description = "bad query", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not an auditor or admin", body = ErrorBody),
        (status = 404, description = "no checkpoint of that size (or none yet)", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn get_checkpoint(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<CheckpointQuery>,
) -> Result<Json<CheckpointView>, ApiError> {
    require_audit(&state, &caller, "read checkpoint").await?;
    let checkpoint = state
        .ledger
        .find_checkpoint(query.size)
        .await
        .map_err(ledger_error)?;
    let checkpoint = checkpoint.ok_or_else(|| match query.size {
        Some(size) => ApiError::not_found(format!(
            "no checkpoint of size {size}: `latch ledger checkpoint` lists the latest"
        )),
        None => ApiError::not_found("no checkpoint yet: the ledger is empty"),
    })?;
    Ok(Json(checkpoint_view(&checkpoint)))
}

/// Sign a checkpoint of the ledger now (auditors and admins); returns the latest when nothing
/// was added since.
#[utoipa::path(post, path = "/api/v1/ledger/checkpoint", tag = "audit",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the latest checkpoint", body = CheckpointView),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not an auditor or admin", body = ErrorBody),
        (status = 404, description = "the ledger is empty", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn make_checkpoint(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<CheckpointView>, ApiError> {
    require_audit(&state, &caller, "sign checkpoint").await?;
    let checkpoint = state.ledger.checkpoint().await.map_err(ledger_error)?;
    let checkpoint =
        checkpoint.ok_or_else(|| ApiError::not_found("no checkpoint yet: the ledger is empty"))?;
    Ok(Json(checkpoint_view(&checkpoint)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct InclusionQuery {
    /// The event's sequence number (its id).
    #[param(minimum = 1)]
    seq: u64,
    /// The size of the checkpoint to prove against (default: the latest).
    size: Option<u64>,
}

/// Proof that an event is in a signed checkpoint (auditors and admins).
#[utoipa::path(get, path = "/api/v1/ledger/inclusion", tag = "audit", params(InclusionQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the proof", body = InclusionProofView),
        (status = 400, description = "bad query, or the event is not covered by the checkpoint", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not an auditor or admin", body = ErrorBody),
        (status = 404, description = "no such checkpoint", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn inclusion_proof(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<InclusionQuery>,
) -> Result<Json<InclusionProofView>, ApiError> {
    require_audit(&state, &caller, "prove inclusion").await?;
    let checkpoint = find_checkpoint(&state, query.size).await?;
    if query.seq == 0 || query.seq > checkpoint.size {
        return Err(ApiError::BadRequest(format!(
            "event {} is not covered by the checkpoint of size {}: sign a newer one with `latch ledger checkpoint`",
            query.seq, checkpoint.size
        )));
    }
    let index = query.seq - 1;
    let (leaf, proof) = state
        .ledger
        .inclusion_proof(index, checkpoint.size)
        .await
        .map_err(ledger_error)?;
    let body = state
        .store
        .events(index, 1)
        .await?
        .pop()
        .map(|entry| entry.body.clone())
        .ok_or_else(|| ApiError::not_found(format!("no event {}", query.seq)))?;
    Ok(Json(InclusionProofView {
        seq: query.seq,
        index,
        body,
        leaf_hash: leaf.to_string(),
        proof: proof.iter().map(ToString::to_string).collect(),
        checkpoint: checkpoint_view(&checkpoint),
    }))
}

async fn find_checkpoint(
    state: &AppState,
    size: Option<u64>,
) -> Result<StoredCheckpoint, ApiError> {
    state
        .ledger
        .find_checkpoint(size)
        .await
        .map_err(ledger_error)?
        .ok_or_else(|| match size {
            Some(size) => ApiError::not_found(format!("no checkpoint of size {size}")),
            None => ApiError::not_found("no checkpoint yet: the ledger is empty"),
        })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ConsistencyQuery {
    /// The earlier checkpoint's size.
    #[param(minimum = 1)]
    from: u64,
    /// The later checkpoint's size (default: the latest).
    to: Option<u64>,
}

/// Proof that a later checkpoint extends an earlier one (auditors and admins).
#[utoipa::path(get, path = "/api/v1/ledger/consistency", tag = "audit", params(ConsistencyQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the proof", body = ConsistencyProofView),
        (status = 400, description = "bad query, e.g. `from` after `to`", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not an auditor or admin", body = ErrorBody),
        (status = 404, description = "no checkpoint of that size", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn consistency_proof(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ConsistencyQuery>,
) -> Result<Json<ConsistencyProofView>, ApiError> {
    require_audit(&state, &caller, "prove consistency").await?;
    let from = find_checkpoint(&state, Some(query.from)).await?;
    let to = find_checkpoint(&state, query.to).await?;
    if from.size > to.size {
        return Err(ApiError::BadRequest(format!(
            "`from` ({}) is after `to` ({}): a consistency proof goes from an earlier checkpoint to a later one",
            from.size, to.size
        )));
    }
    let proof = state
        .ledger
        .consistency_proof(from.size, to.size)
        .await
        .map_err(ledger_error)?;
    Ok(Json(ConsistencyProofView {
        from: checkpoint_view(&from),
        to: checkpoint_view(&to),
        proof: proof.iter().map(ToString::to_string).collect(),
    }))
}
