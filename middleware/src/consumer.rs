//! The router stack of an event consumer, in one place.
//!
//! notification, email-delivery and recurring-task each receive pub/sub deliveries (and
//! notification job triggers) from their sidecar, and all three wear the same stack, in the
//! order the crate documentation explains: observability outermost, then the app token, HTTP
//! metrics by route template, and on the delivery routes the CloudEvent decoder over the Dapr
//! status mapping. [`event_route_layers`] and [`consumer_router`] build it, so a fourth
//! consumer, or a change of order, is written once.

use axum::Router;
use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};

use crate::health::Health;
use crate::metrics_router;
use crate::trace::observability_layers;
use crate::{AppTokenLayer, CloudEventLayer, DaprStatusLayer, HttpMetricsLayer, Metrics};

/// The layers of a route that receives pub/sub deliveries, for `Router::route_layer`: the
/// CloudEvent layer reads the body under a limit, answers `DROP` for garbage and counts each
/// event's final status; inside it the Dapr status layer turns whatever the handler (or an
/// extractor) answers into a `200` with a Dapr status before the count is taken.
pub fn event_route_layers(
    metrics: &Metrics,
) -> ServiceBuilder<Stack<DaprStatusLayer, Stack<CloudEventLayer, Identity>>> {
    ServiceBuilder::new()
        .layer(CloudEventLayer::new().metrics(metrics.clone()))
        .layer(DaprStatusLayer::new())
}

/// A consumer's complete router: its own `routes` (delivery routes under
/// [`event_route_layers`], job routes) with the `subscriptions` table (`/dapr/subscribe`), and
/// `/healthz` and `/readyz` (ready when `sidecar` is: without it nothing is handled), all counted
/// by route template; then `/metrics`; behind the app token (health and metrics stay open for
/// probes, see [`AppTokenLayer`]); observability outermost, so every log line carries the
/// request and trace ids.
pub fn consumer_router(
    routes: Router,
    subscriptions: Router,
    sidecar: dapr::DaprClient,
    metrics: Metrics,
    app_token: AppTokenLayer,
) -> Router {
    Router::new()
        .merge(routes)
        .merge(subscriptions)
        .merge(Health::new().sidecar(sidecar).router())
        // Inside the routes, so the matched route template labels each series.
        .route_layer(HttpMetricsLayer::new(metrics.clone()))
        .merge(metrics_router(metrics))
        .layer(app_token)
        .layer(observability_layers())
}
