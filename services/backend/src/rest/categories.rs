//! Category routes: create, list (with task counts), rename/recolour, delete.

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use uuid::Uuid;

use super::ApiResult;
use super::extract::{ApiJson, ApiPath};
use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::domain::{Category, CategoryPatch, NewCategory};
use crate::openapi::ErrorResponse;

/// Create a category.
#[utoipa::path(post, path = "/categories", tag = "categories", request_body = NewCategory,
    responses(
        (status = 201, description = "The created category", body = Category),
        (status = 400, description = "Unreadable request: malformed JSON, not a JSON object, an unknown field or a value of the wrong type", body = ErrorResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorResponse),
        (status = 409, description = "A category with this name exists", body = ErrorResponse),
        (status = 422, description = "Validation error or category limit", body = ErrorResponse),
    ))]
pub(crate) async fn create_category(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(new): ApiJson<NewCategory>,
) -> ApiResult<(StatusCode, Json<Category>)> {
    let category = state.service.create_category(&user, new).await?;
    Ok((StatusCode::CREATED, Json(category)))
}

/// List the caller's categories with their task counts.
#[utoipa::path(get, path = "/categories", tag = "categories",
    responses(
        (status = 200, description = "All categories of the caller", body = Vec<Category>),
        (status = 401, description = "Missing or invalid token", body = ErrorResponse),
    ))]
pub(crate) async fn list_categories(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Json<Vec<Category>>> {
    Ok(Json(state.service.list_categories(&user).await?))
}

/// Rename or recolour a category (`"color": null` removes the colour).
#[utoipa::path(patch, path = "/categories/{id}", tag = "categories", request_body = CategoryPatch,
    params(("id" = Uuid, Path, description = "Category id")),
    responses(
        (status = 200, description = "The changed category", body = Category),
        (status = 400, description = "Unreadable request: malformed JSON, not a JSON object, an unknown field or a value of the wrong type", body = ErrorResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorResponse),
        (status = 404, description = "No such category", body = ErrorResponse),
        (status = 409, description = "A category with this name exists", body = ErrorResponse),
        (status = 422, description = "Validation error", body = ErrorResponse),
    ))]
pub(crate) async fn update_category(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(patch): ApiJson<CategoryPatch>,
) -> ApiResult<Json<Category>> {
    Ok(Json(state.service.update_category(&user, id, patch).await?))
}

/// Delete a category; its tasks stay, without a category.
#[utoipa::path(delete, path = "/categories/{id}", tag = "categories",
    params(("id" = Uuid, Path, description = "Category id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Bad id", body = ErrorResponse),
        (status = 401, description = "Missing or invalid token", body = ErrorResponse),
        (status = 404, description = "No such category", body = ErrorResponse),
    ))]
pub(crate) async fn delete_category(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    state.service.delete_category(&user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
