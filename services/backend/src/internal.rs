//! Routes for our own services, reached through Dapr service invocation under `/internal`.
//!
//! No user token here: `app.rs` puts these behind the Dapr app API token, and the caller
//! (notification, recurring-task) acts for the system, not for a user. Errors use the same
//! [`ApiError`] JSON as REST.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::AppState;
use crate::domain::{NextOccurrence, Task};
use crate::error::ServiceError;
use crate::rest::extract::{ApiJson, ApiPath, ApiQuery};
use crate::rest::{ApiError, ApiResult};

/// The internal routes (mounted at `/internal` behind the app API token).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tasks/{id}", get(task_snapshot))
        .route("/tasks/{id}/next-occurrence", post(next_occurrence))
        .route("/reminders", get(pending_reminders))
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

/// `POST /internal/tasks/{id}/next-occurrence`: the created (or already created) occurrence,
/// `201` when this call created it and `200` when an earlier one did (the same idempotency key,
/// or the same occurrence of the series under another key). A task that is not completed
/// answers `409 TASK_NOT_COMPLETED`, one that no longer recurs `422`, a missing one `404`.
#[derive(Debug, Serialize)]
struct OccurrenceResponse {
    task: Task,
    /// False when an earlier call had already created this task.
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

/// Query of `GET /internal/reminders`: the window and, after the first page, the cursor.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReminderWindow {
    /// Earliest reminder time (inclusive).
    from: DateTime<Utc>,
    /// Latest reminder time (inclusive).
    to: DateTime<Utc>,
    /// `remind_at` of the last task of the previous page.
    after_at: Option<DateTime<Utc>>,
    /// Id of the last task of the previous page.
    after_id: Option<Uuid>,
    /// Page size: default 50, at most 200.
    limit: Option<u32>,
}

/// `GET /internal/reminders`: one page of pending tasks whose reminder is in the window.
#[derive(Debug, Serialize)]
struct ReminderPage {
    items: Vec<contracts::TaskSnapshot>,
    /// The cursor of the next page (`after_at`, `after_id`); absent on the last page.
    next: Option<Cursor>,
}

#[derive(Debug, Serialize)]
struct Cursor {
    after_at: DateTime<Utc>,
    after_id: Uuid,
}

async fn pending_reminders(
    State(state): State<AppState>,
    ApiQuery(window): ApiQuery<ReminderWindow>,
) -> ApiResult<Json<ReminderPage>> {
    let after = match (window.after_at, window.after_id) {
        (Some(at), Some(id)) => Some((at, id)),
        (None, None) => None,
        _ => {
            return Err(ServiceError::validation(
                "after_id",
                "after_at and after_id go together (the last task of the previous page)",
            )
            .into());
        }
    };
    let limit = crate::validation::limit(window.limit.unwrap_or(0));
    let items = state
        .service
        .pending_reminders(window.from, window.to, after, limit)
        .await?;
    let full = u32::try_from(items.len()).is_ok_and(|n| n == limit);
    let next = items.last().filter(|_| full).and_then(|last| {
        Some(Cursor {
            after_at: last.remind_at?,
            after_id: last.id,
        })
    });
    Ok(Json(ReminderPage { items, next }))
}
