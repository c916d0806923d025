//! The backend's HTTP surface: one router, one place that decides the layer order.
//!
//! Routes: `/api/v1/…` (REST, user JWT), `/mcp` (MCP Streamable HTTP, user JWT),
//! `/internal/…` (service invocation from our other services, app API token), `/healthz`,
//! `/readyz`, `/metrics`.

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::middleware::{from_fn_with_state, map_response};
use axum::response::Response;
use middleware::health::Health;
use middleware::{
    AppTokenLayer, ErrorBody, HttpMetricsLayer, Metrics, metrics_router,
    trace::observability_layers,
};
use tower_http::limit::RequestBodyLimitLayer;

use crate::auth::{Authenticator, require_user};
use crate::service::TaskService;
use crate::{internal, mcp, rest};

/// Largest request body accepted anywhere (tasks are small; this stops abuse early).
const MAX_BODY_BYTES: usize = 256 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The service layer shared by REST, MCP and internal routes.
    pub service: TaskService,
    /// Verifies user tokens.
    pub auth: Arc<Authenticator>,
    /// The sidecar (readiness, secrets).
    pub dapr: dapr::DaprClient,
    /// Prometheus registry and the shared metrics.
    pub metrics: Metrics,
}

/// Builds the complete router.
pub fn router(state: AppState, app_token: AppTokenLayer) -> Router {
    let routes = Router::new()
        // REST decides per route which need a user (the OpenAPI document does not).
        .nest("/api/v1", rest::router(state.clone()))
        .nest(
            "/mcp",
            mcp::router(state.clone()).layer(from_fn_with_state(state.clone(), require_user)),
        )
        // Only our own services call these, through their sidecars, which present the token.
        .nest("/internal", internal::router().layer(app_token))
        // Ready when the database answers and the sidecar's outbound API is up: writes would
        // still be accepted without the sidecar (the outbox holds events), but a replica that
        // cannot publish should not take traffic while another can.
        .merge(
            Health::new()
                .check("database", {
                    let pool = state.service.pool().clone();
                    move || {
                        let pool = pool.clone();
                        async move {
                            sqlx::query("SELECT 1")
                                .execute(&pool)
                                .await
                                .map(drop)
                                .map_err(|e| e.to_string())
                        }
                    }
                })
                .sidecar(state.dapr.clone())
                .router(),
        )
        // Inside the routes so the matched route template labels each series.
        .route_layer(HttpMetricsLayer::new(state.metrics.clone()))
        .merge(metrics_router(state.metrics.clone()))
        .with_state(state);
    routes
        // Body limit before any handler reads a byte.
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        // Around the limit, so its plain-text 413 leaves as our JSON error.
        .layer(map_response(json_payload_too_large))
        // Outermost: request id, span and trace context cover everything above.
        .layer(observability_layers())
}

/// Rewrites the body-limit layer's plain-text 413 as the JSON error every other route answers.
async fn json_payload_too_large(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE || is_json {
        return response;
    }
    ErrorBody::new(
        "PAYLOAD_TOO_LARGE",
        format!("request bodies are limited to {MAX_BODY_BYTES} bytes"),
    )
    .into_response_with(StatusCode::PAYLOAD_TOO_LARGE)
}
