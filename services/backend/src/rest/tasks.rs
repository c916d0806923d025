//! Task routes: CRUD, completion, reminders, tags on a task, listing and search.
//!
//! Each handler only translates HTTP to one service call; the rules live in the service.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::{ApiError, ApiResult};
use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::domain::{
    DEFAULT_LIMIT, NewTask, Page, Priority, PrioritySchema, ReminderSpec, SearchQuery, SortBy,
    SortOrder, StatusFilter, Task, TaskFilter, TaskPatch,
};
use crate::error::ServiceError;
use crate::openapi::ErrorResponse;

/// Query of `GET /tasks`. Unknown keys are refused, so a misspelt filter is not silently
/// dropped (`statuss=pending` listing every task).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListTasksParams {
    /// `all` (default), `pending` or `completed`.
    status: Option<StatusFilter>,
    /// Only this priority.
    #[param(value_type = Option<PrioritySchema>)]
    priority: Option<Priority>,
    /// Only tasks in this category.
    category_id: Option<Uuid>,
    /// Comma-separated tag ids: tasks carrying at least one of them.
    tag_ids: Option<String>,
    /// Only tasks due before this time (RFC 3339, 1970 to 9999).
    due_before: Option<DateTime<Utc>>,
    /// Only tasks due after this time (RFC 3339, 1970 to 9999).
    due_after: Option<DateTime<Utc>>,
    /// `created` (default), `due` or `priority`; `created_at` and `due_date` are accepted too.
    sort_by: Option<SortBy>,
    /// `asc` or `desc` (default: newest, soonest due, most urgent first).
    order: Option<SortOrder>,
    /// Page size: default 50, at most 200.
    limit: Option<u32>,
    /// Number of tasks to skip.
    offset: Option<u32>,
}

impl ListTasksParams {
    fn into_filter(self) -> ApiResult<TaskFilter> {
        let tag_ids = tag_id_list(self.tag_ids.as_deref())?;
        Ok(TaskFilter {
            status: self.status.unwrap_or_default(),
            priority: self.priority,
            category_id: self.category_id,
            tag_ids,
            due_before: self.due_before,
            due_after: self.due_after,
            sort: self.sort_by.unwrap_or_default(),
            order: self.order,
            limit: self.limit.unwrap_or(DEFAULT_LIMIT),
            offset: self.offset.unwrap_or(0),
        })
    }
}

/// The tag ids of a comma-separated `tag_ids` query value (blank items skipped).
fn tag_id_list(value: Option<&str>) -> ApiResult<Vec<Uuid>> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<Uuid>()
                .map_err(|_| ApiError::BadRequest(format!("tag_ids: `{s}` is not a UUID")))
        })
        .collect()
}

/// Query of `GET /search` (unknown keys refused, as for `GET /tasks`).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchParams {
    /// Words to look for in titles and descriptions.
    q: String,
    /// Only this priority.
    #[param(value_type = Option<PrioritySchema>)]
    priority: Option<Priority>,
    /// Only tasks in this category.
    category_id: Option<Uuid>,
    /// Comma-separated tag ids: tasks carrying at least one of them.
    tag_ids: Option<String>,
    /// Page size: default 50, at most 200.
    limit: Option<u32>,
    /// Number of tasks to skip.
    offset: Option<u32>,
}

impl SearchParams {
    fn into_search(self) -> ApiResult<SearchQuery> {
        Ok(SearchQuery {
            tag_ids: tag_id_list(self.tag_ids.as_deref())?,
            query: self.q,
            priority: self.priority,
            category_id: self.category_id,
            limit: self.limit.unwrap_or(DEFAULT_LIMIT),
            offset: self.offset.unwrap_or(0),
        })
    }
}

/// Body of `PUT /tasks/{id}/reminder`: exactly one of the two fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReminderBody {
    /// Remind this many minutes before the task's due time (the task must have one).
    #[serde(default)]
    remind_before_minutes: Option<i64>,
    /// Remind at this time: in the future, not after the due time.
    #[serde(default)]
    remind_at: Option<DateTime<Utc>>,
}

impl ReminderBody {
    fn into_spec(self) -> ApiResult<ReminderSpec> {
        match (self.remind_before_minutes, self.remind_at) {
            (Some(minutes), None) => u32::try_from(minutes)
                .map(|minutes| ReminderSpec::BeforeDue { minutes })
                .map_err(|_| {
                    ServiceError::validation(
                        "remind_before_minutes",
                        "remind_before_minutes must be a non-negative number of minutes",
                    )
                    .into()
                }),
            (None, Some(at)) => Ok(ReminderSpec::At(at)),
            _ => Err(ServiceError::validation(
                "remind_at",
                "give exactly one of remind_before_minutes and remind_at",
            )
            .into()),
        }
    }
}

