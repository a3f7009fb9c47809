//! latch's server: the `/api/v1` HTTP API with its OpenAPI document, health and metrics
//! endpoints, token authentication, and the scheduler that ends access on time.

pub mod accesses;
pub mod analytics;
pub mod audit;
pub mod auth;
pub mod error;
mod extract;
pub mod gateway;
pub mod ledger;
pub mod metrics;
pub mod notify;
pub mod review;
mod routes;
pub mod scheduler;
mod sessions;
pub mod sink;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use latch_core::Catalog;
use latch_core::time::Clock;
use latch_store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The organisation and policy in force, replaced as a whole on reload: a request is decided
/// against one version from start to end.
pub struct LiveCatalog(std::sync::RwLock<Arc<Catalog>>);

impl LiveCatalog {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self(std::sync::RwLock::new(catalog))
    }

    pub fn get(&self) -> Arc<Catalog> {
        // A poisoned lock still holds a whole catalog: swapping an Arc cannot half-happen.
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn replace(&self, catalog: Arc<Catalog>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = catalog;
    }
}

/// Reads the organisation and policies again (from the config file): the binary provides it.
pub trait Reloader: Send + Sync {
    /// The new catalog, with its policy engine, and the policy set's identity; or every problem,
    /// as text to show the admin.
    fn load(&self) -> Result<Loaded, String>;
}

/// A freshly loaded organisation and policy set.
pub struct Loaded {
    pub catalog: Catalog,
    /// `None` under the built-in rule.
    pub policy: Option<PolicySetId>,
    /// Settings that changed but only apply after a restart (to tell the admin).
    pub needs_restart: Vec<String>,
}

/// What identifies a policy set in the ledger (`policy.loaded`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicySetId {
    pub hash: String,
    pub files: Vec<String>,
    pub policies: u64,
}

/// Appends `policy.loaded` when `policy` differs from the last one recorded, so that the ledger
/// says which rules were in force for every decision after it. Returns whether it did.
pub async fn record_policy_set(
    store: &dyn Store,
    clock: &dyn Clock,
    policy: &PolicySetId,
) -> Result<bool, latch_store::StoreError> {
    let last = store.last_event_of_type("policy.loaded").await?;
    let unchanged = matches!(
        last.map(|e| e.event.kind),
        Some(latch_core::EventKind::PolicyLoaded { hash, .. }) if hash == policy.hash
    );
    if unchanged {
        return Ok(false);
    }
    let event = latch_core::Event {
        at: clock.now(),
        actor: latch_core::Actor::System,
        subject: "policy".to_owned(),
        kind: latch_core::EventKind::PolicyLoaded {
            hash: policy.hash.clone(),
            files: policy.files.clone(),
            policies: policy.policies,
        },
    };
    store.record(vec![event]).await?;
    Ok(true)
}

