//! The service's HTTP surface: one router, one place that decides the layer order.
//!
//! Routes: `POST /events/task-reminders` (Dapr deliveries), `GET /dapr/subscribe`,
//! `/healthz`, `/readyz`, `/metrics`.

use axum::Router;
use axum::routing::post;
use dapr::DaprClient;
use middleware::health::Health;
use middleware::{
    AppTokenLayer, CloudEventLayer, DaprStatusLayer, HttpMetricsLayer, Metrics, metrics_router,
    trace::observability_layers,
};
use tower::ServiceBuilder;

use crate::delivery::{self, Delivery};
use crate::{EVENTS_PATH, subscriptions};

/// What the router needs.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Handles deliveries.
    pub delivery: Delivery,
    /// The sidecar, for readiness.
    pub dapr: DaprClient,
    /// The shared registry, for HTTP/consumed metrics and `/metrics`.
    pub metrics: Metrics,
}

/// Builds the complete router; `app_token` guards everything but health and metrics.
pub fn router(state: AppState, app_token: AppTokenLayer) -> Router {
    let events = Router::new()
        .route(EVENTS_PATH, post(delivery::on_reminder))
        .route_layer(
            ServiceBuilder::new()
                // Reads the body under a limit, decodes the CloudEvent (garbage → DROP) and
                // counts every delivery with the status Dapr finally got.
                .layer(CloudEventLayer::new().metrics(state.metrics.clone()))
                // Innermost: whatever the handler or an extractor answers becomes a 200 with a
                // Dapr status before the layer above records it.
                .layer(DaprStatusLayer::new()),
        )
        .with_state(state.delivery);
    Router::new()
        .merge(events)
        .merge(subscriptions().router())
        // Ready when our sidecar is: without it no mail is claimed or recorded.
        .merge(Health::new().sidecar(state.dapr).router())
        // Inside the routes, so the matched route template labels each series.
        .route_layer(HttpMetricsLayer::new(state.metrics.clone()))
        .merge(metrics_router(state.metrics))
        // Only our sidecar may deliver; health and metrics stay open for probes.
        .layer(app_token)
        // Outermost: request id, span and trace context cover everything above.
        .layer(observability_layers())
}
