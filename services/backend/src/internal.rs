//! Routes for our own services, reached through Dapr service invocation under `/internal`.
//!
//! No user token here: `app.rs` puts these behind the Dapr app API token, and the caller
//! (notification, recurring-task) acts for the system, not for a user. Errors use the same
//! [`ApiError`] JSON as REST.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use serde::Serialize;
use uuid::Uuid;

use crate::app::AppState;
use crate::domain::{NextOccurrence, Task};
use crate::error::ServiceError;
use crate::rest::extract::{ApiJson, ApiPath};
use crate::rest::{ApiError, ApiResult};

/// The internal routes (mounted at `/internal` behind the app API token).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tasks/{id}", get(task_snapshot))
        .route("/tasks/{id}/next-occurrence", post(next_occurrence))
        .fallback(|uri: http::Uri| async move { ApiError::RouteNotFound(uri.path().to_owned()) })
}

/// `GET /internal/tasks/{id}`: the task as events carry it, plus where reminders go.
#[derive(Debug, Serialize)]
struct SnapshotResponse {
    task: contracts::TaskSnapshot,
    owner_email: Option<String>,
    owner_name: Option<String>,
}

async fn task_snapshot(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<SnapshotResponse>> {
    let (task, owner_email, owner_name) =
        state
            .service
            .task_snapshot(id)
            .await?
            .ok_or(ServiceError::TaskNotFound {
                id,
                suggestions: Vec::new(),
            })?;
    Ok(Json(SnapshotResponse {
        task,
        owner_email,
        owner_name,
    }))
}

/// `POST /internal/tasks/{id}/next-occurrence`: the created (or already created) occurrence.
#[derive(Debug, Serialize)]
struct OccurrenceResponse {
    task: Task,
    /// False when the idempotency key had already created this task.
    created: bool,
}

async fn next_occurrence(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(next): ApiJson<NextOccurrence>,
) -> ApiResult<(StatusCode, Json<OccurrenceResponse>)> {
    let (task, created) = state.service.create_next_occurrence(id, next).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(OccurrenceResponse { task, created })))
}
