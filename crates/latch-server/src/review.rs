//! Evidence packs from the store: the events up to the latest signed checkpoint, the pack
//! `latch-evidence` plans and renders from them, and an inclusion proof per cited event read the
//! way the API's `/ledger/inclusion` reads it. `latch evidence` and the scheduled reviews of
//! `latch serve` both make their packs here.
//!
//! Scheduled reviews (`[reviews]`): a task in `latch serve` waits for a period to close, writes
//! its pack into `out_dir/<period>/` and records `review.due` once per period (the ledger is
//! checked first, so a restart never repeats it); the notifier turns that event into one notice
//! per resource for its owner team's leads. The owners record their outcome as
//! `review.recorded` through `POST /api/v1/reviews`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use latch_api::{ErrorBody, RecordReviewBody, ReviewList, ReviewOutcomeView, ReviewView};
use latch_core::{Actor, Catalog, Event, EventKind, StoredEvent, Timestamp};
use latch_evidence::{Period, PolicyFile};
use latch_ledger::Hash;
use latch_notify::{Notice, ReviewSection};
use latch_store::{Store, StoreError};
use serde::Deserialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::ledger::{Ledger, LedgerError};
use crate::routes::refuse;

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Store(#[from] latch_store::StoreError),
    #[error(
        "the ledger has no signed checkpoint yet: run `latch ledger checkpoint` against the server (or start `latch serve`, which signs one within a second), then make the pack again"
    )]
    NoCheckpoint,
    #[error(
        "the latest signed checkpoint (size {size}, {signed}) does not cover the period's last event (event {seq} at {at}): run `latch ledger checkpoint` against the server, then make the pack again"
    )]
    Uncovered {
        size: u64,
        signed: Timestamp,
        seq: u64,
        at: Timestamp,
    },
    #[error("{0}")]
    Build(#[from] latch_evidence::BuildError),
    #[error(
        "the store's leaf of event {0} differs from the hash of its canonical text: run `latch ledger verify`"
    )]
    Leaf(u64),
}

/// A pack made, with its summary line.
pub struct Pack {
    pub files: BTreeMap<String, Vec<u8>>,
    pub summary: String,
    pub checkpoint_size: u64,
}

/// Makes the pack of `period` from the store, as of its latest signed checkpoint.
pub async fn make_pack(
    store: &dyn Store,
    ledger: &Ledger,
    period: &Period,
    policy_files: &[PolicyFile],
    now: Timestamp,
) -> Result<Pack, PackError> {
    let checkpoint = ledger
        .find_checkpoint(None)
        .await?
        .ok_or(PackError::NoCheckpoint)?;
    let mut events: Vec<StoredEvent> = Vec::new();
    let mut bodies: BTreeMap<u64, String> = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = store.events(after, 5000).await?;
        let Some(last) = page.last() else { break };
        after = last.event.seq;
        for entry in page {
            let latch_store::LedgerEntry { event, body } = std::sync::Arc::unwrap_or_clone(entry);
            if event.seq > checkpoint.size {
                if period.contains(event.event.at) {
                    return Err(PackError::Uncovered {
                        size: checkpoint.size,
                        signed: checkpoint.at,
                        seq: event.seq,
                        at: event.event.at,
                    });
                }
                // Later events outside the period are simply not in this pack.
                continue;
            }
            bodies.insert(event.seq, body);
            events.push(event);
        }
    }
    let plan = latch_evidence::plan(&events, period);
    let mut proofs: BTreeMap<u64, Vec<Hash>> = BTreeMap::new();
    for &seq in &plan.cited {
        let index = seq - 1;
        let (leaf, proof) = ledger.inclusion_proof(index, checkpoint.size).await?;
        let body = bodies.get(&seq).map(String::as_bytes).unwrap_or_default();
        if latch_ledger::leaf_hash(body) != leaf {
            return Err(PackError::Leaf(seq));
        }
        proofs.insert(index, proof);
    }
    let files = latch_evidence::build(&latch_evidence::PackInput {
        plan: &plan,
        events: &bodies,
        checkpoint_note: &checkpoint.note,
        checkpoint_size: checkpoint.size,
        proofs: &proofs,
        public_key: &ledger.verifier_key().to_string(),
        generated_at: now,
        policy_files,
    })?;
    Ok(Pack {
        files,
        summary: plan.summary(),
        checkpoint_size: checkpoint.size,
    })
}

