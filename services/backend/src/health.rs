//! Liveness and readiness.
//!
//! `/healthz` only says the process serves HTTP (a restart will not fix a database outage, so
//! liveness must not depend on one). `/readyz` says whether requests can succeed now: the
//! database answers and the sidecar's outbound API is up. Writes do not need the sidecar (the
//! outbox holds events), but a backend that cannot publish should not take new traffic while
//! another replica can.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::app::AppState;

/// How long each readiness check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz` and `GET /readyz`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = tokio::time::timeout(
        CHECK_TIMEOUT,
        sqlx::query("SELECT 1").execute(state.service.pool()),
    )
    .await;
    let database = match database {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_owned()),
    };
    let sidecar = match tokio::time::timeout(CHECK_TIMEOUT, state.dapr.healthz_outbound()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_owned()),
    };
    let ready = database.is_ok() && sidecar.is_ok();
    let describe = |r: &Result<(), String>| match r {
        Ok(()) => json!("ok"),
        Err(e) => json!({ "error": e }),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "checks": { "database": describe(&database), "sidecar": describe(&sidecar) },
    });
    (status, Json(body))
}
