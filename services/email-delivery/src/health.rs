//! Liveness and readiness.
//!
//! `/healthz` only says the process serves HTTP. `/readyz` says whether deliveries can be
//! settled now, which needs the sidecar (state store, publishing). The mail server is
//! deliberately not checked: while it is down deliveries answer `RETRY` and lose nothing, and
//! an unready pod would not change that.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use dapr::DaprClient;
use serde_json::json;

/// How long the sidecar check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz` and `GET /readyz`.
pub fn router<S>(dapr: DaprClient) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .with_state(dapr)
}

async fn readyz(State(dapr): State<DaprClient>) -> impl IntoResponse {
    let sidecar = match tokio::time::timeout(CHECK_TIMEOUT, dapr.healthz_outbound()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_owned()),
    };
    let (status, body) = match sidecar {
        Ok(()) => (
            StatusCode::OK,
            json!({"status": "ready", "checks": {"sidecar": "ok"}}),
        ),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "not ready", "checks": {"sidecar": {"error": error}}}),
        ),
    };
    (status, Json(body))
}