/// Writes `files` under `dir` (which must be new or empty), creating subdirectories.
pub fn write_pack(dir: &Path, files: &BTreeMap<String, Vec<u8>>) -> std::io::Result<()> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!(
                "`{}` exists and is not empty: write the pack into a new directory",
                dir.display()
            ),
        ));
    }
    for (name, bytes) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, bytes)?;
    }
    Ok(())
}

/// `[reviews]` as the review task needs it.
#[derive(Clone, Debug)]
pub struct ReviewSettings {
    pub schedule: latch_evidence::Schedule,
    /// Each period's pack goes into `out_dir/<period>/`.
    pub out_dir: PathBuf,
    /// The config's policy files, read again for each pack (the set in force at the time).
    pub policy_files: Vec<PathBuf>,
    /// How often the task looks for a period that has closed.
    pub poll: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Store(#[from] latch_store::StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Pack(#[from] PackError),
    #[error("cannot write the review pack into `{dir}`: {source}")]
    Write { dir: String, source: std::io::Error },
    #[error("cannot read policy file `{path}`: {source}")]
    Policy {
        path: String,
        source: std::io::Error,
    },
}

/// What one pass of the review task did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReviewPass {
    /// No period has closed since the last review, or its review is already due.
    Nothing,
    /// The ledger is empty: there is nothing to review or to sign yet.
    EmptyLedger,
    /// `review.due` was recorded for `period` (its pack written, unless it already was).
    Due {
        period: String,
        pack_dir: PathBuf,
        wrote_pack: bool,
    },
}

/// The subject of a period's `review.due`.
pub fn due_subject(period: &str) -> String {
    format!("review/{period}")
}

/// The subject of a resource's `review.recorded`.
pub fn recorded_subject(period: &str, resource: &str) -> String {
    format!("review/{period}/{resource}")
}

