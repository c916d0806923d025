//! The service's HTTP surface: one router, one place that decides the layer order.
//!
//! Routes: `POST /events/task-reminders` (Dapr deliveries), `GET /dapr/subscribe`,
//! `/healthz`, `/readyz`, `/metrics`.

use axum::Router;
use axum::routing::post;
use dapr::DaprClient;
use middleware::{AppTokenLayer, Metrics, consumer_router, event_route_layers};

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
        .route_layer(event_route_layers(&state.metrics))
        .with_state(state.delivery);
    // Ready when our sidecar is: without it no mail is claimed or recorded.
    consumer_router(
        events,
        subscriptions().router(),
        state.dapr,
        state.metrics,
        app_token,
    )
}