/// Create a task.
#[utoipa::path(post, path = "/tasks", tag = "tasks", request_body = NewTask,
    responses(
        (status = 201, description = "The created task", body = Task),
        (status = 400, description = "Unreadable request: malformed JSON, not a JSON object, an unknown field or a value of the wrong type", body = ErrorResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorResponse),
        (status = 404, description = "Category or tag not found", body = ErrorResponse),
        (status = 422, description = "Validation error or tag limit", body = ErrorResponse),
    ))]
pub(crate) async fn create_task(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(new): ApiJson<NewTask>,
) -> ApiResult<(StatusCode, Json<Task>)> {
    let task = state.service.create_task(&user, new).await?;
    Ok((StatusCode::CREATED, Json(task)))
}

/// List the caller's tasks with filters, sorting and paging.
#[utoipa::path(get, path = "/tasks", tag = "tasks", params(ListTasksParams),
    responses(
        (status = 200, description = "One page of tasks", body = Page<Task>),
        (status = 400, description = "Bad query: an unknown key or a value of the wrong type", body = ErrorResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorResponse),
    ))]
pub(crate) async fn list_tasks(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiQuery(params): ApiQuery<ListTasksParams>,
) -> ApiResult<Json<Page<Task>>> {
    let filter = params.into_filter()?;
    Ok(Json(state.service.list_tasks(&user, &filter).await?))
}

/// Get one task.
#[utoipa::path(get, path = "/tasks/{id}", tag = "tasks",
    params(("id" = Uuid, Path, description = "Task id")),
    responses(
        (status = 200, description = "The task", body = Task),
        (status = 400, description = "Bad id", body = ErrorResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorResponse),
        (status = 404, description = "No such task (details.suggestions lists recent pending tasks)", body = ErrorResponse),
    ))]
pub(crate) async fn get_task(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Task>> {
    Ok(Json(state.service.get_task(&user, id).await?))
}

/// Change a task: absent fields stay, `null` clears a clearable field.
#[utoipa::path(patch, path = "/tasks/{id}", tag = "tasks", request_body = TaskPatch,
    params(("id" = Uuid, Path, description = "Task id")),
    responses(
        (status = 200, description = "The changed task", body = Task),
        (status = 400, description = "Unreadable request: malformed JSON, not a JSON object, an unknown field or a value of the wrong type", body = ErrorResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorResponse),
        (status = 404, description = "No such task or category", body = ErrorResponse),
        (status = 422, description = "Validation error", body = ErrorResponse),
    ))]
pub(crate) async fn update_task(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(patch): ApiJson<TaskPatch>,
) -> ApiResult<Json<Task>> {
    Ok(Json(state.service.update_task(&user, id, patch).await?))
}

/// Delete a task.
#[utoipa::path(delete, path = "/tasks/{id}", tag = "tasks",
    params(("id" = Uuid, Path, description = "Task id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Bad id", body = ErrorResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorResponse),
        (status = 404, description = "No such task", body = ErrorResponse),
    ))]
pub(crate) async fn delete_task(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    state.service.delete_task(&user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mark a task done (a recurring task's next occurrence follows through the events).
#[utoipa::path(post, path = "/tasks/{id}/complete", tag = "tasks",
    params(("id" = Uuid, Path, description = "Task id")),
    responses(
        (status = 200, description = "The completed task", body = Task),
        (status = 400, description = "Bad id", body = ErrorResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorResponse),
        (status = 404, description = "No such task", body = ErrorResponse),
    ))]
pub(crate) async fn complete_task(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Task>> {
    Ok(Json(state.service.complete_task(&user, id).await?))
}

/// Set the reminder: `remind_before_minutes` (before the due time) or `remind_at`.
#[utoipa::path(put, path = "/tasks/{id}/reminder", tag = "tasks", request_body = ReminderBody,
    params(("id" = Uuid, Path, description = "Task id")),
    responses(
        (status = 200, description = "The task with its reminder", body = Task),
        (status = 400, description = "Unreadable request: malformed JSON, not a JSON object, an unknown field or a value of the wrong type", body = ErrorResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorResponse),
        (status = 404, description = "No such task", body = ErrorResponse),
        (status = 422, description = "Both or neither field, no due time, or a time in the past or after the due time", body = ErrorResponse),
    ))]