/// Reloads through the state's [`Reloader`]: the new policy set is recorded first, then put in
/// force. On any problem nothing changes.
pub async fn reload(state: &AppState) -> Result<latch_api::ReloadView, error::ApiError> {
    let Some(reloader) = state.reloader.clone() else {
        return Err(error::ApiError::Unavailable(
            "this server was started without a config file to reload".into(),
        ));
    };
    // Reading files is blocking work.
    let loaded = tokio::task::spawn_blocking(move || reloader.load())
        .await
        .map_err(|err| error::ApiError::Unavailable(format!("reload failed: {err}")))?
        .map_err(|problems| {
            tracing::warn!(%problems, "reload refused; the configuration in force is unchanged");
            error::ApiError::Refused(latch_core::Refusal {
                kind: latch_core::RefusalKind::Invalid,
                message: format!("nothing was changed: {problems}"),
            })
        })?;
    // One reload at a time, so that the ledger's order of policy sets is the order in force.
    let _one_at_a_time = state.reloading.lock().await;
    let recorded = match &loaded.policy {
        Some(policy) => record_policy_set(&*state.store, &*state.clock, policy).await?,
        None => false,
    };
    state.catalog.replace(Arc::new(loaded.catalog));
    tracing::info!(
        policy = loaded
            .policy
            .as_ref()
            .map_or("built-in", |p| p.hash.as_str()),
        changed = recorded,
        "configuration reloaded"
    );
    for setting in &loaded.needs_restart {
        tracing::warn!(
            setting,
            "changed in the config file; applies after a restart"
        );
    }
    Ok(latch_api::ReloadView {
        policy_hash: loaded.policy.as_ref().map(|p| p.hash.clone()),
        policies: loaded.policy.as_ref().map_or(0, |p| p.policies),
        policy_changed: recorded,
        needs_restart: loaded.needs_restart,
    })
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub catalog: Arc<LiveCatalog>,
    /// Re-reads the config on SIGHUP and `POST /api/v1/admin/reload`; `None` in tests that
    /// build a catalog by hand.
    pub reloader: Option<Arc<dyn Reloader>>,
    /// The PostgreSQL gateway when the config enables it: `latch connect` needs its address,
    /// and a revocation ends its sessions.
    pub gateway: Option<gateway::GatewayHandle>,
    /// The audit checkpoints' configuration when they run (`latch serve` starts them).
    pub audit: Option<audit::AuditConfig>,
    /// Notification channels and routes when configured (`[notify]`).
    pub notify: Option<Arc<notify::NotifyConfig>>,
    /// The config's Cedar policy files, copied into evidence packs made by the server.
    pub policy_files: Arc<Vec<std::path::PathBuf>>,
    /// Slack interactions already seen (a captured request cannot be replayed).
    pub slack_replays: Arc<std::sync::Mutex<latch_notify::ReplayGuard>>,
    reloading: Arc<tokio::sync::Mutex<()>>,
    pub clock: Arc<dyn Clock>,
    pub ledger: Arc<ledger::Ledger>,
    pub metrics: Arc<metrics::Metrics>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        clock: Arc<dyn Clock>,
        signing_key: latch_ledger::SigningKey,
    ) -> Self {
        let ledger = Arc::new(ledger::Ledger::new(
            store.clone(),
            signing_key,
            clock.clone(),
        ));
        Self {
            store,
            catalog: Arc::new(LiveCatalog::new(catalog)),
            reloader: None,
            gateway: None,
            audit: None,
            notify: None,
            policy_files: Arc::new(Vec::new()),
            slack_replays: Arc::new(std::sync::Mutex::new(latch_notify::ReplayGuard::new(
                10_000,
            ))),
            reloading: Arc::new(tokio::sync::Mutex::new(())),
            clock,
            ledger,
            metrics: metrics::Metrics::new(),
        }
    }
}

/// How often the background tasks run.
#[derive(Clone, Copy, Debug)]
pub struct Intervals {
    /// Expiry and timeouts wait up to this long.
    pub scheduler: Duration,
    /// A checkpoint is signed this often while the ledger grows.
    pub checkpoint: Duration,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "latch",
        description = "Just-in-time access: request, approve, grant, expire, with every step in a tamper-evident ledger."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "requests", description = "Access requests and their decisions"),
        (name = "grants", description = "Time-bound grants"),
        (name = "identity", description = "The caller"),
        (name = "audit", description = "The ledger: events, signed checkpoints, proofs"),
        (name = "admin", description = "Running latch"),
        (name = "sessions", description = "Gateway sessions and their statements"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, api) = utoipa_axum::router::OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::api())
        .split_for_parts();
    api
}

/// Every route: the API, its document, health, readiness and metrics.
pub fn router(state: AppState) -> Router {
    let (api, doc) = utoipa_axum::router::OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::api())
        .split_for_parts();
    let doc = Arc::new(doc);
    api.route(
        "/api/v1/openapi.json",
        get(move || {
            let doc = doc.clone();
            async move { axum::Json((*doc).clone()) }
        }),
    )
    .route("/healthz", get(|| async { "ok\n" }))
    .route(
        "/slack/interactions",
        axum::routing::post(notify::slack_interactions),
    )
    .route("/readyz", get(readyz))
    .route("/metrics", get(metrics::render))
    .merge(web::router())
    .fallback(|| async { error::ApiError::not_found("no such endpoint: see /api/v1/openapi.json") })
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        metrics::track,
    ))
    .with_state(state)
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(err) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {err}\n"),
        ),
    }
}

/// Serves the API on `listener` and runs the scheduler until `shutdown`, then drains: open
/// requests finish, the scheduler stops, and everything is joined within a grace period.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    intervals: Intervals,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let tracker = TaskTracker::new();
    tracker.spawn(scheduler::run(
        state.store.clone(),
        state.catalog.clone(),
        state.clock.clone(),
        intervals.scheduler,
        shutdown.clone(),
    ));
    tracker.spawn(ledger::run(
        state.ledger.clone(),
        intervals.checkpoint,
        shutdown.clone(),
    ));
    tracker.spawn(accesses::run(
        state.store.clone(),
        accesses::INTERVAL,
        shutdown.clone(),
    ));
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await;
    shutdown.cancel();
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(10), tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("background tasks did not stop within 10s");
    }
    served
}
