//! The service's HTTP surface: one router, one place that decides the layer order.
//!
//! Routes: `POST /events/task-recurrence` (deliveries from daprd), `GET /dapr/subscribe`,
//! `/healthz`, `/readyz`, `/metrics`.

use std::sync::Arc;

use axum::Router;
use axum::routing::post;
use middleware::health::Health;
use middleware::{
    AppTokenLayer, CloudEventLayer, DaprStatusLayer, HttpMetricsLayer, Metrics, metrics_router,
    trace::observability_layers,
};
use tower::ServiceBuilder;

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
        .route_layer(
            ServiceBuilder::new()
                // Reads the body under a limit, DROPs garbage, counts each event's final status.
                .layer(CloudEventLayer::new().metrics(state.metrics.clone()))
                // Innermost: whatever the handler answers reaches daprd as 200 + a status.
                .layer(DaprStatusLayer::new()),
        );
    Router::new()
        .merge(events)
        .merge(subscriptions().router())
        // Ready when our sidecar is: without it no event is handled.
        .merge(Health::new().sidecar(state.dapr.clone()).router())
        // Inside the routes so the matched route template labels each series.
        .route_layer(HttpMetricsLayer::new(state.metrics.clone()))
        .merge(metrics_router(state.metrics.clone()))
        .with_state(state)
        // Only our sidecar may deliver events (health and metrics stay open).
        .layer(app_token)
        // Outermost: request id, span and trace context cover everything above.
        .layer(observability_layers())
}
