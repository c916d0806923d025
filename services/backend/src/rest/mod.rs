//! The REST API under `/api/v1`: the same use cases as the MCP tools, over JSON.
//!
//! Handlers are thin: extract, call one [`TaskService`](crate::service::TaskService) method,
//! wrap the result. Every failure is an [`ApiError`], turned into a status and a JSON body in
//! one place; the extractors in [`extract`] make unreadable requests answer the same JSON shape
//! instead of axum's plain-text rejections.
//!
//! Layers, outermost first:
//! 1. per-request timeout (`HandleErrorLayer` + tower `TimeoutLayer` → `408` JSON) — here and
//!    not in `app.rs` because `/mcp` streams and must not be cut off;
//! 2. [`require_user`] as a route layer on every route but `GET /openapi.json`, so unknown
//!    paths answer `404` rather than `401` and the document stays public.

pub(crate) mod categories;
mod error;
pub mod extract;
pub(crate) mod tags;
pub(crate) mod tasks;

use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use http::Uri;
use tower::ServiceBuilder;
use tower::timeout::TimeoutLayer;

pub use self::error::ApiError;
use crate::app::AppState;
use crate::auth::require_user;

/// Longest a REST request may take before it is answered with `408 REQUEST_TIMEOUT`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Result of a REST handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// The `/api/v1` routes; every route but `GET /openapi.json` requires a bearer token.
pub fn router(state: AppState) -> Router<AppState> {
    with_timeout(
        Router::new()
            .route("/tasks", post(tasks::create_task).get(tasks::list_tasks))
            .route(
                "/tasks/{id}",
                get(tasks::get_task)
                    .patch(tasks::update_task)
                    .delete(tasks::delete_task),
            )
            .route("/tasks/{id}/complete", post(tasks::complete_task))
            .route(
                "/tasks/{id}/reminder",
                put(tasks::set_reminder).delete(tasks::clear_reminder),
            )
            .route(
                "/tasks/{id}/tags/{tag_id}",
                post(tasks::add_tag).delete(tasks::remove_tag),
            )
            .route("/search", get(tasks::search_tasks))
            .route(
                "/categories",
                post(categories::create_category).get(categories::list_categories),
            )
            .route(
                "/categories/{id}",
                axum::routing::patch(categories::update_category)
                    .delete(categories::delete_category),
            )
            .route("/tags", post(tags::create_tag).get(tags::list_tags))
            .route(
                "/tags/{id}",
                axum::routing::patch(tags::update_tag).delete(tags::delete_tag),
            )
            // Applies to the routes above only, not to the public document or the fallbacks.
            .route_layer(from_fn_with_state(state, require_user))
            .route("/openapi.json", get(crate::openapi::serve))
            .fallback(route_not_found)
            .method_not_allowed_fallback(method_not_allowed),
        REQUEST_TIMEOUT,
    )
}

/// Wraps `router` in the per-request timeout, answered as `408` JSON.
pub(crate) fn with_timeout<S>(router: Router<S>, timeout: Duration) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.layer(
        ServiceBuilder::new()
            // Turns the timeout's error into a response: tower errors must end here.
            .layer(HandleErrorLayer::new(timeout_error))
            .layer(TimeoutLayer::new(timeout)),
    )
}

async fn timeout_error(err: tower::BoxError) -> Response {
    if err.is::<tower::timeout::error::Elapsed>() {
        ApiError::Timeout.into_response()
    } else {
        ApiError::Internal(format!("unhandled middleware error: {err}")).into_response()
    }
}

async fn route_not_found(uri: Uri) -> ApiError {
    ApiError::RouteNotFound(uri.path().to_owned())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::body::Body;
    use http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn slow_requests_answer_408_json() {
        let slow = Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
        let app: Router = with_timeout(slow, Duration::from_millis(20)).with_state(());
        let res = app
            .oneshot(Request::get("/slow").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::REQUEST_TIMEOUT);
        let body: serde_json::Value =
            serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(body["code"], "REQUEST_TIMEOUT");
    }
}
