//! Tag routes: create, list (with task counts), rename/recolour, delete.

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use uuid::Uuid;

use super::ApiResult;
use super::extract::{ApiJson, ApiPath};
use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::domain::{NewTag, Tag, TagPatch};
use crate::openapi::ErrorResponse;

/// Create a tag.
#[utoipa::path(post, path = "/tags", tag = "tags", request_body = NewTag,
    responses(
        (status = 201, description = "The created tag", body = Tag),
        (status = 400, description = "Unreadable request: malformed JSON, not a JSON object, an unknown field or a value of the wrong type", body = ErrorResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorResponse),
        (status = 409, description = "A tag with this name exists", body = ErrorResponse),
        (status = 422, description = "Validation error", body = ErrorResponse),
    ))]
pub(crate) async fn create_tag(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(new): ApiJson<NewTag>,
) -> ApiResult<(StatusCode, Json<Tag>)> {
    let tag = state.service.create_tag(&user, new).await?;
    Ok((StatusCode::CREATED, Json(tag)))
}

/// List the caller's tags with their task counts.
#[utoipa::path(get, path = "/tags", tag = "tags",
    responses(
        (status = 200, description = "All tags of the caller", body = Vec<Tag>),
        (status = 401, description = "Missing or invalid token", body = ErrorResponse),
    ))]
pub(crate) async fn list_tags(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Json<Vec<Tag>>> {
    Ok(Json(state.service.list_tags(&user).await?))
}

/// Rename or recolour a tag (`"color": null` removes the colour).
#[utoipa::path(patch, path = "/tags/{id}", tag = "tags", request_body = TagPatch,
    params(("id" = Uuid, Path, description = "Tag id")),
    responses(
        (status = 200, description = "The changed tag", body = Tag),
        (status = 400, description = "Unreadable request: malformed JSON, not a JSON object, an unknown field or a value of the wrong type", body = ErrorResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorResponse),
        (status = 404, description = "No such tag", body = ErrorResponse),
        (status = 409, description = "A tag with this name exists", body = ErrorResponse),
        (status = 422, description = "Validation error", body = ErrorResponse),
    ))]
pub(crate) async fn update_tag(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(patch): ApiJson<TagPatch>,
) -> ApiResult<Json<Tag>> {
    Ok(Json(state.service.update_tag(&user, id, patch).await?))
}

/// Delete a tag; it is taken off every task.
#[utoipa::path(delete, path = "/tags/{id}", tag = "tags",
    params(("id" = Uuid, Path, description = "Tag id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Bad id", body = ErrorResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorResponse),
        (status = 404, description = "No such tag", body = ErrorResponse),
    ))]
pub(crate) async fn delete_tag(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    state.service.delete_tag(&user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
