//! Gateway endpoints: a credential to connect under an active grant (`POST /api/v1/connect`),
//! and the sessions with their recorded statements.

use axum::Json;
use axum::extract::{Path, State};
use latch_api::{
    ConnectBody, ConnectView, ErrorBody, SessionDetail, SessionList, SessionView, StatementView,
};
use latch_core::{EventKind, Timestamp};
use latch_pgwire::scram::ScramSecret;
use latch_store::{CredentialRecord, SessionFilter, SessionRow};
use rand::RngCore;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::{Caller, hash_secret};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};

/// Prefix of gateway credentials, so that a leaked one is recognisable.
const CREDENTIAL_PREFIX: &str = "lcc_";

/// A credential for the gateway under one of the caller's active grants on a resource.
#[utoipa::path(post, path = "/api/v1/connect", tag = "sessions", request_body = ConnectBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "a credential, shown once", body = ConnectView),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 404, description = "no active grant on that resource (and role)", body = ErrorBody),
        (status = 409, description = "several active grants: name the role", body = ErrorBody),
        (status = 503, description = "the gateway is not enabled, or the database is unavailable", body = ErrorBody),
    ))]
pub(crate) async fn connect(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ConnectBody>,
) -> Result<Json<ConnectView>, ApiError> {
    let Some(gateway) = state.gateway.clone() else {
        return Err(ApiError::Unavailable(
            "the gateway is not enabled on this server: add a `[gateway]` section to its config"
                .into(),
        ));
    };
    let now = state.clock.now();
    let granted =
        crate::gateway::active_grants(&*state.store, &caller.user, &body.resource, now).await?;
    let mut candidates: Vec<_> = granted
        .iter()
        .filter(|r| body.role.as_ref().is_none_or(|role| &r.role == role))
        .filter_map(|r| r.grant.as_ref().map(|g| (r, g)))
        .collect();
    let roles: std::collections::BTreeSet<&str> =
        candidates.iter().map(|(r, _)| r.role.as_str()).collect();
    if roles.len() > 1 {
        return Err(ApiError::Refused(latch_core::Refusal {
            kind: latch_core::RefusalKind::Conflict,
            message: format!(
                "you hold active grants for several roles on `{}` ({}): pass `--role`",
                body.resource,
                roles.into_iter().collect::<Vec<_>>().join(", ")
            ),
        }));
    }
    // Overlapping grants of one role: the one that lasts longest.
    candidates.sort_by_key(|(_, g)| g.expires_at);
    let Some((request, grant)) = candidates.pop() else {
        let role = body.role.as_deref().unwrap_or("read");
        return Err(ApiError::not_found(format!(
            "`{}` has no active grant on `{}`{}: request one with `latch request {} --role {role} --for 1h --reason \"…\"`",
            caller.user,
            body.resource,
            body.role
                .as_ref()
                .map(|r| format!(" for role `{r}`"))
                .unwrap_or_default(),
            body.resource,
        )));
    };
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = format!("{CREDENTIAL_PREFIX}{}", hex::encode(bytes));
    let ttl_ms = i64::try_from(gateway.credential_ttl.as_millis()).unwrap_or(i64::MAX);
    let expires_at = Timestamp::from_millis(
        now.as_millis()
            .saturating_add(ttl_ms)
            .min(grant.expires_at.as_millis()),
    );
    let record = CredentialRecord {
        id: format!("cred_{}", ulid::Ulid::new().to_string().to_lowercase()),
        user: caller.user.clone(),
        grant_id: grant.id.clone(),
        created_at: now,
        expires_at,
    };
    let newest_live = state
        .store
        .scram_credentials(&caller.user, &body.resource, now, 1)
        .await?;
    let iterations = crate::gateway::credential_iterations(
        newest_live.first().map(|(_, secret)| secret),
        gateway.scram_iterations,
    );
    let scram = scram_verifier(&caller.user, &secret, iterations).await?;
    state
        .store
        .create_credential(&record, &hash_secret(&secret), &scram, &*state.clock)
        .await?;
    let sslmode = if gateway.tls { "require" } else { "disable" };
    let host = gateway.address.ip().to_string();
    let host_in_uri = if gateway.address.is_ipv6() {
        format!("[{host}]")
    } else {
        host.clone()
    };
    let uri = format!(
        "postgresql://{}:{secret}@{host_in_uri}:{}/{}?sslmode={sslmode}",
        caller.user,
        gateway.address.port(),
        request.resource
    );
    Ok(Json(ConnectView {
        user: caller.user,
        resource: request.resource.clone(),
        role: request.role.clone(),
        grant_id: grant.id.clone(),
        credential: secret,
        expires_at: expires_at.to_string(),
        grant_expires_at: grant.expires_at.to_string(),
        host,
        port: gateway.address.port(),
        sslmode: sslmode.to_owned(),
        uri,
    }))
}

