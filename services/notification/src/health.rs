//! Liveness and readiness.
//!
//! `/healthz` only says the process serves HTTP: a sidecar outage is not fixed by restarting
//! us, so liveness must not depend on it. `/readyz` also asks the sidecar's outbound health,
//! because without it no event can be applied and no reminder published.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::app::AppState;

/// How long the readiness check may take.
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
    let (status, text) = match &sidecar {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "not ready"),
    };
    let check = match sidecar {
        Ok(()) => json!("ok"),
        Err(e) => json!({ "error": e }),
    };
    (
        status,
        Json(json!({"status": text, "checks": {"sidecar": check}})),
    )
}