pub(crate) async fn set_reminder(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ReminderBody>,
) -> ApiResult<Json<Task>> {
    let spec = body.into_spec()?;
    Ok(Json(state.service.set_reminder(&user, id, spec).await?))
}

/// Remove the reminder.
#[utoipa::path(delete, path = "/tasks/{id}/reminder", tag = "tasks",
    params(("id" = Uuid, Path, description = "Task id")),
    responses(
        (status = 200, description = "The task without a reminder", body = Task),
        (status = 400, description = "Bad id", body = ErrorResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorResponse),
        (status = 404, description = "No such task", body = ErrorResponse),
    ))]
pub(crate) async fn clear_reminder(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Task>> {
    let patch = TaskPatch {
        remind_at: Some(None),
        ..TaskPatch::default()
    };
    Ok(Json(state.service.update_task(&user, id, patch).await?))
}

/// Put a tag on a task (no-op when it is already there).
#[utoipa::path(post, path = "/tasks/{id}/tags/{tag_id}", tag = "tasks",
    params(("id" = Uuid, Path, description = "Task id"), ("tag_id" = Uuid, Path, description = "Tag id")),
    responses(
        (status = 200, description = "The task with the tag", body = Task),
        (status = 400, description = "Bad id", body = ErrorResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorResponse),
        (status = 404, description = "No such task or tag", body = ErrorResponse),
        (status = 422, description = "The task already has 10 tags", body = ErrorResponse),
    ))]
pub(crate) async fn add_tag(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath((id, tag_id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Task>> {
    Ok(Json(
        state.service.add_tag_to_task(&user, id, tag_id).await?,
    ))
}

/// Take a tag off a task.
#[utoipa::path(delete, path = "/tasks/{id}/tags/{tag_id}", tag = "tasks",
    params(("id" = Uuid, Path, description = "Task id"), ("tag_id" = Uuid, Path, description = "Tag id")),
    responses(
        (status = 200, description = "The task without the tag", body = Task),
        (status = 400, description = "Bad id", body = ErrorResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorResponse),
        (status = 404, description = "No such task or tag", body = ErrorResponse),
    ))]
pub(crate) async fn remove_tag(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath((id, tag_id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Task>> {
    Ok(Json(
        state
            .service
            .remove_tag_from_task(&user, id, tag_id)
            .await?,
    ))
}

/// Full-text search over the caller's task titles and descriptions, best match first.
#[utoipa::path(get, path = "/search", tag = "tasks", params(SearchParams),
    responses(
        (status = 200, description = "One page of matching tasks", body = Page<Task>),
        (status = 400, description = "Bad query: an unknown key or a value of the wrong type (a priority, category or tag id)", body = ErrorResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorResponse),
        (status = 422, description = "Empty, too long or control characters in `q`", body = ErrorResponse),
    ))]
pub(crate) async fn search_tasks(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> ApiResult<Json<Page<Task>>> {
    let search = params.into_search()?;
    let page = state
        .service
        .search_tasks(&user, &search)
        .await
        .map_err(|e| match e {
            // The service calls it by its MCP name; here the parameter is `q`.
            ServiceError::Validation {
                field: Some("query"),
                message,
            } => ServiceError::Validation {
                field: Some("q"),
                message,
            },
            other => other,
        })?;
    Ok(Json(page))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn tag_ids_are_a_comma_list() {
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        let params = ListTasksParams {
            tag_ids: Some(format!("{a}, {b},")),
            ..ListTasksParams::default()
        };
        assert_eq!(params.into_filter().unwrap().tag_ids, vec![a, b]);
        let bad = ListTasksParams {
            tag_ids: Some("nope".into()),
            ..ListTasksParams::default()
        };
        assert!(matches!(bad.into_filter(), Err(ApiError::BadRequest(_))));
        assert_eq!(
            ListTasksParams::default().into_filter().unwrap(),
            TaskFilter::default()
        );
    }

    #[test]
    fn reminder_body_needs_exactly_one_field() {
        let body = |m: Option<i64>, at: Option<DateTime<Utc>>| ReminderBody {
            remind_before_minutes: m,
            remind_at: at,
        };
        assert_eq!(
            body(Some(30), None).into_spec().unwrap(),
            ReminderSpec::BeforeDue { minutes: 30 }
        );
        let at = Utc::now();
        assert_eq!(
            body(None, Some(at)).into_spec().unwrap(),
            ReminderSpec::At(at)
        );
        for wrong in [
            body(None, None),
            body(Some(5), Some(at)),
            body(Some(-1), None),
        ] {
            let err = wrong.into_spec().unwrap_err();
            assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        }
    }
}