/// The SCRAM secret the gateway checks `secret`'s proofs against: derived once here
/// (`iterations` HMAC rounds, off the async workers) so that no login derives it again and the
/// credential itself is never stored.
async fn scram_verifier(
    user: &str,
    secret: &str,
    iterations: u32,
) -> Result<ScramSecret, ApiError> {
    let salt = latch_gateway::credential_salt(user);
    let secret = zeroize::Zeroizing::new(secret.to_owned());
    tokio::task::spawn_blocking(move || ScramSecret::derive(&secret, &salt, iterations))
        .await
        .map_err(|err| ApiError::Internal(format!("deriving the SCRAM secret: {err}")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListSessionsQuery {
    /// Only sessions still open.
    active: Option<bool>,
    /// Only the sessions of this grant.
    grant: Option<String>,
    /// At most this many, newest first (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Gateway sessions the caller may see (their own; all for auditors and admins; a resource's
/// for the leads of its owner team).
#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions", params(ListSessionsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "sessions, newest first", body = SessionList),
        (status = 400, description = "bad query", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
pub(crate) async fn list_sessions(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListSessionsQuery>,
) -> Result<Json<SessionList>, ApiError> {
    let limit = crate::routes::check_limit(query.limit)?;
    let rows = state
        .store
        .sessions(&SessionFilter {
            active_only: query.active.unwrap_or(false),
            grant_id: query.grant,
            visibility: state.catalog.get().visibility(&caller.user),
            limit,
        })
        .await?;
    let live = live_counts(&state);
    Ok(Json(SessionList {
        sessions: rows.iter().map(|row| session_view(row, &live)).collect(),
    }))
}

/// A session with every statement recorded in it.
#[utoipa::path(get, path = "/api/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "session id, e.g. `ses_01jd…`")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the session and its statements", body = SessionDetail),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 404, description = "no such session, or not visible to the caller", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
pub(crate) async fn get_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SessionDetail>, ApiError> {
    let missing = || {
        ApiError::not_found(format!(
            "no session `{}`",
            id.chars().take(80).collect::<String>()
        ))
    };
    if id.len() > 80 {
        return Err(missing());
    }
    // Sessions recorded by earlier versions are named in upper case; a ULID is the same id
    // in either case, so either spelling finds the session.
    let mut row = state.store.session(&id).await?;
    if row.is_none()
        && let Some(ulid) = id.strip_prefix("ses_")
    {
        for spelling in [ulid.to_lowercase(), ulid.to_uppercase()] {
            if spelling != ulid {
                row = state.store.session(&format!("ses_{spelling}")).await?;
                if row.is_some() {
                    break;
                }
            }
        }
    }
    let row = row.ok_or_else(missing)?;
    // Someone who may not see it learns nothing, not even that it exists.
    if !state
        .catalog
        .get()
        .visibility(&caller.user)
        .allows(&row.user, &row.resource)
    {
        return Err(missing());
    }
    let mut statements: Vec<StatementView> = Vec::new();
    let mut after = 0;
    loop {
        let page = state.store.subject_events(&row.id, after, 1000).await?;
        let Some((last, _)) = page.last() else {
            break;
        };
        after = last.seq;
        for (event, _) in &page {
            match &event.event.kind {
                EventKind::SessionStatement {
                    seq,
                    text,
                    protocol,
                    class,
                    objects,
                    outcome,
                    rows,
                    detail,
                    duration_us,
                    ..
                } => statements.push(StatementView {
                    event_seq: event.seq,
                    seq: *seq,
                    at: event.event.at.to_string(),
                    text: text.clone(),
                    protocol: protocol.clone(),
                    class: class.clone(),
                    objects: objects.clone(),
                    outcome: outcome.clone(),
                    rows: *rows,
                    detail: detail.clone(),
                    duration_us: *duration_us,
                }),
                EventKind::SessionStatementOutcome {
                    seq,
                    outcome,
                    rows,
                    detail,
                    duration_us,
                    ..
                } => {
                    if let Some(statement) = statements.iter_mut().rev().find(|s| s.seq == *seq) {
                        statement.outcome = outcome.clone();
                        statement.rows = *rows;
                        statement.detail = detail.clone();
                        statement.duration_us = *duration_us;
                    }
                }
                _ => {}
            }
        }
        if page.len() < 1000 {
            break;
        }
    }
    let live = live_counts(&state);
    Ok(Json(SessionDetail {
        session: session_view(&row, &live),
        statements,
    }))
}

/// Statement counts of live sessions, from the gateway (the ledger has them at the end).
fn live_counts(state: &AppState) -> std::collections::HashMap<String, u64> {
    state
        .gateway
        .as_ref()
        .map(|g| {
            g.gateway
                .sessions()
                .into_iter()
                .map(|s| (s.session_id, s.statements))
                .collect()
        })
        .unwrap_or_default()
}

fn session_view(row: &SessionRow, live: &std::collections::HashMap<String, u64>) -> SessionView {
    let statements = if row.ended_at.is_none() {
        live.get(&row.id).copied().unwrap_or(row.statements)
    } else {
        row.statements
    };
    SessionView {
        id: row.id.clone(),
        grant_id: row.grant_id.clone(),
        user: row.user.clone(),
        resource: row.resource.clone(),
        role: row.role.clone(),
        client_addr: row.client_addr.clone(),
        application_name: row.application_name.clone(),
        tls: row.tls,
        auth: row.auth.clone(),
        started_at: row.started_at.to_string(),
        ended_at: row.ended_at.map(|t| t.to_string()),
        end_reason: row.end_reason.clone(),
        end_detail: row.end_detail.clone(),
        bytes_in: row.bytes_in,
        bytes_out: row.bytes_out,
        statements,
        revocation_delay_ms: row.revocation_delay_ms,
    }
}
