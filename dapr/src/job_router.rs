//! The app-side `POST /job/{name}` route the Scheduler triggers jobs through, dispatched by name prefix.
//!
//! Job names carry their kind as a prefix (`reminder-<task id>`), so handlers are registered per
//! prefix rather than per name. The status we answer is the whole protocol: 2xx and 404 end the
//! trigger, anything else makes the Scheduler apply the job's failure policy (retry).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

/// Path template daprd triggers jobs at.
pub const JOB_PATH: &str = "/job/{name}";

/// One trigger of a job, as daprd delivers it.
#[derive(Clone, Debug, PartialEq)]
pub struct JobTrigger {
    /// The job's name, e.g. `reminder-42`.
    pub name: String,
    /// The job's `data`, exactly as scheduled; `null` when the body was empty.
    pub data: Value,
}

/// Why a job handler did not complete the trigger.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Worth retrying (a dependency is down): answered 500 so the Scheduler retries.
    #[error("transient job failure: {0}")]
    Transient(String),
    /// Retrying cannot help (the job refers to something gone): answered 200 and logged.
    #[error("permanent job failure: {0}")]
    Permanent(String),
}

impl JobError {
    /// A [`JobError::Transient`] from anything displayable.
    pub fn transient(message: impl fmt::Display) -> Self {
        Self::Transient(message.to_string())
    }

    /// A [`JobError::Permanent`] from anything displayable.
    pub fn permanent(message: impl fmt::Display) -> Self {
        Self::Permanent(message.to_string())
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<(), JobError>> + Send>>;
type Handler = Arc<dyn Fn(JobTrigger) -> BoxFuture + Send + Sync>;

/// Job handlers keyed by name prefix; the longest matching prefix wins.
#[derive(Clone, Default)]
pub struct JobRouter {
    routes: Vec<(String, Handler)>,
}

impl fmt::Debug for JobRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobRouter")
            .field(
                "prefixes",
                &self.routes.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(ErrorBody { code, message })).into_response()
}

impl JobRouter {
    /// A router with no handlers (every trigger answers 404).
    pub fn new() -> Self {
        Self::default()
    }

    /// Handles jobs whose name starts with `prefix`; registering a prefix again replaces it.
    #[must_use]
    pub fn on_prefix<F, Fut>(mut self, prefix: &str, handler: F) -> Self
    where
        F: Fn(JobTrigger) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |trigger| Box::pin(handler(trigger)));
        self.routes.retain(|(existing, _)| existing != prefix);
        self.routes.push((prefix.to_owned(), handler));
        self
    }

    /// A router serving `POST /job/{name}`.
    pub fn into_router<S: Clone + Send + Sync + 'static>(mut self) -> Router<S> {
        // Longest first, so the first match is the most specific one.
        self.routes
            .sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        let routes: Arc<[(String, Handler)]> = self.routes.into();
        Router::new().route(
            JOB_PATH,
            post(move |Path(name): Path<String>, body: Bytes| {
                let routes = Arc::clone(&routes);
                async move { dispatch(&routes, name, &body).await }
            }),
        )
    }
}

