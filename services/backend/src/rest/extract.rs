//! axum's `Json`, `Path` and `Query` with [`ApiError`] rejections.
//!
//! axum's own rejections answer plain text (and 422 for JSON of the wrong shape); these
//! wrappers keep its parsing but answer every unreadable request with a JSON `400 BAD_REQUEST`
//! (or `413`), so clients see one error format everywhere.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Json, Path, Query, Request};
use http::StatusCode;
use http::request::Parts;
use serde::de::DeserializeOwned;

use super::ApiError;

/// A JSON request body; unreadable bodies answer `400 BAD_REQUEST` (`413` when too large).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        _ => match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::BadRequest(
                "expected a JSON body (`Content-Type: application/json`)".to_owned(),
            ),
            other => ApiError::BadRequest(other.body_text()),
        },
    }
}

/// Path parameters; a value of the wrong type (e.g. a non-UUID id) answers `400 BAD_REQUEST`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(path_rejection(&rejection)),
        }
    }
}

fn path_rejection(rejection: &PathRejection) -> ApiError {
    if rejection.status().is_server_error() {
        // The route and the extractor disagree: our bug, not the client's.
        ApiError::Internal(rejection.body_text())
    } else {
        ApiError::BadRequest(rejection.body_text())
    }
}

/// The query string; unknown keys are ignored, bad values answer `400 BAD_REQUEST`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(query_rejection(&rejection)),
        }
    }
}

fn query_rejection(rejection: &QueryRejection) -> ApiError {
    ApiError::BadRequest(rejection.body_text())
}
