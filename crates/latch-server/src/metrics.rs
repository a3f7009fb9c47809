//! Prometheus metrics: request states and active grants read from the store at scrape time,
//! and API latency recorded by a middleware.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::AppState;
use crate::error::ApiError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

/// The metrics latch exports.
pub struct Metrics {
    registry: Registry,
    latency: Family<RouteLabels, Histogram>,
    requests: Family<StateLabels, Gauge>,
    grants_active: Gauge,
    events: Gauge,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("latch");
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "api_request_duration_seconds",
            "API latency by route and status",
            latency.clone(),
        );
        let requests = Family::<StateLabels, Gauge>::default();
        registry.register("requests", "Access requests by state", requests.clone());
        let grants_active = Gauge::default();
        registry.register(
            "grants_active",
            "Grants currently active",
            grants_active.clone(),
        );
        let events = Gauge::default();
        registry.register("ledger_events", "Events in the ledger", events.clone());
        Arc::new(Self {
            registry,
            latency,
            requests,
            grants_active,
            events,
        })
    }
}

/// Records every API call's latency under its route template (never its raw path, whose ids
/// would explode the label set).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let labels = RouteLabels {
        method,
        route,
        status: response.status().as_u16(),
    };
    state
        .metrics
        .latency
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics` in the Prometheus text format.
pub async fn render(State(state): State<AppState>) -> Result<Response, ApiError> {
    let counts = state.store.counts().await?;
    let metrics = &state.metrics;
    for request_state in latch_core::RequestState::ALL {
        let count = counts
            .requests_by_state
            .iter()
            .find(|(s, _)| *s == request_state)
            .map_or(0, |(_, n)| *n);
        metrics
            .requests
            .get_or_create(&StateLabels {
                state: request_state.as_str().to_owned(),
            })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
    metrics
        .grants_active
        .set(i64::try_from(counts.active_grants).unwrap_or(i64::MAX));
    metrics
        .events
        .set(i64::try_from(counts.events).unwrap_or(i64::MAX));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &metrics.registry)
        .map_err(|err| ApiError::Internal(err.to_string()))?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
