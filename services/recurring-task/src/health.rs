//! Liveness and readiness.
//!
//! `/healthz` only says the process serves HTTP. `/readyz` also asks the sidecar's outbound
//! health: without it no occurrence can be created, so a replica should not count as ready.
//! The backend is not probed — it is another app with its own probes, and an unreachable
//! backend already makes deliveries `RETRY`.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::app::AppState;

/// How long the sidecar check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz` and `GET /readyz`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let sidecar = match tokio::time::timeout(CHECK_TIMEOUT, state.dapr.healthz_outbound()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_owned()),
    };
    let (status, word, check) = match sidecar {
        Ok(()) => (StatusCode::OK, "ready", json!("ok")),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready",
            json!({ "error": e }),
        ),
    };
    (
        status,
        Json(json!({ "status": word, "checks": { "sidecar": check } })),
    )
}
