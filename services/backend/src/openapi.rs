//! The OpenAPI 3 document of the REST API, generated from the handlers' `#[utoipa::path]`
//! annotations and the domain types, and served without authentication at
//! `GET /api/v1/openapi.json`.
//!
//! Paths are relative to the server URL `/api/v1`, exactly as the router declares them.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::domain::{
    Category, CategoryPatch, CategoryRef, NewCategory, NewTag, NewTask, Page, SortBy, SortOrder,
    StatusFilter, Tag, TagPatch, TagRef, Task, TaskPatch, TaskSummary,
};
use crate::rest;

/// The REST API's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "todo-dapr backend",
        description = "Tasks, categories and tags of the authenticated user. The same use cases \
                       are offered to assistants as MCP tools at /mcp.",
    ),
    servers((url = "/api/v1")),
    paths(
        rest::tasks::create_task,
        rest::tasks::list_tasks,
        rest::tasks::get_task,
        rest::tasks::update_task,
        rest::tasks::delete_task,
        rest::tasks::complete_task,
        rest::tasks::set_reminder,
        rest::tasks::clear_reminder,
        rest::tasks::add_tag,
        rest::tasks::remove_tag,
        rest::tasks::search_tasks,
        rest::categories::create_category,
        rest::categories::list_categories,
        rest::categories::update_category,
        rest::categories::delete_category,
        rest::tags::create_tag,
        rest::tags::list_tags,
        rest::tags::update_tag,
        rest::tags::delete_tag,
        serve,
    ),
    components(schemas(
        ErrorResponse, Task, TaskPatch, NewTask, TaskSummary, CategoryRef, TagRef, Category,
        CategoryPatch, NewCategory, Tag, TagPatch, NewTag, StatusFilter, SortBy, SortOrder,
        Page<Task>,
    )),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "tasks", description = "Tasks: CRUD, completion, reminders, tags, search"),
        (name = "categories", description = "Per-user categories"),
        (name = "tags", description = "Per-user tags"),
        (name = "meta", description = "This document"),
    ),
)]
pub struct ApiDoc;

/// Adds the `bearer` (JWT) security scheme that every operation but the document requires.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "HS256 or RS256/EdDSA JWT; `sub` is the user, `email` the reminder \
                         recipient",
                    ))
                    .build(),
            ),
        );
    }
}

/// The body of every error response (documentation only; the type used at run time is
/// `middleware::ErrorBody`).
#[derive(ToSchema)]
#[schema(as = Error)]
#[allow(dead_code)]
pub(crate) struct ErrorResponse {
    /// Machine code: `BAD_REQUEST`, `UNAUTHORIZED`, `TASK_NOT_FOUND`, `NOT_FOUND`,
    /// `VALIDATION_ERROR`, `CONFLICT`, `LIMIT_EXCEEDED`, `REQUEST_TIMEOUT`, `INTERNAL`.
    code: String,
    /// Human-readable explanation.
    message: String,
    /// Structured details: `field` for validation errors, `suggestions` (recent pending tasks)
    /// for a missing task.
    #[schema(value_type = Option<Object>)]
    details: Option<serde_json::Value>,
}

/// This OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
pub(crate) async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
