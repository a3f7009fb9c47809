//! latch's server: the `/api/v1` HTTP API with its OpenAPI document, health and metrics
//! endpoints, token authentication, and the scheduler that ends access on time.

pub mod auth;
pub mod error;
mod extract;
pub mod ledger;
pub mod metrics;
mod routes;
pub mod scheduler;

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

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub catalog: Arc<Catalog>,
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
            catalog,
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
    .route("/readyz", get(readyz))
    .route("/metrics", get(metrics::render))
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