/// Events of `event_type`, all of them, in order.
async fn all_of_type(store: &dyn Store, event_type: &str) -> Result<Vec<StoredEvent>, StoreError> {
    let mut out: Vec<StoredEvent> = Vec::new();
    loop {
        let after = out.last().map_or(0, |e| e.seq);
        let page = store.events_of_type(event_type, after, 1000).await?;
        let full = page.len() == 1000;
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

/// The policy files' text, as a pack copies them (the set in force when the pack is made).
pub async fn read_policy_files(paths: &[PathBuf]) -> Result<Vec<PolicyFile>, ReviewError> {
    let mut policy = Vec::new();
    for path in paths {
        let text = tokio::fs::read_to_string(path)
            .await
            .map_err(|source| ReviewError::Policy {
                path: path.display().to_string(),
                source,
            })?;
        policy.push(PolicyFile {
            path: path.display().to_string(),
            text,
        });
    }
    Ok(policy)
}

/// One pass: when the schedule's last closed period has no `review.due` yet, writes its pack
/// into `out_dir/<period>/` (unless that directory is already there: an earlier pass wrote it
/// and stopped before recording) and records `review.due` naming every resource.
pub async fn review_pass(
    state: &AppState,
    settings: &ReviewSettings,
) -> Result<ReviewPass, ReviewError> {
    let now = state.clock.now();
    let Some(period) = settings.schedule.last_closed(now) else {
        return Ok(ReviewPass::Nothing);
    };
    // INVARIANT: one `review.due` per period. The ledger says whether it was recorded; the
    // directory only whether the pack was written.
    let subject = due_subject(&period.label);
    let recorded = all_of_type(&*state.store, "review.due")
        .await?
        .iter()
        .any(|e| e.event.subject == subject);
    if recorded {
        return Ok(ReviewPass::Nothing);
    }
    let dir = settings.out_dir.join(&period.label);
    let mut wrote_pack = false;
    if !dir.exists() {
        // The period is over, so every event of it is in the ledger: sign a checkpoint that
        // covers them all.
        if state.ledger.checkpoint().await?.is_none() {
            return Ok(ReviewPass::EmptyLedger);
        }
        let policy = read_policy_files(&settings.policy_files).await?;
        let pack = make_pack(&*state.store, &state.ledger, &period, &policy, now).await?;
        // Written beside and renamed into place, so that `dir` exists only whole.
        let partial = settings.out_dir.join(format!(".{}.partial", period.label));
        let write = |err: std::io::Error| ReviewError::Write {
            dir: dir.display().to_string(),
            source: err,
        };
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(write)?;
        }
        write_pack(&partial, &pack.files).map_err(write)?;
        std::fs::rename(&partial, &dir).map_err(write)?;
        wrote_pack = true;
        tracing::info!(period = %period.label, dir = %dir.display(), summary = %pack.summary, "review pack written");
    }
    let resources: Vec<String> = state.catalog.get().resources.keys().cloned().collect();
    let event = Event {
        at: now,
        actor: Actor::System,
        subject,
        kind: EventKind::ReviewDue {
            period: period.label.clone(),
            pack_dir: dir.display().to_string(),
            resources,
        },
    };
    // Another replica may have recorded it since the check above: the store appends it once.
    if state.store.record_once(event).await?.is_none() {
        return Ok(ReviewPass::Nothing);
    }
    tracing::info!(period = %period.label, "review due: owners notified");
    Ok(ReviewPass::Due {
        period: period.label,
        pack_dir: dir,
        wrote_pack,
    })
}

/// The review task of `latch serve`: a pass at start and every `settings.poll` until
/// `shutdown`. Failures are logged and retried at the next pass.
pub async fn run(state: AppState, settings: ReviewSettings, shutdown: CancellationToken) {
    loop {
        match review_pass(&state, &settings).await {
            Ok(ReviewPass::EmptyLedger) => {
                tracing::debug!("review due, but the ledger is empty: waiting for events");
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(%err, "scheduled review failed; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(settings.poll) => {}
        }
    }
}

/// Each resource's section of a pack's `report.json` (its `accesses`; a missing or unreadable
/// report gives empty sections).
fn sections(report: Option<&Value>) -> BTreeMap<String, ReviewSection> {
    let mut out: BTreeMap<String, ReviewSection> = BTreeMap::new();
    let rows = report
        .and_then(|r| r.get("accesses"))
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for row in rows {
        let Some(resource) = row.get("resource").and_then(Value::as_str) else {
            continue;
        };
        let section = out.entry(resource.to_owned()).or_default();
        section.accesses += 1;
        if row.get("granted_at").is_some_and(|v| !v.is_null()) {
            section.granted += 1;
        }
        if row.get("break_glass").and_then(Value::as_bool) == Some(true) {
            section.break_glass += 1;
        }
        section.findings += row
            .get("findings")
            .and_then(Value::as_array)
            .map_or(0, |f| f.len() as u64);
        if let Some(requester) = row.get("requester").and_then(Value::as_str)
            && !section.requesters.iter().any(|r| r == requester)
        {
            section.requesters.push(requester.to_owned());
            section.requesters.sort();
        }
    }
    out
}

/// The notices of a `review.due`: one per resource, for its owner team's leads, with the
/// resource's section of the period's report (read from the pack).
pub async fn due_notices(stored: &StoredEvent, catalog: &Catalog) -> Vec<Notice> {
    let EventKind::ReviewDue {
        period,
        pack_dir,
        resources,
    } = &stored.event.kind
    else {
        return Vec::new();
    };
    let report = tokio::fs::read(Path::new(pack_dir).join(latch_evidence::files::REPORT_JSON))
        .await
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
    let mut sections = sections(report.as_ref());
    resources
        .iter()
        .map(|resource| {
            let reviewers = owner_leads(catalog, resource);
            Notice::review_due(
                stored.event.at,
                period,
                pack_dir,
                resource,
                reviewers,
                sections.remove(resource).unwrap_or_default(),
                Some(stored.canonical_json()),
            )
        })
        .collect()
}

/// The leads of `resource`'s owner team, sorted.
fn owner_leads(catalog: &Catalog, resource: &str) -> Vec<String> {
    catalog
        .resources
        .get(resource)
        .and_then(|r| catalog.teams.get(&r.owner_team))
        .map(|team| team.leads.iter().cloned().collect())
        .unwrap_or_default()
}

/// `approved` or `changes_needed`, from what the caller wrote.
fn parse_outcome(text: &str) -> Option<&'static str> {
    match text {
        "approved" => Some("approved"),
        "changes_needed" | "changes-needed" => Some("changes_needed"),
        _ => None,
    }
}

fn outcome_view(stored: &StoredEvent) -> Option<ReviewOutcomeView> {
    let EventKind::ReviewRecorded {
        period,
        resource,
        outcome,
        comment,
    } = &stored.event.kind
    else {
        return None;
    };
    Some(ReviewOutcomeView {
        seq: stored.seq,
        period: period.clone(),
        resource: resource.clone(),
        outcome: outcome.clone(),
        reviewer: stored.event.actor.to_string(),
        at: stored.event.at.to_string(),
        comment: comment.clone(),
    })
}

/// Record an owner's review of a resource's access over a closed period (leads of the
/// resource's owner team, and admins).
#[utoipa::path(post, path = "/api/v1/reviews", tag = "audit", request_body = RecordReviewBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "recorded in the ledger as `review.recorded`", body = ReviewOutcomeView),
        (status = 400, description = "bad period (unknown or not closed yet), unknown resource, bad outcome or empty comment", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not a lead of the resource's owner team nor an admin", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
pub(crate) async fn record_review(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<RecordReviewBody>,
) -> Result<(StatusCode, Json<ReviewOutcomeView>), ApiError> {
    let period =
        Period::parse(body.period.trim()).map_err(|err| ApiError::BadRequest(err.to_string()))?;
    let now = state.clock.now();
    if period.to > now {
        return Err(ApiError::BadRequest(format!(
            "period `{}` has not closed yet (it ends {}): review a period that is over",
            period.label, period.to
        )));
    }
    let outcome = parse_outcome(&body.outcome).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "unknown outcome `{}` (expected `approved` or `changes_needed`)",
            body.outcome.chars().take(40).collect::<String>()
        ))
    })?;
    let comment = body.comment.trim().to_owned();
    if comment.is_empty() {
        return Err(ApiError::BadRequest(
            "comment is empty: say what was reviewed, or what must change".into(),
        ));
    }
    if comment.chars().count() > 2000 {
        return Err(ApiError::BadRequest(
            "comment must be at most 2000 characters".into(),
        ));
    }
    let catalog = state.catalog.get();
    let Some(resource) = catalog.resources.get(&body.resource) else {
        let known: Vec<&str> = catalog.resources.keys().map(String::as_str).collect();
        return Err(ApiError::BadRequest(format!(
            "unknown resource `{}` (resources: {})",
            body.resource.chars().take(80).collect::<String>(),
            known.join(", ")
        )));
    };
    let subject = recorded_subject(&period.label, &resource.name);
    if !(catalog.leads_team(&caller.user, &resource.owner_team) || caller.is_admin(&catalog)) {
        let error = ApiError::forbidden(format!(
            "`{}` may not record the review of `{}`: leads of its owner team `{}` and admins may",
            caller.user, resource.name, resource.owner_team
        ));
        return Err(refuse(&state, &caller, "record review", &subject, error).await);
    }
    let event = Event {
        at: now,
        actor: Actor::user(caller.user.clone()),
        subject,
        kind: EventKind::ReviewRecorded {
            period: period.label.clone(),
            resource: resource.name.clone(),
            outcome: outcome.to_owned(),
            comment,
        },
    };
    let stored = state.store.record(vec![event]).await?;
    let view = stored
        .first()
        .and_then(outcome_view)
        .ok_or_else(|| ApiError::Internal("the review was recorded but not returned".into()))?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListReviewsQuery {
    /// Only this period, e.g. `2026-Q3`.
    period: Option<String>,
}

