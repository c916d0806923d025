//! The service's HTTP surface: one router, one place that decides the layer order.
//!
//! Routes: `POST /events/task-recurrence` (deliveries from daprd), `GET /dapr/subscribe`,
//! `/healthz`, `/readyz`, `/metrics`.

use std::sync::Arc;

use axum::Router;
use axum::routing::post;
use middleware::{AppTokenLayer, Metrics, consumer_router, event_route_layers};

use crate::metrics::OccurrenceMetrics;
use crate::{EVENTS_ROUTE, occurrence, subscriptions};

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Our sidecar: service invocation of the backend, readiness.
    pub dapr: dapr::DaprClient,
    /// Dapr app id of the backend.
    pub backend_app_id: Arc<str>,
    /// Prometheus registry and the shared metrics.
    pub metrics: Metrics,
    /// This service's own counters, registered in `metrics`' registry.
    pub occurrences: OccurrenceMetrics,
}

impl AppState {
    /// State calling `backend_app_id` through `dapr`, with the service counters registered in
    /// `metrics`.
    pub fn new(
        dapr: dapr::DaprClient,
        backend_app_id: impl Into<Arc<str>>,
        metrics: Metrics,
    ) -> Result<Self, prometheus::Error> {
        let occurrences = OccurrenceMetrics::register(metrics.registry(), crate::APP_ID)?;
        Ok(Self {
            dapr,
            backend_app_id: backend_app_id.into(),
            metrics,
            occurrences,
        })
    }
}

/// Builds the complete router.
pub fn router(state: AppState, app_token: AppTokenLayer) -> Router {
    let events = Router::new()
        .route(EVENTS_ROUTE, post(occurrence::on_task_recurrence))
        .route_layer(event_route_layers(&state.metrics))
        .with_state(state.clone());
    // Ready when our sidecar is: without it no event is handled.
    consumer_router(
        events,
        subscriptions().router(),
        state.dapr,
        state.metrics,
        app_token,
    )
}
