//! The one error type of the backend's HTTP edges (REST, internal routes, the auth middleware)
//! and the one place that turns it into a status and a JSON body.
//!
//! Client errors keep their detail; a database failure becomes a generic 500, an unreachable
//! database a 503 with `Retry-After`, and both are logged here, once, inside the request's span.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use middleware::ErrorBody;
use serde_json::json;

use crate::error::ServiceError;

/// `Retry-After` of a 503 while the database is unreachable: about one pool acquire timeout,
/// so a client that honours it does not pile up waiting requests.
const RETRY_AFTER_SECS: &str = "5";

/// Everything a backend HTTP route can answer instead of success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A service-layer failure (not found, validation, conflict, limit, database).
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The request could not be read: malformed JSON, wrong content type, bad path or query.
    #[error("{0}")]
    BadRequest(String),
    /// The body is larger than the server accepts.
    #[error("request body too large")]
    PayloadTooLarge,
    /// No or no valid bearer token.
    #[error("{0}")]
    Unauthorized(String),
    /// No route matches the path.
    #[error("no route for {0}")]
    RouteNotFound(String),
    /// The route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request took longer than the per-request timeout.
    #[error("request timed out")]
    Timeout,
    /// A server-side fault that is not the database (e.g. a wiring bug); logged, never shown.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Service(e) => match e {
                ServiceError::TaskNotFound { .. }
                | ServiceError::NotFound { .. }
                | ServiceError::LegacyNotFound { .. } => StatusCode::NOT_FOUND,
                ServiceError::Validation { .. } | ServiceError::LimitExceeded(_) => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                ServiceError::Conflict(_) | ServiceError::NotCompleted { .. } => {
                    StatusCode::CONFLICT
                }
                ServiceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                ServiceError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::RouteNotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body: machine code, human message and, where useful, details.
    fn body(&self) -> ErrorBody {
        match self {
            Self::Service(e) => {
                let body = ErrorBody::new(e.code(), e.to_string());
                match e {
                    ServiceError::TaskNotFound { suggestions, .. } if !suggestions.is_empty() => {
                        body.with_details(json!({ "suggestions": suggestions }))
                    }
                    ServiceError::NotFound { entity, id } => {
                        body.with_details(json!({ "entity": entity, "id": id }))
                    }
                    ServiceError::NotCompleted { id } => body.with_details(json!({ "id": id })),
                    ServiceError::Validation {
                        field: Some(field), ..
                    } => body.with_details(json!({ "field": field })),
                    ServiceError::Database(_) => ErrorBody::new("INTERNAL", "internal error"),
                    _ => body,
                }
            }
            Self::BadRequest(message) => ErrorBody::new("BAD_REQUEST", message),
            Self::PayloadTooLarge => ErrorBody::new("PAYLOAD_TOO_LARGE", self.to_string()),
            Self::Unauthorized(message) => ErrorBody::new("UNAUTHORIZED", message),
            Self::RouteNotFound(_) => ErrorBody::new("NOT_FOUND", self.to_string()),
            Self::MethodNotAllowed => ErrorBody::new("METHOD_NOT_ALLOWED", self.to_string()),
            Self::Timeout => ErrorBody::new("REQUEST_TIMEOUT", self.to_string()),
            Self::Internal(_) => ErrorBody::new("INTERNAL", "internal error"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // The only place server faults are logged; the client sees a generic message.
            tracing::error!(error = %DisplayChain(&self), "request failed");
        }
        let mut response = self.body().into_response_with(status);
        match self {
            Self::Unauthorized(_) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::Service(ServiceError::Unavailable(_)) => {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECS),
                );
            }
            _ => {}
        }
        response
    }
}

/// An error followed by its sources, for one log line.
struct DisplayChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(err) = source {
            write!(f, ": {err}")?;
            source = err.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use http_body_util::BodyExt;
    use uuid::Uuid;

    use super::*;
    use crate::domain::{Priority, TaskSummary};

    async fn parts(err: ApiError) -> (StatusCode, http::HeaderMap, serde_json::Value) {
        let res = err.into_response();
        let (parts, body) = res.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            serde_json::from_slice(&bytes).unwrap(),
        )
    }

    #[tokio::test]
    async fn service_errors_map_to_status_code_and_details() {
        let id = Uuid::nil();
        let suggestion = TaskSummary {
            id,
            title: "t".into(),
            due_at: None,
            priority: Priority::Medium,
        };
        let (status, _, body) = parts(
            ServiceError::TaskNotFound {
                id,
                suggestions: vec![suggestion],
            }
            .into(),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["code"], "TASK_NOT_FOUND");
        assert_eq!(body["details"]["suggestions"][0]["title"], "t");

        let (status, _, body) = parts(ServiceError::validation("title", "too long").into()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["code"], "VALIDATION_ERROR");
        assert_eq!(body["details"]["field"], "title");

        let (status, _, body) = parts(ServiceError::Conflict("dup".into()).into()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::CONFLICT, Some("CONFLICT"))
        );

        let (status, _, body) = parts(ServiceError::NotCompleted { id }.into()).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["code"], "TASK_NOT_COMPLETED");
        assert_eq!(body["details"]["id"], id.to_string());

        let (status, _, body) = parts(ServiceError::LimitExceeded("many".into()).into()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["code"], "LIMIT_EXCEEDED");
    }

    #[tokio::test]
    async fn internal_errors_are_generic() {
        let (status, _, body) =
            parts(ServiceError::Database(sqlx::Error::RowNotFound).into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            json!({"code": "INTERNAL", "message": "internal error"})
        );
        let (status, _, body) = parts(ApiError::Internal("secret wiring detail".into())).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("secret"));
    }

    #[tokio::test]
    async fn an_unreachable_database_is_a_503_to_retry() {
        let (status, headers, body) =
            parts(ServiceError::Unavailable(sqlx::Error::PoolTimedOut).into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::RETRY_AFTER], RETRY_AFTER_SECS);
        assert_eq!(body["code"], "UNAVAILABLE");
        assert!(!body.to_string().contains("pool"), "{body}");
    }

    #[tokio::test]
    async fn unauthorized_carries_the_challenge() {
        let (status, headers, body) =
            parts(ApiError::Unauthorized("missing bearer token".into())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(body["code"], "UNAUTHORIZED");
        assert_eq!(body["message"], "missing bearer token");
    }
}