/// Reviews due and the outcomes recorded: auditors and admins see all, the leads of an owner
/// team those of their team's resources.
#[utoipa::path(get, path = "/api/v1/reviews", tag = "audit", params(ListReviewsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "reviews, newest period first", body = ReviewList),
        (status = 400, description = "bad period", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "neither an auditor, an admin nor a lead of an owner team", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
pub(crate) async fn list_reviews(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListReviewsQuery>,
) -> Result<Json<ReviewList>, ApiError> {
    let period = match query.period.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(
            Period::parse(text)
                .map_err(|err| ApiError::BadRequest(err.to_string()))?
                .label,
        ),
    };
    let catalog = state.catalog.get();
    let everything = catalog.sees_everything(&caller.user);
    let owned: BTreeSet<&str> = catalog
        .resources
        .values()
        .filter(|r| catalog.leads_team(&caller.user, &r.owner_team))
        .map(|r| r.name.as_str())
        .collect();
    if !everything && owned.is_empty() {
        let error = ApiError::forbidden(format!(
            "`{}` may not read reviews: auditors, admins and the leads of a resource's owner team may",
            caller.user
        ));
        return Err(refuse(&state, &caller, "read reviews", "/api/v1/reviews", error).await);
    }
    let visible = |resource: &str| everything || owned.contains(resource);
    let wanted = |p: &str| period.as_deref().is_none_or(|want| want == p);
    let mut reviews: BTreeMap<(String, String), ReviewView> = BTreeMap::new();
    let owner = |resource: &str| {
        catalog
            .resources
            .get(resource)
            .map(|r| r.owner_team.clone())
    };
    for due in all_of_type(&*state.store, "review.due").await? {
        let EventKind::ReviewDue {
            period,
            pack_dir,
            resources,
        } = &due.event.kind
        else {
            continue;
        };
        if !wanted(period) {
            continue;
        }
        for resource in resources.iter().filter(|r| visible(r)) {
            reviews.insert(
                (period.clone(), resource.clone()),
                ReviewView {
                    period: period.clone(),
                    resource: resource.clone(),
                    owner_team: owner(resource),
                    due_at: Some(due.event.at.to_string()),
                    pack_dir: Some(pack_dir.clone()),
                    status: "pending".to_owned(),
                    outcomes: Vec::new(),
                },
            );
        }
    }
    for recorded in all_of_type(&*state.store, "review.recorded").await? {
        let Some(outcome) = outcome_view(&recorded) else {
            continue;
        };
        if !wanted(&outcome.period) || !visible(&outcome.resource) {
            continue;
        }
        let view = reviews
            .entry((outcome.period.clone(), outcome.resource.clone()))
            .or_insert_with(|| ReviewView {
                period: outcome.period.clone(),
                resource: outcome.resource.clone(),
                owner_team: owner(&outcome.resource),
                due_at: None,
                pack_dir: None,
                status: "pending".to_owned(),
                outcomes: Vec::new(),
            });
        view.status = outcome.outcome.clone();
        view.outcomes.push(outcome);
    }
    // Newest period first: periods of one schedule sort by their label, and the start of a
    // period orders labels of different kinds.
    let mut reviews: Vec<ReviewView> = reviews.into_values().collect();
    reviews.sort_by(|a, b| {
        let start = |p: &str| Period::parse(p).map(|p| p.from).ok();
        start(&b.period)
            .cmp(&start(&a.period))
            .then_with(|| b.period.cmp(&a.period))
            .then_with(|| a.resource.cmp(&b.resource))
    });
    Ok(Json(ReviewList { reviews }))
}