async fn dispatch(routes: &[(String, Handler)], name: String, body: &[u8]) -> Response {
    let data = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(data) => data,
            Err(e) => {
                // Acknowledged (2xx), like a permanent failure: the Scheduler would send the same
                // bytes on every retry, for as long as the job's failure policy allows.
                let message = format!("job data is not valid json: {e}");
                tracing::warn!(job = %name, %message, "job data unreadable; acknowledged without retry");
                return error_response(StatusCode::OK, "INVALID_JOB_DATA", &message);
            }
        }
    };
    let Some((_, handler)) = routes
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix.as_str()))
    else {
        // daprd counts 404 as done-without-retry: an unknown job will not become known by retrying.
        tracing::warn!(job = %name, "no handler for triggered job; answering 404 so it is not retried");
        let message = format!("no handler for job `{name}`");
        return error_response(StatusCode::NOT_FOUND, "NO_JOB_HANDLER", &message);
    };
    match handler(JobTrigger {
        name: name.clone(),
        data,
    })
    .await
    {
        Ok(()) => StatusCode::OK.into_response(),
        Err(JobError::Transient(message)) => {
            tracing::warn!(job = %name, %message, "job failed transiently; the scheduler will retry");
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "JOB_FAILED", &message)
        }
        Err(JobError::Permanent(message)) => {
            // 2xx on purpose: a retry would fail the same way and only burn the failure policy's
            // attempts, so the trigger is acknowledged and the failure left to the log.
            tracing::warn!(job = %name, %message, "job failed permanently; acknowledged without retry");
            error_response(StatusCode::OK, "JOB_FAILED_PERMANENT", &message)
        }
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use serde_json::json;
    use tower::ServiceExt;

    use super::*;

    type Seen = Arc<Mutex<Vec<(&'static str, JobTrigger)>>>;

    fn router(seen: &Seen) -> Router {
        let record = |label: &'static str, result: Result<(), JobError>| {
            let seen = Arc::clone(seen);
            move |trigger: JobTrigger| {
                let seen = Arc::clone(&seen);
                let result = result.clone();
                async move {
                    seen.lock().unwrap().push((label, trigger));
                    result
                }
            }
        };
        JobRouter::new()
            .on_prefix("reminder-", record("reminder", Ok(())))
            .on_prefix("reminder-urgent-", record("urgent", Ok(())))
            .on_prefix(
                "flaky-",
                record("flaky", Err(JobError::transient("db down"))),
            )
            .on_prefix(
                "gone-",
                record("gone", Err(JobError::permanent("task deleted"))),
            )
            .into_router()
    }

    async fn trigger(router: Router, name: &str, body: &str) -> (StatusCode, Value) {
        let request = Request::post(format!("/job/{name}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, body)
    }

    #[tokio::test]
    async fn longest_prefix_wins_and_gets_the_data() {
        let seen = Seen::default();
        let (status, _) = trigger(router(&seen), "reminder-urgent-7", r#"{"task_id":"7"}"#).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = trigger(router(&seen), "reminder-8", r#""plain""#).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = trigger(router(&seen), "reminder-9", "").await;
        assert_eq!(status, StatusCode::OK);

        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].0, "urgent");
        assert_eq!(
            seen[0].1,
            JobTrigger {
                name: "reminder-urgent-7".into(),
                data: json!({"task_id": "7"})
            }
        );
        assert_eq!((seen[1].0, &seen[1].1.data), ("reminder", &json!("plain")));
        assert_eq!(seen[2].1.data, Value::Null);
    }

    #[tokio::test]
    async fn unknown_jobs_are_404_so_dapr_does_not_retry() {
        let seen = Seen::default();
        let (status, body) = trigger(router(&seen), "cleanup-1", "{}").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["code"], "NO_JOB_HANDLER");
        assert!(seen.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn failures_map_to_retry_or_acknowledge() {
        let seen = Seen::default();
        let (status, body) = trigger(router(&seen), "flaky-1", "1").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, json!({"code": "JOB_FAILED", "message": "db down"}));

        let (status, body) = trigger(router(&seen), "gone-1", "1").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["code"], "JOB_FAILED_PERMANENT");
    }

    #[tokio::test]
    async fn invalid_json_is_acknowledged_and_not_dispatched() {
        let seen = Seen::default();
        let (status, body) = trigger(router(&seen), "reminder-1", "{nope").await;
        // 2xx: a retry would carry the same bytes.
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["code"], "INVALID_JOB_DATA");
        assert!(seen.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn re_registering_a_prefix_replaces_it() {
        let seen = Seen::default();
        let seen2 = Arc::clone(&seen);
        let router: Router = JobRouter::new()
            .on_prefix("a-", |_| async { Err(JobError::transient("old")) })
            .on_prefix("a-", move |t| {
                let seen = Arc::clone(&seen2);
                async move {
                    seen.lock().unwrap().push(("new", t));
                    Ok(())
                }
            })
            .into_router();
        let (status, _) = trigger(router, "a-1", "null").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(seen.lock().unwrap().len(), 1);
    }
}
